import { z } from 'zod';
import { MeteredJsonSchema, MetricCode, PriceJsonSchema } from '../../billing/plans.ts';
import { ACCOUNT_TYPES } from '../../db/schema.ts';
import { GATEWAYS } from '../../gateways/types.ts';
import { MAX_MINOR_UNITS } from '../../money/amount.ts';
import { isCurrency } from '../../money/currency.ts';
import { percentToPpm } from '../../money/rates.ts';
import { CountryCode, CustomerDetailsFields } from './customer-details.ts';
import {
  CREDIT_NOTE_STATUSES,
  DISPUTE_STATUSES,
  EXCEPTION_STATUSES,
  INBOX_STATUSES,
  INVOICE_STATUSES,
  REFUND_STATUSES,
  SUBSCRIPTION_STATUSES,
  TRANSACTION_STATUSES,
} from './statuses.ts';

/** An amount in integer minor units: a JSON integer from 0 to 10^15; floats and strings are refused. */
export const MinorUnits = z
  .number({ error: 'must be a JSON integer amount in minor units (no decimals, not a string)' })
  // Each check names its own fault: the schema's message above would answer them all (zod 4), so -1
  // read "must be an integer amount" and 10^16 "(no decimals)". The bound first: 10^16 is no safe integer.
  .nonnegative({ error: 'must not be negative' })
  .max(Number(MAX_MINOR_UNITS), { error: `must be at most ${MAX_MINOR_UNITS} (10^15) minor units` })
  .int({ error: 'must be an integer amount in minor units (no decimals)' })
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

/**
 * A percentage with at most four decimals, 0 to 100, as a string (`"8.875"`) or a JSON number
 * (`8.875`, `20`; the body parser hands a fractional one over as its source text, json-input.ts);
 * read into parts per million, never through a float.
 */
export const Percent = z.union([z.string().max(10), z.number()]).transform((value, ctx) => {
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

/** Net N days of payment terms (Billby's `terms`, 0–365): an invoice is due N days after finalization. */
export const PaymentTermsDays = z.number().int().min(0).max(365);

/** The prefix of a customer's invoice numbers: 1–12 upper-case letters or digits (`ACME` → `ACME-000001`). */
export const InvoicePrefix = z
  .string()
  .regex(/^[A-Z0-9]{1,12}$/, 'must be 1 to 12 upper-case letters or digits');

/**
 * `POST /v1/customers`: email, optional name (the billing contact's), the caller's own id (unique),
 * metadata, the contact and tax fields of `CustomerDetailsFields`, and for their invoices a number
 * prefix (default `INV`) and payment terms (net N days; default 0).
 */
export const CreateCustomer = z.strictObject({
  email: z.email().max(320),
  name: z.string().min(1).max(200).optional(),
  external_id: z.string().min(1).max(200).optional(),
  metadata: Metadata.optional(),
  invoice_prefix: InvoicePrefix.optional(),
  payment_terms_days: PaymentTermsDays.optional(),
  ...CustomerDetailsFields,
});

/** `POST /v1/payment-methods`: a gateway's stored-card token for a customer (never card data). */
export const CreatePaymentMethod = z.strictObject({
  customer: Id('cus'),
  gateway: Gateway,
  gateway_token: z.string().min(1).max(200),
  gateway_customer_id: z.string().min(1).max(200).optional(),
  default: z.boolean().optional(),
  /** The gateway account (`gwa_…`, of `gateway`, enabled) that charges it; omitted: the gateway's default account. */
  gateway_account: Id('gwa').optional(),
});

/** One line of an invoice (creation or adjustment): unit `amount` in minor units × `quantity`. */
const InvoiceLineInput = z.strictObject({
  description: z.string().min(1).max(500),
  amount: MinorUnits,
  quantity: z.number().int().min(1).max(1_000_000).default(1),
  type: z.enum(['CHARGE', 'CREDIT']).default('CHARGE'),
  tax_percent: Percent.optional(),
});

/** An invoice's purchase order number (also a subscription's, copied onto each of its invoices). */
const PoNumber = z.string().min(1).max(100);
/** An invoice's notes (also a subscription's `invoice_notes`, copied onto each of its invoices). */
const InvoiceNotes = z.string().min(1).max(1000);

/**
 * What an invoice says beyond its lines, set while DRAFT (null clears one): `payment_terms_days` (net
 * N days; null: the customer's), `po_number`, `title`, `notes` (Billby's `invoice_notes`, ≤ 1000
 * characters) and `external_id` (the caller's own id, unique among invoices: 409 `external_id_taken`).
 */
const InvoiceDetailFields = {
  payment_terms_days: PaymentTermsDays.nullable().optional(),
  po_number: PoNumber.nullable().optional(),
  title: z.string().min(1).max(200).nullable().optional(),
  notes: InvoiceNotes.nullable().optional(),
  external_id: z.string().min(1).max(200).nullable().optional(),
};

/**
 * `POST /v1/invoices`: a DRAFT invoice; each line's `amount` is the unit amount in minor units and its
 * optional `tax_percent` the line's tax rate. `charge_at`: when the scheduler charges it once OPEN.
 * Plus its details (`InvoiceDetailFields`).
 */
export const CreateInvoice = z.strictObject({
  customer: Id('cus'),
  currency: Currency,
  lines: z.array(InvoiceLineInput).min(1).max(500),
  charge_at: Timestamp.optional(),
  ...InvoiceDetailFields,
});

/** `POST /v1/invoices/:id/charge`: which payment method (default: the customer's default). */
export const ChargeInvoice = z.strictObject({ payment_method: Id('pm').optional() });

/**
 * `POST /v1/invoices/:id/refund`: how much (minor units; default all that is refundable: with
 * `transaction`, that payment's whole room capped by what the invoice can still give back; without,
 * the invoice's, which one payment must hold), why, and through which of the invoice's succeeded
 * gateway payments (`transaction`, a `txn_…` id; default the newest that can take the amount). Both
 * omitted, an invoice that is not a subscription's period invoice (a prorated change's, an add-on's,
 * a one-off) also gives the customer credit applied to it back to the customer's credit.
 */
export const RefundInvoice = z.strictObject({
  amount: PositiveMinorUnits.optional(),
  transaction: Id('txn').optional().meta({
    description:
      "The invoice's succeeded gateway payment to refund (txn_…); with amount omitted, its whole refundable room (capped by what the invoice can still give back). Omitted: the newest payment whose refundable room covers the amount (amount omitted too: the one payment holding all the invoice can give back, else 422 naming {\"transaction\": \"txn_…\"} per payment). One request refunds one payment: an invoice paid twice (a duplicate payment) refunds the duplicate with transaction = its txn_…. Amount and transaction both omitted, an invoice that is not a subscription's period invoice (a prorated change's, an add-on's, a one-off) also gives the customer credit applied to it back to the customer's credit (its credit_returned)",
  }),
  reason: z.string().min(1).max(200).optional(),
});

/**
 * `POST /v1/invoices/:id/credit/return`: how much of the customer credit that paid an invoice (not
 * the current period's invoice of a subscription still running) goes back to the customer's credit (minor units; default all that can: what
 * the invoice kept beyond the cash its payments can still refund, up to the credit applied and not
 * returned yet), and why (on its credit note).
 */
export const ReturnInvoiceCredit = z.strictObject({
  amount: PositiveMinorUnits.optional(),
  reason: z.string().min(1).max(200).optional(),
});

/**
 * `POST /v1/customers/:id/credit/refund`: pay back `amount` (minor units of `currency`) of the
 * customer's credit through their recent gateway payments.
 */
export const RefundCustomerCredit = z.strictObject({
  amount: PositiveMinorUnits,
  currency: Currency,
  reason: z.string().min(1).max(200).optional(),
});

/** `POST /v1/invoices/:id/payments`: an offline payment, minor units, by method. */
export const RecordOfflinePayment = z.strictObject({
  amount: PositiveMinorUnits,
  method: z.enum(['BANK', 'CHECK', 'CASH', 'OTHER']),
  reference: z.string().min(1).max(200).optional(),
});

/**
 * `POST /v1/invoices/:id/payments/:payment/reverse`: why an offline payment is taken back (a bounced
 * cheque), 1–500 characters, stored as the payment's failure message.
 */
export const ReverseOfflinePayment = z.strictObject({
  reason: z
    .string()
    .trim()
    .min(1)
    .max(500)
    .meta({ description: 'Why the payment is taken back, e.g. "cheque 1042 returned unpaid"' }),
});

/**
 * The query every list takes: cursor pagination (`limit` ≤ 100, `starting_after` = the last id of
 * the previous page; one naming no row of the list is 422 `resource_missing`, db/list.ts), `sort` =
 * `-created` (newest first, the default) or `created`, and the creation time (`created_gte`
 * inclusive, `created_lt` exclusive; ISO 8601 with a zone). Each list extends it with the filters it
 * implements (below) and nothing else: a parameter a route does not take is 422 `unknown_parameter`
 * (`mountRoutes`, route.ts), never silently ignored.
 */
export const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(10),
  starting_after: z.string().max(64).optional(),
  sort: z.enum(['created', '-created']).default('-created'),
  created_gte: z.iso.datetime({ offset: true }).optional(),
  created_lt: z.iso.datetime({ offset: true }).optional(),
});
export type ListQuery = z.infer<typeof ListQuery>;

/**
 * A list's `status` filter: one of the statuses its rows have, spelt as the API answers them; any
 * other value (`paid` for `PAID`) is 422 with the statuses named, never an empty page that reads as
 * "none" (no invoice OPEN, nothing owed).
 */
const byStatus = <const S extends readonly [string, ...string[]]>(statuses: S) => ({
  status: z.enum(statuses, { error: () => `must be one of ${statuses.join(', ')}` }).optional(),
});
/** Filters several lists share: exact equality on the row's column of the same meaning. */
const ByCustomer = { customer: z.string().max(64).optional() };
/** A gateway account filter's value: `default` (the gateway's default account) or a `gwa_…` id. */
export const GatewayAccountFilter = z.union([z.literal('default'), Id('gwa')]);
/** The gateway and the gateway account. */
const ByGateway = {
  gateway: Gateway.optional(),
  gateway_account: GatewayAccountFilter.optional(),
};

/**
 * `expand` of an invoice: comma-separated `customer`, `transactions` (its payment attempts and offline
 * payments), `credit_notes` (objects instead of ids, or lists the invoice does not carry otherwise).
 */
const InvoiceExpand = z
  .string()
  .max(100)
  .meta({
    description:
      'Comma-separated: customer (the object instead of its id), transactions (its payment attempts and offline payments), credit_notes (its credit notes); any other value is 422',
  })
  .transform((e) => e.split(',').filter(Boolean))
  .pipe(z.array(z.enum(['customer', 'transactions', 'credit_notes'])))
  .optional();

/**
 * `GET /v1/invoices`: by status, customer, subscription (`sub_…`), `number` (`INV-000123`, Billby's
 * `invoice_number` filter) and `external_id`, with `expand`.
 */
export const InvoiceListQuery = ListQuery.extend({
  ...byStatus(INVOICE_STATUSES),
  ...ByCustomer,
  subscription: z.string().max(64).optional(),
  number: z.string().max(40).optional(),
  external_id: z.string().max(200).optional(),
  expand: InvoiceExpand,
});

/** `GET /v1/invoices/:id`: `expand` only. */
export const InvoiceReadQuery = z.object({ expand: InvoiceExpand });

/**
 * `GET /v1/transactions`: by status, customer, gateway, gateway account, invoice (`inv_…`), subscription
 * (`sub_…`: the payments of its invoices) and `type`
 * (`gateway`: payment attempts; `offline`: payments recorded with `POST /v1/invoices/:id/payments`).
 */
export const TransactionListQuery = ListQuery.extend({
  ...byStatus(TRANSACTION_STATUSES),
  ...ByCustomer,
  ...ByGateway,
  invoice: z.string().max(64).optional(),
  subscription: z.string().max(64).optional(),
  type: z.enum(['gateway', 'offline']).optional(),
});

/** By gateway and gateway account (what refunds, disputes, the inbox and exceptions filter by). */
export const GatewayListQuery = ListQuery.extend({ ...ByGateway });

/**
 * `GET /v1/refunds`: by status, gateway, gateway account and `customer` (the customer of its payment
 * or invoice, or whose credit it paid back).
 */
export const RefundListQuery = GatewayListQuery.extend({ ...byStatus(REFUND_STATUSES), ...ByCustomer });

/** `GET /v1/disputes`: by status, gateway, gateway account and `customer` (its payment's, else its invoice's). */
export const DisputeListQuery = GatewayListQuery.extend({ ...byStatus(DISPUTE_STATUSES), ...ByCustomer });

/**
 * `GET /v1/events` (the inbox): by status, gateway, gateway account, `customer` (deliveries whose
 * normalised events name one of the customer's transactions, refunds or disputes: inbox/customer.ts)
 * and when received (`created_gte` / `created_lt`).
 */
export const EventListQuery = GatewayListQuery.extend({ ...byStatus(INBOX_STATUSES), ...ByCustomer });

/** `GET /v1/credit-notes`: by status, customer, `invoice` and `refund`. */
export const CreditNoteListQuery = ListQuery.extend({
  ...byStatus(CREDIT_NOTE_STATUSES),
  ...ByCustomer,
  invoice: z.string().max(64).optional(),
  refund: z.string().max(64).optional(),
});

/** `GET /v1/reconciliation-exceptions`: by status, gateway, gateway account and `payout` (`pyo_…`). */
export const ExceptionListQuery = GatewayListQuery.extend({
  ...byStatus(EXCEPTION_STATUSES),
  payout: Id('pyo').optional(),
});

/** `GET /v1/subscriptions`: by status, customer, plan (`plan_…`) and product (`prod_…`: any of its plans). */
export const SubscriptionListQuery = ListQuery.extend({
  ...byStatus(SUBSCRIPTION_STATUSES),
  ...ByCustomer,
  plan: z.string().max(64).optional(),
  product: z.string().max(64).optional(),
});

/** `GET /v1/payment-methods`: by customer, gateway and gateway account. */
export const PaymentMethodListQuery = ListQuery.extend({ ...ByCustomer, ...ByGateway });

/** `GET /v1/usage-limits`: by customer (404 when it does not exist). */
export const UsageLimitListQuery = ListQuery.extend({ ...ByCustomer });

/** `GET /v1/ledger/accounts`: pages of accounts ordered by code then currency, optionally filtered. */
export const AccountQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(100),
  starting_after: z.string().min(1).max(64).optional(),
  code: z.string().min(1).max(120).optional(),
  currency: Currency.optional(),
  type: z.enum(ACCOUNT_TYPES).optional(),
});

/** Tailing by sequence: entries after `after_sequence`, oldest first. */
export const SequenceQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(100),
  after_sequence: z.coerce.number().int().min(0).default(0),
});

/**
 * `GET /v1/activities`: tailing by sequence, optionally of one resource (any id), one customer, and
 * when it happened (`created_gte` inclusive, `created_lt` exclusive; ISO 8601 with a zone).
 */
export const ActivityQuery = SequenceQuery.extend({
  resource: z.string().min(1).max(64).optional(),
  customer: z.string().min(1).max(64).optional(),
  created_gte: Timestamp.optional(),
  created_lt: Timestamp.optional(),
});

/** `POST /v1/reconciliation-exceptions/:id/resolve`: an optional note on what was done. */
export const ResolveException = z.strictObject({ note: z.string().min(1).max(1000).optional() });

// ---- Catalog (products, plans), customer and payment-method updates, usage ----

/** `true`/`false` in a query string (`?active=true`). */
export const QueryBoolean = z.enum(['true', 'false']).transform((v) => v === 'true');

/** `POST /v1/products`: a name, an optional description, the caller's own id (unique) and metadata. */
export const CreateProduct = z.strictObject({
  name: z.string().min(1).max(200),
  description: z.string().min(1).max(1000).optional(),
  external_id: z.string().min(1).max(200).optional(),
  metadata: Metadata.optional(),
});

/** `POST /v1/products/:id`: name, description (null clears it), active, metadata (replaced whole). */
export const UpdateProduct = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  description: z.string().min(1).max(1000).nullable().optional(),
  active: z.boolean().optional(),
  metadata: Metadata.optional(),
});

/** `GET /v1/products`: the list query, filtered by `active`. */
export const ProductListQuery = ListQuery.extend({ active: QueryBoolean.optional() });

/** A fixed term (Billby's `repeat`): a number of billing cycles, 1 … 1200 (100 years of months). */
const Repeat = z.number().int().min(1).max(1200);

/**
 * `POST /v1/plans`: a product's price per `interval_count` × `interval`. `price`: the price JSON
 * (integers in minor units of `currency`; see billing/plans.ts); `metered`: usage prices
 * `[{code, aggregation, price}]`; `bill_trial_usage`: whether usage recorded during a trial is billed
 * (default false: free); `tax_percent`: the tax rate of its invoice lines where no named tax rate
 * matches the customer's address; `tax_inclusive`: its prices include their taxes (default false);
 * `setup_fee`: minor units charged once, on a subscription's first invoice, as its own line;
 * `repeat`: a fixed term of that many billing cycles, after which a subscription ends (none: until cancelled).
 */
export const CreatePlan = z.strictObject({
  product: Id('prod'),
  name: z.string().min(1).max(200),
  currency: Currency,
  interval: z.enum(['DAY', 'WEEK', 'MONTH', 'YEAR']),
  interval_count: z.number().int().min(1).max(366).optional(),
  price: PriceJsonSchema,
  metered: MeteredJsonSchema.optional(),
  trial_days: z.number().int().min(0).max(730).optional(),
  bill_trial_usage: z.boolean().optional(),
  tax_percent: Percent.optional(),
  tax_inclusive: z.boolean().optional(),
  setup_fee: PositiveMinorUnits.optional(),
  repeat: Repeat.optional(),
  metadata: Metadata.optional(),
});

/**
 * A field an update body may not carry: any value is refused (422) with `message`, which the
 * document shows as the field's description.
 */
export function immutable(message: string) {
  return z
    .unknown()
    .refine(() => false, message)
    .optional()
    .describe(message);
}

const Immutable = immutable(
  "a plan's price, currency, interval and taxes never change once created: create a new plan",
);

/** `POST /v1/plans/:id`: name, active and metadata only (a price never changes: create a new plan). */
export const UpdatePlan = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  active: z.boolean().optional(),
  metadata: Metadata.optional(),
  price: Immutable,
  metered: Immutable,
  currency: Immutable,
  interval: Immutable,
  interval_count: Immutable,
  trial_days: Immutable,
  bill_trial_usage: Immutable,
  tax_percent: Immutable,
  tax_inclusive: Immutable,
  setup_fee: Immutable,
  repeat: Immutable,
  product: Immutable,
});

/** `GET /v1/plans`: the list query, filtered by `product` and `active`. */
export const PlanListQuery = ListQuery.extend({
  product: z.string().max(64).optional(),
  active: QueryBoolean.optional(),
});

/**
 * `POST /v1/customers/:id`: email, name, external_id (unique; null clears it), metadata (replaced
 * whole), the contact and tax fields of `CustomerDetailsFields`, invoice_prefix and payment_terms_days
 * (null: `INV`, due at finalization).
 */
export const UpdateCustomer = z.strictObject({
  email: z.email().max(320).optional(),
  name: z.string().min(1).max(200).nullable().optional(),
  external_id: z.string().min(1).max(200).nullable().optional(),
  metadata: Metadata.optional(),
  invoice_prefix: InvoicePrefix.nullable().optional(),
  payment_terms_days: PaymentTermsDays.nullable().optional(),
  ...CustomerDetailsFields,
});

/** `GET /v1/customers`: the list query, filtered by exact `email`, `external_id` and address `country`. */
export const CustomerListQuery = ListQuery.extend({
  email: z.string().max(320).optional(),
  external_id: z.string().max(200).optional(),
  country: CountryCode.optional(),
});

/**
 * `POST /v1/payment-methods/:id`: `{default: true}` makes it the customer's only default;
 * `gateway_token` (and `gateway_customer_id`) point it at another stored card of the same gateway
 * and account. At least one of them.
 */
export const UpdatePaymentMethod = z
  .strictObject({
    default: z
      .literal(true, { error: 'only true: make another payment method the default instead' })
      .optional(),
    gateway_token: z.string().min(1).max(200).optional(),
    gateway_customer_id: z.string().min(1).max(200).nullable().optional(),
  })
  .refine((u) => Object.keys(u).length > 0, {
    message: 'give default, gateway_token or gateway_customer_id',
    path: ['default'],
  });

/**
 * `POST /v1/usage-events`: `value` whole units of metric `code` for a subscription, idempotent on
 * `event_id`; `timestamp` (ISO 8601) defaults to now and must fall where usage can still be billed
 * (422 otherwise, see billing/usage.ts `recordUsageEvent`); `properties` as metadata.
 */
export const CreateUsageEvent = z.strictObject({
  event_id: z.string().min(1).max(200),
  subscription: Id('sub'),
  code: MetricCode,
  value: z
    .number({ error: 'must be a non-negative integer' })
    .int({ error: 'must be a non-negative integer' })
    .nonnegative({ error: 'must be a non-negative integer' })
    .max(Number.MAX_SAFE_INTEGER)
    .transform((n) => BigInt(n)),
  properties: Metadata.optional(),
  timestamp: z.iso.datetime({ offset: true }).optional(),
});

/** `POST /v1/usage-limits`: act (WARN or SUSPEND) once a customer's usage estimate reaches `amount`. */
export const CreateUsageLimit = z.strictObject({
  customer: Id('cus'),
  amount: PositiveMinorUnits,
  currency: Currency,
  action: z.enum(['WARN', 'SUSPEND']),
});

/** `POST /v1/usage-limits/:id`: a new amount (minor units of the limit's currency) or action. */
export const UpdateUsageLimit = z.strictObject({
  amount: PositiveMinorUnits.optional(),
  action: z.enum(['WARN', 'SUSPEND']).optional(),
});

/** `GET /v1/usage-events`: by subscription and customer (404 when either does not exist). */
export const UsageEventListQuery = ListQuery.extend({ ...ByCustomer, subscription: Id('sub').optional() });

// ---- Subscriptions and coupons ----

/** A subscription's quantity of units: a whole number from 0 to 10^6. */
const SubscriptionQuantity = z.number().int().min(0).max(1_000_000);

/** A coupon code as customers type it: letters, digits, `-` and `_`. */
export const CouponCode = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, - or _');

/** A percentage off, above 0 and at most 100 (see `Percent`), as ppm. */
const PercentOff = Percent.refine((ppm) => ppm > 0, 'must be a percentage above 0 and at most 100');

/**
 * `POST /v1/subscriptions` (and `/preview`): a customer's subscription to a plan. `quantity` units
 * (default 1), `amount_override` minor units per period instead of the plan's price, `start_at`
 * ISO 8601 (now or later; default now), `trial_days` (default the plan's), `repeat` its fixed term
 * in billing cycles (default the plan's; null: until cancelled), `coupon` a coupon code, `po_number`
 * and `invoice_notes` (what each of its invoices says: their `po_number` and `notes`).
 */
export const CreateSubscription = z.strictObject({
  customer: Id('cus'),
  plan: Id('plan'),
  quantity: SubscriptionQuantity.optional(),
  amount_override: MinorUnits.optional(),
  payment_method: Id('pm').optional(),
  start_at: z.iso.datetime({ offset: true }).optional(),
  trial_days: z.number().int().min(0).max(730).optional(),
  repeat: Repeat.nullable().optional(),
  coupon: CouponCode.optional(),
  metadata: Metadata.optional(),
  po_number: PoNumber.optional(),
  invoice_notes: InvoiceNotes.optional(),
});

/**
 * `POST /v1/subscriptions/:id`: metadata (replaced), the payment method to charge, and the PO number
 * and notes of its invoices from now on (null clears them).
 */
export const UpdateSubscription = z.strictObject({
  metadata: Metadata.optional(),
  payment_method: Id('pm').optional(),
  po_number: PoNumber.nullable().optional(),
  invoice_notes: InvoiceNotes.nullable().optional(),
});

/** A reason a caller gives (cancel, suspend): 1 to 1000 characters, as Billby's `string(1000)`. */
const Reason = z.string().min(1).max(1000);

/**
 * `POST /v1/subscriptions/:id/cancel`: `when` now (default), `period_end` (also `at_period_end:
 * true`) or `date` (with `cancel_at`, ISO 8601, later than now; `cancel_at` alone implies it);
 * `refund_type` none (default), full or prorate (BillaBear); `cancel_reason` stored.
 */
export const CancelSubscription = z
  .strictObject({
    at_period_end: z.boolean().optional(),
    when: z.enum(['now', 'period_end', 'date']).optional(),
    cancel_at: z.iso.datetime({ offset: true }).optional(),
    refund_type: z.enum(['none', 'full', 'prorate']).default('none'),
    cancel_reason: Reason.optional(),
  })
  .superRefine((c, ctx) => {
    if (c.when === 'date' && c.cancel_at === undefined)
      ctx.addIssue({ code: 'custom', path: ['cancel_at'], message: 'required when `when` is date' });
    if (c.cancel_at !== undefined && c.when !== undefined && c.when !== 'date')
      ctx.addIssue({ code: 'custom', path: ['when'], message: 'must be date (or omitted) with cancel_at' });
    if (c.at_period_end === true && ((c.when ?? 'period_end') !== 'period_end' || c.cancel_at !== undefined))
      ctx.addIssue({ code: 'custom', path: ['at_period_end'], message: 'contradicts when / cancel_at' });
  })
  .transform(({ at_period_end, when, cancel_at, ...rest }) => ({
    ...rest,
    when:
      when ?? (cancel_at ? ('date' as const) : at_period_end ? ('period_end' as const) : ('now' as const)),
    cancel_at,
  }));

/** `POST /v1/subscriptions/:id/suspend`: an optional `suspend_reason` (stored, cleared on reactivation). */
export const SuspendSubscription = z.strictObject({ suspend_reason: Reason.optional() });

/**
 * `POST /v1/subscriptions/:id/trial`: `trial_end` `"now"` (end the trial, invoice the first period)
 * or an ISO 8601 moment later than now (extend or shorten it).
 */
export const ChangeTrial = z.strictObject({
  trial_end: z.union([z.literal('now'), z.iso.datetime({ offset: true })]),
});

/** `POST /v1/subscriptions/:id/coupons`: redeem a coupon by code. */
export const RedeemCoupon = z.strictObject({ coupon: CouponCode });

/** How a change now is prorated (billing/proration.ts `ProrationBehavior`), a plan's or an add-on's. */
export const Proration = z.enum(['prorate_now', 'prorate_at_renewal', 'full', 'none']);

/**
 * `POST /v1/subscriptions/:id/change`: a new plan and/or quantity; `when` now (default, prorated by
 * `proration`: prorate_now default, prorate_at_renewal, full, none) or next_cycle (scheduled, applied
 * at the renewal, no proration); `preview` writes nothing.
 */
export const ChangeSubscription = z
  .strictObject({
    plan: Id('plan').optional(),
    quantity: SubscriptionQuantity.optional(),
    when: z.enum(['now', 'next_cycle']).default('now'),
    proration: Proration.optional(),
    preview: z.boolean().default(false),
  })
  .refine((c) => c.plan !== undefined || c.quantity !== undefined, {
    message: 'give a plan, a quantity or both',
    path: ['plan'],
  })
  .refine((c) => c.when === 'now' || c.proration === undefined, {
    message: 'a change at the next cycle is not prorated',
    path: ['proration'],
  });

/**
 * `POST /v1/coupons`: `percent_off` (percentage text, ≤ 4 decimals) or `amount_off` (minor units)
 * with its `currency`; for ONCE, REPEATING (`duration_in_periods`) or FOREVER; redeemable until
 * `redeem_by`, at most `max_redemptions` times in all and `max_redemptions_per_customer` per
 * customer. Eligibility as Billby's `for_all`/`products`/`add_ons`: with neither
 * `applies_to_products` nor `applies_to_add_ons` it is for all (any plan, any add-on); otherwise it
 * may be redeemed on subscriptions to plans of the listed products and on the listed add-ons only.
 */
export const CreateCoupon = z.strictObject({
  code: CouponCode,
  name: z.string().min(1).max(200).optional(),
  percent_off: PercentOff.optional(),
  amount_off: PositiveMinorUnits.optional(),
  currency: Currency.optional(),
  duration: z.enum(['ONCE', 'REPEATING', 'FOREVER']),
  duration_in_periods: z.number().int().min(1).max(1000).optional(),
  max_redemptions: z.number().int().min(1).max(1_000_000_000).optional(),
  redeem_by: Timestamp.optional(),
  max_redemptions_per_customer: z.number().int().min(1).max(1_000_000_000).optional(),
  applies_to_products: z
    .array(Id('prod'))
    .min(1)
    .max(100)
    .refine((ids) => new Set(ids).size === ids.length, 'products must not repeat')
    .optional(),
  applies_to_add_ons: z
    .array(Id('addon'))
    .min(1)
    .max(100)
    .refine((ids) => new Set(ids).size === ids.length, 'add-ons must not repeat')
    .optional(),
  metadata: Metadata.optional(),
});

/** `POST /v1/coupons/:id`: name, whether it can be redeemed, metadata (replaced). */
export const UpdateCoupon = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  active: z.boolean().optional(),
  metadata: Metadata.optional(),
});

/** `GET /v1/subscriptions/:id/billing-cycles`: periods in index order, after `starting_after` (an index). */
export const BillingCyclesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(100),
  starting_after: z.coerce.number().int().min(0).optional(),
});

/**
 * `POST /v1/invoices/:id/lines`: an adjustment on a DRAFT invoice, a CHARGE or a CREDIT of unit
 * `amount` (minor units) × `quantity`, with an optional tax percentage.
 */
export const AddInvoiceLine = InvoiceLineInput.extend({ type: z.enum(['CHARGE', 'CREDIT']) });

/**
 * `POST /v1/invoices/:id`: change when the scheduler charges a DRAFT or OPEN invoice (`charge_at`;
 * null: never) and, on a DRAFT only, its details (`InvoiceDetailFields`). At least one field.
 */
export const UpdateInvoice = z
  .strictObject({ charge_at: Timestamp.nullable().optional(), ...InvoiceDetailFields })
  .refine((body) => Object.values(body).some((value) => value !== undefined), {
    message: 'give charge_at or a detail to change',
    path: ['charge_at'],
  });
