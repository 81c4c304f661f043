import { randomUUID } from 'node:crypto';
import nock from 'nock';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signAuthorizenetPayload } from '../../src/gateways/authorizenet/test-events.ts';
import { pollDueTransactions } from '../../src/workers/poll-transactions.ts';
import {
  API_PATH,
  type ApiBody,
  anetFixture,
  anetFixtureRaw,
  detailsAnswer,
  FIXTURE_SIGNATURE_KEY,
  LOGIN_ID,
  nockApi,
  nockDetails,
  TRANSACTION_KEY,
  withBom,
} from '../gateways/authorizenet/support.ts';
import type { TestApp } from '../support/app.ts';
import { ledgerByCode, openInvoice as openGatewayInvoice } from '../support/flow.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { waitFor } from '../support/wait.ts';

const BASE = 'https://authorizenet.e2e.test';
const TOKEN = '40338125/1000177237';
const REAL_NOTIFICATION = 'webhook.net.authorize.payment.authcapture.created.json';
const REAL_SIGNATURE: string = anetFixture('webhook.net.authorize.payment.authcapture.created.headers.json')[
  'X-Anet-Signature'
];

/** POSTs a notification to /webhooks/authorizenet, signed as Authorize.Net signs (or with `signature`). */
async function deliver(
  app: TestApp,
  body: string,
  signature: string | null = signAuthorizenetPayload(body, FIXTURE_SIGNATURE_KEY),
) {
  const response = await fetch(`${app.url}/webhooks/authorizenet`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(signature === null ? {} : { 'X-ANET-Signature': signature }),
    },
    body,
  });
  return { status: response.status, body: await response.text() };
}

/** A documented notification (a real fixture) with another event type, a new notificationId and transId. */
function notification(fixture: string, eventType: string, transId: string): string {
  const body = anetFixture(fixture);
  Object.assign(body, { notificationId: randomUUID(), eventType });
  body.payload.id = transId;
  return JSON.stringify(body);
}

async function events(app: TestApp) {
  return (await app.api('GET', '/v1/events?limit=100')).body.data as {
    gateway: string;
    gateway_event_id: string;
    status: string;
    outcome: string | null;
    type: string;
  }[];
}

/** Waits until the inbox event is done (processed, ignored or exception). */
async function settled(app: TestApp, gatewayEventId: string) {
  return waitFor(`event ${gatewayEventId} to be processed`, async () => {
    const event = (await events(app)).find((e) => e.gateway_event_id === gatewayEventId);
    return event && event.status !== 'received' && event.status !== 'retrying' ? event : undefined;
  });
}

/** Authorize.Net's getMerchantDetails (account currency USD); optional, as the client caches it. */
function merchantDetailsMayBeAsked() {
  nock(BASE)
    .post(API_PATH, (body: ApiBody) => 'getMerchantDetailsRequest' in body)
    .optionally()
    .reply(200, withBom(anetFixture('api.getMerchantDetails.json')));
}

/** The real approval answer with `transId` set, recording the requests it saw. */
function chargeApproved(transId: string, seen: ApiBody[] = []) {
  const approved = anetFixture('api.createTransaction.authCapture.approved.json');
  approved.transactionResponse.transId = transId;
  nockApi(
    BASE,
    'createTransactionRequest',
    approved,
    (r) => r.transactionRequest.transactionType === 'authCaptureTransaction',
    seen,
  );
  return seen;
}

/** Authorize.Net configured against nock's `BASE`, with the key that signed the real notification fixture. */
const ANET_ENV = {
  AUTHORIZENET_API_LOGIN_ID: LOGIN_ID,
  AUTHORIZENET_TRANSACTION_KEY: TRANSACTION_KEY,
  AUTHORIZENET_SIGNATURE_KEY: FIXTURE_SIGNATURE_KEY,
  AUTHORIZENET_API_BASE: BASE,
};

describe('Authorize.Net end to end: charge, notifications, refunds', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp(ANET_ENV);
  });
  afterEach(expectEveryMockUsed);
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** A customer with an Authorize.Net customer profile and a finalized USD invoice. */
  async function openInvoice(amount = 4620) {
    const { invoice } = await openGatewayInvoice(app, {
      amount,
      currency: 'usd',
      gateway: 'authorizenet',
      token: TOKEN,
    });
    return invoice;
  }

  async function paidInvoice(transId: string) {
    const invoice = await openInvoice();
    chargeApproved(transId);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');
    return charged.body;
  }

  it('charges the customer profile, books it once, and the real signed notification changes nothing more', async () => {
    const invoice = await openInvoice();
    // The charge answer names the transaction of the real notification fixture.
    const seen = chargeApproved('40005915599');
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(200);
    const txn = charged.body.transaction;
    expect(txn).toMatchObject({
      status: 'succeeded',
      gateway: 'authorizenet',
      gateway_transaction_id: '40005915599',
      amount: 4620,
      currency: 'USD',
    });
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 4620, amount_due: 0 });
    // Our attempt id, without `txn_`, is the invoice number and refId; amount in decimal dollars.
    expect(seen[0]).toMatchObject({
      refId: txn.id.slice(4),
      transactionRequest: {
        amount: '46.20',
        currencyCode: 'USD',
        profile: { customerProfileId: '40338125', paymentProfile: { paymentProfileId: '1000177237' } },
        order: { invoiceNumber: txn.id.slice(4) },
      },
    });
    const ledger = {
      'gateway_clearing:authorizenet USD': 4620,
      'receivable:customer USD': 0,
      'revenue USD': -4620,
    };
    expect(await ledgerByCode(app)).toEqual(ledger);

    // The real notification, byte-exact with its real signature; the worker reads the transaction back.
    merchantDetailsMayBeAsked();
    nockDetails(
      BASE,
      '40005915599',
      detailsAnswer({
        transId: '40005915599',
        transactionStatus: 'capturedPendingSettlement',
        authAmount: 46.2,
        settleAmount: 46.2,
        order: { invoiceNumber: txn.id.slice(4) },
      }),
    );
    const raw = anetFixtureRaw(REAL_NOTIFICATION);
    expect(await deliver(app, raw, REAL_SIGNATURE)).toEqual({ status: 200, body: '{"received":true}' });
    const event = await settled(app, '182cbbff-cab2-4080-931d-80e5d818f23a');
    expect(event).toMatchObject({
      status: 'processed',
      outcome: 'duplicate',
      type: 'net.authorize.payment.authcapture.created',
    });
    expect(await ledgerByCode(app)).toEqual(ledger);

    // Authorize.Net retries a notification it thinks failed: same notificationId, stored once.
    expect((await deliver(app, raw, REAL_SIGNATURE)).status).toBe(200);
    const all = await events(app);
    expect(all.filter((e) => e.gateway_event_id === '182cbbff-cab2-4080-931d-80e5d818f23a')).toHaveLength(1);
  });

  it('keeps a charge held for review pending until fraud.approved, then marks the invoice paid', async () => {
    const invoice = await openInvoice();
    const held = anetFixture('api.createTransaction.held_for_review.constructed.json');
    held.transactionResponse.transId = '2154067719'; // the transaction of the fraud.held fixture
    nockApi(BASE, 'createTransactionRequest', held);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({
      status: 'pending',
      gateway_transaction_id: '2154067719',
    });
    expect(charged.body.invoice.status).toBe('OPEN');

    merchantDetailsMayBeAsked();
    nockDetails(
      BASE,
      '2154067719',
      detailsAnswer({ transId: '2154067719', transactionStatus: 'FDSPendingReview', authAmount: '46.20' }),
    );
    const heldBody = anetFixtureRaw('webhook.net.authorize.payment.fraud.held.json');
    expect((await deliver(app, heldBody)).status).toBe(200);
    expect(await settled(app, '26024a6c-3b78-4d18-8ce7-53dd020aee72')).toMatchObject({
      outcome: 'duplicate',
    });

    nockDetails(
      BASE,
      '2154067719',
      detailsAnswer({
        transId: '2154067719',
        transactionStatus: 'capturedPendingSettlement',
        authAmount: '46.20',
      }),
    );
    const approved = notification(
      'webhook.net.authorize.payment.fraud.held.json',
      'net.authorize.payment.fraud.approved',
      '2154067719',
    );
    expect((await deliver(app, approved)).status).toBe(200);
    expect(await settled(app, JSON.parse(approved).notificationId)).toMatchObject({
      status: 'processed',
      outcome: 'applied',
    });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 4620,
    });
  });

  it('records a decline with the response reason and leaves the invoice chargeable', async () => {
    const invoice = await openInvoice();
    nockApi(BASE, 'createTransactionRequest', anetFixture('api.createTransaction.declined.constructed.json'));
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({
      status: 'failed',
      failure_code: '2',
      failure_message: 'This transaction has been declined.',
    });
    expect(charged.body.invoice).toMatchObject({ status: 'OPEN', amount_paid: 0 });
  });

  it('refunds through the profile, and refund notifications (ours and one from the Merchant Interface) reconcile', async () => {
    const { invoice, transaction } = await paidInvoice('2228446239');
    const seen: ApiBody[] = [];
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.refund.approved.json'),
      (r) => r.transactionRequest.transactionType === 'refundTransaction',
      seen,
    );
    const refund = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 1000 });
    expect(refund.status).toBe(201);
    expect(refund.body).toMatchObject({ status: 'succeeded', amount: 1000, gateway_refund_id: '2230581367' });
    expect(seen[0]!.transactionRequest).toMatchObject({
      amount: '10.00',
      refTransId: '2228446239',
      profile: { customerProfileId: '40338125' },
      order: { invoiceNumber: refund.body.id.slice(3) },
    });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 1000,
    });

    // Authorize.Net's refund.created for our refund: already booked.
    merchantDetailsMayBeAsked();
    nockDetails(
      BASE,
      '2230581367',
      detailsAnswer({
        transId: '2230581367',
        refTransId: '2228446239',
        transactionType: 'refundTransaction',
        transactionStatus: 'refundPendingSettlement',
        authAmount: '10.00',
        settleAmount: '10.00',
        order: { invoiceNumber: refund.body.id.slice(3) },
      }),
    );
    const ours = notification(REAL_NOTIFICATION, 'net.authorize.payment.refund.created', '2230581367');
    expect((await deliver(app, ours)).status).toBe(200);
    expect(await settled(app, JSON.parse(ours).notificationId)).toMatchObject({ outcome: 'duplicate' });

    // A refund made in the Merchant Interface: known only from its notification.
    nockDetails(
      BASE,
      '2230581999',
      detailsAnswer({
        transId: '2230581999',
        refTransId: transaction.gateway_transaction_id,
        transactionType: 'refundTransaction',
        transactionStatus: 'refundSettledSuccessfully',
        authAmount: '6.20',
        settleAmount: '6.20',
        order: {},
      }),
    );
    const dashboard = notification(REAL_NOTIFICATION, 'net.authorize.payment.refund.created', '2230581999');
    expect((await deliver(app, dashboard)).status).toBe(200);
    expect(await settled(app, JSON.parse(dashboard).notificationId)).toMatchObject({ outcome: 'applied' });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 1620,
    });
  });

  it('voids an unsettled charge when the whole amount is refunded (error 54), and the void notification changes nothing', async () => {
    const { invoice } = await paidInvoice('2230581408');
    const before = await ledgerByCode(app);
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.refund.error54_unsettled.constructed.json'),
      (r) => r.transactionRequest.transactionType === 'refundTransaction',
    );
    nockDetails(
      BASE,
      '2230581408',
      detailsAnswer({
        transId: '2230581408',
        transactionStatus: 'capturedPendingSettlement',
        authAmount: '46.20',
      }),
    );
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.void.approved.json'),
      (r) =>
        r.transactionRequest.transactionType === 'voidTransaction' &&
        r.transactionRequest.refTransId === '2230581408',
    );
    const refund = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, {});
    expect(refund.body).toMatchObject({ status: 'succeeded', amount: 4620, gateway_refund_id: '2230581408' });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 4620,
    });
    const after = await ledgerByCode(app);
    expect(after['refunds USD']).toBe((before['refunds USD'] ?? 0) + 4620);
    expect(after['gateway_clearing:authorizenet USD']).toBe(
      (before['gateway_clearing:authorizenet USD'] ?? 0) - 4620,
    );

    merchantDetailsMayBeAsked();
    nockDetails(
      BASE,
      '2230581408',
      detailsAnswer({ transId: '2230581408', transactionStatus: 'voided', authAmount: '46.20' }),
    );
    const voided = notification(REAL_NOTIFICATION, 'net.authorize.payment.void.created', '2230581408');
    expect((await deliver(app, voided)).status).toBe(200);
    expect(await settled(app, JSON.parse(voided).notificationId)).toMatchObject({
      status: 'processed',
      outcome: 'stale',
    });
    expect(await ledgerByCode(app)).toEqual(after);
  });

  it('answers 400 to a bad or missing signature and stores nothing; ignores event types it does not reconcile', async () => {
    const raw = anetFixtureRaw(REAL_NOTIFICATION);
    const tampered = raw.replace('"authAmount":0.0', '"authAmount":1.0');
    const before = (await events(app)).length;
    expect((await deliver(app, tampered, REAL_SIGNATURE)).status).toBe(400);
    expect((await deliver(app, raw, null)).status).toBe(400);
    expect((await deliver(app, raw, signAuthorizenetPayload(raw, 'not-the-key'))).status).toBe(400);
    expect(await events(app)).toHaveLength(before);

    const customer = anetFixture(REAL_NOTIFICATION);
    Object.assign(customer, { notificationId: randomUUID(), eventType: 'net.authorize.customer.created' });
    customer.payload = { entityName: 'customerProfile', id: '394' };
    const body = JSON.stringify(customer);
    expect((await deliver(app, body)).status).toBe(200);
    expect(await settled(app, customer.notificationId)).toMatchObject({
      status: 'ignored',
      outcome: 'ignored: net.authorize.customer.created is not reconciled',
    });
  });
});

describe('Authorize.Net end to end: an account with several currencies, and a partial settlement', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp(ANET_ENV);
  });
  afterEach(expectEveryMockUsed);
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** getMerchantDetails (the real sample) naming two currencies; asked once, then cached. */
  function twoCurrencies() {
    const details = anetFixture('api.getMerchantDetails.json');
    details.currencies = ['USD', 'CAD'];
    nock(BASE)
      .post(API_PATH, (body: ApiBody) => 'getMerchantDetailsRequest' in body)
      .optionally()
      .reply(200, withBom(details));
  }

  /** A CAD invoice of `amount` charged and held for review (pending) as `transId`. */
  async function heldCharge(transId: string, amount: number) {
    const { invoice } = await openGatewayInvoice(app, {
      amount,
      currency: 'cad',
      gateway: 'authorizenet',
      token: TOKEN,
    });
    const held = anetFixture('api.createTransaction.held_for_review.constructed.json');
    held.transactionResponse.transId = transId;
    // The account takes CAD (a charge in a currency it does not process is refused before sending).
    twoCurrencies();
    nockApi(BASE, 'createTransactionRequest', held);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({ status: 'pending', currency: 'CAD' });
    return { invoice, txn: charged.body.transaction };
  }

  /** fraud.approved for `transId`, whose details (the real answer, changed) say captured with these amounts. */
  async function approved(transId: string, invoiceNumber: string, authAmount: number, settleAmount: number) {
    twoCurrencies();
    nockDetails(
      BASE,
      transId,
      detailsAnswer({
        transId,
        transactionStatus: 'capturedPendingSettlement',
        authAmount,
        settleAmount,
        order: { invoiceNumber },
      }),
    );
    const body = notification(
      'webhook.net.authorize.payment.fraud.held.json',
      'net.authorize.payment.fraud.approved',
      transId,
    );
    expect((await deliver(app, body)).status).toBe(200);
    return settled(app, JSON.parse(body).notificationId);
  }

  it('reads the amounts of a CAD charge on a USD and CAD account in CAD, the charge’s currency', async () => {
    const { invoice, txn } = await heldCharge('2154067801', 12345);
    const event = await approved('2154067801', txn.id.slice(4), 123.45, 123.45);
    expect(event).toMatchObject({ status: 'processed', outcome: 'applied' });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 12345,
      currency: 'CAD',
    });
    expect((await ledgerByCode(app))['gateway_clearing:authorizenet CAD']).toBe(12345);
  });

  it('books what a partial capture moved: a settlement of 80 on an authorization of 100 pays 80, leaves 20 due, and refunds at most 80', async () => {
    const before = await ledgerByCode(app);
    const { invoice, txn } = await heldCharge('2154067802', 10000);
    // Authorized 100.00 CAD, captured and settling 80.00.
    const event = await approved('2154067802', txn.id.slice(4), 100.0, 80.0);
    expect(event).toMatchObject({ status: 'processed', outcome: 'applied' });
    expect((await app.api('GET', `/v1/transactions/${txn.id}`)).body).toMatchObject({
      status: 'succeeded',
      amount: 10000,
      amount_captured: 8000,
      currency: 'CAD',
    });
    // 100.00 invoiced, 80.00 paid: 20.00 still due, so the invoice stays OPEN to be charged again.
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_paid: 8000,
      amount_due: 2000,
    });
    // Finalizing: receivable +10000, revenue -10000. The payment (txn_…:succeeded): clearing +8000,
    // receivable -8000, leaving the receivable at 10000 - 8000 = 2000.
    const captured = await ledgerByCode(app);
    expect(captured).toEqual({
      ...before,
      'receivable:customer CAD': (before['receivable:customer CAD'] ?? 0) + 2000,
      'revenue CAD': (before['revenue CAD'] ?? 0) - 10000,
      'gateway_clearing:authorizenet CAD': (before['gateway_clearing:authorizenet CAD'] ?? 0) + 8000,
    });
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
    expect(exceptions.body.data.filter((e: { transaction?: string }) => e.transaction === txn.id)).toEqual(
      [],
    );

    // The 20.00 left is paid by cheque: the invoice is PAID (8000 + 2000 = 10000).
    const cheque = await app.api('POST', `/v1/invoices/${invoice.id}/payments`, {
      amount: 2000,
      method: 'CHECK',
    });
    expect(cheque.body).toMatchObject({ status: 'PAID', amount_paid: 10000, amount_due: 0 });
    const paid = await ledgerByCode(app);
    // A refund of 90.00 through Authorize.Net: only the 80.00 it captured can go back that way.
    const refused = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 9000 });
    expect(refused.status).toBe(422);
    expect(refused.body.error.fields).toEqual({ amount: 'at most 8000 can be refunded (paid 8000 CAD)' });
    expect(
      (await app.api('GET', `/v1/refunds?limit=100`)).body.data.filter(
        (r: { transaction: string }) => r.transaction === txn.id,
      ),
    ).toEqual([]);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_refunded: 0,
    });
    expect(await ledgerByCode(app)).toEqual(paid);
  });

  it('books a partial capture the status check finds, and charges the rest again', async () => {
    const { invoice, txn } = await heldCharge('2154067804', 5000);
    // The poller asks about the held charge (first step: 60 s after it was made): captured, settling
    // 30.00 of the 50.00 CAD authorized.
    nockDetails(
      BASE,
      '2154067804',
      detailsAnswer({
        transId: '2154067804',
        transactionStatus: 'capturedPendingSettlement',
        authAmount: 50.0,
        settleAmount: 30.0,
        order: { invoiceNumber: txn.id.slice(4) },
      }),
    );
    const created = new Date(txn.created_at);
    const polled = await pollDueTransactions(
      app.runtime.db,
      'system',
      app.runtime,
      [60],
      pino({ level: 'silent' }),
      {
        now: new Date(created.getTime() + 61_000),
      },
    );
    expect(polled).toEqual([{ transactionId: txn.id, status: 'succeeded', exhausted: false }]);
    expect((await app.api('GET', `/v1/transactions/${txn.id}`)).body).toMatchObject({
      status: 'succeeded',
      amount: 5000,
      amount_captured: 3000,
    });
    // 5000 invoiced - 3000 captured = 2000 due, OPEN.
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_paid: 3000,
      amount_due: 2000,
    });
    // Charging it again asks for the 20.00 left, and pays it (3000 + 2000 = 5000).
    const seen = chargeApproved('2154067805');
    const rest = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(rest.body.transaction).toMatchObject({ status: 'succeeded', amount: 2000, amount_captured: 2000 });
    expect(seen[0]?.transactionRequest.amount).toBe('20.00');
    expect(rest.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 5000, amount_due: 0 });
  });

  it('raises an amount_mismatch when a charge already booked in full later settles for less, and books nothing more', async () => {
    const { invoice } = await openGatewayInvoice(app, {
      amount: 10000,
      currency: 'cad',
      gateway: 'authorizenet',
      token: TOKEN,
    });
    chargeApproved('2154067806');
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    const txn = charged.body.transaction;
    expect(txn).toMatchObject({ status: 'succeeded', amount: 10000, amount_captured: 10000 });
    const before = await ledgerByCode(app);
    // Booked at 100.00 when Authorize.Net approved it; its details now say 80.00 settled.
    const event = await approved('2154067806', txn.id.slice(4), 100.0, 80.0);
    expect(event.status).toBe('exception');
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
    const ours = exceptions.body.data.filter((e: { transaction?: string }) => e.transaction === txn.id);
    expect(ours).toMatchObject([{ kind: 'amount_mismatch' }]);
    expect(ours[0].message).toMatch(/says 8000 CAD; .* is 10000 CAD/);
    expect((await app.api('GET', `/v1/transactions/${txn.id}`)).body).toMatchObject({
      amount_captured: 10000,
    });
    expect(await ledgerByCode(app)).toEqual(before);
  });

  it('never books more than was charged: a settlement of 120 on a charge of 100 is an amount_mismatch for a person', async () => {
    const before = await ledgerByCode(app);
    const { invoice, txn } = await heldCharge('2154067803', 10000);
    const event = await approved('2154067803', txn.id.slice(4), 100.0, 120.0);
    expect(event.status).toBe('exception');
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
    const ours = exceptions.body.data.filter((e: { transaction?: string }) => e.transaction === txn.id);
    expect(ours).toMatchObject([{ kind: 'amount_mismatch' }]);
    expect(ours[0].message).toMatch(/says 12000 CAD; .* is 10000 CAD/);
    expect((await app.api('GET', `/v1/transactions/${txn.id}`)).body).toMatchObject({
      status: 'pending',
      amount_captured: null,
    });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_paid: 0,
    });
    // Only the finalization: receivable +10000, revenue -10000; nothing paid.
    expect(await ledgerByCode(app)).toEqual({
      ...before,
      'receivable:customer CAD': (before['receivable:customer CAD'] ?? 0) + 10000,
      'revenue CAD': (before['revenue CAD'] ?? 0) - 10000,
    });
  });
});
