import { AmountNotRepresentable, fromGateway } from '../../money/gateway-amount.ts';
import { DAY_MS } from '../../time.ts';
import type {
  PayoutReport,
  PayoutStatus,
  SettlementLine,
  SettlementRange,
  SettlementReport,
  SettlementSource,
  UnreadSettlement,
} from '../settlement.ts';
import { SETTLED_BATCH_DAYS } from './client.ts';
import { fromInvoiceNumber } from './conventions.ts';
import { AUTHORIZENET_CURRENCIES } from './currencies.ts';
import type { BatchDetails, TransactionSummary } from './schemas.ts';
import { stateOfStatus } from './status.ts';
import type { ReferenceCurrency } from './webhook.ts';

/** What the settlement sweep asks Authorize.Net (AuthorizeNetClient implements it). */
export interface BatchSource {
  /** getSettledBatchList with statistics from `first` to `last`, inclusive; throws on any failure. */
  settledBatches(first: Date, last: Date): Promise<BatchDetails[]>;
  /** Every page of getTransactionList of `batchId`; throws on any failure. */
  batchTransactions(batchId: string): Promise<TransactionSummary[]>;
  /** The account's ISO 4217 currencies (getMerchantDetails); throws when they cannot be read. */
  accountCurrencies(): Promise<readonly string[]>;
}

/**
 * `transactionStatus` of the transactions of a settled batch that moved money
 * (`transactionStatusEnum` in AnetApiSchema.xsd;
 * https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-transaction-list):
 * a charge settled (`settledSuccessfully`, money in) and a refund settled
 * (`refundSettledSuccessfully`, money out). Every status the status table calls failed or canceled
 * (`voided`, `declined`, `expired`, `generalError`, `communicationError`, `failedReview`,
 * `settlementError`: status.ts) moved nothing and is left out; the batch statistics count them apart
 * (`voidCount`, `declineCount`, `errorCount`) and outside `chargeAmount` / `refundAmount`.
 */
const MONEY_KIND = new Map<string, 'charge' | 'refund'>([
  ['settledSuccessfully', 'charge'],
  ['refundSettledSuccessfully', 'refund'],
]);

/**
 * `settlementState` of a batch (`batchDetailsType`: `settledSuccessfully` or `error`,
 * https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-settled-batch-list)
 * → payout status. Only an explicit success is `paid` and only an explicit error is `failed`; a state
 * this table does not know is `pending` (PRODUCT.md §11), never paid.
 */
function payoutStatusOf(settlementState: string): PayoutStatus {
  if (settlementState === 'settledSuccessfully') return 'paid';
  if (settlementState === 'error') return 'failed';
  return 'pending';
}

/**
 * `range` ([from, to)) cut into the inclusive windows getSettledBatchList takes: at most
 * `SETTLED_BATCH_DAYS` days each, the last second of one window just before the first of the next
 * (the API reads whole seconds, so no settlement time falls between them).
 */
export function settlementWindows(range: SettlementRange): { first: Date; last: Date }[] {
  const windows: { first: Date; last: Date }[] = [];
  for (let start = range.from.getTime(); start < range.to.getTime(); start += SETTLED_BATCH_DAYS * DAY_MS) {
    const end = Math.min(start + SETTLED_BATCH_DAYS * DAY_MS, range.to.getTime());
    windows.push({ first: new Date(start), last: new Date(Math.max(start, end - 1000)) });
  }
  return windows;
}

/**
 * An Authorize.Net timestamp as a Date: `settlementTimeUTC` / `submitTimeUTC` end in `Z`
 * (`2015-01-02T08:40:29Z`); one without a zone is read as UTC too, as its name says.
 * @throws Error for text that is not a date
 */
function utc(text: string, what: string): Date {
  const date = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
  if (Number.isNaN(date.getTime()))
    throw new Error(`Authorize.Net ${what} ${JSON.stringify(text)} is not a date`);
  return date;
}

/**
 * Authorize.Net's settlement data: each settled batch is a payout of its transactions (PRODUCT.md §13).
 * For a range, getSettledBatchList with statistics in windows of at most 31 days, then getTransactionList
 * of each batch (every page). A batch becomes a PayoutReport:
 * - `gatewayPayoutId` the `batchId`; `status` from `settlementState` (`paid`, `failed` for `error`);
 *   `createdAt` its `settlementTimeUTC`; `arrivalDate` null: Authorize.Net does not say when the
 *   processor's deposit reaches the bank;
 * - `amount`: the statistics' charges minus refunds (`chargeAmount` - `refundAmount`, summed over the
 *   card types), in minor units; negative when a batch refunded more than it charged (Authorize.Net
 *   then debits the bank). A batch without statistics takes the sum of its lines, and says so;
 * - `lines`: one per transaction that moved money (`MONEY_KIND`): a charge with gross `settleAmount`
 *   (positive), `gatewayTransactionId` its `transId` and `reference` the `txn_…` of its invoice
 *   number; a refund with gross -`settleAmount`, `gatewayRefundId` its `transId` and `reference` the
 *   `re_…` (the list carries no `refTransId`, so the refunded charge is found through the refund).
 *   Fees are 0: Authorize.Net bills its fees monthly, outside the API (PRODUCT.md §13). `occurredAt`
 *   is the transaction's `submitTimeUTC`, `availableOn` the batch's settlement time. A transaction
 *   with a status this adapter does not know (a chargeback or returned item) is left out and named
 *   in the payout's `description`, so a payout whose lines then do not sum is looked at by a person.
 * Currency: the lists carry none (`batchDetailsType`, `transactionSummaryType`); an account that
 * processes one currency (getMerchantDetails) gives it, and for one processing several the batch's
 * currency is that of the billhook charges and refunds in it (`currencyOfReference`), as the webhook
 * half does. Amounts (decimal text) go through Authorize.Net's currency table, which refuses an
 * amount finer than the currency's minor unit.
 */
export class AuthorizeNetSettlement implements SettlementSource {
  readonly #source: BatchSource;
  readonly #currencyOfReference: ReferenceCurrency | undefined;

  /**
   * @param source the API client
   * @param currencyOfReference billhook's currency of its own charge or refund, for an account that
   * processes several currencies
   */
  constructor(source: BatchSource, currencyOfReference?: ReferenceCurrency) {
    this.#source = source;
    this.#currencyOfReference = currencyOfReference;
  }

  /**
   * The batches settled in `range` as payouts with their lines; `lines` outside a payout: none
   * (every Authorize.Net money movement is in a batch). A batch that cannot be read as a payout —
   * its currency cannot be known (`BatchUnreadable`), or an amount in it is not exact in the currency
   * (`AmountNotRepresentable`) — is left out and named in `unread`, so that it does not keep the
   * account's other batches out of the books (the sync records them and fails the account, naming it).
   * @throws Error when a call fails or is refused (`resultCode Error`), or an answer is not the
   * documented shape
   */
  async fetchSettlements(range: SettlementRange): Promise<SettlementReport> {
    const batches = new Map<string, BatchDetails>();
    for (const { first, last } of settlementWindows(range)) {
      for (const batch of await this.#source.settledBatches(first, last)) batches.set(batch.batchId, batch);
    }
    const payouts: PayoutReport[] = [];
    const unread: UnreadSettlement[] = [];
    for (const batch of batches.values()) {
      const transactions = await this.#source.batchTransactions(batch.batchId);
      try {
        payouts.push(await this.#payoutOf(batch, transactions));
      } catch (error) {
        if (!(error instanceof BatchUnreadable || error instanceof AmountNotRepresentable)) throw error;
        unread.push({
          id: batch.batchId,
          settledAt: utc(batch.settlementTimeUTC, `batch ${batch.batchId} settlementTimeUTC`),
          message: `${error.message} (Authorize.Net batch ${batch.batchId} left out)`,
        });
      }
    }
    return { lines: [], payouts, ...(unread.length > 0 ? { unread } : {}) };
  }

  async #payoutOf(batch: BatchDetails, transactions: TransactionSummary[]): Promise<PayoutReport> {
    const createdAt = utc(batch.settlementTimeUTC, `batch ${batch.batchId} settlementTimeUTC`);
    const moved = transactions.flatMap((transaction) => {
      const kind = MONEY_KIND.get(transaction.transactionStatus);
      return kind ? [{ transaction, kind }] : [];
    });
    const currency = await this.#currencyOf(batch.batchId, moved);
    const lines = moved.map((m) => lineOf(m, currency, createdAt));
    const notes: string[] = [];
    const unknown = transactions.filter(
      (t) =>
        !MONEY_KIND.has(t.transactionStatus) &&
        !['failed', 'canceled'].includes(stateOfStatus(t.transactionStatus)),
    );
    if (unknown.length > 0) {
      notes.push(
        `left out, status not known to billhook: ${unknown.map((t) => `${t.transId} (${t.transactionStatus})`).join(', ')}`,
      );
    }
    const linesNet = lines.reduce((sum, line) => sum + line.net, 0n);
    let amount: bigint;
    if (batch.statistics && batch.statistics.length > 0) {
      amount = batch.statistics.reduce(
        (sum, s) =>
          sum +
          fromGateway(AUTHORIZENET_CURRENCIES, s.chargeAmount, currency) -
          fromGateway(AUTHORIZENET_CURRENCIES, s.refundAmount, currency),
        0n,
      );
      if (amount !== linesNet) {
        notes.push(`statistics say ${amount}, transactions sum to ${linesNet} (minor units of ${currency})`);
      }
    } else {
      amount = linesNet;
      notes.push('no statistics: amount is the sum of the transactions');
    }
    const status = payoutStatusOf(batch.settlementState);
    return {
      gatewayPayoutId: batch.batchId,
      status,
      currency,
      amount,
      createdAt,
      arrivalDate: null,
      lines,
      ...(status === 'failed' ? { failureCode: batch.settlementState } : {}),
      description: [
        `Authorize.Net settled batch ${batch.batchId}${batch.paymentMethod ? ` (${batch.paymentMethod})` : ''}`,
        ...notes,
      ].join('; '),
    };
  }

  /** The batch's currency, as the class says. */
  async #currencyOf(batchId: string, moved: Money[]): Promise<string> {
    const currencies = await this.#source.accountCurrencies();
    if (currencies.length === 1 && currencies[0]) return currencies[0];
    const found = new Set<string>();
    for (const money of moved) {
      const reference = referenceOf(money);
      const ours = reference ? await this.#currencyOfReference?.(reference) : undefined;
      if (ours && currencies.includes(ours.toUpperCase())) found.add(ours.toUpperCase());
    }
    const [only, ...others] = [...found];
    if (only && others.length === 0) return only;
    throw new BatchUnreadable(
      `Authorize.Net batch ${batchId}: the account processes ${currencies.join(', ')} and batches name no currency; ` +
        (only
          ? `its billhook charges and refunds are in ${[...found].join(', ')}`
          : 'it holds none of billhook’s charges or refunds to tell it'),
    );
  }
}

/**
 * A settled batch billhook cannot read as a payout whatever it asks again: its currency cannot be
 * known (an account processing several currencies, the batch holding none of billhook's charges and
 * refunds, or some in two currencies). `fetchSettlements` leaves it out and names it in `unread`.
 */
export class BatchUnreadable extends Error {
  override name = 'BatchUnreadable';
}

/** A transaction of a batch that moved money, and which way. */
interface Money {
  transaction: TransactionSummary;
  kind: 'charge' | 'refund';
}

/**
 * billhook's id of a money transaction, from its invoice number (`txn_…` for a charge, `re_…` for a
 * refund: conventions.ts); the list's sample names the field `invoice` in places, both are read.
 */
function referenceOf({ transaction, kind }: Money): string | undefined {
  return fromInvoiceNumber(transaction.invoiceNumber ?? transaction.invoice, kind);
}

/** One money transaction of a batch as a settlement line (see AuthorizeNetSettlement). */
function lineOf(money: Money, currency: string, settledAt: Date): SettlementLine {
  const { transaction, kind } = money;
  if (transaction.settleAmount === undefined) {
    throw new Error(`Authorize.Net transaction ${transaction.transId} has no settleAmount`);
  }
  const settled = fromGateway(AUTHORIZENET_CURRENCIES, transaction.settleAmount, currency);
  const gross = kind === 'refund' ? -settled : settled;
  const reference = referenceOf(money);
  return {
    gatewayLineId: transaction.transId,
    kind,
    ...(kind === 'refund'
      ? { gatewayRefundId: transaction.transId }
      : { gatewayTransactionId: transaction.transId }),
    ...(reference ? { reference } : {}),
    currency,
    gross,
    fee: 0n,
    net: gross,
    occurredAt: transaction.submitTimeUTC
      ? utc(transaction.submitTimeUTC, `transaction ${transaction.transId} submitTimeUTC`)
      : settledAt,
    availableOn: settledAt,
  };
}
