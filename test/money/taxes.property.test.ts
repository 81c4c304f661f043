import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyRate } from '../../src/money/rates.ts';
import { splitTaxes, type TaxShare } from '../../src/money/taxes.ts';

const amount = fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n });
const share = fc.record({
  ppm: fc.integer({ min: 1, max: 1_000_000 }),
  inclusive: fc.boolean(),
  compound: fc.boolean(),
});
const shares = fc.array(share, { maxLength: 4 });
const sum = (values: readonly bigint[]) => values.reduce((a, b) => a + b, 0n);
const simple = (ppm: number, inclusive = false): TaxShare => ({ ppm, inclusive, compound: false });

describe('splitTaxes (PRODUCT §11: exact money)', () => {
  it('net + the included taxes = the amount exactly, for any rates, signs and flags', () => {
    fc.assert(
      fc.property(amount, shares, fc.boolean(), (a, rates, priceIncludesTax) => {
        const { net, taxes } = splitTaxes(a, rates, priceIncludesTax);
        expect(taxes).toHaveLength(rates.length);
        const included = taxes.filter((_, i) => priceIncludesTax || rates[i]!.inclusive);
        expect(net + sum(included)).toBe(a);
      }),
      { numRuns: 2000 },
    );
  });

  it('with no included rate the net is the amount and each simple tax is applyRate (as invoices always did)', () => {
    fc.assert(
      fc.property(amount, fc.array(fc.integer({ min: 1, max: 1_000_000 }), { maxLength: 4 }), (a, ppms) => {
        const { net, taxes } = splitTaxes(
          a,
          ppms.map((ppm) => simple(ppm)),
          false,
        );
        expect(net).toBe(a);
        expect(taxes).toEqual(ppms.map((ppm) => applyRate(a, ppm)));
      }),
    );
  });

  it('one inclusive rate: the tax and the net are each within one minor unit of amount × r / (1 + r) and amount / (1 + r)', () => {
    fc.assert(
      fc.property(amount, fc.integer({ min: 1, max: 1_000_000 }), (a, ppm) => {
        const { net, taxes } = splitTaxes(a, [simple(ppm, true)], false);
        const whole = 1_000_000n + BigInt(ppm);
        const abs = (v: bigint) => (v < 0n ? -v : v);
        // |tax − a·r/(1+r)| ≤ 1 and |net − a/(1+r)|≤ 1, compared exactly in integers.
        expect(abs(taxes[0]! * whole - a * BigInt(ppm))).toBeLessThanOrEqual(whole);
        expect(abs(net * whole - a * 1_000_000n)).toBeLessThanOrEqual(whole);
      }),
      { numRuns: 2000 },
    );
  });

  it('any included rates: the net and every tax are each strictly within one minor unit of exact (largest remainder)', () => {
    // Exact shares as integers over a common denominator (the k of each rate as splitTaxes documents):
    // net = a / (1 + ΣK), tax i = a × k_i / (1 + ΣK), K over the included rates.
    const exact = (a: bigint, rates: readonly TaxShare[], priceIncludesTax: boolean) => {
      const unit = 1_000_000n;
      const d = unit ** BigInt(rates.length);
      const ks: bigint[] = [];
      for (const rate of rates) ks.push(((rate.compound ? d + sum(ks) : d) * BigInt(rate.ppm)) / unit);
      const k = sum(ks.filter((_, i) => priceIncludesTax || rates[i]!.inclusive));
      return { den: d + k, net: a * d, taxes: ks.map((ki) => a * ki) };
    };
    const abs = (v: bigint) => (v < 0n ? -v : v);
    fc.assert(
      fc.property(
        amount,
        fc.array(share, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (a, rates, priceIncludesTax) => {
          fc.pre(priceIncludesTax || rates.some((rate) => rate.inclusive));
          const { net, taxes } = splitTaxes(a, rates, priceIncludesTax);
          const e = exact(a, rates, priceIncludesTax);
          expect(abs(net * e.den - e.net)).toBeLessThan(e.den);
          for (const [i, tax] of taxes.entries()) expect(abs(tax * e.den - e.taxes[i]!)).toBeLessThan(e.den);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it.each([
    // 30 including 10% + 10%: exactly 25 net + 2.5 + 2.5. Each tax rounded on its own (3 + 3) left
    // the net at 24, a whole unit off an exact 25; the remainder unit goes to the first tax.
    { amount: 30n, rates: [simple(100_000, true), simple(100_000, true)], net: 25n, taxes: [3n, 2n] },
    { amount: -30n, rates: [simple(100_000, true), simple(100_000, true)], net: -25n, taxes: [-3n, -2n] },
    // 1000 including 5% + 7.5% (1.125): 888.89 net, 44.44 and 66.67 tax.
    { amount: 1000n, rates: [simple(50_000, true), simple(75_000, true)], net: 889n, taxes: [44n, 67n] },
    // 927203518 including four rates (1.393798): the taxes rounded one by one left the net 1.16 off.
    {
      amount: 927_203_518n,
      rates: [simple(58_681, true), simple(207_626, true), simple(10_164, true), simple(117_327, true)],
      net: 665_235_219n,
      taxes: [39_036_668n, 138_120_128n, 6_761_451n, 78_050_052n],
    },
  ])(
    'splits $amount under two or more included rates: net + taxes = the amount, each within a unit',
    (row) => {
      const split = splitTaxes(row.amount, row.rates, false);
      expect(split).toEqual({ net: row.net, taxes: row.taxes });
      expect(split.net + sum(split.taxes)).toBe(row.amount);
    },
  );

  it('is odd: a credit splits as the negated charge', () => {
    fc.assert(
      fc.property(amount, shares, fc.boolean(), (a, rates, inclusive) => {
        const charge = splitTaxes(a, rates, inclusive);
        const credit = splitTaxes(-a, rates, inclusive);
        expect(credit.net).toBe(-charge.net);
        expect(credit.taxes).toEqual(charge.taxes.map((t) => -t));
      }),
    );
  });

  it.each([
    // 1000 including 20% VAT: 833.33 net → 833, VAT 167.
    { amount: 1000n, rates: [simple(200_000)], inclusive: true, net: 833n, taxes: [167n] },
    // 1100 including 10% GST: exactly 1000 + 100.
    { amount: 1100n, rates: [simple(100_000)], inclusive: true, net: 1000n, taxes: [100n] },
    // Quebec before 2013: GST 5% then QST 7.5% compound on price + GST: 10000 → 500, 787.5 → 788.
    {
      amount: 10_000n,
      rates: [simple(50_000), { ppm: 75_000, inclusive: false, compound: true }],
      inclusive: false,
      net: 10_000n,
      taxes: [500n, 788n],
    },
    // The same, included in a price of 11288: net 10000 (1.05 × 1.075 = 1.12875).
    {
      amount: 11_288n,
      rates: [simple(50_000), { ppm: 75_000, inclusive: false, compound: true }],
      inclusive: true,
      net: 10_000n,
      taxes: [500n, 788n],
    },
    // One inclusive rate and one added on top: 1200 including 20%, plus 5% of the net (1000).
    {
      amount: 1200n,
      rates: [simple(200_000, true), simple(50_000)],
      inclusive: false,
      net: 1000n,
      taxes: [200n, 50n],
    },
    // A credit including 20%: the negated split.
    { amount: -1000n, rates: [simple(200_000)], inclusive: true, net: -833n, taxes: [-167n] },
  ])('splits $amount under $rates.length rate(s), inclusive $inclusive', (row) => {
    expect(splitTaxes(row.amount, row.rates, row.inclusive)).toEqual({ net: row.net, taxes: row.taxes });
  });
});
