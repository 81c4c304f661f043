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
import { customerInputOf } from './customer-details.ts';
import { accountFilter, listFilter, listRoute } from './pagination.ts';
import { Customer, CustomerCreditRefund, listOf, PaymentMethod } from './responses.ts';
import { type ApiRoute, route } from './route.ts';
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

/**
 * /v1/customers (create, list, read, update — contact, address, tax and locale fields included;
 * each with its ledger balances and credit; refund their credit) and /v1/payment-methods (store,
 * list the attached ones, read, make default or replace the gateway token).
 */
export const customerRoutes: ApiRoute[] = [
  route({
    method: 'post',
    path: '/v1/customers',
    operationId: 'createCustomer',
    tag: 'Customers',
    scope: 'write',
    summary: 'Create a customer',
    body: CreateCustomer,
    responses: { 201: Customer },
    handler: async (req, res, { deps, body }) => {
      const customer = await createCustomer(deps.db, actorOf(req), customerInputOf(body));
      // A new customer has no ledger account yet, so no balance and no credit.
      res.status(201).json(serialize.customer({ ...customer, balances: [], credit: [] }));
    },
  }),
  route({
    method: 'get',
    path: '/v1/customers',
    operationId: 'listCustomers',
    tag: 'Customers',
    scope: 'read',
    summary: 'List customers with balances',
    query: CustomerListQuery,
    responses: { 200: listOf(Customer, 'CustomerList') },
    handler: async (_req, res, { deps: { db }, query }) => {
      const rows = await listRows<CustomerRow>(
        db,
        'customers',
        listFilter(query, 'created_at', {
          email: query.email,
          external_id: query.external_id,
          address_country: query.country,
        }),
      );
      const page = await withBalances(db, rows.slice(0, query.limit));
      res.json({ object: 'list', data: page.map(serialize.customer), has_more: rows.length > query.limit });
    },
  }),
  route({
    method: 'get',
    path: '/v1/customers/{id}',
    operationId: 'getCustomer',
    tag: 'Customers',
    scope: 'read',
    summary: 'Read a customer',
    responses: { 200: Customer },
    handler: async (req, res, { deps }) => {
      res.json(serialize.customer(await getCustomerWithBalances(deps.db, req.params.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/customers/{id}/credit/refund',
    operationId: 'refundCustomerCredit',
    tag: 'Customers',
    scope: 'write',
    summary: "Pay back part of a customer's credit through their most recent gateway payments",
    body: RefundCustomerCredit,
    responses: { 201: CustomerCreditRefund },
    handler: async (req, res, { deps: { db, boss, registry, accounts }, body }) => {
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
    },
  }),
  route({
    method: 'post',
    path: '/v1/customers/{id}',
    operationId: 'updateCustomer',
    tag: 'Customers',
    scope: 'write',
    summary:
      'Update a customer (email, name, external_id, metadata; phone, address, tax_id, tax_exempt, locale, invoice_prefix, payment_terms_days)',
    body: UpdateCustomer,
    responses: { 200: Customer },
    handler: async (req, res, { deps: { db }, body }) => {
      const customer = await updateCustomer(db, actorOf(req), req.params.id, customerInputOf(body));
      res.json(serialize.customer(await getCustomerWithBalances(db, customer.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/payment-methods',
    operationId: 'createPaymentMethod',
    tag: 'Payment methods',
    scope: 'write',
    summary: "Store a gateway's payment-method token",
    body: CreatePaymentMethod,
    responses: { 201: PaymentMethod },
    handler: async (req, res, { deps, body }) => {
      const method = await createPaymentMethod(deps.db, actorOf(req), {
        customerId: body.customer,
        gateway: body.gateway,
        gatewayToken: body.gateway_token,
        gatewayCustomerId: body.gateway_customer_id,
        isDefault: body.default,
        gatewayAccount: body.gateway_account,
      });
      res.status(201).json(serialize.paymentMethod(method));
    },
  }),
  listRoute({
    path: '/v1/payment-methods',
    operationId: 'listPaymentMethods',
    tag: 'Payment methods',
    summary: 'List payment methods',
    query: PaymentMethodListQuery,
    responses: { 200: listOf(PaymentMethod, 'PaymentMethodList') },
    list: {
      table: 'payment_methods',
      equals: (query) => ({
        customer_id: query.customer,
        gateway: query.gateway,
        gateway_account: accountFilter(query.gateway_account),
        // Detached ones are read by id only (GET /v1/payment-methods/:id), as Stripe lists them.
        detached_at: null,
      }),
      map: serialize.paymentMethod,
    },
  }),
  route({
    method: 'get',
    path: '/v1/payment-methods/{id}',
    operationId: 'getPaymentMethod',
    tag: 'Payment methods',
    scope: 'read',
    summary: 'Read a payment method',
    responses: { 200: PaymentMethod },
    handler: async (req, res, { deps }) => {
      res.json(serialize.paymentMethod(await getPaymentMethod(deps.db, req.params.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/payment-methods/{id}',
    operationId: 'updatePaymentMethod',
    tag: 'Payment methods',
    scope: 'write',
    summary: "Make a payment method its customer's only default, or replace its gateway token",
    body: UpdatePaymentMethod,
    responses: { 200: PaymentMethod },
    handler: async (req, res, { deps, body }) => {
      const method = await updatePaymentMethod(deps.db, actorOf(req), req.params.id, {
        default: body.default,
        gatewayToken: body.gateway_token,
        gatewayCustomerId: body.gateway_customer_id,
      });
      res.json(serialize.paymentMethod(method));
    },
  }),
];
