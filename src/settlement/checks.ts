import { sql } from 'kysely';
import type { GatewayName } from '../config/gateways.ts';
import { expectedFee, type FeeExpectation } from '../config/settlement.ts';
import type { Db } from '../db/database.ts';
import { raiseException } from '../exceptions/exceptions.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { DAY_MS } from '../time.ts';

/** Most charges one check raises per gateway per run; the next run takes the rest. */
const LIMIT = 1_000;

/**
 * Raises `charge_not_paid_out` (once per charge) for each succeeded charge of a gateway whose payout
 * delay (`delays`, days; 0 = not checked) plus `marginDays` has passed without the charge appearing in
 * a payout's lines (PRODUCT.md §13). Only gateway accounts whose payouts billhook receives with their
 * lines are checked, and only charges since the first of those lines, so an account without settlement
 * data raises nothing. A charge whose succeeded refunds cover what it captured moved no money for a
 * payout to carry (Authorize.Net voids a charge refunded whole before its batch settles, and a void is
 * in no batch), so it is not raised.
 * @returns how many exceptions were raised
 */
export async function raiseChargesNotPaidOut(
  db: Db,
  actor: Actor,
  delays: Readonly<Record<GatewayName, number>>,
  marginDays: number,
  now: Date = new Date(),
): Promise<number> {
  let raised = 0;
  for (const [gateway, days] of Object.entries(delays) as [GatewayName, number][]) {
    if (days === 0) continue;
    const cutoff = new Date(now.getTime() - (days + marginDays) * DAY_MS);
    const charges = await db
      .selectFrom('transactions as t')
      .select(['t.id', 't.gateway_account', 't.amount', 't.currency', 't.created_at'])
      .where('t.gateway', '=', gateway)
      .where('t.status', '=', 'succeeded')
      .where('t.created_at', '<', cutoff)
      .where(
        't.created_at',
        '>=',
        sql<Date>`(SELECT min(s.occurred_at) FROM settlement_lines s
          WHERE s.gateway = t.gateway AND s.gateway_account IS NOT DISTINCT FROM t.gateway_account
            AND s.payout_id IS NOT NULL)`,
      )
      // Refunded whole (an Authorize.Net charge voided before it settled): no money for a payout to carry.
      .where(
        sql<bigint>`coalesce(t.amount_captured, t.amount)`,
        '>',
        sql<bigint>`(SELECT coalesce(sum(r.amount), 0) FROM refunds r
          WHERE r.transaction_id = t.id AND r.status = 'succeeded')`,
      )
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('settlement_lines as s')
              .select('s.id')
              .whereRef('s.transaction_id', '=', 't.id')
              .where('s.kind', '=', 'charge')
              .where('s.payout_id', 'is not', null),
          ),
        ),
      )
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('reconciliation_exceptions as e')
              .select('e.id')
              .whereRef('e.transaction_id', '=', 't.id')
              .where('e.kind', '=', 'charge_not_paid_out'),
          ),
        ),
      )
      .orderBy('t.id')
      .limit(LIMIT)
      .execute();
    if (charges.length === 0) continue;
    await inUnitOfWork(db, { actor }, async (work) => {
      for (const charge of charges) {
        await raiseException(work, {
          kind: 'charge_not_paid_out',
          gateway,
          gatewayAccount: charge.gateway_account,
          transactionId: charge.id,
          message: `charge ${charge.id} of ${charge.amount} ${charge.currency} (minor units) succeeded ${charge.created_at.toISOString()} and is in no ${gateway} payout after ${days} + ${marginDays} days`,
        });
      }
    });
    raised += charges.length;
  }
  return raised;
}

/**
 * Raises `unexpected_fee` (once per line) for each matched charge line recorded since `since` whose fee
 * differs from its gateway's and currency's expectation (`expectedFee`) by more than `tolerance` minor
 * units.
 * @returns how many exceptions were raised
 */
export async function raiseUnexpectedFees(
  db: Db,
  actor: Actor,
  expectations: readonly FeeExpectation[],
  tolerance: bigint,
  since: Date,
): Promise<number> {
  let raised = 0;
  for (const expectation of expectations) {
    const lines = await db
      .selectFrom('settlement_lines as s')
      .select(['s.id', 's.gateway_account', 's.transaction_id', 's.gross', 's.fee', 's.gateway_line_id'])
      .where('s.gateway', '=', expectation.gateway)
      .where('s.currency', '=', expectation.currency)
      .where('s.kind', '=', 'charge')
      .where('s.gross', '>', 0n)
      .where('s.transaction_id', 'is not', null)
      .where('s.created_at', '>=', since)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('reconciliation_exceptions as e')
              .select('e.id')
              .whereRef('e.settlement_line_id', '=', 's.id')
              .where('e.kind', '=', 'unexpected_fee'),
          ),
        ),
      )
      .orderBy('s.id')
      .execute();
    const off = lines.filter((line) => {
      const difference = line.fee - expectedFee(expectation, line.gross);
      return difference > tolerance || difference < -tolerance;
    });
    if (off.length === 0) continue;
    await inUnitOfWork(db, { actor }, async (work) => {
      for (const line of off) {
        const expected = expectedFee(expectation, line.gross);
        await raiseException(work, {
          kind: 'unexpected_fee',
          gateway: expectation.gateway,
          gatewayAccount: line.gateway_account,
          transactionId: line.transaction_id ?? undefined,
          settlementLineId: line.id,
          message: `fee ${line.fee} ${expectation.currency} on ${line.gateway_line_id} (gross ${line.gross}) differs from the expected ${expected} (${expectation.bps} bps + ${expectation.fixed}; minor units)`,
          details: { fee: line.fee, expected, gross: line.gross },
        });
      }
    });
    raised += off.length;
  }
  return raised;
}
