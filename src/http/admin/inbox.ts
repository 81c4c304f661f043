import { Router } from 'express';
import { sql } from 'kysely';
import { z } from 'zod';
import { getRow } from '../../db/get.ts';
import { countRows, type ListFilter, listRows } from '../../db/list.ts';
import type { InboxRow } from '../../db/schema.ts';
import { inboxTouchesCustomer } from '../../inbox/customer.ts';
import { replayInboxEvents } from '../../inbox/replay.ts';
import { accountFilter } from '../api/pagination.ts';
import { Gateway, GatewayAccountFilter } from '../api/schemas.ts';
import type { AppDeps } from '../deps.ts';
import { h } from './html.ts';
import {
  ADMIN,
  FormTime,
  filterForm,
  link,
  money,
  PAGE_SIZE,
  pager,
  parseForm,
  postForm,
  prettyJson,
  queryOf,
  sendPage,
} from './layout.ts';
import { recordAdminActivity, sessionOf } from './session.ts';

const STATUSES = ['received', 'retrying', 'processed', 'ignored', 'exception'] as const;

/** Most events one *Replay all matching* replays (in transactions of REPLAY_CHUNK). */
export const REPLAY_ALL_MAX = 10_000;
const REPLAY_CHUNK = 500;

/** The inbox's filters: those of `GET /v1/events`, plus the event's type and its gateway event id. */
const InboxFilter = z.object({
  gateway: Gateway.optional(),
  gateway_account: GatewayAccountFilter.optional(),
  type: z.string().max(200).optional(),
  status: z.enum(STATUSES).optional(),
  received_from: FormTime.optional(),
  received_to: FormTime.optional(),
  event_id: z.string().max(300).optional(),
  customer: z.string().max(64).optional(),
});
type InboxFilter = z.output<typeof InboxFilter>;
const InboxQuery = InboxFilter.extend({ starting_after: z.string().max(64).optional() });

/**
 * The list filter (db/list.ts, the one `GET /v1/events` reads with) of the inbox's filters; with
 * `replayable`, only the events whose raw body is kept (the others cannot be processed again).
 */
function listFilter(filter: InboxFilter, replayable = false): Omit<ListFilter, 'limit'> {
  return {
    equals: {
      gateway: filter.gateway,
      gateway_account: accountFilter(filter.gateway_account),
      event_type: filter.type,
      status: filter.status,
      gateway_event_id: filter.event_id,
    },
    created: { column: 'received_at', from: filter.received_from, to: filter.received_to },
    where: [
      ...(filter.customer ? [inboxTouchesCustomer(filter.customer)] : []),
      ...(replayable ? [sql<boolean>`body IS NOT NULL`] : []),
    ],
  };
}

const FIELDS = [
  { name: 'gateway', label: 'Gateway', options: Gateway.options },
  { name: 'gateway_account', label: 'Account', placeholder: 'default or gwa_…' },
  { name: 'type', label: 'Type', placeholder: 'payment_intent.succeeded' },
  { name: 'status', label: 'Status', options: STATUSES },
  { name: 'received_from', label: 'Received from (UTC)', type: 'datetime-local' },
  { name: 'received_to', label: 'Received before (UTC)', type: 'datetime-local' },
  { name: 'event_id', label: 'Gateway event id' },
  { name: 'customer', label: 'Customer', placeholder: 'cus_…' },
] as const;

/**
 * The inbox pages: `GET /admin/inbox` (stored webhooks, newest first, filtered like `GET /v1/events`
 * plus type and gateway event id, 50 a page), `GET /admin/inbox/:id` (the raw payload, the
 * normalised events, status, outcome, error), `POST /admin/inbox/:id/replay`,
 * `GET /admin/inbox/replay` (how many events match a filter, and a form to replay them) and
 * `POST /admin/inbox/replay` (replays up to REPLAY_ALL_MAX of them). Each replay is an
 * `event.replayed` activity naming the admin key.
 */
export function inboxPages({ db, boss }: AppDeps): Router {
  const router = Router();

  router.get(`${ADMIN}/inbox`, async (req, res) => {
    const query = parseForm(InboxQuery, req.query);
    const { starting_after, ...filter } = query;
    const rows = await listRows<InboxRow>(db, 'inbox', {
      ...listFilter(filter),
      limit: PAGE_SIZE,
      startingAfter: starting_after,
    });
    const shown = rows.slice(0, PAGE_SIZE);
    const values = queryOf(query);
    const body = h`${filterForm('/inbox', FIELDS, values)}
<p><a href="${link('/inbox/replay', queryOf(filter))}">Replay all matching…</a></p>
<table id="inbox"><thead><tr><th>event</th><th>received</th><th>gateway</th><th>account</th><th>type</th><th>gateway event id</th><th>status</th><th>attempts</th><th>outcome or error</th></tr></thead><tbody>
${shown.map(
  (row) =>
    h`<tr><td><a href="${ADMIN}/inbox/${row.id}"><code>${row.id}</code></a></td><td>${row.received_at}</td><td>${row.gateway}</td><td>${row.gateway_account ?? 'default'}</td><td>${row.event_type}</td><td><code>${row.gateway_event_id}</code></td><td class="${row.status === 'exception' || row.status === 'retrying' ? 'bad' : ''}">${row.status}</td><td class="n">${row.attempts}</td><td>${row.last_error ?? row.outcome}</td></tr>`,
)}
</tbody></table>
${shown.length === 0 ? h`<p>No event matches.</p>` : ''}
${pager('/inbox', values, shown.at(-1)?.id, rows.length > PAGE_SIZE)}`;
    sendPage(req, res, { title: 'Inbox', section: '/inbox', refresh: true }, body);
  });

  router.get(`${ADMIN}/inbox/replay`, async (req, res) => {
    const filter = parseForm(InboxFilter, req.query);
    const count = await countRows(db, 'inbox', listFilter(filter, true), REPLAY_ALL_MAX);
    const values = queryOf(filter);
    const fields = Object.fromEntries(
      Object.entries(values).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
    const described = Object.entries(fields)
      .map(([k, v]) => `${k} = ${v}`)
      .join(', ');
    const body =
      count === 0
        ? h`<p>No event matches ${described || 'the filter'}.</p><p><a href="${link('/inbox', values)}">Back to the inbox</a></p>`
        : h`<p id="replay-count">${count > REPLAY_ALL_MAX ? `More than ${REPLAY_ALL_MAX}` : count} event${count === 1 ? '' : 's'} match${count === 1 ? 'es' : ''} ${described || 'no filter (the whole inbox)'}.</p>
${count > REPLAY_ALL_MAX ? h`<p class="bad">Only the newest ${REPLAY_ALL_MAX} would be replayed: narrow the filter.</p>` : ''}
<p>Each is set back to <code>received</code> and processed again (reconciliation is idempotent: an event already applied changes nothing).</p>
${postForm(sessionOf(res), `${ADMIN}/inbox/replay`, `Replay ${Math.min(count, REPLAY_ALL_MAX)} events`, fields)}
<a href="${link('/inbox', values)}">Cancel</a>`;
    sendPage(req, res, { title: 'Replay events', section: '/inbox' }, body);
  });

  router.post(`${ADMIN}/inbox/replay`, async (req, res) => {
    const { token: _token, ...form } = req.body as Record<string, unknown>;
    const filter = parseForm(InboxFilter, form);
    let replayed = 0;
    let after: string | undefined;
    while (replayed < REPLAY_ALL_MAX) {
      const limit = Math.min(REPLAY_CHUNK, REPLAY_ALL_MAX - replayed);
      const rows = await listRows<InboxRow>(db, 'inbox', {
        ...listFilter(filter, true),
        limit,
        startingAfter: after,
      });
      const ids = rows.slice(0, limit).map((row) => row.id);
      if (ids.length === 0) break;
      await replayInboxEvents(db, boss, ids);
      replayed += ids.length;
      after = ids.at(-1);
      if (rows.length <= limit) break;
    }
    await recordAdminActivity(db, res, {
      resourceType: 'event',
      resourceId: 'matching',
      action: 'events.replayed',
      data: { filter: queryOf(filter), replayed },
    });
    res.redirect(303, link('/inbox', { ...queryOf(filter), notice: `Replayed ${replayed} events.` }));
  });

  router.get(`${ADMIN}/inbox/:id`, async (req, res) => {
    const row = await getRow<InboxRow>(db, 'inbox', req.params.id, 'event');
    const session = sessionOf(res);
    const body = h`<table>
<tr><th>gateway</th><td>${row.gateway} · account ${row.gateway_account ?? 'default'}</td></tr>
<tr><th>type</th><td>${row.event_type}</td></tr>
<tr><th>gateway event id</th><td><code>${row.gateway_event_id}</code></td></tr>
<tr><th>status</th><td id="event-status" class="${row.status === 'exception' ? 'bad' : ''}">${row.status}</td></tr>
<tr><th>outcome</th><td>${row.outcome}</td></tr>
<tr><th>last error</th><td class="bad">${row.last_error}</td></tr>
<tr><th>attempts</th><td>${row.attempts}</td></tr>
<tr><th>received</th><td>${row.received_at}</td></tr>
<tr><th>processed</th><td>${row.processed_at}</td></tr>
</table>
<p>${row.body === null ? h`<span class="muted">The raw body is past the inbox retention: it cannot be replayed.</span>` : postForm(session, `${ADMIN}/inbox/${row.id}/replay`, 'Replay')}
<a href="${link('/exceptions', { event: row.id })}">Its reconciliation exceptions</a></p>
<h2>Normalised events</h2>
${row.events === null ? h`<p class="muted">Not normalised yet.</p>` : h`<ul id="event-amounts">${row.events.map((e) => h`<li>${e.type} ${money(e.amount, e.currency)}</li>`)}</ul><pre id="events">${prettyJson(row.events)}</pre>`}
<h2>Raw payload</h2>
${row.body === null ? h`<p class="muted">Dropped by the retention.</p>` : h`<pre id="payload">${prettyBody(row.body)}</pre>`}`;
    sendPage(req, res, { title: `Event ${row.id}`, section: '/inbox' }, body);
  });

  router.post(`${ADMIN}/inbox/:id/replay`, async (req, res) => {
    const [row] = await replayInboxEvents(db, boss, [req.params.id]);
    await recordAdminActivity(db, res, {
      resourceType: 'event',
      resourceId: row!.id,
      action: 'event.replayed',
    });
    res.redirect(
      303,
      link(`/inbox/${row!.id}`, { notice: `Event ${row!.id} replayed: it is processed again.` }),
    );
  });
  return router;
}

/** A raw body as text: JSON indented, anything else (a form, XML) as it came. */
function prettyBody(body: string): string {
  try {
    return prettyJson(JSON.parse(body));
  } catch {
    return body;
  }
}
