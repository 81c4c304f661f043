import type { PgBoss } from 'pg-boss';
import type { GatewayClients } from '../accounts/clients.ts';
import type { Db } from '../db/database.ts';
import type { RefundStatus } from '../db/schema.ts';
import { raiseException } from '../exceptions/exceptions.ts';
import { capabilitiesOf } from '../gateways/registry.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { enqueueRefundRetry } from './refund-queue.ts';
import { recordRefundResult, sendRefund } from './refunds.ts';

/** What one retry did. */
export type RefundRetryResult =
  | { kind: 'settled'; status: RefundStatus }
  | { kind: 'still_unknown' }
  | { kind: 'exception' };

/**
 * Settles a refund left unknown: where the gateway's refund is idempotent (its capabilities'
 * `idempotentRefundRepeat`: Stripe, PayPal, SecurePay) the
 * same refund is sent again with the same reference, to the refund's gateway account, and its answer recorded; elsewhere, or when the
 * last retry still gets no answer, an `unknown_outcome` reconciliation exception asks a person to look
 * at the gateway. A refund already settled (by a webhook, say) is left alone.
 * @param lastAttempt true on the queue's final try: an unknown answer becomes the exception
 */
export async function retryUnknownRefund(
  db: Db,
  actor: Actor,
  gateways: GatewayClients,
  refundId: string,
  lastAttempt: boolean,
): Promise<RefundRetryResult> {
  const refund = await db.selectFrom('refunds').selectAll().where('id', '=', refundId).executeTakeFirst();
  if (refund?.status !== 'unknown') return { kind: 'settled', status: refund?.status ?? 'failed' };
  if (capabilitiesOf(refund.gateway).idempotentRefundRepeat) {
    const transaction = await db
      .selectFrom('transactions')
      .selectAll()
      .where('id', '=', refund.transaction_id)
      .executeTakeFirstOrThrow();
    const recorded = await sendRefund(db, actor, gateways, refund, transaction, { kind: 'repeat' });
    if (recorded.status !== 'unknown') return { kind: 'settled', status: recorded.status };
    if (!lastAttempt) return { kind: 'still_unknown' };
  }
  await inUnitOfWork(db, { actor }, (work) =>
    raiseException(work, {
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

/**
 * Finds refunds committed `pending` more than `olderThanSeconds` ago that never got an answer
 * recorded (no gateway refund id: the process stopped between committing the refund and recording
 * the gateway's answer, PRODUCT.md §8) and treats each as unknown: it is marked `unknown` and its
 * `invoice.refund` job enqueued in one transaction, so the queue repeats it where that is idempotent
 * or asks a person. Refunds the gateway itself reported pending carry its refund id and are left to
 * its webhooks (a refund made outside billhook is recorded only with the gateway's id: reconcile/apply.ts).
 * @returns the ids of the refunds marked unknown
 */
export async function recoverUnansweredRefunds(
  db: Db,
  actor: Actor,
  boss: PgBoss,
  olderThanSeconds: number,
  limit = 100,
): Promise<string[]> {
  const stuck = await db
    .selectFrom('refunds')
    .select('id')
    .where('status', '=', 'pending')
    .where('gateway_refund_id', 'is', null)
    .where('created_at', '<', new Date(Date.now() - olderThanSeconds * 1000))
    .orderBy('created_at')
    .limit(limit)
    .execute();
  const recovered: string[] = [];
  for (const { id } of stuck) {
    const marked = await inUnitOfWork(db, { actor }, async (work) => {
      const recorded = await recordRefundResult(work, id, {
        status: 'unknown',
        failureCode: 'unknown_outcome',
        failureMessage: `no answer from the gateway was recorded within ${olderThanSeconds} s of the refund`,
      });
      if (recorded.kind !== 'applied') return false;
      await enqueueRefundRetry(work.trx, boss, id);
      return true;
    });
    if (marked) recovered.push(id);
  }
  return recovered;
}
