import { type Kysely, sql } from 'kysely';

/**
 * `disputes.reversed`: the gateway took the dispute's money back by reversing the payment (a card
 * chargeback: PayPal's `PAYMENT.CAPTURE.REVERSED`, or a dispute whose `dispute_channel` is
 * `EXTERNAL`), so no refund of the payment carries it: a lost dispute so marked is booked as a
 * chargeback loss and is never paired with a refund of the same amount (payments/disputes.ts).
 * Existing disputes keep `false`, the way they were booked.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE disputes ADD COLUMN reversed boolean NOT NULL DEFAULT false`.execute(db);
}

/** Drops what 0039 adds. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE disputes DROP COLUMN reversed`.execute(db);
}
