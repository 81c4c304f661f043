import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockInvoice } from '../../src/billing/invoices.ts';
import { cancelSubscription, createSubscription } from '../../src/billing/subscriptions.ts';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import type { Db } from '../../src/db/database.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordCollectionFailure } from '../../src/payments/dunning.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { actionsOf, ledgerIn } from '../support/collection.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

const d = (iso: string) => new Date(iso);

/**
 * Dunning's final CANCEL after the renewal sweep fell behind bills what a cancellation now by hand
 * bills: the periods started by then (renewedUpTo, as the sweep on time would have), then the usage up
 * to the cancellation (PRODUCT §11: usage is billed up to the moment a subscription ends).
 */
describe("dunning's final CANCEL while the renewal sweep is behind", () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  it('JPY: March unpaid, cancelled Apr 5 with April not renewed yet: April invoiced (1000 + March usage 200), the final invoice the April usage (100)', async () => {
    // 1000 a month and 2 per API call, no tax; from Mar 1 (March invoiced 1000 at once, left unpaid).
    const plan = await insertPlan(db, {
      currency: 'JPY',
      price: { model: 'FLAT_FEE', amount: 1000 },
      metered: [{ code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 2 } }],
    });
    const customer = await insertCustomer(db);
    const {
      subscription,
      invoices: [march],
    } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-03-01T00:00:00Z'),
    );
    const id = subscription.id;
    expect(march?.total).toBe(1000n);
    const calls = (value: bigint, at: string) =>
      recordUsageEvent(
        db,
        'system',
        { eventId: `${id}-${at}`, subscriptionId: id, code: 'api_calls', value, timestamp: d(at) },
        d(at),
      );
    // 100 calls in March (200), 50 in April (100): the sweep has not run since Mar 1.
    await calls(100n, '2027-03-20T00:00:00Z');
    await calls(50n, '2027-04-03T00:00:00Z');
    const apr1 = d('2027-04-01T00:00:00Z');
    const apr5 = d('2027-04-05T00:00:00Z');
    const step = await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      recordCollectionFailure(
        work,
        await lockInvoice(work, march!.id),
        { retryDays: [], finalAction: 'CANCEL' },
        apr5,
        { code: 'card_declined' },
      ),
    );
    expect(step.subscriptionStatus).toBe('CANCELLED');
    const invoices = await db
      .selectFrom('invoices')
      .select(['period_index', 'billing_reason', 'status', 'total', 'period_start', 'period_end'])
      .where('subscription_id', '=', id)
      .orderBy('created_at')
      // April's renewal and the final invoice are made in the cancellation's one transaction (one
      // created_at), and ids made in one millisecond sort at random: in the order numbered.
      .orderBy('number')
      .execute();
    // Before: April's 1000 was never billed; the final invoice billed Mar 1 – Apr 5's usage, 300.
    expect(invoices).toEqual([
      {
        period_index: 0,
        billing_reason: 'subscription_create',
        status: 'OPEN',
        total: 1000n,
        period_start: d('2027-03-01T00:00:00Z'),
        period_end: apr1,
      },
      {
        period_index: 1,
        billing_reason: 'subscription_cycle',
        status: 'OPEN',
        total: 1200n,
        period_start: apr1,
        period_end: d('2027-05-01T00:00:00Z'),
      },
      {
        period_index: null,
        billing_reason: 'subscription_update',
        status: 'OPEN',
        total: 100n,
        period_start: apr1,
        period_end: apr5,
      },
    ]);
    expect(
      await db
        .selectFrom('subscriptions')
        .select(['status', 'cancelled_at', 'current_period_index', 'usage_billed_until'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow(),
    ).toEqual({ status: 'CANCELLED', cancelled_at: apr5, current_period_index: 1, usage_billed_until: apr5 });
    expect(await actionsOf(app, id)).toEqual([
      'subscription.created',
      'subscription.renewed', // March, at its creation
      'subscription.renewed', // April, by the cancellation's catch-up
      'subscription.cancelled',
    ]);
    // 1000 + 1200 + 100 = 2300 owed, no tax.
    expect(await ledgerIn(app, 'JPY')).toEqual({ 'receivable:customer': 2300, revenue: -2300 });
  });
  it('NOK: a cancellation at period end or a fixed term ending in the gap ends it there (as a sweep on time would), invoicing nothing after it; the final CANCEL then cancels nothing more', async () => {
    // 1000 a month and 2 per API call, no tax; both from Mar 1 (March 1000, left unpaid), the sweep
    // never run since. One cancelled at period end on Mar 10, one with a term of 1 period.
    const plan = await insertPlan(db, {
      currency: 'NOK',
      price: { model: 'FLAT_FEE', amount: 1000 },
      metered: [{ code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 2 } }],
    });
    const apr1 = d('2027-04-01T00:00:00Z');
    const apr5 = d('2027-04-05T00:00:00Z');
    const scenario = async (repeat: number | null) => {
      const { subscription, invoices } = await createSubscription(
        db,
        'system',
        { customerId: await insertCustomer(db), planId: plan, repeat },
        d('2027-03-01T00:00:00Z'),
      );
      const id = subscription.id;
      if (repeat === null) await cancelSubscription(db, 'system', id, true, d('2027-03-10T00:00:00Z'));
      // 100 calls in March: 200, billed on the final invoice up to Apr 1.
      await recordUsageEvent(
        db,
        'system',
        {
          eventId: `${id}-march`,
          subscriptionId: id,
          code: 'api_calls',
          value: 100n,
          timestamp: d('2027-03-20T00:00:00Z'),
        },
        d('2027-03-20T00:00:00Z'),
      );
      const step = await inUnitOfWork(db, { actor: 'system' }, async (work) =>
        recordCollectionFailure(
          work,
          await lockInvoice(work, invoices[0]!.id),
          { retryDays: [], finalAction: 'CANCEL' },
          apr5,
          { code: 'card_declined' },
        ),
      );
      expect(step.subscriptionStatus).toBe('CANCELLED');
      const rows = await db
        .selectFrom('invoices')
        .select(['period_index', 'billing_reason', 'total', 'period_start', 'period_end'])
        .where('subscription_id', '=', id)
        .orderBy('created_at')
        .orderBy('number')
        .execute();
      // March's invoice, then the final one of March's usage up to the end (Apr 1): no April.
      expect(rows).toEqual([
        expect.objectContaining({ period_index: 0, total: 1000n }),
        {
          period_index: null,
          billing_reason: 'subscription_cycle',
          total: 200n,
          period_start: d('2027-03-01T00:00:00Z'),
          period_end: apr1,
        },
      ]);
      const sub = await db
        .selectFrom('subscriptions')
        .select(['status', 'cancelled_at', 'usage_billed_until'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      expect(sub).toEqual({ status: 'CANCELLED', cancelled_at: apr1, usage_billed_until: apr1 });
      const cancelled = await db
        .selectFrom('activities')
        .select(sql<string>`data->>'reason'`.as('reason'))
        .where('resource_id', '=', id)
        .where('action', '=', 'subscription.cancelled')
        .execute();
      expect(cancelled).toEqual([{ reason: repeat === null ? 'cancel_at_period_end' : 'term_completed' }]);
    };
    await scenario(null);
    await scenario(1);
    // Twice 1000 + 200 owed, no tax.
    expect(await ledgerIn(app, 'NOK')).toEqual({ 'receivable:customer': 2400, revenue: -2400 });
  });
});
