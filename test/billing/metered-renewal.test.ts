import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renewDueSubscriptions } from '../../src/billing/renewal.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { customerWith } from '../support/collection.ts';

/** Metered prices at renewal: a period's usage is billed in arrears on the next period's invoice. */
describe('metered usage on renewal invoices', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  afterAll(() => app.stop());

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
    await renewDueSubscriptions(app.runtime.db, new Date('2027-03-01T00:10:00Z'));
    const usage = [
      ['e1', 900, '2027-03-05T10:00:00Z'],
      ['e2', 600, '2027-03-31T23:59:59Z'],
      ['e3', 50, '2027-04-01T00:00:00Z'], // April's: billed in May
    ] as const;
    for (const [eventId, value, timestamp] of usage) {
      const posted = await app.api('POST', '/v1/usage-events', {
        event_id: eventId,
        subscription: subscription.id,
        code: 'api_calls',
        value,
        timestamp,
      });
      expect(posted.status).toBe(201);
    }
    await renewDueSubscriptions(app.runtime.db, new Date('2027-04-01T00:10:00Z'));
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
});
