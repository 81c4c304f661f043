import { Router } from 'express';
import { listActivities } from '../../activities/activities.ts';
import { getRow } from '../../db/get.ts';
import type { Database } from '../../db/schema.ts';
import { replayInboxEvents } from '../../inbox/replay.ts';
import { listBalances } from '../../ledger/balances.ts';
import { quiesceLedgerWriters } from '../../ledger/journal.ts';
import { resolveException } from '../../reconcile/exceptions.ts';
import type { AppDeps } from '../deps.ts';
import { listHandler, toPage } from './pagination.ts';
import { ActivityQuery, ListQuery, ResolveException, SequenceQuery } from './schemas.ts';
import { serialize } from './serialize.ts';
import { parseInput } from './validate.ts';

/**
 * Views of the reconciled books: events (the inbox, and replaying one), transactions, refunds,
 * disputes, reconciliation exceptions (each listed and read by id), ledger accounts with balances and ledger entries by sequence.
 */
export function readRoutes({ db, boss }: AppDeps): Router {
  const router = Router();

  /** `GET path` (a list) and `GET path/:id` (one row; 404 `<resource>_not_found`). */
  function list<R>(
    path: string,
    table: keyof Database,
    resource: string,
    columns: { customer?: string; gateway?: string; created?: string },
    map: (row: R) => unknown,
  ): void {
    router.get(
      path,
      listHandler(db, {
        table,
        query: ListQuery,
        created: columns.created,
        equals: (query) => ({
          status: query.status,
          ...(columns.customer ? { [columns.customer]: query.customer } : {}),
          ...(columns.gateway ? { [columns.gateway]: query.gateway } : {}),
        }),
        map,
      }),
    );
    router.get(`${path}/:id`, async (req, res) => {
      res.json(map(await getRow<R>(db, table, req.params.id, resource)));
    });
  }

  list('/events', 'inbox', 'event', { gateway: 'gateway', created: 'received_at' }, serialize.event);
  list(
    '/transactions',
    'transactions',
    'transaction',
    { customer: 'customer_id', gateway: 'gateway' },
    serialize.transaction,
  );
  list('/refunds', 'refunds', 'refund', { gateway: 'gateway' }, serialize.refund);
  list('/disputes', 'disputes', 'dispute', { gateway: 'gateway' }, serialize.dispute);
  list(
    '/reconciliation-exceptions',
    'reconciliation_exceptions',
    'reconciliation_exception',
    { gateway: 'gateway' },
    serialize.exception,
  );

  router.post('/events/:id/replay', async (req, res) => {
    const [row] = await replayInboxEvents(db, boss, [req.params.id]);
    res.status(202).json(serialize.event(row!));
  });

  router.post('/reconciliation-exceptions/:id/resolve', async (req, res) => {
    const body = parseInput(ResolveException, req.body);
    res.json(serialize.exception(await resolveException(db, req.params.id, body.note)));
  });

  router.get('/activities', async (req, res) => {
    const query = parseInput(ActivityQuery, req.query);
    const rows = await listActivities(db, {
      afterSequence: BigInt(query.after_sequence),
      limit: query.limit,
      resourceId: query.resource,
      customerId: query.customer,
    });
    res.json(toPage(rows, query.limit, serialize.activity));
  });

  router.get('/ledger/accounts', async (_req, res) => {
    const accounts = await listBalances(db);
    res.json({ object: 'list', data: accounts.map(serialize.account), has_more: false });
  });

  router.get('/ledger/entries', async (req, res) => {
    const query = parseInput(SequenceQuery, req.query);
    const entries = await db.transaction().execute(async (trx) => {
      await quiesceLedgerWriters(trx);
      return trx
        .selectFrom('journal_entries')
        .selectAll()
        .where('sequence', '>', BigInt(query.after_sequence) as never)
        .orderBy('sequence')
        .limit(query.limit + 1)
        .execute();
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
    res.json(
      toPage(entries, query.limit, (e) => ({
        id: e.id,
        object: 'journal_entry',
        sequence: e.sequence,
        description: e.description,
        source: { type: e.source_type, id: e.source_id },
        postings: postings
          .filter((p) => p.journal_entry_id === e.id)
          .map((p) => ({ account: p.code, amount: p.amount, currency: p.currency })),
        created_at: e.created_at,
      })),
    );
  });
  return router;
}
