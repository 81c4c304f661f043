import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, up } from '../../migrations/0049_redemption_first_period.ts';
import { createAddOn } from '../../src/billing/add-ons.ts';
import { createCoupon } from '../../src/billing/coupons.ts';
import { renewSubscription } from '../../src/billing/renewal.ts';
import { setSubscriptionAddOn } from '../../src/billing/subscription-add-ons.ts';
import { addSubscriptionCoupon, createSubscription } from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

/**
 * Migration 0049 backfills `coupon_redemptions.first_period_index` from the invoices made after each
 * redemption: rows made by the code before it get the index the code sets now (`redeemCoupon`), also
 * when a redemption shares its `created_at` with invoices of its own unit of work — the catch-up ones
 * before it (a lagging sweep), or the first period's after it (redeemed at the subscription's creation).
 */
describe('migration 0049: coupon redemptions count from their first period invoice', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  it('gives each existing redemption the first period invoice made after it, as redeemCoupon sets it', async () => {
    // On the real clock (the coupon API takes no time): months counted from this one.
    const now = new Date();
    const month = (offset: number) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
    const plan = await insertPlan(db, {
      name: 'Basic',
      currency: 'EUR',
      price: { model: 'FLAT_FEE', amount: 3000 },
    });
    const seats = (await createAddOn(db, 'system', { name: 'Seats', currency: 'EUR', amount: 500n })).id;
    for (const code of ['AT-CREATION', 'LAGGED', 'FUTURE-START', 'ON-TIME', 'ADD-ON-LAGGED']) {
      await createCoupon(db, 'system', { code, percentOffPpm: 100_000, duration: 'FOREVER' });
    }
    const subscribe = async (start: Date, couponCode?: string, at = start) =>
      (
        await createSubscription(
          db,
          'system',
          { customerId: await insertCustomer(db), planId: plan, startAt: start, couponCode },
          at,
        )
      ).subscription.id;
    // Redeemed as it was created, its first period invoiced after it in that transaction.
    await subscribe(month(0), 'AT-CREATION');
    // Redeemed with the catch-up of periods 1 and 2 in its transaction, then period 3 renewed.
    const lagged = await subscribe(month(-2));
    await addSubscriptionCoupon(db, 'system', lagged, 'LAGGED');
    await renewSubscription(db, 'system', lagged, month(1));
    // Starting next month: nothing invoiced yet.
    await subscribe(month(1), 'FUTURE-START', now);
    // Redeemed within its first period, nothing renewed after it.
    const onTime = await subscribe(month(0));
    await addSubscriptionCoupon(db, 'system', onTime, 'ON-TIME');
    // An add-on's coupon with a catch-up of periods 1 and 2.
    const addOnLagged = await subscribe(month(-2));
    await setSubscriptionAddOn(db, 'system', addOnLagged, {
      addOnId: seats,
      quantity: 1,
      proration: 'none',
      couponCode: 'ADD-ON-LAGGED',
    });
    const firstPeriods = () =>
      db
        .selectFrom('coupon_redemptions as r')
        .innerJoin('coupons as c', 'c.id', 'r.coupon_id')
        .select(['c.code', 'r.first_period_index'])
        .orderBy('c.code')
        .execute();
    const set = await firstPeriods();
    expect(set).toEqual([
      { code: 'ADD-ON-LAGGED', first_period_index: 3 },
      { code: 'AT-CREATION', first_period_index: 0 },
      { code: 'FUTURE-START', first_period_index: 0 },
      { code: 'LAGGED', first_period_index: 3 },
      { code: 'ON-TIME', first_period_index: 1 },
    ]);
    // As the migrator runs it: in a transaction, on an untyped database.
    await db.transaction().execute(async (trx) => {
      await down(trx as unknown as Kysely<unknown>);
      await up(trx as unknown as Kysely<unknown>);
    });
    expect(await firstPeriods()).toEqual(set);
  });
});
