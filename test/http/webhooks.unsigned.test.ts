import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EWAY_TEST_KEY, EWAY_TEST_PASSWORD, ewayFixture } from '../gateways/eway/fixtures.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { deliverStripe, paymentIntentSucceeded } from '../support/stripe.ts';

const SECUREPAY = {
  SECUREPAY_CLIENT_ID: 'sp-client',
  SECUREPAY_CLIENT_SECRET: 'sp-secret',
  SECUREPAY_MERCHANT_CODE: '5AR0055',
};
const EWAY = { EWAY_API_KEY: EWAY_TEST_KEY, EWAY_API_PASSWORD: EWAY_TEST_PASSWORD };
const ACCESS_CODE: string = ewayFixture('api.access_code_shared.create.json').AccessCode;

async function post(app: TestApp, gateway: string, body: string, contentType = 'application/json') {
  const response = await fetch(`${app.url}/webhooks/${gateway}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: text ? JSON.parse(text) : undefined };
}

async function inboxRows(app: TestApp, gateway: 'eway' | 'securepay') {
  return app.runtime.db
    .selectFrom('inbox')
    .select(['gateway_event_id', 'body'])
    .where('gateway', '=', gateway)
    .orderBy('received_at')
    .execute();
}

/**
 * Issue #22 item 1: `/webhooks/eway` and `/webhooks/securepay` carry no signature, so anyone can post
 * to them. They keep only the parsed hint, take at most 8 KiB, are rate-limited per source address,
 * and SecurePay's is served only when asked for.
 */
describe('unsigned webhook routes', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(
      { ...EWAY, ...SECUREPAY, SECUREPAY_WEBHOOKS: 'on', UNSIGNED_WEBHOOK_RATE_LIMIT_PER_MINUTE: '1000' },
      'web',
    );
  });
  afterAll(() => app.stop());

  it('keeps only the parsed hint, never the rest of the body', async () => {
    // 7,000 bytes of padding and a claimed status around the one field billhook reads.
    const padded = JSON.stringify({
      TransactionID: 31000001,
      TransactionStatus: true,
      pad: 'x'.repeat(7000),
    });
    expect((await post(app, 'eway', padded)).status).toBe(200);
    expect(
      (await post(app, 'eway', `AccessCode=${ACCESS_CODE}&junk=${'y'.repeat(5000)}`, 'text/plain')).status,
    ).toBe(200);
    const order = JSON.stringify({ orderId: 'order-hint-1', status: 'PAID', card: 'z'.repeat(6000) });
    expect((await post(app, 'securepay', order)).status).toBe(200);

    const eway = await inboxRows(app, 'eway');
    expect(eway).toEqual([
      { gateway_event_id: 'transaction:31000001', body: '{"TransactionID":"31000001"}' },
      { gateway_event_id: `access_code:${ACCESS_CODE}`, body: JSON.stringify({ AccessCode: ACCESS_CODE }) },
    ]);
    const [securepay] = await inboxRows(app, 'securepay');
    expect(securepay!.body).toBe('{"orderId":"order-hint-1","status":"paid"}');
  });

  it('answers 413 body_too_large over 8 KiB and stores nothing; 8 KiB exactly is taken', async () => {
    const before = (await inboxRows(app, 'eway')).length;
    const head = '{"TransactionID":31000002,"pad":"';
    const sized = (n: number) => `${head}${'x'.repeat(n - head.length - 2)}"}`;
    expect(sized(8192)).toHaveLength(8192);
    const over = await post(app, 'eway', sized(8193));
    expect(over.status).toBe(413);
    expect(over.json.error.code).toBe('body_too_large');
    const overSecurepay = await post(app, 'securepay', `{"orderId":"o-big","pad":"${'x'.repeat(8192)}"}`);
    expect([overSecurepay.status, overSecurepay.json.error.code]).toEqual([413, 'body_too_large']);
    expect(await inboxRows(app, 'eway')).toHaveLength(before);
    expect((await post(app, 'eway', sized(8192))).status).toBe(200);
    expect(await inboxRows(app, 'eway')).toHaveLength(before + 1);
  });

  it('refuses an event id over 255 characters with 400 event_id_too_long, on a hint and on a signed event alike', async () => {
    const before = (await inboxRows(app, 'eway')).length;
    // An access code of 300 characters fits eWAY's shape but not the inbox's id cap.
    const long = await post(
      app,
      'eway',
      `AccessCode=${'A'.repeat(300)}`,
      'application/x-www-form-urlencoded',
    );
    expect([long.status, long.json.error.code]).toEqual([400, 'event_id_too_long']);
    expect(await inboxRows(app, 'eway')).toHaveLength(before);

    // A correctly signed Stripe event with a 3 KB id: refused, not stored (it once failed its batch).
    const event = paymentIntentSucceeded({
      eventId: `evt_${'k'.repeat(3000)}`,
      intentId: 'pi_long_id',
      amount: 100,
      currency: 'usd',
      reference: 'txn_long_id',
    });
    const signed = await deliverStripe(app.url, event);
    expect(signed.status).toBe(400);
    expect(JSON.parse(signed.body).error.code).toBe('event_id_too_long');
    const stored = await app.runtime.db
      .selectFrom('inbox')
      .select('id')
      .where('gateway_event_id', 'like', 'evt_kkk%')
      .execute();
    expect(stored).toEqual([]);
  });
});

describe('unsigned webhook routes: rate limit per source address', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ ...EWAY, UNSIGNED_WEBHOOK_RATE_LIMIT_PER_MINUTE: '3' }, 'web');
  });
  afterAll(() => app.stop());

  it('answers 429 rate_limited with Retry-After beyond the limit, storing nothing; signed routes are not limited by it', async () => {
    const answers = [];
    for (let i = 1; i <= 5; i++) answers.push(await post(app, 'eway', `{"TransactionID":${32000000 + i}}`));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429, 429]);
    const refused = answers[3]!;
    expect(refused.json.error.code).toBe('rate_limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('ratelimit-limit')).toBe('3');
    // Refused before the body is read: even an oversized or malformed one gets 429, not 413/400.
    expect((await post(app, 'eway', 'x'.repeat(20_000))).status).toBe(429);
    expect((await inboxRows(app, 'eway')).map((r) => r.gateway_event_id)).toEqual([
      'transaction:32000001',
      'transaction:32000002',
      'transaction:32000003',
    ]);
    // Stripe's signed route from the same address is untouched.
    for (let i = 1; i <= 5; i++) {
      const event = paymentIntentSucceeded({
        eventId: `evt_not_limited_${i}`,
        intentId: `pi_not_limited_${i}`,
        amount: 100,
        currency: 'usd',
        reference: `txn_not_limited_${i}`,
      });
      expect((await deliverStripe(app.url, event)).status).toBe(200);
    }
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(
      /billhook_webhooks_rejected_total\{gateway="eway",account="default",reason="rate_limited"\} 3/,
    );
  });
});

describe('SecurePay webhook route', () => {
  it('answers 404 with the API credentials alone: only SECUREPAY_WEBHOOKS=on serves it', async () => {
    const app = await startTestApp(SECUREPAY, 'web');
    try {
      const answer = await post(app, 'securepay', '{"orderId":"order-1","status":"paid"}');
      expect([answer.status, answer.json.error.code]).toEqual([404, 'gateway_not_configured']);
      expect(await inboxRows(app, 'securepay')).toEqual([]);
    } finally {
      await app.stop();
    }
  });
});
