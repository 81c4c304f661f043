import { type Kysely, sql } from 'kysely';

/**
 * Indexes for the inbox retention (PRODUCT.md §10), so the five-minute `inbox.sweep` reads only the
 * rows it may prune instead of scanning the whole inbox each time:
 * - `inbox_body_prunable`: finished rows that still hold their raw body, by arrival time. Once the
 *   body is dropped the row leaves the index, so the sweep finds the rows past the body retention
 *   without reading the months of rows whose body is already gone.
 * - `inbox_row_prunable`: rows that finished cleanly (processed or ignored), by arrival time.
 *
 * A webhook arrives `received`, which neither index holds: the ingest INSERT adds no index entry.
 * Rows enter them when the worker records the outcome (an update that already writes new index
 * entries, since it changes `status`).
 *
 * Built in the migration's transaction, which blocks inbox writes while it runs. On a large inbox,
 * create both indexes by hand with `CREATE INDEX CONCURRENTLY` (same names and definitions) before
 * deploying: the migration then keeps them (`IF NOT EXISTS`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE INDEX IF NOT EXISTS inbox_body_prunable ON inbox (received_at)
      WHERE body IS NOT NULL AND status IN ('processed', 'ignored', 'exception')
  `.execute(db);
  await sql`
    CREATE INDEX IF NOT EXISTS inbox_row_prunable ON inbox (received_at)
      WHERE status IN ('processed', 'ignored')
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS inbox_row_prunable`.execute(db);
  await sql`DROP INDEX IF EXISTS inbox_body_prunable`.execute(db);
}
