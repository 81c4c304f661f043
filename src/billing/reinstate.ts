import { z } from 'zod';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { transitionSubscription } from './subscription-status.ts';

/** What dunning writes in the data of the `subscription.suspended` activity it causes. */
export const DUNNING_REASON = 'dunning';

const SuspensionData = z.object({ reason: z.string().optional() }).loose();

/**
 * After invoice `paidInvoiceId` of a subscription was paid (any path), inside the paying transaction
 * (joined to the ledger's writers, the invoice locked, and so the subscription before it:
 * `lockInvoice`, `lockTransactionsAhead`; read again here `FOR UPDATE`, it waits for nothing): a
 * PAST_DUE subscription, or one SUSPENDED by dunning (its latest `subscription.suspended` activity
 * says `reason: dunning`), becomes ACTIVE again when none of its other OPEN invoices has a failed
 * automatic charge. A subscription suspended by a person, or cancelled, stays as it is.
 * @returns whether the subscription was reactivated
 */
export async function reinstateAfterPayment(
  work: UnitOfWork,
  subscriptionId: string,
  paidInvoiceId: string,
  now: Date,
): Promise<boolean> {
  const subscription = await work.trx
    .selectFrom('subscriptions')
    .selectAll()
    .where('id', '=', subscriptionId)
    .forUpdate()
    .executeTakeFirst();
  if (!subscription) return false;
  if (subscription.status === 'SUSPENDED') {
    const suspension = await work.trx
      .selectFrom('activities')
      .select('data')
      .where('resource_id', '=', subscriptionId)
      .where('action', '=', 'subscription.suspended')
      .orderBy('sequence', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (SuspensionData.safeParse(suspension?.data).data?.reason !== DUNNING_REASON) return false;
  } else if (subscription.status !== 'PAST_DUE') {
    return false;
  }
  // The subscription's other invoices as they are now, with those the unit paid and has not written.
  await work.writeRows();
  const overdue = await work.trx
    .selectFrom('invoices')
    .select('id')
    .where('subscription_id', '=', subscriptionId)
    .where('id', '!=', paidInvoiceId)
    .where('status', '=', 'OPEN')
    .where('payment_attempts', '>', 0)
    .executeTakeFirst();
  if (overdue) return false;
  await transitionSubscription(work, subscription, 'ACTIVE', now, {
    reason: 'invoice_paid',
    invoice: paidInvoiceId,
  });
  return true;
}
