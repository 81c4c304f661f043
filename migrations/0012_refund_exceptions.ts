import { type Kysely, sql } from 'kysely';

/**
 * Reconciliation exceptions raised without an event were kept once per (transaction, kind), so a
 * second refund left unknown on the same charge (two partial refunds), or a refund left unknown on a
 * charge whose own outcome had been unknown, raised nothing and stayed unknown unseen. Such an
 * exception now names its refund (`refund_id`, filled from `details.refund` for the existing ones)
 * and is kept once per (transaction, kind, refund): once per refund, and once per charge as before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE reconciliation_exceptions ADD COLUMN refund_id text REFERENCES refunds(id);
    UPDATE reconciliation_exceptions SET refund_id = details->>'refund'
      WHERE inbox_id IS NULL AND details ? 'refund'
        AND EXISTS (SELECT 1 FROM refunds WHERE refunds.id = details->>'refund');
    DROP INDEX reconciliation_exceptions_once_per_transaction;
    CREATE UNIQUE INDEX reconciliation_exceptions_once_per_transaction
      ON reconciliation_exceptions (transaction_id, kind, refund_id) NULLS NOT DISTINCT
      WHERE inbox_id IS NULL;
  `.execute(db);
}

/** Back to once per (transaction, kind): fails while a transaction has several such exceptions. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP INDEX reconciliation_exceptions_once_per_transaction;
    CREATE UNIQUE INDEX reconciliation_exceptions_once_per_transaction
      ON reconciliation_exceptions (transaction_id, kind) WHERE inbox_id IS NULL;
    ALTER TABLE reconciliation_exceptions DROP COLUMN refund_id;
  `.execute(db);
}
