import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/queue/queues.ts';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app.ts';
import { waitFor, wakeWorkers } from '../support/wait.ts';

describe('Idempotency-Key: failed requests and expiry', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ IDEMPOTENCY_KEY_TTL_HOURS: '24' });
  });
  afterAll(() => app.stop());

  const post = async (path: string, body: unknown, key: string) => {
    const response = await fetch(`${app.url}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${ADMIN_KEY}`,
        'content-type': 'application/json',
        'idempotency-key': key,
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      replayed: response.headers.get('idempotent-replayed'),
      contentType: response.headers.get('content-type'),
      text,
      body: JSON.parse(text) as any,
    };
  };
  const storedKey = (key: string) =>
    app.runtime.db.selectFrom('idempotency_keys').selectAll().where('key', '=', key).executeTakeFirst();
  const customersWith = async (email: string) =>
    (await app.runtime.db.selectFrom('customers').select('id').where('email', '=', email).execute()).length;

  it('a refused request (422 validation, 404) does not use up its key: the corrected request runs', async () => {
    const bad = await post('/v1/customers', { email: 'not-an-email' }, 'idem-fix-1');
    expect(bad.status).toBe(422);
    expect(bad.body.error.fields).toHaveProperty('email');
    expect(await storedKey('idem-fix-1')).toBeUndefined();
    // The same invalid request again is validated again (not a stored replay).
    const badAgain = await post('/v1/customers', { email: 'not-an-email' }, 'idem-fix-1');
    expect([badAgain.status, badAgain.replayed]).toEqual([422, null]);

    const fixed = await post('/v1/customers', { email: 'fixed@example.com' }, 'idem-fix-1');
    expect(fixed.status).toBe(201);
    expect((await storedKey('idem-fix-1'))?.response_status).toBe(201);
    const replay = await post('/v1/customers', { email: 'fixed@example.com' }, 'idem-fix-1');
    expect([replay.status, replay.replayed, replay.body.id]).toEqual([201, 'true', fixed.body.id]);
    expect(await customersWith('fixed@example.com')).toBe(1);

    // An unknown id (404) and a state that does not allow the action (409) free the key as well.
    const missing = await post('/v1/invoices/inv_missing/finalize', {}, 'idem-fix-2');
    expect(missing.status).toBe(404);
    expect(await storedKey('idem-fix-2')).toBeUndefined();
    const unknownField = await post('/v1/customers', { email: 'a@example.com', admin: true }, 'idem-fix-3');
    expect(unknownField.status).toBe(422);
    expect(await storedKey('idem-fix-3')).toBeUndefined();
  });

  it('the same body with its fields in another order is the same request: an offline payment of EUR 10.00 retried is replayed, recorded once', async () => {
    const customer = await post('/v1/customers', { email: 'reordered@example.com' }, 'idem-order-customer');
    const draft = await post(
      '/v1/invoices',
      { customer: customer.body.id, currency: 'eur', lines: [{ description: 'Pro plan', amount: 3000 }] },
      'idem-order-draft',
    );
    await post(`/v1/invoices/${draft.body.id}/finalize`, {}, 'idem-order-finalize');
    const path = `/v1/invoices/${draft.body.id}/payments`;
    const first = await post(path, { amount: 1000, method: 'BANK', reference: 'wire 42' }, 'idem-order-pay');
    expect(first.status).toBe(201);
    // The client's retry serialises the same fields in another order (another JSON library, a map).
    const retry = await post(path, { reference: 'wire 42', method: 'BANK', amount: 1000 }, 'idem-order-pay');
    expect([retry.status, retry.replayed, retry.text]).toEqual([201, 'true', first.text]);
    const payments = await app.runtime.db
      .selectFrom('offline_payments')
      .select('amount')
      .where('invoice_id', '=', draft.body.id)
      .execute();
    expect(payments.map((p) => p.amount)).toEqual([1000n]);
    const invoice = await fetch(`${app.url}/v1/invoices/${draft.body.id}`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    }).then((r) => r.json());
    expect(invoice).toMatchObject({ amount_paid: 1000, amount_due: 2000 });
    // Another value under the key is still another request.
    const other = await post(path, { reference: 'wire 42', method: 'BANK', amount: 1001 }, 'idem-order-pay');
    expect([other.status, other.body.error.code]).toEqual([422, 'idempotency_key_reused']);
  });

  it('a key freed by the request holding it (a 4xx) between a retry finding it taken and reading it: the retry runs, never a 500', async () => {
    // The race made certain: right after the retry's claim finds the key taken, the first request's
    // 404 frees it (a statement trigger deletes the row as the claim's INSERT … ON CONFLICT ends).
    const body = { email: 'freed-in-between@example.com' };
    const { id: apiKeyId } = await app.runtime.db
      .selectFrom('api_keys')
      .select('id')
      .orderBy('created_at')
      .executeTakeFirstOrThrow();
    await app.runtime.db
      .insertInto('idempotency_keys')
      .values({ api_key_id: apiKeyId, key: 'idem-freed', request_hash: 'held by a request answered 404' })
      .execute();
    await sql`
      CREATE FUNCTION free_idem_freed() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        DELETE FROM idempotency_keys WHERE key = 'idem-freed' AND request_hash = 'held by a request answered 404';
        RETURN NULL;
      END $$;
      CREATE TRIGGER free_idem_freed AFTER INSERT ON idempotency_keys
        FOR EACH STATEMENT EXECUTE FUNCTION free_idem_freed();
    `.execute(app.runtime.db);
    try {
      const retry = await post('/v1/customers', body, 'idem-freed');
      expect([retry.status, retry.replayed]).toEqual([201, null]);
    } finally {
      await sql`DROP TRIGGER free_idem_freed ON idempotency_keys; DROP FUNCTION free_idem_freed();`.execute(
        app.runtime.db,
      );
    }
    expect(await customersWith('freed-in-between@example.com')).toBe(1);
    expect((await storedKey('idem-freed'))?.response_status).toBe(201);
  });

  it('replays an answer with an amount beyond 2^53 byte for byte: a customer owing IDR 10^16 + 1', {
    timeout: 120_000,
  }, async () => {
    const customer = await post('/v1/customers', { email: 'idr-replay@example.com' }, 'idem-idr-customer');
    // Ten invoices of 10^15 minor units (the most one amount may be) and one of 1.
    for (const [i, amount] of [...Array<number>(10).fill(1_000_000_000_000_000), 1].entries()) {
      const draft = await post(
        '/v1/invoices',
        { customer: customer.body.id, currency: 'idr', lines: [{ description: 'Platform fee', amount }] },
        `idem-idr-draft-${i}`,
      );
      const finalized = await post(`/v1/invoices/${draft.body.id}/finalize`, {}, `idem-idr-finalize-${i}`);
      expect(finalized.body.status).toBe('OPEN');
    }
    const update = () =>
      post(`/v1/customers/${customer.body.id}`, { name: 'Owes 10^16 + 1' }, 'idem-idr-update');
    const first = await update();
    expect(first.status).toBe(200);
    expect(first.text).toContain('{"currency":"IDR","balance":10000000000000001}');
    const replay = await update();
    expect([replay.status, replay.replayed, replay.contentType]).toEqual([200, 'true', first.contentType]);
    // Parsed from jsonb into a double, the replay answered 10^16, its keys reordered.
    expect(replay.text).toBe(first.text);
  });

  it('a key is remembered 24 hours, then used anew; the worker sweep deletes expired keys', {
    timeout: 180_000,
  }, async () => {
    const first = await post('/v1/customers', { email: 'day1@example.com' }, 'idem-day');
    expect(first.status).toBe(201);
    // 23 hours later: still the stored answer.
    await app.runtime.db
      .updateTable('idempotency_keys')
      .set({ created_at: new Date(Date.now() - 23 * 3_600_000) })
      .where('key', '=', 'idem-day')
      .execute();
    const within = await post('/v1/customers', { email: 'day1@example.com' }, 'idem-day');
    expect([within.replayed, within.body.id]).toEqual(['true', first.body.id]);
    const other = await post('/v1/customers', { email: 'day2@example.com' }, 'idem-day');
    expect(other.status).toBe(422);
    // 25 hours later: the key is free, a new request with it runs (another body included).
    await app.runtime.db
      .updateTable('idempotency_keys')
      .set({ created_at: new Date(Date.now() - 25 * 3_600_000) })
      .where('key', '=', 'idem-day')
      .execute();
    const next = await post('/v1/customers', { email: 'day2@example.com' }, 'idem-day');
    expect([next.status, next.replayed]).toEqual([201, null]);
    expect(next.body.id).not.toBe(first.body.id);
    expect(await customersWith('day2@example.com')).toBe(1);

    // Two expired keys and a fresh one: the inbox sweep deletes the expired ones only.
    for (const key of ['idem-old-1', 'idem-old-2', 'idem-fresh'])
      expect((await post('/v1/customers', { email: `${key}@example.com` }, key)).status).toBe(201);
    await app.runtime.db
      .updateTable('idempotency_keys')
      .set({ created_at: new Date(Date.now() - 25 * 3_600_000) })
      .where('key', 'in', ['idem-old-1', 'idem-old-2'])
      .execute();
    await app.runtime.boss.send(QUEUES.inboxSweep, {});
    // The sweep's worker polls every 30 s: woken, it takes the job at once.
    wakeWorkers(app.runtime.boss, QUEUES.inboxSweep);
    await waitFor(
      'the expired keys deleted',
      async () => !(await storedKey('idem-old-1')) && !(await storedKey('idem-old-2')),
      150_000,
    );
    expect(await storedKey('idem-fresh')).toBeDefined();
    expect(await storedKey('idem-day')).toBeDefined();
  });

  it('a key whose request died without an answer is taken over a minute later by one request', async () => {
    const body = { email: 'died@example.com' };
    // What a web process that died mid-request leaves: the key claimed, no answer, silent 61 s.
    const hash = createHash('sha256')
      .update(`POST /v1/customers\n${JSON.stringify(body)}`)
      .digest('hex');
    const { id: apiKeyId } = await app.runtime.db
      .selectFrom('api_keys')
      .select('id')
      .orderBy('created_at')
      .executeTakeFirstOrThrow();
    await app.runtime.db
      .insertInto('idempotency_keys')
      .values({ api_key_id: apiKeyId, key: 'idem-died', request_hash: hash })
      .execute();
    const recent = await post('/v1/customers', body, 'idem-died');
    expect([recent.status, recent.body.error.code]).toEqual([409, 'idempotency_key_in_use']);
    await app.runtime.db
      .updateTable('idempotency_keys')
      .set({ created_at: new Date(Date.now() - 61_000) })
      .where('key', '=', 'idem-died')
      .execute();
    // Two retries at once: one takes the key over and runs, the other is 409 (or replays its answer).
    const [a, b] = await Promise.all([
      post('/v1/customers', body, 'idem-died'),
      post('/v1/customers', body, 'idem-died'),
    ]);
    expect([a.status, b.status].sort()).toContain(201);
    expect([a.status, b.status].every((status) => status === 201 || status === 409)).toBe(true);
    expect(await customersWith('died@example.com')).toBe(1);
  });
});
