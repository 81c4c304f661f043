import { afterEach, describe, expect, it } from 'vitest';
import { TEST_CERT_URL } from '../../../src/gateways/paypal/certificates.ts';
import {
  buildPaypalTestDelivery,
  PAYPAL_TEST_EVENT_TYPES,
} from '../../../src/gateways/paypal/test-events.ts';
import { PaypalWebhook } from '../../../src/gateways/paypal/webhook.ts';
import { ANSWERED_CALL_TIMEOUT_MS } from '../../support/timeouts.ts';
import { TEST_CERT_PEM, TEST_KEY_FILE } from './fixtures.ts';

const config = { PAYPAL_WEBHOOK_ID: '8PT597110X687430LKGECATA' };
const verifier = new PaypalWebhook({
  webhookId: config.PAYPAL_WEBHOOK_ID,
  timeoutMs: ANSWERED_CALL_TIMEOUT_MS,
  testCertificatePem: TEST_CERT_PEM,
});
const savedKeyFile = process.env.PAYPAL_TEST_KEY_FILE;

afterEach(() => {
  if (savedKeyFile === undefined) delete process.env.PAYPAL_TEST_KEY_FILE;
  else process.env.PAYPAL_TEST_KEY_FILE = savedKeyFile;
});

/** The completed capture, refund and reversal carry their fee breakdown, hence a settlement line. */
const WITH_SETTLEMENT_LINE = new Set([
  'PAYMENT.CAPTURE.COMPLETED',
  'PAYMENT.CAPTURE.REFUNDED',
  'PAYMENT.CAPTURE.REVERSED',
]);

describe('buildPaypalTestDelivery', () => {
  it.each([
    ['PAYMENT.CAPTURE.COMPLETED', 'charge.succeeded', 'txn_01jh3k9q2m4v8c1xk0bd'],
    ['PAYMENT.CAPTURE.DECLINED', 'charge.failed', 'txn_01jh3k9q2m4v8c1xk0bd'],
    ['PAYMENT.CAPTURE.DENIED', 'charge.failed', 'txn_01jh3k9q2m4v8c1xk0bd'],
    ['PAYMENT.CAPTURE.PENDING', 'charge.pending', 'txn_01jh3k9q2m4v8c1xk0bd'],
    ['PAYMENT.CAPTURE.REFUNDED', 'refund.succeeded', 're_01jh3k9q2m4v8c1xk0bd'],
    ['PAYMENT.CAPTURE.REVERSED', 'dispute.lost', undefined],
    ['CUSTOMER.DISPUTE.CREATED', 'dispute.opened', undefined],
    ['CUSTOMER.DISPUTE.UPDATED', 'dispute.opened', undefined],
    ['CUSTOMER.DISPUTE.RESOLVED', 'dispute.won', undefined],
  ])(
    'builds %s, signed so that the verifier in test mode accepts it, normalised to %s',
    async (type, canonical, reference) => {
      const delivery = buildPaypalTestDelivery(
        type,
        { captureId: '0XX3309307732590Y', reference, amount: 2507, currency: 'usd', keyFile: TEST_KEY_FILE },
        config,
      );
      expect(delivery.headers).toMatchObject({
        'paypal-cert-url': TEST_CERT_URL,
        'paypal-auth-algo': 'SHA256withRSA',
        'content-type': 'application/json',
      });
      const verified = await verifier.verify(Buffer.from(delivery.body), delivery.headers);
      expect(verified.eventType).toBe(type);
      expect(verified.eventId).toMatch(/^WH-[A-Z0-9]{17}-[A-Z0-9]{17}$/);
      const [event, ...rest] = await verifier.normalize(delivery.body);
      // A capture, refund or reversal with its fee breakdown also gives its settlement line.
      expect(rest.map((e) => e.type)).toEqual(WITH_SETTLEMENT_LINE.has(type) ? ['settlement.line'] : []);
      expect(event).toMatchObject({
        type: canonical,
        gatewayEventId: verified.eventId,
        gatewayTransactionId: '0XX3309307732590Y',
        amount: 2507n,
        currency: 'USD',
        ...(reference ? { reference } : {}),
      });
    },
  );

  it('covers every event type it advertises', () => {
    expect(PAYPAL_TEST_EVENT_TYPES).toHaveLength(9);
  });

  it('resolves a dispute with the outcome asked for', async () => {
    const delivery = buildPaypalTestDelivery(
      'CUSTOMER.DISPUTE.RESOLVED',
      { amount: 100, currency: 'EUR', disputeOutcome: 'RESOLVED_BUYER_FAVOUR', keyFile: TEST_KEY_FILE },
      config,
    );
    expect((await verifier.normalize(delivery.body))[0]).toMatchObject({
      type: 'dispute.lost',
      amount: 100n,
    });
  });

  it('takes the key from PAYPAL_TEST_KEY_FILE when no key file is given', async () => {
    process.env.PAYPAL_TEST_KEY_FILE = TEST_KEY_FILE;
    const delivery = buildPaypalTestDelivery(
      'PAYMENT.CAPTURE.COMPLETED',
      { amount: 1, currency: 'USD' },
      config,
    );
    await expect(verifier.verify(Buffer.from(delivery.body), delivery.headers)).resolves.toBeDefined();
  });

  it('says what is missing: the event type, the webhook id, the key', () => {
    delete process.env.PAYPAL_TEST_KEY_FILE;
    expect(() =>
      buildPaypalTestDelivery('PAYMENT.SALE.COMPLETED', { amount: 1, currency: 'USD' }, config),
    ).toThrow(/unsupported PayPal event type/);
    expect(() =>
      buildPaypalTestDelivery(
        'PAYMENT.CAPTURE.COMPLETED',
        { amount: 1, currency: 'USD' },
        { PAYPAL_WEBHOOK_ID: undefined },
      ),
    ).toThrow(/PAYPAL_WEBHOOK_ID/);
    expect(() =>
      buildPaypalTestDelivery('PAYMENT.CAPTURE.COMPLETED', { amount: 1, currency: 'USD' }, config),
    ).toThrow(/PAYPAL_TEST_KEY_FILE/);
  });
});
