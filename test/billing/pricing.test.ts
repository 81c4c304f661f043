import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type PriceModel, PriceModelSchema, type PriceTier, priceFor } from '../../src/billing/pricing.ts';

const TRILLION = 1_000_000_000_000n; // 10^12 units

const flatFee: PriceModel = { model: 'FLAT_FEE', amount: 2500n };
const perUnit: PriceModel = { model: 'PER_UNIT', unitAmount: 199n };
// Units 1-5 at 500 (+1000 once), 6-10 at 400, 11+ at 300 (+200 once).
const tiers: PriceTier[] = [
  { upTo: 5n, unitAmount: 500n, flatAmount: 1000n },
  { upTo: 10n, unitAmount: 400n },
  { upTo: null, unitAmount: 300n, flatAmount: 200n },
];
const tiered: PriceModel = { model: 'TIERED', tiers };
const volume: PriceModel = { model: 'VOLUME', tiers };
// 1-10 units: 1000, 11-50: 4000, 51+: 9000.
const stairstep: PriceModel = {
  model: 'STAIRSTEP',
  steps: [
    { upTo: 10n, flatAmount: 1000n },
    { upTo: 50n, flatAmount: 4000n },
    { upTo: null, flatAmount: 9000n },
  ],
};

describe('priceFor, hand-worked', () => {
  it.each([
    [0n, 2500n], // fee per period, even with no units
    [1n, 2500n],
    [7n, 2500n],
    [TRILLION, 2500n],
  ])('FLAT_FEE 2500: quantity %s costs %s', (quantity, amount) => {
    expect(priceFor(flatFee, quantity)).toBe(amount);
  });

  it.each([
    [0n, 0n], // 0 × 199
    [1n, 199n], // 1 × 199
    [3n, 597n], // 3 × 199
    [TRILLION, 199_000_000_000_000n], // 10^12 × 199
  ])('PER_UNIT 199: quantity %s costs %s', (quantity, amount) => {
    expect(priceFor(perUnit, quantity)).toBe(amount);
  });

  it.each([
    [0n, 0n], // no unit falls in any tier, so no flat amount
    [1n, 1500n], // 1×500 + 1000
    [3n, 2500n], // 3×500 + 1000
    [5n, 3500n], // 5×500 + 1000 (exactly upTo of tier 1)
    [6n, 3900n], // 3500 + 1×400
    [10n, 5500n], // 3500 + 5×400 (exactly upTo of tier 2)
    [11n, 6000n], // 5500 + 1×300 + 200
    [12n, 6300n], // 5500 + 2×300 + 200
    [TRILLION, 300_000_000_002_700n], // 5500 + (10^12 − 10)×300 + 200 = 3×10^14 − 3000 + 5700
  ])('TIERED (graduated): quantity %s costs %s', (quantity, amount) => {
    expect(priceFor(tiered, quantity)).toBe(amount);
  });

  it.each([
    [0n, 0n], // no units, no tier
    [1n, 1500n], // 1×500 + 1000
    [5n, 3500n], // 5×500 + 1000 (exactly upTo of tier 1)
    [6n, 2400n], // 6×400 (tier 2 has no flat amount): cheaper than 5 units
    [10n, 4000n], // 10×400 (exactly upTo of tier 2)
    [11n, 3500n], // 11×300 + 200
    [TRILLION, 300_000_000_000_200n], // 10^12×300 + 200
  ])('VOLUME: quantity %s costs %s', (quantity, amount) => {
    expect(priceFor(volume, quantity)).toBe(amount);
  });

  it.each([
    [0n, 0n], // no units, no step
    [1n, 1000n], // step 1-10
    [10n, 1000n], // exactly upTo of step 1
    [11n, 4000n], // step 11-50
    [50n, 4000n], // exactly upTo of step 2
    [51n, 9000n], // step 51+
    [TRILLION, 9000n], // step 51+
  ])('STAIRSTEP: quantity %s costs %s', (quantity, amount) => {
    expect(priceFor(stairstep, quantity)).toBe(amount);
  });

  it('charges 10^12 units at 10^9 minor units each exactly, far beyond Number.MAX_SAFE_INTEGER', () => {
    // 10^12 × 10^9 = 10^21
    expect(priceFor({ model: 'PER_UNIT', unitAmount: 1_000_000_000n }, TRILLION)).toBe(10n ** 21n);
  });

  it.each([flatFee, perUnit, tiered, volume, stairstep])(
    'refuses a negative quantity for $model',
    (model) => {
      expect(() => priceFor(model, -1n)).toThrow(RangeError);
    },
  );

  it('refuses a quantity above every tier of an unvalidated model lacking its infinite tier', () => {
    const broken = { model: 'VOLUME', tiers: [{ upTo: 5n, unitAmount: 1n }] } as PriceModel;
    expect(() => priceFor(broken, 6n)).toThrow(RangeError);
    expect(() => priceFor({ ...broken, model: 'TIERED' } as PriceModel, 6n)).toThrow(RangeError);
  });
});

describe('PriceModelSchema', () => {
  it.each([flatFee, perUnit, tiered, volume, stairstep])('accepts the $model example', (model) => {
    expect(PriceModelSchema.parse(model)).toEqual(model);
  });

  it('accepts a single infinite tier and zero amounts', () => {
    const model = { model: 'TIERED', tiers: [{ upTo: null, unitAmount: 0n, flatAmount: 0n }] };
    expect(PriceModelSchema.safeParse(model).success).toBe(true);
  });

  it.each([
    [
      'unsorted tiers',
      {
        model: 'TIERED',
        tiers: [
          { upTo: 10n, unitAmount: 1n },
          { upTo: 5n, unitAmount: 1n },
          { upTo: null, unitAmount: 1n },
        ],
      },
    ],
    [
      'repeated bound',
      {
        model: 'VOLUME',
        tiers: [
          { upTo: 5n, unitAmount: 1n },
          { upTo: 5n, unitAmount: 1n },
          { upTo: null, unitAmount: 1n },
        ],
      },
    ],
    [
      'no infinite last tier',
      {
        model: 'TIERED',
        tiers: [
          { upTo: 5n, unitAmount: 1n },
          { upTo: 10n, unitAmount: 1n },
        ],
      },
    ],
    [
      'infinite tier not last',
      {
        model: 'VOLUME',
        tiers: [
          { upTo: null, unitAmount: 1n },
          { upTo: 10n, unitAmount: 1n },
        ],
      },
    ],
    [
      'two infinite tiers',
      {
        model: 'STAIRSTEP',
        steps: [
          { upTo: null, flatAmount: 1n },
          { upTo: null, flatAmount: 2n },
        ],
      },
    ],
    ['no tiers', { model: 'TIERED', tiers: [] }],
    [
      'upTo 0',
      {
        model: 'TIERED',
        tiers: [
          { upTo: 0n, unitAmount: 1n },
          { upTo: null, unitAmount: 1n },
        ],
      },
    ],
    [
      'float upTo',
      {
        model: 'VOLUME',
        tiers: [
          { upTo: 5.5, unitAmount: 1n },
          { upTo: null, unitAmount: 1n },
        ],
      },
    ],
    ['negative unit amount', { model: 'TIERED', tiers: [{ upTo: null, unitAmount: -1n }] }],
    ['negative flat amount', { model: 'VOLUME', tiers: [{ upTo: null, unitAmount: 1n, flatAmount: -5n }] }],
    ['negative step amount', { model: 'STAIRSTEP', steps: [{ upTo: null, flatAmount: -1n }] }],
    ['negative flat fee', { model: 'FLAT_FEE', amount: -1n }],
    ['negative per-unit amount', { model: 'PER_UNIT', unitAmount: -199n }],
    ['float flat fee', { model: 'FLAT_FEE', amount: 25.5 }],
    ['float unit amount', { model: 'PER_UNIT', unitAmount: 1.99 }],
    ['float tier amount', { model: 'TIERED', tiers: [{ upTo: null, unitAmount: 0.5 }] }],
    ['integer number, not bigint', { model: 'PER_UNIT', unitAmount: 199 }],
    ['string amount', { model: 'FLAT_FEE', amount: '2500' }],
    [
      'unit amount on a stairstep',
      { model: 'STAIRSTEP', steps: [{ upTo: null, flatAmount: 1n, unitAmount: 1n }] },
    ],
    ['unknown model', { model: 'PACKAGE', unitAmount: 1n }],
  ])('refuses %s', (_name, model) => {
    expect(PriceModelSchema.safeParse(model).success).toBe(false);
  });
});

/** Valid tiers with small widths so that quantities up to 200 cross their boundaries. */
function tiersArb(opts: { nonDecreasing?: boolean } = {}): fc.Arbitrary<PriceTier[]> {
  const tier = fc.record({
    width: fc.bigInt({ min: 1n, max: 20n }),
    unitAmount: fc.bigInt({ min: 0n, max: 1000n }),
    flatAmount: fc.option(fc.bigInt({ min: 0n, max: 1000n }), { nil: undefined }),
  });
  return fc.array(tier, { minLength: 1, maxLength: 5 }).map((raw) => {
    const units = raw.map((t) => t.unitAmount);
    const flats = raw.map((t) => t.flatAmount ?? 0n);
    if (opts.nonDecreasing) {
      units.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      flats.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    }
    let upTo = 0n;
    return raw.map((t, i) => {
      upTo += t.width;
      const flatAmount = opts.nonDecreasing ? flats[i] : t.flatAmount;
      return {
        upTo: i === raw.length - 1 ? null : upTo,
        unitAmount: units[i]!,
        ...(flatAmount === undefined ? {} : { flatAmount }),
      };
    });
  });
}

/** Graduated pricing one unit at a time: the slow, obvious definition. */
function graduatedByUnit(ts: readonly PriceTier[], quantity: bigint): bigint {
  let total = 0n;
  let index = -1;
  for (let unit = 1n; unit <= quantity; unit++) {
    const at = ts.findIndex((t) => t.upTo === null || unit <= t.upTo);
    if (at !== index) total += ts[at]!.flatAmount ?? 0n;
    index = at;
    total += ts[at]!.unitAmount;
  }
  return total;
}

const smallQuantity = fc.bigInt({ min: 0n, max: 200n });
const anyQuantity = fc.bigInt({ min: 0n, max: 10n ** 13n });

describe('priceFor, properties', () => {
  it('generated tiers pass the schema', () => {
    fc.assert(
      fc.property(tiersArb(), (ts) => {
        expect(PriceModelSchema.safeParse({ model: 'TIERED', tiers: ts }).success).toBe(true);
      }),
    );
  });

  it('TIERED with a single infinite tier and no flat amount equals PER_UNIT', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 9n }), anyQuantity, (unitAmount, quantity) => {
        const model: PriceModel = { model: 'TIERED', tiers: [{ upTo: null, unitAmount }] };
        expect(priceFor(model, quantity)).toBe(priceFor({ model: 'PER_UNIT', unitAmount }, quantity));
      }),
    );
  });

  it('VOLUME and TIERED agree when there is one tier', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 9n }),
        fc.option(fc.bigInt({ min: 0n, max: 10n ** 9n }), { nil: undefined }),
        anyQuantity,
        (unitAmount, flatAmount, quantity) => {
          const only: PriceTier[] = [
            { upTo: null, unitAmount, ...(flatAmount === undefined ? {} : { flatAmount }) },
          ];
          expect(priceFor({ model: 'VOLUME', tiers: only }, quantity)).toBe(
            priceFor({ model: 'TIERED', tiers: only }, quantity),
          );
        },
      ),
    );
  });

  it('TIERED equals pricing each unit by its tier, plus each used tier’s flat amount', () => {
    fc.assert(
      fc.property(tiersArb(), smallQuantity, (ts, quantity) => {
        expect(priceFor({ model: 'TIERED', tiers: ts }, quantity)).toBe(graduatedByUnit(ts, quantity));
      }),
    );
  });

  it('TIERED is non-decreasing in quantity', () => {
    fc.assert(
      fc.property(tiersArb(), smallQuantity, smallQuantity, (ts, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const model: PriceModel = { model: 'TIERED', tiers: ts };
        expect(priceFor(model, lo) <= priceFor(model, hi)).toBe(true);
      }),
    );
  });

  it('VOLUME is non-decreasing in quantity within one tier', () => {
    fc.assert(
      fc.property(tiersArb(), smallQuantity, smallQuantity, (ts, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const tierOf = (q: bigint) => ts.findIndex((t) => t.upTo === null || q <= t.upTo);
        fc.pre(lo >= 1n && tierOf(lo) === tierOf(hi));
        const model: PriceModel = { model: 'VOLUME', tiers: ts };
        expect(priceFor(model, lo) <= priceFor(model, hi)).toBe(true);
      }),
    );
  });

  it('VOLUME is non-decreasing in quantity when unit and flat amounts do not drop from tier to tier', () => {
    fc.assert(
      fc.property(tiersArb({ nonDecreasing: true }), smallQuantity, smallQuantity, (ts, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const model: PriceModel = { model: 'VOLUME', tiers: ts };
        expect(priceFor(model, lo) <= priceFor(model, hi)).toBe(true);
      }),
    );
  });

  it('VOLUME is not monotonic across a boundary where the unit price drops', () => {
    // 5 units: 5×500 + 1000 = 3500; 6 units: 6×400 = 2400.
    expect(priceFor(volume, 6n)).toBeLessThan(priceFor(volume, 5n));
  });

  it('STAIRSTEP is non-decreasing in quantity when step amounts do not drop', () => {
    fc.assert(
      fc.property(tiersArb({ nonDecreasing: true }), smallQuantity, smallQuantity, (ts, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const model: PriceModel = {
          model: 'STAIRSTEP',
          steps: ts.map((t) => ({ upTo: t.upTo, flatAmount: t.flatAmount ?? 0n })),
        };
        expect(priceFor(model, lo) <= priceFor(model, hi)).toBe(true);
      }),
    );
  });
});
