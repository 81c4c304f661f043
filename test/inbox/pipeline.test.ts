import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { createTestDatabase } from '../support/database.ts';
import { blockedInserts, holdInboxLock } from '../support/inbox-lock.ts';
import { startWireProxy, type WireConnection, type WireProxy } from '../support/pg-wire.ts';
import { deliverStripe, paymentIntentSucceeded } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

/** An inbox INSERT, by its text (first use on a connection) or its prepared statement's name. */
const INBOX_INSERT = /^INSERT INTO inbox |^billhook_inbox_insert_/;
const insertsInbox = (connection: WireConnection) => connection.written.some((q) => INBOX_INSERT.test(q));

/**
 * Issue #23 item 6: the group commit of src/inbox/receive.ts is fast because its connections run in
 * node-postgres' pipeline mode (`pipeline: true`, with the socket corked): a batch's BEGIN, inbox
 * INSERT, pg-boss job INSERT and COMMIT go out in one write, without waiting for each answer. An
 * upgrade of pg that drops or changes that mode would still store every webhook, only one round trip
 * per statement — so this test watches the wire (a proxy reading the PostgreSQL protocol between the
 * app and the database) rather than the rows alone. See src/inbox/UPGRADING.md.
 */
describe('the inbox group commit goes out pipelined', () => {
  let direct: string;
  let proxy: WireProxy;
  let app: TestApp;
  beforeAll(async () => {
    direct = await createTestDatabase();
    proxy = await startWireProxy(direct);
    app = await startTestApp({ DATABASE_URL: proxy.url }, 'web');
  });
  afterAll(async () => {
    await app?.stop();
    await proxy?.close();
  });

  it('writes COMMIT (and the job) while the inbox INSERT still waits, and stores a batch of concurrent webhooks through it', async () => {
    // The database falls behind: inserts into the inbox wait for a lock this session holds.
    const deliveries = Array.from({ length: 20 }, (_, n) =>
      paymentIntentSucceeded({
        eventId: `evt_pipeline_${n}`,
        intentId: `pi_pipeline_${n}`,
        amount: 1000,
        currency: 'usd',
        reference: `txn_pipeline_${n}`,
      }),
    );
    const blocker = await holdInboxLock(direct);
    let answered: Awaited<ReturnType<typeof deliverStripe>>[];
    try {
      const responses = deliveries.map((payload) => deliverStripe(app.url, payload));
      await waitFor(
        'an inbox INSERT waiting for the lock',
        async () => (await blockedInserts(app.runtime.db)) > 0,
      );
      // Pipelined, the rest of the transaction is already written behind the waiting INSERT: the
      // job INSERT and COMMIT are unanswered on the same connection. Without pipelining the client
      // writes one statement at a time, so nothing follows the INSERT until it is answered.
      const blocked = await waitFor(
        'a connection with COMMIT written behind its waiting inbox INSERT',
        async () =>
          proxy.connections.find(
            (c) =>
              c.pending.length >= 3 && INBOX_INSERT.test(c.pending[0] ?? '') && c.pending.at(-1) === 'COMMIT',
          ),
        10_000,
      );
      expect(blocked.pending).toHaveLength(3);
      await blocker.query('COMMIT');
      answered = await Promise.all(responses);
    } finally {
      await blocker.end();
    }
    expect(answered.map((response) => response.status)).toEqual(deliveries.map(() => 200));

    // Every webhook stored, each named by exactly one webhook.process job.
    const stored = await app.runtime.db
      .selectFrom('inbox')
      .select('id')
      .where('gateway_event_id', 'like', 'evt_pipeline_%')
      .execute();
    expect(stored).toHaveLength(20);
    const jobs = await sql<{ inbox_id: string }>`
      SELECT jsonb_array_elements_text(data->'inboxIds') AS inbox_id
      FROM pgboss.job WHERE name = 'webhook.process'`.execute(app.runtime.db);
    expect(jobs.rows.map((j) => j.inbox_id).sort()).toEqual(stored.map((r) => r.id).sort());

    // Every connection that stored inbox rows ran pipelined (several statements in flight at once),
    // and there were no more of them than the inbox's transactions in flight (2).
    const inboxConnections = proxy.connections.filter(insertsInbox);
    expect(inboxConnections.length).toBeGreaterThan(0);
    expect(inboxConnections.length).toBeLessThanOrEqual(2);
    for (const connection of inboxConnections) expect(connection.maxPending).toBeGreaterThanOrEqual(3);
  });
});
