import { type Kysely, sql } from 'kysely';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { down, up } from '../../migrations/0056_subscription_cancellation.ts';
import { cancellationReach } from '../../src/billing/credit-returns.ts';
import { renewSubscription } from '../../src/billing/renewal.ts';
import { transitionSubscription } from '../../src/billing/subscription-status.ts';
import { reactivateSubscription, suspendSubscription } from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, flatPlan, subscribedAndPaid } from '../support/collection.ts';
import { stripeRefundSucceeds } from '../support/flow.ts';

const d = (iso: string) => new Date(iso);

/**
 * A subscription stores its latest cancellation's refund type and the moment its refund counted from
 * (`cancellation_refund_type`, `cancellation_effective_at`: migration 0056), written by every
 * cancellation path, read by billing/credit-returns.ts `cancellationReach` instead of the activity
 * log; the migration backfills existing rows from that log to what the code writes now. Plans of
 * 2000 CZK + 25% tax (2500 a period of 28 days from Feb 1 2027), paid by card.
 */
describe('migration 0056: a subscription stores its cancellation facts', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
    await app.runtime.boss.offWork(QUEUES.invoiceRefund);
    await app.runtime.boss.offWork(QUEUES.refundRecover);
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());

  const cancel = (
    id: string,
    options: {
      when: 'now' | 'period_end' | 'date';
      refundType: 'none' | 'full' | 'prorate';
      cancelAt?: Date;
    },
    at: string,
  ) =>
    cancelSubscriptionWithRefund(
      db,
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      id,
      options,
      d(at),
    );
  const paidFeb1 = async (plan: string) => {
    const { customer, method } = await customerWith(app, { stripe: true });
    return subscribedAndPaid(app, {
      customer: customer.id,
      plan,
      method: method!.id,
      start: d('2027-02-01T00:00:00Z'),
    });
  };
  const facts = (ids: string[]) =>
    db
      .selectFrom('subscriptions')
      .select(['id', 'status', 'cancellation_refund_type', 'cancellation_effective_at'])
      .where('id', 'in', ids)
      .orderBy('id')
      .execute();

  it('each cancellation path stores its refund type and effective moment, and the backfill from the activity log gives the same', async () => {
    const plan = await flatPlan(app, 'CZK', 2000);
    // Now, prorate, on Feb 15: 2500 × 14/28 = 1250 refunded.
    const now = await paidFeb1(plan);
    stripeRefundSucceeds('re_CZK_now');
    const cancelledNow = await cancel(now.id, { when: 'now', refundType: 'prorate' }, '2027-02-15T00:00:00Z');
    expect(cancelledNow.refunds.map((r) => r.amount)).toEqual([1250n]);
    // At a date (Feb 22), full, scheduled Feb 8; replaced by a cancel-now with none on Feb 10.
    const replaced = await paidFeb1(plan);
    stripeRefundSucceeds('re_CZK_date');
    await cancel(
      replaced.id,
      { when: 'date', refundType: 'full', cancelAt: d('2027-02-22T00:00:00Z') },
      '2027-02-08T00:00:00Z',
    );
    expect(await facts([replaced.id])).toEqual([
      {
        id: replaced.id,
        status: 'ACTIVE',
        cancellation_refund_type: 'full',
        cancellation_effective_at: d('2027-02-22T00:00:00Z'),
      },
    ]);
    await cancel(replaced.id, { when: 'now', refundType: 'none' }, '2027-02-10T00:00:00Z');
    // At period end (Mar 1), none; the renewal then ends it, keeping the facts.
    const atEnd = await paidFeb1(plan);
    await cancel(atEnd.id, { when: 'period_end', refundType: 'none' }, '2027-02-05T00:00:00Z');
    await renewSubscription(db, 'system', atEnd.id, d('2027-03-01T00:00:00Z'));
    // At a date (Feb 20), prorate (2500 × 9/28 = 803.6, 804 refunded), then dunning's cancellation on Feb 12
    // (as payments/dunning.ts ends one): the scheduled refund stands.
    const dunnedAfter = await paidFeb1(plan);
    stripeRefundSucceeds('re_CZK_dunned');
    const scheduled = await cancel(
      dunnedAfter.id,
      { when: 'date', refundType: 'prorate', cancelAt: d('2027-02-20T00:00:00Z') },
      '2027-02-06T00:00:00Z',
    );
    expect(scheduled.refunds.map((r) => r.amount)).toEqual([804n]);
    // Dunning's alone, Feb 12: none, from then.
    const dunned = await paidFeb1(plan);
    for (const id of [dunnedAfter.id, dunned.id]) {
      await inUnitOfWork(db, { actor: 'system' }, async (work) => {
        const row = await work.trx
          .selectFrom('subscriptions')
          .selectAll()
          .where('id', '=', id)
          .executeTakeFirstOrThrow();
        await transitionSubscription(work, row, 'CANCELLED', d('2027-02-12T00:00:00Z'), {
          reason: 'dunning',
        });
      });
    }
    const ids = [now.id, replaced.id, atEnd.id, dunnedAfter.id, dunned.id];
    const written = await facts(ids);
    const expected = new Map([
      [now.id, ['prorate', '2027-02-15T00:00:00Z']],
      [replaced.id, ['none', '2027-02-10T00:00:00Z']],
      [atEnd.id, ['none', '2027-03-01T00:00:00Z']],
      [dunnedAfter.id, ['prorate', '2027-02-20T00:00:00Z']],
      [dunned.id, ['none', '2027-02-12T00:00:00Z']],
    ]);
    expect(written).toEqual(
      ids
        .map((id) => ({
          id,
          status: 'CANCELLED',
          cancellation_refund_type: expected.get(id)![0],
          cancellation_effective_at: d(expected.get(id)![1]!),
        }))
        .sort((a, b) => (a.id < b.id ? -1 : 1)),
    );
    // As the migrator runs it: in a transaction, on an untyped database.
    await db.transaction().execute(async (trx) => {
      await down(trx as unknown as Kysely<unknown>);
      await up(trx as unknown as Kysely<unknown>);
    });
    expect(await facts(ids)).toEqual(written);
  });

  it('a cancellation at a date with prorate, suspended and reactivated after that date: ended at its date keeping prorate from then, so cancellationReach still says its period was refunded', async () => {
    const plan = await flatPlan(app, 'HUF', 2000);
    // At Feb 20, prorate, scheduled Feb 6: 2500 × 9/28 = 803.6, 804 refunded.
    const sub = await paidFeb1(plan);
    stripeRefundSucceeds('re_HUF_date');
    const scheduled = await cancel(
      sub.id,
      { when: 'date', refundType: 'prorate', cancelAt: d('2027-02-20T00:00:00Z') },
      '2027-02-06T00:00:00Z',
    );
    expect(scheduled.refunds.map((r) => r.amount)).toEqual([804n]);
    await suspendSubscription(db, 'system', sub.id, d('2027-02-10T00:00:00Z'));
    // Reactivated on Feb 25, after its date: the renewal ends it at Feb 20, bills nothing after it.
    await reactivateSubscription(db, 'system', sub.id, d('2027-02-25T00:00:00Z'));
    expect(await facts([sub.id])).toEqual([
      {
        id: sub.id,
        status: 'CANCELLED',
        cancellation_refund_type: 'prorate',
        cancellation_effective_at: d('2027-02-20T00:00:00Z'),
      },
    ]);
    const invoice = await db
      .selectFrom('invoices')
      .selectAll()
      .where('id', '=', sub.invoice.id)
      .executeTakeFirstOrThrow();
    expect(await cancellationReach(db, invoice)).toEqual({ kind: 'refunded', refundType: 'prorate' });
  });

  it('the backfill of rows whose activities name no refund_type (written before they did): none from cancelled_at when CANCELLED, nothing while a cancellation is only scheduled; down then up gives the same', async () => {
    const plan = await flatPlan(app, 'RSD', 2000);
    // Cancelled now with prorate on Feb 15 (1250 refunded), its activity then stripped of refund_type.
    const now = await paidFeb1(plan);
    stripeRefundSucceeds('re_RSD_now');
    await cancel(now.id, { when: 'now', refundType: 'prorate' }, '2027-02-15T00:00:00Z');
    // Scheduled at a date (Feb 22) with none on Feb 8, ended by the renewal on Feb 22.
    const ended = await paidFeb1(plan);
    await cancel(
      ended.id,
      { when: 'date', refundType: 'none', cancelAt: d('2027-02-22T00:00:00Z') },
      '2027-02-08T00:00:00Z',
    );
    await renewSubscription(db, 'system', ended.id, d('2027-02-22T00:00:00Z'));
    // Scheduled at period end (Mar 1) with none on Feb 5, still ACTIVE.
    const scheduled = await paidFeb1(plan);
    await cancel(scheduled.id, { when: 'period_end', refundType: 'none' }, '2027-02-05T00:00:00Z');
    const ids = [now.id, ended.id, scheduled.id];
    // As rows written before activities named it (the log is append-only: its trigger set aside
    // for this one transaction of the test's own database).
    await db.transaction().execute(async (trx) => {
      await sql`ALTER TABLE activities DISABLE TRIGGER activities_no_update`.execute(trx);
      await sql`UPDATE activities SET data = data - 'refund_type' WHERE resource_id IN (${sql.join(ids)})`.execute(
        trx,
      );
      await sql`ALTER TABLE activities ENABLE TRIGGER activities_no_update`.execute(trx);
      await down(trx as unknown as Kysely<unknown>);
      await up(trx as unknown as Kysely<unknown>);
    });
    const expected = (id: string, status: string, type: string | null, at: string | null) => ({
      id,
      status,
      cancellation_refund_type: type,
      cancellation_effective_at: at === null ? null : d(at),
    });
    expect(await facts(ids)).toEqual(
      [
        expected(now.id, 'CANCELLED', 'none', '2027-02-15T00:00:00Z'),
        expected(ended.id, 'CANCELLED', 'none', '2027-02-22T00:00:00Z'),
        expected(scheduled.id, 'ACTIVE', null, null),
      ].sort((a, b) => (a.id < b.id ? -1 : 1)),
    );
    // Down then up again: the same.
    await db.transaction().execute(async (trx) => {
      await down(trx as unknown as Kysely<unknown>);
      await up(trx as unknown as Kysely<unknown>);
    });
    expect((await facts(ids)).map((f) => f.cancellation_refund_type)).toEqual(
      [...ids].sort().map((id) => (id === scheduled.id ? null : 'none')),
    );
  });
});
