import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.ts';

/** Filters of a list: each applies when both the value and the table's column for it are given. */
export interface ListFilter {
  limit: number;
  startingAfter?: string;
  equals?: Record<string, string | undefined>;
}

/**
 * Reads one page of a table newest first (ids sort by creation time), for cursor pagination:
 * rows with `id < startingAfter`, filtered by column equality, at most `limit + 1` rows so the
 * caller can tell whether more exist.
 * @param table a table whose rows have a text `id` of one prefix
 */
export async function listRows<R>(
  db: Kysely<Database>,
  table: keyof Database,
  filter: ListFilter,
): Promise<R[]> {
  const where = [sql`true`];
  if (filter.startingAfter) where.push(sql`id < ${filter.startingAfter}`);
  for (const [column, value] of Object.entries(filter.equals ?? {})) {
    if (value !== undefined) where.push(sql`${sql.ref(column)} = ${value}`);
  }
  const result = await sql<R>`
    SELECT * FROM ${sql.table(table)} WHERE ${sql.join(where, sql` AND `)}
    ORDER BY id DESC LIMIT ${filter.limit + 1}
  `.execute(db);
  return result.rows;
}
