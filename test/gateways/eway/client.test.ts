import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EwayClient } from '../../../src/gateways/eway/client.ts';
import type { ChargeRequest } from '../../../src/gateways/types.ts';
import { expectEveryMockUsed } from '../../support/nock.ts';
import { ANSWERED_CALL_TIMEOUT_MS, HANGING_CALL_TIMEOUT_MS } from '../../support/timeouts.ts';
import {
  EWAY_TEST_AUTHORIZATION,
  EWAY_TEST_KEY,
  EWAY_TEST_PASSWORD,
  ewayFixture,
  FIXTURE_TOKEN,
} from './fixtures.ts';

const BASE = 'https://eway.client.test';
const client = (apiBase = BASE, timeoutMs = ANSWERED_CALL_TIMEOUT_MS) =>
  new EwayClient({ apiKey: EWAY_TEST_KEY, apiPassword: EWAY_TEST_PASSWORD, apiBase, timeoutMs });

const APPROVED = ewayFixture('api.transaction.token_payment.approved.json');
const CHARGE: ChargeRequest = {
  reference: 'txn_01jcewayclient000001',
  amount: 100n,
  currency: 'AUD',
  initiation: 'recurring',
  paymentMethod: { token: FIXTURE_TOKEN, customerId: null },
  description: 'invoice inv_01jcewayclient00001',
};

/** A POST interceptor that records each request's headers and JSON body. */
function capture(path: string, status: number, answer: unknown) {
  const seen: { headers: Record<string, string>; body: any }[] = [];
  nock(BASE)
    .post(path)
    .reply(async (request: Request) => {
      seen.push({ headers: Object.fromEntries(request.headers), body: JSON.parse(await request.text()) });
      return [status, answer];
    });
  return seen;
}

describe('EwayClient', () => {
  beforeAll(() => {
    nock.disableNetConnect();
    nock.enableNetConnect(/127\.0\.0\.1/);
  });
  afterEach(expectEveryMockUsed);
  afterAll(() => nock.enableNetConnect());

  describe('charge', () => {
    it('sends a Recurring TokenPayment of integer minor units with our id as InvoiceReference', async () => {
      const seen = capture('/Transaction', 200, APPROVED);
      expect(await client().charge(CHARGE)).toEqual({
        status: 'succeeded',
        gatewayTransactionId: '10328337',
        // Customer.CardDetails: Number 444433XXXXXX1111, ExpiryMonth "09", ExpiryYear "15"; no brand.
        card: { brand: null, last4: '1111', expMonth: 9, expYear: 2015 },
      });
      expect(seen).toHaveLength(1);
      expect(seen[0]!.headers).toMatchObject({
        authorization: EWAY_TEST_AUTHORIZATION,
        'content-type': 'application/json',
        'x-eway-apiversion': '47',
      });
      expect(seen[0]!.body).toEqual({
        Customer: { TokenCustomerID: FIXTURE_TOKEN },
        Payment: {
          TotalAmount: 100,
          InvoiceReference: 'txn_01jcewayclient000001',
          InvoiceDescription: 'invoice inv_01jcewayclient00001',
          CurrencyCode: 'AUD',
        },
        Method: 'TokenPayment',
        // CHARGE is a recurring charge; an unscheduled one is MOTO (next test).
        TransactionType: 'Recurring',
      });
      // No card data and no idempotency header: eWAY has none; the InvoiceReference is the key.
      expect(JSON.stringify(seen[0]!.body)).not.toMatch(/CardDetails|Number|CVN/);
      expect(seen[0]!.headers['idempotency-key']).toBeUndefined();
    });

    it('sends an unscheduled merchant-initiated charge as TransactionType MOTO', async () => {
      const seen = capture('/Transaction', 200, APPROVED);
      expect((await client().charge({ ...CHARGE, initiation: 'unscheduled' })).status).toBe('succeeded');
      expect(seen[0]!.body).toMatchObject({ Method: 'TokenPayment', TransactionType: 'MOTO' });
    });

    it.each([
      [500n, 'JPY', 500],
      [1234n, 'KWD', 1234],
      [2500n, 'usd', 2500],
    ])('sends %s minor units of %s as TotalAmount %s', async (amount, currency, total) => {
      const seen = capture('/Transaction', 200, {
        ...APPROVED,
        Payment: { ...APPROVED.Payment, TotalAmount: total, CurrencyCode: currency.toUpperCase() },
      });
      const outcome = await client().charge({ ...CHARGE, amount, currency });
      expect(outcome.status).toBe('succeeded');
      expect(seen[0]!.body.Payment).toMatchObject({
        TotalAmount: total,
        CurrencyCode: currency.toUpperCase(),
      });
      expect(Number.isInteger(seen[0]!.body.Payment.TotalAmount)).toBe(true);
    });

    it('returns the real D4401 bank decline in an HTTP 200 as a decline with its codes', async () => {
      capture('/Transaction', 200, ewayFixture('api.transaction.purchase.declined_D4401.json'));
      expect(await client().charge(CHARGE)).toEqual({
        status: 'declined',
        code: 'D4401',
        message: 'D4401 Refer to Issuer (bank response code 01)',
        gatewayTransactionId: '10324297',
      });
    });

    it('returns the real validation failure (Errors V6040,V6021,…) as a decline with those codes', async () => {
      capture('/Transaction', 200, ewayFixture('api.transaction.token_payment.failed.json'));
      const outcome = await client().charge(CHARGE);
      expect(outcome).toMatchObject({ status: 'declined', code: 'V6040,V6021,V6022,V6101,V6102' });
      expect(outcome.status === 'declined' && outcome.message).toMatch(/^V6040 Invalid TokenCustomerID; /);
      expect(outcome).not.toHaveProperty('gatewayTransactionId');
    });

    it.each([
      [500, 'Internal Server Error'],
      [502, '<html>Bad Gateway</html>'],
      [503, ''],
      [429, { Errors: 'S5029' }],
      [408, ''],
    ])('leaves HTTP %s unknown, never declined', async (status, body) => {
      capture('/Transaction', status, body);
      expect(await client().charge(CHARGE)).toEqual({
        status: 'unknown',
        message: `eWAY answered HTTP ${status}`,
      });
    });

    it('treats a refused request (401 bad credentials, 400 with Errors) as a decline', async () => {
      capture('/Transaction', 401, '');
      expect(await client().charge(CHARGE)).toMatchObject({ status: 'declined', code: 'http_401' });
      capture('/Transaction', 400, { Errors: 'V6011' });
      expect(await client().charge(CHARGE)).toEqual({
        status: 'declined',
        code: 'V6011',
        message: 'V6011 Invalid Payment TotalAmount',
      });
    });

    it('leaves an HTTP 200 it cannot read, or an open status, unknown', async () => {
      capture('/Transaction', 200, '<html>proxy</html>');
      expect((await client().charge(CHARGE)).status).toBe('unknown');
      capture('/Transaction', 200, {
        ...APPROVED,
        TransactionID: null,
        TransactionStatus: false,
        Errors: 'S5666',
      });
      expect(await client().charge(CHARGE)).toEqual({
        status: 'unknown',
        message: 'eWAY: S5666 Transaction in unknown state',
      });
      capture('/Transaction', 200, { ...APPROVED, TransactionStatus: null });
      expect(await client().charge(CHARGE)).toEqual({
        status: 'unknown',
        message: 'eWAY transaction 10328337: eWAY reported no TransactionStatus',
      });
      capture('/Transaction', 200, { ...APPROVED, TotalAmount: 1.5, Payment: { TotalAmount: 1.5 } });
      expect((await client().charge(CHARGE)).status).toBe('unknown');
    });

    it('leaves an approval for another amount or currency (a partial approval) unknown', async () => {
      capture('/Transaction', 200, { ...APPROVED, Payment: { ...APPROVED.Payment, TotalAmount: 50 } });
      const partial = await client().charge(CHARGE);
      expect(partial).toMatchObject({ status: 'unknown' });
      expect(partial.status === 'unknown' && partial.message).toMatch(/approved transaction 10328337 for 50/);
      capture('/Transaction', 200, { ...APPROVED, Payment: { ...APPROVED.Payment, CurrencyCode: 'NZD' } });
      expect((await client().charge(CHARGE)).status).toBe('unknown');
    });

    it('keeps a path prefix of EWAY_API_BASE', async () => {
      nock('https://eway.prefix.test').post('/eway/Transaction').reply(200, APPROVED);
      expect((await client('https://eway.prefix.test/eway/').charge(CHARGE)).status).toBe('succeeded');
    });
  });

  describe('charge without an answer', () => {
    let silent: Server;
    let url: string;
    beforeAll(async () => {
      silent = createServer(() => {
        // Accepts the request and never answers.
      });
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    });

    it('leaves a timed-out charge unknown', async () => {
      const outcome = await client(url, HANGING_CALL_TIMEOUT_MS).charge(CHARGE);
      expect(outcome).toMatchObject({ status: 'unknown' });
      expect(outcome.status === 'unknown' && outcome.message).toMatch(/^POST \/Transaction: TimeoutError/);
    });

    it('leaves a refused connection unknown', async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      expect((await client(`http://127.0.0.1:${port}`).charge(CHARGE)).status).toBe('unknown');
    });
  });

  describe('refund', () => {
    const REFUND = {
      reference: 're_01jcewayrefund000001',
      chargeReference: CHARGE.reference,
      gatewayTransactionId: '10328337',
      amount: 25n,
      currency: 'AUD',
      paymentMethod: CHARGE.paymentMethod,
      reason: 'requested_by_customer',
    };

    it('posts Refund { TransactionID, TotalAmount, InvoiceReference, CurrencyCode } and returns the refund id', async () => {
      const seen = capture('/Transaction/10328337/Refund', 200, ewayFixture('api.refund.approved.json'));
      expect(await client().refund(REFUND)).toEqual({ status: 'succeeded', gatewayRefundId: '10326715' });
      expect(seen[0]!.headers).toMatchObject({
        authorization: EWAY_TEST_AUTHORIZATION,
        'x-eway-apiversion': '47',
      });
      expect(seen[0]!.body).toEqual({
        Refund: {
          TransactionID: 10328337,
          TotalAmount: 25,
          InvoiceReference: 're_01jcewayrefund000001',
          InvoiceDescription: 'requested_by_customer',
          CurrencyCode: 'AUD',
        },
      });
    });

    it('declines with the real S5010 refund failure, and leaves a 5xx unknown', async () => {
      capture('/Transaction/10328337/Refund', 200, ewayFixture('api.refund.failed.json'));
      expect(await client().refund(REFUND)).toEqual({
        status: 'declined',
        code: 'S5010',
        message: 'S5010 Unknown error returned by gateway',
      });
      capture('/Transaction/10328337/Refund', 500, '');
      expect((await client().refund(REFUND)).status).toBe('unknown');
    });

    it('refuses a gateway id that is not an eWAY TransactionID without calling eWAY', async () => {
      expect(
        await client().refund({ ...REFUND, gatewayTransactionId: '../CancelAuthorisation' }),
      ).toMatchObject({
        status: 'declined',
        code: 'invalid_transaction_id',
      });
    });
  });

  describe('void', () => {
    const VOID = {
      reference: CHARGE.reference,
      gatewayTransactionId: '12345678',
      amount: 100n,
      currency: 'AUD',
    };

    it('cancels an authorisation with POST /CancelAuthorisation { TransactionID }', async () => {
      const seen = capture(
        '/CancelAuthorisation',
        200,
        ewayFixture('api.cancel_authorisation.approved.json'),
      );
      expect(await client().void(VOID)).toEqual({ status: 'succeeded' });
      expect(seen[0]!.body).toEqual({ TransactionID: 12345678 });
    });

    it("passes on eWAY's refusal to cancel a captured payment as a decline with its code", async () => {
      capture('/CancelAuthorisation', 200, ewayFixture('api.cancel_authorisation.declined.constructed.json'));
      expect(await client().void(VOID)).toEqual({
        status: 'declined',
        code: 'V6134',
        message: 'V6134 Invalid Auth Transaction ID for Capture/Void',
      });
      capture('/CancelAuthorisation', 502, '');
      expect((await client().void(VOID)).status).toBe('unknown');
    });
  });

  describe('fetchTransaction', () => {
    const query = (change: (t: any) => void = () => {}) => {
      const answer = ewayFixture('api.transaction.query_by_id.json');
      change(answer.Transactions[0]);
      return answer;
    };

    it('queries by TransactionID when the id is known', async () => {
      nock(BASE)
        .get('/Transaction/12345678')
        .matchHeader('authorization', EWAY_TEST_AUTHORIZATION)
        .matchHeader('x-eway-apiversion', '47')
        .reply(
          200,
          query((t) => Object.assign(t, { TotalAmount: 100 })),
        );
      expect(
        await client().fetchTransaction({
          reference: CHARGE.reference,
          gatewayTransactionId: '12345678',
          charge: CHARGE,
        }),
      ).toEqual({ status: 'succeeded', gatewayTransactionId: '12345678' });
    });

    it('queries by our InvoiceReference otherwise, and reports a decline found there', async () => {
      nock(BASE)
        .get(`/Transaction/InvoiceRef/${CHARGE.reference}`)
        .reply(
          200,
          query((t) =>
            Object.assign(t, {
              InvoiceReference: CHARGE.reference,
              TransactionID: 10324297,
              TransactionStatus: false,
              ResponseCode: '01',
              ResponseMessage: 'D4401',
            }),
          ),
        );
      expect(await client().fetchTransaction({ reference: CHARGE.reference, charge: CHARGE })).toEqual({
        status: 'declined',
        code: 'D4401',
        message: 'D4401 Refer to Issuer (bank response code 01)',
        gatewayTransactionId: '10324297',
      });
    });

    it('is not_found when eWAY has no transaction with our reference', async () => {
      nock(BASE)
        .get(`/Transaction/InvoiceRef/${CHARGE.reference}`)
        .reply(200, { Transactions: [], Errors: '' });
      expect(await client().fetchTransaction({ reference: CHARGE.reference, charge: CHARGE })).toEqual({
        status: 'not_found',
      });
      nock(BASE)
        .get(`/Transaction/InvoiceRef/${CHARGE.reference}`)
        .reply(200, { Transactions: [], Errors: 'V6171' });
      expect((await client().fetchTransaction({ reference: CHARGE.reference, charge: CHARGE })).status).toBe(
        'not_found',
      );
    });

    it('is unknown when the query itself fails', async () => {
      nock(BASE)
        .get(`/Transaction/InvoiceRef/${CHARGE.reference}`)
        .reply(200, { Transactions: [], Errors: 'S5000' });
      expect(await client().fetchTransaction({ reference: CHARGE.reference, charge: CHARGE })).toEqual({
        status: 'unknown',
        message: 'eWAY Transaction Query: S5000 System Error',
      });
      nock(BASE).get(`/Transaction/InvoiceRef/${CHARGE.reference}`).reply(500, '');
      expect(await client().fetchTransaction({ reference: CHARGE.reference, charge: CHARGE })).toEqual({
        status: 'unknown',
        message: 'eWAY Transaction Query answered HTTP 500',
      });
      nock(BASE).get(`/Transaction/InvoiceRef/${CHARGE.reference}`).reply(404, '');
      expect((await client().fetchTransaction({ reference: CHARGE.reference, charge: CHARGE })).status).toBe(
        'unknown',
      );
    });

    it('leaves an approval (or authorisation) for another amount or currency unknown, naming what eWAY reports', async () => {
      // The fixture's TotalAmount is 1000 (10.00 AUD); the charge asked was 100 (1.00 AUD).
      nock(BASE).get('/Transaction/12345678').reply(200, query());
      expect(
        await client().fetchTransaction({
          reference: CHARGE.reference,
          gatewayTransactionId: '12345678',
          charge: CHARGE,
        }),
      ).toEqual({
        status: 'unknown',
        message:
          'eWAY reports transaction 12345678 succeeded for 1000 AUD, not the 100 AUD charged (minor units)',
        reported: { amount: 1000n, currency: 'AUD' },
      });
      nock(BASE)
        .get(`/Transaction/InvoiceRef/${CHARGE.reference}`)
        .reply(
          200,
          query((t) =>
            Object.assign(t, {
              InvoiceReference: CHARGE.reference,
              ResponseMessage: 'A2010',
              TotalAmount: 50,
              CurrencyCode: 'AUD',
              TransactionCaptured: false,
            }),
          ),
        );
      expect(await client().fetchTransaction({ reference: CHARGE.reference, charge: CHARGE })).toMatchObject({
        status: 'unknown',
        reported: { amount: 50n, currency: 'AUD' },
      });
      nock(BASE)
        .get(`/Transaction/InvoiceRef/${CHARGE.reference}`)
        .reply(
          200,
          query((t) => Object.assign(t, { TotalAmount: 100, CurrencyCode: 'nzd' })),
        );
      expect(await client().fetchTransaction({ reference: CHARGE.reference, charge: CHARGE })).toMatchObject({
        status: 'unknown',
        reported: { amount: 100n, currency: 'NZD' },
      });
    });

    it('holds only approvals against the charge: a decline for another amount is a decline', async () => {
      nock(BASE)
        .get(`/Transaction/InvoiceRef/${CHARGE.reference}`)
        .reply(
          200,
          query((t) =>
            Object.assign(t, { TransactionStatus: false, ResponseMessage: 'D4451', TotalAmount: 5 }),
          ),
        );
      expect(await client().fetchTransaction({ reference: CHARGE.reference, charge: CHARGE })).toMatchObject({
        status: 'declined',
        code: 'D4451',
      });
    });

    it('prefers an approval among several transactions with our reference; an uncaptured one is pending', async () => {
      const answer = query((t) => Object.assign(t, { TotalAmount: 100 }));
      answer.Transactions = [
        { ...answer.Transactions[0], TransactionID: 1, TransactionStatus: false, ResponseMessage: 'D4405' },
        { ...answer.Transactions[0], TransactionID: 2, TransactionStatus: true },
      ];
      nock(BASE).get(`/Transaction/InvoiceRef/${CHARGE.reference}`).reply(200, answer);
      expect(await client().fetchTransaction({ reference: CHARGE.reference, charge: CHARGE })).toEqual({
        status: 'succeeded',
        gatewayTransactionId: '2',
      });
      nock(BASE)
        .get('/Transaction/12345678')
        .reply(
          200,
          query((t) => Object.assign(t, { TotalAmount: 100, TransactionCaptured: false })),
        );
      expect(
        await client().fetchTransaction({
          reference: CHARGE.reference,
          gatewayTransactionId: '12345678',
          charge: CHARGE,
        }),
      ).toEqual({ status: 'pending', gatewayTransactionId: '12345678' });
    });

    /*
     * Worked by hand (AUD, minor units): one charge of 100 (1.00 AUD) that reached eWAY twice. A partial
     * approval (A2010, 50) and a full one (100) took 150; two full approvals took 200. Neither is one
     * charge of 100 succeeded: unknown, with what eWAY took in all as `reported` (the poller raises
     * amount_mismatch), naming both TransactionIDs. It used to be `succeeded`, 100 booked.
     */
    it('leaves two approvals for one reference unknown, reporting what they took in all', async () => {
      const answerWith = (...changes: Record<string, unknown>[]) => {
        const answer = query();
        const base = { ...answer.Transactions[0], InvoiceReference: CHARGE.reference, CurrencyCode: 'AUD' };
        answer.Transactions = changes.map((change) => ({ ...base, ...change }));
        return answer;
      };
      nock(BASE)
        .get(`/Transaction/InvoiceRef/${CHARGE.reference}`)
        .reply(
          200,
          answerWith(
            { TransactionID: 1, TransactionStatus: true, ResponseMessage: 'A2010', TotalAmount: 50 },
            { TransactionID: 2, TransactionStatus: true, ResponseMessage: 'A2000', TotalAmount: 100 },
          ),
        );
      expect(await client().fetchTransaction({ reference: CHARGE.reference, charge: CHARGE })).toEqual({
        status: 'unknown',
        message:
          'eWAY approved 2 transactions for this one charge (TransactionIDs 1, 2), 150 AUD in all, not the ' +
          '100 AUD charged once (minor units): the money may have been taken more than once',
        reported: { amount: 150n, currency: 'AUD' },
      });
      nock(BASE)
        .get(`/Transaction/InvoiceRef/${CHARGE.reference}`)
        .reply(
          200,
          answerWith(
            { TransactionID: 1, TransactionStatus: false, ResponseMessage: 'D4405', TotalAmount: 100 },
            { TransactionID: 2, TransactionStatus: true, ResponseMessage: 'A2000', TotalAmount: 100 },
            { TransactionID: 3, TransactionStatus: true, ResponseMessage: 'A2000', TotalAmount: 100 },
          ),
        );
      const twice = await client().fetchTransaction({ reference: CHARGE.reference, charge: CHARGE });
      expect(twice).toMatchObject({ status: 'unknown', reported: { amount: 200n, currency: 'AUD' } });
      expect((twice as { message: string }).message).toContain('(TransactionIDs 2, 3), 200 AUD in all');
    });
  });
});
