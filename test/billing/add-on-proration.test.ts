import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAddOn } from '../../src/billing/add-ons.ts';
import { cancelLocked } from '../../src/billing/cancellation.ts';
import { createCoupon } from '../../src/billing/coupons.ts';
import { lockInvoice, voidInvoice } from '../../src/billing/invoices.ts';
import {
  changeSubscription,
  type ProrationBehavior,
  periodCreditToCustomer,
} from '../../src/billing/proration.ts';
import { DUNNING_REASON, reinstateAfterPayment } from '../../src/billing/reinstate.ts';
import { lockSubscription, renewDueSubscriptions, renewSubscription } from '../../src/billing/renewal.ts';
import {
  type AddOnChange,
  redeemAddOnCoupon,
  setSubscriptionAddOn,
} from '../../src/billing/subscription-add-ons.ts';
import { transitionSubscription } from '../../src/billing/subscription-status.ts';
import {
  createSubscription,
  reactivateSubscription,
  removeSubscriptionCoupon,
  suspendSubscription,
} from '../../src/billing/subscriptions.ts';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import type { Db } from '../../src/db/database.ts';
import { ValidationError } from '../../src/errors.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordCollectionFailure } from '../../src/payments/dunning.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { downgradeCredit, flatPlan, ledgerIn, payOpenOffline } from '../support/collection.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

const d = (iso: string) => new Date(iso);

/**
 * Add-ons added, or raised, mid-period are charged for the rest of the period (seed 001 "Create
 * Subscription Add-On": applied immediately), prorated by whole seconds as plan changes are, on a
 * `subscription_update` invoice of add-on lines only; lowering or removing one gives no credit.
 * February 2027 has 28 days, so a day is 1/28 of its period. Each scenario has its own currency.
 */
describe('add-on proration', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  /** Subscription `id`'s invoices other than its period invoices, oldest first, with their lines. */
  const addOnInvoices = async (id: string) => {
    const invoices = await db
      .selectFrom('invoices')
      .selectAll()
      .where('subscription_id', '=', id)
      .where('period_index', 'is', null)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    const out = [];
    for (const invoice of invoices) {
      const lines = await db
        .selectFrom('invoice_lines')
        .selectAll()
        .where('invoice_id', '=', invoice.id)
        .orderBy('position')
        .execute();
      out.push({ ...invoice, lines });
    }
    return out;
  };
  const addOnIn = (currency: string, amount: number, name: string) =>
    createAddOn(db, 'system', { name, currency, amount: BigInt(amount) }).then((a) => a.id);

  it('refuses (422, field quantity) an add-on quantity whose next period would bill more than 10^15; nothing changes', async () => {
    const plan = await insertPlan(db, { currency: 'EUR', price: { model: 'FLAT_FEE', amount: 1000 } });
    const big = await addOnIn('EUR', 1_000_000_000_000, 'Big');
    const customer = await insertCustomer(db);
    const { subscription: sub } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-02-01T00:00:00Z'),
    );
    const set = async (quantity: number) => {
      try {
        const change = { addOnId: big, quantity, proration: 'none' as const };
        return (await setSubscriptionAddOn(db, 'system', sub.id, change, d('2027-02-08T00:00:00Z'))).addOn
          .quantity;
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return (error as ValidationError).fields?.quantity;
      }
    };
    // 1001 × 10^12 + the plan's 1000 > 10^15: accepted, then every renewal threw (March never invoiced).
    expect(await set(1001)).toMatch(/would bill each period more than 10\^15/);
    expect(
      await db
        .selectFrom('subscription_add_ons')
        .select('id')
        .where('subscription_id', '=', sub.id)
        .execute(),
    ).toEqual([]);
    expect(await set(999)).toBe(999); // 999 × 10^12 + 1000 fits
  });

  it('JPY (no minor unit): adding 2 then raising charges the rest of the period; a lower quantity is not credited, and raising back to what was paid charges nothing', async () => {
    // 3000 a month at 10% tax; Seats 1000 each a month.
    const plan = await insertPlan(db, {
      currency: 'JPY',
      price: { model: 'FLAT_FEE', amount: 3000 },
      taxRatePpm: 100_000,
    });
    const seats = await addOnIn('JPY', 1000, 'Seats');
    const customer = await insertCustomer(db);
    const { subscription: sub } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-02-01T00:00:00Z'),
    );
    // Feb 8, 21 of 28 days left: 2 × 1000 × 21/28 = 1500, tax 150: 1650.
    const added = await setSubscriptionAddOn(
      db,
      'system',
      sub.id,
      { addOnId: seats, quantity: 2 },
      d('2027-02-08T00:00:00Z'),
    );
    expect(added.invoice).toMatchObject({
      billing_reason: 'subscription_update',
      status: 'OPEN',
      subtotal: 1500n,
      tax: 150n,
      total: 1650n,
      charge_at: d('2027-02-08T00:00:00Z'),
      period_start: d('2027-02-08T00:00:00Z'),
      period_end: d('2027-03-01T00:00:00Z'),
    });
    // Feb 15, 14 days left: one more seat, 1000 × 14/28 = 500, tax 50: 550.
    await setSubscriptionAddOn(
      db,
      'system',
      sub.id,
      { addOnId: seats, quantity: 3 },
      d('2027-02-15T00:00:00Z'),
    );
    // Feb 22: down to 1, no credit for the two seats paid to Mar 1.
    const lowered = await setSubscriptionAddOn(
      db,
      'system',
      sub.id,
      { addOnId: seats, quantity: 1 },
      d('2027-02-22T00:00:00Z'),
    );
    expect(lowered.invoice).toBeNull();
    // Feb 25 (4 days left): back to 3, paid to Mar 1 already: nothing; then 4: 1000 × 4/28 = 142.86 →
    // 143, tax 14.3 → 14: 157.
    const back = await setSubscriptionAddOn(
      db,
      'system',
      sub.id,
      { addOnId: seats, quantity: 3 },
      d('2027-02-25T00:00:00Z'),
    );
    expect(back.invoice).toBeNull();
    await setSubscriptionAddOn(
      db,
      'system',
      sub.id,
      { addOnId: seats, quantity: 4 },
      d('2027-02-25T00:00:00Z'),
    );
    const invoices = await addOnInvoices(sub.id);
    expect(invoices.map((i) => [i.subtotal, i.tax, i.total])).toEqual([
      [1500n, 150n, 1650n],
      [500n, 50n, 550n],
      [143n, 14n, 157n],
    ]);
    expect(invoices.map((i) => i.lines.map((l) => [l.type, l.quantity, l.add_on_id, l.plan_id]))).toEqual([
      [['CHARGE', 2, seats, null]],
      [['CHARGE', 1, seats, null]],
      [['CHARGE', 1, seats, null]],
    ]);
    // Period 0 (3300) and the three: 3300 + 1650 + 550 + 157 = 5657 owed, revenue 3000 + 2143, tax 300 + 214.
    expect(await ledgerIn(app, 'JPY')).toEqual({
      'receivable:customer': 5657,
      revenue: -5143,
      tax_payable: -514,
    });
    // March: 3000 + 4 × 1000 = 7000, tax 700.
    const next = await renewSubscription(db, 'system', sub.id, d('2027-03-01T00:00:00Z'));
    expect(next?.invoices.map((i) => [i.subtotal, i.tax, i.total])).toEqual([[7000n, 700n, 7700n]]);
  });

  it("EUR (2 decimals): the add-on's coupon of the period discounts the raise; prorate_at_renewal charges at the period's end, full the whole period, none nothing; a coupon redeemed now starts next period", async () => {
    // 2000 a month at 20% tax; Support 1500 and Backup 1000 a month; SUP10: 10% FOREVER.
    const plan = await insertPlan(db, {
      currency: 'EUR',
      price: { model: 'FLAT_FEE', amount: 2000 },
      taxRatePpm: 200_000,
    });
    const support = await addOnIn('EUR', 1500, 'Support');
    const backup = await addOnIn('EUR', 1000, 'Backup');
    await createCoupon(db, 'system', { code: 'SUP10', percentOffPpm: 100_000, duration: 'FOREVER' });
    const customer = await insertCustomer(db);
    const { subscription: sub } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-01-01T00:00:00Z'),
    );
    // Added in January with proration none: nothing now (as before), billed from February.
    const none = await setSubscriptionAddOn(
      db,
      'system',
      sub.id,
      { addOnId: support, quantity: 1, couponCode: 'SUP10', proration: 'none' },
      d('2027-01-10T00:00:00Z'),
    );
    expect(none.invoice).toBeNull();
    // February: 2000 + 1500 − 150 = 3350, tax 670.
    const feb = await renewSubscription(db, 'system', sub.id, d('2027-02-01T00:00:00Z'));
    expect(feb?.invoices.map((i) => [i.subtotal, i.tax])).toEqual([[3350n, 670n]]);

    // Feb 15 (14 of 28 days left), Support 1 → 3 at renewal's charge date: 2 more cost 3000 less SUP10
    // (10% of 4500 − 10% of 1500 = 300) = 2700 a month; half of it: 1500 charged, 150 coupon off,
    // 1350 net, tax 270: 1620, charged on Mar 1.
    const raised = await setSubscriptionAddOn(
      db,
      'system',
      sub.id,
      { addOnId: support, quantity: 3, proration: 'prorate_at_renewal' },
      d('2027-02-15T00:00:00Z'),
    );
    expect(raised.invoice).toMatchObject({
      subtotal: 1350n,
      tax: 270n,
      total: 1620n,
      status: 'OPEN',
      charge_at: d('2027-03-01T00:00:00Z'),
    });
    // Backup with `full`: the whole month, 1000, tax 200: 1200 now; SUP10 redeemed with it now
    // discounts it from March on, not this invoice.
    const full = await setSubscriptionAddOn(
      db,
      'system',
      sub.id,
      { addOnId: backup, quantity: 1, couponCode: 'SUP10', proration: 'full' },
      d('2027-02-15T00:00:00Z'),
    );
    expect(full.invoice).toMatchObject({ subtotal: 1000n, tax: 200n, total: 1200n });
    expect(full.invoice?.charge_at).toEqual(d('2027-02-15T00:00:00Z'));
    // Support 3 → 1 (no credit), then 1 → 2 with none: nothing either way.
    for (const [quantity, proration] of [
      [1, 'prorate_now'],
      [2, 'none'],
    ] as const) {
      const set = await setSubscriptionAddOn(
        db,
        'system',
        sub.id,
        { addOnId: support, quantity, proration },
        d('2027-02-20T00:00:00Z'),
      );
      expect(set.invoice).toBeNull();
    }
    const invoices = await addOnInvoices(sub.id);
    expect(invoices.map((i) => i.lines.map((l) => [l.type, l.amount, l.tax_amount, l.add_on_id]))).toEqual([
      [
        ['CHARGE', 1500n, 300n, support],
        ['CREDIT', -150n, -30n, support],
      ],
      [['CHARGE', 1000n, 200n, backup]],
    ]);
    // March: 2000 + Support 2 × 1500 − 300 + Backup 1000 − 100 = 5600, tax 1120.
    const mar = await renewSubscription(db, 'system', sub.id, d('2027-03-01T00:00:00Z'));
    expect(mar?.invoices.map((i) => [i.subtotal, i.tax])).toEqual([[5600n, 1120n]]);
  });

  it("an add-on's coupon removed mid-period (by hand, or with the add-on) discounts no raise after it: the units added are charged whole, as the next renewal is (NZD, AUD)", async () => {
    // 1000 a month at 10% tax; Seats 1000 a month; HALF-SEAT: 50% FOREVER on the add-on.
    await createCoupon(db, 'system', { code: 'HALF-SEAT', percentOffPpm: 500_000, duration: 'FOREVER' });
    /** Seats 1 with HALF-SEAT from January (proration none), February invoiced and paid: 1000 + 1000 − 500 + 10%. */
    const seatedFeb1 = async (currency: string) => {
      const plan = await insertPlan(db, {
        currency,
        price: { model: 'FLAT_FEE', amount: 1000 },
        taxRatePpm: 100_000,
      });
      const seats = await addOnIn(currency, 1000, 'Seats');
      const customer = await insertCustomer(db);
      const { subscription: sub } = await createSubscription(
        db,
        'system',
        { customerId: customer, planId: plan },
        d('2027-01-01T00:00:00Z'),
      );
      await setSubscriptionAddOn(
        db,
        'system',
        sub.id,
        { addOnId: seats, quantity: 1, couponCode: 'HALF-SEAT', proration: 'none' },
        d('2027-01-10T00:00:00Z'),
      );
      const feb = await renewSubscription(db, 'system', sub.id, d('2027-02-01T00:00:00Z'));
      expect(feb?.invoices.map((i) => [i.subtotal, i.tax])).toEqual([[1500n, 150n]]);
      await payOpenOffline(db, sub.id);
      return { sub, seats };
    };
    const setSeats = (id: string, seats: string, quantity: number, at: string) =>
      setSubscriptionAddOn(db, 'system', id, { addOnId: seats, quantity }, d(at));

    // NZD: the coupon removed by hand on Feb 8; Feb 15 (14 of 28 days left) Seats 1 → 2: the added
    // seat costs 1000 a month, undiscounted: 500 + 50 tax. (It was discounted by the removed coupon:
    // 50% of 2000 − 50% of 1000 = 500 off, so 250 + 25.)
    const nz = await seatedFeb1('NZD');
    const [redemption] = await db
      .selectFrom('coupon_redemptions')
      .select('id')
      .where('subscription_id', '=', nz.sub.id)
      .execute();
    await removeSubscriptionCoupon(db, 'system', nz.sub.id, redemption!.id, d('2027-02-08T00:00:00Z'));
    const raisedNz = await setSeats(nz.sub.id, nz.seats, 2, '2027-02-15T00:00:00Z');
    expect(raisedNz.invoice).toMatchObject({ subtotal: 500n, tax: 50n, total: 550n });
    // March: 1000 + 2 × 1000, no coupon: 3000 + 300.
    const mar = await renewSubscription(db, 'system', nz.sub.id, d('2027-03-01T00:00:00Z'));
    expect(mar?.invoices.map((i) => [i.subtotal, i.tax])).toEqual([[3000n, 300n]]);

    // AUD: Seats removed on Feb 8 (its coupon ended with it), set to 2 on Feb 15: one seat was paid
    // for the period, the other is charged whole: 500 + 50 (it was 250 + 25).
    const au = await seatedFeb1('AUD');
    expect((await setSeats(au.sub.id, au.seats, 0, '2027-02-08T00:00:00Z')).removed).toBe(true);
    const raisedAu = await setSeats(au.sub.id, au.seats, 2, '2027-02-15T00:00:00Z');
    expect(raisedAu.invoice).toMatchObject({ subtotal: 500n, tax: 50n, total: 550n });
  });

  it("an add-on's coupon the renewal counted though it took nothing off (behind one taking the whole line) discounts a raise as the next renewal does (THB)", async () => {
    // 1000 a month at 10% tax; Seats 1000 a month with SEATOFF (1000 off) then SEAT10 (10%), FOREVER.
    const plan = await insertPlan(db, {
      currency: 'THB',
      price: { model: 'FLAT_FEE', amount: 1000 },
      taxRatePpm: 100_000,
    });
    const seats = await addOnIn('THB', 1000, 'Seats');
    await createCoupon(db, 'system', {
      code: 'SEATOFF-THB',
      amountOff: 1000n,
      currency: 'THB',
      duration: 'FOREVER',
    });
    await createCoupon(db, 'system', { code: 'SEAT10-THB', percentOffPpm: 100_000, duration: 'FOREVER' });
    const { subscription: sub } = await createSubscription(
      db,
      'system',
      { customerId: await insertCustomer(db), planId: plan },
      d('2027-01-01T00:00:00Z'),
    );
    await setSubscriptionAddOn(
      db,
      'system',
      sub.id,
      { addOnId: seats, quantity: 1, couponCode: 'SEATOFF-THB', proration: 'none' },
      d('2027-01-10T00:00:00Z'),
    );
    await redeemAddOnCoupon(db, 'system', sub.id, seats, 'SEAT10-THB');
    // February: plan 1000 + seat 1000 − 1000 − 0 (SEAT10 capped, counted) = 1000 + 100.
    const feb = await renewSubscription(db, 'system', sub.id, d('2027-02-01T00:00:00Z'));
    expect(feb?.invoices.map((i) => [i.subtotal, i.tax])).toEqual([[1000n, 100n]]);
    await payOpenOffline(db, sub.id);
    // Feb 15 (14 of 28 days left), Seats 1 → 2: the coupons take 1000 + 200 off 2000 and 1000 + 0 off
    // 1000, so the added seat costs 1000 − 200 = 800 a month: 400 + 40 tax (it was 500 + 50, SEAT10
    // left out), as March bills the two seats 2000 − 1200 = 800.
    const raised = await setSubscriptionAddOn(
      db,
      'system',
      sub.id,
      { addOnId: seats, quantity: 2 },
      d('2027-02-15T00:00:00Z'),
    );
    expect(raised.invoice).toMatchObject({ subtotal: 400n, tax: 40n, total: 440n });
    const mar = await renewSubscription(db, 'system', sub.id, d('2027-03-01T00:00:00Z'));
    expect(mar?.invoices.map((i) => [i.subtotal, i.tax])).toEqual([[1800n, 180n]]);
  });

  it('units held without a payment of the period (added with none, their invoice voided) are never charged while held: a lower or the same quantity charges nothing, a raise only the units it adds', async () => {
    // 3000 a month at 10% tax; Seats 1000 each a month. SEAT10: 10% FOREVER.
    const plan = await insertPlan(db, {
      currency: 'EUR',
      price: { model: 'FLAT_FEE', amount: 3000 },
      taxRatePpm: 100_000,
    });
    const seats = await addOnIn('EUR', 1000, 'Seats');
    await createCoupon(db, 'system', { code: 'SEAT10', percentOffPpm: 100_000, duration: 'FOREVER' });
    const subscribed = async () => {
      const customer = await insertCustomer(db);
      const { subscription } = await createSubscription(
        db,
        'system',
        { customerId: customer, planId: plan },
        d('2027-02-01T00:00:00Z'),
      );
      return subscription.id;
    };
    const set = (id: string, change: Omit<AddOnChange, 'addOnId'>, at: string) =>
      setSubscriptionAddOn(db, 'system', id, { addOnId: seats, ...change }, d(at)).then((r) => r.invoice);

    // Feb 8: 5 seats with proration none: waived for the rest of February (as units held from before
    // add-ons were prorated: no invoice of the period paid them).
    const waived = await subscribed();
    expect(await set(waived, { quantity: 5, proration: 'none' }, '2027-02-08T00:00:00Z')).toBeNull();
    // Feb 15 (14 of 28 days left): the same 5 again to redeem SEAT10 (from March on): nothing, not
    // 5 × 1000 × 14/28 = 2500 + 250.
    expect(await set(waived, { quantity: 5, couponCode: 'SEAT10' }, '2027-02-15T00:00:00Z')).toBeNull();
    // 6: the one seat added only, 1000 × 14/28 = 500, tax 50: 550 (not 6 seats' 3000 + 300).
    expect(await set(waived, { quantity: 6 }, '2027-02-15T00:00:00Z')).toMatchObject({
      subtotal: 500n,
      tax: 50n,
      total: 550n,
    });
    // Feb 22: lowered to 4: nothing (not 4 × 1000 × 7/28 = 1000 + 100).
    expect(await set(waived, { quantity: 4 }, '2027-02-22T00:00:00Z')).toBeNull();
    expect((await addOnInvoices(waived)).map((i) => i.total)).toEqual([550n]);
    // March: 3000 + 4 × 1000 − 400 (SEAT10) = 6600, tax 660.
    const mar = await renewSubscription(db, 'system', waived, d('2027-03-01T00:00:00Z'));
    expect(mar?.invoices.map((i) => [i.subtotal, i.tax])).toEqual([[6600n, 660n]]);

    // Feb 8: 3 seats, 3 × 1000 × 21/28 = 2250 + 225 = 2475, then voided (forgiven).
    const forgiven = await subscribed();
    const first = await set(forgiven, { quantity: 3 }, '2027-02-08T00:00:00Z');
    expect(first?.total).toBe(2475n);
    await voidInvoice(db, 'system', first!.id);
    // Feb 15: lowered to 2: nothing (not 2 × 1000 × 14/28 = 1000 + 100).
    expect(await set(forgiven, { quantity: 2 }, '2027-02-15T00:00:00Z')).toBeNull();
    // Feb 22 (7 days left): raised to 4: the 2 seats beyond the 2 held (no invoice of the period
    // paid any): 2 × 1000 × 7/28 = 500, tax 50. The third seat, forgiven and given up, is new again.
    expect(await set(forgiven, { quantity: 4 }, '2027-02-22T00:00:00Z')).toMatchObject({
      subtotal: 500n,
      tax: 50n,
      total: 550n,
    });
  });

  it("a tax-inclusive plan's add-on is prorated tax included, split as its period line is: GBP 1200 a month with 20% in it, half a month is 500 + 100", async () => {
    const product = (await app.api('POST', '/v1/products', { name: 'Inclusive' })).body.id;
    const created = await app.api('POST', '/v1/plans', {
      product,
      name: 'Inclusive',
      currency: 'GBP',
      interval: 'MONTH',
      price: { model: 'FLAT_FEE', amount: 2400 },
      tax_percent: 20,
      tax_inclusive: true,
    });
    expect(created.status).toBe(201);
    const extra = await addOnIn('GBP', 1200, 'Extra');
    const customer = await insertCustomer(db);
    const { subscription: sub } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: created.body.id },
      d('2027-02-01T00:00:00Z'),
    );
    // Feb 15 (14/28): 1200 × 14/28 = 600 tax included: 500 net, 100 tax.
    const added = await setSubscriptionAddOn(
      db,
      'system',
      sub.id,
      { addOnId: extra, quantity: 1 },
      d('2027-02-15T00:00:00Z'),
    );
    expect(added.invoice).toMatchObject({ subtotal: 500n, tax: 100n, total: 600n });
    const [line] = (await addOnInvoices(sub.id))[0]!.lines;
    expect(line).toMatchObject({ amount: 500n, tax_amount: 100n, tax_inclusive: true, add_on_id: extra });
    // March: (2400 + 1200) tax included: 3000 net, 600 tax.
    const mar = await renewSubscription(db, 'system', sub.id, d('2027-03-01T00:00:00Z'));
    expect(mar?.invoices.map((i) => [i.subtotal, i.tax])).toEqual([[3000n, 600n]]);
  });

  it('in a trial an add-on is charged nothing: the first period invoice bills it', async () => {
    const plan = await insertPlan(db, {
      currency: 'KRW',
      price: { model: 'FLAT_FEE', amount: 3000 },
      taxRatePpm: 100_000,
      trialDays: 14,
    });
    const seats = await addOnIn('KRW', 1000, 'Seats');
    const customer = await insertCustomer(db);
    const { subscription: sub } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-02-01T00:00:00Z'),
    );
    const added = await setSubscriptionAddOn(
      db,
      'system',
      sub.id,
      { addOnId: seats, quantity: 2, proration: 'full' },
      d('2027-02-05T00:00:00Z'),
    );
    expect(added.invoice).toBeNull();
    expect(await addOnInvoices(sub.id)).toEqual([]);
    // The trial ends Feb 15: period 0 is 3000 + 2 × 1000 = 5000, tax 500.
    const first = await renewSubscription(db, 'system', sub.id, d('2027-02-15T00:00:00Z'));
    expect(first?.invoices.map((i) => [i.subtotal, i.tax])).toEqual([[5000n, 500n]]);
  });

  it("a plan downgrade after an add-on's invoice: its credit counts against the period's plan invoices, not the add-on's (refund room)", async () => {
    // Basic 1000 and Pro 10000 a month at 10% tax; Storage 400 a month. All paid by bank transfer.
    const basic = await insertPlan(db, {
      currency: 'SEK',
      price: { model: 'FLAT_FEE', amount: 1000 },
      taxRatePpm: 100_000,
    });
    const pro = await insertPlan(db, {
      currency: 'SEK',
      price: { model: 'FLAT_FEE', amount: 10000 },
      taxRatePpm: 100_000,
    });
    const storage = await addOnIn('SEK', 400, 'Storage');
    const customer = await insertCustomer(db);
    const { subscription: sub } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: basic },
      d('2027-02-01T00:00:00Z'),
    );
    const [period] = await payOpenOffline(db, sub.id); // 1000 + 100 = 1100
    // Feb 8 (21/28): Storage 400 × 21/28 = 300, tax 30: 330, paid.
    const addOn = (
      await setSubscriptionAddOn(
        db,
        'system',
        sub.id,
        { addOnId: storage, quantity: 1 },
        d('2027-02-08T00:00:00Z'),
      )
    ).invoice!;
    expect(addOn.total).toBe(330n);
    await payOpenOffline(db, sub.id);
    // Feb 15 (14/28): to Pro: −500 (−50) unused Basic, +5000 (+500) Pro: 4950, paid.
    const up = await changeSubscription(
      db,
      'system',
      sub.id,
      { planId: pro },
      d('2027-02-15T00:00:00Z'),
      false,
    );
    expect(up.invoice?.total).toBe(4950n);
    await payOpenOffline(db, sub.id);
    // Feb 22 (7/28): back to Basic: −2500 (−250) unused Pro, +250 (+25) Basic: 2250 + 225 = 2475 of
    // the customer's credit (the period invoice is paid). The add-on's invoice plays no part.
    const down = await changeSubscription(
      db,
      'system',
      sub.id,
      { planId: basic },
      d('2027-02-22T00:00:00Z'),
      false,
    );
    expect([down.invoice, down.credited, down.creditedToInvoice]).toEqual([null, 2250n, null]);
    const invoice = (id: string) =>
      db.selectFrom('invoices').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    // The period invoice carries min(2475, 1100 paid) = 1100, tax 225 × 1100/2475 = 100; the upgrade's
    // invoice the rest, 1375 (tax 125); the add-on's none (its 330 was for Storage, never credited).
    expect(await periodCreditToCustomer(db, await invoice(period!.id))).toEqual({ total: 1100n, tax: 100n });
    expect(await periodCreditToCustomer(db, await invoice(up.invoice!.id))).toEqual({
      total: 1375n,
      tax: 125n,
    });
    expect(await periodCreditToCustomer(db, await invoice(addOn.id))).toEqual({ total: 0n, tax: 0n });
    // By hand: the upgrade's invoice gives back at most 4950 − 1375 = 3575; the add-on's all of its 330
    // (here refused only because a bank transfer paid it: no gateway payment to refund through).
    const tooMuch = await app.api('POST', `/v1/invoices/${up.invoice!.id}/refund`, { amount: 3576 });
    expect(tooMuch.status).toBe(409);
    expect(tooMuch.body.error.code).toBe('refund_exceeds_change_credit');
    expect(tooMuch.body.error.fields.amount).toMatch(/^at most 3575 SEK/);
    const addOnRefund = await app.api('POST', `/v1/invoices/${addOn.id}/refund`, { amount: 330 });
    expect(addOnRefund.status).toBe(409);
    expect(addOnRefund.body.error.code).toBe('no_gateway_payment');
  });

  it('a cancellation scheduled within the period ends what an add-on is charged for: to cancel_at, whatever its refund (a plan change is refused there)', async () => {
    // Credit from a downgrade: (9000 − 1000) × 7/28 = 2000 + 25% = 2500 CHF cents.
    const customer = await insertCustomer(db);
    await downgradeCredit(app, customer, 'CHF', 9000);
    const plan = await flatPlan(app, 'CHF', 800); // 800 + 25% = 1000
    const bigger = await flatPlan(app, 'CHF', 1600);
    const storage = await addOnIn('CHF', 400, 'Storage');
    const subscribed = async (owner: string) =>
      (await createSubscription(db, 'system', { customerId: owner, planId: plan }, d('2027-02-01T00:00:00Z')))
        .subscription.id;
    const cancelAtFeb22 = (id: string, refundType: 'prorate' | 'none') =>
      inUnitOfWork(db, { actor: 'system' }, async (work) =>
        cancelLocked(
          work,
          (await lockSubscription(work, id))!,
          { when: 'date', cancelAt: d('2027-02-22T00:00:00Z'), refundType },
          d('2027-02-08T00:00:00Z'),
        ),
      );
    const set = (id: string, quantity: number, proration: ProrationBehavior) =>
      setSubscriptionAddOn(
        db,
        'system',
        id,
        { addOnId: storage, quantity, proration },
        d('2027-02-15T00:00:00Z'),
      ).then((r) => r.invoice);

    // Period invoice 1000, paid by the credit (1500 left). Feb 8: cancel at Feb 22 with refund
    // prorate: the 7 days after Feb 22 given back, 1000 × 7/28 = 250.
    const refunded = await subscribed(customer);
    expect((await cancelAtFeb22(refunded, 'prorate')).refunds.map((r) => r.credit)).toEqual([250n]);
    await expect(
      changeSubscription(db, 'system', refunded, { planId: bigger }, d('2027-02-15T00:00:00Z'), false),
    ).rejects.toMatchObject({ code: 'cancellation_scheduled' });
    // Feb 15: Storage served Feb 15 → Feb 22 only: 400 × 7/28 = 100, tax 25: 125 (not 250 to Mar 1),
    // paid by the credit now (1500 + 250 − 125 left).
    expect(await set(refunded, 1, 'prorate_now')).toMatchObject({
      subtotal: 100n,
      tax: 25n,
      total: 125n,
      period_start: d('2027-02-15T00:00:00Z'),
      period_end: d('2027-02-22T00:00:00Z'),
      status: 'PAID',
      credit_applied: 125n,
    });
    // A second unit with full: the period's served part, Feb 1 → Feb 22: 400 × 21/28 = 300, tax 75,
    // stored as that span; the first unit, paid to Feb 22, is not charged again.
    expect(await set(refunded, 2, 'full')).toMatchObject({
      subtotal: 300n,
      tax: 75n,
      total: 375n,
      period_start: d('2027-02-01T00:00:00Z'),
      period_end: d('2027-02-22T00:00:00Z'),
    });

    // With refund none too: prorate_at_renewal is charged when the subscription ends, Feb 22.
    const kept = await subscribed(await insertCustomer(db));
    expect((await cancelAtFeb22(kept, 'none')).refunds).toEqual([]);
    expect(await set(kept, 1, 'prorate_at_renewal')).toMatchObject({
      total: 125n,
      period_end: d('2027-02-22T00:00:00Z'),
      charge_at: d('2027-02-22T00:00:00Z'),
    });
    // The add-on's invoice of the period is found though it ends at cancel_at: cancelled now on Feb
    // 16 with `prorate`, the 6 of its 7 days unused go back, round_half_up(125 × 6/7) = 107 (as
    // credit: the credit paid it), tax round(25 × 107 / 125) = 21; the period invoice's 13 unused
    // days, round_half_up(1000 × 13/28) = 464, less the 250 given back already: 214.
    const now = await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      cancelLocked(
        work,
        (await lockSubscription(work, refunded))!,
        { when: 'now', refundType: 'prorate' },
        d('2027-02-16T00:00:00Z'),
      ),
    );
    const [first] = await addOnInvoices(refunded);
    expect(now.refunds.map((r) => [r.invoiceId === first!.id, r.amount, r.credit])).toEqual([
      [false, 0n, 214n],
      [true, 0n, 107n],
      // The `full` one charged 300 + 75 for Feb 1 → Feb 22, the span it stores: 6 of its 21 days
      // unused, round_half_up(375 × 6/21) = round_half_up(107.14) = 107 (not 375 × 6/7 = 321 over
      // Feb 15 → Feb 22, which gave back 214 more than the unused time cost).
      [false, 0n, 107n],
    ]);
    expect(now.creditNotes[1]).toMatchObject({ invoice_id: first!.id, subtotal: 86n, tax: 21n, total: 107n });
  });

  it('a SUSPENDED subscription is charged nothing now (no invoices while suspended), unless BILL_SUSPENDED_SUBSCRIPTIONS bills it', async () => {
    // 2000 a month at 20% tax; Backup 1000 a month.
    const plan = await insertPlan(db, {
      currency: 'GBP',
      price: { model: 'FLAT_FEE', amount: 2000 },
      taxRatePpm: 200_000,
    });
    const other = await insertPlan(db, {
      currency: 'GBP',
      price: { model: 'FLAT_FEE', amount: 4000 },
      taxRatePpm: 200_000,
    });
    const backup = await addOnIn('GBP', 1000, 'Backup');
    const suspendedFeb8 = async () => {
      const customer = await insertCustomer(db);
      const { subscription } = await createSubscription(
        db,
        'system',
        { customerId: customer, planId: plan },
        d('2027-02-01T00:00:00Z'),
      );
      await suspendSubscription(db, 'system', subscription.id, d('2027-02-08T00:00:00Z'), 'fraud check');
      return subscription.id;
    };
    const feb15 = d('2027-02-15T00:00:00Z');

    const suspended = await suspendedFeb8();
    await expect(
      changeSubscription(db, 'system', suspended, { planId: other }, feb15, false),
    ).rejects.toMatchObject({ code: 'subscription_not_changeable' });
    // Feb 15: Backup added, nothing charged now (not 1000 × 14/28 = 500 + 100 for days not served).
    const added = await setSubscriptionAddOn(
      db,
      'system',
      suspended,
      { addOnId: backup, quantity: 1 },
      feb15,
    );
    expect([added.created, added.invoice]).toEqual([true, null]);
    expect(await addOnInvoices(suspended)).toEqual([]);
    // Reactivated Feb 20 (February was invoiced before): the add-on set while suspended is charged
    // from then, 9 of 28 days: 1000 × 9/28 = 321.43 → 321, tax 64.29 → 64: 385; raised to 2 it charges
    // the second only, as much.
    const reactivated = await reactivateSubscription(db, 'system', suspended, d('2027-02-20T00:00:00Z'));
    expect(reactivated.invoices.map((i) => [i.subtotal, i.tax, i.total])).toEqual([[321n, 64n, 385n]]);
    const raised = await setSubscriptionAddOn(
      db,
      'system',
      suspended,
      { addOnId: backup, quantity: 2 },
      d('2027-02-20T00:00:00Z'),
    );
    expect(raised.invoice).toMatchObject({ subtotal: 321n, tax: 64n, total: 385n });
    // March bills both: 2000 + 2 × 1000 = 4000, tax 800.
    const mar = await renewSubscription(db, 'system', suspended, d('2027-03-01T00:00:00Z'));
    expect(mar?.invoices.map((i) => [i.subtotal, i.tax])).toEqual([[4000n, 800n]]);

    // With BILL_SUSPENDED_SUBSCRIPTIONS suspended subscriptions are invoiced: 500 + 100 now.
    const billed = await suspendedFeb8();
    const charged = await setSubscriptionAddOn(
      db,
      'system',
      billed,
      { addOnId: backup, quantity: 1 },
      feb15,
      { billSuspended: true },
    );
    expect(charged.invoice).toMatchObject({ subtotal: 500n, tax: 100n, total: 600n });
  });

  /** Cancels subscription `id` now at `at` with `refundType` (`cancelLocked`, as the cancel endpoint does). */
  const cancelNow = (id: string, refundType: 'full' | 'prorate' | 'none', at: Date) =>
    inUnitOfWork(db, { actor: 'system' }, async (work) =>
      cancelLocked(work, (await lockSubscription(work, id))!, { when: 'now', refundType }, at),
    );
  const invoiceRow = (id: string) =>
    db.selectFrom('invoices').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  /** What each account of `currency` moved since `before` (`ledgerIn`, debit-positive). */
  const movedSince = async (currency: string, before: Record<string, number>) => {
    const after = await ledgerIn(app, currency);
    const codes = new Set([...Object.keys(before), ...Object.keys(after)]);
    return Object.fromEntries(
      [...codes].map((code) => [code, (after[code] ?? 0) - (before[code] ?? 0)]).filter(([, n]) => n !== 0),
    );
  };

  it("full gives back the add-on's invoice of the period with the period invoice: both paid by customer credit, both back as credit", async () => {
    // Credit from a downgrade: (9000 − 1000) × 7/28 = 2000 + 25% = 2500 CHF cents.
    const customer = await insertCustomer(db);
    await downgradeCredit(app, customer, 'CHF', 9000);
    const plan = await flatPlan(app, 'CHF', 800); // 800 + 25% = 1000
    const storage = await addOnIn('CHF', 400, 'Storage');
    const { subscription: sub } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-02-01T00:00:00Z'),
    );
    // Feb 8 (21/28): 400 × 21/28 = 300, tax 75: 375, paid by the credit (2500 − 1000 − 375 = 1125 left).
    const addOn = (
      await setSubscriptionAddOn(
        db,
        'system',
        sub.id,
        { addOnId: storage, quantity: 1 },
        d('2027-02-08T00:00:00Z'),
      )
    ).invoice!;
    expect(addOn).toMatchObject({ total: 375n, credit_applied: 375n, status: 'PAID' });
    const before = await ledgerIn(app, 'CHF');
    // Feb 15, `full`: the period invoice's 1000 and the add-on invoice's 375 back as credit (before:
    // 422, the 375 could not be reached). Notes: round(200 × 1000/1000) = 200 tax; round(75 × 375/375) = 75.
    const done = await cancelNow(sub.id, 'full', d('2027-02-15T00:00:00Z'));
    expect(done.subscription.status).toBe('CANCELLED');
    expect(done.refunds.map((r) => [r.invoiceId, r.amount, r.parts, r.credit])).toEqual([
      [expect.not.stringMatching(addOn.id), 0n, [], 1000n],
      [addOn.id, 0n, [], 375n],
    ]);
    expect(done.creditNotes.map((n) => [n.invoice_id === addOn.id, n.subtotal, n.tax, n.total])).toEqual([
      [false, 800n, 200n, 1000n],
      [true, 300n, 75n, 375n],
    ]);
    expect(await invoiceRow(addOn.id)).toMatchObject({ status: 'REFUNDED', credit_returned: 375n });
    // Refunds (contra revenue) 800 + 300 = all the revenue, tax payable 200 + 75 = all the tax; the
    // customer's credit (a liability) 1375 back: 2500 again.
    expect(await movedSince('CHF', before)).toEqual({
      refunds: 1100,
      tax_payable: 275,
      'customer_credit:customer': -1375,
    });
  });

  it('KWD (3 decimals): an OPEN add-on invoice (prorate_at_renewal) owes less by its unused share with prorate, and is voided with full', async () => {
    // 800 fils + 25% = 1000 a month; Seats 1200 fils a month. Credit (4200 − 1000) × 7/28 = 800 + 25%
    // = 1000 fils pays the period invoice whole; nothing is left for the add-on's invoice.
    const plan = await flatPlan(app, 'KWD', 800);
    const seats = await addOnIn('KWD', 1200, 'Seats');
    const subscribedWithSeat = async () => {
      const customer = await insertCustomer(db);
      await downgradeCredit(app, customer, 'KWD', 4200);
      const { subscription } = await createSubscription(
        db,
        'system',
        { customerId: customer, planId: plan },
        d('2027-02-01T00:00:00Z'),
      );
      // Feb 8 (21/28): 1200 × 21/28 = 900, tax 225: 1125, OPEN, charged at the period's end.
      const { invoice } = await setSubscriptionAddOn(
        db,
        'system',
        subscription.id,
        { addOnId: seats, quantity: 1, proration: 'prorate_at_renewal' },
        d('2027-02-08T00:00:00Z'),
      );
      expect(invoice).toMatchObject({ status: 'OPEN', total: 1125n, amount_due: 1125n, credit_applied: 0n });
      return { id: subscription.id, addOn: invoice!.id };
    };

    const lowered = await subscribedWithSeat();
    let before = await ledgerIn(app, 'KWD');
    // Feb 16, `prorate` (13 of 28 days left): the period invoice gives back round_half_up(1000 ×
    // 13/28) = 464 as credit (tax round(200 × 464/1000) = 93, 371 net). The add-on invoice (Feb 8 →
    // Mar 1, 21 days, 13 unused) owes round_half_up(1125 × 13/21) = 696 less, its tax
    // round_half_up(225 × 696/1125) = 139 and 557 net: 429 left due for the 8 days served (before: 422).
    const prorated = await cancelNow(lowered.id, 'prorate', d('2027-02-16T00:00:00Z'));
    expect(prorated.refunds.map((r) => [r.amount, r.credit])).toEqual([[0n, 464n]]);
    expect(prorated.creditNotes.map((n) => [n.subtotal, n.tax, n.total])).toEqual([[371n, 93n, 464n]]);
    expect(await invoiceRow(lowered.addOn)).toMatchObject({
      status: 'OPEN',
      total: 1125n,
      amount_due: 429n,
      proration_credited: 696n,
      proration_tax_credited: 139n,
    });
    // Revenue and tax payable debited for the unused time: the add-on keeps 900 − 557 = 343 net
    // (1200 × 8/28 = 342.86) and 225 − 139 = 86 tax; the receivable is what is left due.
    expect(await movedSince('KWD', before)).toEqual({
      refunds: 371,
      revenue: 557,
      tax_payable: 93 + 139,
      'receivable:customer': -696,
      'customer_credit:customer': -464,
    });
    const activity = await db
      .selectFrom('activities')
      .select('data')
      .where('resource_id', '=', lowered.id)
      .where('action', '=', 'subscription.cancelled')
      .executeTakeFirstOrThrow();
    expect(activity.data).toMatchObject({ lowered_invoices: [lowered.addOn], credit_amount: '464' });

    // Scheduled first (Feb 9, for Feb 22, `prorate`): the add-on invoice owes round_half_up(1125 ×
    // 7/21) = 375 less at once (tax 75), the period invoice gives 250 back. Then cancelled now on
    // Feb 16 with `prorate`: 696 − 375 = 321 more (tax round_half_up(225 × 321/1125) = 64), and the
    // period 464 − 250 = 214: both end where one cancellation on Feb 16 ends (429 due, 139 tax taken
    // off), not 375 off twice.
    const twice = await subscribedWithSeat();
    before = await ledgerIn(app, 'KWD');
    await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      cancelLocked(
        work,
        (await lockSubscription(work, twice.id))!,
        { when: 'date', cancelAt: d('2027-02-22T00:00:00Z'), refundType: 'prorate' },
        d('2027-02-09T00:00:00Z'),
      ),
    );
    expect(await invoiceRow(twice.addOn)).toMatchObject({ amount_due: 750n, proration_tax_credited: 75n });
    const second = await cancelNow(twice.id, 'prorate', d('2027-02-16T00:00:00Z'));
    expect(second.refunds.map((r) => [r.amount, r.credit])).toEqual([[0n, 214n]]);
    expect(await invoiceRow(twice.addOn)).toMatchObject({
      status: 'OPEN',
      amount_due: 429n,
      proration_credited: 696n,
      proration_tax_credited: 139n,
    });
    expect(await movedSince('KWD', before)).toEqual({
      refunds: 371,
      revenue: 557,
      tax_payable: 93 + 139,
      'receivable:customer': -696,
      'customer_credit:customer': -464,
    });

    // With more credit, (7400 − 1000) × 7/28 = 1600 + 25% = 2000 fils: the period invoice takes 1000
    // and the add-on invoice the other 1000, 125 left due. `prorate` on Feb 16 owes the same 696: the
    // 125 due taken off first (tax round_half_up(225 × 125/1125) = 25; nothing left due: PAID), then
    // 571 of the credit applied back as credit, its note's tax over what the invoice still asks
    // (1000, tax 200): round(200 × 571/1000) = 114, 457 net. Tax given back 25 + 114 = 139, revenue
    // 100 + 457 = 557: as above.
    const credited = await insertCustomer(db);
    await downgradeCredit(app, credited, 'KWD', 7400);
    const { subscription: withCredit } = await createSubscription(
      db,
      'system',
      { customerId: credited, planId: plan },
      d('2027-02-01T00:00:00Z'),
    );
    const partly = (
      await setSubscriptionAddOn(
        db,
        'system',
        withCredit.id,
        { addOnId: seats, quantity: 1, proration: 'prorate_at_renewal' },
        d('2027-02-08T00:00:00Z'),
      )
    ).invoice!;
    expect(partly).toMatchObject({ status: 'OPEN', total: 1125n, credit_applied: 1000n, amount_due: 125n });
    before = await ledgerIn(app, 'KWD');
    const partlyCancelled = await cancelNow(withCredit.id, 'prorate', d('2027-02-16T00:00:00Z'));
    expect(partlyCancelled.refunds.map((r) => [r.amount, r.credit])).toEqual([[0n, 464n]]);
    expect(partlyCancelled.creditNotes.map((n) => [n.invoice_id === partly.id, n.subtotal, n.tax])).toEqual([
      [false, 371n, 93n],
      [true, 457n, 114n],
    ]);
    expect(await invoiceRow(partly.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_due: 0n,
      proration_credited: 125n,
      proration_tax_credited: 25n,
      credit_returned: 571n,
    });
    expect(await movedSince('KWD', before)).toEqual({
      refunds: 371 + 457,
      revenue: 100,
      tax_payable: 93 + 25 + 114,
      'receivable:customer': -125,
      'customer_credit:customer': -(464 + 571),
    });

    const voided = await subscribedWithSeat();
    before = await ledgerIn(app, 'KWD');
    // `full`: the period invoice's 1000 back as credit; the add-on invoice, which nothing paid, is
    // voided (all it charged given back): its receivable, revenue and tax reversed.
    const full = await cancelNow(voided.id, 'full', d('2027-02-16T00:00:00Z'));
    expect(full.refunds.map((r) => [r.amount, r.credit])).toEqual([[0n, 1000n]]);
    expect(await invoiceRow(voided.addOn)).toMatchObject({ status: 'VOID', amount_due: 0n, charge_at: null });
    expect(await movedSince('KWD', before)).toEqual({
      refunds: 800,
      revenue: 900,
      tax_payable: 200 + 225,
      'receivable:customer': -1125,
      'customer_credit:customer': -1000,
    });
  });

  it('an add-on invoice made with `full` stores the span it charged (the period start to its end), so a `prorate` cancellation gives back its unused share of that span (CHF)', async () => {
    // Plan 800 + 25% = 1000 rappen, paid by credit. Feb 15, `full`: the whole period's 400 + 100 tax
    // = 500, stored Feb 1 → Mar 1 (before: Feb 15 → Mar 1, though it charged from Feb 1).
    const customer = await insertCustomer(db);
    await downgradeCredit(app, customer, 'CHF', 9000);
    const plan = await flatPlan(app, 'CHF', 800);
    const storage = await addOnIn('CHF', 400, 'Storage');
    const { subscription: sub } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-02-01T00:00:00Z'),
    );
    const addOn = (
      await setSubscriptionAddOn(
        db,
        'system',
        sub.id,
        { addOnId: storage, quantity: 1, proration: 'full' },
        d('2027-02-15T00:00:00Z'),
      )
    ).invoice!;
    expect(addOn).toMatchObject({
      total: 500n,
      status: 'PAID',
      period_start: d('2027-02-01T00:00:00Z'),
      period_end: d('2027-03-01T00:00:00Z'),
    });
    const [line] = await db
      .selectFrom('invoice_lines')
      .selectAll()
      .where('invoice_id', '=', addOn.id)
      .execute();
    expect(line).toMatchObject({
      period_start: d('2027-02-01T00:00:00Z'),
      period_end: d('2027-03-01T00:00:00Z'),
    });
    // Raising again counts its unit as paid for the period: nothing charged twice.
    expect(
      (
        await setSubscriptionAddOn(
          db,
          'system',
          sub.id,
          { addOnId: storage, quantity: 1, proration: 'full' },
          d('2027-02-16T00:00:00Z'),
        )
      ).invoice,
    ).toBeNull();
    // Feb 22 `prorate`: 7 of the 28 days it charged for unused: 500 × 7/28 = 125 back (was 500 ×
    // 7/14 = 250); the period invoice 1000 × 7/28 = 250.
    const done = await cancelNow(sub.id, 'prorate', d('2027-02-22T00:00:00Z'));
    expect(done.refunds.map((r) => [r.invoiceId === addOn.id, r.amount, r.credit])).toEqual([
      [false, 0n, 250n],
      [true, 0n, 125n],
    ]);
  });

  it('a free period invoice (plan 0) does not refuse a `prorate` cancellation with nothing_to_refund: the paid add-on invoice gives back its unused share (PLN)', async () => {
    const customer = await insertCustomer(db);
    await downgradeCredit(app, customer, 'PLN', 9000);
    const plan = await flatPlan(app, 'PLN', 0);
    const storage = await addOnIn('PLN', 400, 'Storage');
    const { subscription: sub } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-02-01T00:00:00Z'),
    );
    // Feb 8 (21 of 28 days): 400 × 21/28 = 300 + 25% = 375, paid by credit.
    const addOn = (
      await setSubscriptionAddOn(
        db,
        'system',
        sub.id,
        { addOnId: storage, quantity: 1 },
        d('2027-02-08T00:00:00Z'),
      )
    ).invoice!;
    expect(addOn).toMatchObject({ total: 375n, status: 'PAID', credit_applied: 375n });
    // Feb 22 `prorate`: 7 of its 21 days unused: 375 × 7/21 = 125 back as credit.
    const done = await cancelNow(sub.id, 'prorate', d('2027-02-22T00:00:00Z'));
    expect(done.refunds.map((r) => [r.invoiceId, r.amount, r.credit])).toEqual([[addOn.id, 0n, 125n]]);
    expect(await invoiceRow(addOn.id)).toMatchObject({ credit_returned: 125n });
  });

  it('nothing of the period to give back (plan 0, no add-on invoice) still refuses with nothing_to_refund (PLN)', async () => {
    const customer = await insertCustomer(db);
    const plan = await flatPlan(app, 'PLN', 0);
    const { subscription: sub } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-02-01T00:00:00Z'),
    );
    await expect(cancelNow(sub.id, 'prorate', d('2027-02-22T00:00:00Z'))).rejects.toMatchObject({
      code: 'nothing_to_refund',
    });
  });

  /**
   * A subscription from Feb 1 2027 to a `flatPlan` of 1000 in `currency` (1250 with tax), its period
   * invoice left OPEN or paid by bank transfer, then 2500 of customer credit (`downgradeCredit`), and
   * on Feb 8 (21 of 28 days left) one Storage add-on of 400: 400 × 21/28 = 300 + 25% = 375, paid by
   * that credit.
   */
  const periodNotByGateway = async (currency: string, period: 'offline' | 'unpaid') => {
    const customer = await insertCustomer(db);
    const storage = await addOnIn(currency, 400, 'Storage');
    const {
      subscription: sub,
      invoices: [invoice],
    } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: await flatPlan(app, currency, 1000) },
      d('2027-02-01T00:00:00Z'),
    );
    if (period === 'offline') await payOpenOffline(db, sub.id);
    await downgradeCredit(app, customer, currency, 9000);
    const addOn = (
      await setSubscriptionAddOn(
        db,
        'system',
        sub.id,
        { addOnId: storage, quantity: 1 },
        d('2027-02-08T00:00:00Z'),
      )
    ).invoice!;
    expect(addOn).toMatchObject({ total: 375n, status: 'PAID', credit_applied: 375n });
    expect(await invoiceRow(invoice!.id)).toMatchObject({
      total: 1250n,
      status: period === 'offline' ? 'PAID' : 'OPEN',
      amount_paid: period === 'offline' ? 1250n : 0n,
    });
    return { sub, period: invoice!, addOn };
  };

  it("MXN: a period invoice paid offline refuses a `prorate` cancellation that would give back only the add-on invoice (was: 125 back, the period's 312 left out of `refunds` without a word); nothing changes", async () => {
    const { sub, period, addOn } = await periodNotByGateway('MXN', 'offline');
    // The period invoice owes 1250 × 7/28 = 312 back too, which billhook cannot send to a bank transfer.
    await expect(cancelNow(sub.id, 'prorate', d('2027-02-22T00:00:00Z'))).rejects.toMatchObject({
      code: 'period_invoice_not_refundable',
      message: expect.stringContaining(
        `${period.id} of subscription ${sub.id} was paid 1250 MXN outside any gateway`,
      ),
    });
    expect(await invoiceRow(addOn.id)).toMatchObject({ status: 'PAID', credit_returned: 0n });
    expect(
      await db
        .selectFrom('subscriptions')
        .select('status')
        .where('id', '=', sub.id)
        .executeTakeFirstOrThrow(),
    ).toEqual({
      status: 'ACTIVE',
    });
    // The way out it names: refund_type none, then by hand.
    const done = await cancelNow(sub.id, 'none', d('2027-02-22T00:00:00Z'));
    expect(done.refunds).toEqual([]);
  });

  it('ZAR: an OPEN period invoice refuses a `prorate` cancellation that would give back only the add-on invoice (it stayed owed whole for a period cut short); voided first, the cancellation gives the add-on its 125 back', async () => {
    const { sub, period, addOn } = await periodNotByGateway('ZAR', 'unpaid');
    await expect(cancelNow(sub.id, 'prorate', d('2027-02-22T00:00:00Z'))).rejects.toMatchObject({
      code: 'period_invoice_not_refundable',
      message: expect.stringContaining(`void it (POST /v1/invoices/${period.id}/void)`),
    });
    expect(await invoiceRow(addOn.id)).toMatchObject({ credit_returned: 0n });
    await voidInvoice(db, 'system', period.id);
    // Feb 22 `prorate`: 7 of the add-on invoice's 21 days unused: 375 × 7/21 = 125 back as credit.
    const done = await cancelNow(sub.id, 'prorate', d('2027-02-22T00:00:00Z'));
    expect(done.refunds.map((r) => [r.invoiceId, r.amount, r.credit])).toEqual([[addOn.id, 0n, 125n]]);
    expect(await invoiceRow(addOn.id)).toMatchObject({ credit_returned: 125n });
  });

  it('`full` voiding an OPEN add-on invoice paid mostly by credit counts the credit its void gives back in the activity credit_amount (no credit note for a void) (BHD)', async () => {
    // Plan 800 fils + 25% = 1000. Credit (7400 − 1000) × 7/28 = 1600 + 25% = 2000: 1000 pays the
    // period invoice, 1000 the add-on invoice (Feb 8, 1200 × 21/28 = 900 + 225 = 1125), 125 due.
    const plan = await flatPlan(app, 'BHD', 800);
    const seats = await addOnIn('BHD', 1200, 'Seats');
    const customer = await insertCustomer(db);
    await downgradeCredit(app, customer, 'BHD', 7400);
    const { subscription: sub } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-02-01T00:00:00Z'),
    );
    const addOn = (
      await setSubscriptionAddOn(
        db,
        'system',
        sub.id,
        { addOnId: seats, quantity: 1, proration: 'prorate_at_renewal' },
        d('2027-02-08T00:00:00Z'),
      )
    ).invoice!;
    expect(addOn).toMatchObject({ status: 'OPEN', total: 1125n, credit_applied: 1000n, amount_due: 125n });
    const before = await ledgerIn(app, 'BHD');
    const done = await cancelNow(sub.id, 'full', d('2027-02-16T00:00:00Z'));
    expect(await invoiceRow(addOn.id)).toMatchObject({ status: 'VOID' });
    // 1000 (the period invoice's credit note) + 1000 (the void's credit applied, returned).
    expect((await movedSince('BHD', before))['customer_credit:customer']).toBe(-2000);
    expect(done.creditNotes.map((n) => n.total)).toEqual([1000n]);
    const activity = await db
      .selectFrom('activities')
      .select('data')
      .where('resource_id', '=', sub.id)
      .where('action', '=', 'subscription.cancelled')
      .executeTakeFirstOrThrow();
    expect(activity.data).toMatchObject({ credit_amount: '2000', voided_invoices: [addOn.id] });
  });

  it('a scheduled `prorate` cancellation clearing an OPEN add-on invoice in dunning (PAID by the lowering) reinstates the PAST_DUE subscription (NOK)', async () => {
    // Plan 800 + 25% = 1000; credit (7400 − 1000) × 7/28 × 1.25 = 2000: 1000 pays the period, 1000
    // the add-on invoice (Feb 8: 1200 × 21/28 = 900 + 225 = 1125), 125 due now, its charge declined.
    const plan = await flatPlan(app, 'NOK', 800);
    const seats = await addOnIn('NOK', 1200, 'Seats');
    const customer = await insertCustomer(db);
    await downgradeCredit(app, customer, 'NOK', 7400);
    const { subscription: sub } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-02-01T00:00:00Z'),
    );
    const addOn = (
      await setSubscriptionAddOn(
        db,
        'system',
        sub.id,
        { addOnId: seats, quantity: 1 },
        d('2027-02-08T00:00:00Z'),
      )
    ).invoice!;
    expect(addOn).toMatchObject({ status: 'OPEN', total: 1125n, credit_applied: 1000n, amount_due: 125n });
    await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      recordCollectionFailure(
        work,
        await lockInvoice(work, addOn.id),
        { retryDays: [3, 5, 7], finalAction: 'SUSPEND' },
        d('2027-02-08T00:00:00Z'),
        { code: 'card_declined' },
      ),
    );
    const status = async () =>
      (
        await db
          .selectFrom('subscriptions')
          .select('status')
          .where('id', '=', sub.id)
          .executeTakeFirstOrThrow()
      ).status;
    expect(await status()).toBe('PAST_DUE');
    // Feb 9, cancel at Feb 22 with `prorate`: 1125 × 7/21 = 375 owed back: the 125 due taken off
    // (PAID), 250 of its credit back. Nothing owed any more: ACTIVE until Feb 22.
    await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      cancelLocked(
        work,
        (await lockSubscription(work, sub.id))!,
        { when: 'date', cancelAt: d('2027-02-22T00:00:00Z'), refundType: 'prorate' },
        d('2027-02-09T00:00:00Z'),
      ),
    );
    // Its 125 due taken off: PAID, then 250 of its credit back: PARTIALLY_REFUNDED, nothing due.
    expect(await invoiceRow(addOn.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_due: 0n,
      charge_at: null,
      credit_returned: 250n,
    });
    expect(await status()).toBe('ACTIVE');
  });

  /** Subscribed from Jan 1 2027 with `seats` units of `addOn` held from then (`none`): February's invoice bills them. */
  const subscribedWithAddOn = async (plan: string, addOn: string, seats: number) => {
    const customer = await insertCustomer(db);
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-01-01T00:00:00Z'),
    );
    await setSubscriptionAddOn(
      db,
      'system',
      subscription.id,
      { addOnId: addOn, quantity: seats, proration: 'none' },
      d('2027-01-01T00:00:00Z'),
    );
    const feb = await renewSubscription(db, 'system', subscription.id, d('2027-02-01T00:00:00Z'));
    return { id: subscription.id, february: feb!.invoices[0]! };
  };
  /** Subscription `id`'s invoice lines as [type, quantity, add-on, plan, amount, tax, period start, period end]. */
  const lineRows = (invoice: Awaited<ReturnType<typeof addOnInvoices>>[number]) =>
    invoice.lines.map((l) => [
      l.type,
      l.quantity,
      l.add_on_id,
      l.plan_id,
      l.amount,
      l.tax_amount,
      l.period_start,
      l.period_end,
    ]);
  const statusOf = (id: string) =>
    db
      .selectFrom('subscriptions')
      .select(['status', 'next_renewal_at', 'add_on_charge_at'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();

  it('ISK (no minor unit): reactivated by hand within the period invoiced before the suspension, the add-on units set while suspended are charged from the reactivation, once', async () => {
    // 3000 a month at 10% tax; Seats 1000 each a month.
    const plan = await insertPlan(db, {
      currency: 'ISK',
      price: { model: 'FLAT_FEE', amount: 3000 },
      taxRatePpm: 100_000,
    });
    const seats = await addOnIn('ISK', 1000, 'Seats');
    // January: 3000 + 300. February: 3000 + 2 × 1000 = 5000 + 500 = 5500, paying for 2 seats to Mar 1.
    const { id, february } = await subscribedWithAddOn(plan, seats, 2);
    expect([february.subtotal, february.tax, february.total]).toEqual([5000n, 500n, 5500n]);
    // Suspended Feb 8; raised to 5 on Feb 10, lowered to 4 on Feb 12: nothing charged while suspended.
    await suspendSubscription(db, 'system', id, d('2027-02-08T00:00:00Z'), 'fraud check');
    for (const [quantity, day] of [
      [5, '10'],
      [4, '12'],
    ] as const) {
      const set = await setSubscriptionAddOn(
        db,
        'system',
        id,
        { addOnId: seats, quantity },
        d(`2027-02-${day}T00:00:00Z`),
      );
      expect(set.invoice).toBeNull();
    }
    expect(await addOnInvoices(id)).toEqual([]);

    // Reactivated Feb 17, 12 of 28 days left: the 4 seats held beyond the 2 paid (the least held
    // since the suspension is 2, too), from then: 2 × 1000 × 12/28 = 857.14 → 857, tax 85.7 → 86: 943.
    const feb17 = d('2027-02-17T00:00:00Z');
    const mar1 = d('2027-03-01T00:00:00Z');
    const reactivated = await reactivateSubscription(db, 'system', id, feb17);
    const [charged, ...others] = await addOnInvoices(id);
    expect(others).toEqual([]);
    expect(reactivated.invoices.map((i) => i.id)).toEqual([charged!.id]);
    expect(reactivated.subscription).toMatchObject({ status: 'ACTIVE', next_renewal_at: mar1 });
    expect(charged).toMatchObject({
      billing_reason: 'subscription_update',
      status: 'OPEN',
      subtotal: 857n,
      tax: 86n,
      total: 943n,
      amount_due: 943n,
      charge_at: feb17,
      period_start: feb17,
      period_end: mar1,
    });
    expect(lineRows(charged!)).toEqual([['CHARGE', 2, seats, null, 857n, 86n, feb17, mar1]]);
    // Reactivating again is refused: nothing more charged.
    await expect(reactivateSubscription(db, 'system', id, d('2027-02-18T00:00:00Z'))).rejects.toMatchObject({
      code: 'invalid_subscription_transition',
    });
    expect((await addOnInvoices(id)).map((i) => i.id)).toEqual([charged!.id]);
    // Revenue: 3000 (January) + 5000 (February) + 857 = 8857; tax 300 + 500 + 86 = 886; all owed.
    expect(await ledgerIn(app, 'ISK')).toEqual({
      'receivable:customer': 9743,
      revenue: -8857,
      tax_payable: -886,
    });

    // The 4 are paid for now: setting 4 again charges nothing; a fifth on Feb 21 (8/28) is charged
    // alone: 1000 × 8/28 = 285.71 → 286, tax 28.6 → 29: 315.
    const same = await setSubscriptionAddOn(
      db,
      'system',
      id,
      { addOnId: seats, quantity: 4 },
      d('2027-02-20T00:00:00Z'),
    );
    expect(same.invoice).toBeNull();
    const fifth = await setSubscriptionAddOn(
      db,
      'system',
      id,
      { addOnId: seats, quantity: 5 },
      d('2027-02-21T00:00:00Z'),
    );
    expect(fifth.invoice).toMatchObject({ subtotal: 286n, tax: 29n, total: 315n });
    // March bills 3000 + 5 × 1000 = 8000, tax 800.
    const mar = await renewSubscription(db, 'system', id, mar1);
    expect(mar?.invoices.map((i) => [i.subtotal, i.tax])).toEqual([[8000n, 800n]]);
  });

  it('JOD (3 decimals): to a scheduled cancellation; a quantity set with none while suspended is held, other behaviours are charged from the reactivation', async () => {
    // 10.000 JOD a month at 15% tax; Storage 2.500 and Backup 1.000 a month (fils).
    const plan = await insertPlan(db, {
      currency: 'JOD',
      price: { model: 'FLAT_FEE', amount: 10_000 },
      taxRatePpm: 150_000,
    });
    const storage = await addOnIn('JOD', 2500, 'Storage');
    const backup = await addOnIn('JOD', 1000, 'Backup');
    // January 10000 + 1500; February 10000 + 2500 = 12500 + 1875 = 14375 (1 Storage paid).
    const { id, february } = await subscribedWithAddOn(plan, storage, 1);
    expect(february.total).toBe(14_375n);
    // Feb 5: cancellation scheduled for Feb 22 (no refund).
    const feb22 = d('2027-02-22T00:00:00Z');
    await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      cancelLocked(
        work,
        (await lockSubscription(work, id))!,
        { when: 'date', cancelAt: feb22, refundType: 'none' },
        d('2027-02-05T00:00:00Z'),
      ),
    );
    await suspendSubscription(db, 'system', id, d('2027-02-08T00:00:00Z'), 'fraud check');
    // While suspended: Storage to 3 asking prorate_at_renewal, Backup 2 asking none.
    const sets: [string, number, ProrationBehavior, string][] = [
      [storage, 3, 'prorate_at_renewal', '09'],
      [backup, 2, 'none', '10'],
    ];
    for (const [addOnId, quantity, proration, day] of sets) {
      const set = await setSubscriptionAddOn(
        db,
        'system',
        id,
        { addOnId, quantity, proration },
        d(`2027-02-${day}T00:00:00Z`),
      );
      expect(set.invoice).toBeNull();
    }

    // Reactivated Feb 15: served to Feb 22, 7 of 28 days. Storage: 2 units beyond the 1 paid, now
    // (not at the period's end: the time before was not served): 2 × 2500 × 7/28 = 1250, tax 187.5
    // → 188: 1438. Backup: held as none asked, nothing.
    const feb15 = d('2027-02-15T00:00:00Z');
    const reactivated = await reactivateSubscription(db, 'system', id, feb15);
    expect(reactivated.subscription).toMatchObject({ status: 'ACTIVE', next_renewal_at: feb22 });
    const [charged, ...others] = await addOnInvoices(id);
    expect(others).toEqual([]);
    expect(charged).toMatchObject({
      billing_reason: 'subscription_update',
      status: 'OPEN',
      subtotal: 1250n,
      tax: 188n,
      total: 1438n,
      charge_at: feb15,
      period_start: feb15,
      period_end: feb22,
    });
    expect(lineRows(charged!)).toEqual([['CHARGE', 2, storage, null, 1250n, 188n, feb15, feb22]]);
    // Revenue 10000 + 12500 + 1250 = 23750; tax 1500 + 1875 + 188 = 3563; owed 11500 + 14375 + 1438.
    expect(await ledgerIn(app, 'JOD')).toEqual({
      'receivable:customer': 27_313,
      revenue: -23_750,
      tax_payable: -3563,
    });
    // It still ends at Feb 22, billing nothing more.
    const ended = await renewSubscription(db, 'system', id, feb22);
    expect([ended?.subscription.status, ended?.invoices]).toEqual(['CANCELLED', []]);
  });

  it('RON: a payment reinstating a subscription dunning suspended leaves the charge to the renewal, from the reactivation; a second reinstatement or reactivation charges nothing', async () => {
    // 40.00 a month at 23% tax; Seats 15.00 each a month.
    const plan = await insertPlan(db, {
      currency: 'RON',
      price: { model: 'FLAT_FEE', amount: 4000 },
      taxRatePpm: 230_000,
    });
    const seats = await addOnIn('RON', 1500, 'Seats');
    // February: 4000 + 1500 = 5500 + 1265 = 6765 (1 seat paid).
    const { id, february } = await subscribedWithAddOn(plan, seats, 1);
    expect(february.total).toBe(6765n);
    await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      transitionSubscription(
        work,
        (await lockSubscription(work, id))!,
        'SUSPENDED',
        d('2027-02-08T00:00:00Z'),
        {
          reason: DUNNING_REASON,
        },
      ),
    );
    await setSubscriptionAddOn(db, 'system', id, { addOnId: seats, quantity: 3 }, d('2027-02-10T00:00:00Z'));
    // Feb 17: February's invoice paid (what the payment's transaction calls): ACTIVE, the charge left
    // pending from Feb 17 (next_renewal_at stays the period's end), nothing invoiced inside the payment.
    const feb17 = d('2027-02-17T00:00:00Z');
    const reinstate = () =>
      inUnitOfWork(db, { actor: 'system' }, (work) => reinstateAfterPayment(work, id, february.id, feb17));
    expect(await reinstate()).toBe(true);
    const mar1 = d('2027-03-01T00:00:00Z');
    expect(await statusOf(id)).toEqual({ status: 'ACTIVE', next_renewal_at: mar1, add_on_charge_at: feb17 });
    expect(await addOnInvoices(id)).toEqual([]);
    // The sweep a day late (Feb 18) charges from the reactivation, 12 of 28 days: 2 × 1500 × 12/28
    // = 1285.71 → 1286, tax 295.78 → 296: 1582.
    const renewed = await renewSubscription(db, 'scheduler', id, d('2027-02-18T00:00:00Z'), true);
    const [charged, ...others] = await addOnInvoices(id);
    expect(others).toEqual([]);
    expect(renewed?.invoices.map((i) => i.id)).toEqual([charged!.id]);
    expect(charged).toMatchObject({
      subtotal: 1286n,
      tax: 296n,
      total: 1582n,
      charge_at: feb17,
      period_end: mar1,
    });
    expect(lineRows(charged!)).toEqual([['CHARGE', 2, seats, null, 1286n, 296n, feb17, mar1]]);
    expect(await statusOf(id)).toEqual({ status: 'ACTIVE', next_renewal_at: mar1, add_on_charge_at: null });
    // Racing a reactivation by hand or a second payment: it is ACTIVE, nothing more is charged.
    expect(await reinstate()).toBe(false);
    await expect(reactivateSubscription(db, 'system', id, feb17)).rejects.toMatchObject({
      code: 'invalid_subscription_transition',
    });
    expect(await renewSubscription(db, 'scheduler', id, d('2027-02-19T00:00:00Z'))).toMatchObject({
      invoices: [],
    });
    expect((await addOnInvoices(id)).map((i) => i.id)).toEqual([charged!.id]);
    // January 4000 + 920; February 5500 + 1265; 1286 + 296.
    expect(await ledgerIn(app, 'RON')).toEqual({
      'receivable:customer': 4920 + 6765 + 1582,
      revenue: -(4000 + 5500 + 1286),
      tax_payable: -(920 + 1265 + 296),
    });
  });

  it('no extra invoice: reactivated in a later period (its renewal bills the quantity), with BILL_SUSPENDED_SUBSCRIPTIONS (charged when set), or nothing set while suspended', async () => {
    // 2000 a month at 20% tax; Backup 1000 a month.
    const plan = await insertPlan(db, {
      currency: 'CZK',
      price: { model: 'FLAT_FEE', amount: 2000 },
      taxRatePpm: 200_000,
    });
    const backup = await addOnIn('CZK', 1000, 'Backup');
    const suspendedAndRaised = async (policy?: { billSuspended: boolean }) => {
      const { id } = await subscribedWithAddOn(plan, backup, 1);
      await suspendSubscription(db, 'system', id, d('2027-02-08T00:00:00Z'), 'fraud check');
      const raised = await setSubscriptionAddOn(
        db,
        'system',
        id,
        { addOnId: backup, quantity: 3 },
        d('2027-02-10T00:00:00Z'),
        policy,
      );
      return { id, raised: raised.invoice };
    };

    // Reactivated Mar 10: March is invoiced at once with the 3: 2000 + 3000 = 5000, tax 1000.
    const later = await suspendedAndRaised();
    const march = await reactivateSubscription(db, 'system', later.id, d('2027-03-10T00:00:00Z'));
    expect(march.invoices.map((i) => [i.period_index, i.subtotal, i.tax])).toEqual([[2, 5000n, 1000n]]);
    expect(await addOnInvoices(later.id)).toEqual([]);
    expect(await statusOf(later.id)).toEqual({
      status: 'ACTIVE',
      next_renewal_at: d('2027-04-01T00:00:00Z'),
      add_on_charge_at: null,
    });

    // BILL_SUSPENDED_SUBSCRIPTIONS: the 2 were charged on Feb 10 (19/28: 2 × 1000 × 19/28 = 1357.14
    // → 1357, tax 271.4 → 271); the reactivation charges nothing more.
    const billed = await suspendedAndRaised({ billSuspended: true });
    expect(billed.raised).toMatchObject({ subtotal: 1357n, tax: 271n });
    const back = await reactivateSubscription(db, 'system', billed.id, d('2027-02-17T00:00:00Z'), {
      billSuspended: true,
    });
    expect(back.invoices).toEqual([]);
    expect((await addOnInvoices(billed.id)).map((i) => i.id)).toEqual([billed.raised!.id]);

    // Nothing set while suspended: nothing charged, the renewal stays at the period's end.
    const { id: quiet } = await subscribedWithAddOn(plan, backup, 1);
    await suspendSubscription(db, 'system', quiet, d('2027-02-08T00:00:00Z'), 'fraud check');
    const resumed = await reactivateSubscription(db, 'system', quiet, d('2027-02-17T00:00:00Z'));
    expect(resumed.invoices).toEqual([]);
    expect(await statusOf(quiet)).toEqual({
      status: 'ACTIVE',
      next_renewal_at: d('2027-03-01T00:00:00Z'),
      add_on_charge_at: null,
    });
  });
  it('NOK: a quantity set with none while suspended holds only the units it adds; the raise before it is still charged at the reactivation', async () => {
    // 3000 a month, no tax; Seats 1000 each a month; 2 seats paid for February.
    const plan = await insertPlan(db, { currency: 'NOK', price: { model: 'FLAT_FEE', amount: 3000 } });
    const seats = await addOnIn('NOK', 1000, 'Seats');
    const feb17 = d('2027-02-17T00:00:00Z');
    const mar1 = d('2027-03-01T00:00:00Z');
    /** Suspended Feb 8, `sets` made on Feb 10, 11, …, reactivated by hand Feb 17 (12 of 28 days left). */
    const chargedAfter = async (...sets: [number, ProrationBehavior][]) => {
      const { id } = await subscribedWithAddOn(plan, seats, 2);
      await suspendSubscription(db, 'system', id, d('2027-02-08T00:00:00Z'), 'fraud check');
      for (const [i, [quantity, proration]] of sets.entries()) {
        const at = d(`2027-02-${10 + i}T00:00:00Z`);
        await setSubscriptionAddOn(db, 'system', id, { addOnId: seats, quantity, proration }, at);
      }
      const back = await reactivateSubscription(db, 'system', id, feb17);
      const charged = await addOnInvoices(id);
      expect(charged.map((i) => i.id)).toEqual(back.invoices.map((i) => i.id));
      return charged.map(lineRows);
    };
    // 2 → 5 (prorate_now), then 5 → 6 with none: as when ACTIVE, the 3 raised first are charged, the
    // sixth is held: 3 × 1000 × 12/28 = 1285.71 → 1286.
    const three = [['CHARGE', 3, seats, null, 1286n, 0n, feb17, mar1]];
    expect(await chargedAfter([5, 'prorate_now'], [6, 'none'])).toEqual([three]);
    // 2 → 5, then 5 again with none (adds nothing): the same 3, 1286.
    expect(await chargedAfter([5, 'prorate_now'], [5, 'none'])).toEqual([three]);
    // 2 → 5 with none, then 5 → 6: the 3 held, the sixth charged: 1000 × 12/28 = 428.57 → 429.
    expect(await chargedAfter([5, 'none'], [6, 'prorate_now'])).toEqual([
      [['CHARGE', 1, seats, null, 429n, 0n, feb17, mar1]],
    ]);
    // 2 → 1 (one given up), then 1 → 4 with none: the 3 it adds are held; nothing beyond the 2 paid.
    expect(await chargedAfter([1, 'prorate_now'], [4, 'none'])).toEqual([]);
  });

  it("DKK: a suspension that does not renew first (a usage limit) before the sweep charges the pending charge: still charged, from the payment's reactivation, by the reactivation by hand or by the sweep while SUSPENDED", async () => {
    // 40.00 a month, no tax; Seats 15.00 each a month; 1 seat paid for February.
    const plan = await insertPlan(db, { currency: 'DKK', price: { model: 'FLAT_FEE', amount: 4000 } });
    const seats = await addOnIn('DKK', 1500, 'Seats');
    const feb17 = d('2027-02-17T00:00:00Z');
    const mar1 = d('2027-03-01T00:00:00Z');
    /** Dunning suspended Feb 8, raised to 3 Feb 10, reinstated by a payment Feb 17, suspended by a usage limit 30 s later (as usage.ts does: no renewal first). */
    const suspendedAgain = async () => {
      const { id, february } = await subscribedWithAddOn(plan, seats, 1);
      const suspend = (at: Date, reason: string) =>
        inUnitOfWork(db, { actor: 'system' }, async (work) =>
          transitionSubscription(work, (await lockSubscription(work, id))!, 'SUSPENDED', at, { reason }),
        );
      await suspend(d('2027-02-08T00:00:00Z'), DUNNING_REASON);
      await setSubscriptionAddOn(
        db,
        'system',
        id,
        { addOnId: seats, quantity: 3 },
        d('2027-02-10T00:00:00Z'),
      );
      await inUnitOfWork(db, { actor: 'system' }, (work) =>
        reinstateAfterPayment(work, id, february.id, feb17),
      );
      await suspend(d('2027-02-17T00:00:30Z'), 'usage_limit');
      expect(await statusOf(id)).toEqual({
        status: 'SUSPENDED',
        next_renewal_at: mar1,
        add_on_charge_at: feb17,
      });
      return id;
    };
    // The 2 seats beyond the 1 paid were served from Feb 17; the second suspension credits no time
    // paid for (as for the plan): 2 × 1500 × 12/28 = 1285.71 → 1286, from Feb 17 to Mar 1.
    const charge = [['CHARGE', 2, seats, null, 1286n, 0n, feb17, mar1]];

    // Reactivated by hand Feb 20: the pending charge is made; nothing was set in the second
    // suspension, so nothing more.
    const byHand = await suspendedAgain();
    const back = await reactivateSubscription(db, 'system', byHand, d('2027-02-20T00:00:00Z'));
    const charged = await addOnInvoices(byHand);
    expect(charged.map(lineRows)).toEqual([charge]);
    expect(charged.map((i) => i.id)).toEqual(back.invoices.map((i) => i.id));
    expect(await statusOf(byHand)).toEqual({
      status: 'ACTIVE',
      next_renewal_at: mar1,
      add_on_charge_at: null,
    });

    // The sweep (Feb 18) picks it up while SUSPENDED and charges it, leaving it SUSPENDED; the
    // reactivation by hand then charges nothing more.
    const bySweep = await suspendedAgain();
    const sweep = await renewDueSubscriptions(db, 'scheduler', d('2027-02-18T00:00:00Z'));
    expect(sweep.failures.filter((f) => f.subscription === bySweep)).toEqual([]);
    const [swept, ...others] = await addOnInvoices(bySweep);
    expect(others).toEqual([]);
    expect(lineRows(swept!)).toEqual(charge);
    expect(swept).toMatchObject({ status: 'OPEN', total: 1286n, charge_at: feb17 });
    expect(await statusOf(bySweep)).toEqual({
      status: 'SUSPENDED',
      next_renewal_at: mar1,
      add_on_charge_at: null,
    });
    const later = await reactivateSubscription(db, 'system', bySweep, d('2027-02-20T00:00:00Z'));
    expect(later.invoices).toEqual([]);
    expect((await addOnInvoices(bySweep)).map((i) => i.id)).toEqual([swept!.id]);
    // Each: January 4000, February 4000 + 1500, then 1286; no tax, all owed.
    expect(await ledgerIn(app, 'DKK')).toEqual({
      'receivable:customer': 2 * (4000 + 5500 + 1286),
      revenue: -2 * (4000 + 5500 + 1286),
    });
  });

  it("SEK: dunning's final cancellation (which does not renew) makes the add-on charge pending since a payment's reactivation before it ends the subscription", async () => {
    // 40.00 a month, no tax; Seats 15.00 each a month; 1 seat paid for February (its invoice left
    // OPEN: the one whose last retry fails below).
    const plan = await insertPlan(db, { currency: 'SEK', price: { model: 'FLAT_FEE', amount: 4000 } });
    const seats = await addOnIn('SEK', 1500, 'Seats');
    const feb17 = d('2027-02-17T00:00:00Z');
    const mar1 = d('2027-03-01T00:00:00Z');
    const { id, february } = await subscribedWithAddOn(plan, seats, 1);
    await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      transitionSubscription(
        work,
        (await lockSubscription(work, id))!,
        'SUSPENDED',
        d('2027-02-08T00:00:00Z'),
        {
          reason: DUNNING_REASON,
        },
      ),
    );
    await setSubscriptionAddOn(db, 'system', id, { addOnId: seats, quantity: 3 }, d('2027-02-10T00:00:00Z'));
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      reinstateAfterPayment(work, id, february.id, feb17),
    );
    expect(await statusOf(id)).toEqual({ status: 'ACTIVE', next_renewal_at: mar1, add_on_charge_at: feb17 });
    // February's invoice fails its last retry 30 s later, before the sweep ran: CANCELLED at once.
    const step = await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      recordCollectionFailure(
        work,
        await lockInvoice(work, february.id),
        { retryDays: [], finalAction: 'CANCEL' },
        d('2027-02-17T00:00:30Z'),
        { code: 'card_declined' },
      ),
    );
    expect(step.subscriptionStatus).toBe('CANCELLED');
    // The 2 seats beyond the 1 paid were served from Feb 17 to the cancellation; a cancellation now
    // by hand would have made the charge (it renews first): 2 × 1500 × 12/28 = 1285.71 → 1286.
    const charged = await addOnInvoices(id);
    expect(charged.map(lineRows)).toEqual([[['CHARGE', 2, seats, null, 1286n, 0n, feb17, mar1]]]);
    expect(await statusOf(id)).toEqual({
      status: 'CANCELLED',
      next_renewal_at: null,
      add_on_charge_at: null,
    });
  });

  it("HUF, CHF: while a payment's reactivation charge is pending, next_renewal_at stays the period's end for every reader: usage, the API, a cancellation at period end", async () => {
    const feb17 = d('2027-02-17T00:00:00Z');
    const mar1 = d('2027-03-01T00:00:00Z');
    /** Dunning suspended Feb 8 (after `before`), raised to 3 Feb 10, reinstated by a payment Feb 17: the charge pending. */
    const pending = async (plan: string, addOn: string, before: (id: string) => Promise<unknown>) => {
      const { id, february } = await subscribedWithAddOn(plan, addOn, 1);
      await before(id);
      await inUnitOfWork(db, { actor: 'system' }, async (work) =>
        transitionSubscription(
          work,
          (await lockSubscription(work, id))!,
          'SUSPENDED',
          d('2027-02-08T00:00:00Z'),
          {
            reason: DUNNING_REASON,
          },
        ),
      );
      await setSubscriptionAddOn(
        db,
        'system',
        id,
        { addOnId: addOn, quantity: 3 },
        d('2027-02-10T00:00:00Z'),
      );
      await inUnitOfWork(db, { actor: 'system' }, (work) =>
        reinstateAfterPayment(work, id, february.id, feb17),
      );
      expect(await statusOf(id)).toEqual({
        status: 'ACTIVE',
        next_renewal_at: mar1,
        add_on_charge_at: feb17,
      });
      return id;
    };

    // Cancelled at period end (Feb 5): it ends Mar 1, so usage at Feb 17 00:00:20 is accepted.
    const metered = await insertPlan(db, {
      currency: 'HUF',
      price: { model: 'FLAT_FEE', amount: 1000 },
      metered: [{ code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 2 } }],
    });
    const ending = await pending(metered, await addOnIn('HUF', 500, 'Seats'), (id) =>
      inUnitOfWork(db, { actor: 'system' }, async (work) =>
        cancelLocked(
          work,
          (await lockSubscription(work, id))!,
          { when: 'period_end', refundType: 'none' },
          d('2027-02-05T00:00:00Z'),
        ),
      ),
    );
    const usageAt = d('2027-02-17T00:00:20Z');
    const usage = await recordUsageEvent(
      db,
      'system',
      { eventId: `${ending}-1`, subscriptionId: ending, code: 'api_calls', value: 5n, timestamp: usageAt },
      usageAt,
    );
    expect(usage.created).toBe(true);

    // A change scheduled for the next cycle: the API shows it, and the next renewal, at Mar 1.
    const plan = await insertPlan(db, { currency: 'CHF', price: { model: 'FLAT_FEE', amount: 2000 } });
    const bigger = await insertPlan(db, { currency: 'CHF', price: { model: 'FLAT_FEE', amount: 3000 } });
    const seats = await addOnIn('CHF', 500, 'Seats');
    const changing = await pending(plan, seats, (id) =>
      changeSubscription(
        db,
        'system',
        id,
        { planId: bigger, when: 'next_cycle' },
        d('2027-02-05T00:00:00Z'),
        false,
      ),
    );
    const shown = await app.api('GET', `/v1/subscriptions/${changing}`);
    expect(shown.status).toBe(200);
    expect([shown.body.next_renewal_at, shown.body.scheduled_change?.at]).toEqual([
      mar1.toISOString(),
      mar1.toISOString(),
    ]);
    // Suspended by a usage limit (no renewal first), then cancelled at period end on Feb 18: the
    // cancellation renews it first, which makes the pending charge (2 × 500 × 12/28 = 428.57 → 429,
    // from Feb 17), and it ends Mar 1, the end of the period paid.
    await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      transitionSubscription(
        work,
        (await lockSubscription(work, changing))!,
        'SUSPENDED',
        d('2027-02-17T00:00:30Z'),
        {
          reason: 'usage_limit',
        },
      ),
    );
    const scheduled = await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      cancelLocked(
        work,
        (await lockSubscription(work, changing))!,
        { when: 'period_end', refundType: 'none' },
        d('2027-02-18T00:00:00Z'),
      ),
    );
    expect(scheduled.subscription.cancel_at).toEqual(mar1);
    expect((await addOnInvoices(changing)).map(lineRows)).toEqual([
      [['CHARGE', 2, seats, null, 429n, 0n, feb17, mar1]],
    ]);
  });
});
