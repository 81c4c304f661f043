import type { GatewayCapabilities } from '../types.ts';

/**
 * What Authorize.Net can do for billhook (see `GatewayCapabilities`):
 * - partialCapture: yes. A captured or settled transaction's `settleAmount` can be less than its
 *   `authAmount` (a partial capture or settlement), and the settled amount is what moved
 *   (`transactionDetailsType` in AnetApiSchema.xsd,
 *   https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-transaction-details).
 * - refundRepeatWindowMs: null. `createTransactionRequest` carries no idempotency key
 *   (https://developer.authorize.net/api/reference/index.html#payment-transactions-refund-a-transaction):
 *   an unknown refund goes to a person.
 * - void: `unsettled`. `voidTransaction` cancels an authorized or captured transaction that has not
 *   settled; a settled one must be refunded
 *   (https://developer.authorize.net/api/reference/index.html#payment-transactions-void-a-transaction).
 * - statusCheck: `query`. The customer profile's and the account's unsettled transaction lists are
 *   searched by our invoice number
 *   (https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-unsettled-transaction-list).
 * - lostDisputePaidAsRefund: no.
 * - chargeEventsReadBack: yes. A notification only names a transaction; its state is read with
 *   getTransactionDetails when the delivery is processed (webhook.ts `normalize`).
 * - refusalsNotRetried: reason 39, "The supplied currency code is either invalid, not supported, not
 *   allowed for this merchant or doesn't have an exchange rate." (response code 3,
 *   https://developer.authorize.net/api/reference/responseCodes.html): a charge in a currency the
 *   account does not process, sent because getMerchantDetails could not be read
 *   (gateways/currencies.ts `assertAccountCurrency`), is refused again however often it is sent.
 */
export const AUTHORIZENET_CAPABILITIES: GatewayCapabilities = {
  partialCapture: true,
  refundRepeatWindowMs: null,
  void: 'unsettled',
  statusCheck: 'query',
  lostDisputePaidAsRefund: false,
  chargeEventsReadBack: true,
  refusalsNotRetried: {
    '39': 'Authorize.Net refuses a currency the account does not process (reason 39, https://developer.authorize.net/api/reference/responseCodes.html)',
  },
};
