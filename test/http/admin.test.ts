import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/wait.ts';

const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;

describe('/admin/queues', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({
      WEBHOOK_RETRY_LIMIT: '0',
      BILLHOOK_SECRET_KEY: randomBytes(32).toString('hex'),
    });
  });
  afterAll(() => app.stop());

  const page = async (key = ADMIN_KEY) =>
    fetch(`${app.url}/admin/queues`, { headers: { authorization: basic(key) } });

  it('asks for an admin key: 401 without one (a browser prompt), 403 for a write key, 401 for a revoked one', async () => {
    const none = await fetch(`${app.url}/admin/queues`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    const { secret } = await createApiKey(app.runtime.db, 'writer', 'write');
    expect((await page(secret)).status).toBe(403);
    expect((await page('bh_unknown')).status).toBe(401);
  });

  it('shows every queue, the inbox by status, and a dead letter that can be retried and purged', async () => {
    const receipt = await app.runtime.inbox!.receive({
      gateway: 'paypal',
      eventId: 'WH-admin-dead',
      eventType: 'PAYMENT.CAPTURE.COMPLETED',
      body: '{}',
    });
    const html = await waitFor('the dead letter on the page', async () => {
      const text = await (await page()).text();
      return text.includes(receipt.id!) ? text : undefined;
    });
    for (const queue of [
      'webhook.process',
      'webhook.process.dead',
      'transaction.poll',
      'refund.recover',
      'refund.recover.dead',
      'inbox.sweep',
    ]) {
      expect(html).toContain(`<td>${queue}</td>`);
    }
    expect(html).toMatch(/gateway paypal is not configured/);
    const token = /name="token" value="([0-9a-f]{64})"/.exec(html)?.[1];
    expect(token).toBeDefined();

    const forged = await fetch(`${app.url}/admin/queues/dead-letters/purge`, {
      method: 'POST',
      headers: { authorization: basic(ADMIN_KEY), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=forged',
      redirect: 'manual',
    });
    expect(forged.status).toBe(403);
    // Its access line says why (issue #22 item 12).
    expect(app.logs).toContainEqual(
      expect.objectContaining({
        level: 40,
        errorCode: 'invalid_form_token',
        res: expect.objectContaining({ statusCode: 403 }),
      }),
    );

    const purge = await fetch(`${app.url}/admin/queues/dead-letters/purge`, {
      method: 'POST',
      headers: { authorization: basic(ADMIN_KEY), 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${token}`,
      redirect: 'manual',
    });
    expect(purge.status).toBe(303);
    expect(await (await page()).text()).toMatch(/Dead letters \(0\)/);
  });

  it("counts each queue's jobs through pg-boss's queue statistics (its API, not its tables)", async () => {
    // Two jobs no worker takes (a dead-letter queue): ready 2, deferred 0, active 0, failed 0, stored 2
    // once pg-boss's monitor has counted them (every 10 s).
    await app.runtime.boss.send('subscription.renew.dead', { subscriptionId: 'sub_admin_count_1' });
    await app.runtime.boss.send('subscription.renew.dead', { subscriptionId: 'sub_admin_count_2' });
    const row =
      '<tr><td>subscription.renew.dead</td><td class="n">2</td><td class="n">0</td><td class="n">0</td><td class="n">0</td><td class="n">2</td></tr>';
    await waitFor(
      'the counted jobs on the page',
      async () => (await (await page()).text()).includes(row),
      120_000,
    );
  });

  it('lists the dead letters of the other queues too, with their data', async () => {
    await app.runtime.boss.send('invoice.refund.dead', { refundId: 're_admin_dead' });
    const html = await (await page()).text();
    expect(html).toMatch(
      /<tr><td>invoice\.refund<\/td><td><code>[0-9a-f-]{36}<\/code><\/td>.*re_admin_dead.*no error was recorded/,
    );
  });

  it('serves a policy whose forms post where the page came from: no upgrade-insecure-requests (plain HTTP by host name works)', async () => {
    const policy = (await page()).headers.get('content-security-policy') ?? '';
    expect(policy).toMatch(/default-src 'self'/);
    expect(policy).toMatch(/form-action 'self'/);
    expect(policy).not.toMatch(/upgrade-insecure-requests/);
  });

  it('escapes what it shows (an error text is gateway-controlled)', async () => {
    await app.runtime.boss.send('webhook.process.dead', {
      inboxIds: ['evt_htmlerror'],
      errors: [{ id: 'evt_htmlerror', error: '<script>alert(1)</script>' }],
    });
    const html = await (await page()).text();
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
  });

  it('lists the gateway accounts with their webhook path, inbox counts and last four characters, never a credential', async () => {
    const secrets = {
      secret_key: 'sk_test_adminPageAccount_0123456789',
      webhook_secrets: ['whsec_admin_page_secret_wxyz'],
    };
    const stripe = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'stripe',
      name: 'EU <b>brand</b>',
      mode: 'test',
      credentials: secrets,
    });
    const signatureKey = randomBytes(32).toString('hex').toUpperCase();
    const anet = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'authorizenet',
      name: 'B2B',
      mode: 'live',
      credentials: {
        api_login_id: 'login_admin_page_01',
        transaction_key: 'txkey_admin_01',
        signature_key: signatureKey,
      },
    });
    expect([stripe.status, anet.status]).toEqual([201, 201]);
    await app.api('POST', `/v1/gateway-accounts/${anet.body.id}/disable`, {});
    await app.runtime.inbox!.receive({
      gateway: 'stripe',
      account: stripe.body.id,
      eventId: 'evt_admin_page_account',
      eventType: 'customer.created',
      body: '{}',
    });

    const html = await (await page()).text();
    const row = (id: string) => new RegExp(`<tr><td><code>${id}</code></td>.*</tr>`).exec(html)?.[0] ?? '';
    expect(row(stripe.body.id)).toContain(
      `<td>stripe</td><td>EU &#60;b&#62;brand&#60;/b&#62;</td><td>test</td><td class="">enabled</td><td><code>/webhooks/stripe/${stripe.body.id}</code></td><td><code>secret_key …6789, webhook_secrets …wxyz</code></td>`,
    );
    expect(row(stripe.body.id)).toMatch(/<td>[a-z]+ 1<\/td><\/tr>$/);
    expect(row(anet.body.id)).toContain(
      `<td>authorizenet</td><td>B2B</td><td>live</td><td class="bad">disabled</td><td><code>/webhooks/authorizenet/${anet.body.id}</code></td>`,
    );
    expect(row(anet.body.id)).toMatch(/<td>0<\/td><\/tr>$/);
    expect(html).toMatch(/Gateway accounts \(2\)/);
    for (const secret of [
      secrets.secret_key,
      secrets.webhook_secrets[0]!,
      signatureKey,
      'login_admin_page_01',
      'txkey_admin_01',
    ])
      expect(html).not.toContain(secret);
  });
});
