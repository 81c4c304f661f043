import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { pollingAtLeast, WORKERS } from '../../src/workers/workers.ts';

/** A queue cannot be added without its worker: workers/workers.ts has one row per queue, each with a handler. */
describe('the workers table', () => {
  it('has exactly one row with a handler for every queue of QUEUES, and no other row', () => {
    for (const queue of Object.values(QUEUES)) {
      const rows = WORKERS.filter((row) => row.queue === queue);
      expect(rows, queue).toHaveLength(1);
      expect(rows[0]?.handler, queue).toBeTypeOf('function');
    }
    expect(WORKERS.map((row) => row.queue).sort()).toEqual(Object.values(QUEUES).sort());
  });

  it('schedules only sweeps, and the billing sweeps only while BILLING_SWEEPS is on', () => {
    const scheduled = WORKERS.filter((row) => row.schedule !== null).map((row) => row.queue);
    expect(scheduled.sort()).toEqual(
      [
        QUEUES.transactionPoll,
        QUEUES.refundRecover,
        QUEUES.invoiceCharge,
        QUEUES.subscriptionRenew,
        QUEUES.inboxSweep,
        QUEUES.settlementSync,
        QUEUES.webhookEndpointDispatch,
      ].sort(),
    );
    const billing = WORKERS.filter((row) => row.schedule?.billingSweep).map((row) => row.queue);
    expect(billing.sort()).toEqual([QUEUES.invoiceCharge, QUEUES.subscriptionRenew].sort());
  });

  it('polls each queue at its own interval by default, and at QUEUE_POLL_INTERVAL_SECONDS when that is longer', () => {
    const intervals = (env: Record<string, string>) => {
      const config = loadConfig(env);
      return Object.fromEntries(
        WORKERS.map(({ queue, options }) => {
          const polled = pollingAtLeast(
            typeof options === 'function' ? options(config) : options,
            config.QUEUE_POLL_INTERVAL_SECONDS,
          );
          return [queue, [polled.pollingIntervalSeconds, polled.notifyPollingIntervalSeconds]];
        }),
      );
    };
    expect(intervals({})).toEqual({
      [QUEUES.webhookProcess]: [1, 1],
      [QUEUES.transactionPoll]: [5, undefined],
      [QUEUES.refundRecover]: [5, undefined],
      [QUEUES.invoiceRefund]: [5, undefined],
      [QUEUES.invoiceCharge]: [5, undefined],
      [QUEUES.subscriptionRenew]: [5, undefined],
      [QUEUES.inboxSweep]: [30, undefined],
      [QUEUES.settlementSync]: [60, undefined],
      [QUEUES.webhookEndpointDispatch]: [5, undefined],
      [QUEUES.webhookEndpointDeliver]: [1, 1],
    });
    expect(intervals({ QUEUE_POLL_INTERVAL_SECONDS: '30' })).toEqual({
      [QUEUES.webhookProcess]: [30, 30],
      [QUEUES.transactionPoll]: [30, undefined],
      [QUEUES.refundRecover]: [30, undefined],
      [QUEUES.invoiceRefund]: [30, undefined],
      [QUEUES.invoiceCharge]: [30, undefined],
      [QUEUES.subscriptionRenew]: [30, undefined],
      [QUEUES.inboxSweep]: [30, undefined],
      [QUEUES.settlementSync]: [60, undefined],
      [QUEUES.webhookEndpointDispatch]: [30, undefined],
      [QUEUES.webhookEndpointDeliver]: [30, 30],
    });
    // Other options stay as given.
    expect(pollingAtLeast({ batchSize: 10, localConcurrency: 8 }, 1)).toEqual({
      batchSize: 10,
      localConcurrency: 8,
      pollingIntervalSeconds: 2,
    });
  });
});
