import { Router } from 'express';
import { z } from 'zod';
import { PAYOUT_STATUSES } from '../../gateways/settlement.ts';
import { getPayout, listPayouts } from '../../settlement/read.ts';
import { settlementReport } from '../../settlement/report.ts';
import { accountFilter } from '../api/pagination.ts';
import { Currency, Gateway, GatewayAccountFilter } from '../api/schemas.ts';
import { serializePayout, serializeSettlementLine } from '../api/settlement.ts';
import type { AppDeps } from '../deps.ts';
import { h } from './html.ts';
import {
  ADMIN,
  FormTime,
  filterForm,
  money,
  PAGE_SIZE,
  pager,
  parseForm,
  queryOf,
  sendPage,
} from './layout.ts';

const PayoutQuery = z.object({
  gateway: Gateway.optional(),
  gateway_account: GatewayAccountFilter.optional(),
  status: z.enum(PAYOUT_STATUSES).optional(),
  currency: Currency.optional(),
  starting_after: z.string().max(64).optional(),
});
const ReportQuery = z.object({
  from: FormTime.optional(),
  to: FormTime.optional(),
  gateway: Gateway.optional(),
  gateway_account: GatewayAccountFilter.optional(),
  currency: Currency.optional(),
});

const PAYOUT_FIELDS = [
  { name: 'gateway', label: 'Gateway', options: Gateway.options },
  { name: 'gateway_account', label: 'Account', placeholder: 'default or gwa_…' },
  { name: 'status', label: 'Status', options: PAYOUT_STATUSES },
  { name: 'currency', label: 'Currency', placeholder: 'USD' },
] as const;

/**
 * Payouts and the settlement report (PRODUCT.md §13), read with the functions `/v1/payouts` and
 * `/v1/reports/settlement` use: `GET /admin/payouts` (newest first, by gateway, account, status,
 * currency), `GET /admin/payouts/:id` (its summary and lines, each with what it matched; unmatched
 * ones flagged) and `GET /admin/settlement` (per gateway account and currency over a period, the
 * current month by default).
 */
export function settlementPages({ db }: AppDeps): Router {
  const router = Router();

  router.get(`${ADMIN}/payouts`, async (req, res) => {
    const query = parseForm(PayoutQuery, req.query);
    const rows = await listPayouts(db, {
      limit: PAGE_SIZE,
      startingAfter: query.starting_after,
      equals: {
        gateway: query.gateway,
        gateway_account: accountFilter(query.gateway_account),
        status: query.status,
        currency: query.currency,
      },
    });
    const shown = rows.slice(0, PAGE_SIZE).map(serializePayout);
    const values = queryOf(query);
    const body = h`${filterForm('/payouts', PAYOUT_FIELDS, values)}
<table id="payouts"><thead><tr><th>payout</th><th>gateway</th><th>status</th><th>amount</th><th>gross</th><th>fees</th><th>refunds</th><th>disputes</th><th>adjustments</th><th>net of its lines</th><th>lines</th><th>unmatched</th><th>arrival</th></tr></thead><tbody>
${shown.map(
  (p) =>
    h`<tr><td><a href="${ADMIN}/payouts/${p.id}"><code>${p.id}</code></a></td><td>${p.gateway} · ${p.gateway_account ?? 'default'}</td><td>${p.status}</td><td class="n">${money(p.amount, p.currency)}</td><td class="n">${money(p.gross, p.currency)}</td><td class="n">${money(p.fees, p.currency)}</td><td class="n">${money(p.refunds, p.currency)}</td><td class="n">${money(p.disputes, p.currency)}</td><td class="n">${money(p.adjustments, p.currency)}</td><td class="n${p.lines_known && p.net !== p.amount ? ' bad' : ''}">${money(p.net, p.currency)}${p.lines_known ? '' : ' (lines not all known yet)'}</td><td class="n">${p.line_count}</td><td class="n${p.unmatched_lines ? ' bad' : ''}">${p.unmatched_lines}</td><td>${p.arrival_date}</td></tr>`,
)}
</tbody></table>
${shown.length === 0 ? h`<p>No payout matches.</p>` : ''}
${pager('/payouts', values, shown.at(-1)?.id, rows.length > PAGE_SIZE)}`;
    sendPage(req, res, { title: 'Payouts', section: '/payouts', refresh: true }, body);
  });

  router.get(`${ADMIN}/payouts/:id`, async (req, res) => {
    const payout = await getPayout(db, req.params.id);
    const p = serializePayout(payout);
    const lines = payout.lines.map(serializeSettlementLine);
    const body = h`<table>
<tr><th>gateway</th><td>${p.gateway} · account ${p.gateway_account ?? 'default'} · <code>${p.gateway_payout_id}</code></td></tr>
<tr><th>status</th><td>${p.status}${p.failure_code ? ` (${p.failure_code})` : ''}</td></tr>
<tr><th>amount</th><td>${money(p.amount, p.currency)}</td></tr>
<tr><th>gross · fees · refunds · disputes · adjustments</th><td>${money(p.gross, p.currency)} · ${money(p.fees, p.currency)} · ${money(p.refunds, p.currency)} · ${money(p.disputes, p.currency)} · ${money(p.adjustments, p.currency)}</td></tr>
<tr><th>net of its lines</th><td class="${p.lines_known && p.net !== p.amount ? 'bad' : ''}">${money(p.net, p.currency)}${p.lines_known ? '' : ' (lines not all known yet)'}</td></tr>
<tr><th>arrival</th><td>${p.arrival_date}</td></tr>
</table>
<p><a href="${ADMIN}/exceptions?payout=${p.id}">Its reconciliation exceptions</a></p>
<h2>Lines (${lines.length})</h2>
<table id="lines"><thead><tr><th>line</th><th>kind</th><th>gross</th><th>fee</th><th>net</th><th>matched</th><th>gateway ids</th></tr></thead><tbody>
${lines.map(
  (l) =>
    h`<tr><td><code>${l.id}</code></td><td>${l.kind}</td><td class="n">${money(l.gross, l.currency)}</td><td class="n">${money(l.fee, l.currency)}</td><td class="n">${money(l.net, l.currency)}</td><td class="${l.unmatched ? 'bad' : ''}">${l.unmatched ? 'unmatched' : h`<code>${l.matched ?? ''}</code>`}</td><td><code>${[l.gateway_transaction_id, l.gateway_refund_id, l.gateway_dispute_id].filter(Boolean).join(' ')}</code></td></tr>`,
)}
</tbody></table>`;
    sendPage(req, res, { title: `Payout ${p.id}`, section: '/payouts' }, body);
  });

  router.get(`${ADMIN}/settlement`, async (req, res) => {
    const query = parseForm(ReportQuery, req.query);
    const now = new Date();
    const from = query.from ?? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const to = query.to ?? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    const rows =
      to > from
        ? await settlementReport(db, {
            from,
            to,
            gateway: query.gateway,
            gatewayAccount: accountFilter(query.gateway_account),
            currency: query.currency,
          })
        : [];
    const fields = [
      { name: 'from', label: 'From (UTC)', type: 'datetime-local' },
      { name: 'to', label: 'Before (UTC)', type: 'datetime-local' },
      ...PAYOUT_FIELDS.filter((f) => f.name !== 'status'),
    ] as const;
    const body = h`${filterForm('/settlement', fields, queryOf({ ...query, from, to }))}
<p>From ${from} to ${to}: each gateway account's clearing account (what the gateway holds for it), its fees, payouts in transit and bank, in minor units shown as decimals.</p>
<table id="settlement"><thead><tr><th>gateway · account</th><th>opening</th><th>charges</th><th>refunds</th><th>disputes</th><th>fees</th><th>conversions</th><th>adjustments</th><th>payouts</th><th>other</th><th>closing</th><th>fees booked</th><th>in transit (closing)</th><th>bank (moved)</th></tr></thead><tbody>
${rows.map((r) => {
  const m = (amount: bigint) => money(amount, r.currency);
  return h`<tr><td>${r.gateway} · ${r.gatewayAccount ?? 'default'}</td><td class="n">${m(r.clearing.opening)}</td><td class="n">${m(r.clearing.charges)}</td><td class="n">${m(r.clearing.refunds)}</td><td class="n">${m(r.clearing.disputes)}</td><td class="n">${m(r.clearing.fees)}</td><td class="n">${m(r.clearing.conversions)}</td><td class="n">${m(r.clearing.adjustments)}</td><td class="n">${m(r.clearing.payouts)}</td><td class="n">${m(r.clearing.other)}</td><td class="n${r.clearing.balances ? '' : ' bad'}">${m(r.clearing.closing)}</td><td class="n">${m(r.gatewayFees.movements)}</td><td class="n">${m(r.payoutsInTransit.closing)}</td><td class="n">${m(r.bank.movements)}</td></tr>`;
})}
</tbody></table>
${rows.length === 0 ? h`<p>Nothing moved through a clearing account in this period.</p>` : ''}`;
    sendPage(req, res, { title: 'Settlement report', section: '/settlement', refresh: true }, body);
  });
  return router;
}
