import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneInboxBodies, pruneInboxRows } from '../../src/inbox/replay.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { openInvoice, stripeChargeSucceeds } from '../support/flow.ts';
import { deliverStripe, paymentIntentSucceeded } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

const DAY = 86_400_000;
const NOW = new Date('2027-06-01T00:00:00Z');

/** An inbox row received `ageDays` before NOW, with a body unless `body` is null. */
function row(
  id: string,
  status: 'processed' | 'ignored' | 'exception' | 'received' | 'retrying',
  ageDays: number,
  body: string | null = `{"id":"evt_gw_${id}"}`,
) {
  return {
    id,
    gateway: 'stripe' as const,
    gateway_event_id: `evt_gw_${id}`,
    event_type: 'payment_intent.succeeded',
    body,
    status,
    outcome: status === 'received' ? null : 'applied',
    received_at: new Date(NOW.getTime() - ageDays * DAY),
  };
}

describe('inbox retention (PRODUCT §10)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.stop());

  it('drops the raw body of finished events past the retention, keeps the row, and never touches unfinished ones', async () => {
    await app.runtime.db
      .insertInto('inbox')
      .values([
        row('evt_old_processed', 'processed', 91),
        row('evt_old_ignored', 'ignored', 120),
        row('evt_old_exception', 'exception', 95),
        row('evt_old_received', 'received', 100),
        row('evt_old_retrying', 'retrying', 100),
        row('evt_recent_processed', 'processed', 89),
      ])
      .execute();

    expect(await pruneInboxBodies(app.runtime.db, 90, NOW)).toBe(3);
    expect(await pruneInboxBodies(app.runtime.db, 90, NOW)).toBe(0);
    const rows = await app.runtime.db
      .selectFrom('inbox')
      .select(['id', 'body', 'status', 'outcome'])
      .execute();
    const bodies = Object.fromEntries(rows.map((r) => [r.id, r.body !== null]));
    expect(bodies).toEqual({
      evt_old_processed: false,
      evt_old_ignored: false,
      evt_old_exception: false,
      evt_old_received: true,
      evt_old_retrying: true,
      evt_recent_processed: true,
    });
    // The record stays readable; replaying a pruned event is refused and changes nothing.
    const event = await app.api('GET', '/v1/events/evt_old_processed');
    expect(event.body).toMatchObject({ status: 'processed', gateway_event_id: 'evt_gw_evt_old_processed' });
    const replay = await app.api('POST', '/v1/events/evt_old_processed/replay');
    expect(replay.status).toBe(409);
    expect(replay.body.error.code).toBe('event_body_pruned');
    expect((await app.api('GET', '/v1/events/evt_old_processed')).body.status).toBe('processed');
  });

  it('keeps the normalised events of a processed webhook after its raw body is dropped', async () => {
    const opened = await openInvoice(app, { amount: 4200, currency: 'eur' });
    stripeChargeSucceeds('pi_retained_events');
    const charged = await app.api('POST', `/v1/invoices/${opened.invoice.id}/charge`, {});
    nock.cleanAll();
    const txn = charged.body.transaction;
    const payload = paymentIntentSucceeded({
      eventId: 'evt_retained_events',
      intentId: 'pi_retained_events',
      amount: 4200,
      currency: 'eur',
      reference: txn.id,
    });
    expect((await deliverStripe(app.url, payload)).status).toBe(200);
    const processed = await waitFor('the webhook to be processed', async () => {
      const list = await app.api('GET', '/v1/events?gateway=stripe&limit=100');
      const found = list.body.data.find(
        (e: { gateway_event_id: string }) => e.gateway_event_id === 'evt_retained_events',
      );
      return found?.status === 'processed' ? found : undefined;
    });
    const expected = [
      {
        type: 'charge.succeeded',
        gateway_transaction_id: 'pi_retained_events',
        gateway_refund_id: null,
        gateway_dispute_id: null,
        reference: txn.id,
        amount: 4200,
        currency: 'EUR',
        occurred_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
      },
    ];
    expect(processed).toMatchObject({ body_retained: true, events: expected });

    // Far past the retention: the body goes, the events stay.
    expect(await pruneInboxBodies(app.runtime.db, 90, new Date(Date.now() + 91 * DAY))).toBeGreaterThan(0);
    const pruned = await app.api('GET', `/v1/events/${processed.id}`);
    expect(pruned.body).toMatchObject({ status: 'processed', body_retained: false, events: expected });
  });

  it('deletes rows that finished cleanly past the row retention, keeping unfinished ones and those an exception names', async () => {
    await app.runtime.db
      .insertInto('inbox')
      .values([
        row('evt_rows_processed', 'processed', 250, null),
        row('evt_rows_ignored', 'ignored', 250, null),
        row('evt_rows_exception', 'exception', 250, null),
        row('evt_rows_received', 'received', 250, null),
        row('evt_rows_named', 'processed', 250, null),
        row('evt_rows_recent', 'processed', 150, null),
      ])
      .execute();
    await app.runtime.db
      .insertInto('reconciliation_exceptions')
      .values({
        id: 'rex_rows_named',
        kind: 'amount_mismatch',
        gateway: 'stripe',
        inbox_id: 'evt_rows_named',
        message: 'kept for the person resolving it',
      })
      .execute();
    expect(await pruneInboxRows(app.runtime.db, 200, NOW)).toBe(2);
    expect(await pruneInboxRows(app.runtime.db, 200, NOW)).toBe(0);
    const left = await app.runtime.db
      .selectFrom('inbox')
      .select('id')
      .where('id', 'like', 'evt_rows_%')
      .orderBy('id')
      .execute();
    expect(left.map((r) => r.id)).toEqual([
      'evt_rows_exception',
      'evt_rows_named',
      'evt_rows_received',
      'evt_rows_recent',
    ]);
    expect((await app.api('GET', '/v1/events/evt_rows_processed')).status).toBe(404);
  });
});
