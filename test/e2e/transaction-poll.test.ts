import nock from 'nock';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pollDueTransactions } from '../../src/workers/poll-transactions.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { FIXTURE_INTENT, openInvoice } from '../support/flow.ts';
import { startHangingWeb, startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { stripeFixture } from '../support/stripe.ts';
import { NO_ANSWER_DELAY_MS } from '../support/timeouts.ts';

const SCHEDULE = [60, 300, 3600, 86400];
const log = pino({ level: 'silent' });

/** Unknown outcomes are never retried blindly: the sweep asks the gateway by our reference (PRODUCT.md §4). */
describe('transaction.poll', () => {
  let app: TestApp;
  /** The web process that charges each invoice whose charge never gets an answer. */
  let hanging: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
    hanging = await startHangingWeb(app);
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await hanging.stop();
    await stopOfflineTestApp(app);
  });

  async function unknownCharge() {
    const { invoice } = await openInvoice(app);
    nock(STRIPE_API_BASE).post('/v1/payment_intents').delay(NO_ANSWER_DELAY_MS).reply(200, FIXTURE_INTENT);
    const charged = await hanging.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction.status).toBe('unknown');
    nock.abortPendingRequests();
    nock.cleanAll();
    return {
      invoice,
      transaction: charged.body.transaction,
      created: new Date(charged.body.transaction.created_at),
    };
  }

  const sweep = (at: Date) =>
    pollDueTransactions(app.runtime.db, 'system', app.runtime, SCHEDULE, log, { now: at });
  const later = (from: Date, seconds: number) => new Date(from.getTime() + seconds * 1000);
  const search = (reference: string, data: unknown[]) =>
    nock(STRIPE_API_BASE)
      .get('/v1/payment_intents/search')
      .query((q) => String(q.query) === `metadata['billhook_reference']:'${reference}'`)
      .reply(200, { object: 'search_result', data, has_more: false });

  it('checks nothing before the first step, then settles an unknown charge with what Stripe confirms', async () => {
    const { invoice, transaction, created } = await unknownCharge();
    expect(await sweep(later(created, 30))).toEqual([]);

    search(transaction.id, [
      { ...FIXTURE_INTENT, id: 'pi_found_by_reference', metadata: { billhook_reference: transaction.id } },
    ]);
    expect(await sweep(later(created, 61))).toEqual([
      { transactionId: transaction.id, status: 'succeeded', exhausted: false },
    ]);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 4620,
    });
    expect(await sweep(later(created, 400))).toEqual([]);
  });

  it('keeps a young "not found" open, frees the invoice once the gateway confirms it never saw the charge', async () => {
    const { invoice, transaction, created } = await unknownCharge();
    search(transaction.id, []);
    expect(await sweep(later(created, 61))).toEqual([
      { transactionId: transaction.id, status: 'unknown', exhausted: false },
    ]);
    search(transaction.id, []);
    expect(await sweep(later(created, 301))).toEqual([
      { transactionId: transaction.id, status: 'unknown', exhausted: false },
    ]);
    // Stripe's search "can be up to an hour behind during outages" (its API reference of
    // /v1/payment_intents/search): at the 1 h check an empty search still proves nothing, and the
    // invoice stays locked (before: failed not_found_at_gateway, the invoice free for a second charge).
    search(transaction.id, []);
    expect(await sweep(later(created, 3601))).toEqual([
      { transactionId: transaction.id, status: 'unknown', exhausted: false },
    ]);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.status).toBe('OPEN');
    const again = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect([again.status, again.body.error?.code]).toEqual([409, 'charge_in_progress']);
    search(transaction.id, []);
    expect(await sweep(later(created, 86401))).toEqual([
      { transactionId: transaction.id, status: 'failed', exhausted: false },
    ]);
    const txn = (await app.api('GET', '/v1/transactions?limit=100')).body.data.find(
      (t: { id: string }) => t.id === transaction.id,
    );
    expect(txn).toMatchObject({ status: 'failed', failure_code: 'not_found_at_gateway' });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.status).toBe('OPEN');
  });

  it('books nothing for a payment intent found for another amount: unknown, one amount_mismatch (as the other gateways)', async () => {
    const { invoice, transaction, created } = await unknownCharge();
    // The real succeeded PaymentIntent, found by our reference, but for 40.00 EUR of the 46.20 charged.
    search(transaction.id, [
      {
        ...FIXTURE_INTENT,
        id: 'pi_other_amount',
        amount: 4000,
        amount_received: 4000,
        metadata: { billhook_reference: transaction.id },
      },
    ]);
    // Before: succeeded, the 46.20 invoice PAID for a payment Stripe reports as 40.00.
    expect(await sweep(later(created, 61))).toEqual([
      { transactionId: transaction.id, status: 'unknown', exhausted: false },
    ]);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_paid: 0,
    });
    const exceptions = (await app.api('GET', '/v1/reconciliation-exceptions')).body.data;
    expect(exceptions.filter((x: { transaction: string }) => x.transaction === transaction.id)).toEqual([
      expect.objectContaining({
        kind: 'amount_mismatch',
        status: 'open',
        gateway: 'stripe',
        details: { amount: '4000', currency: 'EUR' },
      }),
    ]);
    // The schedule runs out with the answer unchanged: still nothing booked, the attempt left to a person.
    for (const [i, step] of SCHEDULE.slice(1).entries()) {
      search(transaction.id, [
        { ...FIXTURE_INTENT, id: 'pi_other_amount', amount: 4000, amount_received: 4000 },
      ]);
      expect(await sweep(later(created, step + 1))).toEqual([
        { transactionId: transaction.id, status: 'unknown', exhausted: i === SCHEDULE.length - 2 },
      ]);
    }
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.amount_paid).toBe(0);
  });

  it('turns a charge still unclear after the last check into one reconciliation exception, never a second charge', async () => {
    const { transaction, created } = await unknownCharge();
    for (const [i, step] of SCHEDULE.entries()) {
      nock(STRIPE_API_BASE)
        .get('/v1/payment_intents/search')
        .query(true)
        .reply(503, { error: { type: 'api_error', message: 'unavailable' } });
      const [result] = await sweep(later(created, step + 1));
      expect(result).toEqual({
        transactionId: transaction.id,
        status: 'unknown',
        exhausted: i === SCHEDULE.length - 1,
      });
    }
    expect(await sweep(later(created, 10 * 86400))).toEqual([]);
    const exceptions = (await app.api('GET', '/v1/reconciliation-exceptions')).body.data;
    expect(exceptions.filter((x: { transaction: string }) => x.transaction === transaction.id)).toEqual([
      expect.objectContaining({ kind: 'unknown_outcome', status: 'open', gateway: 'stripe' }),
    ]);
  });

  it('a check by hand (billhook reconcile) uses none of the scheduled checks: the schedule still has all of its own', async () => {
    const { transaction, created } = await unknownCharge();
    // Stripe does not answer any lookup (other open charges of this file are asked too).
    nock(STRIPE_API_BASE)
      .get('/v1/payment_intents/search')
      .query(true)
      .reply(503, { error: { type: 'api_error', message: 'unavailable' } })
      .persist();
    const attemptsOf = async () =>
      (
        await app.runtime.db
          .selectFrom('transactions')
          .select('poll_attempts')
          .where('id', '=', transaction.id)
          .executeTakeFirstOrThrow()
      ).poll_attempts;
    // More checks by hand than the schedule has steps, within its first minute: none counts.
    for (let i = 0; i <= SCHEDULE.length; i++) {
      const results = await pollDueTransactions(app.runtime.db, 'system', app.runtime, SCHEDULE, log, {
        all: true,
        now: later(created, 10 + i),
      });
      expect(results.find((r) => r.transactionId === transaction.id)).toEqual({
        transactionId: transaction.id,
        status: 'unknown',
        exhausted: false,
      });
    }
    expect(await attemptsOf()).toBe(0);
    // The schedule's first check is still due at 60 s and counts as its first of four.
    const [first] = await sweep(later(created, 61));
    expect(first).toEqual({ transactionId: transaction.id, status: 'unknown', exhausted: false });
    expect(await attemptsOf()).toBe(1);
    const exceptions = (await app.api('GET', '/v1/reconciliation-exceptions')).body.data;
    expect(exceptions.filter((x: { transaction: string }) => x.transaction === transaction.id)).toEqual([]);
  });

  it('logs each failed gateway call at warn with the ids to act on: a timeout, an unclear status check, a decline', async () => {
    const { invoice, transaction, created } = await unknownCharge();
    const failures = (logs = app.logs) => logs.filter((l) => l.msg === 'gateway call failed');
    // The charge that timed out was sent by the hanging web process: its line is in that one's log.
    expect(failures(hanging.logs)).toContainEqual(
      expect.objectContaining({
        level: 40,
        gateway: 'stripe',
        operation: 'charge',
        transactionId: transaction.id,
        invoiceId: invoice.id,
        outcome: 'unknown',
        reason: expect.stringMatching(/TimeoutError|timeout/i),
      }),
    );
    nock(STRIPE_API_BASE)
      .get('/v1/payment_intents/search')
      .query(true)
      .reply(503, { error: { type: 'api_error', message: 'unavailable' } })
      .persist();
    await sweep(later(created, 61));
    expect(failures()).toContainEqual(
      expect.objectContaining({
        level: 40,
        gateway: 'stripe',
        operation: 'fetchTransaction',
        transactionId: transaction.id,
        invoiceId: invoice.id,
        attempt: 1,
        outcome: 'unknown',
      }),
    );
    nock.cleanAll();

    const declined = await openInvoice(app);
    nock(STRIPE_API_BASE)
      .post('/v1/payment_intents')
      .reply(402, stripeFixture('api.payment_intent.create.card_declined.error.json'));
    const charged = await app.api('POST', `/v1/invoices/${declined.invoice.id}/charge`, {});
    expect(charged.body.transaction.status).toBe('failed');
    expect(failures()).toContainEqual(
      expect.objectContaining({
        level: 40,
        gateway: 'stripe',
        operation: 'charge',
        transactionId: charged.body.transaction.id,
        invoiceId: declined.invoice.id,
        outcome: 'declined',
        code: 'card_declined',
      }),
    );
    // Never a secret, the stored card's token or a body.
    const text = JSON.stringify(failures());
    for (const secret of ['sk_test_billhook', 'pm_1RWJtyQ8iJWBZFaM7VUymbOi', 'client_secret'])
      expect(text).not.toContain(secret);
  });
});
