import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dispatchEvents } from '../../src/outbound/dispatch.ts';
import type { TestApp } from '../support/app.ts';
import { paidStripeInvoice, stripeRefundSucceeds } from '../support/flow.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, refundObject, stripeEvent } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

/**
 * PRODUCT.md §14: a system that booked `refund.succeeded` hears when that refund fails afterwards
 * (Stripe reports a succeeded refund failed: the money came back to the merchant, billhook reverses
 * the refund), as Stripe sends `refund.failed`; without it the system keeps a refund that never paid.
 */
describe('outbound refund.failed', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startOfflineTestApp({ BILLHOOK_SECRET_KEY: randomBytes(32).toString('base64') });
    const endpoint = await app.api('POST', '/v1/webhook-endpoints', {
      url: 'http://127.0.0.1:9/refunds',
      enabled_events: ['refund.succeeded', 'refund.failed'],
    });
    expect(endpoint.status).toBe(201);
  });
  afterEach(expectEveryMockUsed);
  afterAll(() => stopOfflineTestApp(app));

  it('a refund of EUR 10.00 that succeeded, then failed at Stripe, is pushed as refund.succeeded then refund.failed', async () => {
    const paid = await paidStripeInvoice(app);
    stripeRefundSucceeds('re_outbound_failed_later');
    const refunded = await app.api('POST', `/v1/invoices/${paid.invoice.id}/refund`, { amount: 1000 });
    expect(refunded.body).toMatchObject({ status: 'succeeded', amount: 1000 });

    const failed = stripeEvent(
      'charge.refund.updated',
      refundObject({
        id: 're_outbound_failed_later',
        amount: 1000,
        intent: paid.transaction.gateway_transaction_id,
        status: 'failed',
        reference: refunded.body.id,
      }),
    );
    expect((await deliverStripe(app.url, failed)).status).toBe(200);
    await waitFor('the refund failed', async () => {
      const refund = await app.api('GET', `/v1/refunds/${refunded.body.id}`);
      return refund.body.status === 'failed';
    });
    const invoice = await app.api('GET', `/v1/invoices/${paid.invoice.id}`);
    expect(invoice.body).toMatchObject({ status: 'PAID', amount_refunded: 0 });

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
      .filter((event) => event.body.data.object.id === refunded.body.id);
    expect(about.map((event) => event.type)).toEqual(['refund.succeeded', 'refund.failed']);
    expect(about[1]?.body.data.object).toMatchObject({
      object: 'refund',
      status: 'failed',
      amount: 1000,
      currency: 'EUR',
      invoice: paid.invoice.id,
    });
  });
});
