import type { PgBoss } from 'pg-boss';
import { z } from 'zod';
import type { Db } from '../db/database.ts';
import { replayInboxEvents } from '../inbox/replay.ts';
import { QUEUES } from './queues.ts';

const DEAD = `${QUEUES.webhookProcess}.dead`;

const DeadLetter = z.object({
  inboxIds: z.array(z.string()),
  errors: z.array(z.object({ id: z.string(), error: z.string() })).default([]),
});

/** A dead-lettered batch of stored webhooks: the rows that kept failing, and why. */
export interface DeadLetterJob {
  jobId: string;
  createdOn: Date;
  inboxIds: string[];
  errors: { id: string; error: string }[];
}

/** The dead letters of `webhook.process` still queued, oldest first. */
export async function listDeadLetters(boss: PgBoss): Promise<DeadLetterJob[]> {
  const jobs = await boss.findJobs(DEAD, { queued: true });
  return jobs.map((job) => {
    const data = DeadLetter.parse(job.data);
    return { jobId: job.id, createdOn: job.createdOn, inboxIds: data.inboxIds, errors: data.errors };
  });
}

/**
 * Sends every queued dead letter's rows back to `webhook.process` (a fresh set of attempts) and
 * deletes the dead letters.
 * @returns how many stored webhooks were retried
 */
export async function retryDeadLetters(db: Db, boss: PgBoss): Promise<number> {
  let retried = 0;
  for (const dead of await listDeadLetters(boss)) {
    await replayInboxEvents(db, boss, dead.inboxIds);
    await boss.deleteJob(DEAD, dead.jobId);
    retried += dead.inboxIds.length;
  }
  return retried;
}

/**
 * Deletes every queued dead letter (the rows stay in the inbox, visible by their status).
 * @returns how many dead letters were deleted
 */
export async function purgeDeadLetters(boss: PgBoss): Promise<number> {
  return boss.deleteQueuedJobs(DEAD);
}
