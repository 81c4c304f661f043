import type { GatewayCapabilities } from '../types.ts';
import { SAFE_REPEAT_WINDOW_MS } from './conventions.ts';

/**
 * What SecurePay can do for billhook (see `GatewayCapabilities`):
 * - partialCapture: no. billhook's card payments (`POST /v2/payments`) are captured whole.
 * - refundRepeatWindowMs: 1 hour (`SAFE_REPEAT_WINDOW_MS`, conventions.ts). The refund id is sent as
 *   `Idempotency-Key` on the same `orderId`; PRODUCT.md §2 and FACTS.md resolve a lost answer by
 *   repeating the call with both. How SecurePay answers the repeat is undocumented, so a refusal of
 *   the repeat stays unknown and ends as an exception (`RefundRequest.repeat`); how long it keeps the
 *   key is undocumented too, so a refund is repeated only within the hour its charges are.
 * - void: `none`. SecurePay cancels only pre-authorisations (`POST /v2/payments/preauths/{orderId}/cancel`,
 *   SDK `CancelPreAuthRequest`); billhook's payments are captured, and refunded.
 * - statusCheck: `repeat`. SecurePay has no status query for card payments (FACTS.md): the charge is
 *   repeated with the same `Idempotency-Key` and `orderId`, only within `SAFE_REPEAT_WINDOW_MS` (1 hour,
 *   conventions.ts) of the attempt, since how long SecurePay keeps the key is undocumented.
 * - lostDisputePaidAsRefund: no.
 * - chargeEventsReadBack: no. Its hints give no charge events at all (webhook.ts `normalize`).
 * - refusalsNotRetried: none known; its declines are retried by dunning.
 */
export const SECUREPAY_CAPABILITIES: GatewayCapabilities = {
  partialCapture: false,
  refundRepeatWindowMs: SAFE_REPEAT_WINDOW_MS,
  void: 'none',
  statusCheck: 'repeat',
  lostDisputePaidAsRefund: false,
  chargeEventsReadBack: false,
  refusalsNotRetried: {},
};
