import type { Kysely } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { AddOnRow, Database, SubscriptionAddOnRow } from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { updateDisplayFields } from './display-fields.ts';

/**
 * Add-ons (Billby's add-ons, issue #28 item 2): a catalog of recurring prices per unit
 * (`addon_…`, minor units of one currency per period), and the add-ons of a subscription
 * (`sao_…`) with their quantity. Each period's invoice carries one CHARGE line per add-on of the
 * subscription (amount × quantity, taxed as the plan's lines, not discounted by the subscription's
 * coupons), less the coupons redeemed on that add-on (`redeemAddOnCoupon`; coupons.ts for who may).
 * A change of add-ons applies now: the next period's invoice bills the new quantity, and an add-on
 * added or raised mid-period is charged for the rest of the period (add-on-proration.ts); a lower
 * quantity or a removal gives no credit for the period already paid.
 */

/** A new add-on: `amount` in minor units of `currency`, per unit and period. */
export interface NewAddOn {
  name: string;
  description?: string;
  currency: string;
  amount: bigint;
  metadata?: Record<string, string>;
}

/** Creates an active add-on and logs `add_on.created`. */
export async function createAddOn(db: Db, actor: Actor, input: NewAddOn): Promise<AddOnRow> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const row = await work.trx
      .insertInto('add_ons')
      .values({
        id: newId('addon'),
        name: input.name,
        description: input.description ?? null,
        currency: input.currency,
        amount: input.amount,
        metadata: JSON.stringify(input.metadata ?? {}),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordActivity(work, {
      resourceType: 'add_on',
      resourceId: row.id,
      action: 'add_on.created',
      data: { currency: row.currency, amount: row.amount },
    });
    return row;
  });
}

/** @throws NotFoundError when there is no add-on `id` */
export async function getAddOn(db: Kysely<Database>, id: string): Promise<AddOnRow> {
  const row = await db.selectFrom('add_ons').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('add_on', id);
  return row;
}

/** What may change on an add-on: never its price or currency (create another add-on instead). */
export interface AddOnUpdate {
  name?: string;
  description?: string | null;
  active?: boolean;
  metadata?: Record<string, string>;
}

/**
 * Updates an add-on's name, description, active flag (inactive: no subscription may add it; those
 * that have it keep it) or metadata, logging `add_on.updated` with the changed fields.
 * @throws NotFoundError when there is no add-on `id`
 */
export async function updateAddOn(db: Db, actor: Actor, id: string, update: AddOnUpdate): Promise<AddOnRow> {
  return updateDisplayFields<AddOnRow>(db, actor, 'add_ons', id, update);
}

/** A subscription's add-on with the add-on itself. */
export interface SubscriptionAddOn extends SubscriptionAddOnRow {
  addOn: AddOnRow;
}

/** The add-ons of subscription `subscriptionId`, oldest first, each with its add-on. */
export async function subscriptionAddOns(
  db: Kysely<Database>,
  subscriptionId: string,
): Promise<SubscriptionAddOn[]> {
  const rows = await db
    .selectFrom('subscription_add_ons')
    .selectAll()
    .where('subscription_id', '=', subscriptionId)
    .orderBy('id')
    .execute();
  if (!rows.length) return [];
  const addOns = await db
    .selectFrom('add_ons')
    .selectAll()
    .where(
      'id',
      'in',
      rows.map((r) => r.add_on_id),
    )
    .execute();
  const byId = new Map(addOns.map((a) => [a.id, a]));
  return rows.map((row) => ({ ...row, addOn: byId.get(row.add_on_id)! }));
}
