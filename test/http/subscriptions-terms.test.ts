import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { periodAt } from '../../src/billing/periods.ts';
import { renewSubscription } from '../../src/billing/renewal.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { actionsOf, customerWith } from '../support/collection.ts';
import { stripeChargeSucceeds } from '../support/flow.ts';

const DAY = 86_400_000;

describe("fixed terms (Billby's repeat) and settle over HTTP (#28 item 2)", () => {
  let app: TestApp;
  let product: string;
  let customer: string;
  let method: string;
  beforeAll(async () => {
    app = await startTestApp();
    product = (await app.api('POST', '/v1/products', { name: 'Team' })).body.id;
    const created = await customerWith(app, { stripe: true });
    customer = created.customer.id;
    method = created.method!.id;
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());

  /** A monthly plan of 1000 per unit at 19% tax with a setup fee of 500, `repeat` cycles. */
  async function termPlan(repeat?: number) {
    const plan = await app.api('POST', '/v1/plans', {
      product,
      name: 'Team monthly',
      currency: 'EUR',
      interval: 'MONTH',
      price: { model: 'PER_UNIT', unit_amount: 1000 },
      tax_percent: 19,
      setup_fee: 500,
      ...(repeat === undefined ? {} : { repeat }),
    });
    expect(plan.status).toBe(201);
    return plan.body;
  }

  const invoicesOf = (id: string) =>
    app.runtime.db
      .selectFrom('invoices')
      .selectAll()
      .where('subscription_id', '=', id)
      .orderBy('period_index')
      .execute();

  /** What must be equal between two subscriptions' invoices of a period: lines and amounts. */
  async function billed(id: string) {
    const invoices = await invoicesOf(id);
    return Promise.all(
      invoices.map(async (row) => {
        const invoice = (await app.api('GET', `/v1/invoices/${row.id}`)).body;
        return {
          period_index: row.period_index,
          billing_reason: invoice.billing_reason,
          subtotal: invoice.subtotal,
          tax: invoice.tax,
          total: invoice.total,
          lines: invoice.lines.map(
            (l: Record<string, unknown>) =>
              [
                l.type,
                l.description,
                l.quantity,
                l.unit_amount,
                l.amount,
                l.tax_percent,
                l.tax_amount,
              ] as const,
          ),
        };
      }),
    );
  }

  it('refuses a bad repeat with field-level 422s; a plan carries it, a subscription takes it or overrides it', async () => {
    for (const repeat of [0, 1.5, -3, 1201, '12']) {
      const bad = await app.api('POST', '/v1/plans', {
        product,
        name: 'Bad',
        currency: 'EUR',
        interval: 'MONTH',
        price: { model: 'FLAT_FEE', amount: 100 },
        repeat,
      });
      expect(bad.status).toBe(422);
      expect(bad.body.error.fields.repeat).toBeDefined();
    }
    const plan = await termPlan(6);
    expect(plan).toMatchObject({ object: 'plan', repeat: 6 });
    expect((await app.api('POST', `/v1/plans/${plan.id}`, { repeat: 7 })).status).toBe(422);

    const bad = await app.api('POST', '/v1/subscriptions', { customer, plan: plan.id, repeat: 0 });
    expect(bad.status).toBe(422);
    expect(bad.body.error.fields.repeat).toBeDefined();

    const inherited = await app.api('POST', '/v1/subscriptions', { customer, plan: plan.id });
    expect(inherited.status).toBe(201);
    // Period 0 has started and is invoiced: 5 of 6 cycles remain.
    expect(inherited.body).toMatchObject({ repeat: 6, cycles_remaining: 5, settled_at: null });
    const longer = await app.api('POST', '/v1/subscriptions', { customer, plan: plan.id, repeat: 24 });
    expect(longer.body).toMatchObject({ repeat: 24, cycles_remaining: 23 });
    const open = await app.api('POST', '/v1/subscriptions', { customer, plan: plan.id, repeat: null });
    expect(open.body).toMatchObject({ repeat: null, cycles_remaining: null });
    expect((await app.api('GET', `/v1/subscriptions/${open.body.id}`)).body.cycles_remaining).toBeNull();
    const untermed = await app.api('POST', '/v1/subscriptions', { customer, plan: (await termPlan()).id });
    expect(untermed.body).toMatchObject({ repeat: null, cycles_remaining: null });

    // A one-cycle term: period 0 is its only one, so its next renewal charges nothing (it ends then);
    // a longer term's next period costs one unit, 1000 (before tax; the setup fee was period 0's).
    const single = await app.api('POST', '/v1/subscriptions', { customer, plan: plan.id, repeat: 1 });
    expect(single.body).toMatchObject({ repeat: 1, cycles_remaining: 0 });
    expect((await app.api('GET', `/v1/subscriptions/${single.body.id}`)).body.effective_amount).toBe(0);
    expect((await app.api('GET', `/v1/subscriptions/${inherited.body.id}`)).body.effective_amount).toBe(1000);
  });

  it('settling a 12-cycle plan after cycle 3 makes exactly the 9 invoices the renewals would have made, charges them, and the term ends it on time', async () => {
    const plan = await termPlan(12);
    // Two periods discounted at 50% after the first three: periods_applied counts per period.
    await app.api('POST', '/v1/coupons', {
      code: 'TERM5',
      percent_off: 50,
      duration: 'REPEATING',
      duration_in_periods: 5,
    });
    const startAt = new Date(Math.ceil((Date.now() + DAY) / DAY) * DAY).toISOString();
    const create = async () => {
      const created = await app.api('POST', '/v1/subscriptions', {
        customer,
        plan: plan.id,
        payment_method: method,
        start_at: startAt,
        coupon: 'TERM5',
      });
      expect(created.status).toBe(201);
      return created.body;
    };
    const settled = await create();
    const renewed = await create();
    expect(settled).toMatchObject({ repeat: 12, cycles_remaining: 12, current_period_index: null });
    const cadence = { anchor: new Date(startAt), interval: 'MONTH' as const, intervalCount: 1 };
    const start = (n: number) => periodAt(cadence, n).start;
    const { db } = app.runtime;

    // Cycles 0, 1 and 2 renewed on time.
    await renewSubscription(db, 'system', settled.id, start(2));
    expect(await invoicesOf(settled.id)).toHaveLength(3);
    expect((await app.api('GET', `/v1/subscriptions/${settled.id}`)).body).toMatchObject({
      current_period_index: 2,
      cycles_remaining: 9,
    });

    // Settle: the 9 remaining cycles invoiced, then all 12 OPEN invoices charged through Stripe.
    const stripe = Array.from({ length: 12 }, () => stripeChargeSucceeds());
    const settle = await app.api('POST', `/v1/subscriptions/${settled.id}/settle`);
    expect(settle.status).toBe(200);
    expect(settle.body.invoiced).toHaveLength(9);
    expect(settle.body.invoices).toHaveLength(12);
    for (const result of settle.body.invoices) {
      expect(result.error).toBeNull();
      expect(result.invoice.status).toBe('PAID');
      expect(result.transaction).toMatchObject({ status: 'succeeded', amount: result.invoice.total });
    }
    expect(stripe.every((s) => s.scope.isDone())).toBe(true);
    const afterSettle = (await app.api('GET', `/v1/subscriptions/${settled.id}`)).body;
    expect(afterSettle).toMatchObject({ status: 'ACTIVE', current_period_index: 2, cycles_remaining: 9 });
    expect(afterSettle.settled_at).not.toBeNull();
    const settledInvoices = await invoicesOf(settled.id);
    expect(settledInvoices.map((i) => i.period_index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(settle.body.invoiced).toEqual(settledInvoices.slice(3).map((i) => i.id));
    const activity = (await app.api('GET', `/v1/activities?resource=${settled.id}`)).body.data.find(
      (a: { action: string }) => a.action === 'subscription.settled',
    );
    expect(activity.data.invoiced).toEqual(settle.body.invoiced);

    // The same plan renewed through its 12 periods invoices the same: lines, taxes, coupon periods.
    expect((await renewSubscription(db, 'system', renewed.id, start(11)))?.invoices).toHaveLength(12);
    const expected = await billed(renewed.id);
    expect(await billed(settled.id)).toEqual(expected);
    // 1000 + 19% a period; the coupon halves periods 0 … 4 (its five), period 0 adds the setup fee 500.
    expect(expected.map((i) => i.total)).toEqual([1190, 595, 595, 595, 595, ...Array(7).fill(1190)]);
    expect(expected[11]!.billing_reason).toBe('subscription_cycle');

    // Renewals after settle invoice nothing more; they only advance the periods.
    const later = await renewSubscription(db, 'system', settled.id, start(11));
    expect(later?.invoices).toEqual([]);
    expect(later?.subscription).toMatchObject({ status: 'ACTIVE', current_period_index: 11 });
    expect((await app.api('GET', `/v1/subscriptions/${settled.id}`)).body.cycles_remaining).toBe(0);
    expect(await invoicesOf(settled.id)).toHaveLength(12);
    const again = await app.api('POST', `/v1/subscriptions/${settled.id}/settle`);
    expect(again.body).toMatchObject({ invoiced: [], invoices: [] });

    // The term ends both when period 12 would start: CANCELLED there, no 13th invoice.
    for (const id of [settled.id, renewed.id]) {
      const ended = await renewSubscription(db, 'system', id, new Date(start(12).getTime() + DAY));
      expect(ended?.invoices).toEqual([]);
      const sub = (await app.api('GET', `/v1/subscriptions/${id}`)).body;
      expect(sub).toMatchObject({ status: 'CANCELLED', cycles_remaining: 0, next_renewal_at: null });
      expect(new Date(sub.ended_at)).toEqual(start(12));
      expect(await invoicesOf(id)).toHaveLength(12);
      const cancelled = (await app.api('GET', `/v1/activities?resource=${id}`)).body.data.find(
        (a: { action: string }) => a.action === 'subscription.cancelled',
      );
      expect(cancelled.data).toMatchObject({ reason: 'term_completed', from: 'ACTIVE', to: 'CANCELLED' });
    }
    expect(await actionsOf(app, renewed.id)).toContain('subscription.cancelled');
  });

  it('settle stops at a scheduled cancellation; without a term it charges the OPEN invoices as before', async () => {
    const plan = await termPlan(12);
    const bare = (await customerWith(app)).customer.id;
    const sub = (await app.api('POST', '/v1/subscriptions', { customer: bare, plan: plan.id })).body;
    const cancelAt = periodAt(
      { anchor: new Date(sub.billing_anchor), interval: 'MONTH', intervalCount: 1 },
      4,
    ).start.toISOString();
    expect(
      (await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { when: 'date', cancel_at: cancelAt }))
        .status,
    ).toBe(200);
    // No payment method: each charge is refused and reported, the invoices are made all the same.
    const settle = await app.api('POST', `/v1/subscriptions/${sub.id}/settle`);
    expect(settle.status).toBe(200);
    // Periods 1, 2 and 3 start before the cancellation; 4 … 11 never will.
    expect(settle.body.invoiced).toHaveLength(3);
    expect(settle.body.invoices).toHaveLength(4);
    expect(settle.body.invoices.every((r: { error: unknown }) => r.error !== null)).toBe(true);

    const open = (await app.api('POST', '/v1/subscriptions', { customer: bare, plan: plan.id, repeat: null }))
      .body;
    const plain = await app.api('POST', `/v1/subscriptions/${open.id}/settle`);
    expect(plain.body.invoiced).toEqual([]);
    expect(plain.body.invoices).toHaveLength(1);
    expect((await app.api('GET', `/v1/subscriptions/${open.id}`)).body.settled_at).toBeNull();
  });

  it('refuses to settle a term with a change scheduled for its next cycle or a metered plan (409), invoicing nothing', async () => {
    const plan = await termPlan(12);
    const other = await termPlan(12);
    const sub = (await app.api('POST', '/v1/subscriptions', { customer, plan: plan.id })).body;
    const change = await app.api('POST', `/v1/subscriptions/${sub.id}/change`, {
      plan: other.id,
      when: 'next_cycle',
    });
    expect(change.status).toBe(200);
    const refused = await app.api('POST', `/v1/subscriptions/${sub.id}/settle`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('settle_scheduled_change');
    expect(await invoicesOf(sub.id)).toHaveLength(1);

    const metered = await app.api('POST', '/v1/plans', {
      product,
      name: 'Calls monthly',
      currency: 'EUR',
      interval: 'MONTH',
      price: { model: 'FLAT_FEE', amount: 100 },
      metered: [{ code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 2 } }],
      repeat: 6,
    });
    const usage = (await app.api('POST', '/v1/subscriptions', { customer, plan: metered.body.id })).body;
    const arrears = await app.api('POST', `/v1/subscriptions/${usage.id}/settle`);
    expect(arrears.status).toBe(409);
    expect(arrears.body.error.code).toBe('settle_metered_plan');
    expect(await invoicesOf(usage.id)).toHaveLength(1);
    expect((await app.api('GET', `/v1/subscriptions/${usage.id}`)).body.settled_at).toBeNull();
  });
  it('refuses a refund on cancelling a settled term whose later periods are paid ahead (409), changing nothing', async () => {
    const plan = await termPlan(3);
    const sub = (
      await app.api('POST', '/v1/subscriptions', { customer, plan: plan.id, payment_method: method })
    ).body;
    for (let i = 0; i < 3; i++) stripeChargeSucceeds();
    const settled = await app.api('POST', `/v1/subscriptions/${sub.id}/settle`);
    expect(settled.body.invoiced).toHaveLength(2);
    const paid = await invoicesOf(sub.id);
    expect(paid.map((i) => i.status)).toEqual(['PAID', 'PAID', 'PAID']);

    const refused = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('later_periods_paid');
    expect(refused.body.error.message).toContain(paid[1]!.id);
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}`)).body.status).toBe('ACTIVE');
    const refunds = await app.runtime.db
      .selectFrom('refunds')
      .select('id')
      .where(
        'invoice_id',
        'in',
        paid.map((i) => i.id),
      )
      .execute();
    expect(refunds).toEqual([]);
  });
});
