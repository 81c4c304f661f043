import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { down, up } from '../../migrations/0061_refund_customer.ts';
import { dispatchEvents } from '../../src/outbound/dispatch.ts';
import type { TestApp } from '../support/app.ts';
import { customerWith, flatPlan, subscribedAndPaid } from '../support/collection.ts';
import { paidStripeInvoice, stripeRefundSucceeds } from '../support/flow.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, refundObject, stripeEvent } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

/**
 * A payment's refund names its customer wherever billhook renders a refund (PRODUCT.md §14): the
 * answer that made it, `GET /v1/refunds/:id`, the list (filtered by customer or not), its activities
 * and the outbound `refund.*` events. Before, `customer` was null for every payment refund (only a
 * customer-credit refund stored one) although `GET /v1/refunds?customer=` found it through its
 * payment: the same refund listed under a customer said it had none. Each answer here is checked
 * against the served `/openapi.json` too (`app.api`). Stripe, EUR 46.20 invoices (minor units).
 */
describe('a payment refund names its customer', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({ BILLHOOK_SECRET_KEY: randomBytes(32).toString('base64') });
    const endpoint = await app.api('POST', '/v1/webhook-endpoints', {
      url: 'http://127.0.0.1:9/refunds',
      enabled_events: ['refund.succeeded'],
    });
    expect(endpoint.status).toBe(201);
  });
  afterEach(expectEveryMockUsed);
  afterAll(() => stopOfflineTestApp(app));

  /** The outbound events stored about refund `id`, in their activities' order. */
  async function eventsAbout(id: string) {
    await dispatchEvents(app.runtime.db, app.runtime.boss);
    const rows = await app.runtime.db
      .selectFrom('outbound_events as e')
      .innerJoin('activities as a', 'a.id', 'e.activity_id')
      .select(['e.type', 'e.body'])
      .orderBy('a.sequence')
      .execute();
    return rows
      .map((row) => ({ type: row.type, body: JSON.parse(row.body) }))
      .filter((event) => event.body.data.object.id === id);
  }

  it('a refund by hand of EUR 10.00 of a paid EUR 46.20 invoice shows its customer in the answer, the reads, the list, its activities and refund.succeeded', async () => {
    const paid = await paidStripeInvoice(app);
    const customer = paid.customer.id;
    stripeRefundSucceeds('re_customer_by_hand');
    const refunded = await app.api('POST', `/v1/invoices/${paid.invoice.id}/refund`, { amount: 1000 });
    expect(refunded.status).toBe(201);
    expect(refunded.body).toMatchObject({
      object: 'refund',
      kind: 'payment',
      status: 'succeeded',
      amount: 1000,
      currency: 'EUR',
      invoice: paid.invoice.id,
      transaction: paid.transaction.id,
      customer,
    });
    const id = refunded.body.id as string;

    expect((await app.api('GET', `/v1/refunds/${id}`)).body).toMatchObject({ id, customer });
    const listed = await app.api('GET', `/v1/refunds?customer=${customer}`);
    expect(listed.body.data).toEqual([expect.objectContaining({ id, customer, amount: 1000 })]);
    const all = await app.api('GET', '/v1/refunds?limit=100');
    expect(all.body.data.find((r: { id: string }) => r.id === id)).toMatchObject({ customer });

    const activities = await app.api('GET', `/v1/activities?customer=${customer}&limit=100`);
    const ofRefund = activities.body.data.filter((a: { resource: string }) => a.resource === id);
    expect(ofRefund.map((a: { action: string }) => a.action).sort()).toEqual([
      'refund.created',
      'refund.succeeded',
    ]);

    const events = await eventsAbout(id);
    expect(events.map((e) => e.type)).toEqual(['refund.succeeded']);
    expect(events[0]?.body.data.object).toMatchObject({
      id,
      object: 'refund',
      amount: 1000,
      currency: 'EUR',
      invoice: paid.invoice.id,
      customer,
    });
  });

  it("a refund of EUR 6.20 made at Stripe's dashboard and reported by webhook names the payment's customer", async () => {
    const paid = await paidStripeInvoice(app);
    const customer = paid.customer.id;
    const refund = refundObject({
      id: 're_customer_dashboard',
      amount: 620,
      intent: paid.transaction.gateway_transaction_id,
      status: 'succeeded',
    });
    expect((await deliverStripe(app.url, stripeEvent('refund.updated', refund))).status).toBe(200);
    const row = await waitFor('the dashboard refund', async () => {
      const listed = await app.api('GET', `/v1/refunds?customer=${customer}`);
      return listed.body.data.find((r: { gateway_refund_id: string }) => r.gateway_refund_id === refund.id);
    });
    expect(row).toMatchObject({ kind: 'payment', amount: 620, status: 'succeeded', customer });
    expect((await app.api('GET', `/v1/refunds/${row.id}`)).body).toMatchObject({ customer });
    const events = await eventsAbout(row.id);
    expect(events[0]?.body.data.object).toMatchObject({ id: row.id, amount: 620, customer });
  });

  it("a cancellation's full refund of a EUR 25.00 period (20.00 + 25% tax) names the customer in the cancellation's answer", async () => {
    const plan = await flatPlan(app, 'EUR', 2000);
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribedAndPaid(app, { customer: customer.id, plan, method: method!.id });
    stripeRefundSucceeds('re_customer_cancellation');
    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, {
      when: 'now',
      refund_type: 'full',
    });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.refunds).toEqual([
      expect.objectContaining({
        amount: 2500,
        currency: 'EUR',
        invoice: sub.invoice.id,
        customer: customer.id,
      }),
    ]);
    expect(cancelled.body.refund).toMatchObject({ customer: customer.id });
  });

  it('migration 0061 fills the customer of the payment refunds made before it from their payments', async () => {
    const db = app.runtime.db;
    const payments = await db
      .selectFrom('refunds')
      .select(['id', 'customer_id'])
      .where('kind', '=', 'payment')
      .orderBy('id')
      .execute();
    expect(payments.length).toBeGreaterThanOrEqual(3);
    expect(payments.every((r) => r.customer_id?.startsWith('cus_'))).toBe(true);
    // Before 0061 a payment refund stored no customer: down() leaves them so.
    await down(db as unknown as Kysely<unknown>);
    const cleared = await db
      .selectFrom('refunds')
      .select('customer_id')
      .where('kind', '=', 'payment')
      .execute();
    expect(cleared.every((r) => r.customer_id === null)).toBe(true);
    await up(db as unknown as Kysely<unknown>);
    const filled = await db
      .selectFrom('refunds')
      .select(['id', 'customer_id'])
      .where('kind', '=', 'payment')
      .orderBy('id')
      .execute();
    expect(filled).toEqual(payments);
  });
});
