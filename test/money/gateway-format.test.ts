import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_MINOR_UNITS } from '../../src/money/amount.ts';
import { fromDecimalString, toDecimalString } from '../../src/money/gateway-format.ts';

describe('decimal strings for PayPal and Authorize.Net', () => {
  it.each([
    [251n, 'USD', '2.51'],
    [5n, 'USD', '0.05'],
    [0n, 'EUR', '0.00'],
    [700n, 'EUR', '7.00'],
    [500n, 'JPY', '500'],
    [1234n, 'KWD', '1.234'],
    [1n, 'BHD', '0.001'],
    [12345n, 'CLF', '1.2345'],
  ])('%s minor units of %s is "%s"', (amount, currency, text) => {
    expect(toDecimalString(amount, currency)).toBe(text);
    expect(fromDecimalString(text, currency)).toBe(amount);
  });

  it('reads amounts with fewer decimals than the exponent, and trailing zeros', () => {
    expect(fromDecimalString('7', 'EUR')).toBe(700n);
    expect(fromDecimalString('1.5', 'USD')).toBe(150n);
    expect(fromDecimalString('2.510', 'USD')).toBe(251n);
  });

  it.each([
    ['2.515', 'USD'],
    ['1.5', 'JPY'],
    ['-1.00', 'USD'],
    ['1e3', 'USD'],
    ['', 'USD'],
    ['abc', 'USD'],
    ['1,00', 'EUR'],
    ['10000000000000.01', 'USD'],
    ['1.00', 'XYZ'],
  ])('refuses "%s" %s', (text, currency) => {
    expect(() => fromDecimalString(text, currency)).toThrow(RangeError);
  });

  it('round-trips every amount in every exponent (property)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: MAX_MINOR_UNITS }),
        fc.constantFrom('JPY', 'USD', 'EUR', 'KWD', 'CLF'),
        (amount, currency) => fromDecimalString(toDecimalString(amount, currency), currency) === amount,
      ),
    );
  });

  it('keeps the digits of the decimal string equal to the minor units (property)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: MAX_MINOR_UNITS }),
        fc.constantFrom('USD', 'KWD', 'JPY'),
        (amount, currency) => {
          const text = toDecimalString(amount, currency);
          return BigInt(text.replace('.', '')) === amount;
        },
      ),
    );
  });
});
