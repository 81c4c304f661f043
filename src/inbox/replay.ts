import { sql } from 'kysely';
import { fromKysely, type PgBoss } from 'pg-boss';
import type { Db } from '../db/database.ts';
import type { InboxRow, InboxStatus } from '../db/schema.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { QUEUES, type WebhookProcessJob } from '../queue/queues.ts';

/**
 * Processes stored events again: each is set back to `received` and one `webhook.process` job names
 * them all, in one transaction. Reconciliation is idempotent, so replaying an event already applied
 * changes nothing in the ledger; an event that failed or became an exception gets a fresh set of
 * attempts.
 * @throws NotFoundError naming the first id that is not in the inbox; ConflictError
 * `event_body_pruned` for an event whose raw body the retention dropped
 */
export async function replayInboxEvents(db: Db, boss: PgBoss, ids: string[]): Promise<InboxRow[]> {
  return db.transaction().execute(async (trx) => {
    const pruned = await trx
      .selectFrom('inbox')
      .select('id')
      .where('id', 'in', ids)
      .where('body', 'is', null)
      .executeTakeFirst();
    if (pruned) {
      throw new ConflictError(
        'event_body_pruned',
        `event ${pruned.id} is past the inbox retention: its raw body was dropped and cannot be processed again`,
      );
    }
    const rows = await trx
      .updateTable('inbox')
      .set({ status: 'received', outcome: null, last_error: null, processed_at: null })
      .where('id', 'in', ids)
      .returningAll()
      .execute();
    const missing = ids.find((id) => !rows.some((row) => row.id === id));
    if (missing) throw new NotFoundError('event', missing);
    const job: WebhookProcessJob = { inboxIds: ids };
    await boss.send(QUEUES.webhookProcess, job, { db: fromKysely(trx) });
    return rows;
  });
}

/**
 * Re-enqueues events still `received` (never processed) `olderThanSeconds` after they arrived: their
 * job was lost (deleted by hand, or expired past its retries), so nothing would process them.
 * @returns the ids re-enqueued
 */
export async function sweepStaleInbox(
  db: Db,
  boss: PgBoss,
  olderThanSeconds: number,
  limit = 1000,
): Promise<string[]> {
  const stale = await db
    .selectFrom('inbox')
    .select('id')
    .where('status', '=', 'received')
    .where('received_at', '<', new Date(Date.now() - olderThanSeconds * 1000))
    .orderBy('received_at')
    .limit(limit)
    .execute();
  if (stale.length === 0) return [];
  const ids = stale.map((row) => row.id);
  await replayInboxEvents(db, boss, ids);
  return ids;
}

/**
 * The ids of inbox rows in one of `statuses` received more than `retentionDays` days before `now`.
 * The statuses are written into the statement as literals, so PostgreSQL can match them to the
 * partial indexes of migration 0014 under any plan.
 */
function finishedBefore(db: Db, statuses: InboxStatus[], retentionDays: number, now: Date) {
  return db
    .selectFrom('inbox')
    .select('id')
    .where(
      'status',
      'in',
      statuses.map((status) => sql.lit(status)),
    )
    .where('received_at', '<', new Date(now.getTime() - retentionDays * 86_400_000));
}

/**
 * Inbox retention: drops the raw body of events finished (processed, ignored or exception) more than
 * `retentionDays` days ago, keeping the row — gateway, event id and type, status, outcome and times —
 * so the record of what was received and what it did stays. Events not finished are never touched.
 * At most `limit` rows per call (the five-minute sweep keeps up in small steps).
 * @returns how many bodies were dropped
 */
export async function pruneInboxBodies(
  db: Db,
  retentionDays: number,
  now: Date,
  limit = 5000,
): Promise<number> {
  const result = await db
    .updateTable('inbox')
    .set({ body: null })
    .where(
      'id',
      'in',
      finishedBefore(db, ['processed', 'ignored', 'exception'], retentionDays, now)
        .where('body', 'is not', null)
        .limit(limit),
    )
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/**
 * Inbox row retention (PRODUCT.md §10, the inbox stays small): deletes events received more than
 * `retentionDays` days ago that finished cleanly (processed or ignored) and no reconciliation
 * exception names. Their effects stay in the ledger, payments and activities; a gateway resending
 * such an old event would be stored again and change nothing (reconciliation is idempotent).
 * At most `limit` rows per call.
 * @returns how many rows were deleted
 */
export async function pruneInboxRows(
  db: Db,
  retentionDays: number,
  now: Date,
  limit = 5000,
): Promise<number> {
  const result = await db
    .deleteFrom('inbox')
    .where(
      'id',
      'in',
      finishedBefore(db, ['processed', 'ignored'], retentionDays, now)
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('reconciliation_exceptions as x')
                .select('x.id')
                .whereRef('x.inbox_id', '=', 'inbox.id'),
            ),
          ),
        )
        .limit(limit),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
