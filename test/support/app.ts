import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { type Config, loadConfig } from '../../src/config/env.ts';
import { createLogger } from '../../src/logger.ts';
import { type Role, type Runtime, startRuntime } from '../../src/runtime.ts';
import { type ResponseValidator, servedValidator } from './contract.ts';
import { createTestDatabase } from './database.ts';
import { ADMIN_KEY } from './keys.ts';
import { ANSWERED_CALL_TIMEOUT_MS } from './timeouts.ts';
import { wakeWhileWaiting } from './wait.ts';

export { ADMIN_KEY };

export const STRIPE_WEBHOOK_SECRET = 'whsec_test_secret_current';
export const STRIPE_API_BASE = 'https://stripe.test';

/**
 * A test app's `QUEUE_POLL_INTERVAL_SECONDS`: its workers fetch when a NOTIFY or a waiting test
 * (`waitFor`) wakes them, or at the latest every this many seconds.
 */
export const TEST_POLL_INTERVAL_SECONDS = 60;

/** A running billhook for a test: real PostgreSQL, real HTTP on an ephemeral port, real pg-boss. */
export interface TestApp {
  runtime: Runtime;
  config: Config;
  url: string;
  /** Every log line the app wrote, parsed. */
  logs: Record<string, unknown>[];
  /**
   * Calls the /v1 API with the admin key (or `key`), JSON in and out. Every answer of a documented
   * operation is checked against the served `/openapi.json`: an undocumented status, or a body its
   * schema does not describe exactly, throws (failing the test that made the request).
   */
  api(method: string, path: string, body?: unknown, key?: string): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

/**
 * Starts billhook on a fresh database (or `env.DATABASE_URL`'s) with Stripe configured (webhook
 * secret, API key, API base `https://stripe.test` for nock), fast webhook retries and gateway calls
 * timing out after `ANSWERED_CALL_TIMEOUT_MS`, and workers polling every 60 s (a NOTIFY or a waiting
 * test wakes them: support/wait.ts). `env` overrides any variable.
 */
export async function startTestApp(
  env: Record<string, string | undefined> = {},
  role: Role = 'all',
): Promise<TestApp> {
  const config = loadConfig({
    DATABASE_URL: env.DATABASE_URL ?? (await createTestDatabase()),
    PORT: '0',
    LOG_LEVEL: 'debug',
    BILLHOOK_ADMIN_KEY: ADMIN_KEY,
    STRIPE_SECRET_KEY: 'sk_test_billhook',
    STRIPE_WEBHOOK_SECRET,
    STRIPE_API_BASE,
    WEBHOOK_RETRY_LIMIT: '2',
    WEBHOOK_RETRY_DELAY_SECONDS: '1',
    GATEWAY_TIMEOUT_MS: String(ANSWERED_CALL_TIMEOUT_MS),
    // Tests drive the billing sweeps with a simulated clock; the real-time cron stays off.
    BILLING_SWEEPS: '0',
    // Two of pg-boss's connections (the fewest it takes) instead of ten: a test app's pollers start at
    // once, and each new connection costs PostgreSQL 25–50 ms of CPU to open and warm (measured
    // 2026-12-07: five connections and about 250 ms of PostgreSQL's CPU an app with three).
    QUEUE_POOL_SIZE: '2',
    // The API's rate limit (600 requests a minute per key by default) has tests of its own
    // (test/http/api.test.ts sets one); a file's scenarios through one key may pass 600 a minute on a
    // fast machine, so a test's outcome never depends on how fast the machine is.
    API_RATE_LIMIT_PER_MINUTE: '1000000',
    // Workers fetch every 60 s at most instead of 13 times a second (webhook.process's eight
    // workers and webhook-endpoint.deliver's four each second, the sweeps every 5 s): an idle test
    // app's second cost about 0.033 CPU-s, 0.021 now (issue #23 item 7, 2026-12-08). A new job wakes
    // its worker by NOTIFY; one that comes due by time (a retry, a delayed job, a cron's sweep) is
    // fetched while a test waits for it (`waitFor` wakes the queues with a job due, support/wait.ts).
    QUEUE_POLL_INTERVAL_SECONDS: String(TEST_POLL_INTERVAL_SECONDS),
    ...env,
  });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
      done();
    },
  });
  const runtime = await startRuntime(config, role, createLogger(config.LOG_LEVEL, sink));
  const db = runtime.db;
  const stopWaking =
    role === 'web'
      ? () => undefined
      : wakeWhileWaiting({
          boss: runtime.boss,
          due: async () =>
            (
              await sql<{ name: string }>`
                SELECT DISTINCT name FROM pgboss.job
                WHERE state < 'active' AND start_after <= pgboss.job_now()
              `.execute(db)
            ).rows.map((row) => row.name),
        });
  const url = runtime.url ?? '';
  let validator: Promise<ResponseValidator> | undefined;
  const served = () => {
    validator ??= fetch(`${url}/openapi.json`)
      .then((response) => response.text())
      .then(servedValidator);
    return validator;
  };
  return {
    runtime,
    config,
    url,
    logs,
    async api(method, path, body, key = ADMIN_KEY) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      const answer = { status: response.status, body: text ? JSON.parse(text) : undefined };
      const problem = (await served()).check(method, path, answer.status, answer.body);
      if (problem) throw new Error(`answer not as documented: ${problem}`);
      return answer;
    },
    stop: () => {
      stopWaking();
      return runtime.stop();
    },
  };
}
