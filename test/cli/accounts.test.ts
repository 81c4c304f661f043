import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGatewayAccount } from '../../src/accounts/accounts.ts';
import { keyring } from '../../src/accounts/cipher.ts';
import { createDb, type Db } from '../../src/db/database.ts';
import { cli } from '../support/cli.ts';
import { createTestDatabase } from '../support/database.ts';

const OLD_KEY = randomBytes(32);
const NEW_KEY = randomBytes(32);
const STRIPE_KEY = 'sk_test_cli_account_key_1234';
const WEBHOOK_SECRET = 'whsec_cli_account_secret_5678';
const SIGNATURE_KEY = 'ABCDEF0123456789ABCDEF0123456789';

/** `billhook accounts …` (PRODUCT.md §12), and a key rotation that leaves every credential readable. */
describe('billhook accounts', { timeout: 120_000 }, () => {
  let env: Record<string, string>;
  let db: Db;
  beforeAll(async () => {
    const url = await createTestDatabase();
    env = { DATABASE_URL: url, LOG_LEVEL: 'silent', BILLHOOK_SECRET_KEY: OLD_KEY.toString('base64') };
    db = createDb(url, 2);
  });
  afterAll(() => db?.destroy());

  const count = async () => (await db.selectFrom('gateway_accounts').select('id').execute()).length;
  let stripe: string;
  let authorizenet: string;

  it('creates accounts (credentials as JSON or @file), printing only their last four characters', async () => {
    const created = await cli(
      [
        'accounts',
        'create',
        '--gateway',
        'stripe',
        '--name',
        'EU',
        '--credentials',
        JSON.stringify({ secret_key: STRIPE_KEY, webhook_secrets: [WEBHOOK_SECRET] }),
      ],
      env,
    );
    expect(created.code).toBe(0);
    const shown = JSON.parse(created.stdout);
    expect(shown).toMatchObject({
      gateway: 'stripe',
      name: 'EU',
      mode: 'test',
      credentials_last4: { secret_key: '1234', webhook_secrets: ['5678'] },
    });
    expect(created.stdout).not.toContain(STRIPE_KEY);
    expect(created.stdout).not.toContain(WEBHOOK_SECRET);
    stripe = shown.id;

    const file = path.join(tmpdir(), `billhook-credentials-${randomBytes(4).toString('hex')}.json`);
    writeFileSync(file, JSON.stringify({ api_login_id: 'login_id_0001', signature_key: SIGNATURE_KEY }));
    const fromFile = await cli(
      ['accounts', 'create', '--gateway', 'authorizenet', '--name', 'B2B', '--credentials', `@${file}`],
      env,
    );
    rmSync(file);
    expect(fromFile.code).toBe(0);
    authorizenet = JSON.parse(fromFile.stdout).id;
  });

  it('refuses bad credentials naming the field, and a missing BILLHOOK_SECRET_KEY, storing nothing', async () => {
    const before = await count();
    const bad = await cli(
      ['accounts', 'create', '--gateway', 'stripe', '--name', 'x', '--credentials', '{"secret_key":"nope"}'],
      env,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/credentials\.secret_key: a Stripe secret key/);
    const keyless = await cli(
      ['accounts', 'create', '--gateway', 'stripe', '--name', 'y', '--credentials', '{}'],
      {
        ...env,
        BILLHOOK_SECRET_KEY: '',
      },
    );
    expect(keyless.code).toBe(1);
    expect(keyless.stderr).toMatch(/BILLHOOK_SECRET_KEY/);
    expect(await count()).toBe(before);
  });

  it('lists, shows, rotates a webhook secret and disables', async () => {
    const listed = await cli(['accounts', 'list'], env);
    expect(listed.stdout).toMatch(
      new RegExp(`${stripe} +stripe +test +enabled +/webhooks/stripe/${stripe} +EU`),
    );
    expect(listed.stdout).toContain(authorizenet);
    expect(listed.stdout).not.toContain(STRIPE_KEY);
    expect(JSON.parse((await cli(['accounts', 'show', stripe], env)).stdout).id).toBe(stripe);

    const rotated = await cli(
      ['accounts', 'rotate-secret', stripe, '--secret', 'whsec_cli_account_next_9999'],
      env,
    );
    expect(rotated.code).toBe(0);
    expect(JSON.parse(rotated.stdout).credentials_last4.webhook_secrets).toEqual(['9999', '5678']);

    expect((await cli(['accounts', 'disable', authorizenet], env)).stdout).toBe(`disabled ${authorizenet}\n`);
    expect(JSON.parse((await cli(['accounts', 'show', authorizenet], env)).stdout).status).toBe('disabled');
    expect((await cli(['accounts', 'show', 'gwa_unknown'], env)).stderr).toMatch(
      /no gateway account with id/,
    );
  });

  it('rotate-key re-encrypts every account under the new key, every credential still readable', async () => {
    const rotation = {
      ...env,
      BILLHOOK_SECRET_KEY: NEW_KEY.toString('hex'),
      BILLHOOK_SECRET_KEY_PREVIOUS: OLD_KEY.toString('base64'),
    };
    const rotated = await cli(['accounts', 'rotate-key'], rotation);
    expect([rotated.code, rotated.stdout]).toEqual([0, '2 account(s) re-encrypted with the current key\n']);
    expect((await cli(['accounts', 'rotate-key'], rotation)).stdout).toMatch(/^0 account/);

    const newOnly = keyring(NEW_KEY, undefined);
    const rows = await db.selectFrom('gateway_accounts').select(['id', 'credentials_key_id']).execute();
    expect(rows.map((r) => r.credentials_key_id)).toEqual([newOnly.current?.id, newOnly.current?.id]);
    expect((await openGatewayAccount(db, newOnly, stripe))?.credentials).toEqual({
      secret_key: STRIPE_KEY,
      webhook_secrets: ['whsec_cli_account_next_9999', WEBHOOK_SECRET],
    });
    expect((await openGatewayAccount(db, newOnly, authorizenet))?.credentials).toEqual({
      api_login_id: 'login_id_0001',
      signature_key: SIGNATURE_KEY,
    });
    // The old key alone no longer opens them.
    await expect(openGatewayAccount(db, keyring(OLD_KEY, undefined), stripe)).rejects.toMatchObject({
      code: 'secret_key_unknown',
    });
  });

  it("records each change as an activity by 'cli', without a credential or a key", async () => {
    const rows = await db
      .selectFrom('activities')
      .select(['resource_id', 'action', 'actor', 'data'])
      .where('resource_type', '=', 'gateway_account')
      .orderBy('sequence')
      .execute();
    const of = (id: string) => rows.filter((r) => r.resource_id === id).map((r) => r.action);
    expect(of(stripe)).toEqual([
      'gateway_account.created',
      'gateway_account.webhook_secret_rotated',
      'gateway_account.key_rotated',
    ]);
    expect(of(authorizenet)).toEqual([
      'gateway_account.created',
      'gateway_account.disabled',
      'gateway_account.key_rotated',
    ]);
    expect(new Set(rows.map((r) => r.actor))).toEqual(new Set(['cli']));
    const keys = [keyring(OLD_KEY, undefined), keyring(NEW_KEY, undefined)];
    expect(rows.find((r) => r.action === 'gateway_account.key_rotated')?.data).toEqual({
      from_key_id: keys[0]?.current?.id,
      to_key_id: keys[1]?.current?.id,
    });
    const stored = JSON.stringify(rows);
    for (const secret of [
      STRIPE_KEY,
      WEBHOOK_SECRET,
      SIGNATURE_KEY,
      'whsec_cli_account_next_9999',
      OLD_KEY.toString('base64'),
      NEW_KEY.toString('hex'),
    ])
      expect(stored).not.toContain(secret);
  });
});
