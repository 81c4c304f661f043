import { isDeepStrictEqual } from 'node:util';
import { sql } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import type { GatewayName } from '../config/gateways.ts';
import type { Db } from '../db/database.ts';
import { UNIQUE_VIOLATION } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { GatewayAccountMode, GatewayAccountRow } from '../db/schema.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { type Keyring, open, SecretKeyMissing, seal } from './cipher.ts';
import { type Credentials, GATEWAY_CREDENTIALS, last4 } from './credentials.ts';

/** A gateway account as stored, credentials left encrypted (`credentials_last4` shows what may be shown). */
export type GatewayAccount = Omit<GatewayAccountRow, 'credentials'>;

/** A gateway account with its credentials decrypted: for building its adapter only, never shown or logged. */
export interface OpenedAccount {
  account: GatewayAccount;
  credentials: Credentials;
}

/** A new account: credentials already checked against the gateway's schema (`GATEWAY_CREDENTIALS`). */
export interface NewGatewayAccount {
  gateway: GatewayName;
  name: string;
  mode: GatewayAccountMode;
  credentials: Credentials;
  /** The account's API base URL; absent: the gateway's `*_API_BASE`. */
  apiBase?: string;
}

/** A change: the credential fields given replace the stored ones; `apiBase` null goes back to the gateway's. */
export interface GatewayAccountChange {
  name?: string;
  credentials?: Credentials;
  apiBase?: string | null;
}

const SHOWN = [
  'id',
  'gateway',
  'name',
  'mode',
  'api_base',
  'credentials_key_id',
  'credentials_last4',
  'version',
  'disabled_at',
  'created_at',
  'updated_at',
] as const;

const NEXT_VERSION = sql<string>`nextval('gateway_accounts_version')`;

/** A Stripe key whose mode (`sk_live_`/`sk_test_`) is not the account's is refused: 422 on `credentials.secret_key`. */
function checkMode(gateway: GatewayName, mode: GatewayAccountMode, credentials: Credentials): void {
  const key = credentials.secret_key;
  if (gateway !== 'stripe' || typeof key !== 'string') return;
  const keyMode = /^[sr]k_live_/.test(key) ? 'live' : 'test';
  if (keyMode !== mode)
    throw new ValidationError('invalid request: credentials.secret_key', {
      'credentials.secret_key': `a ${keyMode} key in a ${mode} account`,
    });
}

/** The sealed credentials and what is shown of them, as columns. */
function credentialColumns(keys: Keyring, id: string, credentials: Credentials) {
  const sealed = seal(keys, JSON.stringify(credentials), id);
  return {
    credentials: sealed.data,
    credentials_key_id: sealed.keyId,
    credentials_last4: JSON.stringify(last4(credentials)),
  };
}

function decrypt(keys: Keyring, row: GatewayAccountRow): Credentials {
  return JSON.parse(
    open(keys, { keyId: row.credentials_key_id, data: row.credentials }, row.id),
  ) as Credentials;
}

const conflictOnName = (error: unknown, account: { gateway: string; name: string }): never => {
  if ((error as { code?: string }).code === UNIQUE_VIOLATION)
    throw new ConflictError(
      'gateway_account_name_taken',
      `${account.gateway} already has an account named ${JSON.stringify(account.name)}`,
    );
  throw error;
};

/**
 * The activity of a change to an account (`gateway_account.<verb>`), in the unit of work that makes
 * it, authored by its actor. `data` names fields, never holds a credential's value.
 */
function recordAccountActivity(
  work: UnitOfWork,
  id: string,
  verb: 'created' | 'updated' | 'disabled' | 'webhook_secret_rotated' | 'key_rotated',
  data: Record<string, unknown>,
): Promise<void> {
  return recordActivity(work, {
    resourceType: 'gateway_account',
    resourceId: id,
    action: `gateway_account.${verb}`,
    data,
  });
}

/** The names of the credential fields (`credentials.secret_key`) whose value differs between `from` and `to`. */
function changedCredentials(from: Credentials, to: Credentials): string[] {
  return [...new Set([...Object.keys(from), ...Object.keys(to)])]
    .filter((field) => !isDeepStrictEqual(from[field], to[field]))
    .sort()
    .map((field) => `credentials.${field}`);
}

/**
 * Stores a new gateway account (`gwa_…`), its credentials encrypted under BILLHOOK_SECRET_KEY.
 * @throws SecretKeyMissing (409 `secret_key_missing`) without BILLHOOK_SECRET_KEY
 * @throws ValidationError (422) for a Stripe key of the other mode
 * @throws ConflictError (409 `gateway_account_name_taken`) when the gateway has an account of that name
 */
export async function createGatewayAccount(
  db: Db,
  actor: Actor,
  keys: Keyring,
  input: NewGatewayAccount,
): Promise<GatewayAccount> {
  checkMode(input.gateway, input.mode, input.credentials);
  const id = newId('gwa');
  const columns = credentialColumns(keys, id, input.credentials);
  return inUnitOfWork(db, { actor }, async (work) => {
    const account = await work.trx
      .insertInto('gateway_accounts')
      .values({
        id,
        gateway: input.gateway,
        name: input.name,
        mode: input.mode,
        api_base: input.apiBase ?? null,
        ...columns,
      })
      .returning(SHOWN)
      .executeTakeFirstOrThrow()
      .catch((error: unknown) => conflictOnName(error, input));
    await recordAccountActivity(work, id, 'created', {
      gateway: account.gateway,
      name: account.name,
      mode: account.mode,
      api_base: account.api_base,
      fields: changedCredentials({}, input.credentials),
    });
    return account;
  });
}

/** Every gateway account, oldest first (credentials not decrypted): a handful per deployment, not paginated. */
export function listGatewayAccounts(db: Db): Promise<GatewayAccount[]> {
  return db.selectFrom('gateway_accounts').select(SHOWN).orderBy('id').execute();
}

/**
 * One gateway account (credentials not decrypted).
 * @throws NotFoundError (404 `gateway_account_not_found`)
 */
export async function getGatewayAccount(db: Db, id: string): Promise<GatewayAccount> {
  const row = await db.selectFrom('gateway_accounts').select(SHOWN).where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('gateway_account', id);
  return row;
}

/**
 * One gateway account with its credentials decrypted (to build its adapter), or undefined when none has that id.
 * @throws SecretKeyMissing or ConflictError `secret_key_unknown` when its key is not configured
 */
export async function openGatewayAccount(
  db: Db,
  keys: Keyring,
  id: string,
): Promise<OpenedAccount | undefined> {
  const row = await db.selectFrom('gateway_accounts').selectAll().where('id', '=', id).executeTakeFirst();
  return row && openAccount(keys, row);
}

/** Every gateway account as stored (credentials encrypted), for a process's cache of adapters. */
export function loadGatewayAccounts(db: Db): Promise<GatewayAccountRow[]> {
  return db.selectFrom('gateway_accounts').selectAll().execute();
}

/**
 * A stored account with its credentials decrypted.
 * @throws SecretKeyMissing or ConflictError `secret_key_unknown` when its key is not configured
 */
export function openAccount(keys: Keyring, row: GatewayAccountRow): OpenedAccount {
  const { credentials: _sealed, ...account } = row;
  return { account, credentials: decrypt(keys, row) };
}

/** What a change sets: new credentials (undefined keeps them), name, API base (null: the gateway's). */
interface AccountChange {
  credentials?: Credentials;
  name?: string;
  apiBase?: string | null;
}

/**
 * Changes an account in one unit of work (its row locked): `change(row, credentials)` returns the new
 * credentials (or undefined to keep them) and the other columns to set; the credentials are
 * re-encrypted under the current key and the version moves on. `record` writes the change's activity
 * in the same transaction, from the row before, the names of the fields whose value changed
 * (`name`, `api_base`, `credentials.<field>`) and the change.
 */
async function changeAccount(
  db: Db,
  actor: Actor,
  keys: Keyring,
  id: string,
  change: (row: GatewayAccountRow, credentials: Credentials) => AccountChange,
  record: (work: UnitOfWork, row: GatewayAccountRow, fields: string[], next: AccountChange) => Promise<void>,
): Promise<GatewayAccount> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const trx = work.trx;
    const row = await trx
      .selectFrom('gateway_accounts')
      .selectAll()
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirst();
    if (!row) throw new NotFoundError('gateway_account', id);
    const credentials = decrypt(keys, row);
    const next = change(row, credentials);
    if (next.credentials) checkMode(row.gateway, row.mode, next.credentials);
    const fields = [
      ...(next.name !== undefined && next.name !== row.name ? ['name'] : []),
      ...(next.apiBase !== undefined && next.apiBase !== row.api_base ? ['api_base'] : []),
      ...(next.credentials ? changedCredentials(credentials, next.credentials) : []),
    ];
    const account = await trx
      .updateTable('gateway_accounts')
      .set({
        ...(next.name === undefined ? {} : { name: next.name }),
        ...(next.apiBase === undefined ? {} : { api_base: next.apiBase }),
        ...(next.credentials ? credentialColumns(keys, id, next.credentials) : {}),
        version: NEXT_VERSION,
        updated_at: sql`now()`,
      })
      .where('id', '=', id)
      .returning(SHOWN)
      .executeTakeFirstOrThrow()
      .catch((error: unknown) =>
        conflictOnName(error, { gateway: row.gateway, name: next.name ?? row.name }),
      );
    await record(work, row, fields, next);
    return account;
  });
}

/**
 * Updates an account's name, API base and credentials (the fields given replace the stored ones),
 * recorded as a `gateway_account.updated` activity naming the fields whose value changed
 * (`fields: ['name', 'credentials.secret_key']`, never a value).
 * @throws NotFoundError, ValidationError (a Stripe key of the other mode), ConflictError (name taken,
 *   `secret_key_missing`)
 */
export function updateGatewayAccount(
  db: Db,
  actor: Actor,
  keys: Keyring,
  id: string,
  change: GatewayAccountChange,
): Promise<GatewayAccount> {
  return changeAccount(
    db,
    actor,
    keys,
    id,
    (_row, credentials) => ({
      name: change.name,
      apiBase: change.apiBase,
      credentials: change.credentials && { ...credentials, ...change.credentials },
    }),
    // An update that changes no value records nothing.
    async (work, _row, fields) => {
      if (fields.length > 0) await recordAccountActivity(work, id, 'updated', { fields });
    },
  );
}

/**
 * Rotates an account's webhook secret: `secret` verifies (and, for Stripe, is the first of the list);
 * with `keepPrevious` (Stripe only, whose endpoints accept two secrets while one is rolled) the
 * secret signing until now keeps verifying too, until the next rotation. A disabled account's secret
 * rotates too: its webhook route still verifies deliveries, so rotating is how a leaked or retired
 * secret is revoked there.
 * @throws ConflictError `webhook_secret_not_rotatable` for a gateway without a webhook secret (eWAY,
 *   SecurePay)
 */
export function rotateWebhookSecret(
  db: Db,
  actor: Actor,
  keys: Keyring,
  id: string,
  secret: string,
  keepPrevious: boolean,
): Promise<GatewayAccount> {
  const rotate = (row: GatewayAccountRow, credentials: Credentials) => {
    const spec = GATEWAY_CREDENTIALS[row.gateway].webhookSecret;
    if (!spec)
      throw new ConflictError('webhook_secret_not_rotatable', `${row.gateway} has no webhook secret`);
    const current = credentials[spec.field];
    const previous = keepPrevious && spec.list && Array.isArray(current) ? current.slice(0, 1) : [];
    const value = spec.list ? [secret, ...previous] : secret;
    const parsed = GATEWAY_CREDENTIALS[row.gateway].schema.safeParse({ [spec.field]: value });
    if (!parsed.success)
      throw new ValidationError('invalid request: secret', {
        secret: parsed.error.issues[0]?.message ?? 'invalid',
      });
    return { credentials: { ...credentials, [spec.field]: value } };
  };
  return changeAccount(db, actor, keys, id, rotate, (work, row, _fields, next) => {
    const field = GATEWAY_CREDENTIALS[row.gateway].webhookSecret?.field ?? '';
    const secrets = next.credentials?.[field];
    return recordAccountActivity(work, id, 'webhook_secret_rotated', {
      field: `credentials.${field}`,
      // Stripe: whether the secret signing until now still verifies (the list holds two).
      kept_previous: Array.isArray(secrets) && secrets.length > 1,
    });
  });
}

/**
 * Disables an account: from then on (within a second on every process) it takes no new charges,
 * refunds or voids (`clientForAccount`), while its webhook route still verifies and stores its
 * deliveries, so money already in flight there (a refund pending, a dispute, a chargeback) is still
 * booked; status checks and refund repeats still reach it. Recorded as a `gateway_account.disabled` activity;
 * disabling a disabled account changes nothing and records nothing.
 * @throws NotFoundError
 */
export async function disableGatewayAccount(db: Db, actor: Actor, id: string): Promise<GatewayAccount> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const enabled = await work.trx
      .updateTable('gateway_accounts')
      .set({ disabled_at: sql`now()`, version: NEXT_VERSION, updated_at: sql`now()` })
      .where('id', '=', id)
      .where('disabled_at', 'is', null)
      .returning(SHOWN)
      .executeTakeFirst();
    if (enabled) {
      await recordAccountActivity(work, id, 'disabled', {});
      return enabled;
    }
    return getGatewayAccount(work.trx, id);
  });
}

/**
 * Re-encrypts every account not yet under the current key (BILLHOOK_SECRET_KEY), reading each with
 * the key that encrypted it (the previous one, BILLHOOK_SECRET_KEY_PREVIOUS). Each account in its own
 * unit of work, with its `gateway_account.key_rotated` activity (`{from_key_id, to_key_id}`: the keys'
 * ids, fingerprints, never a key); running it again after an interruption finishes the rest.
 * @returns how many accounts were re-encrypted
 * @throws SecretKeyMissing, ConflictError `secret_key_unknown` for an account under neither key
 */
export async function rotateSecretKey(db: Db, actor: Actor, keys: Keyring): Promise<number> {
  if (!keys.current) throw new SecretKeyMissing();
  const rows = await db
    .selectFrom('gateway_accounts')
    .selectAll()
    .where('credentials_key_id', '<>', keys.current.id)
    .execute();
  let rotated = 0;
  for (const row of rows) {
    const sealed = seal(keys, JSON.stringify(decrypt(keys, row)), row.id);
    rotated += await inUnitOfWork(db, { actor }, async (work) => {
      const updated = await work.trx
        .updateTable('gateway_accounts')
        .set({ credentials: sealed.data, credentials_key_id: sealed.keyId })
        .where('id', '=', row.id)
        .where('credentials_key_id', '=', row.credentials_key_id)
        .executeTakeFirst();
      if (updated.numUpdatedRows === 0n) return 0;
      await recordAccountActivity(work, row.id, 'key_rotated', {
        from_key_id: row.credentials_key_id,
        to_key_id: sealed.keyId,
      });
      return 1;
    });
  }
  return rotated;
}

/**
 * A value that changes whenever any account is created or changed (the sum of their versions, each a
 * new value of a sequence at every change): cheap to read, and transactional, so a change becomes
 * visible together with the row.
 */
export async function gatewayAccountsVersion(db: Db): Promise<string> {
  const { rows } = await sql<{
    version: string;
  }>`SELECT coalesce(sum(version), 0)::text AS version FROM gateway_accounts`.execute(db);
  return rows[0]?.version ?? '0';
}
