import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeSubscription } from '../../src/billing/proration.ts';
import { renewSubscription } from '../../src/billing/renewal.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { downgradeCredit, payOpenOffline } from '../support/collection.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

/**
 * A plan change in a period whose subscription is cancelled at a date within it (refund `none`)
 * prorates up to that date, not the period's end: the days after it are never served, so they are
 * neither charged the new price nor credited the old one (as an add-on's raise then: `servedUntil`).
 * April 2027 has 30 days; cancel_at April 21; a change on April 11 is for the 10 days between.
 */
describe('a change after a cancellation at a date within the period', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());
  const d = (iso: string) => new Date(iso);
  const flat = (amount: number, name: string) =>
    insertPlan(db, { name, currency: 'EUR', price: { model: 'FLAT_FEE', amount }, taxRatePpm: 100_000 });
  const cancelAt = d('2027-04-21T00:00:00Z');
  const day10 = d('2027-04-11T00:00:00Z');
  const cancel = (id: string, options: Parameters<typeof cancelSubscriptionWithRefund>[5], now: Date) =>
    cancelSubscriptionWithRefund(
      db,
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      id,
      options,
      now,
    );

  /**
   * `plan` from April 1 for `customer` (a new one by default), April paid (by bank transfer, unless
   * the customer's credit paid it at finalization), cancelled on April 2 at April 21 with no refund.
   */
  async function cancelledAtApril21(plan: string, customer?: string): Promise<string> {
    customer ??= await insertCustomer(db);
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-04-01T00:00:00Z'),
    );
    await payOpenOffline(db, subscription.id);
    await cancel(subscription.id, { when: 'date', cancelAt, refundType: 'none' }, d('2027-04-02T00:00:00Z'));
    return subscription.id;
  }

  it('an upgrade 3000 → 6000 on April 11 charges the 10 days to April 21: 1100, not the 20 days to May 1 (2200)', async () => {
    const [basic, pro] = [await flat(3000, 'Basic'), await flat(6000, 'Pro')];
    const id = await cancelledAtApril21(basic);
    const change = await changeSubscription(db, 'system', id, { planId: pro }, day10, false);
    // Unused 3000 × 10/30 = 1000 (tax 100) credited, 6000 × 10/30 = 2000 (tax 200) charged.
    expect(change.proration.lines.map((l) => [l.type, l.signedAmount, l.taxAmount, l.periodEnd])).toEqual([
      ['CREDIT', -1000n, -100n, cancelAt],
      ['CHARGE', 2000n, 200n, cancelAt],
    ]);
    expect(change.invoice).toMatchObject({ total: 1100n, period_end: cancelAt, charge_at: day10 });
    // It ends at April 21 as scheduled, with no other invoice.
    const ended = await renewSubscription(db, 'system', id, d('2027-05-02T00:00:00Z'));
    expect(ended?.subscription).toMatchObject({ status: 'CANCELLED', cancelled_at: cancelAt });
    expect(ended?.invoices).toEqual([]);
  });

  it('a downgrade 6000 → 3000 credits the 10 days to April 21: 1100 to the customer, not 2200', async () => {
    const [pro, basic] = [await flat(6000, 'Pro'), await flat(3000, 'Basic')];
    const id = await cancelledAtApril21(pro);
    const change = await changeSubscription(db, 'system', id, { planId: basic }, day10, false);
    // Unused 6000 × 10/30 = 2000 (tax 200) credited, 3000 × 10/30 = 1000 (tax 100) charged.
    expect(change.proration).toMatchObject({ subtotal: -1000n, tax: -100n, total: -1100n });
    expect(change.credited).toBe(1000n);
    expect(change.invoice).toBeNull();
  });

  it('prorate_at_renewal is charged at April 21, the end of what is served, not at May 1 after the end', async () => {
    const [basic, pro] = [await flat(3000, 'Basic'), await flat(6000, 'Pro')];
    const id = await cancelledAtApril21(basic);
    const change = await changeSubscription(
      db,
      'system',
      id,
      { planId: pro, proration: 'prorate_at_renewal' },
      day10,
      false,
    );
    expect(change.invoice).toMatchObject({ total: 1100n, charge_at: cancelAt });
  });

  it('full charges the difference for April 1 → 21 (20 days): 2200, not the whole month (3300)', async () => {
    const [basic, pro] = [await flat(3000, 'Basic'), await flat(6000, 'Pro')];
    const id = await cancelledAtApril21(basic);
    const change = await changeSubscription(
      db,
      'system',
      id,
      { planId: pro, proration: 'full' },
      day10,
      false,
    );
    // 3000 × 20/30 = 2000 credited, 6000 × 20/30 = 4000 charged: 2000 + 200 tax.
    expect(change.invoice).toMatchObject({ total: 2200n });
  });

  it('a cancellation now with a prorate refund after such a change is 422 on refund_type, nothing changed', async () => {
    const [basic, pro] = [await flat(3000, 'Basic'), await flat(6000, 'Pro')];
    // Credit of (20000 − 1000) × 7/28 = 4750 + 25% = 5938 pays April (3300) and the change (1100).
    const customer = await insertCustomer(db);
    await downgradeCredit(app, customer, 'EUR', 20_000);
    const id = await cancelledAtApril21(basic, customer);
    const change = await changeSubscription(db, 'system', id, { planId: pro }, day10, false);
    expect(change.invoice).toMatchObject({ total: 1100n, status: 'PAID' });
    const now = d('2027-04-16T00:00:00Z');
    await expect(cancel(id, { when: 'now', refundType: 'prorate' }, now)).rejects.toMatchObject({
      status: 422,
      fields: { refund_type: expect.stringContaining('2027-04-21T00:00:00.000Z') },
    });
    const row = await db
      .selectFrom('subscriptions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'ACTIVE', plan_id: pro, cancel_at: cancelAt });
  });
});
