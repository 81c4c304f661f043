import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyring } from '../../src/accounts/cipher.ts';
import { type ActivityInput, recordActivity } from '../../src/activities/activities.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { attemptDelivery } from '../../src/outbound/deliver.ts';
import { dispatchEvents } from '../../src/outbound/dispatch.ts';
import { createEndpoint } from '../../src/outbound/endpoints.ts';
import { OUTBOUND_EVENT_TYPES } from '../../src/outbound/events.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/wait.ts';

const SECRET_KEY = randomBytes(32);
const KEYS = keyring(SECRET_KEY, undefined);

/**
 * The outbox (src/outbound/dispatch.ts) below HTTP: which activities become which events, none for
 * a change that rolled back, none lost to a writer that commits late; and one delivery attempt's
 * record on a refusing or unreachable receiver.
 */
describe('outbound dispatcher', () => {
  let app: TestApp;
  let receiver: Server;
  let base: string;
  let status = 200;

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.statusCode = status;
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    app = await startTestApp({ BILLHOOK_SECRET_KEY: SECRET_KEY.toString('base64') });
    await createEndpoint(app.runtime.db, 'system', KEYS, {
      url: `${base}/all`,
      enabledEvents: [...OUTBOUND_EVENT_TYPES],
    });
  });
  afterAll(async () => {
    await app.stop();
    await new Promise((resolve) => receiver.close(resolve));
  });

  const record = (...inputs: ActivityInput[]) =>
    inUnitOfWork(app.runtime.db, { actor: 'system' }, (work) => recordActivity(work, ...inputs));
  /** The stored event of resource `id`, if any: its type and body. */
  const eventOf = async (id: string) => {
    const rows = await app.runtime.db.selectFrom('outbound_events').select(['type', 'body']).execute();
    return rows
      .map((row) => ({ type: row.type, body: JSON.parse(row.body) }))
      .filter((row) => row.body.data.object.id === id);
  };

  it('turns each kind of activity into its event type, and ignores the others', async () => {
    await record(
      {
        resourceType: 'invoice',
        resourceId: 'inv_a',
        action: 'invoice.paid',
        customerId: 'cus_a',
        data: { amount_paid: '4620' },
      },
      {
        resourceType: 'transaction',
        resourceId: 'txn_b',
        action: 'transaction.failed',
        data: { invoice: 'inv_b', failure_code: 'card_declined' },
      },
      {
        resourceType: 'transaction',
        resourceId: 'txn_c',
        action: 'transaction.failed',
        data: { invoice: null },
      },
      {
        resourceType: 'refund',
        resourceId: 're_d',
        action: 'refund.succeeded',
        data: { amount: '100', currency: 'EUR' },
      },
      { resourceType: 'dispute', resourceId: 'dp_e', action: 'dispute.opened', data: {} },
      { resourceType: 'dispute', resourceId: 'dp_f', action: 'dispute.lost', data: {} },
      { resourceType: 'dispute', resourceId: 'dp_g', action: 'dispute.inquiry', data: {} },
      {
        resourceType: 'reconciliation_exception',
        resourceId: 'rex_h',
        action: 'reconciliation_exception.opened',
        data: { kind: 'unknown_outcome' },
      },
      { resourceType: 'payout', resourceId: 'pyo_i', action: 'payout.paid', data: { amount: '5000' } },
      { resourceType: 'payout', resourceId: 'pyo_j', action: 'payout.in_transit', data: {} },
      { resourceType: 'customer', resourceId: 'cus_k', action: 'customer.created', data: {} },
    );
    await dispatchEvents(app.runtime.db, app.runtime.boss);
    const types = async (id: string) => (await eventOf(id)).map((e) => e.type);
    expect(await types('inv_a')).toEqual(['invoice.paid']);
    expect(await types('inv_b')).toEqual(['invoice.payment_failed']);
    expect(await types('txn_c')).toEqual([]);
    expect(await types('re_d')).toEqual(['refund.succeeded']);
    expect(await types('dp_e')).toEqual(['dispute.opened']);
    expect(await types('dp_f')).toEqual(['dispute.closed']);
    expect(await types('dp_g')).toEqual([]);
    expect(await types('rex_h')).toEqual(['reconciliation_exception.opened']);
    expect(await types('pyo_i')).toEqual(['payout.paid']);
    expect(await types('pyo_j')).toEqual([]);
    expect(await types('cus_k')).toEqual([]);
    const [paid] = await eventOf('inv_a');
    expect(paid?.body).toMatchObject({
      object: 'event',
      type: 'invoice.paid',
      // The activity log keeps amounts as decimal strings; the event carries them as integers.
      data: { object: { id: 'inv_a', object: 'invoice', customer: 'cus_a', amount_paid: 4620 } },
    });
    expect(paid?.body.created).toBeTypeOf('number');
    const [failed] = await eventOf('inv_b');
    expect(failed?.body.data.object.transaction).toMatchObject({
      id: 'txn_b',
      failure_code: 'card_declined',
    });
    expect((await eventOf('dp_f'))[0]?.body.data.object.status).toBe('lost');
  });

  it('sends nothing for a change that rolled back', async () => {
    await expect(
      inUnitOfWork(app.runtime.db, { actor: 'system' }, async (work) => {
        await recordActivity(work, {
          resourceType: 'invoice',
          resourceId: 'inv_rolled_back',
          action: 'invoice.paid',
        });
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    await dispatchEvents(app.runtime.db, app.runtime.boss);
    expect(await eventOf('inv_rolled_back')).toEqual([]);
  });

  it('waits for a writer in flight, so an activity committed after a later one is not skipped', async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let wrote = () => {};
    const written = new Promise<void>((resolve) => {
      wrote = resolve;
    });
    const writer = inUnitOfWork(app.runtime.db, { actor: 'system' }, async (work) => {
      await recordActivity(work, { resourceType: 'invoice', resourceId: 'inv_late', action: 'invoice.paid' });
      wrote();
      await held;
    });
    await written;
    await record({ resourceType: 'invoice', resourceId: 'inv_early', action: 'invoice.paid' });
    const dispatching = dispatchEvents(app.runtime.db, app.runtime.boss);
    await waitFor('the dispatcher waiting for the writer', async () => {
      const { rows } = await sql<{ n: string }>`
        SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`.execute(
        app.runtime.db,
      );
      return Number(rows[0]?.n) > 0;
    });
    release();
    await writer;
    await dispatching;
    expect(await eventOf('inv_late')).toHaveLength(1);
    expect(await eventOf('inv_early')).toHaveLength(1);
  });

  it('records an attempt a receiver refuses or cannot take: retrying, failed on the last try', async () => {
    const refusing = await createEndpoint(app.runtime.db, 'system', KEYS, {
      url: `${base}/refusing`,
      enabledEvents: ['payout.paid'],
    });
    const closed = await createEndpoint(app.runtime.db, 'system', KEYS, {
      url: 'http://127.0.0.1:9/closed',
      enabledEvents: ['payout.paid'],
    });
    // Their own deliveries, not the scheduled workers': no jobs for these two.
    await app.runtime.db
      .updateTable('webhook_endpoints')
      .set({ disabled_at: new Date() })
      .where('id', 'in', [refusing.endpoint.id, closed.endpoint.id])
      .execute();
    await record({ resourceType: 'payout', resourceId: 'pyo_attempts', action: 'payout.paid' });
    await dispatchEvents(app.runtime.db, app.runtime.boss);
    const [event] = await app.runtime.db
      .selectFrom('outbound_events')
      .select('id')
      .where('body', 'like', '%pyo_attempts%')
      .execute();
    expect(event).toBeDefined();
    await app.runtime.db
      .updateTable('webhook_endpoints')
      .set({ disabled_at: null })
      .where('id', 'in', [refusing.endpoint.id, closed.endpoint.id])
      .execute();
    const deliveryOf = async (endpoint: string) => {
      const row = await app.runtime.db
        .insertInto('webhook_deliveries')
        .values({
          id: `wdl_${endpoint}`,
          endpoint_id: endpoint,
          event_id: event?.id ?? '',
          event_type: 'payout.paid',
          status: 'pending',
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return row.id;
    };
    const row = (id: string) =>
      app.runtime.db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow();

    status = 503;
    const refused = await deliveryOf(refusing.endpoint.id);
    expect(await attemptDelivery(app.runtime.db, KEYS, refused, false)).toBe('retry');
    expect(await row(refused)).toMatchObject({
      status: 'retrying',
      attempts: 1,
      last_status_code: 503,
      last_error: 'HTTP 503',
    });
    expect(await attemptDelivery(app.runtime.db, KEYS, refused, true)).toBe('retry');
    expect(await row(refused)).toMatchObject({ status: 'failed', attempts: 2, delivered_at: null });
    // Its dead letter retried (a fresh set of retries): attempted again, still refused.
    expect(await attemptDelivery(app.runtime.db, KEYS, refused, false)).toBe('retry');
    expect(await row(refused)).toMatchObject({ status: 'retrying', attempts: 3 });
    status = 200;

    const unreachable = await deliveryOf(closed.endpoint.id);
    expect(await attemptDelivery(app.runtime.db, KEYS, unreachable, false)).toBe('retry');
    const after = await row(unreachable);
    expect(after).toMatchObject({ status: 'retrying', attempts: 1, last_status_code: null });
    expect(after.last_error).toMatch(/fetch failed|ECONNREFUSED/);
  });
});
