import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { FileMigrationProvider, Migrator } from 'kysely/migration';
import pg from 'pg';
import { expect, inject } from 'vitest';
import { createDb, type Db } from '../../src/db/database.ts';

/** What `createTestDatabase` makes. */
export interface TestDatabaseOptions {
  /**
   * An empty database, as an operator's first start or `billhook migrate` finds one (for tests of
   * migrations and upgrades); by default a clone of the run's template, already migrated to the
   * latest with pg-boss's schema and billhook's queues (test/support/global-setup.ts).
   */
  empty?: boolean;
  /** Database settings, e.g. `{ deadlock_timeout: '10s' }`, set by the superuser (some are its only). */
  settings?: Record<string, string>;
}

/**
 * One superuser connection per admin URL for the worker's life: its files share the worker's modules
 * (vitest.config.ts `isolate: false`), so each file's `createTestDatabase` reuses it instead of
 * opening one (a new PostgreSQL backend costs about 25 ms of CPU on the reference machine, once per
 * file). A connection that fails is dropped and the next call opens another.
 */
const adminClients = new Map<string, Promise<pg.Client>>();

/** The worker's open connection to `adminUrl` (opened on first use). */
function adminClient(adminUrl: string): Promise<pg.Client> {
  let client = adminClients.get(adminUrl);
  if (!client) {
    client = (async () => {
      const opened = new pg.Client(adminUrl);
      opened.on('error', () => adminClients.delete(adminUrl));
      await opened.connect();
      return opened;
    })();
    client.catch(() => adminClients.delete(adminUrl));
    adminClients.set(adminUrl, client);
  }
  return client;
}

/**
 * Creates a database on the test run's PostgreSQL, owned by the application's role (not a superuser,
 * as billhook runs): a clone of the run's migrated template, or an empty one with `empty`. Created
 * through the admin URL, which is direct even when the app's URL goes through PgBouncer. Copied with
 * `STRATEGY FILE_COPY` (the template's files, not each block through the WAL): 85–115 ms a clone
 * instead of 150–350 ms on the shared machine, once per test file.
 * @returns its `postgres://` URL, as the application's role
 */
export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<string> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const template = options.empty ? '' : ` TEMPLATE ${inject('postgresTemplate')}`;
  const client = await adminClient(inject('postgresAdminUrl'));
  await client.query(
    `CREATE DATABASE ${name}${template} STRATEGY FILE_COPY OWNER ${inject('postgresAppRole')}`,
  );
  for (const [setting, value] of Object.entries(options.settings ?? {}))
    await client.query(`ALTER DATABASE ${name} SET ${setting} = ${client.escapeLiteral(value)}`);
  const url = new URL(inject('postgresAppUrl'));
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * A database of its own migrated up to migration `name` only (e.g. `0023_idempotency_key_expiry`), as
 * an older billhook left it: for tests of the migrations that follow. Destroy it in `afterAll`.
 * @throws the migration's error when one up to `name` fails
 */
export async function databaseAtMigration(name: string): Promise<Db> {
  const db = createDb(await createTestDatabase({ empty: true }), 2);
  const migrator = new Migrator({
    db,
    provider: new FileMigrationProvider({
      fs,
      path,
      migrationFolder: path.resolve(import.meta.dirname, '../../migrations'),
    }),
  });
  const { error } = await migrator.migrateTo(name);
  if (error) throw error;
  return db;
}

/**
 * Asserts the books balance in `currency` (the postings of every entry sum to 0 minor units) and that
 * PostgreSQL aborted no transaction of `db`'s database as a deadlock (pg_stat_database counts the
 * 40P01 aborts): what a race test checks once its racers are done.
 */
export async function balancedWithoutDeadlocks(db: Db, currency: string): Promise<void> {
  const total = await db
    .selectFrom('postings')
    .select(sql<string>`coalesce(sum(amount), 0)::text`.as('sum'))
    .where('currency', '=', currency)
    .executeTakeFirstOrThrow();
  expect(total.sum).toBe('0');
  const { rows } = await sql<{ deadlocks: string }>`
    SELECT deadlocks::text FROM pg_stat_database WHERE datname = current_database()
  `.execute(db);
  expect(rows[0]?.deadlocks).toBe('0');
}
