import { type Kysely, sql } from 'kysely';

/**
 * Idempotency keys expire (`IDEMPOTENCY_KEY_TTL_HOURS`, 24 by default, Stripe's rule): the worker's
 * sweep deletes the rows first used before the cutoff, found by this index instead of a scan of a
 * day of POSTs.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX idempotency_keys_created_at;`.execute(db);
}
