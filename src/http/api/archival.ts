import { redemptionWithCoupon } from '../../billing/coupons.ts';
import { closeCustomer, reopenCustomer } from '../../billing/customer-status.ts';
import { getCustomerWithBalances } from '../../billing/customers.ts';
import { detachPaymentMethod } from '../../billing/payment-methods.ts';
import { removeSubscriptionCoupon } from '../../billing/subscriptions.ts';
import { deleteUsageLimit } from '../../billing/usage.ts';
import { actorOf } from '../actor.ts';
import { policyOf } from '../deps.ts';
import { CouponRedemption, Customer, PaymentMethod, UsageLimit } from './responses.ts';
import { type ApiRoute, route } from './route.ts';
import { serialize } from './serialize.ts';

/**
 * The seeds' delete and close operations, as archival (PRODUCT §14): nothing is deleted, each sets a
 * time and logs an activity, and reads keep answering. `POST /v1/customers/{id}/close` and `/reopen`
 * (billing/customer-status.ts), `POST /v1/payment-methods/{id}/detach`, `POST /v1/usage-limits/{id}/delete`,
 * `POST /v1/subscriptions/{id}/coupons/{redemption}/remove`. Each answers 200 with the object as it is
 * now; detaching, deleting or removing again answers the same object and logs nothing.
 */
export const archivalRoutes: ApiRoute[] = [
  route({
    method: 'post',
    path: '/v1/customers/{id}/close',
    operationId: 'closeCustomer',
    tag: 'Customers',
    scope: 'write',
    summary: 'Close a customer: no new invoice, subscription or charge until reopened',
    responses: { 200: Customer },
    handler: async (req, res, { deps: { db } }) => {
      await closeCustomer(db, actorOf(req), req.params.id, new Date());
      res.json(serialize.customer(await getCustomerWithBalances(db, req.params.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/customers/{id}/reopen',
    operationId: 'reopenCustomer',
    tag: 'Customers',
    scope: 'write',
    summary: 'Reopen a closed customer',
    responses: { 200: Customer },
    handler: async (req, res, { deps: { db } }) => {
      await reopenCustomer(db, actorOf(req), req.params.id, new Date());
      res.json(serialize.customer(await getCustomerWithBalances(db, req.params.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/payment-methods/{id}/detach',
    operationId: 'detachPaymentMethod',
    tag: 'Payment methods',
    scope: 'write',
    summary: 'Detach a payment method (kept for its history, never charged again)',
    responses: { 200: PaymentMethod },
    handler: async (req, res, { deps }) => {
      res.json(
        serialize.paymentMethod(await detachPaymentMethod(deps.db, actorOf(req), req.params.id, new Date())),
      );
    },
  }),
  route({
    method: 'post',
    path: '/v1/usage-limits/{id}/delete',
    operationId: 'deleteUsageLimit',
    tag: 'Usage',
    scope: 'write',
    summary: 'Delete a usage limit (kept for its history, acts no more)',
    responses: { 200: UsageLimit },
    handler: async (req, res, { deps }) => {
      res.json(
        serialize.usageLimit(await deleteUsageLimit(deps.db, actorOf(req), req.params.id, new Date())),
      );
    },
  }),
  route({
    method: 'post',
    path: '/v1/subscriptions/{id}/coupons/{redemption}/remove',
    operationId: 'removeSubscriptionCoupon',
    tag: 'Subscriptions',
    scope: 'write',
    summary: 'Remove a redeemed coupon: later invoices are not discounted by it',
    responses: { 200: CouponRedemption },
    handler: async (req, res, { deps }) => {
      const removed = await removeSubscriptionCoupon(
        deps.db,
        actorOf(req),
        req.params.id,
        req.params.redemption,
        new Date(),
        policyOf(deps),
      );
      res.json(serialize.couponRedemption(await redemptionWithCoupon(deps.db, req.params.id, removed.id)));
    },
  }),
];
