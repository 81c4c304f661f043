import { type Kysely, sql } from 'kysely';

/**
 * Customers as the seeds have them (issue #28 item 4) and archival instead of deletes (issue #26
 * item 5):
 * - customers: the billing contact's `phone`, the billing address (Stripe's names: `address_line1`,
 *   `address_line2`, `address_city`, `address_state`, `address_postal_code`, `address_country` ISO
 *   3166-1 alpha-2), `tax_id`, `tax_exempt`, `locale` (BCP 47), `updated_at`, and `closed_at` (set while
 *   the customer is closed: no new invoice, subscription or charge);
 * - payment_methods: the card's `card_brand`, `card_last4`, `card_exp_month`, `card_exp_year` as the
 *   gateway reported them (null where it did not), `detached_at` (a detached method is kept for the
 *   history of its charges, never charged again) and `updated_at`;
 * - coupon_redemptions: `removed_at` (a removed coupon discounts no later invoice; past ones keep theirs);
 * - usage_limits: `deleted_at` (a deleted limit no longer acts; one limit per customer, currency and
 *   action among those not deleted).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE customers
      ADD COLUMN phone text,
      ADD COLUMN address_line1 text,
      ADD COLUMN address_line2 text,
      ADD COLUMN address_city text,
      ADD COLUMN address_state text,
      ADD COLUMN address_postal_code text,
      ADD COLUMN address_country text CHECK (address_country ~ '^[A-Z]{2}$'),
      ADD COLUMN tax_id text,
      ADD COLUMN tax_exempt boolean NOT NULL DEFAULT false,
      ADD COLUMN locale text,
      ADD COLUMN closed_at timestamptz,
      ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
    ALTER TABLE payment_methods
      ADD COLUMN card_brand text,
      ADD COLUMN card_last4 text CHECK (card_last4 ~ '^[0-9]{4}$'),
      ADD COLUMN card_exp_month integer CHECK (card_exp_month BETWEEN 1 AND 12),
      ADD COLUMN card_exp_year integer CHECK (card_exp_year BETWEEN 1970 AND 9999),
      ADD COLUMN detached_at timestamptz,
      ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
    ALTER TABLE coupon_redemptions ADD COLUMN removed_at timestamptz;
    ALTER TABLE usage_limits
      ADD COLUMN deleted_at timestamptz,
      DROP CONSTRAINT usage_limits_customer_id_currency_action_key;
    CREATE UNIQUE INDEX usage_limits_one_live ON usage_limits (customer_id, currency, action)
      WHERE deleted_at IS NULL;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP INDEX usage_limits_one_live;
    DELETE FROM usage_limits WHERE deleted_at IS NOT NULL;
    ALTER TABLE usage_limits
      DROP COLUMN deleted_at,
      ADD CONSTRAINT usage_limits_customer_id_currency_action_key UNIQUE (customer_id, currency, action);
    ALTER TABLE coupon_redemptions DROP COLUMN removed_at;
    ALTER TABLE payment_methods
      DROP COLUMN card_brand, DROP COLUMN card_last4, DROP COLUMN card_exp_month,
      DROP COLUMN card_exp_year, DROP COLUMN detached_at, DROP COLUMN updated_at;
    ALTER TABLE customers
      DROP COLUMN phone, DROP COLUMN address_line1, DROP COLUMN address_line2, DROP COLUMN address_city,
      DROP COLUMN address_state, DROP COLUMN address_postal_code, DROP COLUMN address_country,
      DROP COLUMN tax_id, DROP COLUMN tax_exempt, DROP COLUMN locale, DROP COLUMN closed_at,
      DROP COLUMN updated_at;
  `.execute(db);
}
