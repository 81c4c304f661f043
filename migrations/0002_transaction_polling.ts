import { type Kysely, sql } from 'kysely';

/**
 * Polling of charges whose outcome is pending or unknown (PRODUCT.md §4): how many status checks
 * were made; the next is due at `created_at` + the schedule's step for that count. A charge still
 * open after the last check gets one reconciliation exception.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE transactions ADD COLUMN poll_attempts integer NOT NULL DEFAULT 0;
    CREATE INDEX transactions_unsettled ON transactions (created_at) WHERE status IN ('pending', 'unknown');
    CREATE UNIQUE INDEX reconciliation_exceptions_once_per_transaction
      ON reconciliation_exceptions (transaction_id, kind) WHERE inbox_id IS NULL;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP INDEX reconciliation_exceptions_once_per_transaction;
    DROP INDEX transactions_unsettled;
    ALTER TABLE transactions DROP COLUMN poll_attempts;
  `.execute(db);
}
