import type { GatewayCapabilities } from '../types.ts';

/**
 * What eWAY can do for billhook (see `GatewayCapabilities`):
 * - partialCapture: no. billhook's token payments (`Method: TokenPayment`) are captured whole
 *   (https://eway.io/nz/developers/api/token-payments).
 * - refundRepeatWindowMs: null. A refund (`POST /Transaction/{id}/Refund`) carries no idempotency key
 *   (https://eway.io/api-v3/#refunds): an unknown refund goes to a person.
 * - void: `none`. `CancelAuthorisation` cancels only a pre-authorisation not yet captured
 *   (https://eway.io/api-v3/, "Pre-Auth"); billhook's payments are captured, and refunded.
 * - statusCheck: `query`. Transaction Query by our reference, `GET /Transaction/InvoiceRef/{ref}`
 *   (https://eway.io/api-v3/#transaction-query).
 * - lostDisputePaidAsRefund: no.
 * - chargeEventsReadBack: yes. A hint only names a transaction or access code; its state is read with
 *   Transaction Query when the delivery is processed (webhook.ts `normalize`).
 * - refusalsNotRetried: none known; its declines are retried by dunning.
 */
export const EWAY_CAPABILITIES: GatewayCapabilities = {
  partialCapture: false,
  refundRepeatWindowMs: null,
  void: 'none',
  statusCheck: 'query',
  lostDisputePaidAsRefund: false,
  chargeEventsReadBack: true,
  refusalsNotRetried: {},
};
