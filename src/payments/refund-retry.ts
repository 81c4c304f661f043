import { sql } from 'kysely';
import type { PgBoss } from 'pg-boss';
import type { GatewayClients } from '../accounts/clients.ts';
import type { Db } from '../db/database.ts';
import type { RefundStatus } from '../db/schema.ts';
import { raiseException } from '../exceptions/exceptions.ts';
import { withinRepeatWindow } from '../gateways/attempts.ts';
import { capabilitiesOf } from '../gateways/registry.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { BOSS_SCHEMA } from '../queue/boss.ts';
import { deadQueueOf, QUEUES } from '../queue/queues.ts';
import { enqueueRefundRetry } from './refund-queue.ts';
import { recordRefundResult, sendRefund } from './refunds.ts';

/** What one retry did. */
export type RefundRetryResult =
  | { kind: 'settled'; status: RefundStatus }
  | { kind: 'still_unknown' }
  | { kind: 'exception' };

/**
 * Settles a refund left unknown: where the gateway's refund is idempotent and still keeps the key
 * (its capabilities' `refundRepeatWindowMs`: Stripe 23 h, PayPal 44 days, SecurePay 1 h after the
 * refund was created, read from its id) the same refund is sent again with the same reference, to
 * the refund's gateway account, and its answer recorded; elsewhere, past that window (a dead letter
 * retried a day later: a gateway that forgot the key would refund a second time), or when the last
 * retry still gets no answer, an `unknown_outcome` reconciliation exception asks a person to look
 * at the gateway, and nothing is sent. A refund already settled (by a webhook, say) is left alone.
 * @param lastAttempt true on the queue's final try: an unknown answer becomes the exception
 * @param now the retry's clock, against which the refund's age is read (default: now)
 */
export async function retryUnknownRefund(
  db: Db,
  actor: Actor,
  gateways: GatewayClients,
  refundId: string,
  lastAttempt: boolean,
  now: Date = new Date(),
): Promise<RefundRetryResult> {
  const refund = await db.selectFrom('refunds').selectAll().where('id', '=', refundId).executeTakeFirst();
  if (refund?.status !== 'unknown') return { kind: 'settled', status: refund?.status ?? 'failed' };
  const window = capabilitiesOf(refund.gateway).refundRepeatWindowMs;
  const repeatable = window !== null && withinRepeatWindow(refund.id, now.getTime(), window);
  if (repeatable) {
    const transaction = await db
      .selectFrom('transactions')
      .selectAll()
      .where('id', '=', refund.transaction_id)
      .executeTakeFirstOrThrow();
    const recorded = await sendRefund(db, actor, gateways, refund, transaction, { kind: 'repeat' });
    if (recorded.status !== 'unknown') return { kind: 'settled', status: recorded.status };
    if (!lastAttempt) return { kind: 'still_unknown' };
  }
  const why =
    window === null || repeatable
      ? `got no answer from ${refund.gateway}`
      : `got no answer from ${refund.gateway} and is too old to be sent again safely (${refund.gateway} may have forgotten its idempotency key: a repeat could refund twice)`;
  await inUnitOfWork(db, { actor }, (work) =>
    raiseException(work, {
      kind: 'unknown_outcome',
      gateway: refund.gateway,
      transactionId: refund.transaction_id,
      refundId: refund.id,
      message: `refund ${refund.id} of ${refund.amount} ${refund.currency} (minor units) ${why}: check the gateway, then resolve`,
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

/**
 * Hands to a person each refund left `unknown` that no `invoice.refund` job will settle any more: its
 * dead letter was deleted (the console's *Delete*, `billhook jobs purge`) or expired after its 30
 * days. Each gets an `unknown_outcome` reconciliation exception (once per refund), so no refund waits
 * for a retry that will not come, unknown and holding what it would refund, without anyone told. A
 * refund named by a queued, retrying or active `invoice.refund` job or dead letter is left to it; one
 * with its `unknown_outcome` already (its job's last try asked a person) raises nothing more. It reads
 * pg-boss's `job` table directly (src/inbox/UPGRADING.md).
 * @returns the ids of the refunds handed to a person now
 */
export async function abandonOrphanedRefunds(db: Db, actor: Actor): Promise<string[]> {
  const live = sql<string>`(
    SELECT data->>'refundId' FROM ${sql.table(`${BOSS_SCHEMA}.job`)}
    WHERE name IN (${QUEUES.invoiceRefund}, ${deadQueueOf(QUEUES.invoiceRefund)})
      AND state IN ('created', 'retry', 'active') AND data->>'refundId' IS NOT NULL)`;
  const orphans = await db
    .selectFrom('refunds')
    .selectAll()
    .where('status', '=', 'unknown')
    .where('id', 'not in', live)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('reconciliation_exceptions as x')
            .select('x.id')
            .whereRef('x.refund_id', '=', 'refunds.id')
            .where('x.kind', '=', 'unknown_outcome'),
        ),
      ),
    )
    .execute();
  for (const refund of orphans) {
    await inUnitOfWork(db, { actor }, (work) =>
      raiseException(work, {
        kind: 'unknown_outcome',
        gateway: refund.gateway,
        gatewayAccount: refund.gateway_account,
        transactionId: refund.transaction_id,
        refundId: refund.id,
        message: `refund ${refund.id} of ${refund.amount} ${refund.currency} (minor units) got no answer from ${refund.gateway}, and no job will ask again (its invoice.refund dead letter was deleted or expired): check the gateway, then resolve`,
        details: { refund: refund.id },
      }),
    );
  }
  return orphans.map((refund) => refund.id);
}
