import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { attemptCreatedAt } from '../../../src/gateways/attempts.ts';
import { SecurepayClient } from '../../../src/gateways/securepay/client.ts';
import { verdictOf } from '../../../src/gateways/securepay/status.ts';
import type { ChargeRequest } from '../../../src/gateways/types.ts';
import { ANSWERED_CALL_TIMEOUT_MS, HANGING_CALL_TIMEOUT_MS, noAnswer } from '../../support/timeouts.ts';
import { nockToken, PAID, securepayFixture } from './fixtures.ts';

const API = 'https://payments.securepay.test';
const AUTH_URL = 'https://auth.securepay.test/oauth/token';
const TOKEN = 'sp-unit-token';
const CUSTOMER = PAID.customerCode as string;
const PAYMENTS = `/v2/customers/${CUSTOMER}/payments`;
const REFERENCE = PAID.orderId as string;
const FAILED = securepayFixture('api.customers.payments.failed.constructed.json');
const REFUND = securepayFixture('api.orders.refunds.paid.constructed.json');

/** When the attempt REFERENCE was created (our ids carry it). */
const CREATED = attemptCreatedAt(REFERENCE)!.getTime();

/**
 * A client whose calls time out after `timeoutMs`, its token request after the long timeout, and
 * whose clock reads `now` (default a minute after the attempt REFERENCE, as the first status check).
 */
const client = (timeoutMs = ANSWERED_CALL_TIMEOUT_MS, now = () => CREATED + 61_000) =>
  new SecurepayClient({
    clientId: 'sp-client-id',
    clientSecret: 'sp-client-secret',
    merchantCode: '5AR0055',
    apiBase: API,
    authUrl: AUTH_URL,
    timeoutMs,
    tokenTimeoutMs: ANSWERED_CALL_TIMEOUT_MS,
    now,
  });

const charge: ChargeRequest = {
  reference: REFERENCE,
  amount: 10000n,
  currency: 'aud',
  initiation: 'recurring',
  paymentMethod: { token: PAID.token, customerId: CUSTOMER },
  description: 'invoice inv_x',
};

/** Token + one payment call answered with `status` and `body`. */
function nockPayment(status: number, body?: unknown) {
  nockToken(AUTH_URL, TOKEN);
  return nock(API)
    .post(PAYMENTS)
    .reply(status, body as nock.Body);
}

/**
 * Token + one POST to `path`, keeping the JSON body SecurePay would receive: returns the
 * interceptor (to add header checks and the reply) and `sent()`, the body once it was posted.
 */
function capturePost(path: string) {
  let sent: any;
  nockToken(AUTH_URL, TOKEN);
  const interceptor = nock(API).post(path, (body) => {
    sent = body;
    return true;
  });
  return { interceptor, sent: () => sent };
}

describe('SecurepayClient', () => {
  beforeAll(() => nock.disableNetConnect());
  afterEach(() => {
    expect(nock.pendingMocks()).toEqual([]);
    nock.abortPendingRequests();
    nock.cleanAll();
  });
  afterAll(() => nock.enableNetConnect());

  describe('charge', () => {
    it('POSTs the stored card to /v2/customers/{customerCode}/payments: Bearer token, Idempotency-Key and orderId = our reference, integer cents', async () => {
      const posted = capturePost(PAYMENTS);
      posted.interceptor
        .matchHeader('authorization', `Bearer ${TOKEN}`)
        .matchHeader('idempotency-key', REFERENCE)
        .matchHeader('content-type', 'application/json')
        .reply(201, PAID);
      expect(await client().charge(charge)).toEqual({ status: 'succeeded', gatewayTransactionId: REFERENCE });
      // The same keys as SecurePay's documented request example, plus customerCode and currency.
      const docsSample = securepayFixture('api.payments.create.request.docs-sample.json');
      expect(Object.keys(posted.sent()).sort()).toEqual(
        [...Object.keys(docsSample), 'customerCode', 'currency'].sort(),
      );
      expect(posted.sent()).toEqual({
        amount: 10000,
        merchantCode: '5AR0055',
        token: PAID.token,
        ip: '127.0.0.1',
        orderId: REFERENCE,
        customerCode: CUSTOMER,
        currency: 'AUD',
      });
      expect(Number.isInteger(posted.sent().amount)).toBe(true);
      // The documented header names, with our reference as the Idempotency-Key.
      const docsHeaders = securepayFixture('api.payments.create.request.docs-sample.headers.json');
      expect(Object.keys(docsHeaders).map((h) => h.toLowerCase())).toEqual([
        'content-type',
        'idempotency-key',
        'authorization',
      ]);
    });

    it('sends NZD cents unchanged (two-decimal, as SecurePay\'s "amount in cents")', async () => {
      const posted = capturePost(PAYMENTS);
      posted.interceptor.reply(201, { ...PAID, amount: 1234, currency: 'NZD' });
      expect((await client().charge({ ...charge, currency: 'NZD', amount: 1234n })).status).toBe('succeeded');
      expect(posted.sent()).toMatchObject({ amount: 1234, currency: 'NZD' });
    });

    it.each([
      ['JPY', 5000n],
      ['KWD', 1234n],
    ])(
      'declines %s without a call: "cents" is undocumented for a currency that is not two-decimal',
      async (currency, amount) => {
        // SECUREPAY_CURRENCIES: SecurePay documents `amount` in cents only; JPY 5000 could be read as
        // ¥5,000 or ¥50, so it is refused (no nock: any request would fail the test).
        expect(await client().charge({ ...charge, currency, amount })).toMatchObject({
          status: 'declined',
          code: 'amount_not_representable',
          message: expect.stringContaining(`SecurePay does not take ${currency}`),
        });
      },
    );

    it('url-encodes the customer code in the path', async () => {
      nockToken(AUTH_URL, TOKEN);
      nock(API)
        .post('/v2/customers/cust%2Fweird%20code/payments')
        .reply(201, { ...PAID, customerCode: 'cust/weird code' });
      const outcome = await client().charge({
        ...charge,
        paymentMethod: { token: PAID.token, customerId: 'cust/weird code' },
      });
      expect(outcome.status).toBe('succeeded');
    });

    it('declines without sending anything when the payment method has no SecurePay customer code', async () => {
      const outcome = await client().charge({
        ...charge,
        paymentMethod: { token: PAID.token, customerId: null },
      });
      expect(outcome).toMatchObject({ status: 'declined', code: 'missing_customer_code' });
      expect(outcome.status === 'declined' && outcome.message).toMatch(/gateway_customer_id/);
    });

    it('takes the stored card as gateway_token = customerCode/instrumentToken too (PRODUCT.md §6)', async () => {
      const posted = capturePost(PAYMENTS);
      posted.interceptor.reply(201, PAID);
      const outcome = await client().charge({
        ...charge,
        paymentMethod: { token: `${CUSTOMER}/${PAID.token}`, customerId: null },
      });
      expect(outcome.status).toBe('succeeded');
      expect(posted.sent()).toMatchObject({ customerCode: CUSTOMER, token: PAID.token });
      for (const token of ['/only-instrument', 'only-code/', 'no-slash-at-all']) {
        const declined = await client().charge({ ...charge, paymentMethod: { token, customerId: null } });
        expect(declined, token).toMatchObject({ status: 'declined', code: 'missing_customer_code' });
      }
    });

    it('maps status failed (HTTP 201) to a decline with the bank code and message', async () => {
      nockPayment(201, FAILED);
      expect(await client().charge(charge)).toEqual({
        status: 'declined',
        code: '51',
        message: 'Insufficient Funds',
        gatewayTransactionId: REFERENCE,
      });
    });

    it('maps failed with a bank decline code (HTTP 200) to a decline, errorCode in the message', async () => {
      nockPayment(200, {
        ...FAILED,
        status: 'failed',
        gatewayResponseCode: '05',
        gatewayResponseMessage: 'Do Not Honour',
        errorCode: 'BANK_DECLINED',
      });
      expect(await client().charge(charge)).toEqual({
        status: 'declined',
        code: '05',
        message: 'Do Not Honour (errorCode: BANK_DECLINED)',
        gatewayTransactionId: REFERENCE,
      });
    });

    it.each([
      // SecurePay's own "unknown", with the bank code the issue reports: never a decline.
      ['unknown with a bank code', { status: 'unknown', gatewayResponseCode: '05', errorCode: 'UNKNOWN' }],
      ['unknown without a bank code', { status: 'unknown', gatewayResponseCode: null }],
      // A status status.ts does not list, with and without an approval or decline code.
      ['an unlisted status with a decline code', { status: 'declined', gatewayResponseCode: '51' }],
      ['an unlisted status without a code', { status: 'processing', gatewayResponseCode: undefined }],
    ])('leaves the outcome unknown for %s (PRODUCT.md §11)', async (_name, fields) => {
      nockPayment(201, { ...PAID, gatewayResponseMessage: 'Unexpected response', ...fields });
      expect(await client().charge(charge)).toMatchObject({
        status: 'unknown',
        message: expect.stringMatching(new RegExp(`status ${fields.status}`)),
      });
    });

    it('maps a 400 {"errors": [...]} to a decline with SecurePay code and every detail', async () => {
      nockPayment(400, {
        errors: [
          ...securepayFixture('api.error.400.invalid_order_id.constructed.json').errors,
          { id: 'x', code: 'INVALID_AMOUNT', detail: 'amount must be positive' },
        ],
      });
      expect(await client().charge(charge)).toEqual({
        status: 'declined',
        code: 'INVALID_ORDER_ID',
        message: 'INVALID_ORDER_ID: orderId is invalid; INVALID_AMOUNT: amount must be positive',
      });
    });

    it('maps a 404 without a body to a decline with the HTTP status as code', async () => {
      nockPayment(404);
      expect(await client().charge(charge)).toMatchObject({ status: 'declined', code: 'http_404' });
    });

    it.each([
      ['500 with the errors body', 500, securepayFixture('api.error.500.constructed.json')],
      ['502 without a body', 502, undefined],
      ['503', 503, 'Service Unavailable'],
      ['409 (a conflict on the Idempotency-Key)', 409, undefined],
      ['429 (rate limited)', 429, undefined],
      ['201 whose body is not a payment', 201, '<html>oops</html>'],
      ['201 with an amount as a float', 201, { ...PAID, amount: 100.5 }],
    ])('leaves the outcome unknown for %s', async (_name, status, body) => {
      nockPayment(status, body);
      expect((await client().charge(charge)).status).toBe('unknown');
    });

    it('leaves the outcome unknown when the answer names another order or amount', async () => {
      nockPayment(201, { ...PAID, orderId: 'txn_someoneelse000000000' });
      expect(await client().charge(charge)).toMatchObject({
        status: 'unknown',
        message: expect.stringMatching(/names orderId/),
      });
      nockPayment(201, { ...PAID, amount: 9999 });
      expect(await client().charge(charge)).toMatchObject({
        status: 'unknown',
        message: expect.stringMatching(/names 9999 AUD/),
      });
      nockPayment(201, { ...PAID, currency: 'NZD' });
      expect(await client().charge(charge)).toMatchObject({
        status: 'unknown',
        message: expect.stringMatching(/names 10000 NZD/),
      });
    });

    it('holds an answer that names no order to the amount and currency sent too', async () => {
      nockPayment(201, { ...PAID, orderId: undefined, amount: 5000 });
      expect(await client().charge(charge)).toMatchObject({
        status: 'unknown',
        message: expect.stringMatching(/names 5000 AUD/),
      });
      nockPayment(201, { ...PAID, orderId: undefined, currency: 'NZD' });
      expect(await client().charge(charge)).toMatchObject({
        status: 'unknown',
        message: expect.stringMatching(/names 10000 NZD/),
      });
      // Naming no order, with the amount and currency sent, it counts (outside a repeat).
      nockPayment(201, { ...PAID, orderId: undefined });
      expect((await client().charge(charge)).status).toBe('succeeded');
    });

    it('leaves the outcome unknown on a timeout and on a network error', async () => {
      nockToken(AUTH_URL, TOKEN);
      nock(API).post(PAYMENTS).reply(noAnswer);
      expect(await client(HANGING_CALL_TIMEOUT_MS).charge(charge)).toMatchObject({
        status: 'unknown',
        message: expect.stringMatching(/TimeoutError|abort/i),
      });
      nockToken(AUTH_URL, TOKEN);
      nock(API).post(PAYMENTS).replyWithError('socket hang up');
      expect((await client().charge(charge)).status).toBe('unknown');
    });
  });

  describe('refund', () => {
    const refund = {
      reference: 're_01jh3k9q2m4v8c1xk0bd',
      chargeReference: REFERENCE,
      gatewayTransactionId: REFERENCE,
      amount: 2500n,
      currency: 'AUD',
      paymentMethod: charge.paymentMethod,
    };

    it('POSTs /v2/orders/{orderId}/refunds with the refund reference as Idempotency-Key and {merchantCode, ip, amount}', async () => {
      const posted = capturePost(`/v2/orders/${REFERENCE}/refunds`);
      posted.interceptor
        .matchHeader('authorization', `Bearer ${TOKEN}`)
        .matchHeader('idempotency-key', refund.reference)
        .reply(201, REFUND);
      expect(await client().refund(refund)).toEqual({
        status: 'succeeded',
        gatewayRefundId: refund.reference,
      });
      expect(posted.sent()).toEqual({ merchantCode: '5AR0055', ip: '127.0.0.1', amount: 2500 });
    });

    it('maps failed to a decline, status unknown to unknown, 400 to a decline, 5xx and timeouts to unknown', async () => {
      const securepay = client();
      nockToken(AUTH_URL, TOKEN);
      const path = `/v2/orders/${REFERENCE}/refunds`;
      nock(API)
        .post(path)
        .reply(201, {
          ...REFUND,
          status: 'failed',
          gatewayResponseCode: '12',
          gatewayResponseMessage: 'Invalid Transaction',
        });
      expect(await securepay.refund(refund)).toEqual({
        status: 'declined',
        code: '12',
        message: 'Invalid Transaction',
      });
      nock(API)
        .post(path)
        .reply(201, {
          ...REFUND,
          status: 'unknown',
          gatewayResponseCode: '05',
          gatewayResponseMessage: null,
        });
      expect(await securepay.refund(refund)).toMatchObject({
        status: 'unknown',
        message: expect.stringMatching(/status unknown/),
      });
      nock(API).post(path).reply(400, securepayFixture('api.error.400.invalid_order_id.constructed.json'));
      expect(await securepay.refund(refund)).toMatchObject({ status: 'declined', code: 'INVALID_ORDER_ID' });
      nock(API).post(path).reply(500, securepayFixture('api.error.500.constructed.json'));
      expect((await securepay.refund(refund)).status).toBe('unknown');
      // The timeout on a client of its own: only the call that never gets an answer has a short one.
      nockToken(AUTH_URL, TOKEN);
      nock(API).post(path).reply(noAnswer);
      expect((await client(HANGING_CALL_TIMEOUT_MS).refund(refund)).status).toBe('unknown');
      nock(API)
        .post(path)
        .reply(201, { ...REFUND, amount: 2400 });
      expect((await securepay.refund(refund)).status).toBe('unknown');
    });

    it('reads the repeat of a refund left unknown strictly: paid settles it, a refusal or an answer without the order stays unknown', async () => {
      const securepay = client();
      const repeat = { ...refund, repeat: true };
      const path = `/v2/orders/${REFERENCE}/refunds`;
      nockToken(AUTH_URL, TOKEN);
      nock(API)
        .post(path)
        .matchHeader('idempotency-key', refund.reference)
        .reply(201, { ...REFUND, orderId: REFERENCE, amount: 2500 });
      expect(await securepay.refund(repeat)).toEqual({
        status: 'succeeded',
        gatewayRefundId: refund.reference,
      });
      // The repeat of a refund that may already have been made: SecurePay's refusal is not a decline.
      nock(API).post(path).reply(400, securepayFixture('api.error.400.invalid_order_id.constructed.json'));
      expect(await securepay.refund(repeat)).toMatchObject({
        status: 'unknown',
        message: expect.stringMatching(/the repeat was refused \(HTTP 400, INVALID_ORDER_ID/),
      });
      const { orderId: _omitted, ...withoutOrder } = { ...REFUND, amount: 2500 };
      nock(API).post(path).reply(201, withoutOrder);
      expect(await securepay.refund(repeat)).toMatchObject({
        status: 'unknown',
        message: expect.stringMatching(/does not name an orderId/),
      });
      // The first send of the same answers: a refusal declines, an answer without the order counts.
      nock(API).post(path).reply(400, securepayFixture('api.error.400.invalid_order_id.constructed.json'));
      expect(await securepay.refund(refund)).toMatchObject({ status: 'declined', code: 'INVALID_ORDER_ID' });
      nock(API).post(path).reply(201, withoutOrder);
      expect((await securepay.refund(refund)).status).toBe('succeeded');
      // …but not one of another amount.
      nock(API)
        .post(path)
        .reply(201, { ...withoutOrder, amount: 2400 });
      expect(await securepay.refund(refund)).toEqual({
        status: 'unknown',
        message:
          'SecurePay answered HTTP 201, but the answer names 2400 AUD, not the 2500 AUD sent (minor units)',
      });
    });
  });

  describe('void', () => {
    it('declines without a call: SecurePay cancels only pre-authorisations, billhook charges are captured', async () => {
      expect(
        await client().void({
          reference: REFERENCE,
          gatewayTransactionId: REFERENCE,
          amount: 10000n,
          currency: 'AUD',
        }),
      ).toMatchObject({
        status: 'declined',
        code: 'not_a_preauthorisation',
        message: expect.stringMatching(/refund it instead/),
      });
    });
  });

  describe('fetchTransaction (the idempotent repeat)', () => {
    const query = { reference: REFERENCE, charge };

    it('repeats the original charge with the same Idempotency-Key and orderId and reports paid as succeeded', async () => {
      const posted = capturePost(PAYMENTS);
      posted.interceptor.matchHeader('idempotency-key', REFERENCE).reply(200, PAID);
      expect(await client().fetchTransaction(query)).toEqual({
        status: 'succeeded',
        gatewayTransactionId: REFERENCE,
      });
      expect(posted.sent()).toMatchObject({ orderId: REFERENCE, amount: 10000, customerCode: CUSTOMER });
    });

    it('reports a decline the repeat names', async () => {
      nockPayment(201, FAILED);
      expect(await client().fetchTransaction(query)).toMatchObject({ status: 'declined', code: '51' });
    });

    it.each([
      ['a timeout', () => nock(API).post(PAYMENTS).reply(noAnswer)],
      [
        'a 500',
        () => nock(API).post(PAYMENTS).reply(500, securepayFixture('api.error.500.constructed.json')),
      ],
      [
        'an answer without an orderId',
        () =>
          nock(API)
            .post(PAYMENTS)
            .reply(201, { ...PAID, orderId: undefined }),
      ],
      [
        'an answer naming another order',
        () =>
          nock(API)
            .post(PAYMENTS)
            .reply(201, { ...PAID, orderId: 'other-order' }),
      ],
      [
        'a 400 refusal (maybe SecurePay refusing a reused orderId)',
        () =>
          nock(API)
            .post(PAYMENTS)
            .reply(400, securepayFixture('api.error.400.invalid_order_id.constructed.json')),
      ],
      ['two 401s', () => nock(API).post(PAYMENTS).times(2).reply(401)],
    ])('stays unknown after %s', async (name, setup) => {
      nockToken(AUTH_URL, TOKEN);
      if (name === 'two 401s') nockToken(AUTH_URL, 'second-token');
      setup();
      const timeoutMs = name === 'a timeout' ? HANGING_CALL_TIMEOUT_MS : ANSWERED_CALL_TIMEOUT_MS;
      expect((await client(timeoutMs).fetchTransaction(query)).status).toBe('unknown');
    });

    it('leaves a paid answer of another amount or currency unknown, naming what SecurePay reports', async () => {
      nockPayment(201, { ...PAID, amount: 5000 });
      expect(await client().fetchTransaction(query)).toEqual({
        status: 'unknown',
        message:
          'SecurePay answered HTTP 201, but the answer names 5000 AUD, not the 10000 AUD sent (minor units)',
        reported: { amount: 5000n, currency: 'AUD' },
      });
      nockPayment(201, { ...PAID, currency: 'NZD' });
      expect(await client().fetchTransaction(query)).toMatchObject({
        status: 'unknown',
        reported: { amount: 10000n, currency: 'NZD' },
      });
    });

    it('leaves a paid answer that names no amount unknown', async () => {
      nockPayment(201, { ...PAID, amount: undefined });
      expect(await client().fetchTransaction(query)).toMatchObject({
        status: 'unknown',
        message: expect.stringMatching(/does not name an amount/),
      });
    });

    it('repeats nothing for an attempt more than an hour old, or whose reference carries no time', async () => {
      // No call is made: an unanswered interceptor would fail the test (afterEach).
      const late = client(ANSWERED_CALL_TIMEOUT_MS, () => CREATED + 60 * 60 * 1000 + 1);
      expect(await late.fetchTransaction(query)).toMatchObject({
        status: 'unknown',
        message: expect.stringMatching(/more than an hour old.*undocumented/),
      });
      // The sweep's clock (`at`) decides when the check gives one.
      expect(await client().fetchTransaction({ ...query, at: new Date(CREATED + 86_400_000) })).toMatchObject(
        {
          status: 'unknown',
          message: expect.stringMatching(/more than an hour old/),
        },
      );
      const untimed = { ...charge, reference: 'order-without-time' };
      expect(
        await client().fetchTransaction({ reference: untimed.reference, charge: untimed }),
      ).toMatchObject({
        status: 'unknown',
        message: expect.stringMatching(/carries no time/),
      });
      // Within the hour the repeat is made.
      const inTime = client(ANSWERED_CALL_TIMEOUT_MS, () => CREATED + 60 * 60 * 1000);
      nockPayment(201, PAID);
      expect(await inTime.fetchTransaction(query)).toMatchObject({ status: 'succeeded' });
    });

    it('refuses to repeat a charge that is not the one asked about', async () => {
      expect(await client().fetchTransaction({ reference: 'txn_other', charge })).toMatchObject({
        status: 'unknown',
        message: expect.stringMatching(/not the one asked about/),
      });
    });
  });
});

describe('the SecurePay status table (status.ts)', () => {
  it.each([
    ['paid', 'succeeded'],
    ['PAID', 'succeeded'],
    ['failed', 'declined'],
    [' Failed ', 'declined'],
    ['unknown', 'unknown'],
    ['UNKNOWN', 'unknown'],
    ['declined', 'unknown'],
    ['processing', 'unknown'],
    ['success', 'unknown'],
  ] as const)('status %s → %s', (status, verdict) => {
    expect(verdictOf(status)).toBe(verdict);
  });
});
