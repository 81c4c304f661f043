import { createHash } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { newId } from '../db/ids.ts';
import type { Database } from '../db/schema.ts';
import type { AccountRef } from './chart.ts';
import type { UnitOfWork } from './unit-of-work.ts';

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
 * The id of the ledger account for `code` in `currency`: `acct_` and 20 base-32 characters of a
 * SHA-256 of both, the same in every process, so concurrent writers that create an account agree.
 */
export function accountId(code: string, currency: string): string {
  const digest = createHash('sha256').update(`${code}\u0000${currency}`).digest();
  return `acct_${digest.readBigUInt64BE().toString(32).padStart(13, '0')}${digest.readBigUInt64BE(8).toString(32).padStart(13, '0')}`.slice(
    0,
    25,
  );
}

/**
 * Opens the ledger account for `ref` in `currency` if it does not exist yet.
 * @returns the account id (`acct_…`)
 */
export async function ensureAccount(
  trx: Kysely<Database>,
  ref: AccountRef,
  currency: string,
): Promise<string> {
  await trx
    .insertInto('ledger_accounts')
    .values({ id: accountId(ref.code, currency), code: ref.code, type: ref.type, currency })
    // No conflict target: the id (derived from code and currency) and (code, currency) are both
    // unique, and a concurrent first insert may collide on either.
    .onConflict((oc) => oc.doNothing())
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
 * Posts a balanced journal entry in `work`, at most once per idempotency key: an entry of
 * ledger/movements.ts, in the unit of work that changes the business state it records. Entries and
 * postings are immutable (the database refuses UPDATE, DELETE and TRUNCATE, and checks the balance
 * per currency again at commit). In a deferring unit (`defer: true`) the entry is checked now and
 * written with the others at the unit's end.
 * @returns `true` when posted now (or deferred), `false` when an entry with this key already existed
 * @throws LedgerError for an unbalanced or empty entry
 */
export async function postEntry(work: UnitOfWork, entry: EntryInput): Promise<boolean> {
  assertBalanced(entry);
  if (work.defer(writeEntries, [entry])) return true;
  const [posted] = await writeEntries(work, [entry]);
  return posted === true;
}

/**
 * Posts balanced entries in one statement that opens any missing account, inserts the entries
 * (skipping each whose key exists, and each repeat of a key in `entries`) and their postings: what a
 * deferring unit of work does at its end.
 * @returns per entry, whether it was posted now
 */
export async function writeEntries(work: UnitOfWork, entries: EntryInput[]): Promise<boolean[]> {
  await work.joinLedgerWriters();
  const keys = new Set<string>();
  const fresh: EntryInput[] = [];
  for (const entry of entries) {
    if (keys.has(entry.idempotencyKey)) continue;
    keys.add(entry.idempotencyKey);
    fresh.push(entry);
  }
  // The rows go in as one array per column (unnest), so the statement's text is the same for one
  // entry or a hundred: PostgreSQL parses and plans it in a fraction of a millisecond, where VALUES
  // lists of a batch's hundreds of parameters took it ~4 ms a batch to plan.
  const lines = fresh.flatMap((e) => e.postings.map((p) => ({ key: e.idempotencyKey, ...p })));
  const result = await sql<{ idempotency_key: string }>`
    WITH head (id, idempotency_key, description, source_type, source_id) AS (
      SELECT * FROM unnest(
        ${fresh.map(() => newId('je'))}::text[], ${fresh.map((e) => e.idempotencyKey)}::text[],
        ${fresh.map((e) => e.description)}::text[], ${fresh.map((e) => e.source.type)}::text[],
        ${fresh.map((e) => e.source.id)}::text[])
    ),
    line (idempotency_key, account_id, code, type, currency, amount) AS (
      SELECT * FROM unnest(
        ${lines.map((l) => l.key)}::text[], ${lines.map((l) => accountId(l.account.code, l.currency))}::text[],
        ${lines.map((l) => l.account.code)}::text[], ${lines.map((l) => l.account.type)}::text[],
        ${lines.map((l) => l.currency)}::char(3)[], ${lines.map((l) => l.amount)}::bigint[])
    ),
    opened AS (
      INSERT INTO ledger_accounts (id, code, type, currency)
      SELECT DISTINCT account_id, code, type, currency FROM line
      ON CONFLICT DO NOTHING
    ),
    entry AS (
      INSERT INTO journal_entries (id, idempotency_key, description, source_type, source_id)
      SELECT * FROM head
      ON CONFLICT (idempotency_key) DO NOTHING
      RETURNING id, idempotency_key
    ),
    posted AS (
      INSERT INTO postings (journal_entry_id, account_id, amount, currency)
      SELECT entry.id, coalesce(existing.id, line.account_id), line.amount, line.currency
      FROM entry JOIN line USING (idempotency_key)
      LEFT JOIN ledger_accounts existing ON existing.code = line.code AND existing.currency = line.currency
    )
    SELECT idempotency_key FROM entry
  `.execute(work.trx);
  const posted = new Set(result.rows.map((row) => row.idempotency_key));
  const first = new Set<EntryInput>(fresh);
  return entries.map((entry) => first.has(entry) && posted.has(entry.idempotencyKey));
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

/** A posting of a written journal entry: its account's code and its signed amount (minor units). */
export interface WrittenPosting {
  code: string;
  amount: bigint;
}

/**
 * The postings of the journal entry written with idempotency key `key` (`entryKeys` in
 * movements.ts), for code that undoes or checks exactly what an entry moved; none when no such entry is
 * written (an entry deferred by a unit of work is not written until its end).
 */
export function entryPostings(trx: Kysely<Database>, key: string): Promise<WrittenPosting[]> {
  return trx
    .selectFrom('journal_entries as e')
    .innerJoin('postings as p', 'p.journal_entry_id', 'e.id')
    .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
    .select(['a.code', 'p.amount'])
    .where('e.idempotency_key', '=', key)
    .execute();
}
