import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/env.ts';
import { EWAY_CAPABILITIES } from '../../../src/gateways/eway/capabilities.ts';
import { EwayClient } from '../../../src/gateways/eway/client.ts';
import { ewayAdapter } from '../../../src/gateways/eway/index.ts';
import { EwaySettlement } from '../../../src/gateways/eway/settlement.ts';
import { buildEwayTestDelivery } from '../../../src/gateways/eway/test-events.ts';
import { EwayWebhook } from '../../../src/gateways/eway/webhook.ts';
import { ewayFixture } from './fixtures.ts';

const CONFIGURED = { EWAY_API_KEY: 'key', EWAY_API_PASSWORD: 'password' };

describe('ewayAdapter', () => {
  it('enables both halves and the settlement source with the API credentials, and none without them', () => {
    const adapter = ewayAdapter(loadConfig(CONFIGURED));
    expect(adapter.name).toBe('eway');
    expect(adapter.webhook).toBeInstanceOf(EwayWebhook);
    expect(adapter.client).toBeInstanceOf(EwayClient);
    expect(adapter.settlement).toBeInstanceOf(EwaySettlement);
    expect(ewayAdapter(loadConfig({}))).toEqual({ name: 'eway', capabilities: EWAY_CAPABILITIES });
    expect(ewayAdapter(loadConfig({ EWAY_API_KEY: 'key' }))).toEqual({
      name: 'eway',
      capabilities: EWAY_CAPABILITIES,
    });
  });
});

describe('buildEwayTestDelivery (send-test-webhook eway …)', () => {
  const webhook = new EwayWebhook({
    apiKey: 'k',
    apiPassword: 'p',
    apiBase: 'https://eway.unused.test',
    timeoutMs: 100,
  });

  it('builds a form hint naming the transaction, which the receiver accepts', async () => {
    const delivery = buildEwayTestDelivery('transaction', { transactionId: '123' }, CONFIGURED);
    expect(delivery).toEqual({
      body: 'TransactionID=123',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(await webhook.verify(Buffer.from(delivery.body), delivery.headers)).toEqual({
      eventId: 'transaction:123',
      eventType: 'transaction',
      storedBody: '{"TransactionID":"123"}',
    });
  });

  it('builds a JSON hint, and an access code hint', async () => {
    expect(
      buildEwayTestDelivery('transaction', { transactionId: 10328337, format: 'json' }, CONFIGURED),
    ).toEqual({
      body: '{"TransactionID":10328337}',
      headers: { 'content-type': 'application/json' },
    });
    const accessCode = ewayFixture('api.access_code_shared.create.json').AccessCode;
    const delivery = buildEwayTestDelivery('access_code', { accessCode }, CONFIGURED);
    expect((await webhook.verify(Buffer.from(delivery.body), delivery.headers)).eventId).toBe(
      `access_code:${accessCode}`,
    );
  });

  it('says what is missing', () => {
    expect(() => buildEwayTestDelivery('transaction', {}, CONFIGURED)).toThrow(/--transaction-id/);
    expect(() => buildEwayTestDelivery('transaction', { transactionId: 'abc' }, CONFIGURED)).toThrow(
      /positive integer/,
    );
    expect(() => buildEwayTestDelivery('access_code', { accessCode: 'a b' }, CONFIGURED)).toThrow(
      /--access-code/,
    );
    expect(() => buildEwayTestDelivery('refund' as 'transaction', { transactionId: 1 }, CONFIGURED)).toThrow(
      /one of: transaction, access_code/,
    );
    expect(() =>
      buildEwayTestDelivery(
        'transaction',
        { transactionId: 1 },
        { EWAY_API_KEY: undefined, EWAY_API_PASSWORD: 'p' },
      ),
    ).toThrow(/EWAY_API_KEY/);
  });
});
