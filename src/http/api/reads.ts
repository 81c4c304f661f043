import { Router } from 'express';
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
import { accountFilter, type ListEndpoint, listHandler, toPage } from './pagination.ts';
import {
  AccountQuery,
  ActivityQuery,
  CreditNoteListQuery,
  EventListQuery,
  ExceptionListQuery,
  GatewayListQuery,
  type ListQuery,
  ResolveException,
  SequenceQuery,
  TransactionListQuery,
} from './schemas.ts';
import { serialize } from './serialize.ts';
import { parseInput } from './validate.ts';

/**
 * Views of the reconciled books: events (the inbox, and replaying one), transactions, refunds,
 * credit notes (also by invoice or refund), disputes, reconciliation exceptions (also by gateway account and payout; each listed and read by id), ledger accounts with balances and ledger entries by sequence.
 */
export function readRoutes({ db, boss }: AppDeps): Router {
  const router = Router();

  /** `GET path` (a list: `endpoint`) and `GET path/:id` (one row; 404 `<resource>_not_found`). */
  function list<Q extends z.ZodType<ListQuery>, R>(
    path: string,
    resource: string,
    endpoint: ListEndpoint<Q, R>,
  ): void {
    router.get(path, listHandler(db, endpoint));
    router.get(`${path}/:id`, async (req, res) => {
      res.json(endpoint.map(await getRow<R>(db, endpoint.table, req.params.id, resource)));
    });
  }

  /** Status, gateway and gateway account: what refunds, disputes and the inbox filter by. */
  const byGateway = (query: z.output<typeof GatewayListQuery>) => ({
    status: query.status,
    gateway: query.gateway,
    gateway_account: accountFilter(query.gateway_account),
  });
  list('/events', 'event', {
    table: 'inbox',
    query: EventListQuery,
    created: 'received_at',
    equals: byGateway,
    where: (query) => (query.customer ? [inboxTouchesCustomer(query.customer)] : []),
    map: serialize.event,
  });
  // Gateway payment attempts and offline payments (`op_…`) together, in creation order.
  list('/transactions', 'transaction', {
    table: 'transaction_list',
    orderKey: 'sort_key',
    query: TransactionListQuery,
    equals: (query) => ({
      ...byGateway(query),
      customer_id: query.customer,
      invoice_id: query.invoice,
      type: query.type,
    }),
    // An offline payment has no gateway account: `gateway_account=default` means gateway payments only.
    where: (query) => (query.gateway_account ? [sql<boolean>`type = 'gateway'`] : []),
    map: serialize.transaction,
  });
  list('/refunds', 'refund', {
    table: 'refunds',
    query: GatewayListQuery,
    equals: byGateway,
    map: serialize.refund,
  });
  list('/disputes', 'dispute', {
    table: 'disputes',
    query: GatewayListQuery,
    equals: byGateway,
    map: serialize.dispute,
  });
  router.get(
    '/reconciliation-exceptions',
    listHandler(db, {
      table: 'reconciliation_exceptions',
      query: ExceptionListQuery,
      equals: (query) => ({
        status: query.status,
        gateway: query.gateway,
        gateway_account: accountFilter(query.gateway_account),
        payout_id: query.payout,
      }),
      map: serialize.exception,
    }),
  );
  router.get('/reconciliation-exceptions/:id', async (req, res) => {
    res.json(
      serialize.exception(
        await getRow<ReconciliationExceptionRow>(
          db,
          'reconciliation_exceptions',
          req.params.id,
          'reconciliation_exception',
        ),
      ),
    );
  });

  router.get(
    '/credit-notes',
    listHandler(db, {
      table: 'credit_notes',
      query: CreditNoteListQuery,
      equals: (query) => ({
        status: query.status,
        customer_id: query.customer,
        invoice_id: query.invoice,
        refund_id: query.refund,
      }),
      map: serialize.creditNote,
    }),
  );
  router.get('/credit-notes/:id', async (req, res) => {
    res.json(
      serialize.creditNote(await getRow<CreditNoteRow>(db, 'credit_notes', req.params.id, 'credit_note')),
    );
  });

  router.post('/events/:id/replay', async (req, res) => {
    const [row] = await replayInboxEvents(db, boss, [req.params.id]);
    res.status(202).json(serialize.event(row!));
  });

  router.post('/reconciliation-exceptions/:id/resolve', async (req, res) => {
    const body = parseInput(ResolveException, req.body);
    res.json(serialize.exception(await resolveException(db, actorOf(req), req.params.id, body.note)));
  });

  router.get('/activities', async (req, res) => {
    const query = parseInput(ActivityQuery, req.query);
    const rows = await listActivities(db, {
      afterSequence: BigInt(query.after_sequence),
      limit: query.limit,
      resourceId: query.resource,
      customerId: query.customer,
      createdFrom: query.created_gte,
      createdBefore: query.created_lt,
    });
    res.json(toPage(rows, query.limit, serialize.activity));
  });

  router.get('/ledger/accounts', async (req, res) => {
    const query = parseInput(AccountQuery, req.query);
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
  });

  router.get('/ledger/accounts/:id', async (req, res) => {
    const account = await accountBalance(db, req.params.id);
    if (!account) throw new NotFoundError('ledger_account', req.params.id);
    res.json(serialize.account(account));
  });

  /** Journal entries by sequence after `after_sequence`, all of them or those posting to `account`. */
  async function entriesPage(afterSequence: number, limit: number, account?: string) {
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

  router.get('/ledger/accounts/:id/entries', async (req, res) => {
    const query = parseInput(SequenceQuery, req.query);
    await getRow(db, 'ledger_accounts', req.params.id, 'ledger_account');
    res.json(await entriesPage(query.after_sequence, query.limit, req.params.id));
  });

  router.get('/ledger/entries', async (req, res) => {
    const query = parseInput(SequenceQuery, req.query);
    res.json(await entriesPage(query.after_sequence, query.limit));
  });
  return router;
}
