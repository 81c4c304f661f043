import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCoupon } from '../../src/billing/coupons.ts';
import { changeSubscription, prorate, prorateSigned } from '../../src/billing/proration.ts';
import { renewSubscription } from '../../src/billing/renewal.ts';
import {
  addSubscriptionCoupon,
  createSubscription,
  removeSubscriptionCoupon,
} from '../../src/billing/subscriptions.ts';
import { createTaxRate } from '../../src/billing/tax-rates.ts';
import type { Db } from '../../src/db/database.ts';
import { balanceOf } from '../../src/ledger/balances.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { ledgerIn, payOpenOffline } from '../support/collection.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

const DAY = 86_400n;

describe('prorate, hand-worked (amount × remaining / period, half up)', () => {
  it.each<[bigint, bigint, bigint, bigint]>([
    [3000n, 15n * DAY, 30n * DAY, 1500n], // half of a 30-day month
    [2800n, 7n * DAY, 28n * DAY, 700n], // a week of February 2027
    [1000n, 1n, 3n, 333n], // 333.33 → 333
    [1000n, 2n, 3n, 667n], // 666.67 → 667
    [5n, 1n, 2n, 3n], // 2.5 → 3 (half up)
    [1n, 2n, 4n, 1n], // 0.5 → 1
    [1000n, 1n, 30n * DAY, 0n], // one second of a month: 0.0004 → 0
    [999n, 0n, 30n * DAY, 0n], // nothing left
    [999n, 30n * DAY, 30n * DAY, 999n], // the whole period
    [1_000_000_000_000_000n, 1n, 3n, 333_333_333_333_333n], // 10^15 stays exact
  ])('prorate(%s, %s s, %s s) = %s', (amount, remaining, period, expected) => {
    expect(prorate(amount, remaining, period)).toBe(expected);
  });

  it.each([
    [-100n, 1n, 3n, -33n], // −33.33 → −33, the negative of 100's share
    [-5n, 1n, 2n, -3n], // −2.5 → −3: half up on its size
    [100n, 1n, 3n, 33n], // a positive amount as prorate
    [0n, 1n, 3n, 0n],
  ])('prorateSigned(%s, %s, %s) = %s', (amount, part, whole, expected) => {
    expect(prorateSigned(amount, part, whole)).toBe(expected);
  });
});

describe('changing plan or quantity mid-period', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  const d = (iso: string) => new Date(iso);
  const flat = (amount: number, name: string) =>
    insertPlan(db, { name, price: { model: 'FLAT_FEE', amount }, taxRatePpm: 100_000 });

  /** A flat monthly plan in `currency` at 10% tax (one customer per currency: `ledgerIn` reads its books). */
  const flatIn = (currency: string, amount: number, name: string, taxRatePpm = 100_000) =>
    insertPlan(db, { name, currency, price: { model: 'FLAT_FEE', amount }, taxRatePpm });
  const linesOf = (change: Awaited<ReturnType<typeof changeSubscription>>) =>
    change.proration.lines.map((l) => [l.type, l.signedAmount, l.taxAmount, l.couponId !== undefined]);

  it('a coupon applies to proration lines: with 50% FOREVER, 1000 → 2000 for the whole period charges 500, not 1000', async () => {
    const [basic, pro] = [await flatIn('NOK', 1000, 'Basic'), await flatIn('NOK', 2000, 'Pro')];
    const customer = await insertCustomer(db);
    const coupon = await createCoupon(db, 'system', {
      code: 'HALF-NOK',
      percentOffPpm: 500_000,
      duration: 'FOREVER',
    });
    const sub = (
      await createSubscription(
        db,
        'system',
        { customerId: customer, planId: basic, couponCode: 'HALF-NOK' },
        d('2027-02-01T00:00:00Z'),
      )
    ).subscription;
    // A coupon redeemed after the period was invoiced starts with the next period: not in this proration.
    await createCoupon(db, 'system', { code: 'LATE-NOK', percentOffPpm: 100_000, duration: 'ONCE' });
    await addSubscriptionCoupon(db, 'system', sub.id, 'LATE-NOK');
    // Period 0: 1000 − 500 = 500, tax 50: 550 owed.
    expect(await ledgerIn(app, 'NOK')).toEqual({
      'receivable:customer': 550,
      revenue: -500,
      tax_payable: -50,
    });

    // The whole period is left: the customer paid 500 for it and the new price is 2000 − 1000 = 1000.
    // Unused time −1000 (tax −100) and its coupon +500 (+50): −500, what was paid;
    // remaining time +2000 (tax +200) and its coupon −1000 (−100): +1000. Net 500, tax 50: 550.
    const change = await changeSubscription(
      db,
      'system',
      sub.id,
      { planId: pro },
      d('2027-02-01T00:00:00Z'),
      false,
    );
    expect(linesOf(change)).toEqual([
      ['CREDIT', -1000n, -100n, false],
      ['CHARGE', 500n, 50n, true],
      ['CHARGE', 2000n, 200n, false],
      ['CREDIT', -1000n, -100n, true],
    ]);
    expect(change.proration.lines.filter((l) => l.couponId).map((l) => l.couponId)).toEqual([
      coupon.id,
      coupon.id,
    ]);
    expect(change.invoice).toMatchObject({ subtotal: 500n, tax: 50n, total: 550n, status: 'OPEN' });
    expect(change.credited).toBe(0n);
    expect(await ledgerIn(app, 'NOK')).toEqual({
      'receivable:customer': 1100,
      revenue: -1000,
      tax_payable: -100,
    });
    // March on Pro: 2000 − 1000 = 1000, tax 100 (the ONCE coupon LATE-NOK takes 200 more: 800, 80).
    const next = await renewSubscription(db, 'system', sub.id, d('2027-03-01T00:00:00Z'));
    expect(next?.invoices.map((i) => [i.subtotal, i.tax, i.total])).toEqual([[800n, 80n, 880n]]);
  });

  it('a downgrade with a coupon credits only what was paid for the rest of the period, after the coupon', async () => {
    const [pro, basic] = [await flatIn('DKK', 5600, 'Pro'), await flatIn('DKK', 2800, 'Basic')];
    const customer = await insertCustomer(db);
    await createCoupon(db, 'system', { code: 'HALF-DKK', percentOffPpm: 500_000, duration: 'FOREVER' });
    const sub = (
      await createSubscription(
        db,
        'system',
        { customerId: customer, planId: pro, couponCode: 'HALF-DKK' },
        d('2027-02-01T00:00:00Z'),
      )
    ).subscription;
    // Period 0 (February, 28 days): 5600 − 2800 = 2800, tax 280: 3080, paid first (over an unpaid
    // invoice the credit would lower what it owes instead: proration-open-invoice.test.ts).
    await payOpenOffline(db, sub.id);
    // 7 of 28 days left: paid 2800 × 7/28 = 700 for them (unused −1400, coupon +700); on Basic they
    // cost 1400 × 7/28 = 350 (remaining +700, coupon −350). Net credit 350 (it was 1400 − 700 = 700).
    const change = await changeSubscription(
      db,
      'system',
      sub.id,
      { planId: basic },
      d('2027-02-22T00:00:00Z'),
      false,
    );
    expect(linesOf(change)).toEqual([
      ['CREDIT', -1400n, -140n, false],
      ['CHARGE', 700n, 70n, true],
      ['CHARGE', 700n, 70n, false],
      ['CREDIT', -350n, -35n, true],
    ]);
    expect(change.invoice).toBeNull();
    expect(change.credited).toBe(350n);
    // The credit (350 + 35 tax) is the customer's: February's 3080 was paid (offline receipts).
    expect(await ledgerIn(app, 'DKK')).toEqual({
      'receivable:customer': 0,
      offline_receipts: 3080,
      'customer_credit:customer': -385,
      revenue: -2800 + 350,
      tax_payable: -280 + 35,
    });
    // March on Basic: 2800, coupon −1400: 1400, tax 140: 1540, of which the 385 of credit pays part:
    // 1155 due. The credit no longer wipes the invoice (it was 1400 − 700 = 700, tax 70: 770).
    const next = await renewSubscription(db, 'system', sub.id, d('2027-03-01T00:00:00Z'));
    expect(next?.invoices.map((i) => [i.subtotal, i.tax, i.total])).toEqual([[1400n, 140n, 1540n]]);
    expect(await ledgerIn(app, 'DKK')).toEqual({
      'receivable:customer': 1155,
      offline_receipts: 3080,
      'customer_credit:customer': 0,
      revenue: -2800 + 350 - 1400,
      tax_payable: -280 + 35 - 140,
    });
  });

  it('an amount-off coupon is prorated on each side, capped at each plan’s price as in a full period', async () => {
    const [pro, basic] = [await flatIn('CZK', 2000, 'Pro', 0), await flatIn('CZK', 1000, 'Basic', 0)];
    const customer = await insertCustomer(db);
    await createCoupon(db, 'system', {
      code: 'OFF1500-CZK',
      amountOff: 1500n,
      currency: 'CZK',
      duration: 'FOREVER',
    });
    const sub = (
      await createSubscription(
        db,
        'system',
        { customerId: customer, planId: pro, couponCode: 'OFF1500-CZK' },
        d('2027-02-01T00:00:00Z'),
      )
    ).subscription;
    // Period 0: 2000 − 1500 = 500, paid first. Half the period left: paid 250 for it (unused −1000, coupon +750).
    await payOpenOffline(db, sub.id);
    // On Basic the coupon takes the whole 1000 (capped), so the rest costs 0 (remaining +500, coupon
    // −500). Net credit 250.
    const change = await changeSubscription(
      db,
      'system',
      sub.id,
      { planId: basic },
      d('2027-02-15T00:00:00Z'),
      false,
    );
    expect(linesOf(change)).toEqual([
      ['CREDIT', -1000n, 0n, false],
      ['CHARGE', 750n, 0n, true],
      ['CHARGE', 500n, 0n, false],
      ['CREDIT', -500n, 0n, true],
    ]);
    expect(change.credited).toBe(250n);
    expect(await ledgerIn(app, 'CZK')).toEqual({
      'receivable:customer': 0,
      offline_receipts: 500,
      'customer_credit:customer': -250,
      revenue: -500 + 250,
    });
  });

  it('a coupon removed mid-period discounts nothing charged after: an upgrade then charges the new price whole (SEK)', async () => {
    const [basic, pro] = [await flatIn('SEK', 1000, 'Basic'), await flatIn('SEK', 2000, 'Pro')];
    const customer = await insertCustomer(db);
    await createCoupon(db, 'system', { code: 'HALF-SEK', percentOffPpm: 500_000, duration: 'FOREVER' });
    const sub = (
      await createSubscription(
        db,
        'system',
        { customerId: customer, planId: basic, couponCode: 'HALF-SEK' },
        d('2027-02-01T00:00:00Z'),
      )
    ).subscription;
    // February: 1000 − 500 = 500, tax 50: 550, paid.
    await payOpenOffline(db, sub.id);
    const [redemption] = await db
      .selectFrom('coupon_redemptions')
      .select('id')
      .where('subscription_id', '=', sub.id)
      .execute();
    await removeSubscriptionCoupon(db, 'system', sub.id, redemption!.id, d('2027-02-08T00:00:00Z'));
    // Feb 15, 14 of 28 days left. Unused: 500 paid for the month → −1000/2 + 500/2 = −250 (tax −25).
    // Remaining on Pro, the coupon removed: 2000 × 14/28 = 1000 (tax 100), no coupon line.
    // Net 750 + 75 tax = 825 (it was 1000 − 500 → 500: 250 + 25 = 275, the removed coupon taking 550 off).
    const change = await changeSubscription(
      db,
      'system',
      sub.id,
      { planId: pro },
      d('2027-02-15T00:00:00Z'),
      false,
    );
    expect(linesOf(change)).toEqual([
      ['CREDIT', -500n, -50n, false],
      ['CHARGE', 250n, 25n, true],
      ['CHARGE', 1000n, 100n, false],
    ]);
    expect(change.invoice).toMatchObject({ subtotal: 750n, tax: 75n, total: 825n });
    await payOpenOffline(db, sub.id);
    // The period's basis now charges Pro undiscounted: a downgrade back on Feb 22 (7 days left)
    // credits 2000 × 7/28 = 500 and charges Basic 1000 × 7/28 = 250, undiscounted too: −250, −25 tax.
    const back = await changeSubscription(
      db,
      'system',
      sub.id,
      { planId: basic },
      d('2027-02-22T00:00:00Z'),
      false,
    );
    expect(linesOf(back)).toEqual([
      ['CREDIT', -500n, -50n, false],
      ['CHARGE', 250n, 25n, false],
    ]);
    // March on Basic, undiscounted as the renewal has it since the removal: 1000 + 100.
    const next = await renewSubscription(db, 'system', sub.id, d('2027-03-01T00:00:00Z'));
    expect(next?.invoices.map((i) => [i.subtotal, i.tax, i.total])).toEqual([[1000n, 100n, 1100n]]);
  });

  it('coupons the renewal counted for the period though they took nothing off discount an upgrade as the next renewal does: 20% on a free plan (BGN), ONCE 50% on a free plan’s first period (MYR), 10% behind a 1000 amount-off (ILS)', async () => {
    // BGN: a free plan with a 20% FOREVER coupon from Feb 1: February is 0 (no coupon line), PAID.
    const [free, pro] = [await flatIn('BGN', 0, 'Free'), await flatIn('BGN', 2000, 'Pro')];
    await createCoupon(db, 'system', { code: 'TWENTY-BGN', percentOffPpm: 200_000, duration: 'FOREVER' });
    const sub = (
      await createSubscription(
        db,
        'system',
        { customerId: await insertCustomer(db), planId: free, couponCode: 'TWENTY-BGN' },
        d('2027-02-01T00:00:00Z'),
      )
    ).subscription;
    // Feb 15 (14 of 28 days left) to Pro: nothing was paid to credit; Pro less the coupon is 1600 a
    // month, half of it 800 (1000 less 200), tax 80: 880. It was 1000 + 100: the coupon left out.
    const change = await changeSubscription(
      db,
      'system',
      sub.id,
      { planId: pro },
      d('2027-02-15T00:00:00Z'),
      false,
    );
    expect(linesOf(change)).toEqual([
      ['CHARGE', 1000n, 100n, false],
      ['CREDIT', -200n, -20n, true],
    ]);
    expect(change.invoice).toMatchObject({ subtotal: 800n, tax: 80n, total: 880n });
    const next = await renewSubscription(db, 'system', sub.id, d('2027-03-01T00:00:00Z'));
    expect(next?.invoices.map((i) => [i.subtotal, i.tax, i.total])).toEqual([[1600n, 160n, 1760n]]);

    // MYR: a ONCE 50% coupon on a free plan from Feb 1: February (0) was its one period, so an
    // upgrade to 2000 on Feb 15 is half off: 1000 − 500 = 500 + 50 tax (it was 1000 + 100, and the
    // coupon, used up, never took anything off); March is 2000 + 200, the coupon over.
    const [freeMyr, proMyr] = [await flatIn('MYR', 0, 'Free'), await flatIn('MYR', 2000, 'Pro')];
    await createCoupon(db, 'system', { code: 'HALF-ONCE-MYR', percentOffPpm: 500_000, duration: 'ONCE' });
    const once = (
      await createSubscription(
        db,
        'system',
        { customerId: await insertCustomer(db), planId: freeMyr, couponCode: 'HALF-ONCE-MYR' },
        d('2027-02-01T00:00:00Z'),
      )
    ).subscription;
    const onceUp = await changeSubscription(
      db,
      'system',
      once.id,
      { planId: proMyr },
      d('2027-02-15T00:00:00Z'),
      false,
    );
    expect(onceUp.invoice).toMatchObject({ subtotal: 500n, tax: 50n, total: 550n });
    await payOpenOffline(db, once.id);
    const marMyr = await renewSubscription(db, 'system', once.id, d('2027-03-01T00:00:00Z'));
    expect(marMyr?.invoices.map((i) => [i.subtotal, i.tax])).toEqual([[2000n, 200n]]);
    // An upgrade in March (its invoice not discounted: the ONCE coupon counted for February only) is
    // not discounted either: to Max 4000 on Mar 16 (16 of 31 days left): unused −2000 × 16/31 = −1032
    // (tax −103), remaining 4000 × 16/31 = 2065 (tax 207): 1033 + 104.
    const maxMyr = await flatIn('MYR', 4000, 'Max');
    const marchUp = await changeSubscription(
      db,
      'system',
      once.id,
      { planId: maxMyr },
      d('2027-03-16T00:00:00Z'),
      false,
    );
    expect(marchUp.invoice).toMatchObject({ subtotal: 1033n, tax: 104n });

    // ILS: 1000 off and then 10% (FOREVER both) on a 1000 plan: February 1000 − 1000 − 0 = 0; the 10%
    // counted all the same. Feb 15 to 2000: 2000 − 1000 − 200 = 800 a month → 400 + 40 tax (it was
    // 500 + 50, the 10% left out), as March then bills 800 + 80.
    const [basic, big] = [await flatIn('ILS', 1000, 'Basic'), await flatIn('ILS', 2000, 'Big')];
    await createCoupon(db, 'system', {
      code: 'OFF1000-ILS',
      amountOff: 1000n,
      currency: 'ILS',
      duration: 'FOREVER',
    });
    await createCoupon(db, 'system', { code: 'TEN-ILS', percentOffPpm: 100_000, duration: 'FOREVER' });
    const stacked = (
      await createSubscription(
        db,
        'system',
        { customerId: await insertCustomer(db), planId: basic },
        d('2027-01-01T00:00:00Z'),
      )
    ).subscription;
    await payOpenOffline(db, stacked.id);
    await addSubscriptionCoupon(db, 'system', stacked.id, 'OFF1000-ILS');
    await addSubscriptionCoupon(db, 'system', stacked.id, 'TEN-ILS');
    const feb = await renewSubscription(db, 'system', stacked.id, d('2027-02-01T00:00:00Z'));
    expect(feb?.invoices.map((i) => i.total)).toEqual([0n]);
    const up = await changeSubscription(
      db,
      'system',
      stacked.id,
      { planId: big },
      d('2027-02-15T00:00:00Z'),
      false,
    );
    expect(up.invoice).toMatchObject({ subtotal: 400n, tax: 40n, total: 440n });
    await payOpenOffline(db, stacked.id);
    const mar = await renewSubscription(db, 'system', stacked.id, d('2027-03-01T00:00:00Z'));
    expect(mar?.invoices.map((i) => [i.subtotal, i.tax])).toEqual([[800n, 80n]]);
  });

  it('a change that only raises the tax bills the tax: 1000 at 10% → 1000 at 20% for half a period is 50', async () => {
    const [low, high] = [
      await flatIn('PLN', 1000, 'Standard', 100_000),
      await flatIn('PLN', 1000, 'Standard (reduced relief)', 200_000),
    ];
    const customer = await insertCustomer(db);
    const sub = (
      await createSubscription(db, 'system', { customerId: customer, planId: low }, d('2027-02-01T00:00:00Z'))
    ).subscription;
    // 14 of 28 days left: unused −500 (tax −50), remaining +500 (tax +100): subtotal 0, tax 50.
    const change = await changeSubscription(
      db,
      'system',
      sub.id,
      { planId: high },
      d('2027-02-15T00:00:00Z'),
      false,
    );
    expect(change.proration).toMatchObject({ subtotal: 0n, tax: 50n, total: 50n });
    expect(change.invoice).toMatchObject({
      billing_reason: 'subscription_update',
      status: 'OPEN',
      subtotal: 0n,
      tax: 50n,
      total: 50n,
      amount_due: 50n,
    });
    expect(change.credited).toBe(0n);
    // Period 0: 1000 + 100; the change: revenue −500 + 500 = 0, tax payable 50 more.
    expect(await ledgerIn(app, 'PLN')).toEqual({
      'receivable:customer': 1100 + 50,
      revenue: -1000,
      tax_payable: -100 - 50,
    });
  });

  it("a change that only lowers the tax credits the tax: 1000 at 20% → 1000 at 10% for half a period is 50 of the customer's credit", async () => {
    const [high, low] = [
      await flatIn('HUF', 1000, 'Standard', 200_000),
      await flatIn('HUF', 1000, 'Standard (relief)', 100_000),
    ];
    const customer = await insertCustomer(db);
    const sub = (
      await createSubscription(
        db,
        'system',
        { customerId: customer, planId: high },
        d('2027-02-01T00:00:00Z'),
      )
    ).subscription;
    // Period 0 (1000 + 200) paid first. 14 of 28 days left: unused −500 (tax −100), remaining +500
    // (tax +50): subtotal 0, tax −50.
    await payOpenOffline(db, sub.id);
    const change = await changeSubscription(
      db,
      'system',
      sub.id,
      { planId: low },
      d('2027-02-15T00:00:00Z'),
      false,
    );
    expect(change.proration).toMatchObject({ subtotal: 0n, tax: -50n, total: -50n });
    expect(change.invoice).toBeNull();
    // Period 0: 1000 + 200; the change gives 50 of tax back as credit: tax payable 200 − 50.
    expect(await ledgerIn(app, 'HUF')).toEqual({
      'receivable:customer': 0,
      offline_receipts: 1200,
      'customer_credit:customer': -50,
      revenue: -1000,
      tax_payable: -200 + 50,
    });
    // March at 10%: 1000 + 100, of which the 50 of credit pays part.
    const next = await renewSubscription(db, 'system', sub.id, d('2027-03-01T00:00:00Z'));
    const march = await db
      .selectFrom('invoices')
      .select(['total', 'credit_applied', 'amount_due'])
      .where('id', '=', next!.invoices[0]!.id)
      .executeTakeFirstOrThrow();
    expect(march).toEqual({ total: 1100n, credit_applied: 50n, amount_due: 1050n });
  });

  it('refuses a change whose net credit raises the tax more: untaxed 1000 → 900 at 20% for half a period owes 40 on −50 net', async () => {
    const [untaxed, taxed] = [
      await flatIn('RON', 1000, 'Basic', 0),
      await flatIn('RON', 900, 'Lite', 200_000),
    ];
    const customer = await insertCustomer(db);
    const sub = (
      await createSubscription(
        db,
        'system',
        { customerId: customer, planId: untaxed },
        d('2027-02-01T00:00:00Z'),
      )
    ).subscription;
    const before = await ledgerIn(app, 'RON');
    expect(before).toEqual({ 'receivable:customer': 1000, revenue: -1000 });
    // 14 of 28 days left: unused −500 (tax 0), remaining +450 (tax +90): subtotal −50, tax +90,
    // total +40. No invoice can carry a negative subtotal, and a customer credit of −40 is a debt no
    // invoice collects (the old code booked it so): refused, preview and change alike.
    for (const preview of [true, false]) {
      const refused = await changeSubscription(
        db,
        'system',
        sub.id,
        { planId: taxed },
        d('2027-02-15T00:00:00Z'),
        preview,
      ).catch((error: unknown) => error);
      expect(refused).toMatchObject({
        status: 422,
        fields: { proration: expect.stringContaining('so 40 (minor units)') },
      });
    }
    const unchanged = await db
      .selectFrom('subscriptions')
      .select('plan_id')
      .where('id', '=', sub.id)
      .executeTakeFirstOrThrow();
    expect(unchanged.plan_id).toBe(untaxed);
    expect(await ledgerIn(app, 'RON')).toEqual(before);
    // Without proration the change goes through and bills the new plan from the next period.
    const plain = await changeSubscription(
      db,
      'system',
      sub.id,
      { planId: taxed, proration: 'none' },
      d('2027-02-15T00:00:00Z'),
      false,
    );
    expect([plain.subscription.plan_id, plain.invoice]).toEqual([taxed, null]);
    expect(await ledgerIn(app, 'RON')).toEqual(before);
  });

  it('an upgrade credits the unused time at the old price and invoices the rest at the new one', async () => {
    const [basic, pro] = [await flat(2800, 'Basic'), await flat(5600, 'Pro')];
    const customer = await insertCustomer(db);
    const sub = (
      await createSubscription(
        db,
        'system',
        { customerId: customer, planId: basic },
        d('2027-02-01T00:00:00Z'),
      )
    ).subscription;
    const at = d('2027-02-22T00:00:00Z'); // 7 of 28 days left
    const preview = await changeSubscription(db, 'system', sub.id, { planId: pro }, at, true);
    expect(preview.invoice).toBeNull();
    expect(preview.proration.lines.map((l) => [l.type, l.signedAmount, l.taxAmount])).toEqual([
      ['CREDIT', -700n, -70n],
      ['CHARGE', 1400n, 140n],
    ]);
    expect(preview.proration).toMatchObject({ subtotal: 700n, tax: 70n, total: 770n });
    const unchanged = await db
      .selectFrom('subscriptions')
      .selectAll()
      .where('id', '=', sub.id)
      .executeTakeFirstOrThrow();
    expect(unchanged.plan_id).toBe(basic);
    expect(
      await db.selectFrom('invoices').select('id').where('subscription_id', '=', sub.id).execute(),
    ).toHaveLength(1);

    const change = await changeSubscription(db, 'system', sub.id, { planId: pro }, at, false);
    expect(change.subscription).toMatchObject({ plan_id: pro });
    expect(change.invoice).toMatchObject({
      billing_reason: 'subscription_update',
      status: 'OPEN',
      total: 770n,
      period_index: null,
      charge_at: at,
    });
    const next = await renewSubscription(db, 'system', sub.id, d('2027-03-01T00:00:00Z'));
    expect(next?.invoices.map((i) => [i.period_index, i.total])).toEqual([[1, 6160n]]);
    const actions = await db
      .selectFrom('activities')
      .select('action')
      .where('resource_id', '=', sub.id)
      .orderBy('sequence')
      .execute();
    expect(actions.map((a) => a.action)).toContain('subscription.changed');
  });

  it("an upgrade of a customer taxed by address stores the lines the preview taxed: the rate of the customer's country on both", async () => {
    const [basic, pro] = [await flat(2800, 'Basic'), await flat(5600, 'Pro')];
    const customer = await insertCustomer(db);
    await db.updateTable('customers').set({ address_country: 'NZ' }).where('id', '=', customer).execute();
    const gst = await createTaxRate(db, 'system', { displayName: 'GST', country: 'NZ', percentPpm: 150_000 });
    const sub = (
      await createSubscription(
        db,
        'system',
        { customerId: customer, planId: basic },
        d('2027-02-01T00:00:00Z'),
      )
    ).subscription;
    const at = d('2027-02-22T00:00:00Z'); // 7 of 28 days left: −700 and +1400 at 15%, not the plans' 10%
    const change = await changeSubscription(db, 'system', sub.id, { planId: pro }, at, false);
    expect(change.proration).toMatchObject({ subtotal: 700n, tax: 105n, total: 805n });
    expect(change.invoice).toMatchObject({ subtotal: 700n, tax: 105n, total: 805n });
    const stored = await db
      .selectFrom('invoice_lines')
      .select(['type', 'amount', 'tax_rate_ppm', 'tax_amount', 'taxes'])
      .where('invoice_id', '=', change.invoice!.id)
      .orderBy('position')
      .execute();
    expect(stored.map((l) => [l.type, l.amount, l.tax_rate_ppm, l.tax_amount])).toEqual([
      ['CREDIT', -700n, 150_000, -105n],
      ['CHARGE', 1400n, 150_000, 210n],
    ]);
    expect(stored.map((l) => (l.taxes as { tax_rate: string }[]).map((t) => t.tax_rate))).toEqual([
      [gst.id],
      [gst.id],
    ]);
  });

  it('an upgrade from a tax-inclusive plan is invoiced as its preview priced it, even when the untaxed lines would net negative', async () => {
    // Basic 4000 with its tax included, Pro 3960 without; the customer is taxed by address
    // (South Africa's VAT, 15%). 7 of 28 days left: Basic's credit is 4000 × 7/28 = 1000 with its
    // VAT inside, split by splitTaxes (money/taxes.ts, largest remainder): exactly 869.57 net and
    // 130.43 VAT → 870 and 130, so −870 and −130 on the credit; Pro's charge
    // 3960 × 7/28 = 990 + 148.5 → 149 VAT (half up). Net 990 − 870 = 120, VAT 149 − 130 = 19:
    // 139 due, as previewed. The untaxed lines alone (−1000 + 990) net negative, which the
    // invoice's check refused before the lines were taxed once.
    const [basic, pro] = [await flat(4000, 'Basic inclusive'), await flat(3960, 'Pro')];
    await db
      .updateTable('plans')
      .set({ tax_inclusive: true, tax_rate_ppm: 0 })
      .where('id', '=', basic)
      .execute();
    await db.updateTable('plans').set({ tax_rate_ppm: 0 }).where('id', '=', pro).execute();
    const customer = await insertCustomer(db);
    await db.updateTable('customers').set({ address_country: 'ZA' }).where('id', '=', customer).execute();
    await createTaxRate(db, 'system', { displayName: 'VAT', country: 'ZA', percentPpm: 150_000 });
    const sub = (
      await createSubscription(
        db,
        'system',
        { customerId: customer, planId: basic },
        d('2027-02-01T00:00:00Z'),
      )
    ).subscription;
    const at = d('2027-02-22T00:00:00Z');
    const preview = await changeSubscription(db, 'system', sub.id, { planId: pro }, at, true);
    const change = await changeSubscription(db, 'system', sub.id, { planId: pro }, at, false);
    expect(preview.proration).toMatchObject({ total: change.proration.total });
    expect(change.proration.lines.map((l) => [l.type, l.signedAmount, l.taxAmount])).toEqual([
      ['CREDIT', -870n, -130n],
      ['CHARGE', 990n, 149n],
    ]);
    expect(change.invoice).toMatchObject({ subtotal: 120n, tax: 19n, total: 139n });
  });

  it("a downgrade net credit, with its tax, becomes the customer's credit and comes off the next invoice", async () => {
    const [basic, lite] = [await flat(2800, 'Basic'), await flat(1400, 'Lite')];
    const customer = await insertCustomer(db);
    const sub = (
      await createSubscription(
        db,
        'system',
        { customerId: customer, planId: basic },
        d('2027-02-01T00:00:00Z'),
      )
    ).subscription;
    // The first invoice (2800 + 280) paid first: over an unpaid one the credit lowers what it owes
    // instead (proration-open-invoice.test.ts).
    await payOpenOffline(db, sub.id);
    const revenueBefore = await balanceOf(db, 'revenue', 'USD');
    const taxBefore = await balanceOf(db, 'tax_payable', 'USD');
    const change = await changeSubscription(
      db,
      'system',
      sub.id,
      { planId: lite },
      d('2027-02-22T00:00:00Z'),
      false,
    );
    // credit 700, charge 350: net credit 350 + 35 tax (10%), no invoice.
    expect(change.invoice).toBeNull();
    expect(change.credited).toBe(350n);
    // The credit is the customer's (a liability), not the subscription's: the receivable is 0 (the
    // first invoice, 3080, paid); revenue gave back 350 and tax payable 35.
    const receivable = `receivable:${customer}`;
    const credit = `customer_credit:${customer}`;
    expect(await balanceOf(db, receivable, 'USD')).toBe(0n);
    expect(await balanceOf(db, credit, 'USD')).toBe(-385n);
    expect(await balanceOf(db, 'revenue', 'USD')).toBe(revenueBefore + 350n);
    expect(await balanceOf(db, 'tax_payable', 'USD')).toBe(taxBefore + 35n);
    const next = await renewSubscription(db, 'system', sub.id, d('2027-03-01T00:00:00Z'));
    const invoice = next!.invoices[0]!;
    // The renewal bills 1400 + 140 in full; the 385 of credit pays part of it: 1155 left due.
    expect([invoice.subtotal, invoice.tax, invoice.total]).toEqual([1400n, 140n, 1540n]);
    const stored = await db
      .selectFrom('invoices')
      .selectAll()
      .where('id', '=', invoice.id)
      .executeTakeFirstOrThrow();
    expect([stored.credit_applied, stored.amount_due, stored.status]).toEqual([385n, 1155n, 'OPEN']);
    // Used up: the receivable is exactly what the open invoice asks; revenue, from before the
    // change, moved by 1400 − 350 = 1050 and tax payable by 140 − 35 = 105.
    expect(await balanceOf(db, receivable, 'USD')).toBe(1155n);
    expect(await balanceOf(db, credit, 'USD')).toBe(0n);
    expect(await balanceOf(db, 'revenue', 'USD')).toBe(revenueBefore - 1050n);
    expect(await balanceOf(db, 'tax_payable', 'USD')).toBe(taxBefore - 105n);
  });

  it('a quantity change on a per-unit plan prorates the difference; in a trial nothing is prorated', async () => {
    const seats = await insertPlan(db, { price: { model: 'PER_UNIT', unit_amount: 1000 }, interval: 'DAY' });
    const customer = await insertCustomer(db);
    const sub = (
      await createSubscription(
        db,
        'system',
        { customerId: customer, planId: seats },
        d('2027-05-01T00:00:00Z'),
      )
    ).subscription;
    const change = await changeSubscription(
      db,
      'system',
      sub.id,
      { quantity: 4 },
      d('2027-05-01T18:00:00Z'),
      false,
    );
    // 6 of 24 hours left: credit 250, charge 1000 → net 750.
    expect(change.invoice?.total).toBe(750n);
    const trial = (
      await createSubscription(
        db,
        'system',
        { customerId: customer, planId: seats, trialDays: 5 },
        d('2027-05-01T00:00:00Z'),
      )
    ).subscription;
    const inTrial = await changeSubscription(
      db,
      'system',
      trial.id,
      { quantity: 2 },
      d('2027-05-02T00:00:00Z'),
      false,
    );
    expect(inTrial.invoice).toBeNull();
    expect(inTrial.proration.lines).toEqual([]);
    expect(inTrial.subscription.quantity).toBe(2);
  });
});
