import { Router } from 'express';
import {
  createCustomer,
  createPaymentMethod,
  getCustomerWithBalances,
  getPaymentMethod,
  updateCustomer,
  withBalances,
} from '../../billing/customers.ts';
import { updatePaymentMethod } from '../../billing/payment-methods.ts';
import { listRows } from '../../db/list.ts';
import type { CustomerRow } from '../../db/schema.ts';
import { refundCustomerCredit } from '../../payments/credit-refunds.ts';
import { actorOf } from '../actor.ts';
import type { AppDeps } from '../deps.ts';
import { customerDetailsOf } from './customer-details.ts';
import { accountFilter, listFilter, listHandler } from './pagination.ts';
import {
  CreateCustomer,
  CreatePaymentMethod,
  CustomerListQuery,
  PaymentMethodListQuery,
  RefundCustomerCredit,
  UpdateCustomer,
  UpdatePaymentMethod,
} from './schemas.ts';
import { serialize } from './serialize.ts';
import { parseInput } from './validate.ts';

/**
 * /v1/customers (create, list, read, update — contact, address, tax and locale fields included;
 * each with its ledger balances and credit; refund their credit) and /v1/payment-methods (store,
 * list the attached ones, read, make default or replace the gateway token).
 */
export function customerRoutes({ db, boss, registry, accounts }: AppDeps): Router {
  const router = Router();
  router.post('/customers', async (req, res) => {
    const body = parseInput(CreateCustomer, req.body);
    const customer = await createCustomer(db, actorOf(req), {
      email: body.email,
      name: body.name,
      externalId: body.external_id,
      metadata: body.metadata,
      ...customerDetailsOf(body),
    });
    // A new customer has no ledger account yet, so no balance and no credit.
    res.status(201).json(serialize.customer({ ...customer, balances: [], credit: [] }));
  });
  router.get('/customers', async (req, res) => {
    const query = parseInput(CustomerListQuery, req.query);
    const rows = await listRows<CustomerRow>(
      db,
      'customers',
      listFilter(query, 'created_at', { email: query.email, external_id: query.external_id }),
    );
    const page = await withBalances(db, rows.slice(0, query.limit));
    res.json({ object: 'list', data: page.map(serialize.customer), has_more: rows.length > query.limit });
  });
  router.get('/customers/:id', async (req, res) => {
    res.json(serialize.customer(await getCustomerWithBalances(db, req.params.id)));
  });
  router.post('/customers/:id/credit/refund', async (req, res) => {
    const body = parseInput(RefundCustomerCredit, req.body);
    const refunds = await refundCustomerCredit(
      db,
      actorOf(req),
      boss,
      { registry, accounts },
      req.params.id,
      body,
    );
    res.status(201).json({
      object: 'customer_credit_refund',
      customer: serialize.customer(await getCustomerWithBalances(db, req.params.id)),
      refunds: refunds.map(serialize.refund),
    });
  });
  router.post('/customers/:id', async (req, res) => {
    const body = parseInput(UpdateCustomer, req.body);
    const customer = await updateCustomer(db, actorOf(req), req.params.id, {
      email: body.email,
      name: body.name,
      externalId: body.external_id,
      metadata: body.metadata,
      ...customerDetailsOf(body),
    });
    res.json(serialize.customer(await getCustomerWithBalances(db, customer.id)));
  });
  router.post('/payment-methods', async (req, res) => {
    const body = parseInput(CreatePaymentMethod, req.body);
    const method = await createPaymentMethod(db, actorOf(req), {
      customerId: body.customer,
      gateway: body.gateway,
      gatewayToken: body.gateway_token,
      gatewayCustomerId: body.gateway_customer_id,
      isDefault: body.default,
      gatewayAccount: body.gateway_account,
    });
    res.status(201).json(serialize.paymentMethod(method));
  });
  router.get(
    '/payment-methods',
    listHandler(db, {
      table: 'payment_methods',
      query: PaymentMethodListQuery,
      equals: (query) => ({
        customer_id: query.customer,
        gateway: query.gateway,
        gateway_account: accountFilter(query.gateway_account),
        // Detached ones are read by id only (GET /v1/payment-methods/:id), as Stripe lists them.
        detached_at: null,
      }),
      map: serialize.paymentMethod,
    }),
  );
  router.get('/payment-methods/:id', async (req, res) => {
    res.json(serialize.paymentMethod(await getPaymentMethod(db, req.params.id)));
  });
  router.post('/payment-methods/:id', async (req, res) => {
    const body = parseInput(UpdatePaymentMethod, req.body);
    const method = await updatePaymentMethod(db, actorOf(req), req.params.id, {
      default: body.default,
      gatewayToken: body.gateway_token,
      gatewayCustomerId: body.gateway_customer_id,
    });
    res.json(serialize.paymentMethod(method));
  });
  return router;
}
