import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import type { TestApp } from '../support/app.ts';
import { customerWith, downgradeCredit } from '../support/collection.ts';
import { balancedWithoutDeadlocks, createTestDatabase } from '../support/database.ts';
import { byDepth } from '../support/depth.ts';
import { stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { insertPlan } from '../support/plans.ts';

const _d = (iso: string) => new Date(iso);

/**
 * A refund of a customer's credit racing a cancellation of one of their subscriptions (PRODUCT §11):
 * the cancellation locks its period's invoice, then (its final usage invoice's finalization using the
 * customer's credit) the customer; the credit refund goes back through the period's payment and locks
 * that invoice too. Every unit of work locks an invoice before its customer, so they serialise; the
 * credit refund used to lock the customer first, and the two could deadlock (PostgreSQL aborts one
 * with 40P01, answered 500). The database detects deadlocks after 20 ms (`deadlock_timeout`), so a
 * deadlock shows at once. Each round: both requests at the same moment; each answers a success or a
 * clean 409/422, never a 500, at least one succeeds, the customer's credit is all accounted for and
 * the card gives back no more than it took; at the end the books balance and PostgreSQL counted no
 * deadlock.
 */
describe('a credit refund racing a cancellation of the same customer', () => {
  let app: TestApp;
  beforeAll(async () => {
    const url = await createTestDatabase({ settings: { deadlock_timeout: '20ms' } });
    app = await startOfflineTestApp({ DATABASE_URL: url });
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => stopOfflineTestApp(app));

  const db = () => app.runtime.db;

  /**
   * A customer paying 1000 EUR (800 + 25%) by card for a metered subscription's period, with 30 API
   * calls used since and 300 EUR of credit from a downgrade of another subscription: (1960 − 1000) ×
   * 7/28 = 240 net + 60 tax.
   */
  async function customerReady(round: number) {
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await insertPlan(db(), {
      name: `Metered ${round}`,
      currency: 'EUR',
      price: { model: 'FLAT_FEE', amount: 800 },
      metered: [{ code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 2 } }],
      taxRatePpm: 250_000,
    });
    const sub = (
      await app.api('POST', '/v1/subscriptions', { customer: customer.id, plan, payment_method: method!.id })
    ).body;
    const charge = stripeChargeSucceeds();
    await app.api('POST', `/v1/subscriptions/${sub.id}/settle`);
    expect(charge.scope.isDone()).toBe(true);
    const now = new Date();
    await recordUsageEvent(
      db(),
      'system',
      { eventId: `calls-${round}`, subscriptionId: sub.id, code: 'api_calls', value: 30n, timestamp: now },
      now,
    );
    await downgradeCredit(app, customer.id, 'EUR', 1960);
    expect((await app.api('GET', `/v1/customers/${customer.id}`)).body.credit).toEqual([
      { currency: 'EUR', amount: 300 },
    ]);
    return { customer: customer.id as string, subscription: sub.id as string };
  }

  it('both succeed or one is refused cleanly, never a deadlock (500)', async () => {
    const rounds = byDepth(12, 30);
    for (let round = 0; round < rounds; round++) {
      const { customer, subscription } = await customerReady(round);
      // Stripe answers each refund `succeeded` (the credit refund's and the cancellation's).
      stripeRefundSucceeds(`re_race_${round}_a`);
      stripeRefundSucceeds(`re_race_${round}_b`);
      // 100 of the 300 credit back through the period's payment, and the subscription cancelled now
      // with a full refund: its final invoice (30 calls × 2 = 60 + 25% = 75) takes the credit left.
      const [credit, cancel] = await Promise.all([
        app.api('POST', `/v1/customers/${customer}/credit/refund`, { amount: 100, currency: 'EUR' }),
        app.api('POST', `/v1/subscriptions/${subscription}/cancel`, { refund_type: 'full' }),
      ]);
      expect([201, 409, 422], JSON.stringify(credit.body)).toContain(credit.status);
      expect([200, 409], JSON.stringify(cancel.body)).toContain(cancel.status);
      // One of the two goes first and succeeds; the other sees what it did.
      expect(credit.status === 201 || cancel.status === 200).toBe(true);
      // The customer's 300 of credit is all accounted for: what is left, what went back to the card
      // and what the final usage invoice took (`credit_applied`); nothing is counted twice or lost.
      const applied = await db()
        .selectFrom('invoices')
        .select(sql<string>`coalesce(sum(credit_applied), 0)::text`.as('sum'))
        .where('customer_id', '=', customer)
        .executeTakeFirstOrThrow();
      const left = (await app.api('GET', `/v1/customers/${customer}`)).body.credit[0]?.amount ?? 0;
      expect(left + (credit.status === 201 ? 100 : 0) + Number(applied.sum)).toBe(300);
      // The period's card payment never gives back more than it took: 1000.
      const back = await db()
        .selectFrom('refunds')
        .innerJoin('transactions', 'transactions.id', 'refunds.transaction_id')
        .innerJoin('invoices', 'invoices.id', 'transactions.invoice_id')
        .select(sql<string>`coalesce(sum(refunds.amount), 0)::text`.as('sum'))
        .where('invoices.subscription_id', '=', subscription)
        .where('refunds.status', '!=', 'failed')
        .executeTakeFirstOrThrow();
      expect(Number(back.sum)).toBeLessThanOrEqual(1000);
      nock.cleanAll();
    }
    // The books balance: the postings of every entry in EUR sum to 0; and PostgreSQL found no deadlock
    // in this database (pg_stat_database counts the 40P01 aborts).
    await balancedWithoutDeadlocks(db(), 'EUR');
  });
});
