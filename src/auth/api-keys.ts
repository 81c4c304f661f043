import { createHash, randomBytes, type ScryptOptions, scrypt } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { constantTimeEqual } from '../crypto.ts';
import { newId } from '../db/ids.ts';
import type { ApiKeyRow, ApiKeyScope, Database } from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';

/** What a caller sees of an API key: never its secret or hash. */
export type ApiKeyInfo = Omit<ApiKeyRow, 'key_hash'>;

/** A key billhook generated: `bh_` and 24 random bytes in base64url (192 bits). */
const GENERATED = /^bh_[A-Za-z0-9_-]{32}$/;

/**
 * Characters of a key stored in clear as its `prefix`: shown by `keys list`, and the lookup of the
 * scrypt rows (so an unknown key costs no KDF unless its first characters match a chosen key's). For
 * a chosen key they are the part the KDF does not protect; `BILLHOOK_ADMIN_KEY` has at least 24.
 */
const PREFIX_LENGTH = 7;

/** Advisory lock key serialising the creation of chosen keys. */
const CHOSEN_KEY_LOCK = 0x6b657973; // "keys"

/**
 * scrypt parameters for operator-chosen keys: N = 2^14, r = 8, p = 1 (16 MiB; tens of milliseconds
 * a check on an idle core, paid once per key and process thanks to `verified`), a 16-byte random
 * salt and a 32-byte result: Node's `crypto.scrypt` defaults and the interactive-login setting of
 * the scrypt paper (Percival 2009; the function is RFC 7914). Stored as `scrypt$N$r$p$salt$hash`
 * (base64url), so the parameters can be raised later without breaking stored keys.
 */
const SCRYPT = { N: 16_384, r: 8, p: 1, keyLength: 32, saltLength: 16 } as const;

/** Seconds `last_used_at` may lag behind a key's real last use: at most one write a minute per key. */
const LAST_USED_RESOLUTION_SECONDS = 60;

/**
 * SHA-256 of a key, hex: the stored hash of a key billhook generated. Such a key carries 192 random
 * bits, so there is no dictionary to run a stolen hash against and a slow KDF would only cost CPU on
 * every request; operator-chosen keys (`BILLHOOK_ADMIN_KEY`) are stored with scrypt instead.
 */
function fastHash(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

function scryptAsync(
  secret: string,
  salt: Buffer,
  keyLength: number,
  options: ScryptOptions,
): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, keyLength, options, (error, derived) => (error ? reject(error) : resolve(derived))),
  );
}

/** The salted scrypt hash of an operator-chosen key, as stored (`scrypt$N$r$p$salt$hash`). */
async function slowHash(secret: string): Promise<string> {
  const salt = randomBytes(SCRYPT.saltLength);
  const { N, r, p, keyLength } = SCRYPT;
  const derived = await scryptAsync(secret, salt, keyLength, { N, r, p });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${derived.toString('base64url')}`;
}

/** True when `secret` matches a stored `scrypt$…` hash (compared in constant time). */
async function verifySlowHash(secret: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const derived = await scryptAsync(secret, Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return constantTimeEqual(derived, expected);
}

/**
 * Operator-chosen keys this process has verified with scrypt: the SHA-256 of the secret → the row's
 * id and stored hash. Only in memory (a stolen database holds no fast hash of a chosen key); lets
 * every request after the first cost one lookup by id instead of a 50 ms scrypt.
 */
const verified = new Map<string, { id: string; keyHash: string }>();
const VERIFIED_MAX = 1000;

const INFO_COLUMNS = ['id', 'name', 'prefix', 'scope', 'created_at', 'last_used_at', 'revoked_at'] as const;

/**
 * Creates an API key and returns its secret once; only a hash is stored. A generated key (`bh_` and
 * 192 random bits) is stored as its SHA-256; a key the operator chose (`secret`, e.g.
 * `BILLHOOK_ADMIN_KEY`) as a salted scrypt hash (see SCRYPT), since a chosen key may be guessable
 * from a dictionary. Choosing a key that already exists returns that key (moving a SHA-256 hash
 * stored by an earlier version to scrypt).
 * @param scope `read` (GET only), `write` (also POST), `admin` (also the queue dashboard)
 * @param secret an operator-chosen key; generated when absent
 * @returns the key `bh_…` (shown once) and its record
 */
export async function createApiKey(
  db: Kysely<Database>,
  name: string,
  scope: ApiKeyScope,
  secret?: string,
): Promise<{ secret: string; key: ApiKeyInfo }> {
  if (secret === undefined) {
    const generated = `bh_${randomBytes(24).toString('base64url')}`;
    const key = await db
      .insertInto('api_keys')
      .values({
        id: newId('key'),
        name,
        scope,
        prefix: generated.slice(0, PREFIX_LENGTH),
        key_hash: fastHash(generated),
      })
      .returning(INFO_COLUMNS)
      .executeTakeFirstOrThrow();
    return { secret: generated, key };
  }
  // Salted hashes differ each time, so the unique key_hash no longer makes two processes starting
  // with the same BILLHOOK_ADMIN_KEY agree: they take turns instead.
  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${CHOSEN_KEY_LOCK})`.execute(trx);
    const existing = await findKey(trx, secret);
    if (existing) {
      const { key_hash: _hash, ...key } = existing;
      return { secret, key };
    }
    const keyHash = await slowHash(secret);
    const key = await trx
      .insertInto('api_keys')
      .values({
        id: newId('key'),
        name,
        scope,
        prefix: secret.slice(0, PREFIX_LENGTH),
        key_hash: keyHash,
      })
      .returning(INFO_COLUMNS)
      .executeTakeFirstOrThrow();
    remember(fastHash(secret), key.id, keyHash);
    return { secret, key };
  });
}

/** Every key, newest first, without secrets. */
export async function listApiKeys(db: Kysely<Database>): Promise<ApiKeyInfo[]> {
  return db.selectFrom('api_keys').select(INFO_COLUMNS).orderBy('id', 'desc').execute();
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
 * The key whose secret is `secret`, revoked or not, by each stored form: a generated key by its
 * SHA-256 (one indexed lookup); a chosen key from this process's cache of verified keys (a lookup by
 * id), else by scrypt over the rows with the same `prefix` (none for most unknown secrets; skipped
 * when `slow` is false). A SHA-256 row of a secret that is not of the generated form (stored by an
 * earlier version) is moved to scrypt.
 */
async function findKey(db: Kysely<Database>, secret: string, slow = true): Promise<ApiKeyRow | undefined> {
  const fast = fastHash(secret);
  const cached = verified.get(fast);
  if (cached) {
    const row = await db.selectFrom('api_keys').selectAll().where('id', '=', cached.id).executeTakeFirst();
    if (row?.key_hash === cached.keyHash) return row;
    verified.delete(fast);
  }
  const byFastHash = await db
    .selectFrom('api_keys')
    .selectAll()
    .where('key_hash', '=', fast)
    .executeTakeFirst();
  if (byFastHash) {
    // The lookup is by hash; compare again in constant time so no timing difference leaks a prefix.
    if (!constantTimeEqual(byFastHash.key_hash, fast)) return undefined;
    if (GENERATED.test(secret)) return byFastHash;
    const keyHash = await slowHash(secret);
    await db.updateTable('api_keys').set({ key_hash: keyHash }).where('id', '=', byFastHash.id).execute();
    remember(fast, byFastHash.id, keyHash);
    return { ...byFastHash, key_hash: keyHash };
  }
  if (!slow) return undefined;
  const candidates = await db
    .selectFrom('api_keys')
    .selectAll()
    .where('prefix', '=', secret.slice(0, PREFIX_LENGTH))
    .where('key_hash', 'like', 'scrypt$%')
    .execute();
  for (const row of candidates) {
    if (await verifySlowHash(secret, row.key_hash)) {
      remember(fast, row.id, row.key_hash);
      return row;
    }
  }
  return undefined;
}

function remember(fast: string, id: string, keyHash: string): void {
  if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
  verified.set(fast, { id, keyHash });
}

/** A key found by its secret: its record, and its stored hash (what the console signs sessions with). */
export interface AuthenticatedKey {
  key: ApiKeyInfo;
  keyHash: string;
}

/**
 * Looks up an unrevoked key by its secret and notes its use: `last_used_at` is written when it is
 * older than a minute (LAST_USED_RESOLUTION_SECONDS), so a busy key costs one write a minute, not
 * one per request.
 * @param options.slow false: no scrypt check (for an address over its failed-authentication limit,
 *   so its guesses cost no KDF): a chosen key not yet verified by this process is then not found
 * @returns the key's record, or undefined for an unknown or revoked key
 */
export async function authenticate(
  db: Kysely<Database>,
  secret: string,
  options: { slow?: boolean } = {},
): Promise<ApiKeyInfo | undefined> {
  return (await authenticateWithHash(db, secret, options))?.key;
}

/** `authenticate`, with the key's stored hash (for the console's sessions, auth/sessions.ts). */
export async function authenticateWithHash(
  db: Kysely<Database>,
  secret: string,
  options: { slow?: boolean } = {},
): Promise<AuthenticatedKey | undefined> {
  const row = await findKey(db, secret, options.slow ?? true);
  if (!row || row.revoked_at) return undefined;
  const { key_hash: keyHash, ...info } = row;
  const now = new Date();
  const stale = new Date(now.getTime() - LAST_USED_RESOLUTION_SECONDS * 1000);
  if (!info.last_used_at || info.last_used_at <= stale) {
    // Conditional, so web processes sharing the key still write about once a minute between them.
    await db
      .updateTable('api_keys')
      .set({ last_used_at: now })
      .where('id', '=', info.id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', stale)]))
      .execute();
    info.last_used_at = now;
  }
  return { key: info, keyHash };
}
