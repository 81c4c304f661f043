import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the `postgres` database on the test run's embedded PostgreSQL, as its superuser. */
    postgresAdminUrl: string;
    /** URL of the application's database on it, as the application's role (not a superuser). */
    postgresAppUrl: string;
    /** The application's role: the owner of each test file's database. */
    postgresAppRole: string;
  }
}

/** Starts one embedded PostgreSQL for the whole test run; each test file makes its own database in it. */
export default async function setup(project: TestProject) {
  const dir = mkdtempSync(path.join(tmpdir(), 'billhook-test-pg-'));
  const server = await startEmbeddedPostgres(dir);
  project.provide('postgresAdminUrl', server.adminUrl);
  project.provide('postgresAppUrl', server.url);
  project.provide('postgresAppRole', server.appRole);
  return async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
