import { afterEach, describe, expect, it } from 'vitest';
import { createBoss, WEBHOOK_ENDPOINT_RETRY_LIMIT } from '../../src/queue/boss.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

describe('scheduled sweeps', () => {
  let app: TestApp | undefined;
  afterEach(() => app?.stop());

  const scheduled = async (running: TestApp) =>
    (await running.runtime.boss.getSchedules()).map((s) => `${s.name} ${s.cron}`).sort();

  it('runs every sweep on its cron, the billing sweeps every minute by default', async () => {
    app = await startTestApp({ BILLING_SWEEPS: '1' });
    expect(await scheduled(app)).toEqual(
      [
        `${QUEUES.inboxSweep} */5 * * * *`,
        `${QUEUES.settlementSync} 30 3 * * *`,
        `${QUEUES.webhookEndpointDispatch} * * * * *`,
        `${QUEUES.invoiceCharge} * * * * *`,
        `${QUEUES.refundRecover} * * * * *`,
        `${QUEUES.subscriptionRenew} * * * * *`,
        `${QUEUES.transactionPoll} * * * * *`,
      ].sort(),
    );
  });

  it('BILLING_SWEEPS=0 removes the billing sweeps from the schedule (a pause), keeping the others', async () => {
    app = await startTestApp({ BILLING_SWEEPS: '1' });
    await app.stop();
    const url = app.config.DATABASE_URL;
    app = await startTestApp({ BILLING_SWEEPS: '0', DATABASE_URL: url });
    expect(await scheduled(app)).toEqual(
      [
        `${QUEUES.inboxSweep} */5 * * * *`,
        `${QUEUES.settlementSync} 30 3 * * *`,
        `${QUEUES.webhookEndpointDispatch} * * * * *`,
        `${QUEUES.refundRecover} * * * * *`,
        `${QUEUES.transactionPoll} * * * * *`,
      ].sort(),
    );
  });

  it('gives every sweep retries with backoff and a dead-letter queue', async () => {
    app = await startTestApp();
    for (const name of [
      QUEUES.transactionPoll,
      QUEUES.refundRecover,
      QUEUES.inboxSweep,
      QUEUES.subscriptionRenew,
      QUEUES.invoiceCharge,
      QUEUES.settlementSync,
      QUEUES.webhookEndpointDispatch,
    ]) {
      const queue = await app.runtime.boss.getQueue(name);
      expect(queue, name).toMatchObject({
        retryLimit: 2,
        retryBackoff: true,
        deadLetter: `${name}.dead`,
        deleteAfterSeconds: 86_400,
      });
      expect(await app.runtime.boss.getQueue(`${name}.dead`), name).not.toBeNull();
    }
    expect(await app.runtime.boss.getQueue(QUEUES.invoiceRefund)).toMatchObject({
      retryLimit: 6,
      retryBackoff: true,
      deadLetter: `${QUEUES.invoiceRefund}.dead`,
      deleteAfterSeconds: 86_400,
    });
    // An outbound event's delivery: about three days of exponential backoff, six hours apart at most.
    expect(await app.runtime.boss.getQueue(QUEUES.webhookEndpointDeliver)).toMatchObject({
      retryLimit: WEBHOOK_ENDPOINT_RETRY_LIMIT,
      retryDelay: 60,
      retryBackoff: true,
      retryDelayMax: 6 * 3600,
      deadLetter: `${QUEUES.webhookEndpointDeliver}.dead`,
    });
    // The inbox row is a webhook's lasting record: its completed job goes after an hour. The queue
    // existed (the template database was made with the defaults: 8 retries from 5 s): this start's
    // settings (2 from 1 s, test/support/app.ts) are applied to it.
    expect(await app.runtime.boss.getQueue(QUEUES.webhookProcess)).toMatchObject({
      deleteAfterSeconds: 3600,
      retryLimit: 2,
      retryDelay: 1,
    });
  });

  it('creates a queue added in a release (refund.recover) in an existing database when it starts', async () => {
    app = await startTestApp();
    await app.stop();
    const url = app.config.DATABASE_URL;
    if (url === undefined) throw new Error('startTestApp always sets DATABASE_URL');
    // The database as a release without refund.recover left it: no queue, no dead letters, no schedule.
    const older = createBoss(url, { maintenance: false });
    await older.start();
    await older.unschedule(QUEUES.refundRecover);
    await older.deleteQueue(QUEUES.refundRecover);
    await older.deleteQueue(`${QUEUES.refundRecover}.dead`);
    expect(await older.getQueue(QUEUES.refundRecover)).toBeNull();
    await older.stop({ graceful: false });

    app = await startTestApp({ DATABASE_URL: url });
    expect(await app.runtime.boss.getQueue(QUEUES.refundRecover)).toMatchObject({
      retryLimit: 2,
      deadLetter: `${QUEUES.refundRecover}.dead`,
    });
    expect(await app.runtime.boss.getQueue(`${QUEUES.refundRecover}.dead`)).not.toBeNull();
    expect(await scheduled(app)).toContain(`${QUEUES.refundRecover} * * * * *`);
  });
});
