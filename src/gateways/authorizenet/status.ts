/**
 * The one table mapping Authorize.Net's answers to billhook outcomes. Only an explicit success is
 * success, only an explicit failure is failure, only a documented in-flight status (held for
 * review, awaiting capture or settlement) is pending; a status this table does not know is
 * `unknown` (PRODUCT.md §11), never a decline.
 */

/** What a transaction's state means for the money. */
export type TransactionState = 'succeeded' | 'failed' | 'pending' | 'canceled' | 'unknown';

/**
 * `transactionStatus` of getTransactionDetails / transaction lists → state. Values from
 * `transactionStatusEnum` in AnetApiSchema.xsd and
 * https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-transaction-details:
 * - captured money: `capturedPendingSettlement` (captured, settles in tonight's batch),
 *   `settledSuccessfully`; for a refund transaction `refundPendingSettlement` (approved, settles
 *   tonight) and `refundSettledSuccessfully`;
 * - explicit failures: `declined`, `generalError`, `communicationError` (processor unreachable: no
 *   authorization), `failedReview` (declined after fraud review), `expired` (an authorization or
 *   held transaction never captured), `settlementError`;
 * - `voided`: cancelled before settlement, no money moved;
 * - pending: `FDSPendingReview`, `FDSAuthorizedPendingReview`, `underReview` (held by the Fraud
 *   Detection Suite), `approvedReview` (released, not yet captured), `authorizedPendingCapture`,
 *   `authorizedPendingRelease`, `pendingSettlement`, `pendingFinalSettlement`, `updatingSettlement`,
 *   `couldNotVoid`;
 * - anything else (chargeback and return statuses, which this adapter does not reconcile, and any
 *   status added later): unknown.
 */
const TRANSACTION_STATUS: ReadonlyMap<string, TransactionState> = new Map([
  ['capturedPendingSettlement', 'succeeded'],
  ['settledSuccessfully', 'succeeded'],
  ['refundPendingSettlement', 'succeeded'],
  ['refundSettledSuccessfully', 'succeeded'],
  ['declined', 'failed'],
  ['generalError', 'failed'],
  ['communicationError', 'failed'],
  ['failedReview', 'failed'],
  ['expired', 'failed'],
  ['settlementError', 'failed'],
  ['voided', 'canceled'],
  ['FDSPendingReview', 'pending'],
  ['FDSAuthorizedPendingReview', 'pending'],
  ['underReview', 'pending'],
  ['approvedReview', 'pending'],
  ['authorizedPendingCapture', 'pending'],
  ['authorizedPendingRelease', 'pending'],
  ['pendingSettlement', 'pending'],
  ['pendingFinalSettlement', 'pending'],
  ['updatingSettlement', 'pending'],
  ['couldNotVoid', 'pending'],
]);

/** The state of a `transactionStatus`; a status the table does not list is unknown (never success, never failure). */
export function stateOfStatus(transactionStatus: string): TransactionState {
  return TRANSACTION_STATUS.get(transactionStatus) ?? 'unknown';
}

/** What `transactionResponse.responseCode` of createTransaction says. */
export type ResponseCodeMeaning = 'approved' | 'declined' | 'error' | 'held' | 'unknown';

/**
 * `transactionResponse.responseCode` → meaning
 * (https://developer.authorize.net/api/reference/index.html#payment-transactions-charge-a-customer-profile,
 * "responseCode": 1 Approved, 2 Declined, 3 Error, 4 Held for Review). Any other value is unknown.
 */
export function meaningOfResponseCode(responseCode: string): ResponseCodeMeaning {
  switch (responseCode) {
    case '1':
      return 'approved';
    case '2':
      return 'declined';
    case '3':
      return 'error';
    case '4':
      return 'held';
    default:
      return 'unknown';
  }
}

/**
 * Response reason codes (https://developer.authorize.net/api/reference/responseCodes.html) the
 * client acts on: 11 duplicate transaction within the duplicate window; 16 the referenced
 * transaction cannot be found (void); 54 the referenced transaction does not meet the criteria for
 * issuing a credit (a refund of a transaction that has not settled: void it instead, as Zuora's
 * Authorize.Net guide also advises: https://docs.zuora.com/en/zuora-payments/manage-payment-gateway-integrations-and-payment-methods/set-up-payment-gateway-integrations/authorize.net-gateway/troubleshoot-authorize.net-gateway-errors/response-codes-for-troubleshooting-refunds).
 */
export const REASON = { duplicate: '11', notFound: '16', unsettled: '54' } as const;

/** API message code for "The record cannot be found." (getTransactionDetails of an unknown transId). */
export const RECORD_NOT_FOUND = 'E00040';

/** API message code for "An error occurred during processing. Please try again." (unexpected system error). */
export const SYSTEM_ERROR = 'E00001';
