import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCoupon } from '../../src/billing/coupons.ts';
import { getInvoice } from '../../src/billing/invoices.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { renewSubscription } from '../../src/billing/renewal.ts';
import {
  addSubscriptionCoupon,
  cancelSubscription,
  createSubscription,
} from '../../src/billing/subscriptions.ts';
import { changeTrial } from '../../src/billing/trials.ts';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import type { Db } from '../../src/db/database.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

/**
 * What trials book (PRODUCT §5, §11: usage billed during trials as the plan says, and up to the
 * moment a subscription ends), hand-worked: a trial's usage billed when the trial ends early, is
 * extended or is cancelled; a coupon redeemed in a trial discounting the first paid period (not the
 * trial's usage); a REPEATING coupon counting periods from the trial's end on the 31st.
 */
describe('trials: what their end, change or cancellation bills', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());
  const d = (iso: string) => new Date(iso);
  const DAY_MS = 86_400_000;

  /** A monthly plan of 10000 minor units with a 14-day trial metering api_calls at 5 each, billing trial usage. */
  async function trialPlan(currency: string) {
    const plan = await insertPlan(db, {
      name: 'API',
      currency,
      price: { model: 'FLAT_FEE', amount: 10000 },
      trialDays: 14,
      metered: [{ code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 5 } }],
    });
    await db.updateTable('plans').set({ bill_trial_usage: true }).where('id', '=', plan).execute();
    return plan;
  }
  const use = (subscriptionId: string, eventId: string, value: bigint, at: Date) =>
    recordUsageEvent(db, 'system', { eventId, subscriptionId, code: 'api_calls', value, timestamp: at }, at);
  const invoicesOf = async (subscriptionId: string) => {
    const rows = await db
      .selectFrom('invoices')
      .select('id')
      .where('subscription_id', '=', subscriptionId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return Promise.all(
      rows.map(async (r) => {
        const invoice = await getInvoice(db, r.id);
        return {
          status: invoice.status,
          total: invoice.total,
          lines: invoice.lines.map((l) => [
            l.type,
            l.amount,
            l.quantity,
            l.metric_code,
            l.coupon_id !== null,
          ]),
        };
      }),
    );
  };

  it('a coupon redeemed in the trial (ONCE 50%, BHD) discounts the first period of a trial ended early, not the trial’s usage', async () => {
    const plan = await trialPlan('BHD');
    await createCoupon(db, 'system', { code: 'TRIAL-HALF-BHD', percentOffPpm: 500_000, duration: 'ONCE' });
    // Redemption reads the clock, so this trial runs from now.
    const t0 = new Date();
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: await insertCustomer(db), planId: plan },
      t0,
    );
    await addSubscriptionCoupon(db, 'system', subscription.id, 'TRIAL-HALF-BHD');
    await use(subscription.id, 'trial-bhd-1', 100n, new Date(t0.getTime() + 1000));
    const ended = await changeTrial(
      db,
      'system',
      subscription.id,
      'now',
      new Date(t0.getTime() + 3 * DAY_MS),
    );
    expect(ended.subscription.status).toBe('ACTIVE');
    // 10.000 BHD − 50% = 5.000, and the trial's 100 calls × 5 fils = 0.500 undiscounted: 5.500.
    expect(await invoicesOf(subscription.id)).toEqual([
      {
        status: 'OPEN',
        total: 5500n,
        lines: [
          ['CHARGE', 10000n, 1, null, false],
          ['CREDIT', -5000n, 1, null, true],
          ['CHARGE', 500n, 100, 'api_calls', false],
        ],
      },
    ]);
    const next = await renewSubscription(db, 'system', subscription.id, new Date(t0.getTime() + 34 * DAY_MS));
    expect(next?.invoices.map((i) => i.total)).toEqual([10000n]); // ONCE: the next period in full
  });

  it('cancelled now in its trial (BHD), the trial’s usage so far is billed on a final invoice, the fee not at all', async () => {
    const plan = await trialPlan('BHD');
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: await insertCustomer(db), planId: plan },
      d('2027-04-01T00:00:00Z'),
    );
    await use(subscription.id, 'trial-cancel-now', 100n, d('2027-04-03T00:00:00Z'));
    const cancelled = await cancelSubscription(
      db,
      'system',
      subscription.id,
      false,
      d('2027-04-05T00:00:00Z'),
    );
    expect(cancelled.status).toBe('CANCELLED');
    expect(await invoicesOf(subscription.id)).toEqual([
      { status: 'OPEN', total: 500n, lines: [['CHARGE', 500n, 100, 'api_calls', false]] },
    ]);
  });

  it('cancelled at the trial’s end (KWD), the trial’s usage is billed when it ends; no period is', async () => {
    const plan = await trialPlan('KWD');
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: await insertCustomer(db), planId: plan },
      d('2027-04-01T00:00:00Z'),
    );
    await use(subscription.id, 'trial-cancel-end', 100n, d('2027-04-03T00:00:00Z'));
    const scheduled = await cancelSubscription(
      db,
      'system',
      subscription.id,
      true,
      d('2027-04-05T00:00:00Z'),
    );
    expect(scheduled).toMatchObject({ status: 'IN_TRIAL', cancel_at: d('2027-04-15T00:00:00Z') });
    const end = await renewSubscription(db, 'system', subscription.id, d('2027-04-15T00:00:00Z'));
    expect(end?.subscription.status).toBe('CANCELLED');
    expect(await invoicesOf(subscription.id)).toEqual([
      { status: 'OPEN', total: 500n, lines: [['CHARGE', 500n, 100, 'api_calls', false]] },
    ]);
  });

  it('a trial extended (JPY) keeps the usage after its old end in the trial: billed once with the first period', async () => {
    const plan = await trialPlan('JPY');
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: await insertCustomer(db), planId: plan },
      d('2027-04-01T00:00:00Z'),
    );
    await use(subscription.id, 'trial-ext-1', 100n, d('2027-04-03T00:00:00Z'));
    await changeTrial(db, 'system', subscription.id, d('2027-04-25T00:00:00Z'), d('2027-04-10T00:00:00Z'));
    await use(subscription.id, 'trial-ext-2', 10n, d('2027-04-20T00:00:00Z')); // after the old end, Apr 15
    const first = await renewSubscription(db, 'system', subscription.id, d('2027-04-25T00:00:00Z'));
    expect(first?.invoices.map((i) => [i.period_start, i.period_end])).toEqual([
      [d('2027-04-25T00:00:00Z'), d('2027-05-25T00:00:00Z')],
    ]);
    // 10000 yen + 110 calls × 5 = 550.
    expect(await invoicesOf(subscription.id)).toEqual([
      {
        status: 'OPEN',
        total: 10550n,
        lines: [
          ['CHARGE', 10000n, 1, null, false],
          ['CHARGE', 550n, 110, 'api_calls', false],
        ],
      },
    ]);
  });

  it('a trial ending on January 31 (USD): a REPEATING 50% for 2 periods discounts Jan 31–Feb 28 and Feb 28–Mar 31, then stops; a plan change in the trial bills the new plan', async () => {
    const plan = await insertPlan(db, {
      currency: 'USD',
      price: { model: 'FLAT_FEE', amount: 2000 },
      trialDays: 10,
    });
    const pro = await insertPlan(db, {
      currency: 'USD',
      price: { model: 'FLAT_FEE', amount: 5000 },
      trialDays: 10,
    });
    await createCoupon(db, 'system', {
      code: 'TRIAL-REP-USD',
      percentOffPpm: 500_000,
      duration: 'REPEATING',
      durationInPeriods: 2,
    });
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: await insertCustomer(db), planId: plan, couponCode: 'TRIAL-REP-USD' },
      d('2027-01-21T00:00:00Z'),
    );
    // In the trial there is no period to prorate: the change is what the first period bills.
    const changed = await changeSubscription(
      db,
      'system',
      subscription.id,
      { planId: pro },
      d('2027-01-25T00:00:00Z'),
      false,
    );
    expect(changed.invoice).toBeNull();
    const billed = [];
    for (const at of ['2027-01-31', '2027-02-28', '2027-03-31', '2027-04-30']) {
      const renewal = await renewSubscription(db, 'system', subscription.id, d(`${at}T00:00:00Z`));
      billed.push(
        ...(renewal?.invoices ?? []).map((i) => [i.period_start?.toISOString().slice(0, 10), i.total]),
      );
    }
    expect(billed).toEqual([
      ['2027-01-31', 2500n],
      ['2027-02-28', 2500n],
      ['2027-03-31', 5000n],
      ['2027-04-30', 5000n],
    ]);
  });
});
