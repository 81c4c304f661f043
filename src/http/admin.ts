import { createHash } from 'node:crypto';
import express, { type RequestHandler, type Response, Router } from 'express';
import { sql } from 'kysely';
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
import { keyFrom } from './auth.ts';
import type { AppDeps } from './deps.ts';
import { overFailedAuthLimit, refuseFailingAddress } from './rate-limit.ts';
import { noteErrorCode } from './request-log.ts';

/** Escapes text for HTML content and attribute values. */
const html = (value: unknown): string =>
  String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Form token: a hash of the admin key, so a page of another origin cannot post the forms (CSRF). */
const formToken = (key: string) => createHash('sha256').update(`billhook-admin-form:${key}`).digest('hex');

/**
 * `/admin/queues`: a small server-rendered dashboard for operators, behind an admin API key (Basic
 * auth with the key as user name, so a browser asks for it). It shows each queue's depth, activity
 * and failures, the inbox by status, open reconciliation exceptions, and the dead letters with
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
    const inbox = await db
      .selectFrom('inbox')
      .select(['status', sql<number>`count(*)::int`.as('n')])
      .groupBy('status')
      .orderBy('status')
      .execute();
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
