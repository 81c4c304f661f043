import { type Kysely, sql } from 'kysely';

/**
 * Webhook bodies are stored as received, uncompressed, in the inbox row while the row fits a page
 * (toast_tuple_target 8160 bytes, PostgreSQL's maximum): PostgreSQL otherwise tries pglz on every
 * row above ~2 kB, which costs the database CPU on the ingest path for a few hundred bytes of disk
 * per event (a typical Stripe event is 1.5–3 kB of JSON). Larger bodies are still TOASTed as before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE inbox SET (toast_tuple_target = 8160)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE inbox RESET (toast_tuple_target)`.execute(db);
}
