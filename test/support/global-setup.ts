import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { loadConfig } from '../../src/config/env.ts';
import { createDb } from '../../src/db/database.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { createBoss, ensureQueues } from '../../src/queue/boss.ts';
import { ADMIN_KEY } from './keys.ts';
import { startSystemPostgres } from './system-postgres.ts';

/**
 * Which PostgreSQL a test project runs on (its config's `provide.postgresServer`): `embedded` (the
 * default, as `npm start` runs), `system` (the machine's PostgreSQL packages, as an operator's own
 * server) or `pgbouncer` (that server through PgBouncer in session mode).
 */
export type PostgresServer = 'embedded' | 'system' | 'pgbouncer';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The server the project's tests run on; set in a project's config, read by this setup. */
    postgresServer: PostgresServer;
    /** URL of the `postgres` database on the test run's PostgreSQL, as its superuser. */
    postgresAdminUrl: string;
    /** URL of the application's database on it, as the application's role (not a superuser). */
    postgresAppUrl: string;
    /** The application's role: the owner of each test file's database. */
    postgresAppRole: string;
    /** The migrated database each test database is cloned from (`prepareTemplate`). */
    postgresTemplate: string;
  }
}

/** The name of the run's template database. */
const TEMPLATE = 'billhook_template';

/**
 * Creates `TEMPLATE` on `server`, owned by the application's role, and brings it where
 * `startRuntime` brings an empty database, with the same calls as the application's role: every
 * migration, pg-boss's schema (its `start`, without maintenance: no cron or supervision state is
 * copied into the clones) and billhook's queues, and the test apps' admin key (`ADMIN_KEY`, as
 * `startRuntime` stores `BILLHOOK_ADMIN_KEY`: salted scrypt), so that a clone's start finds it instead
 * of hashing it again (about 40 ms of CPU per app; a worker verifies it once, then by its cache).
 * Then it is marked a template that takes no connections, and any
 * left (PgBouncer's pooled ones) are ended: `CREATE DATABASE … TEMPLATE` refuses a template with
 * other connections. Connects directly (the admin URL's host and port), never through PgBouncer.
 * @returns its name
 */
async function prepareTemplate(server: EmbeddedDatabase): Promise<string> {
  const admin = new pg.Client(server.adminUrl);
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${TEMPLATE} OWNER ${server.appRole}`);
    const url = new URL(server.url);
    const direct = new URL(server.adminUrl);
    url.host = direct.host;
    url.pathname = `/${TEMPLATE}`;
    const db = createDb(url.toString(), 1);
    try {
      await migrateToLatest(db);
      await createApiKey(db, 'BILLHOOK_ADMIN_KEY', 'admin', ADMIN_KEY);
    } finally {
      await db.destroy();
    }
    const boss = createBoss(url.toString(), { maintenance: false });
    await boss.start();
    try {
      await ensureQueues(boss, loadConfig({ DATABASE_URL: url.toString() }));
    } finally {
      await boss.stop({ graceful: false });
    }
    await admin.query(`ALTER DATABASE ${TEMPLATE} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
    await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [TEMPLATE],
    );
  } finally {
    await admin.end();
  }
  return TEMPLATE;
}

/** A server of the run and its template, as every project's setup on it provides them. */
interface RunServer {
  server: EmbeddedDatabase;
  template: string;
  description?: string;
  /** The projects whose setup took this server and whose teardown has not run yet. */
  users: number;
  stop(): Promise<void>;
}

/**
 * The run's servers by kind, shared by the projects of one run (`npm run test:postgres`'s two
 * projects each take their own kind; a second server of one kind would double the setup and
 * teardown before and after every test runs). Kept on globalThis: vitest may load this module once
 * per project.
 */
const SERVERS_KEY = Symbol.for('billhook.test.servers');
const store = globalThis as unknown as Record<symbol, Map<PostgresServer, Promise<RunServer>> | undefined>;
const servers = store[SERVERS_KEY] ?? new Map<PostgresServer, Promise<RunServer>>();
store[SERVERS_KEY] = servers;

/**
 * Settings of a server of the test run (a throwaway cluster in a temporary directory, never the one a
 * test kills), set through `ALTER SYSTEM` and a configuration reload, as its superuser; the clusters
 * billhook starts itself are untouched:
 * - `fsync` off: a commit still reaches the operating system before it returns, so no test process,
 *   nor a PostgreSQL process, that dies loses it, but no test waits for the disk (about half a
 *   millisecond per commit here, over every commit of the suite);
 * - `full_page_writes` off: it protects pages only against a torn write of the operating system's
 *   crash, and every test file's `CREATE DATABASE` forces a checkpoint, after which each page's first
 *   change would copy the whole page into the WAL;
 * - `autovacuum` off: each test file's database lives seconds, and the launcher visits every database
 *   of the cluster once a minute (`autovacuum_naptime`), each visit a new backend: with 150 small
 *   databases that had seen writes, its workers took 1.8 CPU-seconds every 30 s on this machine
 *   (2026-12-07), about 10 of a run's. No test relies on it; the planner's defaults serve tables this
 *   small.
 */
async function tuneForTests(adminUrl: string): Promise<void> {
  const admin = new pg.Client(adminUrl);
  await admin.connect();
  try {
    await admin.query('ALTER SYSTEM SET fsync = off');
    await admin.query('ALTER SYSTEM SET full_page_writes = off');
    await admin.query('ALTER SYSTEM SET autovacuum = off');
    await admin.query('SELECT pg_reload_conf()');
  } finally {
    await admin.end();
  }
}

/** Free space a memory-backed directory needs for a run's cluster (over 100 databases of ~15 MB). */
const MEMORY_DIR_MIN_BYTES = 4 * 1024 ** 3;

/**
 * Where the run's cluster lives: /dev/shm (memory) when it has room, else the system's temporary
 * directory. On disk, the cluster's ~2 GB of small files (every test file's database) took 28 s to
 * delete after the last test (ext4, load 8), besides every database's copy from the template.
 */
function clusterParent(): string {
  try {
    const fs = statfsSync('/dev/shm');
    if (fs.bavail * fs.bsize >= MEMORY_DIR_MIN_BYTES) return '/dev/shm';
  } catch {
    // No /dev/shm (not Linux): the temporary directory.
  }
  return tmpdir();
}

/** Starts a server of `kind` in a new temporary directory, with its template database. */
async function startRunServer(kind: PostgresServer): Promise<RunServer> {
  const dir = mkdtempSync(path.join(clusterParent(), 'billhook-test-pg-'));
  const system =
    kind === 'embedded' ? undefined : await startSystemPostgres(dir, { pgbouncer: kind === 'pgbouncer' });
  const server = system ?? (await startEmbeddedPostgres(dir));
  await tuneForTests(server.adminUrl);
  return {
    server,
    template: await prepareTemplate(server),
    description: system?.description,
    users: 0,
    async stop() {
      if (kind === 'pgbouncer')
        console.log(`${kind}: ${system?.pooledConnections()} client connections through PgBouncer`);
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts one PostgreSQL per kind for the whole test run (the first project's setup starts it, the
 * others of the same kind share it) and prepares its migrated template database; each test file
 * makes its own databases in it (test/support/database.ts). The last project's teardown stops it.
 */
export default async function setup(project: TestProject) {
  const kind = project.getProvidedContext().postgresServer ?? 'embedded';
  let started = servers.get(kind);
  if (!started) {
    started = startRunServer(kind);
    servers.set(kind, started);
  }
  const run = await started;
  run.users += 1;
  if (run.description) console.log(`${project.name}: ${run.description}`);
  project.provide('postgresAdminUrl', run.server.adminUrl);
  project.provide('postgresAppUrl', run.server.url);
  project.provide('postgresAppRole', run.server.appRole);
  project.provide('postgresTemplate', run.template);
  return async () => {
    run.users -= 1;
    if (run.users > 0) return;
    servers.delete(kind);
    await run.stop();
  };
}
