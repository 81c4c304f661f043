import { describe, expect, it } from 'vitest';
import { SECUREPAY_CURRENCIES } from '../../../src/gateways/securepay/currencies.ts';
import { AmountNotRepresentable, fromGateway, toGateway } from '../../../src/money/gateway-amount.ts';

// SECUREPAY_CURRENCIES against its sources: `amount` is an integer "in cents" and `currency` AUD by
// default (test/fixtures/securepay/FACTS.md; https://auspost.com.au/payments/docs/securepay/).
describe('SecurePay currency rules', () => {
  it.each(['AUD', 'NZD', 'USD'])('sends %s in cents', (currency) => {
    expect(toGateway(SECUREPAY_CURRENCIES, 10_000n, currency)).toBe(10_000);
    expect(fromGateway(SECUREPAY_CURRENCIES, 10_000, currency)).toBe(10_000n);
  });

  it.each(['JPY', 'KWD'])(
    'refuses %s: "cents" is undocumented for a currency that is not two-decimal',
    (currency) => {
      expect(() => toGateway(SECUREPAY_CURRENCIES, 5000n, currency)).toThrow(AmountNotRepresentable);
      expect(() => toGateway(SECUREPAY_CURRENCIES, 5000n, currency)).toThrow(
        `SecurePay does not take ${currency}`,
      );
    },
  );
});
