import { PgBoss } from 'pg-boss';
import type { Config } from '../config/env.ts';
import { QUEUES } from './queues.ts';

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
 * and `invoice.charge` (every minute) and `inbox.sweep` (every five minutes) are sweeps: one that
 * fails simply runs again next time.
 */
export async function ensureQueues(boss: PgBoss, config: Config): Promise<void> {
  await boss.createQueue(QUEUES.transactionPoll, { retryLimit: 0, expireInSeconds: 600 });
  await boss.createQueue(QUEUES.inboxSweep, { retryLimit: 0, expireInSeconds: 600 });
  await boss.createQueue(QUEUES.subscriptionRenew, { retryLimit: 0, expireInSeconds: 600 });
  await boss.createQueue(QUEUES.invoiceCharge, { retryLimit: 0, expireInSeconds: 600 });
  const name = QUEUES.webhookProcess;
  const deadLetter = `${name}.dead`;
  const policy = {
    retryLimit: config.WEBHOOK_RETRY_LIMIT,
    retryDelay: config.WEBHOOK_RETRY_DELAY_SECONDS,
    retryBackoff: true,
    expireInSeconds: 300,
    notify: true,
  };
  await boss.createQueue(deadLetter, { retentionSeconds: 30 * 24 * 3600 });
  // A worker that dies mid-job stops its heartbeat: the job is retried within about 20 s, not after
  // expireInSeconds.
  await boss.createQueue(name, { ...policy, retryDelayMax: 3600, deadLetter, heartbeatSeconds: 10 });
  await boss.updateQueue(name, policy);
}
