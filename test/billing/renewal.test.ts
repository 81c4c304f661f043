import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCoupon, redeemCoupon } from '../../src/billing/coupons.ts';
import { effectiveAmount } from '../../src/billing/effective-amount.ts';
import { getPlan } from '../../src/billing/plans.ts';
import { previewSubscription } from '../../src/billing/preview.ts';
import { renewDueSubscriptions, renewSubscription } from '../../src/billing/renewal.ts';
import {
  cancelSubscription,
  createSubscription,
  reactivateSubscription,
  suspendSubscription,
} from '../../src/billing/subscriptions.ts';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import { createDb, type Db } from '../../src/db/database.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { ledgerIn } from '../support/collection.ts';
import { ledgerByCode } from '../support/flow.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';
import { waitFor, wakeWorkers } from '../support/wait.ts';

const d = (iso: string) => new Date(iso);

describe('subscription renewal', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  const invoicesOf = (subscription: string) =>
    db
      .selectFrom('invoices')
      .selectAll()
      .where('subscription_id', '=', subscription)
      .orderBy('period_index')
      .execute();
  const rowOf = (id: string) =>
    db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  it('invoices the first period at creation, then catches up a 5-month gap once per period, month ends kept', async () => {
    const plan = await insertPlan(db, { price: { model: 'PER_UNIT', unit_amount: 999 }, taxRatePpm: 88_750 });
    const customer = await insertCustomer(db);
    const t0 = d('2027-01-31T09:00:00Z');
    const created = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan, quantity: 3 },
      t0,
    );
    expect(created.subscription).toMatchObject({ status: 'ACTIVE', current_period_index: 0 });
    expect(created.invoices).toHaveLength(1);
    expect(created.subscription.next_renewal_at).toEqual(d('2027-02-28T09:00:00Z'));

    const later = d('2027-07-01T00:00:00Z');
    const sweep = await renewDueSubscriptions(db, 'system', later);
    expect(sweep).toEqual({ invoices: 5, failures: [] });
    expect((await renewDueSubscriptions(db, 'system', later)).invoices).toBe(0);

    const invoices = await invoicesOf(created.subscription.id);
    expect(invoices.map((i) => [i.period_index, i.period_start?.toISOString(), i.status])).toEqual([
      [0, '2027-01-31T09:00:00.000Z', 'OPEN'],
      [1, '2027-02-28T09:00:00.000Z', 'OPEN'],
      [2, '2027-03-31T09:00:00.000Z', 'OPEN'],
      [3, '2027-04-30T09:00:00.000Z', 'OPEN'],
      [4, '2027-05-31T09:00:00.000Z', 'OPEN'],
      [5, '2027-06-30T09:00:00.000Z', 'OPEN'],
    ]);
    // 3 × 999 = 2997; tax 8.875% = 265.98… → 266; total 3263, each period.
    for (const invoice of invoices) {
      expect(invoice).toMatchObject({ subtotal: 2997n, tax: 266n, total: 3263n, amount_due: 3263n });
      expect(invoice.billing_reason).toBe(
        invoice.period_index === 0 ? 'subscription_create' : 'subscription_cycle',
      );
      expect(invoice.charge_at).not.toBeNull();
    }
    expect(invoices[5]!.period_end).toEqual(d('2027-07-31T09:00:00Z'));
    const sub = await db
      .selectFrom('subscriptions')
      .selectAll()
      .where('id', '=', created.subscription.id)
      .executeTakeFirstOrThrow();
    expect(sub).toMatchObject({ current_period_index: 5, next_renewal_at: d('2027-07-31T09:00:00Z') });
    const lines = await db
      .selectFrom('invoice_lines')
      .selectAll()
      .where('invoice_id', '=', invoices[2]!.id)
      .execute();
    expect(lines).toMatchObject([
      {
        type: 'CHARGE',
        unit_amount: 999n,
        quantity: 3,
        amount: 2997n,
        tax_rate_ppm: 88_750,
        tax_amount: 266n,
      },
    ]);
    const renewed = await db
      .selectFrom('activities')
      .select('action')
      .where('resource_id', '=', sub.id)
      .where('action', '=', 'subscription.renewed')
      .execute();
    expect(renewed).toHaveLength(6);
  });

  it('one sweep renews every due subscription, page after page, oldest first, each once', async () => {
    const plan = await insertPlan(db, { price: { model: 'PER_UNIT', unit_amount: 500 } });
    const customer = await insertCustomer(db);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = d(`2020-01-1${i}T00:00:00Z`);
      const { subscription } = await createSubscription(
        db,
        'system',
        { customerId: customer, planId: plan, quantity: 1 },
        t0,
      );
      ids.push(subscription.id);
    }
    const now = d('2020-02-20T00:00:00Z');
    expect(await renewDueSubscriptions(db, 'system', now, { pageSize: 2 })).toEqual({
      invoices: 5,
      failures: [],
    });
    for (const id of ids) expect((await invoicesOf(id)).map((i) => i.period_index)).toEqual([0, 1]);
    expect((await renewDueSubscriptions(db, 'system', now, { pageSize: 2 })).invoices).toBe(0);
  });

  it('concurrent sweeps (several in one process and a second pool) invoice each period exactly once', async () => {
    const plan = await insertPlan(db, { interval: 'WEEK' });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const customer = await insertCustomer(db, `c${i}@example.com`);
      const created = await createSubscription(
        db,
        'system',
        { customerId: customer, planId: plan, startAt: d('2027-01-04T00:00:00Z') },
        d('2027-01-04T00:00:00Z'),
      );
      ids.push(created.subscription.id);
    }
    // Sized for every unit it runs at once (two sweeps of 4 and six renewals): the race is on the rows,
    // and a pool smaller than that would make units wait for a connection, which times out (5 s) on a
    // machine whose cores are busy elsewhere.
    const other = createDb(app.config.DATABASE_URL!, 16);
    try {
      const now = d('2027-03-01T00:00:00Z'); // 8 weeks later: periods 1–8 are due
      const sweeps = await Promise.all([
        renewDueSubscriptions(db, 'system', now),
        renewDueSubscriptions(db, 'system', now),
        renewDueSubscriptions(other, 'system', now),
        renewDueSubscriptions(other, 'system', now),
        ...ids.map((id) => renewSubscription(other, 'system', id, now)),
      ]);
      for (const sweep of sweeps.slice(0, 4)) expect(sweep).toMatchObject({ failures: [] });
    } finally {
      await other.destroy();
    }
    for (const id of ids) {
      const invoices = await invoicesOf(id);
      expect(invoices.map((i) => i.period_index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }
  });

  it('a trial is not invoiced; at its end period 0 is invoiced and the subscription turns ACTIVE', async () => {
    const plan = await insertPlan(db, { trialDays: 14 });
    const customer = await insertCustomer(db);
    const t0 = d('2027-01-01T00:00:00Z');
    const created = await createSubscription(db, 'system', { customerId: customer, planId: plan }, t0);
    expect(created.invoices).toEqual([]);
    expect(created.subscription).toMatchObject({
      status: 'IN_TRIAL',
      trial_end_at: d('2027-01-15T00:00:00Z'),
      billing_anchor: d('2027-01-15T00:00:00Z'),
      next_renewal_at: d('2027-01-15T00:00:00Z'),
      current_period_index: null,
    });
    expect(
      (await renewSubscription(db, 'system', created.subscription.id, d('2027-01-14T23:59:59Z')))?.invoices,
    ).toEqual([]);
    const renewal = await renewSubscription(db, 'system', created.subscription.id, d('2027-01-15T00:00:00Z'));
    expect(renewal?.subscription).toMatchObject({ status: 'ACTIVE', current_period_index: 0 });
    expect(renewal?.invoices.map((i) => [i.period_start, i.period_end, i.total])).toEqual([
      [d('2027-01-15T00:00:00Z'), d('2027-02-15T00:00:00Z'), 2000n],
    ]);
  });

  it('a future start invoices nothing until it begins', async () => {
    const plan = await insertPlan(db);
    const customer = await insertCustomer(db);
    const created = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan, startAt: d('2027-03-01T00:00:00Z') },
      d('2027-02-10T00:00:00Z'),
    );
    expect(created.subscription).toMatchObject({ status: 'ACTIVE', current_period_index: null });
    expect(created.invoices).toEqual([]);
    const renewal = await renewSubscription(db, 'system', created.subscription.id, d('2027-03-01T00:00:00Z'));
    expect(renewal?.invoices.map((i) => i.period_index)).toEqual([0]);
  });

  it('cancel at period end: the renewal cancels at the boundary instead of invoicing', async () => {
    const plan = await insertPlan(db);
    const customer = await insertCustomer(db);
    const t0 = d('2027-01-10T00:00:00Z');
    const created = await createSubscription(db, 'system', { customerId: customer, planId: plan }, t0);
    await cancelSubscription(db, 'system', created.subscription.id, true, d('2027-01-20T00:00:00Z'));
    const renewal = await renewSubscription(db, 'system', created.subscription.id, d('2027-04-01T00:00:00Z'));
    expect(renewal?.invoices).toEqual([]);
    expect(renewal?.subscription).toMatchObject({
      status: 'CANCELLED',
      ended_at: d('2027-02-10T00:00:00Z'),
      next_renewal_at: null,
    });
    expect((await invoicesOf(created.subscription.id)).map((i) => i.period_index)).toEqual([0]);
  });

  it('cancel at period end of a SUSPENDED subscription whose billed period has ended is 409 period_ended, nothing changed: not back-dated to that end, dropping the usage since', async () => {
    const plan = await insertPlan(db, {
      price: { model: 'FLAT_FEE', amount: 1000 },
      metered: [{ code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 3 } }],
    });
    const customer = await insertCustomer(db);
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-01-01T00:00:00Z'),
    );
    const id = subscription.id;
    await suspendSubscription(db, 'system', id, d('2027-01-10T00:00:00Z'));
    const feb15 = d('2027-02-15T00:00:00Z');
    await recordUsageEvent(
      db,
      'system',
      { eventId: `${id}-feb`, subscriptionId: id, code: 'api_calls', value: 500n, timestamp: feb15 },
      feb15,
    );
    const april10 = d('2027-04-10T00:00:00Z');
    // Its period (January) ended on Feb 1: cancelling there would end it two months before this
    // request and never bill the 500 calls of Feb 15 (1500).
    await expect(cancelSubscription(db, 'system', id, true, april10)).rejects.toMatchObject({
      status: 409,
      code: 'period_ended',
    });
    expect(await rowOf(id)).toMatchObject({
      status: 'SUSPENDED',
      cancel_at: null,
      cancel_at_period_end: false,
    });
    // Cancelled now, it bills that usage on its final invoice.
    await cancelSubscription(db, 'system', id, false, april10);
    const usage = await db
      .selectFrom('invoice_lines')
      .innerJoin('invoices', 'invoices.id', 'invoice_lines.invoice_id')
      .select('invoice_lines.amount')
      .where('invoices.subscription_id', '=', id)
      .where('invoice_lines.metric_code', '=', 'api_calls')
      .execute();
    expect(usage).toEqual([{ amount: 1500n }]);
    expect(await rowOf(id)).toMatchObject({ status: 'CANCELLED', cancelled_at: april10 });
  });

  it('no invoices while suspended; reactivation bills the current period only (no back-billing)', async () => {
    const plan = await insertPlan(db);
    const customer = await insertCustomer(db);
    const created = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-01-05T00:00:00Z'),
    );
    await suspendSubscription(db, 'system', created.subscription.id, d('2027-01-20T00:00:00Z'));
    expect((await renewDueSubscriptions(db, 'system', d('2027-04-10T00:00:00Z'))).failures).toEqual([]);
    expect((await invoicesOf(created.subscription.id)).map((i) => i.period_index)).toEqual([0]);
    const change = await reactivateSubscription(
      db,
      'system',
      created.subscription.id,
      d('2027-04-10T00:00:00Z'),
    );
    expect(change.subscription).toMatchObject({
      status: 'ACTIVE',
      current_period_index: 3,
      next_renewal_at: d('2027-05-05T00:00:00Z'),
    });
    expect((await invoicesOf(created.subscription.id)).map((i) => i.period_index)).toEqual([0, 3]);
  });

  it('the setup fee is billed once, on the first period invoice, also when that is a later period (suspended in its trial, or before its start)', async () => {
    const plan = await insertPlan(db, { price: { model: 'FLAT_FEE', amount: 2000 }, trialDays: 14 });
    await db.updateTable('plans').set({ setup_fee: 5000n }).where('id', '=', plan).execute();
    const customer = await insertCustomer(db);
    // Trial Jan 1 → 15, then periods from Jan 15, Feb 15, Mar 15; suspended in the trial.
    const trial = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-01-01T00:00:00Z'),
    );
    const id = trial.subscription.id;
    await suspendSubscription(db, 'system', id, d('2027-01-05T00:00:00Z'));
    expect((await effectiveAmount(db, await rowOf(id))).amount).toBe(7000n);
    // Reactivated on Mar 20: period 2 (Mar 15) is its first invoice: 2000 + the setup fee 5000.
    const resumed = await reactivateSubscription(db, 'system', id, d('2027-03-20T00:00:00Z'));
    expect(resumed.invoices.map((i) => [i.period_index, i.total])).toEqual([[2, 7000n]]);
    expect((await effectiveAmount(db, await rowOf(id))).amount).toBe(2000n);
    const next = await renewSubscription(db, 'system', id, d('2027-04-15T00:00:00Z'));
    expect(next?.invoices.map((i) => [i.period_index, i.total])).toEqual([[3, 2000n]]);

    // A future start (Feb 1) suspended before it, reactivated on Mar 10: period 1 (Mar 1) is first.
    const later = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan, startAt: d('2027-02-01T00:00:00Z'), trialDays: 0 },
      d('2027-01-10T00:00:00Z'),
    );
    await suspendSubscription(db, 'system', later.subscription.id, d('2027-01-20T00:00:00Z'));
    const started = await reactivateSubscription(
      db,
      'system',
      later.subscription.id,
      d('2027-03-10T00:00:00Z'),
    );
    expect(started.invoices.map((i) => [i.period_index, i.total])).toEqual([[1, 7000n]]);
  });

  it('coupons: a REPEATING coupon counts periods by time: the periods a suspension skipped use up its periods', async () => {
    // 100.00 EUR a month, 50% off for 3 periods from period 0: periods 0, 1 and 2 (Jan, Feb, Mar), by time.
    const plan = await insertPlan(db, { currency: 'EUR', price: { model: 'FLAT_FEE', amount: 10_000 } });
    const customer = await insertCustomer(db);
    await createCoupon(db, 'system', {
      code: 'HALF3BYTIME',
      percentOffPpm: 500_000,
      duration: 'REPEATING',
      durationInPeriods: 3,
    });
    const created = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan, couponCode: 'HALF3BYTIME' },
      d('2027-01-01T00:00:00Z'),
    );
    const id = created.subscription.id;
    // Suspended in January: February (period 1) is never invoiced; reactivated in March (period 2).
    await suspendSubscription(db, 'system', id, d('2027-01-20T00:00:00Z'));
    const resumed = await reactivateSubscription(db, 'system', id, d('2027-03-10T00:00:00Z'));
    expect(resumed.invoices.map((i) => [i.period_index, i.total])).toEqual([[2, 5000n]]);
    await renewSubscription(db, 'system', id, d('2027-05-01T00:00:00Z'));
    // Before: April (period 3) was discounted too (5000), the coupon's third invoice, 4 months after
    // redemption. Now the coupon's 3 periods ended with March: April and May are 10000 each.
    expect((await invoicesOf(id)).map((i) => [i.period_index, i.currency, i.total])).toEqual([
      [0, 'EUR', 5000n],
      [2, 'EUR', 5000n],
      [3, 'EUR', 10_000n],
      [4, 'EUR', 10_000n],
    ]);
    expect((await effectiveAmount(db, await rowOf(id))).amount).toBe(10_000n);
  });

  it('coupons: one redeemed while suspended counts from the period holding now, not the periods the suspension skipped', async () => {
    // 100.00 EUR a month; suspended in January (last invoice: period 0); 50% off for 2 periods redeemed
    // on Mar 5 (period 2): its periods are March and April (2 and 3), not February and March.
    const plan = await insertPlan(db, { currency: 'EUR', price: { model: 'FLAT_FEE', amount: 10_000 } });
    const customer = await insertCustomer(db);
    await createCoupon(db, 'system', {
      code: 'HALF2SUSPENDED',
      percentOffPpm: 500_000,
      duration: 'REPEATING',
      durationInPeriods: 2,
    });
    const created = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-01-01T00:00:00Z'),
    );
    const id = created.subscription.id;
    await suspendSubscription(db, 'system', id, d('2027-01-20T00:00:00Z'));
    const redemption = await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      redeemCoupon(
        work,
        await rowOf(id),
        { currency: 'EUR', productId: (await getPlan(db, plan)).product_id },
        'HALF2SUSPENDED',
        d('2027-03-05T00:00:00Z'),
      ),
    );
    expect(redemption.first_period_index).toBe(2);
    await reactivateSubscription(db, 'system', id, d('2027-03-10T00:00:00Z'));
    await renewSubscription(db, 'system', id, d('2027-05-01T00:00:00Z'));
    expect((await invoicesOf(id)).map((i) => [i.period_index, i.currency, i.total])).toEqual([
      [0, 'EUR', 10_000n],
      [2, 'EUR', 5000n],
      [3, 'EUR', 5000n],
      [4, 'EUR', 10_000n],
    ]);
  });

  it('coupons: a REPEATING percentage for 2 periods, then an amount off capped at the base', async () => {
    const plan = await insertPlan(db, { price: { model: 'FLAT_FEE', amount: 999 }, taxRatePpm: 100_000 });
    const customer = await insertCustomer(db);
    await createCoupon(db, 'system', {
      code: 'EIGHTH',
      percentOffPpm: 125_000,
      duration: 'REPEATING',
      durationInPeriods: 2,
    });
    const created = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan, couponCode: 'EIGHTH' },
      d('2027-01-01T00:00:00Z'),
    );
    await renewSubscription(db, 'system', created.subscription.id, d('2027-03-01T00:00:00Z'));
    const invoices = await invoicesOf(created.subscription.id);
    // 12.5% of 999 = 124.875 → 125 off; subtotal 874; tax 10%: 99.9 → 100 on the charge, -12.5 → -13 on the credit.
    expect(invoices.map((i) => [i.period_index, i.subtotal, i.tax, i.total])).toEqual([
      [0, 874n, 87n, 961n],
      [1, 874n, 87n, 961n],
      [2, 999n, 100n, 1099n],
    ]);
    const credit = await db
      .selectFrom('invoice_lines')
      .selectAll()
      .where('invoice_id', '=', invoices[0]!.id)
      .where('type', '=', 'CREDIT')
      .executeTakeFirstOrThrow();
    expect(credit).toMatchObject({ amount: -125n, tax_amount: -13n });
    expect(credit.coupon_id).toMatch(/^cpn_/);
    const redemption = await db.selectFrom('coupon_redemptions').selectAll().executeTakeFirstOrThrow();
    expect(redemption.periods_applied).toBe(2);

    const customer2 = await insertCustomer(db);
    await createCoupon(db, 'system', {
      code: 'BIGOFF',
      amountOff: 5000n,
      currency: 'USD',
      duration: 'FOREVER',
    });
    const capped = await createSubscription(
      db,
      'system',
      { customerId: customer2, planId: plan, couponCode: 'BIGOFF' },
      d('2027-01-01T00:00:00Z'),
    );
    expect(capped.invoices[0]).toMatchObject({ subtotal: 0n, total: 0n, status: 'PAID', charge_at: null });
  });

  it('tax is computed once on the discounted amount of a line: 552 on 11045 at 10% less 50%, not 553', async () => {
    const plan = await insertPlan(db, {
      currency: 'SEK',
      price: { model: 'FLAT_FEE', amount: 11045 },
      taxRatePpm: 100_000,
    });
    const customer = await insertCustomer(db);
    await createCoupon(db, 'system', { code: 'HALF-SEK', percentOffPpm: 500_000, duration: 'FOREVER' });
    const input = { customerId: customer, planId: plan, couponCode: 'HALF-SEK' };
    // 50% of 11045 = 5522.5 → 5523 off; net 5522; tax 10% of 5522 = 552.2 → 552 (once, on the net).
    // Rounded per line it was 1104.5 → 1105 on the charge and −552.3 → −552 on the coupon: 553.
    const preview = await previewSubscription(db, input, d('2027-01-01T00:00:00Z'));
    expect(preview).toMatchObject({ subtotal: 5522n, tax: 552n, total: 6074n });
    const created = await createSubscription(db, 'system', input, d('2027-01-01T00:00:00Z'));
    expect(created.invoices[0]).toMatchObject({ subtotal: 5522n, tax: 552n, total: 6074n });
    const lines = await db
      .selectFrom('invoice_lines')
      .select(['type', 'amount', 'tax_amount'])
      .where('invoice_id', '=', created.invoices[0]!.id)
      .orderBy('position')
      .execute();
    // The charge carries the tax of its own amount; the coupon line the tax its discount takes off.
    expect(lines).toEqual([
      { type: 'CHARGE', amount: 11045n, tax_amount: 1105n },
      { type: 'CREDIT', amount: -5523n, tax_amount: -553n },
    ]);
    expect(await ledgerIn(app, 'SEK')).toEqual({
      'receivable:customer': 6074,
      revenue: -5522,
      tax_payable: -552,
    });
  });

  it('the subscription.renew job renews due subscriptions as the scheduler, and the ledger holds the receivable', async () => {
    const before = await ledgerByCode(app);
    const plan = await insertPlan(db, { currency: 'EUR', interval: 'DAY' });
    const customer = await insertCustomer(db);
    // Created three days ago (as far as billing knows): only period 0 was invoiced then.
    const created = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      new Date(Date.now() - 3 * 86_400_000),
    );
    expect(created.invoices).toHaveLength(1);
    await app.runtime.boss.send(QUEUES.subscriptionRenew, {});
    wakeWorkers(app.runtime.boss, QUEUES.subscriptionRenew);
    const invoices = await waitFor('the renewal job', async () => {
      const rows = await invoicesOf(created.subscription.id);
      return rows.length === 4 ? rows : undefined;
    });
    const activity = await db
      .selectFrom('activities')
      .selectAll()
      .where('resource_id', '=', invoices[3]!.id)
      .where('action', '=', 'invoice.created')
      .executeTakeFirstOrThrow();
    expect(activity.actor).toBe('scheduler');
    const after = await ledgerByCode(app);
    expect(after['receivable:customer EUR'] ?? 0).toBe((before['receivable:customer EUR'] ?? 0) + 8000);
  });
});
