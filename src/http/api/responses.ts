import { z } from 'zod';
import { GATEWAYS } from '../../gateways/types.ts';
import { OUTBOUND_EVENT_TYPES } from '../../outbound/events.ts';
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

/**
 * The JSON shapes the API answers (PRODUCT.md §14), one zod schema per serialized object
 * (serialize.ts and the resources' own serializers), as the route table declares them per status
 * and `/openapi.json` publishes them (`.meta({ id })`: a component of that name). Objects are
 * strict (no property beyond those listed: the test app's response validator fails on any other),
 * nullable fields are `.nullable()`, amounts are integers in minor units next to their currency,
 * times are ISO 8601 UTC text (`Date.toJSON`).
 */

/**
 * An amount in integer minor units (signed where a field may be negative). Published as a 64-bit
 * integer without a double's bounds: one amount is at most 10^15 (`MAX_MINOR_UNITS`), but a sum (a
 * ledger balance, a settlement report's total) may pass 2^53 and is written with every digit
 * (`exactJsonIntegers`), which a client must read as a 64-bit integer, not a double.
 */
const Amount = z.int().meta({
  description: 'Integer amount in minor units of the currency (a sum may exceed 2^53: read as int64)',
  override: ({ jsonSchema }) => {
    delete jsonSchema.minimum;
    delete jsonSchema.maximum;
    jsonSchema.format = 'int64';
  },
});
/** A time as JSON answers it (`2026-12-01T09:00:00.000Z`). */
const Time = z.iso.datetime();
const NullableTime = Time.nullable();
/** An ISO 4217 code, upper case. */
const Currency = z.string().meta({ description: 'ISO 4217 currency code, upper case' });
/** The caller's string-to-string metadata. */
const Metadata = z.record(z.string(), z.string());
/** A JSON object of any fields (activity data, exception details, usage properties). */
const Data = z.record(z.string(), z.unknown());
/** A percentage as decimal text with up to four decimals (`"8.875"`). */
const Percent = z.string().meta({ description: 'Percentage as decimal text, up to four decimals' });
const Gateway = z.enum(GATEWAYS);
/** A gateway account id (`gwa_…`); null: the gateway's default account. */
const GatewayAccountId = z.string().nullable();

const object = <T extends string>(name: T) => z.literal(name);
const NullableText = z.string().nullable();
const NullableInt = z.int().nullable();

/** A binary answer (a PDF): its bytes, as its media type says. */
export const Pdf = z.string().meta({ format: 'binary', description: 'The PDF document' });

/** `{currency, amount}` in minor units. */
const MoneyAmount = z.strictObject({ currency: Currency, amount: Amount });

/** The error envelope (errors.ts `ErrorBody`): `fields` is `{}` when the error is not about a field. */
export const ErrorEnvelope = z
  .strictObject({
    error: z.strictObject({
      type: z.string(),
      code: z.string(),
      message: z.string(),
      fields: z.record(z.string(), z.string()),
    }),
  })
  .meta({ id: 'Error' });

/**
 * The list shape every `GET` of a collection answers (pagination.ts `Page`): at most `limit` items
 * and whether more exist after them.
 */
export function listOf<T extends z.ZodType>(item: T, id: string) {
  const list = z.strictObject({ object: z.literal('list'), data: z.array(item), has_more: z.boolean() });
  const made = lists.get(id) ?? list.meta({ id });
  lists.set(id, made);
  return made as typeof list;
}

/** Each list schema once: a component is one schema object. */
const lists = new Map<string, z.ZodType>();

export const Customer = z
  .strictObject({
    id: z.string(),
    object: object('customer'),
    email: z.string(),
    name: z.string().nullable(),
    external_id: z.string().nullable(),
    metadata: Metadata,
    invoice_prefix: NullableText.meta({ description: "Prefix of their invoices' numbers; null: INV" }),
    payment_terms_days: NullableInt.meta({
      description: 'Net N days of their invoices; null: due at finalization',
    }),
    phone: NullableText,
    address: z
      .strictObject({
        line1: NullableText,
        line2: NullableText,
        city: NullableText,
        state: NullableText,
        postal_code: NullableText,
        country: NullableText.meta({ description: 'ISO 3166-1 alpha-2, upper case' }),
      })
      .nullable()
      .meta({ description: 'The billing address; null when no part of it is set' }),
    tax_id: NullableText,
    tax_exempt: z.boolean(),
    locale: NullableText.meta({ description: 'BCP 47 language tag' }),
    closed_at: NullableTime.meta({ description: 'When the customer was closed; null while open' }),
    balances: z.array(z.strictObject({ currency: Currency, balance: Amount })),
    credit: z.array(MoneyAmount),
    created_at: Time,
    updated_at: Time,
  })
  .meta({ id: 'Customer' });

export const PaymentMethod = z
  .strictObject({
    id: z.string(),
    object: object('payment_method'),
    customer: z.string(),
    gateway: Gateway,
    gateway_account: GatewayAccountId,
    gateway_token: z.string(),
    gateway_customer_id: z.string().nullable(),
    default: z.boolean(),
    card: z
      .strictObject({
        brand: NullableText,
        last4: NullableText,
        exp_month: NullableInt,
        exp_year: NullableInt,
      })
      .nullable()
      .meta({ description: 'The card as its gateway last reported it; null before any report' }),
    detached_at: NullableTime.meta({ description: 'When it was detached; null while attached' }),
    created_at: Time,
    updated_at: Time,
  })
  .meta({ id: 'PaymentMethod' });

const InvoiceStatus = z.enum(INVOICE_STATUSES);
const BillingReason = z.enum(['manual', 'subscription_create', 'subscription_cycle', 'subscription_update']);

/** A named tax rate applied to a line (billing/invoices.ts `lineTaxesJson`). */
export const LineTax = z
  .strictObject({
    tax_rate: z.string(),
    display_name: z.string(),
    percent: Percent,
    inclusive: z.boolean(),
    compound: z.boolean(),
    amount: Amount,
  })
  .meta({ id: 'LineTax' });

export const InvoiceLine = z
  .strictObject({
    id: z.string(),
    type: z.enum(['CHARGE', 'CREDIT', 'ROUNDING']).meta({
      description:
        "ROUNDING: finalization's rounding for the gateway that will charge the invoice (PRODUCT §11): untaxed, after tax, amount below 0, not in the subtotal",
    }),
    description: z.string(),
    unit_amount: Amount.nullable(),
    quantity: z.int(),
    amount: Amount,
    tax_percent: Percent,
    tax_amount: Amount,
    tax_inclusive: z
      .boolean()
      .meta({ description: 'True when the price included its tax: amount is the net part' }),
    taxes: z.array(LineTax).meta({ description: 'Each named tax rate applied; [] for a bare percent' }),
    plan: z.string().nullable(),
    add_on: z.string().nullable().meta({ description: 'The add-on it charges for or discounts' }),
    metric_code: z.string().nullable(),
    coupon: z.string().nullable(),
    period_start: NullableTime,
    period_end: NullableTime,
  })
  .meta({ id: 'InvoiceLine' });

const invoiceFields = {
  id: z.string(),
  object: object('invoice'),
  number: NullableText.meta({ description: 'INV-000123, given at finalization; null on a DRAFT' }),
  customer: z.string(),
  status: InvoiceStatus,
  currency: Currency,
  subtotal: Amount,
  tax: Amount,
  rounding: Amount.meta({
    description:
      'What finalization took off so the gateway that will charge the invoice can take what is due (its ROUNDING line); total = subtotal + tax − rounding',
  }),
  total: Amount,
  amount_due: Amount,
  amount_paid: Amount,
  amount_refunded: Amount,
  credit_applied: Amount,
  credit_returned: Amount.meta({
    description: "Of credit_applied, what was given back to the customer's credit (a cancellation's refund)",
  }),
  proration_credited: Amount.meta({
    description:
      'What prorated changes of the period (a downgrade) credited to this invoice while it was owed, lowering amount_due',
  }),
  cash_credited: Amount.meta({
    description:
      "Of amount_paid, what a cancellation's prorated refund gave to the customer's credit instead of the card because the gateway takes the currency only on a step (Stripe KWD 667 owed: 660 refunded, 7 here)",
  }),
  subscription: z.string().nullable(),
  billing_reason: BillingReason,
  period_start: NullableTime,
  period_end: NullableTime,
  charge_at: NullableTime,
  payment_terms_days: NullableInt,
  due_date: NullableTime,
  po_number: NullableText,
  title: NullableText,
  notes: NullableText,
  external_id: NullableText,
  payment_attempts: z.int(),
  dunning_started_at: NullableTime,
  lines: z.array(InvoiceLine),
  finalized_at: NullableTime,
  paid_at: NullableTime,
  voided_at: NullableTime,
  uncollectible_at: NullableTime,
  created_at: Time,
  updated_at: Time,
};

export const Invoice = z.strictObject(invoiceFields).meta({ id: 'Invoice' });

export const Transaction = z
  .strictObject({
    id: z.string(),
    object: object('transaction'),
    type: z
      .enum(['gateway', 'offline'])
      .meta({ description: 'A gateway payment attempt or an offline payment (op_…)' }),
    invoice: z.string().nullable(),
    customer: z.string().nullable(),
    payment_method: z.string().nullable(),
    gateway: Gateway.nullable().meta({ description: 'null for an offline payment' }),
    gateway_account: GatewayAccountId,
    gateway_transaction_id: z.string().nullable(),
    amount: Amount,
    amount_captured: Amount.nullable(),
    currency: Currency,
    status: z.enum(TRANSACTION_STATUSES),
    failure_code: z.string().nullable(),
    failure_message: z.string().nullable(),
    automatic: z.boolean(),
    offline_method: z.enum(['BANK', 'CHECK', 'CASH', 'OTHER']).nullable(),
    reference: NullableText,
    created_at: Time,
    updated_at: Time,
  })
  .meta({ id: 'Transaction' });

export const Refund = z
  .strictObject({
    id: z.string(),
    object: object('refund'),
    kind: z.enum(['payment', 'customer_credit']),
    transaction: z.string(),
    invoice: z.string().nullable(),
    customer: z.string().nullable().meta({
      description:
        "The customer the refund is about: whose credit a customer_credit refund pays back; for a payment refund, its payment's customer (else its invoice's); null only when the payment names no customer. GET /v1/refunds?customer= lists both kinds",
    }),
    gateway: Gateway,
    gateway_account: GatewayAccountId,
    gateway_refund_id: z.string().nullable(),
    amount: Amount,
    currency: Currency,
    status: z.enum(REFUND_STATUSES),
    reason: z.string().nullable(),
    failure_code: z.string().nullable(),
    created_at: Time,
    updated_at: Time,
  })
  .meta({ id: 'Refund' });

/**
 * `POST /v1/invoices/:id/refund`: the refund, and `credited`, what of an amount billhook worked out
 * (none asked) went to the customer's credit because the payment's gateway takes the currency only
 * on a step (Stripe KWD 678 kept after a downgrade: 670 refunded, 8 credited; 0 otherwise).
 */
export const InvoiceRefund = Refund.extend({
  credited: Amount.meta({
    description:
      "With amount omitted, what the gateway cannot take of what billhook worked out (below its step: Stripe KWD 678 → 670 refunded) given to the customer's credit by a credit note instead (the invoice's cash_credited); 0 otherwise. An amount asked off the step is refused 422 amount_not_representable",
  }),
}).meta({ id: 'InvoiceRefund' });

export const CreditNote = z
  .strictObject({
    id: z.string(),
    object: object('credit_note'),
    invoice: z.string(),
    refund: z.string().nullable().meta({
      description: "null: it gives back customer credit that paid the invoice (a cancellation's refund)",
    }),
    customer: z.string(),
    status: z.enum(CREDIT_NOTE_STATUSES),
    currency: Currency,
    subtotal: Amount,
    tax: Amount,
    rounding: Amount.meta({
      description:
        "Its share of what finalization rounded off the invoice for the gateway's step (PRODUCT §11; the invoice's rounding), given back with the sale: all of it once everything the invoice asked is given back; total = subtotal + tax − rounding",
    }),
    total: Amount,
    reason: z.string().nullable(),
    created_at: Time,
    voided_at: NullableTime,
  })
  .meta({ id: 'CreditNote' });

/**
 * An invoice as `GET /v1/invoices[/:id]` answers it, with `amount_disputed`: `expand=customer` /
 * `transactions` / `credit_notes` put objects in.
 */
export const ExpandableInvoice = z
  .strictObject({
    ...invoiceFields,
    amount_disputed: Amount.meta({
      description:
        'What disputes (chargebacks) took of its payments and the gateway holds (open) or gave the customer (lost); not one a refund paid (in amount_refunded) nor one won. Counted as given back: an invoice that gave money back (a refund, credit returned) is REFUNDED once amount_refunded + amount_disputed covers amount_paid and the credit it took is back, PARTIALLY_REFUNDED again if a dispute is won; a dispute alone leaves a PAID invoice PAID',
    }),
    customer: z
      .union([z.string(), Customer])
      .meta({ description: 'The customer id, or with expand=customer the customer' }),
    transactions: z.array(Transaction).optional().meta({ description: 'Only with expand=transactions' }),
    credit_notes: z.array(CreditNote).optional().meta({ description: 'Only with expand=credit_notes' }),
  })
  .meta({ id: 'ExpandableInvoice' });

export const Dispute = z
  .strictObject({
    id: z.string(),
    object: object('dispute'),
    transaction: z.string(),
    gateway: Gateway,
    gateway_account: GatewayAccountId,
    gateway_dispute_id: z.string(),
    amount: Amount,
    currency: Currency,
    status: z.enum(DISPUTE_STATUSES),
    reason: z.string().nullable(),
    refund: z.string().nullable(),
    created_at: Time,
    updated_at: Time,
  })
  .meta({ id: 'Dispute' });

export const Event = z
  .strictObject({
    id: z.string(),
    object: object('event'),
    gateway: Gateway,
    gateway_account: GatewayAccountId,
    gateway_event_id: z.string(),
    type: z.string(),
    status: z.enum(INBOX_STATUSES),
    outcome: z.string().nullable(),
    attempts: z.int(),
    last_error: z.string().nullable(),
    events: z.array(
      z.strictObject({
        type: z.string(),
        gateway_transaction_id: z.string().nullable(),
        gateway_refund_id: z.string().nullable(),
        gateway_dispute_id: z.string().nullable(),
        reference: z.string().nullable(),
        amount: Amount,
        currency: Currency,
        occurred_at: z.string(),
      }),
    ),
    body_retained: z.boolean(),
    received_at: Time,
    processed_at: NullableTime,
  })
  .meta({ id: 'Event' });

export const ReconciliationException = z
  .strictObject({
    id: z.string(),
    object: object('reconciliation_exception'),
    kind: z.string(),
    gateway: Gateway,
    event: z.string().nullable(),
    transaction: z.string().nullable(),
    refund: z.string().nullable(),
    gateway_account: GatewayAccountId,
    payout: z.string().nullable(),
    settlement_line: z.string().nullable(),
    message: z.string(),
    details: Data,
    status: z.enum(EXCEPTION_STATUSES),
    created_at: Time,
    resolved_at: NullableTime,
  })
  .meta({ id: 'ReconciliationException' });

export const LedgerAccount = z
  .strictObject({
    id: z.string(),
    object: object('ledger_account'),
    code: z.string(),
    type: z.enum(['asset', 'liability', 'revenue', 'contra_revenue', 'expense']),
    currency: Currency,
    balance: Amount,
  })
  .meta({ id: 'LedgerAccount' });

export const JournalEntry = z
  .strictObject({
    id: z.string(),
    object: object('journal_entry'),
    sequence: z.int(),
    description: z.string(),
    source: z.strictObject({ type: z.string(), id: z.string() }),
    postings: z.array(z.strictObject({ account: z.string(), amount: Amount, currency: Currency })),
    created_at: Time,
  })
  .meta({ id: 'JournalEntry' });

export const Activity = z
  .strictObject({
    id: z.string(),
    object: object('activity'),
    sequence: z.int(),
    resource_type: z.string(),
    resource: z.string(),
    action: z.string(),
    customer: z.string().nullable(),
    actor: z.string(),
    data: Data,
    created_at: Time,
  })
  .meta({ id: 'Activity' });

export const Product = z
  .strictObject({
    id: z.string(),
    object: object('product'),
    name: z.string(),
    description: z.string().nullable(),
    external_id: z.string().nullable(),
    active: z.boolean(),
    metadata: Metadata,
    created_at: Time,
    updated_at: Time,
  })
  .meta({ id: 'Product' });

const UpTo = z.int().nullable().meta({ description: 'Inclusive upper bound in units; null: the last tier' });
/** A price as JSON (plans.ts `priceJsonOf`): integer amounts in minor units. */
export const Price = z
  .discriminatedUnion('model', [
    z.strictObject({ model: z.literal('FLAT_FEE'), amount: Amount }),
    z.strictObject({ model: z.literal('PER_UNIT'), unit_amount: Amount }),
    ...(['TIERED', 'VOLUME'] as const).map((model) =>
      z.strictObject({
        model: z.literal(model),
        tiers: z.array(z.strictObject({ up_to: UpTo, unit_amount: Amount, flat_amount: Amount.optional() })),
      }),
    ),
    z.strictObject({
      model: z.literal('STAIRSTEP'),
      steps: z.array(z.strictObject({ up_to: UpTo, flat_amount: Amount })),
    }),
  ])
  .meta({ id: 'Price' });

const Aggregation = z.enum(['SUM', 'MAX', 'COUNT']);

export const Plan = z
  .strictObject({
    id: z.string(),
    object: object('plan'),
    product: z.string(),
    name: z.string(),
    currency: Currency,
    interval: z.enum(['DAY', 'WEEK', 'MONTH', 'YEAR']),
    interval_count: z.int(),
    price: Price,
    metered: z.array(z.strictObject({ code: z.string(), aggregation: Aggregation, price: Price })),
    trial_days: z.int(),
    bill_trial_usage: z.boolean(),
    tax_percent: Percent,
    tax_inclusive: z.boolean(),
    setup_fee: Amount.nullable().meta({ description: 'A one-off fee on the first invoice; null: none' }),
    repeat: z.int().nullable().meta({
      description: "A fixed term: a subscription's billing cycles, then it ends; null: until cancelled",
    }),
    active: z.boolean(),
    metadata: Metadata,
    created_at: Time,
    updated_at: Time,
  })
  .meta({ id: 'Plan' });

export const UsageEvent = z
  .strictObject({
    id: z.string(),
    object: object('usage_event'),
    event_id: z.string(),
    subscription: z.string(),
    customer: z.string(),
    code: z.string(),
    value: z.int(),
    properties: Data,
    timestamp: Time,
    created_at: Time,
  })
  .meta({ id: 'UsageEvent' });

export const UsageLimit = z
  .strictObject({
    id: z.string(),
    object: object('usage_limit'),
    customer: z.string(),
    amount: Amount,
    currency: Currency,
    action: z.enum(['WARN', 'SUSPEND']),
    last_triggered_period_start: NullableTime,
    deleted_at: NullableTime.meta({
      description: 'When it was deleted (it acts no more); null while in force',
    }),
    created_at: Time,
  })
  .meta({ id: 'UsageLimit' });

export const UsageEstimate = z
  .strictObject({
    object: object('usage_estimate'),
    customer: z.string(),
    subscriptions: z.array(
      z.strictObject({
        subscription: z.string(),
        plan: z.string(),
        currency: Currency,
        period_start: Time,
        period_end: Time,
        lines: z.array(
          z.strictObject({
            metric_code: z.string(),
            aggregation: Aggregation,
            quantity: z.int(),
            amount: Amount,
          }),
        ),
        total: Amount,
      }),
    ),
    totals: z.array(MoneyAmount),
  })
  .meta({ id: 'UsageEstimate' });

const subscriptionFields = {
  id: z.string(),
  object: object('subscription'),
  customer: z.string(),
  plan: z.string(),
  payment_method: z.string().nullable(),
  status: z.enum(SUBSCRIPTION_STATUSES),
  quantity: z.int(),
  amount_override: Amount.nullable(),
  billing_anchor: Time,
  start_at: Time,
  trial_end_at: NullableTime,
  current_period_index: z.int().nullable(),
  current_period_start: NullableTime,
  current_period_end: NullableTime,
  next_renewal_at: NullableTime,
  cancel_at_period_end: z.boolean(),
  cancel_at: NullableTime,
  cancel_reason: NullableText,
  cancelled_at: NullableTime,
  suspended_at: NullableTime,
  suspend_reason: NullableText,
  scheduled_change: z
    .strictObject({ plan: z.string(), quantity: z.int(), at: NullableTime })
    .nullable()
    .meta({ description: 'The plan or quantity change scheduled for the next renewal; null: none' }),
  ended_at: NullableTime,
  po_number: NullableText.meta({ description: 'The PO number each of its invoices is created with' }),
  invoice_notes: NullableText.meta({ description: 'The notes each of its invoices is created with' }),
  repeat: z.int().nullable().meta({
    description: 'Its fixed term in billing cycles (then it ends: term_completed); null: until cancelled',
  }),
  cycles_remaining: z
    .int()
    .nullable()
    .meta({ description: 'Billing cycles of the term not started yet (0 once it has ended); null: no term' }),
  settled_at: NullableTime.meta({
    description: 'When settle invoiced every remaining cycle of the term; null: not settled',
  }),
  metadata: Metadata,
  created_at: Time,
  updated_at: Time,
};

export const Subscription = z.strictObject(subscriptionFields).meta({ id: 'Subscription' });

/** `GET /v1/subscriptions/:id`: with what its next renewal would charge before usage and tax. */
export const SubscriptionRead = z
  .strictObject({
    ...subscriptionFields,
    effective_amount: Amount.meta({
      description: "The next renewal's charge before usage and tax, minor units",
    }),
    currency: Currency,
  })
  .meta({ id: 'SubscriptionRead' });

/** A subscription with the id of the last invoice the request made (create, reactivate, trial). */
export const SubscriptionWithInvoice = z
  .strictObject({ ...subscriptionFields, latest_invoice: z.string().nullable() })
  .meta({ id: 'SubscriptionWithInvoice' });

export const Coupon = z
  .strictObject({
    id: z.string(),
    object: object('coupon'),
    code: z.string(),
    name: z.string().nullable(),
    percent_off: Percent.nullable(),
    amount_off: Amount.nullable(),
    currency: Currency.nullable(),
    duration: z.enum(['ONCE', 'REPEATING', 'FOREVER']),
    duration_in_periods: z.int().nullable(),
    max_redemptions: z.int().nullable(),
    redeem_by: NullableTime,
    max_redemptions_per_customer: NullableInt,
    applies_to_products: z.array(z.string()).nullable(),
    applies_to_add_ons: z.array(z.string()).nullable().meta({
      description:
        'Add-ons it may be redeemed on; with applies_to_products both null the coupon is for all (every plan and add-on)',
    }),
    times_redeemed: z.int(),
    active: z.boolean(),
    metadata: Metadata,
    created_at: Time,
  })
  .meta({ id: 'Coupon' });

export const CouponRedemption = z
  .strictObject({
    id: z.string(),
    object: object('coupon_redemption'),
    coupon: Coupon,
    subscription: z.string(),
    add_on: z
      .string()
      .nullable()
      .meta({ description: "The subscription's add-on it discounts; null: the subscription's plan" }),
    customer: z.string(),
    periods_applied: z.int(),
    removed_at: NullableTime.meta({ description: 'When it was removed; null while in effect' }),
    created_at: Time,
  })
  .meta({ id: 'CouponRedemption' });

export const InvoicePreview = z
  .strictObject({
    object: object('invoice_preview'),
    customer: z.string(),
    currency: Currency,
    billing_reason: BillingReason,
    invoice_at: Time,
    period_start: Time,
    period_end: Time,
    subtotal: Amount,
    tax: Amount,
    rounding: Amount.meta({
      description:
        'What finalization would round off for the gateway that would charge it (PRODUCT §11), on what is left due after credit_applied, as finalization works it; its ROUNDING line is last; total = subtotal + tax − rounding',
    }),
    total: Amount,
    credit_applied: Amount.meta({
      description:
        "The customer's credit finalization would apply: what they can use now in the currency (not held by refunds in flight), up to the total; 0 for a total of 0 or less",
    }),
    amount_due: Amount.meta({
      description: 'What would be left to charge: total − credit_applied (0 for a total of 0 or less)',
    }),
    lines: z.array(
      z.strictObject({
        type: z.enum(['CHARGE', 'CREDIT', 'ROUNDING']),
        description: z.string(),
        unit_amount: Amount.nullable(),
        quantity: z.int(),
        amount: Amount,
        tax_percent: Percent,
        tax_amount: Amount,
        tax_inclusive: z.boolean(),
        taxes: z.array(LineTax),
        plan: z.string().nullable(),
        add_on: z.string().nullable().meta({ description: 'The add-on it charges for or discounts' }),
        coupon: z.string().nullable(),
        period_start: NullableTime,
        period_end: NullableTime,
      }),
    ),
  })
  .meta({ id: 'InvoicePreview' });

export const BillingCycle = z
  .strictObject({
    object: object('billing_cycle'),
    index: z.int(),
    period_start: Time,
    period_end: Time,
    invoice: z.string().nullable(),
    status: InvoiceStatus.nullable(),
    currency: Currency,
    total: Amount,
    amount_paid: Amount,
  })
  .meta({ id: 'BillingCycle' });

/**
 * `POST /v1/subscriptions/:id/cancel`: the subscription, the cash refunds it made (`refunds`, one per
 * gateway payment of the period's invoices it went back through: the period invoice's first, then its
 * add-on invoices', each invoice's newest payment first; `refund` the first of them, null: none) and
 * the credit notes of the customer credit it gave back (`credit_notes`, one per invoice; `credit_note`
 * the first of them, null: none). `refund` and `credit_note` are kept for older clients: the first
 * may be an add-on invoice's (when the period invoice gave nothing back that way).
 */
export const SubscriptionCancellation = z
  .strictObject({
    ...subscriptionFields,
    refund: Refund.nullable().meta({
      description:
        "The first of refunds only, null when none: the period invoice's newest payment's, or, when the period invoice gave no cash back, the first add-on invoice's; the only one unless several gateway payments (of the period invoice, or of its add-on invoices) gave cash back. Kept for older clients: read refunds, whose amounts add up to what was given back in cash",
    }),
    refunds: z.array(Refund).meta({
      description:
        "The cash given back through the gateway payments of the period's paid invoices (the period invoice's first, then its add-on invoices', oldest first; each refund names its invoice): one refund per payment used, each invoice's newest payment first, each up to what it could still refund; empty when none",
    }),
    credit_note: CreditNote.nullable().meta({
      description:
        "The first of credit_notes only, null when none: the period invoice's, or, when the period invoice gave no credit back, an add-on invoice's (its invoice_id says which); the only one unless an add-on invoice of the period gave credit back too. Kept for older clients: read credit_notes",
    }),
    credit_notes: z.array(CreditNote).meta({
      description:
        "The customer credit that paid the period's invoices given back to the customer's credit, one credit note per invoice (its total), in the order of refunds' invoices, then the unpaid add-on invoices lowered; empty when none. An unpaid add-on invoice voided whole (listed in the activity's voided_invoices) gives the credit applied to it back with the void, which makes no credit note: it is not here, but it is in the activity's credit_amount. The cash owed that a gateway cannot take (credited) has its own credit note here too, after its invoice's credit one",
    }),
    refunded: Amount.meta({
      description:
        'Of the cash owed back, what was sent to the cards: the refunds asked together (minor units; each refund says how it went)',
    }),
    credited: Amount.meta({
      description:
        "Of the cash owed back, what the gateways cannot take (below their step: Stripe BHD/JOD/KWD/OMR/TND 10 minor units, Stripe MGA and PayPal HUF/TWD whole units, 100) given to the customer's credit instead, by a credit note: Stripe KWD 667 owed → refunded 660, credited 7. Never rounded away (PRODUCT §11)",
    }),
    catch_up_invoices: z.array(z.string()).meta({
      description:
        "The ids of the invoices this request's catch-up renewal made before cancelling (the period holding now is the one cancelled and refunded), in the order made: the periods started by now that the renewal sweep had not invoiced yet (each with the usage before it) and an add-on charge pending since a payment's reactivation; empty when the sweep was on time",
    }),
  })
  .meta({ id: 'SubscriptionCancellation' });

/** `POST /v1/signups`: the three objects made, the subscription with its first invoice's id. */
export const Signup = z
  .strictObject({
    object: object('signup'),
    customer: Customer,
    payment_method: PaymentMethod,
    subscription: SubscriptionWithInvoice,
  })
  .meta({ id: 'Signup' });

export const TaxRate = z
  .strictObject({
    id: z.string(),
    object: object('tax_rate'),
    display_name: z.string(),
    description: NullableText,
    country: z.string().meta({ description: 'ISO 3166-1 alpha-2' }),
    state: NullableText.meta({ description: 'null: the whole country' }),
    percent: Percent,
    inclusive: z.boolean(),
    compound: z.boolean(),
    active: z.boolean(),
    metadata: Metadata,
    created_at: Time,
    updated_at: Time,
  })
  .meta({ id: 'TaxRate' });

export const AddOn = z
  .strictObject({
    id: z.string(),
    object: object('add_on'),
    name: z.string(),
    description: NullableText,
    currency: Currency,
    amount: Amount.meta({ description: 'Per unit and period, minor units' }),
    active: z.boolean(),
    metadata: Metadata,
    created_at: Time,
    updated_at: Time,
  })
  .meta({ id: 'AddOn' });

export const SubscriptionAddOn = z
  .strictObject({
    id: z.string(),
    object: object('subscription_add_on'),
    subscription: z.string(),
    add_on: AddOn,
    quantity: z.int(),
    coupons: z.array(CouponRedemption).meta({
      description:
        'The coupons redeemed on this add-on of the subscription, oldest first (removed ones with removed_at)',
    }),
    created_at: Time,
    updated_at: Time,
    deleted: z.literal(true).optional().meta({ description: 'Only when a quantity of 0 removed it' }),
  })
  .meta({ id: 'SubscriptionAddOn' });

/** `POST /v1/subscriptions/:id/add-ons`' answer: the subscription's add-on and the invoice of its proration. */
export const SubscriptionAddOnSet = SubscriptionAddOn.extend({
  invoice: z.string().nullable().meta({
    description:
      'The subscription_update invoice charging the add-on added or raised for the rest of the current period (null: nothing charged now: proration none, a trial, a SUSPENDED subscription not billed, no unit beyond those paid for or held, a lower quantity or a removal, no credit given)',
  }),
}).meta({ id: 'SubscriptionAddOnSet' });

const AddOnProrationPreview = InvoicePreview.nullable().meta({
  description:
    'The invoice the change would make now for the rest of the current period (null: nothing charged now; a total of 0: no invoice made)',
});

/**
 * `POST /v1/subscriptions/:id/add-ons/preview`' answer: the next period's invoice with the proration
 * invoice made now, or, for a subscription not renewed again (no next invoice), the proration alone.
 */
export const SubscriptionAddOnPreview = z
  .union([
    InvoicePreview.extend({ proration: AddOnProrationPreview }),
    z
      .strictObject({
        object: object('subscription_add_on_preview'),
        renews: z.literal(false).meta({
          description: 'The subscription is not renewed again (a scheduled cancellation): no next invoice',
        }),
        proration: AddOnProrationPreview,
      })
      .meta({ id: 'SubscriptionAddOnEndingPreview' }),
  ])
  .meta({ id: 'SubscriptionAddOnPreview' });

export const CurrencyObject = z
  .strictObject({
    id: z.string(),
    object: object('currency'),
    code: Currency,
    exponent: z.int(),
    name: z.string(),
    symbol: z.string(),
    gateways: z.array(
      z.strictObject({
        gateway: Gateway,
        accepted: z.boolean(),
        exponent: NullableInt,
        step: Amount.nullable().meta({
          description: 'Every amount sent must be a multiple of it (minor units)',
        }),
        rule: NullableText,
        refusal: NullableText,
        source: z.string(),
      }),
    ),
  })
  .meta({ id: 'Currency' });

/** `POST /v1/invoices/:id/charge`: the invoice and the attempt (succeeded, failed, pending or unknown). */
export const InvoiceCharge = z
  .strictObject({ invoice: Invoice, transaction: Transaction })
  .meta({ id: 'InvoiceCharge' });

/** `POST /v1/invoices/:id/credit/return`: the invoice after, and the credit note of the credit given back. */
export const InvoiceCreditReturn = z
  .strictObject({ object: object('invoice_credit_return'), invoice: Invoice, credit_note: CreditNote })
  .meta({ id: 'InvoiceCreditReturn' });

/** `POST /v1/customers/:id/credit/refund`: the customer after, and the refunds made. */
export const CustomerCreditRefund = z
  .strictObject({ object: object('customer_credit_refund'), customer: Customer, refunds: z.array(Refund) })
  .meta({ id: 'CustomerCreditRefund' });

/** `POST /v1/transactions/:id/void`: 200 succeeded, 202 unknown (the gateway gave no sure answer). */
export const TransactionVoided = z
  .strictObject({ void: z.literal('succeeded'), transaction: Transaction })
  .meta({ id: 'TransactionVoided' });
export const TransactionVoidUnknown = z
  .strictObject({ void: z.literal('unknown'), message: z.string(), transaction: Transaction })
  .meta({ id: 'TransactionVoidUnknown' });

export const SubscriptionChange = z
  .strictObject({
    object: object('subscription_change'),
    preview: z.boolean(),
    subscription: Subscription,
    proration: InvoicePreview,
    invoice: z.string().nullable(),
    usage_invoice: z.string().nullable(),
    credited: Amount.meta({
      description:
        "The change's net credit before tax, signed: of a change not invoiced (invoice null), its proration's subtotal negated, the revenue it gives back; 0 when it is invoiced (a net charge) or changes nothing now. With the tax it gives back (−proration.tax) it is what the change credits, tax included (−proration.total): credited_to_invoice.amount of it off the OPEN period invoice, the rest to the customer's credit. Below 0 when the proration charges more than it credits before tax but gives back more tax than that (a taxed plan to a dearer untaxed one: subtotal 200, tax −500, credited −200, 300 credited in all)",
    }),
    credited_to_invoice: z.strictObject({ invoice: z.string(), amount: Amount }).nullable().meta({
      description:
        'The OPEN period invoice the net credit (tax included) was taken off first, and how much; the customer credit grows by the rest only',
    }),
    catch_up_invoices: z.array(z.string()).meta({
      description:
        "The ids of the invoices this request's catch-up renewal made before changing (the period holding now is the one prorated), in the order made: the periods started by now that the renewal sweep had not invoiced yet (each with the usage before it) and an add-on charge pending since a payment's reactivation; empty when the sweep was on time, and for a preview (its catch-up is rolled back)",
    }),
  })
  .meta({ id: 'SubscriptionChange' });

export const SubscriptionSettlement = z
  .strictObject({
    object: object('settlement'),
    subscription: z.string(),
    invoiced: z
      .array(z.string())
      .meta({ description: "The invoices made for a fixed term's remaining cycles (none without a term)" }),
    invoices: z.array(
      z.strictObject({
        invoice: Invoice,
        transaction: Transaction.nullable(),
        error: z.strictObject({ code: z.string(), message: z.string() }).nullable(),
      }),
    ),
  })
  .meta({ id: 'SubscriptionSettlement' });

export const GatewayAccount = z
  .strictObject({
    id: z.string(),
    object: object('gateway_account'),
    gateway: Gateway,
    name: z.string(),
    mode: z.enum(['test', 'live']),
    api_base: z.string().nullable(),
    credentials_last4: z.record(z.string(), z.union([z.string(), z.null(), z.array(z.string().nullable())])),
    credentials_key_id: z.string(),
    webhook_path: z.string(),
    status: z.enum(['enabled', 'disabled']),
    disabled_at: NullableTime,
    created_at: Time,
    updated_at: Time,
  })
  .meta({ id: 'GatewayAccount' });

const webhookEndpointFields = {
  id: z.string(),
  object: object('webhook_endpoint'),
  url: z.string(),
  description: z.string().nullable(),
  enabled_events: z.array(z.enum(OUTBOUND_EVENT_TYPES)),
  status: z.enum(['enabled', 'disabled']),
  disabled_at: NullableTime,
  created_at: Time,
  updated_at: Time,
};

export const WebhookEndpoint = z.strictObject(webhookEndpointFields).meta({ id: 'WebhookEndpoint' });

/** A webhook endpoint as create and rotate answer it: with its `whsec_…` secret, shown only then. */
export const WebhookEndpointWithSecret = z
  .strictObject({ ...webhookEndpointFields, secret: z.string() })
  .meta({ id: 'WebhookEndpointWithSecret' });

export const WebhookDelivery = z
  .strictObject({
    id: z.string(),
    object: object('webhook_delivery'),
    endpoint: z.string(),
    event: z.string(),
    event_type: z.string(),
    status: z.enum(['pending', 'retrying', 'succeeded', 'failed']),
    attempts: z.int(),
    last_status_code: z.int().nullable(),
    last_error: z.string().nullable(),
    last_attempt_at: NullableTime,
    delivered_at: NullableTime,
    redelivery_of: z.string().nullable(),
    created_at: Time,
    updated_at: Time,
  })
  .meta({ id: 'WebhookDelivery' });

const payoutFields = {
  id: z.string(),
  object: object('payout'),
  gateway: Gateway,
  gateway_account: GatewayAccountId,
  gateway_payout_id: z.string(),
  status: z.enum(['pending', 'in_transit', 'paid', 'failed', 'canceled']),
  currency: Currency,
  amount: Amount,
  gross: Amount,
  fees: Amount,
  refunds: Amount,
  disputes: Amount,
  adjustments: Amount,
  net: Amount,
  lines_known: z.boolean(),
  line_count: z.int(),
  unmatched_lines: z.int(),
  arrival_date: NullableTime,
  failure_code: z.string().nullable(),
  description: z.string().nullable(),
  gateway_created_at: Time,
  created_at: Time,
  updated_at: Time,
};

export const Payout = z.strictObject(payoutFields).meta({ id: 'Payout' });

export const SettlementLine = z
  .strictObject({
    id: z.string(),
    object: object('settlement_line'),
    kind: z.enum(['charge', 'refund', 'dispute', 'fee', 'adjustment', 'payout_return', 'conversion', 'hold']),
    gateway_line_id: z.string(),
    currency: Currency,
    gross: Amount,
    fee: Amount,
    net: Amount,
    original: z.strictObject({ currency: Currency, amount: Amount.nullable() }).nullable(),
    matched: z.string().nullable(),
    unmatched: z.boolean(),
    transaction: z.string().nullable(),
    refund: z.string().nullable(),
    dispute: z.string().nullable(),
    gateway_transaction_id: z.string().nullable(),
    gateway_refund_id: z.string().nullable(),
    gateway_dispute_id: z.string().nullable(),
    reference: z.string().nullable(),
    description: z.string().nullable(),
    occurred_at: Time,
    available_on: NullableTime,
    created_at: Time,
  })
  .meta({ id: 'SettlementLine' });

/** A payout with its lines and what each matched (`GET /v1/payouts/:id`). */
export const PayoutWithLines = z
  .strictObject({ ...payoutFields, lines: z.array(SettlementLine) })
  .meta({ id: 'PayoutWithLines' });

const Period = z.strictObject({ opening: Amount, movements: Amount, closing: Amount });

export const SettlementReport = z
  .strictObject({
    object: object('settlement_report'),
    from: Time,
    to: Time,
    data: z.array(
      z.strictObject({
        gateway: z.string(),
        gateway_account: GatewayAccountId,
        currency: Currency,
        clearing: z.strictObject({
          opening: Amount,
          charges: Amount,
          refunds: Amount,
          disputes: Amount,
          fees: Amount,
          conversions: Amount,
          adjustments: Amount,
          payouts: Amount,
          other: Amount,
          closing: Amount,
          balances: z.boolean(),
        }),
        gateway_fees: Period,
        fx: Period,
        payouts_in_transit: Period,
        bank: Period,
      }),
    ),
  })
  .meta({ id: 'SettlementReport' });

export const SettlementImport = z
  .strictObject({
    object: object('settlement_import'),
    gateway: Gateway,
    gateway_account: GatewayAccountId,
    format: z.enum(['billhook', 'securepay']),
    sha256: z.string(),
    read: z.strictObject({ lines: z.int(), payouts: z.int() }),
    recorded: z.strictObject({ lines: z.int(), payouts: z.int(), unmatched: z.int() }).meta({
      description:
        "What was new: payouts recorded or moved forward (each with its lines: see GET /v1/payouts/:id); lines outside any payout recorded, plus the account's earlier unmatched lines that match now (a file of one payout of one line answers lines 0, payouts 1); unmatched, the account's lines that still match nothing",
    }),
  })
  .meta({ id: 'SettlementImport' });

/** `GET /healthz`, `GET /readyz`. */
export const Health = z
  .strictObject({ status: z.enum(['ok', 'ready', 'unavailable']) })
  .meta({ id: 'Health' });

/** The answer to a webhook delivery billhook stored (or already had). */
export const WebhookReceived = z.strictObject({ received: z.literal(true) }).meta({ id: 'WebhookReceived' });
