import type { DecimalAmounts } from '../../money/gateway-amount.ts';

/**
 * Authorize.Net's currency rules. `amount` is a decimal string, "up to 15 digits with a decimal
 * point (no dollar symbol), for example 8.95" (API reference, createTransactionRequest
 * `transactionRequest.amount`, https://developer.authorize.net/api/reference/index.html): the format
 * is documented with two decimals only. An account processes the currency of its merchant account
 * (getMerchantDetails `currencies`; Authorize.Net serves merchants in the United States, Canada, the
 * United Kingdom, Europe and Australia: AUD, CAD, EUR, GBP, NZD, USD per Yuno's connector,
 * https://docs.y.uno/docs/authorizenet), all two-decimal in ISO 4217, which is how Authorize.Net reads
 * them; it refuses a currency the account does not process itself, before any money moves. A currency
 * of another exponent (JPY, KWD…) has no documented Authorize.Net format and is refused. "Up to 15
 * digits" bounds the amount: 9999999999999.99 is the largest (`max`); billhook's own bound (10^15
 * minor units) would allow 10000000000000.00, sixteen digits.
 */
export const AUTHORIZENET_CURRENCIES: DecimalAmounts = {
  gateway: 'Authorize.Net',
  format: 'decimal',
  isoExponents: [2],
  rules: {},
  max: { units: 999_999_999_999_999n, rule: 'Authorize.Net takes amounts of up to 15 digits' },
  source: 'https://developer.authorize.net/api/reference/index.html',
};
