import { abs } from './amount.ts';

/**
 * Rates (tax rates, percent-off coupons) as integers in parts per million of an amount: 1% = 10,000
 * ppm, 8.875% = 88,750 ppm, 100% = 1,000,000 ppm. Never a float: a percentage given by a client is
 * read from its decimal digits (at most four decimals) and applied with bigint arithmetic.
 */

/** 100% in parts per million. */
export const PPM_PER_WHOLE = 1_000_000;

/**
 * Parses a percentage from its decimal text (`"8.875"`, `8.875` as JSON number, `"20"`) into parts
 * per million: digits only, at most four decimals, 0 to 100.
 * @returns the rate in ppm, or `undefined` when the text is not such a percentage
 */
export function percentToPpm(percent: string | number): number | undefined {
  const text = typeof percent === 'number' ? String(percent) : percent;
  const match = /^(\d{1,3})(?:\.(\d{1,4}))?$/.exec(text);
  if (!match) return undefined;
  const ppm = Number(match[1]) * 10_000 + Number((match[2] ?? '').padEnd(4, '0'));
  return ppm <= PPM_PER_WHOLE ? ppm : undefined;
}

/** A rate in ppm as percentage text without trailing zeros: 88750 → `"8.875"`, 200000 → `"20"`. */
export function ppmToPercent(ppm: number): string {
  const whole = Math.trunc(ppm / 10_000);
  const fraction = String(ppm % 10_000)
    .padStart(4, '0')
    .replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : String(whole);
}

/**
 * `amount × ppm / 1,000,000` in minor units, rounded half away from zero (the usual commercial rounding
 * of tax per line, e.g. HMRC VAT guidance and most US state rules round half up per line or invoice).
 * @param amount minor units, may be negative (a credit line's tax is negative)
 * @param ppm rate in parts per million, 0 … 1,000,000
 */
export function applyRate(amount: bigint, ppm: number): bigint {
  const product = abs(amount) * BigInt(ppm);
  const whole = BigInt(PPM_PER_WHOLE);
  const rounded = (product + whole / 2n) / whole;
  return amount < 0n ? -rounded : rounded;
}
