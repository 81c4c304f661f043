import { type Kysely, sql } from 'kysely';
import { type ListFilter, listRows } from '../db/list.ts';
import type { Database, PayoutRow, SettlementLineRow } from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';
import { isMatched } from './lines.ts';

/**
 * What a payout's lines add up to (PRODUCT.md §13), in minor units of the payout's currency, over its
 * lines in that currency (a line in another currency is listed but counted in none of these: such a
 * payout is a `payout_lines_mismatch` exception). Lines are signed from the merchant's side:
 * - `gross`: the charge lines' gross (the money customers paid);
 * - `fees`: what the gateway kept, positive when charged: every line's fee, and a `fee` line's whole
 *   net (negated);
 * - `refunds`, `disputes`, `adjustments`: the gross of those lines (negative: money out); a payout's
 *   `payout_return`, `conversion` and `hold` lines count in `adjustments`;
 * - `net`: the sum of every line's net, so `net = gross + refunds + disputes + adjustments - fees`;
 *   it equals the payout's amount when the gateway listed all its lines.
 * All zero while the payout's lines are not known (`lines_known` false).
 */
export interface PayoutSummary {
  gross: bigint;
  fees: bigint;
  refunds: bigint;
  disputes: bigint;
  adjustments: bigint;
  net: bigint;
  /** How many lines the payout has (in any currency). */
  lineCount: number;
  /** How many of them are about a charge, refund or dispute billhook could not match. */
  unmatchedLines: number;
}

/** A payout with what its lines add up to. */
export interface PayoutWithSummary {
  payout: PayoutRow;
  summary: PayoutSummary;
}

/** A payout with its summary and every line, in the order the gateway booked them. */
export interface PayoutWithLines extends PayoutWithSummary {
  lines: SettlementLineRow[];
}

const EMPTY: PayoutSummary = {
  gross: 0n,
  fees: 0n,
  refunds: 0n,
  disputes: 0n,
  adjustments: 0n,
  net: 0n,
  lineCount: 0,
  unmatchedLines: 0,
};

/**
 * The summaries of the payouts `ids` (`PayoutSummary`), summed by PostgreSQL in one query; a payout
 * without lines gets zeros. The unmatched rule is `isMatched`'s: a charge, refund or dispute line
 * without its billhook transaction.
 */
async function summaries(db: Kysely<Database>, ids: string[]): Promise<Map<string, PayoutSummary>> {
  if (ids.length === 0) return new Map();
  const same = sql`l.currency = p.currency`;
  const rows = await db
    .selectFrom('settlement_lines as l')
    .innerJoin('payouts as p', 'p.id', 'l.payout_id')
    .select([
      'p.id',
      sql<bigint>`coalesce(sum(l.gross) FILTER (WHERE ${same} AND l.kind = 'charge'), 0)`.as('gross'),
      sql<bigint>`coalesce(sum(CASE WHEN l.kind = 'fee' THEN -l.net ELSE l.fee END) FILTER (WHERE ${same}), 0)`.as(
        'fees',
      ),
      sql<bigint>`coalesce(sum(l.gross) FILTER (WHERE ${same} AND l.kind = 'refund'), 0)`.as('refunds'),
      sql<bigint>`coalesce(sum(l.gross) FILTER (WHERE ${same} AND l.kind = 'dispute'), 0)`.as('disputes'),
      sql<bigint>`coalesce(sum(l.gross) FILTER (WHERE ${same} AND l.kind IN ('adjustment', 'payout_return', 'conversion', 'hold')), 0)`.as(
        'adjustments',
      ),
      sql<bigint>`coalesce(sum(l.net) FILTER (WHERE ${same}), 0)`.as('net'),
      sql<bigint>`count(*)`.as('line_count'),
      // A partner fee line (a `fee` with a partner fee) is about its payment: unmatched until billhook knows it.
      sql<bigint>`count(*) FILTER (WHERE (l.kind IN ('charge', 'refund', 'dispute') OR (l.kind = 'fee' AND l.partner_fee > 0)) AND l.transaction_id IS NULL)`.as(
        'unmatched_lines',
      ),
    ])
    .where('p.id', 'in', ids)
    .groupBy('p.id')
    .execute();
  return new Map(
    rows.map((row) => [
      row.id,
      {
        gross: row.gross,
        fees: row.fees,
        refunds: row.refunds,
        disputes: row.disputes,
        adjustments: row.adjustments,
        net: row.net,
        lineCount: Number(row.line_count),
        unmatchedLines: Number(row.unmatched_lines),
      },
    ]),
  );
}

/**
 * One page of payouts (`listRows`: newest or oldest first by id, after `filter.startingAfter`, at
 * most `filter.limit + 1` so the caller can tell whether more exist), each with its summary. Filters
 * are column equalities (`gateway`, `gateway_account` — null for the default account —, `status`,
 * `currency`) and time ranges (`gateway_created_at`, `arrival_date`).
 */
export async function listPayouts(db: Kysely<Database>, filter: ListFilter): Promise<PayoutWithSummary[]> {
  const payouts = await listRows<PayoutRow>(db, 'payouts', filter);
  const sums = await summaries(
    db,
    payouts.map((p) => p.id),
  );
  return payouts.map((payout) => ({ payout, summary: sums.get(payout.id) ?? EMPTY }));
}

/**
 * A payout (`pyo_…`) with its summary and its lines, ordered by when the gateway booked them.
 * @throws NotFoundError (`payout_not_found`) when there is no payout `id`
 */
export async function getPayout(db: Kysely<Database>, id: string): Promise<PayoutWithLines> {
  const payout = await db.selectFrom('payouts').selectAll().where('id', '=', id).executeTakeFirst();
  if (!payout) throw new NotFoundError('payout', id);
  const lines = await db
    .selectFrom('settlement_lines')
    .selectAll()
    .where('payout_id', '=', id)
    .orderBy('occurred_at')
    .orderBy('id')
    .execute();
  const sums = await summaries(db, [id]);
  return { payout, summary: sums.get(id) ?? EMPTY, lines };
}

/**
 * The billhook object a line is about, by its id: the transaction (`txn_…`) of a charge line or of a
 * partner fee line (a `fee` with a partner fee, about its payment), the refund (`re_…`) of a refund
 * line, the dispute (`dp_…`) of a dispute line; null for a line billhook could not match, and for
 * another `fee` or an `adjustment` line, which is about none (`unmatched` tells the two apart).
 */
export function lineMatch(line: SettlementLineRow): { matched: string | null; unmatched: boolean } {
  const matched =
    line.kind === 'charge' || (line.kind === 'fee' && line.partner_fee > 0n)
      ? line.transaction_id
      : line.kind === 'refund'
        ? line.refund_id
        : line.kind === 'dispute'
          ? line.dispute_id
          : null;
  return { matched, unmatched: !isMatched(line) };
}
