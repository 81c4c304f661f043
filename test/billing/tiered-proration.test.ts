import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeSubscription } from '../../src/billing/proration.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { ledgerIn, payOpenOffline } from '../support/collection.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

/**
 * A quantity change mid-period on a licensed TIERED, STAIRSTEP or VOLUME price prorates the two
 * totals of the model (pricing.ts `priceFor`), not a unit price: the unused time of the old quantity's
 * total is credited and the rest of the period charged at the new quantity's total (Stripe prorates
 * a tiered price's amounts the same way). April 2027 has 30 days; each change is on April 16, 15
 * days left: half of each total. Each scenario books in its own currency.
 */
describe('a quantity change on a tiered price prorates the totals', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());
  const d = (iso: string) => new Date(iso);
  // Units 1-5 at 500 (+1000 once), 6-10 at 400, 11+ at 300 (+200 once).
  const tiers = [
    { up_to: 5, unit_amount: 500, flat_amount: 1000 },
    { up_to: 10, unit_amount: 400 },
    { up_to: null, unit_amount: 300, flat_amount: 200 },
  ];

  /** A subscription of `quantity` to a monthly plan of `price` from April 1, its April invoice paid. */
  async function paidSubscription(currency: string, price: unknown, quantity: number) {
    const plan = await insertPlan(db, { name: 'Seats', currency, price, taxRatePpm: 100_000 });
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: await insertCustomer(db), planId: plan, quantity },
      d('2027-04-01T00:00:00Z'),
    );
    const paid = await payOpenOffline(db, subscription.id);
    return { id: subscription.id, paid: paid.map((p) => p.amount) };
  }
  const change = (id: string, quantity: number) =>
    changeSubscription(db, 'system', id, { quantity }, d('2027-04-16T00:00:00Z'), false);
  const linesOf = (c: Awaited<ReturnType<typeof changeSubscription>>) =>
    c.proration.lines.map((l) => [l.type, l.signedAmount, l.taxAmount]);

  it('TIERED (JPY): 5 seats (on the first bound) to 11 charges half of 6000 − 3500, not 6 × half a unit price', async () => {
    // 5 seats: 5 × 500 + 1000 = 3500 (+350 tax). 11 seats: 3500 + 5 × 400 + 1 × 300 + 200 = 6000.
    const { id, paid } = await paidSubscription('JPY', { model: 'TIERED', tiers }, 5);
    expect(paid).toEqual([3850n]);
    const up = await change(id, 11);
    expect(linesOf(up)).toEqual([
      ['CREDIT', -1750n, -175n],
      ['CHARGE', 3000n, 300n],
    ]);
    expect(up.invoice).toMatchObject({ subtotal: 1250n, tax: 125n, total: 1375n, status: 'OPEN' });
    expect(await ledgerIn(app, 'JPY')).toEqual({
      offline_receipts: 3850,
      'receivable:customer': 1375,
      revenue: -4750,
      tax_payable: -475,
    });
  });

  it('STAIRSTEP (KWD): 10 seats (on a step’s bound) to 11 charges half of 4.000 − 1.000 KWD', async () => {
    const steps = [
      { up_to: 10, flat_amount: 1000 },
      { up_to: 50, flat_amount: 4000 },
      { up_to: null, flat_amount: 9000 },
    ];
    const { id, paid } = await paidSubscription('KWD', { model: 'STAIRSTEP', steps }, 10);
    expect(paid).toEqual([1100n]);
    const up = await change(id, 11);
    expect(linesOf(up)).toEqual([
      ['CREDIT', -500n, -50n],
      ['CHARGE', 2000n, 200n],
    ]);
    expect(up.invoice).toMatchObject({ subtotal: 1500n, tax: 150n, total: 1650n });
  });

  it("VOLUME (KRW): 5 seats to 6 costs less (3500 → 2400), so the change is half of 1100 back as the customer's credit", async () => {
    const { id, paid } = await paidSubscription('KRW', { model: 'VOLUME', tiers }, 5);
    expect(paid).toEqual([3850n]);
    const up = await change(id, 6);
    // 6 × 400 = 2400: −1750 (−175) for 5 seats' unused half, +1200 (+120) for 6 seats': −550 (−55).
    expect(linesOf(up)).toEqual([
      ['CREDIT', -1750n, -175n],
      ['CHARGE', 1200n, 120n],
    ]);
    expect(up.invoice).toBeNull();
    expect(up.credited).toBe(550n);
    expect(await ledgerIn(app, 'KRW')).toEqual({
      'customer_credit:customer': -605,
      offline_receipts: 3850,
      'receivable:customer': 0,
      revenue: -2950,
      tax_payable: -295,
    });
  });
});
