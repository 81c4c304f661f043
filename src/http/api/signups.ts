import { z } from 'zod';
import { getCustomerWithBalances } from '../../billing/customers.ts';
import { signUp } from '../../billing/signup.ts';
import { actorOf } from '../actor.ts';
import { customerInputOf } from './customer-details.ts';
import { Signup } from './responses.ts';
import { type ApiRoute, route } from './route.ts';
import { CreateCustomer, CreatePaymentMethod, CreateSubscription } from './schemas.ts';
import { serialize } from './serialize.ts';
import { subscriptionTerms, withInvoice } from './subscriptions.ts';

/**
 * `POST /v1/signups`: `customer` (as `POST /v1/customers`), `payment_method` (as
 * `POST /v1/payment-methods` without `customer` and `default`: it becomes the default) and
 * `subscription` (as `POST /v1/subscriptions` without `customer` and `payment_method`: it charges
 * the new method).
 */
export const CreateSignup = z.strictObject({
  customer: CreateCustomer,
  payment_method: CreatePaymentMethod.omit({ customer: true, default: true }),
  subscription: CreateSubscription.omit({ customer: true, payment_method: true }),
});

/**
 * /v1/signups: a customer, their payment method and their subscription in one call and one unit of
 * work (billing/signup.ts); 201 with the three objects and the first invoice's id. A refusal of any
 * part answers its 4xx and creates nothing; the Idempotency-Key store answers a repeat.
 */
export const signupRoutes: ApiRoute[] = [
  route({
    method: 'post',
    path: '/v1/signups',
    operationId: 'createSignup',
    tag: 'Customers',
    scope: 'write',
    summary: 'Create a customer, their payment method and their subscription in one call',
    body: CreateSignup,
    responses: { 201: Signup },
    handler: async (req, res, { deps: { db }, body }) => {
      const signup = await signUp(
        db,
        actorOf(req),
        {
          customer: customerInputOf(body.customer),
          paymentMethod: {
            gateway: body.payment_method.gateway,
            gatewayToken: body.payment_method.gateway_token,
            gatewayCustomerId: body.payment_method.gateway_customer_id,
            gatewayAccount: body.payment_method.gateway_account,
          },
          subscription: subscriptionTerms(body.subscription),
        },
        new Date(),
      );
      res.status(201).json({
        object: 'signup',
        // Read back: the first invoice, finalized, gave the customer a balance.
        customer: serialize.customer(await getCustomerWithBalances(db, signup.customer.id)),
        payment_method: serialize.paymentMethod(signup.paymentMethod),
        subscription: withInvoice(signup.subscription.subscription, signup.subscription.invoices),
      });
    },
  }),
];
