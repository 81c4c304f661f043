import { Router } from 'express';
import { createCoupon, getCoupon, updateCoupon } from '../../billing/coupons.ts';
import { actorOf } from '../actor.ts';
import type { AppDeps } from '../deps.ts';
import { listHandler } from './pagination.ts';
import { CreateCoupon, ListQuery, UpdateCoupon } from './schemas.ts';
import { serialize } from './serialize.ts';
import { parseInput } from './validate.ts';

/** /v1/coupons: create, list, read, update (name, active, metadata). */
export function couponRoutes({ db }: AppDeps): Router {
  const router = Router();
  router.post('/coupons', async (req, res) => {
    const body = parseInput(CreateCoupon, req.body);
    const coupon = await createCoupon(db, actorOf(req), {
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
      metadata: body.metadata,
    });
    res.status(201).json(serialize.coupon(coupon));
  });
  router.get(
    '/coupons',
    listHandler(db, { table: 'coupons', query: ListQuery, equals: () => ({}), map: serialize.coupon }),
  );
  router.get('/coupons/:id', async (req, res) => {
    res.json(serialize.coupon(await getCoupon(db, req.params.id)));
  });
  router.post('/coupons/:id', async (req, res) => {
    const body = parseInput(UpdateCoupon, req.body);
    res.json(serialize.coupon(await updateCoupon(db, actorOf(req), req.params.id, body)));
  });
  return router;
}
