import { type Kysely, sql } from 'kysely';
import type { Database, InboxRow, InboxStatus } from '../db/schema.ts';

/** The inbox rows with these ids (missing ids are left out). */
export async function getInboxEvents(db: Kysely<Database>, ids: string[]): Promise<InboxRow[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('inbox').selectAll().where('id', 'in', ids).execute();
}

/**
 * Sets inbox events' processing status and a short outcome (`applied`, `duplicate`, `stale`,
 * `ignored: …`; for `retrying`, the reason it retries), in one statement. Terminal statuses stamp
 * `processed_at`; every mark counts an attempt.
 */
export async function markInboxEvents(
  trx: Kysely<Database>,
  marks: { id: string; status: InboxStatus; outcome: string }[],
): Promise<void> {
  if (marks.length === 0) return;
  // One array per column (unnest): the same statement text for every batch, prepared once.
  await sql`
    UPDATE inbox SET
      status = v.status,
      outcome = CASE WHEN v.status = 'retrying' THEN NULL ELSE v.outcome END,
      last_error = CASE WHEN v.status = 'retrying' THEN v.outcome ELSE NULL END,
      processed_at = CASE WHEN v.status = 'retrying' THEN NULL ELSE now() END,
      attempts = attempts + 1
    FROM unnest(
      ${marks.map((m) => m.id)}::text[], ${marks.map((m) => m.status)}::text[], ${marks.map((m) => m.outcome)}::text[]
    ) AS v(id, status, outcome)
    WHERE inbox.id = v.id
  `.execute(trx);
}
