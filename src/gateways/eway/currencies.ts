import type { IntegerAmounts } from '../../money/gateway-amount.ts';

/**
 * eWAY's currency rules (Rapid API v3, https://eway.io/api-v3/, "Payment" fields): `TotalAmount` is "the amount of
 * the transaction in the lowest denomination for the currency (e.g. a $27.00 transaction would have a
 * TotalAmount value of '2700')", which is the ISO 4217 minor unit for every currency (yen for JPY);
 * `CurrencyCode` is the ISO 4217 code, the merchant's default when absent. Which currencies an
 * account takes depends on its merchant facility ("over 40 major currencies" with a multi-currency
 * facility, https://www.eway.co.uk/contact/faqs.aspx); eWAY refuses the others itself with V6015
 * `Invalid Payment CurrencyCode` before any money moves, so billhook refuses none.
 */
export const EWAY_CURRENCIES: IntegerAmounts = {
  gateway: 'eWAY',
  format: 'integer',
  rules: {},
  source: 'https://eway.io/api-v3/',
};
