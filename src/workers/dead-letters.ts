import { sql } from 'kysely';
import { fromKysely, type PgBoss } from 'pg-boss';
import { z } from 'zod';
import type { Db } from '../db/database.ts';
import { abandonOrphanedEvents, replayInTransaction } from '../inbox/replay.ts';
import type { Actor } from '../ledger/unit-of-work.ts';
import { abandonOrphanedRefunds } from '../payments/refund-retry.ts';
import { BOSS_SCHEMA } from '../queue/boss.ts';
import { deadQueueOf, QUEUES, type QueueName } from '../queue/queues.ts';

/** `webhook.process` dead letters: the stored webhooks that kept failing, with each row's error. */
const WebhookDeadLetter = z.object({
  inboxIds: z.array(z.string()),
  errors: z.array(z.object({ id: z.string(), error: z.string() })).default([]),
});

/** What pg-boss keeps of a failed job's last error (`sourceOutput`): a serialized Error, usually. */
const FailureOutput = z.object({ message: z.string() });

/**
 * A job that exhausted its retries, waiting in `<queue>.dead` for an operator (kept 30 days).
 * - `webhook.process`: `inboxIds` names the stored webhooks and `errors` gives each one's error;
 * - any other queue (`invoice.refund`, the sweeps): `inboxIds` is empty, `data` is the job's data
 *   (e.g. `{refundId}`) and `errors` holds the job's last error under the failed job's id.
 */
export interface DeadLetterJob {
  queue: QueueName;
  jobId: string;
  createdOn: Date;
  data: unknown;
  inboxIds: string[];
  errors: { id: string; error: string }[];
}

/** The last error of a job pg-boss dead-lettered, as text. */
function failureOf(output: object | null): string {
  if (output === null) return 'no error was recorded';
  const parsed = FailureOutput.safeParse(output);
  return parsed.success ? parsed.data.message : JSON.stringify(output);
}

/** What a dead letter is read from: a pg-boss job of `<queue>.dead`. */
interface DeadJob {
  id: string;
  createdOn: Date;
  data: unknown;
  sourceId: string | null;
  sourceOutput: object | null;
}

/** A queued job of `<queue>.dead` as a dead letter of `queue`. */
function deadLetterOf(queue: QueueName, job: DeadJob): DeadLetterJob {
  const common = { queue, jobId: job.id, createdOn: job.createdOn, data: job.data };
  if (queue === QUEUES.webhookProcess) return { ...common, ...WebhookDeadLetter.parse(job.data) };
  const error = failureOf(job.sourceOutput);
  return { ...common, inboxIds: [], errors: [{ id: job.sourceId ?? job.id, error }] };
}

/** The queue whose dead-letter queue is `name` (`webhook.process.dead` → `webhook.process`). */
function queueOfDead(name: string): QueueName {
  const queue = Object.values(QUEUES).find((q) => deadQueueOf(q) === name);
  if (!queue) throw new Error(`not a dead-letter queue of billhook: ${name}`);
  return queue;
}

/** A page of dead letters: oldest first, of one queue or of all, after a dead letter's job id. */
export interface DeadLetterPageQuery {
  queue?: QueueName;
  /** The job id of the last dead letter of the previous page. */
  after?: string;
  limit: number;
}

/** The names of the dead-letter queues of `queue`, or of every queue. */
function deadQueueNames(queue?: QueueName): string[] {
  return (queue ? [queue] : Object.values(QUEUES)).map(deadQueueOf);
}

/**
 * One page of the queued dead letters (keyset pagination by creation time and job id, read from
 * pg-boss's `job` table in one statement: see src/inbox/UPGRADING.md), `limit + 1` rows so the caller
 * can tell whether more exist; with the count of dead letters of each queue that has any
 * (`countDeadLetters`).
 */
export async function listDeadLetterPage(
  db: Db,
  query: DeadLetterPageQuery,
): Promise<{ letters: DeadLetterJob[]; counts: Partial<Record<QueueName, number>> }> {
  const names = deadQueueNames(query.queue);
  const job = sql.table(`${BOSS_SCHEMA}.job`);
  const after = query.after
    ? sql`AND (created_on, id) > (SELECT created_on, id FROM ${job} WHERE name = ANY(${names}::text[]) AND id = ${query.after}::uuid)`
    : sql``;
  const rows = await sql<DeadJob & { name: string }>`
    SELECT id, name, data, created_on AS "createdOn", source_id AS "sourceId", source_output AS "sourceOutput"
    FROM ${job} WHERE name = ANY(${names}::text[]) AND state = 'created' ${after}
    ORDER BY created_on, id LIMIT ${query.limit + 1}`.execute(db);
  return {
    letters: rows.rows.map((row) => deadLetterOf(queueOfDead(row.name), row)),
    counts: await countDeadLetters(db, query.queue),
  };
}

/**
 * How many dead letters are queued now in each queue that has any (of `queue` only, when given),
 * counted in pg-boss's `job` table in one statement (see src/inbox/UPGRADING.md).
 */
export async function countDeadLetters(
  db: Db,
  queue?: QueueName,
): Promise<Partial<Record<QueueName, number>>> {
  const counted = await sql<{ name: string; n: number }>`
    SELECT name, count(*)::int AS n FROM ${sql.table(`${BOSS_SCHEMA}.job`)}
    WHERE name = ANY(${deadQueueNames(queue)}::text[]) AND state = 'created'
    GROUP BY name`.execute(db);
  return Object.fromEntries(counted.rows.map((row) => [queueOfDead(row.name), row.n]));
}

/** The queued dead letter `jobId` of `queue`; undefined when there is none (retried or deleted already). */
export async function getDeadLetter(
  db: Db,
  queue: QueueName,
  jobId: string,
): Promise<DeadLetterJob | undefined> {
  const rows = await sql<DeadJob>`
    SELECT id, data, created_on AS "createdOn", source_id AS "sourceId", source_output AS "sourceOutput"
    FROM ${sql.table(`${BOSS_SCHEMA}.job`)}
    WHERE name = ${deadQueueOf(queue)} AND id = ${jobId}::uuid AND state = 'created'`.execute(db);
  const row = rows.rows[0];
  return row && deadLetterOf(queue, row);
}

/**
 * Sends one dead letter back to its queue, exactly once even when two retries run at the same time:
 * it is deleted from `<queue>.dead` and, in the same transaction, a `webhook.process` dead letter's
 * inbox rows are replayed (`replayInTransaction`) or another queue's job is sent again with its data
 * (a fresh set of retries). The retry that did not delete it sends nothing.
 * @returns false when the dead letter was no longer queued
 */
export async function retryDeadLetter(
  db: Db,
  boss: PgBoss,
  dead: Pick<DeadLetterJob, 'queue' | 'jobId'>,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    // pg-boss's table, in this transaction: see src/inbox/UPGRADING.md.
    const deleted = await sql<{ data: unknown }>`
      DELETE FROM ${sql.table(`${BOSS_SCHEMA}.job`)}
      WHERE name = ${deadQueueOf(dead.queue)} AND id = ${dead.jobId}::uuid AND state = 'created'
      RETURNING data`.execute(trx);
    const row = deleted.rows[0];
    if (!row) return false;
    if (dead.queue === QUEUES.webhookProcess)
      await replayInTransaction(trx, boss, WebhookDeadLetter.parse(row.data).inboxIds);
    else await boss.send(dead.queue, row.data as object, { db: fromKysely(trx) });
    return true;
  });
}

/**
 * Deletes one queued dead letter; a `webhook.process` one's stored webhooks then get their final
 * status (`abandonOrphanedEvents`: `exception`, with an `abandoned_event` reconciliation exception),
 * and an `invoice.refund` one's refund, still unknown, goes to a person (`abandonOrphanedRefunds`:
 * an `unknown_outcome` exception).
 * @returns false when the dead letter was no longer queued
 */
export async function deleteDeadLetter(
  db: Db,
  actor: Actor,
  dead: Pick<DeadLetterJob, 'queue' | 'jobId'>,
): Promise<boolean> {
  const deleted = await sql`
    DELETE FROM ${sql.table(`${BOSS_SCHEMA}.job`)}
    WHERE name = ${deadQueueOf(dead.queue)} AND id = ${dead.jobId}::uuid AND state = 'created'`.execute(db);
  if (Number(deleted.numAffectedRows ?? 0) === 0) return false;
  await abandonOrphanedEvents(db, actor);
  await abandonOrphanedRefunds(db, actor);
  return true;
}

/** The dead letters of every billhook queue still queued, oldest first (`queuedDeadLetters`). */
export function listDeadLetters(db: Db): Promise<DeadLetterJob[]> {
  return queuedDeadLetters(db);
}

/** What a retry of the dead letters sent back. */
export interface DeadLetterRetry {
  /** Dead letters sent back to their queue (and deleted from `<queue>.dead`). */
  jobs: number;
  /** Stored webhooks among them, set back to `received` for a fresh set of attempts. */
  webhooks: number;
}

/**
 * The queued dead letters of `queue` (of every queue when none), oldest first, created at or before
 * `upTo` (PostgreSQL's text of a time, as `newestDeadLetter` gives it; every one when undefined),
 * read from pg-boss's `job` table (see src/inbox/UPGRADING.md).
 */
async function queuedDeadLetters(db: Db, queue?: QueueName, upTo?: string): Promise<DeadLetterJob[]> {
  const cut = upTo === undefined ? sql`` : sql`AND created_on <= ${upTo}::timestamptz`;
  const rows = await sql<DeadJob & { name: string }>`
    SELECT id, name, data, created_on AS "createdOn", source_id AS "sourceId", source_output AS "sourceOutput"
    FROM ${sql.table(`${BOSS_SCHEMA}.job`)}
    WHERE name = ANY(${deadQueueNames(queue)}::text[]) AND state = 'created' ${cut}
    ORDER BY created_on, id`.execute(db);
  return rows.rows.map((row) => deadLetterOf(queueOfDead(row.name), row));
}

/**
 * When the newest queued dead letter (of `queue` only, when given) was created, as PostgreSQL's text
 * of the time (microseconds kept, which a `Date` would lose); null when there is none. The console's
 * confirmation of Retry all / Delete all carries it, so the action takes the dead letters it counted
 * and none that arrived after it (`retryDeadLetters`, `purgeDeadLetters` `upTo`).
 */
export async function newestDeadLetter(db: Db, queue?: QueueName): Promise<string | null> {
  const rows = await sql<{ newest: string | null }>`
    SELECT max(created_on)::text AS newest FROM ${sql.table(`${BOSS_SCHEMA}.job`)}
    WHERE name = ANY(${deadQueueNames(queue)}::text[]) AND state = 'created'`.execute(db);
  return rows.rows[0]?.newest ?? null;
}

/**
 * Sends every queued dead letter (of `queue` only, when given; created at or before `upTo` only,
 * when given: `newestDeadLetter`) back to its queue for a fresh set of retries, and deletes it, each
 * exactly once even when two retries run at the same time (`retryDeadLetter`: the retry that did not
 * delete it sends nothing).
 */
export async function retryDeadLetters(
  db: Db,
  boss: PgBoss,
  queue?: QueueName,
  upTo?: string,
): Promise<DeadLetterRetry> {
  const retried: DeadLetterRetry = { jobs: 0, webhooks: 0 };
  for (const dead of await queuedDeadLetters(db, queue, upTo)) {
    if (!(await retryDeadLetter(db, boss, dead))) continue;
    retried.jobs += 1;
    retried.webhooks += dead.inboxIds.length;
  }
  return retried;
}

/**
 * Deletes every queued dead letter of every queue (of `queue` only, when given; created at or before
 * `upTo` only, when given: `newestDeadLetter`), in one statement on pg-boss's `job` table (see
 * src/inbox/UPGRADING.md). Stored webhooks stay in the inbox: those that were waiting in a deleted
 * dead letter get their final status (`abandonOrphanedEvents`: `exception`, with an
 * `abandoned_event` reconciliation exception); refunds stay `unknown`, each with an
 * `unknown_outcome` exception for a person (`abandonOrphanedRefunds`).
 * @returns how many dead letters were deleted
 */
export async function purgeDeadLetters(
  db: Db,
  actor: Actor,
  queue?: QueueName,
  upTo?: string,
): Promise<number> {
  const cut = upTo === undefined ? sql`` : sql`AND created_on <= ${upTo}::timestamptz`;
  const deleted = await sql`
    DELETE FROM ${sql.table(`${BOSS_SCHEMA}.job`)}
    WHERE name = ANY(${deadQueueNames(queue)}::text[]) AND state = 'created' ${cut}`.execute(db);
  await abandonOrphanedEvents(db, actor);
  await abandonOrphanedRefunds(db, actor);
  return Number(deleted.numAffectedRows ?? 0);
}
