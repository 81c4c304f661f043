import { sql } from 'kysely';
import { capturedAmount } from '../billing/invoice-payment.ts';
import type { GatewayName } from '../config/gateways.ts';
import { newId } from '../db/ids.ts';
import type { DisputeRow, RefundRow, SettlementLineRow } from '../db/schema.ts';
import { type NewException, raiseException, resolveLineExceptions } from '../exceptions/exceptions.ts';
import type { SettlementLine } from '../gateways/settlement.ts';
import { chart } from '../ledger/chart.ts';
import { entryPostings, postEntry } from '../ledger/journal.ts';
import {
  entryKeys,
  type SettlementLineMovement,
  settlementLineBooked,
  settlementLineConverted,
  settlementLineMoves,
} from '../ledger/movements.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { abs } from '../money/amount.ts';
import { exponentOf } from '../money/currency.ts';
import { convertedRange, parseRate } from '../money/exchange-rate.ts';
import { findDispute, reversalDisputeId } from '../payments/disputes.ts';
import { findRefund } from '../payments/refunds.ts';
import { recordSettledShort, type SettledShortOutcome } from '../payments/settled-short.ts';
import { findTransaction, lockTransactionsAhead } from '../payments/transactions.ts';

/** A gateway account, as settlement data names it: the gateway and `gwa_…` (null: its default account). */
export interface SettlementAccount {
  gateway: GatewayName;
  gatewayAccount: string | null;
}

/**
 * `stripe`, or `stripe:gwa_…` for a gateway account: how logs, the CLI and exceptions name an
 * account.
 */
export const accountName = (account: SettlementAccount): string =>
  account.gatewayAccount ? `${account.gateway}:${account.gatewayAccount}` : account.gateway;

/** Rows of `account`: its gateway, and its gateway account (null: the default account) or none. */
export const ofAccount = (account: SettlementAccount) =>
  sql<boolean>`gateway = ${account.gateway} AND gateway_account IS NOT DISTINCT FROM ${account.gatewayAccount}`;

/** The billhook object a line is about, and what billhook booked for it (signed like the line's gross). */
export interface LineMatch {
  transactionId: string | null;
  refundId: string | null;
  disputeId: string | null;
  /** What billhook booked into clearing for it, in its own currency: the base of a conversion. */
  booked: { currency: string; amount: bigint } | null;
}

const NO_MATCH: LineMatch = { transactionId: null, refundId: null, disputeId: null, booked: null };

/**
 * A line naming a billhook charge, refund or dispute of another gateway account of its gateway than
 * the one that reported it (e.g. a payout read on `gwa_b` listing a charge taken on the default
 * account): it matches nothing, so nothing of it is booked into either account's clearing or fees.
 */
export interface OtherAccountMatch {
  /** The gateway account (`gwa_…`; null: the gateway's default account) the named object is on. */
  otherAccount: string | null;
}

/**
 * A charge, refund or dispute line naming an object another settlement line already matched with a
 * gross of the same sign (a payment has one charge line and one reversal; a refund one line out and,
 * if it failed, one back; a dispute one withdrawal and one reinstatement): the same money reported
 * under two gateway line ids (a Stripe webhook's `txn_…` and a file's derived `csv_…`; a row's id
 * corrected by hand). It matches nothing, so the object's fee and conversion are booked once, by the
 * first line; a caller records it unmatched for a person at once, naming both lines (waiting does not
 * make it the object's line).
 */
export interface MatchedByOtherLine {
  /** The settlement line (`stl_…`, the gateway's line id) that matched the object first. */
  matchedBy: { id: string; gatewayLineId: string };
}

/** A match that matches nothing now and never will: `OtherAccountMatch` or `MatchedByOtherLine`. */
export type Unmatchable = OtherAccountMatch | MatchedByOtherLine;

/** Whether `match` is one that matches nothing for good (`Unmatchable`): recorded unmatched at once. */
const isUnmatchable = (match: LineMatch | Unmatchable | undefined): match is Unmatchable =>
  match !== undefined && ('otherAccount' in match || 'matchedBy' in match);

/**
 * The billhook charge, refund or dispute a settlement line is about, found by the gateway's ids or
 * billhook's reference (a refund line naming neither: by its payment and amount, `refundOfPayment`);
 * a partner fee (`isPartnerFee`) is about the succeeded payment it names; any other `fee`, an
 * `adjustment`, `payout_return`, `conversion` or `hold` line is about none (and matches as such).
 * Only objects of the line's own gateway account match (`account`; null: the gateway's default
 * account): one of another account of the gateway is `OtherAccountMatch`, which a caller records
 * unmatched for a person at once (waiting does not change whose it is); so is a second charge, refund
 * or dispute line of an object another line of the same sign matched already (`MatchedByOtherLine`,
 * never a second fee).
 * A charge must have succeeded and a refund have moved what billhook booked (`refundMoved`): until billhook recorded them
 * (their webhook may come after the payout's), the line is unmatched.
 * @returns the match, an `Unmatchable`, or undefined when billhook has no such object (yet)
 */
export async function matchLine(
  work: UnitOfWork,
  account: SettlementAccount,
  line: SettlementLine,
): Promise<LineMatch | Unmatchable | undefined> {
  const { gateway } = account;
  const elsewhere = (row: { gateway_account: string | null }): OtherAccountMatch | undefined =>
    row.gateway_account === account.gatewayAccount ? undefined : { otherAccount: row.gateway_account };
  if (isPartnerFee(line)) {
    const payment = line.gatewayTransactionId
      ? await findTransaction(work, gateway, line.gatewayTransactionId, undefined)
      : undefined;
    if (!payment) return undefined;
    return (
      elsewhere(payment) ??
      (payment.status === 'succeeded' ? { ...NO_MATCH, transactionId: payment.id } : undefined)
    );
  }
  if (
    line.kind === 'fee' ||
    line.kind === 'adjustment' ||
    line.kind === 'payout_return' ||
    line.kind === 'conversion' ||
    line.kind === 'hold'
  ) {
    return NO_MATCH;
  }
  if (line.kind === 'charge') {
    const payment = await findTransaction(work, gateway, line.gatewayTransactionId, line.reference);
    if (!payment) return undefined;
    const other = elsewhere(payment);
    if (other) return other;
    if (payment.status !== 'succeeded') return undefined;
    const first = await earlierLineOf(work, account, line, 'transaction_id', payment.id);
    if (first) return first;
    const amount = capturedAmount(payment);
    return {
      ...NO_MATCH,
      transactionId: payment.id,
      booked: { currency: payment.currency, amount: line.gross < 0n ? -amount : amount },
    };
  }
  if (line.kind === 'refund') {
    const refund =
      line.gatewayRefundId || line.reference
        ? await findRefund(work.trx, gateway, line.gatewayRefundId, line.reference)
        : await refundOfPayment(work, gateway, line);
    if (!refund) return undefined;
    const other = elsewhere(refund);
    if (other) return other;
    if (!(await refundMoved(work, refund, line.gross))) return undefined;
    const first = await earlierLineOf(work, account, line, 'refund_id', refund.id);
    if (first) return first;
    return {
      ...NO_MATCH,
      transactionId: refund.transaction_id,
      refundId: refund.id,
      booked: { currency: refund.currency, amount: line.gross > 0n ? refund.amount : -refund.amount },
    };
  }
  if (!line.gatewayDisputeId) return undefined;
  const dispute = await disputeOfLine(work, gateway, line.gatewayDisputeId, line.gross);
  if (!dispute) return undefined;
  return (
    elsewhere(dispute) ??
    (await earlierLineOf(work, account, line, 'dispute_id', dispute.id)) ?? {
      ...NO_MATCH,
      transactionId: dispute.transaction_id,
      disputeId: dispute.id,
      booked: { currency: dispute.currency, amount: line.gross > 0n ? dispute.amount : -dispute.amount },
    }
  );
}

/**
 * The settlement line of the same kind as `line` (charge, refund or dispute) other than `line` of
 * `account` (the gateway's line id) that matched billhook's object `id` (`column`: a `txn_…`, `re_…`
 * or `dp_…`) with a gross of the same sign, on any account (the oldest), as `MatchedByOtherLine`; or
 * undefined: an object has one line each way.
 */
async function earlierLineOf(
  work: UnitOfWork,
  account: SettlementAccount,
  line: SettlementLine,
  column: 'transaction_id' | 'refund_id' | 'dispute_id',
  id: string,
): Promise<MatchedByOtherLine | undefined> {
  const first = await work.trx
    .selectFrom('settlement_lines')
    .select(['id', 'gateway_line_id'])
    .where(column, '=', id)
    .where('kind', '=', line.kind)
    .where('gross', line.gross < 0n ? '<' : '>=', 0n)
    .where(sql<boolean>`NOT (${ofAccount(account)} AND gateway_line_id = ${line.gatewayLineId})`)
    .orderBy('created_at')
    .orderBy('id')
    .executeTakeFirst();
  return first && { matchedBy: { id: first.id, gatewayLineId: first.gateway_line_id } };
}

/**
 * The dispute a dispute line of `gross` naming `gatewayDisputeId` is about: that dispute, except that
 * a line of a dispute the merchant won is the chargeback that came after it when billhook recorded
 * one (`reversalDisputeId`: PayPal keys the claim and the chargeback after it by the same capture):
 * money leaving (gross negative: PayPal's `PAYMENT.CAPTURE.REVERSED` line, a `T1201`) and, for a won
 * dispute that was no chargeback itself (not `reversed`: a PayPal claim), money coming back (a
 * `T1202` chargeback reversal); a won dispute without one keeps its own withdrawal line (Stripe's).
 * PayPal's lines match only a dispute whose money billhook booked as they say
 * (`paypalDisputeMoved`): until then they are unmatched (the caller waits, or records them for a
 * person).
 */
async function disputeOfLine(
  work: UnitOfWork,
  gateway: GatewayName,
  gatewayDisputeId: string,
  gross: bigint,
): Promise<DisputeRow | undefined> {
  const dispute = await findDispute(work.trx, gateway, gatewayDisputeId);
  if (!dispute) return undefined;
  const chargebackAfter =
    dispute.status === 'won' && (gross < 0n || !dispute.reversed)
      ? await findDispute(work.trx, gateway, reversalDisputeId(gatewayDisputeId))
      : undefined;
  const about = chargebackAfter ?? dispute;
  if (gateway === 'paypal' && !paypalDisputeMoved(about, gross)) return undefined;
  return about;
}

/**
 * Whether billhook booked the money a PayPal dispute line of `gross` says moved, for `dispute`. A
 * chargeback's money leaving (`T1201`, a reversal's line: gross negative) is a dispute billhook holds
 * as taking it: open, lost, or won after being a chargeback (`reversed`: the money left, then came
 * back); not a claim the merchant won (PayPal took nothing for it; the line is a chargeback billhook
 * has not heard of yet, e.g. a `T1201` of JPY 12000 swept before its `PAYMENT.CAPTURE.REVERSED`, which
 * matched to the won claim booked its fee only and left the 12000 in clearing). Money coming back (a
 * `T1202` chargeback reversal: gross positive) is a chargeback (`reversed`) billhook holds as won
 * (its `dp_…:won` or `dp_…:loss_returned` booked it); before that, matched to the lost chargeback,
 * it booked nothing of the 12000 PayPal gave back and said nothing, and matched to a won claim (no
 * chargeback), it named a dispute PayPal took nothing for.
 */
function paypalDisputeMoved(dispute: DisputeRow, gross: bigint): boolean {
  if (gross >= 0n) return dispute.status === 'won' && dispute.reversed;
  return (
    dispute.status === 'open' || dispute.status === 'lost' || (dispute.status === 'won' && dispute.reversed)
  );
}

/**
 * Whether a refund line of `gross` is money billhook booked for `refund`: a succeeded refund's
 * withdrawal (gross negative); and, for a refund that failed after it succeeded (its
 * `re_…:reversed` posted), that withdrawal and the failure's money coming back (gross positive,
 * Stripe's `refund_failure`), which `re_…:reversed` booked. A refund billhook holds as failed without
 * it ever succeeding moved nothing in its books: a line of it stays unmatched, for a person; a pending
 * or unknown refund's line waits until billhook knows how it ended.
 */
async function refundMoved(work: UnitOfWork, refund: RefundRow, gross: bigint): Promise<boolean> {
  if (refund.status === 'succeeded') return gross < 0n;
  if (refund.status !== 'failed') return false;
  const reversed = await work.trx
    .selectFrom('journal_entries')
    .select('id')
    .where('idempotency_key', '=', entryKeys.refundReversed(refund.id))
    .executeTakeFirst();
  return reversed !== undefined;
}

/**
 * The refund a refund line is about when the line names no refund, only the refunded payment
 * (`gatewayTransactionId`) and its amount: a SecurePay report's row, SecurePay giving refunds no id
 * of their own (docs/settlement-csv.md, "SecurePay"). It is the payment's oldest succeeded refund of
 * exactly that amount (`-gross`) in the line's currency that no other settlement line matched, so
 * two equal refunds of one payment match one line each.
 */
async function refundOfPayment(
  work: UnitOfWork,
  gateway: GatewayName,
  line: SettlementLine,
): Promise<RefundRow | undefined> {
  if (!line.gatewayTransactionId) return undefined;
  const payment = await findTransaction(work, gateway, line.gatewayTransactionId, undefined);
  if (!payment) return undefined;
  return work.trx
    .selectFrom('refunds as r')
    .selectAll('r')
    .where('r.transaction_id', '=', payment.id)
    .where('r.status', '=', 'succeeded')
    .where('r.currency', '=', line.currency)
    .where('r.amount', '=', -line.gross)
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('settlement_lines as s').select('s.id').whereRef('s.refund_id', '=', 'r.id'))),
    )
    .orderBy('r.created_at')
    .orderBy('r.id')
    .executeTakeFirst();
}

/**
 * `lines` in the order to record them: refund lines first, the others after them, each group in its
 * own order. A charge line settled for less is followed only once every refund of its payment has a
 * settlement line of its own (payments/settled-short.ts `refundsNotSettled`: a file may net a refund
 * into its charge's row), so the refund lines of the same report (a payout, or a file's lines outside
 * payouts) must be recorded before its charge lines: EUR 100.00 refunded 10.00, a file's charge row of
 * 80.00 written before its refund row of −10.00 was refused (2000 left in clearing for a person),
 * where the same rows the other way round were followed (2000 owed again). Refund lines match
 * whatever charge lines were recorded (`matchLine`), so nothing else depends on this order.
 */
export function refundLinesFirst<T extends Pick<SettlementLine, 'kind'>>(lines: readonly T[]): T[] {
  return [
    ...lines.filter((line) => line.kind === 'refund'),
    ...lines.filter((line) => line.kind !== 'refund'),
  ];
}

/** What recording a settlement line did. */
export type LineOutcome =
  | { kind: 'applied' | 'duplicate'; line: SettlementLineRow }
  /**
   * Billhook has no object for it (yet), or (`otherAccount` set) the object it names is of another
   * gateway account of the gateway, or (`matchedBy` set) its object is another line's
   * (`MatchedByOtherLine`): recorded, booked nothing, for a person when it stays so.
   */
  | ({ kind: 'unmatched'; line: SettlementLineRow } & Partial<OtherAccountMatch & MatchedByOtherLine>)
  /** Billhook has no object for it (yet), and the caller asked to refuse it: nothing was written. */
  | { kind: 'not_found' };

/** Options of `recordSettlementLine`. */
export interface RecordLineOptions {
  /** The match the caller already found for this line (`recordPayout` checks every line first). */
  known?: LineMatch | Unmatchable;
  /**
   * What to do with a line that matches nothing: `record` it unmatched (the default), or `refuse` it
   * (`not_found`, nothing written), so a webhook retries once billhook knows its charge.
   */
  unmatched?: 'record' | 'refuse';
}

/**
 * The columns of a `settlement_lines` row that a reported line gives, as stored (absent fields null,
 * no partner fee 0): what the gateway said, not billhook's account, match or payout.
 */
export function lineColumns(line: SettlementLine) {
  return {
    gateway_line_id: line.gatewayLineId,
    kind: line.kind,
    currency: line.currency,
    gross: line.gross,
    fee: line.fee,
    net: line.net,
    partner_fee: line.partnerFee ?? 0n,
    original_currency: line.original?.currency ?? null,
    original_amount: line.original?.amount ?? null,
    exchange_rate: line.exchangeRate ?? null,
    gateway_transaction_id: line.gatewayTransactionId ?? null,
    gateway_refund_id: line.gatewayRefundId ?? null,
    gateway_dispute_id: line.gatewayDisputeId ?? null,
    reference: line.reference ?? null,
    description: line.description ?? null,
    occurred_at: line.occurredAt,
    available_on: line.availableOn ?? null,
  };
}

/**
 * Records one settlement line of `account` once (by the gateway's line id), matched to billhook's
 * charge, refund or dispute when it can be (`matchLine`), and books what it adds to the books
 * (`settlementLineBooked`: the fee, a conversion, a standalone fee or adjustment), once. A line seen
 * again (a payout listing a charge whose fee was already booked) only gains its payout (and its
 * `availableOn`, when it had none: a report may say it once the line is paid out), and a match
 * it did not have (its `settlement_line_unmatched` exceptions are then resolved). A conversion is
 * booked against what billhook booked for the object (its own currency and amount), so clearing in
 * that currency returns to zero exactly; a line in the object's own currency whose gross is not what
 * billhook booked for it raises `amount_mismatch` for a person, a charge line settled for less being
 * followed first (`followSettledAmount`: the difference out of clearing and owed again on the
 * invoice), any other difference staying in clearing,
 * and so does a PayPal dispute line in another currency than its dispute whose gross is not the
 * capture's converted gross (`disputeConvertedOtherAmount`: the difference stays in FX), and any
 * other line in another currency than its object converted from another amount than billhook booked
 * for it, or saying nothing of what it converted (`convertedOtherAmount`), or converted from it at a
 * stated rate to a gross that is not billhook's amount × that rate (`rateOtherAmount`),
 * and an `adjustment` line that books something raises `settlement_adjustment` (`adjustmentBooked`):
 * it is for a person;
 * one the gateway could not translate (`unbooked`) books nothing and raises `settlement_line_unbooked`.
 * The line is matched at most once, and not at all when it was matched before. A line seen again
 * with another currency, gross, fee (net of its partner fee) or `original` than the one recorded
 * (`lineChanged`, e.g. PayPal's converted capture webhook line after a sweep booked the capture's
 * row in the buyer's currency) books nothing more, gains no payout nor match, and raises
 * `settlement_line_changed` naming both versions (`changedLine`); its outcome is `duplicate`. Except
 * PayPal's converted capture line after a sweep booked the capture unconverted (`convertedLater`):
 * it replaces that booking (outcome `applied`).
 * @param payoutId the payout (`pyo_…`) whose lines these are, if any
 */
export async function recordSettlementLine(
  work: UnitOfWork,
  account: SettlementAccount,
  line: SettlementLine,
  payoutId: string | null,
  options: RecordLineOptions = {},
): Promise<LineOutcome> {
  await lockChargeLinesAhead(work, account.gateway, [line]);
  await lockPartnerFees(work, account.gateway, [line]);
  // A CSV row an earlier billhook recorded under another derived id is this line (`formerLineId`);
  // that line first when both are there: the row's id now may be another row's former one (two
  // identical rows of a file, one of them with available_on, take each other's `_2`).
  const candidates = await work.trx
    .selectFrom('settlement_lines')
    .selectAll()
    .where(ofAccount(account))
    .where('gateway_line_id', 'in', [line.gatewayLineId, ...(line.formerLineId ? [line.formerLineId] : [])])
    .forUpdate()
    .execute();
  const existing =
    candidates.find((c) => c.gateway_line_id === line.formerLineId) ??
    candidates.find((c) => c.gateway_line_id === line.gatewayLineId);
  if (existing && lineChanged(existing, line)) {
    const replaced = await convertedLater(work, account, existing, line);
    if (replaced) {
      await resolveConversionsOf(work, account, replaced);
      return { kind: 'applied', line: replaced };
    }
    // The gateway reports this line again with other money: neither version is silently dropped nor
    // booked twice; a person compares them (`changedLine`).
    await raiseException(work, changedLine(account, existing, line));
    return { kind: 'duplicate', line: existing };
  }
  const wasMatched = existing !== undefined && isMatched(existing);
  const found = wasMatched ? undefined : (options.known ?? (await matchLine(work, account, line)));
  // A line naming another account's object, or a charge another line matched, is recorded unmatched
  // at once, never refused: a retry would not make the object this account's, or the charge this line's.
  const never = isUnmatchable(found) ? found : undefined;
  const matched = found && !isUnmatchable(found) ? found : undefined;
  if (!wasMatched && !found && options.unmatched === 'refuse') return { kind: 'not_found' };
  if (existing && wasMatched && (existing.payout_id !== null || payoutId === null)) {
    return { kind: 'duplicate', line: existing };
  }
  const row = existing
    ? await work.trx
        .updateTable('settlement_lines')
        .set({
          payout_id: existing.payout_id ?? payoutId,
          available_on: existing.available_on ?? line.availableOn ?? null,
          exchange_rate: existing.exchange_rate ?? line.exchangeRate ?? null,
          ...(matched
            ? {
                transaction_id: matched.transactionId,
                refund_id: matched.refundId,
                dispute_id: matched.disputeId,
              }
            : {}),
        })
        .where('id', '=', existing.id)
        .returningAll()
        .executeTakeFirstOrThrow()
    : await work.trx
        .insertInto('settlement_lines')
        .values({
          id: newId('stl'),
          gateway: account.gateway,
          gateway_account: account.gatewayAccount,
          ...lineColumns(line),
          transaction_id: matched?.transactionId ?? null,
          refund_id: matched?.refundId ?? null,
          dispute_id: matched?.disputeId ?? null,
          payout_id: payoutId,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
  if (!matched) {
    if (wasMatched) return { kind: 'duplicate', line: row };
    return { kind: 'unmatched', line: row, ...never };
  }
  if (existing) {
    await resolveLineExceptions(
      work,
      row.id,
      'settlement_line_unmatched',
      `matched ${matched.refundId ?? matched.disputeId ?? matched.transactionId} later`,
    );
  }
  const movement: SettlementLineMovement = {
    settlementLineId: row.id,
    gateway: account.gateway,
    gatewayAccount: account.gatewayAccount,
    kind: row.kind,
    currency: row.currency,
    ...(await bookedAmounts(work, account, row)),
    original: matched.booked && matched.booked.currency !== row.currency ? matched.booked : undefined,
  };
  if (line.kind === 'adjustment' && line.unbooked) {
    // A conversion of a payment its converted charge line booked already, as the row says: nothing
    // is left for a person (one that says otherwise, or comes first, is raised).
    if (!(await conversionBookedBy(work, account, row))) {
      await raiseException(work, adjustmentBooked(account, row, line.unbooked));
    }
    return { kind: 'applied', line: row };
  }
  const moves = settlementLineMoves(movement);
  if (moves) await postEntry(work, settlementLineBooked(movement));
  if (row.kind === 'charge' && row.original_currency !== null) await resolveConversionsOf(work, account, row);
  // An adjustment that moves nothing (gross and fee 0) booked nothing for a person to classify.
  if (row.kind === 'adjustment' && moves) await raiseException(work, adjustmentBooked(account, row));
  const booked = matched.booked;
  if (booked && booked.currency === row.currency && booked.amount !== row.gross) {
    const followed = await followSettledAmount(work, row, booked.amount);
    await raiseException(work, settledOtherAmount(account, row, booked.amount, followed));
  }
  // PayPal's chargeback rows in the balance currency (a T1201 of CNY for a USD dispute): only the
  // converted capture is known to be right (Stripe converts a dispute at its own day's rate).
  if (account.gateway === 'paypal' && matched.disputeId && booked && booked.currency !== row.currency) {
    const expected = await convertedCaptureGross(work, account, row, booked);
    if (expected !== row.gross) {
      await raiseException(work, disputeConvertedOtherAmount(account, row, booked, expected));
    }
  }
  // Any other line in another currency than its object says what the gateway converted (`original`:
  // Stripe's source amount, PayPal's gross in the payment's currency, a file's original columns): it
  // must be what billhook booked, or the conversion booked against billhook's amount hides the rest in FX.
  if (booked && booked.currency !== row.currency && !(account.gateway === 'paypal' && matched.disputeId)) {
    const mismatch =
      row.original_currency !== booked.currency || row.original_amount !== booked.amount
        ? convertedOtherAmount(account, row, booked)
        : rateOtherAmount(account, row, booked);
    if (mismatch) await raiseException(work, mismatch);
  }
  return { kind: 'applied', line: row };
}

/**
 * What a dispute line `row` in another currency than its dispute (`booked`: the dispute's currency
 * and amount, signed like the line) should say when the dispute is for the whole capture: the gross
 * of the capture's converted charge line (matched to the same payment on `account`, in the line's
 * currency, converted from exactly the dispute's amount in its currency), signed like `row`. E.g. a
 * USD 10.99 capture settled as CNY 60.39: a chargeback of USD 10.99 is CNY −60.39.
 * @returns minor units of the line's currency, or undefined when billhook has no such line (a
 * dispute of part of the capture, or the capture's converted line not recorded): nothing to compare
 */
async function convertedCaptureGross(
  work: UnitOfWork,
  account: SettlementAccount,
  row: SettlementLineRow,
  booked: { currency: string; amount: bigint },
): Promise<bigint | undefined> {
  if (row.transaction_id === null) return undefined;
  const whole = abs(booked.amount);
  const charge = await work.trx
    .selectFrom('settlement_lines')
    .select('gross')
    .where(ofAccount(account))
    .where('kind', '=', 'charge')
    .where('transaction_id', '=', row.transaction_id)
    .where('currency', '=', row.currency)
    .where('original_currency', '=', booked.currency)
    .where('original_amount', '=', whole)
    .orderBy('created_at')
    .orderBy('id')
    .executeTakeFirst();
  if (!charge) return undefined;
  return row.gross < 0n ? -charge.gross : charge.gross;
}

/**
 * What a `convertedMismatch` says beyond what every one says: how the gateway's line reads
 * (`said`, after its gross: `converted from -500 EUR`), what it disagrees with (`against`, after
 * "but": `billhook booked -1000 EUR for dp_…`), what a person checks at the gateway (`check`: what
 * it `converted`, `took`) and the details of its own (`details`: the converted amount, the capture
 * line's gross).
 */
interface ConvertedMismatchWords {
  said: string;
  against: string;
  check: string;
  details: Record<string, unknown>;
}

/**
 * The `amount_mismatch` exception of a line in another currency than its charge, refund or dispute
 * whose conversion was booked against what billhook booked for the object (`booked`: its currency
 * and amount, minor units signed like the line) although the gateway's line says other money
 * (`words`): the difference sits in the gateway's FX account until a person books it. Names the
 * line, its gross, billhook's amount and what the gateway said; details: `gateway_line_id`,
 * `currency`, `gross`, `booked_currency`, `booked` and the words' own. One per line (the caller
 * raises at most one `amount_mismatch` of a line; `raiseException` keeps it once).
 */
function convertedMismatch(
  account: SettlementAccount,
  line: SettlementLineRow,
  booked: { currency: string; amount: bigint },
  words: ConvertedMismatchWords,
): NewException {
  return {
    kind: 'amount_mismatch',
    gateway: account.gateway,
    gatewayAccount: account.gatewayAccount,
    transactionId: line.transaction_id ?? undefined,
    refundId: line.refund_id ?? undefined,
    payoutId: line.payout_id ?? undefined,
    settlementLineId: line.id,
    message: `${line.kind} line ${line.gateway_line_id} settled ${line.gross} ${line.currency} ${words.said} (minor units), but ${words.against}: booked as converted from ${booked.amount} ${booked.currency}, the difference sits in fx:${account.gateway}; check at the gateway what it ${words.check} and book the difference`,
    details: {
      gateway_line_id: line.gateway_line_id,
      currency: line.currency,
      gross: line.gross,
      booked_currency: booked.currency,
      booked: booked.amount,
      ...words.details,
    },
  };
}

/**
 * The `amount_mismatch` exception (`convertedMismatch`) of a dispute line in another currency than
 * its dispute whose gross is not the converted capture's (`convertedCaptureGross`; undefined:
 * billhook has none to compare with): its conversion was booked against the dispute's amount
 * (`booked`, in the dispute's currency, signed like the line), so the difference sits in the
 * gateway's FX account until a person books it. E.g. a USD 10.99 dispute of a capture settled as
 * CNY 60.39, whose `T1201` says CNY −30.00. Names both amounts and currencies (minor units). Raised
 * for PayPal's dispute lines only.
 */
function disputeConvertedOtherAmount(
  account: SettlementAccount,
  line: SettlementLineRow,
  booked: { currency: string; amount: bigint },
  expected: bigint | undefined,
): NewException {
  return convertedMismatch(account, line, booked, {
    said: `for dispute ${line.dispute_id} of ${booked.amount} ${booked.currency}`,
    against:
      expected === undefined
        ? `billhook has no converted capture line of ${abs(booked.amount)} ${booked.currency} in ${line.currency} to compare with`
        : `the capture was converted as ${expected} ${line.currency}`,
    check: 'took',
    details: { expected: expected ?? null },
  });
}

/**
 * The `amount_mismatch` exception (`convertedMismatch`) of a line in another currency than its
 * charge, refund or dispute whose converted amount (`original`: what the gateway says it converted,
 * e.g. a Stripe balance transaction's expanded source `amount` and `currency`,
 * https://docs.stripe.com/api/balance_transactions/object#balance_transaction_object-exchange_rate;
 * a settlement file's `original_currency` and `original_amount`) is not what billhook booked for the
 * object (`booked`, signed like the line), or that says none: its conversion was booked against
 * billhook's amount, so the difference (or, with none said, a currency the line may merely name
 * wrongly) sits in the gateway's FX account until a person books it. E.g. a Stripe withdrawal of
 * USD −6.17 converted from a EUR 5.00 dispute, billhook's dispute being EUR 10.00; a SecurePay file's
 * row of NZD 100.00 for an AUD 100.00 charge. Not PayPal's dispute lines, which say no converted
 * amount and are compared with the capture's converted line (`disputeConvertedOtherAmount`). Names
 * the amounts and currencies (minor units).
 */
function convertedOtherAmount(
  account: SettlementAccount,
  line: SettlementLineRow,
  booked: { currency: string; amount: bigint },
): NewException {
  const object = line.refund_id ?? line.dispute_id ?? line.transaction_id;
  return convertedMismatch(account, line, booked, {
    said:
      line.original_currency !== null && line.original_amount !== null
        ? `converted from ${line.original_amount} ${line.original_currency}`
        : 'saying nothing of what it converted',
    against: `billhook booked ${booked.amount} ${booked.currency} for ${object}`,
    check: 'converted',
    details: { converted_currency: line.original_currency, converted: line.original_amount },
  });
}

/**
 * The `amount_mismatch` exception (`convertedMismatch`) of a line in another currency than its
 * charge, refund or dispute, converted from exactly what billhook booked for it (`booked`, signed
 * like the line), whose gross is not that amount at the rate the gateway says it converted at
 * (`exchange_rate`: Stripe's, "the amount in currency A, multiplied by the exchange_rate, equals the
 * amount in currency B",
 * https://docs.stripe.com/api/balance_transactions/object#balance_transaction_object-exchange_rate),
 * rounded to a whole minor unit either way (`convertedRange`: Stripe documents no rounding, so both
 * are taken): its conversion was booked against billhook's amount, so the gateway's other money sits
 * in its FX account until a person books it. E.g. billhook's USD 10.00 charge settled as EUR 9.50
 * at rate 0.9 (EUR 9.00). Names the gross, the amount converted, the rate and what that comes to
 * (minor units); details also `exchange_rate`, `expected_low` and `expected_high`.
 * @returns undefined when the line says no rate, or its gross is what the rate gives
 */
function rateOtherAmount(
  account: SettlementAccount,
  line: SettlementLineRow,
  booked: { currency: string; amount: bigint },
): NewException | undefined {
  const rate = line.exchange_rate === null ? undefined : parseRate(line.exchange_rate);
  if (!rate) return undefined;
  const { low, high } = convertedRange(
    booked.amount,
    rate,
    exponentOf(booked.currency),
    exponentOf(line.currency),
  );
  if (line.gross >= low && line.gross <= high) return undefined;
  const object = line.refund_id ?? line.dispute_id ?? line.transaction_id;
  return convertedMismatch(account, line, booked, {
    said: `converted from ${booked.amount} ${booked.currency} at rate ${line.exchange_rate}`,
    against: `${booked.amount} ${booked.currency} (billhook's ${object}) at ${line.exchange_rate} is ${low === high ? low : `${low} to ${high}`} ${line.currency}`,
    check: 'converted',
    details: {
      converted_currency: line.original_currency,
      converted: line.original_amount,
      exchange_rate: line.exchange_rate,
      expected_low: low,
      expected_high: high,
    },
  });
}

/**
 * Whether the unbooked line `conversion` (a PayPal `T02nn` row naming a payment, its
 * `gateway_transaction_id`, recorded without booking: gateways/paypal/transaction-search.ts) says
 * what the payment's converted charge line `charge` (matched and booked, `original_currency` set: the
 * capture's `PAYMENT.CAPTURE.COMPLETED` line in the balance currency) booked: in the balance
 * currency, money in of exactly the line's net (the constructed rows of
 * test/settlement/paypal-sweep-fx.test.ts: CNY +5926 for the line's net 5926); in the payment's
 * currency, money out of at most what the payment was (USD −1066 of 1099: the net converted, its fee
 * in that currency not on the converted line).
 */
function convertsAs(
  conversion: Pick<SettlementLineRow, 'currency' | 'gross'>,
  charge: Pick<SettlementLineRow, 'currency' | 'net' | 'original_currency' | 'original_amount'>,
): boolean {
  if (conversion.currency === charge.currency) return conversion.gross === charge.net;
  if (conversion.currency !== charge.original_currency || charge.original_amount === null) return false;
  return conversion.gross < 0n && -conversion.gross <= charge.original_amount;
}

/**
 * Whether the unbooked conversion line `row` (`convertsAs`) is booked already by the converted charge
 * line of the payment it names, on `account`: then its `settlement_line_unbooked` would ask a person
 * to book what is booked.
 */
async function conversionBookedBy(
  work: UnitOfWork,
  account: SettlementAccount,
  row: SettlementLineRow,
): Promise<boolean> {
  if (row.gateway_transaction_id === null) return false;
  const charges = await work.trx
    .selectFrom('settlement_lines')
    .select(['currency', 'net', 'original_currency', 'original_amount'])
    .where(ofAccount(account))
    .where('kind', '=', 'charge')
    .where('gateway_transaction_id', '=', row.gateway_transaction_id)
    .where('transaction_id', 'is not', null)
    .where('original_currency', 'is not', null)
    .execute();
  return charges.some((charge) => convertsAs(row, charge));
}

/**
 * Once the converted charge line `charge` is booked (new, or replacing its unconverted version,
 * `convertedLater`), resolves the open `settlement_line_unbooked` exceptions of the unbooked conversion
 * lines of `account` naming its payment whose money it booked (`convertsAs`); one saying other money
 * stays open, for a person.
 */
async function resolveConversionsOf(
  work: UnitOfWork,
  account: SettlementAccount,
  charge: SettlementLineRow,
): Promise<void> {
  if (charge.gateway_transaction_id === null) return;
  const conversions = await work.trx
    .selectFrom('settlement_lines')
    .select(['id', 'currency', 'gross'])
    .where(ofAccount(account))
    .where('kind', '=', 'adjustment')
    .where('gateway_transaction_id', '=', charge.gateway_transaction_id)
    .execute();
  for (const conversion of conversions) {
    if (!convertsAs(conversion, charge)) continue;
    await resolveLineExceptions(
      work,
      conversion.id,
      'settlement_line_unbooked',
      `the conversion is booked by ${charge.id} (${charge.gateway_line_id})`,
    );
  }
}

/**
 * A partner fee of a payment: a `fee` line with a partner fee (PayPal's `T0113` row, `partnerFee`),
 * taken (gross negative) or given back (gross positive).
 */
function isPartnerFee(line: Pick<SettlementLine, 'kind' | 'partnerFee'>): boolean {
  return line.kind === 'fee' && (line.partnerFee ?? 0n) > 0n;
}

/**
 * Which of its payment's partner fees a line takes part in (`bookedAmounts`): `taken` for a charge
 * line counting some in its fee and a partner fee line taking money (gross ≤ 0); `given_back` for a
 * refund or dispute line counting some in the fee it gives back and a partner fee line giving money
 * back (gross > 0); undefined for a line counting none.
 */
function partnerFeeSide(
  line: Pick<SettlementLine, 'kind' | 'partnerFee' | 'gross'>,
): 'taken' | 'given_back' | undefined {
  if ((line.partnerFee ?? 0n) <= 0n) return undefined;
  if (line.kind === 'charge') return 'taken';
  if (line.kind === 'refund' || line.kind === 'dispute') return 'given_back';
  if (line.kind === 'fee') return line.gross > 0n ? 'given_back' : 'taken';
  return undefined;
}

/**
 * The namespace of the partner fee locks (`lockPartnerFees`): the first key of the two-key form of
 * `pg_advisory_xact_lock`, which never meets the one-key locks (`SEQUENCE_LOCK`, `CHOSEN_KEY_LOCK`).
 */
const PARTNER_FEE_LOCK = 0x70666565; // "pfee"

/**
 * Locks, inside `work`, the payments the charge lines among `lines` name (by the gateway's id or
 * billhook's reference, as `matchLine` finds them), their invoices and those invoices' subscriptions
 * (`lockTransactionsAhead`: subscriptions, invoices, payments, each in id order): a settlement unit
 * takes these first, before its partner fee locks, payout and settlement line rows, as a batch of
 * webhooks does (reconcile/apply.ts `lockChargesAhead`). A charge line settled short locks its
 * payment's invoice and the payment (`recordSettledShort`); taken only then, after the line's row,
 * a payout recording a Stripe line of PLN 100.00 settled 80.00 and a webhook batch (that payment's
 * refund and the same line) each waited for the other (40P01). Rows the unit holds already are not
 * waited for; a line naming no payment billhook has locks nothing.
 */
export async function lockChargeLinesAhead(
  work: UnitOfWork,
  gateway: GatewayName,
  lines: readonly Pick<SettlementLine, 'kind' | 'gatewayTransactionId' | 'reference'>[],
): Promise<void> {
  await lockTransactionsAhead(
    work,
    lines
      .filter((line) => line.kind === 'charge' && (line.gatewayTransactionId || line.reference))
      .map((line) => ({
        gateway,
        gatewayTransactionId: line.gatewayTransactionId,
        reference: line.reference,
      })),
  );
}

/**
 * Takes, inside `work`, the partner fee lock of every payment whose partner fees `lines` of `gateway`
 * take part in (a charge line counting some, a partner fee line; by the gateway's id of the payment,
 * `gatewayTransactionId`; a refund or dispute line giving some back, `partnerFeeSide`), all of them at once in one sorted order: a transaction-scoped advisory lock
 * per payment (`PARTNER_FEE_LOCK`, hash of `<gateway>:<id>`), which serialises what `bookedAmounts`
 * reads and books of a payment's partner fees. `recordSettlementLine` takes its line's before it reads
 * or writes the line's row; a unit recording several lines (a sweep's chunk, a batch of webhooks, a
 * payout's lines) calls it with all of them first, so two units never take two payments' locks in
 * opposite orders (40P01). A lock the unit holds already is taken again without waiting.
 */
export async function lockPartnerFees(
  work: UnitOfWork,
  gateway: GatewayName,
  lines: readonly Pick<SettlementLine, 'kind' | 'partnerFee' | 'gross' | 'gatewayTransactionId'>[],
): Promise<void> {
  const keys = new Set<string>();
  for (const line of lines) {
    if (partnerFeeSide(line) && line.gatewayTransactionId)
      keys.add(`${gateway}:${line.gatewayTransactionId}`);
  }
  for (const key of [...keys].sort()) {
    await sql`SELECT pg_advisory_xact_lock(${PARTNER_FEE_LOCK}, hashtext(${key}))`.execute(work.trx);
  }
}

/**
 * What matched line `row` books (`settlementLineBooked`): its gross, fee and net, except for the
 * partner fees of its payment (`row.transaction_id`), which are booked once whichever of the payment's
 * lines reports them. Two sides, each on its own (`partnerFeeSide`): the partner fees `taken`, which
 * its charge line counts in its fee (PayPal's `platform_fees`, `partner_fee` of the row) and partner
 * fee lines of their own report too (`T0113` rows of money out, swept with the payment or in another
 * window); and those `given_back`, which a refund (or reversal) line counts in the fee it gives back
 * (the refund's `platform_fees`) and `T0113` rows of money in report too. What a side comes to is the
 * larger of its two reports in the line's currency (each says all of it: the lines counting it in
 * their fee, the partner fee lines), and each line books what of that its payment's other lines on
 * the side have not booked yet (read from their `stl_…:booked` entries): a charge line its own fee
 * plus that share, a refund line its own fee less it (a fee given back is negative), a partner fee
 * line that share (0: nothing), taken from clearing or given back to it; a line that takes no part
 * (no payment, a line counting no partner fee, any other kind) books as it is. E.g. the simulator's
 * capture (fee 154 + partner fee 200), refunded whole with both given back (fee −354), then a `T0113`
 * row of +200: the refund line books −354 and the row nothing, so the 200 comes back once. Only lines
 * of the payment's own gateway account match it now (`matchLine`: a partner fee swept on another
 * account of the gateway stays unmatched, for a person); the payment's lines are still read on every
 * account of the gateway, each one's booking under its own account's fees, so a line matched across
 * accounts before that rule still counts, and no line counts as having booked less than 0 of them.
 * Serialised per payment: the caller holds its partner fee lock (`lockPartnerFees`, taken by
 * `recordSettlementLine`).
 * @returns minor units of the line's currency, signed as the line (`net = gross - fee`)
 */
async function bookedAmounts(
  work: UnitOfWork,
  account: SettlementAccount,
  row: SettlementLineRow,
): Promise<{ gross: bigint; fee: bigint; net: bigint }> {
  const as = { gross: row.gross, fee: row.fee, net: row.net };
  const side = partnerFeeSide({ kind: row.kind, partnerFee: row.partner_fee, gross: row.gross });
  // A line counting no partner fee books its own fee: the payment's partner fee lines book theirs in
  // full, as no other line of it counts them (a payment has one charge line).
  if (!row.transaction_id || !side) return as;
  // Taken: a fee charged (positive); given back: a fee returned (negative).
  const sign = side === 'taken' ? 1n : -1n;
  const partnerFee = isPartnerFee({ kind: row.kind, partnerFee: row.partner_fee });
  const lines = (
    await work.trx
      .selectFrom('settlement_lines')
      .select(['id', 'gateway_account', 'kind', 'gross', 'fee', 'partner_fee'])
      .where('gateway', '=', account.gateway)
      .where('transaction_id', '=', row.transaction_id)
      .where('currency', '=', row.currency)
      .where('kind', 'in', ['charge', 'refund', 'dispute', 'fee'])
      .where('partner_fee', '>', 0n)
      .execute()
  ).filter((l) => partnerFeeSide({ kind: l.kind, partnerFee: l.partner_fee, gross: l.gross }) === side);
  const ownLine = (l: { kind: string }) => l.kind === 'fee';
  const counted = lines.filter((l) => !ownLine(l)).reduce((sum, l) => sum + l.partner_fee, 0n);
  const reported = lines.filter(ownLine).reduce((sum, l) => sum + l.partner_fee, 0n);
  if (counted === 0n && reported === 0n) return as;
  let booked = 0n;
  for (const other of lines) {
    if (other.id === row.id) continue;
    // Each line's fee is booked to the fees account of the gateway account it came on (a line
    // matched on another account of the gateway than its payment's, before matchLine kept to one).
    const fees = chart.gatewayFees(account.gateway, other.gateway_account).code;
    const posted = await entryPostings(work.trx, `${other.id}:booked`);
    const fee = posted.find((posting) => posting.code === fees)?.amount ?? 0n;
    // What the other line booked of the partner fees, never below 0 (a line booking less than its
    // own fee, e.g. a posting not found, must not make this line book more than reported).
    const share = sign * (ownLine(other) ? fee : fee - (other.fee - sign * other.partner_fee));
    if (share > 0n) booked += share;
  }
  // The larger of the two reports, on bigints (Math.max takes numbers only).
  let target = counted;
  if (reported > target) target = reported;
  const share = target > booked ? target - booked : 0n;
  if (partnerFee) return { gross: -sign * share, fee: 0n, net: -sign * share };
  const fee = row.fee - sign * row.partner_fee + sign * share;
  return { gross: row.gross, fee, net: row.gross - fee };
}

/**
 * Whether `line`, reported again under the id of the recorded `existing`, says other money: another
 * currency, gross, `original` (currency and amount), or fee net of its partner fee (PayPal's sweep
 * reports a payment's partner fee as a row of its own, `T0113`, while its webhook line counts it in
 * the fee: that is the same line). The line reported unconverted, in the currency and at the gross of
 * the recorded version's `original` (a PayPal sweep fetching a capture's row but not yet its
 * conversion rows, after its converted webhook line), is the same line too: its fee in the payment's
 * currency cannot be compared with the converted one, and the converted version stays.
 */
function lineChanged(existing: SettlementLineRow, line: SettlementLine): boolean {
  if (
    !line.original &&
    existing.original_currency === line.currency &&
    existing.original_amount === line.gross
  ) {
    return false;
  }
  return (
    existing.currency !== line.currency ||
    existing.gross !== line.gross ||
    existing.fee - existing.partner_fee !== line.fee - (line.partnerFee ?? 0n) ||
    existing.original_currency !== (line.original?.currency ?? null) ||
    existing.original_amount !== (line.original?.amount ?? null)
  );
}

/**
 * PayPal's converted capture line (its `PAYMENT.CAPTURE.COMPLETED` line, in the balance currency
 * with `original`) replacing the line of the same capture a sweep recorded and booked in the payment's
 * own currency before it listed the capture's conversion rows (Transaction Search lists them apart;
 * gateways/paypal/transaction-search.ts `reportOf` leaves the capture's row out only when they come in
 * the same fetch): the stored line becomes the converted one and `stl_…:converted`
 * (`settlementLineConverted`) reverses its fee booked in the payment's currency and books the
 * conversion and the fee in the balance currency, so clearing returns to 0 in both. Only when it is
 * exactly that: a PayPal charge line matched to the payment, in no payout, with no partner fee on
 * either version (their booking reads `stl_…:booked`), its stored version unconverted at the
 * payment's gross and what it booked only its fee, the new one converted from that same gross; the
 * line otherwise stays as it is (`changedLine`).
 * @returns the line as replaced, or undefined when it is not such a replacement (nothing written)
 */
async function convertedLater(
  work: UnitOfWork,
  account: SettlementAccount,
  existing: SettlementLineRow,
  line: SettlementLine,
): Promise<SettlementLineRow | undefined> {
  const { original } = line;
  if (account.gateway !== 'paypal' || existing.kind !== 'charge' || line.kind !== 'charge') return undefined;
  if (!original || existing.transaction_id === null || existing.payout_id !== null) return undefined;
  if (existing.original_currency !== null || existing.partner_fee !== 0n || (line.partnerFee ?? 0n) !== 0n) {
    return undefined;
  }
  if (original.currency !== existing.currency || original.amount !== existing.gross) return undefined;
  if (line.currency === existing.currency) return undefined;
  const found = await matchLine(work, account, line);
  if (!found || isUnmatchable(found) || found.transactionId !== existing.transaction_id) return undefined;
  const booked = found.booked;
  if (!booked || booked.currency !== existing.currency || booked.amount !== existing.gross) return undefined;
  // What the stored version booked: its fee only (from clearing to gateway fees), in its currency.
  const fees = chart.gatewayFees(account.gateway, account.gatewayAccount).code;
  const posted = await entryPostings(work.trx, entryKeys.settlementLineBooked(existing.id));
  const postedFee = posted.find((posting) => posting.code === fees)?.amount ?? 0n;
  if (postedFee !== existing.fee || posted.length !== (existing.fee === 0n ? 0 : 2)) return undefined;
  const row = await work.trx
    .updateTable('settlement_lines')
    .set({ ...lineColumns(line), available_on: existing.available_on ?? line.availableOn ?? null })
    .where('id', '=', existing.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  const of = { settlementLineId: row.id, gateway: account.gateway, gatewayAccount: account.gatewayAccount };
  await postEntry(
    work,
    settlementLineConverted(
      {
        ...of,
        kind: 'charge',
        currency: existing.currency,
        gross: existing.gross,
        fee: existing.fee,
        net: existing.net,
        original: undefined,
      },
      {
        ...of,
        kind: 'charge',
        currency: row.currency,
        gross: row.gross,
        fee: row.fee,
        net: row.net,
        original: booked,
      },
    ),
  );
  return row;
}

/** `gross`, `fee` and `original` of a line version as a person reads them (minor units). */
const moneyOf = (money: {
  currency: string;
  gross: bigint;
  fee: bigint;
  original: { currency: string; amount: bigint } | null;
}): string =>
  `${money.currency} gross ${money.gross} fee ${money.fee}${money.original ? ` (converted from ${money.original.amount} ${money.original.currency})` : ''}`;

/**
 * The `settlement_line_changed` exception of a line the gateway reported again with other money
 * (`lineChanged`): names the line, the version recorded (and booked, if it was matched) and the
 * version now reported (booked nowhere), and what a person does: find which is right, reverse what
 * the recorded version booked if it is wrong and book the reported one by hand. One per line.
 */
function changedLine(
  account: SettlementAccount,
  existing: SettlementLineRow,
  line: SettlementLine,
): NewException {
  const recorded = moneyOf({
    currency: existing.currency,
    gross: existing.gross,
    fee: existing.fee,
    original:
      existing.original_currency !== null && existing.original_amount !== null
        ? { currency: existing.original_currency, amount: existing.original_amount }
        : null,
  });
  const reported = moneyOf({ ...line, original: line.original ?? null });
  const booked = isMatched(existing) ? 'recorded and booked' : 'recorded (unmatched, nothing booked)';
  return {
    kind: 'settlement_line_changed',
    gateway: account.gateway,
    gatewayAccount: account.gatewayAccount,
    transactionId: existing.transaction_id ?? undefined,
    refundId: existing.refund_id ?? undefined,
    payoutId: existing.payout_id ?? undefined,
    settlementLineId: existing.id,
    message: `${existing.kind} line ${existing.gateway_line_id} (${existing.id}) reported again with other money (minor units): ${booked} as ${recorded}; now reported as ${reported}, booked nowhere. Find which is right; if it is the new one, reverse what the recorded version booked and book the new one by hand`,
    details: {
      gateway_line_id: existing.gateway_line_id,
      recorded: {
        currency: existing.currency,
        gross: existing.gross,
        fee: existing.fee,
        partner_fee: existing.partner_fee,
        original_currency: existing.original_currency,
        original_amount: existing.original_amount,
      },
      reported: {
        currency: line.currency,
        gross: line.gross,
        fee: line.fee,
        partner_fee: line.partnerFee ?? 0n,
        original_currency: line.original?.currency ?? null,
        original_amount: line.original?.amount ?? null,
      },
    },
  };
}

/**
 * What billhook did of a charge line settled for another amount than it booked, in the payment's
 * currency: `short` (settled less: `recordSettledShort` booked it, or refused to), `more` (settled more:
 * nothing booked); undefined for any other line (a refund or dispute line: nothing booked).
 */
type SettledAmountFollowed = { kind: 'short'; outcome: SettledShortOutcome } | { kind: 'more' } | undefined;

/**
 * Follows the money of charge line `row` (matched to its payment, in the payment's currency) whose
 * gross is not what billhook booked for the payment (`booked`, minor units, > 0): the settlement report
 * is the bank's truth. Settled for less (an Authorize.Net batch settling USD 100.00 as 80.00), the
 * books follow it (`recordSettledShort`: the difference out of clearing and owed again, the invoice
 * OPEN with it due, the payment's `amount_captured` what settled), or, when billhook cannot follow it
 * alone, nothing is booked. Settled for more (120.00), nothing is booked: billhook books no more than
 * it charged (migration 0022), and whether the customer was charged twice or the gateway erred is for
 * a person. Either way the caller raises the line's `amount_mismatch` (once: a line is booked once).
 */
async function followSettledAmount(
  work: UnitOfWork,
  row: SettlementLineRow,
  booked: bigint,
): Promise<SettledAmountFollowed> {
  if (row.kind !== 'charge' || row.transaction_id === null || row.gross <= 0n || booked <= 0n)
    return undefined;
  if (row.gross > booked) return { kind: 'more' };
  const outcome = await recordSettledShort(work, row.transaction_id, {
    settlementLineId: row.id,
    gatewayLineId: row.gateway_line_id,
    settled: row.gross,
  });
  return { kind: 'short', outcome };
}

/** What an `amount_mismatch` of a charge line says billhook did of it (`followSettledAmount`). */
function followedText(line: SettlementLineRow, booked: bigint, followed: SettledAmountFollowed): string {
  const currency = line.currency;
  if (!followed) return 'the difference stays in clearing';
  if (followed.kind === 'more') {
    return `${line.gross - booked} more than billhook charged, which billhook does not book: the difference stays in clearing; find out at the gateway what the customer was charged, then refund it at the gateway or book it by hand`;
  }
  const { outcome } = followed;
  if (outcome.kind === 'refused') {
    return `not booked: ${outcome.reason}; the difference stays in clearing until a person books it`;
  }
  const key = entryKeys.paymentSettledShort(line.transaction_id!, line.id);
  const invoice = outcome.invoice
    ? `; invoice ${outcome.invoice.id} ${outcome.invoice.status} with ${outcome.invoice.amount_paid} paid and ${outcome.invoice.amount_due} due${outcome.invoice.rescheduled ? ', back on the charge schedule' : ''}`
    : '';
  const credit =
    outcome.overpaymentTakenBack > 0n
      ? `; ${outcome.overpaymentTakenBack} of the overpayment credit it made taken back`
      : '';
  return `the books follow the settlement: ${outcome.shortBy} taken out of clearing and owed again by the customer (${key}), the payment's amount_captured ${line.gross} ${currency}${invoice}${credit}; check with the gateway why it settled less`;
}

/**
 * The `amount_mismatch` exception of a line matched to a billhook object that billhook booked for
 * `booked` (minor units of the line's currency, signed like its gross) but the gateway settled for
 * the line's gross, saying what billhook did of it (`followed`, `followSettledAmount`): a charge
 * settled for less booked as settled (or why not), one settled for more not booked; for any other
 * line the difference stays in clearing until a person books it. `details.followed`: `booked_short`,
 * `refused`, `settled_more` or `none`.
 */
function settledOtherAmount(
  account: SettlementAccount,
  line: SettlementLineRow,
  booked: bigint,
  followed: SettledAmountFollowed = undefined,
): NewException {
  const object = line.refund_id ?? line.dispute_id ?? line.transaction_id;
  let done = 'none';
  if (followed?.kind === 'more') done = 'settled_more';
  else if (followed?.kind === 'short') done = followed.outcome.kind === 'booked' ? 'booked_short' : 'refused';
  return {
    kind: 'amount_mismatch',
    gateway: account.gateway,
    gatewayAccount: account.gatewayAccount,
    transactionId: line.transaction_id ?? undefined,
    refundId: line.refund_id ?? undefined,
    payoutId: line.payout_id ?? undefined,
    settlementLineId: line.id,
    message: `${line.kind} line ${line.gateway_line_id} settled ${line.gross} ${line.currency} but billhook booked ${booked} for ${object} (minor units): ${followedText(line, booked, followed)}`,
    details: { gateway_line_id: line.gateway_line_id, gross: line.gross, booked, followed: done },
  };
}

/**
 * The `settlement_adjustment` exception of an adjustment line (money the gateway moved that billhook
 * does not book itself), booked into clearing against settlement adjustments: for a person to
 * classify (move it to fees, a refund, …) or accept; with `unbooked` (the line's reason), the
 * `settlement_line_unbooked` exception of one recorded without booking anything, for a person to book.
 * Names the line, its net and what the gateway said of it (its description), and the payment it
 * names, if any.
 */
function adjustmentBooked(
  account: SettlementAccount,
  line: SettlementLineRow,
  unbooked?: string,
): NewException {
  const about = line.gateway_transaction_id ? ` about ${line.gateway_transaction_id}` : '';
  const what = `adjustment line ${line.gateway_line_id}${about} of ${line.net} ${line.currency} (net, minor units)`;
  const said = line.description ? `: ${line.description}` : '';
  return {
    kind: unbooked ? 'settlement_line_unbooked' : 'settlement_adjustment',
    gateway: account.gateway,
    gatewayAccount: account.gatewayAccount,
    payoutId: line.payout_id ?? undefined,
    settlementLineId: line.id,
    message: unbooked
      ? `${what} recorded but not booked (${unbooked}), for a person to book${said}`
      : `${what} booked into clearing against settlement adjustments, for a person to classify${said}`,
    details: {
      gateway_line_id: line.gateway_line_id,
      net: line.net,
      ...(line.gateway_transaction_id ? { gateway_transaction_id: line.gateway_transaction_id } : {}),
    },
  };
}

/**
 * The `settlement_line_unmatched` exception of a line recorded unmatched, about it and, when a payout
 * listed it, that payout (`pyo_…` and the gateway's id). With `otherAccount` (the outcome's: the
 * line names an object of that gateway account, null the default one) the message names both
 * accounts and says the line was booked on neither; with `matchedBy` (`MatchedByOtherLine`) it names
 * the line that matched the same object first and says this one booked no fee.
 */
export function unmatchedLine(
  account: SettlementAccount,
  line: SettlementLineRow,
  about: { payout?: { id: string; gateway_payout_id: string } } & Partial<
    OtherAccountMatch & MatchedByOtherLine
  > = {},
): NewException {
  const { payout, otherAccount, matchedBy } = about;
  const where = payout ? `payout ${payout.id} (${payout.gateway_payout_id}): ` : '';
  const what = `${line.kind} line ${line.gateway_line_id} of ${line.net} ${line.currency} (net, minor units)`;
  const named =
    line.gateway_refund_id ?? line.gateway_dispute_id ?? line.gateway_transaction_id ?? line.reference;
  let message = `${what} matches no billhook ${line.kind === 'fee' ? `payment: it is a partner fee of ${line.gateway_transaction_id ?? 'a payment it does not name'}` : line.kind}`;
  if (otherAccount !== undefined) {
    message = `${what} of gateway account ${accountName(account)} names ${named} of gateway account ${accountName({ gateway: account.gateway, gatewayAccount: otherAccount })}: matched to nothing and booked on neither account`;
  } else if (matchedBy) {
    message = `${what} names ${named}, whose ${line.kind} is line ${matchedBy.gatewayLineId} (${matchedBy.id}) already: the same ${line.kind} under two line ids? matched to nothing, no second fee booked`;
  }
  return {
    kind: 'settlement_line_unmatched',
    gateway: account.gateway,
    gatewayAccount: account.gatewayAccount,
    payoutId: payout?.id,
    settlementLineId: line.id,
    message: `${where}${message}`,
    details: {
      gateway_line_id: line.gateway_line_id,
      kind: line.kind,
      net: line.net,
      ...(otherAccount !== undefined ? { other_gateway_account: otherAccount } : {}),
      ...(matchedBy ? { matched_by: matchedBy.id, matched_by_gateway_line_id: matchedBy.gatewayLineId } : {}),
    },
  };
}

/**
 * True when a line was matched to its billhook object, or is a fee, adjustment, payout return,
 * conversion or hold (about none); a
 * partner fee is about its payment, and matched once billhook knows it.
 */
export function isMatched(line: Pick<SettlementLineRow, 'kind' | 'transaction_id' | 'partner_fee'>): boolean {
  if (isPartnerFee({ kind: line.kind, partnerFee: line.partner_fee })) return line.transaction_id !== null;
  return (
    line.kind === 'fee' ||
    line.kind === 'adjustment' ||
    line.kind === 'payout_return' ||
    line.kind === 'conversion' ||
    line.kind === 'hold' ||
    line.transaction_id !== null
  );
}

/**
 * The stored `settlement_lines` row `row` as the line the gateway reported (its gateway ids, money,
 * `original`, partner fee, description and dates), to record it again (`recordSettlementLine`): the
 * same line, so `lineChanged` finds nothing changed, a converted line included.
 */
export function storedLine(row: SettlementLineRow): SettlementLine {
  return {
    gatewayLineId: row.gateway_line_id,
    kind: row.kind,
    gatewayTransactionId: row.gateway_transaction_id ?? undefined,
    gatewayRefundId: row.gateway_refund_id ?? undefined,
    gatewayDisputeId: row.gateway_dispute_id ?? undefined,
    reference: row.reference ?? undefined,
    description: row.description ?? undefined,
    currency: row.currency,
    gross: row.gross,
    fee: row.fee,
    net: row.net,
    ...(row.partner_fee > 0n ? { partnerFee: row.partner_fee } : {}),
    ...(row.original_currency !== null && row.original_amount !== null
      ? { original: { currency: row.original_currency, amount: row.original_amount } }
      : {}),
    ...(row.exchange_rate !== null ? { exchangeRate: row.exchange_rate } : {}),
    occurredAt: row.occurred_at,
    ...(row.available_on ? { availableOn: row.available_on } : {}),
  };
}

/**
 * A charge, refund or dispute billhook has just recorded (a webhook applied), as stored settlement
 * lines name it: its gateway account, and the gateway's ids and billhook's references any line of it
 * may carry (a PayPal `T1201` names the capture as `gatewayTransactionId` and `gatewayDisputeId`; a
 * Stripe refund line its `re_…` and the charge).
 */
export interface RecordedObject {
  gateway: GatewayName;
  /** The object's gateway account (`gwa_…`; null: the gateway's default account). */
  gatewayAccount: string | null;
  /** The gateway's ids of the payment (`ch_…`, a PayPal capture id). */
  gatewayTransactionIds?: readonly (string | null)[];
  /** The gateway's ids of the refund (`re_…`). */
  gatewayRefundIds?: readonly (string | null)[];
  /** The gateway's ids of the dispute (`dp_…`, PayPal's capture id; a `…:reversal` suffix is dropped). */
  gatewayDisputeIds?: readonly (string | null)[];
  /** Billhook's ids a line may carry as its reference (`txn_…`, `re_…`). */
  references?: readonly (string | null)[];
}

/**
 * Once billhook records the charge, refund or dispute `object` (its webhook applied after the
 * settlement line came: a PayPal `T1201` chargeback row swept before `PAYMENT.CAPTURE.REVERSED`, a
 * Stripe refund line before `charge.refund.updated`), records again, in the same unit of work, every
 * stored line of its gateway account still unmatched that names it (`matchLine` decides, as a sweep
 * would): a line that matches now is booked (`stl_…:booked`, once: the key is the line's) and its
 * `settlement_line_unmatched` exceptions resolved; one that does not stays as it was. A sweep listing
 * the line again later finds it matched and books nothing more. Writes the unit's deferred rows and
 * entries first (`writeLedger`), so matching reads the object as recorded.
 * @returns how many stored lines matched now
 */
export async function matchStoredLines(work: UnitOfWork, object: RecordedObject): Promise<number> {
  const ids = (values: readonly (string | null)[] | undefined) =>
    [...new Set(values ?? [])].filter((value): value is string => value !== null && value !== '');
  const transactions = ids(object.gatewayTransactionIds);
  const refunds = ids(object.gatewayRefundIds);
  const disputes = ids((object.gatewayDisputeIds ?? []).map((id) => id?.replace(/:reversal$/, '') ?? null));
  const references = ids(object.references);
  if (transactions.length + refunds.length + disputes.length + references.length === 0) return 0;
  await work.writeLedger();
  const account: SettlementAccount = { gateway: object.gateway, gatewayAccount: object.gatewayAccount };
  const rows = await work.trx
    .selectFrom('settlement_lines')
    .selectAll()
    .where(ofAccount(account))
    .where('transaction_id', 'is', null)
    .where((eb) =>
      eb.or([
        eb('kind', 'in', ['charge', 'refund', 'dispute']),
        eb.and([eb('kind', '=', 'fee'), eb('partner_fee', '>', 0n)]),
      ]),
    )
    .where((eb) =>
      eb.or([
        ...(transactions.length > 0 ? [eb('gateway_transaction_id', 'in', transactions)] : []),
        ...(refunds.length > 0 ? [eb('gateway_refund_id', 'in', refunds)] : []),
        ...(disputes.length > 0 ? [eb('gateway_dispute_id', 'in', disputes)] : []),
        ...(references.length > 0 ? [eb('reference', 'in', references)] : []),
      ]),
    )
    .orderBy('id')
    .execute();
  if (rows.length === 0) return 0;
  const lines = rows.map(storedLine);
  await lockPartnerFees(work, account.gateway, lines);
  let matched = 0;
  for (const [index, row] of rows.entries()) {
    const outcome = await recordSettlementLine(work, account, lines[index]!, row.payout_id);
    if (outcome.kind === 'applied') matched += 1;
  }
  return matched;
}
