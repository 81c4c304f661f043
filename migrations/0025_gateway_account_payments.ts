import { type Kysely, sql } from 'kysely';

/**
 * Payments belong to a gateway account (PRODUCT.md §12): a payment method, and the transactions,
 * refunds and disputes of its charges, record the gateway account (`gwa_…`) whose credentials made or
 * reported them; null is the gateway's default account (the environment), so every existing row stays
 * on the account it was made on and no balance or behaviour changes. Nullable columns without a
 * default: PostgreSQL adds them without rewriting the tables.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE payment_methods ADD COLUMN gateway_account text REFERENCES gateway_accounts (id);
    ALTER TABLE transactions ADD COLUMN gateway_account text REFERENCES gateway_accounts (id);
    ALTER TABLE refunds ADD COLUMN gateway_account text REFERENCES gateway_accounts (id);
    ALTER TABLE disputes ADD COLUMN gateway_account text REFERENCES gateway_accounts (id);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE disputes DROP COLUMN gateway_account;
    ALTER TABLE refunds DROP COLUMN gateway_account;
    ALTER TABLE transactions DROP COLUMN gateway_account;
    ALTER TABLE payment_methods DROP COLUMN gateway_account;
  `.execute(db);
}
