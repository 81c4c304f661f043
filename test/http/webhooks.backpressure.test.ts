import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { blockedInserts, holdInboxLock } from '../support/inbox-lock.ts';
import { deliverStripe, paymentIntentSucceeded } from '../support/stripe.ts';

/** PRODUCT.md §9: when the database falls behind, deliveries are refused with 503 and Retry-After, not queued without bound. */
describe('webhook backpressure', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ WEBHOOK_MAX_WAITING: '1' }, 'web');
  });
  afterAll(() => app.stop());

  function deliver(n: number) {
    return deliverStripe(
      app.url,
      paymentIntentSucceeded({
        eventId: `evt_backpressure_${n}`,
        intentId: `pi_backpressure_${n}`,
        amount: 1000,
        currency: 'usd',
        reference: `txn_backpressure_${n}`,
      }),
    );
  }

  it('answers 503 busy with Retry-After beyond WEBHOOK_MAX_WAITING, stores nothing for those, and stores the rest once the database catches up', async () => {
    // The database falls behind: inserts into the inbox wait for a lock another session holds.
    const blocker = await holdInboxLock(app.runtime.databaseUrl);
    try {
      // Two transactions in flight, both blocked.
      const inFlight = [deliver(1), deliver(2)];
      await expect.poll(() => blockedInserts(app.runtime.db), { timeout: 60_000 }).toBe(2);
      // One more may wait; the rest are refused at once.
      const more = [deliver(3), deliver(4), deliver(5)];
      const refused: Awaited<ReturnType<typeof deliver>>[] = [];
      for (const response of more) void response.then((r) => refused.push(r));
      await expect.poll(() => refused.length, { timeout: 60_000 }).toBe(2);
      for (const response of refused) {
        expect(response.status).toBe(503);
        expect(response.headers.get('retry-after')).toBe('1');
        expect(JSON.parse(response.body)).toMatchObject({ error: { code: 'busy' } });
      }
      await blocker.query('COMMIT');
      const answered = await Promise.all([...inFlight, ...more]);
      const statuses = answered.map((response) => response.status).sort();
      expect(statuses).toEqual([200, 200, 200, 503, 503]);
    } finally {
      await blocker.end();
    }
    const stored = await app.runtime.db
      .selectFrom('inbox')
      .select('gateway_event_id')
      .where('gateway_event_id', 'like', 'evt_backpressure_%')
      .execute();
    expect(stored).toHaveLength(3);
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(
      /billhook_webhooks_rejected_total\{gateway="stripe",account="default",reason="busy"\} 2/,
    );
  });
});

/** Issue #22 item 4: backpressure bounds the bytes of the bodies held, not only their number. */
describe('webhook backpressure by bytes', () => {
  let app: TestApp;
  const body = (n: number) =>
    paymentIntentSucceeded({
      eventId: `evt_bytes_${n}`,
      intentId: `pi_bytes_${n}`,
      amount: 1000,
      currency: 'usd',
      reference: `txn_bytes_${n}`,
    });
  // Every body has the same size (one-digit n): two fit under the cap, a third does not.
  const size = Buffer.byteLength(body(1));

  beforeAll(async () => {
    app = await startTestApp({ WEBHOOK_MAX_WAITING_BYTES: String(Math.floor(size * 2.5)) }, 'web');
  });
  afterAll(() => app.stop());

  it('answers 503 busy with Retry-After beyond WEBHOOK_MAX_WAITING_BYTES (far below WEBHOOK_MAX_WAITING), stores nothing for those, and takes more once the bytes are answered', async () => {
    const blocker = await holdInboxLock(app.runtime.databaseUrl);
    let held: Awaited<ReturnType<typeof deliverStripe>>[];
    try {
      // Two bodies held (2 × size bytes) in the two transactions in flight, both blocked.
      const inFlight = [deliverStripe(app.url, body(1)), deliverStripe(app.url, body(2))];
      await expect.poll(() => blockedInserts(app.runtime.db), { timeout: 60_000 }).toBe(2);
      // A third body would hold 3 × size > 2.5 × size: refused at once, though only 2 deliveries wait.
      const refused = await Promise.all([deliverStripe(app.url, body(3)), deliverStripe(app.url, body(4))]);
      for (const response of refused) {
        expect(response.status).toBe(503);
        expect(response.headers.get('retry-after')).toBe('1');
        expect(JSON.parse(response.body)).toMatchObject({ error: { code: 'busy' } });
      }
      await blocker.query('COMMIT');
      held = await Promise.all(inFlight);
    } finally {
      await blocker.end();
    }
    expect(held.map((response) => response.status)).toEqual([200, 200]);
    // The bytes were released with the answers: a new delivery is taken.
    expect((await deliverStripe(app.url, body(5))).status).toBe(200);
    const stored = await app.runtime.db
      .selectFrom('inbox')
      .select('gateway_event_id')
      .where('gateway_event_id', 'like', 'evt_bytes_%')
      .orderBy('gateway_event_id')
      .execute();
    expect(stored.map((row) => row.gateway_event_id)).toEqual(['evt_bytes_1', 'evt_bytes_2', 'evt_bytes_5']);
  });
});
