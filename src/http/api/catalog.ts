import { createPlan, getPlan, planOf, updatePlan } from '../../billing/plans.ts';
import { createProduct, getProduct, updateProduct } from '../../billing/products.ts';
import type { PlanRow } from '../../db/schema.ts';
import { actorOf } from '../actor.ts';
import { asText, listRoute } from './pagination.ts';
import { listOf, Plan, Product } from './responses.ts';
import { type ApiRoute, route } from './route.ts';
import {
  CreatePlan,
  CreateProduct,
  PlanListQuery,
  ProductListQuery,
  UpdatePlan,
  UpdateProduct,
} from './schemas.ts';
import { serialize } from './serialize.ts';

/**
 * /v1/products and /v1/plans: create, list, read, update. A plan's price never changes once
 * created (its update takes name, active and metadata only): to charge another price, create a
 * new plan.
 */
export const catalogRoutes: ApiRoute[] = [
  route({
    method: 'post',
    path: '/v1/products',
    operationId: 'createProduct',
    tag: 'Products',
    scope: 'write',
    summary: 'Create a product',
    body: CreateProduct,
    responses: { 201: Product },
    handler: async (req, res, { deps, body }) => {
      const product = await createProduct(deps.db, actorOf(req), {
        name: body.name,
        description: body.description,
        externalId: body.external_id,
        metadata: body.metadata,
      });
      res.status(201).json(serialize.product(product));
    },
  }),
  listRoute({
    path: '/v1/products',
    operationId: 'listProducts',
    tag: 'Products',
    summary: 'List products',
    query: ProductListQuery,
    responses: { 200: listOf(Product, 'ProductList') },
    list: {
      table: 'products',
      equals: (query) => ({ active: asText(query.active) }),
      map: serialize.product,
    },
  }),
  route({
    method: 'get',
    path: '/v1/products/{id}',
    operationId: 'getProduct',
    tag: 'Products',
    scope: 'read',
    summary: 'Read a product',
    responses: { 200: Product },
    handler: async (req, res, { deps }) => {
      res.json(serialize.product(await getProduct(deps.db, req.params.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/products/{id}',
    operationId: 'updateProduct',
    tag: 'Products',
    scope: 'write',
    summary: 'Update a product (name, description, active, metadata)',
    body: UpdateProduct,
    responses: { 200: Product },
    handler: async (req, res, { deps, body }) => {
      res.json(serialize.product(await updateProduct(deps.db, actorOf(req), req.params.id, body)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/plans',
    operationId: 'createPlan',
    tag: 'Plans',
    scope: 'write',
    summary: "Create a plan: a product's price per period",
    body: CreatePlan,
    responses: { 201: Plan },
    handler: async (req, res, { deps, body }) => {
      const plan = await createPlan(deps.db, actorOf(req), {
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
        repeat: body.repeat,
        metadata: body.metadata,
      });
      res.status(201).json(serialize.plan(plan));
    },
  }),
  listRoute({
    path: '/v1/plans',
    operationId: 'listPlans',
    tag: 'Plans',
    summary: 'List plans',
    query: PlanListQuery,
    responses: { 200: listOf(Plan, 'PlanList') },
    list: {
      table: 'plans',
      equals: (query) => ({ product_id: query.product, active: asText(query.active) }),
      map: (row: PlanRow) => serialize.plan(planOf(row)),
    },
  }),
  route({
    method: 'get',
    path: '/v1/plans/{id}',
    operationId: 'getPlan',
    tag: 'Plans',
    scope: 'read',
    summary: 'Read a plan',
    responses: { 200: Plan },
    handler: async (req, res, { deps }) => {
      res.json(serialize.plan(await getPlan(deps.db, req.params.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/plans/{id}',
    operationId: 'updatePlan',
    tag: 'Plans',
    scope: 'write',
    summary: 'Update a plan (name, active, metadata); a price never changes: create a new plan',
    body: UpdatePlan,
    responses: { 200: Plan },
    handler: async (req, res, { deps, body }) => {
      const plan = await updatePlan(deps.db, actorOf(req), req.params.id, {
        name: body.name,
        active: body.active,
        metadata: body.metadata,
      });
      res.json(serialize.plan(plan));
    },
  }),
];
