import { type Kysely, sql } from 'kysely';

/**
 * Collection (scheduled charges and dunning): which payment attempts the scheduler made, whether the
 * dunning step has counted an automatic attempt's failure yet, and when an invoice's dunning started
 * (the anchor of the retry days).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE transactions
      ADD COLUMN automatic boolean NOT NULL DEFAULT false,
      ADD COLUMN dunning_counted_at timestamptz;
    -- Failed automatic attempts the dunning step has not counted yet (normally none or a few).
    CREATE INDEX transactions_failed_uncounted ON transactions (invoice_id)
      WHERE automatic AND status = 'failed' AND dunning_counted_at IS NULL;
    ALTER TABLE invoices ADD COLUMN dunning_started_at timestamptz;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE invoices DROP COLUMN dunning_started_at;
    DROP INDEX transactions_failed_uncounted;
    ALTER TABLE transactions DROP COLUMN automatic, DROP COLUMN dunning_counted_at;
  `.execute(db);
}
