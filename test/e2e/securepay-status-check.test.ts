/**
 * SecurePay's status check, the repeat of the payment with the same Idempotency-Key and orderId:
 * - it is made only while the attempt is younger than SAFE_REPEAT_WINDOW_MS (1 hour): how long
 *   SecurePay keeps a key is undocumented, and a repeat after it forgot could charge the card twice.
 *   Later checks answer unknown without a call, and the last one raises `unknown_outcome`. (Before:
 *   the payment was sent again 24 hours after the first.)
 * - a paid answer for another amount books nothing and raises `amount_mismatch`.
 */
import { sql } from 'kysely';
import nock from 'nock';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCharge } from '../../src/payments/charges.ts';
import { longestChargeExchangeMs } from '../../src/payments/poll.ts';
import { pollDueTransactions } from '../../src/workers/poll-transactions.ts';
import { PAID, securepayFixture } from '../gateways/securepay/fixtures.ts';
import type { TestApp } from '../support/app.ts';
import { ledgerByCode, openInvoice } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { waitFor } from '../support/wait.ts';

const API = 'https://payments.status-check.securepay.test';
const AUTH_ORIGIN = 'https://auth.status-check.securepay.test';
const CUSTOMER_CODE = PAID.customerCode as string;
const PAYMENTS = `/v2/customers/${CUSTOMER_CODE}/payments`;
const SCHEDULE = [60, 300, 3600, 86400];
const log = pino({ level: 'silent' });

describe('SecurePay status check (the idempotent repeat)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({
      SECUREPAY_CLIENT_ID: 'sp-status-client',
      SECUREPAY_CLIENT_SECRET: 'sp-status-secret',
      SECUREPAY_MERCHANT_CODE: '5AR0055',
      SECUREPAY_API_BASE: API,
      SECUREPAY_AUTH_URL: `${AUTH_ORIGIN}/oauth/token`,
    });
  }, 120_000);
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** A 100.00 AUD charge whose answer is lost (HTTP 500 → unknown); `sweep` runs the status checks `seconds` after it. */
  async function lostCharge() {
    nock(AUTH_ORIGIN)
      .post('/oauth/token')
      .optionally()
      .times(10)
      .reply(200, { ...securepayFixture('oauth.token.constructed.json'), access_token: 'sp-status' });
    const { invoice } = await openInvoice(app, {
      amount: 10000,
      currency: 'aud',
      gateway: 'securepay',
      token: PAID.token as string,
      gatewayCustomerId: CUSTOMER_CODE,
    });
    nock(API).post(PAYMENTS).reply(500, {});
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    const txn = charged.body.transaction;
    expect(txn).toMatchObject({ status: 'unknown', amount: 10000 });
    const created = new Date(txn.created_at).getTime();
    const sweep = async (seconds: number) =>
      (
        await pollDueTransactions(app.runtime.db, 'system', app.runtime, SCHEDULE, log, {
          now: new Date(created + seconds * 1000),
        })
      ).filter((r) => r.transactionId === txn.id);
    /** Answers the repeat of this attempt's payment once with `status` and `body`, noting when it was sent. */
    const sent: number[] = [];
    const repeatAnswers = (status: number, body: object, at: number) =>
      nock(API)
        .post(PAYMENTS, (b) => b.orderId === txn.id)
        .reply(() => {
          sent.push(at);
          return [status, body];
        });
    return { invoice, txn, sweep, sent, repeatAnswers };
  }

  const exceptionsOf = async (transactionId: string) =>
    ((await app.api('GET', '/v1/reconciliation-exceptions')).body.data as { transaction: string }[]).filter(
      (x) => x.transaction === transactionId,
    );

  it('repeats the payment within the hour only; a day later it sends nothing and the attempt goes to a person', async () => {
    const before = await ledgerByCode(app);
    const { invoice, txn, sweep, sent, repeatAnswers } = await lostCharge();
    const conflict = { errors: [{ code: 'CONFLICT', detail: 'in progress' }] };
    for (const at of [61, 301]) {
      repeatAnswers(409, conflict, at);
      expect(await sweep(at)).toEqual([{ transactionId: txn.id, status: 'unknown', exhausted: false }]);
    }
    // From the hour on, a paid answer would be there to take: none is asked for.
    repeatAnswers(201, { ...PAID, orderId: txn.id, amount: 10000 }, 3601);
    expect(await sweep(3601)).toEqual([{ transactionId: txn.id, status: 'unknown', exhausted: false }]);
    expect(await sweep(86401)).toEqual([{ transactionId: txn.id, status: 'unknown', exhausted: true }]);
    expect(sent).toEqual([61, 301]);

    expect((await app.api('GET', `/v1/transactions/${txn.id}`)).body).toMatchObject({ status: 'unknown' });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_paid: 0,
    });
    const ledger = await ledgerByCode(app);
    expect(ledger['gateway_clearing:securepay AUD'] ?? 0).toBe(before['gateway_clearing:securepay AUD'] ?? 0);
    expect(await exceptionsOf(txn.id)).toEqual([
      expect.objectContaining({ kind: 'unknown_outcome', status: 'open', gateway: 'securepay' }),
    ]);
  });

  it('books nothing for a paid answer of 50.00 to the repeat of a 100.00 payment: unknown, amount_mismatch', async () => {
    const before = await ledgerByCode(app);
    const { invoice, txn, sweep, repeatAnswers } = await lostCharge();
    repeatAnswers(201, { ...PAID, orderId: txn.id, amount: 5000 }, 61);
    expect(await sweep(61)).toEqual([{ transactionId: txn.id, status: 'unknown', exhausted: false }]);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_paid: 0,
      amount_due: 10000,
    });
    const ledger = await ledgerByCode(app);
    expect(ledger['gateway_clearing:securepay AUD'] ?? 0).toBe(before['gateway_clearing:securepay AUD'] ?? 0);
    expect(await exceptionsOf(txn.id)).toEqual([
      expect.objectContaining({
        kind: 'amount_mismatch',
        status: 'open',
        gateway: 'securepay',
        details: { amount: '5000', currency: 'AUD' },
      }),
    ]);
  });

  it('a check by hand (billhook reconcile) while the payment is still at SecurePay repeats nothing', async () => {
    nock(AUTH_ORIGIN)
      .post('/oauth/token')
      .optionally()
      .times(10)
      .reply(200, { ...securepayFixture('oauth.token.constructed.json'), access_token: 'sp-status' });
    const { invoice } = await openInvoice(app, {
      amount: 10000,
      currency: 'aud',
      gateway: 'securepay',
      token: PAID.token as string,
      gatewayCustomerId: CUSTOMER_CODE,
    });
    // SecurePay answers only once the operator's reconcile is over (a slow gateway: the moment an
    // operator reconciles).
    const sent: string[] = [];
    let answer: () => void = () => undefined;
    const reconciled = new Promise<void>((resolve) => {
      answer = resolve;
    });
    nock(API)
      .post(PAYMENTS)
      .times(5)
      .reply(async (request: Request) => {
        const { orderId } = (await request.json()) as { orderId: string };
        sent.push(orderId);
        if (sent.length === 1) await reconciled;
        return [201, { ...PAID, orderId, amount: 10000 }];
      });
    const charging = app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    const attempt = await waitFor('the payment to be at SecurePay', async () =>
      sent.length === 1
        ? app.runtime.db
            .selectFrom('transactions')
            .selectAll()
            .where('invoice_id', '=', invoice.id)
            .executeTakeFirst()
        : undefined,
    );
    const checked = await pollDueTransactions(app.runtime.db, 'cli', app.runtime, SCHEDULE, log, {
      all: true,
    });
    answer();
    expect(checked.filter((r) => r.transactionId === attempt.id)).toEqual([]);
    const charged = await charging;
    expect(charged.body).toMatchObject({
      invoice: { status: 'PAID' },
      transaction: { id: attempt.id, status: 'succeeded' },
    });
    // Once, by the charge (the check by hand asked again only about this file's earlier charges).
    expect(sent.filter((orderId) => orderId === attempt.id)).toEqual([attempt.id]);
  });

  it('the scheduled check waits as long as the payment call may last (token, call, a 401 and both again) before repeating it', async () => {
    nock(AUTH_ORIGIN)
      .post('/oauth/token')
      .optionally()
      .times(10)
      .reply(200, { ...securepayFixture('oauth.token.constructed.json'), access_token: 'sp-status' });
    const { invoice } = await openInvoice(app, {
      amount: 10000,
      currency: 'aud',
      gateway: 'securepay',
      token: PAID.token as string,
      gatewayCustomerId: CUSTOMER_CODE,
    });
    // Committed pending, its call not answered yet (with 30 s a request it may last 120 s).
    const attempt = await startCharge(app.runtime.db, 'system', app.runtime, invoice.id);
    const created = attempt.created_at.getTime();
    const sent: number[] = [];
    nock(API)
      .post(PAYMENTS, (b) => b.orderId === attempt.id)
      .reply(() => {
        sent.push(Date.now());
        return [201, { ...PAID, orderId: attempt.id, amount: 10000 }];
      });
    const sweep = async (seconds: number) =>
      (
        await pollDueTransactions(app.runtime.db, 'system', app.runtime, SCHEDULE, log, {
          now: new Date(created + seconds * 1000),
          inFlightMs: longestChargeExchangeMs(30_000),
        })
      ).filter((r) => r.transactionId === attempt.id);
    // At the schedule's first step (60 s) its call may still be at SecurePay: no repeat, no step used.
    expect(await sweep(61)).toEqual([]);
    expect(await sweep(119)).toEqual([]);
    expect(sent).toEqual([]);
    // Past 120 s its call has ended one way or another: the first check repeats it, and books it paid.
    expect(await sweep(121)).toEqual([{ transactionId: attempt.id, status: 'succeeded', exhausted: false }]);
    expect(sent).toHaveLength(1);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({ status: 'PAID' });
  });

  /*
   * The wait counts from when the call could start: after startCharge took the invoice's lock, not
   * from its transaction's start (the row's created_at), which a wait for that lock puts earlier. A
   * charge that waited behind another writer was repeated 119.999 s after its call could start.
   */
  it('counts the wait from when the call could start, after a wait for the invoice lock', async () => {
    nock(AUTH_ORIGIN)
      .post('/oauth/token')
      .optionally()
      .times(10)
      .reply(200, { ...securepayFixture('oauth.token.constructed.json'), access_token: 'sp-status' });
    const { invoice } = await openInvoice(app, {
      amount: 10000,
      currency: 'aud',
      gateway: 'securepay',
      token: PAID.token as string,
      gatewayCustomerId: CUSTOMER_CODE,
    });
    const db = app.runtime.db;
    // Another writer holds the invoice (a long renewal, a settlement import, …).
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => {
      locked = resolve;
    });
    let releasedAt = 0;
    const holder = db.transaction().execute(async (trx) => {
      await sql`SELECT id FROM invoices WHERE id = ${invoice.id} FOR UPDATE`.execute(trx);
      locked();
      await released;
      releasedAt = Date.now();
    });
    await isLocked;
    const charging = startCharge(db, 'system', app.runtime, invoice.id);
    await waitFor('startCharge waits for the invoice lock', async () => {
      const { rows } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE wait_event_type = 'Lock' AND query ILIKE '%from "invoices"%for update%'`.execute(db);
      return rows[0]!.n > 0;
    });
    release();
    await holder;
    const attempt = await charging;
    // Its row's created_at is its transaction's start, before the wait.
    expect(releasedAt).toBeGreaterThan(attempt.created_at.getTime());
    const sent: number[] = [];
    nock(API)
      .post(PAYMENTS, (b) => b.orderId === attempt.id)
      .reply(() => {
        sent.push(Date.now());
        return [201, { ...PAID, orderId: attempt.id, amount: 10000 }];
      });
    const sweepAt = async (at: number) =>
      (
        await pollDueTransactions(db, 'system', app.runtime, SCHEDULE, log, {
          now: new Date(at),
          inFlightMs: longestChargeExchangeMs(30_000),
        })
      ).filter((r) => r.transactionId === attempt.id);
    // Its call started after releasedAt and may last 120 s from then: no repeat just before.
    expect(await sweepAt(releasedAt + longestChargeExchangeMs(30_000) - 1)).toEqual([]);
    expect(sent).toEqual([]);
    expect(await sweepAt(releasedAt + longestChargeExchangeMs(30_000) + 1_000)).toEqual([
      { transactionId: attempt.id, status: 'succeeded', exhausted: false },
    ]);
    expect(sent).toHaveLength(1);
  });

  /*
   * Two checks of one attempt at once (a sweep slower than the minute between sweeps, or `billhook
   * reconcile` beside it): the second leaves it alone while the first's repeat waits for SecurePay.
   * Before, both sent the 100.00 AUD payment, with the same key, at the same time.
   */
  it('a check by hand while the sweep’s repeat waits for SecurePay leaves the attempt alone: one payment sent', async () => {
    const { txn, sweep } = await lostCharge();
    let sent = 0;
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => {
      answer = resolve;
    });
    nock(API)
      .post(PAYMENTS, (b) => b.orderId === txn.id)
      .times(2)
      .reply(async () => {
        sent += 1;
        if (sent === 1) await answered;
        return [201, { ...PAID, orderId: txn.id, amount: 10000 }];
      });
    const created = new Date(txn.created_at).getTime();
    const swept = sweep(121);
    await waitFor('the sweep’s repeat is at SecurePay', async () => sent === 1);
    const byHand = await pollDueTransactions(app.runtime.db, 'cli', app.runtime, SCHEDULE, log, {
      now: new Date(created + 130_000),
      all: true,
    });
    expect(byHand.filter((r) => r.transactionId === txn.id)).toEqual([]);
    answer();
    expect(await swept).toEqual([{ transactionId: txn.id, status: 'succeeded', exhausted: false }]);
    expect(sent).toBe(1);
  });

  /*
   * An attempt left unknown by our side's timeout may still be worked on at SecurePay: it is not
   * repeated before its call's longest time (4 × 30 s) from when the call could start either. Before:
   * the 60 s check repeated the 100.00 AUD payment beside it.
   */
  it('an attempt left unknown is not repeated while its call may still be at SecurePay', async () => {
    const { txn, repeatAnswers, sent } = await lostCharge();
    const created = new Date(txn.created_at).getTime();
    const sweepAt = async (seconds: number) =>
      (
        await pollDueTransactions(app.runtime.db, 'system', app.runtime, SCHEDULE, log, {
          now: new Date(created + seconds * 1000),
          inFlightMs: longestChargeExchangeMs(30_000),
        })
      ).filter((r) => r.transactionId === txn.id);
    expect(await sweepAt(61)).toEqual([]);
    expect(sent).toEqual([]);
    repeatAnswers(201, { ...PAID, orderId: txn.id, amount: 10000 }, 122);
    expect(await sweepAt(122)).toEqual([{ transactionId: txn.id, status: 'succeeded', exhausted: false }]);
    expect(sent).toEqual([122]);
  });
});
