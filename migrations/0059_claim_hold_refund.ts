import { type Kysely, sql } from 'kysely';

/**
 * A refund billhook sends itself is not a PayPal claim's money (billing/invoice-payment.ts
 * `claimRefundCameFirst`):
 * - `refunds.sent_by_billhook`: true for a refund billhook asked the gateway for (by hand, a
 *   cancellation's, a customer-credit refund's: `createRefund` without the gateway's refund id); false
 *   for one a gateway reported that billhook did not send (its dashboard, PayPal paying a claim). Only
 *   those are paired with a PayPal claim. Rows before 0059 are false: they keep the pairing they had.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE refunds ADD COLUMN sent_by_billhook boolean NOT NULL DEFAULT false;
  `.execute(db);
}

/** Drops what 0059 adds. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE refunds DROP COLUMN sent_by_billhook;
  `.execute(db);
}
