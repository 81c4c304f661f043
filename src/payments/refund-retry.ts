import { z } from 'zod';
import type { Db } from '../db/database.ts';
import type { RefundStatus } from '../db/schema.ts';
import { writeTransaction } from '../db/write-transaction.ts';
import type { GatewayRegistry } from '../gateways/registry.ts';
import type { GatewayName } from '../gateways/types.ts';
import { raiseException } from '../reconcile/exceptions.ts';
import { sendRefund } from './refunds.ts';

/**
 * Gateways whose refund call can be repeated safely with the same reference: the repeat returns the
 * first refund instead of refunding twice.
 * - Stripe: the refund id is sent as `Idempotency-Key`; a repeat within 24 hours returns the first
 *   result (https://docs.stripe.com/api/idempotent_requests).
 * - PayPal: the refund id is sent as `PayPal-Request-Id`; a repeat returns the first result
 *   (https://developer.paypal.com/api/rest/reference/idempotency/).
 * Authorize.Net and eWAY refunds carry no idempotency key, and how SecurePay answers a repeated
 * `Idempotency-Key` is undocumented: an unknown refund there goes to a person.
 */
export const IDEMPOTENT_REFUNDS: ReadonlySet<GatewayName> = new Set(['stripe', 'paypal']);

/** Job data of `invoice.refund`: a refund whose outcome is unknown (timeout or 5xx at the gateway). */
export const RefundRetryJob = z.object({ refundId: z.string().startsWith('re_') });
export type RefundRetryJob = z.infer<typeof RefundRetryJob>;

/** What one retry did. */
export type RefundRetryResult =
  | { kind: 'settled'; status: RefundStatus }
  | { kind: 'still_unknown' }
  | { kind: 'exception' };

/**
 * Settles a refund left unknown: where the gateway's refund is idempotent (`IDEMPOTENT_REFUNDS`) the
 * same refund is sent again with the same reference and its answer recorded; elsewhere, or when the
 * last retry still gets no answer, an `unknown_outcome` reconciliation exception asks a person to look
 * at the gateway. A refund already settled (by a webhook, say) is left alone.
 * @param lastAttempt true on the queue's final try: an unknown answer becomes the exception
 */
export async function retryUnknownRefund(
  db: Db,
  registry: GatewayRegistry,
  refundId: string,
  lastAttempt: boolean,
): Promise<RefundRetryResult> {
  const refund = await db.selectFrom('refunds').selectAll().where('id', '=', refundId).executeTakeFirst();
  if (refund?.status !== 'unknown') return { kind: 'settled', status: refund?.status ?? 'failed' };
  if (IDEMPOTENT_REFUNDS.has(refund.gateway)) {
    const transaction = await db
      .selectFrom('transactions')
      .selectAll()
      .where('id', '=', refund.transaction_id)
      .executeTakeFirstOrThrow();
    const recorded = await sendRefund(db, registry, refund, transaction);
    if (recorded.status !== 'unknown') return { kind: 'settled', status: recorded.status };
    if (!lastAttempt) return { kind: 'still_unknown' };
  }
  await writeTransaction(db, (trx) =>
    raiseException(trx, {
      kind: 'unknown_outcome',
      gateway: refund.gateway,
      transactionId: refund.transaction_id,
      refundId: refund.id,
      message: `refund ${refund.id} of ${refund.amount} ${refund.currency} (minor units) got no answer from ${refund.gateway}: check the gateway, then resolve`,
      details: { refund: refund.id },
    }),
  );
  return { kind: 'exception' };
}
