import type { JobResult, JobWithMetadata } from 'pg-boss';
import type { Logger } from 'pino';
import type { Db } from '../../db/database.ts';
import type { GatewayRegistry } from '../../gateways/registry.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import { type ProcessRequest, processInboxEvents } from '../../reconcile/process.ts';
import { QUEUES, WebhookProcessJob } from '../queues.ts';

/**
 * Handles a batch of `webhook.process` jobs: the valid ones are processed together (one transaction
 * when possible) and each job is settled on its own: done → completed; payment not known yet or an
 * error → failed, so the queue retries it with backoff (its last attempt turns into a reconciliation
 * exception instead); invalid job data → dead letter.
 */
export function webhookProcessHandler(db: Db, registry: GatewayRegistry, log: Logger, metrics: Metrics) {
  return async (jobs: JobWithMetadata<unknown>[]): Promise<JobResult[]> => {
    const results: JobResult[] = [];
    const valid: { job: JobWithMetadata<unknown>; request: ProcessRequest }[] = [];
    for (const job of jobs) {
      const parsed = WebhookProcessJob.safeParse(job.data);
      if (parsed.success) {
        valid.push({
          job,
          request: { inboxId: parsed.data.inboxId, finalAttempt: job.retryCount >= job.retryLimit },
        });
      } else {
        log.error({ jobId: job.id }, 'webhook.process job with invalid data');
        results.push({ id: job.id, status: 'deadletter', output: { error: 'invalid job data' } });
      }
    }
    const outcomes = await processInboxEvents(
      db,
      registry,
      valid.map((v) => v.request),
    );
    for (const [i, { job, request }] of valid.entries()) {
      const outcome = outcomes[i]!;
      if (outcome instanceof Error || outcome === 'retry') {
        const error = outcome instanceof Error ? outcome.message : 'payment not known yet';
        log.warn(
          { jobId: job.id, inboxId: request.inboxId, retryCount: job.retryCount, err: error },
          'webhook processing will retry',
        );
        results.push({ id: job.id, status: 'failed', output: { error } });
        metrics.jobFailures.inc({ queue: QUEUES.webhookProcess });
      } else {
        results.push({ id: job.id, status: 'completed', output: { outcome } });
      }
    }
    return results;
  };
}
