import { Router } from 'express';
import { z } from 'zod';
import { listActivities } from '../../activities/activities.ts';
import { getRow } from '../../db/get.ts';
import { listRows } from '../../db/list.ts';
import type { Database, InboxRow, ReconciliationExceptionRow } from '../../db/schema.ts';
import { NotFoundError } from '../../errors.ts';
import { resolveException } from '../../exceptions/exceptions.ts';
import { accountFilter } from '../api/pagination.ts';
import { Gateway, GatewayAccountFilter } from '../api/schemas.ts';
import type { AppDeps } from '../deps.ts';
import { type Html, h } from './html.ts';
import {
  ADMIN,
  amountsOf,
  filterForm,
  link,
  PAGE_SIZE,
  pager,
  parseForm,
  postForm,
  prettyJson,
  queryOf,
  sendPage,
} from './layout.ts';
import { adminActor, sessionOf } from './session.ts';

/** The exceptions' filters: those of `GET /v1/reconciliation-exceptions`, plus kind and event. */
const ExceptionQuery = z.object({
  status: z.enum(['open', 'resolved']).optional(),
  kind: z.string().max(60).optional(),
  gateway: Gateway.optional(),
  gateway_account: GatewayAccountFilter.optional(),
  event: z.string().max(64).optional(),
  payout: z.string().max(64).optional(),
  starting_after: z.string().max(64).optional(),
});

const FIELDS = [
  { name: 'status', label: 'Status', options: ['open', 'resolved'] },
  { name: 'kind', label: 'Kind', placeholder: 'amount_mismatch' },
  { name: 'gateway', label: 'Gateway', options: Gateway.options },
  { name: 'gateway_account', label: 'Account', placeholder: 'default or gwa_…' },
  { name: 'event', label: 'Event', placeholder: 'evt_…' },
  { name: 'payout', label: 'Payout', placeholder: 'pyo_…' },
] as const;

/** A row read by id, or undefined when there is none any more (pruned, say). */
async function orMissing<R>(read: Promise<R>): Promise<R | undefined> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/** The objects an exception names, in the order shown: each a table, its id column, its page. */
const INVOLVED = [
  ['transaction_id', 'transactions', 'Transaction'],
  ['refund_id', 'refunds', 'Refund'],
  ['payout_id', 'payouts', 'Payout'],
  ['settlement_line_id', 'settlement_lines', 'Settlement line'],
] as const satisfies readonly (readonly [keyof ReconciliationExceptionRow, keyof Database, string])[];

/**
 * The reconciliation exceptions pages: `GET /admin/exceptions` (newest first, filtered like
 * `GET /v1/reconciliation-exceptions` plus kind and event; the navigation links to the open ones), `GET
 * /admin/exceptions/:id` (the message and details, the event with its payload link, the objects it
 * names, its history) and `POST /admin/exceptions/:id/resolve` with a note (`resolveException`: the
 * `reconciliation_exception.resolved` activity names the admin key and carries the note).
 */
export function exceptionPages({ db }: AppDeps): Router {
  const router = Router();

  router.get(`${ADMIN}/exceptions`, async (req, res) => {
    const query = parseForm(ExceptionQuery, req.query);
    const rows = await listRows<ReconciliationExceptionRow>(db, 'reconciliation_exceptions', {
      limit: PAGE_SIZE,
      startingAfter: query.starting_after,
      equals: {
        status: query.status,
        kind: query.kind,
        gateway: query.gateway,
        gateway_account: accountFilter(query.gateway_account),
        inbox_id: query.event,
        payout_id: query.payout,
      },
    });
    const shown = rows.slice(0, PAGE_SIZE);
    const values = queryOf(query);
    const body = h`${filterForm('/exceptions', FIELDS, values)}
<table id="exceptions"><thead><tr><th>exception</th><th>opened</th><th>kind</th><th>gateway</th><th>status</th><th>message</th></tr></thead><tbody>
${shown.map(
  (x) =>
    h`<tr><td><a href="${ADMIN}/exceptions/${x.id}"><code>${x.id}</code></a></td><td>${x.created_at}</td><td>${x.kind}</td><td>${x.gateway} · ${x.gateway_account ?? 'default'}</td><td class="${x.status === 'open' ? 'bad' : ''}">${x.status}</td><td>${x.message}</td></tr>`,
)}
</tbody></table>
${shown.length === 0 ? h`<p>No exception matches.</p>` : ''}
${pager('/exceptions', values, shown.at(-1)?.id, rows.length > PAGE_SIZE)}`;
    sendPage(req, res, { title: 'Reconciliation exceptions', section: '/exceptions', refresh: true }, body);
  });

  router.get(`${ADMIN}/exceptions/:id`, async (req, res) => {
    const x = await getRow<ReconciliationExceptionRow>(
      db,
      'reconciliation_exceptions',
      req.params.id,
      'reconciliation_exception',
    );
    const involved: Html[] = [];
    if (x.inbox_id) {
      const event = await orMissing(getRow<InboxRow>(db, 'inbox', x.inbox_id, 'event'));
      involved.push(
        h`<h2>Event</h2>${event ? h`<p><a href="${ADMIN}/inbox/${event.id}"><code>${event.id}</code></a> ${event.event_type} <code>${event.gateway_event_id}</code> · ${event.status} (payload and normalised events on its page)</p>` : h`<p class="muted"><code>${x.inbox_id}</code> is no longer in the inbox.</p>`}`,
      );
    }
    for (const [column, table, label] of INVOLVED) {
      const id = x[column];
      if (typeof id !== 'string') continue;
      const row = await orMissing(getRow<Record<string, unknown>>(db, table, id, label));
      involved.push(
        h`<h2>${label} <code>${id}</code></h2>${row ? h`${amountsOf(row) ? h`<p class="amounts">${amountsOf(row)}</p>` : ''}<pre>${prettyJson(row)}</pre>` : h`<p class="muted">Not found.</p>`}`,
      );
    }
    const history = await listActivities(db, { afterSequence: 0n, limit: 50, resourceId: x.id });
    const resolve =
      x.status === 'open'
        ? h`<h2>Resolve</h2>${postForm(
            sessionOf(res),
            `${ADMIN}/exceptions/${x.id}/resolve`,
            'Resolve',
            {},
            h`<p><label for="note">Note (what was done)</label><br><textarea id="note" name="note" rows="3" cols="70" maxlength="1000"></textarea></p>`,
          )}`
        : '';
    const body = h`<table>
<tr><th>kind</th><td>${x.kind}</td></tr>
<tr><th>status</th><td id="exception-status" class="${x.status === 'open' ? 'bad' : ''}">${x.status}${x.resolved_at ? h` at ${x.resolved_at}` : ''}</td></tr>
<tr><th>gateway</th><td>${x.gateway} · account ${x.gateway_account ?? 'default'}</td></tr>
<tr><th>opened</th><td>${x.created_at}</td></tr>
<tr><th>message</th><td>${x.message}</td></tr>
</table>
<h2>Details</h2><pre>${prettyJson(x.details)}</pre>
${involved}
${resolve}
<h2>History</h2>
<table id="history"><thead><tr><th>when</th><th>action</th><th>by</th><th>data</th></tr></thead><tbody>
${history.map((a) => h`<tr><td>${a.created_at}</td><td>${a.action}</td><td><code>${a.actor}</code></td><td><code>${prettyJson(a.data)}</code></td></tr>`)}
</tbody></table>`;
    sendPage(req, res, { title: `Exception ${x.id}`, section: '/exceptions' }, body);
  });

  router.post(`${ADMIN}/exceptions/:id/resolve`, async (req, res) => {
    const { note } = parseForm(
      z.object({ note: z.string().trim().max(1000).optional(), token: z.string() }),
      req.body,
    );
    const x = await resolveException(db, adminActor(res), req.params.id, note || undefined);
    res.redirect(303, link(`/exceptions/${x.id}`, { notice: `Exception ${x.id} resolved.` }));
  });
  return router;
}
