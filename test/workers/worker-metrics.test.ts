import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

/** A worker-role process with METRICS_PORT serves its own /metrics and health, and nothing else. */
describe('worker metrics (METRICS_PORT)', () => {
  let worker: TestApp;
  beforeAll(async () => {
    worker = await startTestApp({ METRICS_PORT: '0' }, 'worker');
  });
  afterAll(() => worker.stop());

  it('serves /metrics, /healthz and /readyz on METRICS_PORT, and no API or webhooks', async () => {
    expect(worker.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const metrics = await fetch(`${worker.url}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toContain('# TYPE billhook_job_failures_total counter');
    expect(text).toMatch(/billhook_queue_depth\{queue="webhook.process"\} \d+/);
    expect((await fetch(`${worker.url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${worker.url}/readyz`)).json()).toEqual({ status: 'ready' });
    expect((await fetch(`${worker.url}/v1/events`)).status).toBe(404);
    expect((await fetch(`${worker.url}/webhooks/stripe`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect(worker.runtime.inbox).toBeUndefined();
  });

  it('reads the queue counts once per scrape for both queue gauges', async () => {
    const getQueues = vi.spyOn(worker.runtime.boss, 'getQueues');
    try {
      const text = await (await fetch(`${worker.url}/metrics`)).text();
      expect(text).toMatch(/billhook_queue_depth\{queue="invoice.refund"\} \d+/);
      expect(text).toMatch(/billhook_jobs_failed\{queue="invoice.refund"\} \d+/);
      expect(text).toMatch(/billhook_queue_depth\{queue="refund.recover"\} \d+/);
      expect(getQueues).toHaveBeenCalledTimes(1);
    } finally {
      getQueues.mockRestore();
    }
  });
});
