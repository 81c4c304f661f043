import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/queue/queues.ts';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app.ts';
import { waitFor, wakeWorkers } from '../support/wait.ts';

const basic = `Basic ${Buffer.from(`${ADMIN_KEY}:`).toString('base64')}`;

/** Issue #22 item 13: a dead letter is handled once, and no stored webhook waits forever. */
describe('dead letters of webhook.process', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ WEBHOOK_RETRY_LIMIT: '0' });
  });
  afterAll(() => app.stop());

  const statusOf = (id: string) =>
    app.runtime.db
      .selectFrom('inbox')
      .select(['status', 'outcome', 'last_error'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();

  /**
   * A stored Stripe event as a dead letter leaves it: `retrying` with its error, named by a queued
   * `webhook.process.dead` job. The event itself processes fine (a `customer.created`, ignored), as
   * after its cause was fixed.
   */
  async function deadEvent(eventId: string): Promise<string> {
    const body = JSON.stringify({ id: eventId, type: 'customer.created', created: 1, data: { object: {} } });
    const receipt = await app.runtime.inbox!.receive({
      gateway: 'stripe',
      eventId,
      eventType: 'customer.created',
      body,
    });
    const id = receipt.id!;
    await waitFor('the first processing', async () => (await statusOf(id)).status === 'ignored');
    const error = 'stripe did not answer the lookup';
    await app.runtime.db
      .updateTable('inbox')
      .set({ status: 'retrying', outcome: null, last_error: error, processed_at: null })
      .where('id', '=', id)
      .execute();
    await app.runtime.boss.send(`${QUEUES.webhookProcess}.dead`, { inboxIds: [id], errors: [{ id, error }] });
    return id;
  }

  /** How many `webhook.process` jobs (any state) and queued dead letters name the event. */
  async function jobsNaming(id: string): Promise<{ jobs: number; dead: number }> {
    const { rows } = await sql<{ jobs: number; dead: number }>`
      SELECT count(*) FILTER (WHERE name = 'webhook.process')::int AS jobs,
             count(*) FILTER (WHERE name = 'webhook.process.dead' AND state = 'created')::int AS dead
      FROM pgboss.job WHERE data->'inboxIds' ? ${id}`.execute(app.runtime.db);
    return rows[0]!;
  }

  /** Posts a dashboard form (with the page's token) and expects the redirect back. */
  async function post(action: string, fields: Record<string, string> = {}): Promise<void> {
    // The console's form token, from any of its pages (each carries it in its Log out form).
    const page = await (await fetch(`${app.url}/admin`, { headers: { authorization: basic } })).text();
    const token = /name="token" value="([\w-]+)"/.exec(page)![1]!;
    const response = await fetch(`${app.url}${action}`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, ...fields }).toString(),
      redirect: 'manual',
    });
    expect(response.status).toBe(303);
  }

  it('Replay takes the event out of its dead letter: a Retry all afterwards sends it no second time', async () => {
    const id = await deadEvent('evt_dead_replayed');
    const before = await jobsNaming(id);
    expect(before.dead).toBe(1);

    await post(`/admin/inbox/${id}/replay`);
    await waitFor('the replay', async () => (await statusOf(id)).status === 'ignored');
    // One job more (the replay's), and no dead letter left naming the event.
    expect(await jobsNaming(id)).toEqual({ jobs: before.jobs + 1, dead: 0 });

    await post('/admin/dead-letters/retry');
    expect(await jobsNaming(id)).toEqual({ jobs: before.jobs + 1, dead: 0 });
    expect((await statusOf(id)).status).toBe('ignored');
  });

  it('two Retry all at once send each dead letter once, and a second retry sends nothing', async () => {
    const ids = [await deadEvent('evt_dead_retry_a'), await deadEvent('evt_dead_retry_b')];
    const before = await Promise.all(ids.map(jobsNaming));
    await Promise.all([
      post('/admin/dead-letters/retry'),
      post('/admin/dead-letters/retry'),
      post('/admin/dead-letters/retry'),
    ]);
    for (const [i, id] of ids.entries()) {
      await waitFor('the retry', async () => (await statusOf(id)).status === 'ignored');
      expect(await jobsNaming(id)).toEqual({ jobs: before[i]!.jobs + 1, dead: 0 });
    }
    await post('/admin/dead-letters/retry');
    for (const [i, id] of ids.entries())
      expect(await jobsNaming(id)).toEqual({ jobs: before[i]!.jobs + 1, dead: 0 });
  });

  it('Delete all gives the events of the deleted dead letters a final status and an exception; a replay still processes them', async () => {
    const id = await deadEvent('evt_dead_purged');
    await post('/admin/dead-letters/purge');
    expect(await jobsNaming(id)).toMatchObject({ dead: 0 });
    const row = await statusOf(id);
    expect(row.status).toBe('exception');
    expect(row.outcome).toBe('abandoned: stripe did not answer the lookup');
    const exceptions = (await app.api('GET', '/v1/reconciliation-exceptions')).body.data;
    expect(
      exceptions.filter((x: { inbox_id?: string; event?: string }) => JSON.stringify(x).includes(id)),
    ).toEqual([expect.objectContaining({ kind: 'abandoned_event', status: 'open', gateway: 'stripe' })]);
    // The exception is opened by the admin key that pressed Delete all (the dashboard's actor).
    const opened = await app.runtime.db
      .selectFrom('activities')
      .innerJoin('reconciliation_exceptions as x', 'x.id', 'activities.resource_id')
      .innerJoin('api_keys as k', 'k.id', 'activities.actor')
      .select(['activities.action', 'k.name'])
      .where('x.inbox_id', '=', id)
      .execute();
    expect(opened).toEqual([{ action: 'reconciliation_exception.opened', name: 'BILLHOOK_ADMIN_KEY' }]);

    expect((await app.api('POST', `/v1/events/${id}/replay`)).status).toBe(202);
    await waitFor('the replay', async () => (await statusOf(id)).status === 'ignored');
  });

  /** The confirmation page of Retry all / Delete all: its count and the form fields it posts. */
  async function confirmation(
    action: 'retry' | 'purge',
  ): Promise<{ text: string; fields: Record<string, string> }> {
    const page = await (
      await fetch(`${app.url}/admin/dead-letters/confirm?action=${action}`, {
        headers: { authorization: basic },
      })
    ).text();
    const form = /<form[^>]*action="\/admin\/dead-letters\/\w+">([\s\S]*?)<\/form>/.exec(page)![1]!;
    const fields = Object.fromEntries(
      [...form.matchAll(/<input type="hidden" name="(\w+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!]),
    );
    delete fields.token;
    return { text: /<p id="confirm">([^<]*)<\/p>/.exec(page)![1]!, fields };
  }

  it('Retry all and Delete all act on the dead letters the confirmation counted, not one that arrived after it', async () => {
    const counted = await deadEvent('evt_dead_counted');
    const retry = await confirmation('retry');
    expect(retry.text).toMatch(/^Retry all \d+ dead letters?\?$/);
    const late = await deadEvent('evt_dead_late');
    const before = { counted: await jobsNaming(counted), late: await jobsNaming(late) };
    await post('/admin/dead-letters/retry', retry.fields);
    await waitFor('the counted retry', async () => (await statusOf(counted)).status === 'ignored');
    expect(await jobsNaming(counted)).toEqual({ jobs: before.counted.jobs + 1, dead: 0 });
    // The one that arrived after the confirmation is still a dead letter, untouched.
    expect(await jobsNaming(late)).toEqual(before.late);
    expect((await statusOf(late)).status).toBe('retrying');

    const purge = await confirmation('purge');
    const later = await deadEvent('evt_dead_later');
    await post('/admin/dead-letters/purge', purge.fields);
    expect((await statusOf(late)).status).toBe('exception');
    expect(await jobsNaming(late)).toMatchObject({ dead: 0 });
    // Arrived after the Delete all's confirmation: still waiting for an operator.
    expect(await jobsNaming(later)).toMatchObject({ dead: 1 });
    expect(await statusOf(later)).toMatchObject({ status: 'retrying', outcome: null });
  });

  it('a dead letter gone past its retention: the inbox sweep gives its event a final status, and leaves one still dead-lettered alone', {
    timeout: 120_000,
  }, async () => {
    const expired = await deadEvent('evt_dead_expired');
    const waiting = await deadEvent('evt_dead_waiting');
    // What pg-boss's retention does to a dead letter 30 days old.
    await sql`DELETE FROM pgboss.job WHERE name = 'webhook.process.dead' AND data->'inboxIds' ? ${expired}`.execute(
      app.runtime.db,
    );
    // The sweep's worker looks for jobs every 30 s: woken, it takes the job at once.
    await app.runtime.boss.send(QUEUES.inboxSweep, {});
    wakeWorkers(app.runtime.boss, QUEUES.inboxSweep);
    await waitFor('the sweep', async () => (await statusOf(expired)).status === 'exception', 90_000);
    expect((await statusOf(expired)).outcome).toBe('abandoned: stripe did not answer the lookup');
    expect(await statusOf(waiting)).toMatchObject({ status: 'retrying', outcome: null });
    expect(app.logs).toContainEqual(
      expect.objectContaining({
        level: 40,
        inboxIds: [expired],
        msg: 'inbox.sweep: webhooks whose dead letter expired are exceptions now',
      }),
    );
  });
});
