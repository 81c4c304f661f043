import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GatewayUnreachable } from '../../../src/gateways/http.ts';
import { TEST_CERT_URL } from '../../../src/gateways/paypal/certificates.ts';
import { signPaypalDelivery } from '../../../src/gateways/paypal/test-events.ts';
import { PaypalWebhook, signedMessage } from '../../../src/gateways/paypal/webhook.ts';
import { WebhookPayloadError, WebhookVerificationError } from '../../../src/gateways/types.ts';
import { ANSWERED_CALL_TIMEOUT_MS } from '../../support/timeouts.ts';
import {
  nockSimulatorCertificate,
  nockToken,
  paypalFixture,
  paypalFixtureRaw,
  SIMULATOR_CERT_HOST,
  SIMULATOR_CERT_PATH,
  SIMULATOR_CLOCK,
  SIMULATOR_EVENTS,
  SIMULATOR_WEBHOOK_ID,
  simulatorDelivery,
  TEST_CERT_PEM,
  TEST_KEY_PEM,
  TOKEN,
  testPaypalClient,
} from './fixtures.ts';

const webhook = (options: Partial<ConstructorParameters<typeof PaypalWebhook>[0]> = {}) =>
  new PaypalWebhook({
    webhookId: SIMULATOR_WEBHOOK_ID,
    timeoutMs: ANSWERED_CALL_TIMEOUT_MS,
    now: () => SIMULATOR_CLOCK,
    ...options,
  });

beforeAll(() => {
  nock.disableNetConnect();
});
afterEach(() => {
  nock.cleanAll();
});
afterAll(() => {
  nock.enableNetConnect();
});

describe('PaypalWebhook.verify on the simulator-signed deliveries', () => {
  it('verifies all five deliveries with webhook id WEBHOOK_ID, fetching the certificate once', async () => {
    const scope = nockSimulatorCertificate(1);
    const verifier = webhook();
    const ids = [];
    for (const event of SIMULATOR_EVENTS) {
      const { body, headers } = simulatorDelivery(event);
      const delivery = await verifier.verify(body, headers);
      expect(delivery.eventType).toBe(`PAYMENT.CAPTURE.${event}`);
      ids.push(delivery.eventId);
    }
    expect(ids).toEqual([
      'WH-58D329510W468432D-8HN650336L201105X',
      'WH-6HE329230C693231F-5WV60586YA659351G',
      'WH-9Y180613C5171350R-3A568107UP261041K',
      'WH-1GE84257G0350133W-6RW800890C634293G',
      'WH-6F207351SC284371F-0KX52201050121307',
    ]);
    // One fetch for five deliveries: the certificate is cached by URL.
    expect(scope.isDone()).toBe(true);
  });

  it('signs transmission_id|transmission_time|webhook_id|crc32(body) with crc32 as unsigned decimal', () => {
    const { body, headers } = simulatorDelivery('COMPLETED');
    const message = signedMessage(
      headers['paypal-transmission-id']!,
      headers['paypal-transmission-time']!,
      'WEBHOOK_ID',
      body,
    );
    expect(message).toMatch(/^1c6772d0-5106-11ef-9b66-89f3f924d48a\|2024-08-02T19:33:35Z\|WEBHOOK_ID\|\d+$/);
    expect(Number(message.split('|')[3])).toBeGreaterThanOrEqual(0);
    // A crc32 with the top bit set stays positive (unsigned).
    // crc32("a") is 0xE8B7BE43: as a signed 32-bit int it would be negative.
    expect(signedMessage('id', 'time', 'hook', 'a')).toBe('id|time|hook|3904355907');
  });

  it('rejects a tampered body', async () => {
    nockSimulatorCertificate();
    const { body, headers } = simulatorDelivery('COMPLETED');
    const tampered = Buffer.from(body.toString('utf8').replace('"30.00"', '"31.00"'));
    const error = await webhook()
      .verify(tampered, headers)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WebhookVerificationError);
    expect((error as Error).message).toMatch(/does not match/);
  });

  it('rejects a wrong webhook id', async () => {
    nockSimulatorCertificate();
    const { body, headers } = simulatorDelivery('REFUNDED');
    await expect(webhook({ webhookId: 'WH8PAYPALID0000' }).verify(body, headers)).rejects.toThrow(
      WebhookVerificationError,
    );
  });

  it('rejects a signature moved to another delivery', async () => {
    nockSimulatorCertificate();
    const completed = simulatorDelivery('COMPLETED');
    const declined = simulatorDelivery('DECLINED');
    const verifier = webhook();
    await expect(
      verifier.verify(completed.body, {
        ...completed.headers,
        'paypal-transmission-sig': declined.headers['paypal-transmission-sig']!,
      }),
    ).rejects.toThrow(WebhookVerificationError);
    await expect(
      verifier.verify(completed.body, {
        ...completed.headers,
        'paypal-transmission-time': '2024-08-02T19:33:36Z',
      }),
    ).rejects.toThrow(WebhookVerificationError);
  });

  it.each([
    ['another host', 'https://evil.example.com/v1/notifications/certs/CERT-360caa42-fca2a594-1a5f47cb'],
    ['a look-alike host', 'https://api.paypal.com.evil.example/v1/notifications/certs/CERT-1'],
    ['plain http', 'http://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1a5f47cb'],
    ['another path', 'https://api.paypal.com/v1/oauth2/token'],
    ['a path escaping the certs folder', 'https://api.paypal.com/v1/notifications/certs/../../../v2/x'],
    ['a port', 'https://api.paypal.com:8443/v1/notifications/certs/CERT-1'],
    ['credentials', 'https://user:pw@api.paypal.com/v1/notifications/certs/CERT-1'],
    ['a query', 'https://api.paypal.com/v1/notifications/certs/CERT-1?x=1'],
    ['not a URL', 'CERT-360caa42-fca2a594-1a5f47cb'],
  ])('rejects a certificate URL on %s before any fetch', async (_what, certUrl) => {
    // Net connect is disabled and nothing is nocked: any fetch would fail differently (GatewayUnreachable).
    const { body, headers } = simulatorDelivery('COMPLETED');
    const error = await webhook()
      .verify(body, { ...headers, 'paypal-cert-url': certUrl })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WebhookVerificationError);
    expect((error as Error).message).toMatch(/PAYPAL-CERT-URL/);
  });

  it.each([
    'paypal-transmission-id',
    'paypal-transmission-time',
    'paypal-transmission-sig',
    'paypal-cert-url',
    'paypal-auth-algo',
  ])('rejects a delivery without %s', async (name) => {
    const { body, headers } = simulatorDelivery('PENDING');
    const without = { ...headers };
    delete without[name];
    await expect(webhook().verify(body, without)).rejects.toThrow(
      new WebhookVerificationError(`missing ${name.toUpperCase()} header`),
    );
  });

  it('rejects another algorithm and a signature that is not base64', async () => {
    const { body, headers } = simulatorDelivery('PENDING');
    await expect(webhook().verify(body, { ...headers, 'paypal-auth-algo': 'SHA1withRSA' })).rejects.toThrow(
      /is not SHA256withRSA/,
    );
    await expect(
      webhook().verify(body, { ...headers, 'paypal-transmission-sig': 'not base64!' }),
    ).rejects.toThrow(/not base64/);
  });

  it('rejects the certificate outside its validity window (it expired 2025-03-07)', async () => {
    nockSimulatorCertificate(2);
    const { body, headers } = simulatorDelivery('COMPLETED');
    await expect(
      webhook({ now: () => new Date('2025-03-08T00:00:00Z') }).verify(body, headers),
    ).rejects.toThrow(/outside its validity/);
    await expect(
      webhook({ now: () => new Date('2024-03-07T00:00:00Z') }).verify(body, headers),
    ).rejects.toThrow(/outside its validity/);
  });

  it('checks a cached certificate again at each use: it stops being trusted when it expires', async () => {
    nockSimulatorCertificate(1);
    let now = SIMULATOR_CLOCK;
    const verifier = webhook({ now: () => now });
    const { body, headers } = simulatorDelivery('COMPLETED');
    await verifier.verify(body, headers);
    now = new Date('2025-06-01T00:00:00Z');
    await expect(verifier.verify(body, headers)).rejects.toThrow(/outside its validity/);
  });

  it('rejects a certificate URL that PayPal answers with 404, and does not cache the failure', async () => {
    nock(SIMULATOR_CERT_HOST).get(SIMULATOR_CERT_PATH).reply(404, { name: 'RESOURCE_NOT_FOUND' });
    const verifier = webhook();
    const { body, headers } = simulatorDelivery('COMPLETED');
    await expect(verifier.verify(body, headers)).rejects.toThrow(/answered HTTP 404/);
    nockSimulatorCertificate();
    await expect(verifier.verify(body, headers)).resolves.toMatchObject({
      eventType: 'PAYMENT.CAPTURE.COMPLETED',
    });
  });

  it('rejects a certificate that is not PayPal’s, even served from a PayPal URL', async () => {
    nock(SIMULATOR_CERT_HOST).get(SIMULATOR_CERT_PATH).reply(200, TEST_CERT_PEM);
    const { body, headers } = simulatorDelivery('COMPLETED');
    await expect(webhook({ now: () => new Date() }).verify(body, headers)).rejects.toThrow(
      /is not PayPal's messageverificationcerts.paypal.com/,
    );
  });

  it('reports an unreachable certificate URL as GatewayUnreachable (answered 5xx, PayPal retries), not as a bad signature', async () => {
    nock(SIMULATOR_CERT_HOST).get(SIMULATOR_CERT_PATH).replyWithError('connect ECONNREFUSED');
    const { body, headers } = simulatorDelivery('COMPLETED');
    await expect(webhook().verify(body, headers)).rejects.toThrow(GatewayUnreachable);
  });

  it('reads header names lower-cased only, as Node delivers them, and refuses repeated headers', async () => {
    const { body, headers } = simulatorDelivery('COMPLETED');
    await expect(
      webhook().verify(body, {
        ...headers,
        'paypal-transmission-sig': [headers['paypal-transmission-sig']!],
      }),
    ).rejects.toThrow(/missing PAYPAL-TRANSMISSION-SIG/);
  });
});

describe('PaypalWebhook test certificate mode (PAYPAL_TEST_CERT_FILE)', () => {
  const body = paypalFixtureRaw('webhook.PAYMENT.CAPTURE.COMPLETED.json');
  const signing = { privateKeyPem: TEST_KEY_PEM, webhookId: 'WH-TEST-1' };

  it('trusts the test certificate for the test certificate URL, without fetching', async () => {
    const verifier = webhook({
      webhookId: 'WH-TEST-1',
      now: () => new Date(),
      testCertificatePem: TEST_CERT_PEM,
    });
    const delivery = await verifier.verify(Buffer.from(body), signPaypalDelivery(body, signing));
    expect(delivery).toEqual({
      eventId: 'WH-58D329510W468432D-8HN650336L201105X',
      eventType: 'PAYMENT.CAPTURE.COMPLETED',
    });
  });

  it('without PAYPAL_TEST_CERT_FILE the test URL is just a PayPal URL: fetched, and PayPal has no such certificate', async () => {
    nock('https://api.sandbox.paypal.com').get(new URL(TEST_CERT_URL).pathname).reply(404);
    const verifier = webhook({ webhookId: 'WH-TEST-1', now: () => new Date() });
    await expect(verifier.verify(Buffer.from(body), signPaypalDelivery(body, signing))).rejects.toThrow(
      WebhookVerificationError,
    );
  });

  it('trusts the test certificate for no other URL', async () => {
    nockSimulatorCertificate();
    const verifier = webhook({ webhookId: 'WH-TEST-1', testCertificatePem: TEST_CERT_PEM });
    const headers = signPaypalDelivery(body, {
      ...signing,
      certUrl: `${SIMULATOR_CERT_HOST}${SIMULATOR_CERT_PATH}`,
    });
    await expect(verifier.verify(Buffer.from(body), headers)).rejects.toThrow(/does not match/);
  });

  it('answers a correctly signed body that is not JSON or not an event with WebhookPayloadError', async () => {
    const verifier = webhook({
      webhookId: 'WH-TEST-1',
      now: () => new Date(),
      testCertificatePem: TEST_CERT_PEM,
    });
    await expect(
      verifier.verify(Buffer.from('not json'), signPaypalDelivery('not json', signing)),
    ).rejects.toThrow(WebhookPayloadError);
    await expect(
      verifier.verify(Buffer.from('{"id":"x"}'), signPaypalDelivery('{"id":"x"}', signing)),
    ).rejects.toThrow(WebhookPayloadError);
  });

  it('answers a correctly signed event whose capture it could not book with WebhookPayloadError (PRODUCT §2: 400, nothing stored)', async () => {
    const verifier = webhook({
      webhookId: 'WH-TEST-1',
      now: () => new Date(),
      testCertificatePem: TEST_CERT_PEM,
    });
    const capture = paypalFixture('webhook.PAYMENT.CAPTURE.COMPLETED.json');
    const good = JSON.stringify(capture);
    expect(await verifier.verify(Buffer.from(good), signPaypalDelivery(good, signing))).toEqual({
      eventId: capture.id,
      eventType: 'PAYMENT.CAPTURE.COMPLETED',
    });
    capture.resource.amount.value = '2.515';
    const bad = JSON.stringify(capture);
    await expect(verifier.verify(Buffer.from(bad), signPaypalDelivery(bad, signing))).rejects.toThrow(
      /2.515 USD, finer than USD's ISO 4217 minor unit/,
    );
    // A dispute of two captures is PayPal's shape, only not one billhook can match: stored, for the
    // worker to raise as an exception, rather than refused and sent again.
    const dispute = paypalFixture('constructed/webhook.CUSTOMER.DISPUTE.CREATED.constructed.json');
    dispute.resource.disputed_transactions.push({ seller_transaction_id: '1AB23456CD789012E' });
    const twoCaptures = JSON.stringify(dispute);
    expect(await verifier.verify(Buffer.from(twoCaptures), signPaypalDelivery(twoCaptures, signing))).toEqual(
      {
        eventId: dispute.id,
        eventType: 'CUSTOMER.DISPUTE.CREATED',
      },
    );
  });

  it('refuses a test certificate file that is not a certificate, at start', () => {
    expect(() => webhook({ testCertificatePem: 'nothing here' })).toThrow(/PAYPAL_TEST_CERT_FILE/);
  });
});

describe('PaypalWebhook.normalize', () => {
  const normalize = (body: string | object) =>
    webhook().normalize(typeof body === 'string' ? body : JSON.stringify(body));

  it('maps the simulator PAYMENT.CAPTURE.COMPLETED to charge.succeeded: capture id, minor units, invoice_id as reference', async () => {
    const raw = simulatorDelivery('COMPLETED').body.toString('utf8');
    const [event, ...rest] = await normalize(raw);
    expect(rest.map((e) => e.type)).toEqual(['settlement.line']);
    expect(event).toMatchObject({
      type: 'charge.succeeded',
      gateway: 'paypal',
      gatewayEventId: 'WH-58D329510W468432D-8HN650336L201105X',
      gatewayTransactionId: '12A34567BC123456S',
      reference: '5840243-146',
      amount: 3000n,
      currency: 'USD',
      failureCode: undefined,
    });
    expect(event!.occurredAt.toISOString()).toBe('2019-02-14T21:50:07.940Z');
    expect(event!.raw).toEqual(JSON.parse(raw).resource);
  });

  it('maps the documented PAYMENT.CAPTURE.COMPLETED sample (no custom_id) with no reference', async () => {
    const [event] = await normalize(paypalFixtureRaw('webhook.PAYMENT.CAPTURE.COMPLETED.json'));
    expect(event).toMatchObject({
      type: 'charge.succeeded',
      gatewayTransactionId: '27M47624FP291604U',
      reference: undefined,
      amount: 251n,
      currency: 'USD',
    });
  });

  it('prefers custom_id (what our charge sets) over invoice_id as reference, and keeps the decline', async () => {
    const [event] = await normalize(simulatorDelivery('DECLINED').body.toString('utf8'));
    expect(event).toMatchObject({
      type: 'charge.failed',
      gatewayTransactionId: '7U133281TB3277326',
      reference: 'CUSTOMID-1001',
      amount: 18510n,
      currency: 'USD',
      failureCode: 'DECLINED',
      failureMessage: 'capture 7U133281TB3277326 DECLINED',
    });
  });

  it('maps PAYMENT.CAPTURE.DENIED to charge.failed', async () => {
    const [event] = await normalize(paypalFixtureRaw('webhook.PAYMENT.CAPTURE.DENIED.json'));
    expect(event).toMatchObject({
      type: 'charge.failed',
      gatewayEventId: 'WH-4SW78779LY2325805-07E03580SX1414828',
      gatewayTransactionId: '7NW873794T343360M',
      amount: 251n,
      currency: 'AUD',
      failureCode: 'DECLINED',
    });
  });

  it('maps PAYMENT.CAPTURE.PENDING to charge.pending with its reason', async () => {
    const [event] = await normalize(simulatorDelivery('PENDING').body.toString('utf8'));
    expect(event).toMatchObject({
      type: 'charge.pending',
      gatewayTransactionId: '02T21492PP3782704',
      amount: 251n,
      reason: 'UNILATERAL',
    });
  });

  it('maps PAYMENT.CAPTURE.REFUNDED to refund.succeeded: the refund id, the capture from the up link, this refund’s amount (not the total)', async () => {
    const [event] = await normalize(simulatorDelivery('REFUNDED').body.toString('utf8'));
    expect(event).toMatchObject({
      type: 'refund.succeeded',
      gatewayEventId: 'WH-1GE84257G0350133W-6RW800890C634293G',
      gatewayRefundId: '1Y107995YT783435V',
      gatewayTransactionId: '0JF852973C016714D',
      amount: 99n, // total_refunded_amount is 1.98: an earlier refund of the same capture
      currency: 'USD',
      reference: undefined,
    });
    const [sandbox] = await normalize(paypalFixtureRaw('webhook.PAYMENT.CAPTURE.REFUNDED.json'));
    expect(sandbox).toMatchObject({
      type: 'refund.succeeded',
      gatewayRefundId: '97E25940SA3983253',
      gatewayTransactionId: '5YH4578629195611S',
      amount: 700n,
      currency: 'EUR',
      reason: 'refund from PP',
    });
  });

  it('maps a refund by its status: PENDING → refund.pending, FAILED / CANCELLED → refund.failed; custom_id is the reference', async () => {
    const event = paypalFixture('webhook.PAYMENT.CAPTURE.REFUNDED.json');
    event.resource.custom_id = 're_01abcdefghij0123456789';
    event.resource.status = 'PENDING';
    expect((await normalize(event))[0]).toMatchObject({
      type: 'refund.pending',
      reference: 're_01abcdefghij0123456789',
    });
    event.resource.status = 'FAILED';
    expect((await normalize(event))[0]).toMatchObject({ type: 'refund.failed', failureCode: 'FAILED' });
    event.resource.status = 'CANCELLED';
    expect((await normalize(event))[0]).toMatchObject({ type: 'refund.failed' });
  });

  it('maps PAYMENT.CAPTURE.REVERSED to dispute.lost keyed by the capture (a chargeback loss, not a refund we chose)', async () => {
    const [event] = await normalize(simulatorDelivery('REVERSED').body.toString('utf8'));
    expect(event).toMatchObject({
      type: 'dispute.lost',
      gatewayEventId: 'WH-6F207351SC284371F-0KX52201050121307',
      gatewayTransactionId: '4L335234718889942',
      gatewayDisputeId: '4L335234718889942',
      amount: 251n,
      currency: 'USD',
      reason: 'PAYMENT_REVERSED',
      reversal: true,
    });
  });

  it('marks a dispute of dispute_channel EXTERNAL (a card chargeback) as a reversal, and an INTERNAL claim not', async () => {
    const claim = paypalFixture('constructed/webhook.CUSTOMER.DISPUTE.CREATED.constructed.json');
    expect(claim.resource.dispute_channel).toBe('INTERNAL');
    const [internal] = await normalize(JSON.stringify(claim));
    expect(internal).toMatchObject({ type: 'dispute.opened' });
    expect(internal!.reversal).toBeUndefined();
    claim.resource.dispute_channel = 'EXTERNAL';
    const [external] = await normalize(JSON.stringify(claim));
    expect(external).toMatchObject({ type: 'dispute.opened', reversal: true });
  });

  it('maps CUSTOMER.DISPUTE.CREATED and UPDATED to dispute.opened on the disputed capture (constructed from PayPal’s sample)', async () => {
    const [created] = await normalize(
      paypalFixtureRaw('constructed/webhook.CUSTOMER.DISPUTE.CREATED.constructed.json'),
    );
    expect(created).toMatchObject({
      type: 'dispute.opened',
      gatewayEventId: 'WH-4M0448861G563140B-9EX36365822141321',
      gatewayTransactionId: '6T496768GW863311H',
      gatewayDisputeId: '6T496768GW863311H',
      amount: 300n,
      currency: 'USD',
      reason: 'MERCHANDISE_OR_SERVICE_NOT_RECEIVED',
    });
    const [updated] = await normalize(
      paypalFixtureRaw('constructed/webhook.CUSTOMER.DISPUTE.UPDATED.constructed.json'),
    );
    expect(updated).toMatchObject({ type: 'dispute.opened', gatewayDisputeId: '6T496768GW863311H' });
  });

  it('maps CUSTOMER.DISPUTE.RESOLVED in the buyer’s favour to dispute.lost for the amount refunded', async () => {
    const [resolved] = await normalize(
      paypalFixtureRaw('constructed/webhook.CUSTOMER.DISPUTE.RESOLVED.constructed.json'),
    );
    expect(resolved).toMatchObject({
      type: 'dispute.lost',
      gatewayDisputeId: '6T496768GW863311H',
      amount: 300n,
    });
    const partial = paypalFixture('constructed/webhook.CUSTOMER.DISPUTE.RESOLVED.constructed.json');
    partial.resource.dispute_outcome.amount_refunded.value = '1.50';
    expect((await normalize(partial))[0]).toMatchObject({ type: 'dispute.lost', amount: 150n });
  });

  it.each([
    ['RESOLVED_SELLER_FAVOUR', 'dispute.won'],
    ['CANCELED_BY_BUYER', 'dispute.won'],
    ['DENIED', 'dispute.won'],
    ['RESOLVED_WITH_PAYOUT', 'dispute.won'],
    ['RESOLVED_BUYER_FAVOUR', 'dispute.lost'],
    ['ACCEPTED', 'dispute.lost'],
    ['NONE', 'dispute.opened'],
    ['SOMETHING_NEW', 'dispute.opened'],
  ])('maps a dispute resolved with %s to %s', async (outcome, type) => {
    const event = paypalFixture('constructed/webhook.CUSTOMER.DISPUTE.RESOLVED.constructed.json');
    event.resource.dispute_outcome = { outcome_code: outcome };
    expect((await normalize(event))[0]!.type).toBe(type);
  });

  it('ignores event types billhook does not reconcile (CHECKOUT.ORDER.COMPLETED)', async () => {
    expect(await normalize(paypalFixtureRaw('webhook.CHECKOUT.ORDER.COMPLETED.json'))).toEqual([]);
  });

  it('refuses shapes it cannot book: not JSON, no resource, a fraction finer than the currency, a dispute of two captures', async () => {
    await expect(normalize('nope')).rejects.toThrow(WebhookPayloadError);
    await expect(
      normalize({ id: 'WH-1', event_type: 'PAYMENT.CAPTURE.COMPLETED', create_time: '2024-01-01T00:00:00Z' }),
    ).rejects.toThrow(WebhookPayloadError);
    const capture = paypalFixture('webhook.PAYMENT.CAPTURE.COMPLETED.json');
    capture.resource.amount.value = '2.515';
    await expect(normalize(capture)).rejects.toThrow(/2.515 USD, finer than USD's ISO 4217 minor unit/);
    capture.resource.amount = { currency_code: 'XXY', value: '1.00' };
    await expect(normalize(capture)).rejects.toThrow(WebhookPayloadError);
    const dispute = paypalFixture('constructed/webhook.CUSTOMER.DISPUTE.CREATED.constructed.json');
    dispute.resource.disputed_transactions.push({ seller_transaction_id: '1AB23456CD789012E' });
    await expect(normalize(dispute)).rejects.toThrow(/exactly one capture/);
    const reversal = JSON.parse(simulatorDelivery('REVERSED').body.toString('utf8'));
    reversal.resource.links = [];
    await expect(normalize(reversal)).rejects.toThrow(/no up link/);
  });

  it('reads amounts by PayPal’s currency rules: JPY and HUF without decimals, KWD refused', async () => {
    const capture = paypalFixture('webhook.PAYMENT.CAPTURE.COMPLETED.json');
    capture.resource.amount = { currency_code: 'JPY', value: '500' };
    expect((await normalize(capture))[0]).toMatchObject({ amount: 500n, currency: 'JPY' });
    // HUF "1000" is 1,000.00 HUF = 100000n ISO minor units (PAYPAL_CURRENCIES).
    capture.resource.amount = { currency_code: 'HUF', value: '1000' };
    expect((await normalize(capture))[0]).toMatchObject({ amount: 100_000n, currency: 'HUF' });
    // KWD is not a PayPal currency (https://developer.paypal.com/docs/api/reference/currency-codes/).
    capture.resource.amount = { currency_code: 'KWD', value: '1.234' };
    await expect(normalize(capture)).rejects.toThrow(/PayPal does not take KWD/);
  });
});

describe('PaypalWebhook.verify by PayPal API (PAYPAL_WEBHOOK_VERIFICATION=api)', () => {
  const API = 'https://paypal-api.test';
  const byApi = () =>
    webhook({
      verifyByApi: testPaypalClient(API),
    });

  /** Fakes verify-webhook-signature answering `status` with `body`, keeping what it was asked. */
  function nockVerdict(status: number, body: unknown) {
    const asked: any[] = [];
    nockToken(API).reply(200, TOKEN);
    nock(API)
      .post('/v1/notifications/verify-webhook-signature', (sent) => {
        asked.push(sent);
        return true;
      })
      .matchHeader('authorization', `Bearer ${TOKEN.access_token}`)
      .reply(status, body as nock.Body);
    return asked;
  }

  it('sends the delivery headers, the webhook id and the event as JSON; SUCCESS verifies without fetching a certificate', async () => {
    const { body, headers } = simulatorDelivery('COMPLETED');
    const asked = nockVerdict(200, { verification_status: 'SUCCESS' });
    const delivery = await byApi().verify(body, headers);
    expect(delivery).toEqual({
      eventId: 'WH-58D329510W468432D-8HN650336L201105X',
      eventType: 'PAYMENT.CAPTURE.COMPLETED',
    });
    expect(asked).toEqual([
      {
        auth_algo: 'SHA256withRSA',
        cert_url: headers['paypal-cert-url'],
        transmission_id: headers['paypal-transmission-id'],
        transmission_sig: headers['paypal-transmission-sig'],
        transmission_time: headers['paypal-transmission-time'],
        webhook_id: SIMULATOR_WEBHOOK_ID,
        webhook_event: JSON.parse(body.toString('utf8')),
      },
    ]);
    // No certificate interceptor was set up and the net is off: nothing else was fetched.
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('refuses a FAILURE verdict; no verdict (5xx, no answer) is GatewayUnreachable, so PayPal retries', async () => {
    const { body, headers } = simulatorDelivery('COMPLETED');
    nockVerdict(200, { verification_status: 'FAILURE' });
    await expect(byApi().verify(body, headers)).rejects.toThrow(WebhookVerificationError);
    nockVerdict(500, { name: 'INTERNAL_SERVICE_ERROR' });
    await expect(byApi().verify(body, headers)).rejects.toThrow(GatewayUnreachable);
    // The header checks still come first: a foreign certificate URL is never sent to PayPal.
    await expect(
      byApi().verify(body, {
        ...headers,
        'paypal-cert-url': 'https://evil.example/v1/notifications/certs/x',
      }),
    ).rejects.toThrow(WebhookVerificationError);
  });
});
