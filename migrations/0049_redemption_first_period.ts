import { type Kysely, sql } from 'kysely';

/**
 * `coupon_redemptions.first_period_index`: the index of the first period invoice that may count the
 * redemption (billing/coupons.ts `redeemCoupon`: one past the subscription's last period invoice when
 * it was redeemed, 0 before any). `periodCoupons` counts the period invoices from it instead of
 * comparing `created_at`s, which a redemption shares with the catch-up invoices of its own unit of
 * work (`renewedUpTo` before `redeemCoupon`: those were made before it).
 *
 * Existing rows: the lowest period index among the subscription's period invoices made after the
 * redemption — a later transaction (`created_at` later), or its own when it was redeemed as the
 * subscription was created (a `subscription.created` activity of that `created_at`: `insertSubscription`
 * redeems before it invoices; every other redemption comes after its unit of work's renewal) — else
 * one past its last period invoice, else 0.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE coupon_redemptions ADD COLUMN first_period_index integer CHECK (first_period_index >= 0);
    UPDATE coupon_redemptions r SET first_period_index = COALESCE(
      (SELECT min(i.period_index) FROM invoices i
        WHERE i.subscription_id = r.subscription_id AND i.period_index IS NOT NULL
          AND (i.created_at > r.created_at
            OR (i.created_at = r.created_at AND EXISTS (
              SELECT 1 FROM activities a
              WHERE a.resource_id = r.subscription_id AND a.resource_type = 'subscription'
                AND a.action = 'subscription.created' AND a.created_at = r.created_at)))),
      (SELECT max(i.period_index) + 1 FROM invoices i
        WHERE i.subscription_id = r.subscription_id AND i.period_index IS NOT NULL),
      0);
    ALTER TABLE coupon_redemptions ALTER COLUMN first_period_index SET NOT NULL;
  `.execute(db);
}

/** Drops what 0049 adds. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE coupon_redemptions DROP COLUMN first_period_index`.execute(db);
}
