import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { convertedRange, parseRate, rateText } from '../../src/money/exchange-rate.ts';

describe('exchange rates as exact decimals', () => {
  it.each([
    ['1.234', 1234n, 3, '1.234'],
    ['0.9', 9n, 1, '0.9'],
    ['0.90', 9n, 1, '0.9'],
    ['12', 12n, 0, '12'],
    ['1.5e-7', 15n, 8, '0.00000015'],
    ['2e+21', 2_000_000_000_000_000_000_000n, 0, '2000000000000000000000'],
    [String(0.1 + 0.2), 30000000000000004n, 17, '0.30000000000000004'],
  ] as const)('reads %s as %i × 10^-%i (%s)', (text, digits, scale, plain) => {
    expect(parseRate(text)).toEqual({ digits, scale });
    expect(rateText(parseRate(text)!)).toBe(plain);
  });

  it.each(['', '0', '0.000', '-1.2', ' 1.2', '1.', '.5', '1,2', 'NaN', 'Infinity', '1e-40', '0x10'])(
    'refuses %j',
    (text) => {
      expect(parseRate(text)).toBeUndefined();
    },
  );

  it.each([
    // Stripe's documented example: EUR 10.00 at 1.234 is USD 12.34.
    [1000n, '1.234', 2, 2, 1234n, 1234n],
    [1000n, '0.9', 2, 2, 900n, 900n],
    [1000n, '0.9005', 2, 2, 900n, 901n],
    [-1000n, '0.9005', 2, 2, -901n, -900n],
    [-400n, '0.9', 2, 2, -360n, -360n],
    // JPY 1000 (exponent 0) at 0.0067 is USD 6.70; USD 10.00 at 149.5 is JPY 1495.
    [1000n, '0.0067', 0, 2, 670n, 670n],
    [1000n, '149.5', 2, 0, 1495n, 1495n],
    [1001n, '149.5', 2, 0, 1496n, 1497n],
    // KWD 1.296 (exponent 3) at 3.25 is USD 4.212 → 421 or 422.
    [1296n, '3.25', 3, 2, 421n, 422n],
    [-1296n, '3.25', 3, 2, -422n, -421n],
    // JPY 1001 at 0.0067 is USD 6.7067 → 670 or 671 (a JPY amount that does not convert whole).
    [1001n, '0.0067', 0, 2, 670n, 671n],
    // Into KWD (exponent 3): USD 10.00 at 0.307 is KWD 3.070; USD 10.01 at 0.3071 is KWD 3.074071 →
    // 3074 or 3075; USD 10.00 at 3 is KWD 30.000 (the target finer than the rate: scaled up).
    [1000n, '0.307', 2, 3, 3070n, 3070n],
    [1001n, '0.3071', 2, 3, 3074n, 3075n],
    [1000n, '3', 2, 3, 30000n, 30000n],
    // JPY ↔ KWD, exponents 0 and 3: JPY 1000 at 0.002 is KWD 2.000; KWD 1.296 at 487.5 is JPY 631.8.
    [1000n, '0.002', 0, 3, 2000n, 2000n],
    [1296n, '487.5', 3, 0, 631n, 632n],
    [0n, '1.234', 2, 2, 0n, 0n],
  ] as const)('%i at %s (exponents %i → %i) is %i to %i', (amount, rate, from, to, low, high) => {
    expect(convertedRange(amount, parseRate(rate)!, from, to)).toEqual({ low, high });
  });

  it('is the exact product rounded down and up, one minor unit apart unless whole', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }),
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        (amount, digits, scale, from, to) => {
          const { low, high } = convertedRange(amount, { digits, scale }, from, to);
          // exact = amount × digits × 10^(to − from − scale); compare over the common denominator.
          const shift = to - from - scale;
          const num = amount * digits * (shift > 0 ? 10n ** BigInt(shift) : 1n);
          const den = shift < 0 ? 10n ** BigInt(-shift) : 1n;
          expect(low * den <= num && num <= high * den).toBe(true);
          expect(high - low).toBe(num % den === 0n ? 0n : 1n);
        },
      ),
    );
  });
});
