import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { SubscriptionAddOnRow } from '../db/schema.ts';
import { ConflictError, ValidationError } from '../errors.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { getAddOn, type SubscriptionAddOn } from './add-ons.ts';
import { getPlan } from './plans.ts';
import { lockSubscription } from './renewal.ts';
import { subscriptionActivity } from './subscription-status.ts';

/**
 * Sets the quantity of add-on `addOnId` on subscription `id` (locked): adds it, changes its
 * quantity, or with 0 removes it; from the next period's invoice on (no proration). Logs
 * `subscription.add_on_set` with the quantities before and after.
 * @returns the subscription's add-on (quantity 0 once removed), whether it was added now, and whether removed
 * @throws NotFoundError subscription or add-on; ConflictError `subscription_cancelled`,
 *   `add_on_inactive` (adding an inactive add-on); ValidationError (`add_on`) for another currency
 *   than the plan's, (`quantity`) for removing an add-on the subscription does not have
 */
export async function setSubscriptionAddOn(
  db: Db,
  actor: Actor,
  id: string,
  addOnId: string,
  quantity: number,
): Promise<{ addOn: SubscriptionAddOn; created: boolean; removed: boolean }> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const subscription = (await lockSubscription(work, id))!;
    if (subscription.status === 'CANCELLED') {
      throw new ConflictError('subscription_cancelled', `subscription ${id} is CANCELLED`);
    }
    const addOn = await getAddOn(work.trx, addOnId);
    const plan = await getPlan(work.trx, subscription.plan_id);
    if (addOn.currency !== plan.currency) {
      throw new ValidationError('another currency', {
        add_on: `add-on ${addOnId} is priced in ${addOn.currency}; the subscription bills in ${plan.currency}`,
      });
    }
    const existing = await work.trx
      .selectFrom('subscription_add_ons')
      .selectAll()
      .where('subscription_id', '=', id)
      .where('add_on_id', '=', addOnId)
      .executeTakeFirst();
    if (!existing && quantity === 0) {
      throw new ValidationError('not on the subscription', {
        quantity: `subscription ${id} has no add-on ${addOnId} to remove`,
      });
    }
    if (!existing && !addOn.active) {
      throw new ConflictError('add_on_inactive', `add-on ${addOnId} is not active`);
    }
    const now = new Date();
    let row: SubscriptionAddOnRow;
    if (quantity === 0) {
      await work.trx.deleteFrom('subscription_add_ons').where('id', '=', existing!.id).execute();
      row = { ...existing!, quantity: 0, updated_at: now };
    } else if (existing) {
      row = await work.trx
        .updateTable('subscription_add_ons')
        .set({ quantity, updated_at: now })
        .where('id', '=', existing.id)
        .returningAll()
        .executeTakeFirstOrThrow();
    } else {
      row = await work.trx
        .insertInto('subscription_add_ons')
        .values({ id: newId('sao'), subscription_id: id, add_on_id: addOnId, quantity })
        .returningAll()
        .executeTakeFirstOrThrow();
    }
    await subscriptionActivity(work, subscription, 'subscription.add_on_set', {
      add_on: addOnId,
      from: existing?.quantity ?? 0,
      to: quantity,
    });
    return { addOn: { ...row, addOn }, created: !existing, removed: quantity === 0 };
  });
}
