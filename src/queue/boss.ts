import { PgBoss } from 'pg-boss';
import type { Config } from '../config/env.ts';
import { QUEUES } from './queues.ts';

/** Dead letters are kept 30 days for an operator to retry or delete. */
const DEAD_LETTER_RETENTION_SECONDS = 30 * 24 * 3600;

/** pg-boss's schema in billhook's database. */
export const BOSS_SCHEMA = 'pgboss';

/**
 * Creates a pg-boss instance on the database (not started). Workers are woken by LISTEN/NOTIFY and
 * poll as a fallback.
 * @param options.maintenance false for web-only processes and the CLI: no supervision or cron
 */
export function createBoss(connectionString: string, options: { maintenance: boolean }): PgBoss {
  return new PgBoss({
    connectionString,
    schema: BOSS_SCHEMA,
    max: 10,
    useListenNotify: options.maintenance,
    supervise: options.maintenance,
    schedule: options.maintenance,
    // Jobs of dead workers (no heartbeat) are found within ten seconds.
    superviseIntervalSeconds: 10,
    monitorIntervalSeconds: 10,
  });
}

/**
 * Creates billhook's queues and their dead-letter queues (idempotent), and applies the configured
 * retry policy of `webhook.process`: `WEBHOOK_RETRY_LIMIT` retries, exponential backoff from
 * `WEBHOOK_RETRY_DELAY_SECONDS`, at most one hour apart. `transaction.poll`, `subscription.renew`
 * and `invoice.charge` (every minute) and `inbox.sweep` (every five minutes) are sweeps: a failed run
 * is retried twice with backoff (10 s, 20 s), then dead-lettered to `<name>.dead` for an operator to
 * see; the next scheduled run starts afresh either way (sweeps are idempotent). `invoice.refund`
 * (a refund left unknown) retries six times from a minute on, doubling to at most an hour apart.
 */
export async function ensureQueues(boss: PgBoss, config: Config): Promise<void> {
  for (const sweep of [
    QUEUES.transactionPoll,
    QUEUES.inboxSweep,
    QUEUES.subscriptionRenew,
    QUEUES.invoiceCharge,
  ]) {
    const sweepPolicy = { retryLimit: 2, retryDelay: 10, retryBackoff: true, expireInSeconds: 600 };
    await boss.createQueue(`${sweep}.dead`, { retentionSeconds: DEAD_LETTER_RETENTION_SECONDS });
    await boss.createQueue(sweep, { ...sweepPolicy, deadLetter: `${sweep}.dead` });
    await boss.updateQueue(sweep, { ...sweepPolicy, deadLetter: `${sweep}.dead` });
  }
  // A refund the gateway left unknown: retried from a minute on, doubling, up to an hour apart.
  const refundPolicy = { retryLimit: 6, retryDelay: 60, retryBackoff: true, retryDelayMax: 3600 };
  await boss.createQueue(`${QUEUES.invoiceRefund}.dead`, { retentionSeconds: DEAD_LETTER_RETENTION_SECONDS });
  await boss.createQueue(QUEUES.invoiceRefund, {
    ...refundPolicy,
    deadLetter: `${QUEUES.invoiceRefund}.dead`,
  });
  const name = QUEUES.webhookProcess;
  const deadLetter = `${name}.dead`;
  const policy = {
    retryLimit: config.WEBHOOK_RETRY_LIMIT,
    retryDelay: config.WEBHOOK_RETRY_DELAY_SECONDS,
    retryBackoff: true,
    expireInSeconds: 300,
    notify: true,
  };
  await boss.createQueue(deadLetter, { retentionSeconds: DEAD_LETTER_RETENTION_SECONDS });
  // A worker that dies mid-job stops its heartbeat: the job is retried within about 20 s, not after
  // expireInSeconds.
  await boss.createQueue(name, { ...policy, retryDelayMax: 3600, deadLetter, heartbeatSeconds: 10 });
  await boss.updateQueue(name, policy);
}
