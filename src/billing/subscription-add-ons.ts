import type { Kysely } from 'kysely';
import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type {
  AddOnRow,
  CouponRedemptionRow,
  Database,
  InvoiceRow,
  SubscriptionAddOnRow,
  SubscriptionRow,
} from '../db/schema.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { addOnProration, invoiceAddOnProration, refusePendingAddOnChange } from './add-on-proration.ts';
import { getAddOn, type SubscriptionAddOn } from './add-ons.ts';
import { endRedemption, redeemCoupon } from './coupons.ts';
import { openCustomerOnce } from './customer-status.ts';
import { refuseUninvoiceablePeriod } from './effective-amount.ts';
import { getPlan, type Plan } from './plans.ts';
import { DEFAULT_PRORATION, type ProrationBehavior } from './proration.ts';
import {
  DEFAULT_RENEWAL_POLICY,
  leftPendingData,
  lockSubscription,
  type RenewalPolicy,
  renewedUpTo,
} from './renewal.ts';
import { subscriptionActivity } from './subscription-status.ts';
import { refuseChangeInvoicedAhead } from './terms.ts';

/**
 * A change of a subscription's add-on: its new `quantity` (0 removes it), a coupon code to redeem on
 * it, and how a raise mid-period is prorated (`prorate_now` when omitted: add-on-proration.ts).
 */
export interface AddOnChange {
  addOnId: string;
  quantity: number;
  couponCode?: string;
  proration?: ProrationBehavior;
}

/**
 * Checks `change` on `subscription` as setting it would, reading in `db` (the caller's transaction
 * when it writes): the subscription is not CANCELLED, the add-on exists, is in the plan's currency,
 * is active when added, is on the subscription when removed, and a coupon comes with a quantity.
 * @returns the add-on, the subscription's plan and its add-on row as it is now (if any)
 * @throws NotFoundError add-on; ConflictError `subscription_cancelled`, `add_on_inactive`,
 *   `periods_invoiced_ahead` (a settled term: terms.ts `refuseChangeInvoicedAhead`);
 *   ValidationError (`add_on`) another currency, (`quantity`) removing an add-on it does not have,
 *   (`coupon`) a coupon with quantity 0
 */
export async function checkAddOnChange(
  db: Kysely<Database>,
  subscription: SubscriptionRow,
  change: AddOnChange,
): Promise<{ addOn: AddOnRow; plan: Plan; existing: SubscriptionAddOnRow | undefined }> {
  const { addOnId, quantity } = change;
  if (subscription.status === 'CANCELLED') {
    throw new ConflictError('subscription_cancelled', `subscription ${subscription.id} is CANCELLED`);
  }
  // A settled term's periods invoiced ahead would never bill it (nor credit a removal).
  await refuseChangeInvoicedAhead(db, subscription);
  const addOn = await getAddOn(db, addOnId);
  const plan = await getPlan(db, subscription.plan_id);
  if (addOn.currency !== plan.currency) {
    throw new ValidationError('another currency', {
      add_on: `add-on ${addOnId} is priced in ${addOn.currency}; the subscription bills in ${plan.currency}`,
    });
  }
  if (quantity === 0 && change.couponCode !== undefined) {
    throw new ValidationError('a coupon on a removed add-on', {
      coupon: 'a coupon is redeemed on an add-on the subscription keeps (quantity > 0)',
    });
  }
  const existing = await db
    .selectFrom('subscription_add_ons')
    .selectAll()
    .where('subscription_id', '=', subscription.id)
    .where('add_on_id', '=', addOnId)
    .executeTakeFirst();
  if (!existing && quantity === 0) {
    throw new ValidationError('not on the subscription', {
      quantity: `subscription ${subscription.id} has no add-on ${addOnId} to remove`,
    });
  }
  if (!existing && !addOn.active) {
    throw new ConflictError('add_on_inactive', `add-on ${addOnId} is not active`);
  }
  return { addOn, plan, existing };
}

/**
 * Sets the quantity of add-on `change.addOnId` on subscription `id` (locked) at `now`: adds it,
 * changes its quantity, or with 0 removes it (Billby's cancel of a subscription add-on), ending the
 * coupons redeemed on it (`endRedemption`); with `change.couponCode`, redeems that coupon on the
 * add-on in the same transaction (`redeemCoupon`: nothing changes when it is refused). The
 * subscription is first renewed up to `now` as the renewal sweep would (`renewedUpTo` under
 * `policy`), so a period that started before the sweep ran is invoiced as it was (without the
 * change) and the change applies to the period holding `now`, whatever the sweep's lag. It applies
 * now: the next period's invoice bills the new quantity, and an add-on added or raised mid-period is
 * charged for the rest of the period on a `subscription_update` invoice of its own, finalized and
 * charged at once (`charge_at` now; the period's end, or a `cancel_at` within it, for
 * `prorate_at_renewal`), as `change.proration` says (add-on-proration.ts `addOnProration`: its
 * coupons of the period, the plan's tax at the customer's address now). A lower quantity or a
 * removal gives no credit for the period already paid. A SUSPENDED subscription is charged nothing
 * now unless `policy` bills it (`BILL_SUSPENDED_SUBSCRIPTIONS`): the next invoice made for it bills
 * the quantity, and a reactivation within the period invoiced before the suspension charges the
 * units set while suspended from then (add-on-proration.ts `reactivationAddOnCharge`; the proration
 * asked is recorded in the activity: `none` is honoured then, the others charge from the
 * reactivation). Logs `subscription.add_on_set` with the quantities before and after, the proration
 * and the invoice.
 * @returns the subscription's add-on (quantity 0 once removed), whether it was added now, whether
 * removed, and the proration invoice (null: nothing charged now)
 * @throws as `checkAddOnChange`, and as `redeemCoupon` for the coupon; NotFoundError subscription;
 * ValidationError (field `quantity`) when the next period would bill more than 10^15 minor units
 * (effective-amount.ts `refuseUninvoiceablePeriod`: nothing changes)
 */
export async function setSubscriptionAddOn(
  db: Db,
  actor: Actor,
  id: string,
  change: AddOnChange,
  now: Date = new Date(),
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<{ addOn: SubscriptionAddOn; created: boolean; removed: boolean; invoice: InvoiceRow | null }> {
  return inUnitOfWork(db, { actor }, async (work) => {
    // The periods as the renewal sweep has them by `now`, whatever its lag: the raise is prorated
    // over the period holding `now`, the period before it billed with the quantity it had. An add-on
    // charge pending since a payment's reactivation whose making fails is left pending ('try').
    const locked = (await lockSubscription(work, id))!;
    const renewed = await renewedUpTo(work, locked, now, policy, 'try');
    const { subscription } = renewed;
    const { addOnId, quantity } = change;
    const { addOn, plan, existing } = await checkAddOnChange(work.trx, subscription, change);
    if (renewed.pendingChargeFailed !== undefined) {
      const from = existing?.quantity ?? 0;
      await refusePendingAddOnChange(
        work.trx,
        subscription,
        addOnId,
        from,
        quantity,
        renewed.pendingChargeFailed,
        policy,
      );
    }
    const behavior = change.proration ?? DEFAULT_PRORATION;
    // Read under invoicing's lock once: the lines' taxes and the invoice's number and terms agree.
    const customer = openCustomerOnce(work.trx, subscription.customer_id);
    const charged = await addOnProration(
      work.trx,
      subscription,
      plan,
      addOn,
      existing?.quantity ?? 0,
      quantity,
      behavior,
      now,
      customer,
      policy,
    );
    const invoice =
      charged && (await invoiceAddOnProration(work, subscription, plan, charged, now, customer));
    let row: SubscriptionAddOnRow;
    if (quantity === 0) {
      await work.trx.deleteFrom('subscription_add_ons').where('id', '=', existing!.id).execute();
      const live = await work.trx
        .selectFrom('coupon_redemptions')
        .selectAll()
        .where('subscription_id', '=', id)
        .where('add_on_id', '=', addOnId)
        .where('removed_at', 'is', null)
        .orderBy('id')
        .execute();
      for (const redemption of live) await endRedemption(work, redemption, now);
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
      proration: behavior,
      invoice: invoice?.id,
      ...leftPendingData(locked, renewed),
    });
    if (change.couponCode !== undefined) {
      await redeemCoupon(
        work,
        subscription,
        { currency: plan.currency, productId: plan.product_id },
        change.couponCode,
        now,
        addOnId,
      );
    }
    // The next period with this quantity must be invoiceable, with the plan and quantity it will bill.
    const scheduled = subscription.scheduled_plan_id;
    await refuseUninvoiceablePeriod(
      work.trx,
      subscription,
      scheduled === null ? plan : await getPlan(work.trx, scheduled),
      subscription.scheduled_quantity ?? subscription.quantity,
    );
    return { addOn: { ...row, addOn }, created: !existing, removed: quantity === 0, invoice };
  });
}

/**
 * Redeems coupon `code` on add-on `addOnId` of subscription `id` (locked; Billby's coupon_code on a
 * subscription add-on): it discounts that add-on's line from the next period's invoice on, for its
 * duration (the subscription renewed up to now first under `policy`, as `setSubscriptionAddOn`).
 * @param policy the renewal policy of the configuration (`BILL_SUSPENDED_SUBSCRIPTIONS`)
 * @param now the moment of the redemption (the clock's by default)
 * @throws NotFoundError subscription, or `subscription_add_on` when the add-on is not on it;
 *   ConflictError `subscription_cancelled`, `periods_invoiced_ahead` (a settled term: those
 *   invoices are made already: `refuseChangeInvoicedAhead`); as `redeemCoupon`
 */
export async function redeemAddOnCoupon(
  db: Db,
  actor: Actor,
  id: string,
  addOnId: string,
  code: string,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
  now: Date = new Date(),
): Promise<CouponRedemptionRow> {
  return inUnitOfWork(db, { actor }, async (work) => {
    // "The next period" is the one after the period holding now, whatever the renewal sweep's lag.
    // An add-on charge pending since a payment's reactivation whose making fails is left pending: the
    // coupon counts from the next period, not for the time that charge is for.
    const locked = (await lockSubscription(work, id))!;
    const { subscription } = await renewedUpTo(work, locked, now, policy, 'try');
    if (subscription.status === 'CANCELLED') {
      throw new ConflictError('subscription_cancelled', `subscription ${id} is CANCELLED`);
    }
    await refuseChangeInvoicedAhead(work.trx, subscription);
    await getSubscriptionAddOn(work.trx, id, addOnId);
    const plan = await getPlan(work.trx, subscription.plan_id);
    return redeemCoupon(
      work,
      subscription,
      { currency: plan.currency, productId: plan.product_id },
      code,
      now,
      addOnId,
    );
  });
}

/**
 * Add-on `addOnId` of subscription `subscriptionId`, with the add-on.
 * @throws NotFoundError `subscription_add_on` when the subscription does not have it
 */
export async function getSubscriptionAddOn(
  db: Kysely<Database>,
  subscriptionId: string,
  addOnId: string,
): Promise<SubscriptionAddOn> {
  const row = await db
    .selectFrom('subscription_add_ons')
    .selectAll()
    .where('subscription_id', '=', subscriptionId)
    .where('add_on_id', '=', addOnId)
    .executeTakeFirst();
  if (!row) throw new NotFoundError('subscription_add_on', `${subscriptionId}/${addOnId}`);
  return { ...row, addOn: await getAddOn(db, addOnId) };
}
