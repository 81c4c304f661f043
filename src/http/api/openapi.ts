import { Router } from 'express';
import { z } from 'zod';
import { AddOnListQuery, CreateAddOn, SetSubscriptionAddOn, UpdateAddOn } from './add-ons.ts';
import { NoBody } from './archival.ts';
import { CreateGatewayAccount, RotateWebhookSecret, UpdateGatewayAccount } from './gateway-accounts.ts';
import {
  AccountQuery,
  ActivityQuery,
  AddInvoiceLine,
  BillingCyclesQuery,
  CancelSubscription,
  ChangeSubscription,
  ChangeTrial,
  ChargeInvoice,
  CreateCoupon,
  CreateCustomer,
  CreateInvoice,
  CreatePaymentMethod,
  CreatePlan,
  CreateProduct,
  CreateSubscription,
  CreateUsageEvent,
  CreateUsageLimit,
  CreditNoteListQuery,
  CustomerListQuery,
  EventListQuery,
  ExceptionListQuery,
  GatewayListQuery,
  InvoiceListQuery,
  InvoiceReadQuery,
  ListQuery,
  PaymentMethodListQuery,
  PlanListQuery,
  ProductListQuery,
  RecordOfflinePayment,
  RedeemCoupon,
  RefundCustomerCredit,
  RefundInvoice,
  ResolveException,
  SequenceQuery,
  SubscriptionListQuery,
  SuspendSubscription,
  TransactionListQuery,
  UpdateCoupon,
  UpdateCustomer,
  UpdateInvoice,
  UpdatePaymentMethod,
  UpdatePlan,
  UpdateProduct,
  UpdateSubscription,
  UpdateUsageLimit,
  UsageEventListQuery,
  UsageLimitListQuery,
} from './schemas.ts';
import { PayoutListQuery, SettlementReportQuery } from './settlement.ts';
import { SettlementImportQuery } from './settlement-import.ts';
import { CreateSignup } from './signups.ts';
import { CreateTaxRate, TaxRateListQuery, UpdateTaxRate } from './tax-rates.ts';
import { CreateWebhookEndpoint, DeliveryListQuery, UpdateWebhookEndpoint } from './webhook-endpoints.ts';

/** One /v1 operation: its method, path (`{id}` for a path parameter) and the schemas of its input. */
export interface Operation {
  method: 'get' | 'post';
  path: string;
  summary: string;
  body?: z.ZodType;
  query?: z.ZodObject;
}

/**
 * Every /v1 operation, with the zod schemas that validate its input. `query` lists every query
 * parameter the route takes: any other is 422 `unknown_parameter` (strict-query.ts).
 */
export const OPERATIONS: Operation[] = [
  { method: 'post', path: '/v1/customers', summary: 'Create a customer', body: CreateCustomer },
  { method: 'get', path: '/v1/customers/{id}', summary: 'Read a customer' },
  {
    method: 'post',
    path: '/v1/payment-methods',
    summary: "Store a gateway's payment-method token",
    body: CreatePaymentMethod,
  },
  {
    method: 'post',
    path: '/v1/invoices',
    summary:
      'Create a DRAFT invoice (lines; payment_terms_days, po_number, title, notes, external_id; number: null until finalized)',
    body: CreateInvoice,
  },
  {
    method: 'get',
    path: '/v1/invoices',
    summary: 'List invoices (filter by status, customer, subscription, number, external_id)',
    query: InvoiceListQuery,
  },
  {
    method: 'get',
    path: '/v1/invoices/{id}',
    summary: 'Read an invoice (expand: customer, transactions, credit_notes)',
    query: InvoiceReadQuery,
  },
  {
    method: 'post',
    path: '/v1/invoices/{id}',
    summary:
      "Change when the scheduler charges a DRAFT or OPEN invoice (charge_at) and a DRAFT's payment_terms_days, po_number, title, notes, external_id",
    body: UpdateInvoice,
  },
  {
    method: 'get',
    path: '/v1/invoices/{id}/pdf',
    summary:
      'The PDF of a finalized invoice (application/pdf: number, due date, lines, totals, credit notes, payments)',
  },
  {
    method: 'post',
    path: '/v1/invoices/{id}/lines',
    summary: 'Add an adjustment line (CHARGE or CREDIT, optional tax) to a DRAFT invoice',
    body: AddInvoiceLine,
  },
  {
    method: 'post',
    path: '/v1/invoices/{id}/mark-uncollectible',
    summary: 'OPEN → UNCOLLECTIBLE (writes the unpaid amount off as bad debt)',
  },
  {
    method: 'post',
    path: '/v1/invoices/{id}/finalize',
    summary: 'DRAFT → OPEN (posts the receivable; gives the number and the due date)',
  },
  {
    method: 'post',
    path: '/v1/invoices/{id}/void',
    summary: 'Void an unpaid invoice (reverses the receivable)',
  },
  {
    method: 'post',
    path: '/v1/invoices/{id}/payments',
    summary: 'Record an offline payment',
    body: RecordOfflinePayment,
  },
  {
    method: 'post',
    path: '/v1/invoices/{id}/charge',
    summary: 'Charge an OPEN or UNCOLLECTIBLE invoice (a success reverses the bad-debt write-off)',
    body: ChargeInvoice,
  },
  {
    method: 'post',
    path: '/v1/invoices/{id}/refund',
    summary: 'Refund part or all of what was paid',
    body: RefundInvoice,
  },
  {
    method: 'get',
    path: '/v1/transactions',
    summary:
      'List payments: gateway payment attempts and offline payments (type gateway | offline; filter by status, customer, gateway, gateway_account, invoice, type)',
    query: TransactionListQuery,
  },
  {
    method: 'get',
    path: '/v1/transactions/{id}/receipt',
    summary: 'The PDF receipt of a succeeded payment, gateway (txn_) or offline (op_) (application/pdf)',
  },
  {
    method: 'get',
    path: '/v1/currencies',
    summary:
      "Every ISO 4217 currency with its exponent, name, symbol and each gateway's support (one page, all of them)",
  },
  {
    method: 'get',
    path: '/v1/currencies/{code}',
    summary: "One ISO 4217 currency with its exponent and each gateway's support",
  },
  {
    method: 'get',
    path: '/v1/transactions/{id}',
    summary:
      'Read a payment attempt (amount_captured: what a succeeded one moved, less than amount after a partial capture)',
  },
  {
    method: 'post',
    path: '/v1/transactions/{id}/void',
    summary:
      'Void an authorization or an unsettled charge at its gateway (200 voided: canceled, a succeeded one reversed in the ledger and on its invoice; 202 unknown; 409 when it cannot be voided)',
  },
  { method: 'get', path: '/v1/refunds', summary: 'List refunds', query: GatewayListQuery },
  { method: 'get', path: '/v1/refunds/{id}', summary: 'Read a refund' },
  {
    method: 'get',
    path: '/v1/credit-notes',
    summary:
      "List credit notes (a refund's share of its invoice's subtotal and tax); filter by invoice, refund",
    query: CreditNoteListQuery,
  },
  { method: 'get', path: '/v1/credit-notes/{id}', summary: 'Read a credit note' },
  { method: 'get', path: '/v1/disputes', summary: 'List disputes', query: GatewayListQuery },
  { method: 'get', path: '/v1/disputes/{id}', summary: 'Read a dispute' },
  {
    method: 'get',
    path: '/v1/events',
    summary:
      'List stored webhooks (the inbox; customer: deliveries naming their transactions, refunds or disputes; created_gte/created_lt: when received)',
    query: EventListQuery,
  },
  { method: 'get', path: '/v1/events/{id}', summary: 'Read a stored webhook' },
  { method: 'post', path: '/v1/events/{id}/replay', summary: 'Process a stored webhook again' },
  {
    method: 'get',
    path: '/v1/reconciliation-exceptions',
    summary: 'List reconciliation exceptions (filter by status, gateway, gateway_account, payout)',
    query: ExceptionListQuery,
  },
  { method: 'get', path: '/v1/reconciliation-exceptions/{id}', summary: 'Read a reconciliation exception' },
  {
    method: 'post',
    path: '/v1/settlements/import',
    summary:
      'Import a settlement report (text/csv body: billhook format, docs/settlement-csv.md, or securepay); the same file twice changes nothing',
    query: SettlementImportQuery,
  },
  {
    method: 'post',
    path: '/v1/reconciliation-exceptions/{id}/resolve',
    summary: 'Mark a reconciliation exception resolved',
    body: ResolveException,
  },
  {
    method: 'get',
    path: '/v1/activities',
    summary:
      'The audit log in sequence order, for tailing (filter by resource, customer, created_gte, created_lt)',
    query: ActivityQuery,
  },
  {
    method: 'get',
    path: '/v1/ledger/accounts',
    summary:
      'Ledger accounts with balances per currency, by code then currency (filter by code, currency, type)',
    query: AccountQuery,
  },
  { method: 'get', path: '/v1/ledger/accounts/{id}', summary: 'Read a ledger account with its balance' },
  {
    method: 'get',
    path: '/v1/ledger/accounts/{id}/entries',
    summary: "An account's journal entries in sequence order, for tailing",
    query: SequenceQuery,
  },
  {
    method: 'get',
    path: '/v1/ledger/entries',
    summary: 'Journal entries in sequence order, for tailing',
    query: SequenceQuery,
  },
  // ---- Settlement (PRODUCT.md §13) ----
  {
    method: 'get',
    path: '/v1/payouts',
    summary:
      'List payouts with what their lines add up to (filter by gateway, gateway_account, status, currency, created and arrival dates)',
    query: PayoutListQuery,
  },
  {
    method: 'get',
    path: '/v1/payouts/{id}',
    summary:
      'Read a payout: gross, fees, refunds, disputes, adjustments, net, status, arrival date, and its lines with what each matched',
  },
  {
    method: 'get',
    path: '/v1/reports/settlement',
    summary:
      'Settlement report per gateway account and currency over [from, to): clearing by source (charges, refunds, disputes, fees, payouts) from its opening to its closing balance, gateway fees, payouts in transit, bank',
    query: SettlementReportQuery,
  },
  // ---- Catalog, customer and payment-method updates, usage ----
  { method: 'get', path: '/v1/customers', summary: 'List customers with balances', query: CustomerListQuery },
  {
    method: 'post',
    path: '/v1/customers/{id}',
    summary: 'Update a customer (email, name, external_id, metadata)',
    body: UpdateCustomer,
  },
  {
    method: 'post',
    path: '/v1/customers/{id}/credit/refund',
    summary: "Pay back part of a customer's credit through their most recent gateway payments",
    body: RefundCustomerCredit,
  },
  {
    method: 'get',
    path: '/v1/payment-methods',
    summary: 'List payment methods',
    query: PaymentMethodListQuery,
  },
  { method: 'get', path: '/v1/payment-methods/{id}', summary: 'Read a payment method' },
  {
    method: 'post',
    path: '/v1/payment-methods/{id}',
    summary: "Make a payment method its customer's only default, or replace its gateway token",
    body: UpdatePaymentMethod,
  },
  {
    method: 'post',
    path: '/v1/payment-methods/{id}/detach',
    summary: 'Detach a payment method (kept for its history, never charged again)',
    body: NoBody,
  },
  {
    method: 'post',
    path: '/v1/customers/{id}/close',
    summary: 'Close a customer: no new invoice, subscription or charge until reopened',
    body: NoBody,
  },
  { method: 'post', path: '/v1/customers/{id}/reopen', summary: 'Reopen a closed customer', body: NoBody },
  {
    method: 'post',
    path: '/v1/usage-limits/{id}/delete',
    summary: 'Delete a usage limit (kept for its history, acts no more)',
    body: NoBody,
  },
  {
    method: 'post',
    path: '/v1/subscriptions/{id}/coupons/{redemption}/remove',
    summary: 'Remove a redeemed coupon: later invoices are not discounted by it',
    body: NoBody,
  },
  {
    method: 'post',
    path: '/v1/signups',
    summary: 'Create a customer, their payment method and their subscription in one call',
    body: CreateSignup,
  },
  { method: 'post', path: '/v1/products', summary: 'Create a product', body: CreateProduct },
  { method: 'get', path: '/v1/products', summary: 'List products', query: ProductListQuery },
  { method: 'get', path: '/v1/products/{id}', summary: 'Read a product' },
  {
    method: 'post',
    path: '/v1/products/{id}',
    summary: 'Update a product (name, description, active, metadata)',
    body: UpdateProduct,
  },
  {
    method: 'post',
    path: '/v1/plans',
    summary: "Create a plan: a product's price per period",
    body: CreatePlan,
  },
  { method: 'get', path: '/v1/plans', summary: 'List plans', query: PlanListQuery },
  { method: 'get', path: '/v1/plans/{id}', summary: 'Read a plan' },
  {
    method: 'post',
    path: '/v1/plans/{id}',
    summary: 'Update a plan (name, active, metadata); a price never changes: create a new plan',
    body: UpdatePlan,
  },
  {
    method: 'post',
    path: '/v1/usage-events',
    summary: 'Record a usage event (idempotent on event_id: 201 stored, 200 the same again)',
    body: CreateUsageEvent,
  },
  {
    method: 'get',
    path: '/v1/usage-events',
    summary: 'List usage events (filter by subscription or customer)',
    query: UsageEventListQuery,
  },
  {
    method: 'get',
    path: '/v1/customers/{id}/usage-estimate',
    summary: "A customer's usage cost so far in the current periods",
  },
  {
    method: 'post',
    path: '/v1/usage-limits',
    summary: 'Warn or suspend once a customer usage estimate reaches an amount',
    body: CreateUsageLimit,
  },
  {
    method: 'get',
    path: '/v1/usage-limits',
    summary: 'List usage limits (filter by customer)',
    query: UsageLimitListQuery,
  },
  { method: 'get', path: '/v1/usage-limits/{id}', summary: 'Read a usage limit' },
  {
    method: 'post',
    path: '/v1/usage-limits/{id}',
    summary: "Update a usage limit's amount or action",
    body: UpdateUsageLimit,
  },
  // ---- Subscriptions and coupons ----
  {
    method: 'post',
    path: '/v1/subscriptions',
    summary: 'Subscribe a customer to a plan (IN_TRIAL or ACTIVE; a period starting now is invoiced at once)',
    body: CreateSubscription,
  },
  { method: 'get', path: '/v1/subscriptions', summary: 'List subscriptions', query: SubscriptionListQuery },
  { method: 'get', path: '/v1/subscriptions/{id}', summary: 'Read a subscription' },
  {
    method: 'post',
    path: '/v1/subscriptions/{id}',
    summary: "Update a subscription's metadata or payment method",
    body: UpdateSubscription,
  },
  {
    method: 'post',
    path: '/v1/subscriptions/{id}/cancel',
    summary:
      'Cancel now, at the end of the current period or at a date; refund none, full or prorate of the paid current period',
    body: CancelSubscription,
  },
  {
    method: 'post',
    path: '/v1/subscriptions/{id}/suspend',
    summary:
      'Suspend with an optional reason (no invoices while SUSPENDED unless BILL_SUSPENDED_SUBSCRIPTIONS)',
    body: SuspendSubscription,
  },
  {
    method: 'post',
    path: '/v1/subscriptions/{id}/trial',
    summary: 'End the trial now (invoicing the first period) or move its end to a date',
    body: ChangeTrial,
  },
  {
    method: 'post',
    path: '/v1/subscriptions/{id}/scheduled-change/cancel',
    summary: 'Cancel the plan or quantity change scheduled for the next cycle',
  },
  {
    method: 'post',
    path: '/v1/subscriptions/{id}/reactivate',
    summary: 'SUSPENDED → ACTIVE; billing resumes with the current period (no back-billing)',
  },
  { method: 'get', path: '/v1/subscriptions/{id}/coupons', summary: 'Coupons redeemed on a subscription' },
  {
    method: 'post',
    path: '/v1/subscriptions/{id}/coupons',
    summary: 'Redeem a coupon on a subscription',
    body: RedeemCoupon,
  },
  {
    method: 'post',
    path: '/v1/subscriptions/preview',
    summary: "A new subscription's first invoice (lines and amounts), written nowhere",
    body: CreateSubscription,
  },
  {
    method: 'post',
    path: '/v1/subscriptions/{id}/change',
    summary:
      'Change plan or quantity now (proration: prorate_now, prorate_at_renewal, full, none) or at the next cycle (preview: true writes nothing)',
    body: ChangeSubscription,
  },
  {
    method: 'post',
    path: '/v1/subscriptions/{id}/settle',
    summary: 'Charge every OPEN invoice of the subscription now',
  },
  {
    method: 'get',
    path: '/v1/subscriptions/{id}/billing-cycles',
    summary: 'Billing periods with their invoice, status, total and amount paid',
    query: BillingCyclesQuery,
  },
  { method: 'post', path: '/v1/coupons', summary: 'Create a coupon', body: CreateCoupon },
  { method: 'get', path: '/v1/coupons', summary: 'List coupons', query: ListQuery },
  { method: 'get', path: '/v1/coupons/{id}', summary: 'Read a coupon' },
  {
    method: 'post',
    path: '/v1/coupons/{id}',
    summary: "Update a coupon's name, active flag or metadata",
    body: UpdateCoupon,
  },
  {
    method: 'post',
    path: '/v1/tax-rates',
    summary: 'Create a named tax rate for a country or state (inclusive or exclusive, compound or not)',
    body: CreateTaxRate,
  },
  { method: 'get', path: '/v1/tax-rates', summary: 'List tax rates', query: TaxRateListQuery },
  { method: 'get', path: '/v1/tax-rates/{id}', summary: 'Read a tax rate' },
  {
    method: 'post',
    path: '/v1/tax-rates/{id}',
    summary: "Update a tax rate's display fields, or archive it (active: false)",
    body: UpdateTaxRate,
  },
  {
    method: 'post',
    path: '/v1/add-ons',
    summary: 'Create an add-on: a recurring price per unit',
    body: CreateAddOn,
  },
  { method: 'get', path: '/v1/add-ons', summary: 'List add-ons', query: AddOnListQuery },
  { method: 'get', path: '/v1/add-ons/{id}', summary: 'Read an add-on' },
  {
    method: 'post',
    path: '/v1/add-ons/{id}',
    summary: "Update an add-on's name, description, active flag or metadata",
    body: UpdateAddOn,
  },
  {
    method: 'get',
    path: '/v1/subscriptions/{id}/add-ons',
    summary: "A subscription's add-ons with their quantity",
  },
  {
    method: 'post',
    path: '/v1/subscriptions/{id}/add-ons',
    summary: 'Set the quantity of an add-on on a subscription (0 removes it), from its next invoice on',
    body: SetSubscriptionAddOn,
  },
  {
    method: 'post',
    path: '/v1/gateway-accounts',
    summary: 'Create a gateway account (admin; credentials encrypted, never returned)',
    body: CreateGatewayAccount,
  },
  { method: 'get', path: '/v1/gateway-accounts', summary: 'List gateway accounts (admin)' },
  { method: 'get', path: '/v1/gateway-accounts/{id}', summary: 'Read a gateway account (admin)' },
  {
    method: 'post',
    path: '/v1/gateway-accounts/{id}',
    summary: "Update a gateway account's name, API base or credentials (admin)",
    body: UpdateGatewayAccount,
  },
  {
    method: 'post',
    path: '/v1/gateway-accounts/{id}/disable',
    summary: 'Disable a gateway account: its webhook route answers 404 (admin)',
  },
  {
    method: 'post',
    path: '/v1/gateway-accounts/{id}/rotate-webhook-secret',
    summary: "Rotate a gateway account's webhook secret (admin)",
    body: RotateWebhookSecret,
  },
  {
    method: 'post',
    path: '/v1/webhook-endpoints',
    summary: "Register an endpoint for billhook's events (admin; the whsec_ secret shown once)",
    body: CreateWebhookEndpoint,
  },
  { method: 'get', path: '/v1/webhook-endpoints', summary: 'List webhook endpoints (admin)' },
  { method: 'get', path: '/v1/webhook-endpoints/{id}', summary: 'Read a webhook endpoint (admin)' },
  {
    method: 'post',
    path: '/v1/webhook-endpoints/{id}',
    summary: "Update a webhook endpoint's URL, event types or description (admin)",
    body: UpdateWebhookEndpoint,
  },
  {
    method: 'post',
    path: '/v1/webhook-endpoints/{id}/disable',
    summary: 'Disable a webhook endpoint (admin)',
  },
  {
    method: 'post',
    path: '/v1/webhook-endpoints/{id}/enable',
    summary: 'Enable a webhook endpoint again (admin)',
  },
  {
    method: 'post',
    path: '/v1/webhook-endpoints/{id}/rotate-secret',
    summary: "Replace a webhook endpoint's signing secret (admin; the new one shown once)",
  },
  {
    method: 'get',
    path: '/v1/webhook-endpoints/{id}/deliveries',
    summary: "An endpoint's delivery log, newest first (admin)",
    query: DeliveryListQuery,
  },
  {
    method: 'post',
    path: '/v1/webhook-endpoints/{id}/deliveries/{delivery}/redeliver',
    summary: "Send a delivery's event again, as a new delivery (admin)",
  },
];

const jsonSchema = (schema: z.ZodType) => {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  return rest;
};

const ErrorEnvelope = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        type: { type: 'string' },
        code: { type: 'string' },
        message: { type: 'string' },
        fields: { type: 'object', additionalProperties: { type: 'string' } },
      },
      required: ['type', 'code', 'message', 'fields'],
    },
  },
};

/**
 * The OpenAPI 3.1 document of /v1, generated from the same zod schemas that validate requests, so
 * it cannot drift from what the API accepts.
 */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    const parameters = [
      ...[...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
        name: m[1],
        in: 'path',
        required: true,
        schema: { type: 'string' },
      })),
      ...Object.entries(op.query ? (jsonSchema(op.query).properties as Record<string, unknown>) : {}).map(
        ([name, schema]) => ({
          name,
          in: 'query',
          schema,
        }),
      ),
      ...(op.method === 'post'
        ? [{ name: 'Idempotency-Key', in: 'header', schema: { type: 'string', maxLength: 255 } }]
        : []),
    ];
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      summary: op.summary,
      parameters,
      ...(op.body
        ? {
            requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(op.body) } } },
          }
        : {}),
      responses: {
        '200': { description: 'OK (201 for creations, 202 for a replay)' },
        default: { description: 'Error', content: { 'application/json': { schema: ErrorEnvelope } } },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'billhook',
      version: '1',
      description:
        'Amounts are integers in minor units next to an ISO 4217 currency. Ids carry a type prefix. ' +
        'Lists are cursor-paged: `limit` defaults to 10 (at most 100) with `starting_after`; the ledger, ' +
        'activities and billing cycles default to 100; `/v1/currencies` answers every currency at once.',
    },
    components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
    security: [{ apiKey: [] }],
    paths,
  };
}

/** `GET /openapi.json` (no key needed). */
export function openApiRoutes(): Router {
  const router = Router();
  const document = openApiDocument();
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  return router;
}
