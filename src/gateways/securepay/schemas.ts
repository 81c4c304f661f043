import { z } from 'zod';

/**
 * Zod schemas of what SecurePay (Australia Post) REST API v2 sends us. No verbatim SecurePay
 * response body is public; the field lists come from several independent open-source clients
 * (shared/fixtures/securepay/FACTS.md), the SDK `fgct/securepay-api` (its `RefundObject`,
 * `CancelPreAuthObject`, `PaymentObject` models) and two sandbox answers logged in comments of
 * brightlabscomau/craftcommerce-securepay (`src/responses/PaymentResponse.php`,
 * `src/responses/RefundResponse.php`). Only the fields billhook reads are declared; others are kept
 * in the raw answer and ignored.
 */

/**
 * An amount as SecurePay writes it: a non-negative integer of cents (a float is refused), read into
 * billhook minor units by `fromGateway(SECUREPAY_CURRENCIES, …)` where its currency is known.
 */
const Cents = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** A field SecurePay may send as a string or a number (the sandbox sends `bankTransactionId` as text). */
const Text = z.union([z.string(), z.number().transform(String)]);

/**
 * The answer to a payment: `POST /v2/payments`, `POST /v2/customers/{customerCode}/payments`, and
 * (same fields) a refund `POST /v2/orders/{orderId}/refunds`.
 * - `status`: `paid` on success, anything else is not paid (e.g. `failed`); see status.ts;
 * - `amount`: integer cents (see currencies.ts); `currency`: ISO 4217 (AUD when not sent);
 * - `orderId`: the merchant's order id we sent (our `txn_…` reference); on a refund, the order refunded;
 * - `bankTransactionId`, `gatewayResponseCode`, `gatewayResponseMessage`: the bank's reference and its
 *   AS2805 response code/message (`00` / `Transaction successful` on approval);
 * - `errorCode`: set by SecurePay on some failed payments.
 */
export const PaymentAnswer = z.object({
  status: z.string().min(1),
  orderId: Text.optional(),
  amount: Cents.optional(),
  currency: z.string().optional(),
  createdAt: z.string().optional(),
  bankTransactionId: Text.nullish(),
  gatewayResponseCode: Text.nullish(),
  gatewayResponseMessage: z.string().nullish(),
  errorCode: Text.nullish(),
  customerCode: z.string().nullish(),
  merchantCode: z.string().nullish(),
});
export type PaymentAnswer = z.output<typeof PaymentAnswer>;

/**
 * SecurePay's error answer (HTTP 400, 500): `{"errors": [{"id", "code", "detail", "source":
 * {"pointer"}}]}`. One code seen in public code: `INVALID_ORDER_ID` (FACTS.md).
 */
export const ErrorAnswer = z.object({
  errors: z
    .array(
      z.object({
        id: z.string().nullish(),
        code: z.string().min(1),
        detail: z.string().nullish(),
        source: z.object({ pointer: z.string().nullish() }).nullish(),
      }),
    )
    .min(1),
});
export type ErrorAnswer = z.output<typeof ErrorAnswer>;

/**
 * What `/webhooks/securepay` accepts: any JSON object naming an `orderId` (SecurePay documents no
 * card-payment webhook, so this is an untrusted hint, never a fact). `status` is read only to name
 * the inbox event type.
 */
export const Hint = z.looseObject({
  orderId: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[\w.:-]+$/, 'orderId may hold letters, digits and _ . : - only'),
  status: z.string().optional(),
});
export type Hint = z.output<typeof Hint>;
