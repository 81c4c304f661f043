import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../../src/db/ids.ts';
import { attemptCreatedAt } from '../../../src/gateways/attempts.ts';
import { parsePaymentSource } from '../../../src/gateways/paypal/conventions.ts';
import type { ChargeRequest } from '../../../src/gateways/types.ts';
import { ANSWERED_CALL_TIMEOUT_MS, HANGING_CALL_TIMEOUT_MS, noAnswer } from '../../support/timeouts.ts';
import { nockToken, paypalFixture, TOKEN, testPaypalClient } from './fixtures.ts';

const BASE = 'https://paypal.client.test';
const VAULTED = paypalFixture('api.orders.create.vaulted_card_capture.completed.json');
const DECLINED = paypalFixture('api.orders.capture.card_declined_insufficient_funds.json');
/** The real sandbox capture (Payments v2 `capture-2`, USD 25.07) of VAULTED, as a capture lookup answers. */
const CAPTURE = VAULTED.purchase_units[0].payments.captures[0];

/** A client whose calls time out after `timeoutMs`, its token request after the long timeout. */
const client = (now?: () => number, timeoutMs = ANSWERED_CALL_TIMEOUT_MS) =>
  testPaypalClient(BASE, timeoutMs, now);

const chargeOf = (overrides: Partial<ChargeRequest> = {}): ChargeRequest => ({
  reference: newId('txn'),
  amount: 2507n,
  currency: 'USD',
  initiation: 'recurring',
  paymentMethod: { token: '8kk8451t', customerId: null },
  description: 'invoice inv_0001',
  ...overrides,
});

/** A recorded request: its headers (lower-case) and JSON body. */
interface Seen {
  path: string;
  headers: Record<string, string>;
  body: any;
}

function record(seen: Seen[], status: number, reply: unknown) {
  return async (request: Request) => {
    const text = await request.text();
    seen.push({
      path: new URL(request.url).pathname,
      headers: Object.fromEntries(request.headers.entries()),
      body: text ? JSON.parse(text) : undefined,
    });
    return [status, reply] as const;
  };
}

beforeAll(() => {
  nock.disableNetConnect();
});
afterEach(() => {
  expect(nock.pendingMocks()).toEqual([]);
  nock.cleanAll();
});
afterAll(() => {
  nock.enableNetConnect();
});

describe('PaypalClient.charge', () => {
  it('creates an order with intent CAPTURE, the vaulted card, a decimal-string amount, our reference as custom_id, invoice_id and PayPal-Request-Id', async () => {
    nockToken(BASE).reply(200, TOKEN);
    const seen: Seen[] = [];
    nock(BASE)
      .post('/v2/checkout/orders')
      .reply(record(seen, 201, VAULTED));
    const charge = chargeOf();
    expect(await client().charge(charge)).toEqual({
      status: 'succeeded',
      gatewayTransactionId: '0XX3309307732590Y',
      // payment_source.card: brand DISCOVER, last_digits 0004, expiry 2029-01.
      card: { brand: 'DISCOVER', last4: '0004', expMonth: 1, expYear: 2029 },
    });
    expect(seen).toHaveLength(1);
    const [request] = seen;
    expect(request!.headers).toMatchObject({
      authorization: `Bearer ${TOKEN.access_token}`,
      'paypal-request-id': charge.reference,
      prefer: 'return=representation',
      'content-type': 'application/json',
    });
    expect(request!.body).toEqual({
      intent: 'CAPTURE',
      payment_source: {
        card: {
          vault_id: '8kk8451t',
          // A recurring charge (chargeOf's initiation) is a merchant-initiated subsequent RECURRING use.
          stored_credential: {
            payment_initiator: 'MERCHANT',
            payment_type: 'RECURRING',
            usage: 'SUBSEQUENT',
          },
        },
      },
      purchase_units: [
        {
          amount: { currency_code: 'USD', value: '25.07' },
          custom_id: charge.reference,
          invoice_id: charge.reference,
          description: 'invoice inv_0001',
        },
      ],
    });
  });

  it('marks an unscheduled merchant-initiated charge payment_type UNSCHEDULED', async () => {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE)
      .post(
        '/v2/checkout/orders',
        (body) =>
          JSON.stringify(body.payment_source.card.stored_credential) ===
          JSON.stringify({ payment_initiator: 'MERCHANT', payment_type: 'UNSCHEDULED', usage: 'SUBSEQUENT' }),
      )
      .reply(201, VAULTED);
    expect((await client().charge(chargeOf({ initiation: 'unscheduled' }))).status).toBe('succeeded');
  });

  it('uses payment_source.paypal.vault_id for a `paypal:` token, and PayPal’s decimals (JPY and HUF none)', async () => {
    nockToken(BASE).reply(200, TOKEN);
    const seen: Seen[] = [];
    nock(BASE)
      .post('/v2/checkout/orders')
      .times(2)
      .reply(record(seen, 201, VAULTED));
    const paypal = client();
    await paypal.charge(
      chargeOf({
        paymentMethod: { token: 'paypal:3dk95qqrz', customerId: 'cust-1' },
        amount: 500n,
        currency: 'jpy',
      }),
    );
    // HUF 1,000.00 is 100000n ISO minor units; PayPal takes HUF without decimals
    // (https://developer.paypal.com/docs/api/reference/currency-codes/): "1000", not "1000.00".
    await paypal.charge(chargeOf({ amount: 100_000n, currency: 'HUF' }));
    expect(seen[0]!.body.payment_source).toEqual({ paypal: { vault_id: '3dk95qqrz' } });
    expect(seen[0]!.body.purchase_units[0].amount).toEqual({ currency_code: 'JPY', value: '500' });
    expect(seen[1]!.body.purchase_units[0].amount).toEqual({ currency_code: 'HUF', value: '1000' });
  });

  it('declines without a call an amount PayPal cannot take: HUF 1000.50, or KWD (not a PayPal currency)', async () => {
    // No nock: any request would fail the test (net connect is disabled).
    const paypal = client();
    expect(await paypal.charge(chargeOf({ amount: 100_050n, currency: 'HUF' }))).toMatchObject({
      status: 'declined',
      code: 'amount_not_representable',
      message: expect.stringContaining('PayPal cannot take 1000.50 HUF'),
    });
    expect(await paypal.charge(chargeOf({ amount: 1234n, currency: 'KWD' }))).toMatchObject({
      status: 'declined',
      code: 'amount_not_representable',
      message: expect.stringContaining('PayPal does not take KWD'),
    });
  });

  it('reuses the token until it expires (one token call for two charges)', async () => {
    const tokenScope = nockToken(BASE).once().reply(200, TOKEN);
    nock(BASE).post('/v2/checkout/orders').times(2).reply(201, VAULTED);
    const paypal = client();
    await paypal.charge(chargeOf());
    await paypal.charge(chargeOf());
    expect(tokenScope.isDone()).toBe(true);
  });

  it('on a 401 drops the token, fetches a new one and repeats the call once with the same PayPal-Request-Id', async () => {
    nockToken(BASE).reply(200, { ...TOKEN, access_token: 'old-token' });
    nockToken(BASE).reply(200, { ...TOKEN, access_token: 'new-token' });
    const seen: Seen[] = [];
    nock(BASE)
      .post('/v2/checkout/orders')
      .reply(record(seen, 401, paypalFixture('constructed/api.error.401.constructed.json')));
    nock(BASE)
      .post('/v2/checkout/orders')
      .reply(record(seen, 201, VAULTED));
    const charge = chargeOf();
    expect(await client().charge(charge)).toMatchObject({ status: 'succeeded' });
    expect(seen.map((s) => s.headers.authorization)).toEqual(['Bearer old-token', 'Bearer new-token']);
    expect(seen.map((s) => s.headers['paypal-request-id'])).toEqual([charge.reference, charge.reference]);
  });

  it('treats a capture DECLINED inside an HTTP 201 order as a decline, keeping the processor codes', async () => {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE).post('/v2/checkout/orders').reply(201, DECLINED);
    expect(await client().charge(chargeOf({ amount: 2504n }))).toEqual({
      status: 'declined',
      code: '5120',
      message: 'capture 33U97269RT3112322 DECLINED: response_code 5120, avs_code G, cvv_code P',
      gatewayTransactionId: '33U97269RT3112322',
    });
  });

  it('maps a PENDING capture to pending with the capture id', async () => {
    nockToken(BASE).reply(200, TOKEN);
    const pending = structuredClone(VAULTED);
    pending.purchase_units[0].payments.captures[0].status = 'PENDING';
    pending.purchase_units[0].payments.captures[0].status_details = { reason: 'PENDING_REVIEW' };
    nock(BASE).post('/v2/checkout/orders').reply(201, pending);
    expect(await client().charge(chargeOf())).toEqual({
      status: 'pending',
      gatewayTransactionId: '0XX3309307732590Y',
    });
  });

  it('maps the order of the capture fixture (api.orders.capture.completed.json) to succeeded', async () => {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE).post('/v2/checkout/orders').reply(200, paypalFixture('api.orders.capture.completed.json'));
    expect(await client().charge(chargeOf({ amount: 10000n }))).toEqual({
      status: 'succeeded',
      gatewayTransactionId: '3C679366HH908993F',
    });
  });

  it('declines a 422 INSTRUMENT_DECLINED with PayPal’s issue and description', async () => {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE)
      .post('/v2/checkout/orders')
      .reply(422, paypalFixture('constructed/api.orders.create.instrument_declined.422.constructed.json'));
    expect(await client().charge(chargeOf())).toEqual({
      status: 'declined',
      code: 'INSTRUMENT_DECLINED',
      message:
        "The instrument presented was either declined by the processor or bank, or it can't be used for this payment. (debug_id c9a75b43fc807)",
    });
  });

  it('declines an order that needs the payer (PAYER_ACTION_REQUIRED) without a capture', async () => {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE)
      .post('/v2/checkout/orders')
      .reply(200, { id: '5O190127TN364715T', status: 'PAYER_ACTION_REQUIRED', links: [] });
    expect(await client().charge(chargeOf())).toMatchObject({
      status: 'declined',
      code: 'PAYER_ACTION_REQUIRED',
    });
  });

  it.each([
    ['a 500', 500, paypalFixture('constructed/api.error.500.constructed.json')],
    ['a 503', 503, ''],
    [
      'a 409 (request in progress)',
      409,
      { name: 'CONFLICT', details: [{ issue: 'PREVIOUS_REQUEST_IN_PROGRESS' }] },
    ],
    ['a 429', 429, { name: 'RATE_LIMIT_REACHED' }],
    [
      'a 422 DUPLICATE_INVOICE_ID (PayPal already has this payment)',
      422,
      paypalFixture('constructed/api.orders.create.duplicate_invoice_id.422.constructed.json'),
    ],
    ['an unreadable 201', 201, '<html>oops</html>'],
    ['an order without a capture', 201, { id: '5O190127TN364715T', status: 'APPROVED' }],
  ])('leaves %s unknown', async (_what, status, body) => {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE).post('/v2/checkout/orders').reply(status, body);
    expect((await client().charge(chargeOf())).status).toBe('unknown');
  });

  it('leaves a timeout unknown', async () => {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE).post('/v2/checkout/orders').reply(noAnswer);
    const outcome = await client(undefined, HANGING_CALL_TIMEOUT_MS).charge(chargeOf());
    expect(outcome).toMatchObject({ status: 'unknown', message: expect.stringMatching(/TimeoutError/) });
  });

  it('declines without a call when the token is not a vault id, and when PayPal refuses the credentials', async () => {
    expect(
      await client().charge(
        chargeOf({ paymentMethod: { token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi:x', customerId: null } }),
      ),
    ).toMatchObject({
      status: 'declined',
      code: 'invalid_payment_method',
    });
    nockToken(BASE).reply(401, {
      error: 'invalid_client',
      error_description: 'Client Authentication failed',
    });
    expect(await client().charge(chargeOf())).toMatchObject({
      status: 'declined',
      code: 'authentication_failed',
    });
  });

  it('leaves an unreachable token endpoint unknown', async () => {
    nockToken(BASE).replyWithError('connect ECONNREFUSED');
    expect((await client().charge(chargeOf())).status).toBe('unknown');
  });
});

describe('PaypalClient.refund', () => {
  const refundOf = (amount = 250n) => ({
    reference: 're_01jh3k9q2m4v8c1xk0bd',
    chargeReference: 'txn_01jh3k9q2m4v8c1xk0bc',
    gatewayTransactionId: '2GG279541U471931P',
    amount,
    currency: 'USD',
    paymentMethod: { token: '8kk8451t', customerId: null },
    reason: 'requested_by_customer',
  });

  it('posts the amount, our refund id as custom_id and PayPal-Request-Id, and the reason to the capture’s refund', async () => {
    nockToken(BASE).reply(200, TOKEN);
    const seen: Seen[] = [];
    nock(BASE)
      .post('/v2/payments/captures/2GG279541U471931P/refund')
      .reply(record(seen, 201, paypalFixture('api.captures.refund.completed.json')));
    expect(await client().refund(refundOf())).toEqual({
      status: 'succeeded',
      gatewayRefundId: '1JU08902781691411',
    });
    expect(seen[0]!.headers['paypal-request-id']).toBe('re_01jh3k9q2m4v8c1xk0bd');
    expect(seen[0]!.body).toEqual({
      amount: { value: '2.50', currency_code: 'USD' },
      custom_id: 're_01jh3k9q2m4v8c1xk0bd',
      note_to_payer: 'requested_by_customer',
    });
  });

  it.each([
    ['PENDING', { status: 'pending', gatewayRefundId: '1JU08902781691411' }],
    ['FAILED', { status: 'declined', code: 'FAILED', message: 'refund 1JU08902781691411 FAILED' }],
    ['CANCELLED', { status: 'declined', code: 'CANCELLED', message: 'refund 1JU08902781691411 CANCELLED' }],
    [
      'SOMETHING_NEW',
      {
        status: 'unknown',
        message: 'PayPal refund 1JU08902781691411 has status SOMETHING_NEW, which billhook does not know',
      },
    ],
  ])('maps a %s refund', async (status, outcome) => {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE)
      .post('/v2/payments/captures/2GG279541U471931P/refund')
      .reply(201, { ...paypalFixture('api.captures.refund.completed.json'), status });
    expect(await client().refund(refundOf())).toEqual(outcome);
  });

  it('declines a 422 and leaves a 500 unknown', async () => {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE)
      .post('/v2/payments/captures/2GG279541U471931P/refund')
      .reply(422, {
        name: 'UNPROCESSABLE_ENTITY',
        details: [
          { issue: 'CAPTURE_FULLY_REFUNDED', description: 'The capture has already been fully refunded' },
        ],
      });
    nock(BASE).post('/v2/payments/captures/2GG279541U471931P/refund').reply(500, {});
    const paypal = client();
    expect(await paypal.refund(refundOf())).toMatchObject({
      status: 'declined',
      code: 'CAPTURE_FULLY_REFUNDED',
    });
    expect(await paypal.refund(refundOf())).toMatchObject({ status: 'unknown' });
  });
});

describe('PaypalClient.void', () => {
  it('declines with CAPTURE_NOT_VOIDABLE without calling PayPal: a capture can only be refunded', async () => {
    expect(
      await client().void({
        reference: 'txn_x',
        gatewayTransactionId: '2GG279541U471931P',
        amount: 100n,
        currency: 'USD',
      }),
    ).toMatchObject({ status: 'declined', code: 'CAPTURE_NOT_VOIDABLE' });
  });
});

describe('PaypalClient.fetchTransaction', () => {
  it('looks a known capture up: GET /v2/payments/captures/{id}', async () => {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE).get('/v2/payments/captures/0XX3309307732590Y').reply(200, CAPTURE);
    const charge = chargeOf();
    expect(
      await client().fetchTransaction({
        reference: charge.reference,
        gatewayTransactionId: '0XX3309307732590Y',
        charge,
      }),
    ).toEqual({ status: 'succeeded', gatewayTransactionId: '0XX3309307732590Y' });
  });

  it('leaves a capture for another amount or currency, or naming no amount, unknown with what PayPal reports', async () => {
    nockToken(BASE).reply(200, TOKEN);
    const paypal = client();
    const lookUp = (answer: unknown, charge = chargeOf()) => {
      nock(BASE).get('/v2/payments/captures/0XX3309307732590Y').reply(200, answer);
      return paypal.fetchTransaction({
        reference: charge.reference,
        gatewayTransactionId: '0XX3309307732590Y',
        charge,
      });
    };
    // The capture moved 25.07 USD; the charge asked 30.00 USD.
    expect(await lookUp(CAPTURE, chargeOf({ amount: 3000n }))).toEqual({
      status: 'unknown',
      message:
        'PayPal reports transaction 0XX3309307732590Y succeeded for 2507 USD, not the 3000 USD charged (minor units)',
      reported: { amount: 2507n, currency: 'USD' },
    });
    expect(
      await lookUp({ ...CAPTURE, status: 'PENDING', amount: { currency_code: 'EUR', value: '25.07' } }),
    ).toMatchObject({ status: 'unknown', reported: { amount: 2507n, currency: 'EUR' } });
    // The older `{total, currency}` form names no Payments v2 amount.
    expect(
      await lookUp({ ...paypalFixture('api.captures.get.completed.json'), id: '0XX3309307732590Y' }),
    ).toMatchObject({ status: 'unknown', reported: { amount: null, currency: 'USD' } });
    // A decline moved nothing: its amount is not asked.
    expect(await lookUp({ ...CAPTURE, status: 'DECLINED', amount: undefined })).toMatchObject({
      status: 'declined',
    });
  });

  it.each([
    ['PARTIALLY_REFUNDED', 'succeeded'],
    ['REFUNDED', 'succeeded'],
    ['PENDING', 'pending'],
    ['DECLINED', 'declined'],
    ['FAILED', 'declined'],
    ['SOMETHING_NEW', 'unknown'],
  ])('maps a %s capture to %s', async (status, outcome) => {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE)
      .get('/v2/payments/captures/0XX3309307732590Y')
      .reply(200, { ...CAPTURE, status });
    const charge = chargeOf();
    expect(
      (
        await client().fetchTransaction({
          reference: charge.reference,
          gatewayTransactionId: '0XX3309307732590Y',
          charge,
        })
      ).status,
    ).toBe(outcome);
  });

  it('leaves a failed lookup unknown (404, 500)', async () => {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE).get('/v2/payments/captures/2GG279541U471931P').reply(404, { name: 'RESOURCE_NOT_FOUND' });
    const charge = chargeOf();
    expect(
      (
        await client().fetchTransaction({
          reference: charge.reference,
          gatewayTransactionId: '2GG279541U471931P',
          charge,
        })
      ).status,
    ).toBe('unknown');
  });

  it('without a capture id repeats the create with the same PayPal-Request-Id and body, which PayPal answers with the original order', async () => {
    nockToken(BASE).reply(200, TOKEN);
    const seen: Seen[] = [];
    nock(BASE)
      .post('/v2/checkout/orders')
      .reply(record(seen, 200, VAULTED));
    const charge = chargeOf();
    expect(await client().fetchTransaction({ reference: charge.reference, charge })).toEqual({
      status: 'succeeded',
      gatewayTransactionId: '0XX3309307732590Y',
      card: { brand: 'DISCOVER', last4: '0004', expMonth: 1, expYear: 2029 },
    });
    expect(seen[0]!.headers['paypal-request-id']).toBe(charge.reference);
    expect(seen[0]!.body.purchase_units[0]).toMatchObject({
      custom_id: charge.reference,
      amount: { value: '25.07' },
    });
  });

  it('leaves a repeat answered with an order captured for another amount unknown, with what PayPal reports', async () => {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE).post('/v2/checkout/orders').reply(200, VAULTED);
    const charge = chargeOf({ amount: 3000n });
    expect(await client().fetchTransaction({ reference: charge.reference, charge })).toMatchObject({
      status: 'unknown',
      reported: { amount: 2507n, currency: 'USD' },
    });
  });

  it('reports a 422 to the repeat as a decline, and other refusals as unknown', async () => {
    nockToken(BASE).reply(200, TOKEN);
    nock(BASE)
      .post('/v2/checkout/orders')
      .reply(422, paypalFixture('constructed/api.orders.create.instrument_declined.422.constructed.json'));
    nock(BASE)
      .post('/v2/checkout/orders')
      .reply(400, { name: 'INVALID_REQUEST', details: [{ issue: 'MISSING_REQUIRED_PARAMETER' }] });
    const paypal = client();
    const charge = chargeOf();
    expect(await paypal.fetchTransaction({ reference: charge.reference, charge })).toMatchObject({
      status: 'declined',
      code: 'INSTRUMENT_DECLINED',
    });
    expect((await paypal.fetchTransaction({ reference: charge.reference, charge })).status).toBe('unknown');
  });

  it('never repeats the create for an attempt older than 5 hours (PayPal keeps the key 6 h) or without a time in its id', async () => {
    const charge = chargeOf();
    const created = attemptCreatedAt(charge.reference)!.getTime();
    const later = client(() => created + 5 * 60 * 60 * 1000 + 1);
    expect(await later.fetchTransaction({ reference: charge.reference, charge })).toMatchObject({
      status: 'unknown',
      message: expect.stringMatching(/older than PayPal keeps a PayPal-Request-Id/),
    });
    const foreign = chargeOf({ reference: 'txn_contract_not_timed' });
    expect((await client().fetchTransaction({ reference: foreign.reference, charge: foreign })).status).toBe(
      'unknown',
    );
  });
});

describe('conventions', () => {
  it('reads the payment source from the token form', () => {
    expect(parsePaymentSource('8kk8451t')).toEqual({ kind: 'card', vaultId: '8kk8451t' });
    expect(parsePaymentSource('card:8kk8451t')).toEqual({ kind: 'card', vaultId: '8kk8451t' });
    expect(parsePaymentSource('paypal:3dk95qqrz')).toEqual({ kind: 'paypal', vaultId: '3dk95qqrz' });
    expect(parsePaymentSource('venmo:3dk95qqrz')).toBeUndefined();
    expect(parsePaymentSource('card:')).toBeUndefined();
    expect(parsePaymentSource('has space')).toBeUndefined();
  });

  it('reads the creation time of our ids', () => {
    const before = Date.now();
    const created = attemptCreatedAt(newId('txn'))!.getTime();
    expect(created).toBeGreaterThanOrEqual(before);
    expect(created).toBeLessThanOrEqual(Date.now());
    expect(attemptCreatedAt('txn_contractpaypal0001')).toBeUndefined();
    expect(attemptCreatedAt('ORDER-123')).toBeUndefined();
  });
});
