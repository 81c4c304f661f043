import { describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/queue/queues.ts';
import { WORKERS } from '../../src/workers/workers.ts';

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
});
