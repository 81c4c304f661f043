import { abandonOrphanedRefunds, recoverUnansweredRefunds } from '../payments/refund-retry.ts';
import type { JobHandler } from './context.ts';

/**
 * A refund still `pending` without a gateway refund id this long after it was committed never had its
 * answer recorded (far past any gateway timeout: the process stopped in between).
 */
export const UNANSWERED_REFUND_SECONDS = 600;

/**
 * `refund.recover` (every minute): marks each refund committed more than
 * {@link UNANSWERED_REFUND_SECONDS} ago that never got the gateway's answer recorded `unknown` and
 * enqueues its `invoice.refund` job in the same transaction (payments/refund-retry.ts), so the refund
 * is repeated where that is idempotent or goes to a person; and hands to a person each refund still
 * unknown whose `invoice.refund` dead letter expired (`abandonOrphanedRefunds`).
 */
export const recoverRefunds: JobHandler = async (_jobs, { db, boss, log, actor }) => {
  const refunds = await recoverUnansweredRefunds(db, actor, boss, UNANSWERED_REFUND_SECONDS);
  if (refunds.length)
    log.warn({ refunds }, 'refund.recover queued refunds that never got an answer recorded');
  const abandoned = await abandonOrphanedRefunds(db, actor);
  if (abandoned.length)
    log.warn({ refunds: abandoned }, 'refund.recover: unknown refunds no job will settle went to a person');
};
