import { z } from 'zod';
import { isCurrency } from '../../money/currency.ts';

/**
 * What billhook reads of Stripe's payloads (zod): the event envelope and the objects of the event
 * types it reconciles (https://docs.stripe.com/api/events/object, …/payment_intents/object,
 * …/refunds/object, …/charges/object, …/disputes/object), and the least an API answer must carry.
 * Fields billhook does not read are not checked.
 */

/** A Stripe amount as sent, in the currency's unit as Stripe reads it: converted by `amountOf`. */
export const Amount = z.number().int().nonnegative();

/** An ISO 4217 currency as Stripe writes it (lower case), read upper case. */
export const Currency = z
  .string()
  .transform((c) => c.toUpperCase())
  .refine(isCurrency, 'not an ISO 4217 currency');
/** Metadata: where billhook's reference travels (`billhook_reference`). */
export const Metadata = z.record(z.string(), z.string()).nullish();
/** Stripe sends either an id or an expanded object where an id is expected. */
export const IdOrObject = z
  .union([z.string(), z.object({ id: z.string() }).transform((o) => o.id)])
  .nullish();

/** A Stripe event: id, type, creation time (Unix seconds) and its object. */
export const Envelope = z.object({
  id: z.string().min(1),
  type: z.string().min(1),
  created: z.number().int(),
  // Checked as an object only: each event type's own schema reads the fields it needs.
  data: z.object({
    object: z.custom<Record<string, unknown>>(
      (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
      'expected an object',
    ),
  }),
});

/** A PaymentIntent as a `payment_intent.*` event carries it. */
export const PaymentIntent = z.object({
  id: z.string(),
  amount: Amount,
  amount_received: Amount.optional(),
  currency: Currency,
  status: z.string(),
  metadata: Metadata,
  last_payment_error: z
    .object({ code: z.string().nullish(), decline_code: z.string().nullish(), message: z.string().nullish() })
    .nullish(),
  cancellation_reason: z.string().nullish(),
});

/** What a listed refund must have before it is named in an event id; `Refund` checks the rest. */
export const RefundId = z.object({ id: z.string().min(1) });

/** A Refund, as `refund.*` / `charge.refund.updated` events carry it or `charge.refunded` lists it. */
export const Refund = z.object({
  id: z.string(),
  amount: Amount,
  currency: Currency,
  status: z.string().nullish(),
  payment_intent: IdOrObject,
  charge: IdOrObject,
  metadata: Metadata,
  reason: z.string().nullish(),
  failure_reason: z.string().nullish(),
});

/** A Charge as `charge.refunded` carries it: its PaymentIntent and the refunds it lists (none since API 2022-11-15). */
export const Charge = z.object({
  id: z.string(),
  payment_intent: IdOrObject,
  refunds: z.object({ data: z.array(z.record(z.string(), z.unknown())) }).nullish(),
});

/** A Dispute as `charge.dispute.*` events carry it. */
export const Dispute = z.object({
  id: z.string(),
  amount: Amount,
  currency: Currency,
  status: z.string(),
  payment_intent: IdOrObject,
  charge: IdOrObject,
  reason: z.string().nullish(),
});

/**
 * What billhook reads of a PaymentIntent or Refund answer: an `id` and a `status`. The stripe package
 * returns whatever JSON came back; a 2xx answer without these is not understood, so its outcome is
 * unknown (PRODUCT.md §11).
 */
export const StripeObject = z.looseObject({ id: z.string().min(1), status: z.string().min(1) });

/** A signed Stripe amount (a balance transaction's `amount`, `fee`, `net`): converted by sign and size. */
export const SignedAmount = z.number().int();

/**
 * The object a balance transaction's `source` names, as `expand[]=source` (or `data.source`) renders
 * it (https://docs.stripe.com/api/balance_transactions/object#balance_transaction_object-source): a
 * charge (`ch_…`, `py_…`), refund (`re_…`, `pyr_…`), dispute (`dp_…`, `du_…`), payout (`po_…`) or
 * another object. Only what a settlement line reads is checked: its id and `object`, the PaymentIntent
 * of a charge, refund or dispute, its own amount and currency (the `original` of a line with an
 * `exchange_rate`, checked there) and our reference in its metadata.
 */
export const BalanceSource = z.object({
  id: z.string().min(1),
  object: z.string().min(1),
  // Read (by settlement.ts, through Stripe's currency table) only for a line with an exchange rate:
  // a source type whose amount means something else must not make every other line unreadable.
  amount: z.unknown().optional(),
  currency: z.string().nullish(),
  payment_intent: IdOrObject,
  charge: IdOrObject,
  metadata: Metadata,
});

/**
 * A BalanceTransaction (https://docs.stripe.com/api/balance_transactions/object): `amount`, `fee`,
 * `net` signed integers in the unit Stripe counts `currency` in; `created` and `available_on` Unix
 * seconds; `source` an id or, expanded, a `BalanceSource`.
 */
export const BalanceTransaction = z.object({
  id: z.string().min(1),
  type: z.string().min(1),
  amount: SignedAmount,
  fee: SignedAmount,
  net: SignedAmount,
  currency: Currency,
  created: z.number().int(),
  available_on: z.number().int().nullish(),
  exchange_rate: z.number().positive().nullish(),
  description: z.string().nullish(),
  reporting_category: z.string().nullish(),
  source: z.union([z.string().min(1), BalanceSource]).nullish(),
});

/**
 * A Payout (https://docs.stripe.com/api/payouts/object): `amount` what goes to the bank, `created`
 * and `arrival_date` Unix seconds, `reconciliation_status` `not_applicable` | `in_progress` |
 * `completed` (whether its balance transactions can be listed yet).
 */
export const Payout = z.object({
  id: z.string().min(1),
  amount: Amount,
  currency: Currency,
  status: z.string().min(1),
  created: z.number().int(),
  arrival_date: z.number().int().nullish(),
  automatic: z.boolean().nullish(),
  reconciliation_status: z.string().nullish(),
  failure_code: z.string().nullish(),
  description: z.string().nullish(),
});

/** A Charge as `charge.succeeded` / `charge.updated` carry it: its balance transaction once Stripe made it. */
export const ChargeBalance = z.object({
  id: z.string().min(1),
  balance_transaction: IdOrObject,
});

/** A page of a Stripe list (https://docs.stripe.com/api/pagination): `data` and `has_more`. */
export const ListPage = z.object({
  object: z.literal('list'),
  data: z.array(z.custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null)),
  has_more: z.boolean(),
});
