import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STRIPE_API_BASE, startTestApp, type TestApp } from '../support/app.ts';
import { FIXTURE_INTENT, ledgerByCode, openInvoice } from '../support/flow.ts';
import { startHangingWeb } from '../support/offline.ts';
import { deliverStripe, stripeFixture } from '../support/stripe.ts';
import { NO_ANSWER_DELAY_MS } from '../support/timeouts.ts';
import { waitFor } from '../support/wait.ts';

const PAYMENT_INTENT = 'pi_disorder_1';

/**
 * An invoice of `app` whose charge, sent to `hanging` (`startHangingWeb(app)`), timed out (unknown), so
 * only Stripe's webhooks decide what happened.
 */
async function unknownCharge(app: TestApp, hanging: TestApp) {
  const { invoice } = await openInvoice(app);
  nock(STRIPE_API_BASE).post('/v1/payment_intents').delay(NO_ANSWER_DELAY_MS).reply(200, FIXTURE_INTENT);
  const charged = await hanging.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
  expect(charged.body.transaction.status).toBe('unknown');
  return { invoice, transaction: charged.body.transaction };
}

/** The real event fixtures, in the order Stripe emitted them, about one payment of ours. */
function eventSequence(reference: string) {
  const failed = stripeFixture('webhook.payment_intent.payment_failed.json');
  Object.assign(failed.data.object, {
    id: PAYMENT_INTENT,
    amount: 4620,
    currency: 'eur',
    metadata: { billhook_reference: reference },
  });
  const succeeded = stripeFixture('webhook.payment_intent.succeeded.json');
  Object.assign(succeeded.data.object, { id: PAYMENT_INTENT, metadata: { billhook_reference: reference } });
  const refund = stripeFixture('webhook.charge.refund.updated.json');
  Object.assign(refund.data.object, {
    id: 're_disorder',
    amount: 1000,
    currency: 'eur',
    payment_intent: PAYMENT_INTENT,
  });
  const opened = stripeFixture('webhook.charge.dispute.created.json');
  Object.assign(opened.data.object, {
    id: 'du_disorder',
    amount: 2000,
    currency: 'eur',
    payment_intent: PAYMENT_INTENT,
  });
  const closed = stripeFixture('webhook.charge.dispute.closed.json');
  Object.assign(closed.data.object, {
    id: 'du_disorder',
    amount: 2000,
    currency: 'eur',
    status: 'lost',
    payment_intent: PAYMENT_INTENT,
  });
  return [failed, succeeded, refund, opened, closed];
}

async function allSettled(app: TestApp, count: number) {
  return waitFor(
    `${count} events to settle`,
    async () => {
      const events = await app.api('GET', '/v1/events?limit=100');
      const done = events.body.data.filter((e: { status: string }) =>
        ['processed', 'ignored', 'exception'].includes(e.status),
      );
      return done.length === count ? events.body.data : undefined;
    },
    25_000,
  );
}

async function books(app: TestApp, invoiceId: string) {
  const invoice = (await app.api('GET', `/v1/invoices/${invoiceId}`)).body;
  const transactions = (await app.api('GET', '/v1/transactions')).body.data;
  const refunds = (await app.api('GET', '/v1/refunds')).body.data;
  const disputes = (await app.api('GET', '/v1/disputes')).body.data;
  const exceptions = (await app.api('GET', '/v1/reconciliation-exceptions')).body.data;
  return {
    ledger: await ledgerByCode(app),
    invoice: {
      status: invoice.status,
      amount_paid: invoice.amount_paid,
      amount_refunded: invoice.amount_refunded,
      amount_due: invoice.amount_due,
    },
    transactions: transactions.map((t: { status: string; gateway_transaction_id: string }) => [
      t.status,
      t.gateway_transaction_id,
    ]),
    refunds: refunds.map((r: { status: string; amount: number }) => [r.status, r.amount]),
    disputes: disputes.map((d: { status: string; amount: number }) => [d.status, d.amount]),
    exceptions: exceptions.length,
  };
}

describe('duplicate and out-of-order Stripe deliveries', () => {
  let inOrder: TestApp;
  let disordered: TestApp;
  /** Their web processes for the charges that never get an answer. */
  let hanging: TestApp[];
  beforeAll(async () => {
    nock.disableNetConnect();
    nock.enableNetConnect(/127\.0\.0\.1|localhost/);
    const env = { WEBHOOK_RETRY_LIMIT: '6' };
    [inOrder, disordered] = await Promise.all([startTestApp(env), startTestApp(env)]);
    hanging = await Promise.all([startHangingWeb(inOrder), startHangingWeb(disordered)]);
  });
  afterAll(async () => {
    await Promise.all(hanging.map((web) => web.stop()));
    await Promise.all([inOrder.stop(), disordered.stop()]);
    nock.cleanAll();
    nock.enableNetConnect();
  });

  it('leave the same ledger as one in-order delivery', async () => {
    const a = await unknownCharge(inOrder, hanging[0]!);
    const sequence = eventSequence(a.transaction.id);
    for (const [i, event] of sequence.entries()) {
      expect((await deliverStripe(inOrder.url, event)).status).toBe(200);
      await allSettled(inOrder, i + 1);
    }
    const expected = await books(inOrder, a.invoice.id);
    expect(expected.invoice).toEqual({
      status: 'PARTIALLY_REFUNDED',
      amount_paid: 4620,
      amount_refunded: 1000,
      amount_due: 0,
    });
    expect(expected.ledger).toEqual({
      'chargeback_losses EUR': 2000,
      'disputed_funds EUR': 0,
      'gateway_clearing:stripe EUR': 4620 - 1000 - 2000,
      'receivable:customer EUR': 0,
      'refunds EUR': 1000,
      'revenue EUR': -4620,
    });
    expect(expected.exceptions).toBe(0);

    const b = await unknownCharge(disordered, hanging[1]!);
    const reversed = eventSequence(b.transaction.id).reverse();
    // Newest first, each delivered twice, the duplicates concurrently.
    for (const event of reversed) {
      const answers = await Promise.all([
        deliverStripe(disordered.url, event),
        deliverStripe(disordered.url, event),
      ]);
      expect(answers.map((r) => r.status)).toEqual([200, 200]);
    }
    await allSettled(disordered, sequence.length);
    expect(await books(disordered, b.invoice.id)).toEqual(expected);
  });
});

describe('events billhook cannot reconcile', () => {
  let app: TestApp;
  /** The web process that charges the invoice whose charge never gets an answer. */
  let hanging: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ WEBHOOK_RETRY_LIMIT: '1', WEBHOOK_RETRY_DELAY_SECONDS: '1' });
    hanging = await startHangingWeb(app);
  });
  afterAll(async () => {
    await hanging.stop();
    await app.stop();
  });

  it('retries an event for an unknown payment intent, then lists it as a reconciliation exception', async () => {
    const event = stripeFixture('webhook.payment_intent.succeeded.json');
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    const retrying = await waitFor('the event to be retrying', async () => {
      const e = (await app.api('GET', '/v1/events')).body.data[0];
      return e?.status === 'retrying' ? e : undefined;
    });
    expect(retrying.last_error).toMatch(/no transaction/);
    const final = await waitFor('the event to become an exception', async () => {
      const e = (await app.api('GET', '/v1/events')).body.data[0];
      return e?.status === 'exception' ? e : undefined;
    });
    expect(final.attempts).toBeGreaterThanOrEqual(2);
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions');
    expect(exceptions.body.data).toEqual([
      expect.objectContaining({ kind: 'unknown_entity', gateway: 'stripe', event: final.id, status: 'open' }),
    ]);
    expect((await app.api('GET', '/v1/ledger/accounts')).body.data).toEqual([]);
  });

  it('raises an amount mismatch as an exception and posts nothing', async () => {
    nock.disableNetConnect();
    nock.enableNetConnect(/127\.0\.0\.1|localhost/);
    const { invoice } = await openInvoice(app);
    nock(STRIPE_API_BASE).post('/v1/payment_intents').delay(NO_ANSWER_DELAY_MS).reply(200, FIXTURE_INTENT);
    const charged = await hanging.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    const before = await ledgerByCode(app);
    const event = stripeFixture('webhook.payment_intent.succeeded.json');
    event.id = 'evt_wrong_amount';
    Object.assign(event.data.object, {
      id: 'pi_wrong_amount',
      amount: 9999,
      amount_received: 9999,
      metadata: { billhook_reference: charged.body.transaction.id },
    });
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    await waitFor('the mismatch exception', async () => {
      const list = (await app.api('GET', '/v1/reconciliation-exceptions')).body.data;
      return list.find((x: { kind: string }) => x.kind === 'amount_mismatch');
    });
    expect(await ledgerByCode(app)).toEqual(before);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.status).toBe('OPEN');
    nock.cleanAll();
    nock.enableNetConnect();
  });
});
