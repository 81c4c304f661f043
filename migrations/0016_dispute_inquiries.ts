import { type Kysely, sql } from 'kysely';

/**
 * Disputes gain two statuses and a link to a refund (PRODUCT.md §11, "money the gateway reports is
 * what is booked"):
 * - `inquiry` and `inquiry_closed`: a Stripe inquiry (`warning_needs_response`,
 *   `warning_under_review`, `warning_closed`) is recorded as a dispute that withdrew no funds, so it
 *   posts nothing; it becomes `open` (and posts) only when the funds are withdrawn;
 * - `refund_id`: the refund that carried a lost dispute's money back to the customer (a PayPal
 *   claim accepted and refunded on the same capture), so that money is booked once, as the refund.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE disputes DROP CONSTRAINT disputes_status_check;
    ALTER TABLE disputes ADD CONSTRAINT disputes_status_check
      CHECK (status IN ('inquiry', 'inquiry_closed', 'open', 'won', 'lost'));
    ALTER TABLE disputes ADD COLUMN refund_id text UNIQUE REFERENCES refunds(id);
  `.execute(db);
}

/** Back to open / won / lost: fails while an inquiry is recorded. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE disputes DROP COLUMN refund_id;
    ALTER TABLE disputes DROP CONSTRAINT disputes_status_check;
    ALTER TABLE disputes ADD CONSTRAINT disputes_status_check CHECK (status IN ('open', 'won', 'lost'));
  `.execute(db);
}
