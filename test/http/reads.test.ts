import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/db/ids.ts';
import type { TestApp } from '../support/app.ts';
import { actionsOf, customerWith } from '../support/collection.ts';
import { openInvoice, stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { insertPlan } from '../support/plans.ts';

describe('reading one resource by id, usage events and usage-limit updates', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterAll(() => stopOfflineTestApp(app));

  it('reads a transaction, refund, dispute and reconciliation exception by id; 404 with the envelope otherwise', async () => {
    const { invoice } = await openInvoice(app);
    stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.status).toBe(200);
    const transaction = charged.body.transaction;
    stripeRefundSucceeds('re_read_one');
    const refund = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 1000 });
    expect(refund.status).toBe(201);
    // Disputes and exceptions come from webhooks; the rows are enough to read them back.
    const disputeId = newId('dp');
    await app.runtime.db
      .insertInto('disputes')
      .values({
        id: disputeId,
        transaction_id: transaction.id,
        gateway: 'stripe',
        gateway_dispute_id: 'dp_gateway_1',
        amount: 4620n,
        currency: 'EUR',
        status: 'open',
        reason: 'fraudulent',
      })
      .execute();
    const exceptionId = newId('rex');
    await app.runtime.db
      .insertInto('reconciliation_exceptions')
      .values({
        id: exceptionId,
        kind: 'amount_mismatch',
        gateway: 'stripe',
        inbox_id: null,
        transaction_id: transaction.id,
        message: 'the gateway reports another amount',
      })
      .execute();

    const cases = [
      ['transactions', transaction.id, 'transaction'],
      ['refunds', refund.body.id, 'refund'],
      ['disputes', disputeId, 'dispute'],
      ['reconciliation-exceptions', exceptionId, 'reconciliation_exception'],
    ] as const;
    for (const [path, id, resource] of cases) {
      const one = await app.api('GET', `/v1/${path}/${id}`);
      expect(one.status).toBe(200);
      // The same shape as the list's item.
      const list = await app.api('GET', `/v1/${path}`);
      expect(one.body).toEqual(list.body.data.find((x: { id: string }) => x.id === id));
      const missing = await app.api('GET', `/v1/${path}/${id.split('_')[0]}_nope`);
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({
        error: {
          type: 'not_found',
          code: `${resource}_not_found`,
          message: `no ${resource.replaceAll('_', ' ')} with id ${id.split('_')[0]}_nope`,
          fields: {},
        },
      });
    }
    expect((await app.api('GET', `/v1/transactions/${transaction.id}`)).body).toMatchObject({
      object: 'transaction',
      status: 'succeeded',
      amount: 4620,
      currency: 'EUR',
    });
    expect((await app.api('GET', `/v1/refunds/${refund.body.id}`)).body).toMatchObject({ amount: 1000 });
  });

  describe('usage', () => {
    let subscriptionId: string;
    let customerId: string;
    beforeAll(async () => {
      const plan = await insertPlan(app.runtime.db, {
        price: { model: 'FLAT_FEE', amount: 0 },
        metered: [{ code: 'calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 3 } }],
      });
      customerId = (await customerWith(app)).customer.id;
      const subscription = await app.api('POST', '/v1/subscriptions', { customer: customerId, plan });
      expect(subscription.status).toBe(201);
      subscriptionId = subscription.body.id;
    });

    it('lists usage events of a subscription, newest first, with cursor pagination; 404 and 422 for bad filters', async () => {
      const sent = [];
      for (let i = 0; i < 3; i++) {
        const event = await app.api('POST', '/v1/usage-events', {
          event_id: `evt-list-${i}`,
          subscription: subscriptionId,
          code: 'calls',
          value: i + 1,
        });
        expect(event.status).toBe(201);
        sent.push(event.body);
      }
      const first = await app.api('GET', `/v1/usage-events?subscription=${subscriptionId}&limit=2`);
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ object: 'list', has_more: true });
      expect(first.body.data).toEqual([sent[2], sent[1]]);
      const rest = await app.api(
        'GET',
        `/v1/usage-events?subscription=${subscriptionId}&limit=2&starting_after=${sent[1].id}`,
      );
      expect(rest.body).toMatchObject({ data: [sent[0]], has_more: false });
      const oldest = await app.api('GET', `/v1/usage-events?customer=${customerId}&sort=created`);
      expect(oldest.body.data.map((e: { event_id: string }) => e.event_id)).toEqual([
        'evt-list-0',
        'evt-list-1',
        'evt-list-2',
      ]);

      const missing = await app.api('GET', '/v1/usage-events?subscription=sub_nope');
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe('subscription_not_found');
      const bad = await app.api('GET', '/v1/usage-events?subscription=cus_x&limit=0');
      expect(bad.status).toBe(422);
      expect(Object.keys(bad.body.error.fields).sort()).toEqual(['limit', 'subscription']);
    });

    it('reads and updates a usage limit, logging usage_limit.updated; 404, 422 and 409 change nothing', async () => {
      const create = (amount: number, action: string) =>
        app.api('POST', '/v1/usage-limits', { customer: customerId, amount, currency: 'USD', action });
      const warn = (await create(5000, 'WARN')).body;
      await create(9000, 'SUSPEND');
      expect((await app.api('GET', `/v1/usage-limits/${warn.id}`)).body).toEqual(warn);

      const updated = await app.api('POST', `/v1/usage-limits/${warn.id}`, { amount: 7000 });
      expect(updated.status).toBe(200);
      expect(updated.body).toEqual({ ...warn, amount: 7000 });
      expect((await app.api('GET', `/v1/usage-limits/${warn.id}`)).body.amount).toBe(7000);
      // Nothing changed: nothing logged.
      expect((await app.api('POST', `/v1/usage-limits/${warn.id}`, { amount: 7000 })).status).toBe(200);
      expect(await actionsOf(app, warn.id)).toEqual(['usage_limit.created', 'usage_limit.updated']);
      const log = await app.api('GET', `/v1/activities?resource=${warn.id}`);
      expect(log.body.data[1]).toMatchObject({
        customer: customerId,
        data: { amount: { from: '5000', to: '7000' } },
      });

      const unchanged = async () =>
        app.runtime.db.selectFrom('usage_limits').selectAll().orderBy('id').execute();
      const before = await unchanged();
      const taken = await app.api('POST', `/v1/usage-limits/${warn.id}`, { action: 'SUSPEND' });
      expect(taken.status).toBe(409);
      expect(taken.body.error.code).toBe('usage_limit_exists');
      const bad = await app.api('POST', `/v1/usage-limits/${warn.id}`, { amount: 0, action: 'EMAIL' });
      expect(bad.status).toBe(422);
      expect(Object.keys(bad.body.error.fields).sort()).toEqual(['action', 'amount']);
      const unknownField = await app.api('POST', `/v1/usage-limits/${warn.id}`, { currency: 'EUR' });
      expect(unknownField.status).toBe(422);
      const missing = await app.api('POST', '/v1/usage-limits/ul_nope', { amount: 1 });
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe('usage_limit_not_found');
      expect((await app.api('GET', '/v1/usage-limits/ul_nope')).status).toBe(404);
      expect(await unchanged()).toEqual(before);
    });
  });
});
