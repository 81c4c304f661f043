import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dispatchEvents } from '../../src/outbound/dispatch.ts';
import type { TestApp } from '../support/app.ts';
import { openInvoice, stripeChargeSucceeds } from '../support/flow.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

/** The real dispute fixture: GBP 5.00 disputed on PaymentIntent `pi_2RystUItVxyc3Q6n0qqOvNKK`. */
const DISPUTE = stripeFixture('webhook.charge.dispute.created.json');

/**
 * A dispute's activities (and so the outbound `dispute.*` events and `GET /v1/activities?customer=`)
 * name the customer by the rule refunds and exceptions use: the payment's customer, else its
 * invoice's. Before, they took the payment's own customer only: a payment that names none (a row
 * made before payments stored their customer) gave `customer: null` although its invoice is a
 * customer's.
 */
describe('dispute activities name the customer of the payment, else of its invoice', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({ BILLHOOK_SECRET_KEY: randomBytes(32).toString('base64') });
    const endpoint = await app.api('POST', '/v1/webhook-endpoints', {
      url: 'http://127.0.0.1:9/disputes',
      enabled_events: ['dispute.opened'],
    });
    expect(endpoint.status).toBe(201);
  });
  afterEach(expectEveryMockUsed);
  afterAll(() => stopOfflineTestApp(app));

  it("a GBP 5.00 dispute of a GBP 15.00 payment that names no customer of its own: dispute.opened's activity and event name its invoice's customer", async () => {
    const opened = await openInvoice(app, { amount: 1500, currency: 'GBP' });
    const customer = opened.customer.id as string;
    stripeChargeSucceeds(DISPUTE.data.object.payment_intent);
    const charged = await app.api('POST', `/v1/invoices/${opened.invoice.id}/charge`, {});
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 1500 });
    const payment = charged.body.transaction.id as string;
    // A payment stored before payments named their customer: its invoice does.
    await app.runtime.db
      .updateTable('transactions')
      .set({ customer_id: null })
      .where('id', '=', payment)
      .execute();

    const event = { ...DISPUTE, id: `evt_${randomBytes(8).toString('hex')}` };
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    const dispute = await waitFor('the dispute to be recorded', async () => {
      const listed = await app.api('GET', '/v1/disputes?limit=100');
      return listed.body.data.find((d: { transaction: string }) => d.transaction === payment);
    });
    expect(dispute).toMatchObject({ status: 'open', amount: 500, currency: 'GBP' });

    const log = await app.api('GET', `/v1/activities?resource=${dispute.id}&limit=100`);
    expect(log.body.data).toEqual([expect.objectContaining({ action: 'dispute.opened', customer })]);
    // Listed under that customer too (before: only under the payment's own customer, none here).
    const disputes = await app.api('GET', `/v1/disputes?customer=${customer}`);
    expect(disputes.body.data.map((d: { id: string }) => d.id)).toEqual([dispute.id]);
    const ofCustomer = await app.api('GET', `/v1/activities?customer=${customer}&limit=100`);
    expect(ofCustomer.body.data).toContainEqual(
      expect.objectContaining({ resource: dispute.id, action: 'dispute.opened' }),
    );
    await dispatchEvents(app.runtime.db, app.runtime.boss);
    const rows = await app.runtime.db
      .selectFrom('outbound_events')
      .select('body')
      .where('type', '=', 'dispute.opened')
      .execute();
    const sent = rows.map((row) => JSON.parse(row.body)).find((b) => b.data.object.id === dispute.id);
    expect(sent?.data.object).toMatchObject({ id: dispute.id, amount: 500, currency: 'GBP', customer });
  });
});
