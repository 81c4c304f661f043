import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { renewDueSubscriptions } from '../../src/billing/renewal.ts';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import type { TestApp } from '../support/app.ts';
import { actionsOf } from '../support/collection.ts';
import { openInvoice, stripeChargeSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { insertPlan } from '../support/plans.ts';

const DAY = 86_400_000;

/**
 * The seeds' delete and close operations as archival (#26 item 5): closing and reopening a customer,
 * detaching a payment method, deleting a usage limit, removing a redeemed coupon. Each keeps its row,
 * logs an activity and refuses with a 409 code where production billing would.
 */
describe('archival: close/reopen customers, detach payment methods, delete usage limits, remove coupons', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => stopOfflineTestApp(app));

  const db = () => app.runtime.db;
  const sweep = (now: Date) => chargeDueInvoices(db(), 'scheduler', app.runtime, app.config, now);

  async function subscribed(o: { coupon?: string } = {}) {
    const customer = (await app.api('POST', '/v1/customers', { email: 'sub@example.com' })).body;
    const method = (
      await app.api('POST', '/v1/payment-methods', {
        customer: customer.id,
        gateway: 'stripe',
        gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
        gateway_customer_id: 'cus_SRCIP043oBsNpV',
      })
    ).body;
    const plan = await insertPlan(db());
    const subscription = await app.api('POST', '/v1/subscriptions', {
      customer: customer.id,
      plan,
      ...(o.coupon ? { coupon: o.coupon } : {}),
    });
    expect(subscription.status).toBe(201);
    return { customer, method, plan, subscription: subscription.body };
  }

  it('closes a customer: no new invoice, finalization, subscription or charge, the sweep skips their invoices; reopening collects them', async () => {
    const { customer, invoice } = await openInvoice(app, { amount: 1200 });
    const draft = (
      await app.api('POST', '/v1/invoices', {
        customer: customer.id,
        currency: 'eur',
        lines: [{ description: 'Setup', amount: 500 }],
      })
    ).body;
    await db()
      .updateTable('invoices')
      .set({ charge_at: new Date(Date.now() - 1000) })
      .where('id', '=', invoice.id)
      .execute();

    const closed = await app.api('POST', `/v1/customers/${customer.id}/close`);
    expect(closed.status).toBe(200);
    expect(closed.body.closed_at).toEqual(expect.any(String));
    const row = await db()
      .selectFrom('customers')
      .select('closed_at')
      .where('id', '=', customer.id)
      .executeTakeFirstOrThrow();
    expect(row.closed_at).toBeInstanceOf(Date);

    const refusals = await Promise.all([
      app.api('POST', '/v1/invoices', {
        customer: customer.id,
        currency: 'eur',
        lines: [{ description: 'More', amount: 100 }],
      }),
      app.api('POST', `/v1/invoices/${draft.id}/finalize`),
      app.api('POST', `/v1/invoices/${invoice.id}/charge`, {}),
      app.api('POST', '/v1/subscriptions', { customer: customer.id, plan: await insertPlan(db()) }),
      app.api('POST', `/v1/customers/${customer.id}/close`),
    ]);
    expect(refusals.map((r) => [r.status, r.body.error.code])).toEqual([
      [409, 'customer_closed'],
      [409, 'customer_closed'],
      [409, 'customer_closed'],
      [409, 'customer_closed'],
      [409, 'customer_closed'],
    ]);
    // The collection sweep does not even claim the closed customer's due invoice.
    const charge = stripeChargeSucceeds();
    const { charged } = await sweep(new Date());
    expect(charged.filter((c) => c.invoiceId === invoice.id)).toEqual([]);
    expect(charge.seen).toHaveLength(0);
    const kept = await app.api('GET', `/v1/invoices/${invoice.id}`);
    expect([kept.status, kept.body.status, kept.body.charge_at]).toEqual([200, 'OPEN', expect.any(String)]);
    expect((await app.api('GET', `/v1/invoices/${draft.id}`)).body.status).toBe('DRAFT');
    expect(
      await db().selectFrom('transactions').select('id').where('customer_id', '=', customer.id).execute(),
    ).toEqual([]);
    // Reads and updates keep working while closed.
    expect((await app.api('GET', `/v1/customers/${customer.id}`)).body.closed_at).toBe(closed.body.closed_at);
    expect((await app.api('POST', `/v1/customers/${customer.id}`, { name: 'Ada L.' })).status).toBe(200);

    const reopened = await app.api('POST', `/v1/customers/${customer.id}/reopen`);
    expect([reopened.status, reopened.body.closed_at]).toEqual([200, null]);
    const again = await app.api('POST', `/v1/customers/${customer.id}/reopen`);
    expect([again.status, again.body.error.code]).toEqual([409, 'customer_not_closed']);
    const after = await sweep(new Date());
    expect(after.charged.find((c) => c.invoiceId === invoice.id)?.outcome).toBe('succeeded');
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.status).toBe('PAID');
    expect(await actionsOf(app, customer.id)).toEqual([
      'customer.created',
      'customer.closed',
      'customer.updated',
      'customer.reopened',
    ]);
    expect((await app.api('POST', '/v1/customers/cus_nope/close')).status).toBe(404);
    expect((await app.api('POST', `/v1/customers/${customer.id}/close`, { now: true })).status).toBe(422);
  });

  it('refuses to close a customer with a live subscription (409 customer_has_subscriptions); closes once it is cancelled', async () => {
    const { customer, subscription } = await subscribed();
    const refused = await app.api('POST', `/v1/customers/${customer.id}/close`);
    expect([refused.status, refused.body.error.code]).toEqual([409, 'customer_has_subscriptions']);
    expect(refused.body.error.message).toContain(subscription.id);
    expect((await app.api('GET', `/v1/customers/${customer.id}`)).body.closed_at).toBeNull();

    expect((await app.api('POST', `/v1/subscriptions/${subscription.id}/cancel`, {})).status).toBe(200);
    expect((await app.api('POST', `/v1/customers/${customer.id}/close`)).status).toBe(200);
    // The renewal sweep creates nothing for a closed customer.
    const invoicesBefore = await db()
      .selectFrom('invoices')
      .select('id')
      .where('customer_id', '=', customer.id)
      .execute();
    await renewDueSubscriptions(db(), 'scheduler', new Date(Date.now() + 40 * DAY));
    expect(
      await db().selectFrom('invoices').select('id').where('customer_id', '=', customer.id).execute(),
    ).toEqual(invoicesBefore);
  });

  it('detaches a payment method (kept, never charged again); refuses while it pays a live subscription', async () => {
    const { customer, method, subscription } = await subscribed();
    // The default pays the subscription (which names no method of its own).
    expect(subscription.payment_method).toBeNull();
    const inUse = await app.api('POST', `/v1/payment-methods/${method.id}/detach`);
    expect([inUse.status, inUse.body.error.code]).toEqual([409, 'payment_method_in_use']);
    expect(inUse.body.error.message).toContain(subscription.id);

    const second = (
      await app.api('POST', '/v1/payment-methods', {
        customer: customer.id,
        gateway: 'stripe',
        gateway_token: 'pm_second',
        gateway_customer_id: 'cus_SRCIP043oBsNpV',
      })
    ).body;
    await app.api('POST', `/v1/subscriptions/${subscription.id}`, { payment_method: second.id });
    const secondInUse = await app.api('POST', `/v1/payment-methods/${second.id}/detach`);
    expect([secondInUse.status, secondInUse.body.error.code]).toEqual([409, 'payment_method_in_use']);

    const detached = await app.api('POST', `/v1/payment-methods/${method.id}/detach`);
    expect(detached.status).toBe(200);
    expect(detached.body).toMatchObject({ id: method.id, default: false, detached_at: expect.any(String) });
    const row = await db()
      .selectFrom('payment_methods')
      .selectAll()
      .where('id', '=', method.id)
      .executeTakeFirstOrThrow();
    expect([row.is_default, row.detached_at]).toEqual([false, expect.any(Date)]);
    // Read by id, not listed.
    expect((await app.api('GET', `/v1/payment-methods/${method.id}`)).body.detached_at).toBe(
      detached.body.detached_at,
    );
    const listed = await app.api('GET', `/v1/payment-methods?customer=${customer.id}`);
    expect(listed.body.data.map((p: { id: string }) => p.id)).toEqual([second.id]);
    // Never charged, never the default, never a subscription's again.
    const invoice = (
      await app.api('POST', '/v1/invoices', {
        customer: customer.id,
        currency: 'usd',
        lines: [{ description: 'Extra', amount: 300 }],
      })
    ).body;
    await app.api('POST', `/v1/invoices/${invoice.id}/finalize`);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, { payment_method: method.id });
    expect([charged.status, charged.body.error.code]).toEqual([409, 'payment_method_detached']);
    const makeDefault = await app.api('POST', `/v1/payment-methods/${method.id}`, { default: true });
    expect([makeDefault.status, makeDefault.body.error.code]).toEqual([409, 'payment_method_detached']);
    const onSubscription = await app.api('POST', `/v1/subscriptions/${subscription.id}`, {
      payment_method: method.id,
    });
    expect(onSubscription.status).toBe(422);
    // Again: the same object, nothing logged.
    expect((await app.api('POST', `/v1/payment-methods/${method.id}/detach`)).body).toEqual(detached.body);
    expect(await actionsOf(app, method.id)).toEqual(['payment_method.created', 'payment_method.detached']);
    expect((await app.api('POST', '/v1/payment-methods/pm_nope/detach')).status).toBe(404);
  });

  it('deletes a usage limit: kept and readable, no longer listed or acting, its slot free for a new one', async () => {
    const customer = (await app.api('POST', '/v1/customers', { email: 'limits@example.com' })).body;
    const limit = (
      await app.api('POST', '/v1/usage-limits', {
        customer: customer.id,
        amount: 5000,
        currency: 'usd',
        action: 'WARN',
      })
    ).body;
    const deleted = await app.api('POST', `/v1/usage-limits/${limit.id}/delete`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ id: limit.id, deleted_at: expect.any(String), amount: 5000 });
    expect((await app.api('GET', `/v1/usage-limits/${limit.id}`)).body.deleted_at).toBe(
      deleted.body.deleted_at,
    );
    expect((await app.api('GET', `/v1/usage-limits?customer=${customer.id}`)).body.data).toEqual([]);
    const update = await app.api('POST', `/v1/usage-limits/${limit.id}`, { amount: 100 });
    expect([update.status, update.body.error.code]).toEqual([409, 'usage_limit_deleted']);
    const replacement = await app.api('POST', '/v1/usage-limits', {
      customer: customer.id,
      amount: 9000,
      currency: 'usd',
      action: 'WARN',
    });
    expect(replacement.status).toBe(201);
    const duplicate = await app.api('POST', '/v1/usage-limits', {
      customer: customer.id,
      amount: 1,
      currency: 'usd',
      action: 'WARN',
    });
    expect([duplicate.status, duplicate.body.error.code]).toEqual([409, 'usage_limit_exists']);
    expect((await app.api('POST', `/v1/usage-limits/${limit.id}/delete`)).body).toEqual(deleted.body);
    expect(await actionsOf(app, limit.id)).toEqual(['usage_limit.created', 'usage_limit.deleted']);
    const rows = await db()
      .selectFrom('usage_limits')
      .select(['id', 'deleted_at'])
      .where('customer_id', '=', customer.id)
      .orderBy('id')
      .execute();
    expect(rows).toHaveLength(2);
    expect((await app.api('POST', '/v1/usage-limits/ul_nope/delete')).status).toBe(404);
  });

  it('removes a redeemed coupon: later invoices are not discounted, the first keeps its discount', async () => {
    const coupon = await app.api('POST', '/v1/coupons', {
      code: 'TENOFF',
      percent_off: 10,
      duration: 'FOREVER',
    });
    expect(coupon.status).toBe(201);
    const { customer, subscription } = await subscribed({ coupon: 'TENOFF' });
    const first = (await app.api('GET', `/v1/invoices/${subscription.latest_invoice}`)).body;
    expect(first.lines.map((l: { type: string; amount: number }) => [l.type, l.amount])).toEqual([
      ['CHARGE', 2000],
      ['CREDIT', -200],
    ]);
    const [redemption] = (await app.api('GET', `/v1/subscriptions/${subscription.id}/coupons`)).body.data;

    const removed = await app.api(
      'POST',
      `/v1/subscriptions/${subscription.id}/coupons/${redemption.id}/remove`,
    );
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({
      id: redemption.id,
      removed_at: expect.any(String),
      periods_applied: 1,
    });
    const listed = (await app.api('GET', `/v1/subscriptions/${subscription.id}/coupons`)).body.data;
    expect(listed.map((r: { removed_at: string | null }) => r.removed_at)).toEqual([removed.body.removed_at]);

    await renewDueSubscriptions(db(), 'scheduler', new Date(Date.now() + 32 * DAY));
    const invoices = await db()
      .selectFrom('invoices')
      .select(['id', 'total'])
      .where('subscription_id', '=', subscription.id)
      .orderBy('period_index')
      .execute();
    expect(invoices.map((i) => i.total)).toEqual([1800n, 2000n]);
    const second = (await app.api('GET', `/v1/invoices/${invoices[1]!.id}`)).body;
    expect(second.lines.map((l: { type: string }) => l.type)).toEqual(['CHARGE']);
    // The first invoice keeps its discount.
    expect((await app.api('GET', `/v1/invoices/${first.id}`)).body.total).toBe(1800);

    expect(
      (await app.api('POST', `/v1/subscriptions/${subscription.id}/coupons/${redemption.id}/remove`)).body,
    ).toEqual(removed.body);
    const log = await app.api('GET', `/v1/activities?customer=${customer.id}&limit=100`);
    const removals = log.body.data.filter((a: { action: string }) => a.action === 'coupon.removed');
    expect(removals.map((a: { data: unknown }) => a.data)).toEqual([
      { subscription: subscription.id, redemption: redemption.id, periods_applied: 1 },
    ]);
    // Not this subscription's redemption: 404; the same coupon cannot be redeemed on it again.
    const other = await subscribed();
    const wrong = await app.api(
      'POST',
      `/v1/subscriptions/${other.subscription.id}/coupons/${redemption.id}/remove`,
    );
    expect(wrong.status).toBe(404);
    const redeemAgain = await app.api('POST', `/v1/subscriptions/${subscription.id}/coupons`, {
      coupon: 'TENOFF',
    });
    expect([redeemAgain.status, redeemAgain.body.error.code]).toEqual([409, 'coupon_already_redeemed']);
  });
});
