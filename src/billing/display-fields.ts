import { sql } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import { changedFields } from '../activities/changes.ts';
import type { Db } from '../db/database.ts';
import { NotFoundError } from '../errors.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';

/** The catalog tables whose rows change only in their display fields, and the resource each holds. */
const RESOURCES = { products: 'product', tax_rates: 'tax_rate', add_ons: 'add_on' } as const;

/**
 * The display fields of a product, tax rate or add-on: its name (`display_name` for a tax rate),
 * description (null clears it), active flag and metadata (replaced whole). Their prices and rates
 * never change: invoices already issued name them.
 */
export interface DisplayFieldsUpdate {
  name?: string;
  display_name?: string;
  description?: string | null;
  active?: boolean;
  metadata?: Record<string, string>;
}

/**
 * Updates a catalog row's display fields (`DisplayFieldsUpdate`, column names) with the row locked,
 * sets `updated_at`, and logs `<resource>.updated` with the changed fields (`{from, to}` each); an
 * update changing nothing changes and logs nothing and answers the row as it is.
 * @returns the row as updated, as `R` (the table's row type)
 * @throws NotFoundError when the table has no row `id`
 */
export async function updateDisplayFields<R>(
  db: Db,
  actor: Actor,
  table: keyof typeof RESOURCES,
  id: string,
  update: DisplayFieldsUpdate,
): Promise<R> {
  const resource = RESOURCES[table];
  return inUnitOfWork(db, { actor }, async (work) => {
    const found = await sql<Record<string, unknown>>`
      SELECT * FROM ${sql.table(table)} WHERE id = ${id} FOR UPDATE
    `.execute(work.trx);
    const row = found.rows[0];
    if (!row) throw new NotFoundError(resource, id);
    const changes = changedFields(row, { ...update });
    if (Object.keys(changes).length === 0) return row as R;
    const sets = Object.entries(changes).map(
      ([column, { to }]) => sql`${sql.ref(column)} = ${column === 'metadata' ? JSON.stringify(to) : to}`,
    );
    const updated = await sql<R>`
      UPDATE ${sql.table(table)} SET ${sql.join([...sets, sql`updated_at = ${new Date()}`])}
      WHERE id = ${id} RETURNING *
    `.execute(work.trx);
    await recordActivity(work, {
      resourceType: resource,
      resourceId: id,
      action: `${resource}.updated`,
      data: changes,
    });
    return updated.rows[0]!;
  });
}
