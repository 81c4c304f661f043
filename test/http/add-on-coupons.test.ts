import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeSubscription } from '../../src/billing/proration.ts';
import { lockSubscription, renewSubscription } from '../../src/billing/renewal.ts';
import { invoiceRemainingCycles } from '../../src/billing/terms.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { actionsOf } from '../support/collection.ts';

/**
 * Coupons on a subscription's add-ons over HTTP (issue #28, seed 001 #29 and #40: Billby's
 * `for_all`/`products`/`add_ons` eligibility, redeemed coupons on a subscription add-on, Preview
 * Subscription Add-On Update, Cancel Subscription Add-On). An add-on's coupon discounts only its
 * add-on's line, through the renewal's own `recurringLines`, so the renewal, `effective_amount` and
 * the preview agree to the minor unit. Plans here are untaxed, so amounts are subtotals.
 */
describe('coupons on subscription add-ons and the add-on preview', () => {
  let app: TestApp;
  let product: string;
  let plan: string;
  let seats: string;
  let support: string;
  beforeAll(async () => {
    app = await startTestApp();
    product = (await app.api('POST', '/v1/products', { name: 'Pro' })).body.id;
    const created = await app.api('POST', '/v1/plans', {
      product,
      name: 'Pro',
      currency: 'USD',
      interval: 'MONTH',
      price: { model: 'FLAT_FEE', amount: 2000 },
    });
    expect(created.status).toBe(201);
    plan = created.body.id;
    const addOn = async (name: string, amount: number, currency = 'USD') => {
      const made = await app.api('POST', '/v1/add-ons', { name, currency, amount });
      expect(made.status).toBe(201);
      return made.body.id as string;
    };
    seats = await addOn('Seats', 1000);
    support = await addOn('Support', 500);
  });
  afterAll(() => app.stop());

  const subscribe = async () => {
    const customer = (await app.api('POST', '/v1/customers', { email: `c${Math.random()}@example.com` })).body
      .id;
    const sub = await app.api('POST', '/v1/subscriptions', { customer, plan });
    expect(sub.status).toBe(201);
    return sub.body as { id: string; customer: string; current_period_end: string };
  };
  const coupon = async (body: Record<string, unknown>) => {
    const made = await app.api('POST', '/v1/coupons', body);
    expect(made.status).toBe(201);
    return made.body;
  };
  const renew = async (id: string) => {
    const sub = (await app.api('GET', `/v1/subscriptions/${id}`)).body;
    const renewal = await renewSubscription(app.runtime.db, 'system', id, new Date(sub.next_renewal_at));
    return (await app.api('GET', `/v1/invoices/${renewal!.invoices[0]!.id}`)).body;
  };
  const effective = async (id: string) =>
    (await app.api('GET', `/v1/subscriptions/${id}`)).body.effective_amount as number;
  /** Every row a change or a preview could write, to see that nothing changed. */
  const snapshot = async () => {
    const db = app.runtime.db;
    return {
      addOns: await db.selectFrom('subscription_add_ons').selectAll().orderBy('id').execute(),
      redemptions: await db.selectFrom('coupon_redemptions').selectAll().orderBy('id').execute(),
      coupons: await db.selectFrom('coupons').select(['id', 'times_redeemed']).orderBy('id').execute(),
      invoices: await db.selectFrom('invoices').select('id').orderBy('id').execute(),
      activities: await db.selectFrom('activities').select('id').orderBy('id').execute(),
    };
  };

  it('creates a coupon restricted to add-ons (applies_to_add_ons), shown as given; unknown or repeated add-ons are 422', async () => {
    const made = await coupon({
      code: 'SEATS5',
      percent_off: 5,
      duration: 'ONCE',
      applies_to_add_ons: [seats],
    });
    expect(made).toMatchObject({ applies_to_add_ons: [seats], applies_to_products: null });
    expect((await app.api('GET', `/v1/coupons/${made.id}`)).body.applies_to_add_ons).toEqual([seats]);
    const plain = await coupon({ code: 'PLAIN5', percent_off: 5, duration: 'ONCE' });
    expect(plain.applies_to_add_ons).toBeNull();
    const unknown = await app.api('POST', '/v1/coupons', {
      code: 'GHOSTADDON',
      percent_off: 5,
      duration: 'ONCE',
      applies_to_add_ons: ['addon_nope'],
      applies_to_products: ['prod_nope'],
    });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error.fields.applies_to_add_ons).toMatch(/addon_nope/);
    expect(unknown.body.error.fields.applies_to_products).toMatch(/prod_nope/);
    const repeated = await app.api('POST', '/v1/coupons', {
      code: 'TWICEADDON',
      percent_off: 5,
      duration: 'ONCE',
      applies_to_add_ons: [seats, seats],
    });
    expect(repeated.status).toBe(422);
    expect(Object.keys(repeated.body.error.fields)).toEqual(['applies_to_add_ons']);
    const codes = (await app.api('GET', '/v1/coupons?limit=100')).body.data.map(
      (c: { code: string }) => c.code,
    );
    expect(codes).not.toContain('GHOSTADDON');
    expect(codes).not.toContain('TWICEADDON');
  });

  it('discounts only the add-on it was redeemed on, for its duration: 1000 × 3 less 10% for 2 periods → 2700, 2700, then 3000', async () => {
    await coupon({
      code: 'ADDON10',
      percent_off: 10,
      duration: 'REPEATING',
      duration_in_periods: 2,
      applies_to_add_ons: [seats],
    });
    const sub = await subscribe();
    const added = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: seats,
      quantity: 3,
      coupon: 'ADDON10',
    });
    expect(added.status).toBe(201);
    expect(added.body.coupons).toMatchObject([
      {
        object: 'coupon_redemption',
        coupon: { code: 'ADDON10' },
        subscription: sub.id,
        add_on: seats,
        periods_applied: 0,
        removed_at: null,
      },
    ]);
    await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, { add_on: support, quantity: 1 });
    // The plan 2000 (not discounted) + seats 3 × 1000 = 3000 less 10% = 300 + support 500 (not discounted).
    expect(await effective(sub.id)).toBe(2000 + 3000 - 300 + 500);

    const first = await renew(sub.id);
    // Each line names the add-on it charges for or discounts (`add_on`), the plan's none.
    expect(first.lines).toMatchObject([
      { type: 'CHARGE', amount: 2000, coupon: null, add_on: null },
      { type: 'CHARGE', unit_amount: 1000, quantity: 3, amount: 3000, coupon: null, add_on: seats },
      { type: 'CREDIT', amount: -300, coupon: added.body.coupons[0].coupon.id, plan: null, add_on: seats },
      { type: 'CHARGE', unit_amount: 500, quantity: 1, amount: 500, add_on: support },
    ]);
    expect(first.subtotal).toBe(5200);
    const second = await renew(sub.id);
    expect(second.subtotal).toBe(5200);
    // Two periods applied: the third is not discounted (2000 + 3000 + 500).
    expect(await effective(sub.id)).toBe(5500);
    const third = await renew(sub.id);
    expect(third.subtotal).toBe(5500);
    expect(third.lines.filter((l: { type: string }) => l.type === 'CREDIT')).toEqual([]);
    const read = await app.api('GET', `/v1/subscriptions/${sub.id}/add-ons/${seats}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ quantity: 3, coupons: [{ periods_applied: 2, removed_at: null }] });
    const listed = (await app.api('GET', `/v1/subscriptions/${sub.id}/add-ons`)).body.data;
    expect(listed.map((a: { coupons: unknown[] }) => a.coupons.length)).toEqual([1, 0]);
    // The subscription's coupons list it too, with its add-on.
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}/coupons`)).body.data).toMatchObject([
      { add_on: seats, coupon: { code: 'ADDON10' } },
    ]);
  });

  it('caps an amount-off coupon at its add-on line (never negative), as for a plan: 500 less 2000 → 0', async () => {
    await coupon({
      code: 'BIGOFF',
      amount_off: 2000,
      currency: 'USD',
      duration: 'FOREVER',
      applies_to_add_ons: [support],
    });
    const sub = await subscribe();
    await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, { add_on: support, quantity: 1 });
    const redeemed = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons/${support}/coupons`, {
      coupon: 'BIGOFF',
    });
    expect(redeemed.status).toBe(201);
    expect(redeemed.body).toMatchObject({ add_on: support, coupon: { code: 'BIGOFF' } });
    // The plan 2000 + support 500 − min(2000, 500) = 2000: the rest of the 2000 off discounts nothing else.
    expect(await effective(sub.id)).toBe(2000);
    const invoice = await renew(sub.id);
    expect(invoice.lines).toMatchObject([
      { type: 'CHARGE', amount: 2000 },
      { type: 'CHARGE', amount: 500 },
      { type: 'CREDIT', amount: -500 },
    ]);
    expect(invoice.total).toBe(2000);
    const again = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons/${support}/coupons`, {
      coupon: 'BIGOFF',
    });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('coupon_already_redeemed');
    const absent = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons/${seats}/coupons`, {
      coupon: 'BIGOFF',
    });
    expect(absent.status).toBe(404);
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}/add-ons/${seats}`)).status).toBe(404);
  });

  it("keeps a subscription's coupons off add-on lines, and an add-on's coupon off the plan and the other add-ons", async () => {
    await coupon({ code: 'PROD20', percent_off: 20, duration: 'FOREVER', applies_to_products: [product] });
    await coupon({ code: 'ALL50', percent_off: 50, duration: 'FOREVER' });
    const sub = await subscribe();
    expect((await app.api('POST', `/v1/subscriptions/${sub.id}/coupons`, { coupon: 'PROD20' })).status).toBe(
      201,
    );
    await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, { add_on: seats, quantity: 2 });
    await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, { add_on: support, quantity: 1 });
    // A coupon restricted to products is not redeemable on an add-on.
    const onAddOn = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons/${seats}/coupons`, {
      coupon: 'PROD20',
    });
    expect(onAddOn.status).toBe(409);
    expect(onAddOn.body.error.code).toBe('coupon_not_applicable');
    // A coupon for all: once on the subscription, once on seats, each discounting its own line.
    expect((await app.api('POST', `/v1/subscriptions/${sub.id}/coupons`, { coupon: 'ALL50' })).status).toBe(
      201,
    );
    expect(
      (await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons/${seats}/coupons`, { coupon: 'ALL50' }))
        .status,
    ).toBe(201);
    // Plan 2000 − 20% (400) − 50% (1000) = 600; seats 2000 − 50% = 1000; support 500 untouched.
    expect(await effective(sub.id)).toBe(600 + 1000 + 500);
    const invoice = await renew(sub.id);
    expect(invoice.lines.map((l: { amount: number }) => l.amount)).toEqual([
      2000, -400, -1000, 2000, -1000, 500,
    ]);
    expect(invoice.subtotal).toBe(2100);
  });

  it('refuses an unknown coupon, one not for that add-on, another currency, an exhausted, expired or per-customer-limited one, and a coupon with quantity 0; nothing changes', async () => {
    await coupon({ code: 'SUPPORTONLY', percent_off: 10, duration: 'ONCE', applies_to_add_ons: [support] });
    await coupon({ code: 'EUROS', amount_off: 100, currency: 'EUR', duration: 'ONCE' });
    await coupon({ code: 'ONEUSE', percent_off: 10, duration: 'ONCE', max_redemptions: 1 });
    await coupon({ code: 'GONE', percent_off: 10, duration: 'ONCE', redeem_by: '2020-01-01T00:00:00Z' });
    await coupon({ code: 'ONEEACH', percent_off: 10, duration: 'ONCE', max_redemptions_per_customer: 1 });
    const sub = await subscribe();
    const other = await subscribe();
    await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, { add_on: support, quantity: 1 });
    expect(
      (
        await app.api('POST', `/v1/subscriptions/${other.id}/add-ons`, {
          add_on: seats,
          quantity: 1,
          coupon: 'ONEUSE',
        })
      ).status,
    ).toBe(201);
    expect(
      (await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons/${support}/coupons`, { coupon: 'ONEEACH' }))
        .status,
    ).toBe(201);

    const before = await snapshot();
    const set = (body: Record<string, unknown>) =>
      app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, body);
    const preview = (body: Record<string, unknown>) =>
      app.api('POST', `/v1/subscriptions/${sub.id}/add-ons/preview`, body);
    for (const call of [set, preview]) {
      const unknown = await call({ add_on: seats, quantity: 2, coupon: 'NOPE' });
      expect(unknown.status).toBe(422);
      expect(unknown.body.error.fields.coupon).toMatch(/NOPE/);
      const notForIt = await call({ add_on: seats, quantity: 2, coupon: 'SUPPORTONLY' });
      expect(notForIt.status).toBe(409);
      expect(notForIt.body.error).toMatchObject({ code: 'coupon_not_applicable' });
      expect(notForIt.body.error.message).toMatch(seats);
      const euros = await call({ add_on: seats, quantity: 2, coupon: 'EUROS' });
      expect(euros.status).toBe(422);
      expect(euros.body.error.fields.coupon).toMatch(/EUR/);
      expect((await call({ add_on: seats, quantity: 2, coupon: 'ONEUSE' })).body.error.code).toBe(
        'coupon_exhausted',
      );
      expect((await call({ add_on: seats, quantity: 2, coupon: 'GONE' })).body.error.code).toBe(
        'coupon_expired',
      );
      expect((await call({ add_on: seats, quantity: 2, coupon: 'ONEEACH' })).body.error.code).toBe(
        'coupon_customer_limit',
      );
      const removing = await call({ add_on: support, quantity: 0, coupon: 'ALL50' });
      expect(removing.status).toBe(422);
      expect(Object.keys(removing.body.error.fields)).toEqual(['coupon']);
      const bad = await call({ add_on: seats, quantity: 2, coupon: 'no spaces' });
      expect(bad.status).toBe(422);
      expect(Object.keys(bad.body.error.fields)).toEqual(['coupon']);
    }
    const redeem = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons/${support}/coupons`, {
      coupon: 'EUROS',
    });
    expect(redeem.status).toBe(422);
    expect(redeem.body.error.fields.coupon).toMatch(/EUR/);
    // Seats were not added by the refused requests, no coupon counted, nothing logged.
    expect(await snapshot()).toEqual(before);
  });

  it("removing an add-on (quantity 0, Billby's cancel) ends its coupons: no discount after, even when added again", async () => {
    await coupon({ code: 'SEATS25', percent_off: 25, duration: 'FOREVER', applies_to_add_ons: [seats] });
    const sub = await subscribe();
    await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: seats,
      quantity: 4,
      coupon: 'SEATS25',
    });
    // 2000 + 4000 − 25% (1000).
    expect((await renew(sub.id)).subtotal).toBe(5000);
    const removed = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: seats,
      quantity: 0,
    });
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ deleted: true, quantity: 0, coupons: [{ periods_applied: 1 }] });
    expect(removed.body.coupons[0].removed_at).not.toBeNull();
    const redemption = removed.body.coupons[0].id;
    expect(await actionsOf(app, removed.body.coupons[0].coupon.id)).toEqual([
      'coupon.created',
      'coupon.redeemed',
      'coupon.removed',
    ]);
    expect((await renew(sub.id)).subtotal).toBe(2000);
    await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, { add_on: seats, quantity: 1 });
    // Added again: billed, not discounted (the removed redemption stays removed).
    expect(await effective(sub.id)).toBe(3000);
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}/add-ons/${seats}`)).body.coupons).toMatchObject(
      [{ id: redemption }],
    );
    const redeemAgain = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons/${seats}/coupons`, {
      coupon: 'SEATS25',
    });
    expect(redeemAgain.body.error.code).toBe('coupon_already_redeemed');
  });

  it("removes an add-on's coupon with the subscription's coupon removal route; later invoices are not discounted", async () => {
    await coupon({ code: 'SEATS30', percent_off: 30, duration: 'FOREVER', applies_to_add_ons: [seats] });
    const sub = await subscribe();
    await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: seats,
      quantity: 1,
      coupon: 'SEATS30',
    });
    expect(await effective(sub.id)).toBe(2000 + 1000 - 300);
    const [redemption] = (await app.api('GET', `/v1/subscriptions/${sub.id}/add-ons/${seats}`)).body.coupons;
    const removed = await app.api('POST', `/v1/subscriptions/${sub.id}/coupons/${redemption.id}/remove`);
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ add_on: seats });
    expect(removed.body.removed_at).not.toBeNull();
    expect(await effective(sub.id)).toBe(3000);
    expect((await renew(sub.id)).subtotal).toBe(3000);
  });

  it("previews the next period's invoice after an add-on change (add, change, remove, with a coupon) as the renewal then bills it, writing nothing", async () => {
    await coupon({ code: 'PREV10', percent_off: 10, duration: 'ONCE', applies_to_add_ons: [seats, support] });
    await coupon({ code: 'SUPP100', amount_off: 100, currency: 'USD', duration: 'FOREVER' });
    const sub = await subscribe();
    await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: support,
      quantity: 2,
      coupon: 'SUPP100',
    });
    const before = await snapshot();
    const preview = (body: Record<string, unknown>) =>
      app.api('POST', `/v1/subscriptions/${sub.id}/add-ons/preview`, body);

    // Add seats × 3 with PREV10: 2000 + support 1000 − 100 + seats 3000 − 300.
    const adding = await preview({ add_on: seats, quantity: 3, coupon: 'PREV10' });
    expect(adding.status).toBe(200);
    expect(adding.body).toMatchObject({
      object: 'invoice_preview',
      customer: sub.customer,
      currency: 'USD',
      billing_reason: 'subscription_cycle',
      invoice_at: sub.current_period_end,
      period_start: sub.current_period_end,
      subtotal: 5600,
      tax: 0,
      total: 5600,
    });
    expect(adding.body.lines).toMatchObject([
      { type: 'CHARGE', amount: 2000, plan, add_on: null },
      { type: 'CHARGE', amount: 1000, add_on: support, plan: null },
      { type: 'CREDIT', amount: -100, add_on: support },
      { type: 'CHARGE', unit_amount: 1000, quantity: 3, amount: 3000, add_on: seats },
      { type: 'CREDIT', amount: -300, add_on: seats },
    ]);
    // Support down to 1: 2000 + 500 − 100.
    expect((await preview({ add_on: support, quantity: 1 })).body.total).toBe(2400);
    // Support removed: its coupon goes with it.
    const removing = await preview({ add_on: support, quantity: 0 });
    expect(removing.body.total).toBe(2000);
    expect(removing.body.lines).toHaveLength(1);
    expect(await snapshot()).toEqual(before);

    // Made for real, the renewal bills what the preview said, line for line.
    await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: seats,
      quantity: 3,
      coupon: 'PREV10',
    });
    expect(await effective(sub.id)).toBe(5600);
    const invoice = await renew(sub.id);
    expect(invoice.lines.map((l: { amount: number }) => l.amount)).toEqual(
      adding.body.lines.map((l: { amount: number }) => l.amount),
    );
    expect(invoice.total).toBe(adding.body.total);
    // PREV10 was ONCE: the next period has seats undiscounted (2000 + 1000 − 100 + 3000).
    expect((await preview({ add_on: seats, quantity: 3 })).body.total).toBe(5900);
  });

  it("settling a fixed term invoices each remaining period with the add-on's coupon counted as the renewals would: 4700, 4700, 5000", async () => {
    const term = await app.api('POST', '/v1/plans', {
      product,
      name: 'Term',
      currency: 'USD',
      interval: 'MONTH',
      price: { model: 'FLAT_FEE', amount: 2000 },
      repeat: 4,
    });
    expect(term.status).toBe(201);
    await coupon({
      code: 'TERM10',
      percent_off: 10,
      duration: 'REPEATING',
      duration_in_periods: 2,
      applies_to_add_ons: [seats],
    });
    const customer = (await app.api('POST', '/v1/customers', { email: `s${Math.random()}@example.com` })).body
      .id;
    const sub = (await app.api('POST', '/v1/subscriptions', { customer, plan: term.body.id })).body;
    await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: seats,
      quantity: 3,
      coupon: 'TERM10',
    });
    const settled = await inUnitOfWork(app.runtime.db, { actor: 'system' }, async (work) =>
      invoiceRemainingCycles(work, (await lockSubscription(work, sub.id))!, new Date()),
    );
    // Periods 1 and 2: 2000 + 3000 − 300; period 3: 2000 + 3000 (the coupon's two periods are used).
    expect(settled.invoices.map((i) => i.subtotal)).toEqual([4700n, 4700n, 5000n]);
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}/add-ons/${seats}`)).body.coupons).toMatchObject(
      [{ periods_applied: 2 }],
    );
  });

  it("taxes an add-on's line on its discounted amount, as a plan's: 10% of (3000 − 300) = 270", async () => {
    const taxed = await app.api('POST', '/v1/plans', {
      product,
      name: 'Taxed',
      currency: 'USD',
      interval: 'MONTH',
      price: { model: 'FLAT_FEE', amount: 2000 },
      tax_percent: 10,
    });
    expect(taxed.status).toBe(201);
    await coupon({ code: 'TAXED10', percent_off: 10, duration: 'FOREVER', applies_to_add_ons: [seats] });
    const customer = (await app.api('POST', '/v1/customers', { email: `t${Math.random()}@example.com` })).body
      .id;
    const sub = (await app.api('POST', '/v1/subscriptions', { customer, plan: taxed.body.id })).body;
    const body = { add_on: seats, quantity: 3, coupon: 'TAXED10' };
    const preview = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons/preview`, body);
    // Plan 2000 + 200 tax; seats 3000 − 300 = 2700, + 270 tax: 4700 + 470 = 5170.
    expect(preview.body).toMatchObject({ subtotal: 4700, tax: 470, total: 5170 });
    await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, body);
    const invoice = await renew(sub.id);
    expect(invoice).toMatchObject({ subtotal: 4700, tax: 470, total: 5170 });
    expect(invoice.lines.map((l: { tax_amount: number }) => l.tax_amount)).toEqual([200, 300, -30]);
  });

  it('answers a subscription that is not renewed again with the proration alone (no next invoice), 409 for a cancelled one, 404 for unknown ids', async () => {
    const sub = await subscribe();
    await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { at_period_end: true });
    const ending = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons/preview`, {
      add_on: seats,
      quantity: 1,
      proration: 'none',
    });
    expect(ending.status).toBe(200);
    expect(ending.body).toEqual({ object: 'subscription_add_on_preview', renews: false, proration: null });
    const gone = await subscribe();
    await app.api('POST', `/v1/subscriptions/${gone.id}/cancel`, {});
    const cancelled = await app.api('POST', `/v1/subscriptions/${gone.id}/add-ons/preview`, {
      add_on: seats,
      quantity: 1,
    });
    expect(cancelled.status).toBe(409);
    expect(cancelled.body.error.code).toBe('subscription_cancelled');
    expect(
      (await app.api('POST', '/v1/subscriptions/sub_nope/add-ons/preview', { add_on: seats, quantity: 1 }))
        .status,
    ).toBe(404);
    expect(
      (
        await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons/preview`, {
          add_on: 'addon_nope',
          quantity: 1,
        })
      ).status,
    ).toBe(404);
    expect((await app.api('GET', `/v1/subscriptions/sub_nope/add-ons/${seats}`)).status).toBe(404);
  });

  it("does not prorate a plan change with an add-on's coupon: only the plan's coupons discount the plan's proration", async () => {
    await coupon({ code: 'SEATSHALF', percent_off: 50, duration: 'FOREVER', applies_to_add_ons: [seats] });
    const sub = await subscribe();
    await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: seats,
      quantity: 1,
      coupon: 'SEATSHALF',
    });
    const invoice = await renew(sub.id);
    expect(invoice.lines.map((l: { amount: number }) => l.amount)).toEqual([2000, 1000, -500]);
    // Halfway through that period (renewed on a simulated clock), a change of quantity, previewed.
    const midPeriod = new Date((Date.parse(invoice.period_start) + Date.parse(invoice.period_end)) / 2);
    const change = await changeSubscription(
      app.runtime.db,
      'system',
      sub.id,
      { quantity: 2, proration: 'full' },
      midPeriod,
      true,
    );
    // A whole period (full): credit the plan's 2000, charge 2000 again (a flat fee); no coupon lines,
    // where the add-on's 50% would have discounted both had it been taken for a plan's coupon.
    expect(change.proration.lines.map((l) => [l.type, l.signedAmount, l.couponId])).toEqual([
      ['CREDIT', -2000n, undefined],
      ['CHARGE', 2000n, undefined],
    ]);
  });
});
