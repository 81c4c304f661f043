import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/env.ts';
import { SECUREPAY_CAPABILITIES } from '../../../src/gateways/securepay/capabilities.ts';
import { securepayAdapter } from '../../../src/gateways/securepay/index.ts';
import { buildSecurepayTestDelivery } from '../../../src/gateways/securepay/test-events.ts';
import { SecurepayWebhook } from '../../../src/gateways/securepay/webhook.ts';
import { WebhookPayloadError } from '../../../src/gateways/types.ts';
import { securepayFixture, securepayFixtureRaw } from './fixtures.ts';

const webhook = new SecurepayWebhook();
const HINT = 'webhook.hint.payment.constructed.json';
const ENV = {
  SECUREPAY_CLIENT_ID: 'sp-client-id',
  SECUREPAY_CLIENT_SECRET: 'sp-client-secret',
  SECUREPAY_MERCHANT_CODE: '5AR0055',
};

describe('SecurepayWebhook.verify (a shape check: SecurePay signs nothing)', () => {
  it('accepts a JSON object naming an orderId; the event id is the orderId plus a hash of the bytes', async () => {
    const delivery = await webhook.verify(Buffer.from(securepayFixtureRaw(HINT)), {});
    expect(delivery.eventType).toBe('payment.paid');
    expect(delivery.eventId).toMatch(/^txn_01jh3k9q2m4v8c1vk0bd:[0-9a-f]{32}$/);
    // The same bytes again are the same event (a duplicate), whatever the headers.
    expect(
      await webhook.verify(Buffer.from(securepayFixtureRaw(HINT)), { 'x-securepay-signature': 'anything' }),
    ).toEqual(delivery);
  });

  it('gives a different notification about the same order its own id', async () => {
    const first = await webhook.verify(Buffer.from(securepayFixtureRaw(HINT)), {});
    const changed = { ...securepayFixture(HINT), status: 'failed', gatewayResponseCode: '51' };
    const second = await webhook.verify(Buffer.from(JSON.stringify(changed)), {});
    expect(second.eventId).not.toBe(first.eventId);
    expect(second.eventId.startsWith('txn_01jh3k9q2m4v8c1vk0bd:')).toBe(true);
    expect(second.eventType).toBe('payment.failed');
  });

  it('names an event without a plain status word payment.notification', async () => {
    const body = Buffer.from(JSON.stringify({ orderId: 'abc-1', status: 'not a word!' }));
    expect((await webhook.verify(body, {})).eventType).toBe('payment.notification');
    expect((await webhook.verify(Buffer.from('{"orderId":"abc-2"}'), {})).eventType).toBe(
      'payment.notification',
    );
  });

  it.each([
    ['not JSON', 'orderId=txn_1'],
    ['an empty body', ''],
    ['a JSON array', '[{"orderId":"txn_1"}]'],
    ['no orderId', '{"status":"paid","amount":100}'],
    ['a numeric orderId', '{"orderId":12345}'],
    ['an empty orderId', '{"orderId":""}'],
    ['an orderId with markup', '{"orderId":"<script>alert(1)</script>"}'],
    ['an orderId over 128 characters', JSON.stringify({ orderId: 'x'.repeat(129) })],
  ])('refuses %s with WebhookPayloadError (answered 400, nothing stored)', async (_name, body) => {
    await expect(webhook.verify(Buffer.from(body), {})).rejects.toThrow(WebhookPayloadError);
  });
});

describe('SecurepayWebhook.normalize', () => {
  it('turns every hint into no event: SecurePay outcomes come from the API answers, so the hint is ignored', async () => {
    expect(await webhook.normalize(securepayFixtureRaw(HINT))).toEqual([]);
    const failed = JSON.stringify({ ...securepayFixture(HINT), status: 'failed' });
    expect(await webhook.normalize(failed)).toEqual([]);
  });

  it('throws WebhookPayloadError for a stored body that is not a hint', async () => {
    await expect(webhook.normalize('{"status":"paid"}')).rejects.toThrow(WebhookPayloadError);
    await expect(webhook.normalize('nope')).rejects.toThrow(WebhookPayloadError);
  });
});

describe('buildSecurepayTestDelivery', () => {
  const config = loadConfig({ ...ENV });

  it.each([
    ['payment.paid', 'paid', '00'],
    ['payment.failed', 'failed', '51'],
  ] as const)('builds a %s hint the verifier accepts', async (type, status, code) => {
    const delivery = buildSecurepayTestDelivery(
      type,
      {
        reference: 'txn_01jh3k9q2m4v8c1vk0bd',
        amount: 10000,
        currency: 'aud',
        customerCode: 'cust-ada-0001',
      },
      config,
    );
    expect(delivery.headers).toEqual({ 'content-type': 'application/json' });
    const body = JSON.parse(delivery.body);
    expect(body).toMatchObject({
      orderId: 'txn_01jh3k9q2m4v8c1vk0bd',
      amount: 10000,
      currency: 'AUD',
      status,
      gatewayResponseCode: code,
      merchantCode: '5AR0055',
      customerCode: 'cust-ada-0001',
    });
    // Same fields as the constructed hint fixture.
    expect(Object.keys(body).sort()).toEqual(Object.keys(securepayFixture(HINT)).sort());
    const verified = await webhook.verify(Buffer.from(delivery.body), delivery.headers);
    expect(verified.eventType).toBe(type);
  });

  it('refuses when SecurePay is not configured, an unknown type, or a fractional amount', () => {
    expect(() =>
      buildSecurepayTestDelivery('payment.paid', { amount: 1, currency: 'AUD' }, loadConfig({})),
    ).toThrow(/SECUREPAY_MERCHANT_CODE/);
    expect(() =>
      buildSecurepayTestDelivery('payment.voided' as 'payment.paid', { amount: 1, currency: 'AUD' }, config),
    ).toThrow(/one of: payment.paid, payment.failed/);
    expect(() =>
      buildSecurepayTestDelivery('payment.paid', { amount: 1.5, currency: 'AUD' }, config),
    ).toThrow(/integer/);
  });
});

describe('securepayAdapter', () => {
  it('enables the client with the API credentials, the unsigned webhook route only with SECUREPAY_WEBHOOKS=on', () => {
    const adapter = securepayAdapter(loadConfig({ ...ENV }));
    expect(adapter.name).toBe('securepay');
    expect(adapter.webhook).toBeUndefined();
    expect(adapter.client).toBeDefined();
    const both = securepayAdapter(loadConfig({ ...ENV, SECUREPAY_WEBHOOKS: 'on' }));
    expect(both.webhook).toBeInstanceOf(SecurepayWebhook);
    expect(both.client).toBeDefined();
    expect(securepayAdapter(loadConfig({ ...ENV, SECUREPAY_WEBHOOKS: 'off' })).webhook).toBeUndefined();
  });

  it.each([
    ['nothing', {}],
    ['no merchant code', { ...ENV, SECUREPAY_MERCHANT_CODE: '' }],
    ['no secret', { ...ENV, SECUREPAY_CLIENT_SECRET: undefined }],
  ])('enables neither half with %s', (_name, env) => {
    expect(securepayAdapter(loadConfig(env))).toEqual({
      name: 'securepay',
      capabilities: SECUREPAY_CAPABILITIES,
    });
  });
});
