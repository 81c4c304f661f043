import { type Kysely, sql } from 'kysely';

/**
 * Indexes for what billing reads of an invoice's refunds and its payments' disputes:
 * - `disputes_transaction`: a payment's disputes. Every read of an invoice's disputes (joined through
 *   its payments: billing/credit-notes.ts `overpaymentsHeld`, `overpaymentGivenBack`, payments/
 *   refunds.ts's disputes that hold, billing/invoice-payment.ts `disputedAway`) scanned the whole
 *   table, once per invoice; `overpaymentsHeld` runs in every finalization of an invoice of a
 *   customer holding credit (billing/customer-credit.ts `availableCredit`) and for every page of
 *   customers the API lists (billing/customers.ts `withBalances`), once per overpaid invoice.
 * - `refunds_in_flight`: an invoice's refunds in flight (`pending`, `unknown`: what
 *   `overpaymentsHeld` reads of each of a customer's overpaid invoices by `refunds.invoice_id`, which
 *   had no index), partial, so it holds only the few refunds still in flight.
 * Built in the migration's transaction, which blocks writes to those tables while it runs. On large
 * tables, create them by hand with `CREATE INDEX CONCURRENTLY` (same names and definitions) before
 * deploying: the migration then keeps them (`IF NOT EXISTS`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX IF NOT EXISTS disputes_transaction ON disputes (transaction_id)`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS refunds_in_flight ON refunds (invoice_id)
    WHERE status IN ('pending', 'unknown')`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS refunds_in_flight`.execute(db);
  await sql`DROP INDEX IF EXISTS disputes_transaction`.execute(db);
}
