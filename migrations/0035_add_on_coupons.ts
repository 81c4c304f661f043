import { type Kysely, sql } from 'kysely';

/**
 * Coupons on a subscription's add-ons (issue #28; Billby's `for_all`/`products`/`add_ons` coupon
 * eligibility and redeemed coupons on a subscription add-on, seed 001):
 * - coupons: `applies_to_add_ons` (add-on ids, JSON). With `applies_to_products` both null the
 *   coupon is for all (every plan and every add-on); otherwise it applies to what the two lists name.
 * - coupon_redemptions: `add_on_id`, the add-on of the subscription it was redeemed on (it
 *   discounts that add-on's line only); null: redeemed on the subscription (its plan's line). A
 *   coupon is redeemed once per subscription and add-on (or once on the subscription itself).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE coupons ADD COLUMN applies_to_add_ons jsonb;
    ALTER TABLE coupon_redemptions ADD COLUMN add_on_id text REFERENCES add_ons (id);
    ALTER TABLE coupon_redemptions DROP CONSTRAINT coupon_redemptions_coupon_id_subscription_id_key;
    ALTER TABLE coupon_redemptions ADD CONSTRAINT coupon_redemptions_coupon_subscription_add_on
      UNIQUE NULLS NOT DISTINCT (coupon_id, subscription_id, add_on_id);
  `.execute(db);
}

/** Drops what 0035 adds; redemptions on add-ons go with it (the old UNIQUE could not hold them). */
export async function down(db: Kysely<unknown>): Promise<void> {
  // ALTER first: a text starting with DELETE runs as a prepared statement (db/database.ts), one command only.
  await sql`
    ALTER TABLE coupon_redemptions DROP CONSTRAINT coupon_redemptions_coupon_subscription_add_on;
    DELETE FROM coupon_redemptions WHERE add_on_id IS NOT NULL;
    ALTER TABLE coupon_redemptions ADD CONSTRAINT coupon_redemptions_coupon_id_subscription_id_key
      UNIQUE (coupon_id, subscription_id);
    ALTER TABLE coupon_redemptions DROP COLUMN add_on_id;
    ALTER TABLE coupons DROP COLUMN applies_to_add_ons;
  `.execute(db);
}
