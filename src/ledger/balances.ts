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

/** Every ledger account with its balance, summed from its postings, ordered by code and currency. */
export async function listBalances(db: Kysely<Database>): Promise<AccountBalance[]> {
  const rows = await db
    .selectFrom('ledger_accounts as a')
    .leftJoin('postings as p', 'p.account_id', 'a.id')
    .select(['a.id', 'a.code', 'a.type', 'a.currency', sql<bigint>`coalesce(sum(p.amount), 0)`.as('balance')])
    .groupBy('a.id')
    .orderBy('a.code')
    .orderBy('a.currency')
    .execute();
  return rows.map((row) => ({ ...row, balance: BigInt(row.balance) }));
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
