import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createInvoice, finalizeInvoice } from '../../src/billing/invoices.ts';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import {
  API_PATH,
  type ApiBody,
  anetFixture,
  LOGIN_ID,
  TRANSACTION_KEY,
  withBom,
} from '../gateways/authorizenet/support.ts';
import type { TestApp } from '../support/app.ts';
import { ledgerIn } from '../support/collection.ts';
import { openInvoice } from '../support/flow.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';

const SECRET_KEY = randomBytes(32).toString('hex');
/** A customer profile / payment profile of the Authorize.Net fixtures. */
const TOKEN = '40338125/1000177237';

/**
 * An Authorize.Net account processes only the currencies getMerchantDetails names (the real sample:
 * `["USD"]`); a transaction in another currency is refused by Authorize.Net (reason 39). billhook
 * refuses it before anything exists, through the API (422) and in the collection sweep (one failed
 * attempt, one exception, never sent again). When getMerchantDetails cannot be read, nothing is
 * refused: the charge is sent as before. Each test has its own gateway account (own API base), so
 * each starts with no currencies cached.
 */
describe('Authorize.Net: a currency the account does not process', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({ BILLHOOK_SECRET_KEY: SECRET_KEY });
    // The sweep is driven by the test alone.
    await app.runtime.boss.unschedule(QUEUES.invoiceCharge);
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  afterEach(expectEveryMockUsed);
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** A new Authorize.Net gateway account whose API is `base` (nock). */
  async function anetAccount(base: string): Promise<string> {
    const created = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'authorizenet',
      name: base,
      mode: 'test',
      credentials: { api_login_id: LOGIN_ID, transaction_key: TRANSACTION_KEY },
      api_base: base,
    });
    expect(created.status).toBe(201);
    return created.body.id;
  }

  /** getMerchantDetails on `base` answers the real sample (`currencies: ["USD"]`), once. */
  function usdOnly(base: string) {
    nock(base)
      .post(API_PATH, (body: ApiBody) => 'getMerchantDetailsRequest' in body)
      .reply(200, withBom(anetFixture('api.getMerchantDetails.json')));
  }

  /**
   * Watches createTransactionRequest on `base` without requiring it: answers the real approval with
   * `transId`, and records each request (an empty list proves no transaction was sent).
   */
  function transactions(base: string, transId = '40005915599') {
    const seen: ApiBody[] = [];
    const approved = anetFixture('api.createTransaction.authCapture.approved.json');
    approved.transactionResponse.transId = transId;
    nock(base)
      .post(API_PATH, (body: ApiBody) => {
        if (!('createTransactionRequest' in body)) return false;
        seen.push(body.createTransactionRequest.transactionRequest);
        return true;
      })
      .optionally()
      .reply(200, withBom(approved));
    return seen;
  }

  async function rowsOf(invoiceId: string) {
    const db = app.runtime.db;
    return {
      transactions: await db
        .selectFrom('transactions')
        .selectAll()
        .where('invoice_id', '=', invoiceId)
        .execute(),
      refunds: await db.selectFrom('refunds').selectAll().where('invoice_id', '=', invoiceId).execute(),
    };
  }

  it('refuses POST /v1/invoices/:id/charge of CAD 100.00 on a USD-only account with 422 naming CAD and USD: no attempt, no transaction sent; a USD charge still goes', async () => {
    const base = 'https://anet-usd-only.test';
    const account = await anetAccount(base);
    const { invoice } = await openInvoice(app, {
      amount: 10_000,
      currency: 'cad',
      gateway: 'authorizenet',
      token: TOKEN,
      gatewayAccount: account,
    });
    const ledger = await ledgerIn(app, 'CAD');
    usdOnly(base);
    const sent = transactions(base);

    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(422);
    expect(charged.body.error).toMatchObject({
      type: 'invalid_request',
      code: 'amount_not_representable',
      message: expect.stringContaining('does not process CAD'),
      fields: {
        currency: expect.stringMatching(/CAD.*USD/),
      },
    });
    expect(charged.body.error.message).toContain('USD');
    expect(sent).toEqual([]);
    expect(await rowsOf(invoice.id)).toEqual({ transactions: [], refunds: [] });
    expect(await ledgerIn(app, 'CAD')).toEqual(ledger);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_due: 10_000,
      payment_attempts: 0,
    });

    // The account's currencies are cached: a USD 100.00 charge asks nothing more and is sent.
    const usd = await openInvoice(app, {
      amount: 10_000,
      currency: 'usd',
      gateway: 'authorizenet',
      token: TOKEN,
      gatewayAccount: account,
    });
    const paid = await app.api('POST', `/v1/invoices/${usd.invoice.id}/charge`, {});
    expect(paid.status).toBe(200);
    expect(paid.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 10_000 });
    expect(sent).toMatchObject([{ amount: '100.00', currencyCode: 'USD' }]);
  });

  it('asks getMerchantDetails before the invoice is locked: while a slow answer is awaited, another transaction takes the invoice lock at once; the CAD 100.00 charge is then refused 422', async () => {
    const base = 'https://anet-slow-details.test';
    const account = await anetAccount(base);
    const { invoice } = await openInvoice(app, {
      amount: 10_000,
      currency: 'cad',
      gateway: 'authorizenet',
      token: TOKEN,
      gatewayAccount: account,
    });
    // getMerchantDetails answers (USD only) only when the test lets it: a slow account.
    let asked!: () => void;
    const askedNow = new Promise<void>((resolve) => {
      asked = resolve;
    });
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => {
      answer = resolve;
    });
    nock(base)
      .post(API_PATH, (body: ApiBody) => 'getMerchantDetailsRequest' in body)
      .reply(async () => {
        asked();
        await answered;
        return [200, withBom(anetFixture('api.getMerchantDetails.json'))];
      });
    const sent = transactions(base);
    const charging = app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    await askedNow;
    // Meanwhile the invoice's row lock is free: taken at once (NOWAIT; 55P03 lock_not_available if held).
    const locked = await app.runtime.db
      .transaction()
      .execute((trx) =>
        sql<{ id: string }>`SELECT id FROM invoices WHERE id = ${invoice.id} FOR UPDATE NOWAIT`.execute(trx),
      )
      .finally(answer);
    expect(locked.rows).toEqual([{ id: invoice.id }]);
    const charged = await charging;
    expect(charged.status).toBe(422);
    expect(charged.body.error).toMatchObject({
      code: 'amount_not_representable',
      fields: { currency: expect.stringMatching(/CAD.*USD/) },
    });
    expect(sent).toEqual([]);
    expect(await rowsOf(invoice.id)).toEqual({ transactions: [], refunds: [] });
  });

  it('asks getMerchantDetails for a refund before the invoice is locked: while a slow answer is awaited, another transaction takes the invoice lock at once; the refund of the CAD payment is then refused 422', async () => {
    const base = 'https://anet-slow-details-refund.test';
    const account = await anetAccount(base);
    const { invoice } = await openInvoice(app, {
      amount: 10_000,
      currency: 'cad',
      gateway: 'authorizenet',
      token: TOKEN,
      gatewayAccount: account,
    });
    // Charged while getMerchantDetails could not be read: sent, approved, paid.
    nock(base)
      .post(API_PATH, (body: ApiBody) => 'getMerchantDetailsRequest' in body)
      .reply(500, 'Internal Server Error');
    transactions(base, '40005915611');
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 10_000 });
    const ledger = await ledgerIn(app, 'CAD');

    // The account answers slowly now (USD only), only when the test lets it.
    let asked!: () => void;
    const askedNow = new Promise<void>((resolve) => {
      asked = resolve;
    });
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => {
      answer = resolve;
    });
    nock(base)
      .post(API_PATH, (body: ApiBody) => 'getMerchantDetailsRequest' in body)
      .reply(async () => {
        asked();
        await answered;
        return [200, withBom(anetFixture('api.getMerchantDetails.json'))];
      });
    const sent = transactions(base);
    const refunding = app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 1000 });
    await askedNow;
    // Meanwhile the invoice's row lock is free: taken at once (NOWAIT; 55P03 lock_not_available if held).
    const locked = await app.runtime.db
      .transaction()
      .execute((trx) =>
        sql<{ id: string }>`SELECT id FROM invoices WHERE id = ${invoice.id} FOR UPDATE NOWAIT`.execute(trx),
      )
      .finally(answer);
    expect(locked.rows).toEqual([{ id: invoice.id }]);
    const refunded = await refunding;
    expect(refunded.status).toBe(422);
    expect(refunded.body.error).toMatchObject({
      code: 'amount_not_representable',
      message: expect.stringContaining('Nothing was refunded'),
      fields: { currency: expect.stringMatching(/CAD.*USD/) },
    });
    expect(sent).toEqual([]);
    expect((await rowsOf(invoice.id)).refunds).toEqual([]);
    expect(await ledgerIn(app, 'CAD')).toEqual(ledger);
  });

  it('sends the CAD 100.00 charge as before when getMerchantDetails fails (HTTP 500, no connection): an unknown is never a refusal; its refund is refused once the account says USD only', async () => {
    const base = 'https://anet-details-down.test';
    const account = await anetAccount(base);
    const { invoice } = await openInvoice(app, {
      amount: 10_000,
      currency: 'cad',
      gateway: 'authorizenet',
      token: TOKEN,
      gatewayAccount: account,
    });
    nock(base)
      .post(API_PATH, (body: ApiBody) => 'getMerchantDetailsRequest' in body)
      .reply(500, 'Internal Server Error');
    const sent = transactions(base, '40005915601');
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(200);
    expect(sent).toMatchObject([{ amount: '100.00', currencyCode: 'CAD' }]);
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 10_000, currency: 'CAD' });

    // No connection at all: sent as well.
    const second = await openInvoice(app, {
      amount: 10_000,
      currency: 'cad',
      gateway: 'authorizenet',
      token: TOKEN,
      gatewayAccount: account,
    });
    nock(base)
      .post(API_PATH, (body: ApiBody) => 'getMerchantDetailsRequest' in body)
      .replyWithError('socket hang up');
    const sentAgain = transactions(base, '40005915602');
    const chargedAgain = await app.api('POST', `/v1/invoices/${second.invoice.id}/charge`, {});
    expect(chargedAgain.status).toBe(200);
    expect(sentAgain).toMatchObject([{ amount: '100.00', currencyCode: 'CAD' }]);
    expect(chargedAgain.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 10_000 });

    // getMerchantDetails answers now (USD only): a refund of CAD 10.00 is refused before anything
    // exists, as the charge would be.
    const ledger = await ledgerIn(app, 'CAD');
    usdOnly(base);
    const refundSent = transactions(base);
    const refunded = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 1000 });
    expect(refunded.status).toBe(422);
    expect(refunded.body.error).toMatchObject({
      code: 'amount_not_representable',
      fields: { currency: expect.stringMatching(/CAD.*USD/) },
    });
    // The money is there, but the account can no longer give it back: the message says so, names the
    // payment, and says that nothing was refunded (not that a "transaction" in CAD is refused).
    const [payment] = (await rowsOf(invoice.id)).transactions;
    expect(refunded.body.error.message).toEqual(
      `payment ${payment?.id} was taken in CAD, which Authorize.Net account ${account} no longer processes: it processes USD (its merchant details), and Authorize.Net refunds a payment only in its own currency, so it would refuse this refund. Nothing was refunded; give the money back to the customer outside Authorize.Net`,
    );
    expect(refunded.body.error.fields.currency).toEqual(
      `CAD is not a currency Authorize.Net account ${account} processes any more (it processes USD): payment ${payment?.id} cannot be refunded through it`,
    );
    expect(refundSent).toEqual([]);
    expect((await rowsOf(invoice.id)).refunds).toEqual([]);
    expect(await ledgerIn(app, 'CAD')).toEqual(ledger);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.status).toBe('PAID');
  });

  it('the collection sweep refuses a CAD 100.00 invoice on a USD-only account once: one failed attempt, one exception naming CAD and USD, no dunning, never sent again', async () => {
    const base = 'https://anet-usd-only-sweep.test';
    const account = await anetAccount(base);
    const customer = (await app.api('POST', '/v1/customers', { email: 'ada@example.com' })).body;
    const card = await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway: 'authorizenet',
      gateway_token: TOKEN,
      gateway_account: account,
    });
    expect(card.status).toBe(201);
    const dueAt = new Date('2027-07-01T06:00:00Z');
    const draft = await createInvoice(app.runtime.db, 'system', {
      customerId: customer.id,
      currency: 'CAD',
      lines: [{ description: 'Instalment', unitAmount: 10_000n, quantity: 1, type: 'CHARGE' }],
      chargeAt: dueAt,
    });
    const due = await finalizeInvoice(app.runtime.db, 'system', draft.id);
    const ledger = await ledgerIn(app, 'CAD');
    const config = { DUNNING_RETRY_DAYS: [1, 3], DUNNING_FINAL_ACTION: 'SUSPEND' as const };
    const sweep = (now: Date) => chargeDueInvoices(app.runtime.db, 'scheduler', app.runtime, config, now);
    usdOnly(base);
    const sent = transactions(base);

    const first = await sweep(dueAt);
    const result = first.charged.find((c) => c.invoiceId === due.id);
    expect(result).toMatchObject({ outcome: 'failed', reason: 'amount_not_representable' });
    expect(result?.dunning).toBeUndefined();
    expect(sent).toEqual([]);
    const { transactions: attempts } = await rowsOf(due.id);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({
      id: result?.transactionId,
      status: 'failed',
      failure_code: 'amount_not_representable',
      gateway: 'authorizenet',
      gateway_account: account,
      gateway_transaction_id: null,
      amount: 10_000n,
      currency: 'CAD',
      automatic: true,
    });
    expect(attempts[0]?.failure_message).toMatch(/does not process CAD.*USD/);
    expect((await app.api('GET', `/v1/invoices/${due.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_due: 10_000,
      payment_attempts: 0,
      charge_at: null,
    });
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
    const mine = exceptions.body.data.filter(
      (e: { transaction: string }) => e.transaction === result?.transactionId,
    );
    expect(mine).toEqual([
      expect.objectContaining({ kind: 'amount_not_representable', gateway: 'authorizenet', status: 'open' }),
    ]);
    expect(mine[0].message).toMatch(/invoice .* was not charged: .*does not process CAD.*USD/);
    expect(await ledgerIn(app, 'CAD')).toEqual(ledger);

    // Every dunning retry day passes: nothing claimed, counted or sent again.
    for (const days of [1, 3, 8]) {
      const later = await sweep(new Date(dueAt.getTime() + days * 86_400_000));
      expect(later.charged.map((c) => c.invoiceId)).not.toContain(due.id);
      expect(later.lateFailures.map((s) => s.invoiceId)).not.toContain(due.id);
    }
    expect(sent).toEqual([]);
    expect((await rowsOf(due.id)).transactions).toHaveLength(1);
    expect((await app.api('GET', `/v1/invoices/${due.id}`)).body).toMatchObject({
      status: 'OPEN',
      payment_attempts: 0,
    });
  });
  it('the collection sweep sends CAD 100.00 when getMerchantDetails fails; Authorize.Net refuses it with reason 39 and it is set aside once, never sent again', async () => {
    const base = 'https://anet-details-down-sweep.test';
    const account = await anetAccount(base);
    const customer = (await app.api('POST', '/v1/customers', { email: 'grace@example.com' })).body;
    const card = await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway: 'authorizenet',
      gateway_token: TOKEN,
      gateway_account: account,
    });
    expect(card.status).toBe(201);
    const dueAt = new Date('2027-10-01T06:00:00Z');
    const draft = await createInvoice(app.runtime.db, 'system', {
      customerId: customer.id,
      currency: 'CAD',
      lines: [{ description: 'Instalment', unitAmount: 10_000n, quantity: 1, type: 'CHARGE' }],
      chargeAt: dueAt,
    });
    const due = await finalizeInvoice(app.runtime.db, 'system', draft.id);
    const ledger = await ledgerIn(app, 'CAD');
    const config = { DUNNING_RETRY_DAYS: [1, 3], DUNNING_FINAL_ACTION: 'SUSPEND' as const };
    const sweep = (now: Date) => chargeDueInvoices(app.runtime.db, 'scheduler', app.runtime, config, now);
    nock(base)
      .post(API_PATH, (body: ApiBody) => 'getMerchantDetailsRequest' in body)
      .reply(503, 'Service Unavailable');
    const sent: ApiBody[] = [];
    nock(base)
      .post(API_PATH, (body: ApiBody) => {
        if (!('createTransactionRequest' in body)) return false;
        sent.push(body.createTransactionRequest.transactionRequest);
        return true;
      })
      .reply(200, withBom(anetFixture('api.createTransaction.error39_currency.constructed.json')));

    const first = await sweep(dueAt);
    // Unknown currencies refuse nothing: the charge was sent, and Authorize.Net refused it.
    expect(sent).toMatchObject([{ amount: '100.00', currencyCode: 'CAD' }]);
    const result = first.charged.find((c) => c.invoiceId === due.id);
    expect(result).toMatchObject({ outcome: 'failed', reason: '39' });
    expect(result?.dunning).toBeUndefined();
    const { transactions: attempts } = await rowsOf(due.id);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({
      status: 'failed',
      failure_code: '39',
      amount: 10_000n,
      currency: 'CAD',
    });
    expect((await app.api('GET', `/v1/invoices/${due.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_due: 10_000,
      payment_attempts: 0,
      charge_at: null,
    });
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
    const mine = exceptions.body.data.filter(
      (e: { transaction: string }) => e.transaction === result?.transactionId,
    );
    expect(mine).toEqual([
      expect.objectContaining({ kind: 'amount_not_representable', gateway: 'authorizenet', status: 'open' }),
    ]);
    expect(mine[0].message).toEqual(expect.stringContaining('Authorize.Net refused the charge with code 39'));
    expect(await ledgerIn(app, 'CAD')).toEqual(ledger);

    // Every dunning retry day passes: nothing claimed, counted or sent again.
    for (const days of [1, 3, 8]) {
      const later = await sweep(new Date(dueAt.getTime() + days * 86_400_000));
      expect(later.charged.map((c) => c.invoiceId)).not.toContain(due.id);
      expect(later.lateFailures.map((s) => s.invoiceId)).not.toContain(due.id);
    }
    expect(sent).toHaveLength(1);
    expect((await rowsOf(due.id)).transactions).toHaveLength(1);
  });
  it('a CAD 100.00 invoice the sweep set aside on a USD-only account: its exception is resolved once a bank transfer of 100.00 pays it, the note naming the payment', async () => {
    const base = 'https://anet-usd-only-paid-offline.test';
    const account = await anetAccount(base);
    const customer = (await app.api('POST', '/v1/customers', { email: 'hedy@example.com' })).body;
    const card = await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway: 'authorizenet',
      gateway_token: TOKEN,
      gateway_account: account,
    });
    expect(card.status).toBe(201);
    const dueAt = new Date('2027-11-01T06:00:00Z');
    const draft = await createInvoice(app.runtime.db, 'system', {
      customerId: customer.id,
      currency: 'CAD',
      lines: [{ description: 'Instalment', unitAmount: 10_000n, quantity: 1, type: 'CHARGE' }],
      chargeAt: dueAt,
    });
    const due = await finalizeInvoice(app.runtime.db, 'system', draft.id);
    const config = { DUNNING_RETRY_DAYS: [1, 3], DUNNING_FINAL_ACTION: 'SUSPEND' as const };
    usdOnly(base);
    const sent = transactions(base);
    const swept = await chargeDueInvoices(app.runtime.db, 'scheduler', app.runtime, config, dueAt);
    const attempt = swept.charged.find((c) => c.invoiceId === due.id);
    expect(attempt).toMatchObject({ outcome: 'failed', reason: 'amount_not_representable' });
    expect(sent).toEqual([]);
    const listed = await app.api('GET', '/v1/reconciliation-exceptions?status=open&limit=100');
    const exception = listed.body.data.find(
      (e: { transaction: string }) => e.transaction === attempt?.transactionId,
    );
    expect(exception).toMatchObject({ kind: 'amount_not_representable', gateway: 'authorizenet' });

    const paid = await app.api('POST', `/v1/invoices/${due.id}/payments`, {
      method: 'BANK',
      amount: 10_000,
      reference: 'wire 7731',
    });
    expect(paid.status).toBe(201);
    expect(paid.body).toMatchObject({ status: 'PAID', amount_paid: 10_000, amount_due: 0 });
    // Before: still open, asking a person to void, reissue or record a payment already recorded.
    expect((await app.api('GET', `/v1/reconciliation-exceptions/${exception.id}`)).body).toMatchObject({
      status: 'resolved',
      resolved_at: expect.any(String),
    });
    const payment = await app.runtime.db
      .selectFrom('offline_payments')
      .select('id')
      .where('invoice_id', '=', due.id)
      .executeTakeFirstOrThrow();
    const log = await app.api('GET', `/v1/activities?resource=${exception.id}&limit=100`);
    expect(log.body.data.map((a: { action: string }) => a.action)).toEqual([
      'reconciliation_exception.opened',
      'reconciliation_exception.resolved',
    ]);
    expect(log.body.data[1]).toMatchObject({
      customer: customer.id,
      data: {
        kind: 'amount_not_representable',
        note: `invoice ${due.id} was paid by offline payment ${payment.id} (BANK) (10000 CAD paid in all): nothing is left to charge`,
      },
    });
    expect(sent).toEqual([]);
  });
});
