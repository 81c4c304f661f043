import type { PgBoss } from 'pg-boss';
import type { GatewayClients } from '../accounts/clients.ts';
import { type CancelOptions, cancelLocked } from '../billing/cancellation.ts';
import { lockSubscription } from '../billing/renewal.ts';
import type { Db } from '../db/database.ts';
import type { RefundRow, SubscriptionRow } from '../db/schema.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { prepareInvoiceRefund, sendRefund } from './refunds.ts';

/** What a cancellation did: the subscription, and its refund as recorded after the gateway's answer. */
export interface CancelResult {
  subscription: SubscriptionRow;
  refund: RefundRow | null;
}

/**
 * Cancels subscription `id` (billing/cancellation.ts `cancelLocked`) and, for `refund_type` full or
 * prorate, refunds that share of the current period's paid invoice through the gateway payment that
 * paid it, by the existing refund path: the cancellation and the `pending` refund row commit
 * together (`prepareInvoiceRefund`), then the refund is sent with its id as idempotency key and its
 * outcome recorded (`sendRefund`: a success issues the credit note and posts `re_…:succeeded`, an
 * unknown answer is retried by `invoice.refund`, a decline leaves the refund failed and the
 * subscription cancelled). As BillaBear's cancel `refund_type` (seed 004), which refunds the payment.
 * @throws as `cancelLocked` (nothing changes), and as `prepareInvoiceRefund` (`gateway_not_configured`,
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
    const refund = cancellation.refund
      ? await prepareInvoiceRefund(work, gateways, cancellation.refund.invoiceId, {
          amount: cancellation.refund.amount,
          reason: 'subscription_cancelled',
        })
      : null;
    return { subscription: cancellation.subscription, refund };
  });
  if (!prepared.refund) return { subscription: prepared.subscription, refund: null };
  const { refund, transaction } = prepared.refund;
  return {
    subscription: prepared.subscription,
    refund: await sendRefund(db, actor, gateways, refund, transaction, { kind: 'first', boss }),
  };
}
