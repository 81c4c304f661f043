import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockInvoice } from '../../src/billing/invoices.ts';
import { renewDueSubscriptions } from '../../src/billing/renewal.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import { ValidationError } from '../../src/errors.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { recordCollectionFailure } from '../../src/payments/dunning.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, ledgerIn } from '../support/collection.ts';
import { insertPlan } from '../support/plans.ts';

const d = (iso: string) => new Date(iso);

/**
 * PRODUCT §11: a usage event outside the period it can still be billed in is refused (422), never
 * dropped. A subscription's scheduled end (a cancellation at a date, the end of a fixed term) is
 * where its final invoice stops billing usage: an event at or after it is refused, even within the
 * 5 minutes an event may be ahead of the clock.
 */
describe('usage after a scheduled end is refused (422, field timestamp), never accepted and dropped', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  afterAll(() => app.stop());
  const db = () => app.runtime.db;

  /** A plan of `currency`: 1000 a month, and 2 per API call (SUM of `api_calls`), no tax. */
  const meteredPlan = (currency: string) =>
    insertPlan(db(), {
      currency,
      price: { model: 'FLAT_FEE', amount: 1000 },
      metered: [{ code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 2 } }],
    });

  /** A subscription of a new customer to `plan` from March 1st 2027 (`repeat` periods, or none). */
  async function subscribed(plan: string, repeat?: number) {
    const { customer } = await customerWith(app);
    const start = d('2027-03-01T00:00:00Z');
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer.id, planId: plan, startAt: start, ...(repeat ? { repeat } : {}) },
      start,
    );
    return subscription.id;
  }

  /** Records `value` API calls at `at` on `subscription`, the clock at `now`: the field-level refusal, or 'accepted'. */
  const usage = (subscription: string, value: bigint, at: string, now: string) =>
    recordUsageEvent(
      db(),
      'system',
      {
        eventId: `${subscription}-${at}`,
        subscriptionId: subscription,
        code: 'api_calls',
        value,
        timestamp: d(at),
      },
      d(now),
    ).then(
      () => 'accepted',
      (error: unknown) => {
        if (!(error instanceof ValidationError)) throw error;
        return error.fields;
      },
    );

  /** What subscription `id`'s invoices billed for API calls (minor units), and their totals. */
  async function billed(id: string) {
    const invoices = await db()
      .selectFrom('invoices')
      .select(['id', 'total'])
      .where('subscription_id', '=', id)
      .orderBy('created_at')
      .execute();
    const usageLines = await db()
      .selectFrom('invoice_lines')
      .select(['quantity', 'amount'])
      .where(
        'invoice_id',
        'in',
        invoices.map((i) => i.id),
      )
      .where('metric_code', '=', 'api_calls')
      .execute();
    return { totals: invoices.map((i) => i.total), usage: usageLines.map((l) => [l.quantity, l.amount]) };
  }

  it('after a cancellation at a date: refused from cancel_at on, before the renewal sweep; usage before it billed on the final invoice', async () => {
    const id = await subscribed(await meteredPlan('EUR'));
    await cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      id,
      { when: 'date', cancelAt: d('2027-03-10T00:00:00Z'), refundType: 'none' },
      d('2027-03-05T00:00:00Z'),
    );
    const ends = { timestamp: 'is after the subscription ends (2027-03-10T00:00:00.000Z)' };
    // An hour after it, the sweep not run yet (the subscription is still ACTIVE): it can never be billed.
    expect(await usage(id, 100n, '2027-03-10T01:00:00Z', '2027-03-10T01:00:00Z')).toEqual(ends);
    // Two minutes before it, an event a minute after it: within the 5 minutes allowed ahead, still after the end.
    expect(await usage(id, 100n, '2027-03-10T00:01:00Z', '2027-03-09T23:58:00Z')).toEqual(ends);
    expect(await usage(id, 100n, '2027-03-10T00:00:00Z', '2027-03-10T00:00:00Z')).toEqual(ends);
    // The last instant before it is billed: 30 calls × 2 = 60 on the final invoice.
    expect(await usage(id, 30n, '2027-03-09T23:59:59.999Z', '2027-03-09T23:59:59.999Z')).toBe('accepted');
    await renewDueSubscriptions(db(), 'system', d('2027-03-10T02:00:00Z'));
    expect(await billed(id)).toEqual({ totals: [1000n, 60n], usage: [[30, 60n]] });
    expect(await ledgerIn(app, 'EUR')).toEqual({ 'receivable:customer': 1060, revenue: -1060 });
  });

  it('cancelled now: usage recorded ahead of the clock (within the 5 minutes allowed) is billed on the final invoice, not dropped', async () => {
    // EUR 10.00 a month + 0.02 a call. On Mar 10 at 12:00, 40 calls stamped 12:00 and 25 calls stamped
    // 12:03 (3 minutes ahead: accepted), then cancelled now (12:00): the final invoice bills all 65
    // calls, 1.30. Before: none (it billed [.., 12:00), the instant of the end and after it left out),
    // and nothing bills a CANCELLED subscription again: 65 accepted calls never billed.
    const id = await subscribed(await meteredPlan('EUR'));
    expect(await usage(id, 40n, '2027-03-10T12:00:00Z', '2027-03-10T12:00:00Z')).toBe('accepted');
    expect(await usage(id, 25n, '2027-03-10T12:03:00Z', '2027-03-10T12:00:00Z')).toBe('accepted');
    await cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      id,
      { when: 'now', refundType: 'none' },
      d('2027-03-10T12:00:00Z'),
    );
    expect(await billed(id)).toEqual({ totals: [1000n, 130n], usage: [[65, 130n]] });
    const sub = await db()
      .selectFrom('subscriptions')
      .select(['status', 'usage_billed_until'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(sub.status).toBe('CANCELLED');
    // Every stored event before what is billed: none left unbilled.
    const after = await db()
      .selectFrom('usage_events')
      .select('id')
      .where('subscription_id', '=', id)
      .where('occurred_at', '>=', sub.usage_billed_until!)
      .execute();
    expect(after).toEqual([]);
  });

  it("dunning's final cancellation bills usage recorded ahead of the clock on its final invoice, not dropped", async () => {
    // EUR 10.00 a month + 0.02 a call; March's invoice (10.00) unpaid. On Mar 10 at 12:00, 25 calls
    // stamped 12:02 (ahead: accepted); the charge fails at 12:00 with no retry left: CANCEL. The final
    // invoice bills the 25 calls, 0.50. Before: nothing (billed up to 12:00), never billed after.
    const id = await subscribed(await meteredPlan('EUR'));
    expect(await usage(id, 25n, '2027-03-10T12:02:00Z', '2027-03-10T12:00:00Z')).toBe('accepted');
    const march = await db()
      .selectFrom('invoices')
      .select('id')
      .where('subscription_id', '=', id)
      .executeTakeFirstOrThrow();
    const step = await inUnitOfWork(db(), { actor: 'system' }, async (work) =>
      recordCollectionFailure(
        work,
        await lockInvoice(work, march.id),
        { retryDays: [], finalAction: 'CANCEL' },
        d('2027-03-10T12:00:00Z'),
        { code: 'card_declined' },
      ),
    );
    expect(step.subscriptionStatus).toBe('CANCELLED');
    expect(await billed(id)).toEqual({ totals: [1000n, 50n], usage: [[25, 50n]] });
  });

  it('cancelled at a date a minute ahead, after usage stamped beyond it was accepted: the final invoice bills it, not dropped', async () => {
    // EUR 10.00 a month + 0.02 a call. At 12:00 on Mar 10, 25 calls stamped 12:04 (ahead: accepted),
    // then a cancellation at 12:01 (later than now: allowed). The sweep at 12:10 ends it: its final
    // invoice bills the 25 calls, 0.50. Before: billed up to 12:01, the 25 calls never billed.
    const id = await subscribed(await meteredPlan('EUR'));
    expect(await usage(id, 25n, '2027-03-10T12:04:00Z', '2027-03-10T12:00:00Z')).toBe('accepted');
    await cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      id,
      { when: 'date', cancelAt: d('2027-03-10T12:01:00Z'), refundType: 'none' },
      d('2027-03-10T12:00:00Z'),
    );
    await renewDueSubscriptions(db(), 'system', d('2027-03-10T12:10:00Z'));
    expect(await billed(id)).toEqual({ totals: [1000n, 50n], usage: [[25, 50n]] });
    const sub = await db()
      .selectFrom('subscriptions')
      .select(['status', 'cancelled_at'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(sub).toEqual({ status: 'CANCELLED', cancelled_at: d('2027-03-10T12:01:00Z') });
  });

  it('after the end of a fixed term (repeat): refused from the start of period repeat on, even within the 5 minutes ahead', async () => {
    // One month: the term ends on April 1st, when period 1 would start.
    const id = await subscribed(await meteredPlan('GBP'), 1);
    const ends = { timestamp: 'is after the subscription ends (2027-04-01T00:00:00.000Z)' };
    expect(await usage(id, 100n, '2027-04-01T00:30:00Z', '2027-04-01T00:30:00Z')).toEqual(ends);
    expect(await usage(id, 100n, '2027-04-01T00:02:00Z', '2027-03-31T23:59:00Z')).toEqual(ends);
    expect(await usage(id, 40n, '2027-03-31T23:59:00Z', '2027-03-31T23:59:00Z')).toBe('accepted');
    await renewDueSubscriptions(db(), 'system', d('2027-04-01T01:00:00Z'));
    const sub = await db()
      .selectFrom('subscriptions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(sub.status).toBe('CANCELLED');
    // March 1000, then the final invoice: 40 calls × 2 = 80.
    expect(await billed(id)).toEqual({ totals: [1000n, 80n], usage: [[40, 80n]] });
    expect(await ledgerIn(app, 'GBP')).toEqual({ 'receivable:customer': 1080, revenue: -1080 });
  });

  it('over HTTP: an event after cancel_at within the 5 minutes ahead is 422 with field timestamp; nothing stored', async () => {
    const product = (await app.api('POST', '/v1/products', { name: 'Calls' })).body.id;
    const plan = await app.api('POST', '/v1/plans', {
      product,
      name: 'Calls monthly',
      currency: 'CHF',
      interval: 'MONTH',
      price: { model: 'FLAT_FEE', amount: 1000 },
      metered: [{ code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 2 } }],
    });
    expect(plan.status).toBe(201);
    const { customer } = await customerWith(app);
    const sub = (await app.api('POST', '/v1/subscriptions', { customer: customer.id, plan: plan.body.id }))
      .body;
    // Four minutes ahead; the event half a minute after it: less than 5 minutes ahead of the server's clock.
    const cancelAt = new Date(Date.now() + 240_000);
    const cancel = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, {
      when: 'date',
      cancel_at: cancelAt.toISOString(),
    });
    expect(cancel.status).toBe(200);
    const late = await app.api('POST', '/v1/usage-events', {
      event_id: `${sub.id}-late`,
      subscription: sub.id,
      code: 'api_calls',
      value: 5,
      timestamp: new Date(cancelAt.getTime() + 30_000).toISOString(),
    });
    expect(late.status).toBe(422);
    expect(late.body.error.fields).toEqual({
      timestamp: `is after the subscription ends (${cancelAt.toISOString()})`,
    });
    const stored = await app.api('GET', `/v1/usage-events?subscription=${sub.id}`);
    expect(stored.body.data).toEqual([]);
  });
});
