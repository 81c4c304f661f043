import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renewDueSubscriptions } from '../../src/billing/renewal.ts';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { STRIPE_API_BASE, startTestApp, type TestApp } from '../support/app.ts';
import { actionsOf, customerWith } from '../support/collection.ts';
import { ledgerByCode, stripeChargeSucceeds } from '../support/flow.ts';
import { stripeFixture } from '../support/stripe.ts';

const DAY = 86_400_000;

/**
 * A simulated year of a monthly subscription (USD 20.00 + 10% tax, anchored on January 31 so every
 * month-end clamp is exercised), driven day by day through the two billing sweeps with a simulated
 * clock, Stripe faked by nock. The April renewal is declined twice and recovered by dunning on its
 * day-3 retry. Checked against the invoices, the subscription's history and the ledger.
 */
describe('a year of a monthly subscription, with a failed charge recovered by dunning', () => {
  let app: TestApp;
  beforeAll(async () => {
    nock.disableNetConnect();
    nock.enableNetConnect(/127\.0\.0\.1/);
    app = await startTestApp();
    // Only this test's simulated clock drives charging.
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
    await app.runtime.boss.offWork(QUEUES.subscriptionRenew);
  });
  afterAll(async () => {
    await app.stop();
    nock.cleanAll();
    nock.enableNetConnect();
  });

  it('invoices twelve periods once each, collects every one, and the books balance', async () => {
    const { customer } = await customerWith(app, { stripe: true });
    const product = await app.api('POST', '/v1/products', { name: 'Hosting' });
    const plan = await app.api('POST', '/v1/plans', {
      product: product.body.id,
      name: 'Hosting monthly',
      currency: 'USD',
      interval: 'MONTH',
      price: { model: 'FLAT_FEE', amount: 2000 },
      tax_percent: '10',
    });
    expect(plan.status).toBe(201);
    const start = new Date('2027-01-31T09:00:00Z');
    const created = await app.api('POST', '/v1/subscriptions', {
      customer: customer.id,
      plan: plan.body.id,
      start_at: start.toISOString(),
    });
    expect(created.status).toBe(201);
    const subscription = created.body.id as string;

    let declines = 0;
    const decline = () => {
      const body = stripeFixture('api.payment_intent.create.card_declined.error.json');
      declines += 1;
      body.error.payment_intent.id = `pi_year_declined_${declines}`;
      body.error.charge = `ch_year_declined_${declines}`;
      nock(STRIPE_API_BASE).post('/v1/payment_intents').reply(402, body);
    };
    const statusOnDay: Record<string, string> = {};
    let aprilPaidOn: string | undefined;
    // One tick a day, at 10:00 UTC, for a year and a day; the April 30 renewal fails twice.
    for (let day = 0; day <= 366; day++) {
      const now = new Date(start.getTime() + day * DAY + 3_600_000);
      const today = now.toISOString().slice(0, 10);
      await renewDueSubscriptions(app.runtime.db, 'scheduler', now);
      const due = await app.runtime.db
        .selectFrom('invoices')
        .select('id')
        .where('subscription_id', '=', subscription)
        .where('status', '=', 'OPEN')
        .where('charge_at', '<=', now)
        .execute();
      for (const _ of due) {
        if (today === '2027-04-30' || today === '2027-05-01') decline();
        else stripeChargeSucceeds();
      }
      await chargeDueInvoices(app.runtime.db, 'scheduler', app.runtime, app.config, now);
      expect(nock.pendingMocks(), today).toEqual([]);
      statusOnDay[today] = (
        await app.runtime.db
          .selectFrom('subscriptions')
          .select('status')
          .where('id', '=', subscription)
          .executeTakeFirstOrThrow()
      ).status;
      const april = await app.runtime.db
        .selectFrom('invoices')
        .select('status')
        .where('subscription_id', '=', subscription)
        .where('period_index', '=', 3)
        .executeTakeFirst();
      if (april?.status === 'PAID') aprilPaidOn ??= today;
    }

    // Twelve periods (Jan 31 … Dec 31 2027) and the one starting on Jan 31 2028: each invoiced once.
    const cycles = await app.api('GET', `/v1/subscriptions/${subscription}/billing-cycles`);
    expect(cycles.status).toBe(200);
    expect(cycles.body.data.map((c: { period_start: string }) => c.period_start.slice(0, 10))).toEqual([
      '2027-01-31',
      '2027-02-28',
      '2027-03-31',
      '2027-04-30',
      '2027-05-31',
      '2027-06-30',
      '2027-07-31',
      '2027-08-31',
      '2027-09-30',
      '2027-10-31',
      '2027-11-30',
      '2027-12-31',
      '2028-01-31',
    ]);
    const invoices = await app.runtime.db
      .selectFrom('invoices')
      .selectAll()
      .where('subscription_id', '=', subscription)
      .orderBy('period_index')
      .execute();
    expect(invoices).toHaveLength(13);
    for (const invoice of invoices) {
      expect(invoice).toMatchObject({ status: 'PAID', subtotal: 2000n, tax: 200n, total: 2200n });
      expect(invoice.amount_paid).toBe(2200n);
    }
    // April's invoice: two declined attempts (on the renewal and the day-1 retry), paid on day 3.
    const april = invoices[3]!;
    expect(april.payment_attempts).toBe(2);
    expect(aprilPaidOn).toBe('2027-05-03');
    const attempts = await app.runtime.db
      .selectFrom('transactions')
      .select(['status', 'failure_code'])
      .where('invoice_id', '=', april.id)
      .orderBy('created_at')
      .execute();
    expect(attempts.map((a) => a.status)).toEqual(['failed', 'failed', 'succeeded']);
    expect(attempts[0]!.failure_code).toBe('card_declined');

    // PAST_DUE from the failed renewal until the retry succeeded, ACTIVE the rest of the year.
    expect(statusOnDay['2027-04-29']).toBe('ACTIVE');
    expect(statusOnDay['2027-04-30']).toBe('PAST_DUE');
    expect(statusOnDay['2027-05-02']).toBe('PAST_DUE');
    expect(statusOnDay['2027-05-03']).toBe('ACTIVE');
    expect(statusOnDay['2028-02-01']).toBe('ACTIVE');
    const history = (await actionsOf(app, subscription)).filter((a) => a !== 'subscription.renewed');
    expect(history).toEqual(['subscription.created', 'subscription.past_due', 'subscription.active']);

    // The books: 13 × 20.00 revenue, 13 × 2.00 tax, all of it collected through Stripe's clearing.
    const ledger = await ledgerByCode(app);
    expect(ledger).toMatchObject({
      'revenue USD': -26_000,
      'tax_payable USD': -2_600,
      'gateway_clearing:stripe USD': 28_600,
      'receivable:customer USD': 0,
    });
    const customerAnswer = await app.api('GET', `/v1/customers/${customer.id}`);
    expect(customerAnswer.body.balances).toEqual([{ currency: 'USD', balance: 0 }]);
    const sums: Record<string, number> = {};
    for (const [key, balance] of Object.entries(ledger)) {
      const currency = key.split(' ')[1]!;
      sums[currency] = (sums[currency] ?? 0) + balance;
    }
    expect(sums).toEqual({ USD: 0 });
  }, 180_000);
});
