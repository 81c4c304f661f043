import { type Kysely, sql } from 'kysely';

/**
 * Usage billed exactly once (PRODUCT.md §11):
 * - `subscriptions.usage_billed_until`: usage events before this moment have been billed (or were
 *   free in a trial); the next invoice of the subscription bills its usage from here on, and a usage
 *   event before it is refused. NULL means nothing billed yet (the subscription's `start_at`).
 *   Existing subscriptions start where the old rule left them: period n's invoice billed the usage
 *   of period n − 1, so the usage of the current period (or of the trial) is still unbilled.
 * - `plans.bill_trial_usage`: whether usage recorded during a trial is billed (on the first
 *   period's invoice); false (free, as before) by default.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE subscriptions ADD COLUMN usage_billed_until timestamptz;
    UPDATE subscriptions SET usage_billed_until = coalesce(current_period_start, start_at);
    ALTER TABLE plans ADD COLUMN bill_trial_usage boolean NOT NULL DEFAULT false;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE plans DROP COLUMN bill_trial_usage;
    ALTER TABLE subscriptions DROP COLUMN usage_billed_until;
  `.execute(db);
}
