import { type Kysely, sql } from 'kysely';

/**
 * What a subscription's invoices say beyond their lines (issue #28; Billby's subscription
 * `po_number` and `invoice_notes`, seed 001): each invoice the subscription makes (each period, its
 * usage, a proration) is created with them as its `po_number` and `notes`, the same limits as an
 * invoice's (0029).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE subscriptions
      ADD COLUMN po_number text CHECK (length(po_number) BETWEEN 1 AND 100),
      ADD COLUMN invoice_notes text CHECK (length(invoice_notes) BETWEEN 1 AND 1000)
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE subscriptions DROP COLUMN po_number, DROP COLUMN invoice_notes`.execute(db);
}
