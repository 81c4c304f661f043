import { createHash } from 'node:crypto';
import express, { type RequestHandler, type Response, Router } from 'express';
import { sql } from 'kysely';
import { type GatewayAccount, listGatewayAccounts } from '../accounts/accounts.ts';
import { type ActivityInput, recordActivity } from '../activities/activities.ts';
import { authenticate } from '../auth/api-keys.ts';
import { constantTimeEqual } from '../crypto.ts';
import { replayInboxEvents } from '../inbox/replay.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { QUEUES } from '../queue/queues.ts';
import {
  type DeadLetterJob,
  listDeadLetters,
  purgeDeadLetters,
  retryDeadLetters,
} from '../workers/dead-letters.ts';
import { keyActor } from './actor.ts';
import { serializeGatewayAccount } from './api/gateway-accounts.ts';
import { keyFrom } from './auth.ts';
import type { AppDeps } from './deps.ts';
import { overFailedAuthLimit, refuseFailingAddress } from './rate-limit.ts';
import { noteErrorCode } from './request-log.ts';

/** Escapes text for HTML content and attribute values. */
const html = (value: unknown): string =>
  String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Each credential's last four characters as `field …abcd` (`…` alone for one too short to show any). */
const last4Text = (last4: GatewayAccount['credentials_last4']): string =>
  Object.entries(last4)
    .map(
      ([field, value]) =>
        `${field} ${[value]
          .flat()
          .map((v) => `…${v ?? ''}`)
          .join(' ')}`,
    )
    .join(', ');

/** Inbox rows counted by account (null: the default accounts') and status. */
type InboxCount = { gateway_account: string | null; status: string; n: number };

/** `received 2 · processed 5`: one account's inbox counts by status. */
const statusCounts = (counts: InboxCount[]): string =>
  counts.map((c) => `${html(c.status)} ${c.n}`).join(' · ') || '0';

/**
 * The gateway accounts table: id, gateway, name, mode, status, webhook path, each credential's last
 * four characters (never a credential), and the inbox rows of each by status; the first row is the
 * default accounts' (the environment's).
 */
function accountsTable(accounts: GatewayAccount[], inbox: InboxCount[]): string {
  const of = (account: string | null) => inbox.filter((c) => c.gateway_account === account);
  const rows = accounts.map((a) => {
    const shown = serializeGatewayAccount(a);
    return `<tr><td><code>${html(shown.id)}</code></td><td>${html(shown.gateway)}</td><td>${html(shown.name)}</td><td>${html(shown.mode)}</td><td class="${shown.status === 'disabled' ? 'bad' : ''}">${shown.status}</td><td><code>${html(shown.webhook_path)}</code></td><td><code>${html(last4Text(shown.credentials_last4))}</code></td><td>${statusCounts(of(a.id))}</td></tr>`;
  });
  return `<table><thead><tr><th>account</th><th>gateway</th><th>name</th><th>mode</th><th>status</th><th>webhook path</th><th>credentials (last four)</th><th>inbox</th></tr></thead><tbody>
<tr><td>default</td><td colspan="4">each gateway's environment variables</td><td><code>/webhooks/&lt;gateway&gt;</code></td><td></td><td>${statusCounts(of(null))}</td></tr>
${rows.join('\n')}
</tbody></table>`;
}

/** Form token: a hash of the admin key, so a page of another origin cannot post the forms (CSRF). */
const formToken = (key: string) => createHash('sha256').update(`billhook-admin-form:${key}`).digest('hex');

/**
 * `/admin/queues`: a small server-rendered dashboard for operators, behind an admin API key (Basic
 * auth with the key as user name, so a browser asks for it). It shows each queue's depth, activity
 * and failures, the inbox by status, open reconciliation exceptions, the gateway accounts (last four
 * characters of each credential, never one; their inbox rows by status), and the dead letters with
 * retry and delete actions (forms carry a token derived from the key, against cross-site posts).
 * Each action is recorded as an activity (`dead_letters.retried`, `dead_letters.purged`,
 * `event.replayed`) whose actor is the admin key's id.
 */
export function adminRoutes({ db, boss }: AppDeps): Router {
  const router = Router();
  const requireAdmin: RequestHandler = async (req, res, next) => {
    const key = keyFrom(req.headers.authorization);
    const found = key ? await authenticate(db, key, { slow: !overFailedAuthLimit(res) }) : undefined;
    if (!found && refuseFailingAddress(res)) return;
    if (found?.scope !== 'admin') {
      res.setHeader('WWW-Authenticate', 'Basic realm="billhook admin (user name: an admin API key)"');
      noteErrorCode(res, found ? 'insufficient_scope' : 'invalid_api_key');
      res
        .status(found ? 403 : 401)
        .type('text/plain')
        .send(found ? 'an admin key is required' : 'an admin API key is required');
      return;
    }
    res.locals.formToken = formToken(key!);
    res.locals.adminKeyId = found.id;
    next();
  };
  const checkForm: RequestHandler = (req, res, next) => {
    const sent = String((req.body as Record<string, unknown>)?.token ?? '');
    if (!constantTimeEqual(sent, String(res.locals.formToken))) {
      noteErrorCode(res, 'invalid_form_token');
      res.status(403).type('text/plain').send('invalid form token');
      return;
    }
    next();
  };
  /** The actor of a dashboard action: the admin key that asked for it. */
  const adminActor = (res: Response): Actor => keyActor(String(res.locals.adminKeyId));
  /** Records a dashboard action as an activity whose actor is the admin key that asked for it. */
  const audit = (res: Response, activity: ActivityInput) =>
    inUnitOfWork(db, { actor: adminActor(res) }, (work) => recordActivity(work, activity));
  router.use('/admin', requireAdmin, express.urlencoded({ extended: false, limit: '16kb' }));

  router.get('/admin/queues', async (_req, res) => {
    const token = html(res.locals.formToken);
    // pg-boss's queue statistics, through its API: counted by the supervising (worker) instance's
    // monitor every `monitorIntervalSeconds` (10 s, src/queue/boss.ts), so up to that old.
    const queues = (await boss.getQueues()).filter((q) => !q.name.startsWith('__pgboss'));
    const dead = await listDeadLetters(boss);
    // One pass over the inbox, by account and status: the per-status table adds the accounts up.
    const counts: InboxCount[] = await db
      .selectFrom('inbox')
      .select(['gateway_account', 'status', sql<number>`count(*)::int`.as('n')])
      .groupBy(['gateway_account', 'status'])
      .orderBy('status')
      .execute();
    const inbox = [...new Set(counts.map((c) => c.status))].map((status) => ({
      status,
      n: counts.filter((c) => c.status === status).reduce((sum, c) => sum + c.n, 0),
    }));
    const accounts = await listGatewayAccounts(db);
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('status', '=', 'open')
      .executeTakeFirstOrThrow();
    const form = (action: string, label: string, hidden = '') =>
      `<form method="post" action="${action}"><input type="hidden" name="token" value="${token}">${hidden}<button>${label}</button></form>`;
    const deadRow = (d: DeadLetterJob, subject: string, error: string | undefined, action: string) =>
      `<tr><td>${html(d.queue)}</td><td><code>${html(d.jobId)}</code></td><td>${html(d.createdOn.toISOString())}</td><td><code>${html(subject)}</code></td><td>${html(error)}</td><td>${action}</td></tr>`;
    const deadRows = dead.flatMap((d) =>
      d.queue === QUEUES.webhookProcess
        ? d.inboxIds.map((id) =>
            deadRow(
              d,
              id,
              d.errors.find((e) => e.id === id)?.error,
              form(
                '/admin/queues/events/replay',
                'Replay',
                `<input type="hidden" name="event" value="${html(id)}">`,
              ),
            ),
          )
        : [deadRow(d, JSON.stringify(d.data), d.errors[0]?.error, '')],
    );
    const deadTable = deadRows.length
      ? `<table><thead><tr><th>queue</th><th>job</th><th>created</th><th>event or data</th><th>error</th><th></th></tr></thead><tbody>\n${deadRows.join('\n')}\n</tbody></table>`
      : '';
    res.type('html').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>billhook · queues</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #1f2933; }
  h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
  table { border-collapse: collapse; min-width: 40rem; }
  th, td { border-bottom: 1px solid #d9e2ec; padding: .35rem .7rem; text-align: left; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  .bad { color: #b42318; font-weight: 600; }
  form { display: inline; } button { margin-right: .4rem; }
  code { font-size: 12px; }
</style></head><body>
<h1>billhook queues</h1>
<p>Jobs as pg-boss last counted them (every 10 s).</p>
<table><thead><tr><th>queue</th><th>ready</th><th>deferred</th><th>active</th><th>failed</th><th>stored</th></tr></thead><tbody>
${queues
  .map(
    (q) =>
      `<tr><td>${html(q.name)}</td><td class="n">${q.readyCount}</td><td class="n">${q.deferredCount}</td><td class="n">${q.activeCount}</td><td class="n${q.failedCount ? ' bad' : ''}">${q.failedCount}</td><td class="n">${q.totalCount}</td></tr>`,
  )
  .join('\n')}
</tbody></table>
<h2>Inbox</h2>
<table><thead><tr><th>status</th><th>events</th></tr></thead><tbody>
${inbox.map((r) => `<tr><td>${html(r.status)}</td><td class="n">${r.n}</td></tr>`).join('\n')}
</tbody></table>
<p>Open reconciliation exceptions: <span class="${exceptions.n ? 'bad' : ''}">${exceptions.n}</span> (<code>GET /v1/reconciliation-exceptions</code>)</p>
<h2>Gateway accounts (${accounts.length})</h2>
<p>Credentials are never shown: their last four characters only (<code>GET /v1/gateway-accounts</code>).</p>
${accountsTable(accounts, counts)}
<h2>Dead letters (${dead.length})</h2>
${dead.length ? `<p>${form('/admin/queues/dead-letters/retry', 'Retry all')} ${form('/admin/queues/dead-letters/purge', 'Delete all')}</p>` : '<p>None.</p>'}
${deadTable}
</body></html>`);
  });

  router.post('/admin/queues/dead-letters/retry', checkForm, async (_req, res) => {
    const retried = await retryDeadLetters(db, boss);
    await audit(res, {
      resourceType: 'dead_letters',
      resourceId: 'all',
      action: 'dead_letters.retried',
      data: { ...retried },
    });
    res.redirect(303, '/admin/queues');
  });
  router.post('/admin/queues/dead-letters/purge', checkForm, async (_req, res) => {
    const purged = await purgeDeadLetters(db, adminActor(res), boss);
    await audit(res, {
      resourceType: 'dead_letters',
      resourceId: 'all',
      action: 'dead_letters.purged',
      data: { purged },
    });
    res.redirect(303, '/admin/queues');
  });
  router.post('/admin/queues/events/replay', checkForm, async (req, res) => {
    const event = String((req.body as Record<string, unknown>).event ?? '');
    await replayInboxEvents(db, boss, [event]);
    await audit(res, { resourceType: 'event', resourceId: event, action: 'event.replayed' });
    res.redirect(303, '/admin/queues');
  });
  return router;
}
