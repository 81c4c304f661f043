import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { createRefund } from '../../src/payments/refunds.ts';
import { QUEUES } from '../../src/queue/queues.ts';
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
});
