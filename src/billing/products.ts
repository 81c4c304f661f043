import type { Kysely } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { Database, ProductRow } from '../db/schema.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { updateDisplayFields } from './display-fields.ts';

/** A new product: what is sold (plans price it). `externalId` is the caller's own id, unique when given. */
export interface NewProduct {
  name: string;
  description?: string;
  externalId?: string;
  metadata?: Record<string, string>;
}

/**
 * Creates an active product and logs `product.created`.
 * @throws ConflictError `external_id_taken` when another product has the same external id
 */
export async function createProduct(db: Db, actor: Actor, input: NewProduct): Promise<ProductRow> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const row = await work.trx
      .insertInto('products')
      .values({
        id: newId('prod'),
        name: input.name,
        description: input.description ?? null,
        external_id: input.externalId ?? null,
        metadata: JSON.stringify(input.metadata ?? {}),
      })
      .onConflict((oc) => oc.column('external_id').doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row) {
      throw new ConflictError('external_id_taken', `a product with external_id ${input.externalId} exists`);
    }
    await recordActivity(work, {
      resourceType: 'product',
      resourceId: row.id,
      action: 'product.created',
      data: { name: row.name, external_id: row.external_id },
    });
    return row;
  });
}

/** @throws NotFoundError when there is no product `id` */
export async function getProduct(db: Kysely<Database>, id: string): Promise<ProductRow> {
  const row = await db.selectFrom('products').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('product', id);
  return row;
}

/** What may change on a product; `description: null` clears it, metadata is replaced as a whole. */
export interface ProductUpdate {
  name?: string;
  description?: string | null;
  active?: boolean;
  metadata?: Record<string, string>;
}

/**
 * Updates a product and logs `product.updated` with the changed fields; a body changing nothing
 * changes and logs nothing. Deactivating a product keeps its plans and subscriptions as they are;
 * it only refuses new plans of it.
 * @throws NotFoundError when there is no product `id`
 */
export async function updateProduct(
  db: Db,
  actor: Actor,
  id: string,
  update: ProductUpdate,
): Promise<ProductRow> {
  return updateDisplayFields<ProductRow>(db, actor, 'products', id, update);
}
