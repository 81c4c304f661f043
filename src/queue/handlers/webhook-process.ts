import type { JobResult, JobWithMetadata } from 'pg-boss';
import type { Logger } from 'pino';
import type { Db } from '../../db/database.ts';
import type { GatewayRegistry } from '../../gateways/registry.ts';
import { processInboxEvent } from '../../reconcile/process.ts';
import { WebhookProcessJob } from '../queues.ts';

/**
 * Handles a batch of `webhook.process` jobs, settling each on its own: a job whose entity is not known
 * yet fails and is retried with the queue's backoff; its last attempt turns into a reconciliation
 * exception instead of a failure.
 */
export function webhookProcessHandler(db: Db, registry: GatewayRegistry, log: Logger) {
  return async (jobs: JobWithMetadata<unknown>[]): Promise<JobResult[]> => {
    const results: JobResult[] = [];
    for (const job of jobs) {
      const parsed = WebhookProcessJob.safeParse(job.data);
      if (!parsed.success) {
        log.error({ jobId: job.id }, 'webhook.process job with invalid data');
        results.push({ id: job.id, status: 'deadletter', output: { error: 'invalid job data' } });
        continue;
      }
      try {
        const outcome = await processInboxEvent(
          db,
          registry,
          parsed.data.inboxId,
          job.retryCount >= job.retryLimit,
        );
        log.debug({ jobId: job.id, inboxId: parsed.data.inboxId, outcome }, 'webhook processed');
        results.push({ id: job.id, status: 'completed', output: { outcome } });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        log.warn(
          { jobId: job.id, inboxId: parsed.data.inboxId, retryCount: job.retryCount, err: message },
          'webhook processing will retry',
        );
        results.push({ id: job.id, status: 'failed', output: { error: message } });
      }
    }
    return results;
  };
}
