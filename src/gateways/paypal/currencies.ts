import type { DecimalAmounts } from '../../money/gateway-amount.ts';

/**
 * PayPal's currency rules (https://developer.paypal.com/docs/api/reference/currency-codes/): the
 * REST APIs take these 25 currencies only; HUF, JPY and TWD "do not support decimals. If you pass a
 * decimal amount, an error occurs" (PayPal's `DECIMALS_NOT_SUPPORTED`), so HUF 1000 is `"1000"` and
 * HUF 1000.50 cannot be sent. Amounts are decimal strings with the currency's decimals (`"2.51"`).
 */
export const PAYPAL_CURRENCIES: DecimalAmounts = {
  gateway: 'PayPal',
  format: 'decimal',
  supported: new Set([
    'AUD',
    'BRL',
    'CAD',
    'CNY',
    'CZK',
    'DKK',
    'EUR',
    'HKD',
    'HUF',
    'ILS',
    'JPY',
    'MYR',
    'MXN',
    'TWD',
    'NZD',
    'NOK',
    'PHP',
    'PLN',
    'GBP',
    'RUB',
    'SGD',
    'SEK',
    'CHF',
    'THB',
    'USD',
  ]),
  rules: {
    HUF: { exponent: 0, rule: 'PayPal takes no decimals in HUF' },
    JPY: { exponent: 0, rule: 'PayPal takes no decimals in JPY' },
    TWD: { exponent: 0, rule: 'PayPal takes no decimals in TWD' },
  },
  source: 'https://developer.paypal.com/docs/api/reference/currency-codes/',
};
