import { Router } from 'express';
import { subscriptionRedemptions } from '../../billing/coupons.ts';
import {
  addSubscriptionCoupon,
  cancelSubscription,
  createSubscription,
  getSubscription,
  reactivateSubscription,
  suspendSubscription,
  updateSubscription,
} from '../../billing/subscriptions.ts';
import { listRows } from '../../db/list.ts';
import type { SubscriptionRow } from '../../db/schema.ts';
import type { AppDeps } from '../deps.ts';
import { listFilter, toPage } from './pagination.ts';
import {
  CancelSubscription,
  CreateSubscription,
  ListQuery,
  RedeemCoupon,
  UpdateSubscription,
} from './schemas.ts';
import { serialize } from './serialize.ts';
import { parseInput } from './validate.ts';

/** A subscription in its API shape with the id of the last invoice the request made (if any). */
function withInvoice(subscription: SubscriptionRow, invoices: { id: string }[] = []) {
  return { ...serialize.subscription(subscription), latest_invoice: invoices.at(-1)?.id ?? null };
}

/**
 * /v1/subscriptions: create (invoicing a first period that starts now), list (status, customer),
 * read, update (metadata, payment method), cancel (now or at period end), suspend, reactivate, and
 * coupons redeemed on a subscription.
 */
export function subscriptionRoutes({ db }: AppDeps): Router {
  const router = Router();
  router.post('/subscriptions', async (req, res) => {
    const body = parseInput(CreateSubscription, req.body);
    const created = await createSubscription(
      db,
      {
        customerId: body.customer,
        planId: body.plan,
        quantity: body.quantity,
        amountOverride: body.amount_override,
        paymentMethodId: body.payment_method,
        startAt: body.start_at ? new Date(body.start_at) : undefined,
        trialDays: body.trial_days,
        couponCode: body.coupon,
        metadata: body.metadata,
      },
      new Date(),
    );
    res.status(201).json(withInvoice(created.subscription, created.invoices));
  });
  router.get('/subscriptions', async (req, res) => {
    const query = parseInput(ListQuery, req.query);
    const rows = await listRows<SubscriptionRow>(
      db,
      'subscriptions',
      listFilter(query, 'created_at', { status: query.status, customer_id: query.customer }),
    );
    res.json(toPage(rows, query.limit, serialize.subscription));
  });
  router.get('/subscriptions/:id', async (req, res) => {
    res.json(serialize.subscription(await getSubscription(db, req.params.id)));
  });
  router.post('/subscriptions/:id', async (req, res) => {
    const body = parseInput(UpdateSubscription, req.body);
    const updated = await updateSubscription(
      db,
      req.params.id,
      { metadata: body.metadata, paymentMethodId: body.payment_method },
      new Date(),
    );
    res.json(serialize.subscription(updated));
  });
  router.post('/subscriptions/:id/cancel', async (req, res) => {
    const body = parseInput(CancelSubscription, req.body);
    res.json(
      serialize.subscription(await cancelSubscription(db, req.params.id, body.at_period_end, new Date())),
    );
  });
  router.post('/subscriptions/:id/suspend', async (req, res) => {
    res.json(serialize.subscription(await suspendSubscription(db, req.params.id, new Date())));
  });
  router.post('/subscriptions/:id/reactivate', async (req, res) => {
    const change = await reactivateSubscription(db, req.params.id, new Date());
    res.json(withInvoice(change.subscription, change.invoices));
  });
  router.get('/subscriptions/:id/coupons', async (req, res) => {
    await getSubscription(db, req.params.id);
    const redemptions = await subscriptionRedemptions(db, req.params.id);
    res.json({ object: 'list', data: redemptions.map(serialize.couponRedemption), has_more: false });
  });
  router.post('/subscriptions/:id/coupons', async (req, res) => {
    const body = parseInput(RedeemCoupon, req.body);
    const redemption = await addSubscriptionCoupon(db, req.params.id, body.coupon);
    const [withCoupon] = (await subscriptionRedemptions(db, req.params.id)).filter(
      (r) => r.id === redemption.id,
    );
    res.status(201).json(serialize.couponRedemption(withCoupon!));
  });
  return router;
}
