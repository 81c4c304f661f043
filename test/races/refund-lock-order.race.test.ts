import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { PaymentEvent } from '../../src/gateways/types.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { applyEvent, lockChargesAhead } from '../../src/reconcile/apply.ts';
import { booksIn, canonicalEvent, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';
import { waitFor } from '../support/wait.ts';

/*
 * Two reconcile batches, each a charge event of one invoice's payment and a refund event of the
 * other's (a webhook delivered twice, a refund made in the gateway's dashboard). A batch locks the
 * invoices and payments of its charge (and dispute) events ahead, in id order (`lockChargesAhead`);
 * a refund event used to lock its invoice only when applied, after the batch's charges: batch A
 * holding X and taking Y for its refund while batch B held Y and took X for its own, PostgreSQL
 * aborted one of them (40P01), its whole batch retried. Amounts in PLN minor units.
 */
describe('two batches crossing, each a charge of one invoice and a refund of the other’s payment', () => {
  let db: Db;
  beforeEach(async () => {
    db = await moneyCoreDatabase();
  });
  afterEach(() => db?.destroy());

  it('do not deadlock: both refunds are booked', async () => {
    for (const id of ['pi_lock_x', 'pi_lock_y']) {
      await succeededCharge(db, { currency: 'PLN', amount: 10_000n, gatewayTransactionId: id });
    }
    const charge = (id: string): PaymentEvent =>
      canonicalEvent({
        type: 'charge.succeeded',
        gatewayTransactionId: id,
        amount: 10_000n,
        currency: 'PLN',
      });
    const refund = (id: string): PaymentEvent =>
      canonicalEvent({
        type: 'refund.succeeded',
        gatewayTransactionId: id,
        gatewayRefundId: `re_of_${id}`,
        amount: 2_500n,
        currency: 'PLN',
      });
    let step = () => {};
    const stepped = new Promise<void>((resolve) => {
      step = resolve;
    });
    let lockedA = () => {};
    const heldA = new Promise<void>((resolve) => {
      lockedA = resolve;
    });
    /** A batch of `events` as reconcile/process.ts applies one, waiting for `before` first. */
    const batch = (events: PaymentEvent[], after?: { took: () => void; wait: Promise<void> }) =>
      inUnitOfWork(db, { actor: 'system', defer: true }, async (work) => {
        await lockChargesAhead(work, events);
        after?.took();
        if (after) await after.wait;
        for (const event of events)
          await applyEvent(work, event, { gatewayAccount: null, finalAttempt: false });
      });
    const a = batch([charge('pi_lock_x'), refund('pi_lock_y')], { took: lockedA, wait: stepped });
    await heldA;
    const b = batch([charge('pi_lock_y'), refund('pi_lock_x')]);
    await waitFor('batch B to wait for a row batch A holds', async () => {
      const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(db);
      return (rows[0]?.n ?? 0) > 0;
    });
    step();
    const outcomes = await Promise.allSettled([a, b]);
    expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok'))).toEqual(['ok', 'ok']);
    // Both refunds of 2500 booked, once each.
    expect((await booksIn(db, 'PLN')).refunds).toBe(5_000n);
  }, 60_000);
});
