import { flagUnpaidLostClaims } from '../payments/lost-claims.ts';
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
 * unknown whose `invoice.refund` dead letter expired (`abandonOrphanedRefunds`); and hands to a
 * person each PayPal claim lost whose paying refund has not come in `LOST_CLAIM_REFUND_DAYS`, which
 * then holds the customer's credit no more (payments/lost-claims.ts `flagUnpaidLostClaims`).
 */
export const recoverRefunds: JobHandler = async (_jobs, { db, boss, log, actor, config }) => {
  const refunds = await recoverUnansweredRefunds(db, actor, boss, UNANSWERED_REFUND_SECONDS);
  if (refunds.length)
    log.warn({ refunds }, 'refund.recover queued refunds that never got an answer recorded');
  const abandoned = await abandonOrphanedRefunds(db, actor);
  if (abandoned.length)
    log.warn({ refunds: abandoned }, 'refund.recover: unknown refunds no job will settle went to a person');
  const claims = await flagUnpaidLostClaims(db, actor, new Date(), config.LOST_CLAIM_REFUND_DAYS);
  if (claims.length)
    log.warn({ disputes: claims }, 'refund.recover: lost PayPal claims no refund paid went to a person');
};
