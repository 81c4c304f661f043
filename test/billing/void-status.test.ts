import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { lockSubscription, renewSubscription } from '../../src/billing/renewal.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { invoiceRemainingCycles } from '../../src/billing/terms.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, payOpenOffline } from '../support/collection.ts';
import { insertPlan } from '../support/plans.ts';

const DAY = 86_400_000;
const MINUTE = 60_000;
/** Dunning: retries 2 and 60 days after the first failure, so a subscription stays PAST_DUE here. */
const DUNNING = { DUNNING_RETRY_DAYS: [2, 60], DUNNING_FINAL_ACTION: 'SUSPEND' as const };

/**
 * A VOID invoice owes nothing: a subscription PAST_DUE only because of invoices that were then voided
 * (by an operator over the API, or a settled term's later periods voided by a cancellation at period
 * end) follows what is still collected, as after a payment (billing/reinstate.ts): ACTIVE once none of
 * its OPEN invoices has a failed charge. Writing a failed invoice off (UNCOLLECTIBLE: still owed, no
 * longer collected) does the same. Voiding an invoice that never failed changes no status.
 *
 * The voids go over the API on the real clock; the subscriptions start 40 days before (a simulated
 * clock for renewals and dunning).
 */
describe('a subscription PAST_DUE only because of invoices since voided', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  // Each scenario sweeps alone: what an earlier one left scheduled is unscheduled.
  afterEach(async () => {
    await app.runtime.db.updateTable('invoices').set({ charge_at: null }).execute();
  });
  afterAll(() => app.stop());

  const db = () => app.runtime.db;
  const gateways = () => ({ registry: app.runtime.registry, accounts: app.runtime.accounts });
  const start = new Date(Date.now() - 40 * DAY);
  const at = (days: number, minutes = 0) => new Date(start.getTime() + days * DAY + minutes * MINUTE);
  const sweep = (days: number, minutes: number) =>
    chargeDueInvoices(db(), 'scheduler', gateways(), DUNNING, at(days, minutes));

  /** A customer without a card (every charge fails) subscribed from `start` to 1000 a month in `currency`. */
  async function subscribed(currency: string, repeat?: number) {
    const plan = await insertPlan(db(), { currency, price: { model: 'FLAT_FEE', amount: 1000 } });
    const { customer } = await customerWith(app);
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer.id, planId: plan, startAt: start, ...(repeat ? { repeat } : {}) },
      start,
    );
    return subscription.id;
  }

  const statusOf = async (id: string) =>
    (await db().selectFrom('subscriptions').select('status').where('id', '=', id).executeTakeFirstOrThrow())
      .status;

  /** The subscription's period invoices, by period: [id, status, amount due, failed attempts]. */
  const invoicesOf = async (id: string) =>
    (
      await db()
        .selectFrom('invoices')
        .select(['id', 'period_index', 'status', 'amount_due', 'payment_attempts'])
        .where('subscription_id', '=', id)
        .orderBy('period_index')
        .execute()
    ).map((i) => [i.id, i.status, i.amount_due, i.payment_attempts] as const);

  /** The data of the last `subscription.active` activity of subscription `id` (activities list oldest first). */
  const activeData = async (id: string) =>
    (await app.api('GET', `/v1/activities?resource=${id}&limit=100`)).body.data
      .filter((a: { action: string }) => a.action === 'subscription.active')
      .at(-1)?.data;

  const voided = async (invoice: string) => {
    const answer = await app.api('POST', `/v1/invoices/${invoice}/void`);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ status: 'VOID', amount_due: 0 });
  };

  it('voided by an operator: PAST_DUE while another invoice with a failed charge is owed, ACTIVE once none is', async () => {
    const id = await subscribed('ISK');
    // Period 0 (1000) fails 10 minutes in: PAST_DUE, retried on day 2.
    await sweep(0, 10);
    expect(await statusOf(id)).toBe('PAST_DUE');
    // Period 1 is invoiced (1000) and fails too; period 0's retry on day 2 fails again (next: day 60).
    await renewSubscription(db(), 'scheduler', id, at(31));
    await sweep(31, 10);
    const [p0, p1] = (await invoicesOf(id)).map(([invoice]) => invoice);
    expect(await invoicesOf(id)).toEqual([
      [p0, 'OPEN', 1000n, 2],
      [p1, 'OPEN', 1000n, 1],
    ]);

    // Period 1 voided: period 0 still owes 1000 after failed charges, so still PAST_DUE.
    await voided(p1!);
    expect(await statusOf(id)).toBe('PAST_DUE');
    // Period 0 voided too: nothing is owed, so nothing is past due.
    await voided(p0!);
    expect(await statusOf(id)).toBe('ACTIVE');
    expect(await activeData(id)).toMatchObject({ reason: 'invoice_voided', invoice: p0 });
  });

  it("a settled term's later periods, failed and then voided by a cancellation at period end: ACTIVE until the end", async () => {
    const id = await subscribed('MKD', 3);
    // Period 0 paid by bank transfer; settle invoices periods 1 and 2 (1000 each), charged at once.
    await payOpenOffline(db(), id);
    await inUnitOfWork(db(), { actor: 'system' }, async (work) =>
      invoiceRemainingCycles(work, (await lockSubscription(work, id))!, at(0, 5)),
    );
    await sweep(0, 10);
    const [p0, p1, p2] = (await invoicesOf(id)).map(([invoice]) => invoice);
    expect(await invoicesOf(id)).toEqual([
      [p0, 'PAID', 0n, 0],
      [p1, 'OPEN', 1000n, 1],
      [p2, 'OPEN', 1000n, 1],
    ]);
    expect(await statusOf(id)).toBe('PAST_DUE');

    // Cancelled at the end of period 0: periods 1 and 2 will never be served and are voided, so
    // nothing is owed; the subscription is ACTIVE until it ends.
    const cancelled = await cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      gateways(),
      id,
      { when: 'period_end', refundType: 'none' },
      at(1),
    );
    expect(cancelled.subscription).toMatchObject({ status: 'ACTIVE', cancel_at_period_end: true });
    expect(await invoicesOf(id)).toEqual([
      [p0, 'PAID', 0n, 0],
      [p1, 'VOID', 0n, 1],
      [p2, 'VOID', 0n, 1],
    ]);
    expect(await activeData(id)).toMatchObject({ reason: 'invoice_voided' });
  });

  /**
   * Period 0 (1000) fails 10 minutes in (PAST_DUE) and is written off: UNCOLLECTIBLE, still owed but no
   * longer collected.
   */
  async function writtenOff(id: string) {
    await sweep(0, 10);
    expect(await statusOf(id)).toBe('PAST_DUE');
    const [p0] = (await invoicesOf(id)).map(([invoice]) => invoice);
    const answer = await app.api('POST', `/v1/invoices/${p0}/mark-uncollectible`);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ status: 'UNCOLLECTIBLE', amount_due: 1000 });
    return p0!;
  }

  it('JPY: writing off the failed invoice (¥1000) makes the PAST_DUE subscription ACTIVE, as Stripe does for an invoice marked uncollectible (was: PAST_DUE for ever, even after later invoices were paid)', async () => {
    const id = await subscribed('JPY');
    const p0 = await writtenOff(id);
    expect(await statusOf(id)).toBe('ACTIVE');
    expect(await activeData(id)).toMatchObject({ reason: 'invoice_written_off', invoice: p0 });
    expect(await invoicesOf(id)).toEqual([[p0, 'UNCOLLECTIBLE', 1000n, 1]]);
  });

  it('JPY: after the write-off, a later failed invoice makes it PAST_DUE again; voiding that one makes it ACTIVE, the written-off ¥1000 not being collected', async () => {
    const id = await subscribed('JPY');
    const p0 = await writtenOff(id);
    // Period 1 invoiced (¥1000) and failed: PAST_DUE again.
    await renewSubscription(db(), 'scheduler', id, at(31));
    await sweep(31, 10);
    const [, p1] = (await invoicesOf(id)).map(([invoice]) => invoice);
    expect(await invoicesOf(id)).toEqual([
      [p0, 'UNCOLLECTIBLE', 1000n, 1],
      [p1, 'OPEN', 1000n, 1],
    ]);
    expect(await statusOf(id)).toBe('PAST_DUE');
    await voided(p1!);
    expect(await statusOf(id)).toBe('ACTIVE');
    expect(await activeData(id)).toMatchObject({ reason: 'invoice_voided', invoice: p1 });
  });

  it('KRW: writing off an invoice while another failed one is still OPEN keeps it PAST_DUE', async () => {
    const id = await subscribed('KRW');
    await sweep(0, 10);
    await renewSubscription(db(), 'scheduler', id, at(31));
    await sweep(31, 10);
    const [p0, p1] = (await invoicesOf(id)).map(([invoice]) => invoice);
    expect((await app.api('POST', `/v1/invoices/${p1}/mark-uncollectible`)).status).toBe(200);
    expect(await invoicesOf(id)).toEqual([
      [p0, 'OPEN', 1000n, 2],
      [p1, 'UNCOLLECTIBLE', 1000n, 1],
    ]);
    expect(await statusOf(id)).toBe('PAST_DUE');
    expect(await activeData(id)).toBeUndefined();
  });

  it('HUF, suspended by dunning: writing off the failed period 0 (1000) resumes it; voiding an invoice never charged before that did not', async () => {
    // A term of 3 periods settled 5 minutes in (3 × 1000); periods 1 and 2 charged on day 35 (an
    // operator's schedule), so only period 0 is dunned.
    const id = await subscribed('HUF', 3);
    await inUnitOfWork(db(), { actor: 'system' }, async (work) =>
      invoiceRemainingCycles(work, (await lockSubscription(work, id))!, at(0, 5)),
    );
    const [p0, p1, p2] = (await invoicesOf(id)).map(([invoice]) => invoice);
    for (const later of [p1, p2]) {
      const moved = await app.api('POST', `/v1/invoices/${later}`, { charge_at: at(35).toISOString() });
      expect(moved.status).toBe(200);
    }
    // Period 0 fails 10 minutes in and again at its one retry on day 2: dunning suspends it.
    const once = { DUNNING_RETRY_DAYS: [2], DUNNING_FINAL_ACTION: 'SUSPEND' as const };
    await chargeDueInvoices(db(), 'scheduler', gateways(), once, at(0, 10));
    await chargeDueInvoices(db(), 'scheduler', gateways(), once, at(2, 10));
    expect(await statusOf(id)).toBe('SUSPENDED');
    // Period 1 voided: never charged, it made nothing past due.
    await voided(p1!);
    expect(await statusOf(id)).toBe('SUSPENDED');
    expect(await activeData(id)).toBeUndefined();
    // Period 0 written off: nothing failed is collected any more.
    expect((await app.api('POST', `/v1/invoices/${p0}/mark-uncollectible`)).status).toBe(200);
    expect(await statusOf(id)).toBe('ACTIVE');
    expect(await activeData(id)).toMatchObject({ reason: 'invoice_written_off', invoice: p0 });
    expect((await invoicesOf(id))[0]).toEqual([p0, 'UNCOLLECTIBLE', 1000n, 2]);
  });
});
