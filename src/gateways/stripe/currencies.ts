import type { CurrencyRule, IntegerAmounts } from '../../money/gateway-amount.ts';

/** https://docs.stripe.com/currencies: zero-decimal currencies, special cases, three-decimal currencies. */
const SOURCE = 'https://docs.stripe.com/currencies';

/**
 * Stripe's zero-decimal currencies (https://docs.stripe.com/currencies#zero-decimal): amounts are
 * whole units. All are ISO 4217 exponent 0 except MGA (ISO 2), so MGA is sent in whole ariary.
 */
const ZERO_DECIMAL = [
  'BIF',
  'CLP',
  'DJF',
  'GNF',
  'JPY',
  'KMF',
  'KRW',
  'MGA',
  'PYG',
  'RWF',
  'VND',
  'VUV',
  'XAF',
  'XOF',
  'XPF',
];

/**
 * Stripe's three-decimal currencies (https://docs.stripe.com/currencies#three-decimal): amounts in
 * thousandths, and "these API calls require the least-significant (last) digit to be 0".
 */
const THREE_DECIMAL = ['BHD', 'JOD', 'KWD', 'OMR', 'TND'];

/**
 * ISK and UGX (https://docs.stripe.com/currencies#special-cases): zero-decimal in ISO 4217, but the
 * Stripe API keeps them two-decimal for backwards compatibility, with decimals always 00 (to charge
 * 5 ISK, send `500`; an ISK amount must be evenly divisible by 100, Stripe's error
 * `invalid_charge_amount_no_decimal_compatible`, https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds).
 */
const TWO_DECIMAL_WHOLE = ['ISK', 'UGX'];

const rules: Record<string, CurrencyRule> = {};
for (const code of ZERO_DECIMAL)
  rules[code] = {
    exponent: 0,
    rule: `${code} is a zero-decimal currency at Stripe: amounts are whole units`,
  };
for (const code of TWO_DECIMAL_WHOLE) {
  rules[code] = {
    exponent: 2,
    rule: `Stripe reads ${code} as two-decimal whose decimals are always 00 (5 ${code} is 500)`,
  };
}
for (const code of THREE_DECIMAL) {
  rules[code] = {
    exponent: 3,
    granularity: 10n,
    rule: `Stripe requires the last digit of a ${code} amount to be 0 (a multiple of 10)`,
  };
}
// HUF and TWD are two-decimal in the Stripe API (zero-decimal only for payouts), as in ISO 4217: no entry.

/**
 * Stripe's largest amount (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts):
 * "The amount value supports up to twelve digits for IDR (for example, a value of 999999999999 for a
 * charge of 9,999,999,999.99 IDR), and up to eight digits for all other currencies (for example, a
 * value of 99999999 for a charge of 999,999.99 USD)"; the API reference says the same of a
 * PaymentIntent's `amount`. The digits are those of the value sent, in Stripe's unit: 999,999 ISK
 * (`99999900`) is the most ISK, 99,999,999 MGA the most MGA.
 */
const MAX_AMOUNT = {
  units: 99_999_999n,
  perCurrency: { IDR: 999_999_999_999n },
  rule: 'Stripe takes amounts of up to eight digits (twelve for IDR)',
};

/**
 * Stripe's currency rules (https://docs.stripe.com/currencies). Amounts are JSON integers in the
 * currency's unit as Stripe reads it: ISO 4217 minor units for two-decimal currencies (and HUF, TWD,
 * two-decimal in the API), whole units for the zero-decimal list (MGA too: 1,000 MGA is `1000`), two
 * decimals always 00 for ISK and UGX (500 ISK is `50000`), thousandths ending in 0 for BHD, JOD, KWD,
 * OMR and TND, and at most eight digits (twelve for IDR: `MAX_AMOUNT`), so 1,000,000.00 USD is
 * refused before any call. The same rules read webhook amounts and API answers back (without the
 * bound: what Stripe reports is what moved). Currencies of more than two decimals outside that list
 * (IQD, LYD, CLF, UYW) are not Stripe presentment currencies: refused.
 */
export const STRIPE_CURRENCIES: IntegerAmounts = {
  gateway: 'Stripe',
  format: 'integer',
  refused: Object.fromEntries(
    ['IQD', 'LYD', 'CLF', 'UYW'].map((code) => [
      code,
      'not a Stripe presentment currency; Stripe documents no amount format for it',
    ]),
  ),
  rules,
  max: MAX_AMOUNT,
  source: SOURCE,
};
