import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createInvoice, finalizeInvoice } from '../../src/billing/invoices.ts';
import { renewDueSubscriptions } from '../../src/billing/renewal.ts';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { ledgerIn } from '../support/collection.ts';
import { stripeChargeSucceeds } from '../support/flow.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { stripeFixture } from '../support/stripe.ts';

/**
 * Stripe refuses a PaymentIntent whose amount is below its minimum or above its maximum with HTTP 400
 * `invalid_request_error`, code `amount_too_small` / `amount_too_large`
 * (https://docs.stripe.com/error-codes): the same amount will be refused again, so the collection
 * sweep sets the invoice aside once — one failed attempt, one exception naming the code, no dunning
 * — as it does an amount it cannot send (`recordUnsendableCharge`), and never sends it again.
 */
describe('Stripe amount_too_small / amount_too_large are not retried by dunning', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
    // The sweep is driven by the test alone.
    await app.runtime.boss.unschedule(QUEUES.invoiceCharge);
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  afterEach(expectEveryMockUsed);
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  it.each([
    ['amount_too_small', 'USD 0.30', 30n, '2027-08-01T06:00:00Z'],
    ['amount_too_large', 'USD 250,000.00', 25_000_000n, '2027-09-01T06:00:00Z'],
  ])(
    'the sweep sends %s (%s) once: one failed attempt, one exception naming the code, no dunning, never sent again',
    async (code, _shown, amount, due) => {
      const customer = (await app.api('POST', '/v1/customers', { email: 'ada@example.com' })).body;
      const card = await app.api('POST', '/v1/payment-methods', {
        customer: customer.id,
        gateway: 'stripe',
        gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
        gateway_customer_id: 'cus_SRCIP043oBsNpV',
      });
      expect(card.status).toBe(201);
      const dueAt = new Date(due);
      const draft = await createInvoice(app.runtime.db, 'system', {
        customerId: customer.id,
        currency: 'USD',
        lines: [{ description: 'Instalment', unitAmount: amount, quantity: 1, type: 'CHARGE' }],
        chargeAt: dueAt,
      });
      const invoice = await finalizeInvoice(app.runtime.db, 'system', draft.id);
      const ledger = await ledgerIn(app, 'USD');
      const error = stripeFixture(`api.payment_intent.create.${code}.error.json`);
      const sent: string[] = [];
      nock(STRIPE_API_BASE)
        .post('/v1/payment_intents')
        .reply(async (request: Request) => {
          sent.push(new URLSearchParams(await request.text()).get('amount') ?? '');
          return [400, error];
        });
      const config = { DUNNING_RETRY_DAYS: [1, 3], DUNNING_FINAL_ACTION: 'SUSPEND' as const };
      const sweep = (now: Date) => chargeDueInvoices(app.runtime.db, 'scheduler', app.runtime, config, now);

      const first = await sweep(dueAt);
      expect(sent).toEqual([String(amount)]);
      const result = first.charged.find((c) => c.invoiceId === invoice.id);
      expect(result).toMatchObject({ outcome: 'failed', reason: code });
      expect(result?.dunning).toBeUndefined();
      const attempts = await app.runtime.db
        .selectFrom('transactions')
        .selectAll()
        .where('invoice_id', '=', invoice.id)
        .execute();
      expect(attempts).toHaveLength(1);
      expect(attempts[0]).toMatchObject({
        id: result?.transactionId,
        status: 'failed',
        failure_code: code,
        failure_message: error.error.message,
        amount,
        currency: 'USD',
        automatic: true,
      });
      expect(attempts[0]?.dunning_counted_at).not.toBeNull();
      // Not the customer's failure: no attempt counted, no retry scheduled, still owed, no PAST_DUE.
      expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
        status: 'OPEN',
        amount_due: Number(amount),
        payment_attempts: 0,
        charge_at: null,
      });
      const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
      const mine = exceptions.body.data.filter(
        (e: { transaction: string }) => e.transaction === result?.transactionId,
      );
      expect(mine).toEqual([
        expect.objectContaining({ kind: 'amount_not_representable', gateway: 'stripe', status: 'open' }),
      ]);
      expect(mine[0].message).toEqual(expect.stringContaining(`invoice ${invoice.id} was not charged`));
      expect(mine[0].message).toEqual(expect.stringContaining(code));
      expect(await ledgerIn(app, 'USD')).toEqual(ledger);

      // Every dunning retry day passes: nothing claimed, counted or sent again (no nock: a call fails).
      for (const days of [1, 3, 8]) {
        const later = await sweep(new Date(dueAt.getTime() + days * 86_400_000));
        expect(later.charged.map((c) => c.invoiceId)).not.toContain(invoice.id);
        expect(later.lateFailures.map((s) => s.invoiceId)).not.toContain(invoice.id);
      }
      expect(sent).toHaveLength(1);
      expect(
        await app.runtime.db
          .selectFrom('transactions')
          .select('id')
          .where('invoice_id', '=', invoice.id)
          .execute(),
      ).toHaveLength(1);
      expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
        status: 'OPEN',
        payment_attempts: 0,
      });
    },
  );
  it('an invoice set aside for amount_too_small (USD 0.30) can still be charged by hand: a refusal is 200 with a failed attempt (not counted, no second exception, still off the schedule); a success pays it', async () => {
    const customer = (await app.api('POST', '/v1/customers', { email: 'lin@example.com' })).body;
    const card = await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    expect(card.status).toBe(201);
    const dueAt = new Date('2027-11-01T06:00:00Z');
    const draft = await createInvoice(app.runtime.db, 'system', {
      customerId: customer.id,
      currency: 'USD',
      lines: [{ description: 'Instalment', unitAmount: 30n, quantity: 1, type: 'CHARGE' }],
      chargeAt: dueAt,
    });
    const invoice = await finalizeInvoice(app.runtime.db, 'system', draft.id);
    const error = stripeFixture('api.payment_intent.create.amount_too_small.error.json');
    nock(STRIPE_API_BASE).post('/v1/payment_intents').times(2).reply(400, error);
    const config = { DUNNING_RETRY_DAYS: [1, 3], DUNNING_FINAL_ACTION: 'SUSPEND' as const };
    const first = await chargeDueInvoices(app.runtime.db, 'scheduler', app.runtime, config, dueAt);
    expect(first.charged.find((c) => c.invoiceId === invoice.id)).toMatchObject({
      reason: 'amount_too_small',
    });
    const exceptionsOf = async () =>
      (await app.api('GET', '/v1/reconciliation-exceptions?limit=100')).body.data.filter(
        (e: { kind: string; message: string }) =>
          e.kind === 'amount_not_representable' && e.message.includes(invoice.id),
      );
    expect(await exceptionsOf()).toHaveLength(1);

    // By hand, refused again: the API's documented answer, 200 with the failed attempt.
    const refused = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(refused.status).toBe(200);
    expect(refused.body.transaction).toMatchObject({
      status: 'failed',
      failure_code: 'amount_too_small',
      automatic: false,
    });
    expect(refused.body.invoice).toMatchObject({
      status: 'OPEN',
      amount_due: 30,
      payment_attempts: 0,
      charge_at: null,
    });
    expect(await exceptionsOf()).toHaveLength(1);

    // By hand, taken (the account's minimum lowered, say): paid.
    stripeChargeSucceeds();
    const paid = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(paid.status).toBe(200);
    expect(paid.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 30, amount_due: 0 });
  });
  /**
   * A USD 0.30 invoice of a new customer with a Stripe card, due at `due`, that the sweep set aside
   * for `amount_too_small`, with its one open exception (GET /v1/reconciliation-exceptions).
   */
  async function setAsideTooSmall(email: string, due: string) {
    const customer = (await app.api('POST', '/v1/customers', { email })).body;
    const card = await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    expect(card.status).toBe(201);
    const dueAt = new Date(due);
    const draft = await createInvoice(app.runtime.db, 'system', {
      customerId: customer.id,
      currency: 'USD',
      lines: [{ description: 'Instalment', unitAmount: 30n, quantity: 1, type: 'CHARGE' }],
      chargeAt: dueAt,
    });
    const invoice = await finalizeInvoice(app.runtime.db, 'system', draft.id);
    nock(STRIPE_API_BASE)
      .post('/v1/payment_intents')
      .reply(400, stripeFixture('api.payment_intent.create.amount_too_small.error.json'));
    const config = { DUNNING_RETRY_DAYS: [1, 3], DUNNING_FINAL_ACTION: 'SUSPEND' as const };
    const swept = await chargeDueInvoices(app.runtime.db, 'scheduler', app.runtime, config, dueAt);
    const attempt = swept.charged.find((c) => c.invoiceId === invoice.id);
    expect(attempt).toMatchObject({ outcome: 'failed', reason: 'amount_too_small' });
    const exception = await exceptionOf(attempt?.transactionId as string);
    expect(exception).toMatchObject({ kind: 'amount_not_representable', status: 'open', resolved_at: null });
    return { customer: customer.id as string, invoice: invoice.id, exception: exception.id as string };
  }
  /** The one exception (GET /v1/reconciliation-exceptions) about attempt `transactionId`. */
  async function exceptionOf(transactionId: string) {
    const listed = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
    const mine = listed.body.data.filter((e: { transaction: string }) => e.transaction === transactionId);
    expect(mine).toHaveLength(1);
    return mine[0];
  }
  /** The `reconciliation_exception.resolved` activities of exception `id` (GET /v1/activities). */
  async function resolutionsOf(id: string) {
    const listed = await app.api('GET', `/v1/activities?resource=${id}&limit=100`);
    expect(listed.status).toBe(200);
    return listed.body.data.filter(
      (a: { action: string }) => a.action === 'reconciliation_exception.resolved',
    );
  }

  it('the exception of a USD 0.30 invoice set aside for amount_too_small is resolved once a charge by hand pays it, the note naming the charge', async () => {
    const { customer, invoice, exception } = await setAsideTooSmall(
      'ivo@example.com',
      '2027-12-01T06:00:00Z',
    );
    stripeChargeSucceeds();
    const paid = await app.api('POST', `/v1/invoices/${invoice}/charge`, {});
    expect(paid.status).toBe(200);
    expect(paid.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 30, amount_due: 0 });
    const charge = paid.body.transaction.id as string;
    expect((await app.api('GET', `/v1/reconciliation-exceptions/${exception}`)).body).toMatchObject({
      status: 'resolved',
      resolved_at: expect.any(String),
    });
    expect(await resolutionsOf(exception)).toEqual([
      expect.objectContaining({
        customer,
        data: {
          kind: 'amount_not_representable',
          note: expect.stringMatching(
            new RegExp(`^invoice ${invoice} was paid by charge ${charge} \\(stripe\\)`),
          ),
        },
      }),
    ]);
  });
  it('the exception of a USD 0.30 invoice set aside for amount_too_small is resolved once an offline payment pays it, the note naming the payment; a part paid leaves it open', async () => {
    const { invoice, exception } = await setAsideTooSmall('uma@example.com', '2027-12-02T06:00:00Z');
    const part = await app.api('POST', `/v1/invoices/${invoice}/payments`, { method: 'BANK', amount: 10 });
    expect(part.status).toBe(201);
    expect(part.body).toMatchObject({ status: 'OPEN', amount_due: 20 });
    expect((await app.api('GET', `/v1/reconciliation-exceptions/${exception}`)).body).toMatchObject({
      status: 'open',
    });
    expect(await resolutionsOf(exception)).toEqual([]);

    const rest = await app.api('POST', `/v1/invoices/${invoice}/payments`, {
      method: 'CHECK',
      amount: 20,
      reference: 'chq 1042',
    });
    expect(rest.status).toBe(201);
    expect(rest.body).toMatchObject({ status: 'PAID', amount_paid: 30, amount_due: 0 });
    expect((await app.api('GET', `/v1/reconciliation-exceptions/${exception}`)).body).toMatchObject({
      status: 'resolved',
      resolved_at: expect.any(String),
    });
    const payment = await app.runtime.db
      .selectFrom('offline_payments')
      .select('id')
      .where('invoice_id', '=', invoice)
      .where('method', '=', 'CHECK')
      .executeTakeFirstOrThrow();
    expect(await resolutionsOf(exception)).toEqual([
      expect.objectContaining({
        data: {
          kind: 'amount_not_representable',
          note: expect.stringMatching(
            new RegExp(`^invoice ${invoice} was paid by offline payment ${payment.id} \\(CHECK\\)`),
          ),
        },
      }),
    ]);
  });
  it('the exception of a USD 0.30 invoice set aside for amount_too_small is resolved once the invoice is voided, the note saying so', async () => {
    const { invoice, exception } = await setAsideTooSmall('rex@example.com', '2027-12-03T06:00:00Z');
    const voided = await app.api('POST', `/v1/invoices/${invoice}/void`, {});
    expect(voided.status).toBe(200);
    expect(voided.body).toMatchObject({ status: 'VOID', amount_due: 0 });
    expect((await app.api('GET', `/v1/reconciliation-exceptions/${exception}`)).body).toMatchObject({
      status: 'resolved',
      resolved_at: expect.any(String),
    });
    expect(await resolutionsOf(exception)).toEqual([
      expect.objectContaining({
        data: {
          kind: 'amount_not_representable',
          note: expect.stringMatching(new RegExp(`^invoice ${invoice} was voided`)),
        },
      }),
    ]);
  });
  it('a subscription whose USD 0.30 invoice was set aside for amount_too_small stays ACTIVE and renews next period normally: the next invoice is filed and charged', async () => {
    await app.runtime.boss.offWork(QUEUES.subscriptionRenew);
    const customer = (await app.api('POST', '/v1/customers', { email: 'kim@example.com' })).body;
    const card = await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    expect(card.status).toBe(201);
    const product = await app.api('POST', '/v1/products', { name: 'Tiny' });
    const plan = await app.api('POST', '/v1/plans', {
      product: product.body.id,
      name: 'Tiny monthly',
      currency: 'USD',
      interval: 'MONTH',
      price: { model: 'FLAT_FEE', amount: 30 },
    });
    expect(plan.status).toBe(201);
    const start = new Date('2028-01-01T09:00:00Z');
    const created = await app.api('POST', '/v1/subscriptions', {
      customer: customer.id,
      plan: plan.body.id,
      start_at: start.toISOString(),
    });
    expect(created.status).toBe(201);
    const subscription = created.body.id as string;
    const config = { DUNNING_RETRY_DAYS: [1, 3], DUNNING_FINAL_ACTION: 'SUSPEND' as const };
    const invoicesOf = () =>
      app.runtime.db
        .selectFrom('invoices')
        .select(['id', 'status', 'charge_at', 'payment_attempts', 'amount_due'])
        .where('subscription_id', '=', subscription)
        .orderBy('period_index')
        .execute();
    const statusOf = async () =>
      (
        await app.runtime.db
          .selectFrom('subscriptions')
          .select('status')
          .where('id', '=', subscription)
          .executeTakeFirstOrThrow()
      ).status;

    // The first period's USD 0.30 is refused amount_too_small: set aside, the subscription ACTIVE.
    nock(STRIPE_API_BASE)
      .post('/v1/payment_intents')
      .reply(400, stripeFixture('api.payment_intent.create.amount_too_small.error.json'));
    const first = new Date(start.getTime() + 3_600_000);
    await renewDueSubscriptions(app.runtime.db, 'scheduler', first);
    await chargeDueInvoices(app.runtime.db, 'scheduler', app.runtime, config, first);
    const [setAside] = await invoicesOf();
    expect(setAside).toMatchObject({ status: 'OPEN', charge_at: null, payment_attempts: 0, amount_due: 30n });
    expect(await statusOf()).toBe('ACTIVE');

    // A month later: the next period is invoiced and charged as ever (taken this time).
    stripeChargeSucceeds();
    const next = new Date('2028-02-01T10:00:00Z');
    await renewDueSubscriptions(app.runtime.db, 'scheduler', next);
    await chargeDueInvoices(app.runtime.db, 'scheduler', app.runtime, config, next);
    const invoices = await invoicesOf();
    expect(invoices).toHaveLength(2);
    expect(invoices[0]).toMatchObject({ id: setAside?.id, status: 'OPEN', charge_at: null });
    expect(invoices[1]).toMatchObject({ status: 'PAID', amount_due: 0n, payment_attempts: 0 });
    expect(await statusOf()).toBe('ACTIVE');
  });
});
