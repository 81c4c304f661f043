import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { ledgerIn } from '../support/collection.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

/**
 * A change or a cancellation first renews the subscription up to now (the renewal sweep's lag
 * caught up): its answer lists the invoices that catch-up made (`catch_up_invoices`), beside its own.
 * The routes run on the real clock: each subscription starts on the 1st of the month two months
 * back, its first period invoiced at its creation, the sweep never run since, so two periods (last
 * month's and this month's) are caught up by the request.
 */
describe('catch-up invoices in the /change and /cancel answers', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.stop());
  const db = () => app.runtime.db;

  /** A monthly subscription of `plan` from the 1st of the month two months back, not renewed since. */
  async function lagging(plan: string) {
    const now = new Date();
    const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 2, 1));
    const customer = await insertCustomer(db());
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer, planId: plan, startAt: start },
      start,
    );
    return subscription.id;
  }
  /** Subscription `id`'s period invoices: [index, id, total, status]. */
  const periodInvoices = async (id: string) =>
    (
      await db()
        .selectFrom('invoices')
        .select(['id', 'period_index', 'total', 'status'])
        .where('subscription_id', '=', id)
        .where('period_index', 'is not', null)
        .orderBy('period_index')
        .execute()
    ).map((i) => [i.period_index, i.id, i.total, i.status]);

  it('KWD: a cancellation now lists the two periods it caught up (5.250 each), the period cancelled among them', async () => {
    const plan = await insertPlan(db(), { currency: 'KWD', price: { model: 'FLAT_FEE', amount: 5250 } });
    const id = await lagging(plan);
    const cancelled = await app.api('POST', `/v1/subscriptions/${id}/cancel`, {
      when: 'now',
      refund_type: 'none',
    });
    expect(cancelled.status).toBe(200);
    const invoices = await periodInvoices(id);
    expect(invoices.map(([index, , total, status]) => [index, total, status])).toEqual([
      [0, 5250n, 'OPEN'],
      [1, 5250n, 'OPEN'],
      [2, 5250n, 'OPEN'],
    ]);
    // Before: no field; the caller could not see the invoices of last month and this month.
    expect(cancelled.body).toMatchObject({
      status: 'CANCELLED',
      refunds: [],
      catch_up_invoices: [invoices[1]![1], invoices[2]![1]],
    });
    // 3 × 5.250 owed, no tax.
    expect(await ledgerIn(app, 'KWD')).toEqual({ 'receivable:customer': 15750, revenue: -15750 });
    // At period end: the catch-up is listed too, and the end is that of the period holding now.
    const atEnd = await lagging(plan);
    const ending = await app.api('POST', `/v1/subscriptions/${atEnd}/cancel`, { when: 'period_end' });
    expect(ending.status).toBe(200);
    const ended = await periodInvoices(atEnd);
    expect(ending.body.catch_up_invoices).toEqual([ended[1]![1], ended[2]![1]]);
    const now = new Date();
    expect(ending.body.cancel_at).toBe(
      new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString(),
    );
    // Once caught up (here by a change), a cancellation catches up nothing: empty.
    const onTime = await lagging(plan);
    await app.api('POST', `/v1/subscriptions/${onTime}/change`, { quantity: 2, proration: 'none' });
    const scheduled = await app.api('POST', `/v1/subscriptions/${onTime}/cancel`, { when: 'period_end' });
    expect(scheduled.status).toBe(200);
    expect(scheduled.body.catch_up_invoices).toEqual([]);
  });

  it('JPY: a change (now, or at the next cycle) lists the periods it caught up; its preview lists none and keeps nothing', async () => {
    const basic = await insertPlan(db(), { currency: 'JPY', price: { model: 'FLAT_FEE', amount: 3000 } });
    const pro = await insertPlan(db(), { currency: 'JPY', price: { model: 'FLAT_FEE', amount: 5000 } });
    const id = await lagging(basic);
    const preview = await app.api('POST', `/v1/subscriptions/${id}/change`, {
      plan: pro,
      proration: 'none',
      preview: true,
    });
    expect(preview.status).toBe(200);
    expect(preview.body.catch_up_invoices).toEqual([]);
    expect(await periodInvoices(id)).toHaveLength(1);

    const changed = await app.api('POST', `/v1/subscriptions/${id}/change`, { plan: pro, proration: 'none' });
    expect(changed.status).toBe(200);
    const invoices = await periodInvoices(id);
    // Last month and this month on the old plan, 3000 each, as a sweep on time had billed them.
    expect(invoices.map(([index, , total]) => [index, total])).toEqual([
      [0, 3000n],
      [1, 3000n],
      [2, 3000n],
    ]);
    expect(changed.body).toMatchObject({
      object: 'subscription_change',
      invoice: null,
      usage_invoice: null,
      catch_up_invoices: [invoices[1]![1], invoices[2]![1]],
    });
    // The next change has nothing to catch up.
    const again = await app.api('POST', `/v1/subscriptions/${id}/change`, { quantity: 2, proration: 'none' });
    expect(again.body.catch_up_invoices).toEqual([]);

    // At the next cycle: the catch-up is listed too.
    const next = await lagging(basic);
    const scheduled = await app.api('POST', `/v1/subscriptions/${next}/change`, {
      plan: pro,
      when: 'next_cycle',
    });
    expect(scheduled.status).toBe(200);
    const caught = await periodInvoices(next);
    expect(scheduled.body.catch_up_invoices).toEqual([caught[1]![1], caught[2]![1]]);
  });
});
