/**
 * Exchange rates as exact decimals: a rate is `digits × 10^-scale` (1.234 is 1234n at scale 3),
 * read from its decimal text and applied to minor units with bigint arithmetic, never a float.
 */

/** A positive decimal rate, exactly: `digits × 10^-scale` (`"0.9"` → `{ digits: 9n, scale: 1 }`). */
export interface DecimalRate {
  digits: bigint;
  scale: number;
}

/** Largest scale a rate is read with (a rate finer than 10^-30 means nothing for money). */
const MAX_SCALE = 30;

/**
 * Reads a rate from its decimal text: digits with an optional fraction (`"1.234"`, `"0.9"`, `"12"`)
 * and, as JavaScript writes a number below 10^-6 or from 10^21, an optional exponent (`"1.5e-7"`).
 * Trailing zeros of the fraction are dropped (`"0.90"` is `0.9`).
 * @returns the rate, or undefined for text that is not such a decimal, a rate of 0, or one finer
 * than 10^-30
 */
export function parseRate(text: string): DecimalRate | undefined {
  const match = /^(\d{1,30})(?:\.(\d{1,30}))?(?:[eE]([+-]?\d{1,2}))?$/.exec(text);
  if (!match) return undefined;
  const [, whole = '', fraction = '', exponent = '0'] = match;
  let digits = BigInt(whole + fraction);
  let scale = fraction.length - Number(exponent);
  if (digits === 0n) return undefined;
  while (scale > 0 && digits % 10n === 0n) {
    digits /= 10n;
    scale -= 1;
  }
  if (scale < 0) {
    digits *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return scale <= MAX_SCALE ? { digits, scale } : undefined;
}

/** `rate` as plain decimal text, without an exponent or trailing zeros: `{ 9n, 1 }` → `"0.9"`. */
export function rateText(rate: DecimalRate): string {
  if (rate.scale === 0) return rate.digits.toString();
  const padded = rate.digits.toString().padStart(rate.scale + 1, '0');
  return `${padded.slice(0, -rate.scale)}.${padded.slice(-rate.scale)}`;
}

/**
 * `amount` converted at `rate`, in whole minor units of the target currency: the exact product
 * rounded down (`low`) and up (`high`), equal when the product is whole. Whatever way a gateway
 * rounds a conversion to a minor unit (down, up, half up, half even), its result is `low` or
 * `high`. The rate is in major units, as exchange rates are quoted (one unit of the source
 * currency is `rate` units of the target): amounts of currencies with other exponents are scaled by
 * them (JPY 1000 at 0.0067 is USD 6.70: 670 minor units).
 * E.g. USD 1000 at 0.9 → EUR 900..900; at 0.9005 → 900..901; −1000 at 0.9005 → −901..−900.
 * @param amount minor units of the source currency (exponent `fromExponent`), any sign
 * @param toExponent the target currency's minor-unit exponent (ISO 4217: USD 2, JPY 0, KWD 3)
 */
export function convertedRange(
  amount: bigint,
  rate: DecimalRate,
  fromExponent: number,
  toExponent: number,
): { low: bigint; high: bigint } {
  const shift = toExponent - fromExponent - rate.scale;
  const product = amount * rate.digits;
  if (shift >= 0) {
    const exact = product * 10n ** BigInt(shift);
    return { low: exact, high: exact };
  }
  const divisor = 10n ** BigInt(-shift);
  const truncated = product / divisor;
  if (product % divisor === 0n) return { low: truncated, high: truncated };
  // bigint division truncates toward 0: below 0 the truncated value is the upper one.
  return product < 0n ? { low: truncated - 1n, high: truncated } : { low: truncated, high: truncated + 1n };
}
