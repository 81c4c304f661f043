import { type Kysely, sql } from 'kysely';

/**
 * Invoices as billing users handle them (issue #28 item 1) and offline payments read as transactions
 * (item 6):
 * - `invoice_number_counters`: one row per number prefix, its last number. Finalization locks and
 *   increments its prefix's row in the finalizing transaction, so numbers are gap-free (a rolled-back
 *   finalization gives its number back) where a sequence would leave gaps.
 * - invoices: `number` (`INV-000123`, unique, null on a DRAFT), `payment_terms_days` (net N days: the
 *   invoice's own override, then what finalization used), `due_date` (finalized_at + terms),
 *   `po_number`, `title`, `notes`, and `external_id` (the caller's own id, unique like a customer's).
 *   Invoices finalized before it are numbered `INV-000001`… in finalization order, due when finalized.
 * - customers: `invoice_prefix` (null: `INV`) and `payment_terms_days` (their invoices' default).
 * - `transaction_list`: gateway payment attempts and offline payments in one read-only view, each
 *   with `type` (`gateway` | `offline`) and `sort_key` (the id after its prefix: both prefixes' ids
 *   carry their creation time first, so the key orders them together; `/v1/transactions` pages by it).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE invoice_number_counters (
      prefix text PRIMARY KEY,
      last_number bigint NOT NULL CHECK (last_number > 0)
    );
    ALTER TABLE invoices
      ADD COLUMN number text UNIQUE,
      ADD COLUMN payment_terms_days integer CHECK (payment_terms_days BETWEEN 0 AND 365),
      ADD COLUMN due_date timestamptz,
      ADD COLUMN po_number text,
      ADD COLUMN title text,
      ADD COLUMN notes text,
      ADD COLUMN external_id text UNIQUE;
    ALTER TABLE customers
      ADD COLUMN invoice_prefix text CHECK (invoice_prefix ~ '^[A-Z0-9]{1,12}$'),
      ADD COLUMN payment_terms_days integer CHECK (payment_terms_days BETWEEN 0 AND 365);
    -- Invoices finalized before this migration are numbered INV-… in finalization order (terms 0: due
    -- when finalized), and the counter continues after them; a DRAFT (or a DRAFT voided) has none.
    WITH numbered AS (
      SELECT id, row_number() OVER (ORDER BY finalized_at, id)::text AS n
      FROM invoices WHERE finalized_at IS NOT NULL
    )
    UPDATE invoices i
    SET number = 'INV-' || CASE WHEN length(n) >= 6 THEN n ELSE lpad(n, 6, '0') END,
      payment_terms_days = 0, due_date = i.finalized_at
    FROM numbered WHERE numbered.id = i.id;
    INSERT INTO invoice_number_counters (prefix, last_number)
      SELECT 'INV', count(*) FROM invoices WHERE number IS NOT NULL HAVING count(*) > 0;
    CREATE INDEX transactions_sort_key ON transactions ((substr(id, 5)));
    CREATE INDEX offline_payments_sort_key ON offline_payments ((substr(id, 4)));
    CREATE VIEW transaction_list AS
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
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP VIEW transaction_list;
    DROP INDEX offline_payments_sort_key;
    DROP INDEX transactions_sort_key;
    ALTER TABLE customers DROP COLUMN invoice_prefix, DROP COLUMN payment_terms_days;
    ALTER TABLE invoices DROP COLUMN number, DROP COLUMN payment_terms_days, DROP COLUMN due_date,
      DROP COLUMN po_number, DROP COLUMN title, DROP COLUMN notes, DROP COLUMN external_id;
    DROP TABLE invoice_number_counters;
  `.execute(db);
}
