import { type Kysely, sql } from 'kysely';

/**
 * `invoices.proration_credited`: what prorated changes of the period credited to this invoice while
 * it was still owed (billing/proration.ts `creditOwedPeriod`), minor units ≥ 0: the credit side of a
 * downgrade lowers what the customer still owes on the OPEN period invoice first, as Stripe's credit
 * note on an open invoice lowers its `amount_due`; only what was paid beyond the lowered total becomes
 * customer credit. `amount_due` = total − credit_applied − proration_credited − amount_paid. A void
 * gives it back to revenue and tax payable, not to the customer. Existing invoices keep 0 (their
 * changes' credit went to the customer's credit). `invoices.proration_tax_credited`: of
 * `proration_credited`, the tax (minor units, the sum of the credits' tax shares, each at its change's
 * own ratio; may be below 0): a credit note of the invoice works its tax over what the invoice still
 * asks, (tax − proration_tax_credited) over (total − proration_credited) (billing/credit-notes.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE invoices ADD COLUMN proration_credited bigint NOT NULL DEFAULT 0 CHECK (proration_credited >= 0)`.execute(
    db,
  );
  await sql`ALTER TABLE invoices ADD COLUMN proration_tax_credited bigint NOT NULL DEFAULT 0`.execute(db);
}

/** Drops what 0043 adds. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE invoices DROP COLUMN proration_tax_credited`.execute(db);
  await sql`ALTER TABLE invoices DROP COLUMN proration_credited`.execute(db);
}
