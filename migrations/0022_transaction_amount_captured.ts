import { type Kysely, sql } from 'kysely';

/**
 * `transactions.amount_captured`: what a succeeded charge moved when the gateway captured or settled
 * less than was charged (an Authorize.Net partial capture or settlement: PRODUCT.md §11, "the settled
 * amount, not the authorized one, is what a capture moved"), in minor units of the charge's currency.
 * NULL means the whole `amount` moved (every existing row). Only a succeeded charge has one, and it is
 * more than nothing and less than `amount`: billhook never books more than it asked for.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE transactions ADD COLUMN amount_captured bigint,
      ADD CONSTRAINT transactions_amount_captured_partial CHECK (
        amount_captured IS NULL
        OR (status = 'succeeded' AND amount_captured > 0 AND amount_captured < amount)
      );
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE transactions DROP COLUMN amount_captured;`.execute(db);
}
