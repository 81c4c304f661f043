/** What a SecurePay payment or refund answer says happened. */
export type SecurepayVerdict = 'succeeded' | 'declined' | 'pending';

/**
 * AS2805 response codes that mean "approved" (00 approved, 08 honour with identification, 11
 * approved VIP, 16 approved, update track 3). A non-`paid` answer carrying one of them contradicts
 * itself, so it is not read as a failure.
 */
const APPROVAL_CODES: ReadonlySet<string> = new Set(['00', '08', '11', '16']);

/**
 * THE table mapping SecurePay's `status` (payments and refunds alike) to an outcome. Only an
 * explicit success is success, only an explicit failure is failure, the rest is pending:
 *
 * | `status`       | `gatewayResponseCode`              | verdict   |
 * |----------------|------------------------------------|-----------|
 * | `paid`         | any                                | succeeded |
 * | `failed`       | any                                | declined  |
 * | anything else  | a bank code that is not approval   | declined  |
 * | anything else  | none, or an approval code (00 …)   | pending   |
 *
 * Sources: FACTS.md ("status `paid` on success; anything else is not paid, e.g. `failed`"; "a
 * decline is HTTP 201/200 with `status` ≠ `paid` and the bank's `gatewayResponseCode` /
 * `gatewayResponseMessage`"); the sandbox answers logged in brightlabscomau/craftcommerce-securepay
 * (`status: "paid"`, `gatewayResponseCode: "00"` for both a payment and a refund).
 * Statuses are compared case-insensitively.
 */
export function verdictOf(status: string, gatewayResponseCode: string | null | undefined): SecurepayVerdict {
  const normalized = status.trim().toLowerCase();
  if (normalized === 'paid') return 'succeeded';
  if (normalized === 'failed') return 'declined';
  const code = gatewayResponseCode?.trim();
  if (code && !APPROVAL_CODES.has(code)) return 'declined';
  return 'pending';
}
