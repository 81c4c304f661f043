import { type Kysely, sql } from 'kysely';

/**
 * `subscriptions.add_on_charge_at` and `add_on_charge_suspension`: a charge owed for the add-on units
 * set while the subscription was SUSPENDED, from `add_on_charge_at` (the moment a payment reactivated
 * it within the period invoiced before the suspension) to the end of what that period serves; the
 * add-on sets that count are those logged after the `subscription.suspended` activity whose
 * `sequence` is `add_on_charge_suspension` and before the reactivation that followed it
 * (billing/add-on-proration.ts `reactivationAddOnCharge`). The renewal (billing/renewal.ts
 * `renewLocked`: the sweep, or whatever renews the subscription up to now first) makes the charge and
 * clears both. Both null: nothing pending. Kept apart from `next_renewal_at`, which stays the
 * period's boundary for every reader. The partial index serves the sweep's due query. Existing
 * subscriptions keep null.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE subscriptions
      ADD COLUMN add_on_charge_at timestamptz,
      ADD COLUMN add_on_charge_suspension bigint,
      ADD CONSTRAINT subscriptions_add_on_charge_check
        CHECK ((add_on_charge_at IS NULL) = (add_on_charge_suspension IS NULL))
  `.execute(db);
  await sql`
    CREATE INDEX subscriptions_add_on_charge_at_idx ON subscriptions (add_on_charge_at)
      WHERE add_on_charge_at IS NOT NULL
  `.execute(db);
}

/** Drops what 0045 adds (a charge still pending is lost). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX subscriptions_add_on_charge_at_idx`.execute(db);
  await sql`
    ALTER TABLE subscriptions
      DROP CONSTRAINT subscriptions_add_on_charge_check,
      DROP COLUMN add_on_charge_suspension,
      DROP COLUMN add_on_charge_at
  `.execute(db);
}
