import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildEwayTestDelivery } from '../../src/gateways/eway/test-events.ts';
import {
  EWAY_TEST_AUTHORIZATION,
  EWAY_TEST_KEY,
  EWAY_TEST_PASSWORD,
  ewayFixture,
  FIXTURE_TOKEN,
} from '../gateways/eway/fixtures.ts';
import type { TestApp } from '../support/app.ts';
import { ledgerByCode, openInvoice as openGatewayInvoice } from '../support/flow.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { waitFor } from '../support/wait.ts';

const EWAY_API_BASE = 'https://eway.test';
const APPROVED = ewayFixture('api.transaction.token_payment.approved.json');
const APPROVED_ID = APPROVED.TransactionID as number;

/** Creates a customer with an eWAY token (the real fixture's TokenCustomerID) and an OPEN AUD invoice. */
const openInvoice = (app: TestApp, amount = 4620) =>
  openGatewayInvoice(app, { amount, currency: 'aud', gateway: 'eway', token: FIXTURE_TOKEN });

/**
 * Fakes `POST /Transaction` with `answer` (default the real token payment approval), echoing the
 * request's amount, reference and currency into `Payment` as eWAY does.
 * @returns the requests it saw: headers and JSON body
 */
function ewayCharges(answer: any = APPROVED, transactionId = APPROVED_ID) {
  const seen: { headers: Record<string, string>; body: any }[] = [];
  nock(EWAY_API_BASE)
    .post('/Transaction')
    .reply(async (request: Request) => {
      const body = JSON.parse(await request.text());
      seen.push({ headers: Object.fromEntries(request.headers), body });
      return [
        200,
        {
          ...answer,
          TransactionID: answer.TransactionID === null ? null : transactionId,
          Payment: { ...answer.Payment, ...body.Payment },
        },
      ];
    });
  return seen;
}

/** Fakes eWAY's Transaction Query for `id`: the SDK's answer carrying the given facts. */
function ewayKnows(id: number, facts: Record<string, unknown>) {
  const answer = ewayFixture('api.transaction.query_by_id.json');
  Object.assign(answer.Transactions[0], { TransactionID: id, CurrencyCode: 'AUD' }, facts);
  return nock(EWAY_API_BASE)
    .get(`/Transaction/${id}`)
    .matchHeader('authorization', EWAY_TEST_AUTHORIZATION)
    .reply(200, answer);
}

/** POSTs a callback hint to /webhooks/eway as eWAY's redirect would carry it. */
async function deliverHint(app: TestApp, body: string, contentType = 'application/x-www-form-urlencoded') {
  const response = await fetch(`${app.url}/webhooks/eway`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
  return { status: response.status, body: await response.text() };
}

async function events(app: TestApp): Promise<any[]> {
  return (await app.api('GET', '/v1/events?limit=100')).body.data;
}

/** The hint's row: its event id is `transaction:…` while it waits, `transaction:…@<inbox id>` once done. */
const isHint = (event: { gateway_event_id: string }, gatewayEventId: string) =>
  event.gateway_event_id === gatewayEventId || event.gateway_event_id.startsWith(`${gatewayEventId}@`);

async function settled(app: TestApp, gatewayEventId: string) {
  return waitFor(`event ${gatewayEventId} to settle`, async () => {
    const event = (await events(app)).find((e) => isHint(e, gatewayEventId));
    return event && event.status !== 'received' && event.status !== 'retrying' ? event : undefined;
  });
}

async function transaction(app: TestApp, id: string) {
  const list = await app.api('GET', '/v1/transactions?limit=100');
  return list.body.data.find((t: { id: string }) => t.id === id);
}

describe('eWAY end to end: token payments, callback hints, refunds', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({
      EWAY_API_KEY: EWAY_TEST_KEY,
      EWAY_API_PASSWORD: EWAY_TEST_PASSWORD,
      EWAY_API_BASE,
    });
  });
  afterEach(expectEveryMockUsed);
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  it('charges the stored token, marks the invoice PAID once, and a later hint for it changes nothing', async () => {
    const { invoice, customer } = await openInvoice(app);
    const seen = ewayCharges();
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(200);
    expect(charged.body.transaction).toMatchObject({
      status: 'succeeded',
      gateway: 'eway',
      gateway_transaction_id: String(APPROVED_ID),
      amount: 4620,
      currency: 'AUD',
    });
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_due: 0, amount_paid: 4620 });
    // One TokenPayment with our attempt id as InvoiceReference and integer cents.
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers.authorization).toBe(EWAY_TEST_AUTHORIZATION);
    expect(seen[0]!.body).toMatchObject({
      Customer: { TokenCustomerID: FIXTURE_TOKEN },
      Payment: { TotalAmount: 4620, InvoiceReference: charged.body.transaction.id, CurrencyCode: 'AUD' },
      Method: 'TokenPayment',
      // An operator's charge of a one-off invoice: unscheduled, which eWAY's token payments call MOTO.
      TransactionType: 'MOTO',
    });
    const ledger = { 'gateway_clearing:eway AUD': 4620, 'receivable:customer AUD': 0, 'revenue AUD': -4620 };
    expect(await ledgerByCode(app)).toEqual(ledger);

    // The redirect's hint for the same transaction: eWAY is asked, and what it says is already booked.
    ewayKnows(APPROVED_ID, { InvoiceReference: charged.body.transaction.id, TotalAmount: 4620 });
    const delivered = await deliverHint(app, `TransactionID=${APPROVED_ID}`);
    expect(delivered).toEqual({ status: 200, body: '{"received":true}' });
    const event = await settled(app, `transaction:${APPROVED_ID}`);
    expect(event).toMatchObject({ status: 'processed', outcome: 'duplicate', type: 'transaction' });
    expect(await ledgerByCode(app)).toEqual(ledger);

    // The same hint again, once the first is done, is processed on eWAY's answer of less than a minute
    // ago (no second query: the nock above answers once) and changes nothing.
    expect(
      (await deliverHint(app, JSON.stringify({ TransactionID: APPROVED_ID }), 'application/json')).status,
    ).toBe(200);
    await waitFor('the second hint to settle', async () => {
      const hints = (await events(app)).filter((e) => isHint(e, `transaction:${APPROVED_ID}`));
      return hints.length === 2 && hints.every((e) => e.status === 'processed');
    });
    expect(await ledgerByCode(app)).toEqual(ledger);
    const entries = await app.api('GET', '/v1/ledger/entries');
    expect(entries.body.data.map((e: { source: { type: string } }) => e.source.type)).toEqual([
      'invoice',
      'transaction',
    ]);
    expect(entries.body.data[1].postings).toEqual([
      { account: 'gateway_clearing:eway', amount: 4620, currency: 'AUD' },
      { account: `receivable:${customer.id}`, amount: -4620, currency: 'AUD' },
    ]);
  });

  it('keeps a charge that got a 5xx unknown, and settles it from the hint by what eWAY returns', async () => {
    const { invoice } = await openInvoice(app, 1500);
    nock(EWAY_API_BASE).post('/Transaction').reply(503, 'Service Unavailable');
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({ status: 'unknown', failure_code: 'unknown_outcome' });
    expect(charged.body.invoice.status).toBe('OPEN');
    const again = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('charge_in_progress');

    // The hint claims a failure; eWAY says approved, with our attempt id as InvoiceReference.
    ewayKnows(20000001, { InvoiceReference: charged.body.transaction.id, TotalAmount: 1500 });
    const hint = buildEwayTestDelivery(
      'transaction',
      { transactionId: 20000001, format: 'json' },
      { EWAY_API_KEY: EWAY_TEST_KEY, EWAY_API_PASSWORD: EWAY_TEST_PASSWORD },
    );
    const lying = JSON.stringify({
      ...JSON.parse(hint.body),
      TransactionStatus: false,
      ResponseMessage: 'D4405',
    });
    expect((await deliverHint(app, lying, hint.headers['content-type'])).status).toBe(200);
    expect(await settled(app, 'transaction:20000001')).toMatchObject({
      status: 'processed',
      outcome: 'applied',
    });

    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 1500,
      amount_due: 0,
    });
    expect(await transaction(app, charged.body.transaction.id)).toMatchObject({
      status: 'succeeded',
      gateway_transaction_id: '20000001',
    });
  });

  it('never believes a hint claiming success: eWAY says D4401, so the unknown charge fails and the invoice stays open', async () => {
    const { invoice } = await openInvoice(app, 101);
    nock(EWAY_API_BASE).post('/Transaction').reply(500, '');
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction.status).toBe('unknown');
    const before = await ledgerByCode(app);

    const decline = ewayFixture('api.transaction.purchase.declined_D4401.json');
    ewayKnows(decline.TransactionID, {
      TransactionStatus: false,
      ResponseCode: decline.ResponseCode,
      ResponseMessage: decline.ResponseMessage,
      InvoiceReference: charged.body.transaction.id,
      TotalAmount: decline.Payment.TotalAmount,
    });
    const claim = { TransactionID: decline.TransactionID, TransactionStatus: true, TotalAmount: 101 };
    expect((await deliverHint(app, JSON.stringify(claim), 'application/json')).status).toBe(200);
    await settled(app, `transaction:${decline.TransactionID}`);

    expect(await transaction(app, charged.body.transaction.id)).toMatchObject({
      status: 'failed',
      failure_code: 'D4401',
      failure_message: 'D4401 Refer to Issuer (bank response code 01)',
    });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_paid: 0,
    });
    expect(await ledgerByCode(app)).toEqual(before);
  });

  it.each([
    ['bank decline D4401', 'api.transaction.purchase.declined_D4401.json', 'D4401', /Refer to Issuer/],
    [
      'validation failure',
      'api.transaction.token_payment.failed.json',
      'V6040,V6021,V6022,V6101,V6102',
      /V6040 Invalid TokenCustomerID/,
    ],
  ])(
    'records a %s with eWAY codes and leaves the invoice chargeable',
    async (_name, fixture, code, message) => {
      const { invoice } = await openInvoice(app);
      // eWAY's ids are unique: the D4401 fixture's id is already on the attempt of the test before.
      ewayCharges(ewayFixture(fixture), 50000000 + Math.floor(Math.random() * 1_000_000));
      const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
      expect(charged.status).toBe(200);
      expect(charged.body.transaction).toMatchObject({ status: 'failed', failure_code: code });
      expect(charged.body.transaction.failure_message).toMatch(message);
      expect(charged.body.invoice).toMatchObject({ status: 'OPEN', amount_paid: 0 });

      ewayCharges(APPROVED, 30000000 + Math.floor(Math.random() * 1_000_000));
      const retried = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
      expect(retried.body.transaction.status).toBe('succeeded');
      expect(retried.body.invoice.status).toBe('PAID');
    },
  );

  it('keeps a charge eWAY answers D4409 "Request In Progress" unknown, and books it once when the bank approves', async () => {
    const { invoice } = await openInvoice(app);
    const before = await ledgerByCode(app);
    // The real D4401 decline, as eWAY answers a request the issuer is still working on (ISO 8583 09).
    const id = 60000000 + Math.floor(Math.random() * 1_000_000);
    const inProgress = {
      ...ewayFixture('api.transaction.purchase.declined_D4401.json'),
      ResponseCode: '09',
      ResponseMessage: 'D4409',
    };
    ewayCharges(inProgress, id);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(200);
    // Before: failed D4409, the invoice free for a second charge while the first was still at the bank.
    expect(charged.body.transaction).toMatchObject({ status: 'unknown', failure_code: 'unknown_outcome' });
    expect(charged.body.invoice).toMatchObject({ status: 'OPEN', amount_paid: 0 });
    const again = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect([again.status, again.body.error?.code]).toEqual([409, 'charge_in_progress']);
    expect(await ledgerByCode(app)).toEqual(before);

    // The bank approves the request it was working on: eWAY's query says so, and it is booked once.
    ewayKnows(id, {
      TransactionStatus: true,
      ResponseCode: '00',
      ResponseMessage: 'A2000',
      InvoiceReference: charged.body.transaction.id,
      TotalAmount: 4620,
    });
    expect((await deliverHint(app, `TransactionID=${id}`)).status).toBe(200);
    expect(await settled(app, `transaction:${id}`)).toMatchObject({
      status: 'processed',
      outcome: 'applied',
    });
    expect(await transaction(app, charged.body.transaction.id)).toMatchObject({
      status: 'succeeded',
      gateway_transaction_id: String(id),
    });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 4620,
    });
  });

  it('refunds part of a payment through POST /Transaction/{id}/Refund, and records a refused refund as failed', async () => {
    const { invoice } = await openInvoice(app);
    ewayCharges(APPROVED, 40000001);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');
    const before = await ledgerByCode(app);

    const seen: any[] = [];
    nock(EWAY_API_BASE)
      .post('/Transaction/40000001/Refund')
      .reply(async (request: Request) => {
        seen.push(JSON.parse(await request.text()));
        return [200, ewayFixture('api.refund.approved.json')];
      });
    const partial = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 1000 });
    expect(partial.status).toBe(201);
    expect(partial.body).toMatchObject({
      status: 'succeeded',
      amount: 1000,
      currency: 'AUD',
      gateway_refund_id: '10326715',
    });
    expect(seen[0].Refund).toMatchObject({
      TransactionID: 40000001,
      TotalAmount: 1000,
      InvoiceReference: partial.body.id,
      CurrencyCode: 'AUD',
    });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 1000,
    });
    const after = await ledgerByCode(app);
    expect(after['refunds AUD']).toBe((before['refunds AUD'] ?? 0) + 1000);
    expect(after['gateway_clearing:eway AUD']).toBe((before['gateway_clearing:eway AUD'] ?? 0) - 1000);

    nock(EWAY_API_BASE)
      .post('/Transaction/40000001/Refund')
      .reply(200, ewayFixture('api.refund.failed.json'));
    const refused = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 500 });
    expect(refused.body).toMatchObject({ status: 'failed', amount: 500 });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      amount_refunded: 1000,
    });
    expect(await ledgerByCode(app)).toEqual(after);
  });

  it('settles an unknown charge from an AccessCode hint: the code is resolved, then the transaction read', async () => {
    const { invoice } = await openInvoice(app, 1000);
    nock(EWAY_API_BASE).post('/Transaction').reply(502, '');
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction.status).toBe('unknown');

    const result = ewayFixture('api.access_code.query.constructed.json');
    nock(EWAY_API_BASE)
      .get(`/AccessCode/${result.AccessCode}`)
      .matchHeader('authorization', EWAY_TEST_AUTHORIZATION)
      .reply(200, { ...result, TransactionID: 60000001, InvoiceReference: charged.body.transaction.id });
    ewayKnows(60000001, { InvoiceReference: charged.body.transaction.id, TotalAmount: 1000 });
    expect((await deliverHint(app, `AccessCode=${result.AccessCode}`)).status).toBe(200);
    expect(await settled(app, `access_code:${result.AccessCode}`)).toMatchObject({
      status: 'processed',
      type: 'access_code',
    });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.status).toBe('PAID');
    expect(await transaction(app, charged.body.transaction.id)).toMatchObject({
      status: 'succeeded',
      gateway_transaction_id: '60000001',
    });
  });

  it('answers 400 and stores nothing for a body that is not a hint', async () => {
    const before = (await events(app)).length;
    for (const body of [
      '',
      'hello',
      '{"TransactionStatus":true,"TotalAmount":100}',
      'TransactionID=abc',
      'AccessCode=../x',
    ]) {
      const response = await deliverHint(app, body);
      expect(response.status, body).toBe(400);
    }
    expect((await deliverHint(app, '{"TransactionID":', 'application/json')).status).toBe(400);
    expect(await events(app)).toHaveLength(before);
  });

  it('marks a hint for a transaction billhook did not make as ignored without asking eWAY, posting nothing', async () => {
    // Every charge of this app has its TransactionID by now: none can be 99999999, so no query (no
    // nock: a call would fail and leave the row retrying).
    const before = await ledgerByCode(app);
    expect((await deliverHint(app, 'TransactionID=99999999')).status).toBe(200);
    expect(await settled(app, 'transaction:99999999')).toMatchObject({ status: 'ignored' });
    expect(await ledgerByCode(app)).toEqual(before);
    expect(app.logs).toContainEqual(
      expect.objectContaining({ msg: 'eWAY hint dropped', hint: 'transaction:99999999', level: 30 }),
    );
  });
});
