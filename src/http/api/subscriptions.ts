import { Router } from 'express';
import type { z } from 'zod';
import { billingCycles } from '../../billing/billing-cycles.ts';
import { subscriptionRedemptions } from '../../billing/coupons.ts';
import { previewSubscription } from '../../billing/preview.ts';
import { changeSubscription } from '../../billing/proration.ts';
import {
  addSubscriptionCoupon,
  cancelSubscription,
  createSubscription,
  getSubscription,
  type NewSubscription,
  reactivateSubscription,
  suspendSubscription,
  updateSubscription,
} from '../../billing/subscriptions.ts';
import type { SubscriptionRow } from '../../db/schema.ts';
import { flagDuplicatePayment } from '../../exceptions/exceptions.ts';
import { settleSubscription } from '../../payments/settle.ts';
import { actorOf } from '../actor.ts';
import type { AppDeps } from '../deps.ts';
import { listHandler } from './pagination.ts';
import {
  BillingCyclesQuery,
  CancelSubscription,
  ChangeSubscription,
  CreateSubscription,
  RedeemCoupon,
  SubscriptionListQuery,
  UpdateSubscription,
} from './schemas.ts';
import { serialize } from './serialize.ts';
import { parseInput } from './validate.ts';

/** A subscription in its API shape with the id of the last invoice the request made (if any). */
export function withInvoice(subscription: SubscriptionRow, invoices: { id: string }[] = []) {
  return { ...serialize.subscription(subscription), latest_invoice: invoices.at(-1)?.id ?? null };
}

/**
 * /v1/subscriptions: create (invoicing a first period that starts now), list (status, customer),
 * read, update (metadata, payment method), cancel (now or at period end), suspend, reactivate,
 * coupons redeemed on a subscription; as Billby: preview a new subscription's first invoice, change
 * plan or quantity with proration (or preview it), settle (charge every OPEN invoice now) and the
 * billing cycles.
 */
export function subscriptionRoutes({ db, registry, accounts }: AppDeps): Router {
  const router = Router();
  router.post('/subscriptions/preview', async (req, res) => {
    const preview = await previewSubscription(
      db,
      newSubscription(parseInput(CreateSubscription, req.body)),
      new Date(),
    );
    res.json(serialize.invoicePreview(preview));
  });
  router.post('/subscriptions', async (req, res) => {
    const body = parseInput(CreateSubscription, req.body);
    const created = await createSubscription(db, actorOf(req), newSubscription(body), new Date());
    res.status(201).json(withInvoice(created.subscription, created.invoices));
  });
  router.get(
    '/subscriptions',
    listHandler(db, {
      table: 'subscriptions',
      query: SubscriptionListQuery,
      equals: (query) => ({ status: query.status, customer_id: query.customer }),
      map: serialize.subscription,
    }),
  );
  router.get('/subscriptions/:id', async (req, res) => {
    res.json(serialize.subscription(await getSubscription(db, req.params.id)));
  });
  router.post('/subscriptions/:id', async (req, res) => {
    const body = parseInput(UpdateSubscription, req.body);
    const updated = await updateSubscription(
      db,
      actorOf(req),
      req.params.id,
      { metadata: body.metadata, paymentMethodId: body.payment_method },
      new Date(),
    );
    res.json(serialize.subscription(updated));
  });
  router.post('/subscriptions/:id/cancel', async (req, res) => {
    const body = parseInput(CancelSubscription, req.body);
    res.json(
      serialize.subscription(
        await cancelSubscription(db, actorOf(req), req.params.id, body.at_period_end, new Date()),
      ),
    );
  });
  router.post('/subscriptions/:id/suspend', async (req, res) => {
    res.json(serialize.subscription(await suspendSubscription(db, actorOf(req), req.params.id, new Date())));
  });
  router.post('/subscriptions/:id/reactivate', async (req, res) => {
    const change = await reactivateSubscription(db, actorOf(req), req.params.id, new Date());
    res.json(withInvoice(change.subscription, change.invoices));
  });
  router.get('/subscriptions/:id/coupons', async (req, res) => {
    await getSubscription(db, req.params.id);
    const redemptions = await subscriptionRedemptions(db, req.params.id);
    res.json({ object: 'list', data: redemptions.map(serialize.couponRedemption), has_more: false });
  });
  router.post('/subscriptions/:id/coupons', async (req, res) => {
    const body = parseInput(RedeemCoupon, req.body);
    const redemption = await addSubscriptionCoupon(db, actorOf(req), req.params.id, body.coupon);
    const [withCoupon] = (await subscriptionRedemptions(db, req.params.id)).filter(
      (r) => r.id === redemption.id,
    );
    res.status(201).json(serialize.couponRedemption(withCoupon!));
  });
  router.post('/subscriptions/:id/change', async (req, res) => {
    const body = parseInput(ChangeSubscription, req.body);
    const result = await changeSubscription(
      db,
      actorOf(req),
      req.params.id,
      { planId: body.plan, quantity: body.quantity },
      new Date(),
      body.preview,
    );
    res.json({
      object: 'subscription_change',
      preview: body.preview,
      subscription: serialize.subscription(result.subscription),
      proration: serialize.invoicePreview(result.proration),
      invoice: result.invoice?.id ?? null,
      usage_invoice: result.usageInvoice?.id ?? null,
      credited: result.credited,
    });
  });
  router.post('/subscriptions/:id/settle', async (req, res) => {
    const results = await settleSubscription(
      db,
      actorOf(req),
      { registry, accounts },
      req.params.id,
      flagDuplicatePayment,
    );
    res.json({
      object: 'settlement',
      subscription: req.params.id,
      invoices: results.map((r) => ({
        invoice: serialize.invoice(r.invoice),
        transaction: r.transaction ? serialize.transaction(r.transaction) : null,
        error: r.error,
      })),
    });
  });
  router.get('/subscriptions/:id/billing-cycles', async (req, res) => {
    const query = parseInput(BillingCyclesQuery, req.query);
    const page = await billingCycles(db, req.params.id, query.limit, query.starting_after);
    res.json({ object: 'list', data: page.cycles.map(serialize.billingCycle), has_more: page.hasMore });
  });
  return router;
}

/** A create (or preview) request as the billing module takes it. */
function newSubscription(body: z.output<typeof CreateSubscription>): NewSubscription {
  return { ...subscriptionTerms(body), customerId: body.customer, paymentMethodId: body.payment_method };
}

/** The terms of a new subscription (all but its customer and payment method) as billing takes them. */
export function subscriptionTerms(
  body: Omit<z.output<typeof CreateSubscription>, 'customer' | 'payment_method'>,
): Omit<NewSubscription, 'customerId' | 'paymentMethodId'> {
  return {
    planId: body.plan,
    quantity: body.quantity,
    amountOverride: body.amount_override,
    startAt: body.start_at ? new Date(body.start_at) : undefined,
    trialDays: body.trial_days,
    couponCode: body.coupon,
    metadata: body.metadata,
  };
}
