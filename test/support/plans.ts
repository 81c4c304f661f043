import type { Db } from '../../src/db/database.ts';
import { newId } from '../../src/db/ids.ts';
import type { PlanInterval } from '../../src/db/schema.ts';

/** A plan to insert directly (the catalog API lives on another branch): price JSON as the API shape. */
export interface PlanOptions {
  name?: string;
  currency?: string;
  interval?: PlanInterval;
  intervalCount?: number;
  price?: unknown;
  /** Metered prices as the API shape (`[{code, aggregation, price}]`). */
  metered?: unknown;
  trialDays?: number;
  taxRatePpm?: number;
  active?: boolean;
}

/** Inserts a product and a plan on it (default: USD 20.00 flat per month, no tax, no trial). */
export async function insertPlan(db: Db, o: PlanOptions = {}): Promise<string> {
  const product = newId('prod');
  await db.insertInto('products').values({ id: product, name: 'Pro' }).execute();
  const id = newId('plan');
  await db
    .insertInto('plans')
    .values({
      id,
      product_id: product,
      name: o.name ?? 'Pro monthly',
      currency: o.currency ?? 'USD',
      interval: o.interval ?? 'MONTH',
      interval_count: o.intervalCount ?? 1,
      price: JSON.stringify(o.price ?? { model: 'FLAT_FEE', amount: 2000 }),
      ...(o.metered === undefined ? {} : { metered: JSON.stringify(o.metered) }),
      trial_days: o.trialDays ?? 0,
      tax_rate_ppm: o.taxRatePpm ?? 0,
      active: o.active ?? true,
    })
    .execute();
  return id;
}

/** Inserts a customer (no API call, no activity) and returns its id. */
export async function insertCustomer(db: Db, email = 'ada@example.com'): Promise<string> {
  const id = newId('cus');
  await db.insertInto('customers').values({ id, email, name: null, external_id: null }).execute();
  return id;
}
