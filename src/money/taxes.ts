import { abs } from './amount.ts';
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
  const magnitude = (abs(a) * 2n + b) / (2n * b);
  return a < 0n ? -magnitude : magnitude;
}

/**
 * Splits `amount` (minor units, signed: a credit is negative) into its net and its taxes under
 * `rates`, applied in their order. A rate is included in the price when `priceIncludesTax` or the
 * rate is `inclusive`; the other rates are added on top.
 *
 * With no included rate the net is `amount` and each tax is the exclusive tax invoices have always
 * computed: `applyRate` of its base, the net for a simple rate, the net plus the taxes before it for a
 * compound one.
 *
 * With included rates, every share is first exact: a simple rate's k is its rate, a compound rate's
 * k is its rate × (1 + the k of every rate before it); the exact net is `amount / (1 + Σ k)` over the
 * included rates and each tax (included or not) is `amount × k / (1 + Σ k)`. The net and the included
 * taxes are then split by largest remainder: each is rounded down (in magnitude) and the units left
 * go one each to the largest remainders, ties to the earlier part (the net, then the rates in
 * order). So **net + included taxes = amount exactly** and the net and each included tax are within
 * one minor unit of exact (strictly). A tax added on top is its exact value rounded half away from
 * zero. A credit splits as the negated charge.
 * Examples: 1000 including 20% → 833 + 167 (833.33 + 166.67); 30 including 10% + 10% → 25 + 3 + 2
 * (exactly 25 + 2.5 + 2.5: rounding each tax on its own gave 24 + 3 + 3, the net a unit off).
 */
export function splitTaxes(amount: bigint, rates: readonly TaxShare[], priceIncludesTax: boolean): TaxSplit {
  const included = rates.map((rate) => priceIncludesTax || rate.inclusive);
  if (!included.some(Boolean)) {
    const taxes: bigint[] = [];
    for (const rate of rates) {
      const base = rate.compound ? amount + taxes.reduce((sum, tax) => sum + tax, 0n) : amount;
      taxes.push(applyRate(base, rate.ppm));
    }
    return { net: amount, taxes };
  }
  // Every k as an integer over the common denominator 10^(6 × rates): exact rationals.
  const unit = BigInt(PPM_PER_WHOLE);
  const denominator = unit ** BigInt(rates.length);
  const ks: bigint[] = [];
  for (const rate of rates) {
    const base = rate.compound ? denominator + ks.reduce((sum, k) => sum + k, 0n) : denominator;
    ks.push((base * BigInt(rate.ppm)) / unit);
  }
  const whole = denominator + ks.reduce((sum, k, i) => (included[i] ? sum + k : sum), 0n);
  const magnitude = abs(amount);
  // The parts that make up the amount: the net (weight `denominator`), then each included tax.
  const parts = [{ weight: denominator, tax: -1 }];
  ks.forEach((k, i) => {
    if (included[i]) parts.push({ weight: k, tax: i });
  });
  const floors = parts.map((part) => (magnitude * part.weight) / whole);
  let left = magnitude - floors.reduce((sum, floor) => sum + floor, 0n);
  const byRemainder = parts
    .map((part, p) => ({ p, remainder: (magnitude * part.weight) % whole }))
    .sort((a, b) => (a.remainder === b.remainder ? a.p - b.p : a.remainder > b.remainder ? -1 : 1));
  for (const { p } of byRemainder) {
    if (left === 0n) break;
    floors[p]! += 1n;
    left -= 1n;
  }
  const signed = (value: bigint) => (amount < 0n ? -value : value);
  const taxes = ks.map((k) => signed(divideRounded(magnitude * k, whole)));
  parts.forEach((part, p) => {
    if (part.tax >= 0) taxes[part.tax] = signed(floors[p]!);
  });
  return { net: signed(floors[0]!), taxes };
}
