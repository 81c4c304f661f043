import type { Kysely } from 'kysely';
import { fromKysely, type PgBoss } from 'pg-boss';
import { z } from 'zod';
import type { Database } from '../db/schema.ts';
import { QUEUES } from '../queue/queues.ts';

/** Job data of `invoice.refund`: a refund whose outcome is unknown (timeout or 5xx at the gateway). */
export const RefundRetryJob = z.object({ refundId: z.string().startsWith('re_') });
export type RefundRetryJob = z.infer<typeof RefundRetryJob>;

/**
 * Enqueues the `invoice.refund` job of a refund left unknown inside `trx`, so the refund's unknown
 * status and the job that settles it commit together (a crash in between loses neither).
 */
export async function enqueueRefundRetry(
  trx: Kysely<Database>,
  boss: PgBoss,
  refundId: string,
): Promise<void> {
  const job: RefundRetryJob = { refundId };
  await boss.send(QUEUES.invoiceRefund, job, { db: fromKysely(trx) });
}
