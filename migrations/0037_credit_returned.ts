import { type Kysely, sql } from 'kysely';

/**
 * A cancellation's refund gives back the customer credit that paid the period (issue #23's money
 * follow-up), besides the cash:
 * - `invoices.credit_returned`: of `credit_applied`, what was given back to the customer's credit by
 *   a credit note (0 … credit_applied, minor units). The cumulative tax share of an invoice's credit
 *   notes counts it with the cash refunded (billing/credit-notes.ts).
 * - `credit_notes.refund_id` may be null: a credit note that gives back customer credit, not a
 *   refund's money.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE invoices ADD COLUMN credit_returned bigint NOT NULL DEFAULT 0
      CONSTRAINT invoices_credit_returned CHECK (credit_returned >= 0 AND credit_returned <= credit_applied);
    ALTER TABLE credit_notes ALTER COLUMN refund_id DROP NOT NULL;
  `.execute(db);
}

/** Drops what 0037 adds; refuses (NOT NULL) while credit notes of returned credit exist. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE credit_notes ALTER COLUMN refund_id SET NOT NULL;
    ALTER TABLE invoices DROP COLUMN credit_returned;
  `.execute(db);
}
