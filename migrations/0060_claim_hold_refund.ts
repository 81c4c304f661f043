import { type Kysely, sql } from 'kysely';

/**
 * PayPal pays a refund issued while a claim is open out of the funds it holds for the claim, and a
 * refund billhook sends itself is not the claim's money (payments/disputes.ts `syncClaimHolds`):
 * - `refunds.sent_by_billhook`: true for a refund billhook asked the gateway for (by hand, a
 *   cancellation's, a customer-credit refund's: `createRefund` without the gateway's refund id); false
 *   for one a gateway reported that billhook did not send (its dashboard, PayPal paying a claim). Only
 *   those are paired with a PayPal claim. Rows before 0060 are false: they keep the pairing they had.
 * - `disputes.hold_refund_id`: the refund whose payment PayPal made out of this open claim's hold
 *   (`dp_…:hold_refunded:<re_…>` posted, the hold back in clearing); null when none (the claim holds
 *   its amount, or it is no longer open: `dp_…:hold_restored:<re_…>` put the hold back first).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE refunds ADD COLUMN sent_by_billhook boolean NOT NULL DEFAULT false;
    ALTER TABLE disputes ADD COLUMN hold_refund_id text REFERENCES refunds (id);
  `.execute(db);
}

/** Drops what 0060 adds. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE disputes DROP COLUMN hold_refund_id;
    ALTER TABLE refunds DROP COLUMN sent_by_billhook;
  `.execute(db);
}
