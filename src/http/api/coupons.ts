import { createCoupon, getCoupon, updateCoupon } from '../../billing/coupons.ts';
import { actorOf } from '../actor.ts';
import { listRoute } from './pagination.ts';
import { Coupon, listOf } from './responses.ts';
import { type ApiRoute, route, type Tag } from './route.ts';
import { CreateCoupon, ListQuery, UpdateCoupon } from './schemas.ts';
import { serialize } from './serialize.ts';

const tag: Tag = 'Coupons';

/** /v1/coupons: create, list, read, update (name, active, metadata). */
export const couponRoutes: ApiRoute[] = [
  route({
    method: 'post',
    path: '/v1/coupons',
    operationId: 'createCoupon',
    tag,
    scope: 'write',
    summary: 'Create a coupon',
    body: CreateCoupon,
    responses: { 201: Coupon },
    handler: async (req, res, { deps, body }) => {
      const coupon = await createCoupon(deps.db, actorOf(req), {
        code: body.code,
        name: body.name,
        percentOffPpm: body.percent_off,
        amountOff: body.amount_off,
        currency: body.currency,
        duration: body.duration,
        durationInPeriods: body.duration_in_periods,
        maxRedemptions: body.max_redemptions,
        redeemBy: body.redeem_by,
        maxRedemptionsPerCustomer: body.max_redemptions_per_customer,
        appliesToProducts: body.applies_to_products,
        appliesToAddOns: body.applies_to_add_ons,
        metadata: body.metadata,
      });
      res.status(201).json(serialize.coupon(coupon));
    },
  }),
  listRoute({
    path: '/v1/coupons',
    operationId: 'listCoupons',
    tag,
    summary: 'List coupons',
    query: ListQuery,
    responses: { 200: listOf(Coupon, 'CouponList') },
    list: { table: 'coupons', equals: () => ({}), map: serialize.coupon },
  }),
  route({
    method: 'get',
    path: '/v1/coupons/{id}',
    operationId: 'getCoupon',
    tag,
    scope: 'read',
    summary: 'Read a coupon',
    responses: { 200: Coupon },
    handler: async (req, res, { deps }) => {
      res.json(serialize.coupon(await getCoupon(deps.db, req.params.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/coupons/{id}',
    operationId: 'updateCoupon',
    tag,
    scope: 'write',
    summary: "Update a coupon's name, active flag or metadata",
    body: UpdateCoupon,
    responses: { 200: Coupon },
    handler: async (req, res, { deps, body }) => {
      res.json(serialize.coupon(await updateCoupon(deps.db, actorOf(req), req.params.id, body)));
    },
  }),
];
