import { type Kysely, sql } from 'kysely';

/**
 * Idempotency keys of API POSTs (PRODUCT.md §6): per API key, the request's fingerprint and the
 * stored answer, so a repeated request gets the same answer and a different one with the same key
 * is refused.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE idempotency_keys (
      api_key_id text NOT NULL REFERENCES api_keys(id),
      key text NOT NULL,
      request_hash text NOT NULL,
      response_status integer,
      response_body jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (api_key_id, key)
    );
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE idempotency_keys`.execute(db);
}
