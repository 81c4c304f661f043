import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../support/app.ts';
import { FIXTURE_INTENT, ledgerByCode, paidStripeInvoice, stripeRefundSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

async function settled(app: TestApp, gatewayEventId: string) {
  return waitFor(`event ${gatewayEventId} to be processed`, async () => {
    const events = await app.api('GET', '/v1/events?limit=100');
    const event = events.body.data.find(
      (e: { gateway_event_id: string }) => e.gateway_event_id === gatewayEventId,
    );
    return event && event.status !== 'received' && event.status !== 'retrying' ? event : undefined;
  });
}

describe('refunds and disputes on a Stripe payment', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  it('refunds part, then the rest, never beyond what was paid, and a refund webhook changes nothing more', async () => {
    const { invoice, transaction } = await paidStripeInvoice(app);
    const before = await ledgerByCode(app);

    stripeRefundSucceeds('re_partial_1');
    const partial = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, {
      amount: 1000,
      reason: 'requested_by_customer',
    });
    expect(partial.status).toBe(201);
    expect(partial.body).toMatchObject({
      status: 'succeeded',
      amount: 1000,
      currency: 'EUR',
      gateway_refund_id: 're_partial_1',
    });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_paid: 4620,
      amount_refunded: 1000,
    });

    // More than what is left is refused with a field-level message, and nothing changes.
    const tooMuch = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 3621 });
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.body.error.fields.amount).toMatch(/at most 3620/);

    // Stripe's charge.refund.updated for the same refund (the real fixture, pointed at our refund).
    const event = stripeFixture('webhook.charge.refund.updated.json');
    Object.assign(event.data.object, {
      id: 're_partial_1',
      amount: 1000,
      currency: 'eur',
      payment_intent: transaction.gateway_transaction_id,
    });
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    expect((await settled(app, event.id)).outcome).toBe('duplicate');

    stripeRefundSucceeds('re_rest_2');
    const rest = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, {});
    expect(rest.body).toMatchObject({ status: 'succeeded', amount: 3620 });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 4620,
    });

    const after = await ledgerByCode(app);
    expect(after['refunds EUR']).toBe((before['refunds EUR'] ?? 0) + 4620);
    expect(after['gateway_clearing:stripe EUR']).toBe((before['gateway_clearing:stripe EUR'] ?? 0) - 4620);

    const again = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 1 });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('invoice_not_paid');
    const refunds = await app.api('GET', '/v1/refunds');
    expect(refunds.body.data.map((r: { amount: number }) => r.amount).sort()).toEqual([1000, 3620]);
  });

  it('records a refund made in the Stripe dashboard from its webhook alone', async () => {
    const { invoice, transaction } = await paidStripeInvoice(app);
    const event = stripeFixture('webhook.charge.refund.updated.json');
    event.id = 'evt_dashboard_refund';
    Object.assign(event.data.object, {
      id: 're_dashboard',
      amount: 620,
      currency: 'eur',
      payment_intent: transaction.gateway_transaction_id,
    });
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    expect((await settled(app, 'evt_dashboard_refund')).outcome).toBe('applied');
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 620,
    });
  });

  it('moves a dispute to disputed funds when created and back when closed in our favour', async () => {
    const { transaction } = await paidStripeInvoice(app);
    const before = await ledgerByCode(app);
    const created = stripeFixture('webhook.charge.dispute.created.json');
    Object.assign(created.data.object, {
      payment_intent: transaction.gateway_transaction_id,
      currency: 'eur',
      amount: 4620,
    });
    expect((await deliverStripe(app.url, created)).status).toBe(200);
    expect((await settled(app, created.id)).status).toBe('processed');

    const disputes = await app.api('GET', '/v1/disputes');
    const dispute = disputes.body.data.find(
      (d: { gateway_dispute_id: string }) => d.gateway_dispute_id === created.data.object.id,
    );
    expect(dispute).toMatchObject({
      status: 'open',
      amount: 4620,
      currency: 'EUR',
      transaction: transaction.id,
      reason: 'noncompliant',
    });
    const open = await ledgerByCode(app);
    expect(open['disputed_funds EUR']).toBe((before['disputed_funds EUR'] ?? 0) + 4620);
    expect(open['gateway_clearing:stripe EUR']).toBe((before['gateway_clearing:stripe EUR'] ?? 0) - 4620);

    // The real dispute-closed fixture (warning_closed), same dispute: a dispute whose funds were
    // withdrawn and that Stripe then reports as an inquiry closed (as disputes recorded before
    // inquiries were told apart) gets its funds back, as a won dispute.
    const closed = stripeFixture('webhook.charge.dispute.closed.json');
    Object.assign(closed.data.object, {
      id: created.data.object.id,
      payment_intent: transaction.gateway_transaction_id,
      currency: 'eur',
      amount: 4620,
    });
    expect((await deliverStripe(app.url, closed)).status).toBe(200);
    await settled(app, closed.id);
    expect(await ledgerByCode(app)).toEqual({
      ...before,
      'disputed_funds EUR': before['disputed_funds EUR'] ?? 0,
    });
    const after = await app.api('GET', '/v1/disputes');
    expect(after.body.data.find((d: { id: string }) => d.id === dispute.id).status).toBe('won');
  });

  it('books a lost dispute as a chargeback loss', async () => {
    const { transaction } = await paidStripeInvoice(app);
    const before = await ledgerByCode(app);
    const closed = stripeFixture('webhook.charge.dispute.closed.json');
    closed.id = 'evt_dispute_lost';
    Object.assign(closed.data.object, {
      id: 'dp_lost_1',
      status: 'lost',
      payment_intent: transaction.gateway_transaction_id,
      currency: 'eur',
      amount: 2000,
    });
    expect((await deliverStripe(app.url, closed)).status).toBe(200);
    await settled(app, 'evt_dispute_lost');
    const after = await ledgerByCode(app);
    expect(after['chargeback_losses EUR']).toBe((before['chargeback_losses EUR'] ?? 0) + 2000);
    expect(after['gateway_clearing:stripe EUR']).toBe((before['gateway_clearing:stripe EUR'] ?? 0) - 2000);
    expect(after['disputed_funds EUR']).toBe(before['disputed_funds EUR'] ?? 0);
    expect(FIXTURE_INTENT.currency).toBe('eur');
  });
});
