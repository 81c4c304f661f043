import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createInvoice, finalizeInvoice } from '../../src/billing/invoices.ts';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { nockToken, paypalFixture, TOKEN } from '../gateways/paypal/fixtures.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { ledgerIn } from '../support/collection.ts';
import { FIXTURE_INTENT, openInvoice, stripeChargeSucceeds } from '../support/flow.ts';
import { startHangingWeb, startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, paymentIntentSucceeded, stripeFixture } from '../support/stripe.ts';
import { NO_ANSWER_DELAY_MS } from '../support/timeouts.ts';
import { waitFor } from '../support/wait.ts';

const PAYPAL_API_BASE = 'https://paypal.currencies.test';

/**
 * Each gateway's currency rules at the boundary, through the HTTP API (PRODUCT §11, README "Currency
 * rules per gateway"): what is sent, what a webhook books, and what is refused before any call. Net
 * connections are cut off (nock), so a call nobody expected fails the test. Each scenario books in
 * its own currency, so the ledger of one currency is that scenario's alone.
 */
describe('gateway currency rules end to end', () => {
  let app: TestApp;
  /** The web process that charges the invoice whose charge never gets an answer. */
  let hanging: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({
      PAYPAL_CLIENT_ID: 'client-id',
      PAYPAL_CLIENT_SECRET: 'client-secret',
      PAYPAL_WEBHOOK_ID: 'WH-CURRENCIES',
      PAYPAL_API_BASE,
    });
    // The sweep is driven by the test alone.
    await app.runtime.boss.unschedule(QUEUES.invoiceCharge);
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
    hanging = await startHangingWeb(app);
  });
  afterEach(() => {
    expect(nock.pendingMocks()).toEqual([]);
    nock.cleanAll();
  });
  afterAll(async () => {
    await hanging.stop();
    await stopOfflineTestApp(app);
  });

  /** What exists for an invoice: its attempts and refunds, straight from the tables. */
  async function rowsOf(invoiceId: string) {
    const db = app.runtime.db;
    return {
      transactions: await db
        .selectFrom('transactions')
        .selectAll()
        .where('invoice_id', '=', invoiceId)
        .execute(),
      refunds: await db.selectFrom('refunds').selectAll().where('invoice_id', '=', invoiceId).execute(),
    };
  }

  async function processed(gatewayEventId: string) {
    return waitFor(`event ${gatewayEventId} to be processed`, async () => {
      const events = await app.api('GET', '/v1/events?limit=100');
      const event = events.body.data.find(
        (e: { gateway_event_id: string }) => e.gateway_event_id === gatewayEventId,
      );
      return event?.status === 'processed' ? event : undefined;
    });
  }

  it('charges 500 ISK through Stripe as amount=50000 and books 500 (Stripe reads ISK as two-decimal, docs.stripe.com/currencies#special-cases)', async () => {
    // 500 ISK is 500n ISO minor units (ISK has exponent 0); Stripe counts ISK in hundredths → 50000.
    const { invoice } = await openInvoice(app, { amount: 500, currency: 'isk' });
    const { seen } = stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(200);
    expect(seen.map((s) => [s.params.get('amount'), s.params.get('currency')])).toEqual([['50000', 'isk']]);
    expect(charged.body.transaction).toMatchObject({ status: 'succeeded', amount: 500, currency: 'ISK' });
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 500, amount_due: 0 });
    expect(await ledgerIn(app, 'ISK')).toEqual({
      'gateway_clearing:stripe': 500,
      'receivable:customer': 0,
      revenue: -500,
    });

    // A refund of 200 ISK goes out as amount=20000.
    const refundBodies: URLSearchParams[] = [];
    const refund = stripeFixture('api.refund.succeeded.openapi-fixture.json');
    nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .reply(async (request: Request) => {
        const params = new URLSearchParams(await request.text());
        refundBodies.push(params);
        return [200, { ...refund, id: 're_isk_200', amount: 20000, currency: 'isk', status: 'succeeded' }];
      });
    const refunded = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 200 });
    expect(refunded.status).toBe(201);
    expect(refundBodies.map((p) => p.get('amount'))).toEqual(['20000']);
    expect(refunded.body).toMatchObject({ status: 'succeeded', amount: 200, currency: 'ISK' });
    expect((await ledgerIn(app, 'ISK'))['gateway_clearing:stripe']).toBe(300);
  });

  it('books a Stripe webhook of amount 50000 ISK as 500 ISK: the payment intent that settles an unknown charge pays the 500 ISK invoice', async () => {
    const { invoice } = await openInvoice(app, { amount: 500, currency: 'isk' });
    // No answer within the timeout: the attempt is unknown until the webhook tells.
    nock(STRIPE_API_BASE).post('/v1/payment_intents').delay(NO_ANSWER_DELAY_MS).reply(200, FIXTURE_INTENT);
    const charged = await hanging.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({ status: 'unknown', amount: 500 });
    const before = await ledgerIn(app, 'ISK');

    const eventId = 'evt_isk_50000';
    const delivered = await deliverStripe(
      app.url,
      paymentIntentSucceeded({
        eventId,
        intentId: 'pi_isk_50000',
        amount: 50000,
        currency: 'isk',
        reference: charged.body.transaction.id,
      }),
    );
    expect(delivered.status).toBe(200);
    await processed(eventId);
    const after = await app.api('GET', `/v1/invoices/${invoice.id}`);
    // 50000 hundredths of a króna = 500 ISK, exactly the amount due: PAID, no exception.
    expect(after.body).toMatchObject({ status: 'PAID', amount_paid: 500, amount_due: 0 });
    expect((await ledgerIn(app, 'ISK'))['gateway_clearing:stripe']).toBe(
      (before['gateway_clearing:stripe'] ?? 0) + 500,
    );
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
    expect(
      exceptions.body.data.filter(
        (e: { transaction: string }) => e.transaction === charged.body.transaction.id,
      ),
    ).toEqual([]);
  });

  it('refuses a Stripe webhook whose ISK amount does not end in 00 (not a whole króna): 400, nothing stored', async () => {
    const delivered = await deliverStripe(
      app.url,
      paymentIntentSucceeded({
        eventId: 'evt_isk_50050',
        intentId: 'pi_isk_50050',
        amount: 50050,
        currency: 'isk',
        reference: 'txn_none',
      }),
    );
    expect(delivered.status).toBe(400);
    expect(delivered.body).toContain('finer than ISK');
    const events = await app.api('GET', '/v1/events?limit=100');
    expect(events.body.data.map((e: { gateway_event_id: string }) => e.gateway_event_id)).not.toContain(
      'evt_isk_50050',
    );
  });

  it('charges 1,000 MGA (100000n minor units) through Stripe as amount=1000 (MGA is zero-decimal at Stripe)', async () => {
    const { invoice } = await openInvoice(app, { amount: 100_000, currency: 'mga' });
    const { seen } = stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(seen.map((s) => s.params.get('amount'))).toEqual(['1000']);
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 100_000 });
  });

  it('refuses 1,000.50 MGA with 422 before any call: Stripe counts MGA in whole ariary', async () => {
    // The card is stored after finalization: not rounded then (PRODUCT §11), refused now.
    const { invoice } = await openInvoice(app, { amount: 100_050, currency: 'mga', methodAfter: true });
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(422);
    expect(charged.body.error).toMatchObject({ type: 'invalid_request', code: 'amount_not_representable' });
    expect(charged.body.error.message).toContain('Stripe cannot take 1000.50 MGA');
    expect(await rowsOf(invoice.id)).toEqual({ transactions: [], refunds: [] });
  });

  it('refuses KWD 1.296 (1296n) with 422 naming Stripe and the last-digit rule; nothing is created or sent', async () => {
    // The card is stored after finalization: not rounded then (PRODUCT §11), refused now.
    const { invoice } = await openInvoice(app, { amount: 1296, currency: 'kwd', methodAfter: true });
    const ledger = await ledgerIn(app, 'KWD');
    // No nock for Stripe: a call would fail (net connect is off) and the answer would not be a 422.
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(422);
    expect(charged.body.error).toEqual({
      type: 'invalid_request',
      code: 'amount_not_representable',
      message:
        'Stripe cannot take 1.296 KWD (1296 minor units) exactly: Stripe takes KWD only in steps of 0.010 KWD ' +
        '(Stripe requires the last digit of a KWD amount to be 0 (a multiple of 10)); the nearest it takes: 1.290 KWD (1290) and 1.300 KWD (1300); see https://docs.stripe.com/currencies',
      fields: {},
    });
    expect(await rowsOf(invoice.id)).toEqual({ transactions: [], refunds: [] });
    expect(await ledgerIn(app, 'KWD')).toEqual(ledger);
    const after = await app.api('GET', `/v1/invoices/${invoice.id}`);
    expect(after.body).toMatchObject({ status: 'OPEN', amount_due: 1296 });
  });

  it('refuses CAD 1,000,000.00 (100000000n) with 422 before any call: Stripe takes up to eight digits', async () => {
    const { invoice } = await openInvoice(app, { amount: 100_000_000, currency: 'cad' });
    const ledger = await ledgerIn(app, 'CAD');
    // No nock for Stripe: a call would fail (net connect is off) and the answer would not be a 422.
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(422);
    expect(charged.body.error).toEqual({
      type: 'invalid_request',
      code: 'amount_not_representable',
      message:
        'Stripe cannot take 1000000.00 CAD (100000000 minor units): Stripe takes at most 999999.99 CAD ' +
        '(a value of 99999999; Stripe takes amounts of up to eight digits (twelve for IDR)); see https://docs.stripe.com/currencies',
      fields: {},
    });
    expect(await rowsOf(invoice.id)).toEqual({ transactions: [], refunds: [] });
    expect(await ledgerIn(app, 'CAD')).toEqual(ledger);
    const after = await app.api('GET', `/v1/invoices/${invoice.id}`);
    expect(after.body).toMatchObject({ status: 'OPEN', amount_due: 100_000_000 });
  });

  it('refuses a refund Stripe cannot take (KWD 0.005) with 422: no refund row, no ledger change', async () => {
    // KWD 1.290 ends in 0: Stripe takes it as 1290.
    const { invoice } = await openInvoice(app, { amount: 1290, currency: 'kwd' });
    const { seen } = stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(seen.map((s) => s.params.get('amount'))).toEqual(['1290']);
    expect(charged.body.invoice.status).toBe('PAID');
    const ledger = await ledgerIn(app, 'KWD');

    const refunded = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 5 });
    expect(refunded.status).toBe(422);
    expect(refunded.body.error.code).toBe('amount_not_representable');
    expect(refunded.body.error.message).toContain('Stripe cannot take 0.005 KWD');
    expect((await rowsOf(invoice.id)).refunds).toEqual([]);
    expect(await ledgerIn(app, 'KWD')).toEqual(ledger);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.status).toBe('PAID');
  });

  it('charges HUF 1,000 (100000n) through PayPal as "1000" and refuses HUF 1,000.50 with 422 (PayPal takes no HUF decimals)', async () => {
    const { invoice } = await openInvoice(app, {
      amount: 100_000,
      currency: 'huf',
      gateway: 'paypal',
      token: '8kk8451t',
    });
    nockToken(PAYPAL_API_BASE).optionally().reply(200, TOKEN);
    const sent: unknown[] = [];
    const order = paypalFixture('api.orders.create.vaulted_card_capture.completed.json');
    nock(PAYPAL_API_BASE)
      .post('/v2/checkout/orders')
      .reply(async (request: Request) => {
        const body = JSON.parse(await request.text());
        sent.push(body.purchase_units[0].amount);
        const answer = structuredClone(order);
        answer.purchase_units[0].amount = body.purchase_units[0].amount;
        answer.purchase_units[0].payments.captures[0].amount = body.purchase_units[0].amount;
        return [201, answer];
      });
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(sent).toEqual([{ currency_code: 'HUF', value: '1000' }]);
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 100_000 });

    // The PayPal method is stored after finalization: not rounded then (PRODUCT §11), refused now.
    const odd = await openInvoice(app, {
      amount: 100_050,
      currency: 'huf',
      gateway: 'paypal',
      token: '8kk8451t',
      methodAfter: true,
    });
    const refused = await app.api('POST', `/v1/invoices/${odd.invoice.id}/charge`, {});
    expect(refused.status).toBe(422);
    expect(refused.body.error.message).toContain('PayPal cannot take 1000.50 HUF');
    expect(await rowsOf(odd.invoice.id)).toEqual({ transactions: [], refunds: [] });
  });

  it('the collection sweep sends nothing for KWD 1.296: a failed attempt amount_not_representable, an exception for a person, no dunning, off the schedule', async () => {
    // The card is stored after finalization: the invoice is not rounded then (PRODUCT §11), so the
    // sweep meets an amount Stripe cannot take.
    const customer = (await app.api('POST', '/v1/customers', { email: 'ada@example.com' })).body;
    const dueAt = new Date('2027-05-01T06:00:00Z');
    const draft = await createInvoice(app.runtime.db, 'system', {
      customerId: customer.id,
      currency: 'KWD',
      lines: [{ description: 'Instalment', unitAmount: 1296n, quantity: 1, type: 'CHARGE' }],
      chargeAt: dueAt,
    });
    const due = await finalizeInvoice(app.runtime.db, 'system', draft.id);
    const card = await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    expect(card.status).toBe(201);
    const config = { DUNNING_RETRY_DAYS: [1, 3], DUNNING_FINAL_ACTION: 'SUSPEND' as const };
    const sweep = (now: Date) => chargeDueInvoices(app.runtime.db, 'scheduler', app.runtime, config, now);

    // No nock: a call to Stripe would fail the test.
    const first = await sweep(dueAt);
    const result = first.charged.find((c) => c.invoiceId === due.id);
    expect(result).toMatchObject({ outcome: 'failed', reason: 'amount_not_representable' });
    expect(result?.dunning).toBeUndefined();

    const { transactions } = await rowsOf(due.id);
    expect(transactions).toHaveLength(1);
    expect(transactions[0]).toMatchObject({
      id: result?.transactionId,
      status: 'failed',
      failure_code: 'amount_not_representable',
      gateway: 'stripe',
      gateway_transaction_id: null,
      amount: 1296n,
      currency: 'KWD',
      automatic: true,
    });
    expect(transactions[0]?.failure_message).toContain(
      'Stripe requires the last digit of a KWD amount to be 0',
    );
    // Not a payment failure of the customer: no attempt counted, no retry scheduled, still owed.
    const invoice = (await app.api('GET', `/v1/invoices/${due.id}`)).body;
    expect(invoice).toMatchObject({ status: 'OPEN', amount_due: 1296, payment_attempts: 0, charge_at: null });
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
    const mine = exceptions.body.data.filter(
      (e: { transaction: string }) => e.transaction === result?.transactionId,
    );
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ kind: 'amount_not_representable', gateway: 'stripe', status: 'open' });
    expect(mine[0].message).toContain(`invoice ${due.id} was not charged`);

    // Later sweeps (and dunning's count of late failures) leave it alone.
    const later = await sweep(new Date(dueAt.getTime() + 3 * 86_400_000));
    expect(later.charged.map((c) => c.invoiceId)).not.toContain(due.id);
    expect(later.lateFailures.map((s) => s.invoiceId)).not.toContain(due.id);
    expect((await rowsOf(due.id)).transactions).toHaveLength(1);
  });

  it('the collection sweep refuses JPY 100,000,000 once (Stripe takes up to eight digits): one failed attempt, one exception, no dunning, never retried', async () => {
    // JPY is zero-decimal at Stripe: the value sent would be 100000000, nine digits.
    const customer = (await app.api('POST', '/v1/customers', { email: 'grace@example.com' })).body;
    const dueAt = new Date('2027-06-01T06:00:00Z');
    const draft = await createInvoice(app.runtime.db, 'system', {
      customerId: customer.id,
      currency: 'JPY',
      lines: [{ description: 'Plant', unitAmount: 100_000_000n, quantity: 1, type: 'CHARGE' }],
      chargeAt: dueAt,
    });
    const due = await finalizeInvoice(app.runtime.db, 'system', draft.id);
    const card = await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    expect(card.status).toBe(201);
    const ledger = await ledgerIn(app, 'JPY');
    const config = { DUNNING_RETRY_DAYS: [1, 3], DUNNING_FINAL_ACTION: 'SUSPEND' as const };
    const sweep = (now: Date) => chargeDueInvoices(app.runtime.db, 'scheduler', app.runtime, config, now);

    // No nock: a call to Stripe would fail the test.
    const first = await sweep(dueAt);
    const result = first.charged.find((c) => c.invoiceId === due.id);
    expect(result).toMatchObject({ outcome: 'failed', reason: 'amount_not_representable' });
    expect(result?.dunning).toBeUndefined();
    const { transactions } = await rowsOf(due.id);
    expect(transactions).toHaveLength(1);
    expect(transactions[0]).toMatchObject({
      status: 'failed',
      failure_code: 'amount_not_representable',
      gateway_transaction_id: null,
      amount: 100_000_000n,
      currency: 'JPY',
    });
    expect(transactions[0]?.failure_message).toContain('Stripe takes at most 99999999 JPY');
    const invoice = (await app.api('GET', `/v1/invoices/${due.id}`)).body;
    expect(invoice).toMatchObject({
      status: 'OPEN',
      amount_due: 100_000_000,
      payment_attempts: 0,
      charge_at: null,
    });
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
    expect(
      exceptions.body.data.filter((e: { transaction: string }) => e.transaction === result?.transactionId),
    ).toEqual([expect.objectContaining({ kind: 'amount_not_representable', status: 'open' })]);
    expect(await ledgerIn(app, 'JPY')).toEqual(ledger);

    // Every dunning retry day passes: nothing claimed, counted or sent again.
    for (const days of [1, 3, 8]) {
      const later = await sweep(new Date(dueAt.getTime() + days * 86_400_000));
      expect(later.charged.map((c) => c.invoiceId)).not.toContain(due.id);
      expect(later.lateFailures.map((s) => s.invoiceId)).not.toContain(due.id);
    }
    expect((await rowsOf(due.id)).transactions).toHaveLength(1);
    expect((await app.api('GET', `/v1/invoices/${due.id}`)).body).toMatchObject({
      status: 'OPEN',
      payment_attempts: 0,
    });
  });
});
