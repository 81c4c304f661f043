import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { openInvoice, paidStripeInvoice } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { waitFor } from '../support/wait.ts';

/**
 * PRODUCT.md §6: an Idempotency-Key makes a money POST safe to retry. A request that failed with a
 * 5xx after its gateway took the money, or one still waiting for a slow gateway, must not run again
 * under the same key.
 */
describe('Idempotency-Key on a money POST: a 5xx, a slow gateway', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterEach(async () => {
    nock.cleanAll();
    await sql`DROP TRIGGER IF EXISTS fail_refund_recording ON refunds`.execute(app.runtime.db);
    await sql`DROP TRIGGER IF EXISTS database_unavailable ON offline_payments`.execute(app.runtime.db);
  });
  afterAll(() => stopOfflineTestApp(app));

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
    return {
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      replayed: response.headers.get('idempotent-replayed'),
      body: (await response.json()) as any,
    };
  };

  it('a refund of 500 whose recording failed (500) is replayed to a retry with its key: Stripe refunds once', async () => {
    const paid = await paidStripeInvoice(app);
    const sent: string[] = [];
    nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .times(2)
      .reply((request: Request) => {
        sent.push(request.headers.get('idempotency-key') ?? '');
        return [
          200,
          {
            id: `re_stripe_${sent.length}`,
            object: 'refund',
            status: 'succeeded',
            amount: 500,
            currency: 'eur',
          },
        ];
      });
    // Stripe takes the refund; recording its answer then fails (a dropped connection, say).
    await sql`CREATE OR REPLACE FUNCTION fail_refund_recording() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'the recording failed'; END $$`.execute(app.runtime.db);
    await sql`CREATE TRIGGER fail_refund_recording BEFORE UPDATE ON refunds FOR EACH ROW
      WHEN (NEW.status = 'succeeded') EXECUTE FUNCTION fail_refund_recording()`.execute(app.runtime.db);
    const path = `/v1/invoices/${paid.invoice.id}/refund`;
    const first = await post(path, { amount: 500 }, 'refund-500-once');
    expect(first.status).toBe(500);
    await sql`DROP TRIGGER fail_refund_recording ON refunds`.execute(app.runtime.db);

    // The client retries with the same key: the stored failure, not a second refund.
    const again = await post(path, { amount: 500 }, 'refund-500-once');
    expect([again.status, again.replayed]).toEqual([500, 'true']);
    expect(again.body).toEqual(first.body);
    expect(sent).toHaveLength(1);
    // One refund, pending without Stripe's id: refund.recover repeats it with its own key later.
    const refunds = await app.runtime.db
      .selectFrom('refunds')
      .select(['id', 'amount', 'status', 'gateway_refund_id'])
      .where('invoice_id', '=', paid.invoice.id)
      .execute();
    expect(refunds).toEqual([{ id: sent[0], amount: 500n, status: 'pending', gateway_refund_id: null }]);
    const invoice = await app.api('GET', `/v1/invoices/${paid.invoice.id}`);
    expect(invoice.body).toMatchObject({ status: 'PAID', amount_refunded: 0 });
  });

  it('a retry a minute later, while the first refund still waits for Stripe, is 409: Stripe refunds once', async () => {
    const paid = await paidStripeInvoice(app);
    const sent: string[] = [];
    let answer: () => void = () => undefined;
    const answered = new Promise<void>((resolve) => {
      answer = resolve;
    });
    // Stripe answers the first refund only when the test says so (a slow gateway).
    nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .times(2)
      .reply(async (request: Request) => {
        sent.push(request.headers.get('idempotency-key') ?? '');
        if (sent.length === 1) await answered;
        return [
          200,
          {
            id: `re_stripe_slow_${sent.length}`,
            object: 'refund',
            status: 'succeeded',
            amount: 500,
            currency: 'eur',
          },
        ];
      });
    const path = `/v1/invoices/${paid.invoice.id}/refund`;
    const first = post(path, { amount: 500 }, 'slow-refund');
    await waitFor('the first refund to be at Stripe', async () => sent.length === 1);
    // A minute passes for the key, as for a client that gave up waiting; the request still runs and
    // shows it (within 10 s), so the key is not taken as abandoned.
    const key = () =>
      app.runtime.db
        .selectFrom('idempotency_keys')
        .select(sql<boolean>`created_at > now() - interval '30 seconds'`.as('recent'))
        .where('key', '=', 'slow-refund')
        .executeTakeFirstOrThrow();
    await sql`UPDATE idempotency_keys SET created_at = now() - interval '61 seconds' WHERE key = 'slow-refund'`.execute(
      app.runtime.db,
    );
    await waitFor('the running request to show it holds its key', async () => (await key()).recent, 20_000);
    const retried = await post(path, { amount: 500 }, 'slow-refund');
    expect([retried.status, retried.body.error.code]).toEqual([409, 'idempotency_key_in_use']);
    answer();
    const done = await first;
    expect([done.status, done.body.status, done.body.amount]).toEqual([201, 'succeeded', 500]);
    expect(sent).toEqual([done.body.id]);
    const invoice = await app.api('GET', `/v1/invoices/${paid.invoice.id}`);
    expect(invoice.body).toMatchObject({ status: 'PARTIALLY_REFUNDED', amount_refunded: 500 });
    // Answered: the key replays the refund.
    const replay = await post(path, { amount: 500 }, 'slow-refund');
    expect([replay.status, replay.replayed, replay.body.id]).toEqual([201, 'true', done.body.id]);
  });

  /*
   * A 503 `database_unavailable` ("retry later", Retry-After) of a request that changed nothing (no
   * unit of work committed, no gateway called) frees its key: the retry the answer asks for, with the
   * same key, runs. Kept, it was replayed for the key's 24 hours and the payment never recorded.
   */
  it('a retry after a 503 database_unavailable that changed nothing runs with its key (an offline payment of 1000)', async () => {
    const { invoice } = await openInvoice(app);
    // The database refuses the write as a server shutting down does (57P03 cannot_connect_now).
    await sql`CREATE OR REPLACE FUNCTION database_unavailable() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'the database system is shutting down' USING ERRCODE = '57P03'; END $$`.execute(
      app.runtime.db,
    );
    await sql`CREATE TRIGGER database_unavailable BEFORE INSERT ON offline_payments FOR EACH ROW
      EXECUTE FUNCTION database_unavailable()`.execute(app.runtime.db);
    const path = `/v1/invoices/${invoice.id}/payments`;
    const body = { method: 'BANK', amount: 1000 };
    const first = await post(path, body, 'offline-503');
    expect([first.status, first.body.error.code, first.retryAfter]).toEqual([
      503,
      'database_unavailable',
      '5',
    ]);
    const paidOf = async () =>
      (
        await app.runtime.db
          .selectFrom('invoices')
          .select('amount_paid')
          .where('id', '=', invoice.id)
          .executeTakeFirstOrThrow()
      ).amount_paid;
    expect(await paidOf()).toBe(0n);
    await sql`DROP TRIGGER database_unavailable ON offline_payments`.execute(app.runtime.db);
    const again = await post(path, body, 'offline-503');
    expect([again.status, again.replayed]).toEqual([201, null]);
    expect(await paidOf()).toBe(1000n);
    // Now stored: the same key again replays the 201 and records nothing more.
    const replay = await post(path, body, 'offline-503');
    expect([replay.status, replay.replayed]).toEqual([201, 'true']);
    expect(await paidOf()).toBe(1000n);
  });
});
