import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/db/ids.ts';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app.ts';
import { waitFor, wakeWorkers } from '../support/wait.ts';

/** The value of the sample `series` (name and labels exactly as exported) in `text`, if any. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const scrape = async (app: TestApp): Promise<string> => (await fetch(`${app.url}/metrics`)).text();

/**
 * /metrics over real HTTP (PRODUCT.md §14, issue #26 item 7): counters at zero before any traffic,
 * the /v1 request histogram by route pattern, and the database-derived gauges read from a real
 * database and real pg-boss jobs, exported by one process at a time.
 */
describe('Prometheus metrics', () => {
  let app: TestApp;
  let stopped = false;
  beforeAll(async () => {
    // Stripe is configured (startTestApp's default), and PayPal's webhooks: two configured gateways.
    app = await startTestApp({
      PAYPAL_WEBHOOK_ID: 'WH-METRICS',
      PAYPAL_CLIENT_ID: 'id',
      PAYPAL_CLIENT_SECRET: 's',
      // The job gauges read pg-boss's counts from its maintenance pass (every 10 s by default).
      QUEUE_MAINTENANCE_INTERVAL_SECONDS: '1',
    });
  });
  afterAll(async () => {
    if (!stopped) await app.stop();
  });

  it("exports every configured gateway's and queue's counters at zero before any traffic", async () => {
    const text = await scrape(app);
    for (const gateway of ['stripe', 'paypal']) {
      const labels = `gateway="${gateway}",account="default"`;
      expect(sample(text, `billhook_webhooks_received_total{${labels},duplicate="false"}`)).toBe(0);
      expect(sample(text, `billhook_webhooks_received_total{${labels},duplicate="true"}`)).toBe(0);
      for (const reason of ['signature', 'payload', 'too_large', 'unavailable', 'busy', 'rate_limited']) {
        expect(sample(text, `billhook_webhooks_rejected_total{${labels},reason="${reason}"}`)).toBe(0);
      }
      expect(sample(text, `billhook_webhook_ack_seconds_count{${labels}}`)).toBe(0);
    }
    // A gateway without credentials has no series.
    expect(text).not.toContain('gateway="securepay"');
    for (const queue of ['webhook.process', 'invoice.refund', 'settlement.sync']) {
      expect(sample(text, `billhook_job_failures_total{queue="${queue}"}`)).toBe(0);
    }
  });

  it('times /v1 requests by method, route pattern and status; an id never becomes a label', async () => {
    const customer = await app.api('POST', '/v1/customers', { email: 'metrics@example.com' });
    expect(customer.status).toBe(201);
    expect((await app.api('GET', `/v1/customers/${customer.body.id}`)).status).toBe(200);
    expect((await app.api('GET', '/v1/invoices/inv_metrics_missing')).status).toBe(404);
    expect((await app.api('GET', '/v1/invoices/inv_metrics_missing_too')).status).toBe(404);
    expect((await app.api('GET', '/v1/no-such-route/inv_metrics_path')).status).toBe(404);
    expect((await app.api('GET', '/v1/customers', undefined, 'bh_not_a_key')).status).toBe(401);
    // The same create twice with one Idempotency-Key: the second is answered before routing (a replay).
    const create = () =>
      fetch(`${app.url}/v1/customers`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${ADMIN_KEY}`,
          'content-type': 'application/json',
          'idempotency-key': 'metrics-replay',
        },
        body: JSON.stringify({ email: 'replayed@example.com' }),
      });
    expect((await create()).status).toBe(201);
    const replay = await create();
    expect(replay.headers.get('idempotent-replayed')).toBe('true');

    const text = await scrape(app);
    const count = (labels: string) => sample(text, `billhook_api_request_seconds_count{${labels}}`);
    expect(count('method="POST",route="/v1/customers",status="201"')).toBe(2);
    expect(count(`method="POST",route="unmatched",status="${replay.status}"`)).toBe(1);
    expect(count('method="GET",route="/v1/customers/:id",status="200"')).toBe(1);
    expect(count('method="GET",route="/v1/invoices/:id",status="404"')).toBe(2);
    expect(count('method="GET",route="unmatched",status="404"')).toBe(1);
    expect(count('method="GET",route="unmatched",status="401"')).toBe(1);
    expect(text).toContain(
      'billhook_api_request_seconds_bucket{le="+Inf",method="GET",route="/v1/invoices/:id",status="404"} 2',
    );
    for (const id of [customer.body.id, 'inv_metrics_missing', 'inv_metrics_path', 'no-such-route']) {
      expect(text).not.toContain(id);
    }
  });

  it('exports the database gauges and job counts by state from real rows and pg-boss jobs', async () => {
    const { db, boss } = app.runtime;
    // Two stored webhooks waiting (received, retrying), stored 30 s ago, and one open exception.
    for (const [status, id] of [
      ['received', 'evt_metrics_received'],
      ['retrying', 'evt_metrics_retrying'],
    ] as const) {
      await sql`
        INSERT INTO inbox (id, gateway, gateway_event_id, event_type, body, status, received_at)
        VALUES (${id}, 'stripe', ${`${id}_gw`}, 'charge.succeeded', '{}', ${status}, now() - interval '30 seconds')
      `.execute(db);
    }
    await db
      .insertInto('reconciliation_exceptions')
      .values({ id: newId('rex'), kind: 'amount_mismatch', gateway: 'stripe', message: 'metrics test' })
      .execute();
    // invoice.refund: a job deferred an hour (waiting, not ready), and one whose data is not valid and
    // has no retry left: it fails and is dead-lettered to invoice.refund.dead.
    await boss.send('invoice.refund', { refundId: 'ref_metrics_later' }, { startAfter: 3600 });
    await boss.send('invoice.refund', { refundId: 'bogus' }, { retryLimit: 0 });
    wakeWorkers(boss, 'invoice.refund');

    // pg-boss refreshes its queue counts at each maintenance pass (every second here): wait for them.
    const text = await waitFor('the refund jobs in /metrics', async () => {
      const scraped = await scrape(app);
      return sample(scraped, 'billhook_jobs{queue="invoice.refund",state="failed"}') === 1 &&
        sample(scraped, 'billhook_dead_letters{queue="invoice.refund"}') === 1
        ? scraped
        : undefined;
    });
    expect(sample(text, 'billhook_database_gauges_exporter')).toBe(1);
    expect(sample(text, 'billhook_jobs{queue="invoice.refund",state="deferred"}')).toBe(1);
    expect(sample(text, 'billhook_jobs{queue="invoice.refund",state="ready"}')).toBe(0);
    expect(sample(text, 'billhook_jobs{queue="invoice.refund",state="active"}')).toBe(0);
    expect(sample(text, 'billhook_jobs{queue="invoice.refund.dead",state="ready"}')).toBe(1);
    expect(sample(text, 'billhook_dead_letters{queue="webhook.process"}')).toBe(0);
    expect(sample(text, 'billhook_queue_depth{queue="invoice.refund"}')).toBe(1);
    expect(sample(text, 'billhook_jobs_failed{queue="invoice.refund"}')).toBe(1);
    // The deferred job waits since it was sent; no job waits in settlement.sync.
    const oldest = sample(text, 'billhook_job_oldest_waiting_seconds{queue="invoice.refund"}');
    expect(oldest).toBeGreaterThan(0);
    expect(oldest).toBeLessThan(600);
    expect(sample(text, 'billhook_job_oldest_waiting_seconds{queue="settlement.sync"}')).toBe(0);
    expect(sample(text, 'billhook_inbox_waiting{status="received"}')).toBe(1);
    expect(sample(text, 'billhook_inbox_waiting{status="retrying"}')).toBe(1);
    expect(sample(text, 'billhook_reconciliation_lag_seconds')).toBeGreaterThanOrEqual(30);
    expect(sample(text, 'billhook_reconciliation_exceptions_open')).toBe(1);
  });

  it('has one process export the database gauges; another takes over when it stops', async () => {
    const other = await startTestApp({ DATABASE_URL: app.runtime.databaseUrl, METRICS_PORT: '0' }, 'worker');
    try {
      const text = await scrape(other);
      expect(sample(text, 'billhook_database_gauges_exporter')).toBe(0);
      expect(text).not.toMatch(/^billhook_jobs\{/m);
      expect(text).not.toMatch(/^billhook_inbox_waiting\{/m);
      expect(sample(text, 'billhook_reconciliation_exceptions_open')).toBe(0);
      // Its own counters are there, at zero.
      expect(sample(text, 'billhook_job_failures_total{queue="invoice.refund"}')).toBe(0);

      stopped = true;
      await app.stop();
      await waitFor('the other process to export the database gauges', async () =>
        sample(await scrape(other), 'billhook_database_gauges_exporter') === 1 ? true : undefined,
      );
      const taken = await scrape(other);
      expect(sample(taken, 'billhook_reconciliation_exceptions_open')).toBe(1);
      expect(sample(taken, 'billhook_inbox_waiting{status="received"}')).toBe(1);
    } finally {
      await other.stop();
    }
  });
});
