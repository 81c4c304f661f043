import { type Kysely, sql } from 'kysely';

/**
 * A prorated refund in a currency its gateway takes only on a step (Stripe KWD: multiples of 10
 * fils; PayPal HUF: whole forints, multiples of 100) gives back in cash the largest on-step amount not
 * above what is owed and the rest as customer credit (billing/credit-returns.ts `creditCashRest`):
 * - `invoices.cash_credited`: of the cash paid, what was given back to the customer's credit that
 *   way, minor units ≥ 0 (a credit note each, `inv_…:cash_credited:<n>`). Counted as given back
 *   wherever billhook works out what an invoice kept, as `amount_refunded` is.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE invoices ADD COLUMN cash_credited bigint NOT NULL DEFAULT 0
      CONSTRAINT invoices_cash_credited CHECK (cash_credited >= 0);
  `.execute(db);
}

/** Drops what 0058 adds. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE invoices DROP COLUMN cash_credited;`.execute(db);
}
