import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { renewSubscription } from '../../src/billing/renewal.ts';
import { reactivateSubscription, suspendSubscription } from '../../src/billing/subscriptions.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { customerWith } from '../support/collection.ts';
import { ledgerByCode, stripeChargeSucceeds } from '../support/flow.ts';
import { insertPlan } from '../support/plans.ts';

describe('as Billby: preview, change, settle, billing cycles over HTTP', () => {
  let app: TestApp;
  let plan: string;
  let customer: string;
  beforeAll(async () => {
    app = await startTestApp();
    plan = await insertPlan(app.runtime.db, {
      name: 'Team',
      currency: 'EUR',
      price: { model: 'PER_UNIT', unit_amount: 1000 },
      taxRatePpm: 190_000,
    });
    customer = (await customerWith(app, { stripe: true })).customer.id;
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());

  const count = async (table: 'subscriptions' | 'invoices' | 'activities' | 'coupon_redemptions') =>
    Number(
      (
        await app.runtime.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('previews the first invoice with a coupon and a trial, writing nothing; refuses as create does', async () => {
    await app.api('POST', '/v1/coupons', {
      code: 'HALF',
      percent_off: 50,
      duration: 'ONCE',
      max_redemptions: 1,
    });
    const before = await Promise.all(
      (['subscriptions', 'invoices', 'activities', 'coupon_redemptions'] as const).map(count),
    );
    const preview = await app.api('POST', '/v1/subscriptions/preview', {
      customer,
      plan,
      quantity: 3,
      trial_days: 14,
      coupon: 'HALF',
    });
    expect(preview.status).toBe(200);
    // 3 × 1000 = 3000, 19% tax 570; 50% off: −1500, tax −285 → 1500 + 285 = 1785.
    expect(preview.body).toMatchObject({
      object: 'invoice_preview',
      customer,
      currency: 'EUR',
      billing_reason: 'subscription_create',
      subtotal: 1500,
      tax: 285,
      total: 1785,
      lines: [
        { type: 'CHARGE', unit_amount: 1000, quantity: 3, amount: 3000, tax_percent: '19', tax_amount: 570 },
        { type: 'CREDIT', amount: -1500, tax_amount: -285 },
      ],
    });
    const invoiceAt = new Date(preview.body.invoice_at).getTime();
    expect(Math.abs(invoiceAt - (Date.now() + 14 * 86_400_000))).toBeLessThan(60_000);
    expect(
      await Promise.all(
        (['subscriptions', 'invoices', 'activities', 'coupon_redemptions'] as const).map(count),
      ),
    ).toEqual(before);
    expect((await app.api('GET', '/v1/coupons')).body.data[0].times_redeemed).toBe(0);

    const bad = await app.api('POST', '/v1/subscriptions/preview', { customer, plan, quantity: 1.5 });
    expect(bad.status).toBe(422);
    expect(bad.body.error.fields.quantity).toBeDefined();
    expect((await app.api('POST', '/v1/subscriptions/preview', { customer, plan: 'plan_none' })).status).toBe(
      404,
    );
    const usd = await app.api('POST', '/v1/coupons', {
      code: 'USD5',
      amount_off: 500,
      currency: 'USD',
      duration: 'ONCE',
    });
    expect(usd.status).toBe(201);
    const mismatch = await app.api('POST', '/v1/subscriptions/preview', { customer, plan, coupon: 'USD5' });
    expect(mismatch.status).toBe(422);
    expect(mismatch.body.error.fields.coupon).toMatch(/USD/);
  });

  it('changes quantity with proration: preview first, then a subscription_update invoice; refusals', async () => {
    const sub = (await app.api('POST', '/v1/subscriptions', { customer, plan, quantity: 1 })).body;
    const preview = await app.api('POST', `/v1/subscriptions/${sub.id}/change`, {
      quantity: 2,
      preview: true,
    });
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({ object: 'subscription_change', preview: true, invoice: null });
    expect(preview.body.subscription.quantity).toBe(1);
    const [credit, charge] = preview.body.proration.lines;
    expect(credit).toMatchObject({ type: 'CREDIT' });
    expect(charge).toMatchObject({ type: 'CHARGE' });
    // Almost the whole period is left: about −1000 and +2000.
    expect(credit.amount).toBeLessThanOrEqual(-999);
    expect(charge.amount).toBeGreaterThanOrEqual(1998);

    const changed = await app.api('POST', `/v1/subscriptions/${sub.id}/change`, { quantity: 2 });
    expect(changed.status).toBe(200);
    expect(changed.body.subscription.quantity).toBe(2);
    const invoice = await app.api('GET', `/v1/invoices/${changed.body.invoice}`);
    expect(invoice.body).toMatchObject({
      billing_reason: 'subscription_update',
      status: 'OPEN',
      subscription: sub.id,
    });
    expect(invoice.body.total).toBe(changed.body.proration.total);

    expect(
      (await app.api('POST', `/v1/subscriptions/${sub.id}/change`, {})).body.error.fields.plan,
    ).toBeDefined();
    expect((await app.api('POST', `/v1/subscriptions/${sub.id}/change`, { quantity: 2 })).status).toBe(422);
    const usdPlan = await insertPlan(app.runtime.db, { currency: 'USD' });
    const other = await app.api('POST', `/v1/subscriptions/${sub.id}/change`, { plan: usdPlan });
    expect(other.status).toBe(422);
    expect(other.body.error.fields.plan).toMatch(/USD/);
    expect((await app.api('POST', '/v1/subscriptions/sub_nope/change', { quantity: 1 })).status).toBe(404);
    await app.api('POST', `/v1/subscriptions/${sub.id}/suspend`);
    const suspended = await app.api('POST', `/v1/subscriptions/${sub.id}/change`, { quantity: 3 });
    expect(suspended.status).toBe(409);
    expect(suspended.body.error.code).toBe('subscription_not_changeable');
  });

  it('a change on a subscription with a coupon discounts its proration lines, each with its coupon', async () => {
    const coupon = (
      await app.api('POST', '/v1/coupons', { code: 'HALF-FOREVER', percent_off: 50, duration: 'FOREVER' })
    ).body;
    const sub = (
      await app.api('POST', '/v1/subscriptions', { customer, plan, quantity: 1, coupon: 'HALF-FOREVER' })
    ).body;
    // Seconds into a month (within 400 s every prorated amount below rounds to the whole period's):
    // unused 1 seat −1000 (tax 19% −190), its coupon +500 (+95); remaining 3 seats +3000 (+570), its
    // coupon −1500 (−285). Subtotal 1000, tax 190: 1190 (without the coupon it was 2000 + 380).
    const changed = await app.api('POST', `/v1/subscriptions/${sub.id}/change`, { quantity: 3 });
    expect(changed.status).toBe(200);
    expect(
      changed.body.proration.lines.map(
        (l: { type: string; amount: number; tax_amount: number; coupon: string }) => [
          l.type,
          l.amount,
          l.tax_amount,
          l.coupon,
        ],
      ),
    ).toEqual([
      ['CREDIT', -1000, -190, null],
      ['CHARGE', 500, 95, coupon.id],
      ['CHARGE', 3000, 570, null],
      ['CREDIT', -1500, -285, coupon.id],
    ]);
    const invoice = await app.api('GET', `/v1/invoices/${changed.body.invoice}`);
    expect(invoice.body).toMatchObject({ subtotal: 1000, tax: 190, total: 1190, status: 'OPEN' });
    expect(invoice.body.lines.map((l: { coupon: string | null }) => l.coupon)).toEqual([
      null,
      coupon.id,
      null,
      coupon.id,
    ]);
  });

  it('settles: charges every OPEN invoice of the subscription now through the gateway', async () => {
    const sub = (await app.api('POST', '/v1/subscriptions', { customer, plan, quantity: 2 })).body;
    // Two more periods come due (as if the scheduler had run later), invoiced in one transaction. Their
    // ids made as in one millisecond with the later period's sorting first (a clock going back 1 ms
    // per id: ids of one millisecond sort at random).
    const later = new Date(Date.now() + 62 * 86_400_000);
    let clock = Date.now();
    const ids = vi.spyOn(Date, 'now').mockImplementation(() => (clock -= 1));
    try {
      await renewSubscription(app.runtime.db, 'system', sub.id, later);
    } finally {
      ids.mockRestore();
    }
    const before = await ledgerByCode(app);
    const stripe = [stripeChargeSucceeds(), stripeChargeSucceeds(), stripeChargeSucceeds()];
    const settled = await app.api('POST', `/v1/subscriptions/${sub.id}/settle`);
    expect(settled.status).toBe(200);
    expect(settled.body.invoices).toHaveLength(3);
    // Oldest first, as its answer and the settle's log say: the periods in order.
    const starts = settled.body.invoices.map(
      (r: { invoice: { period_start: string } }) => r.invoice.period_start,
    );
    expect(starts).toEqual([...starts].sort());
    for (const result of settled.body.invoices) {
      expect(result.invoice).toMatchObject({ status: 'PAID', amount_due: 0, total: 2380 });
      expect(result.transaction).toMatchObject({ status: 'succeeded', amount: 2380 });
      expect(result.error).toBeNull();
    }
    expect(stripe.every((s) => s.scope.isDone())).toBe(true);
    const after = await ledgerByCode(app);
    expect(after['gateway_clearing:stripe EUR']! - (before['gateway_clearing:stripe EUR'] ?? 0)).toBe(
      3 * 2380,
    );
    expect(after['receivable:customer EUR']! - before['receivable:customer EUR']!).toBe(-3 * 2380);
    const again = await app.api('POST', `/v1/subscriptions/${sub.id}/settle`);
    expect(again.body.invoices).toEqual([]);
    expect((await app.api('POST', '/v1/subscriptions/sub_nope/settle')).status).toBe(404);

    const cycles = await app.api('GET', `/v1/subscriptions/${sub.id}/billing-cycles`);
    expect(cycles.status).toBe(200);
    expect(
      cycles.body.data.map((c: { index: number; status: string; total: number; amount_paid: number }) => [
        c.index,
        c.status,
        c.total,
        c.amount_paid,
      ]),
    ).toEqual([
      [0, 'PAID', 2380, 2380],
      [1, 'PAID', 2380, 2380],
      [2, 'PAID', 2380, 2380],
    ]);
    expect(cycles.body.data[1].period_start).toBe(cycles.body.data[0].period_end);
    expect(cycles.body.data[0].invoice).toMatch(/^inv_/);
    const page = await app.api('GET', `/v1/subscriptions/${sub.id}/billing-cycles?limit=2`);
    expect(page.body).toMatchObject({ has_more: true });
    const rest = await app.api('GET', `/v1/subscriptions/${sub.id}/billing-cycles?limit=2&starting_after=1`);
    expect(rest.body.data.map((c: { index: number }) => c.index)).toEqual([2]);
    expect(rest.body.has_more).toBe(false);
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}/billing-cycles?limit=0`)).status).toBe(422);
    expect((await app.api('GET', '/v1/subscriptions/sub_nope/billing-cycles')).status).toBe(404);
  });

  it('billing cycles show periods missed while suspended without an invoice', async () => {
    const created = (await app.api('POST', '/v1/subscriptions', { customer, plan })).body;
    await suspendSubscription(app.runtime.db, 'system', created.id, new Date());
    await reactivateSubscription(
      app.runtime.db,
      'system',
      created.id,
      new Date(Date.now() + 70 * 86_400_000),
    );
    const cycles = await app.api('GET', `/v1/subscriptions/${created.id}/billing-cycles`);
    expect(
      cycles.body.data.map((c: { index: number; invoice: string | null }) => [c.index, c.invoice !== null]),
    ).toEqual([
      [0, true],
      [1, false],
      [2, true],
    ]);
  });
});
