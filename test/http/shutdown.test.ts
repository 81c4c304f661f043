import { connect } from 'node:net';
import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { signStripePayload } from '../../src/gateways/stripe/test-events.ts';
import { STRIPE_WEBHOOK_SECRET, startTestApp } from '../support/app.ts';
import { paymentIntentSucceeded } from '../support/stripe.ts';

/**
 * Issue #22 item 5: a request arriving on an open keep-alive connection while the process stops is
 * still answered, with `Connection: close`, and the connection then closes, so a busy client cannot
 * keep the process alive; the webhook whose group commit was in flight is stored and acknowledged.
 */
describe('stopping with a keep-alive connection in use', () => {
  it('answers the request in flight (stored), answers the next one on that connection with Connection: close, and closes it', async () => {
    const app = await startTestApp({}, 'web');
    const { port } = new URL(app.url);
    const body = paymentIntentSucceeded({
      eventId: 'evt_shutdown_in_flight',
      intentId: 'pi_shutdown',
      amount: 1000,
      currency: 'usd',
      reference: 'txn_shutdown',
    });
    // The inbox's INSERT waits for this lock: the webhook stays in flight until it is released.
    const blocker = new pg.Client(app.runtime.databaseUrl);
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE inbox IN SHARE MODE');

    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk;
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      `POST /webhooks/stripe HTTP/1.1\r\nHost: billhook\r\nContent-Type: application/json\r\nStripe-Signature: ${signStripePayload(body, STRIPE_WEBHOOK_SECRET)}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    await expect
      .poll(
        async () =>
          (
            await sql<{ n: number }>`
              SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO inbox%'`.execute(app.runtime.db)
          ).rows[0]?.n,
        { timeout: 60_000 },
      )
      .toBe(1);

    const stopping = app.stop();
    // The client sends its next request on the same connection while the first is in flight.
    socket.write('GET /healthz HTTP/1.1\r\nHost: billhook\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await blocker.query('COMMIT');
    await blocker.end();
    await closed;
    await stopping;

    const responses = received.split(/(?=HTTP\/1\.1 )/);
    expect(responses).toHaveLength(2);
    expect(responses[0]).toMatch(/^HTTP\/1\.1 200 /);
    expect(responses[0]).toContain('{"received":true}');
    expect(responses[1]).toMatch(/^HTTP\/1\.1 200 /);
    expect(responses[1]).toMatch(/\r\nconnection: close\r\n/i);

    // Acknowledged, so stored (with its job, in the same transaction).
    const check = new pg.Client(app.runtime.databaseUrl);
    await check.connect();
    const stored = await check.query(`SELECT 1 FROM inbox WHERE gateway_event_id = 'evt_shutdown_in_flight'`);
    await check.end();
    expect(stored.rowCount).toBe(1);
  }, 180_000);
});
