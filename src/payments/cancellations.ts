import type { PgBoss } from 'pg-boss';
import type { GatewayClients } from '../accounts/clients.ts';
import { type CancelOptions, cancelLocked } from '../billing/cancellation.ts';
import { lockSubscription } from '../billing/renewal.ts';
import type { Db } from '../db/database.ts';
import type { CreditNoteRow, RefundRow, SubscriptionRow } from '../db/schema.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { prepareInvoiceRefund, sendRefund } from './refunds.ts';

/**
 * What a cancellation did: the subscription, its cash refund as recorded after the gateway's answer,
 * and the credit note of the customer credit it gave back (null: none).
 */
export interface CancelResult {
  subscription: SubscriptionRow;
  refund: RefundRow | null;
  creditNote: CreditNoteRow | null;
}

/**
 * Cancels subscription `id` (billing/cancellation.ts `cancelLocked`) and, for `refund_type` full or
 * prorate, gives back that share of the current period's paid invoice: cash first, through the
 * gateway payment that paid it (up to what it can still refund), and the rest as the customer
 * credit that paid it (`cancellationRefund`; 409 `refund_exceeds_payment` when more is owed, `invoice_overpaid` for a duplicate payment not refunded). The cancellation, the `pending` cash refund row (`prepareInvoiceRefund`)
 * and the credit given back (`returnInvoiceCredit`, called by `cancelLocked` before a cancellation
 * now makes its final usage invoice, which takes that credit at finalization: its credit note and
 * `inv_…:credit_given_back`) commit together in one unit of work; then the cash refund is sent with its id as idempotency key
 * and its outcome recorded (`sendRefund`: a success issues the credit note and posts
 * `re_…:succeeded`, an unknown answer is retried by `invoice.refund`, a decline leaves the refund
 * failed, the subscription cancelled and the credit given back). An invoice the customer's credit
 * paid whole gives back credit only: no gateway call. As BillaBear's cancel `refund_type` (seed
 * 004), which refunds the payment.
 * @throws as `cancelLocked` (nothing changes; among them 409 `refund_in_flight` while a refund of the
 * period's invoice is `pending` or `unknown`), and as `prepareInvoiceRefund` (`gateway_not_configured`,
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
): Promise<CancelResult> {
  const prepared = await inUnitOfWork(db, { actor }, async (work) => {
    const cancellation = await cancelLocked(work, (await lockSubscription(work, id))!, options, now);
    const given = cancellation.refund;
    // A refusal of the cash refund (gateway not configured, amount not representable) rolls the
    // credit given back and the cancellation back with it.
    const refund =
      given && given.amount > 0n
        ? await prepareInvoiceRefund(work, gateways, given.invoiceId, {
            amount: given.amount,
            reason: 'subscription_cancelled',
          })
        : null;
    return { subscription: cancellation.subscription, refund, creditNote: cancellation.creditNote };
  });
  const { subscription, creditNote } = prepared;
  if (!prepared.refund) return { subscription, refund: null, creditNote };
  const { refund, transaction } = prepared.refund;
  return {
    subscription,
    refund: await sendRefund(db, actor, gateways, refund, transaction, { kind: 'first', boss }),
    creditNote,
  };
}
