import { sql } from 'kysely';
import type { QueueResult } from 'pg-boss';
import type { Db } from '../db/database.ts';
import type { InboxStatus } from '../db/schema.ts';

/**
 * The reads the database-derived gauges (metrics.ts) and the console's overview (http/admin/overview.ts)
 * share, so the two show the same counts the same way: billhook's queues from pg-boss's queue counts,
 * the inbox's webhooks not reconciled yet, the open reconciliation exceptions.
 */

/** The inbox statuses of a stored webhook not reconciled yet (read through the `inbox_unprocessed` index). */
export const WAITING_INBOX_STATUSES = ['received', 'retrying'] as const satisfies readonly InboxStatus[];
export type WaitingInboxStatus = (typeof WAITING_INBOX_STATUSES)[number];

/** Stored webhooks not reconciled yet, by inbox status (0 for a status with none), in one statement. */
export async function waitingInboxCounts(db: Db): Promise<Record<WaitingInboxStatus, number>> {
  const rows = await db
    .selectFrom('inbox')
    .select(['status', sql<number>`count(*)::int`.as('rows')])
    .where('status', 'in', WAITING_INBOX_STATUSES)
    .groupBy('status')
    .execute();
  const of = (status: WaitingInboxStatus) => rows.find((row) => row.status === status)?.rows ?? 0;
  return { received: of('received'), retrying: of('retrying') };
}

/** How many reconciliation exceptions wait for a person (status `open`). */
export async function openExceptionCount(db: Db): Promise<number> {
  const row = await db
    .selectFrom('reconciliation_exceptions')
    .select(sql<number>`count(*)::int`.as('open'))
    .where('status', '=', 'open')
    .executeTakeFirstOrThrow();
  return row.open;
}

/** A queue's name and its dead-letter queue's (`<name>.dead`). */
export interface QueueNames {
  name: string;
  dead: string;
}

/** One of billhook's queues as pg-boss last counted it. */
export interface QueueCounts {
  name: string;
  /** Jobs waiting for a worker (created or retry: pg-boss's `queuedCount`); dead letters are not. */
  waiting: number;
  /** Jobs a worker holds now. */
  active: number;
  /**
   * Jobs past their retries waiting in `<name>.dead` for an operator: the queue's failed jobs as
   * billhook counts them (a `webhook.process` job completes and leaves its dead letter, so pg-boss's
   * own failed count of that queue stays 0).
   */
  deadLetters: number;
}

/**
 * billhook's `queues` (not their dead-letter queues, never listed as queues of their own) with their
 * counts from `all`, pg-boss's `getQueues()` (refreshed at each maintenance pass); 0 for a queue it
 * does not list.
 */
export function billhookQueueCounts(
  all: readonly QueueResult[],
  queues: readonly QueueNames[],
): QueueCounts[] {
  const byName = new Map(all.map((queue) => [queue.name, queue]));
  return queues.map(({ name, dead }) => ({
    name,
    waiting: byName.get(name)?.queuedCount ?? 0,
    active: byName.get(name)?.activeCount ?? 0,
    deadLetters: byName.get(dead)?.queuedCount ?? 0,
  }));
}
