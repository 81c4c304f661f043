import { Router } from 'express';
import { z } from 'zod';
import { subscriptionRedemptions } from '../../billing/coupons.ts';
import { closeCustomer, reopenCustomer } from '../../billing/customer-status.ts';
import { getCustomerWithBalances } from '../../billing/customers.ts';
import { detachPaymentMethod } from '../../billing/payment-methods.ts';
import { removeSubscriptionCoupon } from '../../billing/subscriptions.ts';
import { deleteUsageLimit } from '../../billing/usage.ts';
import { actorOf } from '../actor.ts';
import type { AppDeps } from '../deps.ts';
import { serialize } from './serialize.ts';
import { parseInput } from './validate.ts';

/** The archival actions take no body: `{}` or none. */
export const NoBody = z.strictObject({});

/**
 * The seeds' delete and close operations, as archival (PRODUCT §14): nothing is deleted, each sets a
 * time and logs an activity, and reads keep answering. `POST /v1/customers/:id/close` and `/reopen`
 * (billing/customer-status.ts), `POST /v1/payment-methods/:id/detach`, `POST /v1/usage-limits/:id/delete`,
 * `POST /v1/subscriptions/:id/coupons/:redemption/remove`. Each answers 200 with the object as it is
 * now; detaching, deleting or removing again answers the same object and logs nothing.
 */
export function archivalRoutes({ db }: AppDeps): Router {
  const router = Router();
  router.post('/customers/:id/close', async (req, res) => {
    parseInput(NoBody, req.body ?? {});
    await closeCustomer(db, actorOf(req), req.params.id, new Date());
    res.json(serialize.customer(await getCustomerWithBalances(db, req.params.id)));
  });
  router.post('/customers/:id/reopen', async (req, res) => {
    parseInput(NoBody, req.body ?? {});
    await reopenCustomer(db, actorOf(req), req.params.id, new Date());
    res.json(serialize.customer(await getCustomerWithBalances(db, req.params.id)));
  });
  router.post('/payment-methods/:id/detach', async (req, res) => {
    parseInput(NoBody, req.body ?? {});
    res.json(serialize.paymentMethod(await detachPaymentMethod(db, actorOf(req), req.params.id, new Date())));
  });
  router.post('/usage-limits/:id/delete', async (req, res) => {
    parseInput(NoBody, req.body ?? {});
    res.json(serialize.usageLimit(await deleteUsageLimit(db, actorOf(req), req.params.id, new Date())));
  });
  router.post('/subscriptions/:id/coupons/:redemption/remove', async (req, res) => {
    parseInput(NoBody, req.body ?? {});
    const removed = await removeSubscriptionCoupon(
      db,
      actorOf(req),
      req.params.id,
      req.params.redemption,
      new Date(),
    );
    const [withCoupon] = (await subscriptionRedemptions(db, req.params.id)).filter(
      (r) => r.id === removed.id,
    );
    res.json(serialize.couponRedemption(withCoupon!));
  });
  return router;
}
