import { type Kysely, sql } from 'kysely';

/**
 * PRODUCT §11: a credit note gives back its share of what finalization rounded off the invoice
 * (billing/credit-notes.ts), so a refund of everything an invoice asked undoes the rounding too.
 * `credit_notes.rounding`: minor units ≥ 0 of the invoice's `rounding` the note gives back, credited
 * to the `rounding` account by its refund's or credit return's entry; total = subtotal + tax −
 * rounding, as on the invoice (0015's `total = subtotal + tax`, `credit_notes_check`, widened).
 * Existing notes keep 0 (what they booked).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE credit_notes ADD COLUMN rounding bigint NOT NULL DEFAULT 0 CHECK (rounding >= 0);
    ALTER TABLE credit_notes DROP CONSTRAINT credit_notes_check;
    ALTER TABLE credit_notes ADD CONSTRAINT credit_notes_check
      CHECK (total > 0 AND total = subtotal + tax - rounding);
  `.execute(db);
}

/** Drops what 0054 adds (notes that gave back rounding would break 0015's check: refused then). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE credit_notes DROP CONSTRAINT credit_notes_check;
    ALTER TABLE credit_notes ADD CONSTRAINT credit_notes_check CHECK (total > 0 AND total = subtotal + tax);
    ALTER TABLE credit_notes DROP COLUMN rounding;
  `.execute(db);
}
