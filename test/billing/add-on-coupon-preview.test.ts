import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAddOn } from '../../src/billing/add-ons.ts';
import { createCoupon } from '../../src/billing/coupons.ts';
import { previewSubscriptionAddOn } from '../../src/billing/preview.ts';
import { DEFAULT_RENEWAL_POLICY, renewSubscription } from '../../src/billing/renewal.ts';
import { setSubscriptionAddOn } from '../../src/billing/subscription-add-ons.ts';
import {
  createSubscription,
  reactivateSubscription,
  suspendSubscription,
} from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

const d = (iso: string) => new Date(iso);

/**
 * The add-on preview (`previewSubscriptionAddOn`) counts a coupon it redeems from the period
 * `redeemCoupon` then sets (coupons.ts `firstPeriodIndex`: never a period before the one holding
 * now), and previews a SUSPENDED subscription's next invoice as the one reactivating it makes.
 */
describe('the add-on coupon preview of a suspended subscription', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  it('previews what the reactivation then invoices: EUR 100.00 + seats 3 × 20.00 less 50% for 1 period = 130.00', async () => {
    const plan = await insertPlan(db, { currency: 'EUR', price: { model: 'FLAT_FEE', amount: 10_000 } });
    const customer = await insertCustomer(db);
    const seats = await createAddOn(db, 'system', { name: 'Seats', currency: 'EUR', amount: 2000n });
    await createCoupon(db, 'system', {
      code: 'SEATS50X1',
      percentOffPpm: 500_000,
      duration: 'REPEATING',
      durationInPeriods: 1,
      appliesToAddOns: [seats.id],
    });
    const id = (
      await createSubscription(
        db,
        'system',
        { customerId: customer, planId: plan },
        d('2027-01-01T00:00:00Z'),
      )
    ).subscription.id;
    // Suspended in January (last invoice: period 0); February (period 1) is never invoiced.
    await suspendSubscription(db, 'system', id, d('2027-01-20T00:00:00Z'));
    const change = { addOnId: seats.id, quantity: 3, couponCode: 'SEATS50X1' };
    const now = d('2027-03-05T00:00:00Z');
    const { next, proration } = await previewSubscriptionAddOn(
      db,
      'system',
      id,
      change,
      now,
      DEFAULT_RENEWAL_POLICY,
    );
    // Before: the preview showed February (Feb 1 – Mar 1, invoiced "Feb 1", already past), and once
    // it previewed March it counted the coupon from period 1 ("last invoice + 1"): March was its
    // second period, not discounted (160.00), while redeemCoupon counts it from March (130.00).
    expect(proration).toBeNull();
    expect(next).toMatchObject({
      currency: 'EUR',
      periodStart: d('2027-03-01T00:00:00Z'),
      periodEnd: d('2027-04-01T00:00:00Z'),
      subtotal: 13_000n,
      total: 13_000n,
    });

    await setSubscriptionAddOn(db, 'system', id, change, now, DEFAULT_RENEWAL_POLICY);
    const resumed = await reactivateSubscription(db, 'system', id, d('2027-03-10T00:00:00Z'));
    const invoice = resumed.invoices[0]!;
    expect(invoice).toMatchObject({
      period_index: 2,
      currency: next!.currency,
      period_start: next!.periodStart,
      subtotal: next!.subtotal,
      total: next!.total,
    });
    const lines = await db
      .selectFrom('invoice_lines')
      .select(['type', 'amount'])
      .where('invoice_id', '=', invoice.id)
      .orderBy('position')
      .execute();
    expect(lines.map((l) => [l.type, l.amount])).toEqual(next!.lines.map((l) => [l.type, l.signedAmount]));
    // The coupon's one period was March: April bills 100.00 + 60.00.
    await renewSubscription(db, 'system', id, d('2027-04-01T00:00:00Z'));
    const april = await db
      .selectFrom('invoices')
      .select(['currency', 'total'])
      .where('subscription_id', '=', id)
      .where('period_index', '=', 3)
      .executeTakeFirstOrThrow();
    expect(april).toEqual({ currency: 'EUR', total: 16_000n });
  });
});
