import { type Kysely, sql } from 'kysely';

/**
 * Billing core (PRODUCT §5): products and plans with price models, subscriptions, coupons and their
 * redemptions, taxes and period data on invoice lines, scheduled charges and dunning on invoices,
 * usage events and usage limits, and the append-only activities log.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE products (
      id text PRIMARY KEY,
      name text NOT NULL,
      description text,
      external_id text UNIQUE,
      active boolean NOT NULL DEFAULT true,
      metadata jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    -- price: the recurring price model (pricing.ts PriceModelSchema, amounts as decimal strings),
    -- charged per period on the subscription's quantity. metered: [{code, aggregation, price}]
    -- prices on usage events of metric code, aggregated per period (SUM, MAX or COUNT).
    CREATE TABLE plans (
      id text PRIMARY KEY,
      product_id text NOT NULL REFERENCES products(id),
      name text NOT NULL,
      currency char(3) NOT NULL,
      interval text NOT NULL CHECK (interval IN ('DAY', 'WEEK', 'MONTH', 'YEAR')),
      interval_count integer NOT NULL DEFAULT 1 CHECK (interval_count BETWEEN 1 AND 366),
      price jsonb NOT NULL,
      metered jsonb NOT NULL DEFAULT '[]',
      trial_days integer NOT NULL DEFAULT 0 CHECK (trial_days BETWEEN 0 AND 730),
      tax_rate_ppm integer NOT NULL DEFAULT 0 CHECK (tax_rate_ppm BETWEEN 0 AND 1000000),
      active boolean NOT NULL DEFAULT true,
      metadata jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX plans_product ON plans (product_id);

    -- Periods are computed from billing_anchor (period n starts at anchor + n intervals, clamped to
    -- the month's last day), so Jan 31 → Feb 28/29 → Mar 31 never drifts. next_renewal_at is when the
    -- next period's invoice is due (NULL once nothing more is billed).
    CREATE TABLE subscriptions (
      id text PRIMARY KEY,
      customer_id text NOT NULL REFERENCES customers(id),
      plan_id text NOT NULL REFERENCES plans(id),
      payment_method_id text REFERENCES payment_methods(id),
      status text NOT NULL CHECK (status IN ('IN_TRIAL', 'ACTIVE', 'PAST_DUE', 'SUSPENDED', 'CANCELLED')),
      quantity integer NOT NULL DEFAULT 1 CHECK (quantity >= 0),
      amount_override bigint CHECK (amount_override >= 0),
      billing_anchor timestamptz NOT NULL,
      start_at timestamptz NOT NULL,
      trial_end_at timestamptz,
      current_period_index integer,
      current_period_start timestamptz,
      current_period_end timestamptz,
      next_renewal_at timestamptz,
      cancel_at_period_end boolean NOT NULL DEFAULT false,
      cancelled_at timestamptz,
      suspended_at timestamptz,
      ended_at timestamptz,
      metadata jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX subscriptions_customer ON subscriptions (customer_id);
    CREATE INDEX subscriptions_due ON subscriptions (next_renewal_at)
      WHERE status IN ('IN_TRIAL', 'ACTIVE', 'PAST_DUE');

    -- Rates are integers in parts per million (1% = 10000 ppm, so 8.875% = 88750): never a float.
    -- amount_off: minor units of currency.
    CREATE TABLE coupons (
      id text PRIMARY KEY,
      code text NOT NULL UNIQUE,
      name text,
      percent_off_ppm integer CHECK (percent_off_ppm BETWEEN 1 AND 1000000),
      amount_off bigint CHECK (amount_off > 0),
      currency char(3),
      duration text NOT NULL CHECK (duration IN ('ONCE', 'REPEATING', 'FOREVER')),
      duration_in_periods integer CHECK (duration_in_periods > 0),
      max_redemptions integer CHECK (max_redemptions > 0),
      times_redeemed integer NOT NULL DEFAULT 0,
      active boolean NOT NULL DEFAULT true,
      metadata jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((percent_off_ppm IS NULL) <> (amount_off IS NULL)),
      CHECK ((amount_off IS NULL) = (currency IS NULL)),
      CHECK ((duration = 'REPEATING') = (duration_in_periods IS NOT NULL))
    );

    CREATE TABLE coupon_redemptions (
      id text PRIMARY KEY,
      coupon_id text NOT NULL REFERENCES coupons(id),
      subscription_id text NOT NULL REFERENCES subscriptions(id),
      customer_id text NOT NULL REFERENCES customers(id),
      periods_applied integer NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (coupon_id, subscription_id)
    );
    CREATE INDEX coupon_redemptions_subscription ON coupon_redemptions (subscription_id);

    ALTER TABLE invoices
      ADD COLUMN subscription_id text REFERENCES subscriptions(id),
      ADD COLUMN period_index integer,
      ADD COLUMN period_start timestamptz,
      ADD COLUMN period_end timestamptz,
      ADD COLUMN billing_reason text NOT NULL DEFAULT 'manual'
        CHECK (billing_reason IN ('manual', 'subscription_create', 'subscription_cycle', 'subscription_update')),
      ADD COLUMN subtotal bigint NOT NULL DEFAULT 0,
      ADD COLUMN tax bigint NOT NULL DEFAULT 0,
      ADD COLUMN charge_at timestamptz,
      ADD COLUMN payment_attempts integer NOT NULL DEFAULT 0,
      ADD COLUMN uncollectible_at timestamptz,
      ADD COLUMN voided_at timestamptz;
    UPDATE invoices SET subtotal = total;
    -- Exactly one invoice per subscription period, whatever the number of workers or restarts.
    CREATE UNIQUE INDEX invoices_one_per_period ON invoices (subscription_id, period_index)
      WHERE subscription_id IS NOT NULL AND period_index IS NOT NULL;
    CREATE INDEX invoices_subscription ON invoices (subscription_id);
    CREATE INDEX invoices_charge_due ON invoices (charge_at) WHERE status = 'OPEN' AND charge_at IS NOT NULL;

    ALTER TABLE invoice_lines
      ALTER COLUMN unit_amount DROP NOT NULL,
      ADD COLUMN tax_rate_ppm integer NOT NULL DEFAULT 0 CHECK (tax_rate_ppm BETWEEN 0 AND 1000000),
      ADD COLUMN tax_amount bigint NOT NULL DEFAULT 0,
      ADD COLUMN plan_id text REFERENCES plans(id),
      ADD COLUMN metric_code text,
      ADD COLUMN coupon_id text REFERENCES coupons(id),
      ADD COLUMN period_start timestamptz,
      ADD COLUMN period_end timestamptz;

    -- Idempotent on event_id. value: whole units of the metric.
    CREATE TABLE usage_events (
      id text PRIMARY KEY,
      event_id text NOT NULL UNIQUE,
      subscription_id text NOT NULL REFERENCES subscriptions(id),
      customer_id text NOT NULL REFERENCES customers(id),
      code text NOT NULL,
      value bigint NOT NULL CHECK (value >= 0),
      properties jsonb NOT NULL DEFAULT '{}',
      occurred_at timestamptz NOT NULL DEFAULT now(),
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX usage_events_period ON usage_events (subscription_id, code, occurred_at);

    -- A limit on a customer's estimated usage cost for the current period (minor units of currency).
    CREATE TABLE usage_limits (
      id text PRIMARY KEY,
      customer_id text NOT NULL REFERENCES customers(id),
      amount bigint NOT NULL CHECK (amount > 0),
      currency char(3) NOT NULL,
      action text NOT NULL CHECK (action IN ('WARN', 'SUSPEND')),
      last_triggered_period_start timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (customer_id, currency, action)
    );

    -- The audit log: one row per state change, never updated or deleted, ordered by sequence.
    CREATE TABLE activities (
      id text PRIMARY KEY,
      sequence bigserial NOT NULL UNIQUE,
      resource_type text NOT NULL,
      resource_id text NOT NULL,
      action text NOT NULL,
      customer_id text,
      actor text NOT NULL,
      data jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX activities_resource ON activities (resource_id, sequence);
    CREATE INDEX activities_customer ON activities (customer_id, sequence);
    CREATE FUNCTION activities_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'activities are append-only';
    END $$;
    CREATE TRIGGER activities_no_update BEFORE UPDATE OR DELETE ON activities
      FOR EACH ROW EXECUTE FUNCTION activities_append_only();
    CREATE TRIGGER activities_no_truncate BEFORE TRUNCATE ON activities
      FOR EACH STATEMENT EXECUTE FUNCTION activities_append_only();
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TABLE activities;
    DROP FUNCTION activities_append_only();
    DROP TABLE usage_limits;
    DROP TABLE usage_events;
    ALTER TABLE invoice_lines
      DROP COLUMN tax_rate_ppm, DROP COLUMN tax_amount, DROP COLUMN plan_id, DROP COLUMN metric_code,
      DROP COLUMN coupon_id, DROP COLUMN period_start, DROP COLUMN period_end;
    ALTER TABLE invoices
      DROP COLUMN subscription_id, DROP COLUMN period_index, DROP COLUMN period_start,
      DROP COLUMN period_end, DROP COLUMN billing_reason, DROP COLUMN subtotal, DROP COLUMN tax,
      DROP COLUMN charge_at, DROP COLUMN payment_attempts, DROP COLUMN uncollectible_at,
      DROP COLUMN voided_at;
    DROP TABLE coupon_redemptions;
    DROP TABLE coupons;
    DROP TABLE subscriptions;
    DROP TABLE plans;
    DROP TABLE products;
  `.execute(db);
}
