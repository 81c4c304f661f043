import { z } from 'zod';
import {
  type PayoutReport,
  PayoutReportSchema,
  type PayoutStatus,
  type SettlementLine,
  SettlementLineSchema,
  type SettlementRange,
  type SettlementReport,
  type SettlementSource,
} from '../settlement.ts';
import { Money } from './schemas.ts';
import { PaypalSettlementError, parseSettlement, settlementUnits } from './settlement.ts';

/**
 * PayPal's Transaction Search API (`GET /v1/reporting/transactions`,
 * https://developer.paypal.com/docs/api/transaction-search/v1/) as a settlement source: the
 * merchant's balance history, from which billhook takes the withdrawals to the bank (payouts) and
 * the fees of captures and refunds. Facts relied on:
 * - "The maximum supported date range is 31 days", "The maximum page size is 500", and further
 *   pages are asked for with "an incremented `page`" up to `total_pages`
 *   (https://developer.paypal.com/docs/transaction-search/);
 * - amounts are signed from the account's side: `transaction_amount` is negative for money out
 *   (a withdrawal `T0403` of `"-47.63"`, a refund `T1107`), and `fee_amount` is negative when a fee
 *   is charged (the documented sample's `T0006` payment of 465.00 has `fee_amount` `"-13.79"`),
 *   positive when PayPal gives one back;
 * - `transaction_status` `S` completed, `P` pending, `D` denied, `V` "a successful transaction was
 *   fully reversed and funds were refunded to the original sender" (the reversal is its own row);
 * - a capture's `transaction_id` is the capture id (PayPal's transaction id), a refund's is the
 *   refund id and its `paypal_reference_id` the refunded capture's.
 */

/** A Transaction Search date (`2014-07-11T04:03:52+0000` or RFC 3339) as a Date. */
const SearchDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/, 'not a date and time')
  .transform((text) => new Date(text.replace(/([+-]\d{2})(\d{2})$/, '$1:$2')));

/** The `transaction_info` fields billhook reads (definition `transaction_info`). */
export const TransactionInfo = z.looseObject({
  transaction_id: z.string().min(1),
  paypal_reference_id: z.string().min(1).optional(),
  transaction_event_code: z.string().regex(/^T\d{4}$/, 'not a transaction event code'),
  transaction_initiation_date: SearchDate,
  transaction_updated_date: SearchDate.optional(),
  transaction_amount: Money,
  fee_amount: Money.optional(),
  transaction_status: z.string().length(1),
  transaction_subject: z.string().optional(),
  invoice_id: z.string().optional(),
  custom_field: z.string().optional(),
  bank_reference_id: z.string().optional(),
});
/** A parsed `TransactionInfo` (the schema's output type). */
export type TransactionInfo = z.output<typeof TransactionInfo>;

/** One page of `GET /v1/reporting/transactions` (definition `search_response`). */
export const SearchPage = z.looseObject({
  transaction_details: z.array(z.looseObject({ transaction_info: TransactionInfo })).default([]),
  page: z.number().int().nonnegative().optional(),
  total_items: z.number().int().nonnegative().optional(),
  total_pages: z.number().int().nonnegative(),
});
/** A parsed `SearchPage` (the schema's output type). */
export type SearchPage = z.output<typeof SearchPage>;

/** The longest range one search may cover (31 days, https://developer.paypal.com/docs/transaction-search/). */
export const MAX_SEARCH_RANGE_MS = 31 * 24 * 60 * 60 * 1000;

/** Rows per page: PayPal's maximum (500). */
export const SEARCH_PAGE_SIZE = 500;

/**
 * The withdrawals billhook books as payouts, of the event group `T04nn` "Bank withdrawal from PayPal
 * account" (https://developer.paypal.com/docs/transaction-search/transaction-event-codes/): `T0400`
 * general withdrawal, `T0401` and `T0403` (the real withdrawal to the bank in
 * test/fixtures/paypal/api.reporting.transactions.donation_partner_fee_withdrawal.json is a `T0403`
 * carrying its `bank_reference_id`).
 */
export const WITHDRAWAL_CODES: ReadonlySet<string> = new Set(['T0400', 'T0401', 'T0403']);

/**
 * `T1107` "payment refund, initiated by merchant": a refund of a capture, whose `paypal_reference_id`
 * is the capture.
 */
export const REFUND_CODE = 'T1107';

/**
 * `T0113` partner fee: a platform's (partner's) fee taken from a payment, its `paypal_reference_id` the
 * payment (the real row in test/fixtures/paypal/api.reporting.transactions.donation_partner_fee_withdrawal.json:
 * 0.88 of the 50.00 donation). The capture's webhook breakdown counts it in the line's fee
 * (`platform_fees`, settlement.ts, its `partnerFee`); a sweep may list it in another window than its
 * payment, so it is a `fee` line of its own naming the payment (`partnerFeeLine`), and settlement/
 * books a payment's partner fees once, whichever of its lines reports them.
 */
export const PARTNER_FEE_CODE = 'T0113';

/**
 * `T00xx` PayPal account-to-account payments (`T0006` PayPal Checkout APIs, the Orders v2 captures
 * billhook makes; `T0000` general, `T0013` donation, …): received (`transaction_amount` positive) they
 * are captures into the balance; sent (negative, e.g. a `T0001` mass payment) they are not billhook's.
 */
const PAYMENT_CODE = /^T00\d{2}$/;

/**
 * `T01nn` "Non-payment-related fees" (https://developer.paypal.com/docs/transaction-search/transaction-event-codes/):
 * fees PayPal takes from the balance apart from a payment's own `fee_amount`, e.g. the chargeback fee
 * "deducted from the seller's PayPal account" when a buyer files a chargeback
 * (https://www.paypal.com/jp/selfhelp/article/faq1557). `T0113`, the partner fee, is one of them and
 * read apart (`PARTNER_FEE_CODE`).
 */
const FEE_CODE = /^T01\d{2}$/;

/**
 * `T02nn` "Currency conversion" (PayPal's Transaction Event Codes,
 * https://developer.paypal.com/docs/transaction-search/transaction-event-codes/, "T02nn Currency
 * conversion"; the codes as PayPal's Settlement Report specification names them, carried by Magento's
 * PayPal module, magento/magento2 `app/code/Magento/Paypal/Model/Report/Settlement/Row.php`: `T0200`
 * "General Currency Conversion", `T0201` "User-initiated Currency Conversion" — "a user- or
 * system-initiated currency conversion" since the specification's version 9.01 —, `T0202` "Currency
 * Conversion required to cover negative balance"): money of one currency balance converted into
 * another, one row per currency (money out of the one converted from, negative; into the other,
 * positive). Not fees, nor transfers to another account. Two cases:
 * - a row naming a payment (`paypal_reference_id`): the conversion of a capture in the buyer's
 *   currency into the payee's. The webhook path books that conversion from the capture's breakdown
 *   (settlement.ts `inBalance`); which rows PayPal lists for it, and whether they are exactly what the
 *   breakdown converted, are not confirmed (no real row found, test/fixtures/paypal/SOURCES.md), so the
 *   sweep books none of them (`CONVERSION_UNBOOKED`: recorded, `settlement_line_unbooked` for a person);
 * - a row naming none (a conversion of the balance: the merchant's own, or PayPal's to cover a
 *   negative balance): nothing else books it, and what it says is sure: that much left (or reached)
 *   that currency's balance by conversion. It is a `conversion` line, booked against the FX account in
 *   its currency (src/ledger/movements.ts `settlementLineBooked`), e.g. a `T0201` of HUF `-19300` and
 *   one of EUR `49.57`: HUF clearing −1930000 (FX +1930000), EUR clearing +4957 (FX −4957).
 */
const CONVERSION_CODE = /^T02\d{2}$/;

/** Why the sweep books no `T02nn` row naming a payment, nor the payment it names (the line's `unbooked`). */
const CONVERSION_UNBOOKED =
  "a PayPal currency conversion of a payment: its Transaction Search rows are not confirmed, so billhook books no conversion from them; the payment it converted is booked converted, in the balance currency, by its PAYMENT.CAPTURE.COMPLETED line (replacing what an earlier sweep booked of the payment's own row in its own currency, if one did), unless that line differs otherwise from the row (a partner fee, another gross): then it raises settlement_line_changed and the conversion is booked nowhere until a person books it; check the payment's settlement line";

/**
 * `T1201` "Chargeback" and `T1202` "Chargeback reversal" of the group `T12nn` "Adjustments" (PayPal's
 * Transaction Event Codes, https://developer.paypal.com/docs/transaction-search/transaction-event-codes/;
 * PayPal's chargeback guide: when the card issuer finds for the seller PayPal returns the funds,
 * https://www.paypal.com/il/webapps/mpp/security/sell-chargebackguide3): the money of a chargeback
 * taken from the balance (negative) and given back (positive), naming the disputed capture by
 * `paypal_reference_id`. They are `dispute` lines of the dispute billhook keys by that capture
 * (webhook.ts keys PayPal disputes and reversals by the capture id), as Stripe's dispute balance
 * transactions are: matched to it, they book their fee only (the dispute's own movements booked its
 * money), and until billhook knows the dispute they are unmatched, for a person. The chargeback fee
 * PayPal charges apart is a `T01nn` fee row (`FEE_CODE`). Other `T12nn` codes (a charge-off, an
 * incentive, a reimbursement of a chargeback) stay adjustment lines.
 */
export const CHARGEBACK_CODES: ReadonlySet<string> = new Set(['T1201', 'T1202']);

/**
 * Holds and their releases: the group `T15nn` "Temporary hold" (e.g. `T1503`, "Temporary hold on payout
 * amount and fees": PayPal holds a payout's amount when it starts and releases it with a `T1105`
 * "Account hold released" when the batch completes, https://developer.paypal.com/payouts/use-payouts/view-transactions),
 * `T1110` "Hold for Dispute Investigation" and the releases `T1105` "Reversal of General Account Hold"
 * and `T1111` "Reversal of hold for Dispute Investigation" (the labels of PayPal's Settlement Report
 * specification in magento/magento2 `app/code/Magento/Paypal/Model/Report/Settlement/Row.php`). Held
 * money stays the merchant's at PayPal: a hold moves it from available to held, a release back, and
 * what it is finally used for is a row of its own (the `T0001` payment sent, a `T1201` chargeback).
 * They are `hold` lines, recorded and booked nowhere, raising nothing: as adjustment lines each
 * raised `settlement_adjustment` though a hold and its release cancel out (the real sandbox pages:
 * a `T1503` of −60.75 and `T1105` releases of 10.25 and 20.25), and a hold never released but
 * followed by the row that spends the money took it from clearing twice.
 */
const HOLD_CODE = /^(T15\d{2}|T1105|T1110|T1111)$/;

/** Withdrawal `transaction_status` → payout status; `V` and `D`: the money went back to the balance. */
const WITHDRAWAL_STATUS: Readonly<Record<string, PayoutStatus>> = {
  S: 'paid',
  P: 'pending',
  D: 'failed',
  V: 'failed',
};

/**
 * A row as a settlement line: gross = `transaction_amount`, fee = −`fee_amount` (PayPal's fee is
 * negative when charged, so the line's fee is positive when charged and negative when given back),
 * net = gross − fee. Ids as the webhook path gives them (settlement.ts), so a line is booked once:
 * a capture → kind `charge`, line and transaction id = the capture id; a refund → kind `refund`, line
 * and refund id = the refund id, transaction id = `paypal_reference_id`; a chargeback or its
 * reversal → kind `dispute`, line id = its transaction id, transaction and dispute id =
 * `paypal_reference_id` (the disputed capture, as billhook keys PayPal disputes); a fee, an adjustment
 * a conversion or a hold → line id = its transaction id, transaction id = `paypal_reference_id` (the payment
 * it names, if any, for a person to read: settlement/ matches such lines to nothing). `reference` is `custom_field` (our
 * `custom_id`) else `invoice_id`; `description` `PayPal <code>: <subject>`, then `note` if given.
 * @throws PaypalSettlementError for an amount not exact in its currency or a fee in another currency
 */
function lineOf(
  info: TransactionInfo,
  kind: 'charge' | 'refund' | 'dispute' | 'fee' | 'adjustment' | 'conversion' | 'hold',
  note?: string,
): SettlementLine {
  const what = `PayPal transaction ${info.transaction_id} (${info.transaction_event_code})`;
  const gross = settlementUnits(info.transaction_amount, `${what} transaction_amount`, true);
  const charged = info.fee_amount ? settlementUnits(info.fee_amount, `${what} fee_amount`, true) : undefined;
  if (charged && charged.currency !== gross.currency) {
    throw new PaypalSettlementError(`${what}: fee_amount is in ${charged.currency}, not ${gross.currency}`);
  }
  const fee = charged ? -charged.amount : 0n;
  const ids =
    kind === 'charge'
      ? { gatewayTransactionId: info.transaction_id }
      : kind === 'refund'
        ? { gatewayTransactionId: info.paypal_reference_id, gatewayRefundId: info.transaction_id }
        : kind === 'dispute'
          ? { gatewayTransactionId: info.paypal_reference_id, gatewayDisputeId: info.paypal_reference_id }
          : { gatewayTransactionId: info.paypal_reference_id };
  const subject = info.transaction_subject ? `: ${info.transaction_subject}` : '';
  return parseSettlement(
    SettlementLineSchema,
    {
      gatewayLineId: info.transaction_id,
      kind,
      ...ids,
      reference: info.custom_field || info.invoice_id || undefined,
      currency: gross.currency,
      gross: gross.amount,
      fee,
      net: gross.amount - fee,
      occurredAt: info.transaction_initiation_date,
      description: `PayPal ${info.transaction_event_code}${subject}${note ? ` (${note})` : ''}`,
    },
    what,
  );
}

/**
 * A withdrawal row as a payout: `amount` = −`transaction_amount` (the withdrawal is money out, so
 * PayPal reports it negative), status by `transaction_status`, no lines (PayPal's withdrawals are
 * lump sums of the balance), arrival unknown.
 * @throws PaypalSettlementError for an amount that is not money out or not exact
 */
function payoutOf(info: TransactionInfo): PayoutReport {
  const what = `PayPal withdrawal ${info.transaction_id} (${info.transaction_event_code})`;
  const money = settlementUnits(info.transaction_amount, `${what} transaction_amount`, true);
  if (money.amount >= 0n) throw new PaypalSettlementError(`${what} is not money out of the balance`);
  const status = WITHDRAWAL_STATUS[info.transaction_status];
  if (!status) {
    throw new PaypalSettlementError(
      `${what} has transaction_status ${info.transaction_status}, not S, P, D or V`,
    );
  }
  return parseSettlement(
    PayoutReportSchema,
    {
      gatewayPayoutId: info.transaction_id,
      status,
      currency: money.currency,
      amount: -money.amount,
      createdAt: info.transaction_initiation_date,
      arrivalDate: null,
      description: `PayPal withdrawal to the bank ${info.transaction_event_code}${info.bank_reference_id ? ` (bank reference ${info.bank_reference_id})` : ''}`,
    },
    what,
  );
}

/**
 * The settlement data of Transaction Search rows: withdrawals (`WITHDRAWAL_CODES`) → payouts;
 * completed (`S`, or `V` reversed later by a row of its own) received payments (`T00xx`, amount
 * positive) → charge lines (PayPal's own fee), except one a currency conversion row names (its
 * webhook line books it converted); completed currency conversions (`T02nn`, `CONVERSION_CODE`)
 * naming a payment → `adjustment` lines recorded without booking (`unbooked`), each raising an
 * exception for a person, and naming none → `conversion` lines booked against the FX account;
 * completed chargebacks and their reversals (`T1201`, `T1202`, `CHARGEBACK_CODES`) → `dispute` lines
 * of the dispute keyed by the capture they name; completed holds and their releases (`HOLD_CODE`) →
 * `hold` lines, booked nowhere; completed refunds (`T1107`) → refund lines; completed
 * partner fees (`T0113`, taken or given back) → `fee` lines naming their payment (`partnerFeeLine`),
 * whether or not the payment is among the rows; other completed fees (`T01nn`, e.g. a chargeback fee) → `fee` lines
 * naming the transaction they are about (`paypal_reference_id`), booked to gateway fees; any other
 * completed row that moves money (a payment the account sent, a code billhook does not know) → an `adjustment` line of its net, booked into clearing
 * against settlement adjustments with a reconciliation exception for a person (settlement/lines.ts),
 * never dropped: the balance's withdrawals then leave clearing at 0. Pending (`P`) and denied (`D`)
 * rows moved nothing yet, and rows of 0 move nothing: not booked. The partner fees come after the
 * other lines. A row listed twice is kept once.
 * @throws PaypalSettlementError when a row cannot be translated exactly
 */
export function reportOf(rows: readonly TransactionInfo[]): SettlementReport {
  const lines = new Map<string, SettlementLine>();
  const partnerFees = new Map<string, SettlementLine>();
  const payouts = new Map<string, PayoutReport>();
  // Payments a currency conversion row names: their row is in the payment's currency, not the
  // balance's, so it is no charge line (the webhook's is, converted).
  const converted = new Set(
    rows
      .filter((info) => CONVERSION_CODE.test(info.transaction_event_code))
      .map((info) => info.paypal_reference_id),
  );
  for (const info of rows) {
    const code = info.transaction_event_code;
    const done = info.transaction_status === 'S' || info.transaction_status === 'V';
    if (WITHDRAWAL_CODES.has(code)) {
      payouts.set(info.transaction_id, payoutOf(info));
    } else if (!done) {
      // Pending or denied: nothing moved yet (a later row, or this one completed, says when it does).
    } else if (code === REFUND_CODE) {
      lines.set(info.transaction_id, lineOf(info, 'refund'));
    } else if (CONVERSION_CODE.test(code) && info.paypal_reference_id) {
      const conversion = {
        ...lineOf(info, 'adjustment', 'a currency conversion of a payment, not booked'),
        unbooked: CONVERSION_UNBOOKED,
      };
      if (conversion.gross !== 0n || conversion.fee !== 0n) lines.set(info.transaction_id, conversion);
    } else if (CONVERSION_CODE.test(code)) {
      const conversion = lineOf(info, 'conversion', 'a currency conversion of the balance');
      if (conversion.gross !== 0n || conversion.fee !== 0n) lines.set(info.transaction_id, conversion);
    } else if (HOLD_CODE.test(code)) {
      const hold = lineOf(info, 'hold', 'money held or released within the balance, not booked');
      if (hold.gross !== 0n || hold.fee !== 0n) lines.set(info.transaction_id, hold);
    } else if (CHARGEBACK_CODES.has(code)) {
      lines.set(
        info.transaction_id,
        lineOf(info, 'dispute', code === 'T1201' ? 'a chargeback' : 'a chargeback reversal'),
      );
    } else if (PAYMENT_CODE.test(code) && !info.transaction_amount.value.trim().startsWith('-')) {
      if (!converted.has(info.transaction_id)) lines.set(info.transaction_id, lineOf(info, 'charge'));
    } else if (code === PARTNER_FEE_CODE) {
      if (info.transaction_status === 'S') partnerFees.set(info.transaction_id, partnerFeeLine(info));
    } else if (FEE_CODE.test(code)) {
      lines.set(info.transaction_id, lineOf(info, 'fee', 'a PayPal fee apart from a payment'));
    } else {
      const other = lineOf(
        info,
        'adjustment',
        'a row billhook does not book itself, for a person to classify',
      );
      if (other.gross !== 0n || other.fee !== 0n) lines.set(info.transaction_id, other);
    }
  }
  // Partner fees after their payments' lines, as a person reads the report (the chunk recording them
  // takes its payments' partner fee locks first, settlement/lines.ts `lockPartnerFees`).
  return { lines: [...lines.values(), ...partnerFees.values()], payouts: [...payouts.values()] };
}

/**
 * A partner fee row (`T0113`) as a `fee` line of its own: line id = its transaction id (booked once,
 * however many windows list it), transaction id = its `paypal_reference_id` (the payment it was taken
 * from; none named: it matches nothing, for a person), gross = net = the amount, fee 0, `partnerFee` =
 * the amount's size. Money out (`transaction_amount` negative) is a partner fee taken, e.g. the real
 * 0.88 → gross −88n, partnerFee 88n: settlement/lines.ts books it against its payment, unless the
 * payment's charge line already counted it (the capture's `platform_fees`). Money in (positive) is a
 * partner fee given back, e.g. with a refund → gross 88n, partnerFee 88n: booked back from gateway
 * fees, unless the payment's refund line already counted it (the refund's `platform_fees` given back),
 * so it comes back once (it used to be an adjustment booked on top of the refund's, clearing left
 * with it for ever).
 * @throws PaypalSettlementError for an amount not exact in its currency
 */
function partnerFeeLine(info: TransactionInfo): SettlementLine {
  const what = `PayPal partner fee ${info.transaction_id} (${info.transaction_event_code})`;
  const moved = settlementUnits(info.transaction_amount, `${what} transaction_amount`, true);
  const payment = info.paypal_reference_id ?? 'no payment named';
  const back = moved.amount > 0n;
  return parseSettlement(
    SettlementLineSchema,
    {
      gatewayLineId: info.transaction_id,
      kind: 'fee',
      gatewayTransactionId: info.paypal_reference_id,
      currency: moved.currency,
      gross: moved.amount,
      fee: 0n,
      net: moved.amount,
      partnerFee: back ? moved.amount : -moved.amount,
      occurredAt: info.transaction_initiation_date,
      description: back
        ? `PayPal ${info.transaction_event_code}: partner fee given back on ${payment}`
        : `PayPal ${info.transaction_event_code}: partner fee of ${payment}`,
    },
    what,
  );
}

/** One Transaction Search call: a window of at most 31 days, one page. */
export interface SearchQuery {
  start: Date;
  end: Date;
  /** 1-based page number. */
  page: number;
  pageSize: number;
}

/** What asks PayPal for one page (PaypalClient.searchTransactions). */
export interface TransactionSearcher {
  searchTransactions(query: SearchQuery): Promise<SearchPage>;
}

/** `range` cut into windows of at most `MAX_SEARCH_RANGE_MS`. */
export function searchWindows(range: SettlementRange): SettlementRange[] {
  const windows: SettlementRange[] = [];
  for (let from = range.from.getTime(); from < range.to.getTime(); from += MAX_SEARCH_RANGE_MS) {
    windows.push({
      from: new Date(from),
      to: new Date(Math.min(from + MAX_SEARCH_RANGE_MS, range.to.getTime())),
    });
  }
  return windows;
}

/**
 * PayPal's settlement source: asks Transaction Search for every page of every 31-day window of the
 * range (`page` 1 to the first answer's `total_pages`) and translates the rows (`reportOf`).
 */
export class PaypalTransactionSearch implements SettlementSource {
  readonly #searcher: TransactionSearcher;

  constructor(searcher: TransactionSearcher) {
    this.#searcher = searcher;
  }

  /**
   * Lines and payouts PayPal booked in `range`.
   * @throws GatewayUnreachable without an answer; PaypalSettlementError for an error answer or one
   * that is not the documented shape or cannot be translated exactly (a sweep retries)
   */
  async fetchSettlements(range: SettlementRange): Promise<SettlementReport> {
    const rows: TransactionInfo[] = [];
    for (const window of searchWindows(range)) {
      let totalPages = 1;
      for (let page = 1; page <= totalPages; page++) {
        const answer = await this.#searcher.searchTransactions({
          start: window.from,
          end: window.to,
          page,
          pageSize: SEARCH_PAGE_SIZE,
        });
        if (page === 1) totalPages = answer.total_pages;
        rows.push(...answer.transaction_details.map((detail) => detail.transaction_info));
      }
    }
    return reportOf(rows);
  }
}
