import { Router } from 'express';
import { z } from 'zod';
import {
  ActivityQuery,
  AddInvoiceLine,
  ChargeInvoice,
  CreateCustomer,
  CreateInvoice,
  CreatePaymentMethod,
  ListQuery,
  RecordOfflinePayment,
  RefundInvoice,
  ResolveException,
  SequenceQuery,
  UpdateInvoice,
} from './schemas.ts';

interface Operation {
  method: 'get' | 'post';
  path: string;
  summary: string;
  body?: z.ZodType;
  query?: z.ZodObject;
}

/** Every /v1 operation, with the zod schemas that validate its input. */
const OPERATIONS: Operation[] = [
  { method: 'post', path: '/v1/customers', summary: 'Create a customer', body: CreateCustomer },
  { method: 'get', path: '/v1/customers/{id}', summary: 'Read a customer' },
  {
    method: 'post',
    path: '/v1/payment-methods',
    summary: "Store a gateway's payment-method token",
    body: CreatePaymentMethod,
  },
  { method: 'post', path: '/v1/invoices', summary: 'Create a DRAFT invoice', body: CreateInvoice },
  { method: 'get', path: '/v1/invoices', summary: 'List invoices', query: ListQuery },
  { method: 'get', path: '/v1/invoices/{id}', summary: 'Read an invoice' },
  {
    method: 'post',
    path: '/v1/invoices/{id}',
    summary: 'Change when the scheduler charges a DRAFT or OPEN invoice (charge_at)',
    body: UpdateInvoice,
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
  { method: 'post', path: '/v1/invoices/{id}/finalize', summary: 'DRAFT → OPEN (posts the receivable)' },
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
    summary: 'Charge an OPEN invoice',
    body: ChargeInvoice,
  },
  {
    method: 'post',
    path: '/v1/invoices/{id}/refund',
    summary: 'Refund part or all of what was paid',
    body: RefundInvoice,
  },
  { method: 'get', path: '/v1/transactions', summary: 'List payment attempts', query: ListQuery },
  { method: 'get', path: '/v1/refunds', summary: 'List refunds', query: ListQuery },
  { method: 'get', path: '/v1/disputes', summary: 'List disputes', query: ListQuery },
  { method: 'get', path: '/v1/events', summary: 'List stored webhooks (the inbox)', query: ListQuery },
  { method: 'get', path: '/v1/events/{id}', summary: 'Read a stored webhook' },
  { method: 'post', path: '/v1/events/{id}/replay', summary: 'Process a stored webhook again' },
  {
    method: 'get',
    path: '/v1/reconciliation-exceptions',
    summary: 'List reconciliation exceptions',
    query: ListQuery,
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
    summary: 'The audit log in sequence order, for tailing (filter by resource or customer)',
    query: ActivityQuery,
  },
  { method: 'get', path: '/v1/ledger/accounts', summary: 'Ledger accounts with balances per currency' },
  {
    method: 'get',
    path: '/v1/ledger/entries',
    summary: 'Journal entries in sequence order, for tailing',
    query: SequenceQuery,
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
      required: ['type', 'code', 'message'],
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
        'Amounts are integers in minor units next to an ISO 4217 currency. Ids carry a type prefix.',
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
