import { type Kysely, sql } from 'kysely';

/**
 * A credit note gives back its share of its invoice's tax, signed like that tax: an invoice whose
 * credits carry more tax than its charges (a plan change from a taxed plan to an untaxed one, or a
 * taxed CREDIT line) has a negative tax, and a refund of it gives back a negative share
 * (billing/credit-notes.ts). `credit_notes.tax` may therefore be negative; `subtotal >= 0` and
 * `total = subtotal + tax` still hold.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE credit_notes DROP CONSTRAINT credit_notes_tax_check`.execute(db);
}

/** Restores the check; refuses while a credit note with a negative tax exists. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE credit_notes ADD CONSTRAINT credit_notes_tax_check CHECK (tax >= 0)`.execute(db);
}
