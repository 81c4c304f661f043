import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dispatchEvents } from '../../src/outbound/dispatch.ts';
import type { TestApp } from '../support/app.ts';
import { paidAgain, paidStripeInvoice } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';

/** PRODUCT.md §14: `invoice.paid` is pushed once per invoice, when it becomes PAID. */
describe('outbound invoice.paid of an invoice paid twice', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({ BILLHOOK_SECRET_KEY: randomBytes(32).toString('base64') });
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => stopOfflineTestApp(app));

  it('a duplicate payment of a PAID invoice is applied (invoice.payment_applied), not a second invoice.paid', async () => {
    const endpoint = await app.api('POST', '/v1/webhook-endpoints', {
      // Nothing listens there: only what is dispatched is read, not what is delivered.
      url: 'http://127.0.0.1:9/hooks',
      enabled_events: ['invoice.paid', 'reconciliation_exception.opened'],
    });
    expect(endpoint.status).toBe(201);
    const paid = await paidStripeInvoice(app);
    const { second } = await paidAgain(app, paid.invoice.id, BigInt(paid.invoice.total), 'EUR');
    await dispatchEvents(app.runtime.db, app.runtime.boss);

    const events = await app.runtime.db
      .selectFrom('outbound_events')
      .select([
        'type',
        sql<string>`body::jsonb #>> '{data,object,id}'`.as('object'),
        sql<string>`body::jsonb #>> '{data,object,amount}'`.as('amount'),
        sql<string>`body::jsonb #>> '{data,object,amount_paid}'`.as('amount_paid'),
      ])
      .orderBy('id')
      .execute();
    // One invoice.paid, for the first payment; the duplicate is the exception's event.
    expect(events.filter((e) => e.type === 'invoice.paid')).toEqual([
      {
        type: 'invoice.paid',
        object: paid.invoice.id,
        amount: String(paid.invoice.total),
        amount_paid: String(paid.invoice.total),
      },
    ]);
    expect(events.filter((e) => e.type === 'reconciliation_exception.opened')).toHaveLength(1);
    const activities = await app.runtime.db
      .selectFrom('activities')
      .select([
        'action',
        sql<string>`data->>'amount'`.as('amount'),
        sql<string>`data->>'amount_paid'`.as('paid'),
      ])
      .where('resource_id', '=', paid.invoice.id)
      .where('action', 'in', ['invoice.paid', 'invoice.payment_applied'])
      .orderBy('sequence')
      .execute();
    const total = String(paid.invoice.total);
    expect(activities).toEqual([
      { action: 'invoice.paid', amount: total, paid: total },
      { action: 'invoice.payment_applied', amount: total, paid: String(2 * paid.invoice.total) },
    ]);
    const exception = await app.runtime.db
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('transaction_id', '=', second.id)
      .executeTakeFirstOrThrow();
    expect(exception.kind).toBe('duplicate_payment');
  });
});
