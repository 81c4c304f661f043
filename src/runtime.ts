import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { sql } from 'kysely';
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { anyApiKey, createApiKey } from './auth/api-keys.ts';
import type { Config } from './config/env.ts';
import { createDb, type Db } from './db/database.ts';
import { startEmbeddedPostgres } from './db/embedded.ts';
import { migrateToLatest, migrationsCurrent } from './db/migrate.ts';
import { createRegistry, type GatewayRegistry } from './gateways/registry.ts';
import { createApp } from './http/app.ts';
import { createMetricsApp } from './http/metrics.ts';
import { DEFAULT_INBOX_OPTIONS, Inbox } from './inbox/receive.ts';
import { instrumentRegistry } from './metrics/instrument.ts';
import { Metrics } from './metrics/metrics.ts';
import { currencyOfReference } from './payments/transactions.ts';
import { createBoss, ensureQueues } from './queue/boss.ts';
import { startWorkers } from './queue/workers.ts';

/** Which parts a process runs: `web` (HTTP), `worker` (jobs) or `all`. */
export type Role = 'all' | 'web' | 'worker';

/** A running billhook process. */
export interface Runtime {
  db: Db;
  boss: PgBoss;
  registry: GatewayRegistry;
  databaseUrl: string;
  /** Where the webhook receiver stores deliveries (roles `web`, `all`). */
  inbox?: Inbox;
  /**
   * The HTTP base URL when the role serves HTTP, e.g. `http://127.0.0.1:3000` (a `worker` with
   * METRICS_PORT: its metrics and health endpoints only).
   */
  url?: string;
  /** A new admin key created on the first start (no keys existed), shown once. */
  firstAdminKey?: string;
  /** Graceful stop: no new requests or jobs, in-flight work finished, connections closed. */
  stop(): Promise<void>;
}

/**
 * Resolves the database: `DATABASE_URL`, or the embedded PostgreSQL in `EMBEDDED_PG_DIR` (started,
 * or joined when another billhook process runs it).
 */
export async function resolveDatabase(
  config: Config,
  log: Logger,
): Promise<{ url: string; stop(): Promise<void> }> {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL, stop: async () => undefined };
  log.info({ dir: config.EMBEDDED_PG_DIR }, 'starting embedded PostgreSQL');
  return startEmbeddedPostgres(config.EMBEDDED_PG_DIR, (line) => log.debug({ postgres: line }, 'postgres'));
}

/** Listens on `port` on every interface; resolves once listening, with the loopback URL. */
async function listen(app: Express, port: number): Promise<{ server: Server; url: string }> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, '0.0.0.0', () => resolve(s)).once('error', reject);
  });
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/**
 * Starts billhook: database (embedded unless `DATABASE_URL`), migrations, pg-boss and its queues, then
 * the HTTP server (roles `web`, `all`) on `PORT` and the job workers (roles `worker`, `all`; with
 * `METRICS_PORT`, a worker serves its /metrics and health there).
 * Ensures `BILLHOOK_ADMIN_KEY` exists as an admin key; with no key at all, creates one.
 * @throws when the database cannot be reached or a migration fails
 */
export async function startRuntime(config: Config, role: Role, log: Logger): Promise<Runtime> {
  const database = await resolveDatabase(config, log);
  const db = createDb(database.url);
  await migrateToLatest(db);
  const boss = createBoss(database.url, { maintenance: role !== 'web' });
  boss.on('error', (error) => log.error({ err: error }, 'pg-boss error'));
  await boss.start();
  await ensureQueues(boss, config);
  const metrics = new Metrics({ db, boss });
  const registry = instrumentRegistry(
    createRegistry(config, { currencyOfReference: (reference) => currencyOfReference(db, reference) }),
    metrics,
  );

  let firstAdminKey: string | undefined;
  if (config.BILLHOOK_ADMIN_KEY)
    await createApiKey(db, 'BILLHOOK_ADMIN_KEY', 'admin', config.BILLHOOK_ADMIN_KEY);
  else if (!(await anyApiKey(db)))
    firstAdminKey = (await createApiKey(db, 'first admin key', 'admin')).secret;

  let migrated = false;
  const ready = async () => {
    await sql`SELECT 1`.execute(db);
    migrated ||= await migrationsCurrent(db);
    return migrated;
  };

  let server: Server | undefined;
  let url: string | undefined;
  let inbox: Inbox | undefined;
  if (role !== 'worker') {
    inbox = new Inbox(database.url, boss, {
      ...DEFAULT_INBOX_OPTIONS,
      maxWaiting: config.WEBHOOK_MAX_WAITING,
    });
    const app = createApp({ config, db, boss, registry, metrics, inbox, log, ready });
    ({ server, url } = await listen(app, config.PORT));
  } else if (config.METRICS_PORT !== undefined) {
    ({ server, url } = await listen(createMetricsApp({ metrics, ready }), config.METRICS_PORT));
  }
  if (role !== 'web') await startWorkers(boss, db, registry, config, log, metrics);

  return {
    db,
    boss,
    registry,
    databaseUrl: database.url,
    inbox,
    url,
    firstAdminKey,
    async stop() {
      if (server) {
        const closing = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await closing;
      }
      await inbox?.close();
      await boss.stop({ graceful: true, timeout: 10_000 });
      await db.destroy();
      await database.stop();
    },
  };
}
