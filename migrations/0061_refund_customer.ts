import { type Kysely, sql } from 'kysely';

/**
 * Every refund names its customer (`refunds.customer_id`), not only a `customer_credit` refund: a
 * payment's refund stores its payment's customer, else its payment's invoice's
 * (payments/refunds.ts `createRefund`), so the API (`GET /v1/refunds[/:id]`, the answers that carry a
 * refund) and the outbound `refund.*` events show it without a join on every read, and
 * `GET /v1/refunds?customer=` is one indexed equality:
 * - backfills `customer_id` of the `payment` refunds made before (null until 0061) from their
 *   transaction (`transactions.customer_id`, else its invoice's `customer_id`); one whose payment
 *   names no customer stays null.
 * - `refunds_customer`: (customer_id, created_at) for the customer filter and its order.
 * Activities recorded before 0061 keep the customer they were written with (the activity log is
 * append-only: migration 0005's triggers).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    UPDATE refunds r
      SET customer_id = coalesce(t.customer_id, i.customer_id)
      FROM transactions t LEFT JOIN invoices i ON i.id = t.invoice_id
      WHERE t.id = r.transaction_id AND r.kind = 'payment' AND r.customer_id IS NULL
        AND coalesce(t.customer_id, i.customer_id) IS NOT NULL
  `.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS refunds_customer ON refunds (customer_id, created_at)`.execute(db);
}

/** Drops 0061's index and clears what it filled: a `payment` refund names no customer again. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS refunds_customer`.execute(db);
  await sql`UPDATE refunds SET customer_id = NULL WHERE kind = 'payment' AND customer_id IS NOT NULL`.execute(
    db,
  );
}
