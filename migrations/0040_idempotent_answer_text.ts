import { type Kysely, sql } from 'kysely';

/**
 * `idempotency_keys.response_body` becomes `json`, which keeps the stored answer's text as written,
 * where `jsonb` reorders its keys and respaces it: a replay (http/idempotency.ts) reads it back as
 * text and sends the same bytes as the first answer, every digit of an amount beyond 2^53 included
 * (read as a parsed JSON value, such an amount came back rounded to a double). A reader that still
 * takes the column as a parsed value (node-pg parses `json` as it does `jsonb`) gets what it got.
 * Stored answers keep their `jsonb` text.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE idempotency_keys ALTER COLUMN response_body TYPE json USING response_body::json`.execute(
    db,
  );
}

/** Undoes what 0040 changes: the column is `jsonb` again. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE idempotency_keys ALTER COLUMN response_body TYPE jsonb USING response_body::jsonb`.execute(
    db,
  );
}
