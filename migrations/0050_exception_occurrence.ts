import { type Kysely, sql } from 'kysely';

/**
 * `reconciliation_exceptions.occurrence`: what one exception is about beyond its transaction, kind,
 * refund, payout and settlement line (a dispute `dp_…`, the entry that raised it), '' when nothing
 * more (exceptions/exceptions.ts `raiseException`). Both keys that keep an exception once count it:
 * per (inbox event, kind, occurrence) and, without an event, per (transaction, kind, refund, payout,
 * settlement line, occurrence); so a second exception of the same kind on one payment about another
 * dispute opens its own, where it used to be silently dropped, and a replay (the same occurrence) is
 * still recorded once. Existing rows raised without an event about a dispute (`details.dispute`: the
 * kinds payments/disputes.ts raises) take the occurrence their raiser now gives (the dispute; for
 * `overpayment_credit_spent`, `dp_…:overpayment_charged_back`), so a report replayed after the deploy
 * is still recorded once (left '', it would open a second exception for the same dispute); the others
 * keep ''. Their old keys were unique, so the new ones are. One statement per call.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE reconciliation_exceptions ADD COLUMN occurrence text NOT NULL DEFAULT ''`.execute(db);
  // The existing exceptions of the raisers that now name their dispute (payments/disputes.ts, without
  // an event: `details.dispute`) take it, so the same report replayed after the deploy raises none.
  await sql`UPDATE reconciliation_exceptions SET occurrence = CASE
      WHEN kind = 'overpayment_credit_spent' THEN (details->>'dispute') || ':overpayment_charged_back'
      ELSE details->>'dispute' END
    WHERE inbox_id IS NULL AND jsonb_typeof(details->'dispute') = 'string'
      AND kind IN ('dispute_won_after_loss', 'dispute_won_after_refund', 'unknown_outcome', 'amount_mismatch',
        'overpayment_credit_spent')`.execute(db);
  await sql`DROP INDEX reconciliation_exceptions_once`.execute(db);
  await sql`CREATE UNIQUE INDEX reconciliation_exceptions_once
    ON reconciliation_exceptions (inbox_id, kind, occurrence) WHERE inbox_id IS NOT NULL`.execute(db);
  await sql`DROP INDEX reconciliation_exceptions_once_per_transaction`.execute(db);
  await sql`CREATE UNIQUE INDEX reconciliation_exceptions_once_per_transaction
    ON reconciliation_exceptions (transaction_id, kind, refund_id, payout_id, settlement_line_id, occurrence)
    NULLS NOT DISTINCT WHERE inbox_id IS NULL`.execute(db);
}

/** Drops what 0050 adds, keeping the first exception of each old key (the others would collide). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DELETE FROM reconciliation_exceptions e USING reconciliation_exceptions f
    WHERE f.kind = e.kind AND f.id <> e.id
      AND (
        (e.inbox_id IS NOT NULL AND f.inbox_id = e.inbox_id)
        OR (e.inbox_id IS NULL AND f.inbox_id IS NULL
          AND f.transaction_id IS NOT DISTINCT FROM e.transaction_id
          AND f.refund_id IS NOT DISTINCT FROM e.refund_id
          AND f.payout_id IS NOT DISTINCT FROM e.payout_id
          AND f.settlement_line_id IS NOT DISTINCT FROM e.settlement_line_id)
      )
      AND (f.created_at, f.id) < (e.created_at, e.id)`.execute(db);
  await sql`DROP INDEX reconciliation_exceptions_once_per_transaction`.execute(db);
  await sql`CREATE UNIQUE INDEX reconciliation_exceptions_once_per_transaction
    ON reconciliation_exceptions (transaction_id, kind, refund_id, payout_id, settlement_line_id)
    NULLS NOT DISTINCT WHERE inbox_id IS NULL`.execute(db);
  await sql`DROP INDEX reconciliation_exceptions_once`.execute(db);
  await sql`CREATE UNIQUE INDEX reconciliation_exceptions_once ON reconciliation_exceptions (inbox_id, kind)
    WHERE inbox_id IS NOT NULL`.execute(db);
  await sql`ALTER TABLE reconciliation_exceptions DROP COLUMN occurrence`.execute(db);
}
