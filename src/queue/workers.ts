import type { JobWithMetadata, PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { runAs } from '../activities/activities.ts';
import { renewDueSubscriptions } from '../billing/renewal.ts';
import type { Config } from '../config/env.ts';
import type { Db } from '../db/database.ts';
import type { GatewayRegistry } from '../gateways/registry.ts';
import { pruneIdempotencyKeys } from '../http/idempotency.ts';
import { abandonOrphanedEvents, pruneInboxBodies, pruneInboxRows, sweepStaleInbox } from '../inbox/replay.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { chargeDueInvoices } from '../payments/collection.ts';
import { RefundRetryJob } from '../payments/refund-queue.ts';
import { recoverUnansweredRefunds, retryUnknownRefund } from '../payments/refund-retry.ts';
import { pollDueTransactions } from './handlers/transaction-poll.ts';
import { webhookProcessHandler } from './handlers/webhook-process.ts';
import { QUEUES } from './queues.ts';

/** A webhook still unprocessed this long after it arrived has lost its job: the sweep re-enqueues it. */
const STALE_INBOX_SECONDS = 600;

/**
 * A refund still `pending` without a gateway refund id this long after it was committed never had its
 * answer recorded (far past any gateway timeout): the poll sweep treats it as unknown.
 */
const UNANSWERED_REFUND_SECONDS = 600;

/**
 * Starts billhook's job workers on a started pg-boss: `webhook.process` in batches, the
 * `transaction.poll` (attempts pending or unknown, and refunds left without an answer),
 * `subscription.renew` and `invoice.charge` (scheduled charges and dunning) sweeps every minute and
 * the `inbox.sweep` every five minutes (scheduled: one job per tick across all workers; it also
 * deletes expired idempotency keys).
 */
export async function startWorkers(
  boss: PgBoss,
  db: Db,
  registry: GatewayRegistry,
  config: Config,
  log: Logger,
  metrics: Metrics,
): Promise<void> {
  const processWebhooks = webhookProcessHandler(db, boss, registry, config, log, metrics);
  await boss.work(
    QUEUES.webhookProcess,
    {
      // Each job names a receiving batch's rows; the rows of all fetched jobs are applied together.
      batchSize: 10,
      localConcurrency: config.WEBHOOK_CONCURRENCY,
      includeMetadata: true,
      perJobResults: true,
      burstWhenBatchFull: true,
      pollingIntervalSeconds: 1,
      // NOTIFY wakes workers for new jobs only; retries come due by time, so keep polling every second.
      notifyPollingIntervalSeconds: 1,
    },
    // Activities recorded while applying webhooks name `webhook` as their actor.
    (jobs) => runAs('webhook', () => processWebhooks(jobs)),
  );
  await boss.work(
    QUEUES.transactionPoll,
    { pollingIntervalSeconds: 5 },
    counted(QUEUES.transactionPoll, async () => {
      await runAs('scheduler', () => pollDueTransactions(db, registry, config.POLL_SCHEDULE_SECONDS, log));
      const refunds = await runAs('scheduler', () =>
        recoverUnansweredRefunds(db, boss, UNANSWERED_REFUND_SECONDS),
      );
      if (refunds.length)
        log.warn({ refunds }, 'transaction.poll queued refunds that never got an answer recorded');
    }),
  );
  await boss.schedule(QUEUES.transactionPoll, '* * * * *');
  await boss.work(
    QUEUES.invoiceCharge,
    { pollingIntervalSeconds: 5 },
    counted(QUEUES.invoiceCharge, async () => {
      await runAs('scheduler', () => chargeDueInvoices(db, registry, config, new Date(), { log }));
    }),
  );
  await billingSchedule(QUEUES.invoiceCharge);
  // Refunds the gateway left unknown: sent again where that is idempotent, else (or at the last try)
  // a reconciliation exception; a job still unknown throws, so pg-boss retries it with backoff.
  await boss.work(
    QUEUES.invoiceRefund,
    { pollingIntervalSeconds: 5, includeMetadata: true },
    counted(QUEUES.invoiceRefund, async ([job]: JobWithMetadata<unknown>[]) => {
      if (!job) return;
      const { refundId } = RefundRetryJob.parse(job.data);
      const result = await runAs('worker', () =>
        retryUnknownRefund(db, registry, refundId, job.retryCount >= job.retryLimit),
      );
      if (result.kind === 'still_unknown')
        throw new Error(`refund ${refundId}: still no answer from the gateway`);
    }),
  );
  await boss.work(
    QUEUES.inboxSweep,
    { pollingIntervalSeconds: 30 },
    counted(QUEUES.inboxSweep, async () => {
      const ids = await sweepStaleInbox(db, boss, STALE_INBOX_SECONDS);
      if (ids.length) log.warn({ count: ids.length }, 'inbox.sweep re-enqueued webhooks whose job was lost');
      const abandoned = await abandonOrphanedEvents(db);
      if (abandoned.length)
        log.warn(
          { inboxIds: abandoned },
          'inbox.sweep: webhooks whose dead letter expired are exceptions now',
        );
      const pruned = await pruneInboxBodies(db, config.INBOX_BODY_RETENTION_DAYS, new Date());
      if (pruned) log.info({ count: pruned }, 'inbox.sweep dropped raw bodies past the retention');
      const deleted = await pruneInboxRows(db, config.INBOX_ROW_RETENTION_DAYS, new Date());
      if (deleted) log.info({ count: deleted }, 'inbox.sweep deleted finished rows past the row retention');
      const expired = await pruneIdempotencyKeys(db, config.IDEMPOTENCY_KEY_TTL_HOURS, new Date());
      if (expired) log.info({ count: expired }, 'inbox.sweep deleted expired idempotency keys');
    }),
  );
  await boss.schedule(QUEUES.inboxSweep, '*/5 * * * *');
  // Invoices every subscription period that has started (each once; see billing/renewal.ts).
  await boss.work(
    QUEUES.subscriptionRenew,
    { pollingIntervalSeconds: 5 },
    counted(QUEUES.subscriptionRenew, async () => {
      const sweep = await runAs('scheduler', () => renewDueSubscriptions(db, new Date()));
      if (sweep.failures.length)
        log.error({ failures: sweep.failures }, 'subscription.renew could not renew some');
    }),
  );
  await billingSchedule(QUEUES.subscriptionRenew);

  /**
   * Counts a failed attempt of a job of `queue` in `billhook_job_failures_total` and logs it; the error
   * goes on to pg-boss, which retries the job or dead-letters it.
   */
  function counted<J>(queue: string, handler: (jobs: J) => Promise<void>): (jobs: J) => Promise<void> {
    return async (jobs) => {
      try {
        await handler(jobs);
      } catch (error) {
        metrics.jobFailures.inc({ queue });
        log.warn({ queue, err: error }, 'job failed: pg-boss retries it or dead-letters it');
        throw error;
      }
    };
  }

  /** Schedules a billing sweep every minute, or removes its schedule while BILLING_SWEEPS is off. */
  async function billingSchedule(queue: string): Promise<void> {
    if (config.BILLING_SWEEPS) await boss.schedule(queue, '* * * * *');
    else await boss.unschedule(queue);
  }
}
