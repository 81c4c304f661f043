import { randomBytes } from 'node:crypto';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAuthorizenetTestDelivery } from '../../src/gateways/authorizenet/test-events.ts';
import { signStripePayload } from '../../src/gateways/stripe/test-events.ts';
import { startCharge } from '../../src/payments/charges.ts';
import { STRIPE_WEBHOOK_SECRET, startTestApp, type TestApp } from '../support/app.ts';
import { ledgerByCode, openInvoice } from '../support/flow.ts';
import { paymentIntentSucceeded, stripeFixtureRaw } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

const SECRET_KEY = randomBytes(32).toString('hex');
const SECRET_A = 'whsec_account_a_secret_0001';
const SECRET_B = 'whsec_account_b_secret_0002';

/** The fixture's `payment_intent.succeeded` under a new event id (about a payment billhook does not know). */
function newEvent(): string {
  return JSON.stringify({
    ...JSON.parse(stripeFixtureRaw('webhook.payment_intent.succeeded.json')),
    id: `evt_${randomBytes(8).toString('hex')}`,
  });
}

/** POSTs `body` to `/webhooks/stripe/<account>` (or `/webhooks/stripe` without one), signed with `secret`. */
async function deliver(baseUrl: string, account: string | undefined, body: string, secret: string) {
  const response = await fetch(`${baseUrl}/webhooks/stripe${account ? `/${account}` : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': signStripePayload(body, secret) },
    body,
  });
  return { status: response.status, body: await response.text() };
}

/** PRODUCT.md §12: `POST /webhooks/:gateway/:account`, verified with that account's secrets, on every process. */
describe('webhooks of gateway accounts', () => {
  let app: TestApp;
  /** A second web process on the same database: it learns of account changes by itself. */
  let other: TestApp;
  let a: string;
  let b: string;
  beforeAll(async () => {
    app = await startTestApp({ BILLHOOK_SECRET_KEY: SECRET_KEY });
    other = await startTestApp(
      { DATABASE_URL: app.runtime.databaseUrl, BILLHOOK_SECRET_KEY: SECRET_KEY },
      'web',
    );
    const create = async (name: string, credentials: Record<string, unknown>) => {
      const created = await app.api('POST', '/v1/gateway-accounts', {
        gateway: 'stripe',
        name,
        mode: 'test',
        credentials,
      });
      expect(created.status).toBe(201);
      return created.body.id as string;
    };
    a = await create('A', { webhook_secrets: [SECRET_A] });
    // B takes charges too (its API is never called here: an attempt is committed before any call).
    b = await create('B', { webhook_secrets: [SECRET_B], secret_key: 'sk_test_account_b_0123456789' });
    // The other process reads the accounts once a second in the background; here, at once.
    await other.runtime.accounts.refresh();
  });
  afterAll(async () => {
    await other?.stop();
    await app?.stop();
  });

  const inboxRow = (gatewayEventId: string) =>
    app.runtime.db
      .selectFrom('inbox')
      .selectAll()
      .where('gateway_event_id', '=', gatewayEventId)
      .executeTakeFirst();

  it("refuses a delivery signed for one account on the other's route and on the default route, and stores it on its own", async () => {
    const body = newEvent();
    const id = JSON.parse(body).id as string;
    for (const server of [app, other]) {
      expect((await deliver(server.url, b, body, SECRET_A)).status).toBe(400);
      expect((await deliver(server.url, undefined, body, SECRET_A)).status).toBe(400);
    }
    expect(await inboxRow(id)).toBeUndefined();
    expect(await deliver(other.url, a, body, SECRET_A)).toEqual({ status: 200, body: '{"received":true}' });
    expect((await inboxRow(id))?.gateway_account).toBe(a);

    // The default account: /webhooks/stripe and /webhooks/stripe/default, with the environment's secret.
    const byDefault = newEvent();
    expect((await deliver(app.url, 'default', byDefault, STRIPE_WEBHOOK_SECRET)).status).toBe(200);
    expect((await inboxRow(JSON.parse(byDefault).id))?.gateway_account).toBeNull();
    expect((await deliver(app.url, 'default', newEvent(), SECRET_A)).status).toBe(400);
  });

  it("reconciles an account's delivery about its own payment into the ledger with the worker, recording its account", async () => {
    const { invoice } = await openInvoice(app, { gatewayAccount: b });
    const attempt = await startCharge(app.runtime.db, 'system', app.runtime, invoice.id);
    expect(attempt.gateway_account).toBe(b);
    const eventId = `evt_${randomBytes(8).toString('hex')}`;
    const body = paymentIntentSucceeded({
      eventId,
      intentId: `pi_${randomBytes(8).toString('hex')}`,
      amount: 4620,
      currency: 'eur',
      reference: attempt.id,
    });
    expect((await deliver(app.url, b, body, SECRET_B)).status).toBe(200);
    const event = await waitFor('the delivery to be processed', async () => {
      const events = await app.api('GET', '/v1/events?limit=100');
      const found = events.body.data.find(
        (e: { gateway_event_id: string }) => e.gateway_event_id === eventId,
      );
      return found?.status === 'processed' ? found : undefined;
    });
    expect(event.gateway_account).toBe(b);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 4620,
    });
    // B's money, in B's clearing account.
    expect(await ledgerByCode(app)).toMatchObject({
      [`gateway_clearing:stripe:${b} EUR`]: 4620,
      'receivable:customer EUR': 0,
    });
    expect((await ledgerByCode(app))['gateway_clearing:stripe EUR'] ?? 0).toBe(0);
  });

  it("normalises an account's delivery with that account's API credentials and base, not the default's", async () => {
    const created = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'stripe',
      name: 'D',
      mode: 'test',
      credentials: {
        secret_key: 'sk_test_account_d_0123456789',
        webhook_secrets: ['whsec_account_d_secret_0004'],
      },
      api_base: 'https://account-d.stripe.test',
    });
    // A dispute naming only its charge: the worker asks Stripe for the charge's PaymentIntent.
    const event = JSON.parse(stripeFixtureRaw('webhook.charge.dispute.created.json'));
    event.id = `evt_${randomBytes(8).toString('hex')}`;
    delete event.data.object.payment_intent;
    const charge = event.data.object.charge as string;
    const asked = nock('https://account-d.stripe.test')
      .matchHeader('authorization', 'Bearer sk_test_account_d_0123456789')
      .get(`/v1/charges/${charge}`)
      .reply(200, { id: charge, object: 'charge', payment_intent: null });
    try {
      const body = JSON.stringify(event);
      expect((await deliver(app.url, created.body.id, body, 'whsec_account_d_secret_0004')).status).toBe(200);
      await waitFor("the worker to ask account D's API", async () => asked.isDone() || undefined);
      expect((await inboxRow(event.id))?.gateway_account).toBe(created.body.id);
    } finally {
      nock.cleanAll();
    }
  });

  it('routes an Authorize.Net account by the same mechanism: its Signature Key verifies, no other', async () => {
    const key = randomBytes(32).toString('hex').toUpperCase();
    const created = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'authorizenet',
      name: 'B2B',
      mode: 'test',
      credentials: {
        api_login_id: 'login_b2b_0001',
        transaction_key: 'txkey_b2b_000001',
        signature_key: key,
      },
      // Nothing answers there: the worker's getTransactionDetails fails and is retried, harmlessly.
      api_base: 'https://anet-b2b.invalid',
    });
    expect(created.status).toBe(201);
    const post = (path: string, signatureKey: string) => {
      const { body, headers } = buildAuthorizenetTestDelivery(
        'net.authorize.payment.authcapture.created',
        { transactionId: '60123456789', amount: 4500, currency: 'USD' },
        { AUTHORIZENET_SIGNATURE_KEY: signatureKey },
      );
      return fetch(`${app.url}${path}`, { method: 'POST', headers, body }).then((r) => r.status);
    };
    expect(await post(`/webhooks/authorizenet/${created.body.id}`, key)).toBe(200);
    expect(await post(`/webhooks/authorizenet/${created.body.id}`, randomBytes(32).toString('hex'))).toBe(
      400,
    );
    // The default Authorize.Net account is not configured here.
    expect(await post('/webhooks/authorizenet', key)).toBe(404);
  });

  it('answers 404 for an unknown account and an account of another gateway; a disabled one still receives (on every process)', async () => {
    const unknown = await fetch(`${app.url}/webhooks/stripe/gwa_unknown`, { method: 'POST', body: '{}' });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe(
      'gateway_account_not_found',
    );
    const paypal = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'paypal',
      name: 'US',
      mode: 'test',
      credentials: { webhook_id: 'WH-0123456789' },
    });
    expect((await deliver(app.url, paypal.body.id, newEvent(), SECRET_A)).status).toBe(404);

    const c = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'stripe',
      name: 'C',
      mode: 'test',
      credentials: { webhook_secrets: ['whsec_account_c_secret_0003'] },
    });
    // A new account reaches the other process at its next check (within about a second).
    await waitFor('the other process to know the new account', async () =>
      (await deliver(other.url, c.body.id, newEvent(), 'whsec_account_c_secret_0003')).status === 200
        ? true
        : undefined,
    );
    expect((await app.api('POST', `/v1/gateway-accounts/${c.body.id}/disable`, {})).status).toBe(200);
    // Disabled: no new charges, refunds or voids, but what it already moved is still reported. Its
    // deliveries are verified with its secret and stored on its account, on every process (the other
    // one learns of the change within about a second: it answers alike before and after).
    for (const server of [app, other]) {
      const body = newEvent();
      expect(await deliver(server.url, c.body.id, body, 'whsec_account_c_secret_0003')).toEqual({
        status: 200,
        body: '{"received":true}',
      });
      expect((await inboxRow(JSON.parse(body).id))?.gateway_account).toBe(c.body.id);
      const forged = newEvent();
      expect((await deliver(server.url, c.body.id, forged, SECRET_A)).status).toBe(400);
      expect(await inboxRow(JSON.parse(forged).id)).toBeUndefined();
    }
    await other.runtime.accounts.refresh();
    const afterRefresh = newEvent();
    expect((await deliver(other.url, c.body.id, afterRefresh, 'whsec_account_c_secret_0003')).status).toBe(
      200,
    );
    expect((await inboxRow(JSON.parse(afterRefresh).id))?.gateway_account).toBe(c.body.id);
  });

  it("takes an account's new webhook secret without a restart, on every process", async () => {
    const next = 'whsec_account_a_secret_next';
    const rotated = await app.api('POST', `/v1/gateway-accounts/${a}/rotate-webhook-secret`, {
      secret: next,
      keep_previous: false,
    });
    expect(rotated.status).toBe(200);
    expect((await deliver(app.url, a, newEvent(), next)).status).toBe(200);
    expect((await deliver(app.url, a, newEvent(), SECRET_A)).status).toBe(400);
    await waitFor('the other process to take the new secret', async () =>
      (await deliver(other.url, a, newEvent(), next)).status === 200 ? true : undefined,
    );
    expect((await deliver(other.url, a, newEvent(), SECRET_A)).status).toBe(400);
    for (const server of [app, other])
      for (const secret of [SECRET_A, SECRET_B, next])
        expect(JSON.stringify(server.logs)).not.toContain(secret);
  });

  it('labels the webhook metrics by account with few values: an unknown account id never makes a series', async () => {
    expect((await deliver(app.url, b, newEvent(), SECRET_B)).status).toBe(200);
    expect((await deliver(app.url, b, newEvent(), 'whsec_not_b_secret_00001')).status).toBe(400);
    expect((await deliver(app.url, undefined, newEvent(), STRIPE_WEBHOOK_SECRET)).status).toBe(200);
    const unknownAccount = () =>
      fetch(`${app.url}/webhooks/stripe/gwa_${randomBytes(8).toString('hex')}`, {
        method: 'POST',
        body: '{}',
      });
    expect((await unknownAccount()).status).toBe(404);
    /** The webhook metrics' series (name and labels, without the value). */
    const series = async () => {
      const text = await (await fetch(`${app.url}/metrics`)).text();
      return text
        .split('\n')
        .filter((line) => line.startsWith('billhook_webhook'))
        .map((line) => line.slice(0, line.lastIndexOf(' ')))
        .sort();
    };
    const before = await series();
    for (let i = 0; i < 40; i += 1) expect((await unknownAccount()).status).toBe(404);
    expect(
      (
        await fetch(`${app.url}/webhooks/stripe/not-an-id-${randomBytes(4).toString('hex')}`, {
          method: 'POST',
          body: '{}',
        })
      ).status,
    ).toBe(404);
    const after = await series();
    expect(after).toEqual(before);

    const ids = (await app.api('GET', '/v1/gateway-accounts')).body.data.map((x: { id: string }) => x.id);
    const labels = new Set(after.map((line) => /account="([^"]*)"/.exec(line)?.[1]));
    for (const label of labels) expect(['default', 'unknown', ...ids]).toContain(label);
    const text = after.join('\n');
    expect(text).toContain(
      `billhook_webhooks_received_total{gateway="stripe",account="${b}",duplicate="false"}`,
    );
    expect(text).toContain(
      `billhook_webhooks_rejected_total{gateway="stripe",account="${b}",reason="signature"}`,
    );
    expect(text).toContain(`billhook_webhook_ack_seconds_count{gateway="stripe",account="${b}"}`);
    expect(text).toContain(
      'billhook_webhooks_rejected_total{gateway="stripe",account="unknown",reason="not_configured"}',
    );
    expect(text).toContain(
      'billhook_webhooks_received_total{gateway="stripe",account="default",duplicate="false"}',
    );
  });
});
