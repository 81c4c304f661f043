import type { Kysely } from 'kysely';
import { joinLedgerWriters } from '../ledger/journal.ts';
import type { Database } from './schema.ts';

/**
 * Runs `fn` in a new transaction that has joined the ledger's writers (`joinLedgerWriters`) before
 * `fn` runs any statement: the one way to open a transaction that may record an activity or post a
 * journal entry. Joining first, before any row lock or write, keeps a writer from holding a row that
 * another writer waits for while it queues for the shared lock behind a reader of the sequence (a
 * cycle PostgreSQL breaks only after `deadlock_timeout`, by reordering the queue or aborting one of
 * them with 40P01). Readers of the sequence (`quiesceLedgerWriters`) open plain transactions.
 * @returns what `fn` returns; the transaction commits when it resolves and rolls back when it throws
 */
export function writeTransaction<T>(
  db: Kysely<Database>,
  fn: (trx: Kysely<Database>) => Promise<T>,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await joinLedgerWriters(trx);
    return fn(trx);
  });
}
