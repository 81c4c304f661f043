import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { deadQueueOf, QUEUES } from '../../src/queue/queues.ts';
import { retryDeadLetter } from '../../src/workers/dead-letters.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { waitFor, wakeWorkers } from '../support/wait.ts';

/** One request the receiver got. */
interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * PRODUCT.md §14 (issue #26 item 6): billhook's own events pushed to registered endpoints, signed
 * like Stripe's, through real pg-boss to a real local HTTP receiver, verified with stripe-node.
 */
describe('/v1/webhook-endpoints and outbound events', () => {
  let app: TestApp;
  let receiver: Server;
  let base: string;
  const received: Received[] = [];
  /** Statuses the receiver answers next, per path (then 200). */
  const answers = new Map<string, number[]>();

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const path = req.url ?? '';
        received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.statusCode = answers.get(path)?.shift() ?? 200;
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    app = await startTestApp({
      BILLHOOK_SECRET_KEY: randomBytes(32).toString('base64'),
      WEBHOOK_ENDPOINT_RETRY_DELAY_SECONDS: '1',
    });
  });
  afterAll(async () => {
    await app.stop();
    await new Promise((resolve) => receiver.close(resolve));
  });

  const at = (path: string) => received.filter((r) => r.path === path);

  async function register(path: string, events: string[] = ['invoice.paid']) {
    const created = await app.api('POST', '/v1/webhook-endpoints', {
      url: `${base}${path}`,
      enabled_events: events,
    });
    expect(created.status).toBe(201);
    return created.body as { id: string; secret: string };
  }

  /** An invoice created, finalized and paid in full by an offline payment, over the API. */
  async function payInvoice(): Promise<string> {
    const customer = await app.api('POST', '/v1/customers', { email: 'ada@example.com', name: 'Ada' });
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.body.id,
      currency: 'eur',
      lines: [{ description: 'Pro plan', amount: 4620, quantity: 1 }],
    });
    expect((await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`)).body.status).toBe('OPEN');
    const paid = await app.api('POST', `/v1/invoices/${draft.body.id}/payments`, {
      amount: 4620,
      method: 'BANK',
    });
    expect(paid.status).toBeLessThan(300);
    return draft.body.id;
  }

  /** Runs the dispatcher now (its worker, woken), as its every-minute schedule would. */
  async function dispatch(): Promise<void> {
    await app.runtime.boss.send(QUEUES.webhookEndpointDispatch, {});
    wakeWorkers(app.runtime.boss, QUEUES.webhookEndpointDispatch);
  }

  const deliveries = async (endpoint: string) =>
    (await app.api('GET', `/v1/webhook-endpoints/${endpoint}/deliveries`)).body.data as Record<
      string,
      unknown
    >[];

  it('registers an endpoint, showing its whsec_ secret once; refuses unknown event types and bad URLs with 422', async () => {
    const endpoint = await register('/shape');
    expect(endpoint).toMatchObject({
      object: 'webhook_endpoint',
      status: 'enabled',
      enabled_events: ['invoice.paid'],
    });
    expect(endpoint.secret).toMatch(/^whsec_[0-9a-f]{64}$/);
    const read = await app.api('GET', `/v1/webhook-endpoints/${endpoint.id}`);
    expect(read.status).toBe(200);
    expect(read.body).not.toHaveProperty('secret');
    const listed = await app.api('GET', '/v1/webhook-endpoints');
    expect(listed.body.data.map((e: { id: string }) => e.id)).toContain(endpoint.id);
    const stored = await app.runtime.db
      .selectFrom('webhook_endpoints')
      .select('secret')
      .where('id', '=', endpoint.id)
      .executeTakeFirstOrThrow();
    expect(stored.secret.toString('latin1')).not.toContain(endpoint.secret);

    const unknownType = await app.api('POST', '/v1/webhook-endpoints', {
      url: `${base}/x`,
      enabled_events: ['invoice.paid', 'charge.exploded'],
    });
    expect(unknownType.status).toBe(422);
    expect(unknownType.body.error.fields).toHaveProperty(['enabled_events.1']);
    const badUrl = await app.api('POST', '/v1/webhook-endpoints', {
      url: 'ftp://x',
      enabled_events: ['invoice.paid'],
    });
    expect(badUrl.status).toBe(422);
    expect(badUrl.body.error.fields).toHaveProperty('url');
    const badUpdate = await app.api('POST', `/v1/webhook-endpoints/${endpoint.id}`, {
      enabled_events: ['nope'],
    });
    expect(badUpdate.status).toBe(422);
    const updated = await app.api('POST', `/v1/webhook-endpoints/${endpoint.id}`, {
      enabled_events: ['invoice.paid', 'refund.succeeded'],
      description: 'finance',
    });
    expect(updated.body).toMatchObject({
      enabled_events: ['invoice.paid', 'refund.succeeded'],
      description: 'finance',
    });
    expect((await app.api('POST', `/v1/webhook-endpoints/${endpoint.id}/disable`)).body.status).toBe(
      'disabled',
    );
    const missing = await app.api('GET', '/v1/webhook-endpoints/we_missing/deliveries');
    expect(missing.status).toBe(404);
  });

  it('delivers invoice.paid, paid over the API, signed so that stripe-node verifies it; the log shows the attempt', async () => {
    const endpoint = await register('/paid');
    const invoice = await payInvoice();
    await dispatch();
    const [delivery] = await waitFor('the delivery', async () => at('/paid').length > 0 && at('/paid'));
    const header = delivery?.headers['billhook-signature'];
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    const event = Stripe.webhooks.constructEvent(delivery?.body ?? '', String(header), endpoint.secret);
    expect(event).toMatchObject({
      object: 'event',
      type: 'invoice.paid',
      data: { object: { id: invoice, object: 'invoice' } },
    });
    expect(event.id).toMatch(/^evt_/);
    expect(() =>
      Stripe.webhooks.constructEvent(delivery?.body ?? '', String(header), 'whsec_wrong'),
    ).toThrow();
    const log = await waitFor('the delivery recorded', async () => {
      const rows = await deliveries(endpoint.id);
      return rows[0]?.status === 'succeeded' && rows;
    });
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({
      event: event.id,
      event_type: 'invoice.paid',
      attempts: 1,
      last_status_code: 200,
    });
    expect(log[0]?.delivered_at).not.toBeNull();
    // The same activity is never dispatched twice.
    await dispatch();
    await payInvoice();
    await dispatch();
    await waitFor('the second invoice', async () => at('/paid').length === 2);
    const ids = at('/paid').map((r) => JSON.parse(r.body).id);
    expect(new Set(ids).size).toBe(2);
  });

  it('retries a delivery the receiver answers 500, until it answers 200; each attempt is logged', async () => {
    const endpoint = await register('/flaky');
    answers.set('/flaky', [500]);
    await payInvoice();
    await dispatch();
    const log = await waitFor('the retried delivery', async () => {
      const rows = await deliveries(endpoint.id);
      return rows[0]?.status === 'succeeded' && rows;
    });
    expect(log[0]).toMatchObject({ attempts: 2, last_status_code: 200, last_error: null });
    const bodies = at('/flaky').map((r) => r.body);
    expect(bodies).toHaveLength(2);
    expect(bodies[1]).toBe(bodies[0]);
  });

  it('a delivery dead after its last try is delivered when its dead letter is retried (the receiver fixed)', async () => {
    const endpoint = await register('/dead');
    answers.set('/dead', [500, 500]);
    await payInvoice();
    await dispatch();
    const [first] = await waitFor('the first attempt', async () => {
      const rows = await deliveries(endpoint.id);
      return rows[0]?.attempts === 1 && rows;
    });
    // Its retries are used up: the next attempt is its last (three days of them, in the real world).
    // Changed once pg-boss has settled the first attempt (state retry): while the job is still active,
    // pg-boss's settle of that attempt would no longer match its retry_count (its attempt fence) and
    // the job would stay active until it expires.
    await waitFor('the first attempt settled for a retry', async () => {
      const { rows } = await sql<{ n: number }>`UPDATE pgboss.job SET retry_count = retry_limit
        WHERE name = ${QUEUES.webhookEndpointDeliver} AND data->>'deliveryId' = ${String(first?.id)}
          AND state = 'retry'
        RETURNING 1 AS n`.execute(app.runtime.db);
      return rows.length > 0;
    });
    const [dead] = await waitFor('the dead letter', async () => {
      const jobs = await app.runtime.boss.findJobs(deadQueueOf(QUEUES.webhookEndpointDeliver), {
        data: { deliveryId: String(first?.id) },
        queued: true,
      });
      return jobs.length > 0 && jobs;
    });
    expect((await deliveries(endpoint.id))[0]).toMatchObject({ status: 'failed', attempts: 2 });
    // The receiver answers 200 again; the operator retries the dead letter.
    expect(
      await retryDeadLetter(app.runtime.db, app.runtime.boss, {
        queue: QUEUES.webhookEndpointDeliver,
        jobId: dead!.id,
      }),
    ).toBe(true);
    wakeWorkers(app.runtime.boss, QUEUES.webhookEndpointDeliver);
    const log = await waitFor(
      'the retried delivery',
      async () => {
        const rows = await deliveries(endpoint.id);
        return rows[0]?.status === 'succeeded' && rows;
      },
      20_000,
    );
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ attempts: 3, last_status_code: 200, last_error: null });
    expect(at('/dead')).toHaveLength(3);
  });

  it('sends nothing to a disabled endpoint, and events again once it is enabled', async () => {
    const off = await register('/off');
    const on = await register('/on');
    expect((await app.api('POST', `/v1/webhook-endpoints/${off.id}/disable`)).body.status).toBe('disabled');
    await payInvoice();
    await dispatch();
    await waitFor('the enabled endpoint', async () => at('/on').length === 1);
    expect(at('/off')).toHaveLength(0);
    expect(await deliveries(off.id)).toHaveLength(0);
    expect(await deliveries(on.id)).toHaveLength(1);
    expect((await app.api('POST', `/v1/webhook-endpoints/${off.id}/enable`)).body.status).toBe('enabled');
    await payInvoice();
    await dispatch();
    await waitFor('both endpoints', async () => at('/off').length === 1 && at('/on').length === 2);
    expect(JSON.parse(at('/off')[0]?.body ?? '').id).toBe(JSON.parse(at('/on')[1]?.body ?? '').id);
  });

  it('redelivers an event on request, as a new delivery signed with the rotated secret', async () => {
    const endpoint = await register('/again');
    await payInvoice();
    await dispatch();
    const [first] = await waitFor('the delivery', async () => {
      const rows = await deliveries(endpoint.id);
      return rows[0]?.status === 'succeeded' && rows;
    });
    const rotated = await app.api('POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(endpoint.secret);
    const again = await app.api(
      'POST',
      `/v1/webhook-endpoints/${endpoint.id}/deliveries/${first?.id}/redeliver`,
    );
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ redelivery_of: first?.id, event: first?.event, status: 'pending' });
    await waitFor('the redelivery', async () => at('/again').length === 2);
    const repeat = at('/again')[1];
    const event = Stripe.webhooks.constructEvent(
      repeat?.body ?? '',
      String(repeat?.headers['billhook-signature']),
      rotated.body.secret,
    );
    expect(event.id).toBe(first?.event);
    const log = await waitFor('both logged', async () => {
      const rows = await deliveries(endpoint.id);
      return rows.every((r) => r.status === 'succeeded') && rows.length === 2 && rows;
    });
    expect(log.map((r) => r.id)).toContain(again.body.id);
    const unknown = await app.api(
      'POST',
      `/v1/webhook-endpoints/${endpoint.id}/deliveries/wdl_missing/redeliver`,
    );
    expect(unknown.status).toBe(404);
  });

  it('needs the admin scope: write and read keys get 403', async () => {
    for (const scope of ['read', 'write'] as const) {
      const { secret } = await createApiKey(app.runtime.db, `${scope} key`, scope);
      const listed = await app.api('GET', '/v1/webhook-endpoints', undefined, secret);
      expect([listed.status, listed.body.error.code]).toEqual([403, 'insufficient_scope']);
    }
  });

  it('refuses an endpoint without BILLHOOK_SECRET_KEY: 409 secret_key_missing naming webhook endpoints, nothing created', async () => {
    // A newcomer who ran the README's "Try it" (no BILLHOOK_SECRET_KEY) and then registers an
    // endpoint was told "gateway accounts need BILLHOOK_SECRET_KEY", about something they never asked for.
    const keyless = await startTestApp({ DATABASE_URL: app.runtime.databaseUrl }, 'web');
    try {
      const count = async () =>
        Number(
          (await sql<{ n: string }>`SELECT count(*) AS n FROM webhook_endpoints`.execute(app.runtime.db))
            .rows[0]?.n,
        );
      const before = await count();
      const answer = await keyless.api('POST', '/v1/webhook-endpoints', {
        url: `${base}/keyless`,
        enabled_events: ['invoice.paid'],
      });
      expect([answer.status, answer.body.error.code]).toEqual([409, 'secret_key_missing']);
      expect(answer.body.error.message).toEqual(expect.stringMatching(/webhook endpoints/));
      expect(answer.body.error.message).toEqual(expect.stringMatching(/BILLHOOK_SECRET_KEY/));
      expect(await count()).toBe(before);
    } finally {
      await keyless.stop();
    }
  });
});
