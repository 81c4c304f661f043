import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCoupon } from '../../src/billing/coupons.ts';
import { renewSubscription } from '../../src/billing/renewal.ts';
import { addSubscriptionCoupon, createSubscription } from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import { payOpenOffline } from '../support/collection.ts';
import { moneyCoreDatabase } from '../support/money-core.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

/**
 * A subscription's coupons discount its invoices oldest redemption first (billing/coupons.ts
 * `couponDiscounts`: each on the whole amount, capped by what the ones before left). Ids carry their
 * creation time in milliseconds only, then random characters (db/ids.ts `newId`): two redemptions
 * made in one millisecond (two quick calls) sort at random by id, so ordering them by id could
 * apply the newer first.
 */
describe('two coupons redeemed on a subscription in one millisecond', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  it('CZK 2000 a month, 1500 off then 50% off: 1500 and 500 off (oldest first), not 1000 and 1000, however their ids sort', async () => {
    const plan = await insertPlan(db, { currency: 'CZK', price: { model: 'FLAT_FEE', amount: 2000 } });
    await createCoupon(db, 'system', {
      code: 'OFF1500-CZK',
      amountOff: 1500n,
      currency: 'CZK',
      duration: 'FOREVER',
    });
    await createCoupon(db, 'system', { code: 'HALF-CZK', percentOffPpm: 500_000, duration: 'FOREVER' });
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: await insertCustomer(db), planId: plan },
      new Date('2027-01-01T00:00:00Z'),
    );
    await payOpenOffline(db, subscription.id);
    const older = await addSubscriptionCoupon(db, 'system', subscription.id, 'OFF1500-CZK');
    // The second made within the first's millisecond, its random part sorting first: as an id made
    // 1 ms earlier does.
    const madeAt = Number.parseInt(older.id.slice('cr_'.length, 'cr_'.length + 10), 32);
    const clock = vi.spyOn(Date, 'now').mockReturnValue(madeAt - 1);
    let newer: Awaited<ReturnType<typeof addSubscriptionCoupon>>;
    try {
      newer = await addSubscriptionCoupon(db, 'system', subscription.id, 'HALF-CZK');
    } finally {
      clock.mockRestore();
    }
    expect(newer.id < older.id).toBe(true);

    const feb = await renewSubscription(db, 'system', subscription.id, new Date('2027-02-01T00:00:00Z'));
    const lines = await db
      .selectFrom('invoice_lines')
      .select(['type', 'amount', 'coupon_id'])
      .where('invoice_id', '=', feb!.invoices[0]!.id)
      .orderBy('position')
      .execute();
    // 1500 off first; 50% of 2000 is 1000, capped to the 500 left. Before: the 50% first (1000),
    // then the 1500 capped to 1000.
    expect(lines).toEqual([
      { type: 'CHARGE', amount: 2000n, coupon_id: null },
      { type: 'CREDIT', amount: -1500n, coupon_id: older.coupon_id },
      { type: 'CREDIT', amount: -500n, coupon_id: newer.coupon_id },
    ]);
    expect(feb!.invoices[0]).toMatchObject({ subtotal: 0n, total: 0n });
  });
});
