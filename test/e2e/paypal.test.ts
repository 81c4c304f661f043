import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildPaypalTestDelivery,
  type PaypalTestEventOptions,
  signPaypalDelivery,
} from '../../src/gateways/paypal/test-events.ts';
import {
  nockSimulatorCertificate,
  nockToken,
  paypalFixture,
  simulatorDelivery,
  TEST_CERT_FILE,
  TEST_KEY_FILE,
  TOKEN,
} from '../gateways/paypal/fixtures.ts';
import type { TestApp } from '../support/app.ts';
import { ledgerByCode, openInvoice as openGatewayInvoice } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { waitFor } from '../support/wait.ts';

const PAYPAL_API_BASE = 'https://paypal.e2e.test';
const PAYPAL_WEBHOOK_ID = '8PT597110X687430LKGECATA';
/** The real sandbox order of a vaulted-card charge (USD 25.07), its capture id replaced per charge. */
const VAULTED = paypalFixture('api.orders.create.vaulted_card_capture.completed.json');
const DECLINED = paypalFixture('api.orders.capture.card_declined_insufficient_funds.json');

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const newCaptureId = () => Array.from({ length: 17 }, () => ALPHANUMERIC[randomInt(36)]).join('');

/** A request PayPal's fake saw: its PayPal-Request-Id and JSON body. */
interface Seen {
  requestId: string | null;
  body: any;
}

/** The token call, optional because the app's client caches its token across tests. */
function tokenAvailable() {
  nockToken(PAYPAL_API_BASE).optionally().reply(200, TOKEN);
}

/**
 * Fakes `POST /v2/checkout/orders` with the real vaulted-card order, echoing the request's amount,
 * custom_id and invoice_id, under a new capture id.
 */
function paypalChargeSucceeds(captureId = newCaptureId()) {
  tokenAvailable();
  const seen: Seen[] = [];
  nock(PAYPAL_API_BASE)
    .post('/v2/checkout/orders')
    .reply(async (request: Request) => {
      const body = JSON.parse(await request.text());
      seen.push({ requestId: request.headers.get('paypal-request-id'), body });
      const order = structuredClone(VAULTED);
      const unit = order.purchase_units[0];
      unit.amount = body.purchase_units[0].amount;
      Object.assign(unit.payments.captures[0], {
        id: captureId,
        amount: body.purchase_units[0].amount,
        custom_id: body.purchase_units[0].custom_id,
        invoice_id: body.purchase_units[0].invoice_id,
      });
      return [201, order];
    });
  return { captureId, seen };
}

async function deliver(app: TestApp, delivery: { body: string; headers: Record<string, string> }) {
  const response = await fetch(`${app.url}/webhooks/paypal`, {
    method: 'POST',
    headers: delivery.headers,
    body: delivery.body,
  });
  return { status: response.status, body: await response.text() };
}

/** Builds, signs (with the TEST ONLY key) and POSTs a PayPal event, as `send-test-webhook paypal` does. */
async function sendTestWebhook(app: TestApp, type: string, options: Omit<PaypalTestEventOptions, 'keyFile'>) {
  const delivery = buildPaypalTestDelivery(
    type,
    { ...options, keyFile: TEST_KEY_FILE },
    { PAYPAL_WEBHOOK_ID },
  );
  const answer = await deliver(app, delivery);
  expect(answer.status).toBe(200);
  return JSON.parse(delivery.body).id as string;
}

async function eventOf(app: TestApp, gatewayEventId: string) {
  const events = await app.api('GET', '/v1/events?limit=100');
  return events.body.data.find((e: { gateway_event_id: string }) => e.gateway_event_id === gatewayEventId);
}

async function settled(app: TestApp, gatewayEventId: string) {
  return waitFor(`event ${gatewayEventId} to be settled`, async () => {
    const event = await eventOf(app, gatewayEventId);
    return event && event.status !== 'received' && event.status !== 'retrying' ? event : undefined;
  });
}

describe('PayPal end to end: vaulted charge, webhooks, refunds, disputes', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({
      PAYPAL_CLIENT_ID: 'client-id',
      PAYPAL_CLIENT_SECRET: 'client-secret',
      PAYPAL_WEBHOOK_ID,
      PAYPAL_API_BASE,
      PAYPAL_TEST_CERT_FILE: TEST_CERT_FILE,
    });
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** A customer with a PayPal vaulted card and a finalized (OPEN) USD invoice. */
  const openInvoice = (amount = 2507, token = '8kk8451t') =>
    openGatewayInvoice(app, { amount, currency: 'usd', gateway: 'paypal', token, description: 'Pro plan' });

  async function paidInvoice() {
    const opened = await openInvoice();
    const { captureId } = paypalChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${opened.invoice.id}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');
    return { ...charged.body, captureId };
  }

  it('charges the vaulted card, books it once, and PayPal’s PAYMENT.CAPTURE.COMPLETED changes nothing more', async () => {
    const { invoice, customer } = await openInvoice();
    const before = await ledgerByCode(app);
    const { captureId, seen } = paypalChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(200);
    const txn = charged.body.transaction;
    expect(txn).toMatchObject({
      status: 'succeeded',
      gateway: 'paypal',
      gateway_transaction_id: captureId,
      amount: 2507,
      currency: 'USD',
    });
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_due: 0, amount_paid: 2507 });
    // Our attempt id is the PayPal-Request-Id, custom_id and invoice_id; the amount a decimal string.
    expect(seen).toEqual([
      {
        requestId: txn.id,
        body: {
          intent: 'CAPTURE',
          payment_source: {
            card: {
              vault_id: '8kk8451t',
              stored_credential: {
                payment_initiator: 'MERCHANT',
                payment_type: 'UNSCHEDULED',
                usage: 'SUBSEQUENT',
              },
            },
          },
          purchase_units: [
            {
              amount: { currency_code: 'USD', value: '25.07' },
              custom_id: txn.id,
              invoice_id: txn.id,
              description: `invoice ${invoice.id}`,
            },
          ],
        },
      },
    ]);
    const after = await ledgerByCode(app);
    expect(after['gateway_clearing:paypal USD']).toBe((before['gateway_clearing:paypal USD'] ?? 0) + 2507);
    expect(after['receivable:customer USD']).toBe(before['receivable:customer USD']! - 2507);
    expect(customer.id).toMatch(/^cus_/);

    const eventId = await sendTestWebhook(app, 'PAYMENT.CAPTURE.COMPLETED', {
      captureId,
      reference: txn.id,
      amount: 2507,
      currency: 'USD',
    });
    expect(await settled(app, eventId)).toMatchObject({
      status: 'processed',
      // The capture is a duplicate; its fee (the settlement line) is booked once.
      outcome: 'duplicate, applied',
      type: 'PAYMENT.CAPTURE.COMPLETED',
    });
    expect(await ledgerByCode(app)).toEqual(after);
  });

  it('records a capture DECLINED inside HTTP 201 as a failed attempt with the processor code, and the invoice stays chargeable', async () => {
    const { invoice } = await openInvoice();
    tokenAvailable();
    nock(PAYPAL_API_BASE).post('/v2/checkout/orders').reply(201, DECLINED);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({
      status: 'failed',
      failure_code: '5120',
      gateway_transaction_id: '33U97269RT3112322',
    });
    expect(charged.body.transaction.failure_message).toMatch(/response_code 5120/);
    expect(charged.body.invoice).toMatchObject({ status: 'OPEN', amount_paid: 0 });

    paypalChargeSucceeds();
    const retried = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(retried.body.invoice.status).toBe('PAID');
  });

  it('leaves a 500 unknown, refuses a second attempt, and PAYMENT.CAPTURE.COMPLETED settles it by custom_id', async () => {
    const { invoice } = await openInvoice();
    tokenAvailable();
    nock(PAYPAL_API_BASE)
      .post('/v2/checkout/orders')
      .reply(500, paypalFixture('constructed/api.error.500.constructed.json'));
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({ status: 'unknown', failure_code: 'unknown_outcome' });
    expect((await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {})).status).toBe(409);

    const captureId = newCaptureId();
    const eventId = await sendTestWebhook(app, 'PAYMENT.CAPTURE.COMPLETED', {
      captureId,
      reference: charged.body.transaction.id,
      amount: 2507,
      currency: 'USD',
    });
    expect(await settled(app, eventId)).toMatchObject({ status: 'processed', outcome: 'applied, applied' });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 2507,
    });
    const transactions = await app.api('GET', '/v1/transactions?limit=100');
    expect(
      transactions.body.data.find((t: { id: string }) => t.id === charged.body.transaction.id),
    ).toMatchObject({
      status: 'succeeded',
      gateway_transaction_id: captureId,
    });
  });

  it('refunds part through PayPal, recognises PayPal’s refund webhook as the same refund, and records a refund made at PayPal', async () => {
    const { invoice, captureId } = await paidInvoice();
    const before = await ledgerByCode(app);
    tokenAvailable();
    const seen: Seen[] = [];
    nock(PAYPAL_API_BASE)
      .post(`/v2/payments/captures/${captureId}/refund`)
      .reply(async (request: Request) => {
        seen.push({
          requestId: request.headers.get('paypal-request-id'),
          body: JSON.parse(await request.text()),
        });
        return [201, { ...paypalFixture('api.captures.refund.completed.json'), id: '1JU08902781691411' }];
      });
    const refund = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, {
      amount: 1000,
      reason: 'requested_by_customer',
    });
    expect(refund.status).toBe(201);
    expect(refund.body).toMatchObject({
      status: 'succeeded',
      amount: 1000,
      currency: 'USD',
      gateway_refund_id: '1JU08902781691411',
    });
    expect(seen).toEqual([
      {
        requestId: refund.body.id,
        body: {
          amount: { value: '10.00', currency_code: 'USD' },
          custom_id: refund.body.id,
          note_to_payer: 'requested_by_customer',
        },
      },
    ]);

    // PayPal's PAYMENT.CAPTURE.REFUNDED for the same refund.
    const same = await sendTestWebhook(app, 'PAYMENT.CAPTURE.REFUNDED', {
      captureId,
      objectId: '1JU08902781691411',
      reference: refund.body.id,
      amount: 1000,
      currency: 'USD',
    });
    expect((await settled(app, same)).outcome).toBe('duplicate, applied');

    // A refund made in PayPal's dashboard: known only from its webhook.
    const dashboard = await sendTestWebhook(app, 'PAYMENT.CAPTURE.REFUNDED', {
      captureId,
      objectId: '97E25940SA3983253',
      amount: 507,
      currency: 'USD',
    });
    expect((await settled(app, dashboard)).outcome).toBe('applied, applied');
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 1507,
    });
    const after = await ledgerByCode(app);
    expect(after['refunds USD']).toBe((before['refunds USD'] ?? 0) + 1507);
    expect(after['gateway_clearing:paypal USD']).toBe(before['gateway_clearing:paypal USD']! - 1507);
  });

  it('holds a dispute in disputed funds, books PayPal’s reversal as the chargeback loss, and the resolution does not book it twice', async () => {
    const { transaction, captureId } = await paidInvoice();
    const before = await ledgerByCode(app);
    const clearing = before['gateway_clearing:paypal USD']!;

    const created = await sendTestWebhook(app, 'CUSTOMER.DISPUTE.CREATED', {
      captureId,
      objectId: 'PP-D-27803',
      amount: 2507,
      currency: 'USD',
    });
    expect((await settled(app, created)).status).toBe('processed');
    const disputes = await app.api('GET', '/v1/disputes?limit=100');
    const dispute = disputes.body.data.find((d: { transaction: string }) => d.transaction === transaction.id);
    expect(dispute).toMatchObject({
      status: 'open',
      amount: 2507,
      currency: 'USD',
      gateway_dispute_id: captureId,
      reason: 'MERCHANDISE_OR_SERVICE_NOT_RECEIVED',
    });
    const open = await ledgerByCode(app);
    expect(open['disputed_funds USD']).toBe((before['disputed_funds USD'] ?? 0) + 2507);
    expect(open['gateway_clearing:paypal USD']).toBe(clearing - 2507);

    const reversed = await sendTestWebhook(app, 'PAYMENT.CAPTURE.REVERSED', {
      captureId,
      amount: 2507,
      currency: 'USD',
    });
    expect((await settled(app, reversed)).outcome).toBe('applied, applied');
    const lost = await ledgerByCode(app);
    expect(lost['chargeback_losses USD']).toBe((before['chargeback_losses USD'] ?? 0) + 2507);
    expect(lost['disputed_funds USD']).toBe(before['disputed_funds USD'] ?? 0);

    const resolved = await sendTestWebhook(app, 'CUSTOMER.DISPUTE.RESOLVED', {
      captureId,
      objectId: 'PP-D-27803',
      amount: 2507,
      currency: 'USD',
      disputeOutcome: 'RESOLVED_BUYER_FAVOUR',
    });
    expect((await settled(app, resolved)).outcome).toBe('duplicate');
    expect(await ledgerByCode(app)).toEqual(lost);
    const after = await app.api('GET', '/v1/disputes?limit=100');
    expect(after.body.data.find((d: { id: string }) => d.id === dispute.id).status).toBe('lost');
  });

  it('returns a dispute resolved in our favour to the clearing account', async () => {
    const { captureId } = await paidInvoice();
    const before = await ledgerByCode(app);
    const created = await sendTestWebhook(app, 'CUSTOMER.DISPUTE.CREATED', {
      captureId,
      amount: 1200,
      currency: 'USD',
    });
    await settled(app, created);
    const resolved = await sendTestWebhook(app, 'CUSTOMER.DISPUTE.RESOLVED', {
      captureId,
      amount: 1200,
      currency: 'USD',
      disputeOutcome: 'RESOLVED_SELLER_FAVOUR',
    });
    expect((await settled(app, resolved)).outcome).toBe('applied');
    expect(await ledgerByCode(app)).toEqual(before);
  });

  /*
   * An accepted claim: PayPal resolves the dispute for the buyer (RESOLVED_BUYER_FAVOUR with
   * amount_refunded) and refunds the capture (PAYMENT.CAPTURE.REFUNDED) — two reports of one
   * movement of money. Worked by hand for the 25.07 USD capture (2507 minor units), whatever the
   * order: gateway clearing 2507 - 2507 = 0 for this payment (the hold is released and the refund
   * leaves once), refunds +2507, disputed funds and chargeback losses unchanged, the invoice REFUNDED.
   */
  it.each([
    ['dispute created, capture refunded, dispute resolved', ['created', 'refunded', 'resolved']],
    ['dispute created, dispute resolved, capture refunded', ['created', 'resolved', 'refunded']],
    ['capture refunded, dispute resolved, dispute created', ['refunded', 'resolved', 'created']],
  ] as const)('debits an accepted claim once (%s)', async (_order, order) => {
    const { invoice, transaction, captureId } = await paidInvoice();
    const before = await ledgerByCode(app);
    const disputeId = `PP-D-${newCaptureId().slice(0, 5)}`;
    const refundId = newCaptureId();
    const send = {
      created: () =>
        sendTestWebhook(app, 'CUSTOMER.DISPUTE.CREATED', {
          captureId,
          objectId: disputeId,
          amount: 2507,
          currency: 'USD',
        }),
      resolved: () =>
        sendTestWebhook(app, 'CUSTOMER.DISPUTE.RESOLVED', {
          captureId,
          objectId: disputeId,
          amount: 2507,
          currency: 'USD',
          disputeOutcome: 'RESOLVED_BUYER_FAVOUR',
        }),
      refunded: () =>
        sendTestWebhook(app, 'PAYMENT.CAPTURE.REFUNDED', {
          captureId,
          objectId: refundId,
          amount: 2507,
          currency: 'USD',
        }),
    };
    for (const name of order) await settled(app, await send[name]());

    const after = await ledgerByCode(app);
    expect(after['gateway_clearing:paypal USD']).toBe(before['gateway_clearing:paypal USD']! - 2507);
    expect(after['refunds USD']).toBe((before['refunds USD'] ?? 0) + 2507);
    expect(after['disputed_funds USD'] ?? 0).toBe(before['disputed_funds USD'] ?? 0);
    expect(after['chargeback_losses USD'] ?? 0).toBe(before['chargeback_losses USD'] ?? 0);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 2507,
    });
    const refunds = await app.api('GET', '/v1/refunds?limit=100');
    const refund = refunds.body.data.find(
      (r: { gateway_refund_id: string }) => r.gateway_refund_id === refundId,
    );
    expect(refund).toMatchObject({ status: 'succeeded', amount: 2507, transaction: transaction.id });
    const disputes = await app.api('GET', '/v1/disputes?limit=100');
    expect(
      disputes.body.data.find((d: { transaction: string }) => d.transaction === transaction.id),
    ).toMatchObject({
      status: 'lost',
      amount: 2507,
      refund: refund.id,
    });
  });

  /*
   * The same rule on PayPal's documented payloads: the API reference's resolved dispute PP-D-4012 (a
   * partial claim: 96.00 of a 192.00 USD capture, RESOLVED_BUYER_FAVOUR, amount_refunded 96.00) and
   * the real sandbox PAYMENT.CAPTURE.REFUNDED event, both pointed at our capture. Worked by hand in
   * minor units: paid 19200 → clearing +19200; the claim's 9600 leaves once, as a refund: clearing
   * 19200 - 9600 = 9600 for this payment, refunds +9600, disputed funds and chargeback losses
   * unchanged, the invoice PARTIALLY_REFUNDED with 9600 refunded.
   */
  it.each([
    ['refund first', ['refunded', 'resolved']],
    ['resolution first', ['resolved', 'refunded']],
  ] as const)(
    'debits a partial accepted claim once, on PayPal’s documented payloads (%s)',
    async (_order, order) => {
      const opened = await openInvoice(19200);
      const { captureId } = paypalChargeSucceeds();
      const charged = await app.api('POST', `/v1/invoices/${opened.invoice.id}/charge`, {});
      expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 19200 });
      const before = await ledgerByCode(app);

      const resolved = paypalFixture('constructed/webhook.CUSTOMER.DISPUTE.RESOLVED.constructed.json');
      resolved.id = `WH-PP-D-4012-${newCaptureId()}`;
      resolved.resource = paypalFixture('api.disputes.get.resolved_buyer_favour.json');
      resolved.resource.disputed_transactions[0].seller_transaction_id = captureId;
      const refunded = paypalFixture('webhook.PAYMENT.CAPTURE.REFUNDED.json');
      refunded.id = `WH-REFUND-${newCaptureId()}`;
      const refundId = newCaptureId();
      Object.assign(refunded.resource, {
        id: refundId,
        amount: { value: '96.00', currency_code: 'USD' },
        links: [
          {
            method: 'GET',
            rel: 'self',
            href: `https://api.sandbox.paypal.com/v2/payments/refunds/${refundId}`,
          },
          {
            method: 'GET',
            rel: 'up',
            href: `https://api.sandbox.paypal.com/v2/payments/captures/${captureId}`,
          },
        ],
      });
      // The sandbox event's fee breakdown is of its own 7.00 EUR refund; this one is 96.00 USD.
      delete refunded.resource.seller_payable_breakdown;
      const events = { resolved, refunded };
      for (const name of order) {
        const body = JSON.stringify(events[name]);
        const headers = signPaypalDelivery(body, {
          privateKeyPem: readFileSync(TEST_KEY_FILE, 'utf8'),
          webhookId: PAYPAL_WEBHOOK_ID,
        });
        expect((await deliver(app, { body, headers })).status).toBe(200);
        expect((await settled(app, events[name].id)).status).toBe('processed');
      }

      const after = await ledgerByCode(app);
      expect(after['gateway_clearing:paypal USD']).toBe(before['gateway_clearing:paypal USD']! - 9600);
      expect(after['refunds USD']).toBe((before['refunds USD'] ?? 0) + 9600);
      expect(after['disputed_funds USD'] ?? 0).toBe(before['disputed_funds USD'] ?? 0);
      expect(after['chargeback_losses USD'] ?? 0).toBe(before['chargeback_losses USD'] ?? 0);
      expect((await app.api('GET', `/v1/invoices/${opened.invoice.id}`)).body).toMatchObject({
        status: 'PARTIALLY_REFUNDED',
        amount_refunded: 9600,
      });
    },
  );

  it('still books a lost claim as a chargeback loss when no refund of its amount comes, and a smaller refund stays its own', async () => {
    const { captureId } = await paidInvoice();
    const before = await ledgerByCode(app);
    await settled(
      app,
      await sendTestWebhook(app, 'PAYMENT.CAPTURE.REFUNDED', { captureId, amount: 500, currency: 'USD' }),
    );
    await settled(
      app,
      await sendTestWebhook(app, 'CUSTOMER.DISPUTE.RESOLVED', {
        captureId,
        amount: 2007,
        currency: 'USD',
        disputeOutcome: 'RESOLVED_BUYER_FAVOUR',
      }),
    );
    // A refund of 500 (refunds +500, clearing -500) and a dispute of 2007 lost (clearing -2007 to
    // disputed funds, then to chargeback losses): 2507 left the clearing account, each movement once.
    const after = await ledgerByCode(app);
    expect(after['gateway_clearing:paypal USD']).toBe(before['gateway_clearing:paypal USD']! - 2507);
    expect(after['refunds USD']).toBe((before['refunds USD'] ?? 0) + 500);
    expect(after['chargeback_losses USD']).toBe((before['chargeback_losses USD'] ?? 0) + 2007);
    expect(after['disputed_funds USD'] ?? 0).toBe(before['disputed_funds USD'] ?? 0);
  });

  it('answers 400 and stores nothing for a bad signature, a foreign certificate URL or a wrong webhook id', async () => {
    const delivery = buildPaypalTestDelivery(
      'PAYMENT.CAPTURE.COMPLETED',
      { amount: 100, currency: 'USD', keyFile: TEST_KEY_FILE },
      { PAYPAL_WEBHOOK_ID },
    );
    const id = JSON.parse(delivery.body).id;
    const tampered = await deliver(app, { ...delivery, body: delivery.body.replace('"1.00"', '"9.00"') });
    expect(tampered.status).toBe(400);
    expect(JSON.parse(tampered.body).error.code).toBe('signature_verification_failed');
    const foreign = await deliver(app, {
      ...delivery,
      headers: {
        ...delivery.headers,
        'paypal-cert-url': 'https://evil.example.com/v1/notifications/certs/CERT-billhook-test',
      },
    });
    expect(foreign.status).toBe(400);
    const wrongHook = buildPaypalTestDelivery(
      'PAYMENT.CAPTURE.COMPLETED',
      { amount: 100, currency: 'USD', keyFile: TEST_KEY_FILE },
      { PAYPAL_WEBHOOK_ID: 'ANOTHER0WEBHOOK0ID' },
    );
    expect((await deliver(app, wrongHook)).status).toBe(400);
    const unsigned = await deliver(app, {
      body: delivery.body,
      headers: { 'content-type': 'application/json' },
    });
    expect(unsigned.status).toBe(400);
    expect(await eventOf(app, id)).toBeUndefined();
    expect(await eventOf(app, JSON.parse(wrongHook.body).id)).toBeUndefined();
    // The same delivery, untouched, is accepted.
    expect((await deliver(app, delivery)).status).toBe(200);
  });

  it('refuses a real simulator delivery today: its PayPal certificate expired on 2025-03-07', async () => {
    nockSimulatorCertificate();
    const { body, headers } = simulatorDelivery('COMPLETED');
    const answer = await fetch(`${app.url}/webhooks/paypal`, { method: 'POST', headers, body });
    expect(answer.status).toBe(400);
    expect(await answer.text()).toMatch(/outside its validity/);
    expect(await eventOf(app, 'WH-58D329510W468432D-8HN650336L201105X')).toBeUndefined();
  });

  it('answers 503 (PayPal retries) when PayPal’s signing certificate cannot be fetched, storing nothing', async () => {
    nock('https://api.paypal.com')
      .get('/v1/notifications/certs/CERT-unreachable')
      .replyWithError('socket hang up');
    const { body, headers } = simulatorDelivery('COMPLETED');
    headers['paypal-cert-url'] = 'https://api.paypal.com/v1/notifications/certs/CERT-unreachable';
    const answer = await fetch(`${app.url}/webhooks/paypal`, { method: 'POST', headers, body });
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('30');
    expect(await eventOf(app, 'WH-58D329510W468432D-8HN650336L201105X')).toBeUndefined();
  });

  it('stores a dispute of two captures (PayPal’s shape, not one billhook can match) and raises it as an exception, booking nothing', async () => {
    const before = await ledgerByCode(app);
    const dispute = paypalFixture('constructed/webhook.CUSTOMER.DISPUTE.CREATED.constructed.json');
    dispute.id = 'WH-TWO-CAPTURES-1';
    dispute.resource.disputed_transactions.push({ seller_transaction_id: '1AB23456CD789012E' });
    const body = JSON.stringify(dispute);
    const headers = signPaypalDelivery(body, {
      privateKeyPem: readFileSync(TEST_KEY_FILE, 'utf8'),
      webhookId: PAYPAL_WEBHOOK_ID,
    });
    expect((await deliver(app, { body, headers })).status).toBe(200);
    const event = await settled(app, dispute.id);
    expect(event).toMatchObject({ status: 'exception' });
    expect(event.outcome).toMatch(/exactly one capture/);
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
    expect(exceptions.body.data).toContainEqual(
      expect.objectContaining({ event: event.id, kind: 'unparseable_payload', status: 'open' }),
    );
    expect(await ledgerByCode(app)).toEqual(before);
  });

  it('answers 400 and stores nothing for a PAYMENT.CAPTURE.COMPLETED whose amount is finer than its currency', async () => {
    const capture = paypalFixture('webhook.PAYMENT.CAPTURE.COMPLETED.json');
    capture.id = 'WH-FINE-AMOUNT-1';
    capture.resource.amount.value = '25.075';
    const body = JSON.stringify(capture);
    const headers = signPaypalDelivery(body, {
      privateKeyPem: readFileSync(TEST_KEY_FILE, 'utf8'),
      webhookId: PAYPAL_WEBHOOK_ID,
    });
    const answer = await deliver(app, { body, headers });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body).error).toMatchObject({ code: 'invalid_payload' });
    expect(await eventOf(app, capture.id)).toBeUndefined();
  });

  it('stores an event type billhook does not reconcile and marks it ignored', async () => {
    const order = paypalFixture('webhook.CHECKOUT.ORDER.COMPLETED.json');
    const body = JSON.stringify(order);
    const headers = signPaypalDelivery(body, {
      privateKeyPem: readFileSync(TEST_KEY_FILE, 'utf8'),
      webhookId: PAYPAL_WEBHOOK_ID,
    });
    expect((await deliver(app, { body, headers })).status).toBe(200);
    expect(await settled(app, order.id)).toMatchObject({
      status: 'ignored',
      outcome: 'ignored: CHECKOUT.ORDER.COMPLETED is not reconciled',
    });
  });
});
