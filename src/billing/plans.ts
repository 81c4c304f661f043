import type { Kysely } from 'kysely';
import { z } from 'zod';
import { recordActivity } from '../activities/activities.ts';
import { changedFields } from '../activities/changes.ts';
import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { Database, PlanInterval, PlanRow } from '../db/schema.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { MAX_MINOR_UNITS } from '../money/amount.ts';
import { type PriceModel, PriceModelSchema, priceFor } from './pricing.ts';

/**
 * Plans: a product's recurring price per interval, plus metered (usage) prices per metric code.
 *
 * A plan's price never changes once created: to charge another price, create a new plan (and move
 * subscriptions to it), so every invoice ever issued on a plan stays explained by that plan.
 *
 * Prices as JSON (the API and the `plans.price` / `plans.metered` columns), integers in minor units:
 * `{model:'FLAT_FEE', amount}` | `{model:'PER_UNIT', unit_amount}` |
 * `{model:'TIERED'|'VOLUME', tiers:[{up_to: int|null, unit_amount, flat_amount?}]}` |
 * `{model:'STAIRSTEP', steps:[{up_to: int|null, flat_amount}]}`; metered:
 * `[{code, aggregation:'SUM'|'MAX'|'COUNT', price}]` (any model but FLAT_FEE, codes unique).
 */

/** A JSON integer amount in minor units, 0 … 10^15 (a float or a string is refused). */
const JsonAmount = z
  .number({ error: 'must be a JSON integer amount in minor units (no decimals, not a string)' })
  // Each check names its own fault: the schema's message above would answer them all (zod 4), so -1
  // read "must be an integer amount" and 10^16 "(no decimals)". The bound first: 10^16 is no safe integer.
  .nonnegative({ error: 'must not be negative' })
  .max(Number(MAX_MINOR_UNITS), { error: `must be at most ${MAX_MINOR_UNITS} (10^15) minor units` })
  .int({ error: 'must be an integer amount in minor units (no decimals)' })
  .transform((n) => BigInt(n));

/** A tier's inclusive upper bound in units, or null for the last (infinite) tier. */
const JsonUpTo = z
  .number({ error: 'must be a positive integer number of units, or null for the last tier' })
  .int()
  .positive()
  .max(Number.MAX_SAFE_INTEGER)
  .transform((n) => BigInt(n))
  .nullable();

const JsonTier = z.strictObject({
  up_to: JsonUpTo,
  unit_amount: JsonAmount,
  flat_amount: JsonAmount.optional(),
});
const JsonStep = z.strictObject({ up_to: JsonUpTo, flat_amount: JsonAmount });

const JsonPriceShape = z.discriminatedUnion('model', [
  z.strictObject({ model: z.literal('FLAT_FEE'), amount: JsonAmount }),
  z.strictObject({ model: z.literal('PER_UNIT'), unit_amount: JsonAmount }),
  z.strictObject({ model: z.literal('TIERED'), tiers: z.array(JsonTier).min(1).max(100) }),
  z.strictObject({ model: z.literal('VOLUME'), tiers: z.array(JsonTier).min(1).max(100) }),
  z.strictObject({ model: z.literal('STAIRSTEP'), steps: z.array(JsonStep).min(1).max(100) }),
]);

const snakeKey = (key: PropertyKey) =>
  typeof key === 'string' ? key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : key;

/** The JSON shape (bigints already) in pricing.ts's camelCase, for `PriceModelSchema`. */
function camelPrice(json: z.output<typeof JsonPriceShape>): unknown {
  switch (json.model) {
    case 'FLAT_FEE':
      return json;
    case 'PER_UNIT':
      return { model: json.model, unitAmount: json.unit_amount };
    case 'TIERED':
    case 'VOLUME':
      return {
        model: json.model,
        tiers: json.tiers.map((t) => ({
          upTo: t.up_to,
          unitAmount: t.unit_amount,
          ...(t.flat_amount === undefined ? {} : { flatAmount: t.flat_amount }),
        })),
      };
    case 'STAIRSTEP':
      return {
        model: json.model,
        steps: json.steps.map((s) => ({ upTo: s.up_to, flatAmount: s.flat_amount })),
      };
  }
}

/**
 * A price as JSON (see the module doc), validated by converting it to `PriceModelSchema` (tiers end
 * with one `up_to: null`, finite bounds strictly ascend); its issues keep snake_case paths
 * (`tiers.1.up_to`). Output: the `PriceModel` (bigint minor units).
 */
export const PriceJsonSchema = JsonPriceShape.transform((json, ctx): PriceModel => {
  const result = PriceModelSchema.safeParse(camelPrice(json));
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    ctx.addIssue({
      code: 'custom',
      message: issue.message.replaceAll('upTo', 'up_to'),
      path: issue.path.map(snakeKey),
    });
  }
  return z.NEVER;
});

/** How a metered price turns a period's usage events into a quantity: their sum, maximum or count. */
export type Aggregation = 'SUM' | 'MAX' | 'COUNT';

/** A metric code: letters, digits, `_ . : -`, 1 to 100 characters. */
export const MetricCode = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'must be 1 to 100 letters, digits, _ . : or -');

/** The metered prices of a plan as JSON: unique codes, any price model but FLAT_FEE. */
export const MeteredJsonSchema = z
  .array(
    z.strictObject({
      code: MetricCode,
      aggregation: z.enum(['SUM', 'MAX', 'COUNT']),
      price: PriceJsonSchema,
    }),
  )
  .max(50)
  .superRefine((metered, ctx) => {
    const seen = new Set<string>();
    metered.forEach((entry, index) => {
      if (seen.has(entry.code)) {
        ctx.addIssue({
          code: 'custom',
          message: `duplicate metric code ${entry.code}`,
          path: [index, 'code'],
        });
      }
      seen.add(entry.code);
      if (entry.price.model === 'FLAT_FEE') {
        ctx.addIssue({
          code: 'custom',
          message: 'a metered price cannot be FLAT_FEE (use PER_UNIT, TIERED, VOLUME or STAIRSTEP)',
          path: [index, 'price', 'model'],
        });
      }
    });
  });

/** A metered price: usage events of metric `code`, aggregated per period, priced by `price`. */
export interface MeteredPrice {
  code: string;
  aggregation: Aggregation;
  price: PriceModel;
}

/** A plan row with its price and metered prices parsed (bigint minor units). */
export interface Plan extends Omit<PlanRow, 'price' | 'metered'> {
  price: PriceModel;
  metered: MeteredPrice[];
}

/**
 * Parses a price stored or sent as JSON (see the module doc) into a `PriceModel`.
 * @throws ZodError when it is not a valid price
 */
export function priceModelOf(json: unknown): PriceModel {
  return PriceJsonSchema.parse(json);
}

/** A price model as JSON (snake_case, integers in minor units): what the API answers and the column stores. */
export function priceJsonOf(model: PriceModel): Record<string, unknown> {
  const n = (amount: bigint) => Number(amount);
  const upTo = (bound: bigint | null) => (bound === null ? null : Number(bound));
  switch (model.model) {
    case 'FLAT_FEE':
      return { model: model.model, amount: n(model.amount) };
    case 'PER_UNIT':
      return { model: model.model, unit_amount: n(model.unitAmount) };
    case 'TIERED':
    case 'VOLUME':
      return {
        model: model.model,
        tiers: model.tiers.map((t) => ({
          up_to: upTo(t.upTo),
          unit_amount: n(t.unitAmount),
          ...(t.flatAmount === undefined ? {} : { flat_amount: n(t.flatAmount) }),
        })),
      };
    case 'STAIRSTEP':
      return {
        model: model.model,
        steps: model.steps.map((s) => ({ up_to: upTo(s.upTo), flat_amount: n(s.flatAmount) })),
      };
  }
}

/** Metered prices as JSON, as stored in `plans.metered`. */
export function meteredJsonOf(metered: readonly MeteredPrice[]): Record<string, unknown>[] {
  return metered.map((m) => ({ code: m.code, aggregation: m.aggregation, price: priceJsonOf(m.price) }));
}

/**
 * A plan row with its `price` and `metered` columns parsed with zod.
 * @throws ZodError when a column does not hold a valid price (a corrupted row)
 */
export function planOf(row: PlanRow): Plan {
  return { ...row, price: priceModelOf(row.price), metered: MeteredJsonSchema.parse(row.metered) };
}

/**
 * The recurring amount a plan charges per period for `quantity` units (its price model; metered
 * prices are billed separately from usage, see usage.ts `usageLines`).
 * @param quantity units, non-negative
 * @returns minor units of `plan.currency`
 */
export function planAmount(plan: Pick<Plan, 'price'>, quantity: bigint): bigint {
  return priceFor(plan.price, quantity);
}

/**
 * The recurring amount of one subscription period, minor units: `amountOverride` when set, else the
 * plan's price for `quantity` units.
 */
export function baseAmount(
  plan: Pick<Plan, 'price'>,
  quantity: number,
  amountOverride: bigint | null,
): bigint {
  return amountOverride ?? planAmount(plan, BigInt(quantity));
}

/** A new plan; amounts in minor units of `currency`, tax rate in ppm. */
export interface NewPlan {
  productId: string;
  name: string;
  currency: string;
  interval: PlanInterval;
  /** Intervals per period, 1 … 366 (default 1). */
  intervalCount?: number;
  price: PriceModel;
  metered?: MeteredPrice[];
  /** Days of free trial for new subscriptions, 0 … 730. */
  trialDays?: number;
  /** Whether usage recorded during a trial is billed, on the first period's invoice (default false: free). */
  billTrialUsage?: boolean;
  /**
   * Tax rate of the plan's invoice lines in parts per million (1% = 10000), where no named tax rate
   * matches the customer's address (tax-rates.ts).
   */
  taxRatePpm?: number;
  /** Whether the price, setup fee and metered prices include their taxes (default false: tax added on top). */
  taxInclusive?: boolean;
  /** Minor units of `currency` charged once, on a subscription's first invoice, as its own line. */
  setupFee?: bigint;
  /** A fixed term: billing cycles a subscription runs (1 … 1200) before it ends; none when omitted. */
  repeat?: number;
  metadata?: Record<string, string>;
}

/**
 * Creates a plan of an active product and logs `plan.created`.
 * @throws NotFoundError when the product does not exist
 * @throws ConflictError `product_inactive` when the product is not active
 */
export async function createPlan(db: Db, actor: Actor, input: NewPlan): Promise<Plan> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const product = await work.trx
      .selectFrom('products')
      .select(['id', 'active'])
      .where('id', '=', input.productId)
      .forShare()
      .executeTakeFirst();
    if (!product) throw new NotFoundError('product', input.productId);
    if (!product.active) {
      throw new ConflictError(
        'product_inactive',
        `product ${input.productId} is not active; activate it first`,
      );
    }
    const row = await work.trx
      .insertInto('plans')
      .values({
        id: newId('plan'),
        product_id: input.productId,
        name: input.name,
        currency: input.currency,
        interval: input.interval,
        interval_count: input.intervalCount ?? 1,
        price: JSON.stringify(priceJsonOf(input.price)),
        metered: JSON.stringify(meteredJsonOf(input.metered ?? [])),
        trial_days: input.trialDays ?? 0,
        bill_trial_usage: input.billTrialUsage ?? false,
        tax_rate_ppm: input.taxRatePpm ?? 0,
        tax_inclusive: input.taxInclusive ?? false,
        setup_fee: input.setupFee ?? null,
        repeat: input.repeat ?? null,
        metadata: JSON.stringify(input.metadata ?? {}),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordActivity(work, {
      resourceType: 'plan',
      resourceId: row.id,
      action: 'plan.created',
      data: { product: row.product_id, currency: row.currency, price: row.price, metered: row.metered },
    });
    return planOf(row);
  });
}

/** @throws NotFoundError when there is no plan `id` */
export async function getPlan(db: Kysely<Database>, id: string): Promise<Plan> {
  const row = await db.selectFrom('plans').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('plan', id);
  return planOf(row);
}

/** What may change on a plan: never its price, currency or interval (create a new plan instead). */
export interface PlanUpdate {
  name?: string;
  active?: boolean;
  metadata?: Record<string, string>;
}

/**
 * Updates a plan's name, active flag or metadata (metadata is replaced as a whole) and logs
 * `plan.updated` with the changed fields; a body changing nothing changes and logs nothing.
 * @throws NotFoundError when there is no plan `id`
 */
export async function updatePlan(db: Db, actor: Actor, id: string, update: PlanUpdate): Promise<Plan> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const row = await work.trx
      .selectFrom('plans')
      .selectAll()
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirst();
    if (!row) throw new NotFoundError('plan', id);
    const changes = changedFields(row, { ...update });
    if (Object.keys(changes).length === 0) return planOf(row);
    const updated = await work.trx
      .updateTable('plans')
      .set({
        ...(changes.name === undefined ? {} : { name: update.name }),
        ...(changes.active === undefined ? {} : { active: update.active }),
        ...(changes.metadata === undefined ? {} : { metadata: JSON.stringify(update.metadata) }),
        updated_at: new Date(),
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordActivity(work, {
      resourceType: 'plan',
      resourceId: id,
      action: 'plan.updated',
      data: changes,
    });
    return planOf(updated);
  });
}
