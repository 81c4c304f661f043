import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCoupon } from '../../src/billing/coupons.ts';
import { renewDueSubscriptions } from '../../src/billing/renewal.ts';
import { createSubscription, reactivateSubscription } from '../../src/billing/subscriptions.ts';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import { ValidationError } from '../../src/errors.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { actionsOf, customerWith } from '../support/collection.ts';

/**
 * Usage limits are the customer's, per period (PRODUCT §5): the limit compares the customer's usage
 * cost in the period holding the event, never usage of several periods added together (the renewal
 * sweep behind), and counts and acts on every subscription of the customer in its currency. And the
 * 10^15 bound of each later invoice while the sweep is behind is counted with that invoice's own fees.
 */
describe('usage limits per customer and period', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  afterAll(() => app.stop());

  /** Records `value` API calls at `timestamp`, on the simulated clock at that moment. */
  const record = (subscriptionId: string, eventId: string, value: number, timestamp: string) =>
    recordUsageEvent(
      app.runtime.db,
      'system',
      { eventId, subscriptionId, code: 'api_calls', value: BigInt(value), timestamp: new Date(timestamp) },
      new Date(timestamp),
    );

  /** A monthly plan of `fee` and `perCall` a call (PER_UNIT, no tax) in `currency`. */
  async function planOf(currency: string, fee: number, perCall: number, extra: Record<string, unknown> = {}) {
    const product = await app.api('POST', '/v1/products', { name: 'API' });
    const plan = await app.api('POST', '/v1/plans', {
      product: product.body.id,
      name: `API ${currency} ${fee}/${perCall}`,
      currency,
      interval: 'MONTH',
      price: { model: 'FLAT_FEE', amount: fee },
      metered: [
        { code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: perCall } },
      ],
      ...extra,
    });
    expect(plan.status).toBe(201);
    return plan.body.id as string;
  }
  /** A subscription of `customerId` (a new customer when omitted) to `planId` from 2027-03-01. */
  async function subscribe(
    planId: string,
    customerId?: string,
    extra: { couponCode?: string; repeat?: number } = {},
  ) {
    const customer = customerId ?? ((await customerWith(app)).customer.id as string);
    const start = new Date('2027-03-01T00:00:00Z');
    const { subscription } = await createSubscription(
      app.runtime.db,
      'system',
      { customerId: customer, planId, startAt: start, ...extra },
      start,
    );
    return { customerId: customer, id: subscription.id };
  }
  const limitOf = async (
    customerId: string,
    currency: string,
    amount: number,
    action: 'WARN' | 'SUSPEND',
  ) => {
    const limit = await app.api('POST', '/v1/usage-limits', {
      customer: customerId,
      amount,
      currency,
      action,
    });
    expect(limit.status).toBe(201);
    return limit.body.id as string;
  };
  const statusOf = async (id: string) =>
    await app.runtime.db
      .selectFrom('subscriptions')
      .select(['status', 'current_period_index'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
  /** The limit's activities after its creation: [action, period_start, estimate]. */
  const actedOf = async (limitId: string) =>
    (
      await app.runtime.db
        .selectFrom('activities')
        .select(['action', 'data'])
        .where('resource_id', '=', limitId)
        .where('action', '!=', 'usage_limit.created')
        .orderBy('sequence')
        .execute()
    ).map((a) => [a.action, a.data.period_start, a.data.estimate]);

  it('SUSPEND (EUR) while the sweep is behind compares the limit with the period holding the event, not March and April added together', async () => {
    // EUR 10.00 a month + 1.00 a call; SUSPEND at 50.00 a period. 30 calls in March (30.00); the sweep
    // has not run on Apr 1: 30 calls on Apr 2 (30.00 in April). No period crossed 50.00.
    const plan = await planOf('EUR', 1000, 100);
    const { customerId, id } = await subscribe(plan);
    const limit = await limitOf(customerId, 'EUR', 5000, 'SUSPEND');
    await record(id, 'sus-lag-mar', 30, '2027-03-20T00:00:00Z');
    await record(id, 'sus-lag-apr', 30, '2027-04-02T00:00:00Z');
    // Before: suspended on 60.00 (March's 30.00 + April's 30.00), and renewed into April.
    expect(await statusOf(id)).toEqual({ status: 'ACTIVE', current_period_index: 0 });
    expect(await actedOf(limit)).toEqual([]);
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-02T01:00:00Z'));
    // 25 more calls in April: 55.00 in April crosses 50.00.
    await record(id, 'sus-lag-apr-2', 25, '2027-04-03T00:00:00Z');
    expect(await statusOf(id)).toEqual({ status: 'SUSPENDED', current_period_index: 1 });
    expect(await actedOf(limit)).toEqual([['usage_limit.suspended', '2027-04-01T00:00:00.000Z', '5500']]);
    const invoices = await app.runtime.db
      .selectFrom('invoices')
      .select(['period_index', 'currency', 'total'])
      .where('subscription_id', '=', id)
      .orderBy('period_index')
      .execute();
    // March 10.00; April 10.00 + March's 30 calls (30.00).
    expect(invoices.map((i) => [i.period_index, i.currency, i.total])).toEqual([
      [0, 'EUR', 1000n],
      [1, 'EUR', 4000n],
    ]);
  });

  it('WARN (JPY) while the sweep is behind warns on the period holding the event only', async () => {
    // JPY 1,000 a month + 100 a call; WARN at 5,000. 30 calls in March (3,000), sweep behind on Apr 1,
    // 30 calls on Apr 2 (3,000 in April): no warning. A late March event recorded on Apr 2 (25 calls,
    // March 5,500) warns for March; 25 more in April on Apr 3 (April 5,500) warns for April.
    const plan = await planOf('JPY', 1000, 100);
    const { customerId, id } = await subscribe(plan);
    const limit = await limitOf(customerId, 'JPY', 5000, 'WARN');
    await record(id, 'warn-lag-mar', 30, '2027-03-20T00:00:00Z');
    await record(id, 'warn-lag-apr', 30, '2027-04-02T00:00:00Z');
    // Before: warned for April on 6,000 (March's 3,000 + April's 3,000).
    expect(await actedOf(limit)).toEqual([]);
    await recordUsageEvent(
      app.runtime.db,
      'system',
      {
        eventId: 'warn-lag-mar-late',
        subscriptionId: id,
        code: 'api_calls',
        value: 25n,
        timestamp: new Date('2027-03-31T12:00:00Z'),
      },
      new Date('2027-04-02T00:30:00Z'),
    );
    expect(await actedOf(limit)).toEqual([['usage_limit.warning', '2027-03-01T00:00:00.000Z', '5500']]);
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-02T01:00:00Z'));
    await record(id, 'warn-lag-apr-2', 25, '2027-04-03T00:00:00Z');
    expect(await actedOf(limit)).toEqual([
      ['usage_limit.warning', '2027-03-01T00:00:00.000Z', '5500'],
      ['usage_limit.warning', '2027-04-01T00:00:00.000Z', '5500'],
    ]);
    expect(await statusOf(id)).toEqual({ status: 'ACTIVE', current_period_index: 1 });
  });

  it("a SUSPEND limit counts the customer's usage across subscriptions in its currency and suspends each of them; another currency is neither counted nor suspended", async () => {
    // EUR 10.00 + 1.00 a call on two subscriptions of one customer, and USD 10.00 + 1.00 a call on a
    // third; SUSPEND at EUR 50.00 and WARN at EUR 40.00. 30 calls on A (30.00), 25 on B (25.00):
    // the customer's EUR 55.00 crosses both. The USD subscription's 100 calls count for neither.
    const eur = await planOf('EUR', 1000, 100);
    const usd = await planOf('USD', 1000, 100);
    const a = await subscribe(eur);
    const b = await subscribe(eur, a.customerId);
    const c = await subscribe(usd, a.customerId);
    const suspend = await limitOf(a.customerId, 'EUR', 5000, 'SUSPEND');
    const warn = await limitOf(a.customerId, 'EUR', 4000, 'WARN');
    await record(c.id, 'cust-usd', 100, '2027-03-04T00:00:00Z');
    await record(a.id, 'cust-a', 30, '2027-03-05T00:00:00Z');
    expect(await actedOf(suspend)).toEqual([]);
    await record(b.id, 'cust-b', 25, '2027-03-06T00:00:00Z');
    // Before: only B (the subscription of the event) was suspended; A kept taking usage.
    expect(await statusOf(a.id)).toEqual({ status: 'SUSPENDED', current_period_index: 0 });
    expect(await statusOf(b.id)).toEqual({ status: 'SUSPENDED', current_period_index: 0 });
    expect(await statusOf(c.id)).toEqual({ status: 'ACTIVE', current_period_index: 0 });
    expect(await actedOf(suspend)).toEqual([['usage_limit.suspended', '2027-03-01T00:00:00.000Z', '5500']]);
    expect(await actedOf(warn)).toEqual([['usage_limit.warning', '2027-03-01T00:00:00.000Z', '5500']]);
    const suspensions = await app.runtime.db
      .selectFrom('activities')
      .select(['resource_id', 'data'])
      .where('action', '=', 'subscription.suspended')
      .where('resource_id', 'in', [a.id, b.id, c.id])
      .execute();
    expect(suspensions.map((s) => s.resource_id).sort()).toEqual([a.id, b.id].sort());
    // More usage in March on A: the limits acted for March already.
    await record(a.id, 'cust-a-2', 10, '2027-03-07T00:00:00Z');
    expect(await actionsOf(app, suspend)).toEqual(['usage_limit.created', 'usage_limit.suspended']);
    expect(await actionsOf(app, warn)).toEqual(['usage_limit.created', 'usage_limit.warning']);
  });

  it('events racing on two subscriptions of one customer across a SUSPEND limit suspend both once (EUR)', async () => {
    // EUR 10.00 + 1.00 a call on two subscriptions; SUSPEND at 50.00. 4 events of 10 calls on each,
    // concurrently: 80.00 in March, the limit crossed once, both suspended, no deadlock. Eight at once,
    // within the app's pool of 10 connections: more would wait for a connection, which on a busy
    // machine can outlast the pool's 5 s connection timeout while the events queue on their locks.
    const eur = await planOf('EUR', 1000, 100);
    const a = await subscribe(eur);
    const b = await subscribe(eur, a.customerId);
    const limit = await limitOf(a.customerId, 'EUR', 5000, 'SUSPEND');
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        record(i % 2 === 0 ? a.id : b.id, `race-${i}`, 10, `2027-03-05T00:00:${String(i).padStart(2, '0')}Z`),
      ),
    );
    expect(await statusOf(a.id)).toEqual({ status: 'SUSPENDED', current_period_index: 0 });
    expect(await statusOf(b.id)).toEqual({ status: 'SUSPENDED', current_period_index: 0 });
    expect(await actionsOf(app, limit)).toEqual(['usage_limit.created', 'usage_limit.suspended']);
    const estimate = await app.api('GET', `/v1/customers/${a.customerId}/usage-estimate`);
    expect(estimate.body.totals).toEqual([{ currency: 'EUR', amount: 8000 }]);
  });

  it("a SUSPEND limit over siblings on another billing anchor acts once in each one's period: no empty second suspension, a sibling reactivated by hand stays active (EUR)", async () => {
    // EUR 10.00 a month + 1.00 a call; SUSPEND at 50.00. A from Mar 1 (periods on the 1st), B from
    // Feb 15 (periods on the 15th). 25 calls on B on Mar 4 (25.00 in B's period to Mar 15), 30 on A on
    // Mar 5 (30.00 in A's March): 55.00 suspends both.
    const eur = await planOf('EUR', 1000, 100);
    const a = await subscribe(eur);
    const feb15 = new Date('2027-02-15T00:00:00Z');
    const b = (
      await createSubscription(
        app.runtime.db,
        'system',
        { customerId: a.customerId, planId: eur, startAt: feb15 },
        feb15,
      )
    ).subscription.id;
    const limit = await limitOf(a.customerId, 'EUR', 5000, 'SUSPEND');
    await record(b, 'anchor-b-1', 25, '2027-03-04T00:00:00Z');
    await record(a.id, 'anchor-a-1', 30, '2027-03-05T00:00:00Z');
    expect((await statusOf(a.id)).status).toBe('SUSPENDED');
    expect((await statusOf(b)).status).toBe('SUSPENDED');
    const suspendedLog = async () =>
      (
        await app.runtime.db
          .selectFrom('activities')
          .select('data')
          .where('resource_id', '=', limit)
          .where('action', '=', 'usage_limit.suspended')
          .orderBy('sequence')
          .execute()
      ).map((x) => [x.data.estimate, [...(x.data.subscriptions as string[])].sort()]);
    expect(await suspendedLog()).toEqual([['5500', [a.id, b].sort()]]);
    // 5 calls on B, suspended, on Mar 6 (60.00): nothing more to suspend. Before: a second
    // usage_limit.suspended naming no subscription (claimed for B's period from Feb 15).
    await record(b, 'anchor-b-2', 5, '2027-03-06T00:00:00Z');
    expect(await suspendedLog()).toEqual([['5500', [a.id, b].sort()]]);
    // B reactivated by hand on Mar 7, 1 call on Mar 8 (61.00): the limit acted in B's period already
    // (on Mar 5), as it would on the same anchor. Before: B suspended again at once.
    await reactivateSubscription(app.runtime.db, 'system', b, new Date('2027-03-07T00:00:00Z'));
    await record(b, 'anchor-b-3', 1, '2027-03-08T00:00:00Z');
    expect((await statusOf(b)).status).toBe('ACTIVE');
    expect(await suspendedLog()).toEqual([['5500', [a.id, b].sort()]]);
    // B's next period from Mar 15: its renewal bills 10.00 + its 31 calls (31.00) = 41.00; 50 calls on
    // Mar 16 (A's March 30.00 + B's 50.00 = 80.00): the limit acts in B's new period, suspending B.
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-03-15T00:10:00Z'));
    await record(b, 'anchor-b-4', 50, '2027-03-16T00:00:00Z');
    expect((await statusOf(b)).status).toBe('SUSPENDED');
    expect(await suspendedLog()).toEqual([
      ['5500', [a.id, b].sort()],
      ['8000', [b]],
    ]);
    const invoices = await app.runtime.db
      .selectFrom('invoices')
      .select(['period_index', 'total'])
      .where('subscription_id', '=', b)
      .orderBy('period_index')
      .execute();
    expect(invoices.map((i) => [i.period_index, i.total])).toEqual([
      [0, 1000n],
      [1, 4100n],
    ]);
  });

  it('a sibling on the same anchor reactivated by hand is not suspended again in the period the limit acted in (EUR)', async () => {
    // EUR 10.00 + 1.00 a call, both from Mar 1; SUSPEND at 50.00: 30 calls on A, 25 on B suspend both;
    // B reactivated on Mar 7, 10 calls on Mar 8 (65.00): the limit acted for March; B stays ACTIVE.
    const eur = await planOf('EUR', 1000, 100);
    const a = await subscribe(eur);
    const b = await subscribe(eur, a.customerId);
    const limit = await limitOf(a.customerId, 'EUR', 5000, 'SUSPEND');
    await record(a.id, 'same-a', 30, '2027-03-05T00:00:00Z');
    await record(b.id, 'same-b', 25, '2027-03-06T00:00:00Z');
    expect((await statusOf(a.id)).status).toBe('SUSPENDED');
    await reactivateSubscription(app.runtime.db, 'system', b.id, new Date('2027-03-07T00:00:00Z'));
    await record(b.id, 'same-b-2', 10, '2027-03-08T00:00:00Z');
    expect(await statusOf(b.id)).toEqual({ status: 'ACTIVE', current_period_index: 0 });
    expect(await statusOf(a.id)).toEqual({ status: 'SUSPENDED', current_period_index: 0 });
    expect(await actionsOf(app, limit)).toEqual(['usage_limit.created', 'usage_limit.suspended']);
  });

  it('while the sweep is behind, a later invoice is bounded with its own fees: a coupon ending before it does not hide them (JPY)', async () => {
    // JPY 2,000,000 a month + 1,000,000 a call, 100% off for 2 periods (March, April). The sweep has not
    // run on Apr 1: 999,999,999 calls on Apr 2 (999,999,999,000,000) go on May's invoice, with May's
    // full fee 2,000,000: 1,000,000,001,000,000, beyond 10^15.
    const plan = await planOf('JPY', 2_000_000, 1_000_000);
    await createCoupon(app.runtime.db, 'system', {
      code: 'FREE2LAG',
      percentOffPpm: 1_000_000,
      duration: 'REPEATING',
      durationInPeriods: 2,
    });
    const { id } = await subscribe(plan, undefined, { couponCode: 'FREE2LAG' });
    const error = await record(id, 'coupon-lag-apr', 999_999_999, '2027-04-02T00:00:00Z').catch((e) => e);
    // Before: stored (bounded with April's fees, 0), and May's renewal could never invoice it.
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.fields.value).toMatch(/would total 1000000001000000 minor units .*its fees: 2000000/);
    expect(
      await app.runtime.db
        .selectFrom('usage_events')
        .select('id')
        .where('subscription_id', '=', id)
        .execute(),
    ).toEqual([]);
    // 999,997,999 calls fit: May's invoice 999,997,999,000,000 + 2,000,000 = 999,998,001,000,000.
    expect((await record(id, 'coupon-lag-apr-fit', 999_997_999, '2027-04-02T00:00:00Z')).created).toBe(true);
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-02T01:00:00Z'));
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-05-01T00:10:00Z'));
    const invoices = await app.runtime.db
      .selectFrom('invoices')
      .select(['period_index', 'currency', 'total'])
      .where('subscription_id', '=', id)
      .orderBy('period_index')
      .execute();
    // March and April free (the coupon), May: its fee and April's usage, each renewal invoiced.
    expect(invoices.map((i) => [i.period_index, i.currency, i.total])).toEqual([
      [0, 'JPY', 0n],
      [1, 'JPY', 0n],
      [2, 'JPY', 999_998_001_000_000n],
    ]);
  });

  it("while the sweep is behind, the 422 names the later invoice's own usage and the period it covers, not all usage up to its end (JPY)", async () => {
    // JPY 1,000 a month + 1,000,000 a call. 400,000,000 calls in March (4 × 10^14, on April's invoice);
    // the sweep has not run on Apr 1: 1,000,000,000 calls on Apr 2 (10^15) go on May's invoice with
    // May's fee: 10^15 + 1,000, beyond 10^15. The usage not billed yet up to May 1 is 1.4 × 10^15;
    // May's invoice bills April's 10^15 of it.
    const plan = await planOf('JPY', 1000, 1_000_000);
    const { id } = await subscribe(plan);
    await record(id, 'msg-lag-mar', 400_000_000, '2027-03-20T00:00:00Z');
    const error = await record(id, 'msg-lag-apr', 1_000_000_000, '2027-04-02T00:00:00Z').catch((e) => e);
    expect(error).toBeInstanceOf(ValidationError);
    // Before: "the usage not billed yet up to 2027-05-01T00:00:00.000Z: 1000000000000000", which is
    // 1.4 × 10^15.
    expect(error.fields.value).toBe(
      'with it, the invoice billing it would total 1000000000001000 minor units (its usage, of the period from 2027-04-01T00:00:00.000Z to 2027-05-01T00:00:00.000Z: 1000000000000000; its fees: 1000; tax included), more than 10^15 (the largest amount of an invoice)',
    );
  });

  it('while the sweep is behind, the invoice ending a fixed term bills no next fees and is bounded without them (JPY)', async () => {
    // JPY 2,000,000 a month + 1,000,000 a call, a fixed term of 2 periods (March, April): the renewal on
    // May 1 ends it and bills April's usage alone. The sweep has not run on Apr 1: 999,999,999 calls on
    // Apr 2 (999,999,999,000,000) fit that invoice.
    const plan = await planOf('JPY', 2_000_000, 1_000_000);
    const { id } = await subscribe(plan, undefined, { repeat: 2 });
    // Before: refused as if May's fee 2,000,000 were on it (1,000,000,001,000,000).
    expect((await record(id, 'term-lag-apr', 999_999_999, '2027-04-02T00:00:00Z')).created).toBe(true);
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-02T01:00:00Z'));
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-05-01T00:10:00Z'));
    const invoices = await app.runtime.db
      .selectFrom('invoices')
      .select(['period_index', 'currency', 'total'])
      .where('subscription_id', '=', id)
      .orderBy('created_at')
      .execute();
    expect(invoices.map((i) => [i.period_index, i.currency, i.total])).toEqual([
      [0, 'JPY', 2_000_000n],
      [1, 'JPY', 2_000_000n],
      [null, 'JPY', 999_999_999_000_000n],
    ]);
    expect(await statusOf(id)).toMatchObject({ status: 'CANCELLED' });
  });
});
