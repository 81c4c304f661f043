import { type Kysely, sql } from 'kysely';

/** Payments received outside any gateway (bank transfer, cheque, cash), recorded against an invoice. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE offline_payments (
      id text PRIMARY KEY,
      invoice_id text NOT NULL REFERENCES invoices(id),
      method text NOT NULL CHECK (method IN ('BANK', 'CHECK', 'CASH', 'OTHER')),
      amount bigint NOT NULL CHECK (amount > 0),
      currency char(3) NOT NULL,
      reference text,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX offline_payments_invoice ON offline_payments (invoice_id);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE offline_payments`.execute(db);
}
