import { globSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * One known race between nock's interceptor (@mswjs/interceptors 0.44) and Node's bundled undici,
 * outside billhook: the interceptor fakes the TLS handshake without emitting 'secure', so a mocked
 * reply without Content-Length that ends the stream makes Node's TLS socket destroy itself with
 * ECONNRESET; the interceptor emits that 'error' in a microtask, and when the socket's 'close' (a
 * nextTick) runs first, undici's onHttpSocketError reads the parser it already released. By then the
 * response has been delivered (or the request failed and its test with it), so the error carries
 * nothing about the code under test. Anything else unhandled still fails the run.
 */
function isMockedTlsCloseRace(error: { message?: string; stack?: string }): boolean {
  return (
    error.message === "Cannot read properties of null (reading 'statusCode')" &&
    (error.stack ?? '').includes('onHttpSocketError') &&
    (error.stack ?? '').includes('@mswjs/interceptors')
  );
}

/** The suite's global setup (one PostgreSQL and its template database; per project in test:postgres). */
export const GLOBAL_SETUP = ['test/support/global-setup.ts'];

/** Whether `file` sizes its cases or load by the run's depth (imports test/support/depth.ts). */
function usesDepth(file: string): boolean {
  return /from '\.\.\/support\/depth\.ts'/.test(
    readFileSync(path.resolve(import.meta.dirname, file), 'utf8'),
  );
}

/**
 * Every test file; with `TEST_DEPTH=deep` (`npm run test:deep`) only those that size their cases or
 * load by the depth (test/support/depth.ts): the others run the same at any depth, in `npm test`.
 */
const TEST_FILES = globSync('test/**/*.test.ts', { cwd: import.meta.dirname }).filter(
  (file) => process.env.TEST_DEPTH !== 'deep' || usesDepth(file),
);

export default defineConfig({
  test: {
    include: TEST_FILES,
    // Issue #23 item 7: files share their worker's modules (`isolate: false`), which saves each file
    // a fresh process and a fresh import of billhook (over half of a short file's time). Each file
    // starts and stops its own app, database and nock interceptors (test/support/nock-per-file.ts:
    // nock's interceptor is on only while a file that uses it runs).
    isolate: false,
    globalSetup: GLOBAL_SETUP,
    setupFiles: ['test/support/nock-per-file.ts'],
    // Generous, for a machine whose cores are busy with other work (issue #22 item 14): a test that
    // passes never waits for these, and one that does real work may take several times as long. At
    // full depth a race test runs up to 40 rounds (test/support/depth.ts): 122 s for 30 rounds of
    // credit-refund-cancel with six other test runs on the two cores (2026-12-08), so five times more.
    testTimeout: process.env.TEST_DEPTH === 'deep' ? 600_000 : 120_000,
    hookTimeout: 180_000,
    // Three files at a time on the two cores: the suite spends a quarter of its time waiting (child
    // processes starting, gateways' timeouts, pg-boss's passes), which a third file fills. Measured
    // idle (2026-12-06): 2 workers 282 s, 3 workers 240 s, 4 workers 253 s (more CPU in contention).
    maxWorkers: 3,
    reporters: ['default'],
    onUnhandledError: (error) => !isMockedTlsCloseRace(error),
  },
});
