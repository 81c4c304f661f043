import { type Kysely, sql } from 'kysely';

/**
 * `disputes.overpayment_charged_back`: what a lost dispute (a chargeback no refund carries) took back
 * of its payment's invoice's overpayment, minor units ≥ 0 (payments/disputes.ts, set when its loss is
 * booked): the customer had that money back as their credit already (a duplicate payment's excess,
 * `txn_…:overpaid`), so `dp_…:overpayment_charged_back` takes it off their credit instead of booking
 * it as a chargeback loss, and billing/credit-notes.ts `overpaymentGivenBack` counts it, as a refund's
 * share. Existing disputes keep 0 (their losses were booked whole as chargeback losses).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE disputes ADD COLUMN overpayment_charged_back bigint NOT NULL DEFAULT 0 CHECK (overpayment_charged_back >= 0 AND overpayment_charged_back <= amount)`.execute(
    db,
  );
}

/** Drops what 0048 adds. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE disputes DROP COLUMN overpayment_charged_back`.execute(db);
}
