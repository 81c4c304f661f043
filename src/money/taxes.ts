import { applyRate, PPM_PER_WHOLE } from './rates.ts';

/**
 * Splitting an amount into its net and its taxes, exactly, in minor units (PRODUCT §11). One rounding
 * rule for every tax: `applyRate`, half away from zero, once per rate and line (the rule invoices have
 * always used for `tax_percent`).
 */

/** A tax rate as the split needs it: parts per million, included in the price or not, compound or not. */
export interface TaxShare {
  ppm: number;
  /** The price already includes this tax (it is split out of the amount, not added to it). */
  inclusive: boolean;
  /** Computed on the net plus every tax before it in the list, not on the net alone. */
  compound: boolean;
}

/** An amount split into its net and one tax per rate (same order), minor units, signed like the amount. */
export interface TaxSplit {
  net: bigint;
  taxes: bigint[];
}

/** `a / b` rounded half away from zero (b > 0). */
function divideRounded(a: bigint, b: bigint): bigint {
  const magnitude = ((a < 0n ? -a : a) * 2n + b) / (2n * b);
  return a < 0n ? -magnitude : magnitude;
}

/**
 * Splits `amount` (minor units, signed: a credit is negative) into its net and its taxes under
 * `rates`, applied in their order. A rate is included in the price when `priceIncludesTax` or the
 * rate is `inclusive`; the other rates are added on top.
 *
 * Rule: the net before rounding is `amount / (1 + Σ k)` over the included rates, where a simple
 * rate's k is its rate and a compound rate's k is its rate × (1 + the k of every rate before it);
 * it is rounded half away from zero to `n`. Each tax is then `applyRate` of its base: `n` for a
 * simple rate, `n` plus the taxes before it for a compound one. The net booked is `amount` less the
 * included taxes, so **net + included taxes = amount exactly**; with no included rate the net is
 * `amount` and each tax is the exclusive tax invoices have always computed (`applyRate(amount, ppm)`).
 * Example: 1000 including 20% → n = 833 (833.33), tax 167, net 833.
 */
export function splitTaxes(amount: bigint, rates: readonly TaxShare[], priceIncludesTax: boolean): TaxSplit {
  const included = rates.map((rate) => priceIncludesTax || rate.inclusive);
  let n = amount;
  if (included.some(Boolean)) {
    // Every k as an integer over the common denominator 10^(6 × rates): exact rationals.
    const unit = BigInt(PPM_PER_WHOLE);
    const denominator = unit ** BigInt(rates.length);
    const ks: bigint[] = [];
    for (const rate of rates) {
      const base = rate.compound ? denominator + ks.reduce((sum, k) => sum + k, 0n) : denominator;
      ks.push((base * BigInt(rate.ppm)) / unit);
    }
    const includedK = ks.reduce((sum, k, i) => (included[i] ? sum + k : sum), 0n);
    n = divideRounded(amount * denominator, denominator + includedK);
  }
  const taxes: bigint[] = [];
  for (const rate of rates) {
    const base = rate.compound ? n + taxes.reduce((sum, tax) => sum + tax, 0n) : n;
    taxes.push(applyRate(base, rate.ppm));
  }
  const includedTax = taxes.reduce((sum, tax, i) => (included[i] ? sum + tax : sum), 0n);
  return { net: amount - includedTax, taxes };
}
