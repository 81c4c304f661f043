import { sql } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import type { CancellationRefundType, SubscriptionRow, SubscriptionStatus } from '../db/schema.ts';
import { ConflictError } from '../errors.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';

/**
 * Allowed subscription status changes (PRODUCT §5): a trial ends ACTIVE (or PAST_DUE when its first
 * charge fails); a failed renewal makes it PAST_DUE; dunning ends in SUSPENDED or CANCELLED by setting;
 * a paid invoice or `reactivate` brings it back to ACTIVE. CANCELLED is final.
 */
export const SUBSCRIPTION_TRANSITIONS: Record<SubscriptionStatus, readonly SubscriptionStatus[]> = {
  IN_TRIAL: ['ACTIVE', 'PAST_DUE', 'SUSPENDED', 'CANCELLED'],
  ACTIVE: ['PAST_DUE', 'SUSPENDED', 'CANCELLED'],
  PAST_DUE: ['ACTIVE', 'SUSPENDED', 'CANCELLED'],
  SUSPENDED: ['ACTIVE', 'CANCELLED'],
  CANCELLED: [],
};

/** Subscription statuses that bill again or may (a suspended one can be reactivated). */
export const LIVE_STATUSES: readonly SubscriptionStatus[] = ['IN_TRIAL', 'ACTIVE', 'PAST_DUE', 'SUSPENDED'];

/**
 * Moves a subscription (locked by the caller in `work`, which has joined the ledger's writers) to
 * `to`, stamping `suspended_at` / `cancelled_at` / `ended_at`, and logs `subscription.<to lower case>`
 * with `data`; entering CANCELLED keeps the cancellation facts a cancellation stored
 * (`cancellation_refund_type`, `cancellation_effective_at`), else stores `none` from `now`. Staying in the same status changes nothing. Entering SUSPENDED stores `suspendReason`
 * (a person's text, or null) as `suspend_reason`, kept apart from `data.reason`: that one is the
 * system's (`dunning` is what lets a payment reinstate it, reinstate.ts); becoming ACTIVE clears both
 * `suspended_at` and `suspend_reason`, however it happens (reactivation or a payment).
 * @returns the updated row
 * @throws ConflictError `invalid_subscription_transition` for a change the table above forbids
 */
export async function transitionSubscription(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  to: SubscriptionStatus,
  now: Date,
  data: Record<string, unknown> = {},
  suspendReason: string | null = null,
): Promise<SubscriptionRow> {
  if (subscription.status === to) return subscription;
  if (!SUBSCRIPTION_TRANSITIONS[subscription.status].includes(to)) {
    throw new ConflictError(
      'invalid_subscription_transition',
      `subscription ${subscription.id} is ${subscription.status}; it cannot become ${to}`,
    );
  }
  const updated = await work.trx
    .updateTable('subscriptions')
    .set({
      status: to,
      updated_at: now,
      ...(to === 'SUSPENDED' ? { suspended_at: now, suspend_reason: suspendReason } : {}),
      ...(to === 'ACTIVE' ? { suspended_at: null, suspend_reason: null } : {}),
      ...(to === 'CANCELLED'
        ? {
            cancelled_at: now,
            ended_at: now,
            next_renewal_at: null,
            // A cancellation that said a refund stored it already (cancel now, or one scheduled that
            // this ends); any other (dunning's, a term's end) gave nothing back.
            cancellation_refund_type: sql<CancellationRefundType>`coalesce(cancellation_refund_type, 'none')`,
            cancellation_effective_at: sql<Date>`coalesce(cancellation_effective_at, ${now})`,
          }
        : {}),
    })
    .where('id', '=', subscription.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await subscriptionActivity(work, subscription, `subscription.${to.toLowerCase()}`, {
    from: subscription.status,
    to,
    ...data,
  });
  return updated;
}

/**
 * Logs `action` on `subscription` (an activity of resource type `subscription`, naming its customer)
 * inside `work`, with `data`.
 */
export function subscriptionActivity(
  work: UnitOfWork,
  subscription: Pick<SubscriptionRow, 'id' | 'customer_id'>,
  action: string,
  data: Record<string, unknown> = {},
): Promise<void> {
  return recordActivity(work, {
    resourceType: 'subscription',
    resourceId: subscription.id,
    action,
    customerId: subscription.customer_id,
    data,
  });
}
