import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { PayoutReport, SettlementLine } from '../../src/gateways/settlement.ts';
import type { PaymentEvent } from '../../src/gateways/types.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { applyEvent, lockChargesAhead } from '../../src/reconcile/apply.ts';
import { recordPayout } from '../../src/settlement/payouts.ts';
import { booksIn, canonicalEvent, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';
import { waitFor } from '../support/wait.ts';

/*
 * A Stripe charge of PLN 100.00 whose balance transaction settled 80.00 (a short settlement), seen
 * twice at once: by a batch of webhooks (its refund of 10.00 and the balance transaction's
 * `settlement.line`) and by the payout sync listing that line. The batch locks the payment's
 * invoice and the payment ahead (`lockChargesAhead`), then records the line; the payout recorded the
 * line's row first and then, the line short, locked the invoice and the payment
 * (`recordSettledShort`): each waited for the other and PostgreSQL aborted one (40P01). The
 * settlement path now locks the payments of its charge lines (and their invoices and subscriptions)
 * before anything else, as a batch does. Amounts in PLN minor units.
 */
describe('a payout recording a short charge line while a webhook batch refunds the same payment', () => {
  let db: Db;
  beforeEach(async () => {
    db = await moneyCoreDatabase();
  });
  afterEach(() => db?.destroy());

  it('do not deadlock: the refund is booked and the short line recorded once, with one amount_mismatch', async () => {
    const { transaction, invoice } = await succeededCharge(db, {
      currency: 'PLN',
      amount: 10_000n,
      gatewayTransactionId: 'pi_short_lock',
    });
    const line: SettlementLine = {
      gatewayLineId: 'txn_short_lock',
      kind: 'charge',
      gatewayTransactionId: 'pi_short_lock',
      currency: 'PLN',
      gross: 8_000n,
      fee: 0n,
      net: 8_000n,
      occurredAt: new Date(),
    };
    const report: PayoutReport = {
      gatewayPayoutId: 'po_short_lock',
      status: 'paid',
      currency: 'PLN',
      amount: 8_000n,
      createdAt: new Date('2026-12-01T00:00:00Z'),
      arrivalDate: new Date('2026-12-03T00:00:00Z'),
      lines: [line],
    };
    const events: PaymentEvent[] = [
      canonicalEvent({
        type: 'refund.succeeded',
        gatewayTransactionId: 'pi_short_lock',
        gatewayRefundId: 're_short_lock',
        amount: 1_000n,
        currency: 'PLN',
      }),
      canonicalEvent({
        type: 'settlement.line',
        gatewayTransactionId: 'pi_short_lock',
        amount: 8_000n,
        currency: 'PLN',
        settlementLine: line,
      }),
    ];
    let step = () => {};
    const stepped = new Promise<void>((resolve) => {
      step = resolve;
    });
    let lockedA = () => {};
    const heldA = new Promise<void>((resolve) => {
      lockedA = resolve;
    });
    const batch = inUnitOfWork(db, { actor: 'system', defer: true }, async (work) => {
      await lockChargesAhead(work, events);
      lockedA();
      await stepped;
      for (const event of events)
        await applyEvent(work, event, { gatewayAccount: null, finalAttempt: false });
    });
    await heldA;
    const payout = inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordPayout(work, { gateway: 'stripe', gatewayAccount: null }, report, { acceptUnmatched: false }),
    );
    await waitFor('the payout to wait for a row the batch holds', async () => {
      const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(db);
      return (rows[0]?.n ?? 0) > 0;
    });
    step();
    const outcomes = await Promise.allSettled([batch, payout]);
    expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok'))).toEqual(['ok', 'ok']);
    const pln = await booksIn(db, 'PLN');
    expect(pln.refunds).toBe(1_000n);
    // The batch went first (it held the payment): the refund made the invoice PARTIALLY_REFUNDED, so
    // the short line is not followed alone (`recordSettledShort` refused): one amount_mismatch says so.
    const lines = await db.selectFrom('settlement_lines').select(['transaction_id', 'gross']).execute();
    expect(lines).toEqual([{ transaction_id: transaction.id, gross: 8_000n }]);
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'details'])
      .where('transaction_id', '=', transaction.id)
      .execute();
    expect(exceptions).toMatchObject([{ kind: 'amount_mismatch', details: { followed: 'refused' } }]);
    const inv = await db
      .selectFrom('invoices')
      .select(['status'])
      .where('id', '=', invoice.id)
      .executeTakeFirstOrThrow();
    expect(inv.status).toBe('PARTIALLY_REFUNDED');
  }, 60_000);
});
