import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../src/config/env.ts';
import { createDb } from '../../src/db/database.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { createBoss, ensureQueues } from '../../src/queue/boss.ts';
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
 * copied into the clones) and billhook's queues. No API key is created (a clone's first start does
 * what a fresh database's does). Then it is marked a template that takes no connections, and any
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

/**
 * Starts one PostgreSQL for the whole test run and prepares its migrated template database; each
 * test file makes its own databases in it (test/support/database.ts).
 */
export default async function setup(project: TestProject) {
  const kind = project.getProvidedContext().postgresServer ?? 'embedded';
  const dir = mkdtempSync(path.join(tmpdir(), 'billhook-test-pg-'));
  const system =
    kind === 'embedded' ? undefined : await startSystemPostgres(dir, { pgbouncer: kind === 'pgbouncer' });
  const server = system ?? (await startEmbeddedPostgres(dir));
  if (system) console.log(`${project.name}: ${system.description}`);
  project.provide('postgresAdminUrl', server.adminUrl);
  project.provide('postgresAppUrl', server.url);
  project.provide('postgresAppRole', server.appRole);
  project.provide('postgresTemplate', await prepareTemplate(server));
  return async () => {
    if (kind === 'pgbouncer')
      console.log(`${project.name}: ${system?.pooledConnections()} client connections through PgBouncer`);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
