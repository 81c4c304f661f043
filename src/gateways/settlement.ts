import { z } from 'zod';
import { isCurrency } from '../money/currency.ts';
import { parseRate, rateText } from '../money/exchange-rate.ts';

/**
 * What a gateway's settlement data says, in billhook's terms (PRODUCT.md §13): the lines of money
 * that moved in the merchant's gateway balance (a charge's gross and fee, a refund, a dispute's
 * withdrawal and fee, a standalone fee, an adjustment) and the payouts that move the balance to the
 * bank. Every gateway's settlement source (Stripe's balance transactions and payouts, PayPal's capture
 * breakdowns and withdrawals, Authorize.Net's settled batches, eWAY's settlement search, an imported
 * settlement report) is translated into these shapes by its own folder; src/settlement/ books them.
 *
 * Amounts are integers in minor units of `currency` (ISO 4217, converted by each gateway's currency
 * table), signed from the merchant's side: money into the gateway balance is positive, money out
 * negative. A fee is what the gateway kept: positive when charged, negative when given back (a fee
 * returned with a refund). `net = gross - fee` always holds (checked by the schema).
 */

/** What a settlement line is about. */
export const SETTLEMENT_LINE_KINDS = [
  /** A payment's money: gross positive (or negative for a reversal of one). */
  'charge',
  /** A refund: gross negative (positive for a failed refund's money coming back, Stripe's `refund_failure`). */
  'refund',
  /** A dispute's withdrawal (gross negative) or its reinstatement when won (gross positive). */
  'dispute',
  /** A fee on its own, not tied to one payment (Stripe's `stripe_fee`, a monthly gateway fee): gross 0 or negative. */
  'fee',
  /** Anything else the gateway moved (a reserve, a correction): booked for a person to look at. */
  'adjustment',
  /**
   * A failed or canceled payout's money coming back into the balance (Stripe's `payout_failure`,
   * `payout_cancel`): the payout's own `pyo_…:returned` movement books it, so the line books nothing
   * and only counts towards the payout that lists it.
   */
  'payout_return',
  /**
   * One currency's side of a currency conversion of the balance (PayPal's Transaction Search `T02nn`
   * rows naming no payment, e.g. a `T0201` user-initiated conversion: `−19300` HUF out and `+49.57`
   * EUR in, two lines): gross negative in the currency converted from, positive in the one converted
   * into; booked against the FX account in its currency. Not a kind of the imported file.
   */
  'conversion',
  /**
   * Money the gateway held (gross negative) or released (positive) within the merchant's balance
   * (PayPal's `T15nn` holds, e.g. `T1503` "Temporary hold on payout amount and fees", `T1110` hold for a
   * dispute investigation, and their releases `T1105`, `T1111`): still the merchant's money at the
   * gateway, so it is recorded and booked nowhere; what the held money is finally used for (a payment
   * sent, a chargeback) is a line of its own. Not a kind of the imported file.
   */
  'hold',
] as const;
export type SettlementLineKind = (typeof SETTLEMENT_LINE_KINDS)[number];

const minor = z.bigint();
const currency = z.string().refine(isCurrency, 'not an ISO 4217 currency');

/**
 * One line of a gateway balance.
 * - `gatewayLineId`: the gateway's id of the line (Stripe's balance transaction `txn_…`, PayPal's
 *   capture or refund id, Authorize.Net's `transId`, eWAY's settlement transaction id, an imported
 *   report's row id): a line is booked once by it, per gateway account;
 * - `gatewayTransactionId` / `gatewayRefundId` / `gatewayDisputeId`: the payment, refund or dispute
 *   it is about, as billhook stores them (Stripe's PaymentIntent `pi_…`, PayPal's capture id,
 *   Authorize.Net's and eWAY's transaction ids); `reference`: billhook's own id (`txn_…`, `re_…`)
 *   when the gateway echoes it;
 * - `currency`, `gross`, `fee`, `net`: what moved in the balance, in the currency the gateway settles
 *   in;
 * - `original`: when that is not the payment's currency, what the payment was in its own currency
 *   (signed like `gross`): the difference is booked through the FX account;
 * - `exchangeRate`: with `original`, the rate the gateway says it converted at, as plain decimal text
 *   in major units (one unit of `original`'s currency is that many of `currency`: Stripe's
 *   `exchange_rate`, `"1.234"` for EUR 10.00 settled as USD 12.34): `gross` must be `original`'s
 *   amount × it, rounded to a whole minor unit, or the line is an `amount_mismatch` for a person;
 * - `occurredAt`: when the gateway booked it; `availableOn`: when it becomes payable, if said;
 * - `partnerFee`: of `fee`, what a partner (a platform) took (PayPal's `platform_fees`), ≥ 0; of a
 *   refund's or dispute's fee given back, what of it is the partner's given back; a `fee` line with
 *   one (PayPal's `T0113` partner fee row) is that partner fee of the payment `gatewayTransactionId`
 *   names, taken (gross negative) or given back (gross positive): a payment's partner fees, taken and
 *   given back, are each booked once, whichever of its lines reports them;
 * - `unbooked`: of an `adjustment` line, why billhook cannot book it (e.g. a PayPal currency conversion
 *   row whose shape is not confirmed): it is recorded, books nothing, and raises
 *   `settlement_line_unbooked` naming the reason, for a person.
 */
export const SettlementLineSchema = z
  .object({
    gatewayLineId: z.string().min(1),
    kind: z.enum(SETTLEMENT_LINE_KINDS),
    gatewayTransactionId: z.string().min(1).optional(),
    gatewayRefundId: z.string().min(1).optional(),
    gatewayDisputeId: z.string().min(1).optional(),
    reference: z.string().min(1).optional(),
    currency,
    gross: minor,
    fee: minor,
    net: minor,
    original: z.object({ currency, amount: minor }).optional(),
    exchangeRate: z
      .string()
      .refine((text) => {
        const rate = parseRate(text);
        return rate !== undefined && rateText(rate) === text;
      }, 'not a positive rate as plain decimal text')
      .optional(),
    occurredAt: z.date(),
    availableOn: z.date().optional(),
    /**
     * The id an earlier billhook derived for this CSV row (before `available_on` was left out of
     * derived ids: gateways/settlement-csv.ts): a line recorded under it is this line, so a file
     * imported before the change and again after it books nothing twice.
     */
    formerLineId: z.string().min(1).optional(),
    description: z.string().optional(),
    partnerFee: minor.nonnegative().optional(),
    unbooked: z.string().min(1).optional(),
  })
  .refine((line) => line.net === line.gross - line.fee, { message: 'net must equal gross - fee' });
export type SettlementLine = z.infer<typeof SettlementLineSchema>;

/**
 * A payout's status, forward only: `pending` → `in_transit` → `paid`, or `failed` / `canceled`
 * (the money returned to the gateway balance). Stripe's payout statuses are these words
 * (https://docs.stripe.com/api/payouts/object#payout_object-status); the other gateways' settled
 * batches and withdrawals are `paid` when reported.
 */
export const PAYOUT_STATUSES = ['pending', 'in_transit', 'paid', 'failed', 'canceled'] as const;
export type PayoutStatus = (typeof PAYOUT_STATUSES)[number];

/**
 * A payout (Stripe's payout `po_…`, PayPal's withdrawal, Authorize.Net's settled batch, eWAY's daily
 * settlement, an imported report's deposit): `amount` is what goes to the bank (minor units of
 * `currency`, positive). `lines` are the balance lines it pays out, when the gateway lists them
 * (absent: not known yet, or a gateway whose payouts are lump sums, PayPal's withdrawals); when
 * present their `net`s should sum to `amount`, and a payout whose lines do not is an exception.
 */
export const PayoutReportSchema = z.object({
  gatewayPayoutId: z.string().min(1),
  status: z.enum(PAYOUT_STATUSES),
  currency,
  amount: minor,
  createdAt: z.date(),
  arrivalDate: z.date().nullable(),
  lines: z.array(SettlementLineSchema).optional(),
  failureCode: z.string().optional(),
  description: z.string().optional(),
});
export type PayoutReport = z.infer<typeof PayoutReportSchema>;

/**
 * What a gateway reports when asked for its settlement data over a time range (a daily sweep, or
 * `billhook settlement sync`): lines not (yet) in a payout, such as the fees of charges, and payouts.
 */
export interface SettlementReport {
  lines: SettlementLine[];
  payouts: PayoutReport[];
  /**
   * What the source read but could not report and left out (an Authorize.Net batch whose currency
   * cannot be known, an eWAY settlement whose transactions do not add up to its summary): the rest is
   * recorded, so that one such item does not keep everything else out of the books; the sync then
   * raises each as a `settlement_unread` exception, reads back to it on every later sweep until it is
   * booked, and fails the account naming it (settlement/sync.ts `syncSettlements`).
   */
  unread?: UnreadSettlement[];
}

/** Something a settlement source read but could not report (`SettlementReport.unread`). */
export interface UnreadSettlement {
  /**
   * The gateway payout id it is (or belongs to) once readable: an Authorize.Net `batchId`, an eWAY
   * `<SettlementID>:<currency>`. Booking a payout of that id resolves its exception.
   */
  id: string;
  /** When it settled (a batch's settlement time, an eWAY settlement's date at 00:00 UTC): later sweeps read back to it. */
  settledAt: Date;
  /** A sentence naming it and why it could not be read. */
  message: string;
}

/** A time range, `from` inclusive and `to` exclusive. */
export interface SettlementRange {
  from: Date;
  to: Date;
}

/**
 * The settlement half of an adapter, for a gateway that can be asked (PayPal, Authorize.Net, eWAY;
 * Stripe's arrive as webhooks and can be asked too). Throws on a transport error or an answer that is
 * not the documented shape: a sweep retries, it never books a guess.
 */
export interface SettlementSource {
  /** Lines and payouts that happened in `range`. */
  fetchSettlements(range: SettlementRange): Promise<SettlementReport>;
}
