import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { GatewayRegistry } from '../gateways/registry.ts';
import { webhookProcessHandler } from './handlers/webhook-process.ts';
import { QUEUES } from './queues.ts';

/** Starts billhook's job workers on a started pg-boss. */
export async function startWorkers(
  boss: PgBoss,
  db: Db,
  registry: GatewayRegistry,
  log: Logger,
): Promise<void> {
  await boss.work(
    QUEUES.webhookProcess,
    {
      batchSize: 20,
      includeMetadata: true,
      perJobResults: true,
      burstWhenBatchFull: true,
      pollingIntervalSeconds: 1,
      // NOTIFY wakes workers for new jobs only; retries come due by time, so keep polling every second.
      notifyPollingIntervalSeconds: 1,
    },
    webhookProcessHandler(db, registry, log),
  );
}
