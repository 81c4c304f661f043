import type { PgBoss } from 'pg-boss';
import type { GatewayClients } from '../accounts/clients.ts';
import { type CancelOptions, cancelLocked } from '../billing/cancellation.ts';
import { DEFAULT_RENEWAL_POLICY, lockSubscription, type RenewalPolicy } from '../billing/renewal.ts';
import type { Db } from '../db/database.ts';
import type { CreditNoteRow, InvoiceRow, RefundRow, SubscriptionRow } from '../db/schema.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { askRefundAccounts, prepareRefunds, sendRefunds } from './refunds.ts';

/**
 * What a cancellation did: the subscription, its cash refunds as recorded after the gateways'
 * answers (one per gateway payment of each paid invoice of the period it went back through: the
 * period invoice's first, then its add-on invoices' oldest first, each invoice's newest payment first;
 * none when no cash was given back), and the credit notes of the customer credit it gave back (none:
 * empty; `cancelLocked`'s `creditNotes`), the invoices its catch-up renewal made first
 * (`cancelLocked`'s `catchUpInvoices`: empty when the renewal sweep was on time), with the two parts of
 * the cash owed back, minor units ≥ 0 of the period's currency: `refunded`, what was sent to the cards
 * (the refunds' amounts together), and `credited`, what their gateways cannot take (below their step)
 * given to the customer's credit instead (Stripe KWD 667 owed: 660 and 7; its credit note is among
 * `creditNotes`).
 */
export interface CancelResult {
  subscription: SubscriptionRow;
  refunds: RefundRow[];
  creditNotes: CreditNoteRow[];
  catchUpInvoices: InvoiceRow[];
  refunded: bigint;
  credited: bigint;
}

/**
 * Cancels subscription `id` (billing/cancellation.ts `cancelLocked`) and, for `refund_type` full or
 * prorate, gives back that share of the current period's paid invoice and of each of its paid add-on
 * proration invoices (an OPEN one owes that share less, or is voided: `cancelLocked`), each on its
 * own: cash first, through the gateway payments that paid it, newest first, each up to what it can still refund (the split
 * `cancelLocked` computed: `parts`), and the rest as the customer credit that paid it
 * (`cancellationRefund`; 409 `refund_exceeds_payment` when more is owed than all of them and the
 * credit cover, `invoice_overpaid` for a duplicate payment not refunded). The cancellation, one
 * `pending` cash refund per part (`prepareRefunds`, under the invoice lock `cancelLocked` took) and
 * the credit given back (`returnInvoiceCredit`, called by `cancelLocked` before a cancellation now
 * makes its final usage invoice, which takes that credit at finalization: its credit note and
 * `inv_…:credit_given_back`) commit together in one unit of work; then each cash refund is sent with
 * its id as idempotency key and its outcome recorded (`sendRefunds`: a success issues its credit
 * note and posts `re_…:succeeded`, an unknown answer is retried by `invoice.refund`, a decline
 * leaves that refund failed, the subscription cancelled and the credit given back). An invoice the
 * customer's credit paid whole gives back credit only: no gateway call. In a currency a payment's
 * gateway takes only on a step (Stripe KWD 10 fils, PayPal HUF whole forints), its refund is the
 * largest on-step amount not above its part and the rest goes to the customer's credit
 * (billing/cancellation.ts `onGatewaySteps`, credit-returns.ts `creditCashRest`): Stripe KWD 1000
 * cancelled with `prorate` a third through, 667 owed: 660 to the card, 7 as credit. As BillaBear's cancel
 * `refund_type` (seed 004), which refunds the payment. `policy` is the renewal's (which subscriptions
 * it bills), for the catch-up renewal `cancelLocked` makes first.
 * @throws as `cancelLocked` (nothing changes; among them 409 `refund_in_flight` while a refund of
 * the period's invoice, of one of its add-on invoices, or of one of its prorated changes' invoices,
 * is `pending` or `unknown`), and as `prepareRefunds` (`gateway_not_configured`,
 * `gateway_account_disabled`, `amount_not_representable`: nothing changes either)
 */
export async function cancelSubscriptionWithRefund(
  db: Db,
  actor: Actor,
  boss: PgBoss,
  gateways: GatewayClients,
  id: string,
  options: CancelOptions,
  now: Date,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<CancelResult> {
  // The accounts' currencies are asked before anything is locked (an HTTP call: askRefundAccounts).
  const owner =
    options.refundType === 'none'
      ? undefined
      : await db.selectFrom('subscriptions').select('customer_id').where('id', '=', id).executeTakeFirst();
  const accounts = await askRefundAccounts(db, gateways, owner?.customer_id);
  const prepared = await inUnitOfWork(db, { actor }, async (work) => {
    const locked = (await lockSubscription(work, id))!;
    const cancellation = await cancelLocked(work, locked, options, now, policy);
    // A refusal of a cash refund (gateway not configured, amount not representable) rolls the
    // credit given back, the other refunds and the cancellation back with it.
    const parts = cancellation.refunds.flatMap((refund) => refund.parts);
    const refunds =
      parts.length > 0
        ? await prepareRefunds(work, gateways, parts, { reason: 'subscription_cancelled' }, accounts)
        : [];
    const sum = (amounts: bigint[]) => amounts.reduce((total, amount) => total + amount, 0n);
    return {
      subscription: cancellation.subscription,
      refunds,
      creditNotes: cancellation.creditNotes,
      catchUpInvoices: cancellation.catchUpInvoices,
      refunded: sum(cancellation.refunds.map((r) => r.amount)),
      credited: sum(cancellation.refunds.map((r) => r.cashCredited)),
    };
  });
  return {
    subscription: prepared.subscription,
    refunds: await sendRefunds(db, actor, boss, gateways, prepared.refunds),
    creditNotes: prepared.creditNotes,
    catchUpInvoices: prepared.catchUpInvoices,
    refunded: prepared.refunded,
    credited: prepared.credited,
  };
}
