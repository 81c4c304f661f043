import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGatewayAccount } from '../../src/accounts/accounts.ts';
import { keyring } from '../../src/accounts/cipher.ts';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { signStripePayload } from '../../src/gateways/stripe/test-events.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { stripeFixtureRaw } from '../support/stripe.ts';

const SECRET_KEY = randomBytes(32);
const STRIPE_KEY = 'sk_test_accountEU_0123456789abcd';
const WEBHOOK_SECRET = 'whsec_account_eu_secret_wxyz';

/** PRODUCT.md §12: `/v1/gateway-accounts` (admin scope), credentials encrypted and never returned. */
describe('/v1/gateway-accounts', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ BILLHOOK_SECRET_KEY: SECRET_KEY.toString('base64') });
  });
  afterAll(() => app.stop());

  const create = (body: unknown) => app.api('POST', '/v1/gateway-accounts', body);
  const count = async () =>
    Number(
      (
        await app.runtime.db
          .selectFrom('gateway_accounts')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('creates, lists, reads and updates an account, showing only the last four characters of each credential', async () => {
    const created = await create({
      gateway: 'stripe',
      name: 'EU',
      mode: 'test',
      credentials: { secret_key: STRIPE_KEY, webhook_secrets: [WEBHOOK_SECRET] },
      api_base: 'https://eu.stripe.test',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      object: 'gateway_account',
      gateway: 'stripe',
      name: 'EU',
      mode: 'test',
      api_base: 'https://eu.stripe.test',
      status: 'enabled',
      credentials_last4: { secret_key: 'abcd', webhook_secrets: ['wxyz'] },
    });
    const id = created.body.id as string;
    expect(id).toMatch(/^gwa_/);
    expect(created.body.webhook_path).toBe(`/webhooks/stripe/${id}`);

    const listed = await app.api('GET', '/v1/gateway-accounts');
    expect(listed.body.data.map((a: { id: string }) => a.id)).toContain(id);
    const read = await app.api('GET', `/v1/gateway-accounts/${id}`);
    expect(read.body).toEqual(created.body);
    for (const answer of [created, listed, read]) {
      expect(JSON.stringify(answer.body)).not.toContain(STRIPE_KEY);
      expect(JSON.stringify(answer.body)).not.toContain(WEBHOOK_SECRET);
    }

    const updated = await app.api('POST', `/v1/gateway-accounts/${id}`, {
      name: 'EU (new)',
      api_base: null,
      credentials: { secret_key: 'sk_test_accountEU_replaced_9876' },
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      name: 'EU (new)',
      api_base: null,
      credentials_last4: { secret_key: '9876', webhook_secrets: ['wxyz'] },
    });
    // Never logged either (the app logs at debug level here).
    expect(JSON.stringify(app.logs)).not.toContain(STRIPE_KEY);
    expect(JSON.stringify(app.logs)).not.toContain(WEBHOOK_SECRET);
    const opened = await openGatewayAccount(app.runtime.db, keyring(SECRET_KEY, undefined), id);
    expect(opened?.credentials).toEqual({
      secret_key: 'sk_test_accountEU_replaced_9876',
      webhook_secrets: [WEBHOOK_SECRET],
    });
  });

  it('stores the credentials encrypted: the row holds neither secret, and its key id', async () => {
    const created = await create({
      gateway: 'authorizenet',
      name: 'second business line',
      mode: 'test',
      credentials: {
        api_login_id: '5KP3u95bQpv',
        transaction_key: '346HZ32z3fP4hTG2',
        signature_key: 'AB12CD34EF56AB12CD34EF56',
      },
    });
    expect(created.status).toBe(201);
    // Shorter than 12 characters: nothing of it is shown.
    expect(created.body.credentials_last4).toEqual({
      api_login_id: null,
      transaction_key: 'hTG2',
      signature_key: 'EF56',
    });
    const row = await app.runtime.db
      .selectFrom('gateway_accounts')
      .selectAll()
      .where('id', '=', created.body.id)
      .executeTakeFirstOrThrow();
    expect(row.credentials_key_id).toBe(keyring(SECRET_KEY, undefined).current?.id);
    const stored = `${row.credentials.toString('latin1')}${row.credentials.toString('base64')}${row.credentials.toString('hex')}`;
    for (const secret of ['5KP3u95bQpv', '346HZ32z3fP4hTG2', 'AB12CD34EF56AB12CD34EF56'])
      expect(stored).not.toContain(secret);
    expect(JSON.stringify(row.credentials_last4)).not.toContain('346HZ32z3fP4');
  });

  it.each([
    ['an unknown gateway', { gateway: 'acme', name: 'x', mode: 'test', credentials: {} }, 'gateway'],
    [
      'a Stripe key that is not one',
      { gateway: 'stripe', name: 'x', mode: 'test', credentials: { secret_key: 'hunter2' } },
      'credentials.secret_key',
    ],
    [
      'a webhook secret that is not whsec_…',
      { gateway: 'stripe', name: 'x', mode: 'test', credentials: { webhook_secrets: ['nope'] } },
      'credentials.webhook_secrets.0',
    ],
    [
      'a credential field the gateway does not have',
      { gateway: 'stripe', name: 'x', mode: 'test', credentials: { password: 'p' } },
      'credentials',
    ],
    [
      'a live key in a test account',
      { gateway: 'stripe', name: 'x', mode: 'test', credentials: { secret_key: 'sk_live_0123456789' } },
      'credentials.secret_key',
    ],
    ['a bad mode', { gateway: 'stripe', name: 'x', mode: 'prod', credentials: {} }, 'mode'],
    [
      'an API base that is not an http(s) URL',
      { gateway: 'stripe', name: 'x', mode: 'test', credentials: {}, api_base: 'ftp://stripe' },
      'api_base',
    ],
  ])('refuses %s with 422 naming the field, and stores nothing', async (_name, body, field) => {
    const before = await count();
    const answer = await create(body);
    expect(answer.status).toBe(422);
    expect(answer.body.error.code).toBe('validation_failed');
    expect(Object.keys(answer.body.error.fields)).toContain(field);
    expect(await count()).toBe(before);
  });

  it('refuses an update with a bad credential (422, nothing changed) and a name taken (409)', async () => {
    const a = await create({
      gateway: 'stripe',
      name: 'A',
      mode: 'test',
      credentials: { secret_key: STRIPE_KEY },
    });
    await create({ gateway: 'stripe', name: 'B', mode: 'test', credentials: {} });
    const bad = await app.api('POST', `/v1/gateway-accounts/${a.body.id}`, {
      credentials: { secret_key: 'sk_live_0123456789abc' },
    });
    expect(bad.status).toBe(422);
    expect(bad.body.error.fields).toHaveProperty(['credentials.secret_key']);
    const taken = await app.api('POST', `/v1/gateway-accounts/${a.body.id}`, { name: 'B' });
    expect([taken.status, taken.body.error.code]).toEqual([409, 'gateway_account_name_taken']);
    expect((await app.api('GET', `/v1/gateway-accounts/${a.body.id}`)).body).toEqual(a.body);
  });

  it('rotates a Stripe webhook secret keeping the previous one, and disables an account, whose secret still rotates', async () => {
    const a = await create({
      gateway: 'stripe',
      name: 'rotating',
      mode: 'test',
      credentials: { webhook_secrets: ['whsec_first_secret_0001'] },
    });
    const rotated = await app.api('POST', `/v1/gateway-accounts/${a.body.id}/rotate-webhook-secret`, {
      secret: 'whsec_second_secret_0002',
    });
    expect(rotated.body.credentials_last4.webhook_secrets).toEqual(['0002', '0001']);
    const replaced = await app.api('POST', `/v1/gateway-accounts/${a.body.id}/rotate-webhook-secret`, {
      secret: 'whsec_third_secret_0003',
      keep_previous: false,
    });
    expect(replaced.body.credentials_last4.webhook_secrets).toEqual(['0003']);
    const badSecret = await app.api('POST', `/v1/gateway-accounts/${a.body.id}/rotate-webhook-secret`, {
      secret: 'not-a-whsec',
    });
    expect(badSecret.status).toBe(422);

    const disabled = await app.api('POST', `/v1/gateway-accounts/${a.body.id}/disable`, {});
    expect(disabled.body).toMatchObject({ status: 'disabled' });
    expect(disabled.body.disabled_at).not.toBeNull();
    // A disabled account's route still verifies deliveries: rotating its secret is how one that
    // leaked is revoked there.
    const revoked = await app.api('POST', `/v1/gateway-accounts/${a.body.id}/rotate-webhook-secret`, {
      secret: 'whsec_fourth_secret_0004',
      keep_previous: false,
    });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({
      status: 'disabled',
      credentials_last4: { webhook_secrets: ['0004'] },
    });
    await app.runtime.accounts.refresh();
    const deliver = (secret: string) => {
      const body = JSON.stringify({
        ...JSON.parse(stripeFixtureRaw('webhook.payment_intent.succeeded.json')),
        id: `evt_${randomBytes(8).toString('hex')}`,
      });
      return fetch(`${app.url}/webhooks/stripe/${a.body.id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': signStripePayload(body, secret) },
        body,
      });
    };
    expect((await deliver('whsec_third_secret_0003')).status).toBe(400);
    expect((await deliver('whsec_fourth_secret_0004')).status).toBe(200);
    expect((await app.api('GET', '/v1/gateway-accounts/gwa_unknown')).status).toBe(404);
  });

  it("records each change as an activity naming the admin key, with the fields' names and never a credential", async () => {
    const { secret: adminSecret, key } = await createApiKey(app.runtime.db, 'accounts admin', 'admin');
    const secretKey = 'sk_test_auditedAccount_0123456789';
    const newKey = 'sk_test_auditedAccount_replaced_5678';
    const firstSecret = 'whsec_audited_first_secret_0001';
    const nextSecret = 'whsec_audited_next_secret_0002';
    const created = await app.api(
      'POST',
      '/v1/gateway-accounts',
      {
        gateway: 'stripe',
        name: 'Audited',
        mode: 'test',
        credentials: { secret_key: secretKey, webhook_secrets: [firstSecret] },
      },
      adminSecret,
    );
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const change = (path: string, body: unknown) =>
      app.api('POST', `/v1/gateway-accounts/${id}${path}`, body, adminSecret).then((r) => r.status);
    expect(await change('', { name: 'Audited (EU)', credentials: { secret_key: newKey } })).toBe(200);
    // The same values again: nothing changed, nothing recorded.
    expect(await change('', { name: 'Audited (EU)', credentials: { secret_key: newKey } })).toBe(200);
    expect(await change('/rotate-webhook-secret', { secret: nextSecret })).toBe(200);
    expect(await change('/disable', {})).toBe(200);
    expect(await change('/disable', {})).toBe(200);

    const activities = await app.api('GET', `/v1/activities?resource=${id}`);
    expect(activities.status).toBe(200);
    expect(
      activities.body.data.map((a: { action: string; actor: string; data: unknown }) => [
        a.action,
        a.actor,
        a.data,
      ]),
    ).toEqual([
      [
        'gateway_account.created',
        key.id,
        {
          gateway: 'stripe',
          name: 'Audited',
          mode: 'test',
          api_base: null,
          fields: ['credentials.secret_key', 'credentials.webhook_secrets'],
        },
      ],
      ['gateway_account.updated', key.id, { fields: ['name', 'credentials.secret_key'] }],
      [
        'gateway_account.webhook_secret_rotated',
        key.id,
        { field: 'credentials.webhook_secrets', kept_previous: true },
      ],
      // Disabled once: the second disable changed nothing.
      ['gateway_account.disabled', key.id, {}],
    ]);
    const stored = JSON.stringify(
      await app.runtime.db
        .selectFrom('activities')
        .select(['action', 'actor', 'data'])
        .where('resource_id', '=', id)
        .execute(),
    );
    for (const secret of [secretKey, newKey, firstSecret, nextSecret, adminSecret]) {
      expect(stored).not.toContain(secret);
      expect(JSON.stringify(activities.body)).not.toContain(secret);
    }
  });

  it('records nothing for a change that is refused', async () => {
    const created = await create({
      gateway: 'stripe',
      name: 'Refused changes',
      mode: 'test',
      credentials: { secret_key: 'sk_test_refusedChanges_0123456789' },
    });
    const id = created.body.id as string;
    const live = await app.api('POST', `/v1/gateway-accounts/${id}`, {
      credentials: { secret_key: 'sk_live_refusedChanges_0123456789' },
    });
    expect(live.status).toBe(422);
    const actions = (await app.api('GET', `/v1/activities?resource=${id}`)).body.data.map(
      (a: { action: string }) => a.action,
    );
    expect(actions).toEqual(['gateway_account.created']);
  });

  it('requires an admin key: write and read keys get 403', async () => {
    for (const scope of ['read', 'write'] as const) {
      const { secret } = await createApiKey(app.runtime.db, `${scope} key`, scope);
      const listed = await app.api('GET', '/v1/gateway-accounts', undefined, secret);
      expect([listed.status, listed.body.error.code]).toEqual([403, 'insufficient_scope']);
      const before = await count();
      const created = await app.api(
        'POST',
        '/v1/gateway-accounts',
        { gateway: 'stripe', name: `by ${scope}`, mode: 'test', credentials: {} },
        secret,
      );
      expect(created.status).toBe(403);
      expect(await count()).toBe(before);
    }
  });

  it('refuses to create an account without BILLHOOK_SECRET_KEY: 409 secret_key_missing', async () => {
    const keyless = await startTestApp({ DATABASE_URL: app.runtime.databaseUrl }, 'web');
    try {
      const before = await count();
      const answer = await keyless.api('POST', '/v1/gateway-accounts', {
        gateway: 'stripe',
        name: 'no key',
        mode: 'test',
        credentials: { secret_key: STRIPE_KEY },
      });
      expect([answer.status, answer.body.error.code]).toEqual([409, 'secret_key_missing']);
      expect(await count()).toBe(before);
    } finally {
      await keyless.stop();
    }
  });
});
