import { Router } from 'express';
import { z } from 'zod';
import {
  createAddOn,
  getAddOn,
  type SubscriptionAddOn,
  subscriptionAddOns,
  updateAddOn,
} from '../../billing/add-ons.ts';
import { setSubscriptionAddOn } from '../../billing/subscription-add-ons.ts';
import { getSubscription } from '../../billing/subscriptions.ts';
import type { AddOnRow } from '../../db/schema.ts';
import { actorOf } from '../actor.ts';
import type { AppDeps } from '../deps.ts';
import { listHandler } from './pagination.ts';
import { Currency, Id, ListQuery, Metadata, MinorUnits } from './schemas.ts';
import { parseInput } from './validate.ts';

const Name = z.string().trim().min(1).max(200);
const Description = z.string().trim().min(1).max(1000);
const NEVER_CHANGES = "an add-on's price and currency never change: create another add-on";
const Immutable = z
  .unknown()
  .refine(() => false, NEVER_CHANGES)
  .optional()
  .describe(NEVER_CHANGES);

/** `POST /v1/add-ons`: a recurring price per unit and period, `amount` in minor units of `currency`. */
export const CreateAddOn = z.strictObject({
  name: Name,
  description: Description.optional(),
  currency: Currency,
  amount: MinorUnits,
  metadata: Metadata.optional(),
});

/** `POST /v1/add-ons/:id`: name, description (null clears it), active, metadata (replaced whole). */
export const UpdateAddOn = z.strictObject({
  name: Name.optional(),
  description: Description.nullable().optional(),
  active: z.boolean().optional(),
  metadata: Metadata.optional(),
  amount: Immutable,
  currency: Immutable,
});

/** `GET /v1/add-ons`: the list query, filtered by `active`. */
export const AddOnListQuery = ListQuery.extend({
  active: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
});

/**
 * `POST /v1/subscriptions/:id/add-ons`: set the `quantity` of `add_on` on the subscription (0
 * removes it), from its next period's invoice on.
 */
export const SetSubscriptionAddOn = z.strictObject({
  add_on: Id('addon'),
  quantity: z.number().int().min(0).max(1_000_000),
});

/** An add-on as the API shows it: `amount` in minor units of `currency`, per unit and period. */
export function serializeAddOn(a: AddOnRow) {
  return {
    id: a.id,
    object: 'add_on',
    name: a.name,
    description: a.description,
    currency: a.currency,
    amount: a.amount,
    active: a.active,
    metadata: a.metadata,
    created_at: a.created_at,
    updated_at: a.updated_at,
  };
}

/** A subscription's add-on with its add-on; `deleted: true` once a quantity of 0 removed it. */
export function serializeSubscriptionAddOn(r: SubscriptionAddOn, removed = false) {
  return {
    id: r.id,
    object: 'subscription_add_on',
    subscription: r.subscription_id,
    add_on: serializeAddOn(r.addOn),
    quantity: r.quantity,
    created_at: r.created_at,
    updated_at: r.updated_at,
    ...(removed ? { deleted: true } : {}),
  };
}

/**
 * /v1/add-ons (create, list, read, update) and /v1/subscriptions/:id/add-ons (list, set a
 * quantity). Add-ons are billed on each period's invoice (billing/add-ons.ts).
 */
export function addOnRoutes({ db }: AppDeps): Router {
  const router = Router();
  router.post('/add-ons', async (req, res) => {
    const body = parseInput(CreateAddOn, req.body);
    const addOn = await createAddOn(db, actorOf(req), {
      name: body.name,
      description: body.description,
      currency: body.currency,
      amount: body.amount,
      metadata: body.metadata,
    });
    res.status(201).json(serializeAddOn(addOn));
  });
  router.get(
    '/add-ons',
    listHandler(db, {
      table: 'add_ons',
      query: AddOnListQuery,
      equals: (query) => ({ active: query.active === undefined ? undefined : String(query.active) }),
      map: serializeAddOn,
    }),
  );
  router.get('/add-ons/:id', async (req, res) => {
    res.json(serializeAddOn(await getAddOn(db, req.params.id)));
  });
  router.post('/add-ons/:id', async (req, res) => {
    const body = parseInput(UpdateAddOn, req.body);
    const addOn = await updateAddOn(db, actorOf(req), req.params.id, {
      name: body.name,
      description: body.description,
      active: body.active,
      metadata: body.metadata,
    });
    res.json(serializeAddOn(addOn));
  });

  router.get('/subscriptions/:id/add-ons', async (req, res) => {
    const subscription = await getSubscription(db, req.params.id);
    const rows = await subscriptionAddOns(db, subscription.id);
    res.json({
      object: 'list',
      data: rows.map((r) => serializeSubscriptionAddOn(r)),
      has_more: false,
    });
  });
  router.post('/subscriptions/:id/add-ons', async (req, res) => {
    const body = parseInput(SetSubscriptionAddOn, req.body);
    const { addOn, created, removed } = await setSubscriptionAddOn(
      db,
      actorOf(req),
      req.params.id,
      body.add_on,
      body.quantity,
    );
    res.status(created ? 201 : 200).json(serializeSubscriptionAddOn(addOn, removed));
  });
  return router;
}
