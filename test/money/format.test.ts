import { describe, expect, it } from 'vitest';
import { decimalString, formatAmount } from '../../src/money/format.ts';

describe('formatAmount: minor units as people read them, exactly', () => {
  it('writes each currency with its ISO 4217 exponent', () => {
    expect(formatAmount(123456n, 'USD')).toBe('1234.56 USD');
    expect(formatAmount(5n, 'EUR')).toBe('0.05 EUR');
    expect(formatAmount(1500n, 'JPY')).toBe('1500 JPY');
    expect(formatAmount(1296n, 'KWD')).toBe('1.296 KWD');
    expect(formatAmount(1n, 'CLF')).toBe('0.0001 CLF');
    expect(formatAmount(-100n, 'KWD')).toBe('-0.100 KWD');
  });

  it('never goes through a float: 10^15 minor units and one unit more stay exact', () => {
    expect(decimalString(1_000_000_000_000_001n, 2)).toBe('10000000000000.01');
    expect(decimalString(-7n, 3)).toBe('-0.007');
    expect(decimalString(0n, 0)).toBe('0');
  });

  it('refuses a code that is not ISO 4217', () => {
    expect(() => formatAmount(1n, 'XXY')).toThrow(RangeError);
  });
});
