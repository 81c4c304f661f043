import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { reportOf, SearchPage, type TransactionInfo } from '../../src/gateways/paypal/transaction-search.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordSettlementLine } from '../../src/settlement/lines.ts';
import { recordPayout } from '../../src/settlement/payouts.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import { booksIn, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';
import { waitFor } from '../support/wait.ts';

const fixture = (name: string) =>
  JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../fixtures/paypal', name), 'utf8'));
/** The real T0113 partner fee row of 0.88 (test/fixtures/paypal/SOURCES.md). */
const partnerFee = SearchPage.parse(
  fixture('api.reporting.transactions.donation_partner_fee_withdrawal.json'),
).transaction_details.find((d) => d.transaction_info.transaction_event_code === 'T0113')?.transaction_info;
const ACCOUNT = { gateway: 'paypal' as const, gatewayAccount: null };

/** The partner fee row `id` taken from capture `capture`. */
function feeOf(capture: string, id: string): TransactionInfo {
  if (!partnerFee) throw new Error('no T0113 row in the fixture');
  return { ...partnerFee, transaction_id: id, paypal_reference_id: capture };
}

/** A capture webhook's line of 50.00 whose fee 2.37 counts platform fees of 0.88. */
const captureLine = (capture: string) => ({
  gatewayLineId: capture,
  kind: 'charge' as const,
  gatewayTransactionId: capture,
  currency: 'USD',
  gross: 5000n,
  fee: 237n,
  net: 4763n,
  partnerFee: 88n,
  occurredAt: new Date(),
});

/**
 * A unit recording capture lines of payments P then Q (as a batch of webhooks applies them) and a
 * sweep's chunk with the T0113 rows of Q then P, swept without their payments (in an earlier window).
 * Each payment's partner fees are booked under its partner fee lock (`lockPartnerFees`); the sweep
 * used to take them as its lines came (Q, then P while the batch held P and was about to take Q):
 * PostgreSQL aborted one of them (40P01). A unit of several lines now takes them all first, in one
 * sorted order (P, Q): the sweep waits for P holding none, and both finish, each fee booked once.
 */
describe('a sweep chunk and a unit of webhooks booking partner fees of the same two payments', () => {
  let db: Db;
  beforeEach(async () => {
    db = await moneyCoreDatabase();
  });
  afterEach(() => db?.destroy());

  it('do not deadlock', async () => {
    for (const capture of ['CAPLOCKP', 'CAPLOCKQ']) {
      await succeededCharge(db, {
        currency: 'USD',
        amount: 5000n,
        gateway: 'paypal',
        gatewayTransactionId: capture,
      });
    }
    let step = () => {};
    const stepped = new Promise<void>((resolve) => {
      step = resolve;
    });
    let tookP = () => {};
    const heldP = new Promise<void>((resolve) => {
      tookP = resolve;
    });
    const batch = inUnitOfWork(db, { actor: 'system', defer: true }, async (work) => {
      await recordSettlementLine(work, ACCOUNT, captureLine('CAPLOCKP'), null);
      tookP();
      await stepped;
      await recordSettlementLine(work, ACCOUNT, captureLine('CAPLOCKQ'), null);
    });
    await heldP;
    const sweep = recordSettlementReport(
      db,
      'system',
      ACCOUNT,
      reportOf([feeOf('CAPLOCKQ', '1FEEOFQ'), feeOf('CAPLOCKP', '2FEEOFP')]),
    );
    await waitFor('the sweep to wait for a partner fee lock', async () => {
      const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`.execute(
        db,
      );
      return (rows[0]?.n ?? 0) > 0;
    });
    step();
    const outcomes = await Promise.allSettled([batch, sweep]);
    expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok'))).toEqual(['ok', 'ok']);
    // Each capture line booked 237 (its platform fees included); the T0113 lines nothing more.
    expect((await booksIn(db, 'USD'))['gateway_fees:paypal']).toBe(474n);
  }, 60_000);

  /*
   * A batch of webhooks holding payment P's partner fee lock (its capture line) then recording a
   * PayPal withdrawal (the payout's lock), and a sweep recording the same withdrawal with P's T0113
   * row among its lines. The sweep takes its lines' partner fee locks before the payout's lock
   * (`recordPayout`), as the batch does: it waits for P holding nothing, and both finish.
   */
  it('a payout recorded by a batch and by a sweep with a partner fee line do not deadlock', async () => {
    await succeededCharge(db, {
      currency: 'USD',
      amount: 5000n,
      gateway: 'paypal',
      gatewayTransactionId: 'CAPLOCKP',
    });
    const [feeLine] = reportOf([feeOf('CAPLOCKP', '1FEEOFP')]).lines;
    if (!feeLine) throw new Error('no partner fee line');
    const withdrawal = {
      gatewayPayoutId: 'WDLOCK1',
      status: 'paid' as const,
      currency: 'USD',
      amount: feeLine.net,
      createdAt: new Date('2026-12-01T00:00:00Z'),
      arrivalDate: new Date('2026-12-01T00:00:00Z'),
    };
    let step = () => {};
    const stepped = new Promise<void>((resolve) => {
      step = resolve;
    });
    let tookP = () => {};
    const heldP = new Promise<void>((resolve) => {
      tookP = resolve;
    });
    const batch = inUnitOfWork(db, { actor: 'system', defer: true }, async (work) => {
      await recordSettlementLine(work, ACCOUNT, captureLine('CAPLOCKP'), null);
      tookP();
      await stepped;
      await recordPayout(work, ACCOUNT, withdrawal, { acceptUnmatched: true });
    });
    await heldP;
    const sweep = recordSettlementReport(db, 'system', ACCOUNT, {
      payouts: [{ ...withdrawal, lines: [feeLine] }],
      lines: [],
    });
    await waitFor('the sweep to wait for a lock', async () => {
      const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`.execute(
        db,
      );
      return (rows[0]?.n ?? 0) > 0;
    });
    step();
    const outcomes = await Promise.allSettled([batch, sweep]);
    expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok'))).toEqual(['ok', 'ok']);
    expect(await db.selectFrom('payouts').select(['gateway_payout_id', 'lines_known']).execute()).toEqual([
      { gateway_payout_id: 'WDLOCK1', lines_known: true },
    ]);
  }, 60_000);
});
