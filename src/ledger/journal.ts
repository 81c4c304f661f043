import { type Kysely, sql } from 'kysely';
import { newId } from '../db/ids.ts';
import type { Database } from '../db/schema.ts';
import type { AccountRef } from './chart.ts';

/** One side of a journal entry: a signed amount in minor units (debit > 0, credit < 0). */
export interface PostingInput {
  account: AccountRef;
  amount: bigint;
  currency: string;
}

/** A journal entry to post. */
export interface EntryInput {
  /** Unique per business fact (e.g. `txn_…:succeeded`): posting the same key twice changes nothing. */
  idempotencyKey: string;
  description: string;
  /** What caused the entry, e.g. `invoice` / `inv_…`. */
  source: { type: string; id: string };
  postings: PostingInput[];
}

/** Raised for an entry that would break double entry (unbalanced, empty, zero amounts). */
export class LedgerError extends Error {
  override name = 'LedgerError';
}

function assertBalanced(entry: EntryInput): void {
  if (entry.postings.length < 2)
    throw new LedgerError(`entry ${entry.idempotencyKey} needs at least two postings`);
  const sums = new Map<string, bigint>();
  for (const posting of entry.postings) {
    if (posting.amount === 0n) throw new LedgerError(`entry ${entry.idempotencyKey} has a zero posting`);
    sums.set(posting.currency, (sums.get(posting.currency) ?? 0n) + posting.amount);
  }
  for (const [currency, sum] of sums) {
    if (sum !== 0n)
      throw new LedgerError(`entry ${entry.idempotencyKey} does not balance in ${currency}: ${sum}`);
  }
}

/**
 * Finds or creates the ledger account for `ref` in `currency`.
 * @returns the account id (`acct_…`)
 */
export async function ensureAccount(
  trx: Kysely<Database>,
  ref: AccountRef,
  currency: string,
): Promise<string> {
  await trx
    .insertInto('ledger_accounts')
    .values({ id: newId('acct'), code: ref.code, type: ref.type, currency })
    .onConflict((oc) => oc.columns(['code', 'currency']).doNothing())
    .execute();
  const row = await trx
    .selectFrom('ledger_accounts')
    .select('id')
    .where('code', '=', ref.code)
    .where('currency', '=', currency)
    .executeTakeFirstOrThrow();
  return row.id;
}

/**
 * Posts a balanced journal entry, at most once per idempotency key. Call it inside the transaction
 * that changes the business state the entry records. Entries and postings are immutable (the
 * database refuses UPDATE and DELETE, and checks the balance per currency again at commit).
 * @returns `true` when posted now, `false` when an entry with this key already existed
 * @throws LedgerError for an unbalanced or empty entry
 */
export async function postEntry(trx: Kysely<Database>, entry: EntryInput): Promise<boolean> {
  assertBalanced(entry);
  await joinLedgerWriters(trx);
  const id = newId('je');
  const inserted = await trx
    .insertInto('journal_entries')
    .values({
      id,
      idempotency_key: entry.idempotencyKey,
      description: entry.description,
      source_type: entry.source.type,
      source_id: entry.source.id,
    })
    .onConflict((oc) => oc.column('idempotency_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (!inserted) return false;
  const rows = [];
  for (const posting of entry.postings) {
    const accountId = await ensureAccount(trx, posting.account, posting.currency);
    rows.push({
      journal_entry_id: id,
      account_id: accountId,
      amount: posting.amount,
      currency: posting.currency,
    });
  }
  await trx.insertInto('postings').values(rows).execute();
  return true;
}

/** Advisory lock key guarding the order in which journal entries become visible. */
const SEQUENCE_LOCK = 0x6c656467; // "ledg"

/**
 * Joins the ledger's writers (a shared advisory lock held until commit). Call it in a transaction that
 * may post, before it takes any row lock; readers of the entry sequence wait for every writer that
 * started before them, so a consumer tailing `sequence` never skips an entry committed late.
 */
export async function joinLedgerWriters(trx: Kysely<Database>): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock_shared(${SEQUENCE_LOCK})`.execute(trx);
}

/**
 * Waits until no ledger writer is in flight (exclusive advisory lock until `trx` ends), so entries read
 * afterwards in `trx` form a gap-free prefix of the sequence.
 */
export async function quiesceLedgerWriters(trx: Kysely<Database>): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${SEQUENCE_LOCK})`.execute(trx);
}

/** True when an entry with this idempotency key has been posted. */
export async function entryPosted(trx: Kysely<Database>, idempotencyKey: string): Promise<boolean> {
  const row = await trx
    .selectFrom('journal_entries')
    .select('id')
    .where('idempotency_key', '=', idempotencyKey)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * A two-posting entry moving `amount` from `credit` to `debit`.
 * @param amount positive, minor units
 */
export function transfer(
  debit: AccountRef,
  credit: AccountRef,
  amount: bigint,
  currency: string,
): PostingInput[] {
  return [
    { account: debit, amount, currency },
    { account: credit, amount: -amount, currency },
  ];
}
