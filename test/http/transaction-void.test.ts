import { randomBytes } from 'node:crypto';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { dispatchEvents } from '../../src/outbound/dispatch.ts';
import {
  type ApiBody,
  anetFixture,
  FIXTURE_SIGNATURE_KEY,
  LOGIN_ID,
  nockApi,
  TRANSACTION_KEY,
} from '../gateways/authorizenet/support.ts';
import { ADMIN_KEY, STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { intentEchoing, openInvoice } from '../support/flow.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { stripeFixture } from '../support/stripe.ts';

const ANET_BASE = 'https://authorizenet.void.test';
const ANET_TOKEN = '40338125/1000177237';
/** The real canceled PaymentIntent (webhook.payment_intent.canceled.json): Stripe's answer to a cancel. */
const CANCELED_INTENT = stripeFixture('webhook.payment_intent.canceled.json').data.object;

/** POST /v1/transactions/:id/void, with an Idempotency-Key when given. */
async function voidOver(app: TestApp, id: string, idempotencyKey?: string, key = ADMIN_KEY) {
  const response = await fetch(`${app.url}/v1/transactions/${id}/void`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
    },
    body: '{}',
  });
  return { status: response.status, body: (await response.json()) as any };
}

/** Every ledger account's balance by `code currency` (customer ids kept), minor units. */
async function balances(app: TestApp): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  let after = '';
  for (;;) {
    const page = await app.api('GET', `/v1/ledger/accounts?limit=100${after && `&starting_after=${after}`}`);
    for (const a of page.body.data) out[`${a.code} ${a.currency}`] = a.balance;
    if (!page.body.has_more) return out;
    after = page.body.data.at(-1).id;
  }
}

/** The balances that changed between two `balances` readings, as `after - before`. */
function moved(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const code of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const change = (after[code] ?? 0) - (before[code] ?? 0);
    if (change !== 0) out[code] = change;
  }
  return out;
}

/** Stripe answers the charge with the real PaymentIntent fixture in `status` under `intentId`. */
function stripeChargeAnswers(intentId: string, status: string) {
  nock(STRIPE_API_BASE)
    .post('/v1/payment_intents')
    .reply(async (request: Request) => [
      200,
      intentEchoing(new URLSearchParams(await request.text()), intentId, status),
    ]);
}

describe('POST /v1/transactions/:id/void', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({
      // For the webhook endpoint of the outbound events.
      BILLHOOK_SECRET_KEY: randomBytes(32).toString('base64'),
      AUTHORIZENET_API_LOGIN_ID: LOGIN_ID,
      AUTHORIZENET_TRANSACTION_KEY: TRANSACTION_KEY,
      AUTHORIZENET_SIGNATURE_KEY: FIXTURE_SIGNATURE_KEY,
      AUTHORIZENET_API_BASE: ANET_BASE,
    });
  });
  afterEach(expectEveryMockUsed);
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** An OPEN EUR invoice charged through Stripe, which answers the PaymentIntent in `status`. */
  async function stripeCharge(intentId: string, status: string) {
    const { invoice, customer } = await openInvoice(app);
    stripeChargeAnswers(intentId, status);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(200);
    return { invoice, customer, transaction: charged.body.transaction };
  }

  /** An OPEN USD invoice charged through Authorize.Net, approved (the real answer) as `transId`. */
  async function authorizenetCharge(transId: string) {
    const { invoice, customer } = await openInvoice(app, {
      currency: 'usd',
      gateway: 'authorizenet',
      token: ANET_TOKEN,
    });
    const approved = anetFixture('api.createTransaction.authCapture.approved.json');
    approved.transactionResponse.transId = transId;
    nockApi(
      ANET_BASE,
      'createTransactionRequest',
      approved,
      (r) => r.transactionRequest.transactionType === 'authCaptureTransaction',
    );
    const before = await balances(app);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');
    return { invoice, customer, transaction: charged.body.transaction, before };
  }

  it('cancels a Stripe PaymentIntent awaiting capture: canceled, nothing booked, an activity, and a repeat with the same Idempotency-Key answered as before', async () => {
    const intentId = 'pi_void_requires_capture_1';
    const { invoice, customer, transaction } = await stripeCharge(intentId, 'requires_capture');
    expect(transaction.status).toBe('pending');
    const before = await balances(app);

    let idempotencyKey: string | undefined;
    nock(STRIPE_API_BASE)
      .post(`/v1/payment_intents/${intentId}/cancel`)
      .reply((request: Request) => {
        idempotencyKey = request.headers.get('idempotency-key') ?? '';
        return [200, { ...CANCELED_INTENT, id: intentId, metadata: { billhook_reference: transaction.id } }];
      });
    const voided = await voidOver(app, transaction.id, 'void-once');
    expect(voided.status).toBe(200);
    expect(voided.body).toMatchObject({
      void: 'succeeded',
      transaction: { id: transaction.id, status: 'canceled', failure_code: 'voided' },
    });
    expect(idempotencyKey).toBe(`${transaction.id}:void`);
    // Nothing had been booked for the payment, so nothing moves.
    expect(moved(before, await balances(app))).toEqual({});
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_due: 4620,
    });
    const activities = await app.api('GET', `/v1/activities?resource=${transaction.id}&limit=100`);
    expect(activities.body.data.at(-1)).toMatchObject({
      action: 'transaction.voided',
      customer: customer.id,
      actor: expect.stringMatching(/^key_/),
      data: { status: 'canceled', failure_code: 'voided' },
    });

    // The same key again: the stored answer, no second call to Stripe (none is faked).
    expect(await voidOver(app, transaction.id, 'void-once')).toEqual(voided);
    // Without the key: it is canceled now.
    const again = await voidOver(app, transaction.id);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('transaction_not_voidable');
  });

  it('refuses a succeeded Stripe charge without calling Stripe (409 transaction_captured: refund it)', async () => {
    const { transaction } = await stripeCharge('pi_void_succeeded_1', 'succeeded');
    expect(transaction.status).toBe('succeeded');
    const refused = await voidOver(app, transaction.id);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('transaction_captured');
    expect((await app.api('GET', `/v1/transactions/${transaction.id}`)).body.status).toBe('succeeded');
  });

  it('voids an unsettled Authorize.Net charge (voidTransaction): canceled, the payment reversed exactly in the ledger, the invoice OPEN again', async () => {
    const { invoice, customer, transaction, before } = await authorizenetCharge('2230581408');
    const charged = await balances(app);
    expect(moved(before, charged)).toEqual({
      'gateway_clearing:authorizenet USD': 4620,
      [`receivable:${customer.id} USD`]: -4620,
    });

    const seen: ApiBody[] = [];
    nockApi(
      ANET_BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.void.approved.json'),
      (r) => r.transactionRequest.transactionType === 'voidTransaction',
      seen,
    );
    const voided = await voidOver(app, transaction.id);
    expect(voided.status).toBe(200);
    expect(voided.body.transaction).toMatchObject({ status: 'canceled', failure_code: 'voided' });
    expect(seen[0]?.transactionRequest).toEqual({
      transactionType: 'voidTransaction',
      refTransId: '2230581408',
    });

    // The ledger is back where it was before the charge: what succeeded posted, reversed.
    expect(moved(before, await balances(app))).toEqual({});
    const entries = await app.api('GET', '/v1/ledger/entries?limit=100');
    const reversal = entries.body.data.find(
      (e: { description: string }) => e.description === `payment ${transaction.id} voided at authorizenet`,
    );
    expect(reversal.postings).toEqual([
      { account: `receivable:${customer.id}`, amount: 4620, currency: 'USD' },
      { account: 'gateway_clearing:authorizenet', amount: -4620, currency: 'USD' },
    ]);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_paid: 0,
      amount_due: 4620,
    });
  });

  it('pushes invoice.payment_reversed when a void takes back the payment of a PAID invoice, so a system that booked its invoice.paid hears it is OPEN again (USD 46.20 due)', async () => {
    const endpoint = await app.api('POST', '/v1/webhook-endpoints', {
      url: 'http://127.0.0.1:9/reversals',
      enabled_events: ['invoice.paid', 'invoice.payment_reversed'],
    });
    expect(endpoint.status).toBe(201);
    const { invoice, transaction } = await authorizenetCharge('2230581409');
    nockApi(
      ANET_BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.void.approved.json'),
      (r) => r.transactionRequest.transactionType === 'voidTransaction',
    );
    expect((await voidOver(app, transaction.id)).status).toBe(200);
    await dispatchEvents(app.runtime.db, app.runtime.boss);
    const rows = await app.runtime.db
      .selectFrom('outbound_events as e')
      .innerJoin('activities as a', 'a.id', 'e.activity_id')
      .select(['e.type', 'e.body'])
      // In the order of their activities: one dispatch stores them in one transaction (one
      // created_at), and ids made in one millisecond sort at random.
      .orderBy('a.sequence')
      .execute();
    const about = rows
      .map((row) => ({ type: row.type, body: JSON.parse(row.body) }))
      .filter((event) => event.body.data.object.id === invoice.id);
    expect(about.map((event) => event.type)).toEqual(['invoice.paid', 'invoice.payment_reversed']);
    expect(about[1]?.body.data.object).toMatchObject({
      object: 'invoice',
      currency: 'USD',
      amount: 4620,
      amount_paid: 0,
      amount_due: 4620,
    });
  });

  it('answers 409 void_declined when Authorize.Net refuses (error 16), and changes nothing', async () => {
    const { invoice, transaction } = await authorizenetCharge('2165665483');
    const charged = await balances(app);
    nockApi(
      ANET_BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.void.error16_not_found.json'),
      (r) => r.transactionRequest.transactionType === 'voidTransaction',
    );
    const refused = await voidOver(app, transaction.id);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('void_declined');
    expect(refused.body.error.message).toContain('16');
    expect((await app.api('GET', `/v1/transactions/${transaction.id}`)).body.status).toBe('succeeded');
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.status).toBe('PAID');
    expect(moved(charged, await balances(app))).toEqual({});
  });

  it('answers 202 unknown when Authorize.Net gives no sure answer (5xx): nothing changes, an exception asks a person', async () => {
    const { transaction } = await authorizenetCharge('2230581499');
    const charged = await balances(app);
    nockApi(
      ANET_BASE,
      'createTransactionRequest',
      'Service Unavailable',
      (r) => r.transactionRequest.transactionType === 'voidTransaction',
      [],
      503,
    );
    const answer = await voidOver(app, transaction.id);
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ void: 'unknown', transaction: { status: 'succeeded' } });
    expect(moved(charged, await balances(app))).toEqual({});
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
    expect(
      exceptions.body.data.filter(
        (e: { transaction: string; kind: string }) =>
          e.transaction === transaction.id && e.kind === 'unknown_outcome',
      ),
    ).toHaveLength(1);
  });

  it('refuses a refunded charge (409 transaction_refunded)', async () => {
    const { invoice, transaction } = await authorizenetCharge('2230581500');
    const refund = anetFixture('api.createTransaction.refund.approved.json');
    nockApi(
      ANET_BASE,
      'createTransactionRequest',
      refund,
      (r) => r.transactionRequest.transactionType === 'refundTransaction',
    );
    const refunded = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 1000 });
    expect(refunded.status).toBe(201);
    const refused = await voidOver(app, transaction.id);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('transaction_refunded');
  });

  it('refuses a gateway that voids none of billhook charges (409 gateway_cannot_void), 404 for an unknown id, 403 for a read key', async () => {
    const { customer } = await openInvoice(app);
    const id = 'txn_void_paypal_1';
    await app.runtime.db
      .insertInto('transactions')
      .values({
        id,
        customer_id: customer.id,
        invoice_id: null,
        payment_method_id: null,
        gateway: 'paypal',
        gateway_transaction_id: '8MC585209K746392H',
        amount: 1000n,
        currency: 'USD',
        status: 'pending',
        failure_code: null,
        failure_message: null,
      })
      .execute();
    const refused = await voidOver(app, id);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('gateway_cannot_void');

    const missing = await voidOver(app, 'txn_does_not_exist');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('transaction_not_found');

    const { secret } = await createApiKey(app.runtime.db, 'reader', 'read');
    expect((await voidOver(app, id, undefined, secret)).status).toBe(403);
  });
});
