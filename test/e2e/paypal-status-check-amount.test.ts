/**
 * PayPal's status checks hold the capture's `amount` against the charge: the repeat of a lost create
 * (same PayPal-Request-Id) and the capture lookup (`GET /v2/payments/captures/{id}`) of a pending
 * charge. A capture for another amount books nothing, leaves the attempt as it was and raises one
 * `amount_mismatch` exception. (Before: the capture's status alone decided, and 30.00 USD was
 * booked paid for a capture of 25.07.)
 */
import nock from 'nock';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pollDueTransactions } from '../../src/workers/poll-transactions.ts';
import { nockToken, paypalFixture, TOKEN } from '../gateways/paypal/fixtures.ts';
import type { TestApp } from '../support/app.ts';
import { ledgerByCode, openInvoice } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';

const PAYPAL_API_BASE = 'https://paypal.status-check-amount.test';
const SCHEDULE = [60, 300, 3600, 86400];
const log = pino({ level: 'silent' });
/** The real sandbox order of a vaulted-card charge: its capture moved 25.07 USD. */
const VAULTED = paypalFixture('api.orders.create.vaulted_card_capture.completed.json');

describe('PayPal status checks: the amount of the capture', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({
      PAYPAL_CLIENT_ID: 'client-id',
      PAYPAL_CLIENT_SECRET: 'client-secret',
      PAYPAL_WEBHOOK_ID: '8PT597110X687430LKGECATA',
      PAYPAL_API_BASE,
    });
  }, 120_000);
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** A 30.00 USD invoice charged on PayPal, the create answered with `reply`. */
  async function charge(reply: [number, unknown]) {
    nockToken(PAYPAL_API_BASE).optionally().reply(200, TOKEN);
    const { invoice } = await openInvoice(app, {
      amount: 3000,
      currency: 'usd',
      gateway: 'paypal',
      token: '8kk8451t',
    });
    nock(PAYPAL_API_BASE)
      .post('/v2/checkout/orders')
      .reply(reply[0], reply[1] as nock.Body);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    const txn = charged.body.transaction;
    const created = new Date(txn.created_at).getTime();
    const sweep = async (seconds: number) =>
      (
        await pollDueTransactions(app.runtime.db, 'system', app.runtime, SCHEDULE, log, {
          now: new Date(created + seconds * 1000),
        })
      ).filter((r) => r.transactionId === txn.id);
    return { invoice, txn, sweep };
  }

  async function expectNothingBooked(
    invoiceId: string,
    transactionId: string,
    before: Record<string, number>,
  ) {
    expect((await app.api('GET', `/v1/invoices/${invoiceId}`)).body).toMatchObject({
      status: 'OPEN',
      amount_paid: 0,
      amount_due: 3000,
    });
    const ledger = await ledgerByCode(app);
    expect(ledger['gateway_clearing:paypal USD'] ?? 0).toBe(before['gateway_clearing:paypal USD'] ?? 0);
    const exceptions = (await app.api('GET', '/v1/reconciliation-exceptions')).body.data;
    expect(exceptions.filter((x: { transaction: string }) => x.transaction === transactionId)).toEqual([
      expect.objectContaining({
        kind: 'amount_mismatch',
        status: 'open',
        gateway: 'paypal',
        details: { amount: '2507', currency: 'USD' },
      }),
    ]);
  }

  it('the repeat of a lost create answered with a capture of 25.07 for a charge of 30.00: unknown, amount_mismatch', async () => {
    const before = await ledgerByCode(app);
    const { invoice, txn, sweep } = await charge([500, { name: 'INTERNAL_SERVER_ERROR' }]);
    expect(txn).toMatchObject({ status: 'unknown', amount: 3000 });
    nock(PAYPAL_API_BASE)
      .post('/v2/checkout/orders', (body) => body.purchase_units[0].invoice_id === txn.id)
      .matchHeader('paypal-request-id', txn.id)
      .reply(200, VAULTED);
    expect(await sweep(61)).toEqual([{ transactionId: txn.id, status: 'unknown', exhausted: false }]);
    expect((await app.api('GET', `/v1/transactions/${txn.id}`)).body).toMatchObject({ status: 'unknown' });
    await expectNothingBooked(invoice.id, txn.id, before);
  });

  it('the lookup of a pending capture that completed for 25.07 of a charge of 30.00: still pending, amount_mismatch', async () => {
    const before = await ledgerByCode(app);
    const pending = structuredClone(VAULTED);
    const capture = pending.purchase_units[0].payments.captures[0];
    Object.assign(capture, {
      id: '1PX75046TB4721930',
      status: 'PENDING',
      amount: { currency_code: 'USD', value: '30.00' },
    });
    const { invoice, txn, sweep } = await charge([201, pending]);
    expect(txn).toMatchObject({ status: 'pending', gateway_transaction_id: '1PX75046TB4721930' });
    nock(PAYPAL_API_BASE)
      .get('/v2/payments/captures/1PX75046TB4721930')
      .reply(200, { ...VAULTED.purchase_units[0].payments.captures[0], id: '1PX75046TB4721930' });
    expect(await sweep(61)).toEqual([{ transactionId: txn.id, status: 'pending', exhausted: false }]);
    await expectNothingBooked(invoice.id, txn.id, before);
  });
});
