import { type Kysely, sql } from 'kysely';

/**
 * PRODUCT §11's second option: an invoice rounded at finalization to what the gateway that will
 * charge it can take, with an explicit rounding line (billing/invoice-rounding.ts).
 * `invoices.rounding`: minor units ≥ 0 taken off the invoice after tax (total = subtotal + tax −
 * rounding), booked to the `rounding` account; `invoice_lines.type` may be `ROUNDING` (untaxed, its
 * amount −rounding, not in the subtotal). Existing invoices keep 0 and no such line.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE invoices ADD COLUMN rounding bigint NOT NULL DEFAULT 0 CHECK (rounding >= 0);
    ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_type_check;
    ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_type_check
      CHECK (type IN ('CHARGE', 'CREDIT', 'ROUNDING'));
  `.execute(db);
}

/** Drops what 0047 adds (rounding lines first). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DELETE FROM invoice_lines WHERE type = 'ROUNDING';
    ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_type_check;
    ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_type_check CHECK (type IN ('CHARGE', 'CREDIT'));
    ALTER TABLE invoices DROP COLUMN rounding;
  `.execute(db);
}
