import { type Kysely, sql } from 'kysely';

/**
 * `refunds.change_credit_taken_back`: what a succeeded refund of an invoice gave back, beyond what the
 * invoice's period kept, of the credit the period's prorated changes had given the customer, minor
 * units ≥ 0 (billing/proration.ts `changeCreditTakenBack`, set when its success is booked): taken
 * back from the customer's credit, neither sale given back nor an overpayment paid back. Stored so
 * each has one source (billing/credit-notes.ts `overpaymentGivenBack` no longer reads "amount less
 * note" as either, which counted a refund made before credit notes existed, migration 0015, as all
 * taken back). Existing refunds keep 0: none took change credit back before this column.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE refunds ADD COLUMN change_credit_taken_back bigint NOT NULL DEFAULT 0 CHECK (change_credit_taken_back >= 0 AND change_credit_taken_back <= amount)`.execute(
    db,
  );
}

/** Drops what 0046 adds. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE refunds DROP COLUMN change_credit_taken_back`.execute(db);
}
