import { type Kysely, sql } from 'kysely';

/**
 * Foundation schema: inbox, reconciliation exceptions, API keys, customers, payment methods,
 * invoices with lines, transactions (payment attempts), refunds, disputes and the double-entry
 * ledger. Typed against Kysely<unknown> so later changes to the app's types never break it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE api_keys (
      id text PRIMARY KEY,
      name text NOT NULL,
      prefix text NOT NULL,
      key_hash text NOT NULL UNIQUE,
      scope text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
      created_at timestamptz NOT NULL DEFAULT now(),
      last_used_at timestamptz,
      revoked_at timestamptz
    );

    CREATE TABLE inbox (
      id text PRIMARY KEY,
      gateway text NOT NULL,
      gateway_event_id text NOT NULL,
      event_type text NOT NULL,
      body text,
      status text NOT NULL DEFAULT 'received'
        CHECK (status IN ('received', 'processed', 'ignored', 'retrying', 'exception')),
      outcome text,
      attempts integer NOT NULL DEFAULT 0,
      last_error text,
      received_at timestamptz NOT NULL DEFAULT now(),
      processed_at timestamptz,
      UNIQUE (gateway, gateway_event_id)
    );
    CREATE INDEX inbox_unprocessed ON inbox (received_at) WHERE status IN ('received', 'retrying');

    CREATE TABLE customers (
      id text PRIMARY KEY,
      email text NOT NULL,
      name text,
      external_id text UNIQUE,
      metadata jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE payment_methods (
      id text PRIMARY KEY,
      customer_id text NOT NULL REFERENCES customers(id),
      gateway text NOT NULL,
      gateway_token text NOT NULL,
      gateway_customer_id text,
      is_default boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX payment_methods_one_default ON payment_methods (customer_id) WHERE is_default;

    CREATE TABLE invoices (
      id text PRIMARY KEY,
      customer_id text NOT NULL REFERENCES customers(id),
      currency char(3) NOT NULL,
      status text NOT NULL DEFAULT 'DRAFT' CHECK (status IN
        ('DRAFT', 'OPEN', 'PAID', 'VOID', 'UNCOLLECTIBLE', 'PARTIALLY_REFUNDED', 'REFUNDED')),
      total bigint NOT NULL DEFAULT 0,
      amount_due bigint NOT NULL DEFAULT 0,
      amount_paid bigint NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
      amount_refunded bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= amount_paid),
      finalized_at timestamptz,
      paid_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX invoices_customer ON invoices (customer_id);

    CREATE TABLE invoice_lines (
      id text PRIMARY KEY,
      invoice_id text NOT NULL REFERENCES invoices(id),
      position integer NOT NULL,
      type text NOT NULL CHECK (type IN ('CHARGE', 'CREDIT')),
      description text NOT NULL,
      unit_amount bigint NOT NULL CHECK (unit_amount >= 0),
      quantity integer NOT NULL CHECK (quantity > 0),
      amount bigint NOT NULL,
      UNIQUE (invoice_id, position)
    );

    CREATE TABLE transactions (
      id text PRIMARY KEY,
      invoice_id text REFERENCES invoices(id),
      customer_id text REFERENCES customers(id),
      payment_method_id text REFERENCES payment_methods(id),
      gateway text NOT NULL,
      gateway_transaction_id text,
      amount bigint NOT NULL CHECK (amount > 0),
      currency char(3) NOT NULL,
      status text NOT NULL CHECK (status IN ('pending', 'unknown', 'succeeded', 'failed', 'canceled')),
      failure_code text,
      failure_message text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (gateway, gateway_transaction_id)
    );
    CREATE UNIQUE INDEX transactions_one_in_flight ON transactions (invoice_id)
      WHERE status IN ('pending', 'unknown');
    CREATE INDEX transactions_invoice ON transactions (invoice_id);

    CREATE TABLE refunds (
      id text PRIMARY KEY,
      transaction_id text NOT NULL REFERENCES transactions(id),
      invoice_id text REFERENCES invoices(id),
      gateway text NOT NULL,
      gateway_refund_id text,
      amount bigint NOT NULL CHECK (amount > 0),
      currency char(3) NOT NULL,
      status text NOT NULL CHECK (status IN ('pending', 'unknown', 'succeeded', 'failed')),
      reason text,
      failure_code text,
      failure_message text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (gateway, gateway_refund_id)
    );
    CREATE INDEX refunds_transaction ON refunds (transaction_id);

    CREATE TABLE disputes (
      id text PRIMARY KEY,
      transaction_id text NOT NULL REFERENCES transactions(id),
      gateway text NOT NULL,
      gateway_dispute_id text NOT NULL,
      amount bigint NOT NULL CHECK (amount > 0),
      currency char(3) NOT NULL,
      status text NOT NULL CHECK (status IN ('open', 'won', 'lost')),
      reason text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (gateway, gateway_dispute_id)
    );

    CREATE TABLE reconciliation_exceptions (
      id text PRIMARY KEY,
      kind text NOT NULL,
      gateway text NOT NULL,
      inbox_id text REFERENCES inbox(id),
      transaction_id text REFERENCES transactions(id),
      message text NOT NULL,
      details jsonb NOT NULL DEFAULT '{}',
      status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
      created_at timestamptz NOT NULL DEFAULT now(),
      resolved_at timestamptz
    );
    CREATE UNIQUE INDEX reconciliation_exceptions_once ON reconciliation_exceptions (inbox_id, kind)
      WHERE inbox_id IS NOT NULL;

    CREATE TABLE ledger_accounts (
      id text PRIMARY KEY,
      code text NOT NULL,
      type text NOT NULL CHECK (type IN ('asset', 'liability', 'revenue', 'contra_revenue', 'expense')),
      currency char(3) NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (code, currency)
    );

    CREATE TABLE journal_entries (
      id text PRIMARY KEY,
      sequence bigserial NOT NULL UNIQUE,
      idempotency_key text NOT NULL UNIQUE,
      description text NOT NULL,
      source_type text NOT NULL,
      source_id text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE postings (
      id bigserial PRIMARY KEY,
      journal_entry_id text NOT NULL REFERENCES journal_entries(id),
      account_id text NOT NULL REFERENCES ledger_accounts(id),
      amount bigint NOT NULL CHECK (amount <> 0),
      currency char(3) NOT NULL
    );
    CREATE INDEX postings_entry ON postings (journal_entry_id);
    CREATE INDEX postings_account ON postings (account_id);

    -- Entries and postings are immutable: corrections are new entries.
    CREATE FUNCTION ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'ledger rows are immutable (% on %)', TG_OP, TG_TABLE_NAME;
    END $$;
    CREATE TRIGGER journal_entries_immutable BEFORE UPDATE OR DELETE ON journal_entries
      FOR EACH ROW EXECUTE FUNCTION ledger_immutable();
    CREATE TRIGGER postings_immutable BEFORE UPDATE OR DELETE ON postings
      FOR EACH ROW EXECUTE FUNCTION ledger_immutable();
    CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_immutable();
    CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_immutable();

    -- Every entry balances per currency, checked when the transaction commits.
    CREATE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (
        SELECT 1 FROM postings WHERE journal_entry_id = NEW.journal_entry_id
        GROUP BY currency HAVING sum(amount) <> 0
      ) THEN
        RAISE EXCEPTION 'journal entry % does not balance', NEW.journal_entry_id;
      END IF;
      RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER postings_balanced AFTER INSERT ON postings
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced();

    -- Every entry has postings, also checked at commit.
    CREATE FUNCTION ledger_entry_has_postings() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM postings WHERE journal_entry_id = NEW.id) THEN
        RAISE EXCEPTION 'journal entry % has no postings', NEW.id;
      END IF;
      RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER journal_entries_have_postings AFTER INSERT ON journal_entries
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_has_postings();
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TABLE postings, journal_entries, ledger_accounts, reconciliation_exceptions, disputes, refunds,
      transactions, invoice_lines, invoices, payment_methods, customers, inbox, api_keys;
    DROP FUNCTION ledger_immutable, ledger_entry_balanced, ledger_entry_has_postings;
  `.execute(db);
}
