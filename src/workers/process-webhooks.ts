import type { JobResult, JobWithMetadata, PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import type { Config } from '../config/env.ts';
import type { Db } from '../db/database.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { deadQueueOf, QUEUES, WebhookProcessJob } from '../queue/queues.ts';
import { type ProcessOutcome, processInboxEvents } from '../reconcile/process.ts';
import type { JobHandler } from './context.ts';

/*
 * Row-level retry of `webhook.process` — billhook's own retry of single stored webhooks, not pg-boss's
 * retry of a job. A row whose payment billhook does not know yet (the webhook came before the API
 * call's answer was recorded), or whose gateway could not be asked, does not fail its job: the job
 * completes, and those rows go together into one new `webhook.process` job sent for later with
 * `attempt` + 1 (job data: queue/queues.ts `WebhookProcessJob`).
 *
 * - `WEBHOOK_RETRY_LIMIT` (env, default 8): retries of a row; on the last attempt an unknown payment
 *   becomes an `unknown_entity` reconciliation exception and a row that still fails goes to
 *   `webhook.process.dead`;
 * - `WEBHOOK_RETRY_DELAY_SECONDS` (env, default 5): delay of the first retry, doubled at each retry
 *   (`retryDelaySeconds`);
 * - `ROW_RETRY_MAX_DELAY_SECONDS` (3600): the longest delay between two retries;
 * - `ROW_RETRY_JITTER` (0.2): up to 20% added to each delay at random, so the retries of a burst
 *   spread out.
 *
 * pg-boss's retry of a `webhook.process` JOB is separate (its queue policy, queue/boss.ts): it runs only
 * when the handler's own bookkeeping fails (the database is away, a worker died mid-job), and sends the
 * job again with the same rows and attempt; that policy reuses the two variables above for its limit and
 * first delay.
 */

/** Longest delay, in seconds, between two row-level retries of `webhook.process`. */
export const ROW_RETRY_MAX_DELAY_SECONDS = 3600;

/** The largest share of a row-level retry's delay added at random (0.2: up to 20% more). */
export const ROW_RETRY_JITTER = 0.2;

/**
 * Seconds before the `attempt`-th row-level retry (0 = the first) of rows whose payment is not known
 * yet: exponential from `base` (`WEBHOOK_RETRY_DELAY_SECONDS`, doubling each time), at most
 * {@link ROW_RETRY_MAX_DELAY_SECONDS}, plus up to {@link ROW_RETRY_JITTER} of it at random; at least 1.
 */
export function retryDelaySeconds(base: number, attempt: number, random = Math.random): number {
  const delay = Math.min(ROW_RETRY_MAX_DELAY_SECONDS, base * 2 ** attempt);
  return Math.max(1, Math.round(delay * (1 + ROW_RETRY_JITTER * random())));
}

/**
 * `webhook.process` (one job per receiving batch, sent with the inbox rows): each fetched job's inbox
 * rows are processed in chunks of `WEBHOOK_BATCH_SIZE` (one transaction per chunk). Rows whose payment
 * is not known yet, or whose gateway could not be asked, are retried row by row (the settings block
 * above); on the last attempt unknown payments become reconciliation exceptions and rows that still
 * fail go to the dead-letter queue. The job then completes; it fails (pg-boss retries it, done rows
 * are skipped) only when that bookkeeping itself fails. Invalid job data goes straight to the
 * dead-letter queue. Resolves with one `JobResult` per job (the queue is worked with `perJobResults`).
 */
export const processWebhooks: JobHandler = async (
  jobs,
  { db, boss, registry, accounts, config, log, metrics, actor },
) => {
  const results: JobResult[] = [];
  const valid: { job: JobWithMetadata<unknown>; data: { inboxIds: string[]; attempt: number } }[] = [];
  for (const job of jobs) {
    const parsed = WebhookProcessJob.safeParse(job.data);
    if (parsed.success) valid.push({ job, data: parsed.data });
    else {
      log.error({ jobId: job.id }, 'webhook.process job with invalid data');
      results.push({ id: job.id, status: 'deadletter', output: { error: 'invalid job data' } });
    }
  }
  // The rows of every fetched job, applied in chunks of WEBHOOK_BATCH_SIZE (one transaction each).
  const rows = valid.flatMap(({ data }, j) =>
    data.inboxIds.map((inboxId) => ({
      j,
      inboxId,
      finalAttempt: data.attempt >= config.WEBHOOK_RETRY_LIMIT,
    })),
  );
  const outcomes: ProcessOutcome[] = [];
  try {
    for (let i = 0; i < rows.length; i += config.WEBHOOK_BATCH_SIZE) {
      outcomes.push(
        ...(await processInboxEvents(
          db,
          actor,
          registry,
          rows.slice(i, i + config.WEBHOOK_BATCH_SIZE),
          accounts,
          { billSuspended: config.BILL_SUSPENDED_SUBSCRIPTIONS },
        )),
      );
    }
  } catch (error) {
    // Reading or marking the rows failed (the database is away): every job fails and pg-boss retries it.
    const message = error instanceof Error ? error.message : String(error);
    metrics.jobFailures.inc({ queue: QUEUES.webhookProcess }, valid.length);
    return [
      ...results,
      ...valid.map(({ job }) => ({ id: job.id, status: 'failed' as const, output: { error: message } })),
    ];
  }
  const unsettled = rows.flatMap((row, i) =>
    outcomes[i] === 'retry' || outcomes[i] === 'exception'
      ? [{ inboxId: row.inboxId, attempt: valid[row.j]!.data.attempt }]
      : [],
  );
  await logUnsettled(db, log, config, unsettled).catch((error: unknown) =>
    log.error({ err: error }, 'could not read the webhooks to log'),
  );
  for (const [j, { job, data }] of valid.entries()) {
    try {
      const mine = rows.flatMap((row, i) =>
        row.j === j ? [{ id: row.inboxId, outcome: outcomes[i]! }] : [],
      );
      await settleJob(boss, config, log, metrics, job.id, data, mine);
      results.push({ id: job.id, status: 'completed', output: { processed: mine.length } });
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

/**
 * Logs at warn each stored webhook whose payment is not known yet (`webhook for a payment not known
 * yet`: it is retried later) or that raised a reconciliation exception (`webhook raised a
 * reconciliation exception`, e.g. `unknown_entity` once the retries are used up), with the ids a
 * person needs: inbox id, gateway and its event id, event type, the payment references the event
 * names (our reference, the gateway's transaction, refund or dispute id), the attempt (0 = the first,
 * of `WEBHOOK_RETRY_LIMIT` retries) and the reason. Never the body.
 */
async function logUnsettled(
  db: Db,
  log: Logger,
  config: Config,
  unsettled: { inboxId: string; attempt: number }[],
): Promise<void> {
  if (unsettled.length === 0) return;
  const rows = await db
    .selectFrom('inbox')
    .select(['id', 'gateway', 'gateway_event_id', 'event_type', 'status', 'outcome', 'last_error', 'events'])
    .where(
      'id',
      'in',
      unsettled.map((u) => u.inboxId),
    )
    .execute();
  for (const { inboxId, attempt } of unsettled) {
    const row = rows.find((r) => r.id === inboxId);
    if (!row || (row.status !== 'retrying' && row.status !== 'exception')) continue;
    const fields = {
      inboxId,
      gateway: row.gateway,
      gatewayEventId: row.gateway_event_id,
      eventType: row.event_type,
      references: distinctReferences(row.events ?? []),
      attempt,
      retryLimit: config.WEBHOOK_RETRY_LIMIT,
    };
    if (row.status === 'retrying')
      log.warn({ ...fields, reason: row.last_error }, 'webhook for a payment not known yet: retried later');
    else log.warn({ ...fields, outcome: row.outcome }, 'webhook raised a reconciliation exception');
  }
}

/**
 * The payment references `events` name (our reference, the gateway's transaction, refund or dispute
 * id), each set once in the order first named: a PayPal capture's charge and its settlement line
 * name the same capture and reference, listed once.
 */
function distinctReferences(
  events: readonly {
    reference?: string;
    gatewayTransactionId?: string;
    gatewayRefundId?: string;
    gatewayDisputeId?: string;
  }[],
) {
  const seen = new Map<string, Record<string, string | undefined>>();
  for (const e of events) {
    const references = {
      reference: e.reference,
      gatewayTransactionId: e.gatewayTransactionId,
      gatewayRefundId: e.gatewayRefundId,
      gatewayDisputeId: e.gatewayDisputeId,
    };
    const key = JSON.stringify(references);
    if (!seen.has(key)) seen.set(key, references);
  }
  return [...seen.values()];
}

/**
 * After a job's rows were applied: rows to try again go into one later job (backoff), rows that keep
 * failing on the last attempt go to the dead-letter queue.
 */
async function settleJob(
  boss: PgBoss,
  config: Config,
  log: Logger,
  metrics: Metrics,
  jobId: string,
  data: { attempt: number },
  rows: { id: string; outcome: ProcessOutcome }[],
): Promise<void> {
  const finalAttempt = data.attempt >= config.WEBHOOK_RETRY_LIMIT;
  const again = rows.filter((r) => r.outcome === 'retry').map((r) => r.id);
  const failed = rows.flatMap((r) =>
    r.outcome instanceof Error ? [{ id: r.id, error: r.outcome.message }] : [],
  );
  for (const { id, error } of failed)
    log.warn({ jobId, inboxId: id, attempt: data.attempt, err: error }, 'webhook processing failed');
  if (failed.length > 0 && finalAttempt) {
    metrics.jobFailures.inc({ queue: QUEUES.webhookProcess }, failed.length);
    await boss.send(deadQueueOf(QUEUES.webhookProcess), {
      inboxIds: failed.map((f) => f.id),
      errors: failed,
    });
  } else {
    again.push(...failed.map((f) => f.id));
  }
  if (again.length > 0) {
    const next: WebhookProcessJob = { inboxIds: again, attempt: data.attempt + 1 };
    await boss.sendAfter(
      QUEUES.webhookProcess,
      next,
      null,
      retryDelaySeconds(config.WEBHOOK_RETRY_DELAY_SECONDS, data.attempt),
    );
  }
}
