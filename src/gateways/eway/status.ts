import { describeReported } from '../reported.ts';
import type {
  ChargeOutcome,
  PaymentEventType,
  RefundOutcome,
  ReportedCharge,
  TransactionStatusOutcome,
  VoidOutcome,
} from '../types.ts';
import { describeCodes, isKnownCode, splitCodes } from './codes.ts';
import type { EwayResult } from './schemas.ts';

/**
 * Codes that leave the outcome open rather than refused, in `Errors` or in `ResponseMessage` (eWAY
 * writes a result's codes in both: api.refund.failed.json carries S5010 in each) (eWAY's words,
 * https://eway.io/api-v3/#response-amp-error-codes): S5666 "Transaction in unknown state", S5000
 * "System Error" (eWAY failed, not the request), S5099 "Incomplete (Access Code in
 * progress/incomplete)" and D4409 "Request In Progress" (the bank's ISO 8583 response 09: the
 * issuer is still working on it, so `TransactionStatus: false` beside it refuses nothing yet). Every
 * other code in `Errors` (V6xxx validation, S5010, S5029 rate limit…) means eWAY refused the request:
 * no money moved.
 */
const OPEN_CODES: ReadonlySet<string> = new Set(['S5666', 'S5000', 'S5099', 'D4409']);

/**
 * What one eWAY result means, decided in exactly one place (`verdictOf`):
 *
 * | eWAY says                                             | verdict      | charge    | event            |
 * |-------------------------------------------------------|--------------|-----------|------------------|
 * | `Errors` or `ResponseMessage` has S5666 / S5000 / S5099 / D4409 | `open` | unknown | charge.pending |
 * | `TransactionStatus` true, `TransactionCaptured` false | `authorised` | pending   | charge.pending   |
 * | `TransactionStatus` true (with a `TransactionID`)     | `approved`   | succeeded | charge.succeeded |
 * | known refusal codes in `Errors` (V6021, S5010…)       | `declined`   | declined  | charge.failed    |
 * | `TransactionStatus` false                             | `declined`   | declined  | charge.failed    |
 * | a code in `Errors` billhook does not know             | `open`       | unknown   | charge.pending   |
 * | anything else (`TransactionStatus` null, no codes)    | `open`       | unknown   | charge.pending   |
 *
 * A decline's code is the `Errors` codes, else the `ResponseMessage` codes (`D4401`), else the bank
 * `ResponseCode`; all are kept, comma-joined. Only `TransactionStatus: true` (eWAY's success flag,
 * https://eway.io/api-v3/ "Transaction Query") is success and only an explicit refusal is failure;
 * an open result is `unknown` for the client (PRODUCT.md §11: never a decline, never a guess), which
 * keeps the invoice locked and has the poller query eWAY by our reference. A webhook reports it as
 * `charge.pending`, which moves no money.
 */
export type EwayVerdict =
  | { kind: 'approved'; transactionId: string }
  | { kind: 'authorised'; transactionId: string }
  | { kind: 'declined'; code: string; message: string; transactionId?: string }
  | { kind: 'open'; reason: string; transactionId?: string };

/** Decides what an eWAY transaction result means (the table on {@link EwayVerdict}). */
export function verdictOf(result: EwayResult): EwayVerdict {
  const errors = splitCodes(result.Errors);
  const transactionId = result.TransactionID;
  const open = [...new Set([...errors, ...splitCodes(result.ResponseMessage)])].filter((code) =>
    OPEN_CODES.has(code),
  );
  if (open.length > 0) return { kind: 'open', reason: describeCodes(open), transactionId };
  if (result.TransactionStatus === true) {
    if (!transactionId) return { kind: 'open', reason: 'approved without a TransactionID' };
    return result.TransactionCaptured === false
      ? { kind: 'authorised', transactionId }
      : { kind: 'approved', transactionId };
  }
  const unlisted = errors.filter((code) => !isKnownCode(code));
  if (errors.length > 0 && (unlisted.length === 0 || result.TransactionStatus === false)) {
    return { kind: 'declined', code: errors.join(','), message: describeCodes(errors), transactionId };
  }
  if (result.TransactionStatus === false) {
    const responses = splitCodes(result.ResponseMessage);
    const bank = result.ResponseCode?.trim() || undefined;
    const code = responses.length > 0 ? responses.join(',') : (bank ?? 'declined');
    const words = responses.length > 0 ? describeCodes(responses) : 'declined by eWAY';
    return {
      kind: 'declined',
      code,
      message: bank ? `${words} (bank response code ${bank})` : words,
      transactionId,
    };
  }
  if (unlisted.length > 0) {
    return {
      kind: 'open',
      reason: `codes billhook does not know: ${describeCodes(unlisted)}`,
      transactionId,
    };
  }
  return { kind: 'open', reason: 'eWAY reported no TransactionStatus', transactionId };
}

/** The words of an open verdict, naming eWAY's transaction when there is one. */
function openMessage(verdict: { reason: string; transactionId?: string }): string {
  return verdict.transactionId
    ? `eWAY transaction ${verdict.transactionId}: ${verdict.reason}`
    : `eWAY: ${verdict.reason}`;
}

/** A verdict as the outcome of a charge (or of a status query about one). */
export function chargeOutcomeOf(verdict: EwayVerdict): ChargeOutcome {
  switch (verdict.kind) {
    case 'approved':
      return { status: 'succeeded', gatewayTransactionId: verdict.transactionId };
    case 'authorised':
      return { status: 'pending', gatewayTransactionId: verdict.transactionId };
    case 'declined':
      return verdict.transactionId
        ? {
            status: 'declined',
            code: verdict.code,
            message: verdict.message,
            gatewayTransactionId: verdict.transactionId,
          }
        : { status: 'declined', code: verdict.code, message: verdict.message };
    case 'open':
      return { status: 'unknown', message: openMessage(verdict) };
  }
}

/** A verdict as the canonical event type of a queried charge. */
export function chargeEventTypeOf(verdict: EwayVerdict): PaymentEventType {
  switch (verdict.kind) {
    case 'approved':
      return 'charge.succeeded';
    case 'declined':
      return 'charge.failed';
    default:
      return 'charge.pending';
  }
}

/**
 * A verdict as the outcome of a refund; the refund's own `TransactionID` is its gateway id. An open
 * result, or an approval eWAY marks not captured (not a state a refund has), is unknown.
 */
export function refundOutcomeOf(verdict: EwayVerdict): RefundOutcome {
  switch (verdict.kind) {
    case 'approved':
      return { status: 'succeeded', gatewayRefundId: verdict.transactionId };
    case 'declined':
      return { status: 'declined', code: verdict.code, message: verdict.message };
    case 'authorised':
      return { status: 'unknown', message: `eWAY refund ${verdict.transactionId} is not captured` };
    case 'open':
      return { status: 'unknown', message: openMessage(verdict) };
  }
}

/** A verdict as the outcome of `POST /CancelAuthorisation`. */
export function voidOutcomeOf(verdict: EwayVerdict): VoidOutcome {
  switch (verdict.kind) {
    case 'approved':
    case 'authorised':
      return { status: 'succeeded' };
    case 'declined':
      return { status: 'declined', code: verdict.code, message: verdict.message };
    case 'open':
      return { status: 'unknown', message: openMessage(verdict) };
  }
}

/**
 * One transaction a Transaction Query listed: its verdict (`verdictOf`) and its outcome as a charge
 * held against the charge asked about (`chargeOutcomeOf`, then `heldAgainstCharge`: an approval for
 * another amount or currency is `unknown` with what eWAY `reported`).
 */
export interface QueriedTransaction {
  verdict: EwayVerdict;
  outcome: ChargeOutcome;
}

/** An approved or authorised transaction (money moved or is held), with its eWAY TransactionID. */
type Approval = QueriedTransaction & { verdict: { kind: 'approved' | 'authorised'; transactionId: string } };

const isApproval = (t: QueriedTransaction): t is Approval =>
  t.verdict.kind === 'approved' || t.verdict.kind === 'authorised';

/**
 * Several approvals for one charge: `unknown`, with `reported` what they moved in all (each one the
 * charge's amount, or what eWAY reported for it), so the poller raises an `amount_mismatch` (or
 * `currency_mismatch`) exception for a person. `reported.currency` is the first that is not the
 * charge's, else the charge's; its amount is null when an approval's amount is unreadable or in
 * another currency (they cannot be summed).
 */
function severalApprovals(
  charge: { amount: bigint; currency: string },
  approvals: readonly Approval[],
): ChargeOutcome {
  const chargeCurrency = charge.currency.toUpperCase();
  const moved = approvals.map(
    (a): ReportedCharge =>
      a.outcome.status === 'unknown' && a.outcome.reported
        ? a.outcome.reported
        : { amount: charge.amount, currency: chargeCurrency },
  );
  const currency = moved.find((m) => m.currency !== chargeCurrency)?.currency ?? chargeCurrency;
  const amount = moved.reduce<bigint | null>(
    (sum, m) => (sum === null || m.amount === null || m.currency !== currency ? null : sum + m.amount),
    0n,
  );
  const reported: ReportedCharge = { currency, amount };
  const ids = approvals.map((a) => a.verdict.transactionId).join(', ');
  return {
    status: 'unknown',
    message:
      `eWAY approved ${approvals.length} transactions for this one charge (TransactionIDs ${ids}), ` +
      `${describeReported(reported)} in all, not the ${charge.amount} ${chargeCurrency} charged once ` +
      '(minor units): the money may have been taken more than once',
    reported,
  };
}

/**
 * Several transactions answered a query by our `InvoiceReference` (a repeat that reached eWAY): more
 * than one approved or authorised is `unknown` with what they moved in all (`severalApprovals`); one
 * wins (money moved), as held against the charge; then anything still open, then the last decline.
 * @param charge the charge asked about: amount in minor units, ISO 4217 currency
 */
export function combineOutcomes(
  charge: { amount: bigint; currency: string },
  transactions: readonly QueriedTransaction[],
): TransactionStatusOutcome {
  if (transactions.length === 0) return { status: 'not_found' };
  const approvals = transactions.filter(isApproval);
  if (approvals.length > 1) return severalApprovals(charge, approvals);
  const outcomes = transactions.map((t) => t.outcome);
  return (
    approvals[0]?.outcome ??
    outcomes.find((o) => o.status === 'pending' || o.status === 'unknown') ??
    (outcomes.at(-1) as ChargeOutcome)
  );
}
