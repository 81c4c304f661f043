import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renewSubscription } from '../../src/billing/renewal.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { actionsOf } from '../support/collection.ts';
import { insertPlan } from '../support/plans.ts';

/** Add-ons over HTTP (Billby's add-ons catalog and subscription add-ons with quantities). */
describe('/v1/add-ons and /v1/subscriptions/:id/add-ons', () => {
  let app: TestApp;
  let plan: string;
  beforeAll(async () => {
    app = await startTestApp();
    plan = await insertPlan(app.runtime.db, {
      currency: 'USD',
      price: { model: 'FLAT_FEE', amount: 2000 },
      taxRatePpm: 100_000,
    });
  });
  afterAll(() => app.stop());

  const subscribe = async (coupon?: string) => {
    const customer = (await app.api('POST', '/v1/customers', { email: `c${Math.random()}@example.com` })).body
      .id;
    const sub = await app.api('POST', '/v1/subscriptions', { customer, plan, ...(coupon ? { coupon } : {}) });
    expect(sub.status).toBe(201);
    return sub.body;
  };

  it('creates (201), reads, lists by active and updates an add-on; its price never changes (422); 404', async () => {
    const created = await app.api('POST', '/v1/add-ons', {
      name: 'Extra storage',
      description: '100 GB',
      currency: 'USD',
      amount: 500,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      object: 'add_on',
      name: 'Extra storage',
      description: '100 GB',
      currency: 'USD',
      amount: 500,
      active: true,
    });
    expect(created.body.id).toMatch(/^addon_/);
    const id = created.body.id;
    expect((await app.api('GET', `/v1/add-ons/${id}`)).body).toEqual(created.body);
    const updated = await app.api('POST', `/v1/add-ons/${id}`, { name: 'Storage', description: null });
    expect(updated.body).toMatchObject({ name: 'Storage', description: null, amount: 500 });
    const priced = await app.api('POST', `/v1/add-ons/${id}`, { amount: 1 });
    expect(priced.status).toBe(422);
    expect(Object.keys(priced.body.error.fields)).toEqual(['amount']);
    const bad = await app.api('POST', '/v1/add-ons', { name: '', currency: 'usd', amount: -1 });
    expect(bad.status).toBe(422);
    expect(Object.keys(bad.body.error.fields)).toEqual(expect.arrayContaining(['name', 'amount']));
    const off = (await app.api('POST', '/v1/add-ons', { name: 'Old', currency: 'USD', amount: 1 })).body;
    await app.api('POST', `/v1/add-ons/${off.id}`, { active: false });
    const active = await app.api('GET', '/v1/add-ons?active=true');
    expect(active.body.data.map((a: { id: string }) => a.id)).toEqual([id]);
    expect((await app.api('GET', '/v1/add-ons/addon_nope')).status).toBe(404);
    expect(await actionsOf(app, id)).toEqual(['add_on.created', 'add_on.updated']);
  });

  it("bills a subscription's add-ons on its next invoices (quantity × amount, the plan's tax, not discounted), then stops when removed", async () => {
    const storage = (await app.api('POST', '/v1/add-ons', { name: 'Storage', currency: 'USD', amount: 300 }))
      .body;
    await app.api('POST', '/v1/coupons', { code: 'HALF', percent_off: 50, duration: 'FOREVER' });
    const sub = await subscribe('HALF');
    const added = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: storage.id,
      quantity: 2,
    });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({
      object: 'subscription_add_on',
      subscription: sub.id,
      add_on: { id: storage.id, amount: 300 },
      quantity: 2,
    });
    expect(added.body.id).toMatch(/^sao_/);
    const changed = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: storage.id,
      quantity: 3,
    });
    expect(changed.status).toBe(200);
    expect(changed.body.quantity).toBe(3);
    const listed = await app.api('GET', `/v1/subscriptions/${sub.id}/add-ons`);
    expect(listed.body.data).toMatchObject([{ add_on: { id: storage.id }, quantity: 3 }]);

    // Period 1: the plan 2000 less 50% (1000), plus 3 × 300 (not discounted), all at 10%.
    const end = new Date(sub.current_period_end);
    const renewed = await renewSubscription(app.runtime.db, 'system', sub.id, end);
    const invoice = (await app.api('GET', `/v1/invoices/${renewed!.invoices[0]!.id}`)).body;
    expect(invoice).toMatchObject({ subtotal: 1900, tax: 190, total: 2090 });
    expect(invoice.lines).toMatchObject([
      { type: 'CHARGE', amount: 2000 },
      { type: 'CREDIT', amount: -1000 },
      { type: 'CHARGE', unit_amount: 300, quantity: 3, amount: 900, tax_amount: 90, plan: null },
    ]);

    const removed = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: storage.id,
      quantity: 0,
    });
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ quantity: 0, deleted: true });
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}/add-ons`)).body.data).toEqual([]);
    const next = await renewSubscription(
      app.runtime.db,
      'system',
      sub.id,
      new Date(renewed!.subscription.current_period_end!),
    );
    expect((await app.api('GET', `/v1/invoices/${next!.invoices[0]!.id}`)).body.subtotal).toBe(1000);
    expect(await actionsOf(app, sub.id)).toEqual(
      expect.arrayContaining([
        'subscription.add_on_set',
        'subscription.add_on_set',
        'subscription.add_on_set',
      ]),
    );
  });

  it('charges an add-on added mid-period for the rest of it (proration, as the change endpoint); the preview shows the same figures and writes nothing; a bad proration is 422', async () => {
    const backup = (await app.api('POST', '/v1/add-ons', { name: 'Backup', currency: 'USD', amount: 450 }))
      .body;
    const sub = await subscribe();
    const invoices = async () =>
      (
        await app.runtime.db
          .selectFrom('invoices')
          .select('id')
          .where('subscription_id', '=', sub.id)
          .execute()
      ).length;
    const before = await invoices();
    const bad = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: backup.id,
      quantity: 2,
      proration: 'later',
    });
    expect(bad.status).toBe(422);
    expect(Object.keys(bad.body.error.fields)).toEqual(['proration']);
    // `full`: the whole period whenever it is set, 2 × 450 = 900 at 10%: 90, 990.
    const body = { add_on: backup.id, quantity: 2, proration: 'full' };
    const preview = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons/preview`, body);
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({ object: 'invoice_preview', subtotal: 2000 + 900, tax: 290 });
    expect(preview.body.proration).toMatchObject({
      object: 'invoice_preview',
      billing_reason: 'subscription_update',
      subtotal: 900,
      tax: 90,
      total: 990,
      lines: [{ type: 'CHARGE', amount: 900, tax_amount: 90, quantity: 2, add_on: backup.id, plan: null }],
    });
    expect(await invoices()).toBe(before);
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}/add-ons`)).body.data).toEqual([]);
    const added = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, body);
    expect(added.status).toBe(201);
    expect(added.body.invoice).toMatch(/^inv_/);
    const invoice = (await app.api('GET', `/v1/invoices/${added.body.invoice}`)).body;
    expect(invoice).toMatchObject({
      status: 'OPEN',
      billing_reason: 'subscription_update',
      subtotal: preview.body.proration.subtotal,
      tax: preview.body.proration.tax,
      total: preview.body.proration.total,
    });
    // Removing it gives no credit: no invoice, nothing written but the removal.
    const removed = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: backup.id,
      quantity: 0,
    });
    expect(removed.body).toMatchObject({ deleted: true, invoice: null });
    expect(await invoices()).toBe(before + 1);
  });

  it('refuses another currency (422), an inactive add-on (409), removing one not there (422), and unknown ids (404)', async () => {
    const sub = await subscribe();
    const euros = (await app.api('POST', '/v1/add-ons', { name: 'EU', currency: 'EUR', amount: 100 })).body;
    const wrong = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: euros.id,
      quantity: 1,
    });
    expect(wrong.status).toBe(422);
    expect(Object.keys(wrong.body.error.fields)).toEqual(['add_on']);
    const old = (await app.api('POST', '/v1/add-ons', { name: 'Old', currency: 'USD', amount: 100 })).body;
    await app.api('POST', `/v1/add-ons/${old.id}`, { active: false });
    const inactive = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: old.id,
      quantity: 1,
    });
    expect(inactive.status).toBe(409);
    expect(inactive.body.error.code).toBe('add_on_inactive');
    const none = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: old.id,
      quantity: 0,
    });
    expect(none.status).toBe(422);
    expect(
      (await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, { add_on: 'addon_nope', quantity: 1 }))
        .status,
    ).toBe(404);
    expect(
      (await app.api('POST', '/v1/subscriptions/sub_nope/add-ons', { add_on: old.id, quantity: 1 })).status,
    ).toBe(404);
    expect((await app.api('GET', '/v1/subscriptions/sub_nope/add-ons')).status).toBe(404);
    expect(
      (await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, { add_on: old.id, quantity: -1 })).status,
    ).toBe(422);
    expect((await app.runtime.db.selectFrom('subscription_add_ons').select('id').execute()).length).toBe(0);
  });

  it('previews a subscription not renewed again as the change goes through: the proration alone (no next invoice), to cancel_at when one is scheduled', async () => {
    const backup = (await app.api('POST', '/v1/add-ons', { name: 'Backup', currency: 'USD', amount: 3000 }))
      .body;
    const body = { add_on: backup.id, quantity: 1, proration: 'full' };
    const previewAndSet = async (id: string) => {
      const preview = await app.api('POST', `/v1/subscriptions/${id}/add-ons/preview`, body);
      const set = await app.api('POST', `/v1/subscriptions/${id}/add-ons`, body);
      expect([preview.status, set.status]).toEqual([200, 201]);
      const invoice = (await app.api('GET', `/v1/invoices/${set.body.invoice}`)).body;
      return { preview: preview.body, invoice };
    };

    // Cancelled at the period's end: `full` is the whole period, 3000 + 10% = 3300, previewed so.
    const ending = await subscribe();
    expect(
      (await app.api('POST', `/v1/subscriptions/${ending.id}/cancel`, { when: 'period_end' })).status,
    ).toBe(200);
    const atEnd = await previewAndSet(ending.id);
    expect(atEnd.preview).toMatchObject({
      object: 'subscription_add_on_preview',
      renews: false,
      proration: { subtotal: 3000, tax: 300, total: 3300, period_end: ending.current_period_end },
    });
    expect(atEnd.invoice).toMatchObject({ total: 3300, period_end: ending.current_period_end });

    // Cancelled at a date 10 days into the period: `full` is the period's start to then,
    // 3000 × 10 days / the period's days (half up) + 10%: what the change invoices, to cancel_at.
    const dated = await subscribe();
    const cancelAt = new Date(Date.parse(dated.current_period_start) + 10 * 86_400_000).toISOString();
    expect(
      (await app.api('POST', `/v1/subscriptions/${dated.id}/cancel`, { when: 'date', cancel_at: cancelAt }))
        .status,
    ).toBe(200);
    const atDate = await previewAndSet(dated.id);
    expect(atDate.preview).toMatchObject({ object: 'subscription_add_on_preview', renews: false });
    expect(atDate.preview.proration).toMatchObject({
      subtotal: atDate.invoice.subtotal,
      tax: atDate.invoice.tax,
      total: atDate.invoice.total,
      period_end: cancelAt,
    });
    expect(atDate.invoice.period_end).toBe(cancelAt);
    expect(atDate.invoice.total).toBeLessThan(3300);
  });
});
