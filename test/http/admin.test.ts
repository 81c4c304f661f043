import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, revokeApiKey } from '../../src/auth/api-keys.ts';
import { newId } from '../../src/db/ids.ts';
import { raiseException } from '../../src/exceptions/exceptions.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/wait.ts';

const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
const form = 'application/x-www-form-urlencoded';

describe('/admin: the operators console', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({
      WEBHOOK_RETRY_LIMIT: '0',
      // The overview counts jobs by queue from pg-boss's maintenance pass (every 10 s by default).
      QUEUE_MAINTENANCE_INTERVAL_SECONDS: '1',
      BILLHOOK_SECRET_KEY: randomBytes(32).toString('hex'),
      TRUST_PROXY: 'loopback',
    });
  });
  afterAll(() => app.stop());

  /** Logs in with `key` through the form; the answer and the session cookie it set. */
  async function login(key: string, headers: Record<string, string> = {}) {
    const response = await fetch(`${app.url}/admin/login`, {
      method: 'POST',
      headers: { 'content-type': form, ...headers },
      body: new URLSearchParams({ key, next: '/admin/inbox' }).toString(),
      redirect: 'manual',
    });
    const setCookie = response.headers.get('set-cookie') ?? '';
    return { response, setCookie, cookie: setCookie.split(';')[0]! };
  }

  const get = (path: string, cookie: string) =>
    fetch(`${app.url}${path}`, { headers: { cookie }, redirect: 'manual' });
  const jobExists = async (id: string) =>
    (await sql`SELECT 1 FROM pgboss.job WHERE id = ${id}::uuid`.execute(app.runtime.db)).rows.length > 0;
  const tokenOf = (html: string) => /name="token" value="([\w-]+)"/.exec(html)![1]!;

  it('sends a browser without a session to the login form, and back where it was going once logged in', async () => {
    const none = await fetch(`${app.url}/admin/exceptions?status=open`, { redirect: 'manual' });
    expect(none.status).toBe(303);
    expect(none.headers.get('location')).toBe('/admin/login?next=%2Fadmin%2Fexceptions%3Fstatus%3Dopen');
    const loginPage = await fetch(`${app.url}${none.headers.get('location')}`);
    expect(loginPage.status).toBe(200);
    expect(await loginPage.text()).toContain('name="next" value="/admin/exceptions?status=open"');

    const { response, setCookie, cookie } = await login(ADMIN_KEY);
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/admin/inbox');
    // Plain HTTP (any host name): no Secure flag, or the browser would drop the cookie.
    expect(setCookie).toMatch(
      /^billhook_admin=key_\w+\.[\w-]+\.\d+\.[\w-]+; Max-Age=43200; Path=\/admin; Expires=.*; HttpOnly; SameSite=Strict$/,
    );
    const inbox = await get('/admin/inbox', cookie);
    expect(inbox.status).toBe(200);
    expect(await inbox.text()).toMatch(/<h1>Inbox<\/h1>[\s\S]*Generated at <time id="generated-at"/);
  });

  it('marks the cookie Secure behind a TLS-terminating proxy (X-Forwarded-Proto from a trusted peer)', async () => {
    const { setCookie } = await login(ADMIN_KEY, {
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'ops.example.com',
    });
    expect(setCookie).toMatch(/; Secure; SameSite=Strict$/);
  });

  it('refuses a wrong key (401), a key below admin (403) and a forged or revoked session', async () => {
    expect((await login('bh_not_a_key')).response.status).toBe(401);
    const { secret } = await createApiKey(app.runtime.db, 'writer', 'write');
    const writer = await login(secret);
    expect(writer.response.status).toBe(403);
    expect(writer.setCookie).toBe('');

    const { secret: adminSecret, key } = await createApiKey(app.runtime.db, 'second admin', 'admin');
    const { cookie } = await login(adminSecret);
    expect((await get('/admin', cookie)).status).toBe(200);
    const [name, value] = cookie.split('=');
    const parts = value!.split('.');
    const forged = `${name}=${parts[0]}.${parts[1]}.${Number(parts[2]) + 3600}.${parts[3]}`;
    expect((await get('/admin', forged)).status).toBe(303);
    await revokeApiKey(app.runtime.db, key.id);
    expect((await get('/admin', cookie)).status).toBe(303);
  });

  it("checks every POST's CSRF token: a form without the session's token changes nothing", async () => {
    const { cookie } = await login(ADMIN_KEY);
    const token = tokenOf(await (await get('/admin', cookie)).text());
    const post = (body: string) =>
      fetch(`${app.url}/admin/dead-letters/purge`, {
        method: 'POST',
        headers: { cookie, 'content-type': form },
        body,
        redirect: 'manual',
      });
    expect((await post('token=forged')).status).toBe(403);
    expect((await post('')).status).toBe(403);
    expect(app.logs).toContainEqual(
      expect.objectContaining({
        errorCode: 'invalid_form_token',
        res: expect.objectContaining({ statusCode: 403 }),
      }),
    );
    const done = await post(`token=${token}`);
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toMatch(
      /^\/admin\/dead-letters\?notice=Deleted\+\d+\+dead\+letters/,
    );
  });

  it('still takes the key itself (Basic or Bearer) for scripts; 403 for a key below admin', async () => {
    expect((await fetch(`${app.url}/admin`, { headers: { authorization: basic(ADMIN_KEY) } })).status).toBe(
      200,
    );
    const { secret } = await createApiKey(app.runtime.db, 'reader', 'read');
    expect((await fetch(`${app.url}/admin`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(
      403,
    );
    const wrong = await fetch(`${app.url}/admin`, { headers: { authorization: basic('bh_wrong') } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
  });

  it("counts a dead letter as its queue's failed job, never as waiting; in the overview and in /metrics", async () => {
    const receipt = await app.runtime.inbox!.receive({
      gateway: 'paypal',
      eventId: 'WH-admin-dead',
      eventType: 'PAYMENT.CAPTURE.COMPLETED',
      body: '{}',
    });
    const { cookie } = await login(ADMIN_KEY);
    const listed = await waitFor('the dead letter listed', async () => {
      const html = await (await get('/admin/dead-letters', cookie)).text();
      return html.includes(receipt.id!) ? html : undefined;
    });
    expect(listed).toMatch(/gateway paypal is not configured/);
    // pg-boss counts queues at each maintenance pass: the overview and the gauges read those counts.
    const row = await waitFor(
      'the counted dead letter',
      async () => {
        const html = await (await get('/admin', cookie)).text();
        return /<tr><td><a href="\/admin\/queues\/queues\/webhook.process">webhook.process<\/a><\/td><td class="n">0<\/td><td class="n">0<\/td><td class="n bad"><a href="\/admin\/dead-letters\?queue=webhook.process">1<\/a><\/td><\/tr>/.test(
          html,
        )
          ? html
          : undefined;
      },
      120_000,
    );
    expect(row).not.toContain('webhook.process.dead');
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(/billhook_jobs_failed\{queue="webhook.process"\} 1\n/);
    expect(metrics).toMatch(/billhook_queue_depth\{queue="webhook.process"\} 0\n/);
    expect(metrics).not.toMatch(/billhook_queue_depth\{queue="webhook.process.dead"\}/);
  });

  it('mounts pg-boss dashboard at /admin/queues behind the session, with a policy allowing its inline scripts there only', async () => {
    expect((await fetch(`${app.url}/admin/queues`, { redirect: 'manual' })).status).toBe(303);
    const { cookie } = await login(ADMIN_KEY);
    const page = await get('/admin/queues', cookie);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('/admin/queues/assets/');
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self' 'unsafe-inline'/);
    const job = await get('/admin/queues/queues/webhook.process', cookie);
    expect(job.status).toBe(200);
    const own = await get('/admin', cookie);
    const policy = own.headers.get('content-security-policy') ?? '';
    expect(policy).toMatch(/script-src 'self'(;|$)/);
    expect(policy).toMatch(/form-action 'self'/);
    expect(policy).not.toMatch(/upgrade-insecure-requests/);
  });

  it('escapes what it shows (an error text is gateway-controlled)', async () => {
    await app.runtime.boss.send('webhook.process.dead', {
      inboxIds: ['evt_htmlerror'],
      errors: [{ id: 'evt_htmlerror', error: '<script>alert(1)</script>' }],
    });
    const { cookie } = await login(ADMIN_KEY);
    const html = await (await get('/admin/dead-letters?queue=webhook.process', cookie)).text();
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
  });

  it('lists the gateway accounts with their webhook path and last four characters, never a credential', async () => {
    const secrets = {
      secret_key: 'sk_test_adminPageAccount_0123456789',
      webhook_secrets: ['whsec_admin_page_secret_wxyz'],
    };
    const stripe = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'stripe',
      name: 'EU <b>brand</b>',
      mode: 'test',
      credentials: secrets,
    });
    expect(stripe.status, JSON.stringify(stripe.body)).toBe(201);
    const { cookie } = await login(ADMIN_KEY);
    const html = await (await get('/admin/accounts', cookie)).text();
    const row = new RegExp(`<tr><td><code>${stripe.body.id}</code></td>.*</tr>`).exec(html)?.[0] ?? '';
    expect(row).toContain(
      `<td>stripe</td><td>EU &#60;b&#62;brand&#60;/b&#62;</td><td>test</td><td class="">enabled</td><td><code>/webhooks/stripe/${stripe.body.id}</code></td><td><code>secret_key …6789, webhook_secrets …wxyz</code></td>`,
    );
    expect(row).toContain(`href="/admin/inbox?gateway_account=${stripe.body.id}"`);
    for (const secret of [secrets.secret_key, secrets.webhook_secrets[0]!])
      expect(html).not.toContain(secret);
  });

  it('replays every event matching a filter after showing how many match', async () => {
    for (const n of [1, 2, 3]) {
      const body = JSON.stringify({
        id: `evt_replay_all_${n}`,
        type: 'customer.updated',
        created: 1,
        data: { object: {} },
      });
      await app.runtime.inbox!.receive({
        gateway: 'stripe',
        eventId: `evt_replay_all_${n}`,
        eventType: 'customer.updated',
        body,
      });
    }
    const finished = async () => {
      const rows = await app.runtime.db
        .selectFrom('inbox')
        .select(['attempts', 'status'])
        .where('event_type', '=', 'customer.updated')
        .execute();
      return rows.length === 3 && rows.every((r) => r.status === 'ignored')
        ? rows.map((r) => r.attempts)
        : undefined;
    };
    const before = await waitFor('the three processed', finished);
    const { cookie } = await login(ADMIN_KEY);
    const confirm = await (
      await get('/admin/inbox/replay?gateway=stripe&type=customer.updated', cookie)
    ).text();
    expect(confirm).toContain(
      '<p id="replay-count">3 events match gateway = stripe, type = customer.updated.</p>',
    );
    const response = await fetch(`${app.url}/admin/inbox/replay`, {
      method: 'POST',
      headers: { cookie, 'content-type': form },
      body: new URLSearchParams({
        token: tokenOf(confirm),
        gateway: 'stripe',
        type: 'customer.updated',
      }).toString(),
      redirect: 'manual',
    });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe(
      '/admin/inbox?gateway=stripe&type=customer.updated&notice=Replayed+3+events.',
    );
    await waitFor('the three processed again', async () => {
      const after = await finished();
      return after?.every((n, i) => n > before[i]!);
    });
    const activity = await app.runtime.db
      .selectFrom('activities')
      .select(['actor', 'data'])
      .where('action', '=', 'events.replayed')
      .executeTakeFirstOrThrow();
    expect(activity.actor).toMatch(/^key_/);
    expect(activity.data).toEqual({ filter: { gateway: 'stripe', type: 'customer.updated' }, replayed: 3 });
  });

  it('replays exactly the events it counted when the filter times carry milliseconds', async () => {
    const at = (ms: number) => new Date(Date.UTC(2026, 0, 5, 10, 0, 0, ms));
    const rows = [200, 800].map((ms) => ({
      id: newId('evt'),
      gateway: 'stripe' as const,
      gateway_event_id: `evt_precision_${ms}`,
      event_type: 'precision.probe',
      body: '{}',
      status: 'ignored' as const,
      outcome: 'ignored',
      received_at: at(ms),
    }));
    await app.runtime.db.insertInto('inbox').values(rows).execute();
    const { cookie } = await login(ADMIN_KEY);
    const confirm = await (
      await get('/admin/inbox/replay?type=precision.probe&received_from=2026-01-05T10:00:00.500Z', cookie)
    ).text();
    expect(confirm).toContain('<p id="replay-count">1 event matches');
    const hidden = Object.fromEntries(
      [...confirm.matchAll(/<input type="hidden" name="(\w+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!]),
    );
    const response = await fetch(`${app.url}/admin/inbox/replay`, {
      method: 'POST',
      headers: { cookie, 'content-type': form },
      body: new URLSearchParams(hidden).toString(),
      redirect: 'manual',
    });
    expect(response.status).toBe(303);
    // Before: the form's times were cut to the second (10:00:00), so the event at .200 was replayed too.
    expect(decodeURIComponent(response.headers.get('location') ?? '')).toContain('notice=Replayed+1+events.');
    const activity = await app.runtime.db
      .selectFrom('activities')
      .select('data')
      .where('action', '=', 'events.replayed')
      .where(sql<boolean>`data->'filter'->>'type' = 'precision.probe'`)
      .executeTakeFirstOrThrow();
    expect(activity.data).toEqual({
      filter: { type: 'precision.probe', received_from: '2026-01-05T10:00:00.500' },
      replayed: 1,
    });
  });

  it('deletes one dead letter after a confirmation page, and says so', async () => {
    const id = (await app.runtime.boss.send('invoice.refund.dead', { refundId: 're_admin_delete_one' }))!;
    const { cookie } = await login(ADMIN_KEY);
    const page = await (await get(`/admin/dead-letters/invoice.refund/${id}/delete`, cookie)).text();
    expect(page).toMatch(
      /<p id="confirm">Delete the dead letter <code>[0-9a-f-]{36}<\/code> of invoice.refund\?<\/p>/,
    );
    expect(page).toContain('re_admin_delete_one');
    const response = await fetch(`${app.url}/admin/dead-letters/invoice.refund/${id}/delete`, {
      method: 'POST',
      headers: { cookie, 'content-type': form },
      body: `token=${tokenOf(page)}`,
      redirect: 'manual',
    });
    expect(response.headers.get('location')).toBe(`/admin/dead-letters?notice=Dead+letter+${id}+deleted.`);
    expect(await jobExists(id)).toBe(false);
  });

  it('retries and deletes all dead letters of the queue the page is filtered to only, the confirmation counting those', async () => {
    const send = async (name: string, data: object) => (await app.runtime.boss.send(name, data))!;
    // Before: on ?queue=subscription.renew, Retry all… confirmed every queue's count (3 here) and
    // sent back the invoice.refund dead letter too; Delete all… deleted it.
    const renews = [
      await send('subscription.renew.dead', { subscriptionId: 'sub_admin_retry_queue_1' }),
      await send('subscription.renew.dead', { subscriptionId: 'sub_admin_retry_queue_2' }),
    ];
    const refund = await send('invoice.refund.dead', { refundId: 're_admin_retry_queue' });
    const { cookie } = await login(ADMIN_KEY);
    const countOf = async (queue: string) =>
      (
        await sql<{
          n: number;
        }>`SELECT count(*)::int AS n FROM pgboss.job WHERE name = ${`${queue}.dead`} AND state = 'created'`.execute(
          app.runtime.db,
        )
      ).rows[0]!.n;
    const renewCount = await countOf('subscription.renew');
    expect(renewCount).toBeGreaterThanOrEqual(2);

    const list = await (await get('/admin/dead-letters?queue=subscription.renew', cookie)).text();
    expect(list).toContain('href="/admin/dead-letters/confirm?action=retry&#38;queue=subscription.renew"');
    expect(list).toContain('href="/admin/dead-letters/confirm?action=purge&#38;queue=subscription.renew"');
    const confirm = await (
      await get('/admin/dead-letters/confirm?action=retry&queue=subscription.renew', cookie)
    ).text();
    expect(confirm).toContain(
      `<p id="confirm">Retry all ${renewCount} dead letters of subscription.renew?</p>`,
    );
    expect(confirm).toContain('<input type="hidden" name="queue" value="subscription.renew">');
    const post = (action: string, queue: string) =>
      fetch(`${app.url}/admin/dead-letters/${action}`, {
        method: 'POST',
        headers: { cookie, 'content-type': form },
        body: new URLSearchParams({ token: tokenOf(confirm), queue }).toString(),
        redirect: 'manual',
      });
    const retried = await post('retry', 'subscription.renew');
    expect(retried.status).toBe(303);
    expect(decodeURIComponent(retried.headers.get('location') ?? '')).toContain(
      `notice=Retried+${renewCount}+dead+letters+of+subscription.renew+(0+webhooks+processed+again).`,
    );
    expect(await jobExists(renews[0]!)).toBe(false);
    expect(await jobExists(renews[1]!)).toBe(false);
    expect(await jobExists(refund)).toBe(true);

    const again = await send('subscription.renew.dead', { subscriptionId: 'sub_admin_purge_queue' });
    const purgeCount = await countOf('subscription.renew');
    const purgeConfirm = await (
      await get('/admin/dead-letters/confirm?action=purge&queue=subscription.renew', cookie)
    ).text();
    expect(purgeConfirm).toContain(
      `<p id="confirm">Delete all ${purgeCount} dead letter${purgeCount === 1 ? '' : 's'} of subscription.renew?</p>`,
    );
    const purged = await post('purge', 'subscription.renew');
    expect(decodeURIComponent(purged.headers.get('location') ?? '')).toContain(
      `notice=Deleted+${purgeCount}+dead+letters+of+subscription.renew.`,
    );
    expect(await jobExists(again)).toBe(false);
    expect(await jobExists(refund)).toBe(true);
    expect(await countOf('invoice.refund')).toBeGreaterThanOrEqual(1);

    // An unknown queue: refused (422, field queue), nothing done.
    const refused = await post('purge', 'no.such.queue');
    expect(refused.status).toBe(422);
    expect(await refused.text()).toContain('queue');
    expect(await jobExists(refund)).toBe(true);
  });

  it("refuses an action asked of pg-boss's dashboard (read-only: its bundled pg-boss cannot write billhook's schema) and changes nothing", async () => {
    const id = (await app.runtime.boss.send('subscription.renew.dead', {
      subscriptionId: 'sub_admin_dashboard',
    }))!;
    const { cookie } = await login(ADMIN_KEY);
    const response = await fetch(`${app.url}/admin/queues/queues/subscription.renew.dead`, {
      method: 'POST',
      headers: { cookie, 'content-type': form, origin: app.url },
      body: new URLSearchParams({ intent: 'delete', jobId: id }).toString(),
      redirect: 'manual',
    });
    expect(response.status).toBe(403);
    expect(await response.text()).toContain('read-only');
    expect(await jobExists(id)).toBe(true);
    const activities = await app.runtime.db
      .selectFrom('activities')
      .select('action')
      .where('resource_id', '=', id)
      .execute();
    expect(activities).toEqual([]);
  });

  it('answers a refused action with a page saying why', async () => {
    const { cookie } = await login(ADMIN_KEY);
    const missing = await get('/admin/inbox/evt_nope', cookie);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toMatch(/role="alert">.*evt_nope/);
    const bad = await get('/admin/inbox?status=nonsense', cookie);
    expect(bad.status).toBe(422);
  });

  it("shows the amounts of an exception's payments and of an event's normalised events in their currency's exponent (KWD 3, JPY 0)", async () => {
    const customer = await app.api('POST', '/v1/customers', { email: 'kwd-page@example.com' });
    const transaction = async (amount: bigint, currency: string) => {
      const id = newId('txn');
      await app.runtime.db
        .insertInto('transactions')
        .values({
          id,
          customer_id: customer.body.id,
          invoice_id: null,
          payment_method_id: null,
          gateway: 'stripe',
          gateway_transaction_id: `pi_page_${currency}`,
          amount,
          currency,
          status: 'pending',
          failure_code: null,
          failure_message: null,
        })
        .execute();
      return id;
    };
    const kwd = await transaction(4620n, 'KWD');
    const jpy = await transaction(4620n, 'JPY');
    const inboxId = newId('evt');
    // As the inbox stores a delivery once normalised (its `events` are written by the worker only).
    const delivery = {
      id: inboxId,
      gateway: 'stripe' as const,
      gateway_event_id: 'evt_page_amounts',
      event_type: 'payment_intent.succeeded',
      body: '{}',
      status: 'exception' as const,
      outcome: 'amount_mismatch',
      events: JSON.stringify([
        {
          type: 'payment.succeeded',
          gatewayTransactionId: 'pi_page_KWD',
          amount: '4600',
          currency: 'KWD',
          occurredAt: '2026-12-07T00:00:00Z',
        },
      ]) as never,
    };
    await app.runtime.db.insertInto('inbox').values(delivery).execute();
    await inUnitOfWork(app.runtime.db, { actor: 'system' }, async (work) => {
      for (const transactionId of [kwd, jpy]) {
        await raiseException(work, {
          kind: 'amount_mismatch',
          gateway: 'stripe',
          transactionId,
          ...(transactionId === kwd ? { inboxId } : {}),
          message: 'amounts differ',
        });
      }
    });
    const exceptionOf = async (transactionId: string) =>
      (
        await app.runtime.db
          .selectFrom('reconciliation_exceptions')
          .select('id')
          .where('transaction_id', '=', transactionId)
          .executeTakeFirstOrThrow()
      ).id;
    const { cookie } = await login(ADMIN_KEY);
    const kwdPage = await (await get(`/admin/exceptions/${await exceptionOf(kwd)}`, cookie)).text();
    expect(kwdPage).toContain('amount 4.620 KWD');
    expect(kwdPage).not.toContain('46.20 KWD');
    const jpyPage = await (await get(`/admin/exceptions/${await exceptionOf(jpy)}`, cookie)).text();
    expect(jpyPage).toContain('amount 4620 JPY');
    const eventPage = await (await get(`/admin/inbox/${inboxId}`, cookie)).text();
    expect(eventPage).toContain('payment.succeeded 4.600 KWD');
  });

  it("lists each payout with all its lines add up to (refunds, disputes, adjustments, net), so a row's amount is its parts' sum", async () => {
    // A fresh clone's walk: the README's payout of USD 18.97 (gross 25.00, fees 1.03, refunds -5.00)
    // was listed as amount 18.97, gross 25.00, fees 1.03 — its refund nowhere on the page, the row not adding up.
    const csv = [
      'payout_id,payout_date,kind,gateway_transaction_id,gateway_refund_id,currency,gross,fee,occurred_at',
      'po_admin_parts,2026-12-08,charge,pi_admin_parts,,USD,50.00,1.75,2026-12-08T03:00:00Z',
      'po_admin_parts,2026-12-08,refund,pi_admin_parts,re_admin_parts,USD,-5.00,0,2026-12-08T03:10:00Z',
    ].join('\n');
    const imported = await fetch(`${app.url}/v1/settlements/import?gateway=stripe`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'text/csv' },
      body: csv,
    });
    expect(imported.status).toBe(200);
    const { cookie } = await login(ADMIN_KEY);
    const page = await (await get('/admin/payouts?currency=USD', cookie)).text();
    const header = /<table id="payouts"><thead><tr>(.*?)<\/tr>/s.exec(page)![1]!;
    expect(
      header
        .replace(/<\/?th>/g, '|')
        .split('|')
        .filter(Boolean),
    ).toEqual([
      'payout',
      'gateway',
      'status',
      'amount',
      'gross',
      'fees',
      'refunds',
      'disputes',
      'adjustments',
      'net of its lines',
      'lines',
      'unmatched',
      'arrival',
    ]);
    const row = page.split('<tr>').find((r) => r.includes('stripe · default') && r.includes('43.25 USD'))!;
    const cells = [...row.matchAll(/<td[^>]*>(.*?)<\/td>/gs)].map((m) => m[1]!.replace(/<[^>]+>/g, ''));
    expect(cells.slice(2, 12)).toEqual([
      'paid',
      '43.25 USD',
      '50.00 USD',
      '1.75 USD',
      '-5.00 USD',
      '0.00 USD',
      '0.00 USD',
      '43.25 USD',
      '2',
      '2',
    ]);
  });
});
