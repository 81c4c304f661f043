import type { JobResult, JobWithMetadata, PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import type { Config } from '../../config/env.ts';
import type { Db } from '../../db/database.ts';
import type { GatewayRegistry } from '../../gateways/registry.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import { processInboxEvents } from '../../reconcile/process.ts';
import { QUEUES, retryDelaySeconds, WebhookProcessJob } from '../queues.ts';

/**
 * Handles fetched `webhook.process` jobs. Each job's inbox rows are processed in chunks of
 * `WEBHOOK_BATCH_SIZE` (one transaction per chunk). Rows whose payment is not known yet, or whose
 * gateway could not be asked, go into one new job for a later attempt (exponential backoff from
 * `WEBHOOK_RETRY_DELAY_SECONDS`); on the last attempt (`WEBHOOK_RETRY_LIMIT`) unknown payments
 * become reconciliation exceptions and rows that still fail go to the dead-letter queue. The job
 * then completes; it fails (pg-boss retries it, done rows are skipped) only when that bookkeeping
 * itself fails. Invalid job data goes straight to the dead-letter queue.
 */
export function webhookProcessHandler(
  db: Db,
  boss: PgBoss,
  registry: GatewayRegistry,
  config: Config,
  log: Logger,
  metrics: Metrics,
) {
  return async (jobs: JobWithMetadata<unknown>[]): Promise<JobResult[]> => {
    const results: JobResult[] = [];
    for (const job of jobs) {
      const parsed = WebhookProcessJob.safeParse(job.data);
      if (!parsed.success) {
        log.error({ jobId: job.id }, 'webhook.process job with invalid data');
        results.push({ id: job.id, status: 'deadletter', output: { error: 'invalid job data' } });
        continue;
      }
      const { inboxIds, attempt } = parsed.data;
      const finalAttempt = attempt >= config.WEBHOOK_RETRY_LIMIT;
      try {
        const again: string[] = [];
        const failed: { id: string; error: string }[] = [];
        for (let i = 0; i < inboxIds.length; i += config.WEBHOOK_BATCH_SIZE) {
          const chunk = inboxIds.slice(i, i + config.WEBHOOK_BATCH_SIZE);
          const outcomes = await processInboxEvents(
            db,
            registry,
            chunk.map((inboxId) => ({ inboxId, finalAttempt })),
          );
          for (const [k, outcome] of outcomes.entries()) {
            if (outcome === 'retry') again.push(chunk[k]!);
            if (outcome instanceof Error) failed.push({ id: chunk[k]!, error: outcome.message });
          }
        }
        for (const { id, error } of failed) {
          log.warn({ jobId: job.id, inboxId: id, attempt, err: error }, 'webhook processing failed');
        }
        if (failed.length > 0 && finalAttempt) {
          metrics.jobFailures.inc({ queue: QUEUES.webhookProcess }, failed.length);
          await boss.send(`${QUEUES.webhookProcess}.dead`, {
            inboxIds: failed.map((f) => f.id),
            errors: failed,
          });
        } else {
          again.push(...failed.map((f) => f.id));
        }
        if (again.length > 0) {
          const next: WebhookProcessJob = { inboxIds: again, attempt: attempt + 1 };
          await boss.sendAfter(
            QUEUES.webhookProcess,
            next,
            null,
            retryDelaySeconds(config.WEBHOOK_RETRY_DELAY_SECONDS, attempt),
          );
        }
        results.push({
          id: job.id,
          status: 'completed',
          output: { processed: inboxIds.length, retrying: again.length },
        });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        log.warn(
          { jobId: job.id, retryCount: job.retryCount, err: message },
          'webhook.process job failed: pg-boss retries it',
        );
        metrics.jobFailures.inc({ queue: QUEUES.webhookProcess });
        results.push({ id: job.id, status: 'failed', output: { error: message } });
      }
    }
    return results;
  };
}
