import { sql } from 'kysely';
import type { PgBoss } from 'pg-boss';
import { z } from 'zod';
import type { Db } from '../db/database.ts';
import { abandonOrphanedEvents, replayInTransaction } from '../inbox/replay.ts';
import type { Actor } from '../ledger/unit-of-work.ts';
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

/** The queued dead letters of `queue`, oldest first. */
async function deadLettersOf(boss: PgBoss, queue: QueueName): Promise<DeadLetterJob[]> {
  const jobs = await boss.findJobs(deadQueueOf(queue), { queued: true });
  return jobs.map((job) => {
    const common = { queue, jobId: job.id, createdOn: job.createdOn, data: job.data };
    if (queue === QUEUES.webhookProcess) return { ...common, ...WebhookDeadLetter.parse(job.data) };
    const error = failureOf(job.sourceOutput);
    return { ...common, inboxIds: [], errors: [{ id: job.sourceId ?? job.id, error }] };
  });
}

/** The dead letters of every billhook queue still queued, `webhook.process` first, oldest first. */
export async function listDeadLetters(boss: PgBoss): Promise<DeadLetterJob[]> {
  const letters: DeadLetterJob[] = [];
  for (const queue of Object.values(QUEUES)) letters.push(...(await deadLettersOf(boss, queue)));
  return letters;
}

/** What a retry of the dead letters sent back. */
export interface DeadLetterRetry {
  /** Dead letters sent back to their queue (and deleted from `<queue>.dead`). */
  jobs: number;
  /** Stored webhooks among them, set back to `received` for a fresh set of attempts. */
  webhooks: number;
}

/**
 * Sends every queued dead letter back to its queue for a fresh set of retries, and deletes it, each
 * exactly once even when two retries run at the same time: a `webhook.process` dead letter is deleted
 * and its inbox rows replayed in one transaction (the retry that did not delete it sends nothing);
 * the others are moved by pg-boss's redrive (one statement) to the queue they came from, with their
 * data.
 */
export async function retryDeadLetters(db: Db, boss: PgBoss): Promise<DeadLetterRetry> {
  const retried: DeadLetterRetry = { jobs: 0, webhooks: 0 };
  for (const dead of await deadLettersOf(boss, QUEUES.webhookProcess)) {
    const sent = await db.transaction().execute(async (trx) => {
      // pg-boss's table, in this transaction: see src/inbox/UPGRADING.md.
      const deleted = await sql`
        DELETE FROM ${sql.table(`${BOSS_SCHEMA}.job`)}
        WHERE name = ${deadQueueOf(dead.queue)} AND id = ${dead.jobId}::uuid AND state = 'created'`.execute(
        trx,
      );
      if (Number(deleted.numAffectedRows ?? 0) === 0) return false;
      await replayInTransaction(trx, boss, dead.inboxIds);
      return true;
    });
    if (!sent) continue;
    retried.jobs += 1;
    retried.webhooks += dead.inboxIds.length;
  }
  for (const queue of Object.values(QUEUES)) {
    if (queue !== QUEUES.webhookProcess)
      retried.jobs += await boss.redrive(deadQueueOf(queue), { destination: queue });
  }
  return retried;
}

/**
 * Deletes every queued dead letter of every queue. Stored webhooks stay in the inbox: those that were
 * waiting in a deleted dead letter get their final status (`abandonOrphanedEvents`: `exception`,
 * with an `abandoned_event` reconciliation exception); refunds stay `unknown`.
 * @returns how many dead letters were deleted
 */
export async function purgeDeadLetters(db: Db, actor: Actor, boss: PgBoss): Promise<number> {
  let purged = 0;
  for (const queue of Object.values(QUEUES)) purged += await boss.deleteQueuedJobs(deadQueueOf(queue));
  await abandonOrphanedEvents(db, actor);
  return purged;
}
