// The `abandoned_event` exception of a gateway account's delivery records that account, so
// `GET /v1/reconciliation-exceptions?gateway_account=gwa_…` lists it (not under the default account).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/db/ids.ts';
import { abandonOrphanedEvents } from '../../src/inbox/replay.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

describe('abandoned deliveries of a gateway account', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ BILLHOOK_SECRET_KEY: randomBytes(32).toString('hex') });
  });
  afterAll(async () => {
    await app?.stop();
  });

  it('records the account on the abandoned_event exception', async () => {
    const created = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'stripe',
      name: 'A',
      mode: 'test',
      credentials: { webhook_secrets: ['whsec_review_abandoned_01'] },
    });
    const account = created.body.id as string;
    const inboxId = newId('evt');
    await app.runtime.db
      .insertInto('inbox')
      .values({
        id: inboxId,
        gateway: 'stripe',
        gateway_account: account,
        gateway_event_id: `evt_${randomBytes(8).toString('hex')}`,
        event_type: 'payment_intent.succeeded',
        body: '{}',
        status: 'retrying',
        last_error: 'Stripe was not reachable',
      })
      .execute();
    expect(await abandonOrphanedEvents(app.runtime.db, 'system')).toContain(inboxId);
    const exceptions = await app.runtime.db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'gateway_account'])
      .where('inbox_id', '=', inboxId)
      .execute();
    expect(exceptions).toEqual([{ kind: 'abandoned_event', gateway_account: account }]);
  });
});
