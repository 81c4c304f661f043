import { z } from 'zod';
import { isCurrency } from '../../money/currency.ts';
import { fromGateway } from '../../money/gateway-amount.ts';
import { PAYPAL_CURRENCIES } from './currencies.ts';

/**
 * zod schemas of the PayPal payloads billhook reads, at the boundary. Only the fields billhook uses
 * are declared; every object is `loose` so PayPal may add fields without breaking us.
 * Shapes: Orders v2 (https://developer.paypal.com/docs/api/orders/v2/), Payments v2
 * (https://developer.paypal.com/docs/api/payments/v2/), Disputes v1
 * (https://developer.paypal.com/docs/api/customer-disputes/v1/), webhook events
 * (https://developer.paypal.com/api/rest/webhooks/event-names/).
 */

/** PayPal's `money`: an ISO 4217 `currency_code` and a decimal-string `value` (e.g. `"2.51"`). */
export const Money = z.looseObject({
  currency_code: z
    .string()
    .transform((c) => c.toUpperCase())
    .refine(isCurrency, 'not an ISO 4217 currency'),
  value: z.string().min(1),
});
/** A parsed `Money` (the schema's output type). */
export type Money = z.output<typeof Money>;

/**
 * A `money` object as billhook minor units, exactly (no float), by PayPal's currency rules:
 * `{currency_code: 'USD', value: '2.51'}` → `{ amount: 251n, currency: 'USD' }`, HUF `"1000"` →
 * `100000n`.
 * @throws AmountNotRepresentable when the value is not a decimal fitting the currency's ISO 4217
 * minor unit, or the currency is not one PayPal takes (`PAYPAL_CURRENCIES`)
 */
export function minorUnits(money: Money): { amount: bigint; currency: string } {
  return {
    amount: fromGateway(PAYPAL_CURRENCIES, money.value, money.currency_code),
    currency: money.currency_code,
  };
}

/**
 * A signed decimal `money` object (Transaction Search reports money out of the balance as `"-47.63"`)
 * as billhook minor units, exactly, through the same conversion as `minorUnits`:
 * `{currency_code: 'USD', value: '-13.79'}` → `{ amount: -1379n, currency: 'USD' }`.
 * @throws AmountNotRepresentable as `minorUnits` does (the sign aside)
 */
export function signedMinorUnits(money: Money): { amount: bigint; currency: string } {
  const negative = money.value.trim().startsWith('-');
  const { amount, currency } = minorUnits(
    negative ? { ...money, value: money.value.trim().slice(1) } : money,
  );
  return { amount: negative ? -amount : amount, currency };
}

/** PayPal's `exchange_rate` (source and target currency, the rate as a decimal string). */
export const ExchangeRate = z.looseObject({
  source_currency: z.string().optional(),
  target_currency: z.string().optional(),
  value: z.string().optional(),
});

/**
 * A capture's `seller_receivable_breakdown` (Payments v2, definition `seller_receivable_breakdown`,
 * https://developer.paypal.com/docs/api/payments/v2/#captures_get): `gross_amount` the buyer paid,
 * `paypal_fee` PayPal kept, `platform_fees` a partner kept, `net_amount` credited, all in the
 * transaction's currency; when the payee holds another currency, `receivable_amount` (the net in
 * that currency), `paypal_fee_in_receivable_currency` (when the fee is charged in it) and
 * `exchange_rate`. "Not available for transactions that are in pending state."
 */
export const SellerReceivableBreakdown = z.looseObject({
  gross_amount: Money,
  paypal_fee: Money.optional(),
  paypal_fee_in_receivable_currency: Money.optional(),
  platform_fees: z.array(z.looseObject({ amount: Money })).optional(),
  net_amount: Money.optional(),
  receivable_amount: Money.optional(),
  exchange_rate: ExchangeRate.optional(),
});
/** A parsed `SellerReceivableBreakdown` (the schema's output type). */
export type SellerReceivableBreakdown = z.output<typeof SellerReceivableBreakdown>;

/**
 * A refund's `seller_payable_breakdown` (Payments v2, definition `seller_payable_breakdown`,
 * https://developer.paypal.com/docs/api/payments/v2/#refunds_get): `gross_amount` refunded to the
 * buyer, `paypal_fee` the part of the capture's fee PayPal gives back, `platform_fees` a partner
 * gives back, `net_amount` debited from the payee (gross minus fees returned), and
 * `total_refunded_amount` over all refunds of the capture.
 */
export const SellerPayableBreakdown = z.looseObject({
  gross_amount: Money,
  paypal_fee: Money.optional(),
  paypal_fee_in_receivable_currency: Money.optional(),
  platform_fees: z.array(z.looseObject({ amount: Money })).optional(),
  net_amount: Money.optional(),
  net_amount_in_receivable_currency: Money.optional(),
  total_refunded_amount: Money.optional(),
});
/** A parsed `SellerPayableBreakdown` (the schema's output type). */
export type SellerPayableBreakdown = z.output<typeof SellerPayableBreakdown>;

/** A HATEOAS link (`rel` `self`, `up`, `refund`, …). */
export const Link = z.looseObject({ href: z.string(), rel: z.string(), method: z.string().optional() });

/** The processor's answer on card captures (kept as the decline's code and message). */
export const ProcessorResponse = z.looseObject({
  response_code: z.string().optional(),
  avs_code: z.string().optional(),
  cvv_code: z.string().optional(),
  payment_advice_code: z.string().optional(),
});

/**
 * What a capture says about its outcome: `id`, `status`, `status_details.reason` and the processor's
 * response. Its `amount` is kept as sent (the object is loose): a status check reads it as `Money`
 * and holds it against the charge (client.ts `checkedCapture`); an answer whose amount is not that
 * shape (the fixture `api.captures.get.completed.json` carries the older `{total, currency}` form)
 * still parses here, and the status check leaves it unknown.
 */
export const CaptureState = z.looseObject({
  id: z.string().min(1),
  status: z.string().min(1),
  status_details: z.looseObject({ reason: z.string().optional() }).optional(),
  processor_response: ProcessorResponse.optional(),
});
/** A parsed `CaptureState` (the schema's output type). */
export type CaptureState = z.output<typeof CaptureState>;

/**
 * A capture (Payments v2 `capture-2`; the resource of `PAYMENT.CAPTURE.*` events and of
 * `purchase_units[].payments.captures[]` in an order). Its `id` is PayPal's transaction id.
 */
export const Capture = CaptureState.extend({
  amount: Money,
  custom_id: z.string().optional(),
  invoice_id: z.string().optional(),
  links: z.array(Link).optional(),
});
/** A parsed `Capture` (the schema's output type). */
export type Capture = z.output<typeof Capture>;

/**
 * A refund (Payments v2 `refund`; the resource of `PAYMENT.CAPTURE.REFUNDED` and
 * `PAYMENT.CAPTURE.REVERSED`). The captured payment it refunds is its `up` link.
 */
export const Refund = z.looseObject({
  id: z.string().min(1),
  status: z.string().min(1),
  status_details: z.looseObject({ reason: z.string().optional() }).optional(),
  amount: Money.optional(),
  custom_id: z.string().optional(),
  invoice_id: z.string().optional(),
  note_to_payer: z.string().optional(),
  links: z.array(Link).optional(),
});
/** A parsed `Refund` (the schema's output type). */
export type Refund = z.output<typeof Refund>;

/** A dispute (Disputes v1; the resource of `CUSTOMER.DISPUTE.*` events). */
export const Dispute = z.looseObject({
  dispute_id: z.string().min(1),
  status: z.string().min(1),
  reason: z.string().optional(),
  dispute_amount: Money,
  dispute_channel: z.string().optional(),
  dispute_outcome: z
    .looseObject({ outcome_code: z.string().optional(), amount_refunded: Money.optional() })
    .optional(),
  disputed_transactions: z
    .array(z.looseObject({ seller_transaction_id: z.string().min(1).optional() }))
    .default([]),
});
/** A parsed `Dispute` (the schema's output type). */
export type Dispute = z.output<typeof Dispute>;

/** An order (Orders v2), as `POST /v2/checkout/orders` answers with `Prefer: return=representation`. */
export const Order = z.looseObject({
  id: z.string().min(1),
  status: z.string().min(1),
  purchase_units: z
    .array(
      z.looseObject({
        payments: z.looseObject({ captures: z.array(CaptureState).optional() }).optional(),
      }),
    )
    .optional(),
});
/** A parsed `Order` (the schema's output type). */
export type Order = z.output<typeof Order>;

/** The refund answer: `{id, status}` at least (the minimal representation adds only links). */
export const RefundAnswer = z.looseObject({
  id: z.string().min(1),
  status: z.string().min(1),
  status_details: z.looseObject({ reason: z.string().optional() }).optional(),
});

/**
 * PayPal's error body (https://developer.paypal.com/api/rest/responses/#link-errorresponses):
 * `{name, message, debug_id, details: [{issue, description, field}]}`.
 */
export const ErrorBody = z.looseObject({
  name: z.string().optional(),
  message: z.string().optional(),
  debug_id: z.string().optional(),
  details: z
    .array(z.looseObject({ issue: z.string().optional(), description: z.string().optional() }))
    .optional(),
});

/** A webhook event envelope: `id` (`WH-…`, the dedupe key), `event_type`, `create_time`, `resource`. */
export const Envelope = z.looseObject({
  id: z.string().min(1),
  event_type: z.string().min(1),
  create_time: z.iso.datetime({ offset: true }),
  resource_type: z.string().optional(),
  resource: z.record(z.string(), z.unknown()),
});
/** A parsed `Envelope` (the schema's output type). */
export type Envelope = z.output<typeof Envelope>;

/**
 * The id at the end of the link with `rel` (e.g. the `up` link of a refund,
 * `https://api.paypal.com/v2/payments/captures/5YH4578629195611S` → `5YH4578629195611S`) when its
 * path is `/v2/payments/<kind>/<id>`; undefined otherwise.
 */
export function linkedId(
  links: readonly z.output<typeof Link>[] | undefined,
  rel: string,
  kind: 'captures' | 'authorizations' | 'refunds',
): string | undefined {
  const href = links?.find((link) => link.rel === rel)?.href;
  if (!href) return undefined;
  try {
    const match = new RegExp(`^/v2/payments/${kind}/([A-Za-z0-9-]+)$`).exec(new URL(href).pathname);
    return match?.[1];
  } catch {
    return undefined;
  }
}
