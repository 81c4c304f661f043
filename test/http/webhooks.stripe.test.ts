import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Inbox, InboxBusy } from '../../src/inbox/receive.ts';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app.ts';
import { deliverStripe, stripeFixtureRaw } from '../support/stripe.ts';

/** PRODUCT.md §2: every row of the webhook response table, for Stripe. */
describe('POST /webhooks/stripe', () => {
  let app: TestApp;
  const raw = stripeFixtureRaw('webhook.payment_intent.succeeded.json');

  /** Inbox rows, and the jobs receiving created (a retry job the worker makes later carries `attempt`). */
  /**
   * The fixture's event under another event id, with fields of its payment intent replaced (a field
   * set to undefined is left out of the JSON).
   */
  function withIntent(eventId: string, fields: Record<string, unknown>): string {
    const event = JSON.parse(raw);
    return JSON.stringify({
      ...event,
      id: eventId,
      data: { ...event.data, object: { ...event.data.object, ...fields } },
    });
  }

  async function counts() {
    const inbox = await app.runtime.db
      .selectFrom('inbox')
      .select(sql<string>`count(*)`.as('n'))
      .executeTakeFirstOrThrow();
    const jobs = await sql<{
      n: string;
    }>`SELECT count(*) AS n FROM pgboss.job WHERE name = 'webhook.process' AND NOT data ? 'attempt'`.execute(
      app.runtime.db,
    );
    return { inbox: Number(inbox.n), jobs: Number(jobs.rows[0]?.n) };
  }

  beforeAll(async () => {
    // Rotation: the new secret signs, the old one still verifies.
    app = await startTestApp({ STRIPE_WEBHOOK_SECRET: 'whsec_test_secret_current,whsec_test_secret_old' });
  });
  afterAll(() => app.stop());

  it('stores a valid new event with its job and answers 200 {"received":true}', async () => {
    const before = await counts();
    const response = await deliverStripe(app.url, raw);
    expect([response.status, response.body]).toEqual([200, '{"received":true}']);
    expect(await counts()).toEqual({ inbox: before.inbox + 1, jobs: before.jobs + 1 });
    const row = await app.runtime.db
      .selectFrom('inbox')
      .selectAll()
      .where('gateway_event_id', '=', 'evt_3RTkpYQ8iJWBZFaM1G1JtOIT')
      .executeTakeFirstOrThrow();
    expect(row.event_type).toBe('payment_intent.succeeded');
    expect(row.body).toBe(raw);
  });

  it('answers 200 to a duplicate delivery and stores nothing new, no second job', async () => {
    const before = await counts();
    const response = await deliverStripe(app.url, raw);
    expect(response.status).toBe(200);
    expect(await counts()).toEqual(before);
  });

  it('accepts a delivery signed with the previous secret during rotation', async () => {
    const event = JSON.parse(raw);
    event.id = 'evt_rotation_old_secret';
    const response = await deliverStripe(app.url, event, { secret: 'whsec_test_secret_old' });
    expect(response.status).toBe(200);
  });

  it.each([
    ['a wrong secret', { secret: 'whsec_someone_else' }],
    ['a missing signature', { signature: null }],
    ['a garbled signature header', { signature: 't=abc,v1=nothex' }],
    ['a stale timestamp (over 300 s old)', { timestamp: Math.floor(Date.now() / 1000) - 301 }],
    ['a timestamp from the future', { timestamp: Math.floor(Date.now() / 1000) + 600 }],
  ])('answers 400 to %s and stores nothing', async (_name, options) => {
    const before = await counts();
    const event = JSON.parse(raw);
    event.id = `evt_bad_${Math.random()}`;
    const response = await deliverStripe(app.url, event, options);
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body).error.code).toBe('signature_verification_failed');
    expect(await counts()).toEqual(before);
    expect(app.logs).toContainEqual(
      expect.objectContaining({ msg: 'webhook rejected', gateway: 'stripe', reason: 'signature' }),
    );
  });

  it('answers 400 to a tampered body (valid signature of other bytes)', async () => {
    const before = await counts();
    const signedFor = await import('../../src/gateways/stripe/test-events.ts').then((m) =>
      m.signStripePayload(raw, 'whsec_test_secret_current'),
    );
    const response = await deliverStripe(app.url, raw.replace('4620', '4621'), { signature: signedFor });
    expect(response.status).toBe(400);
    expect(await counts()).toEqual(before);
  });

  it.each([
    ['not JSON', 'this is not json'],
    ['not an event', JSON.stringify({ hello: 'world' })],
    [
      'an event without an id',
      JSON.stringify({ type: 'payment_intent.succeeded', created: 1, data: { object: {} } }),
    ],
    ['a payment intent with a fractional amount', withIntent('evt_fraction', { amount: 10.5 })],
    ['a payment intent in an unknown currency', withIntent('evt_xyz', { currency: 'xyz' })],
    ['a payment intent without an id', withIntent('evt_no_pi', { id: undefined })],
  ])('answers 400 to a correctly signed body that is %s and stores nothing', async (_name, body) => {
    const before = await counts();
    const response = await deliverStripe(app.url, body);
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body).error.code).toBe('invalid_payload');
    expect(await counts()).toEqual(before);
  });

  it('answers 413 to a body over 256 KiB, readable by the client', async () => {
    const before = await counts();
    const event = JSON.parse(raw);
    event.id = 'evt_too_big';
    event.data.object.description = 'x'.repeat(300 * 1024);
    const response = await deliverStripe(app.url, event);
    expect(response.status).toBe(413);
    expect(JSON.parse(response.body).error).toMatchObject({ code: 'body_too_large', fields: {} });
    expect(await counts()).toEqual(before);
    expect(app.logs).toContainEqual(
      expect.objectContaining({ msg: 'webhook rejected', gateway: 'stripe', reason: 'too_large' }),
    );
  });

  it('counts received and rejected webhooks by gateway and reason on /metrics', async () => {
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(
      /billhook_webhooks_received_total\{gateway="stripe",account="default",duplicate="false"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /billhook_webhooks_received_total\{gateway="stripe",account="default",duplicate="true"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /billhook_webhooks_rejected_total\{gateway="stripe",account="default",reason="signature"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /billhook_webhooks_rejected_total\{gateway="stripe",account="default",reason="payload"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /billhook_webhooks_rejected_total\{gateway="stripe",account="default",reason="too_large"\} 1/,
    );
    expect(metrics).toMatch(/billhook_webhook_ack_seconds_count\{gateway="stripe",account="default"\} [1-9]/);
    expect(metrics).toMatch(/billhook_queue_depth\{queue="webhook.process"\} \d+/);
    expect(metrics).toMatch(/billhook_reconciliation_lag_seconds \d/);
    expect(metrics).toMatch(/billhook_reconciliation_exceptions_open \d/);
  });

  it('logs API requests and webhooks as JSON with their request id, and no secret or signature in any line', async () => {
    await fetch(`${app.url}/v1/events`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'x-request-id': 'req-trace-1' },
    });
    const lines = app.logs.map((line) => JSON.stringify(line));
    expect(app.logs.some((l) => (l.req as { id?: string } | undefined)?.id === 'req-trace-1')).toBe(true);
    expect(app.logs.some((l) => l.msg === 'webhook received' && typeof l.reqId === 'string')).toBe(true);
    for (const secret of [
      'whsec_test_secret_current',
      'whsec_test_secret_old',
      ADMIN_KEY,
      'v1=',
      'sk_test_billhook',
    ]) {
      expect(lines.filter((line) => line.includes(secret))).toEqual([]);
    }
    expect(lines.some((line) => line.includes('"authorization":"[redacted]"'))).toBe(true);
    // Webhook rejections are logged with their request id and reason, never with the signature.
    expect(app.logs.some((l) => l.msg === 'webhook rejected' && typeof l.reqId === 'string')).toBe(true);
  });

  it("logs each delivery with its own request's id: the X-Request-Id sent, echoed in the answer", async () => {
    const send = (reqId: string, eventId: string, secret: string) =>
      deliverStripe(
        app.url,
        { ...JSON.parse(raw), id: eventId },
        { secret, headers: { 'x-request-id': reqId } },
      );
    const received = await send('wh-trace-1', 'evt_log_trace_1', 'whsec_test_secret_current');
    const rejected = await send('wh-trace-2', 'evt_log_trace_2', 'whsec_someone_else');
    expect([received.status, rejected.status]).toEqual([200, 400]);
    expect([received.headers.get('x-request-id'), rejected.headers.get('x-request-id')]).toEqual([
      'wh-trace-1',
      'wh-trace-2',
    ]);
    const lines = app.logs.filter((l) => l.reqId === 'wh-trace-1' || l.reqId === 'wh-trace-2');
    expect(lines.map((l) => [l.reqId, l.msg, l.eventId])).toEqual([
      ['wh-trace-1', 'webhook received', 'evt_log_trace_1'],
      ['wh-trace-2', 'webhook rejected', undefined],
    ]);
  });

  it('answers 404 for a gateway that is not configured or not known', async () => {
    for (const gateway of ['paypal', 'nosuchgateway']) {
      const response = await fetch(`${app.url}/webhooks/${gateway}`, { method: 'POST', body: '{}' });
      expect(response.status).toBe(404);
      expect(app.logs).toContainEqual(
        expect.objectContaining({ msg: 'webhook rejected', gateway, reason: 'not_configured' }),
      );
    }
  });
});

describe('POST /webhooks/stripe without Stripe configured', () => {
  it('answers 404', async () => {
    const app = await startTestApp({ STRIPE_WEBHOOK_SECRET: '', STRIPE_SECRET_KEY: '' });
    try {
      const response = await deliverStripe(
        app.url,
        stripeFixtureRaw('webhook.payment_intent.succeeded.json'),
      );
      expect(response.status).toBe(404);
      const inbox = await app.runtime.db.selectFrom('inbox').selectAll().execute();
      expect(inbox).toHaveLength(0);
    } finally {
      await app.stop();
    }
  });
});

describe('group commit of webhooks', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ WEBHOOK_RETRY_LIMIT: '0' }, 'web');
  });
  afterAll(() => app.stop());

  it('stores concurrent deliveries, duplicates among them included, once each, every row named by exactly one job', async () => {
    const base = JSON.parse(stripeFixtureRaw('webhook.payment_intent.succeeded.json'));
    const events = Array.from({ length: 40 }, (_, i) => ({ ...base, id: `evt_group_${i % 30}` }));
    const answers = await Promise.all(events.map((event) => deliverStripe(app.url, event)));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const inbox = await app.runtime.db.selectFrom('inbox').select('id').execute();
    const jobs = await sql<{ inbox_ids: string[] }>`
      SELECT ARRAY(SELECT jsonb_array_elements_text(data->'inboxIds')) AS inbox_ids
      FROM pgboss.job WHERE name = 'webhook.process'`.execute(app.runtime.db);
    expect(inbox).toHaveLength(30);
    expect(jobs.rows.flatMap((j) => j.inbox_ids).sort()).toEqual(inbox.map((r) => r.id).sort());
    // Group commit: fewer jobs (transactions) than deliveries.
    expect(jobs.rows.length).toBeLessThan(40);
  });

  it('stores the deliveries received in one turn of the event loop in one transaction, with one job', async () => {
    const inbox = new Inbox(app.runtime.databaseUrl, app.runtime.boss);
    onTestFinished(() => inbox.close());
    const ids = ['evt_turn_1', 'evt_turn_2', 'evt_turn_3'];
    const receipts = await Promise.all(
      ids.map((eventId) => inbox.receive({ gateway: 'stripe', eventId, eventType: 'x', body: '{}' })),
    );
    const jobs = await sql<{ inbox_ids: string[] }>`
      SELECT ARRAY(SELECT jsonb_array_elements_text(data->'inboxIds')) AS inbox_ids
      FROM pgboss.job WHERE name = 'webhook.process' AND data->'inboxIds' ? ${receipts[0]?.id}`.execute(
      app.runtime.db,
    );
    expect(jobs.rows.map((j) => j.inbox_ids.sort())).toEqual([receipts.map((r) => r.id).sort()]);
  });

  it('stores a batch again row by row when one row fails for its content, so only that delivery fails', async () => {
    // Issue #22 item 8: a 3,000-character event id (random, so PostgreSQL cannot compress it) is too
    // large for the inbox's unique index (54000); the route refuses such ids, this proves the batch.
    const inbox = new Inbox(app.runtime.databaseUrl, app.runtime.boss);
    onTestFinished(() => inbox.close());
    const delivery = (eventId: string) => ({
      gateway: 'stripe' as const,
      eventId,
      eventType: 'x',
      body: '{}',
    });
    const bad = `evt_${randomBytes(1500).toString('hex')}`;
    const results = await Promise.allSettled([
      inbox.receive(delivery('evt_row_by_row_1')),
      inbox.receive(delivery(bad)),
      inbox.receive(delivery('evt_row_by_row_2')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(((results[1] as PromiseRejectedResult).reason as { code: string }).code).toBe('54000');
    const rows = await app.runtime.db
      .selectFrom('inbox')
      .select(['id', 'gateway_event_id'])
      .where('gateway_event_id', 'like', 'evt_row_by_row_%')
      .orderBy('gateway_event_id')
      .execute();
    expect(rows.map((r) => r.gateway_event_id)).toEqual(['evt_row_by_row_1', 'evt_row_by_row_2']);
    // Each stored row has its job.
    for (const row of rows) {
      const jobs = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pgboss.job
        WHERE name = 'webhook.process' AND data->'inboxIds' ? ${row.id}`.execute(app.runtime.db);
      expect(jobs.rows[0]?.n).toBe(1);
    }
  });

  it('refuses new deliveries with InboxBusy once too many are waiting, instead of queueing without bound', async () => {
    const inbox = new Inbox(app.runtime.databaseUrl, app.runtime.boss, {
      maxBatch: 1,
      maxInFlight: 1,
      // Both wait until the event loop's turn ends (deliveries of one turn share a transaction).
      maxWaiting: 2,
    });
    onTestFinished(() => inbox.close());
    const delivery = (id: string) => ({
      gateway: 'stripe' as const,
      eventId: id,
      eventType: 'x',
      body: '{}',
    });
    const first = inbox.receive(delivery('evt_busy_1'));
    const second = inbox.receive(delivery('evt_busy_2'));
    await expect(inbox.receive(delivery('evt_busy_3'))).rejects.toThrow(InboxBusy);
    expect((await first).duplicate).toBe(false);
    expect((await second).duplicate).toBe(false);
  });
});
