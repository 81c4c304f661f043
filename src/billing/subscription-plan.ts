import type { Kysely } from 'kysely';
import type { Database, PlanRow } from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';
import { type PriceModel, PriceModelSchema, priceFor } from './pricing.ts';

/**
 * Reading a plan for subscription billing. Private stand-in for the catalog's `planOf(row)` /
 * `priceModelOf(json)` (src/billing/plans.ts, on another branch): switch to those at merge.
 */

/** A plan row with its recurring price model parsed. */
export interface BillingPlan extends PlanRow {
  model: PriceModel;
}

const KEYS: Record<string, string> = { unit_amount: 'unitAmount', up_to: 'upTo', flat_amount: 'flatAmount' };

/** snake_case keys → camelCase; integers (JSON numbers or decimal strings) → bigint, except `model`. */
function toModelInput(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((v) => toModelInput(v));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [KEYS[k] ?? k, toModelInput(v, KEYS[k] ?? k)]),
    );
  }
  if (key !== 'model' && typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (key !== 'model' && typeof value === 'string' && /^\d{1,16}$/.test(value)) return BigInt(value);
  return value;
}

/**
 * The price model stored in `plans.price` (API shape: snake_case, integer minor units).
 * @throws ZodError when the stored JSON is not a price model
 */
export function storedPriceModel(json: unknown): PriceModel {
  return PriceModelSchema.parse(toModelInput(json));
}

/**
 * Reads plan `id` with its price model.
 * @throws NotFoundError when there is no such plan
 */
export async function loadBillingPlan(db: Kysely<Database>, id: string): Promise<BillingPlan> {
  const row = await db.selectFrom('plans').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('plan', id);
  return { ...row, model: storedPriceModel(row.price) };
}

/**
 * The recurring amount of one period, minor units: `amountOverride` when set, else the plan's price
 * model for `quantity` units (`priceFor`).
 */
export function baseAmount(plan: BillingPlan, quantity: number, amountOverride: bigint | null): bigint {
  return amountOverride ?? priceFor(plan.model, BigInt(quantity));
}
