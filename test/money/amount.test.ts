import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { abs, MAX_MINOR_UNITS } from '../../src/money/amount.ts';

describe('abs', () => {
  it.each([
    [-617n, 617n],
    [900n, 900n],
    [0n, 0n],
    [-MAX_MINOR_UNITS, MAX_MINOR_UNITS],
    [-(2n ** 64n), 2n ** 64n],
  ])('abs(%i) is %i', (amount, size) => {
    expect(abs(amount)).toBe(size);
  });

  it('is never negative, keeps the size, and is the same for an amount and its opposite', () => {
    fc.assert(
      fc.property(fc.bigInt(), (amount) => {
        expect(abs(amount) >= 0n).toBe(true);
        expect(abs(amount) === amount || abs(amount) === -amount).toBe(true);
        expect(abs(-amount)).toBe(abs(amount));
      }),
    );
  });
});
