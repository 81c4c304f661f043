import { sql } from 'kysely';
import type { z } from 'zod';
import { listActivities } from '../../activities/activities.ts';
import { getRow } from '../../db/get.ts';
import { cursorMissing } from '../../db/list.ts';
import type { CreditNoteRow, ReconciliationExceptionRow } from '../../db/schema.ts';
import { NotFoundError } from '../../errors.ts';
import { resolveException } from '../../exceptions/exceptions.ts';
import { inboxTouchesCustomer } from '../../inbox/customer.ts';
import { replayInboxEvents } from '../../inbox/replay.ts';
import { accountBalance, listBalances } from '../../ledger/balances.ts';
import { quiesceLedgerWriters } from '../../ledger/unit-of-work.ts';
import { actorOf } from '../actor.ts';
import type { AppDeps } from '../deps.ts';
import { accountFilter, type ListEndpoint, type ListQuerySchema, listRoute, toPage } from './pagination.ts';
import {
  Activity,
  CreditNote,
  Dispute,
  Event,
  JournalEntry,
  LedgerAccount,
  listOf,
  ReconciliationException,
  Refund,
  Transaction,
} from './responses.ts';
import { type ApiRoute, route, type Tag } from './route.ts';
import {
  AccountQuery,
  ActivityQuery,
  CreditNoteListQuery,
  DisputeListQuery,
  EventListQuery,
  ExceptionListQuery,
  type GatewayListQuery,
  RefundListQuery,
  ResolveException,
  SequenceQuery,
  TransactionListQuery,
} from './schemas.ts';
import { serialize } from './serialize.ts';

/**
 * `GET /v1/<plural>` (a page: `endpoint`) and `GET /v1/<plural>/{id}` (one row; 404
 * `<resource>_not_found`), both answering `item` (a component named `name`, the list `<name>List`).
 */
function listAndRead<Q extends ListQuerySchema, R>(spec: {
  plural: string;
  /** The resource's name in error codes (`credit_note`). */
  resource: string;
  /** The item's name in operation ids and components (`CreditNote`). */
  name: string;
  tag: Tag;
  summary: string;
  readSummary: string;
  query: Q;
  item: z.ZodType;
  endpoint: ListEndpoint<Q, R>;
}): ApiRoute[] {
  return [
    listRoute({
      path: `/v1/${spec.plural}`,
      operationId: `list${spec.name}s`,
      tag: spec.tag,
      summary: spec.summary,
      query: spec.query,
      responses: { 200: listOf(spec.item, `${spec.name}List`) },
      list: spec.endpoint,
    }),
    route({
      method: 'get',
      path: `/v1/${spec.plural}/{id}`,
      operationId: `get${spec.name}`,
      tag: spec.tag,
      scope: 'read',
      summary: spec.readSummary,
      responses: { 200: spec.item },
      handler: async (req, res, { deps }) => {
        const row = await getRow<R>(deps.db, spec.endpoint.table, req.params.id, spec.resource);
        res.json(spec.endpoint.map(row));
      },
    }),
  ];
}

/** Status, gateway and gateway account: what refunds, disputes and the inbox filter by. */
const byGateway = (query: z.output<typeof GatewayListQuery> & { status?: string }) => ({
  status: query.status,
  gateway: query.gateway,
  gateway_account: accountFilter(query.gateway_account),
});

/** Journal entries by sequence after `after_sequence`, all of them or those posting to `account`. */
async function entriesPage(db: AppDeps['db'], afterSequence: number, limit: number, account?: string) {
  const entries = await db.transaction().execute(async (trx) => {
    await quiesceLedgerWriters(trx);
    let query = trx
      .selectFrom('journal_entries as e')
      .selectAll('e')
      .where('e.sequence', '>', BigInt(afterSequence) as never)
      .orderBy('e.sequence')
      .limit(limit + 1);
    if (account) {
      query = query.where(({ exists, selectFrom }) =>
        exists(
          selectFrom('postings as q')
            .select('q.id')
            .whereRef('q.journal_entry_id', '=', 'e.id')
            .where('q.account_id', '=', account),
        ),
      );
    }
    return query.execute();
  });
  const postings = entries.length
    ? await db
        .selectFrom('postings as p')
        .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
        .select(['p.journal_entry_id', 'a.code', 'p.amount', 'p.currency'])
        .where(
          'p.journal_entry_id',
          'in',
          entries.map((e) => e.id),
        )
        .orderBy('p.id')
        .execute()
    : [];
  return toPage(entries, limit, (e) => ({
    id: e.id,
    object: 'journal_entry',
    sequence: e.sequence,
    description: e.description,
    source: { type: e.source_type, id: e.source_id },
    postings: postings
      .filter((p) => p.journal_entry_id === e.id)
      .map((p) => ({ account: p.code, amount: p.amount, currency: p.currency })),
    created_at: e.created_at,
  }));
}

/**
 * Views of the reconciled books: events (the inbox, and replaying one), transactions, refunds,
 * credit notes (also by invoice or refund), disputes, reconciliation exceptions (also by gateway
 * account and payout; each listed and read by id), the activity log, ledger accounts with balances
 * and ledger entries by sequence.
 */
export const readRoutes: ApiRoute[] = [
  ...listAndRead({
    plural: 'events',
    resource: 'event',
    name: 'Event',
    tag: 'Events',
    summary:
      'List stored webhooks (the inbox; customer: deliveries naming their transactions, refunds or disputes; created_gte/created_lt: when received)',
    readSummary: 'Read a stored webhook',
    query: EventListQuery,
    item: Event,
    endpoint: {
      table: 'inbox',
      created: 'received_at',
      equals: byGateway,
      where: (query) => (query.customer ? [inboxTouchesCustomer(query.customer)] : []),
      map: serialize.event,
    },
  }),
  ...listAndRead({
    plural: 'transactions',
    resource: 'transaction',
    name: 'Transaction',
    tag: 'Transactions',
    summary:
      'List payments: gateway payment attempts and offline payments (type gateway | offline; filter by status, customer, gateway, gateway_account, invoice, subscription, type)',
    readSummary:
      'Read a payment attempt (amount_captured: what a succeeded one moved, less than amount after a partial capture)',
    query: TransactionListQuery,
    item: Transaction,
    endpoint: {
      // Gateway payment attempts and offline payments (`op_…`) together, in creation order.
      table: 'transaction_list',
      orderKey: 'sort_key',
      equals: (query) => ({
        ...byGateway(query),
        customer_id: query.customer,
        invoice_id: query.invoice,
        type: query.type,
      }),
      where: (query) => [
        // An offline payment has no gateway account: `gateway_account=default` means gateway payments only.
        ...(query.gateway_account ? [sql<boolean>`type = 'gateway'`] : []),
        ...(query.subscription
          ? [
              sql<boolean>`invoice_id IN (SELECT id FROM invoices WHERE subscription_id = ${query.subscription})`,
            ]
          : []),
      ],
      map: serialize.transaction,
    },
  }),
  ...listAndRead({
    plural: 'refunds',
    resource: 'refund',
    name: 'Refund',
    tag: 'Refunds',
    summary: 'List refunds (filter by status, gateway, gateway_account, customer)',
    readSummary: 'Read a refund',
    query: RefundListQuery,
    item: Refund,
    endpoint: {
      table: 'refunds',
      equals: byGateway,
      // Every refund stores its customer (a payment's: its payment's, else its invoice's; migration 0061).
      where: (query) => (query.customer ? [sql<boolean>`customer_id = ${query.customer}`] : []),
      map: serialize.refund,
    },
  }),
  ...listAndRead({
    plural: 'disputes',
    resource: 'dispute',
    name: 'Dispute',
    tag: 'Disputes',
    summary:
      "List disputes (filter by status, gateway, gateway_account, customer: its payment's, else its invoice's)",
    readSummary: 'Read a dispute',
    query: DisputeListQuery,
    item: Dispute,
    endpoint: {
      table: 'disputes',
      equals: byGateway,
      where: (query) =>
        query.customer
          ? [
              // The payment's customer, else its invoice's, as the dispute's activities name it
              // (exceptions/exceptions.ts paymentCustomer); each side by its own index.
              sql<boolean>`transaction_id IN (
                SELECT id FROM transactions WHERE customer_id = ${query.customer}
                UNION ALL
                SELECT t.id FROM transactions t JOIN invoices i ON i.id = t.invoice_id
                WHERE t.customer_id IS NULL AND i.customer_id = ${query.customer})`,
            ]
          : [],
      map: serialize.dispute,
    },
  }),
  ...listAndRead({
    plural: 'reconciliation-exceptions',
    resource: 'reconciliation_exception',
    name: 'ReconciliationException',
    tag: 'Reconciliation exceptions',
    summary: 'List reconciliation exceptions (filter by status, gateway, gateway_account, payout)',
    readSummary: 'Read a reconciliation exception',
    query: ExceptionListQuery,
    item: ReconciliationException,
    endpoint: {
      table: 'reconciliation_exceptions',
      equals: (query) => ({
        status: query.status,
        gateway: query.gateway,
        gateway_account: accountFilter(query.gateway_account),
        payout_id: query.payout,
      }),
      map: (row: ReconciliationExceptionRow) => serialize.exception(row),
    },
  }),
  ...listAndRead({
    plural: 'credit-notes',
    resource: 'credit_note',
    name: 'CreditNote',
    tag: 'Credit notes',
    summary:
      "List credit notes (a refund's share of its invoice's subtotal and tax); filter by invoice, refund",
    readSummary: 'Read a credit note',
    query: CreditNoteListQuery,
    item: CreditNote,
    endpoint: {
      table: 'credit_notes',
      equals: (query) => ({
        status: query.status,
        customer_id: query.customer,
        invoice_id: query.invoice,
        refund_id: query.refund,
      }),
      map: (row: CreditNoteRow) => serialize.creditNote(row),
    },
  }),
  route({
    method: 'post',
    path: '/v1/events/{id}/replay',
    operationId: 'replayEvent',
    tag: 'Events',
    scope: 'write',
    summary: 'Process a stored webhook again',
    responses: { 202: { schema: Event, description: 'Queued for processing again' } },
    handler: async (req, res, { deps }) => {
      const [row] = await replayInboxEvents(deps.db, deps.boss, [req.params.id]);
      res.status(202).json(serialize.event(row!));
    },
  }),
  route({
    method: 'post',
    path: '/v1/reconciliation-exceptions/{id}/resolve',
    operationId: 'resolveReconciliationException',
    tag: 'Reconciliation exceptions',
    scope: 'write',
    summary: 'Mark a reconciliation exception resolved',
    body: ResolveException,
    responses: { 200: ReconciliationException },
    handler: async (req, res, { deps, body }) => {
      res.json(serialize.exception(await resolveException(deps.db, actorOf(req), req.params.id, body.note)));
    },
  }),
  route({
    method: 'get',
    path: '/v1/activities',
    operationId: 'listActivities',
    tag: 'Activities',
    scope: 'read',
    summary:
      'The audit log in sequence order, for tailing (filter by resource, customer, created_gte, created_lt)',
    query: ActivityQuery,
    responses: { 200: listOf(Activity, 'ActivityList') },
    handler: async (_req, res, { deps, query }) => {
      const rows = await listActivities(deps.db, {
        afterSequence: BigInt(query.after_sequence),
        limit: query.limit,
        resourceId: query.resource,
        customerId: query.customer,
        createdFrom: query.created_gte,
        createdBefore: query.created_lt,
      });
      res.json(toPage(rows, query.limit, serialize.activity));
    },
  }),
  route({
    method: 'get',
    path: '/v1/ledger/accounts',
    operationId: 'listLedgerAccounts',
    tag: 'Ledger',
    scope: 'read',
    summary:
      'Ledger accounts with balances per currency, by code then currency (filter by code, currency, type)',
    query: AccountQuery,
    responses: { 200: listOf(LedgerAccount, 'LedgerAccountList') },
    handler: async (_req, res, { deps: { db }, query }) => {
      let startingAfter: { code: string; currency: string } | undefined;
      if (query.starting_after) {
        startingAfter = await db
          .selectFrom('ledger_accounts')
          .select(['code', 'currency'])
          .where('id', '=', query.starting_after)
          .executeTakeFirst();
        if (!startingAfter) throw cursorMissing(query.starting_after, 'ledger account');
      }
      const accounts = await listBalances(db, {
        limit: query.limit,
        startingAfter,
        code: query.code,
        currency: query.currency,
        type: query.type,
      });
      res.json(toPage(accounts, query.limit, serialize.account));
    },
  }),
  route({
    method: 'get',
    path: '/v1/ledger/accounts/{id}',
    operationId: 'getLedgerAccount',
    tag: 'Ledger',
    scope: 'read',
    summary: 'Read a ledger account with its balance',
    responses: { 200: LedgerAccount },
    handler: async (req, res, { deps }) => {
      const account = await accountBalance(deps.db, req.params.id);
      if (!account) throw new NotFoundError('ledger_account', req.params.id);
      res.json(serialize.account(account));
    },
  }),
  route({
    method: 'get',
    path: '/v1/ledger/accounts/{id}/entries',
    operationId: 'listLedgerAccountEntries',
    tag: 'Ledger',
    scope: 'read',
    summary: "An account's journal entries in sequence order, for tailing",
    query: SequenceQuery,
    responses: { 200: listOf(JournalEntry, 'JournalEntryList') },
    handler: async (req, res, { deps: { db }, query }) => {
      await getRow(db, 'ledger_accounts', req.params.id, 'ledger_account');
      res.json(await entriesPage(db, query.after_sequence, query.limit, req.params.id));
    },
  }),
  route({
    method: 'get',
    path: '/v1/ledger/entries',
    operationId: 'listLedgerEntries',
    tag: 'Ledger',
    scope: 'read',
    summary: 'Journal entries in sequence order, for tailing',
    query: SequenceQuery,
    responses: { 200: listOf(JournalEntry, 'JournalEntryList') },
    handler: async (_req, res, { deps, query }) => {
      res.json(await entriesPage(deps.db, query.after_sequence, query.limit));
    },
  }),
];
