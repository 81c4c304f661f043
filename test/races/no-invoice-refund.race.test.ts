import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { createRefund } from '../../src/payments/refunds.ts';
import { applyAsBatch, canonicalEvent, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';
import { waitFor } from '../support/wait.ts';

/**
 * A payment without an invoice (transactions.invoice_id null, customer_id set: a legacy row or an
 * import, which a credit refund may go back through) has no invoice lock to read its refund room
 * under: `createRefund` locks the payment's row instead. A credit refund of 700 in flight (its unit
 * has inserted its pending refund and not committed) and a dashboard refund of 700 reported by webhook
 * on the same payment of 1000: the webhook waits for the credit refund, then sees 300 left and raises
 * refund_exceeds_paid. Both used to read a room of 1000 and be recorded: 1400 given back of 1000.
 */
describe('a dashboard refund webhook racing a credit refund of a payment without invoice', () => {
  let db: Db;
  beforeEach(async () => {
    db = await moneyCoreDatabase();
  });
  afterEach(() => db?.destroy());

  it('never records refunds beyond what the payment took', async () => {
    const { customerId, transaction } = await succeededCharge(db, {
      currency: 'EUR',
      gateway: 'stripe',
      gatewayTransactionId: 'pi_no_invoice_race',
    });
    expect(transaction.amount).toBe(1000n);
    // A payment without an invoice (a legacy row or an import; billhook's own charges all have one).
    await db.updateTable('transactions').set({ invoice_id: null }).where('id', '=', transaction.id).execute();
    const payment = await db
      .selectFrom('transactions')
      .selectAll()
      .where('id', '=', transaction.id)
      .executeTakeFirstOrThrow();

    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let inserted = () => {};
    const insertedP = new Promise<void>((resolve) => {
      inserted = resolve;
    });
    // The credit refund's unit, as refundCustomerCredit → prepareRefunds: its pending refund inserted,
    // held open (it commits after this point in the real flow too).
    const creditRefund = inUnitOfWork(db, { actor: 'system' }, async (work) => {
      await createRefund(work, payment, { amount: 700n, reason: 'customer_credit', creditOf: customerId });
      inserted();
      await released;
    });
    await insertedP;

    let settled = false;
    const webhook = applyAsBatch(
      db,
      canonicalEvent({
        type: 'refund.succeeded',
        gateway: 'stripe',
        gatewayTransactionId: 'pi_no_invoice_race',
        gatewayRefundId: 're_dashboard_no_invoice',
        amount: 700n,
        currency: 'EUR',
      }),
    ).finally(() => {
      settled = true;
    });
    await waitFor('the webhook to finish or wait for a lock', async () => {
      if (settled) return true;
      const { rows } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(db);
      return (rows[0]?.n ?? 0) > 0;
    });
    release();
    await creditRefund;
    await webhook;

    const refunds = await db
      .selectFrom('refunds')
      .select(['amount', 'status', 'kind'])
      .where('transaction_id', '=', transaction.id)
      .execute();
    expect(refunds).toEqual([{ amount: 700n, status: 'pending', kind: 'customer_credit' }]);
    expect(await webhook).toMatchObject({ kind: 'exception', exception: 'refund_exceeds_paid' });
  });
});
