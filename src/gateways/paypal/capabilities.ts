import type { GatewayCapabilities } from '../types.ts';

/**
 * What PayPal can do for billhook (see `GatewayCapabilities`):
 * - partialCapture: no. billhook's orders are created with `intent: CAPTURE`, which captures the
 *   order's whole amount (https://developer.paypal.com/docs/api/orders/v2/#orders_create).
 * - refundRepeatWindowMs: 44 days. The refund id is sent as `PayPal-Request-Id`; a repeat returns the
 *   first result (https://developer.paypal.com/api/rest/reference/idempotency/) while PayPal keeps
 *   the key, 45 days for a capture's refund ("The server stores keys for 45 days",
 *   https://developer.paypal.com/docs/api/payments/v2/#captures_refund): a day's margin.
 * - void: `none`. PayPal voids only authorizations
 *   (https://developer.paypal.com/docs/api/payments/v2/#authorizations_void); billhook's captures
 *   are refunded.
 * - statusCheck: `repeat`. Without a capture id, the same `POST /v2/checkout/orders` is sent with the
 *   same `PayPal-Request-Id`, answered with the original order while PayPal keeps the key
 *   (https://developer.paypal.com/docs/api/orders/v2/#orders_create).
 * - lostDisputePaidAsRefund: yes. An accepted claim closes the dispute with `RESOLVED_BUYER_FAVOUR` /
 *   `ACCEPTED` and `amount_refunded`, and refunds the capture (`PAYMENT.CAPTURE.REFUNDED`,
 *   https://developer.paypal.com/docs/api/customer-disputes/v1/#disputes_accept-claim).
 * - chargeEventsReadBack: no. An event carries the capture as it was when the event was made.
 * - refusalsNotRetried: none known; its declines are retried by dunning.
 */
export const PAYPAL_CAPABILITIES: GatewayCapabilities = {
  partialCapture: false,
  refundRepeatWindowMs: 44 * 24 * 60 * 60 * 1000,
  void: 'none',
  statusCheck: 'repeat',
  lostDisputePaidAsRefund: true,
  chargeEventsReadBack: false,
  refusalsNotRetried: {},
};
