import { Router } from 'express';
import type { z } from 'zod';
import { billingCycles } from '../../billing/billing-cycles.ts';
import { subscriptionRedemptions } from '../../billing/coupons.ts';
import { effectiveAmount } from '../../billing/effective-amount.ts';
import { previewSubscription } from '../../billing/preview.ts';
import { changeSubscription } from '../../billing/proration.ts';
import { cancelScheduledChange } from '../../billing/scheduled-change.ts';
import {
  addSubscriptionCoupon,
  createSubscription,
  getSubscription,
  type NewSubscription,
  reactivateSubscription,
  suspendSubscription,
  updateSubscription,
} from '../../billing/subscriptions.ts';
import { changeTrial } from '../../billing/trials.ts';
import type { SubscriptionRow } from '../../db/schema.ts';
import { flagDuplicatePayment } from '../../exceptions/exceptions.ts';
import { cancelSubscriptionWithRefund } from '../../payments/cancellations.ts';
import { settleSubscription } from '../../payments/settle.ts';
import { actorOf } from '../actor.ts';
import type { AppDeps } from '../deps.ts';
import { listHandler } from './pagination.ts';
import {
  BillingCyclesQuery,
  CancelSubscription,
  ChangeSubscription,
  ChangeTrial,
  CreateSubscription,
  RedeemCoupon,
  SubscriptionListQuery,
  SuspendSubscription,
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
 * read (with `effective_amount`), update (metadata, payment method), cancel (now, at period end or
 * at a date, with a refund and a reason), suspend (with a reason), reactivate, end or extend a trial,
 * coupons redeemed on a subscription; as Billby: preview a new subscription's first invoice, change
 * plan or quantity now (with a proration behaviour) or at the next cycle (or preview it; cancel a
 * scheduled change), settle (charge every OPEN invoice now) and the billing cycles.
 */
export function subscriptionRoutes({ db, boss, registry, accounts, config }: AppDeps): Router {
  const router = Router();
  const policy = { billSuspended: config.BILL_SUSPENDED_SUBSCRIPTIONS };
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
    const subscription = await getSubscription(db, req.params.id);
    const effective = await effectiveAmount(db, subscription);
    res.json({
      ...serialize.subscription(subscription),
      effective_amount: effective.amount,
      currency: effective.currency,
    });
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
    const result = await cancelSubscriptionWithRefund(
      db,
      actorOf(req),
      boss,
      { registry, accounts },
      req.params.id,
      {
        when: body.when,
        cancelAt: body.cancel_at ? new Date(body.cancel_at) : undefined,
        refundType: body.refund_type,
        reason: body.cancel_reason,
      },
      new Date(),
    );
    res.json({
      ...serialize.subscription(result.subscription),
      refund: result.refund ? serialize.refund(result.refund) : null,
    });
  });
  router.post('/subscriptions/:id/suspend', async (req, res) => {
    const body = parseInput(SuspendSubscription, req.body);
    res.json(
      serialize.subscription(
        await suspendSubscription(db, actorOf(req), req.params.id, new Date(), body.suspend_reason),
      ),
    );
  });
  router.post('/subscriptions/:id/reactivate', async (req, res) => {
    const change = await reactivateSubscription(db, actorOf(req), req.params.id, new Date(), policy);
    res.json(withInvoice(change.subscription, change.invoices));
  });
  router.post('/subscriptions/:id/trial', async (req, res) => {
    const body = parseInput(ChangeTrial, req.body);
    const end = body.trial_end === 'now' ? 'now' : new Date(body.trial_end);
    const change = await changeTrial(db, actorOf(req), req.params.id, end, new Date(), policy);
    res.json(withInvoice(change.subscription, change.invoices));
  });
  router.post('/subscriptions/:id/scheduled-change/cancel', async (req, res) => {
    res.json(
      serialize.subscription(await cancelScheduledChange(db, actorOf(req), req.params.id, new Date())),
    );
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
      { planId: body.plan, quantity: body.quantity, when: body.when, proration: body.proration },
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
