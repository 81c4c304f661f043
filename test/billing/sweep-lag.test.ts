import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAddOn } from '../../src/billing/add-ons.ts';
import { createCoupon } from '../../src/billing/coupons.ts';
import { previewSubscriptionAddOn } from '../../src/billing/preview.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { DEFAULT_RENEWAL_POLICY, type RenewalPolicy, renewSubscription } from '../../src/billing/renewal.ts';
import { cancelScheduledChange } from '../../src/billing/scheduled-change.ts';
import { redeemAddOnCoupon, setSubscriptionAddOn } from '../../src/billing/subscription-add-ons.ts';
import {
  addSubscriptionCoupon,
  cancelSubscription,
  createSubscription,
  suspendSubscription,
} from '../../src/billing/subscriptions.ts';
import { changeTrial } from '../../src/billing/trials.ts';
import type { Db } from '../../src/db/database.ts';
import { DAY_MS } from '../../src/time.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { payOpenOffline } from '../support/collection.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

/**
 * What happens to a subscription at `now` must not depend on whether the renewal sweep has renewed
 * it yet: a change made after the period's end, before the sweep ran, gives the same money as the
 * same change after a sweep on time (the change first renews it up to now, as the sweep would).
 */
describe('after the period end, before the renewal sweep ran', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  const d = (iso: string) => new Date(iso);
  /** A flat monthly plan at 10% tax. */
  const flat = (amount: number, name: string) =>
    insertPlan(db, { name, currency: 'EUR', price: { model: 'FLAT_FEE', amount }, taxRatePpm: 100_000 });
  // Period 0 is March 2027 (31 days), period 1 April (30 days): on April 11, 20 of its 30 days are left.
  const start = d('2027-03-01T00:00:00Z');
  const april = d('2027-04-01T00:00:00Z');
  const day10 = d('2027-04-11T00:00:00Z');

  /** A subscription to `plan` from March 1, its March invoice paid. */
  async function subscribed(plan: string): Promise<string> {
    const customer = await insertCustomer(db);
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      start,
    );
    await payOpenOffline(db, subscription.id);
    return subscription.id;
  }

  /** The subscription's invoices, oldest first: [period index, billing reason, total, amount due]. */
  const invoicesOf = async (id: string) =>
    (
      await db
        .selectFrom('invoices')
        .select(['period_index', 'billing_reason', 'total', 'amount_due'])
        .where('subscription_id', '=', id)
        .orderBy('created_at')
        // Periods caught up in one transaction share its created_at: in period order.
        .orderBy('period_index')
        .orderBy('id')
        .execute()
    ).map((i) => [i.period_index, i.billing_reason, i.total, i.amount_due]);

  const rowOf = (id: string) =>
    db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  it('an upgrade 3000 → 6000 on day 10 of April bills April 3000 and the 20 days left 2000, as with a sweep on time; the preview says so and writes nothing', async () => {
    const [basic, pro] = [await flat(3000, 'Basic'), await flat(6000, 'Pro')];
    const lagging = await subscribed(basic);
    const onTime = await subscribed(basic);
    await renewSubscription(db, 'system', onTime, april);

    // The preview renews April first (3000, tax 300), then prorates its 20 days left:
    // unused 3000 × 20/30 = −2000 (−200), remaining 6000 × 20/30 = +4000 (+400): 2000, tax 200.
    const preview = await changeSubscription(db, 'system', lagging, { planId: pro }, day10, true);
    expect(preview.proration.lines.map((l) => [l.type, l.signedAmount, l.taxAmount])).toEqual([
      ['CREDIT', -2000n, -200n],
      ['CHARGE', 4000n, 400n],
    ]);
    expect(preview.proration).toMatchObject({ subtotal: 2000n, tax: 200n, total: 2200n });
    expect(preview.proration.periodEnd).toEqual(d('2027-05-01T00:00:00Z'));
    expect(preview.subscription).toMatchObject({ plan_id: basic, current_period_index: 1 });
    // Nothing written: March's invoice only, the subscription still on March as the sweep left it.
    expect(await invoicesOf(lagging)).toEqual([[0, 'subscription_create', 3300n, 0n]]);
    expect(await rowOf(lagging)).toMatchObject({
      plan_id: basic,
      current_period_index: 0,
      next_renewal_at: april,
    });

    const change = await changeSubscription(db, 'system', lagging, { planId: pro }, day10, false);
    const changedOnTime = await changeSubscription(db, 'system', onTime, { planId: pro }, day10, false);
    expect(change.proration).toMatchObject({ subtotal: 2000n, tax: 200n, total: 2200n });
    expect(change.invoice).toMatchObject({ total: 2200n, status: 'OPEN' });
    expect(change.subscription).toMatchObject({ plan_id: pro, current_period_index: 1 });
    // April: 3300 on Basic, then 2200 for the change, not 6600 on Pro for the whole month (1100 more).
    const april3300 = [
      [0, 'subscription_create', 3300n, 0n],
      [1, 'subscription_cycle', 3300n, 3300n],
      [null, 'subscription_update', 2200n, 2200n],
    ];
    expect(await invoicesOf(lagging)).toEqual(april3300);
    expect(await invoicesOf(onTime)).toEqual(april3300);
    expect(changedOnTime.proration.total).toBe(change.proration.total);

    // The sweep finds April invoiced and bills May on Pro: 6000, tax 600.
    expect((await renewSubscription(db, 'system', lagging, day10))?.invoices).toEqual([]);
    const may = await renewSubscription(db, 'system', lagging, d('2027-05-01T00:00:00Z'));
    expect(may?.invoices.map((i) => [i.period_index, i.total])).toEqual([[2, 6600n]]);
  });

  it('a downgrade 6000 → 3000 on day 10 of April bills April 6000 less the 20 days left 2000 (tax 200), as with a sweep on time', async () => {
    const [pro, basic] = [await flat(6000, 'Pro'), await flat(3000, 'Basic')];
    const lagging = await subscribed(pro);
    const onTime = await subscribed(pro);
    await renewSubscription(db, 'system', onTime, april);

    // April renewed at 6600 (OPEN); unused 6000 × 20/30 = −4000 (−400), remaining 3000 × 20/30 =
    // +2000 (+200): a credit of 2200 with its tax, taken off what April's invoice still owes.
    const change = await changeSubscription(db, 'system', lagging, { planId: basic }, day10, false);
    const changedOnTime = await changeSubscription(db, 'system', onTime, { planId: basic }, day10, false);
    expect(change.proration).toMatchObject({ subtotal: -2000n, tax: -200n, total: -2200n });
    expect(change.invoice).toBeNull();
    expect(change.creditedToInvoice?.amount).toBe(2200n);
    // Not 3300 on Basic for the whole of April (1100 less).
    const april4400 = [
      [0, 'subscription_create', 6600n, 0n],
      [1, 'subscription_cycle', 6600n, 4400n],
    ];
    expect(await invoicesOf(lagging)).toEqual(april4400);
    expect(await invoicesOf(onTime)).toEqual(april4400);
    expect(changedOnTime.creditedToInvoice?.amount).toBe(2200n);
  });

  it('a change scheduled for the next cycle on day 10 of April starts in May, not with April', async () => {
    const [basic, pro] = [await flat(3000, 'Basic'), await flat(6000, 'Pro')];
    const lagging = await subscribed(basic);
    const scheduled = await changeSubscription(
      db,
      'system',
      lagging,
      { planId: pro, when: 'next_cycle' },
      day10,
      false,
    );
    expect(scheduled.subscription).toMatchObject({ scheduled_plan_id: pro, current_period_index: 1 });
    await renewSubscription(db, 'system', lagging, d('2027-05-01T00:00:00Z'));
    expect((await invoicesOf(lagging)).map(([index, , total]) => [index, total])).toEqual([
      [0, 3300n],
      [1, 3300n],
      [2, 6600n],
    ]);
  });

  it('a subscription whose cancellation at period end came before the sweep ran cannot change: 409, nothing changed', async () => {
    const [basic, pro] = [await flat(3000, 'Basic'), await flat(6000, 'Pro')];
    const lagging = await subscribed(basic);
    await cancelSubscription(db, 'system', lagging, true, d('2027-03-20T00:00:00Z'));
    await expect(
      changeSubscription(db, 'system', lagging, { planId: pro }, day10, false),
    ).rejects.toMatchObject({
      code: 'subscription_not_changeable',
    });
    expect(await rowOf(lagging)).toMatchObject({ status: 'ACTIVE', plan_id: basic, current_period_index: 0 });
    expect(await invoicesOf(lagging)).toEqual([[0, 'subscription_create', 3300n, 0n]]);
  });

  it('a cancellation now on day 10 of April bills April (3300) before it ends, as with a sweep on time; not 10 days free', async () => {
    const basic = await flat(3000, 'Basic');
    const lagging = await subscribed(basic);
    const onTime = await subscribed(basic);
    await renewSubscription(db, 'system', onTime, april);
    for (const id of [lagging, onTime]) {
      const cancelled = await cancelSubscription(db, 'system', id, false, day10);
      expect(cancelled).toMatchObject({ status: 'CANCELLED', cancelled_at: day10, current_period_index: 1 });
      expect(await invoicesOf(id)).toEqual([
        [0, 'subscription_create', 3300n, 0n],
        [1, 'subscription_cycle', 3300n, 3300n],
      ]);
    }
  });

  it('a cancellation at period end on day 10 of April ends with April (May 1), April billed; not at April 1 with April free', async () => {
    const basic = await flat(3000, 'Basic');
    const lagging = await subscribed(basic);
    const may = d('2027-05-01T00:00:00Z');
    const scheduled = await cancelSubscription(db, 'system', lagging, true, day10);
    expect(scheduled).toMatchObject({ status: 'ACTIVE', cancel_at_period_end: true, cancel_at: may });
    await renewSubscription(db, 'system', lagging, may);
    expect(await rowOf(lagging)).toMatchObject({ status: 'CANCELLED', cancelled_at: may });
    expect((await invoicesOf(lagging)).map(([index, , total]) => [index, total])).toEqual([
      [0, 3300n],
      [1, 3300n],
    ]);
  });

  it('an add-on added after the period end, before the sweep ran, is charged for the rest of the period holding now and billed from the next one: the periods started before are billed without it', async () => {
    // On the real clock (the add-on API takes no time): a monthly subscription from the first of the
    // month two months ago, renewed no further, so the last two periods have started unbilled.
    const now = new Date();
    const started = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 2, 1));
    const thisStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const nextStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    const basic = await flat(3000, 'Basic');
    const customer = await insertCustomer(db);
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: basic },
      started,
    );
    const addOn = await app.api('POST', '/v1/add-ons', { name: 'Seats', currency: 'EUR', amount: 500 });
    expect(addOn.status).toBe(201);
    // The preview renews too (rolled back): the next invoice is the period after the one holding now,
    // and the proration is for the rest of the period holding now.
    const preview = await app.api('POST', `/v1/subscriptions/${subscription.id}/add-ons/preview`, {
      add_on: addOn.body.id,
      quantity: 2,
    });
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({
      period_start: nextStart.toISOString(),
      subtotal: 4000,
      tax: 400,
      total: 4400,
      proration: { billing_reason: 'subscription_update', period_end: nextStart.toISOString() },
    });
    expect(preview.body.proration.total).toBeGreaterThan(0);
    expect(await invoicesOf(subscription.id)).toHaveLength(1);
    const added = await app.api('POST', `/v1/subscriptions/${subscription.id}/add-ons`, {
      add_on: addOn.body.id,
      quantity: 2,
    });
    expect(added.status).toBe(201);
    // The two periods that started before are invoiced at 3300 each, without the add-on (not 4400),
    // then the 2 seats for the rest of this period: 1000 × (seconds left) / (the month's seconds),
    // rounded half up, tax 10% (not nothing, as for a row left on a period that has ended).
    expect(await renewSubscription(db, 'system', subscription.id, new Date())).toMatchObject({
      invoices: [],
    });
    expect((await invoicesOf(subscription.id)).map(([index, , total]) => [index, total]).slice(0, 3)).toEqual(
      [
        [0, 3300n],
        [1, 3300n],
        [2, 3300n],
      ],
    );
    const charged = await db
      .selectFrom('invoices')
      .selectAll()
      .where('id', '=', added.body.invoice)
      .executeTakeFirstOrThrow();
    expect(charged).toMatchObject({ billing_reason: 'subscription_update', period_end: nextStart });
    const from = charged.period_start!;
    expect(from >= now && from < nextStart).toBe(true);
    const left = BigInt(Math.floor((nextStart.getTime() - from.getTime()) / 1000));
    const month = BigInt((nextStart.getTime() - thisStart.getTime()) / 1000);
    const subtotal = (2n * 1000n * left + month) / (2n * month);
    expect(charged).toMatchObject({ subtotal, tax: (subtotal + 5n) / 10n });
    const next = await renewSubscription(db, 'system', subscription.id, nextStart);
    // The next period: 3000 + 2 × 500, tax 400.
    expect(next?.invoices.map((i) => [i.period_index, i.total])).toEqual([[3, 4400n]]);
  });

  it('an add-on raised 1 → 3 on day 10 of April bills April with 1 seat (3850) and the 2 seats added for the 20 days left (734), as with a sweep on time; the preview says so and writes nothing', async () => {
    const basic = await flat(3000, 'Basic');
    const seats = (await createAddOn(db, 'system', { name: 'Seats', currency: 'EUR', amount: 500n })).id;
    const lagging = await subscribed(basic);
    const onTime = await subscribed(basic);
    // 1 seat from March 1, billed from April on (proration none: no add-on invoice for March).
    for (const id of [lagging, onTime]) {
      expect(
        (
          await setSubscriptionAddOn(
            db,
            'system',
            id,
            { addOnId: seats, quantity: 1, proration: 'none' },
            start,
          )
        ).invoice,
      ).toBeNull();
    }
    await renewSubscription(db, 'system', onTime, april);
    const raise = { addOnId: seats, quantity: 3 };

    // April renewed first (3000 + 500, tax 350), then 2 seats × 500 for 20 of April's 30 days:
    // 1000 × 20/30 = 666.67 → 667, tax 66.7 → 67: 734. May: 3000 + 3 × 500 = 4500, tax 450.
    const preview = await previewSubscriptionAddOn(
      db,
      'system',
      lagging,
      raise,
      day10,
      DEFAULT_RENEWAL_POLICY,
    );
    expect(preview.proration).toMatchObject({
      subtotal: 667n,
      tax: 67n,
      total: 734n,
      periodStart: day10,
      periodEnd: d('2027-05-01T00:00:00Z'),
    });
    expect(preview.next).toMatchObject({ periodStart: d('2027-05-01T00:00:00Z'), total: 4950n });
    // Nothing written: March's invoice only, the subscription still on March as the sweep left it.
    expect(await invoicesOf(lagging)).toEqual([[0, 'subscription_create', 3300n, 0n]]);
    expect(await rowOf(lagging)).toMatchObject({ current_period_index: 0, next_renewal_at: april });

    const raised = await setSubscriptionAddOn(db, 'system', lagging, raise, day10);
    const raisedOnTime = await setSubscriptionAddOn(db, 'system', onTime, raise, day10);
    expect(raised.invoice).toMatchObject({
      total: 734n,
      period_start: day10,
      period_end: d('2027-05-01T00:00:00Z'),
    });
    // April: 3850 with 1 seat, then 734 for the 2 seats added; not 4950 with 3 seats for all of April.
    const april3850 = [
      [0, 'subscription_create', 3300n, 0n],
      [1, 'subscription_cycle', 3850n, 3850n],
      [null, 'subscription_update', 734n, 734n],
    ];
    expect(await invoicesOf(lagging)).toEqual(april3850);
    expect(await invoicesOf(onTime)).toEqual(april3850);
    expect(raisedOnTime.invoice?.total).toBe(raised.invoice?.total);
    expect((await renewSubscription(db, 'system', lagging, day10))?.invoices).toEqual([]);
    const may = await renewSubscription(db, 'system', lagging, d('2027-05-01T00:00:00Z'));
    expect(may?.invoices.map((i) => [i.period_index, i.total])).toEqual([[2, 4950n]]);
  });

  it('with BILL_SUSPENDED_SUBSCRIPTIONS, an add-on raised on day 10 of April on a SUSPENDED subscription renews April under that policy first, then charges the 20 days left (734)', async () => {
    const basic = await flat(3000, 'Basic');
    const seats = (await createAddOn(db, 'system', { name: 'Seats', currency: 'EUR', amount: 500n })).id;
    const lagging = await subscribed(basic);
    await setSubscriptionAddOn(
      db,
      'system',
      lagging,
      { addOnId: seats, quantity: 1, proration: 'none' },
      start,
    );
    await suspendSubscription(db, 'system', lagging, d('2027-03-15T00:00:00Z'));
    const billSuspended = { billSuspended: true };
    const raise = { addOnId: seats, quantity: 3 };
    // As the sweep under this policy would have: April invoiced (3850, 1 seat), then 2 seats × 20/30.
    const preview = await previewSubscriptionAddOn(db, 'system', lagging, raise, day10, billSuspended);
    expect(preview.proration).toMatchObject({ total: 734n, periodEnd: d('2027-05-01T00:00:00Z') });
    const raised = await setSubscriptionAddOn(db, 'system', lagging, raise, day10, billSuspended);
    expect(raised.invoice).toMatchObject({ total: 734n, period_end: d('2027-05-01T00:00:00Z') });
    expect((await invoicesOf(lagging)).map(([index, , total]) => [index, total])).toEqual([
      [0, 3300n],
      [1, 3850n],
      [null, 734n],
    ]);
    expect(await rowOf(lagging)).toMatchObject({ status: 'SUSPENDED', current_period_index: 1 });
  });

  it('cancelling a change scheduled for April, on day 10 of April, is too late (409) as with a sweep on time: April on the new plan', async () => {
    const [basic, pro] = [await flat(3000, 'Basic'), await flat(6000, 'Pro')];
    const lagging = await subscribed(basic);
    await changeSubscription(
      db,
      'system',
      lagging,
      { planId: pro, when: 'next_cycle' },
      d('2027-03-20T00:00:00Z'),
      false,
    );
    await expect(cancelScheduledChange(db, 'system', lagging, day10)).rejects.toMatchObject({
      code: 'no_scheduled_change',
    });
    // Nothing changed: still scheduled; the sweep applies it to April (6000, tax 600), not Basic's 3300.
    expect(await rowOf(lagging)).toMatchObject({ scheduled_plan_id: pro, current_period_index: 0 });
    await renewSubscription(db, 'system', lagging, day10);
    expect((await invoicesOf(lagging)).map(([index, , total]) => [index, total])).toEqual([
      [0, 3300n],
      [1, 6600n],
    ]);
  });

  it('a suspension on day 10 of April bills April (3300) first, as with a sweep on time; not 10 days free', async () => {
    const basic = await flat(3000, 'Basic');
    const lagging = await subscribed(basic);
    const suspended = await suspendSubscription(db, 'system', lagging, day10, 'customer asked');
    expect(suspended).toMatchObject({ status: 'SUSPENDED', current_period_index: 1 });
    expect((await invoicesOf(lagging)).map(([index, , total]) => [index, total])).toEqual([
      [0, 3300n],
      [1, 3300n],
    ]);
  });

  it('a trial that ended on March 11 cannot be ended or extended on March 15 before the sweep ran (409): March 11 stays the anchor', async () => {
    const basic = await flat(3000, 'Basic');
    const customer = await insertCustomer(db);
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: basic, trialDays: 10 },
      start,
    );
    const march15 = d('2027-03-15T00:00:00Z');
    for (const end of ['now', d('2027-03-25T00:00:00Z')] as const) {
      await expect(changeTrial(db, 'system', subscription.id, end, march15)).rejects.toMatchObject({
        code: 'not_in_trial',
      });
    }
    // Nothing changed; the sweep ends the trial on March 11 and bills period 0 from there: 3300.
    expect(await rowOf(subscription.id)).toMatchObject({
      status: 'IN_TRIAL',
      billing_anchor: d('2027-03-11T00:00:00Z'),
    });
    await renewSubscription(db, 'system', subscription.id, march15);
    expect(await rowOf(subscription.id)).toMatchObject({
      status: 'ACTIVE',
      current_period_start: d('2027-03-11T00:00:00Z'),
      current_period_end: d('2027-04-11T00:00:00Z'),
    });
    expect((await invoicesOf(subscription.id)).map(([index, , total]) => [index, total])).toEqual([
      [0, 3300n],
    ]);
  });

  it('a coupon redeemed after the period end, before the sweep ran, discounts from the next period, not the periods started before', async () => {
    // On the real clock, as the add-on test: the last two periods have started unbilled.
    const now = new Date();
    const started = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 2, 1));
    const basic = await flat(3000, 'Basic');
    const customer = await insertCustomer(db);
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: basic },
      started,
    );
    await createCoupon(db, 'system', { code: 'LAG-HALF', percentOffPpm: 500_000, duration: 'FOREVER' });
    await addSubscriptionCoupon(db, 'system', subscription.id, 'LAG-HALF');
    // The two periods that started before: 3300 each, not 1650.
    expect((await invoicesOf(subscription.id)).map(([index, , total]) => [index, total])).toEqual([
      [0, 3300n],
      [1, 3300n],
      [2, 3300n],
    ]);
    // The next period: 3000 − 1500, tax 150.
    const next = await renewSubscription(
      db,
      'system',
      subscription.id,
      new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)),
    );
    expect(next?.invoices.map((i) => [i.period_index, i.total])).toEqual([[3, 1650n]]);
  });

  it('a ONCE coupon redeemed with the catch-up of two periods counts for the next period only: a free plan upgraded in it is half off', async () => {
    // On the real clock, as above. The coupon's redemption and the catch-up invoices of the two
    // periods started before share a transaction (one `now()`): it counts from the next period on,
    // takes nothing off its free invoice, and is that period's coupon when it is upgraded mid-period,
    // exactly as for a subscription whose sweep was on time (`onTime`, redeemed in its first period).
    const now = new Date();
    const month = (offset: number) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
    // 503.44: half of it, 25172, is a multiple of 28, 29 and 31 and even, so any month's days divide it.
    const [free, pro] = [await flat(0, 'Free'), await flat(50_344, 'Pro')];
    await createCoupon(db, 'system', { code: 'LAG-ONCE', percentOffPpm: 500_000, duration: 'ONCE' });
    const upgradedMidNextMonth = async (started: Date) => {
      const customer = await insertCustomer(db);
      const { subscription } = await createSubscription(
        db,
        'system',
        { customerId: customer, planId: free },
        started,
      );
      await addSubscriptionCoupon(db, 'system', subscription.id, 'LAG-ONCE');
      const next = await renewSubscription(db, 'system', subscription.id, month(1));
      expect(next?.invoices.map((i) => i.total)).toEqual([0n]);
      const sixteenth = new Date(month(1).getTime() + 15 * DAY_MS);
      const { invoice } = await changeSubscription(
        db,
        'system',
        subscription.id,
        { planId: pro },
        sixteenth,
        false,
      );
      return { id: subscription.id, invoice: invoice! };
    };
    const lagging = await upgradedMidNextMonth(month(-2));
    // By period (periods 1 and 2 were invoiced in one transaction, maybe in one millisecond).
    const invoiced = await db
      .selectFrom('invoices')
      .select(['period_index', 'total'])
      .where('subscription_id', '=', lagging.id)
      .orderBy('period_index')
      .execute();
    expect(invoiced.map((i) => [i.period_index, i.total])).toEqual([
      [0, 0n],
      [1, 0n],
      [2, 0n],
      [3, 0n],
      [null, lagging.invoice.total],
    ]);
    // From the 16th to the month's end: (days − 15) of its days, half off.
    const days = BigInt((month(2).getTime() - month(1).getTime()) / DAY_MS);
    expect(lagging.invoice.subtotal).toBe((25_172n * (days - 15n)) / days);
    const onTime = await upgradedMidNextMonth(month(0));
    expect([lagging.invoice.subtotal, lagging.invoice.tax]).toEqual([
      onTime.invoice.subtotal,
      onTime.invoice.tax,
    ]);
  });

  it('a ONCE coupon redeemed on an add-on with the catch-up of two periods counts for the next period only: capped to nothing there behind another, it discounts a raise in it', async () => {
    // On the real clock, as above. Seats at 1000 carry a FOREVER 1000-off coupon from the start, so
    // the ONCE 50% one redeemed later (with the catch-up of periods 1 and 2 when the sweep lagged)
    // takes nothing off its first period, the next; raised 1 → 5 on its 16th, the 4 seats are
    // discounted by what the period's coupons take off 5 seats beyond 1 (1000 + 2500 − 1000: the
    // ONCE one's 2500, for the rest of the period), as for a subscription whose sweep was on time.
    const now = new Date();
    const month = (offset: number) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
    const basic = await flat(3000, 'Basic');
    const seats = (await createAddOn(db, 'system', { name: 'Seats', currency: 'EUR', amount: 1000n })).id;
    await createCoupon(db, 'system', {
      code: 'SEATS-1000',
      amountOff: 1000n,
      currency: 'EUR',
      duration: 'FOREVER',
    });
    const halfOnce = await createCoupon(db, 'system', {
      code: 'SEATS-HALF-ONCE',
      percentOffPpm: 500_000,
      duration: 'ONCE',
    });
    const raisedMidNextMonth = async (started: Date) => {
      const customer = await insertCustomer(db);
      const { subscription } = await createSubscription(
        db,
        'system',
        { customerId: customer, planId: basic },
        started,
      );
      const seat = { addOnId: seats, quantity: 1, proration: 'none' as const };
      await setSubscriptionAddOn(
        db,
        'system',
        subscription.id,
        { ...seat, couponCode: 'SEATS-1000' },
        started,
      );
      await redeemAddOnCoupon(db, 'system', subscription.id, seats, 'SEATS-HALF-ONCE');
      const next = await renewSubscription(db, 'system', subscription.id, month(1));
      // Seats 1000 − 1000; the ONCE coupon capped to nothing (no line), counted.
      expect(next?.invoices.map((i) => i.subtotal)).toEqual([3000n]);
      const sixteenth = new Date(month(1).getTime() + 15 * DAY_MS);
      const { invoice } = await setSubscriptionAddOn(
        db,
        'system',
        subscription.id,
        { ...seat, quantity: 5, proration: 'prorate_now' },
        sixteenth,
      );
      const credits = await db
        .selectFrom('invoice_lines')
        .select(['coupon_id', 'amount'])
        .where('invoice_id', '=', invoice!.id)
        .where('type', '=', 'CREDIT')
        .orderBy('position')
        .execute();
      return { invoice: invoice!, credits };
    };
    const lagging = await raisedMidNextMonth(month(-2));
    const days = BigInt((month(2).getTime() - month(1).getTime()) / DAY_MS);
    const rest = (amount: bigint) => (amount * (days - 15n) * 2n + days) / (2n * days);
    // 4000 − 2500 for the rest of the period; without the ONCE coupon, the 4000 whole, no credit.
    expect(lagging.invoice.subtotal).toBe(rest(1500n));
    expect(lagging.credits).toEqual([{ coupon_id: halfOnce.id, amount: rest(1500n) - rest(4000n) }]);
    const onTime = await raisedMidNextMonth(month(0));
    expect(lagging.credits).toEqual(onTime.credits);
    expect([lagging.invoice.subtotal, lagging.invoice.tax]).toEqual([
      onTime.invoice.subtotal,
      onTime.invoice.tax,
    ]);
  });
});

/**
 * With `BILL_SUSPENDED_SUBSCRIPTIONS` on the renewal sweep bills SUSPENDED subscriptions, so the
 * catch-up before a change to one (over the API) renews it under that policy too: the money is then
 * the same whether or not the sweep has renewed it yet.
 */
describe('with BILL_SUSPENDED_SUBSCRIPTIONS, a SUSPENDED subscription after the period end, before the renewal sweep ran', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp({ BILL_SUSPENDED_SUBSCRIPTIONS: '1' });
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  const billSuspended: RenewalPolicy = { billSuspended: true };
  // On the real clock (the coupon and add-on API takes no time): a monthly subscription from the
  // first of the month two months ago, renewed into last month and suspended in its middle.
  const now = new Date();
  const started = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 2, 1));
  const lastStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  const thisStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const nextStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  const midLast = new Date(lastStart.getTime() + 14 * 86_400_000);

  /**
   * Two subscriptions to `plan` (with coupon `couponCode`) from `started`, `prepare`d, renewed into
   * last month and suspended in its middle: the first renewed into this month by a sweep on time.
   * @returns [on time, lagging]
   */
  async function suspendedPair(
    plan: string,
    couponCode?: string,
    prepare?: (id: string) => Promise<unknown>,
  ): Promise<[string, string]> {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const customer = await insertCustomer(db);
      const { subscription } = await createSubscription(
        db,
        'system',
        { customerId: customer, planId: plan, ...(couponCode ? { couponCode } : {}) },
        started,
      );
      await prepare?.(subscription.id);
      await renewSubscription(db, 'system', subscription.id, lastStart, false, billSuspended);
      await suspendSubscription(db, 'system', subscription.id, midLast, 'customer asked');
      ids.push(subscription.id);
    }
    await renewSubscription(db, 'system', ids[0]!, thisStart, false, billSuspended);
    return [ids[0]!, ids[1]!];
  }

  /** After the change: the sweep under the policy renews both up to now; this month's total of each. */
  async function thisMonthOf(ids: readonly string[]): Promise<bigint[]> {
    const totals: bigint[] = [];
    for (const id of ids) {
      await renewSubscription(db, 'system', id, new Date(), false, billSuspended);
      const invoice = await db
        .selectFrom('invoices')
        .select('total')
        .where('subscription_id', '=', id)
        .where('period_index', '=', 2)
        .executeTakeFirstOrThrow();
      totals.push(invoice.total);
    }
    return totals;
  }

  const flat = (currency: string, amount: number, taxRatePpm = 0) =>
    insertPlan(db, { currency, price: { model: 'FLAT_FEE', amount }, taxRatePpm });

  it('JPY: a 50% coupon redeemed this month discounts from next month: this month ¥3000 (not ¥1500), next ¥1500', async () => {
    const plan = await flat('JPY', 3000);
    await createCoupon(db, 'system', { code: 'SUSP-HALF-JPY', percentOffPpm: 500_000, duration: 'FOREVER' });
    const ids = await suspendedPair(plan);
    for (const id of ids) {
      const redeemed = await app.api('POST', `/v1/subscriptions/${id}/coupons`, { coupon: 'SUSP-HALF-JPY' });
      expect(redeemed.status).toBe(201);
    }
    expect(await thisMonthOf(ids)).toEqual([3000n, 3000n]);
    // Next month: ¥3000 − 50% = ¥1500.
    const next = await renewSubscription(db, 'system', ids[1], nextStart, false, billSuspended);
    expect(next?.invoices.map((i) => [i.period_index, i.total])).toEqual([[3, 1500n]]);
  });

  it('JPY: a 50% coupon removed this month still discounts this month: ¥1500 (not ¥3000)', async () => {
    const plan = await flat('JPY', 3000);
    await createCoupon(db, 'system', { code: 'SUSP-GONE-JPY', percentOffPpm: 500_000, duration: 'FOREVER' });
    const ids = await suspendedPair(plan, 'SUSP-GONE-JPY');
    for (const id of ids) {
      const [redemption] = (await app.api('GET', `/v1/subscriptions/${id}/coupons`)).body.data;
      const removed = await app.api('POST', `/v1/subscriptions/${id}/coupons/${redemption.id}/remove`);
      expect(removed.status).toBe(200);
    }
    // This month billed before the removal: ¥3000 − 50% = ¥1500.
    expect(await thisMonthOf(ids)).toEqual([1500n, 1500n]);
  });

  it('EUR: a 50% coupon redeemed on an add-on this month discounts it from next month: this month 3000 + 1000, tax 400 = 4400 (not 3850)', async () => {
    const plan = await flat('EUR', 3000, 100_000);
    const seats = (await createAddOn(db, 'system', { name: 'Seats', currency: 'EUR', amount: 1000n })).id;
    await createCoupon(db, 'system', { code: 'SUSP-HALF-SEAT', percentOffPpm: 500_000, duration: 'FOREVER' });
    // 1 seat from the start (proration none: billed from the next period's invoice on).
    const ids = await suspendedPair(plan, undefined, (id) =>
      setSubscriptionAddOn(db, 'system', id, { addOnId: seats, quantity: 1, proration: 'none' }, started),
    );
    for (const id of ids) {
      const redeemed = await app.api('POST', `/v1/subscriptions/${id}/add-ons/${seats}/coupons`, {
        coupon: 'SUSP-HALF-SEAT',
      });
      expect(redeemed.status).toBe(201);
    }
    // Not 3000 + (1000 − 500) = 3500, tax 350: 3850.
    expect(await thisMonthOf(ids)).toEqual([4400n, 4400n]);
    // Next month: 3000 + 1000 − 500 = 3500, tax 350.
    const next = await renewSubscription(db, 'system', ids[1], nextStart, false, billSuspended);
    expect(next?.invoices.map((i) => [i.period_index, i.total])).toEqual([[3, 3850n]]);
  });

  it('EUR: an add-on (1000) previewed and set this month is charged from next month: this month 3000, tax 300 = 3300 (not 4400)', async () => {
    const plan = await flat('EUR', 3000, 100_000);
    const addOn = await app.api('POST', '/v1/add-ons', { name: 'Seats', currency: 'EUR', amount: 1000 });
    expect(addOn.status).toBe(201);
    const ids = await suspendedPair(plan);
    for (const id of ids) {
      const preview = await app.api('POST', `/v1/subscriptions/${id}/add-ons/preview`, {
        add_on: addOn.body.id,
        quantity: 1,
      });
      expect(preview.status).toBe(200);
      // The next invoice is next month's: 3000 + 1000, tax 400.
      expect(preview.body).toMatchObject({ period_start: nextStart.toISOString(), total: 4400 });
      const added = await app.api('POST', `/v1/subscriptions/${id}/add-ons`, {
        add_on: addOn.body.id,
        quantity: 1,
      });
      expect(added.status).toBe(201);
    }
    expect(await thisMonthOf(ids)).toEqual([3300n, 3300n]);
  });

  it('EUR: cancelling a change to Pro (6000) scheduled for this month is too late (409): this month on Pro, 6000, tax 600 = 6600 (not 3300)', async () => {
    const [basic, pro] = [await flat('EUR', 3000, 100_000), await flat('EUR', 6000, 100_000)];
    const ids = await suspendedPair(basic, undefined, (id) =>
      changeSubscription(
        db,
        'system',
        id,
        { planId: pro, when: 'next_cycle' },
        new Date(lastStart.getTime() + 10 * 86_400_000),
        false,
      ),
    );
    for (const id of ids) {
      const cancelled = await app.api('POST', `/v1/subscriptions/${id}/scheduled-change/cancel`);
      expect([cancelled.status, cancelled.body.error?.code]).toEqual([409, 'no_scheduled_change']);
    }
    expect(await thisMonthOf(ids)).toEqual([6600n, 6600n]);
  });
});
