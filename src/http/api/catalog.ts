import { Router } from 'express';
import { createPlan, getPlan, planOf, updatePlan } from '../../billing/plans.ts';
import { createProduct, getProduct, updateProduct } from '../../billing/products.ts';
import type { PlanRow } from '../../db/schema.ts';
import { actorOf } from '../actor.ts';
import type { AppDeps } from '../deps.ts';
import { listHandler } from './pagination.ts';
import {
  CreatePlan,
  CreateProduct,
  PlanListQuery,
  ProductListQuery,
  UpdatePlan,
  UpdateProduct,
} from './schemas.ts';
import { serialize } from './serialize.ts';
import { parseInput } from './validate.ts';

/** `true`/`false` as the text a list filter compares with a boolean column. */
const asText = (value: boolean | undefined) => (value === undefined ? undefined : String(value));

/**
 * /v1/products and /v1/plans: create, list, read, update. A plan's price never changes once
 * created (its update takes name, active and metadata only): to charge another price, create a
 * new plan.
 */
export function catalogRoutes({ db }: AppDeps): Router {
  const router = Router();
  router.post('/products', async (req, res) => {
    const body = parseInput(CreateProduct, req.body);
    const product = await createProduct(db, actorOf(req), {
      name: body.name,
      description: body.description,
      externalId: body.external_id,
      metadata: body.metadata,
    });
    res.status(201).json(serialize.product(product));
  });
  router.get(
    '/products',
    listHandler(db, {
      table: 'products',
      query: ProductListQuery,
      equals: (query) => ({ active: asText(query.active) }),
      map: serialize.product,
    }),
  );
  router.get('/products/:id', async (req, res) => {
    res.json(serialize.product(await getProduct(db, req.params.id)));
  });
  router.post('/products/:id', async (req, res) => {
    const body = parseInput(UpdateProduct, req.body);
    res.json(serialize.product(await updateProduct(db, actorOf(req), req.params.id, body)));
  });

  router.post('/plans', async (req, res) => {
    const body = parseInput(CreatePlan, req.body);
    const plan = await createPlan(db, actorOf(req), {
      productId: body.product,
      name: body.name,
      currency: body.currency,
      interval: body.interval,
      intervalCount: body.interval_count,
      price: body.price,
      metered: body.metered,
      trialDays: body.trial_days,
      billTrialUsage: body.bill_trial_usage,
      taxRatePpm: body.tax_percent,
      taxInclusive: body.tax_inclusive,
      setupFee: body.setup_fee,
      metadata: body.metadata,
    });
    res.status(201).json(serialize.plan(plan));
  });
  router.get(
    '/plans',
    listHandler(db, {
      table: 'plans',
      query: PlanListQuery,
      equals: (query) => ({ product_id: query.product, active: asText(query.active) }),
      map: (row: PlanRow) => serialize.plan(planOf(row)),
    }),
  );
  router.get('/plans/:id', async (req, res) => {
    res.json(serialize.plan(await getPlan(db, req.params.id)));
  });
  router.post('/plans/:id', async (req, res) => {
    const body = parseInput(UpdatePlan, req.body);
    const plan = await updatePlan(db, actorOf(req), req.params.id, {
      name: body.name,
      active: body.active,
      metadata: body.metadata,
    });
    res.json(serialize.plan(plan));
  });
  return router;
}
