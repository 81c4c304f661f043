import { type Kysely, sql } from 'kysely';

/**
 * An offline payment taken back (a bounced cheque, a bank transfer recalled):
 * `offline_payments.reversed_at` (null while it stands) and `reversal_reason` (why, as given to
 * `POST /v1/invoices/:id/payments/:payment/reverse`; null while it stands). The `transaction_list`
 * view shows a reversed one `canceled` with failure code `reversed`, the reason as its failure
 * message and `updated_at` when it was reversed; one that stands is `succeeded`, as before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE offline_payments
      ADD COLUMN reversed_at timestamptz,
      ADD COLUMN reversal_reason text,
      ADD CONSTRAINT offline_payments_reversal CHECK ((reversed_at IS NULL) = (reversal_reason IS NULL));
    CREATE OR REPLACE VIEW transaction_list AS
      SELECT t.id, substr(t.id, 5) AS sort_key, 'gateway'::text AS type, t.invoice_id, t.customer_id,
        t.payment_method_id, t.gateway, t.gateway_account, t.gateway_transaction_id, t.amount,
        t.amount_captured, t.currency, t.status, t.failure_code, t.failure_message, t.automatic,
        NULL::text AS offline_method, NULL::text AS reference, t.created_at, t.updated_at
      FROM transactions t
      UNION ALL
      SELECT o.id, substr(o.id, 4), 'offline', o.invoice_id, i.customer_id, NULL, NULL, NULL, NULL,
        o.amount, NULL, o.currency,
        CASE WHEN o.reversed_at IS NULL THEN 'succeeded' ELSE 'canceled' END,
        CASE WHEN o.reversed_at IS NULL THEN NULL ELSE 'reversed' END,
        o.reversal_reason, false, o.method, o.reference,
        o.created_at, coalesce(o.reversed_at, o.created_at)
      FROM offline_payments o JOIN invoices i ON i.id = o.invoice_id;
  `.execute(db);
}

/** Drops what 0051 adds: the view as 0029 made it, then the columns. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE OR REPLACE VIEW transaction_list AS
      SELECT t.id, substr(t.id, 5) AS sort_key, 'gateway'::text AS type, t.invoice_id, t.customer_id,
        t.payment_method_id, t.gateway, t.gateway_account, t.gateway_transaction_id, t.amount,
        t.amount_captured, t.currency, t.status, t.failure_code, t.failure_message, t.automatic,
        NULL::text AS offline_method, NULL::text AS reference, t.created_at, t.updated_at
      FROM transactions t
      UNION ALL
      SELECT o.id, substr(o.id, 4), 'offline', o.invoice_id, i.customer_id, NULL, NULL, NULL, NULL,
        o.amount, NULL, o.currency, 'succeeded', NULL, NULL, false, o.method, o.reference,
        o.created_at, o.created_at
      FROM offline_payments o JOIN invoices i ON i.id = o.invoice_id;
    ALTER TABLE offline_payments DROP CONSTRAINT offline_payments_reversal,
      DROP COLUMN reversed_at, DROP COLUMN reversal_reason;
  `.execute(db);
}
