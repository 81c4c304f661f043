import { type Kysely, type RawBuilder, sql } from 'kysely';
import { AppError } from '../errors.ts';
import type { Database } from './schema.ts';

/**
 * Filters of a list: each applies when both the value and the table's column for it are given; an
 * `equals` value of null asks for the column to be null.
 */
export interface ListFilter {
  limit: number;
  /** The last id of the previous page. */
  startingAfter?: string;
  /** `desc` (newest first, the default) or `asc` (oldest first). */
  order?: 'asc' | 'desc';
  equals?: Record<string, string | null | undefined>;
  /** A creation-time range on `column` (inclusive from, exclusive to). */
  created?: { column: string; from?: Date; to?: Date };
  /** More time ranges on other columns, alike (e.g. a payout's arrival date). */
  ranges?: { column: string; from?: Date; to?: Date }[];
  /** More conditions on the table's row (e.g. the inbox's deliveries about one customer). */
  where?: RawBuilder<boolean>[];
  /**
   * The column the list is ordered and paged by, unique and in creation order (default `id`): a view
   * uniting ids of several prefixes orders by their part after the prefix (`transaction_list.sort_key`).
   */
  orderKey?: string;
}

/**
 * The refusal of a `starting_after` that names no row of the list: 422 `resource_missing` with the
 * field, as Stripe answers an unknown cursor (HTTP 400 `resource_missing`, `param: starting_after`,
 * "No such customer: 'cus_…'"; https://docs.stripe.com/error-codes#resource-missing), so a client
 * paging with a stale or mistyped id is told, instead of getting a page that looks like the end.
 */
export function cursorMissing(id: string, what: string): AppError {
  return new AppError(
    422,
    'invalid_request',
    'resource_missing',
    `starting_after: no ${what} with id ${id}`,
    {
      starting_after: `no ${what} with id ${id}`,
    },
  );
}

/**
 * Reads one page of a table in creation order (ids sort by creation time), for cursor pagination:
 * rows after `startingAfter` in the chosen order, filtered by column equality and time ranges (the
 * creation time's and any other), at most `limit + 1` rows so the caller can tell whether more exist.
 * @param table a table whose rows have a text `id` of one prefix
 * @throws AppError 422 `resource_missing` (`cursorMissing`) when `startingAfter` is no row of the table
 */
export async function listRows<R>(
  db: Kysely<Database>,
  table: keyof Database,
  filter: ListFilter,
): Promise<R[]> {
  const ascending = filter.order === 'asc';
  const where = await conditions(db, table, filter);
  const key = sql.ref(filter.orderKey ?? 'id');
  const result = await sql<R>`
    SELECT * FROM ${sql.table(table)} WHERE ${sql.join(where, sql` AND `)}
    ORDER BY ${key} ${ascending ? sql`ASC` : sql`DESC`} LIMIT ${filter.limit + 1}
  `.execute(db);
  return result.rows;
}

/** The conditions of a list's filter (the cursor's included), joined with AND by the caller. */
async function conditions(db: Kysely<Database>, table: keyof Database, filter: ListFilter) {
  const ascending = filter.order === 'asc';
  const key = sql.ref(filter.orderKey ?? 'id');
  const where = [sql`true`];
  if (filter.startingAfter) {
    const cursor = await sql<{ key: string }>`
      SELECT ${key} AS key FROM ${sql.table(table)} WHERE id = ${filter.startingAfter}
    `.execute(db);
    const after = cursor.rows[0]?.key;
    if (after === undefined) throw cursorMissing(filter.startingAfter, `row of ${table}`);
    where.push(ascending ? sql`${key} > ${after}` : sql`${key} < ${after}`);
  }
  for (const range of [filter.created, ...(filter.ranges ?? [])]) {
    if (range?.from) where.push(sql`${sql.ref(range.column)} >= ${range.from}`);
    if (range?.to) where.push(sql`${sql.ref(range.column)} < ${range.to}`);
  }
  for (const [column, value] of Object.entries(filter.equals ?? {})) {
    if (value === null) where.push(sql`${sql.ref(column)} IS NULL`);
    else if (value !== undefined) where.push(sql`${sql.ref(column)} = ${value}`);
  }
  where.push(...(filter.where ?? []));
  return where;
}

/**
 * How many rows of a table a list's filter matches (paging ignored), counting at most `cap` of them:
 * a number above `cap` is reported as `cap + 1` (the caller says "more than cap"), so a count over a
 * large table stops early.
 */
export async function countRows(
  db: Kysely<Database>,
  table: keyof Database,
  filter: Omit<ListFilter, 'limit' | 'startingAfter' | 'order'>,
  cap: number,
): Promise<number> {
  const where = await conditions(db, table, { ...filter, limit: cap });
  const result = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM (
      SELECT 1 FROM ${sql.table(table)} WHERE ${sql.join(where, sql` AND `)} LIMIT ${cap + 1}
    ) matched`.execute(db);
  return result.rows[0]?.n ?? 0;
}
