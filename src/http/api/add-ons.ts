import { z } from 'zod';
import {
  createAddOn,
  getAddOn,
  type SubscriptionAddOn as SubscriptionAddOnRecord,
  subscriptionAddOns,
  updateAddOn,
} from '../../billing/add-ons.ts';
import {
  type RedemptionWithCoupon,
  redemptionWithCoupon,
  subscriptionRedemptions,
} from '../../billing/coupons.ts';
import { previewSubscriptionAddOn } from '../../billing/preview.ts';
import {
  getSubscriptionAddOn,
  redeemAddOnCoupon,
  setSubscriptionAddOn,
} from '../../billing/subscription-add-ons.ts';
import { getSubscription } from '../../billing/subscriptions.ts';
import type { AddOnRow } from '../../db/schema.ts';
import { actorOf } from '../actor.ts';
import { policyOf } from '../deps.ts';
import { asText, listRoute } from './pagination.ts';
import {
  AddOn,
  CouponRedemption,
  listOf,
  SubscriptionAddOn,
  SubscriptionAddOnPreview,
  SubscriptionAddOnSet,
} from './responses.ts';
import { type ApiRoute, route, type Tag } from './route.ts';
import {
  CouponCode,
  Currency,
  Id,
  immutable,
  ListQuery,
  Metadata,
  MinorUnits,
  Proration,
  QueryBoolean,
  RedeemCoupon,
} from './schemas.ts';
import { serialize } from './serialize.ts';

const Name = z.string().trim().min(1).max(200);
const Description = z.string().trim().min(1).max(1000);
const Immutable = immutable("an add-on's price and currency never change: create another add-on");

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
export const AddOnListQuery = ListQuery.extend({ active: QueryBoolean.optional() });

/**
 * `POST /v1/subscriptions/:id/add-ons` (and `/preview`): set the `quantity` of `add_on` on the
 * subscription now (0 removes it, ending its coupons; no credit for the period already paid);
 * `coupon`, a coupon code to redeem on the add-on (with a quantity above 0), from the next period on;
 * `proration`, how an add-on added or raised mid-period is charged for the rest of it, as a plan
 * change's (`prorate_now` when omitted; `none`: from the next period's invoice only).
 */
export const SetSubscriptionAddOn = z.strictObject({
  add_on: Id('addon'),
  quantity: z.number().int().min(0).max(1_000_000),
  coupon: CouponCode.optional(),
  proration: Proration.optional(),
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

/**
 * A subscription's add-on with its add-on and the coupons redeemed on it (those of `redemptions`,
 * the subscription's, whose add-on it is); `deleted: true` once a quantity of 0 removed it.
 */
export function serializeSubscriptionAddOn(
  r: SubscriptionAddOnRecord,
  redemptions: readonly RedemptionWithCoupon[],
  removed = false,
) {
  return {
    id: r.id,
    object: 'subscription_add_on',
    subscription: r.subscription_id,
    add_on: serializeAddOn(r.addOn),
    quantity: r.quantity,
    coupons: redemptions.filter((c) => c.add_on_id === r.add_on_id).map(serialize.couponRedemption),
    created_at: r.created_at,
    updated_at: r.updated_at,
    ...(removed ? { deleted: true } : {}),
  };
}

const tag: Tag = 'Add-ons';

/**
 * /v1/add-ons (create, list, read, update) and /v1/subscriptions/{id}/add-ons (list, read one, set a
 * quantity with a coupon, preview that, redeem a coupon on one; Billby's subscription add-ons).
 * Add-ons are billed on each period's invoice (billing/add-ons.ts), less their own coupons, and when
 * added or raised mid-period for the rest of it (billing/add-on-proration.ts; `proration` as the
 * change endpoint's); a lower quantity or a removal gives no credit for the period already paid. A
 * coupon on an add-on is removed with `POST /v1/subscriptions/{id}/coupons/{redemption}/remove`.
 * `preview` comes before `{add_on}`: Express matches in order.
 */
export const addOnRoutes: ApiRoute[] = [
  route({
    method: 'post',
    path: '/v1/add-ons',
    operationId: 'createAddOn',
    tag,
    scope: 'write',
    summary: 'Create an add-on: a recurring price per unit',
    body: CreateAddOn,
    responses: { 201: AddOn },
    handler: async (req, res, { deps, body }) => {
      const addOn = await createAddOn(deps.db, actorOf(req), {
        name: body.name,
        description: body.description,
        currency: body.currency,
        amount: body.amount,
        metadata: body.metadata,
      });
      res.status(201).json(serializeAddOn(addOn));
    },
  }),
  listRoute({
    path: '/v1/add-ons',
    operationId: 'listAddOns',
    tag,
    summary: 'List add-ons',
    query: AddOnListQuery,
    responses: { 200: listOf(AddOn, 'AddOnList') },
    list: {
      table: 'add_ons',
      equals: (query) => ({ active: asText(query.active) }),
      map: serializeAddOn,
    },
  }),
  route({
    method: 'get',
    path: '/v1/add-ons/{id}',
    operationId: 'getAddOn',
    tag,
    scope: 'read',
    summary: 'Read an add-on',
    responses: { 200: AddOn },
    handler: async (req, res, { deps }) => {
      res.json(serializeAddOn(await getAddOn(deps.db, req.params.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/add-ons/{id}',
    operationId: 'updateAddOn',
    tag,
    scope: 'write',
    summary: "Update an add-on's name, description, active flag or metadata",
    body: UpdateAddOn,
    responses: { 200: AddOn },
    handler: async (req, res, { deps, body }) => {
      const addOn = await updateAddOn(deps.db, actorOf(req), req.params.id, {
        name: body.name,
        description: body.description,
        active: body.active,
        metadata: body.metadata,
      });
      res.json(serializeAddOn(addOn));
    },
  }),
  route({
    method: 'get',
    path: '/v1/subscriptions/{id}/add-ons',
    operationId: 'listSubscriptionAddOns',
    tag,
    scope: 'read',
    summary: "A subscription's add-ons with their quantity",
    responses: { 200: listOf(SubscriptionAddOn, 'SubscriptionAddOnList') },
    handler: async (req, res, { deps: { db } }) => {
      const subscription = await getSubscription(db, req.params.id);
      const rows = await subscriptionAddOns(db, subscription.id);
      const redemptions = await subscriptionRedemptions(db, subscription.id);
      res.json({
        object: 'list',
        data: rows.map((r) => serializeSubscriptionAddOn(r, redemptions)),
        has_more: false,
      });
    },
  }),
  route({
    method: 'post',
    path: '/v1/subscriptions/{id}/add-ons/preview',
    operationId: 'previewSubscriptionAddOn',
    tag,
    scope: 'write',
    summary:
      "The next period's invoice after setting an add-on's quantity (and coupon), and (proration) the invoice it would make now for the rest of the period; for a subscription not renewed again, the proration alone (object subscription_add_on_preview, renews false); written nowhere",
    body: SetSubscriptionAddOn,
    responses: { 200: SubscriptionAddOnPreview },
    handler: async (req, res, { deps, body }) => {
      const preview = await previewSubscriptionAddOn(
        deps.db,
        actorOf(req),
        req.params.id,
        { addOnId: body.add_on, quantity: body.quantity, couponCode: body.coupon, proration: body.proration },
        new Date(),
        policyOf(deps),
      );
      const proration = preview.proration && serialize.invoicePreview(preview.proration);
      res.json(
        preview.next
          ? { ...serialize.invoicePreview(preview.next), proration }
          : { object: 'subscription_add_on_preview', renews: false, proration },
      );
    },
  }),
  route({
    method: 'get',
    path: '/v1/subscriptions/{id}/add-ons/{add_on}',
    operationId: 'getSubscriptionAddOn',
    tag,
    scope: 'read',
    summary: "A subscription's add-on (by the add-on's id) with its quantity and coupons",
    responses: { 200: SubscriptionAddOn },
    handler: async (req, res, { deps: { db } }) => {
      const subscription = await getSubscription(db, req.params.id);
      const addOn = await getSubscriptionAddOn(db, subscription.id, req.params.add_on);
      res.json(serializeSubscriptionAddOn(addOn, await subscriptionRedemptions(db, subscription.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/subscriptions/{id}/add-ons/{add_on}/coupons',
    operationId: 'redeemSubscriptionAddOnCoupon',
    tag,
    scope: 'write',
    summary: "Redeem a coupon on a subscription's add-on: it discounts that add-on's line only",
    body: RedeemCoupon,
    responses: { 201: CouponRedemption },
    handler: async (req, res, { deps, body }) => {
      const redemption = await redeemAddOnCoupon(
        deps.db,
        actorOf(req),
        req.params.id,
        req.params.add_on,
        body.coupon,
        policyOf(deps),
      );
      res
        .status(201)
        .json(serialize.couponRedemption(await redemptionWithCoupon(deps.db, req.params.id, redemption.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/subscriptions/{id}/add-ons',
    operationId: 'setSubscriptionAddOn',
    tag,
    scope: 'write',
    summary:
      'Set the quantity of an add-on on a subscription now (0 removes it and its coupons, no credit for the period paid; coupon redeems one on it from the next period); added or raised mid-period, the rest of the period is invoiced (proration: prorate_now, prorate_at_renewal, full, none)',
    body: SetSubscriptionAddOn,
    responses: {
      200: {
        schema: SubscriptionAddOnSet,
        description: 'Its quantity changed, or removed (deleted: true)',
      },
      201: { schema: SubscriptionAddOnSet, description: 'Added to the subscription' },
    },
    handler: async (req, res, { deps, body }) => {
      const { addOn, created, removed, invoice } = await setSubscriptionAddOn(
        deps.db,
        actorOf(req),
        req.params.id,
        { addOnId: body.add_on, quantity: body.quantity, couponCode: body.coupon, proration: body.proration },
        new Date(),
        policyOf(deps),
      );
      const redemptions = await subscriptionRedemptions(deps.db, req.params.id);
      res
        .status(created ? 201 : 200)
        .json({ ...serializeSubscriptionAddOn(addOn, redemptions, removed), invoice: invoice?.id ?? null });
    },
  }),
];
