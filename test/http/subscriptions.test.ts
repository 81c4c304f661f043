import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { actionsOf, customerWith } from '../support/collection.ts';
import { ledgerByCode } from '../support/flow.ts';
import { insertPlan } from '../support/plans.ts';

describe('/v1/subscriptions and /v1/coupons over HTTP', () => {
  let app: TestApp;
  let plan: string;
  let customer: string;
  beforeAll(async () => {
    app = await startTestApp();
    plan = await insertPlan(app.runtime.db, {
      currency: 'USD',
      price: { model: 'PER_UNIT', unit_amount: 1500 },
      taxRatePpm: 200_000,
    });
    customer = (await customerWith(app)).customer.id;
  });
  afterAll(() => app.stop());

  it('creates an ACTIVE subscription and invoices its first period at once (OPEN, charge_at now)', async () => {
    const created = await app.api('POST', '/v1/subscriptions', {
      customer,
      plan,
      quantity: 2,
      metadata: { team: 'ops' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      object: 'subscription',
      status: 'ACTIVE',
      customer,
      plan,
      quantity: 2,
      current_period_index: 0,
      metadata: { team: 'ops' },
    });
    expect(created.body.id).toMatch(/^sub_/);
    const invoice = await app.api('GET', `/v1/invoices/${created.body.latest_invoice}`);
    expect(invoice.body).toMatchObject({
      status: 'OPEN',
      subscription: created.body.id,
      billing_reason: 'subscription_create',
      subtotal: 3000,
      tax: 600,
      total: 3600,
      currency: 'USD',
      period_start: created.body.current_period_start,
      period_end: created.body.current_period_end,
    });
    expect(invoice.body.charge_at).not.toBeNull();
    expect(invoice.body.lines).toMatchObject([
      { type: 'CHARGE', unit_amount: 1500, quantity: 2, amount: 3000, tax_percent: '20', plan },
    ]);
    expect((await ledgerByCode(app))['receivable:customer USD']).toBe(3600);
    expect(await actionsOf(app, created.body.id)).toEqual(['subscription.created', 'subscription.renewed']);
  });

  it('creates IN_TRIAL with trial_days, and a future start without an invoice', async () => {
    const trial = await app.api('POST', '/v1/subscriptions', { customer, plan, trial_days: 7 });
    expect(trial.status).toBe(201);
    expect(trial.body).toMatchObject({
      status: 'IN_TRIAL',
      latest_invoice: null,
      current_period_index: null,
    });
    expect(new Date(trial.body.trial_end_at).getTime() - new Date(trial.body.start_at).getTime()).toBe(
      7 * 86_400_000,
    );
    expect(trial.body.next_renewal_at).toBe(trial.body.trial_end_at);
    const startAt = new Date(Date.now() + 10 * 86_400_000).toISOString();
    const future = await app.api('POST', '/v1/subscriptions', { customer, plan, start_at: startAt });
    expect(future.body).toMatchObject({ status: 'ACTIVE', latest_invoice: null, start_at: startAt });
  });

  it('refuses bad input with field errors (422), unknown references (404), an inactive plan (409)', async () => {
    const bad = await app.api('POST', '/v1/subscriptions', {
      customer,
      plan,
      quantity: -1,
      amount_override: 1.5,
      trial_days: 'x',
    });
    expect(bad.status).toBe(422);
    expect(Object.keys(bad.body.error.fields)).toEqual(
      expect.arrayContaining(['quantity', 'amount_override', 'trial_days']),
    );
    const past = await app.api('POST', '/v1/subscriptions', {
      customer,
      plan,
      start_at: '2020-01-01T00:00:00Z',
    });
    expect(past.status).toBe(422);
    expect(past.body.error.fields).toEqual({ start_at: 'must not be in the past' });
    const otherCustomer = (await app.api('POST', '/v1/customers', { email: 'bob@example.com' })).body.id;
    const method = await app.api('POST', '/v1/payment-methods', {
      customer: otherCustomer,
      gateway: 'stripe',
      gateway_token: 'pm_x',
    });
    const foreign = await app.api('POST', '/v1/subscriptions', {
      customer,
      plan,
      payment_method: method.body.id,
    });
    expect(foreign.status).toBe(422);
    expect(foreign.body.error.fields.payment_method).toMatch(/no payment method/);
    expect((await app.api('POST', '/v1/subscriptions', { customer: 'cus_nope', plan })).status).toBe(404);
    expect((await app.api('POST', '/v1/subscriptions', { customer, plan: 'plan_nope' })).status).toBe(404);
    const inactive = await insertPlan(app.runtime.db, { active: false });
    const refused = await app.api('POST', '/v1/subscriptions', { customer, plan: inactive });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('plan_inactive');
    expect((await app.api('GET', '/v1/subscriptions/sub_nope')).status).toBe(404);
    const count = await app.runtime.db
      .selectFrom('subscriptions')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('plan_id', '=', inactive)
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(0);
  });

  it('lists with status and customer filters, reads and updates metadata and payment method', async () => {
    const bob = (await app.api('POST', '/v1/customers', { email: 'bob2@example.com' })).body.id;
    const sub = (await app.api('POST', '/v1/subscriptions', { customer: bob, plan, trial_days: 3 })).body;
    const byCustomer = await app.api('GET', `/v1/subscriptions?customer=${bob}`);
    expect(byCustomer.body.data.map((s: { id: string }) => s.id)).toEqual([sub.id]);
    const trials = await app.api('GET', '/v1/subscriptions?status=IN_TRIAL&limit=100');
    expect(trials.body.data.every((s: { status: string }) => s.status === 'IN_TRIAL')).toBe(true);
    expect(trials.body.data.map((s: { id: string }) => s.id)).toContain(sub.id);
    const method = (
      await app.api('POST', '/v1/payment-methods', {
        customer: bob,
        gateway: 'stripe',
        gateway_token: 'pm_b',
      })
    ).body;
    const updated = await app.api('POST', `/v1/subscriptions/${sub.id}`, {
      metadata: { seat: '7' },
      payment_method: method.id,
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ metadata: { seat: '7' }, payment_method: method.id });
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}`)).body.metadata).toEqual({ seat: '7' });
    expect((await app.api('POST', `/v1/subscriptions/${sub.id}`, { status: 'ACTIVE' })).status).toBe(422);
    expect((await app.api('POST', '/v1/subscriptions/sub_nope', { metadata: {} })).status).toBe(404);
    expect(await actionsOf(app, sub.id)).toEqual(['subscription.created', 'subscription.updated']);
  });

  it('cancels at period end (twice → 409), then now; cancelling a CANCELLED subscription is 409', async () => {
    const sub = (await app.api('POST', '/v1/subscriptions', { customer, plan })).body;
    const scheduled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { at_period_end: true });
    expect(scheduled.body).toMatchObject({ status: 'ACTIVE', cancel_at_period_end: true });
    const again = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { at_period_end: true });
    expect(again.status).toBe(409);
    const now = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, {});
    expect(now.body).toMatchObject({ status: 'CANCELLED', next_renewal_at: null });
    expect(now.body.cancelled_at).not.toBeNull();
    const twice = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, {});
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('subscription_cancelled');
    expect(
      (await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { at_period_end: 'yes' })).status,
    ).toBe(422);
    expect((await app.api('POST', `/v1/subscriptions/${sub.id}/reactivate`)).status).toBe(409);
    expect((await app.api('POST', '/v1/subscriptions/sub_nope/cancel', {})).status).toBe(404);
    expect(await actionsOf(app, sub.id)).toEqual([
      'subscription.created',
      'subscription.renewed',
      'subscription.cancellation_scheduled',
      'subscription.cancelled',
    ]);
  });

  it('suspends (twice → 409) and reactivates (only from SUSPENDED)', async () => {
    const sub = (await app.api('POST', '/v1/subscriptions', { customer, plan })).body;
    expect((await app.api('POST', `/v1/subscriptions/${sub.id}/reactivate`)).status).toBe(409);
    const suspended = await app.api('POST', `/v1/subscriptions/${sub.id}/suspend`);
    expect(suspended.body).toMatchObject({ status: 'SUSPENDED' });
    expect((await app.api('POST', `/v1/subscriptions/${sub.id}/suspend`)).status).toBe(409);
    const active = await app.api('POST', `/v1/subscriptions/${sub.id}/reactivate`);
    expect(active.status).toBe(200);
    // The current period was invoiced before the suspension: nothing more to bill now.
    expect(active.body).toMatchObject({ status: 'ACTIVE', suspended_at: null, latest_invoice: null });
    expect(await actionsOf(app, sub.id)).toEqual([
      'subscription.created',
      'subscription.renewed',
      'subscription.suspended',
      'subscription.active',
    ]);
  });

  it('coupons: create (201), field errors (422), duplicate code (409), list, read, update; 404', async () => {
    const created = await app.api('POST', '/v1/coupons', {
      code: 'WELCOME10',
      name: 'Welcome',
      percent_off: '10',
      duration: 'ONCE',
      max_redemptions: 5,
      metadata: { campaign: 'fall' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      object: 'coupon',
      code: 'WELCOME10',
      percent_off: '10',
      amount_off: null,
      duration: 'ONCE',
      times_redeemed: 0,
      active: true,
    });
    const both = await app.api('POST', '/v1/coupons', {
      code: 'BOTH',
      percent_off: 5,
      amount_off: 100,
      currency: 'USD',
      duration: 'ONCE',
    });
    expect(both.status).toBe(422);
    expect(both.body.error.fields.percent_off).toBeDefined();
    const noCurrency = await app.api('POST', '/v1/coupons', {
      code: 'NOCUR',
      amount_off: 100,
      duration: 'ONCE',
    });
    expect(noCurrency.body.error.fields.currency).toBeDefined();
    const repeating = await app.api('POST', '/v1/coupons', {
      code: 'REP',
      percent_off: 5,
      duration: 'REPEATING',
    });
    expect(repeating.body.error.fields.duration_in_periods).toBeDefined();
    const badPercent = await app.api('POST', '/v1/coupons', {
      code: 'BAD',
      percent_off: '12.34567',
      duration: 'ONCE',
    });
    expect(badPercent.status).toBe(422);
    expect(badPercent.body.error.fields.percent_off).toBeDefined();
    expect(
      (await app.api('POST', '/v1/coupons', { code: 'bad code', percent_off: 5, duration: 'ONCE' })).status,
    ).toBe(422);
    const dup = await app.api('POST', '/v1/coupons', { code: 'WELCOME10', percent_off: 5, duration: 'ONCE' });
    expect(dup.status).toBe(409);
    expect((await app.api('GET', `/v1/coupons/${created.body.id}`)).body.code).toBe('WELCOME10');
    expect((await app.api('GET', '/v1/coupons')).body.data.map((c: { code: string }) => c.code)).toContain(
      'WELCOME10',
    );
    const renamed = await app.api('POST', `/v1/coupons/${created.body.id}`, { name: 'Hello' });
    expect(renamed.body).toMatchObject({ name: 'Hello', percent_off: '10' });
    expect((await app.api('POST', `/v1/coupons/${created.body.id}`, { percent_off: 50 })).status).toBe(422);
    expect((await app.api('GET', '/v1/coupons/cpn_nope')).status).toBe(404);
    expect((await app.api('POST', '/v1/coupons/cpn_nope', { active: false })).status).toBe(404);
    // An update giving nothing changes nothing (it was a 500): the coupon as it is, no activity.
    const unchanged = await app.api('POST', `/v1/coupons/${created.body.id}`, {});
    expect(unchanged).toMatchObject({ status: 200, body: { name: 'Hello', percent_off: '10' } });
    expect((await app.api('POST', '/v1/coupons/cpn_nope', {})).status).toBe(404);
    expect(await actionsOf(app, created.body.id)).toEqual(['coupon.created', 'coupon.updated']);
  });

  it('redeems on create and later: credit line, listed redemptions; inactive → 409, currency → 422, twice → 409', async () => {
    await app.api('POST', '/v1/coupons', {
      code: 'FIVEOFF',
      amount_off: 500,
      currency: 'USD',
      duration: 'FOREVER',
    });
    const sub = (await app.api('POST', '/v1/subscriptions', { customer, plan, coupon: 'FIVEOFF' })).body;
    const invoice = (await app.api('GET', `/v1/invoices/${sub.latest_invoice}`)).body;
    // 1500 − 500 = 1000; tax 20%: 300 − 100 = 200.
    expect(invoice).toMatchObject({ subtotal: 1000, tax: 200, total: 1200 });
    expect(invoice.lines[1]).toMatchObject({ type: 'CREDIT', amount: -500, tax_amount: -100 });
    expect(invoice.lines[1].coupon).toMatch(/^cpn_/);

    await app.api('POST', '/v1/coupons', { code: 'LATER', percent_off: '12.5', duration: 'ONCE' });
    const redeemed = await app.api('POST', `/v1/subscriptions/${sub.id}/coupons`, { coupon: 'LATER' });
    expect(redeemed.status).toBe(201);
    expect(redeemed.body).toMatchObject({
      object: 'coupon_redemption',
      periods_applied: 0,
      subscription: sub.id,
    });
    const twice = await app.api('POST', `/v1/subscriptions/${sub.id}/coupons`, { coupon: 'LATER' });
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('coupon_already_redeemed');
    const list = await app.api('GET', `/v1/subscriptions/${sub.id}/coupons`);
    expect(
      list.body.data.map((r: { coupon: { code: string }; periods_applied: number }) => [
        r.coupon.code,
        r.periods_applied,
      ]),
    ).toEqual([
      ['FIVEOFF', 1],
      ['LATER', 0],
    ]);

    await app.api('POST', '/v1/coupons', {
      code: 'EUROS',
      amount_off: 100,
      currency: 'EUR',
      duration: 'ONCE',
    });
    const euros = await app.api('POST', `/v1/subscriptions/${sub.id}/coupons`, { coupon: 'EUROS' });
    expect(euros.status).toBe(422);
    expect(euros.body.error.fields.coupon).toMatch(/EUR/);
    const off = (await app.api('POST', '/v1/coupons', { code: 'OFF', percent_off: 5, duration: 'ONCE' }))
      .body;
    await app.api('POST', `/v1/coupons/${off.id}`, { active: false });
    const inactive = await app.api('POST', `/v1/subscriptions/${sub.id}/coupons`, { coupon: 'OFF' });
    expect(inactive.status).toBe(409);
    expect(inactive.body.error.code).toBe('coupon_inactive');
    const unknown = await app.api('POST', `/v1/subscriptions/${sub.id}/coupons`, { coupon: 'NOPE' });
    expect(unknown.status).toBe(422);
    expect(
      (await app.api('POST', `/v1/subscriptions/${sub.id}/coupons`, {})).body.error.fields.coupon,
    ).toBeDefined();
    expect((await app.api('GET', '/v1/subscriptions/sub_nope/coupons')).status).toBe(404);
    // A refused redemption on create creates nothing.
    const before = (await app.api('GET', `/v1/subscriptions?customer=${customer}&limit=100`)).body.data
      .length;
    expect((await app.api('POST', '/v1/subscriptions', { customer, plan, coupon: 'OFF' })).status).toBe(409);
    expect((await app.api('GET', `/v1/subscriptions?customer=${customer}&limit=100`)).body.data.length).toBe(
      before,
    );
  });

  it('keeps times_redeemed exact under concurrency: max_redemptions 3, eight at once → three succeed', async () => {
    const coupon = (
      await app.api('POST', '/v1/coupons', {
        code: 'RUSH',
        percent_off: 50,
        duration: 'ONCE',
        max_redemptions: 3,
      })
    ).body;
    const subs = await Promise.all(
      Array.from(
        { length: 8 },
        async () => (await app.api('POST', '/v1/subscriptions', { customer, plan, trial_days: 30 })).body.id,
      ),
    );
    const answers = await Promise.all(
      subs.map((id) => app.api('POST', `/v1/subscriptions/${id}/coupons`, { coupon: 'RUSH' })),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([201, 201, 201, 409, 409, 409, 409, 409]);
    expect(
      answers.filter((a) => a.status === 409).every((a) => a.body.error.code === 'coupon_exhausted'),
    ).toBe(true);
    expect((await app.api('GET', `/v1/coupons/${coupon.id}`)).body.times_redeemed).toBe(3);
  });
});
