import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renewSubscription } from '../../src/billing/renewal.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/**
 * Coupon limits over HTTP (issue #28 item 2; Billby's coupon `expiry`, `max_redemption` per
 * customer and `for_all`/`products` eligibility): a redemption after `redeem_by`, beyond the
 * customer's limit or on a plan of another product is refused with a 409 code and changes nothing.
 */
describe('coupon expiry, per-customer limit and product restrictions', () => {
  let app: TestApp;
  let productA: string;
  let productB: string;
  let planA: string;
  let planB: string;
  beforeAll(async () => {
    app = await startTestApp();
    const plan = async (product: string, amount: number) => {
      const created = await app.api('POST', '/v1/plans', {
        product,
        name: `Plan ${amount}`,
        currency: 'USD',
        interval: 'MONTH',
        price: { model: 'FLAT_FEE', amount },
      });
      expect(created.status).toBe(201);
      return created.body.id as string;
    };
    productA = (await app.api('POST', '/v1/products', { name: 'A' })).body.id;
    productB = (await app.api('POST', '/v1/products', { name: 'B' })).body.id;
    planA = await plan(productA, 2000);
    planB = await plan(productB, 3000);
  });
  afterAll(() => app.stop());

  const customer = async () =>
    (await app.api('POST', '/v1/customers', { email: `c${Math.random()}@example.com` })).body.id as string;
  const subscribe = (customerId: string, plan: string, coupon?: string) =>
    app.api('POST', '/v1/subscriptions', { customer: customerId, plan, ...(coupon ? { coupon } : {}) });
  const redemptions = async () =>
    (await app.runtime.db.selectFrom('coupon_redemptions').select('id').execute()).length;

  it('creates a coupon with redeem_by, a per-customer limit and products, shown as given; refuses bad ones (422)', async () => {
    const created = await app.api('POST', '/v1/coupons', {
      code: 'SPRING',
      percent_off: 10,
      duration: 'FOREVER',
      redeem_by: '2099-03-31T23:59:59Z',
      max_redemptions_per_customer: 1,
      applies_to_products: [productA],
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      redeem_by: '2099-03-31T23:59:59.000Z',
      max_redemptions_per_customer: 1,
      applies_to_products: [productA],
    });
    const plain = await app.api('POST', '/v1/coupons', { code: 'PLAIN', percent_off: 5, duration: 'ONCE' });
    expect(plain.body).toMatchObject({
      redeem_by: null,
      max_redemptions_per_customer: null,
      applies_to_products: null,
    });
    const bad = await app.api('POST', '/v1/coupons', {
      code: 'BAD',
      percent_off: 5,
      duration: 'ONCE',
      redeem_by: '2099-03-31',
      max_redemptions_per_customer: 0,
      applies_to_products: [productA, productA],
    });
    expect(bad.status).toBe(422);
    expect(Object.keys(bad.body.error.fields).sort()).toEqual([
      'applies_to_products',
      'max_redemptions_per_customer',
      'redeem_by',
    ]);
    const unknown = await app.api('POST', '/v1/coupons', {
      code: 'GHOST',
      percent_off: 5,
      duration: 'ONCE',
      applies_to_products: ['prod_nope'],
    });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error.fields.applies_to_products).toMatch(/prod_nope/);
    expect(
      (await app.api('GET', '/v1/coupons')).body.data.map((c: { code: string }) => c.code),
    ).not.toContain('GHOST');
  });

  it('refuses a redemption after redeem_by (409 coupon_expired), on create, redeem and preview alike', async () => {
    await app.api('POST', '/v1/coupons', {
      code: 'OLD',
      amount_off: 500,
      currency: 'USD',
      duration: 'ONCE',
      redeem_by: '2020-12-31T09:59:59Z',
    });
    const who = await customer();
    const before = await redemptions();
    const created = await subscribe(who, planA, 'OLD');
    expect(created.status).toBe(409);
    expect(created.body.error.code).toBe('coupon_expired');
    const preview = await app.api('POST', '/v1/subscriptions/preview', {
      customer: who,
      plan: planA,
      coupon: 'OLD',
    });
    expect(preview.body.error.code).toBe('coupon_expired');
    const sub = (await subscribe(who, planA)).body;
    const late = await app.api('POST', `/v1/subscriptions/${sub.id}/coupons`, { coupon: 'OLD' });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('coupon_expired');
    expect(await redemptions()).toBe(before);
    expect((await app.api('GET', `/v1/subscriptions?customer=${who}`)).body.data).toHaveLength(1);
  });

  it('allows max_redemptions_per_customer per customer (409 coupon_customer_limit beyond), others unaffected', async () => {
    await app.api('POST', '/v1/coupons', {
      code: 'TWICE',
      percent_off: 50,
      duration: 'ONCE',
      max_redemptions_per_customer: 2,
    });
    const ada = await customer();
    expect((await subscribe(ada, planA, 'TWICE')).status).toBe(201);
    expect((await subscribe(ada, planA, 'TWICE')).status).toBe(201);
    const third = await subscribe(ada, planA, 'TWICE');
    expect(third.status).toBe(409);
    expect(third.body.error.code).toBe('coupon_customer_limit');
    const sub = (await subscribe(ada, planA)).body;
    const redeem = await app.api('POST', `/v1/subscriptions/${sub.id}/coupons`, { coupon: 'TWICE' });
    expect(redeem.body.error.code).toBe('coupon_customer_limit');
    // The refused redemptions counted nothing: another customer still redeems it.
    expect((await subscribe(await customer(), planA, 'TWICE')).status).toBe(201);
    const coupon = (await app.api('GET', '/v1/coupons')).body.data.find(
      (c: { code: string }) => c.code === 'TWICE',
    );
    expect(coupon.times_redeemed).toBe(3);
  });

  it("discounts only plans of the coupon's products: another product's plan is refused (409), and a plan change stops the discount", async () => {
    await app.api('POST', '/v1/coupons', {
      code: 'ONLY_A',
      percent_off: 25,
      duration: 'FOREVER',
      applies_to_products: [productA],
    });
    const who = await customer();
    const refused = await subscribe(who, planB, 'ONLY_A');
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('coupon_not_applicable');
    const sub = (await subscribe(who, planA, 'ONLY_A')).body;
    const first = (await app.api('GET', `/v1/invoices/${sub.latest_invoice}`)).body;
    expect(first).toMatchObject({ subtotal: 1500 });
    expect(first.lines[1]).toMatchObject({ type: 'CREDIT', amount: -500 });

    // Moved to product B's plan (same currency and interval), the next period is not discounted.
    const changed = await app.api('POST', `/v1/subscriptions/${sub.id}/change`, { plan: planB });
    expect(changed.status).toBe(200);
    // The unused time on A is credited as paid (with the coupon); the time on B is not discounted.
    const coupon = first.lines[1].coupon;
    const update = (await app.api('GET', `/v1/invoices?customer=${who}&limit=10`)).body.data.find(
      (i: { billing_reason: string }) => i.billing_reason === 'subscription_update',
    );
    const couponLines = update.lines.filter((l: { coupon: string | null }) => l.coupon === coupon);
    expect(couponLines.map((l: { type: string }) => l.type)).toEqual(['CHARGE']);
    await renewSubscription(app.runtime.db, 'system', sub.id, new Date(sub.current_period_end));
    const invoices = (await app.api('GET', `/v1/invoices?customer=${who}&limit=10`)).body.data;
    const cycle = invoices.find((i: { billing_reason: string }) => i.billing_reason === 'subscription_cycle');
    expect(cycle).toMatchObject({ subtotal: 3000 });
    expect(cycle.lines).toHaveLength(1);
  });
});
