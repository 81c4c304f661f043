import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import nock from 'nock';
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/queue/queues.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { openInvoice, stripeChargeSucceeds } from '../support/flow.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { stripeFixture } from '../support/stripe.ts';
import { waitFor, wakeWorkers } from '../support/wait.ts';

/**
 * Issue #26 item 6 end to end: an invoice charged through Stripe (faked with nock, the real
 * PaymentIntent and decline fixtures) over the API becomes `invoice.paid`, a declined charge
 * `invoice.payment_failed`, each pushed through pg-boss to a local receiver (nock lets 127.0.0.1
 * through) that verifies it with stripe-node's own `constructEvent`.
 */
describe('outbound events of Stripe charges', () => {
  let app: TestApp;
  let receiver: Server;
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  let endpoint: { id: string; secret: string };

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    app = await startOfflineTestApp({ BILLHOOK_SECRET_KEY: randomBytes(32).toString('base64') });
    const created = await app.api('POST', '/v1/webhook-endpoints', {
      url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/billhook`,
      enabled_events: ['invoice.paid', 'invoice.payment_failed'],
    });
    expect(created.status).toBe(201);
    endpoint = created.body;
  });
  afterEach(expectEveryMockUsed);
  afterAll(async () => {
    await stopOfflineTestApp(app);
    await new Promise((resolve) => receiver.close(resolve));
  });

  /** Runs the dispatcher now, then resolves with the verified event about `invoice` of `type`. */
  async function eventAbout(invoice: string, type: string): Promise<Stripe.Event> {
    await app.runtime.boss.send(QUEUES.webhookEndpointDispatch, {});
    wakeWorkers(app.runtime.boss, QUEUES.webhookEndpointDispatch);
    return waitFor(`${type} of ${invoice}`, async () =>
      received
        .map((r) =>
          Stripe.webhooks.constructEvent(r.body, String(r.headers['billhook-signature']), endpoint.secret),
        )
        .find(
          (e) =>
            e.type === (type as Stripe.Event['type']) && (e.data.object as { id?: string }).id === invoice,
        ),
    );
  }

  it('pushes invoice.paid for an invoice charged through Stripe over the API', async () => {
    const { invoice, customer } = await openInvoice(app);
    stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');
    const event = await eventAbout(invoice.id, 'invoice.paid');
    expect(event.data.object).toMatchObject({
      object: 'invoice',
      customer: customer.id,
      amount_paid: 4620,
      amount_due: 0,
    });
  });

  it('pushes invoice.payment_failed for a declined charge, naming the failed attempt', async () => {
    const { invoice } = await openInvoice(app);
    nock(STRIPE_API_BASE)
      .post('/v1/payment_intents')
      .reply(402, stripeFixture('api.payment_intent.create.card_declined.error.json'));
    const declined = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(declined.body.transaction.status).toBe('failed');
    const event = await eventAbout(invoice.id, 'invoice.payment_failed');
    expect(event.data.object).toMatchObject({
      object: 'invoice',
      transaction: { id: declined.body.transaction.id, object: 'transaction', status: 'failed' },
    });
  });
});
