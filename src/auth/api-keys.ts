import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import { newId } from '../db/ids.ts';
import type { ApiKeyRow, ApiKeyScope, Database } from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';

/** What a caller sees of an API key: never its secret or hash. */
export type ApiKeyInfo = Omit<ApiKeyRow, 'key_hash'>;

/** SHA-256 of a key, hex. Keys carry 192 random bits, so a fast hash is enough (no dictionary to attack). */
function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/**
 * Creates an API key and returns its secret once; only its hash is stored.
 * @param scope `read` (GET only), `write` (also POST), `admin` (also the queue dashboard)
 * @returns the key `bh_…` (shown once) and its record
 */
export async function createApiKey(
  db: Kysely<Database>,
  name: string,
  scope: ApiKeyScope,
  secret = `bh_${randomBytes(24).toString('base64url')}`,
): Promise<{ secret: string; key: ApiKeyInfo }> {
  const row = await db
    .insertInto('api_keys')
    .values({ id: newId('key'), name, scope, prefix: secret.slice(0, 7), key_hash: hashKey(secret) })
    .onConflict((oc) => oc.column('key_hash').doNothing())
    .returning(['id', 'name', 'prefix', 'scope', 'created_at', 'last_used_at', 'revoked_at'])
    .executeTakeFirst();
  if (row) return { secret, key: row };
  const existing = await db
    .selectFrom('api_keys')
    .select(['id', 'name', 'prefix', 'scope', 'created_at', 'last_used_at', 'revoked_at'])
    .where('key_hash', '=', hashKey(secret))
    .executeTakeFirstOrThrow();
  return { secret, key: existing };
}

/** Every key, newest first, without secrets. */
export async function listApiKeys(db: Kysely<Database>): Promise<ApiKeyInfo[]> {
  return db
    .selectFrom('api_keys')
    .select(['id', 'name', 'prefix', 'scope', 'created_at', 'last_used_at', 'revoked_at'])
    .orderBy('id', 'desc')
    .execute();
}

/**
 * Revokes a key by id; revoked keys are refused at once.
 * @throws NotFoundError when there is no such key
 */
export async function revokeApiKey(db: Kysely<Database>, id: string): Promise<void> {
  const result = await db
    .updateTable('api_keys')
    .set({ revoked_at: new Date() })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (result.numUpdatedRows === 0n) throw new NotFoundError('api_key', id);
}

/** True when at least one key exists (revoked or not): first start creates one otherwise. */
export async function anyApiKey(db: Kysely<Database>): Promise<boolean> {
  return (await db.selectFrom('api_keys').select('id').limit(1).executeTakeFirst()) !== undefined;
}

/**
 * Looks up an unrevoked key by its secret.
 * @returns the key's record, or undefined for an unknown or revoked key
 */
export async function authenticate(db: Kysely<Database>, secret: string): Promise<ApiKeyInfo | undefined> {
  const hash = hashKey(secret);
  const row = await db.selectFrom('api_keys').selectAll().where('key_hash', '=', hash).executeTakeFirst();
  if (!row || row.revoked_at) return undefined;
  // The lookup is by hash; compare again in constant time so no timing difference leaks a prefix.
  if (!timingSafeEqual(Buffer.from(row.key_hash), Buffer.from(hash))) return undefined;
  const { key_hash: _hash, ...info } = row;
  return info;
}
