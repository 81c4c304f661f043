import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeSubscription, prorate } from '../../src/billing/proration.ts';
import { renewSubscription } from '../../src/billing/renewal.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import { balanceOf } from '../../src/ledger/balances.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
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

  it('an upgrade credits the unused time at the old price and invoices the rest at the new one', async () => {
    const [basic, pro] = [await flat(2800, 'Basic'), await flat(5600, 'Pro')];
    const customer = await insertCustomer(db);
    const sub = (
      await createSubscription(db, { customerId: customer, planId: basic }, d('2027-02-01T00:00:00Z'))
    ).subscription;
    const at = d('2027-02-22T00:00:00Z'); // 7 of 28 days left
    const preview = await changeSubscription(db, sub.id, { planId: pro }, at, true);
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

    const change = await changeSubscription(db, sub.id, { planId: pro }, at, false);
    expect(change.subscription).toMatchObject({ plan_id: pro });
    expect(change.invoice).toMatchObject({
      billing_reason: 'subscription_update',
      status: 'OPEN',
      total: 770n,
      period_index: null,
      charge_at: at,
    });
    const next = await renewSubscription(db, sub.id, d('2027-03-01T00:00:00Z'));
    expect(next?.invoices.map((i) => [i.period_index, i.total])).toEqual([[1, 6160n]]);
    const actions = await db
      .selectFrom('activities')
      .select('action')
      .where('resource_id', '=', sub.id)
      .orderBy('sequence')
      .execute();
    expect(actions.map((a) => a.action)).toContain('subscription.changed');
  });

  it("a downgrade net credit, with its tax, becomes the customer's credit and comes off the next invoice", async () => {
    const [basic, lite] = [await flat(2800, 'Basic'), await flat(1400, 'Lite')];
    const customer = await insertCustomer(db);
    const sub = (
      await createSubscription(db, { customerId: customer, planId: basic }, d('2027-02-01T00:00:00Z'))
    ).subscription;
    const revenueBefore = await balanceOf(db, 'revenue', 'USD');
    const taxBefore = await balanceOf(db, 'tax_payable', 'USD');
    const change = await changeSubscription(db, sub.id, { planId: lite }, d('2027-02-22T00:00:00Z'), false);
    // credit 700, charge 350: net credit 350 + 35 tax (10%), no invoice.
    expect(change.invoice).toBeNull();
    expect(change.credited).toBe(350n);
    // The credit is the customer's (a liability), not the subscription's: the receivable still holds
    // the first invoice (3080); revenue gave back 350 and tax payable 35.
    const receivable = `receivable:${customer}`;
    const credit = `customer_credit:${customer}`;
    expect(await balanceOf(db, receivable, 'USD')).toBe(3080n);
    expect(await balanceOf(db, credit, 'USD')).toBe(-385n);
    expect(await balanceOf(db, 'revenue', 'USD')).toBe(revenueBefore + 350n);
    expect(await balanceOf(db, 'tax_payable', 'USD')).toBe(taxBefore + 35n);
    const next = await renewSubscription(db, sub.id, d('2027-03-01T00:00:00Z'));
    const invoice = next!.invoices[0]!;
    // The renewal bills 1400 + 140 in full; the 385 of credit pays part of it: 1155 left due.
    expect([invoice.subtotal, invoice.tax, invoice.total]).toEqual([1400n, 140n, 1540n]);
    const stored = await db
      .selectFrom('invoices')
      .selectAll()
      .where('id', '=', invoice.id)
      .executeTakeFirstOrThrow();
    expect([stored.credit_applied, stored.amount_due, stored.status]).toEqual([385n, 1155n, 'OPEN']);
    // Used up: the receivable is exactly what the two open invoices ask; revenue, from before the
    // change, moved by 1400 − 350 = 1050 and tax payable by 140 − 35 = 105.
    expect(await balanceOf(db, receivable, 'USD')).toBe(3080n + 1155n);
    expect(await balanceOf(db, credit, 'USD')).toBe(0n);
    expect(await balanceOf(db, 'revenue', 'USD')).toBe(revenueBefore - 1050n);
    expect(await balanceOf(db, 'tax_payable', 'USD')).toBe(taxBefore - 105n);
  });

  it('a quantity change on a per-unit plan prorates the difference; in a trial nothing is prorated', async () => {
    const seats = await insertPlan(db, { price: { model: 'PER_UNIT', unit_amount: 1000 }, interval: 'DAY' });
    const customer = await insertCustomer(db);
    const sub = (
      await createSubscription(db, { customerId: customer, planId: seats }, d('2027-05-01T00:00:00Z'))
    ).subscription;
    const change = await changeSubscription(db, sub.id, { quantity: 4 }, d('2027-05-01T18:00:00Z'), false);
    // 6 of 24 hours left: credit 250, charge 1000 → net 750.
    expect(change.invoice?.total).toBe(750n);
    const trial = (
      await createSubscription(
        db,
        { customerId: customer, planId: seats, trialDays: 5 },
        d('2027-05-01T00:00:00Z'),
      )
    ).subscription;
    const inTrial = await changeSubscription(db, trial.id, { quantity: 2 }, d('2027-05-02T00:00:00Z'), false);
    expect(inTrial.invoice).toBeNull();
    expect(inTrial.proration.lines).toEqual([]);
    expect(inTrial.subscription.quantity).toBe(2);
  });
});
