import { describe, expect, it } from 'vitest';
import { MAX_MINOR_UNITS, minorUnitsFromJson, minorUnitsToJson } from '../../src/money/amount.ts';
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

describe('minorUnitsFromJson', () => {
  it.each([
    [0, 0n],
    [4620, 4620n],
    [Number.MAX_SAFE_INTEGER, 9_007_199_254_740_991n],
  ])('accepts %j as %s', (value, expected) => {
    const amount = minorUnitsFromJson(value);
    expect(typeof amount).toBe('bigint');
    expect(amount).toBe(expected);
  });

  it.each([46.2, -1, '4620', Number.NaN, 2 ** 53, Number.POSITIVE_INFINITY, null, undefined])(
    'refuses %s with RangeError',
    (value) => {
      expect(() => minorUnitsFromJson(value)).toThrow(RangeError);
      expect(() => minorUnitsFromJson(value)).toThrow(
        /expected a non-negative integer amount in minor units/,
      );
    },
  );
});

describe('minorUnitsToJson', () => {
  it.each([0n, 1n, 4620n, MAX_MINOR_UNITS, BigInt(Number.MAX_SAFE_INTEGER)])('round-trips %s', (amount) => {
    const json = minorUnitsToJson(amount);
    expect(typeof json).toBe('number');
    expect(Number.isSafeInteger(json)).toBe(true);
    expect(minorUnitsFromJson(JSON.parse(JSON.stringify(json)))).toBe(amount);
  });

  it.each([-1n, BigInt(Number.MAX_SAFE_INTEGER) + 1n, 2n ** 63n])('refuses %s with RangeError', (amount) => {
    expect(() => minorUnitsToJson(amount)).toThrow(RangeError);
    expect(() => minorUnitsToJson(amount)).toThrow(`amount out of range: ${amount}`);
  });
});
