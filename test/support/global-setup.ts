import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
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
  }
}

/** Starts one PostgreSQL for the whole test run; each test file makes its own database in it. */
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
  return async () => {
    if (kind === 'pgbouncer')
      console.log(`${project.name}: ${system?.pooledConnections()} client connections through PgBouncer`);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
