import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyRate, percentToPpm, ppmToPercent } from '../../src/money/rates.ts';

describe('rates in parts per million', () => {
  it.each([
    ['20', 200_000],
    ['8.875', 88_750],
    [8.875, 88_750],
    ['0.0001', 1],
    ['100', 1_000_000],
    ['0', 0],
  ] as const)('reads %s%% as %i ppm', (percent, ppm) => {
    expect(percentToPpm(percent)).toBe(ppm);
    expect(percentToPpm(ppmToPercent(ppm))).toBe(ppm);
  });

  it.each(['100.0001', '-1', '1e2', '8.87501', '', ' 5', '0x10', 'NaN', 1e21])('refuses %s', (percent) => {
    expect(percentToPpm(percent)).toBeUndefined();
  });

  it.each([
    [1000n, 200_000, 200n],
    [999n, 88_750, 89n], // 88.66… → 89
    [1n, 500_000, 1n], // 0.5 rounds half away from zero
    [-1n, 500_000, -1n],
    [3n, 166_667, 1n], // 0.500001 → 1
    [10n, 0, 0n],
  ])('tax of %i minor units at %i ppm is %i', (amount, ppm, tax) => {
    expect(applyRate(amount, ppm)).toBe(tax);
  });

  it('is symmetric for credits and never off by more than half a minor unit', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 15n }),
        fc.integer({ min: 0, max: 1_000_000 }),
        (a, ppm) => {
          const tax = applyRate(a, ppm);
          expect(applyRate(-a, ppm)).toBe(-tax);
          const exact2 = a * BigInt(ppm) * 2n; // 2 × exact tax × 10^6
          const diff = tax * 2_000_000n - exact2;
          expect(diff <= 1_000_000n && diff > -1_000_000n).toBe(true);
        },
      ),
      { seed: 7, numRuns: 500 },
    );
  });
});
