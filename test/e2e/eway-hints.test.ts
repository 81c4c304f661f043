import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  EWAY_TEST_AUTHORIZATION,
  EWAY_TEST_KEY,
  EWAY_TEST_PASSWORD,
  ewayFixture,
  FIXTURE_TOKEN,
} from '../gateways/eway/fixtures.ts';
import type { TestApp } from '../support/app.ts';
import { ledgerByCode, openInvoice as openGatewayInvoice } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { waitFor } from '../support/wait.ts';

const EWAY_API_BASE = 'https://eway-hints.test';
const APPROVED = ewayFixture('api.transaction.token_payment.approved.json');

const openInvoice = (app: TestApp, amount: number) =>
  openGatewayInvoice(app, { amount, currency: 'aud', gateway: 'eway', token: FIXTURE_TOKEN });

/** Fakes one `POST /Transaction`: approved as `transactionId`, echoing the request's payment. */
function ewayApproves(transactionId: number) {
  nock(EWAY_API_BASE)
    .post('/Transaction')
    .reply(async (request: Request) => {
      const body = JSON.parse(await request.text());
      return [
        200,
        { ...APPROVED, TransactionID: transactionId, Payment: { ...APPROVED.Payment, ...body.Payment } },
      ];
    });
}

/**
 * Fakes eWAY's Transaction Query for `id` for as long as the test runs, answering `answer(n)` to the
 * n-th call (the SDK's answer carrying `facts`, or an HTTP status).
 * @returns how many times eWAY was asked
 */
function ewayQueried(id: number, answer: (n: number) => Record<string, unknown> | number) {
  const calls = { n: 0 };
  nock(EWAY_API_BASE)
    .persist()
    .get(`/Transaction/${id}`)
    .matchHeader('authorization', EWAY_TEST_AUTHORIZATION)
    .reply(() => {
      calls.n += 1;
      const facts = answer(calls.n);
      if (typeof facts === 'number') return [facts, 'Service Unavailable'];
      const body = ewayFixture('api.transaction.query_by_id.json');
      Object.assign(body.Transactions[0], { TransactionID: id, CurrencyCode: 'AUD' }, facts);
      return [200, body];
    });
  return calls;
}

async function deliverHint(app: TestApp, body: string) {
  const response = await fetch(`${app.url}/webhooks/eway`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  return response.status;
}

/** The inbox rows of hints for `transactionId` (`transaction:<id>`, suffixed `@<inbox id>` once done). */
async function hintRows(app: TestApp, transactionId: number) {
  return app.runtime.db
    .selectFrom('inbox')
    .select(['id', 'status', 'attempts', 'last_error'])
    .where((eb) =>
      eb.or([
        eb('gateway_event_id', '=', `transaction:${transactionId}`),
        eb('gateway_event_id', 'like', `transaction:${transactionId}@%`),
      ]),
    )
    .orderBy('received_at')
    .execute();
}

const done = (rows: { status: string }[], n: number) =>
  rows.length === n && rows.every((row) => row.status !== 'received' && row.status !== 'retrying');

async function openExceptions(app: TestApp): Promise<number> {
  return (await app.api('GET', '/v1/reconciliation-exceptions?limit=100')).body.data.length;
}

/**
 * Issue #22 items 2 and 3: an unsigned eWAY hint costs eWAY at most one query per transaction a
 * minute (and none when it cannot be about billhook's payments), a hint for a transaction billhook
 * did not make is dropped quietly, and an early hint never makes a later one a duplicate.
 */
describe('eWAY callback hints: bounded queries, quiet drops, no early duplicates', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({
      EWAY_API_KEY: EWAY_TEST_KEY,
      EWAY_API_PASSWORD: EWAY_TEST_PASSWORD,
      EWAY_API_BASE,
      UNSIGNED_WEBHOOK_RATE_LIMIT_PER_MINUTE: '1000',
    });
  });
  afterEach(() => {
    const pending = nock.pendingMocks().filter((mock) => !mock.includes('/Transaction/'));
    nock.cleanAll();
    expect(pending).toEqual([]);
  });
  afterAll(() => stopOfflineTestApp(app));

  it('a hint sent before its transaction exists does not make the later one a duplicate: the later one is queried and booked', async () => {
    const calls = ewayQueried(70000001, () => ({ InvoiceReference: 'set below', TotalAmount: 2500 }));
    // The hint arrives first: billhook has no eWAY payment with this id and awaits none, so eWAY is not asked.
    expect(await deliverHint(app, 'TransactionID=70000001')).toBe(200);
    await waitFor('the early hint to be dropped', async () => done(await hintRows(app, 70000001), 1));
    expect((await hintRows(app, 70000001))[0]!.status).toBe('ignored');
    expect(calls.n).toBe(0);

    // billhook charges; eWAY answers 503, though it made transaction 70000001 with our reference.
    const { invoice } = await openInvoice(app, 2500);
    nock(EWAY_API_BASE).post('/Transaction').reply(503, 'Service Unavailable');
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction.status).toBe('unknown');
    nock.cleanAll();
    const asked = ewayQueried(70000001, () => ({
      InvoiceReference: charged.body.transaction.id,
      TotalAmount: 2500,
    }));

    // eWAY's genuine callback for the same TransactionID: stored, queried, booked.
    expect(await deliverHint(app, 'TransactionID=70000001')).toBe(200);
    await waitFor('the second hint to settle', async () => done(await hintRows(app, 70000001), 2));
    expect((await hintRows(app, 70000001)).map((row) => row.status)).toEqual(['ignored', 'processed']);
    expect(asked.n).toBe(1);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 2500,
    });
    expect((await app.api('GET', `/v1/transactions/${charged.body.transaction.id}`)).body).toMatchObject({
      status: 'succeeded',
      gateway_transaction_id: '70000001',
    });
  });

  it('drops hints for transactions billhook did not make without asking eWAY, and raises no exception', async () => {
    const exceptions = await openExceptions(app);
    const before = await ledgerByCode(app);
    // No nock for these ids: any query would fail (network cut off) and leave the row retrying.
    const ids = Array.from({ length: 20 }, (_, i) => 71000000 + i);
    const statuses = await Promise.all(ids.map((id) => deliverHint(app, `TransactionID=${id}`)));
    expect(statuses.every((status) => status === 200)).toBe(true);
    for (const id of ids) await waitFor(`hint ${id}`, async () => done(await hintRows(app, id), 1));
    for (const id of ids)
      expect((await hintRows(app, id))[0]).toMatchObject({ status: 'ignored', attempts: 1 });
    expect(await openExceptions(app)).toBe(exceptions);
    expect(await ledgerByCode(app)).toEqual(before);
    expect(app.logs.filter((line) => line.msg === 'eWAY hint dropped' && line.level === 30)).toHaveLength(
      20 + 1, // and the early hint of the test before
    );
  });

  it('while a charge awaits its TransactionID, a hint eWAY answers with another merchant reference is queried once and dropped, no exception', async () => {
    const { invoice } = await openInvoice(app, 700);
    nock(EWAY_API_BASE).post('/Transaction').reply(502, '');
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction.status).toBe('unknown');
    const exceptions = await openExceptions(app);
    // eWAY has 72000001, but it is not billhook's (another InvoiceReference, no billhook id).
    const calls = ewayQueried(72000001, () => ({ InvoiceReference: 'SHOP-ELSEWHERE-17', TotalAmount: 700 }));
    expect(await deliverHint(app, 'TransactionID=72000001')).toBe(200);
    await waitFor('the hint to settle', async () => done(await hintRows(app, 72000001), 1));
    // Once before: it retried as an unknown payment, then became an unknown_entity exception.
    expect((await hintRows(app, 72000001))[0]).toMatchObject({ status: 'ignored', attempts: 1 });
    expect(calls.n).toBe(1);
    expect(await openExceptions(app)).toBe(exceptions);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.status).toBe('OPEN');
  });

  it('with eWAY erroring, the retries of a hint reuse the failed answer of the last minute: one call, not one per attempt', async () => {
    const { invoice } = await openInvoice(app, 1200);
    ewayApproves(73000001);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({
      status: 'succeeded',
      gateway_transaction_id: '73000001',
    });
    const calls = ewayQueried(73000001, () => 503);
    expect(await deliverHint(app, 'TransactionID=73000001')).toBe(200);
    // WEBHOOK_RETRY_LIMIT is 2 (1 s, then 2 s apart): three attempts, then the dead-letter queue.
    const [row] = await waitFor('three attempts', async () => {
      const rows = await hintRows(app, 73000001);
      return rows[0] && rows[0].attempts >= 3 ? rows : undefined;
    });
    await waitFor('the dead letter', async () => {
      const { rows } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pgboss.job
        WHERE name = 'webhook.process.dead' AND data->'inboxIds' ? ${row!.id}`.execute(app.runtime.db);
      return rows[0]!.n === 1;
    });
    expect(row).toMatchObject({ status: 'retrying' });
    expect(row!.last_error).toMatch(/HTTP 503/);
    // Before: 1 + 2 retries = 3 calls (and 9 with the default 8 retries).
    expect(calls.n).toBe(1);
  });
});
