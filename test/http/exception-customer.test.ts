import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dispatchEvents } from '../../src/outbound/dispatch.ts';
import type { TestApp } from '../support/app.ts';
import { paidAgain, paidStripeInvoice } from '../support/flow.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, paymentIntentSucceeded } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

/**
 * A reconciliation exception about a payment of a known customer is that customer's in the activity
 * log (`GET /v1/activities?customer=`) and in the outbound `reconciliation_exception.opened` event,
 * opened and resolved alike. Before, every exception activity had `customer: null`, even a duplicate
 * payment of EUR 46.20 on a customer's invoice: an operator following a customer's activities never
 * saw it. One about a payment billhook does not know still names no customer.
 */
describe('reconciliation exception activities name the customer of their payment', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({
      BILLHOOK_SECRET_KEY: randomBytes(32).toString('base64'),
      // An event about an unknown payment is an exception at its first attempt.
      WEBHOOK_RETRY_LIMIT: '0',
    });
    const endpoint = await app.api('POST', '/v1/webhook-endpoints', {
      url: 'http://127.0.0.1:9/exceptions',
      enabled_events: ['reconciliation_exception.opened'],
    });
    expect(endpoint.status).toBe(201);
  });
  afterEach(expectEveryMockUsed);
  afterAll(() => stopOfflineTestApp(app));

  /** The activities of exception `id`, in order. */
  async function activitiesOf(id: string) {
    const log = await app.api('GET', `/v1/activities?resource=${id}&limit=100`);
    return log.body.data as { action: string; customer: string | null }[];
  }

  /** The `reconciliation_exception.opened` event stored about exception `id`. */
  async function openedEvent(id: string) {
    await dispatchEvents(app.runtime.db, app.runtime.boss);
    const rows = await app.runtime.db
      .selectFrom('outbound_events')
      .select(['type', 'body'])
      .where('type', '=', 'reconciliation_exception.opened')
      .execute();
    return rows.map((row) => JSON.parse(row.body)).find((body) => body.data.object.id === id);
  }

  it("a duplicate payment of EUR 46.20 on a customer's paid invoice: opened and resolved activities and the event name the customer", async () => {
    const paid = await paidStripeInvoice(app);
    const customer = paid.customer.id;
    const { second } = await paidAgain(app, paid.invoice.id, 4620n, 'EUR');
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
    const exception = exceptions.body.data.find(
      (x: { kind: string; transaction: string }) =>
        x.kind === 'duplicate_payment' && x.transaction === second.id,
    );
    expect(exception).toMatchObject({ status: 'open' });

    expect(await activitiesOf(exception.id)).toEqual([
      expect.objectContaining({ action: 'reconciliation_exception.opened', customer }),
    ]);
    const ofCustomer = await app.api('GET', `/v1/activities?customer=${customer}&limit=100`);
    expect(ofCustomer.body.data).toContainEqual(
      expect.objectContaining({ resource: exception.id, action: 'reconciliation_exception.opened' }),
    );
    expect((await openedEvent(exception.id))?.data.object).toMatchObject({
      id: exception.id,
      object: 'reconciliation_exception',
      kind: 'duplicate_payment',
      transaction: second.id,
      customer,
    });

    const resolved = await app.api('POST', `/v1/reconciliation-exceptions/${exception.id}/resolve`, {
      note: 'refunded by hand',
    });
    expect(resolved.status).toBe(200);
    expect((await activitiesOf(exception.id)).map((a) => [a.action, a.customer])).toEqual([
      ['reconciliation_exception.opened', customer],
      ['reconciliation_exception.resolved', customer],
    ]);
  });

  it('an exception about a payment billhook does not know (USD 10.00 at Stripe) names no customer', async () => {
    const payload = paymentIntentSucceeded({
      eventId: 'evt_exception_customer_unknown',
      intentId: 'pi_exception_customer_unknown',
      amount: 1000,
      currency: 'usd',
      reference: 'txn_exception_customer_unknown',
    });
    expect((await deliverStripe(app.url, payload)).status).toBe(200);
    const exception = await waitFor('the unknown_entity exception', async () => {
      const listed = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
      return listed.body.data.find((x: { kind: string }) => x.kind === 'unknown_entity');
    });
    expect(await activitiesOf(exception.id)).toEqual([
      expect.objectContaining({ action: 'reconciliation_exception.opened', customer: null }),
    ]);
    const event = await openedEvent(exception.id);
    expect(event?.data.object).toMatchObject({ id: exception.id, kind: 'unknown_entity' });
    expect(event?.data.object).not.toHaveProperty('customer');
  });
});
