import { sql } from 'kysely';
import nock from 'nock';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildSecurepayTestDelivery } from '../../src/gateways/securepay/test-events.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { pollDueTransactions } from '../../src/workers/poll-transactions.ts';
import { PAID, securepayFixture } from '../gateways/securepay/fixtures.ts';
import type { TestApp } from '../support/app.ts';
import { ledgerByCode, openInvoice as openGatewayInvoice } from '../support/flow.ts';
import { startHangingWeb, startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { HANGING_AFTER_TOKEN_TIMEOUT_MS, noAnswer } from '../support/timeouts.ts';
import { waitFor, wakeWorkers } from '../support/wait.ts';

const API = 'https://payments.securepay.test';
const AUTH_ORIGIN = 'https://auth.securepay.test';
const CUSTOMER_CODE = PAID.customerCode as string;
const INSTRUMENT_TOKEN = PAID.token as string;
const PAYMENTS = `/v2/customers/${CUSTOMER_CODE}/payments`;

/** What the faked SecurePay saw of one request. */
interface Seen {
  authorization: string;
  idempotencyKey: string;
  body: any;
}

async function readRequest(request: Request): Promise<Seen> {
  return {
    authorization: request.headers.get('authorization') ?? '',
    idempotencyKey: request.headers.get('idempotency-key') ?? '',
    body: await request.json(),
  };
}

/** The token endpoint, for whenever the app's token cache asks (it asks once, then on a 401). */
function tokenEndpoint(token = 'sp-e2e-token') {
  nock(AUTH_ORIGIN)
    .post('/oauth/token')
    .optionally()
    .reply(200, { ...securepayFixture('oauth.token.constructed.json'), access_token: token });
}

/** SecurePay answering the charge with the constructed `paid` payment, echoing orderId and amount. */
function securepayChargeAnswers(answer = PAID, status = 201) {
  const seen: Seen[] = [];
  nock(API)
    .post(PAYMENTS)
    .reply(async (request: Request) => {
      const read = await readRequest(request);
      seen.push(read);
      return [status, { ...answer, orderId: read.body.orderId, amount: read.body.amount }];
    });
  return seen;
}

/** SecurePay answering a refund of order `orderId` with the constructed `paid` refund, noting the request in `seen`. */
function securepayRefundAnswers(orderId: string, seen: Seen[]) {
  nock(API)
    .post(`/v2/orders/${orderId}/refunds`)
    .reply(async (request: Request) => {
      const read = await readRequest(request);
      seen.push(read);
      return [
        201,
        {
          ...securepayFixture('api.orders.refunds.paid.constructed.json'),
          orderId,
          amount: read.body.amount,
        },
      ];
    });
}

async function inboxCount(app: TestApp): Promise<number> {
  const row = await app.runtime.db
    .selectFrom('inbox')
    .select(sql<string>`count(*)`.as('n'))
    .where('gateway', '=', 'securepay')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function deliver(app: TestApp, body: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}/webhooks/securepay`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: response.status, body: await response.text() };
}

async function settledEvent(app: TestApp, eventId: string) {
  return waitFor(`event ${eventId} to be settled`, async () => {
    const events = await app.api('GET', '/v1/events?limit=100');
    const event = events.body.data.find((e: { gateway_event_id: string }) => e.gateway_event_id === eventId);
    return event && event.status !== 'received' && event.status !== 'retrying' ? event : undefined;
  });
}

describe('SecurePay end to end: charge a stored card, refund it, and store notifications as hints', () => {
  let app: TestApp;
  /** The web process that sends the calls SecurePay never answers (after its own token request). */
  let hanging: TestApp;
  beforeAll(async () => {
    const env = {
      SECUREPAY_CLIENT_ID: 'sp-e2e-client',
      SECUREPAY_CLIENT_SECRET: 'sp-e2e-secret',
      SECUREPAY_MERCHANT_CODE: '5AR0055',
      SECUREPAY_API_BASE: API,
      SECUREPAY_AUTH_URL: `${AUTH_ORIGIN}/oauth/token`,
      SECUREPAY_WEBHOOKS: 'on',
    };
    app = await startOfflineTestApp(env);
    hanging = await startHangingWeb(app, env, HANGING_AFTER_TOKEN_TIMEOUT_MS);
  });
  afterEach(() => {
    nock.abortPendingRequests();
    nock.cleanAll();
  });
  afterAll(async () => {
    await hanging.stop();
    await stopOfflineTestApp(app);
  });

  /** A customer with a SecurePay stored card and a finalized (OPEN) AUD invoice, over the API. */
  const openInvoice = (amount = 10000) =>
    openGatewayInvoice(app, {
      amount,
      currency: 'aud',
      gateway: 'securepay',
      token: INSTRUMENT_TOKEN,
      gatewayCustomerId: CUSTOMER_CODE,
    });

  it('charges the stored card under its customer code, posts the payment, refunds part, and ignores a notification hint', async () => {
    const { invoice, customer } = await openInvoice();
    const before = await ledgerByCode(app);

    tokenEndpoint();
    const seen = securepayChargeAnswers();
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(200);
    const txn = charged.body.transaction;
    expect(txn).toMatchObject({
      status: 'succeeded',
      gateway: 'securepay',
      gateway_transaction_id: txn.id,
      amount: 10000,
      currency: 'AUD',
    });
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_due: 0, amount_paid: 10000 });
    // Our attempt id is the Idempotency-Key and the orderId; amount in integer cents; a Bearer token.
    expect(seen).toHaveLength(1);
    expect(seen[0]!.idempotencyKey).toBe(txn.id);
    expect(seen[0]!.authorization).toMatch(/^Bearer \S+/);
    expect(seen[0]!.body).toEqual({
      amount: 10000,
      merchantCode: '5AR0055',
      token: INSTRUMENT_TOKEN,
      ip: '127.0.0.1',
      orderId: txn.id,
      customerCode: CUSTOMER_CODE,
      currency: 'AUD',
    });
    const paid = await ledgerByCode(app);
    expect(paid['gateway_clearing:securepay AUD']).toBe(
      (before['gateway_clearing:securepay AUD'] ?? 0) + 10000,
    );
    expect(paid['receivable:customer AUD']).toBe(0);
    const entries = await app.api('GET', '/v1/ledger/entries?limit=100');
    const entry = entries.body.data.find(
      (e: { source: { type: string; id: string } }) =>
        e.source.type === 'transaction' && e.source.id === txn.id,
    );
    expect(entry.postings).toEqual([
      { account: 'gateway_clearing:securepay', amount: 10000, currency: 'AUD' },
      { account: `receivable:${customer.id}`, amount: -10000, currency: 'AUD' },
    ]);

    // A notification about the same order is stored as a hint and ignored: the ledger does not move.
    const hint = buildSecurepayTestDelivery(
      'payment.paid',
      { reference: txn.id, amount: 10000, currency: 'AUD', customerCode: CUSTOMER_CODE },
      app.config,
    );
    const stored = await inboxCount(app);
    expect(await deliver(app, hint.body, hint.headers)).toEqual({ status: 200, body: '{"received":true}' });
    expect(await inboxCount(app)).toBe(stored + 1);
    const row = await app.runtime.db
      .selectFrom('inbox')
      .selectAll()
      .where('gateway', '=', 'securepay')
      .orderBy('received_at', 'desc')
      .executeTakeFirstOrThrow();
    expect(row.gateway_event_id.startsWith(`${txn.id}:`)).toBe(true);
    // Only the hint is kept (its orderId and status), not the rest of the body.
    expect(JSON.parse(row.body!)).toEqual({ orderId: txn.id, status: 'paid' });
    const event = await settledEvent(app, row.gateway_event_id);
    expect(event).toMatchObject({ status: 'ignored', type: 'payment.paid' });
    // The same bytes again are a duplicate: 200, nothing new stored.
    expect((await deliver(app, hint.body)).status).toBe(200);
    expect(await inboxCount(app)).toBe(stored + 1);
    expect(await ledgerByCode(app)).toEqual(paid);

    // Refund part of it: POST /v2/orders/{orderId}/refunds, keyed by the refund id.
    const refundsSeen: Seen[] = [];
    securepayRefundAnswers(txn.id, refundsSeen);
    const refund = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 2500 });
    expect(refund.status).toBe(201);
    expect(refund.body).toMatchObject({ status: 'succeeded', amount: 2500, currency: 'AUD' });
    expect(refund.body.gateway_refund_id).toBe(refund.body.id);
    expect(refundsSeen).toHaveLength(1);
    expect(refundsSeen[0]!.idempotencyKey).toBe(refund.body.id);
    expect(refundsSeen[0]!.body).toEqual({ merchantCode: '5AR0055', ip: '127.0.0.1', amount: 2500 });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_paid: 10000,
      amount_refunded: 2500,
    });
    const refunded = await ledgerByCode(app);
    expect(refunded['refunds AUD']).toBe((paid['refunds AUD'] ?? 0) + 2500);
    expect(refunded['gateway_clearing:securepay AUD']).toBe(paid['gateway_clearing:securepay AUD']! - 2500);
  });

  it('records a bank decline (status failed in HTTP 201) with its code, and the invoice can be charged again', async () => {
    const { invoice } = await openInvoice();
    tokenEndpoint();
    securepayChargeAnswers(securepayFixture('api.customers.payments.failed.constructed.json'));
    const declined = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(declined.body.transaction).toMatchObject({
      status: 'failed',
      failure_code: '51',
      failure_message: 'Insufficient Funds',
    });
    expect(declined.body.invoice).toMatchObject({ status: 'OPEN', amount_paid: 0 });

    tokenEndpoint();
    const seen = securepayChargeAnswers();
    const retried = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(retried.body.transaction.status).toBe('succeeded');
    expect(retried.body.invoice.status).toBe('PAID');
    // A new attempt is a new order and a new Idempotency-Key.
    expect(seen[0]!.idempotencyKey).toBe(retried.body.transaction.id);
    expect(retried.body.transaction.id).not.toBe(declined.body.transaction.id);
  });

  it('records a 400 {"errors": [...]} as failed with SecurePay code', async () => {
    const { invoice } = await openInvoice();
    tokenEndpoint();
    nock(API).post(PAYMENTS).reply(400, securepayFixture('api.error.400.invalid_order_id.constructed.json'));
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({ status: 'failed', failure_code: 'INVALID_ORDER_ID' });
    expect(charged.body.transaction.failure_message).toMatch(/orderId is invalid/);
  });

  it('repeats a refund whose answer was lost with the same Idempotency-Key and orderId, and records it once', async () => {
    const { invoice } = await openInvoice();
    tokenEndpoint();
    securepayChargeAnswers();
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    const txn = charged.body.transaction;
    expect(txn.status).toBe('succeeded');
    const before = await ledgerByCode(app);

    // The first answer never arrives (the hanging web gives up); the invoice.refund queue's repeat gets it.
    const refundsSeen: Seen[] = [];
    const path = `/v2/orders/${txn.id}/refunds`;
    nock(API)
      .post(path)
      .reply(async (request: Request) => {
        refundsSeen.push(await readRequest(request));
        return noAnswer();
      });
    securepayRefundAnswers(txn.id, refundsSeen);
    tokenEndpoint(); // the hanging web's
    const refund = await hanging.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 4000 });
    expect(refund.status).toBe(201);
    expect(refund.body).toMatchObject({ status: 'unknown', failure_code: 'unknown_outcome' });
    // Its invoice.refund job is queued: the worker fetches it now rather than at its next poll (5 s).
    wakeWorkers(app.runtime.boss, QUEUES.invoiceRefund);
    const settled = await waitFor('the queue to settle the refund', async () => {
      const refunds = await app.api('GET', `/v1/refunds?limit=100`);
      const found = refunds.body.data.find((r: { id: string }) => r.id === refund.body.id);
      return found?.status === 'succeeded' ? found : undefined;
    });
    expect(settled).toMatchObject({ amount: 4000, gateway_refund_id: refund.body.id });
    expect(refundsSeen.map((seen) => seen.idempotencyKey)).toEqual([refund.body.id, refund.body.id]);
    expect(refundsSeen[1]!.body).toEqual(refundsSeen[0]!.body);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 4000,
    });
    const after = await ledgerByCode(app);
    expect(after['refunds AUD']).toBe((before['refunds AUD'] ?? 0) + 4000);
  });

  it.each([
    ['a 500', () => nock(API).post(PAYMENTS).reply(500, securepayFixture('api.error.500.constructed.json'))],
    ['a timeout', () => nock(API).post(PAYMENTS).reply(noAnswer)],
  ])('leaves the attempt unknown after %s and refuses a second attempt meanwhile', async (name, fake) => {
    const { invoice } = await openInvoice();
    tokenEndpoint();
    fake();
    const charging = name === 'a timeout' ? hanging : app;
    const charged = await charging.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({ status: 'unknown', failure_code: 'unknown_outcome' });
    expect(charged.body.invoice.status).toBe('OPEN');
    const again = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('charge_in_progress');
  });

  it('books SecurePay status "unknown" with a bank code as unknown: the invoice stays locked, and the poll repeats the payment', async () => {
    const { invoice } = await openInvoice();
    const before = await ledgerByCode(app);
    tokenEndpoint();
    // SecurePay's documented third status ("processed with unexpected status from gateway", see
    // src/gateways/securepay/status.ts), carrying a bank code as the issue reports it.
    const unknownAnswer = {
      ...PAID,
      status: 'unknown',
      gatewayResponseCode: '05',
      gatewayResponseMessage: 'Do Not Honour',
      errorCode: 'UNKNOWN',
    };
    const seen = securepayChargeAnswers(unknownAnswer);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(200);
    const txn = charged.body.transaction;
    expect(txn).toMatchObject({ status: 'unknown', failure_code: 'unknown_outcome', amount: 10000 });
    expect(txn.failure_message).toMatch(/status unknown/);
    expect(charged.body.invoice).toMatchObject({ status: 'OPEN', amount_paid: 0 });
    // No second charge while money may have moved.
    const again = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('charge_in_progress');
    expect(await ledgerByCode(app)).toEqual(before);

    // The poll repeats the payment with the same Idempotency-Key and orderId (SecurePay's only status
    // check); still `unknown` keeps it open, a `paid` answer settles it once.
    // Three steps: this test uses two, so no attempt (of this or other tests) is exhausted into an exception.
    const schedule = [60, 300, 3600];
    const created = new Date(txn.created_at);
    const sweep = (seconds: number) =>
      pollDueTransactions(app.runtime.db, 'system', app.runtime, schedule, pino({ level: 'silent' }), {
        now: new Date(created.getTime() + seconds * 1000),
      });
    // (Other tests' unknown attempts are swept too; only this attempt's repeat is answered.)
    const repeats: Seen[] = [];
    const repeatAnswers = (answer: object) =>
      nock(API)
        .post(PAYMENTS, (body) => body.orderId === txn.id)
        .reply(async (request: Request) => {
          repeats.push(await readRequest(request));
          return [201, { ...answer, orderId: txn.id, amount: 10000 }];
        });
    const ours = async (seconds: number) => (await sweep(seconds)).filter((r) => r.transactionId === txn.id);
    repeatAnswers(unknownAnswer);
    expect(await ours(61)).toEqual([{ transactionId: txn.id, status: 'unknown', exhausted: false }]);
    repeatAnswers(PAID);
    expect(await ours(301)).toEqual([{ transactionId: txn.id, status: 'succeeded', exhausted: false }]);
    expect(seen.map((s) => s.idempotencyKey)).toEqual([txn.id]);
    expect(repeats.map((s) => s.idempotencyKey)).toEqual([txn.id, txn.id]);
    expect(repeats[1]!.body).toEqual(seen[0]!.body);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 10000,
    });
    const paid = await ledgerByCode(app);
    expect(paid['gateway_clearing:securepay AUD']).toBe(
      (before['gateway_clearing:securepay AUD'] ?? 0) + 10000,
    );
  });

  it('fetches a new token after a 401 and repeats the charge once', async () => {
    const { invoice } = await openInvoice();
    let rejected = '';
    tokenEndpoint('sp-e2e-token-before');
    nock(API)
      .post(PAYMENTS)
      .reply((request: Request) => {
        rejected = request.headers.get('authorization') ?? '';
        return [401, ''];
      });
    tokenEndpoint('sp-e2e-token-after');
    const seen: Seen[] = [];
    nock(API)
      .post(PAYMENTS)
      .matchHeader('authorization', (value) => value !== rejected)
      .reply(async (request: Request) => {
        const read = await readRequest(request);
        seen.push(read);
        return [201, { ...PAID, orderId: read.body.orderId, amount: read.body.amount }];
      });
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction.status).toBe('succeeded');
    expect(charged.body.invoice.status).toBe('PAID');
    expect(rejected).toMatch(/^Bearer /);
    // The retry carried a token fetched after the 401 (the cache may have held one from earlier tests).
    expect(seen[0]!.authorization).toMatch(/^Bearer sp-e2e-token-(before|after)$/);
    expect(seen[0]!.authorization).not.toBe(rejected);
    expect(seen[0]!.idempotencyKey).toBe(charged.body.transaction.id);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('declines a payment method without a SecurePay customer code, without calling SecurePay', async () => {
    const customer = await app.api('POST', '/v1/customers', { email: 'grace@example.com' });
    await app.api('POST', '/v1/payment-methods', {
      customer: customer.body.id,
      gateway: 'securepay',
      gateway_token: INSTRUMENT_TOKEN,
    });
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.body.id,
      currency: 'AUD',
      lines: [{ description: 'x', amount: 500 }],
    });
    await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
    const charged = await app.api('POST', `/v1/invoices/${draft.body.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({
      status: 'failed',
      failure_code: 'missing_customer_code',
    });
  });

  it('answers 400 and stores nothing for a body that is not a hint; an order billhook does not know is stored and ignored', async () => {
    const before = await inboxCount(app);
    for (const body of ['not json', '{"status":"paid"}', '{"orderId":42}', '[]']) {
      const response = await deliver(app, body);
      expect(response.status).toBe(400);
    }
    expect(await inboxCount(app)).toBe(before);

    const unknownOrder = JSON.stringify({
      ...securepayFixture('webhook.hint.payment.constructed.json'),
      orderId: 'order-from-elsewhere-1',
    });
    expect((await deliver(app, unknownOrder)).status).toBe(200);
    const row = await app.runtime.db
      .selectFrom('inbox')
      .select('gateway_event_id')
      .where('gateway', '=', 'securepay')
      .where('gateway_event_id', 'like', 'order-from-elsewhere-1:%')
      .executeTakeFirstOrThrow();
    expect((await settledEvent(app, row.gateway_event_id)).status).toBe('ignored');
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions');
    expect(
      (exceptions.body.data ?? []).filter((e: { gateway?: string }) => e.gateway === 'securepay'),
    ).toEqual([]);
  });
});
