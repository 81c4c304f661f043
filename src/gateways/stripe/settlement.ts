import type { z } from 'zod';
import { parseRate, rateText } from '../../money/exchange-rate.ts';
import { parsePayload } from '../payload.ts';
import {
  type PayoutReport,
  type SettlementLine,
  SettlementLineSchema,
  type SettlementRange,
  type SettlementSource,
} from '../settlement.ts';
import { WebhookPayloadError } from '../types.ts';
import { amountOf, signedAmountOf } from './amounts.ts';
import { REFERENCE_KEY } from './conventions.ts';
import { BalanceTransaction, Payout } from './schemas.ts';
import { balanceTransactionKind, payoutStatusOf } from './status.ts';

/**
 * Stripe's settlement data in billhook's shapes (src/gateways/settlement.ts): a balance transaction
 * (https://docs.stripe.com/api/balance_transactions/object) is a settlement line, a payout
 * (https://docs.stripe.com/api/payouts/object) a payout report. Every function here throws
 * `WebhookPayloadError` for an object that is not Stripe's documented shape or an amount billhook
 * cannot book exactly: nothing is guessed or rounded.
 */

const parse = <T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> =>
  parsePayload(schema, value, `Stripe ${what}`);

const seconds = (unix: number): Date => new Date(unix * 1000);

/**
 * Stripe's `exchange_rate` as plain decimal text, exactly as Stripe wrote it: the API renders it as a
 * JSON number (`1.234`) that JSON parsing makes a double, and a double's shortest decimal
 * (`String`, ECMAScript Number::toString) is the text it was read from whenever that had at most 15
 * significant digits; read with `parseRate` (money/exchange-rate.ts), never multiplied as a float.
 * @throws WebhookPayloadError for a rate that is no positive decimal billhook can read exactly
 */
function rateOf(value: number, what: string): string {
  const rate = parseRate(String(value));
  if (!rate)
    throw new WebhookPayloadError(`Stripe ${what}: exchange_rate ${value} is not a rate billhook can read`);
  return rateText(rate);
}

/**
 * The settlement line of a balance transaction, or undefined for the payout's own transaction (type
 * `payout`: the payout itself, reported as the payout, not as one of its lines).
 * - kind by `type`, and `reporting_category` for an `adjustment` (`balanceTransactionKind`, status.ts);
 * - `gross`/`fee`/`net` are Stripe's `amount`/`fee`/`net` with their signs (`fee` positive when
 *   charged, https://docs.stripe.com/api/balance_transactions/object#balance_transaction_object-fee),
 *   read by Stripe's currency table; a `net` other than `amount - fee` is refused;
 * - a charge's, refund's or dispute's `source` must be expanded (`expand[]=source`): its
 *   `payment_intent` is the payment billhook stores (`gatewayTransactionId`), the refund's `re_…` /
 *   the dispute's `dp_…`/`du_…` its `gatewayRefundId` / `gatewayDisputeId`, and `billhook_reference`
 *   in its metadata the `reference`;
 * - with an `exchange_rate` (Stripe converted the payment into the balance's currency,
 *   https://docs.stripe.com/api/balance_transactions/object#balance_transaction_object-exchange_rate)
 *   `original` is the source's own `amount` and `currency`, signed like `gross`, and `exchangeRate`
 *   that rate as decimal text (`rateOf`): src/settlement/lines.ts checks `gross` against what
 *   billhook booked × it;
 * - `occurredAt` is `created`, `availableOn` `available_on` (Unix seconds); `description` is
 *   `<type>: <Stripe's description>`.
 * @throws WebhookPayloadError (see above)
 */
export function settlementLineOf(value: unknown): SettlementLine | undefined {
  const txn = parse(BalanceTransaction, value, 'balance transaction');
  const source = typeof txn.source === 'string' ? undefined : (txn.source ?? undefined);
  const sourceId = typeof txn.source === 'string' ? txn.source : source?.id;
  const kind = balanceTransactionKind(txn.type, sourceId, txn.reporting_category);
  if (kind === 'payout') return undefined;
  const what = `balance transaction ${txn.id}`;
  if ((kind === 'charge' || kind === 'refund' || kind === 'dispute') && !source) {
    throw new WebhookPayloadError(
      `Stripe ${what}: its ${txn.type} source ${sourceId ?? '(none)'} is not expanded (expand[]=source)`,
    );
  }
  const gross = signedAmountOf(txn.amount, txn.currency, what);
  let original: SettlementLine['original'];
  let exchangeRate: string | undefined;
  if (txn.exchange_rate != null) {
    if (!source || typeof source.amount !== 'number' || !source.currency) {
      throw new WebhookPayloadError(
        `Stripe ${what}: exchange_rate ${txn.exchange_rate} without its source's own amount and currency`,
      );
    }
    const currency = source.currency.toUpperCase();
    const amount = amountOf(source.amount, currency, `${source.object} ${source.id}`);
    original = { currency, amount: gross < 0n ? -amount : amount };
    exchangeRate = rateOf(txn.exchange_rate, what);
  }
  const paymentIntent = source?.payment_intent ?? undefined;
  return parse(
    SettlementLineSchema,
    {
      gatewayLineId: txn.id,
      kind,
      gatewayTransactionId:
        kind === 'charge' || kind === 'refund' || kind === 'dispute' ? paymentIntent : undefined,
      gatewayRefundId: kind === 'refund' ? source?.id : undefined,
      gatewayDisputeId: kind === 'dispute' ? source?.id : undefined,
      reference: source?.metadata?.[REFERENCE_KEY],
      currency: txn.currency,
      gross,
      fee: signedAmountOf(txn.fee, txn.currency, what),
      net: signedAmountOf(txn.net, txn.currency, what),
      original,
      exchangeRate,
      occurredAt: seconds(txn.created),
      availableOn: txn.available_on == null ? undefined : seconds(txn.available_on),
      description: txn.description ? `${txn.type}: ${txn.description}` : txn.type,
    },
    `${what} as a settlement line`,
  );
}

/** The settlement lines of a payout's balance transactions (`settlementLineOf`), without the payout's own. */
export function settlementLinesOf(values: readonly unknown[]): SettlementLine[] {
  return values.map(settlementLineOf).filter((line) => line !== undefined);
}

/** A payout as Stripe renders it (`Payout` in schemas.ts), checked. */
export type StripePayout = z.output<typeof Payout>;

/** A payout object checked against Stripe's documented shape. @throws WebhookPayloadError */
export function readPayout(value: unknown): StripePayout {
  return parse(Payout, value, 'payout');
}

/**
 * Whether a payout's balance transactions can be listed now (`GET /v1/balance_transactions?payout=`):
 * only an automatic payout's can ("For automatic Stripe payouts only",
 * https://docs.stripe.com/api/balance_transactions/list#balance_transaction_list-payout), and only
 * once its `reconciliation_status` is `completed`
 * (https://docs.stripe.com/api/payouts/object#payout_object-reconciliation_status); a `paid` payout
 * rendered without that field (an API version older than it) is listed too.
 */
export function payoutLinesListable(payout: StripePayout): boolean {
  if (payout.automatic === false) return false;
  return (
    payout.reconciliation_status === 'completed' ||
    (payout.status === 'paid' && payout.reconciliation_status == null)
  );
}

/**
 * The payout report of a Stripe payout: status in Stripe's words, `amount` by Stripe's currency
 * table, `created` and `arrival_date` (Unix seconds) as dates, `failure_code`, and `lines` when given.
 * @throws WebhookPayloadError for a status Stripe does not document or an inexact amount
 */
export function payoutReportOf(payout: StripePayout, lines?: SettlementLine[]): PayoutReport {
  const status = payoutStatusOf(payout.status);
  if (!status) throw new WebhookPayloadError(`Stripe payout ${payout.id}: unknown status ${payout.status}`);
  return {
    gatewayPayoutId: payout.id,
    status,
    currency: payout.currency,
    amount: amountOf(payout.amount, payout.currency, `payout ${payout.id}`),
    createdAt: seconds(payout.created),
    arrivalDate: payout.arrival_date == null ? null : seconds(payout.arrival_date),
    ...(lines ? { lines } : {}),
    ...(payout.failure_code ? { failureCode: payout.failure_code } : {}),
    ...(payout.description ? { description: payout.description } : {}),
  };
}

/**
 * What the settlement half asks Stripe (StripeClient's calls); each throws when Stripe does not
 * answer or answers a list that is not one.
 * - `payoutBalanceTransactions`: every balance transaction of a payout, sources expanded;
 * - `payoutsCreated`: every payout created in a range.
 */
export interface StripeSettlementCalls {
  payoutBalanceTransactions(payoutId: string): Promise<readonly unknown[]>;
  payoutsCreated(range: SettlementRange): Promise<readonly unknown[]>;
}

/**
 * The report of a payout with its lines asked of Stripe when they can be listed
 * (`payoutLinesListable`), else without lines.
 */
export async function payoutWithLines(
  payout: StripePayout,
  calls: Pick<StripeSettlementCalls, 'payoutBalanceTransactions'>,
): Promise<PayoutReport> {
  const lines = payoutLinesListable(payout)
    ? settlementLinesOf(await calls.payoutBalanceTransactions(payout.id))
    : undefined;
  return payoutReportOf(payout, lines);
}

/**
 * Stripe's settlement source: `fetchSettlements(range)` is every payout created in the range
 * (`GET /v1/payouts?created[gte]&created[lt]`, all pages), each with its lines when Stripe can list
 * them (`GET /v1/balance_transactions?payout=`, all pages). Lines outside payouts arrive as
 * `settlement.line` webhooks (`charge.succeeded` / `charge.updated`), so `lines` is empty.
 */
export function stripeSettlementSource(calls: StripeSettlementCalls): SettlementSource {
  return {
    async fetchSettlements(range) {
      const payouts = (await calls.payoutsCreated(range)).map(readPayout);
      const reports: PayoutReport[] = [];
      for (const payout of payouts) reports.push(await payoutWithLines(payout, calls));
      return { lines: [], payouts: reports };
    },
  };
}
