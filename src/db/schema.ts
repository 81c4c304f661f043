import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** A timestamp column with a database default. */
type CreatedAt = ColumnType<Date, Date | string | undefined, Date | string>;
/** A nullable timestamp column. */
type MaybeTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** A bigint money column (minor units), read and written as `bigint`. */
type Money = ColumnType<bigint, bigint, bigint>;
type MoneyWithDefault = ColumnType<bigint, bigint | undefined, bigint>;

/** Gateway names as stored; the same as `GatewayName`. */
export type Gateway = 'stripe' | 'paypal' | 'authorizenet' | 'eway' | 'securepay';
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
export type DisputeStatus = 'open' | 'won' | 'lost';
export type ApiKeyScope = 'read' | 'write' | 'admin';
export type AccountType = 'asset' | 'liability' | 'revenue' | 'contra_revenue' | 'expense';

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

/** Verified webhook deliveries (the inbox), unique per gateway and event id, with their processing status. */
export interface InboxTable {
  id: string;
  gateway: Gateway;
  gateway_event_id: string;
  event_type: string;
  body: string | null;
  status: ColumnType<InboxStatus, InboxStatus | undefined, InboxStatus>;
  outcome: string | null;
  attempts: Generated<number>;
  last_error: string | null;
  received_at: CreatedAt;
  processed_at: MaybeTimestamp;
}

/** Customers billed through billhook. */
export interface CustomersTable {
  id: string;
  email: string;
  name: string | null;
  external_id: string | null;
  metadata: ColumnType<Record<string, string>, string | undefined, string>;
  created_at: CreatedAt;
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
}

/** Invoice line items: unit amount × quantity (negative for CREDIT lines). */
export interface InvoiceLinesTable {
  id: string;
  invoice_id: string;
  position: number;
  type: 'CHARGE' | 'CREDIT';
  description: string;
  unit_amount: Money;
  quantity: number;
  amount: Money;
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
  currency: string;
  status: TransactionStatus;
  failure_code: string | null;
  failure_message: string | null;
  /** Status checks made so far for a pending or unknown outcome. */
  poll_attempts: Generated<number>;
  created_at: CreatedAt;
  updated_at: CreatedAt;
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
  created_at: CreatedAt;
  updated_at: CreatedAt;
}

/** What reconciliation could not settle by itself, for a person. */
export interface ReconciliationExceptionsTable {
  id: string;
  kind: string;
  gateway: Gateway;
  inbox_id: string | null;
  transaction_id: string | null;
  message: string;
  details: ColumnType<Record<string, unknown>, string | undefined, string>;
  status: ColumnType<'open' | 'resolved', 'open' | 'resolved' | undefined, 'open' | 'resolved'>;
  created_at: CreatedAt;
  resolved_at: MaybeTimestamp;
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
  response_body: ColumnType<unknown, string | null | undefined, string | null>;
  created_at: CreatedAt;
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
}

/** Every table billhook owns, as Kysely sees it. */
export interface Database {
  api_keys: ApiKeysTable;
  inbox: InboxTable;
  customers: CustomersTable;
  payment_methods: PaymentMethodsTable;
  invoices: InvoicesTable;
  invoice_lines: InvoiceLinesTable;
  transactions: TransactionsTable;
  refunds: RefundsTable;
  disputes: DisputesTable;
  reconciliation_exceptions: ReconciliationExceptionsTable;
  ledger_accounts: LedgerAccountsTable;
  journal_entries: JournalEntriesTable;
  postings: PostingsTable;
  idempotency_keys: IdempotencyKeysTable;
  offline_payments: OfflinePaymentsTable;
}

export type InboxRow = Selectable<InboxTable>;
export type CustomerRow = Selectable<CustomersTable>;
export type PaymentMethodRow = Selectable<PaymentMethodsTable>;
export type InvoiceRow = Selectable<InvoicesTable>;
export type InvoiceLineRow = Selectable<InvoiceLinesTable>;
export type NewInvoiceLine = Insertable<InvoiceLinesTable>;
export type TransactionRow = Selectable<TransactionsTable>;
export type RefundRow = Selectable<RefundsTable>;
export type DisputeRow = Selectable<DisputesTable>;
export type ReconciliationExceptionRow = Selectable<ReconciliationExceptionsTable>;
export type LedgerAccountRow = Selectable<LedgerAccountsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type OfflinePaymentRow = Selectable<OfflinePaymentsTable>;
