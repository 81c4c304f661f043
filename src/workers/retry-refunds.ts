import { RefundRetryJob } from '../payments/refund-queue.ts';
import { retryUnknownRefund } from '../payments/refund-retry.ts';
import type { JobHandler } from './context.ts';

/**
 * `invoice.refund` (one job per refund the gateway left unknown, enqueued with that status): sends the
 * refund again where the gateway's refund is idempotent, else — or on the queue's last try — raises an
 * `unknown_outcome` reconciliation exception (payments/refund-retry.ts). A refund still unknown throws,
 * so pg-boss retries the job with backoff (queue/boss.ts).
 * @throws ZodError on job data that is not `{ refundId }`; Error while the refund stays unknown
 */
export const retryRefunds: JobHandler = async ([job], { db, registry, accounts, actor }) => {
  if (!job) return;
  const { refundId } = RefundRetryJob.parse(job.data);
  const result = await retryUnknownRefund(
    db,
    actor,
    { registry, accounts },
    refundId,
    job.retryCount >= job.retryLimit,
  );
  if (result.kind === 'still_unknown')
    throw new Error(`refund ${refundId}: still no answer from the gateway`);
};
