import { sql } from 'kysely';
import type { Db } from '../db/database.ts';

/**
 * The `Idempotency-Key` store (PRODUCT.md §6): one row per API key and idempotency key, holding the
 * hash of the request that first used it and, once that request ran, its answer. The rules that use
 * it (when to replay, 409, 422, take over) are the HTTP middleware's (http/idempotency.ts); the
 * worker's `inbox.sweep` deletes the expired rows (`pruneIdempotencyKeys`).
 */

/** A key as stored: who holds it, for which request, and the answer once the request ran. */
export interface StoredIdempotencyKey {
  /** sha256 (hex) of the method, path and body of the request that holds the key. */
  requestHash: string;
  /**
   * The stored answer, null while the request runs: its HTTP status and its JSON body, the text
   * first sent (byte for byte).
   */
  answer: { status: number; body: string } | null;
  /**
   * When the key was first used or taken over; while its request runs without an answer, when it
   * last showed it still runs (`keepIdempotencyKeyHeld`).
   */
  createdAt: Date;
}

/**
 * Claims `key` of `apiKeyId` for the request hashed `requestHash`, unless it is already stored.
 * @returns true when this call stored it (the request runs), false when it existed
 */
export async function claimIdempotencyKey(
  db: Db,
  apiKeyId: string,
  key: string,
  requestHash: string,
): Promise<boolean> {
  const claimed = await db
    .insertInto('idempotency_keys')
    .values({ api_key_id: apiKeyId, key, request_hash: requestHash })
    .onConflict((oc) => oc.columns(['api_key_id', 'key']).doNothing())
    .returning('key')
    .executeTakeFirst();
  return claimed !== undefined;
}

/**
 * The stored `key` of `apiKeyId`; undefined when it is not stored (freed since it was found claimed:
 * the request holding it was refused with a 4xx, or it expired and was pruned).
 */
export async function findIdempotencyKey(
  db: Db,
  apiKeyId: string,
  key: string,
): Promise<StoredIdempotencyKey | undefined> {
  const row = await db
    .selectFrom('idempotency_keys')
    // As text: the `json` column keeps the bytes first sent, which a parsed value would not (an
    // amount beyond 2^53 rounded to a double).
    .select([
      'request_hash',
      'response_status',
      sql<string | null>`response_body::text`.as('response_body'),
      'created_at',
    ])
    .where('api_key_id', '=', apiKeyId)
    .where('key', '=', key)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    requestHash: row.request_hash,
    answer:
      row.response_status === null || row.response_body === null
        ? null
        : { status: row.response_status, body: row.response_body },
    createdAt: row.created_at,
  };
}

/**
 * Takes over a key first used at or before `cutoff` (past its lifetime) for a new request: its hash is
 * replaced, its answer cleared and its first use set to now, only if it is still that old (of two
 * requests taking it over at once, one wins).
 * @returns true when this call took it over
 */
export async function takeOverExpiredIdempotencyKey(
  db: Db,
  apiKeyId: string,
  key: string,
  requestHash: string,
  cutoff: Date,
): Promise<boolean> {
  const taken = await db
    .updateTable('idempotency_keys')
    .set({ request_hash: requestHash, response_status: null, response_body: null, created_at: new Date() })
    .where('api_key_id', '=', apiKeyId)
    .where('key', '=', key)
    .where('created_at', '<=', cutoff)
    .executeTakeFirst();
  return taken.numUpdatedRows > 0n;
}

/**
 * Takes over a key whose request stored no answer and has not shown it still runs since `silentSince`
 * (its process died): its clock restarts for the request that takes it over, only if it is still
 * unanswered and that silent (of two requests taking it over at once, one wins).
 * @returns true when this call took it over
 */
export async function restartIdempotencyKey(
  db: Db,
  apiKeyId: string,
  key: string,
  silentSince: Date,
): Promise<boolean> {
  const taken = await db
    .updateTable('idempotency_keys')
    .set({ created_at: new Date() })
    .where('api_key_id', '=', apiKeyId)
    .where('key', '=', key)
    .where('response_status', 'is', null)
    .where('created_at', '<', silentSince)
    .executeTakeFirst();
  return taken.numUpdatedRows > 0n;
}

/**
 * Shows that the request holding `key` still runs (no answer stored yet): its clock is set to now,
 * so another request with the key keeps getting 409 rather than taking it over as abandoned
 * (`restartIdempotencyKey`).
 */
export async function keepIdempotencyKeyHeld(db: Db, apiKeyId: string, key: string): Promise<void> {
  await db
    .updateTable('idempotency_keys')
    .set({ created_at: new Date() })
    .where('api_key_id', '=', apiKeyId)
    .where('key', '=', key)
    .where('response_status', 'is', null)
    .execute();
}

/**
 * Stores the answer of the request holding `key`: its HTTP status and its body, JSON text, kept as
 * written (a replay sends the same bytes).
 */
export async function saveIdempotentAnswer(
  db: Db,
  apiKeyId: string,
  key: string,
  status: number,
  body: string,
): Promise<void> {
  await db
    .updateTable('idempotency_keys')
    .set({ response_status: status, response_body: body })
    .where('api_key_id', '=', apiKeyId)
    .where('key', '=', key)
    .execute();
}

/** Deletes `key` of `apiKeyId`: free again for the next request that sends it. */
export async function releaseIdempotencyKey(db: Db, apiKeyId: string, key: string): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('api_key_id', '=', apiKeyId).where('key', '=', key).execute();
}

/**
 * Deletes idempotency keys first used more than `ttlHours` before `now` (run by the worker's
 * `inbox.sweep`, every five minutes), at most `limit` a run.
 * @returns how many were deleted
 */
export async function pruneIdempotencyKeys(
  db: Db,
  ttlHours: number,
  now: Date,
  limit = 5000,
): Promise<number> {
  const cutoff = new Date(now.getTime() - ttlHours * 3_600_000);
  const result = await sql`
    DELETE FROM idempotency_keys WHERE ctid IN (
      SELECT ctid FROM idempotency_keys WHERE created_at < ${cutoff} LIMIT ${limit}
    )`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}
