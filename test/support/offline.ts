import nock from 'nock';
import { startTestApp, type TestApp } from './app.ts';
import { HANGING_CALL_TIMEOUT_MS } from './timeouts.ts';

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

/**
 * A second billhook, role `web`, on `app`'s database and with `env` (the gateway settings `app` was
 * started with), whose gateway calls time out after `timeoutMs`. Send it only the API request whose
 * gateway call never gets an answer: `app` keeps the long timeout for every answered call (its
 * workers' repeats and status checks included), so none races a short timer on a busy machine.
 * Stop it with its `stop()`.
 */
export function startHangingWeb(
  app: TestApp,
  env: Record<string, string | undefined> = {},
  timeoutMs = HANGING_CALL_TIMEOUT_MS,
): Promise<TestApp> {
  return startTestApp(
    { ...env, DATABASE_URL: app.config.DATABASE_URL, GATEWAY_TIMEOUT_MS: String(timeoutMs) },
    'web',
  );
}
