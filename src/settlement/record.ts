import type { Db } from '../db/database.ts';
import { raiseException } from '../exceptions/exceptions.ts';
import type { SettlementLine, SettlementReport } from '../gateways/settlement.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import {
  lockChargeLinesAhead,
  lockPartnerFees,
  ofAccount,
  recordSettlementLine,
  refundLinesFirst,
  type SettlementAccount,
  storedLine,
  unmatchedLine,
} from './lines.ts';
import { recordPayout } from './payouts.ts';

/** What recording a settlement report changed: rows new or moved forward, and lines still unmatched. */
export interface SettlementTotals {
  /** Lines outside payouts recorded, and lines unmatched before that match now (not counting repeats). */
  lines: number;
  /** Payouts recorded or moved forward (not counting repeats). */
  payouts: number;
  /** Lines of the account that still match no billhook object after this run. */
  unmatched: number;
}

/** Lines of a report outside any payout, recorded per chunk: one unit of work each. */
const CHUNK = 200;

/**
 * Records a gateway account's settlement report (from a sync or an imported file; PRODUCT.md §13):
 * each payout in its own unit of work (`recordPayout`, unmatched lines accepted and raised for a
 * person), the lines outside payouts in chunks, then every line of the account still unmatched is
 * tried again (its charge may have become known since) and booked when it matches. Idempotent: a
 * report recorded twice changes nothing the second time (lines and payouts are keyed by the gateway's
 * ids, movements by theirs).
 */
export async function recordSettlementReport(
  db: Db,
  actor: Actor,
  account: SettlementAccount,
  report: SettlementReport,
): Promise<SettlementTotals> {
  const totals: SettlementTotals = { lines: 0, payouts: 0, unmatched: 0 };
  for (const payout of report.payouts) {
    const outcome = await inUnitOfWork(db, { actor }, (work) =>
      recordPayout(work, account, payout, { acceptUnmatched: true }),
    );
    if (outcome.kind === 'applied') totals.payouts += 1;
  }
  // Refund lines first, across chunks: a charge line settled short waits for its payment's refund
  // lines (`refundLinesFirst`).
  const lines = refundLinesFirst(report.lines);
  for (let start = 0; start < lines.length; start += CHUNK) {
    totals.lines += await recordLines(db, actor, account, lines.slice(start, start + CHUNK));
  }
  const rematched = await rematchLines(db, actor, account);
  totals.lines += rematched.matched;
  totals.unmatched = rematched.unmatched;
  return totals;
}

/** Records lines outside payouts; each unmatched one raises `settlement_line_unmatched` once. */
async function recordLines(
  db: Db,
  actor: Actor,
  account: SettlementAccount,
  lines: readonly SettlementLine[],
): Promise<number> {
  return inUnitOfWork(db, { actor }, async (work) => {
    let recorded = 0;
    await lockChargeLinesAhead(work, account.gateway, lines);
    await lockPartnerFees(work, account.gateway, lines);
    for (const line of lines) {
      const outcome = await recordSettlementLine(work, account, line, null);
      if (outcome.kind === 'applied') recorded += 1;
      if (outcome.kind === 'unmatched') {
        await raiseException(work, unmatchedLine(account, outcome.line, outcome));
      }
    }
    return recorded;
  });
}

/**
 * Tries every still unmatched line of `account` again (a charge, refund or dispute line, or a partner
 * fee of a payment), booking those that match now.
 * @returns how many matched now, and how many still match nothing
 */
async function rematchLines(
  db: Db,
  actor: Actor,
  account: SettlementAccount,
): Promise<{ matched: number; unmatched: number }> {
  const rows = await db
    .selectFrom('settlement_lines')
    .selectAll()
    .where(ofAccount(account))
    .where((eb) =>
      eb.or([
        eb('kind', 'in', ['charge', 'refund', 'dispute']),
        eb.and([eb('kind', '=', 'fee'), eb('partner_fee', '>', 0n)]),
      ]),
    )
    .where('transaction_id', 'is', null)
    .orderBy('id')
    .execute();
  if (rows.length === 0) return { matched: 0, unmatched: 0 };
  const matched = await inUnitOfWork(db, { actor }, async (work) => {
    const lines = refundLinesFirst(rows.map((row) => ({ ...storedLine(row), payoutId: row.payout_id })));
    await lockChargeLinesAhead(work, account.gateway, lines);
    await lockPartnerFees(work, account.gateway, lines);
    let matched = 0;
    for (const { payoutId, ...line } of lines) {
      const outcome = await recordSettlementLine(work, account, line, payoutId);
      if (outcome.kind === 'applied') matched += 1;
    }
    return matched;
  });
  return { matched, unmatched: rows.length - matched };
}
