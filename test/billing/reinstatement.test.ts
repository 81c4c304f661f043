import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cancelLocked } from '../../src/billing/cancellation.ts';
import { periodAt } from '../../src/billing/periods.ts';
import { lockSubscription, renewDueSubscriptions, renewSubscription } from '../../src/billing/renewal.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { invoiceRemainingCycles } from '../../src/billing/terms.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { STRIPE_API_BASE, startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, ledgerIn } from '../support/collection.ts';
import { intentEchoing } from '../support/flow.ts';
import { insertPlan } from '../support/plans.ts';
import { deliverStripe, paymentIntentSucceeded } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

const DAY = 86_400_000;
const MINUTE = 60_000;
/** Dunning: one retry two days after the first failure; the second failure suspends. */
const DUNNING = { DUNNING_RETRY_DAYS: [2], DUNNING_FINAL_ACTION: 'SUSPEND' as const };

/**
 * A subscription dunning suspended and reinstated by a payment (billing/reinstate.ts) resumes as a
 * reactivation by hand does (`resumeSuspended`): the periods it missed while suspended are not
 * billed, a settled term's unpaid invoices of them are voided, and with BILL_SUSPENDED_SUBSCRIPTIONS
 * on (suspended periods billed) nothing is skipped or voided.
 *
 * The payment is recorded over the API, on the real clock; the subscription starts 100 days before
 * it (a simulated clock for its dunning), so the payment falls in period 3: 3 months are 89–92 days,
 * 4 months at least 120. Periods 1 and 2 were missed whole while suspended (from day 2).
 */
function scenario(app: () => TestApp) {
  const db = () => app().runtime.db;
  const gateways = () => ({ registry: app().runtime.registry, accounts: app().runtime.accounts });
  const start = new Date(Date.now() - 100 * DAY);
  const at = (days: number, minutes = 0) => new Date(start.getTime() + days * DAY + minutes * MINUTE);
  /** Period `index` of a monthly subscription anchored at `start`. */
  const period = (index: number) => periodAt({ anchor: start, interval: 'MONTH', intervalCount: 1 }, index);

  /** A customer without a card subscribed from `start` to a flat 1000 a month (no tax) in `currency`. */
  async function subscribed(currency: string, repeat?: number) {
    const plan = await insertPlan(db(), { currency, price: { model: 'FLAT_FEE', amount: 1000 } });
    const { customer } = await customerWith(app());
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer.id, planId: plan, startAt: start, ...(repeat ? { repeat } : {}) },
      start,
    );
    return subscription.id;
  }

  /**
   * Dunning as the charge sweep runs it: period 0's charge fails (no card) 10 minutes after the start
   * (PAST_DUE), and its one retry two days later fails too: SUSPENDED by dunning at day 2 + 10 min.
   */
  async function dunned(id: string) {
    await chargeDueInvoices(db(), 'scheduler', gateways(), DUNNING, at(0, 10));
    expect(await subscriptionOf(id)).toMatchObject({ status: 'PAST_DUE' });
    await chargeDueInvoices(db(), 'scheduler', gateways(), DUNNING, at(2, 10));
    expect(await subscriptionOf(id)).toMatchObject({ status: 'SUSPENDED', suspended_at: at(2, 10) });
  }

  const subscriptionOf = (id: string) =>
    db()
      .selectFrom('subscriptions')
      .select(['status', 'suspended_at', 'next_renewal_at', 'current_period_index', 'cancelled_at'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();

  /** The subscription's period invoices, by period. */
  const invoicesOf = (id: string) =>
    db()
      .selectFrom('invoices')
      .select(['id', 'period_index', 'status', 'total', 'amount_due'])
      .where('subscription_id', '=', id)
      .orderBy('period_index')
      .execute();

  /** Pays invoice `id` whole by bank transfer over the API (the real clock). */
  async function pay(id: string, amount: number) {
    const paid = await app().api('POST', `/v1/invoices/${id}/payments`, { method: 'BANK', amount });
    expect(paid.status).toBe(201);
    expect(paid.body.status).toBe('PAID');
  }

  /** The data of the last `subscription.active` activity of subscription `id`. */
  const activeData = async (id: string) =>
    (await app().api('GET', `/v1/activities?resource=${id}&limit=100`)).body.data.find(
      (a: { action: string }) => a.action === 'subscription.active',
    )?.data;

  /** What the customers of `currency` owe (their receivable) and the revenue booked, in minor units. */
  const ledgerReceivable = async (currency: string) => {
    const books = await ledgerIn(app(), currency);
    return { receivable: books['receivable:customer'], revenue: books.revenue };
  };

  return {
    db,
    gateways,
    start,
    at,
    period,
    subscribed,
    dunned,
    subscriptionOf,
    invoicesOf,
    pay,
    activeData,
    ledgerReceivable,
  };
}

describe('a payment reinstating a subscription dunning suspended resumes it as a reactivation does', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  // Each scenario sweeps alone: what an earlier one left scheduled is unscheduled.
  afterEach(async () => {
    nock.cleanAll();
    await app.runtime.db.updateTable('invoices').set({ charge_at: null }).execute();
  });
  afterAll(() => app.stop());
  const s = scenario(() => app);

  /**
   * 6 months of 1000 from the start, settled 5 minutes after it: periods 0–5 invoiced (6000), each
   * charged at its period's start (an operator's schedule), so only period 0 is dunned: SUSPENDED.
   */
  async function settledAndDunned(currency: string) {
    const id = await s.subscribed(currency, 6);
    await inUnitOfWork(s.db(), { actor: 'system' }, async (work) =>
      invoiceRemainingCycles(work, (await lockSubscription(work, id))!, s.at(0, 5)),
    );
    const invoices = await s.invoicesOf(id);
    expect(invoices.map((i) => i.period_index)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const invoice of invoices.slice(1)) {
      const moved = await app.api('POST', `/v1/invoices/${invoice.id}`, {
        charge_at: s.period(invoice.period_index!).start.toISOString(),
      });
      expect(moved.status).toBe(200);
    }
    await s.dunned(id);
    return { id, invoices };
  }

  it('monthly: paid three months later, ACTIVE from the current period; the suspended months are never invoiced', async () => {
    const id = await s.subscribed('SEK');
    const [march] = await s.invoicesOf(id);
    await s.dunned(id);

    // Paid about 100 days after the start (period 3): reinstated, resuming at period 3.
    await s.pay(march!.id, 1000);
    expect(await s.subscriptionOf(id)).toMatchObject({
      status: 'ACTIVE',
      suspended_at: null,
      next_renewal_at: s.period(3).start,
    });
    expect(await s.activeData(id)).toMatchObject({
      reason: 'invoice_paid',
      invoice: march!.id,
      resumes_at_period: 3,
      voided_invoices: [],
    });

    // The next renewal bills period 3 only: 1000, not periods 1, 2 and 3 (3000).
    const renewal = await renewSubscription(s.db(), 'scheduler', id, new Date(), true);
    expect(renewal?.invoices.map((i) => [i.period_index, i.total])).toEqual([[3, 1000n]]);
    expect((await s.invoicesOf(id)).map((i) => [i.period_index, i.status, i.amount_due])).toEqual([
      [0, 'PAID', 0n],
      [3, 'OPEN', 1000n],
    ]);
    // Finalized: period 0 (1000) + period 3 (1000) = 2000 of revenue; 1000 paid, 1000 owed.
    expect(await s.ledgerReceivable('SEK')).toEqual({ receivable: 1000, revenue: -2000 });
  });

  it('settled term: the unpaid invoices of the periods missed while suspended are voided, a paid one kept; the current and later periods stay owed', async () => {
    const { id, invoices } = await settledAndDunned('NOK');
    const [p0, p1, p2, p3, p4, p5] = invoices;
    // Period 2 paid by bank while suspended: period 0 is still overdue, so it stays SUSPENDED.
    await s.pay(p2!.id, 1000);
    expect(await s.subscriptionOf(id)).toMatchObject({ status: 'SUSPENDED' });

    // Period 0 paid about 100 days after the start (period 3): periods 1 and 2 (starting after the
    // suspension at day 2, ended before now) were missed whole: 1 is voided, 2 (paid) kept.
    await s.pay(p0!.id, 1000);
    expect(await s.subscriptionOf(id)).toMatchObject({
      status: 'ACTIVE',
      next_renewal_at: s.period(3).start,
    });
    expect((await s.invoicesOf(id)).map((i) => [i.id, i.status, i.amount_due])).toEqual([
      [p0!.id, 'PAID', 0n],
      [p1!.id, 'VOID', 0n],
      [p2!.id, 'PAID', 0n],
      [p3!.id, 'OPEN', 1000n],
      [p4!.id, 'OPEN', 1000n],
      [p5!.id, 'OPEN', 1000n],
    ]);
    expect(await s.activeData(id)).toMatchObject({
      reason: 'invoice_paid',
      voided_invoices: [p1!.id],
      not_voided_invoices: [],
      kept_invoices: [p2!.id],
    });
    // 6000 finalized − 1000 voided = 5000 of revenue; 2000 paid; periods 3–5 owed: 3000.
    expect(await s.ledgerReceivable('NOK')).toEqual({ receivable: 3000, revenue: -5000 });

    // The renewal finds period 3 invoiced already; the charge sweep charges period 3 (its start has
    // come), never period 1.
    expect((await renewSubscription(s.db(), 'scheduler', id, new Date(), true))?.invoices).toEqual([]);
    const swept = await chargeDueInvoices(s.db(), 'scheduler', s.gateways(), DUNNING, new Date());
    expect(
      swept.charged
        .map((c) => c.invoiceId)
        .filter((i) => invoices.some((invoice) => invoice.id === i))
        .sort(),
    ).toEqual([p3!.id]);
  });

  it('settled term: writing off period 0 (UNCOLLECTIBLE, its charges failed) resumes it as its payment would: the missed period 1 voided, period 0 still owed (was: SUSPENDED for ever, even once later periods were paid)', async () => {
    const { id, invoices } = await settledAndDunned('RON');
    const [p0, p1, p2, p3, p4, p5] = invoices;
    expect((await app.api('POST', `/v1/invoices/${p0!.id}/mark-uncollectible`)).status).toBe(200);
    // Written off about 100 days after the start (period 3): periods 1 and 2 were missed whole.
    expect(await s.subscriptionOf(id)).toMatchObject({
      status: 'ACTIVE',
      next_renewal_at: s.period(3).start,
    });
    expect(await s.activeData(id)).toMatchObject({
      reason: 'invoice_written_off',
      invoice: p0!.id,
      voided_invoices: [p1!.id, p2!.id],
    });
    expect((await s.invoicesOf(id)).map((i) => [i.id, i.status, i.amount_due])).toEqual([
      [p0!.id, 'UNCOLLECTIBLE', 1000n],
      [p1!.id, 'VOID', 0n],
      [p2!.id, 'VOID', 0n],
      [p3!.id, 'OPEN', 1000n],
      [p4!.id, 'OPEN', 1000n],
      [p5!.id, 'OPEN', 1000n],
    ]);
    // 6000 finalized − 2000 voided = 4000 of revenue; 1000 written off (bad debt); 3000 owed.
    expect(await s.ledgerReceivable('RON')).toEqual({ receivable: 3000, revenue: -4000 });
  });

  it('settled term paid by card, its success learned from a webhook (a batch): the missed periods voided in that batch', async () => {
    const { id, invoices } = await settledAndDunned('CHF');
    const [p0, p1, p2, p3, p4, p5] = invoices;
    const customer = (
      await s
        .db()
        .selectFrom('subscriptions')
        .select('customer_id')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    ).customer_id;
    const method = await app.api('POST', '/v1/payment-methods', {
      customer,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    expect(method.status).toBe(201);
    // About 100 days after the start (period 3) period 0 is charged by hand: Stripe answers processing.
    nock(STRIPE_API_BASE)
      .post('/v1/payment_intents')
      .reply(async (request: Request) => [
        200,
        intentEchoing(new URLSearchParams(await request.text()), 'pi_reinstating', 'processing'),
      ]);
    const pending = await app.api('POST', `/v1/invoices/${p0!.id}/charge`, {
      payment_method: method.body.id,
    });
    expect(pending.body.transaction).toMatchObject({ status: 'pending', amount: 1000 });
    expect(await s.subscriptionOf(id)).toMatchObject({ status: 'SUSPENDED' });

    // Its success comes by webhook, applied by the webhook worker in a batch (a deferring unit).
    const event = paymentIntentSucceeded({
      eventId: 'evt_reinstating',
      intentId: 'pi_reinstating',
      amount: 1000,
      currency: 'chf',
      reference: pending.body.transaction.id,
    });
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    await waitFor(
      'the payment to reinstate the subscription',
      async () => (await s.subscriptionOf(id)).status === 'ACTIVE',
    );
    // Periods 1 and 2 (after the suspension at day 2, ended before now) missed whole: voided.
    expect(await s.subscriptionOf(id)).toMatchObject({ next_renewal_at: s.period(3).start });
    expect((await s.invoicesOf(id)).map((i) => [i.id, i.status, i.amount_due])).toEqual([
      [p0!.id, 'PAID', 0n],
      [p1!.id, 'VOID', 0n],
      [p2!.id, 'VOID', 0n],
      [p3!.id, 'OPEN', 1000n],
      [p4!.id, 'OPEN', 1000n],
      [p5!.id, 'OPEN', 1000n],
    ]);
    expect(await s.activeData(id)).toMatchObject({
      reason: 'invoice_paid',
      invoice: p0!.id,
      voided_invoices: [p1!.id, p2!.id],
      kept_invoices: [],
    });
    // 6000 finalized − 2000 voided = 4000 of revenue; 1000 paid by card; periods 3–5 owed: 3000.
    expect(await s.ledgerReceivable('CHF')).toEqual({ receivable: 3000, revenue: -4000 });
  });
  /** Schedules, on day 50 while suspended, subscription `id`'s cancellation at `cancelAt` (no refund). */
  const cancelWhileSuspended = (id: string, cancelAt: Date) =>
    inUnitOfWork(s.db(), { actor: 'system' }, async (work) =>
      cancelLocked(
        work,
        (await lockSubscription(work, id))!,
        { when: 'date', cancelAt, refundType: 'none' },
        s.at(50),
      ),
    );

  it('a cancellation date that came in the current period while suspended: ended there, the period never billed', async () => {
    const id = await s.subscribed('PLN');
    const [p0] = await s.invoicesOf(id);
    await s.dunned(id);
    // Yesterday (day 99) is inside period 3 (from day 89–92 on): suspended from day 2 to its end.
    const cancelAt = new Date(Date.now() - DAY);
    expect(cancelAt > s.period(3).start).toBe(true);
    await cancelWhileSuspended(id, cancelAt);

    // Paid before the renewal sweep ran: the renewal ends it at yesterday's date, billing nothing
    // (it billed period 3 whole before: 1000 owed for a period never served).
    await s.pay(p0!.id, 1000);
    await renewDueSubscriptions(s.db(), 'scheduler', new Date());
    expect(await s.subscriptionOf(id)).toMatchObject({ status: 'CANCELLED', cancelled_at: cancelAt });
    expect((await s.invoicesOf(id)).map((i) => [i.period_index, i.status, i.total])).toEqual([
      [0, 'PAID', 1000n],
    ]);
    expect(await s.ledgerReceivable('PLN')).toEqual({ receivable: 0, revenue: -1000 });
  });

  it('a cancellation date that came in an earlier period while suspended: ended at that date', async () => {
    const id = await s.subscribed('CZK');
    const [p0] = await s.invoicesOf(id);
    await s.dunned(id);
    await cancelWhileSuspended(id, s.at(60));
    await s.pay(p0!.id, 1000);
    await renewDueSubscriptions(s.db(), 'scheduler', new Date());
    // Ended at day 60 (it was recorded at period 3's start before), nothing after period 0 billed.
    expect(await s.subscriptionOf(id)).toMatchObject({ status: 'CANCELLED', cancelled_at: s.at(60) });
    expect((await s.invoicesOf(id)).map((i) => [i.period_index, i.status, i.total])).toEqual([
      [0, 'PAID', 1000n],
    ]);
  });

  it('a fixed term of two periods that ended while suspended: completed at period 2’s start', async () => {
    const id = await s.subscribed('HUF', 2);
    const [p0] = await s.invoicesOf(id);
    await s.dunned(id);
    await s.pay(p0!.id, 1000);
    await renewDueSubscriptions(s.db(), 'scheduler', new Date());
    // Periods 0 and 1 make the term: it ended at period 2's start (recorded at period 3's before).
    expect(await s.subscriptionOf(id)).toMatchObject({
      status: 'CANCELLED',
      cancelled_at: s.period(2).start,
    });
    expect((await s.invoicesOf(id)).map((i) => [i.period_index, i.status, i.total])).toEqual([
      [0, 'PAID', 1000n],
    ]);
  });
});

describe('BILL_SUSPENDED_SUBSCRIPTIONS on: a payment reinstating a subscription skips and voids nothing', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ BILL_SUSPENDED_SUBSCRIPTIONS: '1' });
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  afterAll(() => app.stop());
  const s = scenario(() => app);
  const policy = { billSuspended: true };

  it("the suspended periods are billed: after the sweep's downtime the renewal still bills each of them once", async () => {
    const id = await s.subscribed('DKK');
    const [p0] = await s.invoicesOf(id);
    await s.dunned(id);
    // The renewal sweep bills the suspended subscription at period 1's start, then stops (downtime).
    const late = new Date(s.period(1).start.getTime() + 10 * MINUTE);
    await renewSubscription(s.db(), 'scheduler', id, late, true, policy);
    expect(await s.subscriptionOf(id)).toMatchObject({
      status: 'SUSPENDED',
      current_period_index: 1,
      next_renewal_at: s.period(2).start,
    });

    // Paid in period 3 over the API (the app reads the setting): ACTIVE, the next renewal left at
    // period 2 (billed, not skipped), nothing voided.
    await s.pay(p0!.id, 1000);
    expect(await s.subscriptionOf(id)).toMatchObject({
      status: 'ACTIVE',
      next_renewal_at: s.period(2).start,
    });
    expect(await s.activeData(id)).toMatchObject({ reason: 'invoice_paid', invoice: p0!.id });
    const renewal = await renewSubscription(s.db(), 'scheduler', id, new Date(), true, policy);
    expect(renewal?.invoices.map((i) => [i.period_index, i.total])).toEqual([
      [2, 1000n],
      [3, 1000n],
    ]);
    expect((await s.invoicesOf(id)).map((i) => [i.period_index, i.status, i.amount_due])).toEqual([
      [0, 'PAID', 0n],
      [1, 'OPEN', 1000n],
      [2, 'OPEN', 1000n],
      [3, 'OPEN', 1000n],
    ]);
    // Periods 0–3 finalized (4000 of revenue); period 0 paid: 3000 owed.
    expect(await s.ledgerReceivable('DKK')).toEqual({ receivable: 3000, revenue: -4000 });
  });
});
