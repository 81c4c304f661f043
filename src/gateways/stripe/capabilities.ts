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
 */
export const STRIPE_CAPABILITIES: GatewayCapabilities = {
  partialCapture: false,
  refundRepeatWindowMs: 23 * 60 * 60 * 1000,
  void: 'uncaptured',
  statusCheck: 'query',
  lostDisputePaidAsRefund: false,
  chargeEventsReadBack: false,
};
