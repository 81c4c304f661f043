import { z } from 'zod';

/**
 * Price models of a plan price, and the amount they charge for a quantity in one billing period.
 *
 * Every amount is a bigint count of minor units of the price's currency (cents for USD, yen for JPY);
 * every quantity is a non-negative bigint count of units. Nothing here is ever a float.
 *
 * Sources of the definitions:
 * - Stripe, "Pricing models", https://docs.stripe.com/products-prices/pricing-models (flat rate,
 *   per-unit, tiered pricing in `graduated` and `volume` mode, `up_to` inclusive and `inf` for the
 *   last tier, `unit_amount` plus an optional `flat_amount` per tier);
 * - Chargebee "stairstep" pricing and BillaBear's price schedules (flat price per range of units);
 * - Billy/Balanced recurring plans (a fixed amount per period).
 */

/** A non-negative whole amount in minor units. Refuses numbers (floats included) and strings. */
const MinorUnits = z.bigint().nonnegative();

/** Upper bound of a tier: a positive unit count, inclusive, or `null` for infinity (Stripe's `inf`). */
const UpTo = z.bigint().positive().nullable();

/**
 * Checks that tiers end with one infinite tier and that their finite bounds strictly ascend, so every
 * quantity falls in exactly one tier.
 */
function checkTiers(tiers: readonly { upTo: bigint | null }[], ctx: z.RefinementCtx): void {
  let previous = 0n;
  tiers.forEach((tier, index) => {
    const last = index === tiers.length - 1;
    if (tier.upTo === null) {
      if (!last) {
        ctx.addIssue({
          code: 'custom',
          message: 'only the last tier may have upTo null',
          path: [index, 'upTo'],
        });
      }
      return;
    }
    if (last) {
      ctx.addIssue({
        code: 'custom',
        message: 'the last tier must have upTo null (infinity)',
        path: [index, 'upTo'],
      });
    }
    if (tier.upTo <= previous) {
      ctx.addIssue({ code: 'custom', message: 'tiers must ascend strictly by upTo', path: [index, 'upTo'] });
    }
    previous = tier.upTo;
  });
}

/** A tier of a TIERED or VOLUME price: `unitAmount` per unit plus an optional `flatAmount`, in minor units. */
const PriceTierSchema = z.strictObject({
  upTo: UpTo,
  unitAmount: MinorUnits,
  flatAmount: MinorUnits.optional(),
});

/** A step of a STAIRSTEP price: the whole period costs `flatAmount` minor units when the quantity is in it. */
const StairStepSchema = z.strictObject({
  upTo: UpTo,
  flatAmount: MinorUnits,
});

/**
 * Validates a plan's price model (discriminated on `model`). Amounts are bigint minor units, bounds and
 * quantities bigint unit counts; a JSON number must be converted first.
 *
 * - `{ model: 'FLAT_FEE', amount }`: `amount` per period whatever the quantity, including 0
 *   (Stripe's flat rate, Billy/Balanced plans: the fee is for the period, not for the units).
 * - `{ model: 'PER_UNIT', unitAmount }`: `unitAmount × quantity` (Stripe's per-unit pricing).
 * - `{ model: 'TIERED', tiers }`: graduated tiers (Stripe `tiers_mode: graduated`); each unit is priced
 *   by the tier it falls in, and a tier's `flatAmount` is added once when at least one unit falls in it.
 * - `{ model: 'VOLUME', tiers }`: volume tiers (Stripe `tiers_mode: volume`); every unit is priced at the
 *   tier the total quantity falls in, plus that tier's `flatAmount`.
 * - `{ model: 'STAIRSTEP', steps }`: the period costs the `flatAmount` of the step the quantity falls in;
 *   a step has no per-unit amount.
 *
 * Tiers and steps: `upTo` is inclusive (tier i holds quantities `previous upTo + 1 … upTo`), finite bounds
 * strictly ascend, and the last one is `null` (infinity), so every quantity ≥ 1 has exactly one tier.
 */
export const PriceModelSchema = z.discriminatedUnion('model', [
  z.strictObject({ model: z.literal('FLAT_FEE'), amount: MinorUnits }),
  z.strictObject({ model: z.literal('PER_UNIT'), unitAmount: MinorUnits }),
  z.strictObject({
    model: z.literal('TIERED'),
    tiers: z.array(PriceTierSchema).min(1).superRefine(checkTiers),
  }),
  z.strictObject({
    model: z.literal('VOLUME'),
    tiers: z.array(PriceTierSchema).min(1).superRefine(checkTiers),
  }),
  z.strictObject({
    model: z.literal('STAIRSTEP'),
    steps: z.array(StairStepSchema).min(1).superRefine(checkTiers),
  }),
]);

/** A validated price model; see `PriceModelSchema` for the shapes. Amounts in minor units. */
export type PriceModel = z.infer<typeof PriceModelSchema>;

/** A tier of a TIERED or VOLUME price model. */
export type PriceTier = z.infer<typeof PriceTierSchema>;

/** Index of the tier whose range holds `quantity` (≥ 1): the first tier with `upTo` null or ≥ quantity. */
function tierIndexOf(tiers: readonly { upTo: bigint | null }[], quantity: bigint): number {
  const index = tiers.findIndex((tier) => tier.upTo === null || quantity <= tier.upTo);
  if (index < 0) {
    throw new RangeError(`quantity ${quantity} is above every tier; the last tier must have upTo null`);
  }
  return index;
}

/** Graduated tiers: the units of each tier at that tier's unit amount, plus the flat amount of each tier used. */
function graduated(tiers: readonly PriceTier[], quantity: bigint): bigint {
  let total = 0n;
  let previous = 0n;
  for (const tier of tiers) {
    if (quantity <= previous) break;
    const top = tier.upTo === null || quantity < tier.upTo ? quantity : tier.upTo;
    total += (top - previous) * tier.unitAmount + (tier.flatAmount ?? 0n);
    if (tier.upTo === null) return total;
    previous = tier.upTo;
  }
  if (quantity > previous) {
    throw new RangeError(`quantity ${quantity} is above every tier; the last tier must have upTo null`);
  }
  return total;
}

/**
 * The amount, in minor units, that `model` charges for `quantity` units in one billing period.
 *
 * Quantity 0: FLAT_FEE charges its fee (a fee per period, as Stripe's flat rate); PER_UNIT, TIERED,
 * VOLUME and STAIRSTEP charge 0n, since no unit falls in any tier (so no tier's `flatAmount` applies).
 *
 * @param model a model accepted by `PriceModelSchema` (its invariants are assumed, not re-checked)
 * @param quantity units, a non-negative bigint
 * @returns the amount in minor units, exact (bigint arithmetic, no rounding, no cap)
 * @throws RangeError when `quantity` is negative, or above every tier of a model lacking its infinite tier
 */
export function priceFor(model: PriceModel, quantity: bigint): bigint {
  if (quantity < 0n) {
    throw new RangeError(`quantity must be a non-negative integer, got ${quantity}`);
  }
  switch (model.model) {
    case 'FLAT_FEE':
      return model.amount;
    case 'PER_UNIT':
      return model.unitAmount * quantity;
    case 'TIERED':
      return graduated(model.tiers, quantity);
    case 'VOLUME': {
      if (quantity === 0n) return 0n;
      const tier = model.tiers[tierIndexOf(model.tiers, quantity)]!;
      return tier.unitAmount * quantity + (tier.flatAmount ?? 0n);
    }
    case 'STAIRSTEP': {
      if (quantity === 0n) return 0n;
      return model.steps[tierIndexOf(model.steps, quantity)]!.flatAmount;
    }
  }
}
