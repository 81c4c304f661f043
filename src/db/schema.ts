import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';
import type { GatewayName } from '../config/gateways.ts';

/** A timestamp column with a database default. */
type CreatedAt = ColumnType<Date, Date | string | undefined, Date | string>;
/** A nullable timestamp column. */
type MaybeTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** A bigint money column (minor units), read and written as `bigint`. */
type Money = ColumnType<bigint, bigint, bigint>;
type MoneyWithDefault = ColumnType<bigint, bigint | undefined, bigint>;

/** Gateway names as stored: `GatewayName` (config/gateways.ts). */
export type Gateway = GatewayName;
export type InboxStatus = 'received' | 'processed' | 'ignored' | 'retrying' | 'exception';
export type InvoiceStatus =
  | 'DRAFT'
  | 'OPEN'
  | 'PAID'
  | 'VOID'
  | 'UNCOLLECTIBLE'
  | 'PARTIALLY_REFUNDED'
  | 'REFUNDED';
export type TransactionStatus = 'pending' | 'unknown' | 'succeeded' | 'failed' | 'canceled';
export type RefundStatus = 'pending' | 'unknown' | 'succeeded' | 'failed';
/**
 * `inquiry` / `inquiry_closed`: the card issuer asked questions and withdrew no funds (nothing posted);
 * `open`: funds withdrawn, held in disputed funds; `won` / `lost`: the funds came back / went to the customer.
 */
export type DisputeStatus = 'inquiry' | 'inquiry_closed' | 'open' | 'won' | 'lost';
export type BillingReason = 'manual' | 'subscription_create' | 'subscription_cycle' | 'subscription_update';
/** The refund a cancellation was asked for (PRODUCT §5): none, the whole period, or its unused time. */
export type CancellationRefundType = 'none' | 'full' | 'prorate';

export type SubscriptionStatus = 'IN_TRIAL' | 'ACTIVE' | 'PAST_DUE' | 'SUSPENDED' | 'CANCELLED';
export type PlanInterval = 'DAY' | 'WEEK' | 'MONTH' | 'YEAR';
export type CouponDuration = 'ONCE' | 'REPEATING' | 'FOREVER';
export type ApiKeyScope = 'read' | 'write' | 'admin';
/** The ledger's account types (chart.ts gives each account one). */
export const ACCOUNT_TYPES = ['asset', 'liability', 'revenue', 'contra_revenue', 'expense'] as const;
export type AccountType = (typeof ACCOUNT_TYPES)[number];

/** API keys: a SHA-256 hash of each key, its scope, and when it was revoked. */
export interface ApiKeysTable {
  id: string;
  name: string;
  prefix: string;
  key_hash: string;
  scope: ApiKeyScope;
  created_at: CreatedAt;
  last_used_at: MaybeTimestamp;
  revoked_at: MaybeTimestamp;
}

/**
 * A normalised event as the inbox keeps it (`PaymentEvent` without the raw payload): amount in minor
 * units as a decimal string (jsonb has no integer wider than a double), `occurredAt` ISO 8601.
 */
export interface StoredEvent {
  type: string;
  gatewayTransactionId?: string;
  gatewayRefundId?: string;
  gatewayDisputeId?: string;
  reference?: string;
  amount: string;
  currency: string;
  occurredAt: string;
  failureCode?: string;
  failureMessage?: string;
  reason?: string;
  /** A `settlement.line` event's line: its id, kind and amounts (minor units as decimal strings). */
  settlementLine?: {
    gatewayLineId: string;
    kind: string;
    currency: string;
    gross: string;
    fee: string;
    net: string;
  };
  /** A `payout.updated` event's payout: its id, status, amount and how many lines it listed (null: none yet). */
  payout?: {
    gatewayPayoutId: string;
    status: string;
    currency: string;
    amount: string;
    lines: number | null;
  };
}

/** Verified webhook deliveries (the inbox), unique per gateway and event id, with their processing status. */
export interface InboxTable {
  id: string;
  gateway: Gateway;
  gateway_event_id: string;
  event_type: string;
  body: string | null;
  /** The normalised events of the body, once processed (kept after the body is pruned). */
  events: ColumnType<StoredEvent[] | null, never, string>;
  status: ColumnType<InboxStatus, InboxStatus | undefined, InboxStatus>;
  outcome: string | null;
  attempts: Generated<number>;
  last_error: string | null;
  received_at: CreatedAt;
  processed_at: MaybeTimestamp;
  /** The gateway account (`gwa_…`) the delivery came to; null for the gateway's default account. */
  gateway_account: ColumnType<string | null, string | null | undefined, string | null>;
}

/** `test` or `live`: which of the gateway's environments an account's credentials belong to. */
export type GatewayAccountMode = 'test' | 'live';

/**
 * Gateway accounts (`gwa_…`): a gateway's credentials besides its default account (the environment),
 * encrypted (AES-256-GCM: IV, tag, ciphertext) under the key `credentials_key_id` names.
 */
export interface GatewayAccountsTable {
  id: string;
  gateway: Gateway;
  name: string;
  mode: GatewayAccountMode;
  /** The account's API base URL; null: the gateway's `*_API_BASE`. */
  api_base: string | null;
  credentials: Buffer;
  credentials_key_id: string;
  /** Each credential's last four characters (null when too short to show any), as the API shows them. */
  credentials_last4: ColumnType<Record<string, string | null | (string | null)[]>, string, string>;
  /** A new value of the `gateway_accounts_version` sequence at every change. */
  version: ColumnType<string, never, string>;
  disabled_at: MaybeTimestamp;
  created_at: CreatedAt;
  updated_at: CreatedAt;
}

/** Customers billed through billhook. */
export interface CustomersTable {
  id: string;
  email: string;
  name: string | null;
  external_id: string | null;
  metadata: ColumnType<Record<string, string>, string | undefined, string>;
  created_at: CreatedAt;
  /** The prefix of their invoices' numbers (`ACME` → `ACME-000001`); null: `INV` (billing/invoice-numbers.ts). */
  invoice_prefix: MaybeText;
  /** Net N days: their invoices' payment terms unless an invoice sets its own; null: due at finalization. */
  payment_terms_days: ColumnType<number | null, number | null | undefined, number | null>;
  /** The billing contact's phone number, as given. */
  phone: MaybeText;
  /**
   * The billing address (Stripe's field names); `address_country` is ISO 3166-1 alpha-2, upper case
   * (with `address_state`, where taxes apply: billing/tax-rates.ts).
   */
  address_line1: MaybeText;
  address_line2: MaybeText;
  address_city: MaybeText;
  address_state: MaybeText;
  address_postal_code: MaybeText;
  address_country: MaybeText;
  /** The customer's tax registration number (VAT, GST, ABN, …), as given. */
  tax_id: MaybeText;
  /** True: no tax is charged to this customer on any line (billing/tax-rates.ts). */
  tax_exempt: Generated<boolean>;
  /** BCP 47 language tag, canonical form (`en-AU`). */
  locale: MaybeText;
  /** Set while the customer is closed: no new invoice, subscription or charge (billing/customer-status.ts). */
  closed_at: MaybeTimestamp;
  updated_at: CreatedAt;
}

/** Stored payment methods: a gateway's token, never card data. */
export interface PaymentMethodsTable {
  id: string;
  customer_id: string;
  gateway: Gateway;
  gateway_token: string;
  gateway_customer_id: string | null;
  is_default: Generated<boolean>;
  created_at: CreatedAt;
  /** The gateway account (`gwa_…`) whose credentials charge it; null for the gateway's default account. */
  gateway_account: ColumnType<string | null, string | null | undefined, string | null>;
  /** The card's brand, last four digits and expiry as the gateway last reported them; null where it did not. */
  card_brand: MaybeText;
  card_last4: MaybeText;
  card_exp_month: ColumnType<number | null, number | null | undefined, number | null>;
  card_exp_year: ColumnType<number | null, number | null | undefined, number | null>;
  /** Set when detached: kept for the history of its charges, never charged again. */
  detached_at: MaybeTimestamp;
  updated_at: CreatedAt;
}

/** Invoices; amounts in minor units of `currency`, kept consistent with the ledger. */
export interface InvoicesTable {
  id: string;
  customer_id: string;
  currency: string;
  status: ColumnType<InvoiceStatus, InvoiceStatus | undefined, InvoiceStatus>;
  total: MoneyWithDefault;
  amount_due: MoneyWithDefault;
  amount_paid: MoneyWithDefault;
  amount_refunded: MoneyWithDefault;
  finalized_at: MaybeTimestamp;
  paid_at: MaybeTimestamp;
  created_at: CreatedAt;
  updated_at: CreatedAt;
  /** The subscription and period this invoice bills (unique per subscription and period index). */
  subscription_id: ColumnType<string | null, string | null | undefined, string | null>;
  period_index: ColumnType<number | null, number | null | undefined, number | null>;
  period_start: MaybeTimestamp;
  period_end: MaybeTimestamp;
  billing_reason: ColumnType<BillingReason, BillingReason | undefined, BillingReason>;
  /**
   * Sum of line amounts (credits negative) before tax, the ROUNDING line left out, minor units;
   * total = subtotal + tax − rounding.
   */
  subtotal: MoneyWithDefault;
  tax: MoneyWithDefault;
  /**
   * What finalization took off so the gateway that will charge the invoice can take what is due
   * (PRODUCT §11: its ROUNDING line; billing/invoice-rounding.ts), minor units ≥ 0, less than one of
   * the gateway's steps; 0 on most invoices.
   */
  rounding: MoneyWithDefault;
  /** When the scheduler charges this OPEN invoice next (scheduled payment or dunning retry). */
  charge_at: MaybeTimestamp;
  /** Automatic charge attempts that failed so far (dunning). */
  payment_attempts: Generated<number>;
  uncollectible_at: MaybeTimestamp;
  voided_at: MaybeTimestamp;
  /** When the first automatic charge failed: the retry days of dunning count from it. */
  dunning_started_at: MaybeTimestamp;
  /**
   * Customer credit taken off at finalization, minor units: amount_due = total − credit_applied −
   * proration_credited − amount_paid.
   */
  credit_applied: MoneyWithDefault;
  /**
   * What the period's prorated changes credited to this invoice while it was owed (a downgrade over
   * an OPEN period invoice lowers what is left due first: billing/proration.ts), minor units ≥ 0;
   * given back to revenue and tax payable, not to the customer, when the invoice is voided.
   */
  proration_credited: MoneyWithDefault;
  /**
   * Of `proration_credited`, the tax (minor units; the credits' tax shares, each at its change's own
   * ratio, so below 0 when the changes' credits carried negative tax): credit notes split their tax
   * over what the invoice still asks, (tax − this) over (total − proration_credited).
   */
  proration_tax_credited: MoneyWithDefault;
  /**
   * Of `credit_applied`, what was given back to the customer's credit by a credit note (a
   * cancellation's refund: billing/credit-returns.ts), minor units, 0 … credit_applied. A void gives
   * the applied credit back without it (`inv_…:credit_returned`).
   */
  credit_returned: MoneyWithDefault;
  /**
   * Of the cash paid, what a refund billhook worked out (a cancellation's `prorate`) gave back to
   * the customer's credit instead of the card because the gateway takes the currency only on a step
   * (Stripe KWD 667 owed: 660 to the card, 7 here; billing/credit-returns.ts `creditCashRest`), minor
   * units ≥ 0 (migration 0058). Given back as `amount_refunded` is, wherever what an invoice kept is
   * worked out.
   */
  cash_credited: MoneyWithDefault;
  /** `INV-000123`: gap-free per prefix, assigned at finalization (null on a DRAFT). */
  number: MaybeText;
  /** Net N days: the invoice's own terms (a DRAFT's override), then the terms finalization used. */
  payment_terms_days: ColumnType<number | null, number | null | undefined, number | null>;
  /** When payment is owed: finalized_at + payment_terms_days (set at finalization). */
  due_date: MaybeTimestamp;
  po_number: MaybeText;
  title: MaybeText;
  /** Notes printed on the invoice (Billby's `invoice_notes`), at most 1000 characters. */
  notes: MaybeText;
  /** The caller's own id for the invoice, unique among invoices. */
  external_id: MaybeText;
}

/** The last invoice number given per prefix (billing/invoice-numbers.ts). */
export interface InvoiceNumberCountersTable {
  prefix: string;
  last_number: bigint;
}

/** Invoice line items: unit amount × quantity (negative for CREDIT lines), plus tax per line. */
export interface InvoiceLinesTable {
  id: string;
  invoice_id: string;
  position: number;
  /** ROUNDING: finalization's rounding (untaxed, after tax, `amount` = −invoice.rounding; not in the subtotal). */
  type: 'CHARGE' | 'CREDIT' | 'ROUNDING';
  description: string;
  /** Null on lines priced by a tiered/volume/stairstep model (the amount is not unit × quantity). */
  unit_amount: ColumnType<bigint | null, bigint | null, bigint | null>;
  /** ≥ 0 (0055): a subscription of quantity 0 is billed on a plan line of quantity 0. */
  quantity: number;
  amount: Money;
  /** Tax rate in parts per million of the amount (1% = 10000; 8.875% = 88750). */
  tax_rate_ppm: ColumnType<number, number | undefined, number>;
  tax_amount: MoneyWithDefault;
  plan_id: ColumnType<string | null, string | null | undefined, string | null>;
  metric_code: ColumnType<string | null, string | null | undefined, string | null>;
  coupon_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** The add-on this line charges for (a period's recurring charge, like the plan's line). */
  add_on_id: ColumnType<string | null, string | null | undefined, string | null>;
  period_start: MaybeTimestamp;
  period_end: MaybeTimestamp;
  /** Each named tax rate applied, with its amount (`LineTax[]` in billing/invoices.ts); [] for a bare percent. */
  taxes: ColumnType<unknown, string | undefined, string>;
  /** True when the line's price included its tax: `amount` is then the net part of it. */
  tax_inclusive: ColumnType<boolean, boolean | undefined, boolean>;
}

/** Payment attempts: the id is the idempotency key / merchant reference sent to the gateway. */
export interface TransactionsTable {
  id: string;
  invoice_id: string | null;
  customer_id: string | null;
  payment_method_id: string | null;
  gateway: Gateway;
  gateway_transaction_id: string | null;
  amount: Money;
  /**
   * What a succeeded charge moved when the gateway captured or settled less than `amount` (an
   * Authorize.Net partial capture), minor units; null when the whole `amount` moved or nothing did.
   */
  amount_captured: ColumnType<bigint | null, bigint | null | undefined, bigint | null>;
  currency: string;
  status: TransactionStatus;
  failure_code: string | null;
  failure_message: string | null;
  /** Status checks made so far for a pending or unknown outcome. */
  poll_attempts: Generated<number>;
  created_at: CreatedAt;
  updated_at: CreatedAt;
  /** Made by the scheduler (a scheduled charge or a dunning retry), not asked for through the API. */
  automatic: ColumnType<boolean, boolean | undefined, boolean>;
  /** When dunning counted this automatic attempt's failure (null until then, or if it never failed). */
  dunning_counted_at: MaybeTimestamp;
  /** The gateway account (`gwa_…`) it was charged on: its payment method's; null for the gateway's default account. */
  gateway_account: ColumnType<string | null, string | null | undefined, string | null>;
}

/** Refunds of a transaction; the id is the refund idempotency key. */
export interface RefundsTable {
  id: string;
  transaction_id: string;
  invoice_id: string | null;
  gateway: Gateway;
  gateway_refund_id: string | null;
  amount: Money;
  currency: string;
  status: RefundStatus;
  reason: string | null;
  failure_code: string | null;
  failure_message: string | null;
  created_at: CreatedAt;
  updated_at: CreatedAt;
  /** `payment`: a refund of what a payment paid; `customer_credit`: the customer's credit paid back. */
  kind: ColumnType<RefundKind, RefundKind | undefined, RefundKind>;
  /**
   * The customer a refund is about: whose credit a `customer_credit` refund pays back; for a `payment`
   * refund, its payment's customer, else its payment's invoice's (migration 0061; null only when the
   * payment names neither).
   */
  customer_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** The gateway account (`gwa_…`) of the transaction it refunds; null for the gateway's default account. */
  gateway_account: ColumnType<string | null, string | null | undefined, string | null>;
  /**
   * Minor units ≥ 0 of a succeeded refund of an invoice that took back, beyond what the invoice's
   * period kept, the credit the period's changes gave the customer (billing/proration.ts
   * `changeCreditTakenBack`, migration 0046), and the cash the invoice had given to the customer's
   * credit for want of a gateway step that it gave back again (billing/credit-notes.ts
   * `cashCreditedTwice`: a refund made at the gateway), both the customer's credit paid back in
   * cash, not the sale; 0 otherwise. Counted while the refund is `succeeded`.
   */
  change_credit_taken_back: MoneyWithDefault;
  /**
   * True for a refund billhook asked the gateway for (by hand, a cancellation's, a customer-credit
   * refund's); false for one a gateway reported that billhook did not send (its dashboard, PayPal
   * paying a claim), and for rows before migration 0060. Only those are a PayPal claim's money
   * (billing/invoice-payment.ts `claimRefundCameFirst`, payments/disputes.ts `refundCarrying`).
   */
  sent_by_billhook: ColumnType<boolean, boolean | undefined, boolean>;
}

/** What a refund gives back: part of a payment, or the customer's credit (billing/customer-credit.ts). */
export type RefundKind = 'payment' | 'customer_credit';

/**
 * Credit notes (`cn_…`): one per succeeded refund of an invoice, with the refund's share of the
 * invoice's subtotal and tax (minor units; the tax signed like the invoice's, negative when its credits
 * carry more tax than its charges; total = subtotal + tax = the refund's amount less what it paid
 * back of an overpayment). VOID when the refund failed after succeeding.
 */
export interface CreditNotesTable {
  id: string;
  invoice_id: string;
  /** The refund whose money it documents; null for a credit note that gives back customer credit. */
  refund_id: string | null;
  customer_id: string;
  currency: string;
  subtotal: Money;
  tax: Money;
  /**
   * What of the invoice's `rounding` (PRODUCT §11) the note gives back, minor units ≥ 0 (migration
   * 0054): total = subtotal + tax − rounding, as on the invoice; 0 on notes issued before.
   */
  rounding: MoneyWithDefault;
  total: Money;
  status: ColumnType<'ISSUED' | 'VOID', 'ISSUED' | 'VOID' | undefined, 'ISSUED' | 'VOID'>;
  reason: string | null;
  created_at: CreatedAt;
  voided_at: MaybeTimestamp;
}

/** Disputes (chargebacks and inquiries) on a transaction. */
export interface DisputesTable {
  id: string;
  transaction_id: string;
  gateway: Gateway;
  gateway_dispute_id: string;
  amount: Money;
  currency: string;
  status: DisputeStatus;
  reason: string | null;
  /** The refund that carried this lost dispute's money to the customer (booked once, as that refund). */
  refund_id: ColumnType<string | null, string | null | undefined, string | null>;
  /**
   * True when the gateway took the money back by reversing the payment (a chargeback), so no refund
   * of the payment carries it (migration 0039).
   */
  reversed: ColumnType<boolean, boolean | undefined, boolean>;
  /**
   * What this dispute, lost and carried by no refund, took back of its payment's invoice's
   * overpayment (the customer's credit), minor units, ≤ `amount`; 0 otherwise (migration 0048).
   * Counted as overpayment given back while the dispute is `lost` (won after its loss, it gave it back).
   * Its share as it is now: worked again when the invoice's overpayment or its lost disputes change
   * (payments/overpayment-shares.ts `resplitOverpayment`).
   */
  overpayment_charged_back: MoneyWithDefault;
  created_at: CreatedAt;
  updated_at: CreatedAt;
  /** The gateway account (`gwa_…`) of the disputed transaction; null for the gateway's default account. */
  gateway_account: ColumnType<string | null, string | null | undefined, string | null>;
  /**
   * The refund PayPal paid out of this open claim's hold (`dp_…:hold_refunded:<re_…>` posted: the
   * hold is back in clearing, spent by that refund); null when none (migration 0060,
   * payments/disputes.ts `syncClaimHolds`).
   */
  hold_refund_id: ColumnType<string | null, string | null | undefined, string | null>;
}

/** What reconciliation could not settle by itself, for a person. */
export interface ReconciliationExceptionsTable {
  id: string;
  kind: string;
  gateway: Gateway;
  inbox_id: string | null;
  transaction_id: string | null;
  /** The refund it is about (an unknown refund's outcome), else null. */
  refund_id: ColumnType<string | null, string | null | undefined, string | null>;
  message: string;
  details: ColumnType<Record<string, unknown>, string | undefined, string>;
  status: ColumnType<'open' | 'resolved', 'open' | 'resolved' | undefined, 'open' | 'resolved'>;
  created_at: CreatedAt;
  resolved_at: MaybeTimestamp;
  /** The gateway account (`gwa_…`) it is about; null for the default account or when unknown. */
  gateway_account: ColumnType<string | null, string | null | undefined, string | null>;
  /** The payout it is about (`pyo_…`), else null. */
  payout_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** The settlement line it is about (`stl_…`), else null. */
  settlement_line_id: ColumnType<string | null, string | null | undefined, string | null>;
  /**
   * What it is about beyond the columns above (a dispute `dp_…`, the entry that raised it), '' when
   * nothing more: part of the keys that keep it once (migration 0050).
   */
  occurrence: ColumnType<string, string | undefined, string>;
}

/** A payout's status (src/gateways/settlement.ts `PAYOUT_STATUSES`). */
export type PayoutStatus = 'pending' | 'in_transit' | 'paid' | 'failed' | 'canceled';

/**
 * What a gateway account pays to the bank (`pyo_…`, PRODUCT.md §13), once per (gateway, gateway
 * account, `gateway_payout_id`): `amount` minor units of `currency`; `lines_known` once the gateway
 * listed the balance lines it pays out (`settlement_lines.payout_id`).
 */
export interface PayoutsTable {
  id: string;
  gateway: Gateway;
  gateway_account: string | null;
  gateway_payout_id: string;
  status: PayoutStatus;
  currency: string;
  amount: Money;
  gateway_created_at: Date;
  arrival_date: Date | null;
  failure_code: string | null;
  description: string | null;
  lines_known: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: CreatedAt;
  updated_at: CreatedAt;
}

/** What a settlement line is about (src/gateways/settlement.ts `SETTLEMENT_LINE_KINDS`). */
export type SettlementLineKind =
  | 'charge'
  | 'refund'
  | 'dispute'
  | 'fee'
  | 'adjustment'
  | 'payout_return'
  | 'conversion'
  | 'hold';

/**
 * One line of a gateway balance (`stl_…`), once per (gateway, gateway account, `gateway_line_id`):
 * minor units of `currency`, signed from the merchant's side (`net = gross - fee`); the billhook
 * transaction, refund or dispute it matched; the payout that paid it out.
 */
export interface SettlementLinesTable {
  id: string;
  gateway: Gateway;
  gateway_account: string | null;
  gateway_line_id: string;
  kind: SettlementLineKind;
  currency: string;
  gross: Money;
  fee: Money;
  net: Money;
  /**
   * Of `fee` (of a `fee` line: of what it takes), what a partner (a platform) took, minor units ≥ 0:
   * booked once per payment, whichever of its lines reports it (settlement/lines.ts; migration 0041).
   */
  partner_fee: MoneyWithDefault;
  original_currency: string | null;
  original_amount: ColumnType<bigint | null, bigint | null, bigint | null>;
  /**
   * With `original_*`, the rate the gateway says it converted at: plain decimal text, major units
   * (Stripe's `exchange_rate`, `1.234`); null when it gave none (migration 0059). The line's gross is
   * checked against what billhook booked × it (settlement/lines.ts `rateOtherAmount`).
   */
  exchange_rate: ColumnType<string | null, string | null | undefined, string | null>;
  gateway_transaction_id: string | null;
  gateway_refund_id: string | null;
  gateway_dispute_id: string | null;
  reference: string | null;
  transaction_id: string | null;
  refund_id: string | null;
  dispute_id: string | null;
  payout_id: ColumnType<string | null, string | null | undefined, string | null>;
  description: string | null;
  occurred_at: Date;
  available_on: Date | null;
  created_at: CreatedAt;
}

/** Ledger accounts, one per code and currency. */
export interface LedgerAccountsTable {
  id: string;
  code: string;
  type: AccountType;
  currency: string;
  created_at: CreatedAt;
}

/** Journal entries: immutable, unique per idempotency key, ordered by `sequence`. */
export interface JournalEntriesTable {
  id: string;
  sequence: ColumnType<bigint, never, never>;
  idempotency_key: string;
  description: string;
  source_type: string;
  source_id: string;
  created_at: CreatedAt;
}

/** Postings of a journal entry: signed minor units (debit positive), balanced per currency. */
export interface PostingsTable {
  id: Generated<string>;
  journal_entry_id: string;
  account_id: string;
  amount: Money;
  currency: string;
}

/** Idempotency keys of API POSTs, per API key, with the stored answer. */
export interface IdempotencyKeysTable {
  api_key_id: string;
  key: string;
  request_hash: string;
  response_status: number | null;
  /** `json`: the answer as first sent (read it `::text` for those bytes; parsed, an amount beyond 2^53 rounds). */
  response_body: ColumnType<unknown, string | null | undefined, string | null>;
  created_at: CreatedAt;
}

/**
 * The `transaction_list` view: every payment attempt (`type` `gateway`) and every offline payment
 * (`type` `offline`: no gateway, `succeeded`, its method and reference; once reversed, `canceled` with
 * failure code `reversed`, the reason its failure message: migration 0051), ordered by `sort_key`
 * (the id after its prefix, creation time first).
 */
export interface TransactionListView {
  id: string;
  sort_key: string;
  type: 'gateway' | 'offline';
  invoice_id: string | null;
  customer_id: string | null;
  payment_method_id: string | null;
  gateway: Gateway | null;
  gateway_account: string | null;
  gateway_transaction_id: string | null;
  amount: bigint;
  amount_captured: bigint | null;
  currency: string;
  status: TransactionStatus;
  failure_code: string | null;
  failure_message: string | null;
  automatic: boolean;
  offline_method: OfflinePaymentsTable['method'] | null;
  reference: string | null;
  created_at: Date;
  updated_at: Date;
}

/** Payments received outside any gateway. */
export interface OfflinePaymentsTable {
  id: string;
  invoice_id: string;
  method: 'BANK' | 'CHECK' | 'CASH' | 'OTHER';
  amount: Money;
  currency: string;
  reference: string | null;
  created_at: CreatedAt;
  /** When it was reversed (a bounced cheque: payments/offline-reversals.ts), null while it stands (migration 0051). */
  reversed_at: MaybeTimestamp;
  /** Why it was reversed, as the operator gave it; null while it stands (migration 0051). */
  reversal_reason: ColumnType<string | null, string | null | undefined, string | null>;
}

type Json<T> = ColumnType<T, string | undefined, string>;
type MaybeText = ColumnType<string | null, string | null | undefined, string | null>;

/** Products: what is sold; plans price them. */
export interface ProductsTable {
  id: string;
  name: string;
  description: MaybeText;
  external_id: MaybeText;
  active: ColumnType<boolean, boolean | undefined, boolean>;
  metadata: Json<Record<string, string>>;
  created_at: CreatedAt;
  updated_at: CreatedAt;
}

/**
 * Plans: a product's recurring price per interval. `price` is the price JSON (snake_case, integer
 * minor units; read it with plans.ts `planOf`); `metered` lists usage-priced metrics
 * `[{code, aggregation, price}]`.
 */
export interface PlansTable {
  id: string;
  product_id: string;
  name: string;
  currency: string;
  interval: PlanInterval;
  interval_count: ColumnType<number, number | undefined, number>;
  price: Json<unknown>;
  metered: Json<unknown>;
  trial_days: ColumnType<number, number | undefined, number>;
  /** Whether usage recorded during a trial is billed (on period 0's invoice); false: it is free. */
  bill_trial_usage: ColumnType<boolean, boolean | undefined, boolean>;
  /** Tax rate of the plan's invoice lines in parts per million (1% = 10000). */
  tax_rate_ppm: ColumnType<number, number | undefined, number>;
  /** Minor units of `currency` charged once, on a subscription's first invoice; null: none. */
  setup_fee: ColumnType<bigint | null, bigint | null | undefined, bigint | null>;
  /** Whether the price (and setup fee) includes its taxes. */
  tax_inclusive: ColumnType<boolean, boolean | undefined, boolean>;
  /** A fixed term: the number of billing cycles a subscription runs, 1 … 1200; null: until cancelled. */
  repeat: ColumnType<number | null, number | null | undefined, number | null>;
  active: ColumnType<boolean, boolean | undefined, boolean>;
  metadata: Json<Record<string, string>>;
  created_at: CreatedAt;
  updated_at: CreatedAt;
}

/** Add-ons (`addon_…`): a recurring price per unit per period, minor units of `currency`. */
export interface AddOnsTable {
  id: string;
  name: string;
  description: MaybeText;
  currency: string;
  amount: bigint;
  active: ColumnType<boolean, boolean | undefined, boolean>;
  metadata: Json<Record<string, string>>;
  created_at: CreatedAt;
  updated_at: CreatedAt;
}

/** An add-on on a subscription (`sao_…`), billed `quantity` times on each period's invoice. */
export interface SubscriptionAddOnsTable {
  id: string;
  subscription_id: string;
  add_on_id: string;
  quantity: number;
  created_at: CreatedAt;
  updated_at: CreatedAt;
}

/** Named tax rates (`txr_…`) per country and optional state, in parts per million. */
export interface TaxRatesTable {
  id: string;
  display_name: string;
  description: MaybeText;
  /** ISO 3166-1 alpha-2. */
  country: string;
  /** Null: the whole country. */
  state: MaybeText;
  percent_ppm: number;
  inclusive: ColumnType<boolean, boolean | undefined, boolean>;
  compound: ColumnType<boolean, boolean | undefined, boolean>;
  active: ColumnType<boolean, boolean | undefined, boolean>;
  metadata: Json<Record<string, string>>;
  created_at: CreatedAt;
  updated_at: CreatedAt;
}

/** Subscriptions of a customer to a plan; periods derive from `billing_anchor` (see periods.ts). */
export interface SubscriptionsTable {
  id: string;
  customer_id: string;
  plan_id: string;
  payment_method_id: MaybeText;
  status: SubscriptionStatus;
  quantity: ColumnType<number, number | undefined, number>;
  /** Replaces the plan's recurring amount per period (minor units) when set. */
  amount_override: ColumnType<bigint | null, bigint | null | undefined, bigint | null>;
  billing_anchor: ColumnType<Date, Date | string, Date | string>;
  start_at: ColumnType<Date, Date | string, Date | string>;
  trial_end_at: MaybeTimestamp;
  current_period_index: ColumnType<number | null, number | null | undefined, number | null>;
  current_period_start: MaybeTimestamp;
  current_period_end: MaybeTimestamp;
  next_renewal_at: MaybeTimestamp;
  cancel_at_period_end: ColumnType<boolean, boolean | undefined, boolean>;
  cancelled_at: MaybeTimestamp;
  suspended_at: MaybeTimestamp;
  ended_at: MaybeTimestamp;
  metadata: Json<Record<string, string>>;
  created_at: CreatedAt;
  updated_at: CreatedAt;
  /**
   * Usage events before this moment are billed (or were free in a trial): the next invoice bills
   * usage from here on and an event before it is refused; null: nothing billed yet (`start_at`).
   */
  usage_billed_until: MaybeTimestamp;
  /** A cancellation scheduled at this moment (the status stays until then); null: none scheduled. */
  cancel_at: MaybeTimestamp;
  /** Why it was (or will be) cancelled, as the caller said (≤ 1000 characters). */
  cancel_reason: MaybeText;
  /**
   * The refund type of its latest cancellation (`none`, `full`, `prorate`: now, at period end, at a
   * date, a cancel-now replacing a scheduled one; dunning's `none` unless one scheduled before said
   * one); null: never cancelled (migration 0056). What a cancellation gave back is worked from it
   * (billing/credit-returns.ts `cancellationReach`).
   */
  cancellation_refund_type: ColumnType<
    CancellationRefundType | null,
    CancellationRefundType | null | undefined,
    CancellationRefundType | null
  >;
  /**
   * The moment that cancellation's refund counted from (its effective time: now, the period's end or
   * the date it was scheduled at); null exactly when `cancellation_refund_type` is.
   */
  cancellation_effective_at: MaybeTimestamp;
  /** Why it was suspended (≤ 1000 characters); cleared on reactivation. */
  suspend_reason: MaybeText;
  /** A plan change scheduled for the next renewal (with `scheduled_quantity`); null: none. */
  scheduled_plan_id: MaybeText;
  /** The quantity of the change scheduled for the next renewal; null exactly when `scheduled_plan_id` is. */
  scheduled_quantity: ColumnType<number | null, number | null | undefined, number | null>;
  /** The PO number and notes each invoice of the subscription is created with (null: none). */
  po_number: MaybeText;
  invoice_notes: MaybeText;
  /**
   * Its fixed term: periods 0 … repeat − 1 are billed, then the renewal ends it (`term_completed`);
   * null: until cancelled. The plan's `repeat` unless overridden on create.
   */
  repeat: ColumnType<number | null, number | null | undefined, number | null>;
  /** When settle invoiced every remaining cycle of its term (Billby's SETTLED); null: not settled. */
  settled_at: MaybeTimestamp;
  /**
   * What the current period's invoices charged for the plan in force after a prorated change
   * (billing/proration.ts `StoredBasis`, JSON); null, or another period's: the period invoice's lines.
   */
  charged_basis: ColumnType<unknown, string | null | undefined, string | null>;
  /**
   * A charge pending for the add-on units set while it was SUSPENDED: from this moment (a payment's
   * reactivation within the period invoiced before the suspension) to the end of what that period
   * serves, made and cleared by the renewal (billing/renewal.ts `renewLocked`); null: none pending.
   * Never in `next_renewal_at`, which stays the period's boundary.
   */
  add_on_charge_at: MaybeTimestamp;
  /**
   * The `sequence` of the `subscription.suspended` activity whose add-on sets `add_on_charge_at`
   * charges (those logged after it and before the reactivation that followed); null exactly when
   * `add_on_charge_at` is.
   */
  add_on_charge_suspension: ColumnType<bigint | null, bigint | null | undefined, bigint | null>;
}

/** Coupons: percent off in parts per million (1% = 10000) or an amount off in minor units of `currency`. */
export interface CouponsTable {
  id: string;
  code: string;
  name: MaybeText;
  percent_off_ppm: ColumnType<number | null, number | null | undefined, number | null>;
  amount_off: ColumnType<bigint | null, bigint | null | undefined, bigint | null>;
  currency: MaybeText;
  duration: CouponDuration;
  duration_in_periods: ColumnType<number | null, number | null | undefined, number | null>;
  max_redemptions: ColumnType<number | null, number | null | undefined, number | null>;
  /** No redemption after this time; null: none. */
  redeem_by: MaybeTimestamp;
  max_redemptions_per_customer: ColumnType<number | null, number | null | undefined, number | null>;
  /** Product ids (`prod_…`) whose lines it discounts; null: every product (see `applies_to_add_ons`). */
  applies_to_products: ColumnType<string[] | null, string | null | undefined, string | null>;
  /**
   * Add-on ids (`addon_…`) it may be redeemed on; null: none, unless `applies_to_products` is null
   * too (then it is for all: every plan and every add-on).
   */
  applies_to_add_ons: ColumnType<string[] | null, string | null | undefined, string | null>;
  times_redeemed: Generated<number>;
  active: ColumnType<boolean, boolean | undefined, boolean>;
  metadata: Json<Record<string, string>>;
  created_at: CreatedAt;
}

/** A coupon redeemed on a subscription, with the periods it has discounted so far. */
export interface CouponRedemptionsTable {
  id: string;
  coupon_id: string;
  subscription_id: string;
  customer_id: string;
  periods_applied: Generated<number>;
  created_at: CreatedAt;
  /** Set when removed from the subscription: it discounts no later invoice; past discounts stay. */
  removed_at: MaybeTimestamp;
  /** The subscription's add-on it was redeemed on (it discounts that add-on's line only); null: the plan's line. */
  add_on_id: MaybeText;
  /**
   * The index of the first period invoice that may count it: one past the subscription's last period
   * invoice when it was redeemed, 0 before any (migration 0049; never changes).
   */
  first_period_index: ColumnType<number, number, never>;
}

/** Usage events of metered prices, unique per `event_id`; `value` in whole units. */
export interface UsageEventsTable {
  id: string;
  event_id: string;
  subscription_id: string;
  customer_id: string;
  code: string;
  value: ColumnType<bigint, bigint, bigint>;
  properties: Json<Record<string, unknown>>;
  occurred_at: CreatedAt;
  created_at: CreatedAt;
}

/**
 * The aggregates of a subscription's usage events of one metric code in one usage period
 * [period_start, period_end): `sum`, `max` (null: none) and `count` of their `value`s, kept by each
 * usage event's transaction (migration 0057; billing/usage.ts `keepPeriodTotals`).
 */
export interface UsagePeriodTotalsTable {
  subscription_id: string;
  code: string;
  period_start: Date;
  period_end: Date;
  sum: ColumnType<bigint, bigint, bigint>;
  max: ColumnType<bigint | null, bigint | null, bigint | null>;
  count: ColumnType<bigint, bigint, bigint>;
}

/** A limit on a customer's estimated usage cost in the current period, and what crossing it does. */
export interface UsageLimitsTable {
  id: string;
  customer_id: string;
  amount: Money;
  currency: string;
  action: 'WARN' | 'SUSPEND';
  last_triggered_period_start: MaybeTimestamp;
  created_at: CreatedAt;
  /** Set when deleted: the limit no longer acts and is kept for the history. */
  deleted_at: MaybeTimestamp;
}

/** The append-only audit log: one row per state change, ordered by `sequence`. */
export interface ActivitiesTable {
  id: string;
  sequence: ColumnType<bigint, never, never>;
  resource_type: string;
  resource_id: string;
  action: string;
  customer_id: MaybeText;
  /** Who caused it: an API key id (`key_…`), `webhook:<gateway>`, `scheduler` or `cli`. */
  actor: string;
  data: Json<Record<string, unknown>>;
  created_at: CreatedAt;
}

/** A delivery's state: sent and answered 2xx (`succeeded`), waiting for an attempt or a retry, or given up. */
export type WebhookDeliveryStatus = 'pending' | 'retrying' | 'succeeded' | 'failed';

/**
 * Endpoints internal systems registered for billhook's own events (`we_…`, src/outbound/): the URL,
 * the event types sent to it, and its `whsec_…` signing secret encrypted (AES-256-GCM: IV, tag,
 * ciphertext) under the key `secret_key_id` names.
 */
export interface WebhookEndpointsTable {
  id: string;
  url: string;
  description: string | null;
  enabled_events: ColumnType<string[], string[], string[]>;
  secret: Buffer;
  secret_key_id: string;
  disabled_at: MaybeTimestamp;
  created_at: CreatedAt;
  updated_at: CreatedAt;
}

/** billhook's own events (`evt_…`), one per activity that is one: `body` is the exact JSON sent. */
export interface OutboundEventsTable {
  id: string;
  activity_id: string;
  type: string;
  body: string;
  created_at: CreatedAt;
}

/** One event's delivery to one endpoint (`wdl_…`), updated at each attempt. */
export interface WebhookDeliveriesTable {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  status: WebhookDeliveryStatus;
  attempts: ColumnType<number, number | undefined, number>;
  /** The HTTP status of the last answer; null: none (not tried yet, timeout, connection error). */
  last_status_code: number | null;
  last_error: string | null;
  last_attempt_at: MaybeTimestamp;
  delivered_at: MaybeTimestamp;
  /** The delivery this one repeats (manual redelivery); null for the first. */
  redelivery_of: string | null;
  created_at: CreatedAt;
  updated_at: CreatedAt;
}

/** The outbound dispatcher's cursor: the last activity `sequence` it read (one row). */
export interface OutboundCursorTable {
  id: ColumnType<boolean, never, never>;
  sequence: ColumnType<bigint, never, bigint | string>;
}

/** Every table billhook owns, as Kysely sees it. */
export interface Database {
  api_keys: ApiKeysTable;
  inbox: InboxTable;
  gateway_accounts: GatewayAccountsTable;
  customers: CustomersTable;
  payment_methods: PaymentMethodsTable;
  invoices: InvoicesTable;
  invoice_lines: InvoiceLinesTable;
  invoice_number_counters: InvoiceNumberCountersTable;
  /** A read-only view (migration 0029): transactions and offline payments, not a table. */
  transaction_list: TransactionListView;
  transactions: TransactionsTable;
  refunds: RefundsTable;
  credit_notes: CreditNotesTable;
  disputes: DisputesTable;
  reconciliation_exceptions: ReconciliationExceptionsTable;
  payouts: PayoutsTable;
  settlement_lines: SettlementLinesTable;
  ledger_accounts: LedgerAccountsTable;
  journal_entries: JournalEntriesTable;
  postings: PostingsTable;
  idempotency_keys: IdempotencyKeysTable;
  offline_payments: OfflinePaymentsTable;
  products: ProductsTable;
  plans: PlansTable;
  tax_rates: TaxRatesTable;
  add_ons: AddOnsTable;
  subscription_add_ons: SubscriptionAddOnsTable;
  subscriptions: SubscriptionsTable;
  coupons: CouponsTable;
  coupon_redemptions: CouponRedemptionsTable;
  usage_events: UsageEventsTable;
  usage_period_totals: UsagePeriodTotalsTable;
  usage_limits: UsageLimitsTable;
  activities: ActivitiesTable;
  webhook_endpoints: WebhookEndpointsTable;
  outbound_events: OutboundEventsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  outbound_cursor: OutboundCursorTable;
}

export type InboxRow = Selectable<InboxTable>;
export type GatewayAccountRow = Selectable<GatewayAccountsTable>;
export type CustomerRow = Selectable<CustomersTable>;
export type PaymentMethodRow = Selectable<PaymentMethodsTable>;
export type InvoiceRow = Selectable<InvoicesTable>;
export type InvoiceLineRow = Selectable<InvoiceLinesTable>;
export type NewInvoiceLine = Insertable<InvoiceLinesTable>;
export type TransactionRow = Selectable<TransactionsTable>;
export type TransactionListRow = Selectable<TransactionListView>;
export type RefundRow = Selectable<RefundsTable>;
export type CreditNoteRow = Selectable<CreditNotesTable>;
export type DisputeRow = Selectable<DisputesTable>;
export type PayoutRow = Selectable<PayoutsTable>;
export type SettlementLineRow = Selectable<SettlementLinesTable>;
export type ReconciliationExceptionRow = Selectable<ReconciliationExceptionsTable>;
export type LedgerAccountRow = Selectable<LedgerAccountsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type OfflinePaymentRow = Selectable<OfflinePaymentsTable>;
export type ProductRow = Selectable<ProductsTable>;
export type PlanRow = Selectable<PlansTable>;
export type TaxRateRow = Selectable<TaxRatesTable>;
export type AddOnRow = Selectable<AddOnsTable>;
export type SubscriptionAddOnRow = Selectable<SubscriptionAddOnsTable>;
export type SubscriptionRow = Selectable<SubscriptionsTable>;
export type CouponRow = Selectable<CouponsTable>;
export type CouponRedemptionRow = Selectable<CouponRedemptionsTable>;
export type UsageEventRow = Selectable<UsageEventsTable>;
export type UsageLimitRow = Selectable<UsageLimitsTable>;
export type ActivityRow = Selectable<ActivitiesTable>;
export type WebhookEndpointRow = Selectable<WebhookEndpointsTable>;
export type OutboundEventRow = Selectable<OutboundEventsTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;
