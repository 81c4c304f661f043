import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPaypalTestDelivery } from '../../src/gateways/paypal/test-events.ts';
import { sweepStaleInbox } from '../../src/inbox/replay.ts';
import { retryDelaySeconds } from '../../src/workers/process-webhooks.ts';
import { TEST_CERT_FILE, TEST_KEY_FILE } from '../gateways/paypal/fixtures.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, paymentIntentSucceeded } from '../support/stripe.ts';
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
    const receipt = await app.runtime.inbox!.receive({
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
    // The row shows as failing (not `received`), with the error, after both attempts…
    const row = await app.runtime.db
      .selectFrom('inbox')
      .select(['status', 'last_error', 'attempts'])
      .where('id', '=', receipt.id!)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'retrying', attempts: 2 });
    expect(row.last_error).toMatch(/gateway paypal is not configured/);
    const listed = await app.api('GET', `/v1/events/${receipt.id}`);
    expect(listed.body).toMatchObject({ status: 'retrying' });
    // …so the stale-inbox sweep leaves it to the dead-letter queue instead of starting it over.
    expect(await sweepStaleInbox(app.runtime.db, app.runtime.boss, 0)).toEqual([]);
  });
});

describe('replay and the stale-inbox sweep', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ WEBHOOK_RETRY_LIMIT: '0' });
  });
  afterAll(() => app.stop());

  const statusOf = async (id: string) =>
    await app.runtime.db
      .selectFrom('inbox')
      .select(['status', 'attempts'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();

  it('POST /v1/events/:id/replay processes a stored event again; a read-only key may not', async () => {
    const receipt = await app.runtime.inbox!.receive({
      gateway: 'stripe',
      eventId: 'evt_replay_me',
      eventType: 'customer.created',
      body: JSON.stringify({
        id: 'evt_replay_me',
        type: 'customer.created',
        created: 1,
        data: { object: {} },
      }),
    });
    await waitFor('the first processing', async () => (await statusOf(receipt.id!)).status === 'ignored');
    const replayed = await app.api('POST', `/v1/events/${receipt.id}/replay`);
    expect(replayed.status).toBe(202);
    expect(replayed.body).toMatchObject({ id: receipt.id, status: 'received' });
    const again = await waitFor('the replay', async () => {
      const row = await statusOf(receipt.id!);
      return row.status === 'ignored' && row.attempts === 2 ? row : undefined;
    });
    expect(again.attempts).toBe(2);
    expect((await app.api('POST', '/v1/events/evt_missing/replay')).status).toBe(404);
  });

  it('re-enqueues a webhook left unprocessed because its job was lost', async () => {
    const [row] = await sql<{ id: string }>`
      INSERT INTO inbox (id, gateway, gateway_event_id, event_type, body, received_at)
      VALUES ('evt_lostjob0000000000001', 'stripe', 'evt_lost_job', 'customer.created',
        '{"id":"evt_lost_job","type":"customer.created","created":1,"data":{"object":{}}}', now() - interval '20 minutes')
      RETURNING id`
      .execute(app.runtime.db)
      .then((r) => r.rows);
    expect(await sweepStaleInbox(app.runtime.db, app.runtime.boss, 600)).toEqual([row!.id]);
    await waitFor(
      'the swept event to be processed',
      async () => (await statusOf(row!.id)).status === 'ignored',
    );
    expect(await sweepStaleInbox(app.runtime.db, app.runtime.boss, 600)).toEqual([]);
  });
});

/** Issue #22 item 12: a webhook whose payment billhook does not know is never silent. */
describe('a webhook for an unknown payment', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ WEBHOOK_RETRY_LIMIT: '1', WEBHOOK_RETRY_DELAY_SECONDS: '1' });
  });
  afterAll(() => app.stop());

  it('logs each attempt at warn with the inbox id, the event id and the unknown reference, then the exception', async () => {
    const payload = paymentIntentSucceeded({
      eventId: 'evt_unknown_payment_log',
      intentId: 'pi_unknown_payment_log',
      amount: 1000,
      currency: 'usd',
      reference: 'txn_unknown_payment_log',
    });
    expect((await deliverStripe(app.url, payload)).status).toBe(200);
    const final = await waitFor('the exception', async () => {
      const e = (await app.api('GET', '/v1/events')).body.data[0];
      return e?.status === 'exception' ? e : undefined;
    });
    const ids = {
      level: 40,
      inboxId: final.id,
      gateway: 'stripe',
      gatewayEventId: 'evt_unknown_payment_log',
      eventType: 'payment_intent.succeeded',
      references: [expect.objectContaining({ gatewayTransactionId: 'pi_unknown_payment_log' })],
      retryLimit: 1,
    };
    expect(app.logs).toContainEqual(
      expect.objectContaining({
        ...ids,
        attempt: 0,
        reason: 'no transaction for pi_unknown_payment_log',
        msg: 'webhook for a payment not known yet: retried later',
      }),
    );
    // Logged once the row's exception is committed: the row may show it a moment before.
    const raised = expect.objectContaining({
      ...ids,
      attempt: 1,
      outcome: 'unknown_entity',
      msg: 'webhook raised a reconciliation exception',
    });
    await waitFor('the exception to be logged', async () =>
      app.logs.some((line) => raised.asymmetricMatch(line)),
    );
    expect(app.logs).toContainEqual(raised);
    // Never the body: the payment intent's other fields appear in no line.
    expect(JSON.stringify(app.logs)).not.toContain('amount_received');
  });
});

/**
 * A PayPal PAYMENT.CAPTURE.COMPLETED becomes two events about the same capture (the charge and its
 * settlement line, both naming our reference and the capture id): the warning for a payment not known
 * yet listed that reference twice. It lists each reference once.
 */
describe('a PayPal webhook for a payment not known yet', () => {
  const PAYPAL_WEBHOOK_ID = '8PT597110X687430LKGECATA';
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({
      PAYPAL_CLIENT_ID: 'client-id',
      PAYPAL_CLIENT_SECRET: 'client-secret',
      PAYPAL_WEBHOOK_ID,
      PAYPAL_API_BASE: 'https://paypal.unknown-payment.test',
      PAYPAL_TEST_CERT_FILE: TEST_CERT_FILE,
      // The first attempt retries; the retry is not due while the test runs.
      WEBHOOK_RETRY_LIMIT: '1',
      WEBHOOK_RETRY_DELAY_SECONDS: '3600',
    });
  });
  afterAll(() => stopOfflineTestApp(app));

  it('names the capture of USD 25.07 and our reference once in its warning', async () => {
    const delivery = buildPaypalTestDelivery(
      'PAYMENT.CAPTURE.COMPLETED',
      {
        captureId: '7UNKNOWNCAPTURE01',
        reference: 'txn_paypal_unknown_once',
        amount: 2507,
        currency: 'USD',
        keyFile: TEST_KEY_FILE,
      },
      { PAYPAL_WEBHOOK_ID },
    );
    const answer = await fetch(`${app.url}/webhooks/paypal`, {
      method: 'POST',
      headers: delivery.headers,
      body: delivery.body,
    });
    expect(answer.status).toBe(200);
    const warned = await waitFor('the warning', async () =>
      app.logs.find((line) => line.msg === 'webhook for a payment not known yet: retried later'),
    );
    expect(warned).toMatchObject({ gateway: 'paypal', eventType: 'PAYMENT.CAPTURE.COMPLETED', attempt: 0 });
    expect(warned.references).toEqual([
      { reference: 'txn_paypal_unknown_once', gatewayTransactionId: '7UNKNOWNCAPTURE01' },
    ]);
  });
});
