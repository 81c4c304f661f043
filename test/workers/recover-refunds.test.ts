import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { abandonOrphanedRefunds } from '../../src/payments/refund-retry.ts';
import { createRefund } from '../../src/payments/refunds.ts';
import { deadQueueOf, QUEUES } from '../../src/queue/queues.ts';
import { deleteDeadLetter } from '../../src/workers/dead-letters.ts';
import type { TestApp } from '../support/app.ts';
import { paidStripeInvoice, stripeRefundSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { waitFor, wakeWorkers } from '../support/wait.ts';

/**
 * `refund.recover` (PRODUCT.md §8): every minute, refunds committed but never answered (the process
 * stopped between committing the refund and recording the gateway's answer) are marked unknown and
 * handed to `invoice.refund`.
 */
describe('refund.recover', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => stopOfflineTestApp(app));

  it('is a sweep scheduled every minute, with retries and a dead-letter queue', async () => {
    const { boss } = app.runtime;
    const schedules = await boss.getSchedules();
    expect(schedules.filter((s) => s.name === QUEUES.refundRecover).map((s) => s.cron)).toEqual([
      '* * * * *',
    ]);
    expect(await boss.getQueue(QUEUES.refundRecover)).toMatchObject({
      retryLimit: 2,
      deadLetter: `${QUEUES.refundRecover}.dead`,
    });
  });

  it('marks a refund never answered unknown as the scheduler, and invoice.refund repeats it', async () => {
    const { transaction } = await paidStripeInvoice(app);
    const { db, boss } = app.runtime;
    const refund = await inUnitOfWork(db, { actor: 'system' }, async (work) => {
      const txn = await work.trx
        .selectFrom('transactions')
        .selectAll()
        .where('id', '=', transaction.id)
        .executeTakeFirstOrThrow();
      // The refund row was committed `pending`; the process stopped before the gateway answered.
      return createRefund(work, txn, { amount: 300n });
    });
    await db
      .updateTable('refunds')
      .set({ created_at: new Date(Date.now() - 11 * 60_000) })
      .where('id', '=', refund.id)
      .execute();
    const stripe = stripeRefundSucceeds('re_stripe_recovered');

    // One tick of the schedule, as pg-boss's cron sends it, worked by the running worker.
    const jobId = await boss.send(QUEUES.refundRecover, {});
    // Fetched now rather than at the workers' next poll (5 s), here and for the job it queues.
    wakeWorkers(boss, QUEUES.refundRecover);
    await waitFor('the refund.recover job to complete', async () => {
      const job = jobId ? await boss.getJobById(QUEUES.refundRecover, jobId) : null;
      return job?.state === 'completed' ? job : undefined;
    });
    wakeWorkers(boss, QUEUES.invoiceRefund);
    const settled = await waitFor('invoice.refund to settle the recovered refund', async () => {
      const row = await db.selectFrom('refunds').selectAll().where('id', '=', refund.id).executeTakeFirst();
      return row?.status === 'succeeded' ? row : undefined;
    });
    expect(settled).toMatchObject({ gateway_refund_id: 're_stripe_recovered', amount: 300n });
    expect(stripe.isDone()).toBe(true);
    const activities = await db
      .selectFrom('activities')
      .select(['action', 'actor'])
      .where('resource_id', '=', refund.id)
      .orderBy('sequence')
      .execute();
    expect(activities).toEqual([
      { action: 'refund.created', actor: 'system' },
      { action: 'refund.unknown', actor: 'scheduler' },
      { action: 'refund.succeeded', actor: 'worker' },
    ]);
    expect(app.logs).toContainEqual(
      expect.objectContaining({
        msg: 'refund.recover queued refunds that never got an answer recorded',
        refunds: [refund.id],
      }),
    );
  });

  it('hands an unknown refund to a person once no job will settle it: its dead letter deleted, or expired', async () => {
    const { invoice, transaction } = await paidStripeInvoice(app);
    const { db, boss } = app.runtime;
    // Two refunds Stripe left unknown whose invoice.refund jobs kept failing (their gateway account's
    // credentials did not decrypt, say): each a dead letter.
    const unknownRefund = async (amount: bigint) => {
      const refund = await inUnitOfWork(db, { actor: 'system' }, async (work) => {
        const txn = await work.trx
          .selectFrom('transactions')
          .selectAll()
          .where('id', '=', transaction.id)
          .executeTakeFirstOrThrow();
        return createRefund(work, txn, { amount });
      });
      await db.updateTable('refunds').set({ status: 'unknown' }).where('id', '=', refund.id).execute();
      const dead = (await boss.send(deadQueueOf(QUEUES.invoiceRefund), { refundId: refund.id }))!;
      return { refund, dead };
    };
    const deleted = await unknownRefund(500n);
    const expired = await unknownRefund(300n);
    const exceptionsOf = (refundId: string) =>
      db
        .selectFrom('reconciliation_exceptions')
        .select(['kind', 'status', 'transaction_id'])
        .where('refund_id', '=', refundId)
        .execute();
    // While their dead letters wait, the sweep leaves them to the operator's retry.
    expect(await abandonOrphanedRefunds(db, 'scheduler')).toEqual([]);

    // The operator deletes one dead letter (the console's Delete): its refund goes to a person.
    expect(
      await deleteDeadLetter(db, 'key_admin', { queue: QUEUES.invoiceRefund, jobId: deleted.dead }),
    ).toBe(true);
    expect(await exceptionsOf(deleted.refund.id)).toEqual([
      { kind: 'unknown_outcome', status: 'open', transaction_id: transaction.id },
    ]);
    expect(await exceptionsOf(expired.refund.id)).toEqual([]);

    // The other's dead letter expires (30 days): the refund.recover sweep hands it to a person.
    await db
      .deleteFrom('pgboss.job' as never)
      .where('id' as never, '=', expired.dead as never)
      .execute();
    await boss.send(QUEUES.refundRecover, {});
    wakeWorkers(boss, QUEUES.refundRecover);
    await waitFor(
      'the sweep to hand the refund to a person',
      async () => (await exceptionsOf(expired.refund.id)).length > 0,
    );
    expect(await exceptionsOf(expired.refund.id)).toEqual([
      { kind: 'unknown_outcome', status: 'open', transaction_id: transaction.id },
    ]);
    // Once each: a later sweep raises nothing more; the refunds stay unknown, their 800 held.
    expect(await abandonOrphanedRefunds(db, 'scheduler')).toEqual([]);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.amount_refunded).toBe(0);
  });
});
