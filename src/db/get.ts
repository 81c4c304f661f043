import { type Kysely, sql } from 'kysely';
import { NotFoundError } from '../errors.ts';
import type { Database } from './schema.ts';

/**
 * Reads one row of a table by its text `id`.
 * @param resource the resource's name in the 404 (`transaction` → `transaction_not_found`)
 * @throws NotFoundError when the table has no row `id`
 */
export async function getRow<R>(
  db: Kysely<Database>,
  table: keyof Database,
  id: string,
  resource: string,
): Promise<R> {
  const result = await sql<R>`SELECT * FROM ${sql.table(table)} WHERE id = ${id}`.execute(db);
  const row = result.rows[0];
  if (!row) throw new NotFoundError(resource, id);
  return row;
}
