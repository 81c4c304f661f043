import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inbox } from '../../src/inbox/receive.ts';
import { retryDelaySeconds } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/wait.ts';

describe('retryDelaySeconds', () => {
  it('doubles from the base, adds at most 20% jitter, and stops at an hour', () => {
    expect([0, 1, 2, 3].map((attempt) => retryDelaySeconds(5, attempt, () => 0))).toEqual([5, 10, 20, 40]);
    expect(retryDelaySeconds(5, 2, () => 0.999)).toBe(24);
    expect(retryDelaySeconds(5, 30, () => 0)).toBe(3600);
    expect(retryDelaySeconds(1, 0, () => 0)).toBe(1);
  });
});

describe('webhook.process dead letters', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ WEBHOOK_RETRY_LIMIT: '1', WEBHOOK_RETRY_DELAY_SECONDS: '1' });
  });
  afterAll(() => app.stop());

  it('retries a row that cannot be processed with backoff, then moves it to the dead-letter queue', async () => {
    // A stored PayPal delivery on a server where PayPal is not configured cannot be normalised.
    const receipt = await new Inbox(app.runtime.db, app.runtime.boss).receive({
      gateway: 'paypal',
      eventId: 'WH-dead-letter',
      eventType: 'PAYMENT.CAPTURE.COMPLETED',
      body: '{}',
    });
    const dead = await waitFor('the dead letter', async () => {
      const rows = await sql<{ data: { inboxIds: string[]; errors: { error: string }[] } }>`
        SELECT data FROM pgboss.job WHERE name = 'webhook.process.dead'`.execute(app.runtime.db);
      return rows.rows[0];
    });
    expect(dead.data.inboxIds).toEqual([receipt.id]);
    expect(dead.data.errors[0]?.error).toMatch(/gateway paypal is not configured/);
    const attempts = await sql<{ attempt: number | null }>`
      SELECT (data->>'attempt')::int AS attempt FROM pgboss.job WHERE name = 'webhook.process' ORDER BY created_on`.execute(
      app.runtime.db,
    );
    expect(attempts.rows.map((r) => r.attempt)).toEqual([null, 1]);
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(/billhook_job_failures_total\{queue="webhook.process"\} 1/);
  });
});
