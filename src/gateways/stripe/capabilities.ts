import type { GatewayCapabilities } from '../types.ts';

/**
 * What Stripe can do for billhook (see `GatewayCapabilities`):
 * - partialCapture: no. billhook's PaymentIntents are confirmed with the default automatic capture
 *   (https://docs.stripe.com/api/payment_intents/create#create_payment_intent-capture_method), so a
 *   succeeded one moved its whole amount.
 * - refundRepeatWindowMs: 23 hours. The refund id is sent as `Idempotency-Key`; a repeat returns the
 *   first result while Stripe keeps the key, and keys may be removed once they are 24 hours old
 *   (https://docs.stripe.com/api/idempotent_requests): an hour's margin, as PayPal's charge repeat has.
 * - void: `uncaptured`. `POST /v1/payment_intents/{id}/cancel` cancels a PaymentIntent in
 *   `requires_payment_method`, `requires_capture`, `requires_confirmation`, `requires_action` or
 *   (sometimes) `processing`; a succeeded one cannot be canceled, only refunded
 *   (https://docs.stripe.com/api/payment_intents/cancel).
 * - statusCheck: `query`. A PaymentIntent is found by our metadata reference with the search API
 *   (https://docs.stripe.com/search#query-fields-for-payment-intents), whose index can trail writes
 *   by up to an hour: an empty search is final only for an attempt older than `SEARCH_LAG_MS` (client.ts).
 * - lostDisputePaidAsRefund: no. A lost dispute's funds stay withdrawn; no refund is made
 *   (https://docs.stripe.com/disputes/how-disputes-work).
 * - chargeEventsReadBack: no. An event carries the PaymentIntent as it was when the event was made
 *   (https://docs.stripe.com/webhooks, "Event ordering": Stripe does not guarantee delivery in order).
 * - refusalsNotRetried: `amount_too_small`, `amount_too_large` (https://docs.stripe.com/error-codes:
 *   "Specified amount is less than the minimum amount allowed. Use a higher amount and try again." /
 *   "greater than the maximum amount allowed. Use a lower amount and try again."), HTTP 400
 *   `invalid_request_error` on the PaymentIntent create (client.ts `outcomeOfError` keeps the code):
 *   the same amount is refused again, so dunning does not send it again.
 */
export const STRIPE_CAPABILITIES: GatewayCapabilities = {
  partialCapture: false,
  refundRepeatWindowMs: 23 * 60 * 60 * 1000,
  void: 'uncaptured',
  statusCheck: 'query',
  lostDisputePaidAsRefund: false,
  chargeEventsReadBack: false,
  refusalsNotRetried: {
    amount_too_small:
      'Stripe refuses an amount below its minimum charge amount (https://docs.stripe.com/error-codes#amount-too-small, https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts)',
    amount_too_large:
      'Stripe refuses an amount greater than the maximum it allows (https://docs.stripe.com/error-codes#amount-too-large)',
  },
};
