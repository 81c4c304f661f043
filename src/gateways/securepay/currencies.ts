import type { IntegerAmounts } from '../../money/gateway-amount.ts';

/**
 * SecurePay's currency rules (REST API v2, https://auspost.com.au/payments/docs/securepay/): `amount`
 * is an integer "in cents" and `currency` an ISO 4217 code, AUD when absent (test/fixtures/securepay
 * FACTS.md, from several public clients; ActiveMerchant's SecurePayAuGateway: `money_format = :cents`,
 * `default_currency = 'AUD'`). "Cents" is defined only for two-decimal currencies: how SecurePay would
 * read a JPY or KWD amount is documented nowhere, so those currencies are refused rather than risk a
 * charge a hundred times too large or too small.
 */
export const SECUREPAY_CURRENCIES: IntegerAmounts = {
  gateway: 'SecurePay',
  format: 'integer',
  isoExponents: [2],
  rules: {},
  source: 'https://auspost.com.au/payments/docs/securepay/',
};
