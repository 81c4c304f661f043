import { type Kysely, sql } from 'kysely';
import { z } from 'zod';
import type {
  AddOnRow,
  CancellationRefundType,
  Database,
  InvoiceRow,
  SubscriptionRow,
} from '../db/schema.ts';
import { ConflictError } from '../errors.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { getAddOn } from './add-ons.ts';
import { couponDiscounts, periodCoupons } from './coupons.ts';
import type { OpenCustomer } from './customer-status.ts';
import { finalizeLocked, hasAddOnLine, insertInvoice, type NewLine } from './invoices.ts';
import { periodAt, periodIndexAt } from './periods.ts';
import { getPlan, type Plan } from './plans.ts';
import { type InvoicePreview, pricedLines } from './preview.ts';
import {
  type ChargedItem,
  DEFAULT_PRORATION,
  itemLines,
  type ProrationBehavior,
  secondsBetween,
  servedUntil,
  taxRuleNow,
} from './proration.ts';
import { cadenceOf, type RenewalPolicy, renewableStatuses, subscriptionInvoiceDetails } from './renewal.ts';

/**
 * Proration of a subscription's add-ons (seed 001 "Create Subscription Add-On": the add-on is applied
 * immediately). Adding an add-on, or raising its quantity, mid-period charges the units not paid for
 * yet for the rest of the period, as a plan change charges its new plan (proration.ts: `prorate` by
 * whole seconds, half up): `prorate_now` (the default) invoices and charges now, `prorate_at_renewal`
 * invoices now and charges at the period's end, `full` charges the whole period, `none` charges
 * nothing (the add-on bills from the next period's invoice, as before). The rest of the period is
 * what the subscription is served of it (`servedUntil`): to a cancellation scheduled within it
 * (`cancel_at`, whatever its refund), else to its end; that is the invoice's `period_end`, the
 * moment `prorate_at_renewal` charges and the end of what `full` charges (from the period's start).
 * So an add-on raised after a scheduled cancellation's refund gave back the time after `cancel_at`
 * is charged to `cancel_at` only: nothing is given back twice nor charged for days not served (a
 * plan change then is refused instead, proration.ts `refuseSecondCredit`, as it would credit the
 * unused time again). The invoice is a `subscription_update` one with the add-on's lines only
 * (`add_on_id` set, no plan), for the rest of the period, taxed as the add-on's line on the period
 * invoice (the plan's rate, at the customer's address now) and discounted by the coupons that
 * counted for the add-on's line on the period invoice and are still redeemed on it, as they would at
 * renewal (coupons.ts `periodCoupons`: a coupon redeemed with it now, or later in the period, starts
 * with the next period, as for a plan; one removed, or ended with the add-on, discounts no raise after).
 * A subscription its renewals do not bill (SUSPENDED, unless `BILL_SUSPENDED_SUBSCRIPTIONS`:
 * renewal.ts `renewableStatuses`) gets no add-on invoice either: nothing is charged while it is
 * suspended (it is not served), and the next invoice made for it (a renewal after its reactivation,
 * or the current period's at reactivation when it was not invoiced) bills the quantity set. When it
 * is reactivated within the period invoiced before its suspension (by hand or by a payment:
 * reinstate.ts `resumeSuspended` records the charge pending in `add_on_charge_at`), the units set
 * while suspended are charged from the reactivation to the end of what the period serves
 * (`reactivationAddOnCharge`, made by the renewal: renewal.ts `renewLocked`, at once for a
 * reactivation by hand, by the sweep or whatever renews it first after a payment), as a raise at
 * that moment with the default behaviour (`prorate_now`): the units beyond those covered, here the
 * more of those paid for and the least the subscription held in the suspension (the quantity at the
 * suspension, lowered by every quantity set below it since: `heldSinceSuspension`). A quantity set
 * with `none` while suspended is honoured as `none` is when active: the units that set adds are
 * held, not charged (those raised before it stay charged). The other behaviours asked
 * while suspended are not: no charge was made then, and the time before the reactivation was not
 * served, so the units are charged from the reactivation, now (not at the period's end, nor from its
 * start). Nothing more is charged: a quantity lowered while suspended gives no credit, and units set
 * and given up again while suspended were never served. With `BILL_SUSPENDED_SUBSCRIPTIONS` they
 * were charged when set, and a reactivation charges nothing.
 * The units covered for the rest of the period are the more of those paid for (the add-on's line on
 * the period invoice plus the units its proration invoices of the period charged, not VOID:
 * `paidQuantity`) and those the subscription holds now (`held`): a charge is only ever for units
 * beyond both. So a lower quantity, the same quantity (re-set to redeem a coupon) and a removal
 * never charge; lowering and raising back to what was paid charges nothing twice; and units the
 * subscription holds without a payment of the period (added with `none`, their invoice voided, held
 * from before add-ons were prorated) are never charged while it keeps them: a raise charges the units
 * added by it only. Such units given up (a lower quantity) and added again later in the period are
 * new units: charged, as they are paid for by no invoice of the period.
 * Lowering the quantity or removing the add-on gives no credit for the time already paid (the
 * period invoice and the add-on's proration invoices keep it); it takes effect now for the next
 * period's invoice. In a trial, or before a future start, there is no period: nothing is charged and
 * the first period invoice bills the add-on. An add-on's proration invoice is none of the plan's:
 * a plan change never credits it (its charged basis is the plan's: proration.ts `chargedBasis`), a
 * change's credit to the customer never counts against it (`periodCreditToCustomer`), and a
 * cancellation's `full` or `prorate` refund reaches it on its own, after the period invoice
 * (cancellation.ts `addOnRefunds`, over `periodAddOnInvoices`): `full` gives back all it charged,
 * `prorate` the share of what its lines charged (their stored amounts with tax) for the time after
 * the cancellation, (end − cancellation) / (end − its start), rounded once per invoice as the
 * period invoice's; a paid one through its own payments and the credit that paid it, an OPEN one
 * owing that share less (voided when that is all of it). Each invoice and its lines store the span
 * they charged for: from the moment the add-on was set, or from the period's start for `full`
 * (which charges the whole period), to the end of what the period serves; so `prorate` gives back
 * the unused share of what it charged, never more.
 */

/** What setting an add-on's quantity charges now: the invoice's lines as stored, priced as a preview, and when it is charged. */
export interface AddOnProration {
  lines: NewLine[];
  proration: InvoicePreview;
  /** Now (a reactivation: its moment), or the period's end for `prorate_at_renewal`. */
  chargeAt: Date;
}

/**
 * What setting add-on `addOn` of `subscription` (locked, or read for a preview) from `held` units (the
 * quantity the subscription has of it now, 0: none) to `quantity` at `now` charges for the rest of its
 * current period with `behavior` (see the module's comment): a line for the units beyond those covered
 * (the more of `held` and those paid to the period's end: `paidQuantity`) over `now` (the period's
 * start for `full`: the span it charges, stored as the line's and the invoice's period) … the end of
 * what the period serves (`servedUntil`), then the coupon lines of the add-on's coupons of the period
 * still redeemed at `now` (coupons.ts `periodCoupons`; `itemLines`, as a plan change's new side),
 * taxed as `taxRuleNow` (`customer`: read under invoicing's lock; undefined for a preview), under
 * renewal `policy` (which statuses are billed).
 * Read-only. `subscription` is as the renewal sweep has it by `now` (the callers renew it up to `now`
 * first, renewal.ts `renewedUpTo`): a row left past its period's end by the sweep's lag would hold no
 * period containing `now` and charge nothing.
 * @returns null when nothing is charged: `none`, a subscription `policy` does not bill (SUSPENDED
 * without `billSuspended`), no billed period holding `now` (a trial, a future start), or no unit
 * beyond those covered (a lower or the same quantity, a removal); else the lines (their total may be
 * 0: a 100% coupon, the period's last second; then no invoice is made)
 */
export async function addOnProration(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  plan: Plan,
  addOn: AddOnRow,
  held: number,
  quantity: number,
  behavior: ProrationBehavior,
  now: Date,
  customer: OpenCustomer | undefined,
  policy: RenewalPolicy,
): Promise<AddOnProration | null> {
  const { current_period_index: index, current_period_start: start } = subscription;
  const end = servedUntil(subscription);
  if (behavior === 'none' || !renewableStatuses(policy).includes(subscription.status)) return null;
  if (index === null || !start || !end || now < start || now >= end) return null;
  const covered = Math.max(held, await paidQuantity(trx, subscription, addOn.id));
  const added = quantity - covered;
  if (added <= 0) return null;
  // The coupons of the period on the add-on's line, as the renewal takes them off the whole quantity:
  // the raise is discounted by what they take off the new quantity beyond what they take off the
  // covered one.
  const coupons = await periodCoupons(trx, subscription, addOn.id, now);
  const after = couponDiscounts(coupons, addOn.amount * BigInt(quantity));
  const before = couponDiscounts(coupons, addOn.amount * BigInt(covered));
  const item: ChargedItem = {
    planId: plan.id,
    addOnId: addOn.id,
    quantity: added,
    description: `${addOn.name} × ${added}`,
    base: addOn.amount * BigInt(added),
    discounts: coupons.map((coupon, i) => ({
      couponId: coupon.id,
      code: coupon.code,
      amount: after[i]! - before[i]!,
    })),
    tax: await taxRuleNow(trx, subscription, plan, customer),
  };
  const period = secondsBetween(start, subscription.current_period_end!);
  // The span charged, stored as the lines' and the invoice's: `full` charges from the period's start
  // (so a cancellation's `prorate` gives back its unused share of that whole span, not of now … end).
  const from = behavior === 'full' ? start : now;
  const time = { remaining: secondsBetween(from, end), period };
  const lines = itemLines(
    item,
    'CHARGE',
    `Remaining time on ${item.description}`,
    { start: from, end },
    time,
  );
  return addOnCharge(subscription, plan, lines, {
    at: now,
    start: from,
    end,
    chargeAt: behavior === 'prorate_at_renewal' ? end : now,
  });
}

/**
 * The `subscription_update` invoice of add-on `lines` for `subscription` on `plan` (its currency),
 * made at `at` over [`start`, `end`] and charged at `chargeAt`, priced as stored (`pricedLines`).
 */
function addOnCharge(
  subscription: SubscriptionRow,
  plan: Plan,
  lines: NewLine[],
  { at, start, end, chargeAt }: { at: Date; start: Date; end: Date; chargeAt: Date },
): AddOnProration {
  return {
    lines,
    proration: {
      customerId: subscription.customer_id,
      currency: plan.currency,
      billingReason: 'subscription_update',
      invoiceAt: at,
      periodStart: start,
      periodEnd: end,
      ...pricedLines(lines),
    },
    chargeAt,
  };
}

/**
 * Invoices `charged` (`addOnProration`, `reactivationAddOnCharge`) for `subscription` (locked in
 * `work`) at `now`: a `subscription_update` invoice of its lines over `charged`'s period, taxed as
 * priced, finalized at once (`customer`: the unit's `openCustomerOnce`) and charged at
 * `charged.chargeAt`.
 * @returns the invoice finalized, or null when its total is 0 (a 100% coupon, the period's last
 * second: no invoice is made)
 * @throws as `insertInvoice` and `finalizeLocked` (ConflictError `customer_closed`)
 */
export async function invoiceAddOnProration(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  plan: Plan,
  charged: AddOnProration,
  now: Date,
  customer: OpenCustomer,
): Promise<InvoiceRow | null> {
  if (charged.proration.total <= 0n) return null;
  const inserted = await insertInvoice(
    work,
    {
      customerId: subscription.customer_id,
      currency: plan.currency,
      lines: charged.lines,
      subscriptionId: subscription.id,
      periodStart: charged.proration.periodStart,
      periodEnd: charged.proration.periodEnd,
      billingReason: 'subscription_update',
      details: subscriptionInvoiceDetails(subscription),
      chargeAt: charged.chargeAt,
    },
    { customer, taxed: true },
  );
  return finalizeLocked(work, inserted, now, customer);
}

/**
 * The charge pending on `subscription` (locked) for the add-on units set while it was suspended
 * (see the module's comment): its `add_on_charge_at` (r, the reactivation's moment, written by
 * reinstate.ts `resumeSuspended`) and `add_on_charge_suspension` (the suspension whose add-on sets
 * count: `heldSinceSuspension`). For each add-on set in that suspension that it still has,
 * `addOnProration` of a raise at r from the least it held in the suspension to the quantity it has
 * now, with `DEFAULT_PRORATION`; the lines of all of them on one invoice over r … the end of what the
 * period holding r serves, charged at r. Whatever its status now: the units were served from r, and
 * a suspension since (one that did not renew first: dunning, a usage limit) credits no time paid
 * for, as it credits none of the plan's. A cancellation by hand and dunning's final one make a
 * pending charge first (each renews it up to now first, renewal.ts `renewedUpTo`; a cancellation
 * once its refusals are decided); one CANCELLED with the charge still pending was ended while making
 * it failed: at its scheduled cancellation or the end of its term by a sweep that renewed it without
 * the charge (`renewDueSubscriptions`), by hand or by dunning's final action (each goes on without
 * a failing charge), after r: it is charged for what that end would have left owed of a charge made
 * before it (`servedTo`: DKK 2 seats × 1500 from Feb 17 to a cancellation at period end Mar 1, 1286,
 * where before nothing was charged and the pending charge was cleared; cancelled now on Feb 21 with
 * a prorate refund, 429 for Feb 17 – 21). Read-only; `customer` as
 * `addOnProration`. Idempotent: once invoiced, the units are paid for (`paidQuantity`), so it charges
 * nothing again. Always for the period holding r, however far the renewal has moved the current one
 * since (`inPeriodHolding`: a sweep renews the periods of one whose pending charge fails without it).
 * @returns null when nothing is charged (none pending, no unit beyond those covered, no billed
 * period holding r: the renewal's lag left the period before it current, or it is CANCELLED)
 */
export async function reactivationAddOnCharge(
  trx: Kysely<Database>,
  pending: SubscriptionRow,
  plan: Plan,
  customer: OpenCustomer | undefined,
): Promise<AddOnProration | null> {
  const { add_on_charge_at: resumedAt, add_on_charge_suspension: suspension } = pending;
  if (resumedAt === null || suspension === null) return null;
  const scheduled = await scheduledWhilePending(trx, pending, resumedAt);
  const subscription = servedTo(inPeriodHolding(pending, plan, resumedAt), scheduled);
  if (!subscription) return null;
  // Charged at r whatever the status (SUSPENDED again meanwhile too): a policy billing SUSPENDED.
  const policy: RenewalPolicy = { billSuspended: true };
  const lines: NewLine[] = [];
  for (const [addOnId, least] of await heldSinceSuspension(trx, subscription.id, suspension)) {
    const row = await trx
      .selectFrom('subscription_add_ons')
      .select('quantity')
      .where('subscription_id', '=', subscription.id)
      .where('add_on_id', '=', addOnId)
      .executeTakeFirst();
    if (!row) continue;
    const addOn = await getAddOn(trx, addOnId);
    const charged = await addOnProration(
      trx,
      subscription,
      plan,
      addOn,
      least,
      row.quantity,
      DEFAULT_PRORATION,
      resumedAt,
      customer,
      policy,
    );
    if (charged) lines.push(...charged.lines);
  }
  const end = servedUntil(subscription);
  if (lines.length === 0 || !end) return null;
  return addOnCharge(subscription, plan, lines, {
    at: resumedAt,
    start: resumedAt,
    end,
    chargeAt: resumedAt,
  });
}

/**
 * Refuses setting add-on `addOnId` of `subscription` from `from` to `to` units while the add-on charge
 * pending since a payment's reactivation (`add_on_charge_at`) is left pending because making it
 * failed (`failed`: why; renewal.ts `renewLocked` with `'try'`), when that add-on is one the charge is
 * for (set in its suspension: `heldSinceSuspension`) and its quantity changes. The charge, made later
 * (`reactivationAddOnCharge`), is for the units the subscription holds then beyond those paid for:
 * lowered or removed first, it would charge less or nothing for the units served from its moment
 * (DKK 2 seats × 1500 from Feb 17, 1286: lowered 3 → 1 on Feb 21, nothing), and raised, the raise's
 * own invoice counts as paid among them. Made first, as when it can be made, neither happens. Any
 * add-on's quantity set while the subscription is SUSPENDED again (by hand or by dunning, the charge
 * left pending; unless `policy` bills SUSPENDED ones) is refused too: a reactivation within the period
 * would leave a charge pending for the units set in this suspension in place of the one pending
 * (reinstate.ts `resumeSuspended`), which would never be made. The same quantity (a coupon redeemed
 * with it), another add-on while not suspended, or any set once the charge is made goes on.
 * @throws ConflictError `add_on_charge_pending` (field `quantity`)
 */
export async function refusePendingAddOnChange(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  addOnId: string,
  from: number,
  to: number,
  failed: string,
  policy: RenewalPolicy,
): Promise<void> {
  const { add_on_charge_at: since, add_on_charge_suspension: suspension } = subscription;
  if (from === to || since === null || suspension === null) return;
  const suspended = subscription.status === 'SUSPENDED' && !policy.billSuspended;
  if (!suspended && !(await heldSinceSuspension(trx, subscription.id, suspension)).has(addOnId)) return;
  const charge = `an add-on charge pending since ${since.toISOString()} (the add-on units set while it was suspended before, charged from the payment that reactivated it) that cannot be made now (${failed})`;
  throw new ConflictError(
    'add_on_charge_pending',
    suspended
      ? `subscription ${subscription.id} is SUSPENDED with ${charge}; add-on units set in this suspension would be charged from its reactivation in place of that charge. Nothing changed; set it again once the renewal sweep has made the charge`
      : `subscription ${subscription.id} has ${charge}, which is for add-on ${addOnId}; changing that add-on's quantity before it is made would change what it charges. Nothing changed; set it again once the renewal sweep has made the charge`,
    { quantity: `add-on ${addOnId} waits for the add-on charge pending since ${since.toISOString()}` },
  );
}

/**
 * `subscription` as it was in the period holding `at` (its `current_period_*` on that period), when
 * its current period started after `at` (pure): a renewal that left a failing pending charge behind
 * (renewal.ts `renewDueSubscriptions`) moved it on, and the charge is for the period holding its
 * moment (what it paid for then, its coupons then, its end). Else `subscription` as it is (the
 * period holding `at`, or one before it: the charge is none).
 */
function inPeriodHolding(subscription: SubscriptionRow, plan: Plan, at: Date): SubscriptionRow {
  const start = subscription.current_period_start;
  if (subscription.current_period_index === null || !start || start <= at) return subscription;
  const cadence = cadenceOf(subscription, plan);
  const index = periodIndexAt(cadence, at);
  if (index < 0) return subscription;
  const period = periodAt(cadence, index);
  return {
    ...subscription,
    current_period_index: period.index,
    current_period_start: period.start,
    current_period_end: period.end,
  };
}

/**
 * A cancellation scheduled for a subscription with an add-on charge pending: its moment (`at`, the
 * `cancel_at` it set), the refund it gave when scheduled for the time from `at` (`refundType`), and
 * whether it was scheduled while the charge was pending and could not be made (`whilePending`), or
 * before the charge was pending (a charge made then is to `at`, whatever its refund: `servedUntil`).
 */
interface ScheduledCancellation {
  at: Date;
  refundType: CancellationRefundType;
  whilePending: boolean;
}

/**
 * The cancellation scheduled for `subscription`, whose add-on charge is pending since `at`
 * (`add_on_charge_at`): its `subscription.cancellation_scheduled` activity, the latest, with the `at`
 * and `refund_type` it was scheduled with; `whilePending` when it says `add_on_charge_pending` since
 * `at` (cancellation.ts `cancelLocked` tried the charge and left it), else it was scheduled before
 * the charge was pending (one scheduled after would have tried it: made, nothing is pending; left,
 * it says so). Whether still in force (`cancel_at`) or replaced since by a cancellation now (which
 * clears `cancel_at` and stores its own refund): its `cancel_at` bounded a charge made while it was
 * in force, and the refund it gave when scheduled was given all the same. Null without one.
 */
async function scheduledWhilePending(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  at: Date,
): Promise<ScheduledCancellation | null> {
  if (subscription.cancel_at === null && subscription.status !== 'CANCELLED') return null;
  const row = await activitiesOf(trx, subscription.id)
    .select([
      sql<string | null>`data->'add_on_charge_pending'->>'since'`.as('since'),
      sql<string | null>`data->>'at'`.as('at'),
      sql<CancellationRefundType | null>`data->>'refund_type'`.as('refund_type'),
    ])
    .where('action', '=', 'subscription.cancellation_scheduled')
    .orderBy('sequence', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!row || row.at == null || row.refund_type == null) return null;
  const whilePending = row.since != null && new Date(row.since).getTime() === at.getTime();
  return { at: new Date(row.at), refundType: row.refund_type, whilePending };
}

/**
 * `subscription` (in the period holding the charge's moment: `inPeriodHolding`) as the pending add-on
 * charge (`reactivationAddOnCharge`) is owed for it (pure), for what the charge would have owed had it
 * been made first (each cancellation tries it first; it is left pending only when making it fails:
 * renewal.ts `renewLocked` with `'leave'` or `'try'`).
 * - A cancellation scheduled while the charge was pending (`scheduled`: it tried it and left it,
 *   `scheduledWhilePending`) gave its refund, for the time from its `at`, when scheduled; had the
 *   charge been made first, not knowing the cancellation, it was to the period's end and that refund
 *   reached its invoice (cancellation.ts `addOnRefunds`): `prorate` lowered it to `at`; `full` gave
 *   it back whole (null) when `at` is within the charge's period (a refund of a later period reaches
 *   none of it); `none` left it to the period's end. PLN 2 seats × 1500 from Feb 17, cancel at Feb 25
 *   with none: 1286 to Mar 1; cancel at period end with full: nothing. This holds whether that
 *   cancellation is still to come, came (CANCELLED at `cancel_at`), was overtaken by dunning's final
 *   action, or was replaced by a cancellation now, whose refund then reaches what is left: MXN cancel
 *   at Feb 25 with prorate, then cancelled now on Feb 23 with none: 857 to Feb 25 (made first, 1286
 *   lowered by 429 when scheduled), where before the scheduled refund was forgotten, 1286. One
 *   scheduled before the charge was pending and replaced by a cancellation now bounds it at its `at`
 *   as it did while in force: BRL cancel at Feb 25 (any refund) scheduled Jan 15, cancelled now on
 *   Feb 23 with none: 857 to Feb 25, where before 1286 to Mar 1.
 * Else one CANCELLED (at `cancelled_at`) with the charge still pending, as the ACTIVE subscription it
 * was then; any other as it is.
 * - Ended at its scheduled cancellation or term end (`cancel_at` at or before `cancelled_at`, a
 *   renewal without the failing charge), scheduled before the charge was pending: to that end
 *   (`servedUntil` stops at `cancel_at`; made first, it was to that end and that cancellation's
 *   refund, given before, did not reach it).
 * - Cancelled now by hand (`cancellation_effective_at` = `cancelled_at`, no `cancel_at`): by its
 *   refund, as that refund would have treated the charge's OPEN invoice (cancellation.ts
 *   `addOnRefunds`): `prorate` to the cancellation (the time served; within a minor unit of the
 *   invoice to the period's end lowered by its unused share), `full` nothing (given back whole: null)
 *   when cancelled within the charge's period, else to its end (a full refund of a later period
 *   reaches none of it: SGD cancelled Mar 10 with March given back whole, the seats of Feb 17 – Mar 1
 *   still 1286, where before nothing was charged), `none` to the end of what the period serves
 *   (nothing given back); each after what a cancellation it replaced, scheduled while the charge was
 *   pending, gave back (above).
 * - Cancelled by dunning's final action (no refund): to the end of what the period serves, as a
 *   charge made first and kept (to a later `cancel_at` scheduled before it, if any).
 * A cancellation at or before the charge's moment leaves none to charge.
 * @returns the subscription to charge for, or null when nothing is owed (a `full` refund)
 */
function servedTo(
  subscription: SubscriptionRow,
  scheduled: ScheduledCancellation | null,
): SubscriptionRow | null {
  const {
    status,
    cancelled_at: cancelledAt,
    cancel_at: cancelAt,
    cancellation_effective_at: effectiveAt,
    cancellation_refund_type: refundType,
    current_period_end: end,
  } = subscription;
  // What the refund given when a cancellation was scheduled while the charge was pending left of it:
  // nothing (full), up to its moment (prorate), all (none, or a full refund of a later period). One
  // scheduled before the charge was pending bounded it at its moment, whatever its refund.
  const pendingThen = scheduled?.whilePending === true;
  if (pendingThen && scheduled?.refundType === 'full' && end && scheduled.at <= end) return null;
  const cut = scheduled && (!pendingThen || scheduled.refundType === 'prorate') ? scheduled.at : null;
  if (pendingThen && cancelAt) {
    const active = { ...subscription, status: 'ACTIVE' as const };
    return cut ? { ...active, cancel_at: cut } : { ...active, cancel_at: null, cancel_at_period_end: false };
  }
  if (status !== 'CANCELLED' || !cancelledAt) return subscription;
  const served = { ...subscription, status: 'ACTIVE' as const };
  if (cancelAt && cancelAt <= cancelledAt) return { ...served, cancel_at: cancelAt };
  const byHand = cancelAt === null && effectiveAt?.getTime() === cancelledAt.getTime();
  // The end left by a scheduled cancellation that this cancellation now replaced (`cut`).
  const left = cut ? { ...served, cancel_at: cut } : served;
  if (!byHand) return left;
  // A full refund gives back the invoices of the period it cancels in: the charge's only when that is
  // the charge's period (cancelled before its end), else the charge stays owed to its period's end.
  if (refundType === 'full') return end && cancelledAt < end ? null : left;
  if (refundType !== 'prorate') return left;
  return { ...served, cancel_at: cut && cut < cancelledAt ? cut : cancelledAt };
}

/**
 * The data of a `subscription.add_on_set` activity (billing/subscription-add-ons.ts). One logged
 * before add-ons were prorated has no `proration`: it charged nothing, as `none`.
 */
const AddOnSet = z
  .object({ add_on: z.string(), from: z.number(), to: z.number(), proration: z.string().default('none') })
  .loose();

/** Subscription `subscriptionId`'s activities (`activities`). */
const activitiesOf = (trx: Kysely<Database>, subscriptionId: string) =>
  trx
    .selectFrom('activities')
    .where('resource_type', '=', 'subscription')
    .where('resource_id', '=', subscriptionId);

/**
 * The plan subscription `subscription` billed at `at` (a pending add-on charge's moment,
 * `add_on_charge_at`), `plan` being the one it has now: the `from_plan` of the first change scheduled
 * for the next cycle that took effect after `at` (its `subscription.changed` activity, `scheduled`,
 * `at` later than `at`: renewal.ts `applyScheduledChange`), else `plan`. The charge is for the time
 * from `at` in the period holding it, so its lines are taxed by that period's plan (an untaxed plan's
 * seats are not taxed because a change to a 25% plan took effect at the next period since). A change
 * now while the charge is pending either made the charge first or was refused when it taxes
 * otherwise (proration.ts `refuseRetaxingPendingCharge`), so it needs no look-up.
 */
export async function planInForceAt(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  plan: Plan,
  at: Date,
): Promise<Plan> {
  const changed = await activitiesOf(trx, subscription.id)
    .select(sql<string>`data->>'from_plan'`.as('from_plan'))
    .where('action', '=', 'subscription.changed')
    // The cast only where `at` is a scheduled change's (`applyScheduledChange` writes both).
    .where(sql<boolean>`CASE WHEN data->>'scheduled' = 'true' THEN (data->>'at')::timestamptz > ${at} END`)
    .orderBy('sequence')
    .limit(1)
    .executeTakeFirst();
  return changed && changed.from_plan !== plan.id ? getPlan(trx, changed.from_plan) : plan;
}

/**
 * The `sequence` of subscription `subscriptionId`'s latest `subscription.suspended` activity (its
 * latest suspension); null when it was never suspended.
 */
export async function latestSuspension(
  trx: Kysely<Database>,
  subscriptionId: string,
): Promise<bigint | null> {
  const row = await activitiesOf(trx, subscriptionId)
    .select('sequence')
    .where('action', '=', 'subscription.suspended')
    .orderBy('sequence', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row?.sequence ?? null;
}

/**
 * The add-ons set on subscription `subscriptionId` while it was suspended by its suspension
 * `suspension` (the `sequence` of a `subscription.suspended` activity: `latestSuspension`): its
 * `subscription.add_on_set` activities after that one and before the first `subscription.active`
 * after it (none yet: all after it), each with the units covered without a charge: the least
 * quantity it held since the suspension (the quantity at the suspension, the first set's `from`,
 * lowered by every quantity set below it), raised by the units each set with `none` (or logged
 * without a proration, from before add-ons were prorated) adds above both its `from` and that
 * least (`to − max(from, least)`, none when it lowers): the units such a set adds are held, not
 * charged, as `none` when active, while the units raised before it in the suspension stay charged
 * (5 → 6 with `none` after 2 → 5 holds the sixth; setting 5 again with `none` holds nothing more).
 * Empty when nothing was set in that suspension.
 * @returns add-on id → units covered, in the order first set
 */
export async function heldSinceSuspension(
  trx: Kysely<Database>,
  subscriptionId: string,
  suspension: bigint,
): Promise<Map<string, number>> {
  const held = new Map<string, number>();
  const reactivation = await activitiesOf(trx, subscriptionId)
    .select('sequence')
    .where('action', '=', 'subscription.active')
    .where('sequence', '>', suspension)
    .orderBy('sequence')
    .limit(1)
    .executeTakeFirst();
  let sets = activitiesOf(trx, subscriptionId)
    .select('data')
    .where('action', '=', 'subscription.add_on_set')
    .where('sequence', '>', suspension);
  if (reactivation) sets = sets.where('sequence', '<', reactivation.sequence);
  for (const row of await sets.orderBy('sequence').execute()) {
    const set = AddOnSet.parse(row.data);
    const least = Math.min(held.get(set.add_on) ?? set.from, set.to);
    const unpaid = set.proration === 'none' ? Math.max(0, set.to - Math.max(set.from, least)) : 0;
    held.set(set.add_on, least + unpaid);
  }
  return held;
}

/**
 * How many units of add-on `addOnId` are paid for to the end of `subscription`'s current period: the
 * quantities of its CHARGE lines (not coupon lines) on the period's invoice and on the add-on
 * proration invoices of the period (`subscription_update`, within it), none VOID. Each proration
 * invoice charged its units from its own moment (the period's start for `full`) to the end of what the period serves (its end, or a
 * scheduled cancellation: `servedUntil`), so all of them run to that end.
 */
async function paidQuantity(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  addOnId: string,
): Promise<number> {
  const row = await trx
    .selectFrom('invoice_lines as l')
    .innerJoin('invoices as i', 'i.id', 'l.invoice_id')
    .select(sql<string>`coalesce(sum(l.quantity), 0)::text`.as('quantity'))
    .where('i.subscription_id', '=', subscription.id)
    .where('i.status', '!=', 'VOID')
    .where('l.add_on_id', '=', addOnId)
    .where('l.coupon_id', 'is', null)
    .where('l.type', '=', 'CHARGE')
    .where((eb) =>
      eb.or([
        eb('i.period_index', '=', subscription.current_period_index),
        eb.and([
          eb('i.billing_reason', '=', 'subscription_update'),
          eb('i.period_start', '>=', subscription.current_period_start),
          eb('i.period_end', '<=', subscription.current_period_end),
        ]),
      ]),
    )
    .executeTakeFirstOrThrow();
  return Number(row.quantity);
}

/**
 * The add-on proration invoices (`addOnProration`) of subscription `subscriptionId`'s period
 * `period.start` … `period.end`, not VOID, oldest first: `subscription_update` invoices for time within
 * that period (to its end, or to a cancellation scheduled within it) with an add-on's line.
 */
export async function periodAddOnInvoices(
  trx: Kysely<Database>,
  subscriptionId: string,
  period: { start: Date; end: Date },
): Promise<Pick<InvoiceRow, 'id' | 'status' | 'total'>[]> {
  return trx
    .selectFrom('invoices as i')
    .select(['i.id', 'i.status', 'i.total'])
    .where('i.subscription_id', '=', subscriptionId)
    .where('i.billing_reason', '=', 'subscription_update')
    .where('i.period_start', '>=', period.start)
    .where('i.period_end', '<=', period.end)
    .where('i.status', '!=', 'VOID')
    .where(hasAddOnLine)
    .orderBy('i.created_at')
    .orderBy('i.id')
    .execute();
}
