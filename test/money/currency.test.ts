import { describe, expect, it } from 'vitest';
import { exponentOf, isCurrency } from '../../src/money/currency.ts';

describe('exponentOf', () => {
  it.each([
    ['JPY', 0],
    ['KRW', 0],
    ['USD', 2],
    ['EUR', 2],
    ['GBP', 2],
    ['KWD', 3],
    ['BHD', 3],
    ['TND', 3],
  ])('%s has %i decimal digits', (code, exponent) => {
    expect(exponentOf(code)).toBe(exponent);
  });

  // CLF, UYW and UYI are ISO 4217 funds codes that the runtime's ICU list leaves out.
  it('CLF has 4 decimal digits', () => {
    expect(exponentOf('CLF')).toBe(4);
  });

  it.each(['usd', 'XXXX', 'ABC', '', 'US'])('throws RangeError for %j', (code) => {
    expect(() => exponentOf(code)).toThrow(RangeError);
    expect(() => exponentOf(code)).toThrow(`unknown ISO 4217 currency: ${code}`);
  });
});

describe('isCurrency', () => {
  it.each(['USD', 'EUR', 'JPY', 'GBP', 'KWD', 'BHD'])('accepts %s', (code) => {
    expect(isCurrency(code)).toBe(true);
  });

  it.each(['usd', 'Usd', 'XXXX', 'ABC', 'US', '', ' USD', 'USD '])('refuses %j', (code) => {
    expect(isCurrency(code)).toBe(false);
  });
});
