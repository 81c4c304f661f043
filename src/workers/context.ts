import type { JobResult, JobWithMetadata, PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import type { Config } from '../config/env.ts';
import type { Db } from '../db/database.ts';
import type { AccountRegistry, GatewayRegistry } from '../gateways/registry.ts';
import type { Actor } from '../ledger/unit-of-work.ts';
import type { Metrics } from '../metrics/metrics.ts';

/**
 * The services a worker process hands every job handler (the second argument of a {@link JobHandler}),
 * and the actor it runs as.
 */
export interface WorkerContext {
  boss: PgBoss;
  db: Db;
  registry: GatewayRegistry;
  /** The gateway accounts' adapters (src/accounts/adapters.ts). */
  accounts: AccountRegistry;
  config: Config;
  log: Logger;
  metrics: Metrics;
  /** Who acts: the worker table's actor for the queue, passed to every unit of work the handler opens. */
  actor: Actor;
  /**
   * Aborted when the process begins to stop: a sweep finishes the items in hand and starts no more,
   * so none outlives the database pool; the items left wait for the next run.
   */
  stopping: AbortSignal;
}

/**
 * Handles the jobs of one queue pg-boss fetched (with their metadata: `retryCount`, `retryLimit`…).
 * Resolves with one `JobResult` per job on a queue worked with `perJobResults`, else with nothing;
 * throwing fails every fetched job (pg-boss retries it, then dead-letters it to `<queue>.dead`).
 */
export type JobHandler = (
  jobs: JobWithMetadata<unknown>[],
  context: WorkerContext,
) => Promise<JobResult[] | undefined>;
