import { z } from 'zod';
import { GATEWAYS } from '../../gateways/types.ts';
import { MAX_MINOR_UNITS } from '../../money/amount.ts';
import { isCurrency } from '../../money/currency.ts';
import { percentToPpm } from '../../money/rates.ts';

/** An amount in integer minor units: a JSON integer from 0 to 10^15; floats and strings are refused. */
export const MinorUnits = z
  .number({ error: 'must be an integer amount in minor units' })
  .int({ error: 'must be an integer amount in minor units (no decimals)' })
  .nonnegative()
  .max(Number(MAX_MINOR_UNITS))
  .transform((n) => BigInt(n));

/** A positive amount in minor units. */
export const PositiveMinorUnits = MinorUnits.refine((n) => n > 0n, 'must be greater than 0');

/** An ISO 4217 code; lower case is accepted and upper-cased. */
export const Currency = z
  .string()
  .regex(/^[A-Za-z]{3}$/, 'must be a three-letter ISO 4217 currency code')
  .transform((c) => c.toUpperCase())
  .refine(isCurrency, 'must be an ISO 4217 currency code');

/** One of the five gateways' names. */
export const Gateway = z.enum(GATEWAYS);

const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Metadata: at most 50 string values under keys of up to 40 characters. Keys are checked on the raw
 * object first: `__proto__` would otherwise vanish on copying, and PostgreSQL stores no NUL.
 */
export const Metadata = z.preprocess(
  (value, ctx) => {
    if (value && typeof value === 'object') {
      const bad = Object.keys(value).find(
        (k) => RESERVED_KEYS.has(k) || k.includes('\u0000') || !k.isWellFormed(),
      );
      if (bad !== undefined) {
        ctx.addIssue({
          code: 'custom',
          message: 'keys must not be __proto__, constructor or prototype, nor contain NUL',
        });
        return z.NEVER;
      }
    }
    return value;
  },
  z
    .record(z.string().max(40), z.string().max(500))
    .refine((m) => Object.keys(m).length <= 50, 'at most 50 keys'),
);

/** A billhook id of one type, e.g. `Id('cus')` accepts `cus_…`. */
export const Id = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}_[0-9a-z]{1,40}$`), `must be a ${prefix}_… id`);

/** `POST /v1/customers`: email, optional name, the caller's own id (unique) and metadata. */
export const CreateCustomer = z.strictObject({
  email: z.email().max(320),
  name: z.string().min(1).max(200).optional(),
  external_id: z.string().min(1).max(200).optional(),
  metadata: Metadata.optional(),
});

/** `POST /v1/payment-methods`: a gateway's stored-card token for a customer (never card data). */
export const CreatePaymentMethod = z.strictObject({
  customer: Id('cus'),
  gateway: Gateway,
  gateway_token: z.string().min(1).max(200),
  gateway_customer_id: z.string().min(1).max(200).optional(),
  default: z.boolean().optional(),
});

/**
 * A line's tax rate as a percentage: a decimal string or JSON number from 0 to 100 with at most four
 * decimals (`"8.875"`, `20`), parsed into parts per million (`percentToPpm`, never a float).
 */
export const LineTaxPercent = z
  .union([z.string().max(20), z.number()], {
    error: 'must be a percentage from 0 to 100 with at most 4 decimals',
  })
  .transform((value, ctx) => {
    const ppm = percentToPpm(value);
    if (ppm === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must be a percentage from 0 to 100 with at most 4 decimals' });
      return z.NEVER;
    }
    return ppm;
  });

/** A time in ISO 8601 with a zone (`2026-12-01T09:00:00Z`), as a Date. */
export const Timestamp = z.iso
  .datetime({ offset: true, error: 'must be an ISO 8601 time with a zone, e.g. 2026-12-01T09:00:00Z' })
  .transform((text) => new Date(text));

/** One line of an invoice (creation or adjustment): unit `amount` in minor units × `quantity`. */
const InvoiceLineInput = z.strictObject({
  description: z.string().min(1).max(500),
  amount: MinorUnits,
  quantity: z.number().int().min(1).max(1_000_000).default(1),
  type: z.enum(['CHARGE', 'CREDIT']).default('CHARGE'),
  tax_percent: LineTaxPercent.optional(),
});

/**
 * `POST /v1/invoices`: a DRAFT invoice; each line's `amount` is the unit amount in minor units and its
 * optional `tax_percent` the line's tax rate. `charge_at`: when the scheduler charges it once OPEN.
 */
export const CreateInvoice = z.strictObject({
  customer: Id('cus'),
  currency: Currency,
  lines: z.array(InvoiceLineInput).min(1).max(500),
  charge_at: Timestamp.optional(),
});

/** `POST /v1/invoices/:id/charge`: which payment method (default: the customer's default). */
export const ChargeInvoice = z.strictObject({ payment_method: Id('pm').optional() });

/** `POST /v1/invoices/:id/refund`: how much (minor units; default all that is refundable) and why. */
export const RefundInvoice = z.strictObject({
  amount: PositiveMinorUnits.optional(),
  reason: z.string().min(1).max(200).optional(),
});

/** `POST /v1/invoices/:id/payments`: an offline payment, minor units, by method. */
export const RecordOfflinePayment = z.strictObject({
  amount: PositiveMinorUnits,
  method: z.enum(['BANK', 'CHECK', 'CASH', 'OTHER']),
  reference: z.string().min(1).max(200).optional(),
});

/**
 * List query: cursor pagination (`limit` ≤ 100, `starting_after` = the last id of the previous page),
 * `sort` = `-created` (newest first, the default) or `created`, filters by status, customer, gateway
 * and creation time (`created_gte` inclusive, `created_lt` exclusive; ISO 8601), and `expand`
 * (comma-separated, for invoices: `customer`, `transactions`).
 */
export const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(10),
  starting_after: z.string().max(64).optional(),
  sort: z.enum(['created', '-created']).default('-created'),
  status: z.string().max(40).optional(),
  customer: z.string().max(64).optional(),
  gateway: Gateway.optional(),
  created_gte: z.iso.datetime({ offset: true }).optional(),
  created_lt: z.iso.datetime({ offset: true }).optional(),
  expand: z
    .string()
    .max(100)
    .transform((e) => e.split(',').filter(Boolean))
    .pipe(z.array(z.enum(['customer', 'transactions'])))
    .optional(),
});
export type ListQuery = z.infer<typeof ListQuery>;

/** Tailing by sequence: entries after `after_sequence`, oldest first. */
export const SequenceQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(100),
  after_sequence: z.coerce.number().int().min(0).default(0),
});

/** `GET /v1/activities`: tailing by sequence, optionally of one resource (any id) or one customer. */
export const ActivityQuery = SequenceQuery.extend({
  resource: z.string().min(1).max(64).optional(),
  customer: z.string().min(1).max(64).optional(),
});

/** `POST /v1/reconciliation-exceptions/:id/resolve`: an optional note on what was done. */
export const ResolveException = z.strictObject({ note: z.string().min(1).max(1000).optional() });

/**
 * `POST /v1/invoices/:id/lines`: an adjustment on a DRAFT invoice, a CHARGE or a CREDIT of unit
 * `amount` (minor units) × `quantity`, with an optional tax percentage.
 */
export const AddInvoiceLine = InvoiceLineInput.extend({ type: z.enum(['CHARGE', 'CREDIT']) });

/** `POST /v1/invoices/:id`: change when the scheduler charges a DRAFT or OPEN invoice (null: never). */
export const UpdateInvoice = z.strictObject({ charge_at: Timestamp.nullable() });
