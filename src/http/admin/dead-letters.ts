import { type Response, Router } from 'express';
import { z } from 'zod';
import type { ActivityInput } from '../../activities/activities.ts';
import { QUEUES, type QueueName } from '../../queue/queues.ts';
import {
  countDeadLetters,
  type DeadLetterJob,
  deleteDeadLetter,
  getDeadLetter,
  listDeadLetterPage,
  newestDeadLetter,
  purgeDeadLetters,
  retryDeadLetter,
  retryDeadLetters,
} from '../../workers/dead-letters.ts';
import type { AppDeps } from '../deps.ts';
import { h } from './html.ts';
import {
  ADMIN,
  filterForm,
  link,
  PAGE_SIZE,
  pager,
  parseForm,
  postForm,
  queryOf,
  sendPage,
} from './layout.ts';
import { QUEUES_PATH } from './queues.ts';
import { adminActor, recordAdminActivity, sessionOf } from './session.ts';

const Queue = z.enum(Object.values(QUEUES) as [QueueName, ...QueueName[]]);
const DeadLetterQuery = z.object({
  queue: Queue.optional(),
  starting_after: z.uuid().optional(),
});
const JobParams = z.object({ queue: Queue, job: z.uuid() });
/**
 * Retry all / Delete all: of every queue, or of `queue` only (the list's filter); `up_to`, from the
 * confirmation, the creation time of the newest dead letter it counted (`newestDeadLetter`).
 */
const AllForm = z.object({ queue: Queue.optional(), up_to: z.string().min(1).optional() });
const AllQuery = z.object({ queue: Queue.optional(), action: z.enum(['retry', 'purge']) });

/** What a dead letter is about: its events (linked to their pages), or its job's data. */
function subjectOf(dead: DeadLetterJob) {
  return dead.queue === QUEUES.webhookProcess
    ? h`${dead.inboxIds.map((id) => h`<a href="${ADMIN}/inbox/${id}"><code>${id}</code></a> `)}`
    : h`<code>${JSON.stringify(dead.data)}</code>`;
}

/**
 * The dead letters pages (PRODUCT.md §7): `GET /admin/dead-letters` (oldest first, by queue, 50 a
 * page, with the count of each queue), a retry or delete of one (`POST
 * /admin/dead-letters/:queue/:job/retry|delete`, the delete after a confirmation page) or of all
 * (`GET /admin/dead-letters/confirm?action=retry|purge[&queue=]` shows how many, then `POST
 * /admin/dead-letters/retry|purge` with the same `queue`: on a page filtered to one queue, all of that
 * queue only; and `up_to`, so a dead letter that arrived after the confirmation is left alone), each
 * redirecting to the list with its result. Each action is an
 * activity naming the admin key (`dead_letter.retried`, `dead_letter.deleted`,
 * `dead_letters.retried`, `dead_letters.purged`).
 */
export function deadLetterPages({ db, boss }: AppDeps): Router {
  const router = Router();
  const audit = (res: Response, activity: ActivityInput) => recordAdminActivity(db, res, activity);

  router.get(`${ADMIN}/dead-letters`, async (req, res) => {
    const query = parseForm(DeadLetterQuery, req.query);
    const { letters, counts } = await listDeadLetterPage(db, {
      queue: query.queue,
      after: query.starting_after,
      limit: PAGE_SIZE,
    });
    const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
    const shown = letters.slice(0, PAGE_SIZE);
    const session = sessionOf(res);
    const values = queryOf(query);
    const body = h`<p id="dead-letter-counts">${total} dead letter${total === 1 ? '' : 's'}${
      total
        ? h`: ${Object.entries(counts).map(([queue, n]) => h`<a href="${link('/dead-letters', { queue })}">${queue}</a> ${n} `)}`
        : ''
    }</p>
${filterForm('/dead-letters', [{ name: 'queue', label: 'Queue', options: Queue.options }], values)}
${total ? h`<p><a href="${link('/dead-letters/confirm', { action: 'retry', queue: query.queue })}">Retry all…</a> · <a href="${link('/dead-letters/confirm', { action: 'purge', queue: query.queue })}">Delete all…</a></p>` : ''}
<table id="dead-letters"><thead><tr><th>queue</th><th>job</th><th>dead since</th><th>events or data</th><th>error</th><th></th></tr></thead><tbody>
${shown.map(
  (d) =>
    h`<tr><td>${d.queue}</td><td><a href="${QUEUES_PATH}/queues/${d.queue}.dead/jobs/${d.jobId}"><code>${d.jobId}</code></a></td><td>${d.createdOn}</td><td>${subjectOf(d)}</td><td class="bad">${d.errors.map((e) => e.error).join('; ')}</td><td>${postForm(session, `${ADMIN}/dead-letters/${d.queue}/${d.jobId}/retry`, 'Retry')} <a href="${ADMIN}/dead-letters/${d.queue}/${d.jobId}/delete">Delete…</a></td></tr>`,
)}
</tbody></table>
${pager('/dead-letters', values, shown.at(-1)?.jobId, letters.length > PAGE_SIZE)}`;
    sendPage(req, res, { title: 'Dead letters', section: '/dead-letters', refresh: true }, body);
  });

  router.get(`${ADMIN}/dead-letters/confirm`, async (req, res) => {
    const { action, queue } = parseForm(AllQuery, req.query);
    const total = Object.values(await countDeadLetters(db, queue)).reduce((sum, n) => sum + n, 0);
    const newest = await newestDeadLetter(db, queue);
    const verb = action === 'retry' ? 'Retry' : 'Delete';
    const of = queue ? ` of ${queue}` : '';
    const body = h`<p id="confirm">${verb} all ${total} dead letter${total === 1 ? '' : 's'}${of}?</p>
<p>${
      action === 'retry'
        ? 'Each goes back to its queue for a fresh set of attempts (a webhook dead letter: its events are processed again).'
        : 'They are deleted: their stored webhooks become abandoned_event reconciliation exceptions; refunds stay unknown.'
    }</p>
${postForm(sessionOf(res), `${ADMIN}/dead-letters/${action}`, `${verb} all ${total}${of}`, {
  ...(queue ? { queue } : {}),
  ...(newest ? { up_to: newest } : {}),
})} <a href="${link('/dead-letters', { queue })}">Cancel</a>`;
    sendPage(req, res, { title: `${verb} all dead letters${of}`, section: '/dead-letters' }, body);
  });

  router.post(`${ADMIN}/dead-letters/retry`, async (req, res) => {
    const { queue, up_to } = parseForm(AllForm, req.body);
    const retried = await retryDeadLetters(db, boss, queue, up_to);
    await audit(res, {
      resourceType: 'dead_letters',
      resourceId: queue ?? 'all',
      action: 'dead_letters.retried',
      data: { ...retried, ...(queue ? { queue } : {}) },
    });
    const notice = `Retried ${retried.jobs} dead letters${queue ? ` of ${queue}` : ''} (${retried.webhooks} webhooks processed again).`;
    res.redirect(303, link('/dead-letters', { queue, notice }));
  });

  router.post(`${ADMIN}/dead-letters/purge`, async (req, res) => {
    const { queue, up_to } = parseForm(AllForm, req.body);
    const purged = await purgeDeadLetters(db, adminActor(res), queue, up_to);
    await audit(res, {
      resourceType: 'dead_letters',
      resourceId: queue ?? 'all',
      action: 'dead_letters.purged',
      data: { purged, ...(queue ? { queue } : {}) },
    });
    const notice = `Deleted ${purged} dead letters${queue ? ` of ${queue}` : ''}.`;
    res.redirect(303, link('/dead-letters', { queue, notice }));
  });

  router.get(`${ADMIN}/dead-letters/:queue/:job/delete`, async (req, res) => {
    const { queue, job } = parseForm(JobParams, req.params);
    const dead = await getDeadLetter(db, queue, job);
    const body = dead
      ? h`<p id="confirm">Delete the dead letter <code>${job}</code> of ${queue}?</p>
<p>${subjectOf(dead)}</p><p class="bad">${dead.errors.map((e) => e.error).join('; ')}</p>
${postForm(sessionOf(res), `${ADMIN}/dead-letters/${queue}/${job}/delete`, 'Delete')} <a href="${ADMIN}/dead-letters">Cancel</a>`
      : h`<p>The dead letter <code>${job}</code> is no longer queued (retried or deleted).</p>`;
    sendPage(req, res, { title: 'Delete a dead letter', section: '/dead-letters' }, body);
  });

  for (const action of ['retry', 'delete'] as const) {
    router.post(`${ADMIN}/dead-letters/:queue/:job/${action}`, async (req, res) => {
      const { queue, job } = parseForm(JobParams, req.params);
      const done =
        action === 'retry'
          ? await retryDeadLetter(db, boss, { queue, jobId: job })
          : await deleteDeadLetter(db, adminActor(res), { queue, jobId: job });
      if (done) {
        await audit(res, {
          resourceType: 'dead_letter',
          resourceId: job,
          action: action === 'retry' ? 'dead_letter.retried' : 'dead_letter.deleted',
          data: { queue },
        });
      }
      const notice = done
        ? `Dead letter ${job} ${action === 'retry' ? 'sent back to its queue' : 'deleted'}.`
        : `Dead letter ${job} was no longer queued: nothing done.`;
      res.redirect(303, link('/dead-letters', { notice }));
    });
  }
  return router;
}
