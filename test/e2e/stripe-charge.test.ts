import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { FIXTURE_INTENT, ledgerByCode, openInvoice, stripeChargeSucceeds } from '../support/flow.ts';
import { startHangingWeb, startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, stripeFixture, stripeFixtureRaw } from '../support/stripe.ts';
import { NO_ANSWER_DELAY_MS } from '../support/timeouts.ts';
import { waitFor } from '../support/wait.ts';

async function eventStatus(app: TestApp, gatewayEventId: string) {
  const events = await app.api('GET', '/v1/events?limit=100');
  return events.body.data.find((e: { gateway_event_id: string }) => e.gateway_event_id === gatewayEventId);
}

async function processed(app: TestApp, gatewayEventId: string, status = 'processed') {
  return waitFor(`event ${gatewayEventId} to be ${status}`, async () => {
    const event = await eventStatus(app, gatewayEventId);
    return event?.status === status ? event : undefined;
  });
}

describe('charging an invoice through Stripe', () => {
  let app: TestApp;
  /** The web process that charges the invoice whose charge never gets an answer. */
  let hanging: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
    hanging = await startHangingWeb(app);
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await hanging.stop();
    await stopOfflineTestApp(app);
  });

  it('charges off-session, marks the invoice PAID, posts the payment once, and a later payment_intent.succeeded changes nothing', async () => {
    const { invoice, customer } = await openInvoice(app);
    expect(await ledgerByCode(app)).toEqual({ 'receivable:customer EUR': 4620, 'revenue EUR': -4620 });

    const { seen } = stripeChargeSucceeds(FIXTURE_INTENT.id);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(200);
    expect(charged.body.transaction).toMatchObject({
      status: 'succeeded',
      gateway: 'stripe',
      gateway_transaction_id: FIXTURE_INTENT.id,
      amount: 4620,
      currency: 'EUR',
    });
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_due: 0, amount_paid: 4620 });
    // The attempt id is the Idempotency-Key and the metadata reference.
    expect(seen).toHaveLength(1);
    expect(seen[0]?.idempotencyKey).toBe(charged.body.transaction.id);
    expect(seen[0]?.params.get('metadata[billhook_reference]')).toBe(charged.body.transaction.id);
    // An operator's charge of a one-off invoice: an unscheduled merchant-initiated charge.
    expect(seen[0]?.params.get('off_session')).toBe('one_off');
    expect(seen[0]?.params.get('customer')).toBe('cus_SRCIP043oBsNpV');

    const ledger = {
      'gateway_clearing:stripe EUR': 4620,
      'receivable:customer EUR': 0,
      'revenue EUR': -4620,
    };
    expect(await ledgerByCode(app)).toEqual(ledger);

    // Stripe's own webhook for the same payment intent (the real fixture, unmodified) is a duplicate.
    expect(
      (await deliverStripe(app.url, stripeFixtureRaw('webhook.payment_intent.succeeded.json'))).status,
    ).toBe(200);
    const event = await processed(app, 'evt_3RTkpYQ8iJWBZFaM1G1JtOIT');
    expect(event.outcome).toBe('duplicate');
    expect(await ledgerByCode(app)).toEqual(ledger);
    const entries = await app.api('GET', '/v1/ledger/entries');
    expect(entries.body.data.map((e: { source: { type: string } }) => e.source.type)).toEqual([
      'invoice',
      'transaction',
    ]);
    expect(entries.body.data[1].postings).toEqual([
      { account: 'gateway_clearing:stripe', amount: 4620, currency: 'EUR' },
      { account: `receivable:${customer.id}`, amount: -4620, currency: 'EUR' },
    ]);
    // A consumer tailing the books with its last cursor sees only what came after it.
    const tail = await app.api('GET', `/v1/ledger/entries?after_sequence=${entries.body.data[0].sequence}`);
    expect(tail.body.data.map((e: { id: string }) => e.id)).toEqual([entries.body.data[1].id]);
    expect(customer.id).toMatch(/^cus_/);
  });

  it('keeps a timed-out charge unknown, refuses a second attempt, and lets payment_intent.succeeded settle it by reference', async () => {
    const { invoice } = await openInvoice(app);
    nock(STRIPE_API_BASE).post('/v1/payment_intents').delay(NO_ANSWER_DELAY_MS).reply(200, FIXTURE_INTENT);
    const charged = await hanging.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({ status: 'unknown', failure_code: 'unknown_outcome' });
    expect(charged.body.invoice.status).toBe('OPEN');

    const again = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('charge_in_progress');

    const event = stripeFixture('webhook.payment_intent.succeeded.json');
    event.id = 'evt_settles_unknown_charge';
    event.data.object.id = 'pi_settled_by_reference';
    event.data.object.metadata = { billhook_reference: charged.body.transaction.id };
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    await processed(app, 'evt_settles_unknown_charge');

    const after = await app.api('GET', `/v1/invoices/${invoice.id}`);
    expect(after.body).toMatchObject({ status: 'PAID', amount_paid: 4620, amount_due: 0 });
    const transactions = await app.api('GET', '/v1/transactions?limit=100');
    const txn = transactions.body.data.find((t: { id: string }) => t.id === charged.body.transaction.id);
    expect(txn).toMatchObject({ status: 'succeeded', gateway_transaction_id: 'pi_settled_by_reference' });

    // The audit log: the attempt made over the API, settled by the webhook (applied in a batch).
    const log = await app.api('GET', `/v1/activities?resource=${txn.id}`);
    expect(log.body.data.map((a: { action: string; actor: string }) => [a.action, a.actor])).toEqual([
      ['transaction.created', expect.stringMatching(/^key_/)],
      ['transaction.unknown', expect.stringMatching(/^key_/)],
      ['transaction.succeeded', 'webhook'],
    ]);
    const invoiceLog = await app.api('GET', `/v1/activities?resource=${invoice.id}`);
    expect(invoiceLog.body.data.at(-1)).toMatchObject({ action: 'invoice.paid', actor: 'webhook' });
  });

  it.each([
    [
      'card_declined',
      'api.payment_intent.create.card_declined.error.json',
      'card_declined',
      /decline_code: generic_decline/,
    ],
    [
      'authentication_required',
      'api.payment_intent.create.authentication_required.error.json',
      'authentication_required',
      /authentication action/,
    ],
  ])(
    'records a %s decline with Stripe code and message, and leaves the invoice chargeable',
    async (_name, fixture, code, message) => {
      const { invoice } = await openInvoice(app);
      nock(STRIPE_API_BASE).post('/v1/payment_intents').reply(402, stripeFixture(fixture));
      const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
      expect(charged.status).toBe(200);
      expect(charged.body.transaction).toMatchObject({ status: 'failed', failure_code: code });
      expect(charged.body.transaction.failure_message).toMatch(message);
      expect(charged.body.invoice).toMatchObject({ status: 'OPEN', amount_paid: 0 });

      stripeChargeSucceeds();
      const retried = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
      expect(retried.body.transaction.status).toBe('succeeded');
      expect(retried.body.invoice.status).toBe('PAID');
    },
  );

  it('treats a requires_action PaymentIntent as a decline needing authentication', async () => {
    const { invoice } = await openInvoice(app, { amount: 1343333 });
    nock(STRIPE_API_BASE)
      .post('/v1/payment_intents')
      .reply(200, stripeFixture('api.payment_intent.create.requires_action.json'));
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({
      status: 'failed',
      failure_code: 'authentication_required',
    });
  });

  it('keeps an attempt open when the gateway answers with an id that is already another transaction', async () => {
    const first = await openInvoice(app);
    stripeChargeSucceeds('pi_answered_twice');
    expect(
      (await app.api('POST', `/v1/invoices/${first.invoice.id}/charge`, {})).body.transaction.status,
    ).toBe('succeeded');
    const second = await openInvoice(app);
    stripeChargeSucceeds('pi_answered_twice');
    const charged = await app.api('POST', `/v1/invoices/${second.invoice.id}/charge`, {});
    expect(charged.status).toBe(200);
    expect(charged.body.transaction).toMatchObject({
      status: 'unknown',
      failure_code: 'gateway_id_in_use',
      gateway_transaction_id: null,
    });
    expect(charged.body.invoice.status).toBe('OPEN');
  });

  it('leaves a 500 from Stripe unknown, never failed', async () => {
    const { invoice } = await openInvoice(app);
    nock(STRIPE_API_BASE)
      .post('/v1/payment_intents')
      .reply(500, { error: { type: 'api_error', message: 'An unknown error occurred' } });
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction.status).toBe('unknown');
    expect(charged.body.invoice.status).toBe('OPEN');
  });

  it('stores an event type billhook does not reconcile and marks it ignored, never failed', async () => {
    const event = stripeFixture('webhook.payment_intent.succeeded.json');
    Object.assign(event, {
      id: 'evt_customer_created',
      type: 'customer.created',
      data: { object: { id: 'cus_x', object: 'customer' } },
    });
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    const ignored = await processed(app, 'evt_customer_created', 'ignored');
    expect(ignored).toMatchObject({
      type: 'customer.created',
      outcome: 'ignored: customer.created is not reconciled',
    });
  });

  it('refuses to charge a paid, a draft or a missing invoice', async () => {
    const { invoice } = await openInvoice(app);
    stripeChargeSucceeds();
    await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    const paid = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(paid.status).toBe(409);
    expect(paid.body.error.code).toBe('invoice_not_open');

    const draft = await app.api('POST', '/v1/invoices', {
      customer: invoice.customer,
      currency: 'EUR',
      lines: [{ description: 'x', amount: 100 }],
    });
    const notFinal = await app.api('POST', `/v1/invoices/${draft.body.id}/charge`, {});
    expect(notFinal.status).toBe(409);
    const missing = await app.api('POST', '/v1/invoices/inv_doesnotexist/charge', {});
    expect(missing.status).toBe(404);
  });
});
