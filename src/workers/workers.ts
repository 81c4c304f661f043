import type { JobWithMetadata, PgBoss, WorkOptions } from 'pg-boss';
import type { Logger } from 'pino';
import type { Config } from '../config/env.ts';
import type { Db } from '../db/database.ts';
import type { AccountRegistry, GatewayRegistry } from '../gateways/registry.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { QUEUES, type QueueName } from '../queue/queues.ts';
import { collectInvoices } from './collect-invoices.ts';
import type { JobHandler, WorkerContext } from './context.ts';
import { deliverOutboundEvents } from './deliver-events.ts';
import { dispatchOutboundEvents } from './dispatch-events.ts';
import { pollTransactions } from './poll-transactions.ts';
import { processWebhooks } from './process-webhooks.ts';
import { recoverRefunds } from './recover-refunds.ts';
import { renewSubscriptions } from './renew-subscriptions.ts';
import { retryRefunds } from './retry-refunds.ts';
import { sweepInbox } from './sweep-inbox.ts';
import { syncSettlementsJob } from './sync-settlements.ts';

/** One queue's worker: how it is worked, when pg-boss enqueues its jobs, who acts, and its handler. */
export interface Worker {
  queue: QueueName;
  /** pg-boss `work()` options (batch size, concurrency, polling); every handler gets job metadata. */
  options: WorkOptions | ((config: Config) => WorkOptions);
  /**
   * The cron (UTC, minute resolution) on which pg-boss enqueues one job across all worker processes,
   * or null for a queue whose jobs billhook sends. A `billingSweep` is scheduled only while
   * `BILLING_SWEEPS` is on; with it off its schedule is removed (a pause).
   */
  schedule: { cron: string; billingSweep?: boolean } | null;
  /** The actor of the activities the handler records: handed to it as `context.actor`. */
  actor: 'webhook' | 'scheduler' | 'worker' | 'system';
  handler: JobHandler;
}

/** Every minute, on the minute. */
const EVERY_MINUTE = '* * * * *';

/**
 * billhook's workers: one row per queue of {@link QUEUES} (test/workers/table.test.ts). The queues'
 * retry policies and dead-letter queues are set up in queue/boss.ts (`ensureQueues`).
 */
export const WORKERS: readonly Worker[] = [
  {
    queue: QUEUES.webhookProcess,
    options: (config) => ({
      // Each job names a receiving batch's rows; the rows of all fetched jobs are applied together.
      batchSize: 10,
      localConcurrency: config.WEBHOOK_CONCURRENCY,
      perJobResults: true,
      burstWhenBatchFull: true,
      pollingIntervalSeconds: 1,
      // NOTIFY wakes workers for new jobs only; retries come due by time, so keep polling every second.
      notifyPollingIntervalSeconds: 1,
    }),
    schedule: null,
    actor: 'webhook',
    handler: processWebhooks,
  },
  {
    queue: QUEUES.transactionPoll,
    options: { pollingIntervalSeconds: 5 },
    schedule: { cron: EVERY_MINUTE },
    actor: 'scheduler',
    handler: pollTransactions,
  },
  {
    queue: QUEUES.refundRecover,
    options: { pollingIntervalSeconds: 5 },
    schedule: { cron: EVERY_MINUTE },
    actor: 'scheduler',
    handler: recoverRefunds,
  },
  {
    queue: QUEUES.invoiceRefund,
    options: { pollingIntervalSeconds: 5 },
    schedule: null,
    actor: 'worker',
    handler: retryRefunds,
  },
  {
    queue: QUEUES.invoiceCharge,
    options: { pollingIntervalSeconds: 5 },
    schedule: { cron: EVERY_MINUTE, billingSweep: true },
    actor: 'scheduler',
    handler: collectInvoices,
  },
  {
    queue: QUEUES.subscriptionRenew,
    options: { pollingIntervalSeconds: 5 },
    schedule: { cron: EVERY_MINUTE, billingSweep: true },
    actor: 'scheduler',
    handler: renewSubscriptions,
  },
  {
    queue: QUEUES.inboxSweep,
    options: { pollingIntervalSeconds: 30 },
    schedule: { cron: '*/5 * * * *' },
    actor: 'system',
    handler: sweepInbox,
  },
  {
    queue: QUEUES.settlementSync,
    options: { pollingIntervalSeconds: 60 },
    schedule: { cron: '30 3 * * *' },
    actor: 'scheduler',
    handler: syncSettlementsJob,
  },
  {
    queue: QUEUES.webhookEndpointDispatch,
    options: { pollingIntervalSeconds: 5 },
    schedule: { cron: EVERY_MINUTE },
    actor: 'system',
    handler: dispatchOutboundEvents,
  },
  {
    queue: QUEUES.webhookEndpointDeliver,
    // One attempt per job; retries come due by time, so poll every second besides NOTIFY.
    options: { localConcurrency: 4, pollingIntervalSeconds: 1, notifyPollingIntervalSeconds: 1 },
    schedule: null,
    actor: 'system',
    handler: deliverOutboundEvents,
  },
];

/** pg-boss's polling interval of a worker whose options name none. */
const PG_BOSS_DEFAULT_POLLING_SECONDS = 2;

/**
 * `options` with each polling interval (`pollingIntervalSeconds`, and `notifyPollingIntervalSeconds`
 * where given) at least `seconds` (`QUEUE_POLL_INTERVAL_SECONDS`): e.g. `webhook.process`'s 1 s and
 * 1 s become 30 s and 30 s with 30, and `inbox.sweep`'s 30 s stays 30 s; with 1, `options` as given.
 */
export function pollingAtLeast(options: WorkOptions, seconds: number): WorkOptions {
  const longer = (own: number | undefined) => Math.max(own ?? PG_BOSS_DEFAULT_POLLING_SECONDS, seconds);
  return {
    ...options,
    pollingIntervalSeconds: longer(options.pollingIntervalSeconds),
    ...(options.notifyPollingIntervalSeconds === undefined
      ? {}
      : { notifyPollingIntervalSeconds: longer(options.notifyPollingIntervalSeconds) }),
  };
}

/**
 * Starts a worker for each row of {@link WORKERS} on a started pg-boss (whose queues `ensureQueues`
 * created) and applies each row's schedule: scheduled queues get one job per tick across all worker
 * processes; the billing sweeps are scheduled, or unscheduled, by `BILLING_SWEEPS`. Each worker polls
 * at its row's interval or `QUEUE_POLL_INTERVAL_SECONDS`, whichever is longer. A failed attempt
 * of any job is counted in `billhook_job_failures_total` and logged. `stopping` is every handler's
 * (`WorkerContext.stopping`): aborted when the process begins to stop.
 */
export async function startWorkers(
  boss: PgBoss,
  db: Db,
  registry: GatewayRegistry,
  accounts: AccountRegistry,
  config: Config,
  log: Logger,
  metrics: Metrics,
  stopping: AbortSignal,
): Promise<void> {
  // The queues' workers and schedules are independent of each other: registered side by side.
  await Promise.all(
    WORKERS.map(async ({ queue, options, schedule, actor, handler }) => {
      const context: WorkerContext = { boss, db, registry, accounts, config, log, metrics, actor, stopping };
      const workOptions = pollingAtLeast(
        typeof options === 'function' ? options(config) : options,
        config.QUEUE_POLL_INTERVAL_SECONDS,
      );
      await boss.work(
        queue,
        { ...workOptions, includeMetadata: true },
        counted(queue, (jobs: JobWithMetadata<unknown>[]) => handler(jobs, context)),
      );
      if (schedule === null) return;
      if (!schedule.billingSweep || config.BILLING_SWEEPS) await boss.schedule(queue, schedule.cron);
      else await boss.unschedule(queue);
    }),
  );

  /**
   * Counts a failed attempt of a job of `queue` in `billhook_job_failures_total` and logs it; the error
   * goes on to pg-boss, which retries the job or dead-letters it. (`webhook.process` counts its failed
   * jobs itself: it resolves with per-job results.)
   */
  function counted<J, R>(queue: string, run: (jobs: J) => Promise<R>): (jobs: J) => Promise<R> {
    return async (jobs) => {
      try {
        return await run(jobs);
      } catch (error) {
        metrics.jobFailures.inc({ queue });
        log.warn({ queue, err: error }, 'job failed: pg-boss retries it or dead-letters it');
        throw error;
      }
    };
  }
}
