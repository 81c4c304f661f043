import { type Kysely, sql } from 'kysely';

/**
 * Gateway accounts (`gwa_…`, PRODUCT.md §12): several accounts per gateway besides the default one
 * the environment configures. Credentials are stored encrypted (AES-256-GCM, `credentials`: IV, tag,
 * ciphertext) with the id of the key that encrypted them (`credentials_key_id`), and, in clear, only
 * the last four characters of each (`credentials_last4`, what the API shows). `version` takes a new
 * value of its sequence at every change, so a process sees that an account changed when the sum of
 * the versions does (src/accounts/adapters.ts). An inbox row records the account its delivery came
 * to (`gateway_account`, null for the default account).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE SEQUENCE gateway_accounts_version;
    CREATE TABLE gateway_accounts (
      id text PRIMARY KEY,
      gateway text NOT NULL,
      name text NOT NULL,
      mode text NOT NULL CHECK (mode IN ('test', 'live')),
      api_base text,
      credentials bytea NOT NULL,
      credentials_key_id text NOT NULL,
      credentials_last4 jsonb NOT NULL,
      version bigint NOT NULL DEFAULT nextval('gateway_accounts_version'),
      disabled_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (gateway, name)
    );
    ALTER TABLE inbox ADD COLUMN gateway_account text REFERENCES gateway_accounts (id);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE inbox DROP COLUMN gateway_account;
    DROP TABLE gateway_accounts;
    DROP SEQUENCE gateway_accounts_version;
  `.execute(db);
}
