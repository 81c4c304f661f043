/** What a SecurePay payment or refund answer says happened. */
export type SecurepayVerdict = 'succeeded' | 'declined' | 'unknown';

/**
 * THE table mapping SecurePay's `status` (payments and refunds alike) to an outcome. SecurePay
 * documents three values (API reference, card payment response `status`, as copied into the
 * `securepay` npm package, `src/interfaces/card-payment/card-paymnet.interface.ts`,
 * https://app.unpkg.com/securepay@0.0.5/files/dist/interfaces/card-payment/card-paymnet.interface.d.ts):
 * "Valid values are paid failed unknown. If the payment was processed and succeeded the status …
 * is set to paid. If payment was processed but was declined the status is set to failed and
 * errorCode … is populated … If payment was processed with unexpected status from gateway the
 * status is set to unknown and errorCode field is populated".
 *
 * | `status`        | verdict   | why                                                          |
 * |-----------------|-----------|--------------------------------------------------------------|
 * | `paid`          | succeeded | processed and approved                                       |
 * | `failed`        | declined  | processed and declined (bank code in `gatewayResponseCode`)  |
 * | `unknown`       | unknown   | SecurePay itself does not know: money may have moved         |
 * | anything else   | unknown   | a status this table does not know is never read as a decline |
 *
 * A bank code on an `unknown` (or unlisted) status does not make it a decline: SecurePay says the
 * gateway's status was unexpected, so the invoice stays locked and the poller repeats the payment
 * (PRODUCT.md §11). Statuses are compared case-insensitively.
 */
export function verdictOf(status: string): SecurepayVerdict {
  const normalized = status.trim().toLowerCase();
  if (normalized === 'paid') return 'succeeded';
  if (normalized === 'failed') return 'declined';
  return 'unknown';
}
