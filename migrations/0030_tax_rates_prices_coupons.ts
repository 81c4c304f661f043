import { type Kysely, sql } from 'kysely';

/**
 * Taxes, prices and coupons (issue #28 items 2 and 5):
 * - `tax_rates` (`txr_…`): a named rate per country (ISO 3166-1 alpha-2) and optional state, in parts
 *   per million like `plans.tax_rate_ppm`, inclusive or exclusive, compound or not; archived with
 *   `active = false`, never deleted (issued invoices name them).
 * - the customer's tax location: `address_country`, `address_state`, `tax_exempt`. The customers
 *   migration (0028) adds the same columns with the same types; both use IF NOT EXISTS so either
 *   order works.
 * - plans: `setup_fee` (minor units of the plan's currency, charged on the first invoice only) and
 *   `tax_inclusive` (the price includes its taxes).
 * - coupons: `redeem_by`, `max_redemptions_per_customer`, `applies_to_products` (null: every product).
 * - invoice lines: `taxes` (each rate applied with its amount, JSON), `tax_inclusive`, and
 *   `add_on_id` on an add-on's line (a period's recurring charge, like the plan's line).
 * - add-ons (`addon_…`): a recurring price per unit in one currency, and the add-ons of a
 *   subscription (`sao_…`) with their quantity, billed on each period's invoice.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE tax_rates (
      id text PRIMARY KEY,
      display_name text NOT NULL,
      description text,
      country text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
      state text,
      percent_ppm integer NOT NULL CHECK (percent_ppm > 0 AND percent_ppm <= 1000000),
      inclusive boolean NOT NULL DEFAULT false,
      compound boolean NOT NULL DEFAULT false,
      active boolean NOT NULL DEFAULT true,
      metadata jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX tax_rates_country ON tax_rates (country) WHERE active;

    ALTER TABLE customers ADD COLUMN IF NOT EXISTS address_country text;
    ALTER TABLE customers ADD COLUMN IF NOT EXISTS address_state text;
    ALTER TABLE customers ADD COLUMN IF NOT EXISTS tax_exempt boolean NOT NULL DEFAULT false;

    ALTER TABLE plans ADD COLUMN setup_fee bigint CHECK (setup_fee > 0);
    ALTER TABLE plans ADD COLUMN tax_inclusive boolean NOT NULL DEFAULT false;

    ALTER TABLE coupons ADD COLUMN redeem_by timestamptz;
    ALTER TABLE coupons ADD COLUMN max_redemptions_per_customer integer
      CHECK (max_redemptions_per_customer > 0);
    ALTER TABLE coupons ADD COLUMN applies_to_products jsonb;
    CREATE INDEX coupon_redemptions_coupon_customer ON coupon_redemptions (coupon_id, customer_id);

    ALTER TABLE invoice_lines ADD COLUMN taxes jsonb NOT NULL DEFAULT '[]';
    ALTER TABLE invoice_lines ADD COLUMN tax_inclusive boolean NOT NULL DEFAULT false;

    CREATE TABLE add_ons (
      id text PRIMARY KEY,
      name text NOT NULL,
      description text,
      currency text NOT NULL,
      amount bigint NOT NULL CHECK (amount >= 0),
      active boolean NOT NULL DEFAULT true,
      metadata jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    ALTER TABLE invoice_lines ADD COLUMN add_on_id text REFERENCES add_ons (id);
    CREATE TABLE subscription_add_ons (
      id text PRIMARY KEY,
      subscription_id text NOT NULL REFERENCES subscriptions (id),
      add_on_id text NOT NULL REFERENCES add_ons (id),
      quantity integer NOT NULL CHECK (quantity > 0),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (subscription_id, add_on_id)
    );
  `.execute(db);
}

/** Drops what 0030 alone adds; the customers' address columns stay (0028 owns them too). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TABLE subscription_add_ons;
    ALTER TABLE invoice_lines DROP COLUMN add_on_id, DROP COLUMN tax_inclusive, DROP COLUMN taxes;
    DROP TABLE add_ons;
    DROP INDEX coupon_redemptions_coupon_customer;
    ALTER TABLE coupons
      DROP COLUMN applies_to_products,
      DROP COLUMN max_redemptions_per_customer,
      DROP COLUMN redeem_by;
    ALTER TABLE plans DROP COLUMN tax_inclusive, DROP COLUMN setup_fee;
    DROP TABLE tax_rates;
  `.execute(db);
}
