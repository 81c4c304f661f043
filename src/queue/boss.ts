import { PgBoss, type QueueOptions, type UpdateQueueOptions } from 'pg-boss';
import type { Config } from '../config/env.ts';
import { deadQueueOf, QUEUES, QUEUES_AND_DEAD_LETTERS, type QueueName } from './queues.ts';

/** Dead letters are kept 30 days for an operator to retry or delete. */
const DEAD_LETTER_RETENTION_SECONDS = 30 * 24 * 3600;

/**
 * Completed jobs are deleted a day after they finished (pg-boss keeps them 7 days by default), and
 * `webhook.process` jobs after an hour: the inbox row is the lasting record of a webhook, and the job
 * table stays small under sustained load (PRODUCT.md §10).
 */
const COMPLETED_JOB_SECONDS = 24 * 3600;
const COMPLETED_WEBHOOK_JOB_SECONDS = 3600;

/**
 * Retries of an outbound event's delivery (`webhook-endpoint.deliver`): with pg-boss's backoff (the
 * n-th retry 1 to 2 times `delay × 2^(n-1)` later, at most six hours) and a 60 s first delay, the
 * first eight retries take about 6.4 h and the other eleven six hours each: about three days.
 */
export const WEBHOOK_ENDPOINT_RETRY_LIMIT = 19;

/** pg-boss's schema in billhook's database. */
export const BOSS_SCHEMA = 'pgboss';

/**
 * Creates a pg-boss instance on the database (not started). Workers are woken by LISTEN/NOTIFY and
 * poll as a fallback.
 * @param options.maintenance false for web-only processes and the CLI: no supervision or cron
 * @param options.maintenanceIntervalSeconds seconds between maintenance passes (queue counts, jobs of
 *   dead workers failed): `QUEUE_MAINTENANCE_INTERVAL_SECONDS`, 10 by default
 * @param options.poolSize pg-boss's connections at most: `QUEUE_POOL_SIZE`, 10 by default
 */
export function createBoss(
  connectionString: string,
  options: { maintenance: boolean; maintenanceIntervalSeconds?: number; poolSize?: number },
): PgBoss {
  const interval = options.maintenanceIntervalSeconds ?? 10;
  return new PgBoss({
    connectionString,
    schema: BOSS_SCHEMA,
    max: options.poolSize ?? 10,
    useListenNotify: options.maintenance,
    supervise: options.maintenance,
    schedule: options.maintenance,
    // A pass counts the queues (monitor) and fails the jobs of dead workers (supervise); pg-boss
    // spaces passes by the longer of the two intervals.
    superviseIntervalSeconds: interval,
    monitorIntervalSeconds: interval,
  });
}

/**
 * Creates billhook's queues and their dead-letter queues, and applies each queue's policy (pg-boss's
 * retry of a failed JOB), also to queues that already exist: idempotent, run at every start and by
 * `billhook migrate`, so a queue added in a release is created in an existing database when it starts.
 * - `webhook.process`: `WEBHOOK_RETRY_LIMIT` retries, exponential backoff from
 *   `WEBHOOK_RETRY_DELAY_SECONDS`, at most one hour apart (a job fails only when its bookkeeping does;
 *   the row-level retry of webhooks whose payment is not known yet is the handler's own:
 *   workers/process-webhooks.ts).
 * - the sweeps `transaction.poll`, `refund.recover`, `subscription.renew` and `invoice.charge` (every
 *   minute) and `inbox.sweep` (every five minutes): a failed run is retried twice with backoff (10 s,
 *   20 s), then dead-lettered to `<name>.dead` for an operator to see; the next scheduled run starts
 *   afresh either way (sweeps are idempotent).
 * - `invoice.refund` (a refund left unknown): six retries from a minute on, doubling to at most an
 *   hour apart.
 * - `webhook-endpoint.dispatch` is a sweep (every minute); `webhook-endpoint.deliver` (one outbound
 *   event to one endpoint) retries for about three days ({@link WEBHOOK_ENDPOINT_RETRY_LIMIT}), then
 *   dead-letters.
 * Completed jobs are deleted after a day (`webhook.process`: an hour).
 */
export async function ensureQueues(boss: PgBoss, config: Config): Promise<void> {
  const names = QUEUES_AND_DEAD_LETTERS.flatMap(({ name, dead }) => [name, dead]);
  const existing = new Set((await boss.getQueues(names)).map((queue) => queue.name));
  const sweepPolicy = {
    retryLimit: 2,
    retryDelay: 10,
    retryBackoff: true,
    expireInSeconds: 600,
    deleteAfterSeconds: COMPLETED_JOB_SECONDS,
  };
  for (const sweep of [
    QUEUES.transactionPoll,
    QUEUES.refundRecover,
    QUEUES.inboxSweep,
    QUEUES.subscriptionRenew,
    QUEUES.invoiceCharge,
    QUEUES.settlementSync,
    QUEUES.webhookEndpointDispatch,
  ])
    await queueWithDeadLetter(boss, existing, sweep, sweepPolicy);
  // A refund the gateway left unknown: retried from a minute on, doubling, up to an hour apart.
  await queueWithDeadLetter(boss, existing, QUEUES.invoiceRefund, {
    retryLimit: 6,
    retryDelay: 60,
    retryBackoff: true,
    retryDelayMax: 3600,
    deleteAfterSeconds: COMPLETED_JOB_SECONDS,
  });
  // An outbound event's delivery: from WEBHOOK_ENDPOINT_RETRY_DELAY_SECONDS (60 s) on, doubling with
  // jitter, at most six hours apart: 19 retries span about three days at the default.
  await queueWithDeadLetter(boss, existing, QUEUES.webhookEndpointDeliver, {
    retryLimit: WEBHOOK_ENDPOINT_RETRY_LIMIT,
    retryDelay: config.WEBHOOK_ENDPOINT_RETRY_DELAY_SECONDS,
    retryBackoff: true,
    retryDelayMax: 6 * 3600,
    expireInSeconds: 120,
    deleteAfterSeconds: COMPLETED_JOB_SECONDS,
    notify: true,
  });
  await queueWithDeadLetter(boss, existing, QUEUES.webhookProcess, {
    retryLimit: config.WEBHOOK_RETRY_LIMIT,
    retryDelay: config.WEBHOOK_RETRY_DELAY_SECONDS,
    retryBackoff: true,
    retryDelayMax: 3600,
    expireInSeconds: 300,
    deleteAfterSeconds: COMPLETED_WEBHOOK_JOB_SECONDS,
    notify: true,
    // A worker that dies mid-job stops its heartbeat: the job is retried within about 20 s, not
    // after expireInSeconds.
    heartbeatSeconds: 10,
  });
}

/**
 * Creates queue `name` with `policy` and its dead-letter queue `<name>.dead` (kept 30 days) when they
 * are not in `existing` (the queues read once at the start of `ensureQueues`), and applies `policy`
 * to the queue in any case (createQueue leaves a queue another process created meanwhile as it is).
 * Queues that exist cost one statement, not three: every process's start makes this call.
 */
async function queueWithDeadLetter(
  boss: PgBoss,
  existing: ReadonlySet<string>,
  name: QueueName,
  policy: Omit<QueueOptions, 'deadLetter'> & UpdateQueueOptions,
): Promise<void> {
  const deadLetter = deadQueueOf(name);
  if (!existing.has(deadLetter))
    await boss.createQueue(deadLetter, { retentionSeconds: DEAD_LETTER_RETENTION_SECONDS });
  if (!existing.has(name)) await boss.createQueue(name, { ...policy, deadLetter });
  await boss.updateQueue(name, { ...policy, deadLetter });
}
