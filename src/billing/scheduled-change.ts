import type { Db } from '../db/database.ts';
import type { SubscriptionRow } from '../db/schema.ts';
import { ConflictError } from '../errors.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import type { Plan } from './plans.ts';
import type { ChangeResult } from './proration.ts';
import { DEFAULT_RENEWAL_POLICY, lockSubscription, type RenewalPolicy, renewedUpTo } from './renewal.ts';
import { subscriptionActivity } from './subscription-status.ts';

/**
 * A plan or quantity change at the next cycle (BillaBear's change plan `when: next-cycle`, seed 004):
 * stored on the subscription (`scheduled_plan_id`, `scheduled_quantity`, shown as
 * `scheduled_change`), applied by the renewal at the start of the next period (renewal.ts
 * `applyScheduledChange`: no proration, the new period is billed whole at the new plan), and
 * cancellable until then. A newer schedule replaces an older one.
 */

/**
 * Schedules `plan` × `quantity` for the next cycle of a locked subscription (checked by the caller,
 * `changeSubscription`); with `preview`, writes nothing. Logs `subscription.change_scheduled`.
 * @returns a change result with no proration lines and no invoice
 */
export async function scheduleChange(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  plan: Plan,
  quantity: number,
  now: Date,
  preview: boolean,
): Promise<Omit<ChangeResult, 'catchUpInvoices'>> {
  const at = subscription.next_renewal_at ?? now;
  const result = (updated: SubscriptionRow): Omit<ChangeResult, 'catchUpInvoices'> => ({
    subscription: updated,
    proration: {
      customerId: subscription.customer_id,
      currency: plan.currency,
      billingReason: 'subscription_update',
      invoiceAt: at,
      periodStart: at,
      periodEnd: at,
      lines: [],
      subtotal: 0n,
      tax: 0n,
      total: 0n,
    },
    invoice: null,
    credited: 0n,
    creditedToInvoice: null,
    usageInvoice: null,
  });
  if (preview) return result(subscription);
  const updated = await work.trx
    .updateTable('subscriptions')
    .set({ scheduled_plan_id: plan.id, scheduled_quantity: quantity, updated_at: now })
    .where('id', '=', subscription.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await subscriptionActivity(work, subscription, 'subscription.change_scheduled', {
    at,
    to_plan: plan.id,
    to_quantity: quantity,
  });
  return result(updated);
}

/**
 * Cancels the change scheduled for subscription `id`'s next cycle; logs
 * `subscription.scheduled_change_cancelled`. The subscription is first renewed up to `now` as the
 * renewal sweep would (`renewedUpTo` under `policy`: with `policy.billSuspended` a SUSPENDED one
 * too): once that cycle has started the change has taken effect, whether or not the sweep has run yet.
 * An add-on charge pending since a payment's reactivation whose making fails is left pending
 * (renewal.ts `renewLocked` with `'try'`), for the renewal sweep to make once it can.
 * @param policy the renewal policy of the configuration (`BILL_SUSPENDED_SUBSCRIPTIONS`)
 * @throws NotFoundError; ConflictError `no_scheduled_change` when none is scheduled, or the cycle it
 * was scheduled for has started (nothing changed)
 */
export async function cancelScheduledChange(
  db: Db,
  actor: Actor,
  id: string,
  now: Date,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<SubscriptionRow> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const locked = (await lockSubscription(work, id))!;
    // Whatever the renewal sweep's lag: a change whose cycle has started took effect with it. An
    // add-on charge pending since a payment's reactivation whose making fails is left pending ('try'):
    // made later, it is taxed by the plan in force at its moment (add-on-proration.ts
    // `planInForceAt`), which cancelling a change for the next cycle does not change.
    const { subscription } = await renewedUpTo(work, locked, now, policy, 'try');
    if (subscription.scheduled_plan_id === null) {
      const applied = locked.scheduled_plan_id !== null;
      throw new ConflictError(
        'no_scheduled_change',
        applied
          ? `subscription ${id}'s scheduled change took effect with the cycle that started at ${locked.next_renewal_at?.toISOString()}: too late to cancel it (change it back with POST /v1/subscriptions/${id}/change)`
          : `subscription ${id} has no scheduled change`,
      );
    }
    const updated = await work.trx
      .updateTable('subscriptions')
      .set({ scheduled_plan_id: null, scheduled_quantity: null, updated_at: now })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await subscriptionActivity(work, subscription, 'subscription.scheduled_change_cancelled', {
      plan: subscription.scheduled_plan_id,
      quantity: subscription.scheduled_quantity,
    });
    return updated;
  });
}
