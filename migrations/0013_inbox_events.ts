import { type Kysely, sql } from 'kysely';

/**
 * The inbox keeps each webhook's normalised events (`events`, PRODUCT.md §10): written when the row
 * is processed, kept when the retention drops the raw body, so what an old event meant stays
 * readable. Rows processed before this migration have none (their body is still there until the
 * retention drops it).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE inbox ADD COLUMN events jsonb`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE inbox DROP COLUMN events`.execute(db);
}
