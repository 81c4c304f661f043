import { z } from 'zod';
import type { Db } from '../../db/database.ts';
import type { SettlementLineRow } from '../../db/schema.ts';
import { PAYOUT_STATUSES } from '../../gateways/settlement.ts';
import { getPayout, lineMatch, listPayouts, type PayoutWithSummary } from '../../settlement/read.ts';
import { type AccountPeriod, type SettlementReportRow, settlementReport } from '../../settlement/report.ts';
import { accountFilter, listFilter, toPage } from './pagination.ts';
import { listOf, Payout, PayoutWithLines, SettlementReport } from './responses.ts';
import { type ApiRoute, route } from './route.ts';
import { Currency, Gateway, ListQuery, Timestamp } from './schemas.ts';

/** `default` (the gateway's default account) or a gateway account's id. */
const GatewayAccount = z.string().regex(/^(default|gwa_[0-9a-z]{1,40})$/, 'must be default or a gwa_… id');

/**
 * `GET /v1/payouts`: cursor pagination (`limit`, `starting_after`, `sort`), filtered by `gateway`,
 * `gateway_account` (`default` or `gwa_…`), `status`, `currency`, when the gateway created it
 * (`created_gte` inclusive, `created_lt` exclusive) and its arrival date (`arrival_gte`,
 * `arrival_lt`), times in ISO 8601 with a zone.
 */
export const PayoutListQuery = ListQuery.extend({
  gateway: Gateway.optional(),
  status: z.enum(PAYOUT_STATUSES).optional(),
  gateway_account: GatewayAccount.optional(),
  currency: Currency.optional(),
  arrival_gte: Timestamp.optional(),
  arrival_lt: Timestamp.optional(),
});

const isoDate = z.iso.date();
const isoTime = z.iso.datetime({ offset: true });

/** A report bound: a date (`2026-12-01`, midnight UTC) or an ISO 8601 time with a zone. */
const ReportTime = z.string().transform((text, ctx) => {
  const iso = isoDate.safeParse(text).success
    ? `${text}T00:00:00Z`
    : isoTime.safeParse(text).success
      ? text
      : undefined;
  if (iso === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: 'must be a date (2026-12-01, midnight UTC) or an ISO 8601 time with a zone',
    });
    return z.NEVER;
  }
  return new Date(iso);
});

/**
 * `GET /v1/reports/settlement`: the period [`from`, `to`) (`to` after `from`), optionally of one
 * `gateway`, one `gateway_account` (`default` or `gwa_…`) and one `currency`.
 */
export const SettlementReportQuery = z
  .object({
    from: ReportTime,
    to: ReportTime,
    gateway: Gateway.optional(),
    gateway_account: GatewayAccount.optional(),
    currency: Currency.optional(),
  })
  .refine((query) => query.from < query.to, { message: 'must be after from', path: ['to'] });

/** A settlement line as the API shows it: minor units signed from the merchant's side, and what it matched. */
export function serializeSettlementLine(line: SettlementLineRow) {
  const { matched, unmatched } = lineMatch(line);
  return {
    id: line.id,
    object: 'settlement_line',
    kind: line.kind,
    gateway_line_id: line.gateway_line_id,
    currency: line.currency,
    gross: line.gross,
    fee: line.fee,
    net: line.net,
    /** The payment's own currency and amount when the gateway converted it, else null. */
    original:
      line.original_currency === null
        ? null
        : { currency: line.original_currency, amount: line.original_amount },
    /** The billhook transaction (`txn_…`), refund (`re_…`) or dispute (`dp_…`) it is about; null: none. */
    matched,
    /** True for a charge, refund or dispute line billhook could not match (an exception for a person). */
    unmatched,
    transaction: line.transaction_id,
    refund: line.refund_id,
    dispute: line.dispute_id,
    gateway_transaction_id: line.gateway_transaction_id,
    gateway_refund_id: line.gateway_refund_id,
    gateway_dispute_id: line.gateway_dispute_id,
    reference: line.reference,
    description: line.description,
    occurred_at: line.occurred_at,
    available_on: line.available_on,
    created_at: line.created_at,
  };
}

/**
 * A payout as the API shows it, with what its lines add up to (`PayoutSummary`, minor units of
 * `currency`): `net` equals `amount` once the gateway listed every line (`lines_known`).
 */
export function serializePayout({ payout, summary }: PayoutWithSummary) {
  return {
    id: payout.id,
    object: 'payout',
    gateway: payout.gateway,
    /** The gateway account (`gwa_…`) that paid it out; null: the gateway's default account. */
    gateway_account: payout.gateway_account,
    gateway_payout_id: payout.gateway_payout_id,
    status: payout.status,
    currency: payout.currency,
    amount: payout.amount,
    gross: summary.gross,
    fees: summary.fees,
    refunds: summary.refunds,
    disputes: summary.disputes,
    adjustments: summary.adjustments,
    net: summary.net,
    lines_known: payout.lines_known,
    line_count: summary.lineCount,
    unmatched_lines: summary.unmatchedLines,
    arrival_date: payout.arrival_date,
    failure_code: payout.failure_code,
    description: payout.description,
    gateway_created_at: payout.gateway_created_at,
    created_at: payout.created_at,
    updated_at: payout.updated_at,
  };
}

const period = (p: AccountPeriod) => ({ opening: p.opening, movements: p.movements, closing: p.closing });

/** One gateway account and currency of the settlement report, as the API shows it (minor units). */
export function serializeSettlementReportRow(row: SettlementReportRow) {
  return {
    gateway: row.gateway,
    gateway_account: row.gatewayAccount,
    currency: row.currency,
    clearing: { ...row.clearing },
    gateway_fees: period(row.gatewayFees),
    fx: period(row.fx),
    payouts_in_transit: period(row.payoutsInTransit),
    bank: period(row.bank),
  };
}

/** The settlement report of a parsed query, as the API answers it (and `billhook settlement report --json` prints it). */
export async function settlementReportBody(db: Db, query: z.output<typeof SettlementReportQuery>) {
  const rows = await settlementReport(db, {
    from: query.from,
    to: query.to,
    gateway: query.gateway,
    gatewayAccount: accountFilter(query.gateway_account),
    currency: query.currency,
  });
  return {
    object: 'settlement_report',
    from: query.from,
    to: query.to,
    data: rows.map(serializeSettlementReportRow),
  };
}

/**
 * Settlement reads (PRODUCT.md §13): `GET /v1/payouts` (a page of payouts with their summaries),
 * `GET /v1/payouts/:id` (one, with its lines and what each matched; 404 `payout_not_found`) and
 * `GET /v1/reports/settlement` (per gateway account and currency). Bad queries are 422 with a message
 * per field.
 */
export const settlementRoutes: ApiRoute[] = [
  route({
    method: 'get',
    path: '/v1/payouts',
    operationId: 'listPayouts',
    tag: 'Settlement',
    scope: 'read',
    summary:
      'List payouts with what their lines add up to (filter by gateway, gateway_account, status, currency, created and arrival dates)',
    query: PayoutListQuery,
    responses: { 200: listOf(Payout, 'PayoutList') },
    handler: async (_req, res, { deps, query }) => {
      const filter = {
        ...listFilter(query, 'gateway_created_at', {
          status: query.status,
          gateway: query.gateway,
          gateway_account: accountFilter(query.gateway_account),
          currency: query.currency,
        }),
        ranges: [{ column: 'arrival_date', from: query.arrival_gte, to: query.arrival_lt }],
      };
      res.json(toPage(await listPayouts(deps.db, filter), query.limit, serializePayout));
    },
  }),
  route({
    method: 'get',
    path: '/v1/payouts/{id}',
    operationId: 'getPayout',
    tag: 'Settlement',
    scope: 'read',
    summary:
      'Read a payout: gross, fees, refunds, disputes, adjustments, net, status, arrival date, and its lines with what each matched',
    responses: { 200: PayoutWithLines },
    handler: async (req, res, { deps }) => {
      const payout = await getPayout(deps.db, req.params.id);
      res.json({ ...serializePayout(payout), lines: payout.lines.map(serializeSettlementLine) });
    },
  }),
  route({
    method: 'get',
    path: '/v1/reports/settlement',
    operationId: 'getSettlementReport',
    tag: 'Settlement',
    scope: 'read',
    summary:
      'Settlement report per gateway account and currency over [from, to): clearing by source (charges, refunds, disputes, fees, conversions, adjustments, payouts) from its opening to its closing balance, gateway fees, FX, payouts in transit, bank',
    query: SettlementReportQuery,
    responses: { 200: SettlementReport },
    handler: async (_req, res, { deps, query }) => {
      res.json(await settlementReportBody(deps.db, query));
    },
  }),
];
