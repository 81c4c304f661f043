import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, up } from '../../migrations/0050_exception_occurrence.ts';
import type { Db } from '../../src/db/database.ts';
import type { TransactionRow } from '../../src/db/schema.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { type DisputeReport, recordDispute } from '../../src/payments/disputes.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import { booksIn, moneyCoreDatabase, pendingCharge } from '../support/money-core.ts';

/**
 * A reconciliation exception raised without an event is kept once per (transaction, kind, refund,
 * payout, settlement line, occurrence) (exceptions/exceptions.ts `raiseException`): a second
 * occurrence of the same kind on one payment that is about something else (another dispute) opens
 * its own exception, a replay of the same report does not. Before, the key had no occurrence, so the
 * second dispute's exception on the same payment was silently dropped. Money core, JPY.
 */
describe('exceptions of the same kind on one payment: one per occurrence', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  const report = (transaction: TransactionRow, id: string, status: DisputeReport['status'], amount: bigint) =>
    inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordDispute(work, transaction, { gatewayDisputeId: id, status, amount, reason: 'not_received' }),
    );

  it('two PayPal claims on one capture, each lost and then reported won (not a chargeback): one dispute_won_after_loss each; the same won report replayed adds none (before: the second claim’s was dropped)', async () => {
    // A PayPal capture of 1000 JPY; claims A (300) and B (200), each lost (no refund carries them:
    // chargeback losses) and then reported won, which billhook cannot book (`wonAfterLoss`).
    const { transaction } = await pendingCharge(db, { currency: 'JPY', amount: 1000n, gateway: 'paypal' });
    const paid = (
      await inUnitOfWork(db, { actor: 'system' }, (work) =>
        recordChargeResult(work, transaction, { status: 'succeeded', gatewayTransactionId: 'cap_jpy' }),
      )
    ).transaction;
    await report(paid, 'PP-D-A', 'open', 300n);
    await report(paid, 'PP-D-A', 'lost', 300n);
    expect(await report(paid, 'PP-D-A', 'won', 300n)).toMatchObject({ kind: 'stale' });
    // The same won report delivered again (a replay): no second exception.
    expect(await report(paid, 'PP-D-A', 'won', 300n)).toMatchObject({ kind: 'stale' });
    await report(paid, 'PP-D-B', 'open', 200n);
    await report(paid, 'PP-D-B', 'lost', 200n);
    expect(await report(paid, 'PP-D-B', 'won', 200n)).toMatchObject({ kind: 'stale' });

    const disputes = await db
      .selectFrom('disputes')
      .select(['id', 'gateway_dispute_id'])
      .where('transaction_id', '=', paid.id)
      .orderBy('gateway_dispute_id')
      .execute();
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'status', 'details'])
      .where('transaction_id', '=', paid.id)
      .orderBy('created_at')
      .execute();
    expect(exceptions).toEqual(
      disputes.map((d) => ({
        kind: 'dispute_won_after_loss',
        status: 'open',
        details: {
          dispute: d.id,
          lost: d.gateway_dispute_id === 'PP-D-A' ? '300' : '200',
          won: d.gateway_dispute_id === 'PP-D-A' ? '300' : '200',
        },
      })),
    );
    // Nothing of the wins was booked: 1000 in, 500 lost to chargebacks, 500 left in clearing.
    expect(await booksIn(db, 'JPY')).toMatchObject({
      'gateway_clearing:paypal': 500n,
      disputed_funds: 0n,
      chargeback_losses: 500n,
      'receivable:customer': 0n,
      revenue: -1000n,
    });

    // Migration 0050 undone keeps the first exception of each old key (A's), and done again keeps it,
    // naming A's dispute as its occurrence again (from `details.dispute`).
    await down(db as unknown as Kysely<unknown>);
    await up(db as unknown as Kysely<unknown>);
    const kept = await db
      .selectFrom('reconciliation_exceptions')
      .select(['details', 'occurrence'])
      .where('transaction_id', '=', paid.id)
      .execute();
    const a = disputes.find((d) => d.gateway_dispute_id === 'PP-D-A')!;
    expect(kept).toEqual([{ details: expect.objectContaining({ dispute: a.id }), occurrence: a.id }]);
  });

  it('exceptions raised before 0050 keep their dispute as occurrence: a report replayed after the deploy raises none again (before: a second dispute_won_after_loss for the same dispute)', async () => {
    // A PayPal capture of 1000 KRW; claim C (400) lost, then reported won before 0050 was deployed:
    // its dispute_won_after_loss raised without occurrence (the old key).
    const { transaction } = await pendingCharge(db, { currency: 'KRW', amount: 1000n, gateway: 'paypal' });
    const paid = (
      await inUnitOfWork(db, { actor: 'system' }, (work) =>
        recordChargeResult(work, transaction, { status: 'succeeded', gatewayTransactionId: 'cap_krw' }),
      )
    ).transaction;
    await report(paid, 'PP-D-C', 'open', 400n);
    await report(paid, 'PP-D-C', 'lost', 400n);
    const dispute = await db
      .selectFrom('disputes')
      .select('id')
      .where('transaction_id', '=', paid.id)
      .executeTakeFirstOrThrow();
    await down(db as unknown as Kysely<unknown>);
    await sql`INSERT INTO reconciliation_exceptions (id, kind, gateway, transaction_id, message, details)
      VALUES ('exc_before_0050', 'dispute_won_after_loss', 'paypal', ${paid.id}, 'raised before 0050',
        ${JSON.stringify({ dispute: dispute.id, lost: '400', won: '400' })}::jsonb)`.execute(db);
    await up(db as unknown as Kysely<unknown>);

    // The same won report, delivered again after the deploy.
    expect(await report(paid, 'PP-D-C', 'won', 400n)).toMatchObject({ kind: 'stale' });
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select(['id', 'kind', 'occurrence'])
      .where('transaction_id', '=', paid.id)
      .execute();
    expect(exceptions).toEqual([
      { id: 'exc_before_0050', kind: 'dispute_won_after_loss', occurrence: dispute.id },
    ]);
  });
});
