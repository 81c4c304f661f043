import { type Kysely, sql } from 'kysely';

/**
 * `subscriptions.charged_basis`: what the invoices of the current period charged for the plan in
 * force, written by a prorated change (billing/proration.ts `ChargedBasis`, JSON: the period index,
 * the plan's full-period price, coupon discounts and tax rule as the change charged them, and what the
 * period's changes charged or credited). A later change credits the unused time from it, and a
 * cancellation's refund gives back from it, instead of repricing the plan, coupons and tax of today.
 * Null (and a basis of another period) means no prorated change in the current period: its invoice's
 * lines are the basis. Existing subscriptions keep null.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE subscriptions ADD COLUMN charged_basis jsonb`.execute(db);
}

/** Drops what 0042 adds. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE subscriptions DROP COLUMN charged_basis`.execute(db);
}
