/**
 * The statuses each API resource can have, as its rows store them: one list per resource, read by
 * its answer's schema (responses.ts) and by its list's `status` filter (schemas.ts `byStatus`: any
 * other value is 422 naming these), so the two never drift apart.
 */
export const INVOICE_STATUSES = [
  'DRAFT',
  'OPEN',
  'PAID',
  'VOID',
  'UNCOLLECTIBLE',
  'PARTIALLY_REFUNDED',
  'REFUNDED',
] as const;
/** A payment's (`txn_…` or `op_…`): `canceled` also for a voided charge or a reversed offline payment. */
export const TRANSACTION_STATUSES = ['pending', 'unknown', 'succeeded', 'failed', 'canceled'] as const;
/** A refund's (`re_…`). */
export const REFUND_STATUSES = ['pending', 'unknown', 'succeeded', 'failed'] as const;
/** A credit note's (`cn_…`). */
export const CREDIT_NOTE_STATUSES = ['ISSUED', 'VOID'] as const;
/** A dispute's (`dp_…`). */
export const DISPUTE_STATUSES = ['inquiry', 'inquiry_closed', 'open', 'won', 'lost'] as const;
/** An inbox event's (`evt_…`). */
export const INBOX_STATUSES = ['received', 'processed', 'ignored', 'retrying', 'exception'] as const;
/** A reconciliation exception's. */
export const EXCEPTION_STATUSES = ['open', 'resolved'] as const;
/** A subscription's (`sub_…`). */
export const SUBSCRIPTION_STATUSES = ['IN_TRIAL', 'ACTIVE', 'PAST_DUE', 'SUSPENDED', 'CANCELLED'] as const;
