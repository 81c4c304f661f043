import type { Server } from 'node:http';
import type { DashboardHandler } from '@pg-boss/dashboard/handler';
import { sql } from 'kysely';
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { AccountAdapters } from './accounts/adapters.ts';
import { keyring } from './accounts/cipher.ts';
import { anyApiKey, createApiKey } from './auth/api-keys.ts';
import type { Config } from './config/env.ts';
import { GATEWAYS } from './config/gateways.ts';
import { createDb, type Db } from './db/database.ts';
import { startEmbeddedPostgres } from './db/embedded.ts';
import { migrateToLatest, migrationsCurrent } from './db/migrate.ts';
import { logGatewayFailures } from './gateways/logged.ts';
import { createAdapter, type GatewayRegistry, type RegistryLookups } from './gateways/registry.ts';
import type { GatewayAdapter } from './gateways/types.ts';
import { createQueueDashboard } from './http/admin/queues.ts';
import { createApp } from './http/app.ts';
import { createMetricsApp } from './http/metrics.ts';
import { DEFAULT_INBOX_OPTIONS, Inbox } from './inbox/receive.ts';
import { listenOn, PortUnavailable } from './listen.ts';
import { instrumentRegistry } from './metrics/instrument.ts';
import { Metrics } from './metrics/metrics.ts';
import { currencyOfReference, findTransaction, hasUnidentifiedCharge } from './payments/transactions.ts';
import { createBoss, ensureQueues } from './queue/boss.ts';
import { QUEUES_AND_DEAD_LETTERS } from './queue/queues.ts';
import { startWorkers } from './workers/workers.ts';

/** Which parts a process runs: `web` (HTTP), `worker` (jobs) or `all`. */
export type Role = 'all' | 'web' | 'worker';

/** A running billhook process. */
export interface Runtime {
  db: Db;
  boss: PgBoss;
  registry: GatewayRegistry;
  /** The gateway accounts' adapters, built per account and rebuilt when one changes. */
  accounts: AccountAdapters;
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
  /**
   * Graceful stop within `SHUTDOWN_TIMEOUT_SECONDS`: the listening socket and idle keep-alive
   * connections close at once, a request still arriving on an open connection is answered with
   * `Connection: close`, the requests in flight (and the webhook group commit they wait for) and the
   * jobs in flight finish; at the deadline the connections still open are closed and the jobs still
   * running are left to pg-boss's retry. Then the database connections (and an embedded PostgreSQL
   * this process started) close.
   */
  stop(): Promise<void>;
}

/**
 * Resolves the database: `DATABASE_URL`, or the embedded PostgreSQL in `EMBEDDED_PG_DIR` (started and
 * supervised; joined when another billhook process runs it, unless `exclusive`).
 * @param exclusive a server process (`start`, `web`, `worker`): refuse a data directory another
 *   process runs (DataDirectoryInUse) rather than depend on that process staying up
 */
export async function resolveDatabase(
  config: Config,
  log: Logger,
  exclusive = false,
): Promise<{ url: string; stop(): Promise<void> }> {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL, stop: async () => undefined };
  log.info({ dir: config.EMBEDDED_PG_DIR }, 'starting embedded PostgreSQL');
  return startEmbeddedPostgres(config.EMBEDDED_PG_DIR, {
    postgresLog: (line) => log.debug({ postgres: line }, 'postgres'),
    log,
    exclusive,
  });
}

/**
 * Listens on `port` on every interface; resolves once listening, with the loopback URL.
 * @param variable the setting `port` comes from, named when the port is unavailable
 * @throws PortUnavailable e.g. "port 3000 is in use: stop what listens on it or set PORT to another port"
 */
async function listen(
  app: Parameters<typeof listenOn>[0],
  port: number,
  variable: 'PORT' | 'METRICS_PORT',
): Promise<{ server: Server; url: string }> {
  try {
    const { server, port: bound } = await listenOn(app, port, '0.0.0.0');
    return { server, url: `http://127.0.0.1:${bound}` };
  } catch (error) {
    if (!(error instanceof PortUnavailable)) throw error;
    throw new PortUnavailable(`${error.message}: stop what listens on it or set ${variable} to another port`);
  }
}

/**
 * Stops `server` taking requests and waits, until `deadline` (epoch ms), for the requests in flight:
 * the listening socket and idle connections close now, every response from now on carries
 * `Connection: close` (so a keep-alive client busy sending cannot hold its connection open), and at
 * the deadline the connections still open are closed.
 * @returns whether every request finished before the deadline
 */
async function drain(server: Server, deadline: number): Promise<boolean> {
  server.prependListener('request', (_req, res) => res.setHeader('Connection', 'close'));
  const closed = new Promise<true>((resolve) => server.close(() => resolve(true)));
  server.closeIdleConnections();
  // A connection whose request was in flight becomes idle once answered (kept alive: its response
  // had started before the stop); it is closed then rather than at the keep-alive timeout.
  const sweep = setInterval(() => server.closeIdleConnections(), 100);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  });
  const finished = await Promise.race([closed, late]);
  clearInterval(sweep);
  clearTimeout(timer);
  if (!finished) {
    server.closeAllConnections();
    await closed;
  }
  return finished;
}

/**
 * Starts billhook: database (embedded unless `DATABASE_URL`), migrations, pg-boss and its queues, then
 * the HTTP server (roles `web`, `all`) on `PORT` and the job workers (roles `worker`, `all`; with
 * `METRICS_PORT`, a worker serves its /metrics and health there).
 * Ensures `BILLHOOK_ADMIN_KEY` exists as an admin key; with no key at all, creates one.
 * @throws when the database cannot be reached or a migration fails
 */
export async function startRuntime(config: Config, role: Role, log: Logger): Promise<Runtime> {
  if (config.PAYPAL_TEST_CERT_FILE) {
    log.warn(
      { file: config.PAYPAL_TEST_CERT_FILE },
      'PAYPAL_TEST_CERT_FILE is set: PayPal webhooks signed with the test key from the repository are trusted; never set it in production',
    );
  }
  // What is started so far, stopped in reverse order when a later step fails (a port in use, say), so
  // a failed start leaves no embedded PostgreSQL running behind it.
  const started: (() => Promise<unknown>)[] = [];
  const stopStarted = async () => {
    for (const stop of started.reverse()) await stop().catch(() => undefined);
  };
  try {
    const database = await resolveDatabase(config, log, true);
    started.push(() => database.stop());
    const db = createDb(database.url);
    started.push(() => db.destroy());
    await migrateToLatest(db);
    const boss = createBoss(database.url, {
      maintenance: role !== 'web',
      maintenanceIntervalSeconds: config.QUEUE_MAINTENANCE_INTERVAL_SECONDS,
      poolSize: config.QUEUE_POOL_SIZE,
    });
    boss.on('error', (error) => log.error({ err: error }, 'pg-boss error'));
    started.push(() => boss.stop({ graceful: false }));
    await boss.start();
    await ensureQueues(boss, config);
    const lookups = {
      currencyOfReference: (reference: string) => currencyOfReference(db, reference),
      ewayHints: {
        lookups: {
          knowsTransaction: async (transactionId: string, reference: string | undefined) =>
            (await findTransaction(db, 'eway', transactionId, reference)) !== undefined,
          awaitsUnidentifiedCharge: () => hasUnidentifiedCharge(db, 'eway'),
        },
        log,
      },
    } satisfies RegistryLookups;
    const defaults = GATEWAYS.map((gateway) => createAdapter(gateway, config, lookups));
    const metrics = new Metrics({
      db,
      boss,
      databaseUrl: database.url,
      gateways: defaults.filter((a) => a.webhook || a.client).map((a) => a.name),
      queues: QUEUES_AND_DEAD_LETTERS,
    });
    started.push(() => metrics.close());
    // Every adapter, the default accounts' and each gateway account's, is built by the same factory
    // and wrapped alike (failures logged, calls measured).
    const wrapped = (adapters: GatewayAdapter[], account?: string): GatewayRegistry =>
      instrumentRegistry(
        logGatewayFailures(new Map(adapters.map((a) => [a.name, a])), log),
        metrics,
        account,
      );
    const registry = wrapped(defaults);
    const accounts = new AccountAdapters(
      db,
      keyring(config.BILLHOOK_SECRET_KEY, config.BILLHOOK_SECRET_KEY_PREVIOUS),
      config,
      (gateway, accountConfig, account) =>
        wrapped([createAdapter(gateway, accountConfig, lookups)], account).get(gateway)!,
    );
    // Read the accounts once now, so no lookup (some run inside a unit of work) waits on the database.
    await accounts.refresh();
    accounts.start();
    started.push(async () => accounts.stop());

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
    let dashboard: DashboardHandler | undefined;
    if (role !== 'worker') {
      const opened = new Inbox(database.url, boss, {
        ...DEFAULT_INBOX_OPTIONS,
        maxWaiting: config.WEBHOOK_MAX_WAITING,
        maxWaitingBytes: config.WEBHOOK_MAX_WAITING_BYTES,
      });
      inbox = opened;
      started.push(() => opened.close());
      const queueDashboard = createQueueDashboard(database.url);
      started.push(() => queueDashboard.close());
      dashboard = queueDashboard;
      const app = createApp({
        config,
        db,
        boss,
        registry,
        accounts,
        metrics,
        inbox,
        log,
        ready,
        queueDashboard,
      });
      ({ server, url } = await listen(app, config.PORT, 'PORT'));
    } else if (config.METRICS_PORT !== undefined) {
      ({ server, url } = await listen(
        createMetricsApp({ metrics, ready }),
        config.METRICS_PORT,
        'METRICS_PORT',
      ));
    }
    // The port bound, for an operator (and a test) that set PORT or METRICS_PORT to 0: any free one.
    if (url) log.info({ role, port: Number(new URL(url).port) }, `listening on ${url}`);
    const listening = server;
    if (listening) {
      started.push(
        () =>
          new Promise((resolve) => {
            listening.close(resolve);
            listening.closeAllConnections();
          }),
      );
    }
    // Aborted first thing on stop: the billing sweeps take no new item once the process is stopping.
    const stopping = new AbortController();
    if (role !== 'web')
      await startWorkers(boss, db, registry, accounts, config, log, metrics, stopping.signal);

    return {
      db,
      boss,
      registry,
      accounts,
      databaseUrl: database.url,
      inbox,
      url,
      firstAdminKey,
      async stop() {
        stopping.abort();
        const deadline = Date.now() + config.SHUTDOWN_TIMEOUT_SECONDS * 1000;
        if (server && !(await drain(server, deadline)))
          log.warn('shutdown deadline reached: requests still in flight were cut off (not acknowledged)');
        // Every request is answered by now, so no delivery waits for a group commit: the inbox's last
        // transactions have ended when its connections close.
        await inbox?.close();
        await dashboard?.close();
        accounts.stop();
        await metrics.close();
        await boss.stop({ graceful: true, timeout: deadline - Date.now() });
        await db.destroy();
        await database.stop();
      },
    };
  } catch (error) {
    await stopStarted();
    throw error;
  }
}
