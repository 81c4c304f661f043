import { type Kysely, sql } from 'kysely';

/**
 * A subscription stores the facts of its latest cancellation that said a refund, which what a
 * cancellation gave back is worked from (billing/credit-returns.ts `cancellationReach`,
 * payments/disputes.ts `returnedAfterGivingBack`), instead of reading them back from the activity log:
 * - `cancellation_refund_type`: `none`, `full` or `prorate`, as the cancellation (now, at period end,
 *   at a date; a later cancel-now replacing one scheduled) was asked; `none` for dunning's, unless a
 *   cancellation scheduled before it had said one (its refund was given when scheduled and stands);
 *   null: never cancelled;
 * - `cancellation_effective_at`: the moment its refund counted from (now; the period's end or the
 *   date it was scheduled at); null exactly when `cancellation_refund_type` is.
 * Existing rows are backfilled from their latest `subscription.cancelled` or
 * `subscription.cancellation_scheduled` activity naming a `refund_type` (what `cancellationReach`
 * read until now): a cancel-now's effective moment is when it was cancelled (`cancelled_at`), a
 * scheduled one's its `at`. A subscription cancelled without such an activity (dunning's alone) gets
 * `none` from its `cancelled_at`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE subscriptions
      ADD COLUMN cancellation_refund_type text
        CHECK (cancellation_refund_type IN ('none', 'full', 'prorate')),
      ADD COLUMN cancellation_effective_at timestamptz,
      ADD CONSTRAINT subscriptions_cancellation_facts
        CHECK ((cancellation_refund_type IS NULL) = (cancellation_effective_at IS NULL));
    UPDATE subscriptions s
       SET cancellation_refund_type = latest.refund_type,
           cancellation_effective_at = latest.effective_at
      FROM (
        SELECT DISTINCT ON (a.resource_id)
               a.resource_id,
               a.data->>'refund_type' AS refund_type,
               CASE WHEN a.action = 'subscription.cancelled'
                    THEN coalesce(sub.cancelled_at, a.created_at)
                    ELSE coalesce((a.data->>'at')::timestamptz, a.created_at) END AS effective_at
          FROM activities a
          JOIN subscriptions sub ON sub.id = a.resource_id
         WHERE a.action IN ('subscription.cancelled', 'subscription.cancellation_scheduled')
           AND a.data ? 'refund_type'
           AND a.data->>'refund_type' IN ('none', 'full', 'prorate')
         ORDER BY a.resource_id, a.sequence DESC
      ) latest
     WHERE s.id = latest.resource_id;
    UPDATE subscriptions
       SET cancellation_refund_type = 'none', cancellation_effective_at = cancelled_at
     WHERE status = 'CANCELLED' AND cancellation_refund_type IS NULL AND cancelled_at IS NOT NULL;
  `.execute(db);
}

/** Drops what 0056 adds (the activity log still holds each cancellation's refund type). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE subscriptions
      DROP CONSTRAINT subscriptions_cancellation_facts,
      DROP COLUMN cancellation_effective_at,
      DROP COLUMN cancellation_refund_type;
  `.execute(db);
}
