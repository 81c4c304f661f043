import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the `postgres` database on the test run's embedded PostgreSQL. */
    postgresUrl: string;
  }
}

/** Starts one embedded PostgreSQL for the whole test run; each test file makes its own database in it. */
export default async function setup(project: TestProject) {
  const dir = mkdtempSync(path.join(tmpdir(), 'billhook-test-pg-'));
  const server = await startEmbeddedPostgres(dir);
  project.provide('postgresUrl', server.url);
  return async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
