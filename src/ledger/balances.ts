import { type Kysely, sql } from 'kysely';
import type { AccountType, Database } from '../db/schema.ts';

/** A ledger account with its balance derived from postings (minor units; debit positive). */
export interface AccountBalance {
  id: string;
  code: string;
  type: AccountType;
  currency: string;
  balance: bigint;
}

/** Accounts with their balance summed from postings (`balance` as PostgreSQL's numeric sum). */
function accountsWithBalances(db: Kysely<Database>) {
  return db
    .selectFrom('ledger_accounts as a')
    .leftJoin('postings as p', 'p.account_id', 'a.id')
    .select(['a.id', 'a.code', 'a.type', 'a.currency', sql<bigint>`coalesce(sum(p.amount), 0)`.as('balance')])
    .groupBy('a.id');
}

/** Which accounts {@link listBalances} reads: a page after an account, optionally of one code, currency or type. */
export interface AccountFilter {
  limit: number;
  /** The id of the last account of the previous page (accounts are ordered by code, then currency). */
  startingAfter?: { code: string; currency: string };
  code?: string;
  currency?: string;
  type?: AccountType;
}

/**
 * Ledger accounts with their balances summed from their postings (minor units; debit positive),
 * ordered by code then currency: at most `limit + 1` of them after `startingAfter`, so the caller
 * can tell whether more exist.
 */
export async function listBalances(db: Kysely<Database>, filter: AccountFilter): Promise<AccountBalance[]> {
  let query = accountsWithBalances(db)
    .orderBy('a.code')
    .orderBy('a.currency')
    .limit(filter.limit + 1);
  const after = filter.startingAfter;
  if (after) query = query.where(sql<boolean>`(a.code, a.currency) > (${after.code}, ${after.currency})`);
  if (filter.code) query = query.where('a.code', '=', filter.code);
  if (filter.currency) query = query.where('a.currency', '=', filter.currency);
  if (filter.type) query = query.where('a.type', '=', filter.type);
  const rows = await query.execute();
  return rows.map((row) => ({ ...row, balance: BigInt(row.balance) }));
}

/** One ledger account with its balance, or undefined when there is no account `id`. */
export async function accountBalance(db: Kysely<Database>, id: string): Promise<AccountBalance | undefined> {
  const row = await accountsWithBalances(db).where('a.id', '=', id).executeTakeFirst();
  return row && { ...row, balance: BigInt(row.balance) };
}

/** The balance of the account `code` in `currency`, 0 when it has no postings. */
export async function balanceOf(db: Kysely<Database>, code: string, currency: string): Promise<bigint> {
  const row = await db
    .selectFrom('postings as p')
    .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
    .select(sql<bigint>`coalesce(sum(p.amount), 0)`.as('balance'))
    .where('a.code', '=', code)
    .where('a.currency', '=', currency)
    .executeTakeFirstOrThrow();
  return BigInt(row.balance);
}

/** The balance of one account (code and currency), minor units; debit positive. */
export interface CodeBalance {
  code: string;
  currency: string;
  balance: bigint;
}

/**
 * The balances of every account whose code is in `codes`, in every currency it exists in, summed from
 * postings in one query; ordered by code then currency. Codes without an account are absent.
 */
export async function balancesOfCodes(
  db: Kysely<Database>,
  codes: readonly string[],
): Promise<CodeBalance[]> {
  if (codes.length === 0) return [];
  const rows = await db
    .selectFrom('ledger_accounts as a')
    .leftJoin('postings as p', 'p.account_id', 'a.id')
    .select(['a.code', 'a.currency', sql<bigint>`coalesce(sum(p.amount), 0)`.as('balance')])
    .where('a.code', 'in', codes)
    .groupBy('a.id')
    .orderBy('a.code')
    .orderBy('a.currency')
    .execute();
  return rows.map((row) => ({ ...row, balance: BigInt(row.balance) }));
}
