import nock from 'nock';
import { startTestApp, type TestApp } from './app.ts';

// Importing nock activates its interceptor in the importing test file's worker, so it lives here,
// not in app.ts: suites that send raw (even malformed) bodies to the local server stay untouched.

/**
 * `startTestApp` with outgoing HTTP cut off except to this machine: gateways answer only through
 * nock's fakes. Stop it with `stopOfflineTestApp`.
 */
export async function startOfflineTestApp(env: Record<string, string | undefined> = {}): Promise<TestApp> {
  nock.disableNetConnect();
  nock.enableNetConnect(/127\.0\.0\.1|localhost/);
  return startTestApp(env);
}

/** Stops an app of `startOfflineTestApp` and lets outgoing HTTP through again. */
export async function stopOfflineTestApp(app: TestApp): Promise<void> {
  await app.stop();
  nock.enableNetConnect();
}
