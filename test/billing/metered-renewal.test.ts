import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeSubscription } from '../../src/billing/proration.ts';
import { renewDueSubscriptions, renewSubscription } from '../../src/billing/renewal.ts';
import {
  cancelSubscription,
  createSubscription,
  reactivateSubscription,
  suspendSubscription,
} from '../../src/billing/subscriptions.ts';
import { recordUsageEvent, usageEstimate } from '../../src/billing/usage.ts';
import { ConflictError, ValidationError } from '../../src/errors.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { actionsOf, customerWith } from '../support/collection.ts';

/**
 * Metered prices at renewal: a period's usage is billed in arrears on the next period's invoice; and
 * exactly once at the edges (PRODUCT §11): at a cancellation (now or at period end), from a trial as
 * the plan says, at a plan change with the old plan's prices; usage already billed is refused.
 */
describe('metered usage on renewal invoices', () => {
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

  it("bills March's API calls (graduated tiers) on the April invoice, next to April's fee", async () => {
    const { customer } = await customerWith(app);
    const product = await app.api('POST', '/v1/products', { name: 'API' });
    const plan = await app.api('POST', '/v1/plans', {
      product: product.body.id,
      name: 'API monthly',
      currency: 'EUR',
      interval: 'MONTH',
      price: { model: 'FLAT_FEE', amount: 1000 },
      metered: [
        {
          code: 'api_calls',
          aggregation: 'SUM',
          price: {
            model: 'TIERED',
            tiers: [
              { up_to: 1000, unit_amount: 0 },
              { up_to: null, unit_amount: 2 },
            ],
          },
        },
      ],
    });
    expect(plan.status).toBe(201);
    const subscription = (
      await app.api('POST', '/v1/subscriptions', {
        customer: customer.id,
        plan: plan.body.id,
        start_at: '2027-03-01T00:00:00Z',
      })
    ).body;
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-03-01T00:10:00Z'));
    const usage = [
      ['e1', 900, '2027-03-05T10:00:00Z'],
      ['e2', 600, '2027-03-31T23:59:59Z'],
      ['e3', 50, '2027-04-01T00:00:00Z'], // April's: billed in May
    ] as const;
    for (const [eventId, value, timestamp] of usage) {
      // Recorded as it happens (the simulated clock): a timestamp in the future is refused.
      const { created } = await record(subscription.id, eventId, value, timestamp);
      expect(created).toBe(true);
    }
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-01T00:10:00Z'));
    const invoices = await app.api('GET', `/v1/invoices?customer=${customer.id}&sort=created`);
    expect(invoices.body.data).toHaveLength(2);
    const [march, april] = invoices.body.data;
    expect(march.lines.map((l: { amount: number }) => l.amount)).toEqual([1000]);
    // 1,500 calls: the first 1,000 free, 500 at 2 cents.
    expect(april.lines).toMatchObject([
      { type: 'CHARGE', amount: 1000, period_start: '2027-04-01T00:00:00.000Z' },
      {
        type: 'CHARGE',
        metric_code: 'api_calls',
        quantity: 1500,
        unit_amount: null,
        amount: 1000,
        period_start: '2027-03-01T00:00:00.000Z',
        period_end: '2027-04-01T00:00:00.000Z',
      },
    ]);
    expect(april).toMatchObject({ status: 'OPEN', total: 2000, amount_due: 2000 });
  });

  /**
   * A plan billing `fee` a month and each API call `perCall` (PER_UNIT, no tax), and a subscription
   * to it starting on 2027-03-01 (created on the simulated clock; its period 0 is invoiced then).
   */
  async function planOf(fee: number, perCall: number, extra: Record<string, unknown> = {}) {
    const product = await app.api('POST', '/v1/products', { name: 'API' });
    const plan = await app.api('POST', '/v1/plans', {
      product: product.body.id,
      name: `API ${fee}/${perCall}`,
      currency: 'EUR',
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
  async function subscribe(planId: string, trialDays = 0) {
    const { customer } = await customerWith(app);
    const start = new Date('2027-03-01T00:00:00Z');
    const { subscription } = await createSubscription(
      app.runtime.db,
      'system',
      { customerId: customer.id, planId, startAt: start, trialDays },
      start,
    );
    return { customerId: customer.id as string, id: subscription.id };
  }
  /**
   * The customer's invoices, oldest first, as the API shows them. In the order numbered: the API's
   * creation order is the ids', and invoices made in one transaction (a renewal's usage invoice and
   * its period's) are often made in one millisecond, where ids sort at random; numbers are given in
   * the order invoices are finalized, here as they are made.
   */
  const invoicesOf = async (customerId: string) => {
    const listed = (await app.api('GET', `/v1/invoices?customer=${customerId}&sort=created&limit=100`)).body
      .data;
    expect(listed.map((i: { number: string | null }) => i.number)).not.toContain(null);
    return [...listed].sort((a, b) => (a.number < b.number ? -1 : 1));
  };
  /** The metered lines of an invoice: [quantity, amount, period start, period end]. */
  const usageOf = (invoice: {
    lines: {
      metric_code: string | null;
      quantity: number;
      amount: number;
      period_start: string;
      period_end: string;
    }[];
  }) =>
    invoice.lines
      .filter((l) => l.metric_code === 'api_calls')
      .map((l) => [l.quantity, l.amount, l.period_start, l.period_end]);
  /** The field-level message of the 422 `record` answers, or "stored". */
  const refusal = async (subscriptionId: string, eventId: string, timestamp: string, now: string) => {
    const before = await app.runtime.db.selectFrom('usage_events').select('id').execute();
    try {
      await recordUsageEvent(
        app.runtime.db,
        'system',
        { eventId, subscriptionId, code: 'api_calls', value: 1n, timestamp: new Date(timestamp) },
        new Date(now),
      );
      return 'stored';
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      const after = await app.runtime.db.selectFrom('usage_events').select('id').execute();
      expect(after).toHaveLength(before.length); // nothing stored
      return (error as ValidationError).fields?.timestamp;
    }
  };

  it('cancel now: a final invoice bills the usage up to that moment; usage billed before is not billed again', async () => {
    const plan = await planOf(1000, 2);
    const { customerId, id } = await subscribe(plan);
    await record(id, 'now-1', 100, '2027-03-10T00:00:00Z');
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-01T00:10:00Z'));
    // March's usage is invoiced on April's invoice: a late March event is refused, not dropped
    // (soft: the amounts below are checked whatever this answers).
    expect
      .soft(await refusal(id, 'now-late', '2027-03-31T23:00:00Z', '2027-04-05T00:00:00Z'))
      .toMatch(/already invoiced/);
    await record(id, 'now-2', 30, '2027-04-05T00:00:00Z');
    await cancelSubscription(app.runtime.db, 'system', id, false, new Date('2027-04-15T12:00:00Z'));
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-05-01T00:10:00Z')); // cancelled: nothing

    const [march, april, final, ...more] = await invoicesOf(customerId);
    expect(more).toEqual([]);
    expect(usageOf(march)).toEqual([]);
    // April: the fee 1000 + March's 100 calls × 2 = 200.
    expect(usageOf(april)).toEqual([[100, 200, '2027-03-01T00:00:00.000Z', '2027-04-01T00:00:00.000Z']]);
    expect(april.total).toBe(1200);
    // The final invoice: April's 30 calls × 2 = 60, up to the cancellation; March's 100 not again.
    expect(final).toMatchObject({
      billing_reason: 'subscription_update',
      status: 'OPEN',
      total: 60,
      amount_due: 60,
      period_start: '2027-04-01T00:00:00.000Z',
      period_end: '2027-04-15T12:00:00.000Z',
    });
    expect(usageOf(final)).toEqual([[30, 60, '2027-04-01T00:00:00.000Z', '2027-04-15T12:00:00.000Z']]);
    const subscription = (await app.api('GET', `/v1/subscriptions/${id}`)).body;
    expect(subscription.status).toBe('CANCELLED');
  });

  it("cancel at period end: the last period's usage is billed on a final invoice at the end, no next period", async () => {
    const plan = await planOf(1000, 2);
    const { customerId, id } = await subscribe(plan);
    await record(id, 'end-1', 100, '2027-03-10T00:00:00Z');
    await cancelSubscription(app.runtime.db, 'system', id, true, new Date('2027-03-15T00:00:00Z'));
    await record(id, 'end-2', 20, '2027-03-31T23:00:00Z');
    // After the end the subscription takes no usage: refused before it is stored.
    expect
      .soft(await refusal(id, 'end-after', '2027-04-01T00:00:00Z', '2027-04-01T00:00:00Z'))
      .toMatch(/after the subscription ends/);
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-01T00:10:00Z'));
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-05-01T00:10:00Z'));

    const [march, final, ...more] = await invoicesOf(customerId);
    expect(more).toEqual([]); // no April fee
    expect(march.total).toBe(1000);
    // 100 + 20 calls × 2 = 240, the whole of March.
    expect(final).toMatchObject({
      billing_reason: 'subscription_cycle',
      status: 'OPEN',
      total: 240,
      period_start: '2027-03-01T00:00:00.000Z',
      period_end: '2027-04-01T00:00:00.000Z',
    });
    expect(usageOf(final)).toEqual([[120, 240, '2027-03-01T00:00:00.000Z', '2027-04-01T00:00:00.000Z']]);
    const row = await app.runtime.db
      .selectFrom('invoices')
      .select('period_index')
      .where('id', '=', final.id)
      .executeTakeFirstOrThrow();
    expect(row.period_index).toBeNull(); // not a period's invoice
    expect((await app.api('GET', `/v1/subscriptions/${id}`)).body.status).toBe('CANCELLED');
  });

  it('trial usage is billed on the first invoice when the plan says so, and free (then closed) when not', async () => {
    const billed = await planOf(1000, 2, { trial_days: 14, bill_trial_usage: true });
    const free = await planOf(1000, 2, { trial_days: 14 });
    expect((await app.api('GET', `/v1/plans/${free}`)).body.bill_trial_usage).toBe(false);
    const a = await subscribe(billed, 14); // trial 2027-03-01 → 03-15, period 0 from 03-15
    const b = await subscribe(free, 14);
    for (const s of [a, b]) {
      await record(s.id, `${s.id}-trial`, 40, '2027-03-05T00:00:00Z');
      await record(s.id, `${s.id}-p0`, 10, '2027-03-20T00:00:00Z');
    }
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-03-15T00:10:00Z'));
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-15T00:10:00Z'));

    const [aFirst, aSecond] = await invoicesOf(a.customerId);
    // Period 0's invoice: the fee 1000 + the trial's 40 calls × 2 = 80.
    expect(usageOf(aFirst)).toEqual([[40, 80, '2027-03-01T00:00:00.000Z', '2027-03-15T00:00:00.000Z']]);
    expect(aFirst.total).toBe(1080);
    // Period 1's: the fee + period 0's 10 calls × 2 = 20.
    expect(usageOf(aSecond)).toEqual([[10, 20, '2027-03-15T00:00:00.000Z', '2027-04-15T00:00:00.000Z']]);
    expect(aSecond.total).toBe(1020);

    const [bFirst, bSecond] = await invoicesOf(b.customerId);
    expect(usageOf(bFirst)).toEqual([]); // the trial's 40 calls are free
    expect(bFirst.total).toBe(1000);
    expect(bSecond.total).toBe(1020);
    // The trial is closed: a late trial event would never be billed, so it is refused.
    expect(await refusal(b.id, 'b-late', '2027-03-06T00:00:00Z', '2027-03-20T00:00:00Z')).toMatch(
      /already invoiced/,
    );
  });

  it('a WARN usage limit crossed while the sweep is behind warns once in the period holding the event, not in the stored one', async () => {
    // EUR 10.00 a month + 0.02 a call, from Mar 1; a WARN limit of 0.50. The sweep has not run on
    // Apr 1: 40 calls on Apr 2 (0.80) cross the limit; the sweep then renews into April; 10 more
    // calls on Apr 3 (1.00 in April); then May: the sweep on time, 30 calls on May 2 (0.60).
    const plan = await planOf(1000, 2);
    const { customerId, id } = await subscribe(plan);
    const limit = await app.api('POST', '/v1/usage-limits', {
      customer: customerId,
      amount: 50,
      currency: 'EUR',
      action: 'WARN',
    });
    expect(limit.status).toBe(201);
    await record(id, 'warn-lag-1', 40, '2027-04-02T00:00:00Z');
    // A warning does not bill: the subscription is still in March (the sweep's to renew).
    const before = await app.runtime.db
      .selectFrom('subscriptions')
      .select(['status', 'current_period_index'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(before).toEqual({ status: 'ACTIVE', current_period_index: 0 });
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-02T01:00:00Z'));
    await record(id, 'warn-lag-2', 10, '2027-04-03T00:00:00Z');
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-05-01T00:10:00Z'));
    await record(id, 'warn-lag-3', 30, '2027-05-02T00:00:00Z');
    const warnings = await app.runtime.db
      .selectFrom('activities')
      .select('data')
      .where('resource_id', '=', limit.body.id)
      .where('action', '=', 'usage_limit.warning')
      .orderBy('sequence')
      .execute();
    // Before: claimed for March (the stored period), so Apr 3 warned a second time in April
    // [March, April, May]. Now once per real period: April (Apr 2), May (May 2).
    expect(warnings.map((w) => [w.data.period_start, w.data.estimate])).toEqual([
      ['2027-04-01T00:00:00.000Z', '80'],
      ['2027-05-01T00:00:00.000Z', '60'],
    ]);
  });

  it("bounds each invoice on its own while the sweep is behind: the previous period's usage is not added to the current one's", async () => {
    // JPY 1,000 a month + 1,000,000 a call, from Mar 1. 600,000,000 calls in March (6 × 10^14);
    // the sweep has not run on Apr 1: 500,000,000 calls on Apr 2 (5 × 10^14). April's invoice bills
    // 1,000 + March's 6 × 10^14, May's 1,000 + April's 5 × 10^14: each below 10^15.
    const product = await app.api('POST', '/v1/products', { name: 'API' });
    const plan = await app.api('POST', '/v1/plans', {
      product: product.body.id,
      name: 'API JPY',
      currency: 'JPY',
      interval: 'MONTH',
      price: { model: 'FLAT_FEE', amount: 1000 },
      metered: [
        { code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 1_000_000 } },
      ],
    });
    expect(plan.status).toBe(201);
    const { id } = await subscribe(plan.body.id);
    await record(id, 'lag-bound-mar', 600_000_000, '2027-03-20T00:00:00Z');
    // Before: refused, the invoice counted as 1,000 + 6 × 10^14 + 5 × 10^14 = 1.1 × 10^15 + 1,000.
    const { created } = await record(id, 'lag-bound-apr', 500_000_000, '2027-04-02T00:00:00Z');
    expect(created).toBe(true);
    // April's own usage still bounded: 500,000,000 more calls make May's invoice 10^15 + 1,000.
    await expect(record(id, 'lag-bound-apr-2', 500_000_000, '2027-04-03T00:00:00Z')).rejects.toMatchObject({
      fields: { value: expect.stringMatching(/would total 1000000000001000 minor units/) },
    });
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-03T01:00:00Z'));
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-05-01T00:10:00Z'));
    const invoices = await app.runtime.db
      .selectFrom('invoices')
      .select(['period_index', 'currency', 'total'])
      .where('subscription_id', '=', id)
      .orderBy('period_index')
      .execute();
    expect(invoices.map((i) => [i.period_index, i.currency, i.total])).toEqual([
      [0, 'JPY', 1000n],
      [1, 'JPY', 600_000_000_001_000n],
      [2, 'JPY', 500_000_000_001_000n],
    ]);
  });

  it('a usage limit suspending a subscription the sweep has not renewed yet first bills the period holding now, as dunning and a suspension by hand do', async () => {
    // EUR 10.00 a month + 0.02 a call, from Mar 1; a SUSPEND limit of 0.50. The sweep has not run on
    // Apr 1: 40 calls on Apr 2 (0.80) cross the limit and suspend it; reactivated on May 10.
    const plan = await planOf(1000, 2);
    const { customerId, id } = await subscribe(plan);
    const limit = await app.api('POST', '/v1/usage-limits', {
      customer: customerId,
      amount: 50,
      currency: 'EUR',
      action: 'SUSPEND',
    });
    expect(limit.status).toBe(201);
    await record(id, 'limit-renew-1', 40, '2027-04-02T00:00:00Z');
    const suspended = await app.runtime.db
      .selectFrom('subscriptions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(suspended).toMatchObject({ status: 'SUSPENDED', current_period_index: 1 });
    // More calls in April: the limit acted for April (the period the suspension renewed into) already.
    await record(id, 'limit-renew-2', 10, '2027-04-03T00:00:00Z');
    expect(await actionsOf(app, limit.body.id)).toEqual(['usage_limit.created', 'usage_limit.suspended']);
    await reactivateSubscription(app.runtime.db, 'system', id, new Date('2027-05-10T00:00:00Z'));
    const invoices = await app.runtime.db
      .selectFrom('invoices')
      .select(['period_index', 'currency', 'total'])
      .where('subscription_id', '=', id)
      .orderBy('period_index')
      .execute();
    // Before: April (period 1), started before the suspension, was never invoiced: 10.00 unbilled
    // (invoices [0: 1000, 2: 1100]). Now April is invoiced at the suspension (1000, March had no
    // calls) and May on reactivation: its fee and April's 50 calls, 1000 + 100.
    expect(invoices.map((i) => [i.period_index, i.currency, i.total])).toEqual([
      [0, 'EUR', 1000n],
      [1, 'EUR', 1000n],
      [2, 'EUR', 1100n],
    ]);
  });

  it("a free trial's usage is estimated at 0 and no usage limit acts on it; a trial billing its usage is estimated as billed", async () => {
    const billed = await planOf(1000, 2, { trial_days: 14, bill_trial_usage: true });
    const free = await planOf(1000, 2, { trial_days: 14 });
    const a = await subscribe(billed, 14); // trial 2027-03-01 → 03-15
    const b = await subscribe(free, 14);
    for (const s of [a, b]) {
      const limit = await app.api('POST', '/v1/usage-limits', {
        customer: s.customerId,
        amount: 50,
        currency: 'EUR',
        action: 'SUSPEND',
      });
      expect(limit.status).toBe(201);
      await record(s.id, `${s.id}-trial`, 40, '2027-03-05T00:00:00Z');
    }
    const estimateOf = async (customerId: string) =>
      (await app.api('GET', `/v1/customers/${customerId}/usage-estimate`)).body;
    // The billing trial: 40 calls × 2 = 80, what period 0's invoice bills; the limit of 50 suspends it.
    expect((await estimateOf(a.customerId)).totals).toEqual([{ currency: 'EUR', amount: 80 }]);
    expect((await app.api('GET', `/v1/subscriptions/${a.id}`)).body.status).toBe('SUSPENDED');
    // The free trial: its 40 calls are never billed (was 80), so they cost 0 and suspend nothing.
    const estimate = await estimateOf(b.customerId);
    expect(estimate.subscriptions[0].lines).toEqual([
      { metric_code: 'api_calls', aggregation: 'SUM', quantity: 0, amount: 0 },
    ]);
    expect(estimate.totals).toEqual([{ currency: 'EUR', amount: 0 }]);
    expect((await app.api('GET', `/v1/subscriptions/${b.id}`)).body.status).toBe('IN_TRIAL');
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-03-15T00:10:00Z'));
    const [first] = await invoicesOf(b.customerId);
    expect(usageOf(first)).toEqual([]);
    expect(first.total).toBe(1000);
  });

  it("refuses (422, field value) an event taking its period's usage beyond one invoice line; the renewal then bills the period", async () => {
    /** The field-level message of `record`'s ValidationError on `value`, or "stored"; nothing stored when refused. */
    const refused = async (subscriptionId: string, eventId: string, value: bigint, timestamp: string) => {
      const before = await app.runtime.db.selectFrom('usage_events').select('id').execute();
      try {
        await recordUsageEvent(
          app.runtime.db,
          'system',
          { eventId, subscriptionId, code: 'api_calls', value, timestamp: new Date(timestamp) },
          new Date(timestamp),
        );
        return 'stored';
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        expect(await app.runtime.db.selectFrom('usage_events').select('id').execute()).toHaveLength(
          before.length,
        );
        return (error as ValidationError).fields?.value;
      }
    };
    // Quantity: 2^31 − 1 calls is what one line holds; one call more in March is refused (it made
    // every renewal of the subscription throw, its April fee never invoiced), one in April is not.
    const perCall = await planOf(1000, 1);
    const a = await subscribe(perCall);
    expect(await refused(a.id, 'a-1', 2_147_483_647n, '2027-03-05T00:00:00Z')).toBe('stored');
    expect(await refused(a.id, 'a-2', 1n, '2027-03-31T23:59:59Z')).toMatch(
      /sum of api_calls in the period from 2027-03-01T00:00:00.000Z would be 2147483648 units, beyond an invoice line's quantity/,
    );
    expect(await refused(a.id, 'a-3', 1n, '2027-04-01T00:00:00Z')).toBe('stored');
    // Amount: 999,999,999 calls at 10^6 is 999,999,999,000,000 ≤ 10^15; 2 more would be 10^15 + 10^6.
    const dear = await planOf(1000, 1_000_000);
    const b = await subscribe(dear);
    expect(await refused(b.id, 'b-1', 999_999_999n, '2027-03-05T00:00:00Z')).toBe('stored');
    // The refusal names the price of the period's usage with it: 1,000,000,001 × 10^6 (before: not named).
    expect(await refused(b.id, 'b-2', 2n, '2027-03-06T00:00:00Z')).toMatch(
      /would be 1000000001 units, priced 1000000001000000 minor units, beyond an invoice line's amount \(at most 1000000000000000 minor units\)/,
    );
    const sweep = await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-01T00:10:00Z'));
    expect(sweep.failures.filter((f) => [a.id, b.id].includes(f.subscription))).toEqual([]);
    const [, aApril] = await invoicesOf(a.customerId);
    expect(usageOf(aApril)).toEqual([
      [2_147_483_647, 2_147_483_647, '2027-03-01T00:00:00.000Z', '2027-04-01T00:00:00.000Z'],
    ]);
    expect(aApril.total).toBe(1000 + 2_147_483_647);
    const [, bApril] = await invoicesOf(b.customerId);
    expect(bApril.total).toBe(1000 + 999_999_999_000_000);
  });

  it('the estimate counts what the next invoices bill: the periods a suspension or a renewal not run yet left unbilled, each priced on its own', async () => {
    const tiered = await planOf(1000, 0, {
      metered: [
        {
          code: 'api_calls',
          aggregation: 'SUM',
          price: {
            model: 'TIERED',
            tiers: [
              { up_to: 10, unit_amount: 0 },
              { up_to: null, unit_amount: 2 },
            ],
          },
        },
      ],
    });
    const s = await subscribe(tiered); // period 0: March, invoiced at once
    const estimate = async () => {
      const { subscriptions } = await usageEstimate(app.runtime.db, s.customerId);
      return subscriptions[0]!.lines.map((l) => [l.quantity, l.amount]);
    };
    await suspendSubscription(app.runtime.db, 'system', s.id, new Date('2027-03-10T00:00:00Z'));
    await record(s.id, `${s.id}-mar`, 15, '2027-03-12T00:00:00Z');
    await record(s.id, `${s.id}-apr`, 25, '2027-04-12T00:00:00Z');
    // Still SUSPENDED on April 15th, its current period March: March's 15 calls (5 above the free 10:
    // 10) and April's 25 (15 above: 30), each month its own free tier: 40 calls, 40 (was 15 calls, 10).
    expect(await estimate()).toEqual([[40n, 40n]]);
    await reactivateSubscription(app.runtime.db, 'system', s.id, new Date('2027-04-15T00:00:00Z'));
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-05-01T00:10:00Z'));
    // What the invoices billed: March's on April's invoice (10), April's on May's (30).
    const invoices = await invoicesOf(s.customerId);
    expect(invoices.flatMap(usageOf).map(([quantity, amount]: unknown[]) => [quantity, amount])).toEqual([
      [15, 10],
      [25, 30],
    ]);
    // May 2nd, its renewal of June not due: May's usage so far.
    await record(s.id, `${s.id}-may`, 12, '2027-05-02T00:00:00Z');
    expect(await estimate()).toEqual([[12n, 4n]]);
    // June 1st 00:05, before the renewal sweep has run: May's 12 and June's 11 (2 + 2), not May's alone.
    await record(s.id, `${s.id}-jun`, 11, '2027-06-01T00:01:00Z');
    expect(await estimate()).toEqual([[23n, 6n]]);
  });

  it('refuses (422, field quantity) a change, now or at the next cycle, or a trial subscription whose next period would bill more than 10^15; nothing changes', async () => {
    const product = await app.api('POST', '/v1/products', { name: 'Big' });
    const plan = await app.api('POST', '/v1/plans', {
      product: product.body.id,
      name: 'Big',
      currency: 'EUR',
      interval: 'MONTH',
      price: { model: 'PER_UNIT', unit_amount: 1_000_000_000_000 },
    });
    const s = await subscribe(plan.body.id); // 10^12 per unit and period, quantity 1
    const change = async (quantity: number, when: 'now' | 'next_cycle', at: string) => {
      try {
        await changeSubscription(app.runtime.db, 'system', s.id, { quantity, when }, new Date(at), false);
        return 'changed';
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return (error as ValidationError).fields?.quantity;
      }
    };
    // 2000 × 10^12 = 2 × 10^15 a period. At the next cycle it was stored, then every renewal threw;
    // now, on March 29th, it prorated 3 days of 31 (1.9 × 10^14, accepted) and every renewal threw.
    expect(await change(2000, 'next_cycle', '2027-03-05T00:00:00Z')).toMatch(
      /× 2000 would bill each period more than 10\^15/,
    );
    expect(await change(2000, 'now', '2027-03-29T00:00:00Z')).toMatch(
      /× 2000 would bill each period more than 10\^15/,
    );
    const refused = (await app.api('GET', `/v1/subscriptions/${s.id}`)).body;
    expect([refused.quantity, refused.scheduled_change]).toEqual([1, null]);
    expect((await invoicesOf(s.customerId)).length).toBe(1); // period 0's only
    // A trial's first period is invoiced at its end: 2000 units were accepted, then that invoice threw.
    const { customer } = await customerWith(app);
    const trial = async (quantity: number) => {
      const start = new Date('2027-03-01T00:00:00Z');
      const input = {
        customerId: customer.id,
        planId: plan.body.id,
        startAt: start,
        trialDays: 14,
        quantity,
      };
      try {
        return (await createSubscription(app.runtime.db, 'system', input, start)).subscription.status;
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return (error as ValidationError).fields?.quantity;
      }
    };
    expect(await trial(2000)).toMatch(/× 2000 would bill each period more than 10\^15/);
    expect(await trial(1000)).toBe('IN_TRIAL');
    expect((await app.api('GET', `/v1/subscriptions?customer=${customer.id}`)).body.data).toHaveLength(1);
    // 1000 × 10^12 = 10^15 exactly is invoiceable.
    expect(await change(1000, 'next_cycle', '2027-03-05T00:00:00Z')).toBe('changed');
    const sweep = await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-01T00:10:00Z'));
    expect(sweep.failures.filter((f) => f.subscription === s.id)).toEqual([]);
    const [, april] = await invoicesOf(s.customerId);
    expect(april.total).toBe(1_000_000_000_000_000);
  });

  it("a plan change mid-period bills the usage so far at the old plan's prices, the rest at the new", async () => {
    const small = await planOf(1000, 2);
    const large = await planOf(3000, 5);
    const { customerId, id } = await subscribe(small);
    await record(id, 'mid-1', 100, '2027-03-10T00:00:00Z');
    const change = await changeSubscription(
      app.runtime.db,
      'system',
      id,
      { planId: large },
      new Date('2027-03-16T00:00:00Z'),
      false,
    );
    await record(id, 'mid-2', 10, '2027-03-20T00:00:00Z');
    expect
      .soft(await refusal(id, 'mid-late', '2027-03-15T00:00:00Z', '2027-03-20T00:00:00Z'))
      .toMatch(/already invoiced/);
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-01T00:10:00Z'));

    const invoices = await invoicesOf(customerId);
    const usageInvoice = invoices.find((i: { id: string }) => i.id === change.usageInvoice?.id);
    // The 100 calls before the change at the old price: 100 × 2 = 200 (not 100 × 5 = 500).
    expect(usageInvoice).toMatchObject({ billing_reason: 'subscription_update', total: 200 });
    expect(usageOf(usageInvoice)).toEqual([
      [100, 200, '2027-03-01T00:00:00.000Z', '2027-03-16T00:00:00.000Z'],
    ]);
    expect(usageInvoice.lines[0].plan).toBe(small);
    // April: the new fee 3000 + the 10 calls after the change × 5 = 50.
    const april = invoices.at(-1);
    expect(usageOf(april)).toEqual([[10, 50, '2027-03-16T00:00:00.000Z', '2027-04-01T00:00:00.000Z']]);
    expect(april.total).toBe(3050);
    // Every call billed once: 100 + 10.
    const billedCalls = invoices
      .flatMap(usageOf)
      .reduce((sum: number, line: unknown[]) => sum + Number(line[0]), 0);
    expect(billedCalls).toBe(110);
  });

  /** Changes subscription `id` to plan `planId` now (prorated), at `at` on the simulated clock. */
  const changeAt = (id: string, planId: string, at: string, preview = false) =>
    changeSubscription(app.runtime.db, 'system', id, { planId }, new Date(at), preview);
  /** Metered `api_calls` aggregated by `aggregation`, priced by `price` (API JSON). */
  const calls = (aggregation: string, price: Record<string, unknown>) => ({
    metered: [{ code: 'api_calls', aggregation, price }],
  });
  /**
   * Expects changes of subscription `s` to plan `planId` at `at`, previewed and not, refused with 409
   * `usage_split_unpriceable` whose message matches `message`, changing nothing: still on `oldPlan`,
   * its usage billed up to `billedUntil`, the customer's invoices as they were.
   */
  async function expectUnpriceable(
    s: { id: string; customerId: string },
    planId: string,
    at: string,
    message: RegExp,
    oldPlan: string,
    billedUntil: string,
  ) {
    const before = await invoicesOf(s.customerId);
    for (const preview of [true, false]) {
      const refused = await changeAt(s.id, planId, at, preview).catch((e) => e);
      expect(refused).toBeInstanceOf(ConflictError);
      expect(refused).toMatchObject({ status: 409, code: 'usage_split_unpriceable' });
      expect(refused.message).toMatch(message);
    }
    const row = await app.runtime.db
      .selectFrom('subscriptions')
      .selectAll()
      .where('id', '=', s.id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ plan_id: oldPlan, usage_billed_until: new Date(billedUntil) });
    expect(await invoicesOf(s.customerId)).toEqual(before);
  }
  /** Schedules subscription `id`'s change to plan `planId` for its next cycle (`when: next_cycle`), at `at`. */
  const changeNextCycle = (id: string, planId: string, at: string) =>
    changeSubscription(app.runtime.db, 'system', id, { planId, when: 'next_cycle' }, new Date(at), false);
  /** VOLUME `api_calls`: every call at the tier the period's total falls in (4 up to 1,000, then 2). */
  const volumeCalls = calls('SUM', {
    model: 'VOLUME',
    tiers: [
      { up_to: 1000, unit_amount: 4 },
      { up_to: null, unit_amount: 2 },
    ],
  });

  it('a MAX across an upgrade mid-period is billed once: the maximum before at the old price, its rise after at the new (SEK)', async () => {
    // Seats: 500 öre (5 SEK) each on the small plan, 800 öre on the large one.
    const small = await planOf(10000, 0, {
      currency: 'SEK',
      ...calls('MAX', { model: 'PER_UNIT', unit_amount: 500 }),
    });
    const large = await planOf(30000, 0, {
      currency: 'SEK',
      ...calls('MAX', { model: 'PER_UNIT', unit_amount: 800 }),
    });
    const { customerId, id } = await subscribe(small);
    await record(id, 'max-1', 8, '2027-03-05T00:00:00Z');
    await record(id, 'max-2', 12, '2027-03-10T00:00:00Z'); // the maximum before the change
    const change = await changeAt(id, large, '2027-03-16T00:00:00Z');
    await record(id, 'max-3', 10, '2027-03-20T00:00:00Z'); // below 12: no rise yet
    // The estimate prices the period's usage not billed yet as the rest of the period: no rise, 0
    // (the old code showed the max after the change whole: 10 × 800 = 8000).
    const estimate = (await app.api('GET', `/v1/customers/${customerId}/usage-estimate`)).body;
    expect.soft(estimate.totals).toEqual([{ currency: 'SEK', amount: 0 }]);
    await record(id, 'max-4', 15, '2027-03-25T00:00:00Z'); // the period's maximum
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-01T00:10:00Z'));

    const invoices = await invoicesOf(customerId);
    const usageInvoice = invoices.find((i: { id: string }) => i.id === change.usageInvoice?.id);
    // Before the change: max 12 × 500 = 6000 öre at the old price.
    expect(usageOf(usageInvoice)).toEqual([
      [12, 6000, '2027-03-01T00:00:00.000Z', '2027-03-16T00:00:00.000Z'],
    ]);
    expect(usageInvoice).toMatchObject({ currency: 'SEK', total: 6000 });
    // After it: the period's maximum rose from 12 to 15: 3 × 800 = 2400 öre. The old code billed the
    // maximum after the change again whole: 15 × 800 = 12000 (seats 1–12 twice).
    const april = invoices.at(-1);
    expect(usageOf(april)).toEqual([[3, 2400, '2027-03-16T00:00:00.000Z', '2027-04-01T00:00:00.000Z']]);
    expect(april).toMatchObject({ currency: 'SEK', total: 30000 + 2400 });
    // 15 seats in all, each billed once: 12 + 3.
    expect(invoices.flatMap(usageOf).reduce((sum: number, l: unknown[]) => sum + Number(l[0]), 0)).toBe(15);
  });

  it("a graduated price's free tier and flat amount are given once per period across a change (SUM, JPY)", async () => {
    // Both plans: the first 1,000 calls free; then 3 yen a call (old), or 2 yen and a flat 500 yen (new).
    const free = (rest: Record<string, number>) =>
      calls('SUM', {
        model: 'TIERED',
        tiers: [
          { up_to: 1000, unit_amount: 0 },
          { up_to: null, ...rest },
        ],
      });
    const old = await planOf(1000, 0, { currency: 'JPY', ...free({ unit_amount: 3 }) });
    const next = await planOf(2000, 0, { currency: 'JPY', ...free({ unit_amount: 2, flat_amount: 500 }) });
    const { customerId, id } = await subscribe(old);
    await record(id, 'tier-1', 600, '2027-03-10T00:00:00Z');
    const change = await changeAt(id, next, '2027-03-16T00:00:00Z');
    await record(id, 'tier-2', 900, '2027-03-20T00:00:00Z');
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-01T00:10:00Z'));

    const invoices = await invoicesOf(customerId);
    // Before the change: 600 calls, all in the free tier: 0 yen.
    const usageInvoice = invoices.find((i: { id: string }) => i.id === change.usageInvoice?.id);
    expect(usageOf(usageInvoice)).toEqual([[600, 0, '2027-03-01T00:00:00.000Z', '2027-03-16T00:00:00.000Z']]);
    // After it: calls 601–1,500 of the period at the new tiers: 601–1,000 free (400 left of the free
    // tier), 1,001–1,500 = 500 × 2 = 1000 yen + the second tier's flat 500 = 1500 yen. The old code
    // priced the 900 after the change as a period of their own: all free, 0 (1,500 calls, 1,500 free).
    const april = invoices.at(-1);
    expect(usageOf(april)).toEqual([[900, 1500, '2027-03-16T00:00:00.000Z', '2027-04-01T00:00:00.000Z']]);
    expect(april).toMatchObject({ currency: 'JPY', total: 2000 + 1500 });
  });

  it('refuses (409 usage_split_unpriceable) a change mid-period over usage of a VOLUME metric; next_cycle and an unused metric pass', async () => {
    const small = await planOf(10000, 0, { currency: 'SEK', ...volumeCalls });
    const large = await planOf(30000, 0, { currency: 'SEK', ...volumeCalls });
    // No usage yet in the period: the change passes (nothing to split).
    const unused = await subscribe(small);
    expect((await changeAt(unused.id, large, '2027-03-16T00:00:00Z')).subscription.plan_id).toBe(large);

    const { customerId, id } = await subscribe(small);
    await record(id, 'vol-1', 800, '2027-03-10T00:00:00Z');
    // Nothing changed: the plan, the usage billed, the invoices.
    await expectUnpriceable(
      { id, customerId },
      large,
      '2027-03-16T00:00:00Z',
      /api_calls.*when: next_cycle/,
      small,
      '2027-03-01T00:00:00Z',
    );
    // The way out: at the next cycle, March is priced whole at the old plan: 800 × 4 = 3200 öre.
    await changeNextCycle(id, large, '2027-03-16T00:00:00Z');
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-01T00:10:00Z'));
    const [, usageInvoice, april] = await invoicesOf(customerId);
    expect(usageOf(usageInvoice)).toEqual([
      [800, 3200, '2027-03-01T00:00:00.000Z', '2027-04-01T00:00:00.000Z'],
    ]);
    expect(april.total).toBe(30000);
  });

  it('refuses (409) a change over usage the new plan meters as a MAX, the old plan as a SUM (F1); next_cycle bills each plan its own way', async () => {
    // F1, EUR: api_calls summed at 100 cents on the old plan, the same code as a MAX (seats) at 100
    // cents on the new one.
    const sum = await planOf(1000, 100);
    const max = await planOf(1000, 0, calls('MAX', { model: 'PER_UNIT', unit_amount: 100 }));
    const f1 = await subscribe(sum);
    await record(f1.id, 'agg-1', 50, '2027-03-10T00:00:00Z');
    // A change now would bill the 50 summed at the change, then take 50 as the "maximum before": a
    // maximum of 40 after it rises from 50 by nothing, and the new plan's 40 seats went unbilled.
    await expectUnpriceable(
      f1,
      max,
      '2027-03-16T00:00:00Z',
      /the old plan meters api_calls with another aggregation.*when: next_cycle.*a plan metering api_calls with the old plan's aggregation/,
      sum,
      '2027-03-01T00:00:00Z',
    );
    // The way out: March summed whole on the old plan: 50 + 40 = 90 × 100 = 9000; April on the new
    // plan: a maximum of 40 seats × 100 = 4000.
    await changeNextCycle(f1.id, max, '2027-03-16T00:00:00Z');
    await record(f1.id, 'agg-2', 40, '2027-03-20T00:00:00Z');
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-01T00:10:00Z'));
    await record(f1.id, 'agg-3', 30, '2027-04-05T00:00:00Z');
    await record(f1.id, 'agg-4', 40, '2027-04-10T00:00:00Z');
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-05-01T00:10:00Z'));
    expect((await invoicesOf(f1.customerId)).flatMap(usageOf)).toEqual([
      [90, 9000, '2027-03-01T00:00:00.000Z', '2027-04-01T00:00:00.000Z'],
      [40, 4000, '2027-04-01T00:00:00.000Z', '2027-05-01T00:00:00.000Z'],
    ]);
  });

  it('refuses (409) a change over usage the new plan sums (TIERED), the old plan counts (F1b); next_cycle bills each plan its own way', async () => {
    // F1b, CHF: requests counted at 10 rappen on the old plan, the same code summed with the first
    // 1,000 units free, then 2 rappen, on the new one.
    const count = await planOf(1000, 0, {
      currency: 'CHF',
      ...calls('COUNT', { model: 'PER_UNIT', unit_amount: 10 }),
    });
    const tiered = await planOf(1000, 0, {
      currency: 'CHF',
      ...calls('SUM', {
        model: 'TIERED',
        tiers: [
          { up_to: 1000, unit_amount: 0 },
          { up_to: null, unit_amount: 2 },
        ],
      }),
    });
    const f1b = await subscribe(count);
    for (const n of [2, 3, 4]) await record(f1b.id, `agg-b${n}`, 400, `2027-03-0${n}T00:00:00Z`);
    // A change now would bill 3 requests × 10 = 30, then price 500 units after it as units 1,201–1,700
    // (the 1,200 units counted as 3 requests): 500 × 2 = 1000 for units in the new plan's free tier.
    await expectUnpriceable(
      f1b,
      tiered,
      '2027-03-16T00:00:00Z',
      /another aggregation.*when: next_cycle/,
      count,
      '2027-03-01T00:00:00Z',
    );
    // The way out: March counted whole on the old plan: 4 requests × 10 = 40; April summed on the
    // new: 400 + 900 = 1,300 units, 300 above the free tier × 2 = 600.
    await changeNextCycle(f1b.id, tiered, '2027-03-16T00:00:00Z');
    await record(f1b.id, 'agg-b5', 500, '2027-03-20T00:00:00Z');
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-01T00:10:00Z'));
    await record(f1b.id, 'agg-b6', 400, '2027-04-05T00:00:00Z');
    await record(f1b.id, 'agg-b7', 900, '2027-04-10T00:00:00Z');
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-05-01T00:10:00Z'));
    expect((await invoicesOf(f1b.customerId)).flatMap(usageOf)).toEqual([
      [4, 40, '2027-03-01T00:00:00.000Z', '2027-04-01T00:00:00.000Z'],
      [1300, 600, '2027-04-01T00:00:00.000Z', '2027-05-01T00:00:00.000Z'],
    ]);
  });

  it("an old plan's VOLUME price does not refuse a change to a PER_UNIT one (F2): the part before is billed whole at the change, the rest at the new price", async () => {
    const old = await planOf(10000, 0, { currency: 'SEK', ...volumeCalls });
    const perUnit = await planOf(10000, 3, { currency: 'SEK' });
    const { customerId, id } = await subscribe(old);
    await record(id, 'f2-1', 800, '2027-03-10T00:00:00Z');
    const change = await changeAt(id, perUnit, '2027-03-16T00:00:00Z');
    expect(change.subscription.plan_id).toBe(perUnit);
    await record(id, 'f2-2', 500, '2027-03-20T00:00:00Z');
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-01T00:10:00Z'));
    const invoices = await invoicesOf(customerId);
    const usageInvoice = invoices.find((i: { id: string }) => i.id === change.usageInvoice?.id);
    // At the change, the old plan's VOLUME price of the 800 calls before it: 800 × 4 = 3200 öre.
    expect(usageOf(usageInvoice)).toEqual([
      [800, 3200, '2027-03-01T00:00:00.000Z', '2027-03-16T00:00:00.000Z'],
    ]);
    // The rest of March at 3 öre a call: 3 × 1,300 − 3 × 800 = 500 × 3 = 1500 öre.
    expect(usageOf(invoices.at(-1))).toEqual([
      [500, 1500, '2027-03-16T00:00:00.000Z', '2027-04-01T00:00:00.000Z'],
    ]);
  });

  it('a change in a trial to a plan not billing trial usage is not refused over VOLUME usage, and bills none of the trial (F3)', async () => {
    // DKK, trial 2027-03-01 → 03-15: VOLUME api_calls (4 øre a call up to 1,000, then 2).
    const free = await planOf(1000, 0, { currency: 'DKK', trial_days: 14, ...volumeCalls });
    const alsoFree = await planOf(2000, 0, { currency: 'DKK', trial_days: 14, ...volumeCalls });
    const billed = await planOf(1000, 0, {
      currency: 'DKK',
      trial_days: 14,
      bill_trial_usage: true,
      ...volumeCalls,
    });
    // Neither plan bills the trial's usage: nothing of it is billed, nothing splits.
    const a = await subscribe(free, 14);
    await record(a.id, 'f3-a1', 800, '2027-03-05T00:00:00Z');
    const changed = await changeAt(a.id, alsoFree, '2027-03-06T00:00:00Z');
    expect(changed).toMatchObject({ subscription: { plan_id: alsoFree }, usageInvoice: null });
    await record(a.id, 'f3-a2', 300, '2027-03-08T00:00:00Z'); // in the trial: free
    await record(a.id, 'f3-a3', 100, '2027-03-20T00:00:00Z'); // period 0: 100 × 4 = 400 øre
    // The old plan bills its trial usage, the new one does not: the 800 before the change are billed
    // at it (800 × 4 = 3200 øre), the rest of the trial is free.
    const b = await subscribe(billed, 14);
    await record(b.id, 'f3-b1', 800, '2027-03-05T00:00:00Z');
    const changedB = await changeAt(b.id, free, '2027-03-06T00:00:00Z');
    expect(changedB.subscription.plan_id).toBe(free);
    await record(b.id, 'f3-b2', 300, '2027-03-08T00:00:00Z');
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-03-15T00:10:00Z'));
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-15T00:10:00Z'));
    expect((await invoicesOf(a.customerId)).flatMap(usageOf)).toEqual([
      [100, 400, '2027-03-15T00:00:00.000Z', '2027-04-15T00:00:00.000Z'],
    ]);
    expect((await invoicesOf(b.customerId)).flatMap(usageOf)).toEqual([
      [800, 3200, '2027-03-01T00:00:00.000Z', '2027-03-06T00:00:00.000Z'],
    ]);
  });

  it("refuses (409) a change in a trial to a plan billing trial usage over the free trial's usage (F4); next_cycle leaves the trial free", async () => {
    // NZD, trial 2027-03-01 → 03-15: the first 1,000 calls free, then 2 cents; the old plan does not
    // bill trial usage, the new one does.
    const graduated = calls('SUM', {
      model: 'TIERED',
      tiers: [
        { up_to: 1000, unit_amount: 0 },
        { up_to: null, unit_amount: 2 },
      ],
    });
    const free = await planOf(1000, 0, { currency: 'NZD', trial_days: 14, ...graduated });
    const billed = await planOf(1000, 0, {
      currency: 'NZD',
      trial_days: 14,
      bill_trial_usage: true,
      ...graduated,
    });
    const t = await subscribe(free, 14);
    await record(t.id, 'f4-1', 900, '2027-03-05T00:00:00Z');
    // A change now would take the 900 free calls as billed: 500 calls after it would be calls
    // 901–1,400, 400 above a free tier the free trial used up: 800 cents, where the new plan's trial
    // part alone is 500 calls in its free tier, 0.
    await expectUnpriceable(
      t,
      billed,
      '2027-03-10T00:00:00Z',
      /the trial's usage of api_calls so far was free on the old plan.*when: next_cycle.*a plan not billing trial usage/,
      free,
      '2027-03-01T00:00:00Z',
    );
    // The same for a MAX: 12 seats free before would hide a maximum of 10 after (10 × 800 unbilled).
    const maxFree = await planOf(1000, 0, {
      currency: 'NZD',
      trial_days: 14,
      ...calls('MAX', { model: 'PER_UNIT', unit_amount: 500 }),
    });
    const maxBilled = await planOf(1000, 0, {
      currency: 'NZD',
      trial_days: 14,
      bill_trial_usage: true,
      ...calls('MAX', { model: 'PER_UNIT', unit_amount: 800 }),
    });
    const seats = await subscribe(maxFree, 14);
    await record(seats.id, 'f4-s1', 12, '2027-03-05T00:00:00Z');
    await expectUnpriceable(
      seats,
      maxBilled,
      '2027-03-10T00:00:00Z',
      /trial's usage of api_calls.*when: next_cycle/,
      maxFree,
      '2027-03-01T00:00:00Z',
    );
    // The way out: the change at the trial's end; the trial's 900 + 500 calls stay free (old plan);
    // period 0's 1,200 calls on the new plan: 200 above the free tier × 2 = 400 cents.
    await changeNextCycle(t.id, billed, '2027-03-10T00:00:00Z');
    await record(t.id, 'f4-2', 500, '2027-03-12T00:00:00Z');
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-03-15T00:10:00Z'));
    await record(t.id, 'f4-3', 1200, '2027-03-20T00:00:00Z');
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-15T00:10:00Z'));
    expect((await invoicesOf(t.customerId)).flatMap(usageOf)).toEqual([
      [1200, 400, '2027-03-15T00:00:00.000Z', '2027-04-15T00:00:00.000Z'],
    ]);
  });

  it('a plan change at the period boundary, before the renewal ran, bills the old period at the old prices', async () => {
    const small = await planOf(1000, 2);
    const large = await planOf(3000, 5);
    const { customerId, id } = await subscribe(small);
    await record(id, 'edge-1', 100, '2027-03-10T00:00:00Z');
    // Five minutes into April, the renewal not run yet: March is over, its usage was the old plan's.
    // The change renews April first, as the sweep would have (billing/sweep-lag.test.ts), then
    // prorates the 30 days less 5 minutes left of it.
    const change = await changeSubscription(
      app.runtime.db,
      'system',
      id,
      { planId: large },
      new Date('2027-04-01T00:05:00Z'),
      false,
    );
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-01T00:10:00Z'));

    const [, april, changed, ...more] = await invoicesOf(customerId);
    expect(more).toEqual([]);
    // April's invoice carries March's 100 calls × 2 = 200 at the old plan (the old code priced them
    // 100 × 5 = 500 in April), next to April's fee on the old plan: 1000 + 200.
    expect(usageOf(april)).toEqual([[100, 200, '2027-03-01T00:00:00.000Z', '2027-04-01T00:00:00.000Z']]);
    expect(april.total).toBe(1200);
    // No usage between April 1 and the change, so no usage invoice; the rest of April on the new plan:
    // unused 1000 × 2,591,700/2,592,000 s = 999.88 → −1000, remaining 3000 × the same = 2999.65 →
    // +3000: 2000, so April's fee is 3000 in all, as if changed at its start.
    expect(change.usageInvoice).toBeNull();
    expect(changed.id).toBe(change.invoice?.id);
    expect(usageOf(changed)).toEqual([]);
    expect(changed.total).toBe(2000);
  });

  it('usage events racing the renewal that bills their period are either billed on it or refused, never dropped', async () => {
    const plan = await planOf(1000, 2);
    const { customerId, id } = await subscribe(plan);
    const now = new Date('2027-04-01T00:10:00Z');
    const events = Array.from({ length: 16 }, (_, i) =>
      recordUsageEvent(
        app.runtime.db,
        'system',
        {
          eventId: `race-${i}`,
          subscriptionId: id,
          code: 'api_calls',
          value: BigInt(i + 1),
          timestamp: new Date('2027-03-31T23:59:00Z'),
        },
        now,
      ),
    );
    // The renewal waits for the row (no SKIP LOCKED, unlike the sweep) so it does race the events.
    const [renewal, ...recorded] = await Promise.allSettled([
      renewSubscription(app.runtime.db, 'system', id, now),
      ...events,
    ]);
    expect(renewal.status).toBe('fulfilled');
    for (const r of recorded) {
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ValidationError); // 422, stored nothing
    }
    const stored = await app.runtime.db
      .selectFrom('usage_events')
      .select('value')
      .where('subscription_id', '=', id)
      .execute();
    const storedCalls = stored.reduce((sum, e) => sum + Number(e.value), 0);
    const april = (await invoicesOf(customerId)).at(-1);
    // Whatever the interleaving: the April invoice bills exactly the calls stored, 2 each.
    const billed = usageOf(april);
    expect(billed.length ? billed[0]?.[0] : 0).toBe(storedCalls);
    expect(april.total).toBe(1000 + 2 * storedCalls);
  });

  it('usage recorded before and during a suspension is billed when billing resumes, each period on its own', async () => {
    const plan = await planOf(1000, 2);
    const { customerId, id } = await subscribe(plan);
    await record(id, 'susp-1', 100, '2027-03-10T00:00:00Z');
    await suspendSubscription(app.runtime.db, 'system', id, new Date('2027-03-20T00:00:00Z'));
    await record(id, 'susp-2', 40, '2027-04-10T00:00:00Z'); // still recorded while SUSPENDED
    await renewDueSubscriptions(app.runtime.db, 'system', new Date('2027-04-01T00:10:00Z')); // SUSPENDED: no invoice
    await reactivateSubscription(app.runtime.db, 'system', id, new Date('2027-05-10T00:00:00Z'));

    const [march, may, ...more] = await invoicesOf(customerId);
    expect(more).toEqual([]);
    expect(march.total).toBe(1000);
    // May's invoice (April was never invoiced): March's 100 calls × 2 = 200 and April's 40 × 2 = 80,
    // one line per period (the old code billed April's only and dropped March's).
    expect(usageOf(may)).toEqual([
      [100, 200, '2027-03-01T00:00:00.000Z', '2027-04-01T00:00:00.000Z'],
      [40, 80, '2027-04-01T00:00:00.000Z', '2027-05-01T00:00:00.000Z'],
    ]);
    expect(may.total).toBe(1000 + 200 + 80);
  });
});
