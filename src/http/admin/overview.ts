import { Router } from 'express';
import { billhookQueueCounts, openExceptionCount, waitingInboxCounts } from '../../metrics/reads.ts';
import { QUEUES_AND_DEAD_LETTERS } from '../../queue/queues.ts';
import type { AppDeps } from '../deps.ts';
import { h } from './html.ts';
import { ADMIN, link, sendPage } from './layout.ts';
import { QUEUES_PATH } from './queues.ts';

/**
 * `GET /admin`: where to look first. billhook's queues with their jobs waiting, active and failed
 * (a failed job is one in the queue's dead letters, waiting for an operator; the dead-letter queues
 * are not listed as queues of their own, so a dead letter is never counted as waiting), as pg-boss
 * last counted them (every `QUEUE_MAINTENANCE_INTERVAL_SECONDS`); the inbox's events not processed yet (through the partial index of
 * the unprocessed); the open reconciliation exceptions. The same reads as `/metrics`' gauges
 * (metrics/reads.ts).
 */
export function overviewPages({ db, boss, config }: AppDeps): Router {
  const router = Router();
  router.get(ADMIN, async (req, res) => {
    const queues = billhookQueueCounts(await boss.getQueues(), QUEUES_AND_DEAD_LETTERS);
    const inbox = await waitingInboxCounts(db);
    const open = await openExceptionCount(db);
    const rows = queues.map(
      ({ name, waiting, active, deadLetters: failed }) =>
        h`<tr><td><a href="${QUEUES_PATH}/queues/${name}">${name}</a></td><td class="n">${waiting}</td><td class="n">${active}</td><td class="n${failed ? ' bad' : ''}">${failed ? h`<a href="${link('/dead-letters', { queue: name })}">${failed}</a>` : 0}</td></tr>`,
    );
    const body = h`<table id="overview"><tbody>
<tr><th>Inbox not processed yet</th><td><a href="${link('/inbox', { status: 'received' })}">${inbox.received} received</a> · <a class="${inbox.retrying ? 'bad' : ''}" href="${link('/inbox', { status: 'retrying' })}">${inbox.retrying} retrying</a></td></tr>
<tr><th>Open reconciliation exceptions</th><td><a class="${open ? 'bad' : ''}" href="${ADMIN}/exceptions?status=open">${open}</a></td></tr>
</tbody></table>
<h2>Queues</h2>
<p>Jobs as pg-boss last counted them (every ${config.QUEUE_MAINTENANCE_INTERVAL_SECONDS} s). Failed: dead letters waiting for an operator. Jobs by state, their data and errors: <a href="${QUEUES_PATH}">the queue dashboard</a>.</p>
<table id="queues"><thead><tr><th>queue</th><th>waiting</th><th>active</th><th>failed</th></tr></thead><tbody>
${rows}
</tbody></table>`;
    sendPage(req, res, { title: 'Overview', section: '', refresh: true }, body);
  });
  return router;
}
