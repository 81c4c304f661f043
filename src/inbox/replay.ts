import { type Kysely, sql } from 'kysely';
import { fromKysely, type PgBoss } from 'pg-boss';
import type { Db } from '../db/database.ts';
import type { Database, InboxRow, InboxStatus } from '../db/schema.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { raiseException } from '../exceptions/exceptions.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { BOSS_SCHEMA } from '../queue/boss.ts';
import { deadQueueOf, QUEUES, type WebhookProcessJob } from '../queue/queues.ts';
import { DAY_MS } from '../time.ts';

/** The dead-letter queue of `webhook.process`. */
const DEAD_WEBHOOKS = deadQueueOf(QUEUES.webhookProcess);

/**
 * Processes stored events again: each is set back to `received`, taken out of any `webhook.process`
 * dead letter that names it (a dead letter left with no event is deleted), and one `webhook.process`
 * job names them all, in one transaction. Reconciliation is idempotent, so replaying an event already
 * applied changes nothing in the ledger; an event that failed or became an exception gets a fresh
 * set of attempts.
 * @throws NotFoundError naming the first id that is not in the inbox; ConflictError
 * `event_body_pruned` for an event whose raw body the retention dropped
 */
export async function replayInboxEvents(db: Db, boss: PgBoss, ids: string[]): Promise<InboxRow[]> {
  return db.transaction().execute((trx) => replayInTransaction(trx, boss, ids));
}

/** {@link replayInboxEvents} inside the caller's transaction `trx`. */
export async function replayInTransaction(
  trx: Kysely<Database>,
  boss: PgBoss,
  ids: string[],
): Promise<InboxRow[]> {
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
  await dropFromDeadLetters(trx, ids);
  const job: WebhookProcessJob = { inboxIds: ids };
  await boss.send(QUEUES.webhookProcess, job, { db: fromKysely(trx) });
  return rows;
}

/**
 * Takes the events `ids` out of the queued `webhook.process` dead letters that name them (their
 * `inboxIds` and `errors`), and deletes the dead letters left with no event: an event processed
 * again is no longer dead, and a later *Retry all* must not send it a second time. It edits pg-boss's
 * `job` table directly, in the replay's transaction: it locks the dead letters it reads (`FOR
 * UPDATE`), which pg-boss's `findJobs` + `update` cannot, so two replays at once could each write
 * back a letter missing only their own event. See UPGRADING.md beside this file.
 */
async function dropFromDeadLetters(trx: Kysely<Database>, ids: string[]): Promise<void> {
  const named = sql`
    SELECT id, data FROM ${sql.table(`${BOSS_SCHEMA}.job`)}
    WHERE name = ${DEAD_WEBHOOKS} AND state = 'created' AND data->'inboxIds' ?| ${ids}::text[]
    FOR UPDATE`;
  await sql`
    WITH named AS (${named}),
    kept AS (
      SELECT n.id, jsonb_build_object(
        'inboxIds', COALESCE((SELECT jsonb_agg(x) FROM jsonb_array_elements(n.data->'inboxIds') x
          WHERE NOT (x #>> '{}') = ANY(${ids}::text[])), '[]'::jsonb),
        'errors', COALESCE((SELECT jsonb_agg(e) FROM jsonb_array_elements(COALESCE(n.data->'errors', '[]'::jsonb)) e
          WHERE NOT (e->>'id') = ANY(${ids}::text[])), '[]'::jsonb)) AS data
      FROM named n
    ),
    emptied AS (
      DELETE FROM ${sql.table(`${BOSS_SCHEMA}.job`)} j USING kept k
      WHERE j.name = ${DEAD_WEBHOOKS} AND j.id = k.id AND jsonb_array_length(k.data->'inboxIds') = 0
    )
    UPDATE ${sql.table(`${BOSS_SCHEMA}.job`)} j SET data = k.data FROM kept k
    WHERE j.name = ${DEAD_WEBHOOKS} AND j.id = k.id AND jsonb_array_length(k.data->'inboxIds') > 0`.execute(
    trx,
  );
}

/**
 * Gives a final status to the events left `retrying` with no job to process them any more: their
 * dead letter was deleted (`billhook jobs purge`, *Delete all*) or expired after its 30 days. Each
 * becomes `exception` (outcome `abandoned: <its last error>`) with an open `abandoned_event`
 * reconciliation exception for a person, so no event waits forever for a retry that will not come.
 * An event named by any queued, retrying or active `webhook.process` job or dead letter is left as it
 * is. A replay (`replayInboxEvents`) still processes an abandoned event.
 * @returns the ids of the events abandoned
 */
export async function abandonOrphanedEvents(db: Db, actor: Actor): Promise<string[]> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const live = sql<string>`(
      SELECT jsonb_array_elements_text(data->'inboxIds') FROM ${sql.table(`${BOSS_SCHEMA}.job`)}
      WHERE name IN (${QUEUES.webhookProcess}, ${DEAD_WEBHOOKS}) AND state IN ('created', 'retry', 'active')
        AND jsonb_typeof(data->'inboxIds') = 'array')`;
    const abandoned = await work.trx
      .updateTable('inbox')
      .set({
        status: 'exception',
        outcome: sql`'abandoned: ' || COALESCE(last_error, 'no job left to process it')`,
        processed_at: new Date(),
      })
      .where('status', '=', 'retrying')
      .where('id', 'not in', live)
      .returning(['id', 'gateway', 'gateway_account', 'gateway_event_id', 'outcome'])
      .execute();
    for (const row of abandoned) {
      await raiseException(work, {
        kind: 'abandoned_event',
        gateway: row.gateway,
        gatewayAccount: row.gateway_account,
        inboxId: row.id,
        message:
          `event ${row.id} (${row.gateway} ${row.gateway_event_id}) was never processed and no job will retry it ` +
          `(its dead letter was deleted); ${row.outcome}. Replay it (billhook replay ${row.id}) once the cause is fixed, or resolve this`,
      });
    }
    return abandoned.map((row) => row.id);
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
    .where('received_at', '<', new Date(now.getTime() - retentionDays * DAY_MS));
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
