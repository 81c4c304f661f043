import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayAccount } from '../../src/accounts/accounts.ts';
import { AccountAdapters } from '../../src/accounts/adapters.ts';
import { keyring } from '../../src/accounts/cipher.ts';
import { loadConfig } from '../../src/config/env.ts';
import { createDb, type Db } from '../../src/db/database.ts';
import { createAdapter } from '../../src/gateways/registry.ts';
import { createTestDatabase } from '../support/database.ts';

/**
 * `AccountAdapters` on a pool of ONE connection: after the first load, a lookup never waits for a
 * connection (lookups run inside units of work, which hold one), even with a background check
 * queued for it, and a change made elsewhere is seen by the next check.
 */
describe('AccountAdapters', () => {
  let db: Db;
  const keys = keyring(randomBytes(32), undefined);
  beforeAll(async () => {
    db = createDb(await createTestDatabase(), 1);
  });
  afterAll(() => db?.destroy());

  it('answers from memory while the only connection is held, and sees a new account once it is free', async () => {
    const accounts = new AccountAdapters(
      db,
      keys,
      loadConfig({}),
      (gateway, config) => createAdapter(gateway, config),
      1,
    );
    await accounts.refresh();
    accounts.start();
    const created = await createGatewayAccount(db, 'system', keys, {
      gateway: 'stripe',
      name: 'held pool',
      mode: 'test',
      credentials: { secret_key: 'sk_test_held_pool_0001', webhook_secrets: ['whsec_held_pool_0001'] },
    });
    // Inside a transaction holding the pool's one connection, past the check interval (1 ms), so a
    // background check waits for the connection: the lookup answers from the rows it has (the
    // account is not among them yet) instead of waiting too.
    const inside = await db.transaction().execute(async (trx) => {
      await trx.selectFrom('gateway_accounts').select('id').execute();
      await new Promise((resolve) => setTimeout(resolve, 5));
      return accounts.adapterOf('stripe', created.id);
    });
    expect(inside).toBeUndefined();
    // Once the connection is free, a check finds the new account.
    await accounts.refresh();
    const adapter = await accounts.adapterOf('stripe', created.id);
    accounts.stop();
    expect(adapter?.name).toBe('stripe');
  });
});
