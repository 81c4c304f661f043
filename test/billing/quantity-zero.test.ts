import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeSubscription } from '../../src/billing/proration.ts';
import { renewDueSubscriptions, renewSubscription } from '../../src/billing/renewal.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, ledgerIn, payOpenOffline } from '../support/collection.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

/**
 * A quantity of 0, which the API accepts (`quantity` 0 … 1,000,000) and the price models define
 * (pricing.ts `priceFor`: FLAT_FEE charges its fee, the others 0), is billed as production billing
 * books it (Stripe: an item of quantity 0 is a line of quantity 0): a plan line of quantity 0.
 */
describe('a subscription of quantity 0', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.stop());
  const d = (iso: string) => new Date(iso);

  it('is created (201) with a line of quantity 0: 0 on a PER_UNIT plan (KWD, PAID at once), the fee on a FLAT_FEE plan (JPY)', async () => {
    const perUnit = await insertPlan(app.runtime.db, {
      name: 'Seats',
      currency: 'KWD',
      price: { model: 'PER_UNIT', unit_amount: 1250 },
      taxRatePpm: 100_000,
    });
    const flat = await insertPlan(app.runtime.db, {
      name: 'Base',
      currency: 'JPY',
      price: { model: 'FLAT_FEE', amount: 1000 },
      taxRatePpm: 100_000,
    });
    const { customer } = await customerWith(app);

    const seats = await app.api('POST', '/v1/subscriptions', {
      customer: customer.id,
      plan: perUnit,
      quantity: 0,
    });
    expect(seats.status).toBe(201);
    expect(seats.body.quantity).toBe(0);
    const [kwd] = (await app.api('GET', `/v1/invoices?customer=${customer.id}`)).body.data.filter(
      (i: { currency: string }) => i.currency === 'KWD',
    );
    // 0 × 1.250 KWD = 0 fils, no tax: nothing to collect, PAID at once.
    expect(kwd).toMatchObject({ status: 'PAID', subtotal: 0, tax: 0, total: 0, amount_due: 0 });
    expect(kwd.lines).toMatchObject([{ type: 'CHARGE', quantity: 0, unit_amount: 1250, amount: 0 }]);
    expect(await ledgerIn(app, 'KWD')).toEqual({});

    const base = await app.api('POST', '/v1/subscriptions', {
      customer: customer.id,
      plan: flat,
      quantity: 0,
    });
    expect(base.status).toBe(201);
    const [jpy] = (await app.api('GET', `/v1/invoices?customer=${customer.id}`)).body.data.filter(
      (i: { currency: string }) => i.currency === 'JPY',
    );
    // The fee is for the period, whatever the quantity: 1000 + 10% = 1100 yen.
    expect(jpy).toMatchObject({ status: 'OPEN', subtotal: 1000, tax: 100, total: 1100, amount_due: 1100 });
    expect(jpy.lines).toMatchObject([{ type: 'CHARGE', quantity: 0, unit_amount: null, amount: 1000 }]);
    expect(await ledgerIn(app, 'JPY')).toEqual({
      'receivable:customer': 1100,
      revenue: -1000,
      tax_payable: -100,
    });
  });

  it('a change to quantity 0 at the next cycle is invoiced by the renewal (TIERED, USD: 0), not a renewal that fails every sweep', async () => {
    const db = app.runtime.db;
    const tiered = await insertPlan(db, {
      name: 'Tiered',
      currency: 'USD',
      price: {
        model: 'TIERED',
        tiers: [
          { up_to: 5, unit_amount: 500, flat_amount: 1000 },
          { up_to: null, unit_amount: 300 },
        ],
      },
    });
    const customer = await insertCustomer(db);
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: tiered, quantity: 3 },
      d('2027-04-01T00:00:00Z'),
    );
    // April: 3 × 500 + 1000 = 2500, paid.
    expect(await payOpenOffline(db, subscription.id)).toMatchObject([{ amount: 2500n }]);
    await changeSubscription(
      db,
      'system',
      subscription.id,
      { quantity: 0, when: 'next_cycle' },
      d('2027-04-10T00:00:00Z'),
      false,
    );
    const may = await renewSubscription(db, 'system', subscription.id, d('2027-05-01T00:00:00Z'));
    expect(may?.subscription).toMatchObject({ quantity: 0, current_period_index: 1 });
    // No unit in any tier, so no tier's flat amount either: 0.
    expect(may?.invoices.map((i) => [i.status, i.total])).toEqual([['PAID', 0n]]);
  });

  it('a change now from 3 seats to 0 (PER_UNIT, BHD, half of April left) credits the unused half as customer credit', async () => {
    const db = app.runtime.db;
    const seats = await insertPlan(db, {
      name: 'Seats',
      currency: 'BHD',
      price: { model: 'PER_UNIT', unit_amount: 1000 },
    });
    const customer = await insertCustomer(db);
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: seats, quantity: 3 },
      d('2027-04-01T00:00:00Z'),
    );
    await payOpenOffline(db, subscription.id); // 3000 fils
    const change = await changeSubscription(
      db,
      'system',
      subscription.id,
      { quantity: 0 },
      d('2027-04-16T00:00:00Z'),
      false,
    );
    // 15 of 30 days left: −1500 for the 3 seats' unused half, nothing charged for 0 seats.
    expect(change.proration.lines.map((l) => [l.type, l.signedAmount])).toEqual([['CREDIT', -1500n]]);
    expect(change.credited).toBe(1500n);
    const may = await renewSubscription(db, 'system', subscription.id, d('2027-05-01T00:00:00Z'));
    expect(may?.invoices.map((i) => [i.status, i.total])).toEqual([['PAID', 0n]]);
  });
});

describe('a subscription of quantity 0 changed to seats mid-period', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.stop());
  const d = (iso: string) => new Date(iso);

  it('0 → 3 seats on April 16 (TIERED with a flat fee, EUR, 10% tax): charges half of 3 × 5.00 + 10.00 = 12.50 + 1.25 tax, credits nothing; May bills 25.00 + 2.50', async () => {
    const db = app.runtime.db;
    const plan = await insertPlan(db, {
      name: 'Tiered seats',
      currency: 'EUR',
      price: {
        model: 'TIERED',
        tiers: [
          { up_to: 5, unit_amount: 500, flat_amount: 1000 },
          { up_to: null, unit_amount: 300 },
        ],
      },
      taxRatePpm: 100_000,
    });
    const customer = await insertCustomer(db);
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan, quantity: 0 },
      d('2027-04-01T00:00:00Z'),
    );
    // April at 0 seats: no unit in any tier, so no flat amount: 0, nothing to pay.
    expect(await payOpenOffline(db, subscription.id)).toEqual([]);
    const change = await changeSubscription(
      db,
      'system',
      subscription.id,
      { quantity: 3 },
      d('2027-04-16T00:00:00Z'),
      false,
    );
    // 15 of 30 days left: 3 seats = 3 × 500 + 1000 = 2500, half 1250, tax 125; the 0 seats' unused
    // half is 0, credited nothing.
    expect(
      change.proration.lines
        .filter((l) => l.signedAmount !== 0n)
        .map((l) => [l.type, l.signedAmount, l.taxAmount]),
    ).toEqual([['CHARGE', 1250n, 125n]]);
    expect(change.credited ?? 0n).toBe(0n);
    expect(change.invoice).toMatchObject({ subtotal: 1250n, tax: 125n, total: 1375n, status: 'OPEN' });
    expect(await payOpenOffline(db, subscription.id)).toMatchObject([{ amount: 1375n }]);
    const may = await renewSubscription(db, 'system', subscription.id, d('2027-05-01T00:00:00Z'));
    expect(may?.subscription).toMatchObject({ quantity: 3 });
    expect(may?.invoices.map((i) => [i.status, i.subtotal, i.tax, i.total])).toEqual([
      ['OPEN', 2500n, 250n, 2750n],
    ]);
    expect(await ledgerIn(app, 'EUR')).toMatchObject({ 'receivable:customer': 2750 });
  });

  it('an add-on on a subscription of 0 seats (PER_UNIT USD, 10% tax) is billed at renewal: plan line 0, add-on 2 × 3.00 = 6.00 + 0.60 tax', async () => {
    const db = app.runtime.db;
    const plan = await insertPlan(db, {
      name: 'Seats',
      currency: 'USD',
      price: { model: 'PER_UNIT', unit_amount: 1000 },
      taxRatePpm: 100_000,
    });
    const { customer } = await customerWith(app);
    const sub = (await app.api('POST', '/v1/subscriptions', { customer: customer.id, plan, quantity: 0 }))
      .body;
    const storage = (await app.api('POST', '/v1/add-ons', { name: 'Storage', currency: 'USD', amount: 300 }))
      .body;
    const added = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: storage.id,
      quantity: 2,
    });
    expect(added.status).toBe(201);
    const renewed = await renewSubscription(db, 'system', sub.id, new Date(sub.current_period_end));
    const invoice = (await app.api('GET', `/v1/invoices/${renewed!.invoices[0]!.id}`)).body;
    expect(invoice).toMatchObject({ status: 'OPEN', subtotal: 600, tax: 60, total: 660, amount_due: 660 });
    expect(invoice.lines).toMatchObject([
      { type: 'CHARGE', quantity: 0, unit_amount: 1000, amount: 0 },
      { type: 'CHARGE', quantity: 2, unit_amount: 300, amount: 600, tax_amount: 60, plan: null },
    ]);
  });

  it('usage on a subscription of 0 seats (PER_UNIT EUR 10.00 a seat, API calls at 0.02) is billed in arrears: April bills 0 seats and March’s 1500 calls = 30.00', async () => {
    const db = app.runtime.db;
    const { customer } = await customerWith(app);
    const product = await app.api('POST', '/v1/products', { name: 'API seats' });
    const plan = await app.api('POST', '/v1/plans', {
      product: product.body.id,
      name: 'Seats and calls',
      currency: 'EUR',
      interval: 'MONTH',
      price: { model: 'PER_UNIT', unit_amount: 1000 },
      metered: [{ code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 2 } }],
    });
    expect(plan.status).toBe(201);
    const sub = (
      await app.api('POST', '/v1/subscriptions', {
        customer: customer.id,
        plan: plan.body.id,
        quantity: 0,
        start_at: '2027-03-01T00:00:00Z',
      })
    ).body;
    await renewDueSubscriptions(db, 'system', d('2027-03-01T00:10:00Z'));
    for (const [eventId, value, at] of [
      ['q0-1', 900n, '2027-03-05T10:00:00Z'],
      ['q0-2', 600n, '2027-03-31T23:59:59Z'],
    ] as const) {
      await recordUsageEvent(
        db,
        'system',
        { eventId, subscriptionId: sub.id, code: 'api_calls', value, timestamp: d(at) },
        d(at),
      );
    }
    await renewDueSubscriptions(db, 'system', d('2027-04-01T00:10:00Z'));
    const invoices = (await app.api('GET', `/v1/invoices?customer=${customer.id}`)).body.data as {
      total: number;
      lines: { quantity: number; amount: number }[];
    }[];
    // March: 0 seats, 0. April: 0 seats (0) and March's 1500 calls × 2 = 3000.
    expect(invoices.map((i) => i.total).sort((a, b) => a - b)).toEqual([0, 3000]);
    const april = invoices.find((i) => i.total === 3000)!;
    expect(april.lines).toMatchObject([
      { quantity: 0, amount: 0 },
      { quantity: 1500, amount: 3000 },
    ]);
  });
});
