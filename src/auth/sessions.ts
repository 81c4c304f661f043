import { createHmac, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { constantTimeEqual } from '../crypto.ts';
import type { Database } from '../db/schema.ts';
import type { ApiKeyInfo, AuthenticatedKey } from './api-keys.ts';

/** Seconds an operators' console session lasts after its login (12 hours: one shift). */
export const SESSION_SECONDS = 12 * 3600;

/**
 * An operators' console session: the admin key it was opened with, its random id, and its CSRF
 * token (every console form carries it; every POST must send it back). A page of another origin can
 * neither read the token nor compute it (it is keyed by the admin key's stored hash).
 */
export interface AdminSession {
  key: ApiKeyInfo;
  /** 16 random bytes, base64url; `header` for a request that sent the key itself (Basic/Bearer). */
  id: string;
  formToken: string;
}

/**
 * The HMAC-SHA256 of `text` keyed by the admin key's stored hash: a secret only the server holds
 * (the key's secret is never stored; its hash is never shown), so no cookie or token can be made
 * without the database, and every one dies with its key's revocation or replacement.
 */
function sign(keyHash: string, text: string): string {
  return createHmac('sha256', keyHash).update(text).digest('base64url');
}

/** The stored hash of an unrevoked admin key by id, with its record; undefined otherwise. */
async function adminKeyById(db: Kysely<Database>, id: string) {
  const row = await db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || row.revoked_at || row.scope !== 'admin') return undefined;
  const { key_hash: keyHash, ...key } = row;
  return { key, keyHash };
}

/**
 * Opens a session for an admin key the caller authenticated (`authenticateWithHash`): the cookie
 * value `<key id>.<session id>.<expiry, Unix seconds>.<HMAC>`, valid `SESSION_SECONDS`.
 * @throws Error when the key is not an admin key
 */
export function openAdminSession({ key, keyHash }: AuthenticatedKey, now = new Date()): string {
  if (key.scope !== 'admin') throw new Error(`not an admin key: ${key.id}`);
  const id = randomBytes(16).toString('base64url');
  const expires = Math.floor(now.getTime() / 1000) + SESSION_SECONDS;
  const body = `${key.id}.${id}.${expires}`;
  return `${body}.${sign(keyHash, `session:${body}`)}`;
}

/**
 * The session a cookie value names, when its signature holds, it has not expired and its key is
 * still an unrevoked admin key; undefined otherwise (any malformed value included).
 */
export async function readAdminSession(
  db: Kysely<Database>,
  value: string,
  now = new Date(),
): Promise<AdminSession | undefined> {
  const parts = value.split('.');
  if (parts.length !== 4) return undefined;
  const [keyId = '', id = '', expires = '', signature = ''] = parts;
  if (!/^key_[0-9A-Za-z]{1,60}$/.test(keyId) || !/^\d{1,12}$/.test(expires)) return undefined;
  if (Number(expires) * 1000 <= now.getTime()) return undefined;
  const found = await adminKeyById(db, keyId);
  if (!found) return undefined;
  const body = `${keyId}.${id}.${expires}`;
  if (!constantTimeEqual(signature, sign(found.keyHash, `session:${body}`))) return undefined;
  return { key: found.key, id, formToken: sign(found.keyHash, `csrf:${id}`) };
}

/**
 * The session of a request that sent an admin key itself (Basic or Bearer, authenticated by the
 * caller with `authenticateWithHash`, so unrevoked): id `header`, so its form token is the same on
 * every request with that key.
 * @returns undefined when the key is not an admin key
 */
export function headerAdminSession({ key, keyHash }: AuthenticatedKey): AdminSession | undefined {
  return key.scope === 'admin' ? { key, id: 'header', formToken: sign(keyHash, 'csrf:header') } : undefined;
}
