import { AmountNotRepresentable, fromGateway } from '../../money/gateway-amount.ts';
import {
  type PayoutReport,
  PayoutReportSchema,
  type SettlementLine,
  type SettlementRange,
  type SettlementReport,
  type SettlementSource,
  type UnreadSettlement,
} from '../settlement.ts';
import { EwayAnswerError, EwayApi, type EwayApiOptions } from './api.ts';
import { describeCodes, splitCodes } from './codes.ts';
import { EWAY_CURRENCIES } from './currencies.ts';
import type { EwaySettlementSummary, EwaySettlementTransaction } from './schemas.ts';

/**
 * `TransactionType` codes of settlement transactions that credit the merchant: `"1"`, a purchase.
 * eWAY's SDKs call the field only "a numeric representation of the transaction type"
 * (eWAYPayment/eway-rapid-net `Models/SettlementTransaction.cs`) and no source billhook could read
 * lists the codes; `"1"` is what every purchase carries in the one whole day of answer the SDKs
 * hold (eWAYPayment/eway-rapid-ruby `direct_settlement_to_settlement_converter_test.rb`: twelve
 * type-1 transactions summing to `TotalCredit`, `TotalDebit` 0). Every other code is read as money out of
 * the balance, a refund, the only debit Rapid lets a merchant make; each day's reading is checked
 * against eWAY's own `TotalCredit` and `TotalDebit` before anything is reported (`#payout`), so a
 * code read the wrong way stops the sweep instead of booking a guess.
 */
export const EWAY_CREDIT_TRANSACTION_TYPES: ReadonlySet<string> = new Set(['1']);

/**
 * Transactions asked for per Settlement Search page. eWAY documents no largest page size; a page
 * shorter than this ends a day (and a page that brings no transaction not seen before ends it too,
 * should eWAY ignore `Page`). Were eWAY to cut pages shorter than asked, the day's transactions would
 * not add up to its summary and the day would throw, never be reported short.
 */
export const EWAY_SETTLEMENT_PAGE_SIZE = 100;

/** Pages read for one day at most: beyond this a day throws rather than loop on a misbehaving answer. */
const MAX_PAGES_PER_DAY = 1000;

/** Options of EwaySettlement beyond the API's. */
export interface EwaySettlementOptions {
  /** Transactions asked for per page (`PageSize`); default EWAY_SETTLEMENT_PAGE_SIZE. */
  pageSize?: number;
}

/**
 * The settlement dates (`YYYY-MM-DD`) a range covers: every UTC calendar day from `from`'s to the one
 * holding the last instant before `to`, each day once. A range ending at midnight does not cover the
 * day that starts then; a range that is empty or backwards covers none.
 * @throws RangeError for an invalid Date
 */
export function settlementDates(range: SettlementRange): string[] {
  const from = range.from.getTime();
  const to = range.to.getTime();
  if (Number.isNaN(from) || Number.isNaN(to)) throw new RangeError('settlement range with an invalid date');
  const dates: string[] = [];
  const day = new Date(range.from);
  day.setUTCHours(0, 0, 0, 0);
  for (; day.getTime() < to; day.setUTCDate(day.getUTCDate() + 1)) {
    dates.push(day.toISOString().slice(0, 10));
  }
  return dates;
}

/**
 * A settlement of a day (or a transaction of one) that eWAY answered but billhook cannot read as a
 * payout whatever it asks again: its transactions do not add up to its summary's `TotalCredit` and
 * `TotalDebit`, or a transaction names a settlement the day has no summary of. `fetchSettlements`
 * leaves it out and names it in `unread`, reading the range's other settlements.
 */
export class EwaySettlementUnreadable extends EwayAnswerError {
  override name = 'EwaySettlementUnreadable';
}

/** What one day's Settlement Search pages said, every page read. */
interface SettlementDay {
  date: string;
  summaries: EwaySettlementSummary[];
  transactions: EwaySettlementTransaction[];
}

/** eWAY's signed `TotalBalance` in minor units of `currency`. */
function signedMinor(value: number, currency: string): bigint {
  const magnitude = fromGateway(EWAY_CURRENCIES, Math.abs(value), currency);
  return value < 0 ? -magnitude : magnitude;
}

/** The line of one settled transaction: a charge (gross positive) or a refund (gross negative). */
function lineOf(transaction: EwaySettlementTransaction, currency: string): SettlementLine {
  const amount = fromGateway(EWAY_CURRENCIES, transaction.Amount, currency);
  const fee =
    transaction.FeePerTransaction == null
      ? 0n
      : fromGateway(EWAY_CURRENCIES, transaction.FeePerTransaction, currency);
  const credit = EWAY_CREDIT_TRANSACTION_TYPES.has(transaction.TransactionType);
  const gross = credit ? amount : -amount;
  const id = transaction.TransactionID;
  return {
    gatewayLineId: id,
    kind: credit ? 'charge' : 'refund',
    ...(credit ? { gatewayTransactionId: id } : { gatewayRefundId: id }),
    currency,
    gross,
    fee,
    net: gross - fee,
    occurredAt: transaction.TransactionDateTime,
    availableOn: transaction.SettlementDateTime,
    description: `eWAY TransactionType ${transaction.TransactionType}`,
  };
}

/**
 * eWAY's settlement data (Settlement Search, https://eway.io/api-v3/#settlement-search; the SDKs'
 * `settlementSearch`): eWAY settles each day's transactions to the merchant's bank, one settlement per
 * currency, and answers per settlement date with a summary (credits, debits, fees, balance) and the
 * transactions it settled. Each settlement in each currency becomes one `paid` payout whose lines are
 * its transactions; eWAY has no lines outside a settlement, so the report's `lines` stay empty.
 */
export class EwaySettlement implements SettlementSource {
  readonly #api: EwayApi;
  readonly #pageSize: number;

  constructor(options: EwayApiOptions, settlement: EwaySettlementOptions = {}) {
    const pageSize = settlement.pageSize ?? EWAY_SETTLEMENT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError(`bad eWAY page size ${pageSize}`);
    this.#api = new EwayApi(options);
    this.#pageSize = pageSize;
  }

  /**
   * The payouts of every settlement date the range covers (settlementDates), one day after another,
   * each day every page: `GET /Search/Settlement?ReportMode=Both&SettlementDate=YYYY-MM-DD&Page=N&PageSize=…`.
   * A payout per settlement and currency (see `#payout`): `gatewayPayoutId` `<SettlementID>:<currency>`
   * (eWAY's id of the settlement, stable however often and over whatever range it is asked for; the
   * currency keeps it unique should one settlement span currencies), status `paid`, `amount` eWAY's
   * `TotalBalance` in minor units (negative on a day whose refunds exceed its payments, when eWAY
   * takes the difference from the bank), lines its transactions.
   * A settlement billhook cannot read (its transactions do not add up to its summary: see `#payout`,
   * `EwaySettlementUnreadable`; an amount eWAY's table cannot read, `AmountNotRepresentable`) and a
   * transaction whose settlement the day has no summary of are left out and named in `unread`, so
   * that they do not keep the range's other settlements out of the books (the sync records those and
   * fails the account, naming them).
   * @returns `lines` empty, `payouts` in date order, `unread` when something was left out
   * @throws GatewayUnreachable (no answer), EwayAnswerError (a non-2xx status, an undocumented body,
   * eWAY's `Errors` codes, or a day that does not end)
   */
  async fetchSettlements(range: SettlementRange): Promise<SettlementReport> {
    const payouts: PayoutReport[] = [];
    const unread: UnreadSettlement[] = [];
    for (const date of settlementDates(range)) {
      const day = await this.#readDay(date);
      for (const summary of day.summaries) {
        try {
          payouts.push(this.#payout(day, summary));
        } catch (error) {
          if (!(error instanceof EwaySettlementUnreadable || error instanceof AmountNotRepresentable))
            throw error;
          unread.push({
            id: `${summary.SettlementID}:${summary.CurrencyCode.toUpperCase()}`,
            settledAt: new Date(`${date}T00:00:00Z`),
            message: `${error.message} (eWAY settlement ${summary.SettlementID}:${summary.CurrencyCode} of ${date} left out)`,
          });
        }
      }
      const settled = new Set(day.summaries.map((s) => `${s.SettlementID}:${s.CurrencyCode}`));
      for (const orphan of day.transactions.filter(
        (t) => !settled.has(`${t.SettlementID}:${t.CurrencyCode}`),
      )) {
        unread.push({
          id: `${orphan.SettlementID}:${orphan.CurrencyCode.toUpperCase()}`,
          settledAt: new Date(`${date}T00:00:00Z`),
          message: `eWAY Settlement Search for ${date}: transaction ${orphan.TransactionID} of settlement ${orphan.SettlementID} in ${orphan.CurrencyCode} has no summary (left out)`,
        });
      }
    }
    return { lines: [], payouts, ...(unread.length > 0 ? { unread } : {}) };
  }

  /** Reads every page of one settlement date: summaries once each, transactions once each. */
  async #readDay(date: string): Promise<SettlementDay> {
    const summaries = new Map<string, EwaySettlementSummary>();
    const transactions = new Map<string, EwaySettlementTransaction>();
    for (let page = 1; ; page++) {
      if (page > MAX_PAGES_PER_DAY) {
        throw new EwayAnswerError(
          `eWAY Settlement Search for ${date} did not end after ${MAX_PAGES_PER_DAY} pages`,
        );
      }
      const answer = await this.#api.searchSettlements({
        ReportMode: 'Both',
        SettlementDate: date,
        Page: String(page),
        PageSize: String(this.#pageSize),
      });
      const codes = splitCodes(answer.Errors);
      if (codes.length > 0) {
        throw new EwayAnswerError(`eWAY Settlement Search for ${date} failed: ${describeCodes(codes)}`);
      }
      for (const summary of answer.SettlementSummaries) {
        const key = `${summary.SettlementID}:${summary.CurrencyCode}`;
        const seen = summaries.get(key);
        if (seen && JSON.stringify(seen) !== JSON.stringify(summary)) {
          throw new EwayAnswerError(`eWAY Settlement Search for ${date}: two different summaries of ${key}`);
        }
        summaries.set(key, summary);
      }
      let fresh = 0;
      for (const transaction of answer.SettlementTransactions) {
        if (!transactions.has(transaction.TransactionID)) fresh++;
        transactions.set(transaction.TransactionID, transaction);
      }
      if (answer.SettlementTransactions.length < this.#pageSize || fresh === 0) break;
    }
    return { date, summaries: [...summaries.values()], transactions: [...transactions.values()] };
  }

  /**
   * One settlement in one currency as a payout. Lines: each transaction (charge positive, refund
   * negative, its `FeePerTransaction` as the line's fee when eWAY reports one); and when the summary's
   * `TotalFees` differs from those per-transaction fees (all of it, when eWAY reports fees only per
   * summary), one `fee` line `<SettlementID>:<currency>:fees` of the difference. `amount` is
   * `TotalBalance`, which eWAY gives net of `TotalFees` (eway-rapid-php SettlementTest: 97100 − 320 −
   * 100 = 96680), so the lines' nets sum to it whenever eWAY's own numbers agree; when they do not,
   * the payout is reported as eWAY says and the books raise the exception.
   * @throws EwaySettlementUnreadable when the transactions read as credits (EWAY_CREDIT_TRANSACTION_TYPES) do
   * not sum to `TotalCredit`, or the others to `TotalDebit`: a transaction type read the wrong way or
   * a day not listed whole
   */
  #payout(day: SettlementDay, summary: EwaySettlementSummary): PayoutReport {
    const currency = summary.CurrencyCode.toUpperCase();
    const transactions = day.transactions.filter(
      (t) => t.SettlementID === summary.SettlementID && t.CurrencyCode === summary.CurrencyCode,
    );
    const lines = transactions.map((t) => lineOf(t, currency));
    const credits = lines.filter((l) => l.gross > 0n).reduce((sum, l) => sum + l.gross, 0n);
    const debits = lines.filter((l) => l.gross < 0n).reduce((sum, l) => sum - l.gross, 0n);
    const totalCredit = fromGateway(EWAY_CURRENCIES, summary.TotalCredit, currency);
    const totalDebit = fromGateway(EWAY_CURRENCIES, summary.TotalDebit, currency);
    const key = `${summary.SettlementID}:${currency}`;
    if (credits !== totalCredit || debits !== totalDebit) {
      const types = [...new Set(transactions.map((t) => t.TransactionType))].join(', ') || 'none';
      throw new EwaySettlementUnreadable(
        `eWAY settlement ${key} of ${day.date}: its transactions (types ${types}) credit ${credits} and debit ${debits}, ` +
          `its summary says ${totalCredit} and ${totalDebit}`,
      );
    }
    if (summary.TotalFees != null) {
      const feesOfLines = lines.reduce((sum, l) => sum + l.fee, 0n);
      const remainder = fromGateway(EWAY_CURRENCIES, summary.TotalFees, currency) - feesOfLines;
      if (remainder !== 0n) {
        lines.push({
          gatewayLineId: `${key}:fees`,
          kind: 'fee',
          currency,
          gross: 0n,
          fee: remainder,
          net: -remainder,
          occurredAt: transactions[0]?.SettlementDateTime ?? new Date(`${day.date}T00:00:00Z`),
          description: `eWAY fees of settlement ${day.date} not reported per transaction`,
        });
      }
    }
    const settledAt = transactions[0]?.SettlementDateTime ?? new Date(`${day.date}T00:00:00Z`);
    return PayoutReportSchema.parse({
      gatewayPayoutId: key,
      status: 'paid',
      currency,
      amount: signedMinor(summary.TotalBalance, currency),
      createdAt: settledAt,
      arrivalDate: settledAt,
      lines,
      description: `eWAY settlement of ${day.date}`,
    });
  }
}
