import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renewDueSubscriptions } from '../../src/billing/renewal.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { customerWith } from '../support/collection.ts';

/**
 * Each usage event adds to its period's kept aggregates (`usage_period_totals`) instead of summing the
 * period again: the rows always equal the events' aggregates, and the invoices, the estimate and the
 * usage limits bill and read what the events sum to, events stored before the rows existed included.
 */
describe('usage period totals', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  afterAll(() => app.stop());

  it('SUM, MAX and COUNT kept per period equal the events (JPY), before and after the sweep, events stored before the rows included', async () => {
    // JPY 1,000 a month; api_calls SUM at 3, peak MAX at 100, rows COUNT at 7; from Mar 1.
    const product = await app.api('POST', '/v1/products', { name: 'API' });
    const plan = await app.api('POST', '/v1/plans', {
      product: product.body.id,
      name: 'API JPY three metrics',
      currency: 'JPY',
      interval: 'MONTH',
      price: { model: 'FLAT_FEE', amount: 1000 },
      metered: [
        { code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 3 } },
        { code: 'peak', aggregation: 'MAX', price: { model: 'PER_UNIT', unit_amount: 100 } },
        { code: 'rows', aggregation: 'COUNT', price: { model: 'PER_UNIT', unit_amount: 7 } },
      ],
    });
    expect(plan.status).toBe(201);
    const { customer } = await customerWith(app);
    const start = new Date('2027-03-01T00:00:00Z');
    const { subscription } = await createSubscription(
      app.runtime.db,
      'system',
      { customerId: customer.id, planId: plan.body.id, startAt: start },
      start,
    );
    const id = subscription.id;
    // Stored before the kept rows existed (as before migration 0057): api_calls 10, peak 5 on Mar 2.
    for (const [eventId, code, value] of [
      ['pre-calls', 'api_calls', 10],
      ['pre-peak', 'peak', 5],
    ] as const) {
      await app.runtime.db
        .insertInto('usage_events')
        .values({
          id: `ue_${eventId}`,
          event_id: eventId,
          subscription_id: id,
          customer_id: customer.id,
          code,
          value: BigInt(value),
          properties: '{}',
          occurred_at: new Date('2027-03-02T00:00:00Z'),
        })
        .execute();
    }
    const record = (eventId: string, code: string, value: number, timestamp: string) =>
      recordUsageEvent(
        app.runtime.db,
        'system',
        { eventId, subscriptionId: id, code, value: BigInt(value), timestamp: new Date(timestamp) },
        new Date(timestamp),
      );
    await record('mar-calls', 'api_calls', 20, '2027-03-10T00:00:00Z');
    await record('mar-peak-3', 'peak', 3, '2027-03-11T00:00:00Z');
    await record('mar-peak-8', 'peak', 8, '2027-03-12T00:00:00Z');
    await record('mar-rows-1', 'rows', 1, '2027-03-13T00:00:00Z');
    await record('mar-rows-2', 'rows', 9, '2027-03-13T00:00:00Z');
    // The sweep behind on Apr 1: April's usage on Apr 2 and 3.
    await record('apr-calls', 'api_calls', 5, '2027-04-02T00:00:00Z');
    await record('apr-peak', 'peak', 4, '2027-04-03T00:00:00Z');
    const kept = await app.runtime.db
      .selectFrom('usage_period_totals')
      .select(['code', 'period_start', 'sum', 'max', 'count'])
      .where('subscription_id', '=', id)
      .orderBy('period_start')
      .orderBy('code')
      .execute();
    const summed = await sql<{ code: string; period_start: Date; sum: bigint; max: bigint; count: bigint }>`
      select e.code, t.period_start, sum(e.value) as sum, max(e.value) as max, count(*) as count
      from usage_events e join usage_period_totals t
        on t.subscription_id = e.subscription_id and t.code = e.code
        and e.occurred_at >= t.period_start and e.occurred_at < t.period_end
      where e.subscription_id = ${id}
      group by e.code, t.period_start order by t.period_start, e.code`.execute(app.runtime.db);
    expect(kept).toEqual(summed.rows);
    expect(
      kept.map((k) => [k.code, k.period_start.toISOString().slice(0, 10), k.sum, k.max, k.count]),
    ).toEqual([
      ['api_calls', '2027-03-01', 30n, 20n, 2n],
      ['peak', '2027-03-01', 16n, 8n, 3n],
      ['rows', '2027-03-01', 10n, 9n, 2n],
      ['api_calls', '2027-04-01', 5n, 5n, 1n],
      ['peak', '2027-04-01', 4n, 4n, 1n],
    ]);
    // Not invoiced yet: March 30 × 3 + 8 × 100 + 2 × 7 = 904; April 5 × 3 + 4 × 100 = 415.
    const estimate = await app.api('GET', `/v1/customers/${customer.id}/usage-estimate`);
    expect(estimate.body.totals).toEqual([{ currency: 'JPY', amount: 1319 }]);
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
      [1, 'JPY', 1904n],
      [2, 'JPY', 1415n],
    ]);
  });
});
