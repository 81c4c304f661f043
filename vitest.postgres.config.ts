import { defineConfig } from 'vitest/config';
import suite, { GLOBAL_SETUP } from './vitest.config.ts';

/**
 * `npm run test:postgres`: the Stripe end-to-end flows, the crash test and the two-web-two-worker
 * test on a standard PostgreSQL server (the machine's packages: Debian 12's PostgreSQL 15, the oldest
 * major version billhook supports), first directly, then through PgBouncer in session mode. The
 * projects run one after the other (`groupOrder`), each with its own server (test/support/global-setup.ts).
 */
const files = [
  'test/e2e/stripe-*.test.ts',
  'test/chaos/crash.test.ts',
  'test/scale/two-web-two-worker.test.ts',
];
// The suite's settings (timeouts, unhandled-error filter, nock per file) without its files, shared
// modules and global setup: these projects run the files here, each with its own server.
const { include: _files, isolate: _shared, globalSetup: _setup, ...settings } = suite.test ?? {};

export default defineConfig({
  test: {
    ...settings,
    // One file at a time: the crash and scale tests each run several billhook processes and a
    // database (and PgBouncer) on the machine's two cores; side by side they starve each other.
    maxWorkers: 1,
    // The projects' groupOrder starts at 1: with one worker, vitest runs group 0's files last.
    projects: [
      {
        extends: true,
        test: {
          name: 'postgres',
          include: files,
          globalSetup: GLOBAL_SETUP,
          provide: { postgresServer: 'system' },
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: 'pgbouncer',
          include: files,
          globalSetup: GLOBAL_SETUP,
          provide: { postgresServer: 'pgbouncer' },
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
