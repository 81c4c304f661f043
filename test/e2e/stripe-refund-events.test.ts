import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { ledgerByCode, paidStripeInvoice } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, refundObject, stripeEvent, stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

/*
 * PRODUCT.md §11, "money the gateway reports is what is booked", on Stripe: refunds from whichever
 * refund events arrive, in any order; refunds and disputes on a charge without a PaymentIntent;
 * inquiries that withdraw no funds. Every payment here is the fixture invoice of EUR 46.20 (4620
 * minor units): paid, it has put 4620 in gateway_clearing:stripe.
 */

let sequence = 0;
const eventId = (label: string) => `evt_${label}_${++sequence}_${Date.now()}`;

/**
 * `charge.refunded` as API versions from 2022-11-15 send it: Stripe's own Charge fixture (stripe-mock)
 * without the `refunds` list, `amount_refunded` the running total (https://docs.stripe.com/upgrades#2022-11-15).
 */
function chargeRefunded(charge: string, intent: string, amountRefunded: number) {
  const object = stripeFixture('api.charge.succeeded.openapi-fixture.json');
  delete object.refunds;
  return stripeEvent('charge.refunded', {
    ...object,
    id: charge,
    amount: 4620,
    amount_captured: 4620,
    amount_refunded: amountRefunded,
    refunded: amountRefunded === 4620,
    currency: 'eur',
    payment_intent: intent,
  });
}

/** Fakes Stripe's `GET /v1/refunds?charge=…` (a list object, one page) answering `refunds`. */
function stripeListsRefunds(charge: string, refunds: object[]) {
  return nock(STRIPE_API_BASE)
    .get('/v1/refunds')
    .query({ charge, limit: '100' })
    .reply(200, { object: 'list', data: refunds, has_more: false, url: '/v1/refunds' });
}

async function eventOf(app: TestApp, gatewayEventId: string) {
  const events = await app.api('GET', '/v1/events?limit=100');
  return events.body.data.find((e: { gateway_event_id: string }) => e.gateway_event_id === gatewayEventId);
}

/** Delivers `event` and waits until it is processed, ignored or raised (not received, not retrying). */
async function deliverSettled(app: TestApp, event: { id: string }) {
  expect((await deliverStripe(app.url, event)).status).toBe(200);
  return waitFor(`event ${event.id} to be settled`, async () => {
    const row = await eventOf(app, event.id);
    return row && row.status !== 'received' && row.status !== 'retrying' ? row : undefined;
  });
}

async function refundsOf(app: TestApp, transactionId: string) {
  const refunds = await app.api('GET', '/v1/refunds?limit=100');
  return refunds.body.data.filter((r: { transaction: string }) => r.transaction === transactionId);
}

describe('Stripe refunds, from whichever refund events arrive, in any order', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /**
   * The four events Stripe sends about one refund of 620 made at its dashboard: refund.created
   * (pending), refund.updated and charge.refund.updated (succeeded), and charge.refunded (no list).
   */
  function dashboardRefundEvents(intent: string, refundId: string) {
    const charge = `ch_${refundId}`;
    const pending = refundObject({ id: refundId, amount: 620, intent, status: 'pending', charge });
    const succeeded = { ...pending, status: 'succeeded' };
    // Asked by charge.refunded, Stripe lists the refund as it is now: succeeded.
    stripeListsRefunds(charge, [succeeded]);
    return {
      created: stripeEvent('refund.created', pending),
      updated: stripeEvent('refund.updated', succeeded),
      chargeRefundUpdated: stripeEvent('charge.refund.updated', succeeded),
      chargeRefunded: chargeRefunded(charge, intent, 620),
    };
  }

  it.each([
    [
      'created, updated, charge.refund.updated, charge.refunded',
      ['created', 'updated', 'chargeRefundUpdated', 'chargeRefunded'],
    ],
    [
      'charge.refunded, charge.refund.updated, updated, created',
      ['chargeRefunded', 'chargeRefundUpdated', 'updated', 'created'],
    ],
    [
      'updated, created, charge.refunded, charge.refund.updated',
      ['updated', 'created', 'chargeRefunded', 'chargeRefundUpdated'],
    ],
  ] as const)('books a dashboard refund once, its events in the order %s', async (_order, order) => {
    const { invoice, transaction } = await paidStripeInvoice(app);
    const before = await ledgerByCode(app);
    const refundId = `re_dashboard_${++sequence}`;
    const events = dashboardRefundEvents(transaction.gateway_transaction_id, refundId);
    for (const name of order) await deliverSettled(app, events[name]);

    // One refund of 620: refunds +620, gateway clearing 4620 - 620 = 4000 left for this payment.
    expect(await refundsOf(app, transaction.id)).toMatchObject([
      { gateway_refund_id: refundId, amount: 620, currency: 'EUR', status: 'succeeded' },
    ]);
    const after = await ledgerByCode(app);
    expect(after['refunds EUR']).toBe((before['refunds EUR'] ?? 0) + 620);
    expect(after['gateway_clearing:stripe EUR']).toBe(before['gateway_clearing:stripe EUR']! - 620);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 620,
    });
    // charge.refunded lists no refunds since API 2022-11-15: billhook asked Stripe for them.
    expect((await eventOf(app, events.chargeRefunded.id)).status).toBe('processed');
  });

  it('books a dashboard refund known only from charge.refunded (no list) by asking Stripe for the charge’s refunds', async () => {
    const { invoice, transaction } = await paidStripeInvoice(app);
    const before = await ledgerByCode(app);
    const intent = transaction.gateway_transaction_id;
    const charge = `ch_only_${++sequence}`;
    const first = refundObject({ id: `re_a_${sequence}`, amount: 620, intent, status: 'succeeded', charge });
    const second = refundObject({ id: `re_b_${sequence}`, amount: 380, intent, status: 'pending', charge });
    const lister = stripeListsRefunds(charge, [second, first]);
    const settled = await deliverSettled(app, chargeRefunded(charge, intent, 1000));
    // The pending refund is recorded pending as it is created (its own result then changes nothing).
    expect(settled).toMatchObject({ status: 'processed', outcome: 'duplicate, applied' });
    expect(lister.isDone()).toBe(true);
    // Two refunds recorded: 620 succeeded (refunds +620, clearing -620) and 380 pending (nothing posted yet).
    const refunds = await refundsOf(app, transaction.id);
    expect(refunds.map((r: { amount: number; status: string }) => [r.amount, r.status]).sort()).toEqual([
      [380, 'pending'],
      [620, 'succeeded'],
    ]);
    const after = await ledgerByCode(app);
    expect(after['refunds EUR']).toBe((before['refunds EUR'] ?? 0) + 620);
    expect(after['gateway_clearing:stripe EUR']).toBe(before['gateway_clearing:stripe EUR']! - 620);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({ amount_refunded: 620 });
  });

  it('books a refund billhook made once, its webhooks arriving before and after Stripe’s answer', async () => {
    const { invoice, transaction } = await paidStripeInvoice(app);
    const before = await ledgerByCode(app);
    const intent = transaction.gateway_transaction_id;
    const refundId = `re_ours_${++sequence}`;
    let earlyOutcome: string | undefined;
    // Stripe's refund.created (carrying our reference) is processed while our POST /v1/refunds waits.
    nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .reply(async (request: Request) => {
        const params = new URLSearchParams(await request.text());
        const reference = params.get('metadata[billhook_reference]') ?? '';
        const refund = refundObject({ id: refundId, amount: 1000, intent, status: 'succeeded', reference });
        earlyOutcome = (await deliverSettled(app, stripeEvent('refund.created', refund))).outcome;
        return [200, refund];
      });
    const refunded = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 1000 });
    expect(refunded.body).toMatchObject({ status: 'succeeded', gateway_refund_id: refundId, amount: 1000 });

    const charge = `ch_ours_${sequence}`;
    const late = refundObject({
      id: refundId,
      amount: 1000,
      intent,
      status: 'succeeded',
      reference: refunded.body.id,
      charge,
    });
    stripeListsRefunds(charge, [late]);
    for (const event of [
      stripeEvent('refund.updated', late),
      stripeEvent('charge.refund.updated', late),
      chargeRefunded(charge, intent, 1000),
    ]) {
      expect((await deliverSettled(app, event)).outcome).toBe('duplicate');
    }
    // Booked once: refunds +1000, gateway clearing -1000.
    expect(await refundsOf(app, transaction.id)).toHaveLength(1);
    const after = await ledgerByCode(app);
    expect(after['refunds EUR']).toBe((before['refunds EUR'] ?? 0) + 1000);
    expect(after['gateway_clearing:stripe EUR']).toBe(before['gateway_clearing:stripe EUR']! - 1000);
    // The early refund.created found our pending refund by its reference and booked it.
    expect(earlyOutcome).toBe('applied');
  });

  it('reverses a dashboard refund that refund.failed reports after it succeeded, once', async () => {
    const { transaction } = await paidStripeInvoice(app);
    const before = await ledgerByCode(app);
    const refundId = `re_failing_${++sequence}`;
    const succeeded = refundObject({
      id: refundId,
      amount: 620,
      intent: transaction.gateway_transaction_id,
      status: 'succeeded',
    });
    const failed = { ...succeeded, status: 'failed', failure_reason: 'expired_or_canceled_card' };
    await deliverSettled(app, stripeEvent('refund.updated', succeeded));
    const booked = await ledgerByCode(app);
    expect(booked['refunds EUR']).toBe((before['refunds EUR'] ?? 0) + 620);
    await deliverSettled(app, stripeEvent('refund.failed', failed));
    // A late refund.created (succeeded) is older news: it changes nothing.
    expect((await deliverSettled(app, stripeEvent('refund.created', succeeded))).outcome).toBe('stale');
    // The failure gave the 620 back to gateway clearing: the ledger is as it was.
    expect(await ledgerByCode(app)).toEqual(before);
    expect(await refundsOf(app, transaction.id)).toMatchObject([{ status: 'failed', amount: 620 }]);
  });
});

describe('Stripe refunds and disputes on a charge without a PaymentIntent', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** Stripe answers `GET /v1/charges/:id` with its own Charge fixture (stripe-mock) as `charge` of `intent`. */
  function stripeCharge(charge: string, intent: string | null) {
    return nock(STRIPE_API_BASE)
      .get(`/v1/charges/${charge}`)
      .reply(200, {
        ...stripeFixture('api.charge.succeeded.openapi-fixture.json'),
        id: charge,
        payment_intent: intent,
      });
  }

  it('matches one on billhook’s own payment through its charge: Stripe names the PaymentIntent', async () => {
    const { invoice, transaction } = await paidStripeInvoice(app);
    const before = await ledgerByCode(app);
    // A refund of 620 (of 4620) made at Stripe's dashboard, rendered without payment_intent (an
    // endpoint on an API version older than the field): its charge leads to our PaymentIntent.
    const asked = stripeCharge('ch_pi_less_ours', transaction.gateway_transaction_id);
    const refund = refundObject({
      id: 're_pi_less_ours',
      amount: 620,
      intent: null,
      status: 'succeeded',
      charge: 'ch_pi_less_ours',
    });
    expect(await deliverSettled(app, stripeEvent('refund.created', refund))).toMatchObject({
      status: 'processed',
    });
    expect(asked.isDone()).toBe(true);
    expect(await refundsOf(app, transaction.id)).toMatchObject([{ status: 'succeeded', amount: 620 }]);
    // Clearing gives back 620; revenue net of refunds and tax payable net of it lose 620 together.
    const after = await ledgerByCode(app);
    expect(after['gateway_clearing:stripe EUR']).toBe((before['gateway_clearing:stripe EUR'] ?? 0) - 620);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.status).toBe('PARTIALLY_REFUNDED');
  });

  it('raises one on a charge that has no PaymentIntent as an exception at once, naming the charge, and books nothing', async () => {
    const before = await ledgerByCode(app);
    // Stripe's own Refund and Charge fixtures (stripe-mock): payment_intent null, charge ch_1PgafuB7WZ01zgkWXYmPNZs8.
    const refund = stripeEvent('refund.created', stripeFixture('api.refund.succeeded.openapi-fixture.json'));
    const dispute = stripeFixture('webhook.charge.dispute.created.json');
    dispute.id = eventId('dispute_created');
    Object.assign(dispute.data.object, { payment_intent: null, charge: 'ch_1PgafuB7WZ01zgkWXYmPNZs8' });

    for (const event of [refund, dispute]) {
      stripeCharge('ch_1PgafuB7WZ01zgkWXYmPNZs8', null);
      const settled = await deliverSettled(app, event);
      expect(settled).toMatchObject({ status: 'exception', outcome: 'unknown_entity' });
      expect(settled.attempts).toBe(1);
    }
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
    const messages = exceptions.body.data.map((x: { message: string }) => x.message);
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^refund re_1Pgc72B7WZ01zgkWqPvrRrPE: Stripe charge ch_1PgafuB7WZ01zgkWXYmPNZs8 has no PaymentIntent/,
        ),
        expect.stringMatching(
          /^dispute du_0RystVItVxyc3Q6n8IfZyZXt: Stripe charge ch_1PgafuB7WZ01zgkWXYmPNZs8 has no PaymentIntent/,
        ),
      ]),
    );
    expect(await ledgerByCode(app)).toEqual(before);
  });
});

describe('Stripe inquiries move no money', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** The real dispute.created event (GBP 500 chargeback) made about `disputeId` on our payment, EUR 46.20. */
  function disputeEvent(type: string, disputeId: string, intent: string, status: string) {
    const event = stripeFixture('webhook.charge.dispute.created.json');
    event.id = eventId(type.replaceAll('.', '_'));
    event.type = type;
    Object.assign(event.data.object, {
      id: disputeId,
      status,
      payment_intent: intent,
      currency: 'eur',
      amount: 4620,
    });
    // An inquiry withdraws nothing: no balance transactions (as the real warning_closed event shows).
    if (status.startsWith('warning_')) event.data.object.balance_transactions = [];
    return event;
  }

  async function disputeOf(app: TestApp, disputeId: string) {
    const disputes = await app.api('GET', '/v1/disputes?limit=100');
    return disputes.body.data.find((d: { gateway_dispute_id: string }) => d.gateway_dispute_id === disputeId);
  }

  it('records an inquiry and its closing (the real warning_closed event) without a posting', async () => {
    const { transaction } = await paidStripeInvoice(app);
    const before = await ledgerByCode(app);
    const disputeId = `du_inquiry_${++sequence}`;
    const opened = await deliverSettled(
      app,
      disputeEvent(
        'charge.dispute.created',
        disputeId,
        transaction.gateway_transaction_id,
        'warning_needs_response',
      ),
    );
    expect(opened).toMatchObject({ status: 'processed', outcome: 'applied' });
    expect(await disputeOf(app, disputeId)).toMatchObject({
      status: 'inquiry',
      amount: 4620,
      transaction: transaction.id,
    });
    expect(await ledgerByCode(app)).toEqual(before);

    const closed = stripeFixture('webhook.charge.dispute.closed.json');
    closed.id = eventId('dispute_closed');
    Object.assign(closed.data.object, {
      id: disputeId,
      payment_intent: transaction.gateway_transaction_id,
      currency: 'eur',
      amount: 4620,
    });
    expect((await deliverSettled(app, closed)).outcome).toBe('applied');
    expect(await disputeOf(app, disputeId)).toMatchObject({ status: 'inquiry_closed' });
    // Gateway clearing still holds the 4620 paid; disputed funds and chargeback losses untouched.
    expect(await ledgerByCode(app)).toEqual(before);
  });

  it('posts an inquiry that escalates only when its funds are withdrawn, then books the loss', async () => {
    const { transaction } = await paidStripeInvoice(app);
    const intent = transaction.gateway_transaction_id;
    const before = await ledgerByCode(app);
    const clearing = before['gateway_clearing:stripe EUR']!;
    const disputeId = `du_escalated_${++sequence}`;
    await deliverSettled(
      app,
      disputeEvent('charge.dispute.created', disputeId, intent, 'warning_needs_response'),
    );
    await deliverSettled(
      app,
      disputeEvent('charge.dispute.updated', disputeId, intent, 'warning_under_review'),
    );
    expect(await ledgerByCode(app)).toEqual(before);

    // Escalated: Stripe withdraws 4620 → clearing - 4620, disputed funds + 4620.
    await deliverSettled(
      app,
      disputeEvent('charge.dispute.funds_withdrawn', disputeId, intent, 'needs_response'),
    );
    expect(await disputeOf(app, disputeId)).toMatchObject({ status: 'open' });
    const open = await ledgerByCode(app);
    expect(open['gateway_clearing:stripe EUR']).toBe(clearing - 4620);
    expect(open['disputed_funds EUR']).toBe((before['disputed_funds EUR'] ?? 0) + 4620);

    // Lost: disputed funds → chargeback losses; clearing stays 4620 lower.
    await deliverSettled(app, disputeEvent('charge.dispute.closed', disputeId, intent, 'lost'));
    const lost = await ledgerByCode(app);
    expect(lost['gateway_clearing:stripe EUR']).toBe(clearing - 4620);
    expect(lost['disputed_funds EUR']).toBe(before['disputed_funds EUR'] ?? 0);
    expect(lost['chargeback_losses EUR']).toBe((before['chargeback_losses EUR'] ?? 0) + 4620);
  });
});
