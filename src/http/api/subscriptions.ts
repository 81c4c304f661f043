import { sql } from 'kysely';
import type { z } from 'zod';
import { billingCycles } from '../../billing/billing-cycles.ts';
import { redemptionWithCoupon, subscriptionRedemptions } from '../../billing/coupons.ts';
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
import { policyOf } from '../deps.ts';
import { listRoute } from './pagination.ts';
import {
  BillingCycle,
  CouponRedemption,
  InvoicePreview,
  listOf,
  Subscription,
  SubscriptionCancellation,
  SubscriptionChange,
  SubscriptionRead,
  SubscriptionSettlement,
  SubscriptionWithInvoice,
} from './responses.ts';
import { type ApiRoute, route, type Tag } from './route.ts';
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

/** A subscription in its API shape with the id of the last invoice the request made (if any). */
export function withInvoice(subscription: SubscriptionRow, invoices: { id: string }[] = []) {
  return { ...serialize.subscription(subscription), latest_invoice: invoices.at(-1)?.id ?? null };
}

const tag: Tag = 'Subscriptions';

/**
 * /v1/subscriptions: create (invoicing a first period that starts now), list (status, customer),
 * read (with `effective_amount`), update (metadata, payment method), cancel (now, at period end or
 * at a date, with a refund and a reason), suspend (with a reason), reactivate, end or extend a trial,
 * coupons redeemed on a subscription; as Billby: preview a new subscription's first invoice, change
 * plan or quantity now (with a proration behaviour) or at the next cycle (or preview it; cancel a
 * scheduled change), settle (charge every OPEN invoice now) and the billing cycles. `preview` comes before `{id}`: Express matches in order.
 */
export const subscriptionRoutes: ApiRoute[] = [
  route({
    method: 'post',
    path: '/v1/subscriptions/preview',
    operationId: 'previewSubscription',
    tag,
    scope: 'write',
    summary: "A new subscription's first invoice (lines and amounts), written nowhere",
    body: CreateSubscription,
    responses: { 200: InvoicePreview },
    handler: async (_req, res, { deps, body }) => {
      const preview = await previewSubscription(deps.db, newSubscription(body), new Date());
      res.json(serialize.invoicePreview(preview));
    },
  }),
  route({
    method: 'post',
    path: '/v1/subscriptions',
    operationId: 'createSubscription',
    tag,
    scope: 'write',
    summary: 'Subscribe a customer to a plan (IN_TRIAL or ACTIVE; a period starting now is invoiced at once)',
    body: CreateSubscription,
    responses: { 201: SubscriptionWithInvoice },
    handler: async (req, res, { deps, body }) => {
      const created = await createSubscription(deps.db, actorOf(req), newSubscription(body), new Date());
      res.status(201).json(withInvoice(created.subscription, created.invoices));
    },
  }),
  listRoute({
    path: '/v1/subscriptions',
    operationId: 'listSubscriptions',
    tag,
    summary: 'List subscriptions',
    query: SubscriptionListQuery,
    responses: { 200: listOf(Subscription, 'SubscriptionList') },
    list: {
      table: 'subscriptions',
      equals: (query) => ({ status: query.status, customer_id: query.customer, plan_id: query.plan }),
      where: (query) =>
        query.product
          ? [sql<boolean>`plan_id IN (SELECT id FROM plans WHERE product_id = ${query.product})`]
          : [],
      map: serialize.subscription,
    },
  }),
  route({
    method: 'get',
    path: '/v1/subscriptions/{id}',
    operationId: 'getSubscription',
    tag,
    scope: 'read',
    summary: 'Read a subscription (with effective_amount: what its next renewal invoice would charge)',
    responses: { 200: SubscriptionRead },
    handler: async (req, res, { deps }) => {
      const subscription = await getSubscription(deps.db, req.params.id);
      const effective = await effectiveAmount(deps.db, subscription);
      res.json({
        ...serialize.subscription(subscription),
        effective_amount: effective.amount,
        currency: effective.currency,
      });
    },
  }),
  route({
    method: 'post',
    path: '/v1/subscriptions/{id}',
    operationId: 'updateSubscription',
    tag,
    scope: 'write',
    summary: "Update a subscription's metadata or payment method",
    body: UpdateSubscription,
    responses: { 200: Subscription },
    handler: async (req, res, { deps, body }) => {
      const updated = await updateSubscription(
        deps.db,
        actorOf(req),
        req.params.id,
        {
          metadata: body.metadata,
          paymentMethodId: body.payment_method,
          poNumber: body.po_number,
          invoiceNotes: body.invoice_notes,
        },
        new Date(),
      );
      res.json(serialize.subscription(updated));
    },
  }),
  route({
    method: 'post',
    path: '/v1/subscriptions/{id}/cancel',
    operationId: 'cancelSubscription',
    tag,
    scope: 'write',
    summary:
      "Cancel now, at the end of the current period or at a date; refund none, full or prorate of the current period's paid invoice and add-on invoices",
    body: CancelSubscription,
    responses: { 200: SubscriptionCancellation },
    handler: async (req, res, { deps, body }) => {
      const { db, boss, registry, accounts } = deps;
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
        policyOf(deps),
      );
      res.json({
        ...serialize.subscription(result.subscription),
        refund: result.refunds[0] ? serialize.refund(result.refunds[0]) : null,
        refunds: result.refunds.map(serialize.refund),
        credit_note: result.creditNotes[0] ? serialize.creditNote(result.creditNotes[0]) : null,
        credit_notes: result.creditNotes.map(serialize.creditNote),
        catch_up_invoices: result.catchUpInvoices.map((invoice) => invoice.id),
        refunded: result.refunded,
        credited: result.credited,
      });
    },
  }),
  route({
    method: 'post',
    path: '/v1/subscriptions/{id}/suspend',
    operationId: 'suspendSubscription',
    tag,
    scope: 'write',
    summary:
      'Suspend with an optional reason (no invoices while SUSPENDED unless BILL_SUSPENDED_SUBSCRIPTIONS)',
    body: SuspendSubscription,
    responses: { 200: Subscription },
    handler: async (req, res, { deps, body }) => {
      res.json(
        serialize.subscription(
          await suspendSubscription(deps.db, actorOf(req), req.params.id, new Date(), body.suspend_reason),
        ),
      );
    },
  }),
  route({
    method: 'post',
    path: '/v1/subscriptions/{id}/reactivate',
    operationId: 'reactivateSubscription',
    tag,
    scope: 'write',
    summary: 'SUSPENDED → ACTIVE; billing resumes with the current period (no back-billing)',
    responses: { 200: SubscriptionWithInvoice },
    handler: async (req, res, { deps }) => {
      const change = await reactivateSubscription(
        deps.db,
        actorOf(req),
        req.params.id,
        new Date(),
        policyOf(deps),
      );
      res.json(withInvoice(change.subscription, change.invoices));
    },
  }),
  route({
    method: 'post',
    path: '/v1/subscriptions/{id}/trial',
    operationId: 'changeSubscriptionTrial',
    tag,
    scope: 'write',
    summary: 'End the trial now (invoicing the first period) or move its end to a date',
    body: ChangeTrial,
    responses: { 200: SubscriptionWithInvoice },
    handler: async (req, res, { deps, body }) => {
      const end = body.trial_end === 'now' ? 'now' : new Date(body.trial_end);
      const change = await changeTrial(deps.db, actorOf(req), req.params.id, end, new Date(), policyOf(deps));
      res.json(withInvoice(change.subscription, change.invoices));
    },
  }),
  route({
    method: 'post',
    path: '/v1/subscriptions/{id}/scheduled-change/cancel',
    operationId: 'cancelSubscriptionScheduledChange',
    tag,
    scope: 'write',
    summary: 'Cancel the plan or quantity change scheduled for the next cycle',
    responses: { 200: Subscription },
    handler: async (req, res, { deps }) => {
      res.json(
        serialize.subscription(
          await cancelScheduledChange(deps.db, actorOf(req), req.params.id, new Date(), policyOf(deps)),
        ),
      );
    },
  }),
  route({
    method: 'get',
    path: '/v1/subscriptions/{id}/coupons',
    operationId: 'listSubscriptionCoupons',
    tag,
    scope: 'read',
    summary: 'Coupons redeemed on a subscription',
    responses: { 200: listOf(CouponRedemption, 'CouponRedemptionList') },
    handler: async (req, res, { deps: { db } }) => {
      await getSubscription(db, req.params.id);
      const redemptions = await subscriptionRedemptions(db, req.params.id);
      res.json({ object: 'list', data: redemptions.map(serialize.couponRedemption), has_more: false });
    },
  }),
  route({
    method: 'post',
    path: '/v1/subscriptions/{id}/coupons',
    operationId: 'redeemSubscriptionCoupon',
    tag,
    scope: 'write',
    summary: 'Redeem a coupon on a subscription',
    body: RedeemCoupon,
    responses: { 201: CouponRedemption },
    handler: async (req, res, { deps, body }) => {
      const redemption = await addSubscriptionCoupon(
        deps.db,
        actorOf(req),
        req.params.id,
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
    path: '/v1/subscriptions/{id}/change',
    operationId: 'changeSubscription',
    tag,
    scope: 'write',
    summary:
      'Change plan or quantity now (proration: prorate_now, prorate_at_renewal, full, none) or at the next cycle (preview: true writes nothing)',
    body: ChangeSubscription,
    responses: { 200: SubscriptionChange },
    handler: async (req, res, { deps, body }) => {
      const result = await changeSubscription(
        deps.db,
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
        credited_to_invoice: result.creditedToInvoice,
        catch_up_invoices: result.catchUpInvoices.map((invoice) => invoice.id),
      });
    },
  }),
  route({
    method: 'post',
    path: '/v1/subscriptions/{id}/settle',
    operationId: 'settleSubscription',
    tag,
    scope: 'write',
    summary:
      "Invoice a fixed term's remaining cycles, then charge every OPEN invoice of the subscription now",
    responses: { 200: SubscriptionSettlement },
    handler: async (req, res, { deps }) => {
      const { db, registry, accounts } = deps;
      const { invoiced, results } = await settleSubscription(
        db,
        actorOf(req),
        { registry, accounts },
        req.params.id,
        flagDuplicatePayment,
        policyOf(deps),
      );
      res.json({
        object: 'settlement',
        subscription: req.params.id,
        invoiced: invoiced.map((i) => i.id),
        invoices: results.map((r) => ({
          invoice: serialize.invoice(r.invoice),
          transaction: r.transaction ? serialize.transaction(r.transaction) : null,
          error: r.error,
        })),
      });
    },
  }),
  route({
    method: 'get',
    path: '/v1/subscriptions/{id}/billing-cycles',
    operationId: 'listSubscriptionBillingCycles',
    tag,
    scope: 'read',
    summary: 'Billing periods with their invoice, status, total and amount paid',
    query: BillingCyclesQuery,
    responses: { 200: listOf(BillingCycle, 'BillingCycleList') },
    handler: async (req, res, { deps, query }) => {
      const page = await billingCycles(deps.db, req.params.id, query.limit, query.starting_after);
      res.json({ object: 'list', data: page.cycles.map(serialize.billingCycle), has_more: page.hasMore });
    },
  }),
];

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
    repeat: body.repeat,
    couponCode: body.coupon,
    metadata: body.metadata,
    poNumber: body.po_number,
    invoiceNotes: body.invoice_notes,
  };
}
