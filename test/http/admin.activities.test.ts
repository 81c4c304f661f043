import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/wait.ts';

const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;

describe('/admin actions leave activities', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ WEBHOOK_RETRY_LIMIT: '0' });
  });
  afterAll(() => app.stop());

  const post = (path: string, body: string) =>
    fetch(`${app.url}${path}`, {
      method: 'POST',
      headers: { authorization: basic(ADMIN_KEY), 'content-type': 'application/x-www-form-urlencoded' },
      body,
      redirect: 'manual',
    });

  it('records replay, retry and delete with the admin key that did them as the actor', async () => {
    const adminKey = await app.runtime.db
      .selectFrom('api_keys')
      .select('id')
      .where('name', '=', 'BILLHOOK_ADMIN_KEY')
      .executeTakeFirstOrThrow();
    // PayPal is not configured: the event fails at once and becomes a dead letter.
    const receipt = await app.runtime.inbox!.receive({
      gateway: 'paypal',
      eventId: 'WH-admin-activity',
      eventType: 'PAYMENT.CAPTURE.COMPLETED',
      body: '{}',
    });
    const html = await waitFor('the dead letter on the page', async () => {
      const text = await (
        await fetch(`${app.url}/admin/dead-letters`, { headers: { authorization: basic(ADMIN_KEY) } })
      ).text();
      return text.includes(receipt.id!) ? text : undefined;
    });
    const token = /name="token" value="([\w-]+)"/.exec(html)![1];

    expect((await post(`/admin/inbox/${receipt.id}/replay`, `token=${token}`)).status).toBe(303);
    expect((await post('/admin/dead-letters/retry', `token=${token}`)).status).toBe(303);
    expect((await post('/admin/dead-letters/purge', `token=${token}`)).status).toBe(303);
    // A refused action (a forged form) records nothing.
    expect((await post('/admin/dead-letters/purge', 'token=forged')).status).toBe(403);

    const activities = await app.runtime.db
      .selectFrom('activities')
      .select(['resource_type', 'resource_id', 'action', 'actor'])
      .where('action', 'in', ['event.replayed', 'dead_letters.retried', 'dead_letters.purged'])
      .orderBy('sequence')
      .execute();
    expect(activities).toEqual([
      { resource_type: 'event', resource_id: receipt.id, action: 'event.replayed', actor: adminKey.id },
      {
        resource_type: 'dead_letters',
        resource_id: 'all',
        action: 'dead_letters.retried',
        actor: adminKey.id,
      },
      {
        resource_type: 'dead_letters',
        resource_id: 'all',
        action: 'dead_letters.purged',
        actor: adminKey.id,
      },
    ]);
    // They are readable like any other activity.
    const listed = await app.api('GET', `/v1/activities?resource=${receipt.id}`);
    expect(listed.status).toBe(200);
    expect(listed.body.data).toEqual([
      expect.objectContaining({ action: 'event.replayed', actor: adminKey.id }),
    ]);
  });
});
