import { randomUUID } from 'node:crypto';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signAuthorizenetPayload } from '../../src/gateways/authorizenet/test-events.ts';
import {
  API_PATH,
  type ApiBody,
  anetFixture,
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
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { waitFor } from '../support/wait.ts';

/**
 * A succeeded Authorize.Net charge that the merchant voids at Authorize.Net (the Merchant Interface's
 * "Void", not billhook's API) before it settles. Authorize.Net's voidTransaction "cancels an
 * authorized or captured transaction that has not settled": no money moves
 * (https://developer.authorize.net/api/reference/index.html#payment-transactions-void-a-transaction),
 * and PRODUCT.md §11 books what the gateway reports. It used to be `stale`: the invoice stayed PAID
 * and the clearing account kept money that never arrives, without a word.
 */

const BASE = 'https://authorizenet.void-at-gateway.test';
const TOKEN = '40338125/1000177237';
const REAL_NOTIFICATION = 'webhook.net.authorize.payment.authcapture.created.json';

/** POSTs a notification to /webhooks/authorizenet, signed as Authorize.Net signs; its HTTP status. */
async function deliver(app: TestApp, body: string): Promise<number> {
  const response = await fetch(`${app.url}/webhooks/authorizenet`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'X-ANET-Signature': signAuthorizenetPayload(body, FIXTURE_SIGNATURE_KEY),
    },
    body,
  });
  await response.text();
  return response.status;
}

/** The documented notification (a real fixture) as `eventType` about `transId`, with a new notificationId. */
function notification(eventType: string, transId: string): string {
  const body = anetFixture(REAL_NOTIFICATION);
  Object.assign(body, { notificationId: randomUUID(), eventType });
  body.payload.id = transId;
  return JSON.stringify(body);
}

/** Waits until inbox event `id` is done (processed, ignored or exception). */
async function settled(app: TestApp, id: string) {
  return waitFor(
    `event ${id}`,
    async () => {
      const all = (await app.api('GET', '/v1/events?limit=100')).body.data as {
        gateway_event_id: string;
        status: string;
        outcome: string | null;
      }[];
      const event = all.find((e) => e.gateway_event_id === id);
      return event && event.status !== 'received' && event.status !== 'retrying' ? event : undefined;
    },
    60_000,
  );
}

/** The reconciliation exceptions about transaction `txnId`. */
async function exceptionsOf(app: TestApp, txnId: string) {
  const all = (await app.api('GET', '/v1/reconciliation-exceptions?gateway=authorizenet&limit=100')).body
    .data as { transaction: string | null; kind: string; message: string }[];
  return all.filter((x) => x.transaction === txnId);
}

/** Authorize.Net's getMerchantDetails (account currency USD); optional, as the client caches it. */
function merchantDetailsMayBeAsked() {
  nock(BASE)
    .post(API_PATH, (body: ApiBody) => 'getMerchantDetailsRequest' in body)
    .optionally()
    .reply(200, withBom(anetFixture('api.getMerchantDetails.json')));
}

describe('an Authorize.Net charge the merchant voids at Authorize.Net after billhook booked it paid', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({
      AUTHORIZENET_API_LOGIN_ID: LOGIN_ID,
      AUTHORIZENET_TRANSACTION_KEY: TRANSACTION_KEY,
      AUTHORIZENET_SIGNATURE_KEY: FIXTURE_SIGNATURE_KEY,
      AUTHORIZENET_API_BASE: BASE,
    });
  }, 120_000);
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** An invoice of 46.20 USD (4620) paid by authCapture `transId`: its id, the transaction, the books before. */
  async function paidInvoice(transId: string) {
    const { invoice } = await openGatewayInvoice(app, {
      amount: 4620,
      currency: 'usd',
      gateway: 'authorizenet',
      token: TOKEN,
    });
    const before = await ledgerByCode(app);
    const approved = anetFixture('api.createTransaction.authCapture.approved.json');
    approved.transactionResponse.transId = transId;
    nockApi(BASE, 'createTransactionRequest', approved);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 4620 });
    const txnId = charged.body.transaction.id as string;
    const paid = await ledgerByCode(app);
    expect(paid['gateway_clearing:authorizenet USD']).toBe(
      (before['gateway_clearing:authorizenet USD'] ?? 0) + 4620,
    );
    return { invoiceId: invoice.id as string, txnId, before, paid };
  }

  /** Authorize.Net answers getTransactionDetails of `transId` (billhook's `txnId`) with `status`. */
  function detailsSay(transId: string, txnId: string, status: string, settleAmount: string) {
    merchantDetailsMayBeAsked();
    nockDetails(
      BASE,
      transId,
      detailsAnswer({
        transId,
        transactionStatus: status,
        authAmount: '46.20',
        settleAmount,
        order: { invoiceNumber: txnId.slice(4) },
      }),
    );
  }

  /*
   * Worked by hand, minor units (USD): the invoice 4620 is paid (clearing +4620, the customer's
   * receivable 0). The merchant voids the charge at Authorize.Net: nothing will settle, so the
   * payment is taken back as billhook's own void books it: clearing and receivable back to what they
   * were before the payment (clearing +0, receivable +4620), the invoice OPEN with 4620 due, the
   * transaction canceled (voided). A second notification of the same void changes nothing.
   */
  it('takes the payment back as billhook’s own void does, once: invoice owed again, clearing as before', async () => {
    const { invoiceId, txnId, before, paid } = await paidInvoice('2230590001');

    detailsSay('2230590001', txnId, 'voided', '0.00');
    const voided = notification('net.authorize.payment.void.created', '2230590001');
    expect(await deliver(app, voided)).toBe(200);
    expect(await settled(app, JSON.parse(voided).notificationId)).toMatchObject({
      status: 'processed',
      outcome: 'applied',
    });

    expect((await app.api('GET', `/v1/invoices/${invoiceId}`)).body).toMatchObject({
      status: 'OPEN',
      amount_paid: 0,
      amount_due: 4620,
    });
    expect((await app.api('GET', `/v1/transactions/${txnId}`)).body).toMatchObject({
      status: 'canceled',
      failure_code: 'voided',
    });
    const after = await ledgerByCode(app);
    expect(after['gateway_clearing:authorizenet USD']).toBe(
      paid['gateway_clearing:authorizenet USD']! - 4620,
    );
    expect(after['receivable:customer USD']).toBe(paid['receivable:customer USD']! + 4620);
    expect(nonZero(after)).toEqual(nonZero(before));
    expect(await exceptionsOf(app, txnId)).toEqual([]);

    // Authorize.Net notifies again (another notificationId, the same void): nothing more is booked.
    detailsSay('2230590001', txnId, 'voided', '0.00');
    const again = notification('net.authorize.payment.void.created', '2230590001');
    expect(await deliver(app, again)).toBe(200);
    expect(await settled(app, JSON.parse(again).notificationId)).toMatchObject({
      status: 'processed',
      outcome: 'duplicate',
    });
    expect(await ledgerByCode(app)).toEqual(after);
    expect((await app.api('GET', `/v1/invoices/${invoiceId}`)).body).toMatchObject({ amount_due: 4620 });
  });

  /*
   * A charge booked succeeded that Authorize.Net now shows `settlementError`: whether the money moved
   * is not known, so nothing is booked (the invoice stays PAID, the books as paid) and a
   * succeeded_charge_undone exception names the transaction for a person.
   */
  it('raises an exception for a person, and books nothing, when a succeeded charge is now reported failed', async () => {
    const { invoiceId, txnId, paid } = await paidInvoice('2230590002');

    detailsSay('2230590002', txnId, 'settlementError', '0.00');
    const failed = notification('net.authorize.payment.authcapture.created', '2230590002');
    expect(await deliver(app, failed)).toBe(200);
    expect(await settled(app, JSON.parse(failed).notificationId)).toMatchObject({ status: 'exception' });

    const raised = await exceptionsOf(app, txnId);
    expect(raised.map((x) => x.kind)).toEqual(['succeeded_charge_undone']);
    expect(raised[0]!.message).toContain('as failed now');
    expect((await app.api('GET', `/v1/invoices/${invoiceId}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 4620,
    });
    expect((await app.api('GET', `/v1/transactions/${txnId}`)).body).toMatchObject({ status: 'succeeded' });
    expect(await ledgerByCode(app)).toEqual(paid);
  });
});

/** `balances` without the accounts at 0 (an account the payment opened and its void emptied). */
function nonZero(balances: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(balances).filter(([, balance]) => balance !== 0));
}
