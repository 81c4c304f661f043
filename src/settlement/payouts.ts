import { sql } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import type { GatewayName } from '../config/gateways.ts';
import { newId } from '../db/ids.ts';
import type { PayoutRow, PayoutStatus, SettlementLineRow } from '../db/schema.ts';
import { type NewException, raiseException } from '../exceptions/exceptions.ts';
import type { PayoutReport } from '../gateways/settlement.ts';
import { postEntry } from '../ledger/journal.ts';
import { type PayoutMovement, payoutCreated, payoutPaid, payoutReturned } from '../ledger/movements.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import {
  type LineMatch,
  lineColumns,
  lockChargeLinesAhead,
  lockPartnerFees,
  matchLine,
  ofAccount,
  recordSettlementLine,
  refundLinesFirst,
  type SettlementAccount,
  type Unmatchable,
  unmatchedLine,
} from './lines.ts';

/**
 * Forward-only payout statuses: pending → in_transit → paid, and failed or canceled from any of them
 * (a paid payout can still fail: https://docs.stripe.com/payouts#payout-failures). Failed and
 * canceled are final.
 */
const NEXT: Readonly<Record<PayoutStatus, readonly PayoutStatus[]>> = {
  pending: ['in_transit', 'paid', 'failed', 'canceled'],
  in_transit: ['paid', 'failed', 'canceled'],
  paid: ['failed'],
  failed: [],
  canceled: [],
};

const RETURNED: ReadonlySet<PayoutStatus> = new Set(['failed', 'canceled']);

/** What recording a payout report did; `not_found`: some of its lines are not known to billhook yet. */
export type PayoutOutcome =
  | { kind: 'applied' | 'duplicate' | 'stale'; payout: PayoutRow }
  | { kind: 'not_found'; message: string };

/** Options of `recordPayout`. */
export interface RecordPayoutOptions {
  /**
   * Record the payout even when some lines match nothing in billhook (each an exception for a
   * person): the sweep and imports, and a webhook's last attempt. Otherwise such a report is left
   * unrecorded (`not_found`) so the webhook retries once the charges it pays out are known.
   */
  acceptUnmatched: boolean;
}

/**
 * Records a gateway account's payout report (PRODUCT.md §13) in `work`: the payout once per
 * gateway's id — and once across the gateway's accounts: a payout the account has not recorded that
 * another account of the gateway recorded with the same gateway id, currency, amount, creation time
 * and lines (one account at the gateway read as two, e.g. the default account's keys moved into a
 * `gwa_…` with overlapping sweep windows) is that payout, recorded on the account that recorded it
 * first (`samePayoutElsewhere`), so nothing of it is booked twice —, its status forward only, and its
 * movements once each — `pyo_…:created` (net from clearing to payouts in transit) when first seen
 * sent, `pyo_…:paid` (to the bank) when paid, `pyo_…:returned` when it failed or was canceled after
 * being sent. A payout reported again with another amount or currency keeps its first and raises
 * `payout_changed` (`changedPayout`). When the report lists its lines,
 * each is recorded (`recordSettlementLine`: its fee booked, matched to billhook's charge, refund or
 * dispute) and attached to the payout, before its movements are posted (`recordPayoutLines`): a
 * payout whose held lines' nets do not sum to its amount raises `payout_lines_mismatch`, each line
 * billhook cannot match `settlement_line_unmatched`, and a payout first recorded with lines all
 * held by another payout of the account already (one deposit under two payout ids)
 * `payout_lines_elsewhere`, its money never moved (`heldBack`).
 * Serialised per gateway payout id across the gateway's accounts (`lockPayout`, after the partner fee
 * locks of its lines), so two accounts recording the same payout at once book it once.
 */
export async function recordPayout(
  work: UnitOfWork,
  account: SettlementAccount,
  report: PayoutReport,
  options: RecordPayoutOptions,
): Promise<PayoutOutcome> {
  await lockChargeLinesAhead(work, account.gateway, report.lines ?? []);
  await lockPartnerFees(work, account.gateway, report.lines ?? []);
  await lockPayout(work, account.gateway, report.gatewayPayoutId);
  const first = await samePayoutElsewhere(work, account, report);
  if (first) return recordPayout(work, first, report, options);
  // Every line must match before anything is written (unless unmatched lines are accepted; a line
  // naming another account's object, or a charge another line matched, is recorded unmatched now, as
  // waiting does not change it: `Unmatchable`); the
  // matches found are handed on, so no line is matched twice.
  const known = new Map<string, LineMatch | Unmatchable>();
  if (!options.acceptUnmatched) {
    for (const line of report.lines ?? []) {
      const match = await matchLine(work, account, line);
      if (!match) {
        return {
          kind: 'not_found',
          message: `payout ${report.gatewayPayoutId}: ${line.kind} line ${line.gatewayLineId} matches nothing in billhook yet`,
        };
      }
      known.set(line.gatewayLineId, match);
    }
  }
  await work.joinLedgerWriters();
  const existing = await work.trx
    .selectFrom('payouts')
    .selectAll()
    .where(ofAccount(account))
    .where('gateway_payout_id', '=', report.gatewayPayoutId)
    .forUpdate()
    .executeTakeFirst();
  if (existing && (existing.amount !== report.amount || existing.currency !== report.currency)) {
    await raiseException(work, changedPayout(account, existing, report));
  }
  const moves = !existing || NEXT[existing.status].includes(report.status);
  const listsLines = report.lines !== undefined && !existing?.lines_known;
  if (existing && !moves && !listsLines) {
    return { kind: existing.status === report.status ? 'duplicate' : 'stale', payout: existing };
  }
  const status = moves ? report.status : existing!.status;
  const payout = existing
    ? await work.trx
        .updateTable('payouts')
        .set({
          status,
          arrival_date: report.arrivalDate,
          failure_code: report.failureCode ?? existing.failure_code,
          lines_known: existing.lines_known || listsLines,
          updated_at: new Date(),
        })
        .where('id', '=', existing.id)
        .returningAll()
        .executeTakeFirstOrThrow()
    : await work.trx
        .insertInto('payouts')
        .values({
          id: newId('pyo'),
          gateway: account.gateway,
          gateway_account: account.gatewayAccount,
          gateway_payout_id: report.gatewayPayoutId,
          status,
          currency: report.currency,
          amount: report.amount,
          gateway_created_at: report.createdAt,
          arrival_date: report.arrivalDate,
          failure_code: report.failureCode ?? null,
          description: report.description ?? null,
          lines_known: listsLines,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
  if (listsLines) await recordPayoutLines(work, account, payout, report, known, existing === undefined);
  if (moves) await postPayoutMovements(work, payout, existing?.status);
  return { kind: 'applied', payout };
}

/**
 * The `payout_changed` exception of payout `existing` reported again with another amount or currency
 * (`report`: a later sweep, a webhook): the payout keeps what it was first recorded with and its money
 * is booked once, as first recorded; a person finds out which is right (e.g. eWAY settlement S-9:AUD
 * recorded at 4000 AUD, reported at 3500: the bank may have 5.00 less). Once per payout and reported
 * figure (`occurrence` `<amount> <currency>`). Amounts in minor units.
 */
function changedPayout(account: SettlementAccount, existing: PayoutRow, report: PayoutReport): NewException {
  return {
    kind: 'payout_changed',
    gateway: account.gateway,
    gatewayAccount: account.gatewayAccount,
    payoutId: existing.id,
    occurrence: `${report.amount} ${report.currency}`,
    message: `payout ${existing.gateway_payout_id} was recorded as ${existing.amount} ${existing.currency} and is now reported as ${report.amount} ${report.currency} (minor units): it stays booked as first recorded; check at the gateway what reached the bank and book the difference`,
    details: {
      gateway_payout_id: existing.gateway_payout_id,
      recorded_amount: existing.amount,
      recorded_currency: existing.currency,
      reported_amount: report.amount,
      reported_currency: report.currency,
    },
  };
}

/**
 * The namespace of the payout locks (`lockPayout`): the first key of the two-key form of
 * `pg_advisory_xact_lock`, apart from the partner fee locks' (settlement/lines.ts `PARTNER_FEE_LOCK`).
 */
const PAYOUT_LOCK = 0x70796f75; // "pyou"

/**
 * Takes, inside `work`, the lock of `gateway`'s payout `gatewayPayoutId` on all the gateway's accounts
 * (a transaction-scoped advisory lock, `PAYOUT_LOCK`, hash of `<gateway>:<id>`), so that what
 * `samePayoutElsewhere` reads and the payout row written after it are one step: the same payout
 * recorded at once on two accounts (a sweep and a webhook) is recorded once. Lock order, the same in
 * every unit: the ledger writers' lock (`inUnitOfWork`), then partner fee locks (a batch's all at
 * once, `lockChargesAhead`, and the payout's lines'), then the payout's lock, which no unit holds
 * while it waits for a partner fee lock of the same payout's lines. Taken again without waiting.
 */
async function lockPayout(work: UnitOfWork, gateway: GatewayName, gatewayPayoutId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${PAYOUT_LOCK}, hashtext(${`${gateway}:${gatewayPayoutId}`}))`.execute(
    work.trx,
  );
}

/**
 * The other gateway account of `account`'s gateway that recorded `report`'s payout, when `account`
 * has not recorded it itself: a payout with the same gateway id, currency, amount and creation time
 * and — when both the report and that payout list their lines — the same lines, line by line the
 * same content (`lineContent`: gateway line id, kind, currency, gross, fee, net and the gateway's
 * ids of the charge, refund and dispute it names), so that two accounts whose payouts merely share an id and
 * totals (a settlement file's hand-made `payout_id` and `line_id`s, e.g. a date and row numbers, over
 * other orders) stay apart. A payout without its lines on one side is a gateway API's (a Stripe
 * `payout.created` webhook, a PayPal withdrawal), whose id is the gateway's own: a settlement file's
 * payout always lists its lines (settlement-csv.ts groups rows into payouts), so two files' payouts
 * are always compared line by line. The oldest such account, or undefined. The caller holds the
 * payout's lock (`lockPayout`).
 */
async function samePayoutElsewhere(
  work: UnitOfWork,
  account: SettlementAccount,
  report: PayoutReport,
): Promise<SettlementAccount | undefined> {
  const rows = await work.trx
    .selectFrom('payouts')
    .select(['id', 'gateway_account', 'lines_known'])
    .where('gateway', '=', account.gateway)
    .where('gateway_payout_id', '=', report.gatewayPayoutId)
    .where('currency', '=', report.currency)
    .where('amount', '=', report.amount)
    .where('gateway_created_at', '=', report.createdAt)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  if (rows.some((row) => row.gateway_account === account.gatewayAccount)) return undefined;
  const listed = new Set((report.lines ?? []).map((line) => lineContent(lineColumns(line))));
  for (const row of rows) {
    if (report.lines !== undefined && row.lines_known) {
      const lines = await work.trx
        .selectFrom('settlement_lines')
        .select([
          'gateway_line_id',
          'kind',
          'currency',
          'gross',
          'fee',
          'net',
          'gateway_transaction_id',
          'gateway_refund_id',
          'gateway_dispute_id',
        ])
        .where('payout_id', '=', row.id)
        .execute();
      if (lines.length !== listed.size || lines.some((line) => !listed.has(lineContent(line)))) continue;
    }
    return { gateway: account.gateway, gatewayAccount: row.gateway_account };
  }
  return undefined;
}

/** What identifies a payout's line across accounts (`samePayoutElsewhere`): its id and content, as one string. */
function lineContent(
  line: Pick<
    SettlementLineRow,
    | 'gateway_line_id'
    | 'kind'
    | 'currency'
    | 'gross'
    | 'fee'
    | 'net'
    | 'gateway_transaction_id'
    | 'gateway_refund_id'
    | 'gateway_dispute_id'
  >,
): string {
  return JSON.stringify([
    line.gateway_line_id,
    line.kind,
    line.currency,
    String(line.gross),
    String(line.fee),
    String(line.net),
    line.gateway_transaction_id,
    line.gateway_refund_id,
    line.gateway_dispute_id,
  ]);
}

/**
 * Whether `payout`'s money is held back: it was first recorded with lines all held by another payout
 * of its account (`recordPayoutLines`), which the `payout_lines_elsewhere` exception about it records
 * (resolved or not), so none of its movements is ever posted: that deposit's money moved with the
 * other payout.
 */
async function heldBack(work: UnitOfWork, payout: PayoutRow): Promise<boolean> {
  const raised = await work.trx
    .selectFrom('reconciliation_exceptions')
    .select('id')
    .where('payout_id', '=', payout.id)
    .where('kind', '=', 'payout_lines_elsewhere')
    .executeTakeFirst();
  return raised !== undefined;
}

/**
 * Records `payout`'s move to its status (`before`: its status until now, undefined when new): a
 * `payout.<status>` activity when it changed, and its movements once each (`pyo_…:created`, `:paid`,
 * `:returned`), none for a payout of 0 or one whose money is held back (`heldBack`).
 */
async function postPayoutMovements(
  work: UnitOfWork,
  payout: PayoutRow,
  before: PayoutStatus | undefined,
): Promise<void> {
  const movement: PayoutMovement = {
    payoutId: payout.id,
    gateway: payout.gateway,
    gatewayAccount: payout.gateway_account,
    currency: payout.currency,
    amount: payout.amount,
  };
  if (before !== payout.status) {
    await recordActivity(work, {
      resourceType: 'payout',
      resourceId: payout.id,
      action: `payout.${payout.status}`,
      data: { amount: payout.amount, currency: payout.currency, gateway_payout_id: payout.gateway_payout_id },
    });
  }
  if (payout.amount === 0n || (await heldBack(work, payout))) return;
  if (RETURNED.has(payout.status)) {
    // Only a payout that was sent (seen in a non-final status before) moved money to return.
    if (before !== undefined && !RETURNED.has(before)) {
      await postEntry(work, payoutReturned({ ...movement, wasPaid: before === 'paid' }));
    }
    return;
  }
  await postEntry(work, payoutCreated(movement));
  if (payout.status === 'paid') await postEntry(work, payoutPaid(movement));
}

/**
 * Records the lines `report` lists for `payout` (`recordSettlementLine`; each unmatched one raises
 * `settlement_line_unmatched`), then checks what the payout holds now: a line another payout of the
 * account holds already stays there and does not count. A payout recorded now for the first time
 * (`first`: none of its movements posted yet) whose lines are all another payout's raises
 * `payout_lines_elsewhere`, naming the payouts that hold them, and its money is held back
 * (`heldBack`); otherwise a payout whose held lines' nets, in its currency, do not sum to its amount,
 * or holding a line in another currency, raises `payout_lines_mismatch`, naming the payouts holding
 * the lines it lists but does not hold.
 */
async function recordPayoutLines(
  work: UnitOfWork,
  account: SettlementAccount,
  payout: PayoutRow,
  report: PayoutReport,
  known: ReadonlyMap<string, LineMatch | Unmatchable>,
  first: boolean,
): Promise<void> {
  // Refund lines first: a charge line settled short waits for its payment's refund lines (`refundLinesFirst`).
  const lines = refundLinesFirst(report.lines ?? []);
  await lockPartnerFees(work, account.gateway, lines);
  let held = 0;
  let total = 0n;
  let foreign = 0;
  const elsewhere = new Set<string>();
  for (const line of lines) {
    const outcome = await recordSettlementLine(work, account, line, payout.id, {
      known: known.get(line.gatewayLineId),
    });
    if (outcome.kind === 'unmatched') {
      await raiseException(work, unmatchedLine(account, outcome.line, { payout, ...outcome }));
    }
    const row = outcome.kind === 'not_found' ? undefined : outcome.line;
    if (row?.payout_id && row.payout_id !== payout.id) {
      elsewhere.add(row.payout_id);
    } else if (row) {
      held += 1;
      if (row.currency === payout.currency) total += row.net;
      else foreign += 1;
    }
  }
  const others =
    elsewhere.size === 0
      ? []
      : await work.trx
          .selectFrom('payouts')
          .select(['id', 'gateway_payout_id'])
          .where('id', 'in', [...elsewhere])
          .orderBy('id')
          .execute();
  const named = others.map((other) => `${other.id} (${other.gateway_payout_id})`).join(', ');
  const name = `payout ${payout.id} (${payout.gateway_payout_id})`;
  if (first && lines.length > 0 && held === 0) {
    await raiseException(work, {
      kind: 'payout_lines_elsewhere',
      gateway: account.gateway,
      gatewayAccount: account.gatewayAccount,
      payoutId: payout.id,
      message: `${name} of ${payout.amount} ${payout.currency} (minor units) lists only lines that payout ${named} holds already: the same deposit under two payout ids? its money was not moved again (nothing to payouts in transit or the bank)`,
      details: {
        amount: payout.amount,
        lines: lines.length,
        other_payouts: others.map((other) => other.id),
        other_gateway_payout_ids: others.map((other) => other.gateway_payout_id),
      },
    });
    return;
  }
  if (total !== payout.amount || foreign > 0) {
    const notHeld = lines.length - held;
    await raiseException(work, {
      kind: 'payout_lines_mismatch',
      gateway: account.gateway,
      gatewayAccount: account.gatewayAccount,
      payoutId: payout.id,
      message: `${name} is ${payout.amount} ${payout.currency} but its lines' nets sum to ${total}${foreign > 0 ? ` and ${foreign} line(s) are in another currency` : ''} (minor units)${notHeld > 0 ? `, counting the lines it holds: ${notHeld} line(s) it lists are on payout ${named} already` : ''}`,
      details: {
        amount: payout.amount,
        lines_total: total,
        lines: held,
        ...(notHeld > 0 ? { lines_elsewhere: notHeld, other_payouts: others.map((other) => other.id) } : {}),
      },
    });
  }
}
