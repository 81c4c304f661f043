import { describe, expect, it } from 'vitest';
import { EWAY_CURRENCIES } from '../../../src/gateways/eway/currencies.ts';
import { fromGateway, toGateway } from '../../../src/money/gateway-amount.ts';

// EWAY_CURRENCIES against its source: `TotalAmount` is "the amount of the transaction in the lowest
// denomination for the currency (e.g. a $27.00 transaction would have a TotalAmount value of '2700')"
// (https://eway.io/api-v3/), i.e. the ISO 4217 minor unit of any currency.
describe('eWAY currency rules', () => {
  it.each([
    ['AUD', 2700n, 2700],
    ['NZD', 2700n, 2700],
    ['JPY', 500n, 500],
    ['KWD', 1234n, 1234],
  ])('%s %s minor units is TotalAmount %s, and back', (currency, amount, wire) => {
    expect(toGateway(EWAY_CURRENCIES, amount, currency)).toBe(wire);
    expect(fromGateway(EWAY_CURRENCIES, wire, currency)).toBe(amount);
  });

  it('refuses a TotalAmount that is not a non-negative integer', () => {
    expect(() => fromGateway(EWAY_CURRENCIES, 27.5, 'AUD')).toThrow(/not a non-negative integer/);
  });
});
