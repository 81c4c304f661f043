import { type Kysely, sql } from 'kysely';

/**
 * A subscription's credit balance: what a downgrade's proration credited beyond its charge (minor
 * units of the plan's currency, before tax), consumed by the next renewal invoices as a CREDIT line.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE subscriptions
      ADD COLUMN credit_balance bigint NOT NULL DEFAULT 0 CHECK (credit_balance >= 0);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE subscriptions DROP COLUMN credit_balance`.execute(db);
}
