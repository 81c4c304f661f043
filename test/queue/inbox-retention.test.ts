import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneInboxBodies } from '../../src/inbox/replay.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

const DAY = 86_400_000;

describe('inbox retention (PRODUCT §10)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.stop());

  it('drops the raw body of finished events past the retention, keeps the row, and never touches unfinished ones', async () => {
    const now = new Date('2027-06-01T00:00:00Z');
    const row = (
      id: string,
      status: 'processed' | 'ignored' | 'exception' | 'received' | 'retrying',
      ageDays: number,
    ) => ({
      id,
      gateway: 'stripe' as const,
      gateway_event_id: `evt_gw_${id}`,
      event_type: 'payment_intent.succeeded',
      body: `{"id":"evt_gw_${id}"}`,
      status,
      outcome: status === 'received' ? null : 'applied',
      received_at: new Date(now.getTime() - ageDays * DAY),
    });
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

    expect(await pruneInboxBodies(app.runtime.db, 90, now)).toBe(3);
    expect(await pruneInboxBodies(app.runtime.db, 90, now)).toBe(0);
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
});
