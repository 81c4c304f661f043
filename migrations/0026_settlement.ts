import { type Kysely, sql } from 'kysely';

/**
 * Settlement, fees and payouts (PRODUCT.md §13):
 * - `payouts` (`pyo_…`): what a gateway account pays to the bank (a Stripe payout, a PayPal
 *   withdrawal, an Authorize.Net settled batch, an eWAY daily settlement, an imported report's
 *   deposit), once per (gateway, gateway account, gateway's payout id); its status moves forward only;
 * - `settlement_lines` (`stl_…`): each line of a gateway balance (a charge's gross, fee and net, a
 *   refund, a dispute, a standalone fee, an adjustment), once per (gateway, gateway account, gateway's
 *   line id), with the billhook transaction, refund or dispute it matched and the payout that paid it
 *   out;
 * - reconciliation exceptions about a payout or a line name it, and are kept once per subject and
 *   kind; they also record the gateway account (null: the default account).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE payouts (
      id text PRIMARY KEY,
      gateway text NOT NULL,
      gateway_account text REFERENCES gateway_accounts (id),
      gateway_payout_id text NOT NULL,
      status text NOT NULL CHECK (status IN ('pending', 'in_transit', 'paid', 'failed', 'canceled')),
      currency char(3) NOT NULL,
      amount bigint NOT NULL,
      gateway_created_at timestamptz NOT NULL,
      arrival_date timestamptz,
      failure_code text,
      description text,
      lines_known boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX payouts_gateway_id ON payouts (gateway, gateway_account, gateway_payout_id)
      NULLS NOT DISTINCT;
    CREATE INDEX payouts_created ON payouts (gateway_created_at, id);

    CREATE TABLE settlement_lines (
      id text PRIMARY KEY,
      gateway text NOT NULL,
      gateway_account text REFERENCES gateway_accounts (id),
      gateway_line_id text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('charge', 'refund', 'dispute', 'fee', 'adjustment', 'payout_return')),
      currency char(3) NOT NULL,
      gross bigint NOT NULL,
      fee bigint NOT NULL,
      net bigint NOT NULL CHECK (net = gross - fee),
      original_currency char(3),
      original_amount bigint,
      gateway_transaction_id text,
      gateway_refund_id text,
      gateway_dispute_id text,
      reference text,
      transaction_id text REFERENCES transactions (id),
      refund_id text REFERENCES refunds (id),
      dispute_id text REFERENCES disputes (id),
      payout_id text REFERENCES payouts (id),
      description text,
      occurred_at timestamptz NOT NULL,
      available_on timestamptz,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX settlement_lines_gateway_id
      ON settlement_lines (gateway, gateway_account, gateway_line_id) NULLS NOT DISTINCT;
    CREATE INDEX settlement_lines_payout ON settlement_lines (payout_id, id);
    CREATE INDEX settlement_lines_transaction ON settlement_lines (transaction_id) WHERE transaction_id IS NOT NULL;

    ALTER TABLE reconciliation_exceptions
      ADD COLUMN gateway_account text REFERENCES gateway_accounts (id),
      ADD COLUMN payout_id text REFERENCES payouts (id),
      ADD COLUMN settlement_line_id text REFERENCES settlement_lines (id);
    DROP INDEX reconciliation_exceptions_once_per_transaction;
    CREATE UNIQUE INDEX reconciliation_exceptions_once_per_transaction
      ON reconciliation_exceptions (transaction_id, kind, refund_id, payout_id, settlement_line_id)
      NULLS NOT DISTINCT WHERE inbox_id IS NULL;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DELETE FROM reconciliation_exceptions WHERE payout_id IS NOT NULL OR settlement_line_id IS NOT NULL;
    DROP INDEX reconciliation_exceptions_once_per_transaction;
    CREATE UNIQUE INDEX reconciliation_exceptions_once_per_transaction
      ON reconciliation_exceptions (transaction_id, kind, refund_id) NULLS NOT DISTINCT
      WHERE inbox_id IS NULL;
    ALTER TABLE reconciliation_exceptions
      DROP COLUMN settlement_line_id,
      DROP COLUMN payout_id,
      DROP COLUMN gateway_account;
    DROP TABLE settlement_lines;
    DROP TABLE payouts;
  `.execute(db);
}
