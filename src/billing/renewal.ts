import { type Expression, type ExpressionBuilder, type Kysely, type SqlBool, sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type {
  BillingReason,
  Database,
  InvoiceRow,
  SubscriptionRow,
  SubscriptionStatus,
} from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { invoiceAddOnProration, planInForceAt, reactivationAddOnCharge } from './add-on-proration.ts';
import { type SubscriptionAddOn, subscriptionAddOns } from './add-ons.ts';
import {
  couponAppliesTo,
  couponAppliesToAddOn,
  couponDiscounts,
  couponInEffect,
  type RedemptionWithCoupon,
  subscriptionRedemptions,
} from './coupons.ts';
import { type OpenCustomer, openCustomerOnce } from './customer-status.ts';
import { eachLimited } from './each-limited.ts';
import {
  finalizeLocked,
  type InvoiceDetails,
  insertInvoice,
  invoiceAmounts,
  type NewInvoice,
  type NewLine,
} from './invoices.ts';
import { type Cadence, type Period, periodAt, periodIndexAt } from './periods.ts';
import { baseAmount, getPlan, type Plan } from './plans.ts';
import { subscriptionActivity, transitionSubscription } from './subscription-status.ts';
import { type UsageWindow, usageLines } from './usage.ts';

/**
 * Renewal: every period of a subscription whose start is at or before `now` gets exactly one
 * invoice, finalized at once with `charge_at = now` so collection's scheduler charges it.
 *
 * Periods and trials: period n starts at `billing_anchor + n intervals` (periods.ts). The anchor is
 * the end of the trial, or the start when there is none: a trial is not a billing period and is
 * never invoiced; while IN_TRIAL (or before a future start) `current_period_index` is null and
 * `next_renewal_at` is the anchor. `next_renewal_at` is always the start of the next period to bill.
 * Each run locks the subscription row (`FOR UPDATE`), so concurrent workers and restarts bill each
 * period once; the unique (subscription_id, period_index) index backs this up.
 */

/** Statuses that are billed. SUSPENDED subscriptions get no invoices (by default); CANCELLED ones are over. */
export const RENEWABLE: readonly SubscriptionStatus[] = ['IN_TRIAL', 'ACTIVE', 'PAST_DUE'];

/**
 * How renewals treat SUSPENDED subscriptions (`BILL_SUSPENDED_SUBSCRIPTIONS`): `billSuspended`
 * false (the default) gives them no invoices; true bills them like ACTIVE ones, as Billby does
 * ("the subscription will continue to be billed", seed 001, Suspend a subscription).
 */
export interface RenewalPolicy {
  billSuspended: boolean;
}

/** The default policy: SUSPENDED subscriptions are not billed. */
export const DEFAULT_RENEWAL_POLICY: RenewalPolicy = { billSuspended: false };

/** The statuses renewals bill under `policy`. */
export function renewableStatuses(policy: RenewalPolicy): readonly SubscriptionStatus[] {
  return policy.billSuspended ? [...RENEWABLE, 'SUSPENDED'] : RENEWABLE;
}

/**
 * The moment a subscription is next looked at by renewal: the start of its next period `periodStart`,
 * or its scheduled cancellation `cancelAt` when that comes first.
 */
export function nextRenewalAt(periodStart: Date, cancelAt: Date | null): Date {
  return cancelAt && cancelAt < periodStart ? cancelAt : periodStart;
}

/**
 * Whether a subscription's fixed term (`repeat` periods: 0 … repeat − 1) is over by the period
 * starting at `at`: the renewal then ends it (`term_completed`) instead of invoicing that period.
 */
export function termCompletedAt(
  subscription: Pick<SubscriptionRow, 'repeat'>,
  cadence: Cadence,
  at: Date,
): boolean {
  return subscription.repeat !== null && periodIndexAt(cadence, at) >= subscription.repeat;
}

/**
 * When the renewal will end a live subscription, if it is to end: its `cancel_at` (a cancellation at
 * a date, or at period end, which sets it too), the next renewal with `cancel_at_period_end`, or the
 * start of period `repeat` (the end of a fixed term: `termCompletedAt`), whichever comes first.
 * Usage at or after it can never be billed (the final invoice bills usage up to it): usage.ts refuses it.
 * @returns the moment, or null when nothing ends it
 */
export function scheduledEnd(
  subscription: Pick<
    SubscriptionRow,
    'cancel_at' | 'cancel_at_period_end' | 'next_renewal_at' | 'repeat' | 'billing_anchor'
  >,
  plan: Pick<Plan, 'interval' | 'interval_count'>,
): Date | null {
  const ends = [
    subscription.cancel_at,
    subscription.cancel_at_period_end ? subscription.next_renewal_at : null,
    subscription.repeat === null ? null : periodAt(cadenceOf(subscription, plan), subscription.repeat).start,
  ].filter((at): at is Date => at !== null);
  return ends.length === 0 ? null : new Date(Math.min(...ends.map((at) => at.getTime())));
}

/** The periods of a subscription on its plan's interval. */
export function cadenceOf(
  subscription: Pick<SubscriptionRow, 'billing_anchor'>,
  plan: Pick<Plan, 'interval' | 'interval_count'>,
): Cadence {
  return { anchor: subscription.billing_anchor, interval: plan.interval, intervalCount: plan.interval_count };
}

const day = (date: Date) => date.toISOString().slice(0, 10);

/**
 * What each invoice of `subscription` says beyond its lines: its PO number and notes (Billby's
 * subscription `po_number` and `invoice_notes`), given to the period, usage and proration invoices.
 */
export function subscriptionInvoiceDetails(
  subscription: Pick<SubscriptionRow, 'po_number' | 'invoice_notes'>,
): InvoiceDetails {
  return { poNumber: subscription.po_number, notes: subscription.invoice_notes };
}

/**
 * The recurring lines of a period, without touching the database: the plan's base price for the
 * quantity (or the subscription's `amount_override`) at the plan's tax rate (`tax_inclusive`: the
 * price includes it), then one CREDIT line per coupon redeemed on the subscription (not on an add-on)
 * in effect that applies to the plan's product (percent of the base, or amount off, all together
 * capped at the base), then per add-on of the subscription one CHARGE line (its amount × quantity,
 * taxed as the plan's lines) followed by one CREDIT line per coupon redeemed on that add-on in effect
 * (`add_on_id` set; the same rule, capped at that add-on's line: a subscription's coupon never
 * discounts an add-on, an add-on's coupon never the plan or another add-on), then on the
 * subscription's first period invoice only (`first`) the plan's setup fee as its own CHARGE line
 * (never discounted).
 * @param first whether this is the subscription's first period invoice (default: period 0); a
 * subscription whose early periods were never invoiced (suspended in its trial or before its start,
 * reactivated after period 0: no back-billing) is first invoiced for a later period, which then
 * carries the setup fee (`subscriptionRecurringLines`)
 * @returns the lines and the redemptions that counted this period (the plan's and the add-ons')
 */
export function recurringLines(
  plan: Plan,
  subscription: Pick<SubscriptionRow, 'quantity' | 'amount_override'>,
  period: Pick<Period, 'index' | 'start' | 'end'>,
  redemptions: readonly RedemptionWithCoupon[],
  addOns: readonly SubscriptionAddOn[] = [],
  first = period.index === 0,
): { lines: NewLine[]; applied: RedemptionWithCoupon[] } {
  const base = baseAmount(plan, subscription.quantity, subscription.amount_override);
  const inEffect = redemptions.filter((r) =>
    couponInEffect(r.coupon, r.periods_applied, period.index - r.first_period_index),
  );
  const common = {
    taxRatePpm: plan.tax_rate_ppm,
    ...(plan.tax_inclusive ? { taxInclusive: true } : {}),
    planId: plan.id,
    periodStart: period.start,
    periodEnd: period.end,
  };
  const lines: NewLine[] = [
    {
      ...common,
      description: `${plan.name} × ${subscription.quantity} (${day(period.start)} – ${day(period.end)})`,
      type: 'CHARGE',
      quantity: subscription.quantity,
      unitAmount:
        plan.price.model === 'PER_UNIT' && subscription.amount_override === null
          ? plan.price.unitAmount
          : null,
      amount: base,
    },
  ];
  // The discounts of `coupons` on `discounted` (minor units), each a CREDIT line like `line` after it.
  const creditLines = (
    coupons: readonly RedemptionWithCoupon[],
    discounted: bigint,
    line: Partial<NewLine>,
  ) => {
    const discounts = couponDiscounts(
      coupons.map((r) => r.coupon),
      discounted,
    );
    for (const [i, redemption] of coupons.entries()) {
      const discount = discounts[i]!;
      if (discount > 0n) {
        lines.push({
          ...common,
          ...line,
          description: `Coupon ${redemption.coupon.code}${redemption.coupon.name ? ` (${redemption.coupon.name})` : ''}`,
          type: 'CREDIT',
          quantity: 1,
          amount: discount,
          couponId: redemption.coupon.id,
        });
      }
    }
  };
  const applied = inEffect.filter((r) => r.add_on_id === null && couponAppliesTo(r.coupon, plan.product_id));
  creditLines(applied, base, {});
  for (const { addOn, quantity } of addOns) {
    const line = { planId: undefined, addOnId: addOn.id };
    lines.push({
      ...common,
      ...line,
      description: `${addOn.name} × ${quantity} (${day(period.start)} – ${day(period.end)})`,
      type: 'CHARGE',
      quantity,
      unitAmount: addOn.amount,
    });
    const onAddOn = inEffect.filter(
      (r) => r.add_on_id === addOn.id && couponAppliesToAddOn(r.coupon, addOn.id),
    );
    creditLines(onAddOn, addOn.amount * BigInt(quantity), line);
    applied.push(...onAddOn);
  }
  if (first && plan.setup_fee !== null) {
    // One-off, so not a recurring line: no plan_id (a cancellation's refund leaves it out).
    lines.push({
      ...common,
      planId: undefined,
      description: `${plan.name}: setup fee`,
      type: 'CHARGE',
      quantity: 1,
      unitAmount: plan.setup_fee,
    });
  }
  return { lines, applied };
}

/**
 * The usage period holding `at`, [start, end): the trial [`start_at`, `billing_anchor`) before the
 * anchor, else the billing period holding `at`. A period's usage of a metric is aggregated and
 * priced once over it (usage.ts `priceUsage`), however often a plan change splits its billing.
 */
export function usagePeriodAt(
  subscription: Pick<SubscriptionRow, 'billing_anchor' | 'start_at'>,
  plan: Pick<Plan, 'interval' | 'interval_count'>,
  at: Date,
): { start: Date; end: Date } {
  const cadence = cadenceOf(subscription, plan);
  const index = periodIndexAt(cadence, at);
  if (index < 0) return { start: subscription.start_at, end: subscription.billing_anchor };
  const { start, end } = periodAt(cadence, index);
  return { start, end };
}

/**
 * The windows of a subscription's usage not billed yet, from `usage_billed_until` (or `start_at`) up
 * to `until`: the trial's part as one window, only when `plan.bill_trial_usage` (free otherwise),
 * then one window per billing period (part) so that each period's usage is aggregated and priced on
 * its own. A window cut at its start by `usage_billed_until` (a plan change mid-period billed the part
 * before) carries its period's start as `periodStart`: it bills the rest of the period (`usageLines`).
 * Empty when `until` is not later than what is billed.
 */
export function unbilledUsageWindows(
  subscription: Pick<SubscriptionRow, 'billing_anchor' | 'start_at' | 'usage_billed_until'>,
  plan: Pick<Plan, 'interval' | 'interval_count' | 'bill_trial_usage'>,
  until: Date,
): UsageWindow[] {
  const from = subscription.usage_billed_until ?? subscription.start_at;
  const anchor = subscription.billing_anchor;
  // [start, end) cut to [from, until): the trial before the anchor, then each period from the anchor on.
  const clip = (start: Date, end: Date): UsageWindow => ({
    periodStart: start,
    start: new Date(Math.max(start.getTime(), from.getTime())),
    end: new Date(Math.min(end.getTime(), until.getTime())),
  });
  const windows: UsageWindow[] = plan.bill_trial_usage ? [clip(subscription.start_at, anchor)] : [];
  const cadence = cadenceOf(subscription, plan);
  let index = Math.max(periodIndexAt(cadence, from), 0);
  for (let period = periodAt(cadence, index); period.start < until; period = periodAt(cadence, ++index)) {
    windows.push(clip(period.start, period.end));
  }
  return windows.filter((w) => w.start < w.end);
}

/**
 * Bills a locked subscription's usage up to `until` (PRODUCT §11: each event once, priced with the
 * plan active when it happened): the metered lines of `unbilledUsageWindows` priced with `plan`,
 * and `usage_billed_until` moved to `until`, so the same usage is never billed again and a usage
 * event before `until` is refused from now on. Nothing changes when `until` is not later than what
 * is billed.
 * @param plan the plan active since `usage_billed_until` (a plan change bills the old plan's usage
 * first, see proration.ts)
 * @returns the lines, to put on an invoice in the same transaction
 * @throws RangeError as `usageLines`
 */
export async function billUsageUntil(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  plan: Plan,
  until: Date,
): Promise<NewLine[]> {
  const from = subscription.usage_billed_until ?? subscription.start_at;
  if (until <= from) return [];
  const lines = await usageLines(trx, subscription, plan, unbilledUsageWindows(subscription, plan, until));
  await trx
    .updateTable('subscriptions')
    .set({ usage_billed_until: until })
    .where('id', '=', subscription.id)
    .execute();
  return lines;
}

/**
 * Where the final invoice of a subscription ended at `now` (a cancellation now, dunning's, a scheduled
 * one reached) bills its usage up to: `now`, or just after the latest of its usage events stored at or
 * after `now` (stamped ahead of the clock, within the 5 minutes usage.ts `recordUsageEvent` allows,
 * or at `now` itself; for a scheduled end, stored before it was scheduled): they were accepted, so
 * they are billed on it, never left after the end it bills up to (EUR: 40 calls stamped 12:00 and 25
 * stamped 12:03, cancelled at 12:00: 65 calls billed, not none). Reads only.
 */
export async function finalUsageUntil(
  trx: Kysely<Database>,
  subscription: Pick<SubscriptionRow, 'id'>,
  now: Date,
): Promise<Date> {
  const { last } = await trx
    .selectFrom('usage_events')
    .select(sql<Date | null>`max(occurred_at)`.as('last'))
    .where('subscription_id', '=', subscription.id)
    .where('occurred_at', '>=', now)
    .executeTakeFirstOrThrow();
  return last === null ? now : new Date(new Date(last).getTime() + 1);
}

/**
 * Invoices a locked subscription's usage not billed yet up to `until` (`billUsageUntil`) on an
 * invoice of its own: the final invoice of a cancellation, or the old plan's usage at a plan change.
 * The invoice carries no period index (it is not a period's invoice), covers [what was billed,
 * `until`), is finalized at once and charged by the scheduler from `now`.
 * @param customer the unit of work's `openCustomerOnce` of the subscription's customer (default: one
 * of its own), so that its invoices read the customer once
 * @returns the invoice, or null when there is no usage to bill (no invoice is made)
 */
export async function invoiceUsageUntil(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  plan: Plan,
  until: Date,
  now: Date,
  billingReason: BillingReason,
  customer: OpenCustomer = openCustomerOnce(work.trx, subscription.customer_id),
): Promise<InvoiceRow | null> {
  const from = subscription.usage_billed_until ?? subscription.start_at;
  const lines = await billUsageUntil(work.trx, subscription, plan, until);
  if (lines.length === 0) return null;
  return invoiceNow(work, subscription, plan, lines, now, customer, {
    periodStart: from,
    periodEnd: until,
    billingReason,
  });
}

/** A subscription's live coupon redemptions (not removed) and add-ons, as `recurringLines` prices them. */
export interface RecurringState {
  redemptions: RedemptionWithCoupon[];
  addOns: SubscriptionAddOn[];
}

/**
 * `recurringLines` of `subscription` for `period`, read inside `trx`: its coupon redemptions still in
 * effect (not removed) and its add-ons, as `change` turns them when given (a preview's change, read
 * only), and the setup fee when none of its periods is invoiced yet (its first period invoice,
 * whatever the period's index), or as `first` says when given (a renewal after one not run yet is
 * never the first). Reads only: the renewal's `periodLines` counts the redemptions that applied;
 * `effectiveAmount` and the add-on preview only price them.
 */
export async function subscriptionRecurringLines(
  trx: Kysely<Database>,
  subscription: Pick<SubscriptionRow, 'id' | 'quantity' | 'amount_override'>,
  plan: Plan,
  period: Pick<Period, 'index' | 'start' | 'end'>,
  change: (state: RecurringState) => RecurringState = (state) => state,
  first?: boolean,
): Promise<{ lines: NewLine[]; applied: RedemptionWithCoupon[] }> {
  const { redemptions, addOns } = change({
    redemptions: (await subscriptionRedemptions(trx, subscription.id)).filter((r) => r.removed_at === null),
    addOns: await subscriptionAddOns(trx, subscription.id),
  });
  const isFirst =
    first ??
    (await trx
      .selectFrom('invoices')
      .select('id')
      .where('subscription_id', '=', subscription.id)
      .where('period_index', 'is not', null)
      .limit(1)
      .executeTakeFirst()) === undefined;
  return recurringLines(plan, subscription, period, redemptions, addOns, isFirst);
}

/**
 * The lines of one period's invoice inside `trx`: the recurring lines (base price, coupon credits,
 * add-ons, setup fee on the first period invoice; each coupon in effect counts one more `periods_applied`). The customer's credit (a downgrade's
 * proration credit among others) is applied when the invoice is finalized (`finalizeLocked`).
 *
 * Metered prices are billed in arrears: the invoice of period n carries the usage not billed yet
 * before period n starts (`billUsageUntil`: period n − 1's, with the trial's when the plan bills it,
 * or every period missed while suspended).
 */
export async function periodLines(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  plan: Plan,
  period: Period,
): Promise<NewLine[]> {
  const { lines, applied } = await subscriptionRecurringLines(trx, subscription, plan, period);
  for (const redemption of applied) {
    await trx
      .updateTable('coupon_redemptions')
      .set((eb) => ({ periods_applied: eb('periods_applied', '+', 1) }))
      .where('id', '=', redemption.id)
      .execute();
  }
  // Usage is billed in arrears: period n's invoice carries the usage not billed before it starts.
  lines.push(...(await billUsageUntil(trx, subscription, plan, period.start)));
  return lines;
}

/**
 * Invoices period `period` of a locked subscription unless it already has its invoice: inserts the
 * invoice with its lines, finalizes it (OPEN, or PAID at zero) and sets `charge_at = now` when
 * something is due. Renewal calls it as each period starts; settle (terms.ts) for every remaining
 * period of a fixed term at once.
 * @param customer as `invoiceUsageUntil`'s
 * @returns the new invoice, or null when the period was invoiced already
 */
export async function invoicePeriod(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  plan: Plan,
  period: Period,
  now: Date,
  customer: OpenCustomer = openCustomerOnce(work.trx, subscription.customer_id),
): Promise<InvoiceRow | null> {
  const existing = await work.trx
    .selectFrom('invoices')
    .select('id')
    .where('subscription_id', '=', subscription.id)
    .where('period_index', '=', period.index)
    .executeTakeFirst();
  if (existing) return null;
  const lines = await periodLines(work.trx, subscription, plan, period);
  return invoiceNow(work, subscription, plan, lines, now, customer, {
    periodIndex: period.index,
    periodStart: period.start,
    periodEnd: period.end,
    billingReason: period.index === 0 ? 'subscription_create' : 'subscription_cycle',
  });
}

/**
 * Inserts `subscription`'s invoice of `lines` in the plan's currency for `what` (its period, index
 * and billing reason), with the subscription's invoice details, reading the customer through
 * `customer`, and finalizes it at once; `charge_at = now` when something is due (a zero invoice is
 * PAID at once: nothing for collection to charge). `invoicePeriod` and `invoiceUsageUntil` share it.
 */
async function invoiceNow(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  plan: Plan,
  lines: NewLine[],
  now: Date,
  customer: OpenCustomer,
  what: Pick<NewInvoice, 'periodIndex' | 'periodStart' | 'periodEnd' | 'billingReason'>,
): Promise<InvoiceRow> {
  const invoice = await insertInvoice(
    work,
    {
      customerId: subscription.customer_id,
      currency: plan.currency,
      lines,
      subscriptionId: subscription.id,
      ...what,
      details: subscriptionInvoiceDetails(subscription),
      chargeAt: invoiceAmounts(lines).total > 0n ? now : undefined,
    },
    { customer },
  );
  return finalizeLocked(work, invoice, now, customer);
}

/** What a renewal did: the subscription as it is now and the invoices it created. */
export interface Renewal {
  subscription: SubscriptionRow;
  invoices: InvoiceRow[];
  /**
   * Why making the add-on charge pending since a payment's reactivation failed, when the renewal
   * tried it (`'try'`) and went on without it (the charge still pending); absent otherwise.
   */
  pendingChargeFailed?: string;
}

/** What {@link leftPendingData} adds to an activity's data: `add_on_charge_pending`, or nothing. */
export type LeftPending = { add_on_charge_pending?: { since: Date | null; error: string } };

/**
 * The `add_on_charge_pending` of the activity of what a person or dunning did to `subscription` (as
 * it was before its renewal up to now) when that renewal (`renewal`, with `'try'`) left the add-on
 * charge pending since a payment's reactivation because making it failed: when it was pending
 * (`since`, `add_on_charge_at`) and why it failed (`error`); nothing otherwise.
 */
export function leftPendingData(
  subscription: Pick<SubscriptionRow, 'add_on_charge_at'>,
  renewal: Pick<Renewal, 'pendingChargeFailed'>,
): LeftPending {
  if (renewal.pendingChargeFailed === undefined) return {};
  return {
    add_on_charge_pending: { since: subscription.add_on_charge_at, error: renewal.pendingChargeFailed },
  };
}

/**
 * What a renewal does with an add-on charge pending since a payment's reactivation
 * (`add_on_charge_at` ≤ now): `'make'` it first (its failure is the renewal's), `'leave'` it pending,
 * or `'try'` to make it and leave it pending when that fails (see `renewLocked`).
 */
export type PendingAddOns = 'make' | 'leave' | 'try';

/**
 * Renews a subscription locked in `work` (which joined the ledger's writers first) up to `now`:
 * while its next period has started (or its scheduled cancellation has come), either cancels it —
 * at that boundary (`cancel_at_period_end`) or at `cancel_at` — or invoices the period (once), ends
 * a trial (IN_TRIAL → ACTIVE), advances `current_period_*` and `next_renewal_at` (never past
 * `cancel_at`, see `nextRenewalAt`), and logs `subscription.renewed`. A change scheduled for the
 * next cycle (`scheduled_plan_id`/`scheduled_quantity`) is applied before the period is invoiced
 * (`applyScheduledChange`). After downtime every missed period is invoiced, each once. A fixed term
 * (`repeat`) ends it when period `repeat` would start: CANCELLED there with reason `term_completed`
 * (see `cancelScheduled`); a period settle invoiced already is not invoiced again. First, when a
 * charge is pending from `add_on_charge_at` ≤ `now` (a reactivation within the current period with
 * add-ons set while suspended: reinstate.ts `resumeSuspended`), the add-on units set while it was
 * suspended are charged from that moment on a `subscription_update` invoice (add-on-proration.ts
 * `reactivationAddOnCharge`, `invoiceAddOnProration`), whatever its status now, and the pending
 * charge is cleared in the same unit of work (under the subscription's lock: made once). Its
 * invoices read their customer once (`openCustomerOnce`), at the first of them.
 * @param policy whether a SUSPENDED subscription is billed (default: not)
 * @param pendingAddOns `'make'` (the default) to make that pending charge first, its failure the
 * renewal's; `'leave'` to leave it as it is (still pending, made by a later
 * renewal for the period holding its moment, however far the periods have gone): the renewal
 * sweep's second try of a subscription whose pending charge failed (`renewDueSubscriptions`), so
 * that a charge that keeps failing never stops its periods from being invoiced; `'try'` to make it
 * first in a savepoint (`UnitOfWork.attempt`) and, when making it fails, go on as `'leave'` (the
 * failure undone, the charge still pending, `pendingChargeFailed` saying why): what must happen
 * whatever the charge does (dunning's final action, payments/dunning.ts; a change by hand). Left
 * pending, the charge is made later with the plan in force at its moment (`chargePendingAddOns`,
 * add-on-proration.ts `planInForceAt`), so a change scheduled for a plan taxing otherwise takes effect
 * on time (SGD: seats raised while suspended on an untaxed plan, a change to a 25% plan scheduled for
 * Mar 1: March 10625 on the new plan at Mar 1, the 1286 for Feb 17 – Mar 1 made untaxed once it can;
 * before, March waited for the charge, and a cancellation or dunning's final action ending it while
 * the charge failed left the time since Mar 1 never invoiced)
 */
export async function renewLocked(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  initialPlan: Plan,
  now: Date,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
  pendingAddOns: PendingAddOns = 'make',
): Promise<Renewal> {
  let current = subscription;
  let plan = initialPlan;
  const invoices: InvoiceRow[] = [];
  const cadence = cadenceOf(current, plan);
  const billed = renewableStatuses(policy);
  const customer = openCustomerOnce(work.trx, subscription.customer_id);
  // Add-on units set while suspended, charged from a payment's reactivation, first.
  let pendingChargeFailed: string | undefined;
  if (pendingAddOns === 'make') {
    const pending = await chargePendingAddOns(work, current, plan, now, customer);
    current = pending.subscription;
    invoices.push(...pending.invoices);
  } else if (pendingAddOns === 'try' && current.add_on_charge_at && current.add_on_charge_at <= now) {
    // Its own read of the customer: a read (and its lock) inside the savepoint goes when it is undone.
    const from = current;
    const tried = await work.attempt(() =>
      chargePendingAddOns(work, from, plan, now, openCustomerOnce(work.trx, from.customer_id)),
    );
    if (tried.ok) {
      current = tried.value.subscription;
      invoices.push(...tried.value.invoices);
    } else {
      pendingChargeFailed = tried.error instanceof Error ? tried.error.message : String(tried.error);
    }
  }
  const done = (renewal: Renewal): Renewal =>
    pendingChargeFailed === undefined ? renewal : { ...renewal, pendingChargeFailed };
  // A SUSPENDED subscription that is not billed still ends at its scheduled cancellation.
  if (
    !billed.includes(current.status) &&
    current.status === 'SUSPENDED' &&
    current.cancel_at &&
    current.cancel_at <= now
  ) {
    const cancelled = await cancelScheduled(work, current, plan, current.cancel_at, now, customer);
    return done({ subscription: cancelled.subscription, invoices: [...invoices, ...cancelled.invoices] });
  }
  while (billed.includes(current.status) && current.next_renewal_at && current.next_renewal_at <= now) {
    const due = current.next_renewal_at;
    const termCompleted = termCompletedAt(current, cadence, due);
    if (termCompleted || current.cancel_at_period_end || (current.cancel_at && current.cancel_at <= due)) {
      const cancelled = await cancelScheduled(work, current, plan, due, now, customer, termCompleted);
      return done({ subscription: cancelled.subscription, invoices: [...invoices, ...cancelled.invoices] });
    }
    if (current.scheduled_plan_id !== null) {
      // A charge left pending from before this boundary is made later with the plan in force at its
      // moment (`chargePendingAddOns`, `planInForceAt`): the change takes effect on time.
      const applied = await applyScheduledChange(work, current, plan, due, now, customer);
      current = applied.subscription;
      plan = applied.plan;
      if (applied.usageInvoice) invoices.push(applied.usageInvoice);
    }
    const period = periodAt(cadence, periodIndexAt(cadence, due));
    const invoice = await invoicePeriod(work, current, plan, period, now, customer);
    if (invoice) invoices.push(invoice);
    if (current.status === 'IN_TRIAL') {
      current = await transitionSubscription(work, current, 'ACTIVE', due, { reason: 'trial_ended' });
    }
    current = await work.trx
      .updateTable('subscriptions')
      .set({
        current_period_index: period.index,
        current_period_start: period.start,
        current_period_end: period.end,
        next_renewal_at: nextRenewalAt(period.end, current.cancel_at),
        updated_at: now,
      })
      .where('id', '=', current.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await subscriptionActivity(work, current, 'subscription.renewed', {
      period_index: period.index,
      period_start: period.start,
      period_end: period.end,
      invoice: invoice?.id,
    });
  }
  return done({ subscription: current, invoices });
}

/**
 * Makes the add-on charge pending on locked `subscription` since a payment reactivated it
 * (`add_on_charge_at` ≤ `now`: reinstate.ts `resumeSuspended`), whatever its status now: the add-on
 * units set while it was suspended, from that moment to the end of the period holding it, on a
 * `subscription_update` invoice (add-on-proration.ts `reactivationAddOnCharge`,
 * `invoiceAddOnProration`; none when nothing is owed, e.g. a CANCELLED subscription), and clears the
 * pending charge, in the caller's unit of work (under the subscription's lock: made once). The
 * renewal (`renewLocked`) makes it first; a cancellation by hand makes it once it has decided
 * (cancellation.ts `withPendingCharge`), dunning's final action and every other change by hand (a
 * change, a suspension or reactivation, an add-on or coupon set, a trial's end moved, a scheduled
 * change cancelled) first too, each in a savepoint (`'try'`): when making it fails they happen
 * without it and it stays pending for the sweep (a CANCELLED one charged what its cancellation left
 * owed: add-on-proration.ts `servedTo`).
 * Lock order: the subscription,
 * then the customer (`customer`, read once by the caller when given).
 * @returns the subscription as it is now and the invoice made (none when nothing was pending or owed)
 */
async function chargePendingAddOns(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  plan: Plan,
  now: Date,
  customer: OpenCustomer = openCustomerOnce(work.trx, subscription.customer_id),
): Promise<Renewal> {
  if (!subscription.add_on_charge_at || subscription.add_on_charge_at > now) {
    return { subscription, invoices: [] };
  }
  // Taxed by the plan of the period holding its moment, whatever changes were scheduled since.
  const then = await planInForceAt(work.trx, subscription, plan, subscription.add_on_charge_at);
  const charged = await reactivationAddOnCharge(work.trx, subscription, then, customer);
  const invoice = charged && (await invoiceAddOnProration(work, subscription, then, charged, now, customer));
  const cleared = await work.trx
    .updateTable('subscriptions')
    .set({ add_on_charge_at: null, add_on_charge_suspension: null, updated_at: now })
    .where('id', '=', subscription.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return { subscription: cleared, invoices: invoice ? [invoice] : [] };
}

/**
 * Brings a locked subscription's periods up to `now` before something is done to it at `now` (a
 * prorated change, a change scheduled for the next cycle or its cancellation, a cancellation, a
 * suspension, a trial's end moved, an add-on or coupon from the next period on, and the previews of
 * a change or an add-on, rolled back): `renewLocked` with its plan, exactly as the renewal sweep would have done
 * by then, in the caller's unit of work. So whatever the sweep's lag, what follows sees the period
 * that contains `now` (invoiced, `current_period_*` on it) and gives the same money as after a sweep
 * on time: a change on day 10 of a period the sweep has not renewed yet prorates that period, the
 * period's invoice billing the old plan, and an add-on charge pending since a payment's
 * reactivation (`add_on_charge_at`) is made first. Nothing happens when neither its next renewal nor
 * such a charge has come.
 * @param pendingAddOns what to do with that pending charge (`PendingAddOns`, as `renewLocked`):
 * `'make'` (the default), `'leave'` (a cancellation by hand, which makes it once it has decided),
 * `'try'` (dunning's final action and every other change by hand: they go on when making it fails)
 * @returns as `renewLocked` (the subscription unchanged and no invoice when nothing was due); it may
 * end the subscription (CANCELLED at its scheduled cancellation or the end of its term)
 */
export async function renewedUpTo(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  now: Date,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
  pendingAddOns: PendingAddOns = 'make',
): Promise<Renewal> {
  const due = (at: Date | null) => at !== null && at <= now;
  const charge = pendingAddOns !== 'leave' && due(subscription.add_on_charge_at);
  if (!due(subscription.next_renewal_at) && !charge) {
    return { subscription, invoices: [] };
  }
  const plan = await getPlan(work.trx, subscription.plan_id);
  return renewLocked(work, subscription, plan, now, policy, pendingAddOns);
}

/**
 * Ends a locked subscription at its scheduled cancellation `at` (`cancel_at_period_end` or
 * `cancel_at`) or at the end of its fixed term (`termCompleted`: period `repeat` would start at
 * `at`): a final invoice of the usage up to `at` (the last period's, with any not billed yet; none
 * without usage), then CANCELLED at `at`, logged with the reason (`term_completed`, or the one given
 * at scheduling).
 */
async function cancelScheduled(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  plan: Plan,
  at: Date,
  now: Date,
  customer: OpenCustomer,
  termCompleted = false,
): Promise<Renewal> {
  // Up to `at`, and any usage stamped after it that was accepted before the cancellation was scheduled.
  const usageUntil = await finalUsageUntil(work.trx, subscription, at);
  const final = await invoiceUsageUntil(
    work,
    subscription,
    plan,
    usageUntil,
    now,
    'subscription_cycle',
    customer,
  );
  const reason = termCompleted
    ? 'term_completed'
    : subscription.cancel_at_period_end
      ? 'cancel_at_period_end'
      : 'cancel_at';
  const cancelled = await transitionSubscription(work, subscription, 'CANCELLED', at, {
    reason,
    cancel_reason: subscription.cancel_reason,
    final_invoice: final?.id,
  });
  return { subscription: cancelled, invoices: final ? [final] : [] };
}

/**
 * Applies the change scheduled on a locked subscription for its next cycle (BillaBear's change
 * `when: next-cycle`) at `due`, the start of that cycle: the old plan's usage not billed yet is
 * invoiced first at the old plan's prices when the plan changes (`invoiceUsageUntil`, as an
 * immediate change does), then `plan_id`/`quantity` take the scheduled values and the schedule is
 * cleared; logs `subscription.changed` with `scheduled: true`. No proration: the change starts
 * with a whole period.
 * @returns the subscription and the plan it now bills, and the usage invoice (if any)
 */
async function applyScheduledChange(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  plan: Plan,
  due: Date,
  now: Date,
  customer: OpenCustomer,
): Promise<{ subscription: SubscriptionRow; plan: Plan; usageInvoice: InvoiceRow | null }> {
  const planId = subscription.scheduled_plan_id ?? plan.id;
  const quantity = subscription.scheduled_quantity ?? subscription.quantity;
  const newPlan = planId === plan.id ? plan : await getPlan(work.trx, planId);
  const usageInvoice =
    newPlan.id === plan.id
      ? null
      : await invoiceUsageUntil(work, subscription, plan, due, now, 'subscription_update', customer);
  const updated = await work.trx
    .updateTable('subscriptions')
    .set({
      plan_id: newPlan.id,
      quantity,
      scheduled_plan_id: null,
      scheduled_quantity: null,
      updated_at: now,
    })
    .where('id', '=', subscription.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await subscriptionActivity(work, subscription, 'subscription.changed', {
    scheduled: true,
    at: due,
    from_plan: plan.id,
    to_plan: newPlan.id,
    from_quantity: subscription.quantity,
    to_quantity: quantity,
    usage_invoice: usageInvoice?.id,
  });
  return { subscription: updated, plan: newPlan, usageInvoice };
}

/**
 * Locks subscription `id` in `work` after joining the ledger's writers. A subscription comes first
 * in the lock order every unit of work keeps: subscription → its invoices (id order: `lockInvoice`,
 * which locks an invoice's subscription before it) → the customer (their credit:
 * `lockCustomerCredit`). So a renewal, cancellation, plan change, trial end, add-on or scheduled
 * change may go on to lock the subscription's invoices and finalize new ones, and a payment or a
 * dunning step on one of its invoices waits here rather than holding the invoice.
 * @param skipLocked true to return null instead of waiting when another transaction holds it
 * @throws NotFoundError when there is no such subscription (and `skipLocked` is false)
 */
export async function lockSubscription(
  work: UnitOfWork,
  id: string,
  skipLocked = false,
): Promise<SubscriptionRow | null> {
  await work.joinLedgerWriters();
  let query = work.trx.selectFrom('subscriptions').selectAll().where('id', '=', id).forUpdate();
  if (skipLocked) query = query.skipLocked();
  const row = await query.executeTakeFirst();
  if (!row && !skipLocked) throw new NotFoundError('subscription', id);
  return row ?? null;
}

/**
 * Renews one subscription up to `now` in its own transaction (see `renewLocked`).
 * @param skipLocked true to do nothing when another unit of work holds it right now (another worker
 * renewing it, a charge or refund of one of its invoices)
 * @throws NotFoundError when there is no subscription `id`
 */
export async function renewSubscription(
  db: Db,
  actor: Actor,
  id: string,
  now: Date,
  skipLocked = false,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
  pendingAddOns: PendingAddOns = 'make',
): Promise<Renewal | null> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const subscription = await lockSubscription(work, id, skipLocked);
    if (!subscription) return null;
    const plan = await getPlan(work.trx, subscription.plan_id);
    return renewLocked(work, subscription, plan, now, policy, pendingAddOns);
  });
}

/**
 * The renewal sweep's second try of subscription `id` after its renewal failed with `error`: when it
 * has an add-on charge pending since a payment's reactivation (`add_on_charge_at` ≤ `now`), which
 * the renewal makes first in the same unit of work, its periods are renewed without that charge
 * (`renewLocked` with `pendingAddOns` `'leave'`), so a charge that keeps failing does not stop the
 * plan's billing: each period started by `now` is invoiced once, and the charge stays pending (the
 * next sweep tries it again, for the period holding its moment, and reports it while it fails).
 * @returns that renewal, or null when there is no such charge (or another unit holds it now): the
 * failure was the periods' own, left for the next run
 */
async function renewWithoutPendingAddOns(
  db: Db,
  actor: Actor,
  id: string,
  now: Date,
  policy: RenewalPolicy,
): Promise<Renewal | null> {
  const row = await db
    .selectFrom('subscriptions')
    .select('add_on_charge_at')
    .where('id', '=', id)
    .executeTakeFirst();
  if (!row?.add_on_charge_at || row.add_on_charge_at > now) return null;
  return renewSubscription(db, actor, id, now, true, policy, 'leave');
}

/** The result of a renewal sweep: invoices created, and subscriptions that failed (left for the next run). */
export interface RenewalSweep {
  invoices: number;
  failures: { subscription: string; error: string }[];
}

/**
 * Renews every billed subscription whose next period has started by `now` (of a customer not closed:
 * billing/customer-status.ts), oldest due first, in
 * pages of `pageSize` read by keyset (so a subscription that fails is passed, not retried forever),
 * each in its own transaction, `concurrency` at a time. One that another unit of work holds (another
 * worker renewing it, or a charge, refund or webhook on one of its invoices: `lockInvoice` locks
 * the subscription first) is skipped (`FOR UPDATE SKIP LOCKED`) until the next run; one that fails
 * is reported (once a sweep) and left for the next run. One whose add-on charge pending since a
 * payment's reactivation fails (made first, in the same unit of work as its periods) is renewed
 * again without it (`renewWithoutPendingAddOns`): its periods are invoiced, each once, and the charge
 * stays pending, tried by every sweep and reported while it fails, and made, for the period holding
 * its moment, once what fails is mended. A cancellation by hand, dunning's final action, a usage
 * limit's suspension and every other change by hand that renews it first (a change, a suspension or
 * reactivation, an add-on or coupon set and the add-on's preview, a trial's end moved, a scheduled
 * change cancelled) go on without it too (`'try'`;
 * add-on-proration.ts `refusePendingAddOnChange` refuses the add-on quantities that would change
 * what the charge owes).
 * `billSuspended` (the `BILL_SUSPENDED_SUBSCRIPTIONS` setting) renews SUSPENDED ones too; without
 * it, a SUSPENDED one is only looked at when its scheduled cancellation (`cancel_at`) has come. One
 * with an add-on charge pending since a payment reactivated it (`add_on_charge_at` ≤ `now`) is
 * renewed whatever its status, to make that charge (`renewLocked`), in a pass of its own before the
 * renewals (`sweepDue`: each pass reads its own index in keyset order).
 */
export async function renewDueSubscriptions(
  db: Db,
  actor: Actor,
  now: Date,
  {
    pageSize = 500,
    concurrency = 4,
    billSuspended = false,
    stopping,
  }: { pageSize?: number; concurrency?: number; billSuspended?: boolean; stopping?: AbortSignal } = {},
): Promise<RenewalSweep> {
  const policy: RenewalPolicy = { billSuspended };
  const sweep: RenewalSweep = { invoices: 0, failures: [] };
  const failed = new Set<string>();
  const renew = async (id: string) => {
    // Reported once a sweep: one whose pending add-on charge fails is in both passes' pages.
    if (failed.has(id)) return;
    try {
      const renewal = await renewSubscription(db, actor, id, now, true, policy);
      sweep.invoices += renewal?.invoices.length ?? 0;
    } catch (error) {
      failed.add(id);
      sweep.failures.push({
        subscription: id,
        error: error instanceof Error ? error.message : String(error),
      });
      // A pending add-on charge that fails does not stop the periods: renewed without it.
      const periods = await renewWithoutPendingAddOns(db, actor, id, now, policy).catch(() => null);
      sweep.invoices += periods?.invoices.length ?? 0;
    }
  };
  const pages = { now, pageSize, concurrency, stopping };
  // Add-on charges pending since a payment's reactivation, whatever the status (a partial index).
  await sweepDue(db, 'add_on_charge_at', (eb) => eb.lit(true), renew, pages);
  await sweepDue(
    db,
    'next_renewal_at',
    (eb) =>
      eb.or([
        eb('status', 'in', renewableStatuses(policy)),
        // Not billed, but cancelled at its date (its next_renewal_at is at most its cancel_at).
        eb.and([eb('status', '=', 'SUSPENDED'), eb('cancel_at', '<=', now)]),
      ]),
    renew,
    pages,
  );
  return sweep;
}

/**
 * Calls `renew` for each subscription whose `column` (`next_renewal_at`, or `add_on_charge_at`) is
 * at or before `now`, matching `where`, of a customer not closed (billing/customer-status.ts),
 * oldest due first, in pages of `pageSize` read by keyset on (`column`, id) so that its index
 * serves each page and one that fails is passed, not retried forever; `concurrency` at a time;
 * none after `stopping` aborts.
 */
async function sweepDue(
  db: Db,
  column: 'next_renewal_at' | 'add_on_charge_at',
  where: (eb: ExpressionBuilder<Database, 'subscriptions'>) => Expression<SqlBool>,
  renew: (id: string) => Promise<void>,
  {
    now,
    pageSize,
    concurrency,
    stopping,
  }: { now: Date; pageSize: number; concurrency: number; stopping?: AbortSignal },
): Promise<void> {
  let after: { at: Date; id: string } | undefined;
  while (!stopping?.aborted) {
    let query = db
      .selectFrom('subscriptions')
      .select((eb) => ['id', eb.ref(column).$notNull().as('due_at')])
      .where(column, '<=', now)
      .where(where)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('customers')
              .select('customers.id')
              .whereRef('customers.id', '=', 'subscriptions.customer_id')
              .where('customers.closed_at', 'is not', null),
          ),
        ),
      );
    if (after) {
      const { at, id } = after;
      query = query.where((eb) => eb(eb.refTuple(column, 'id'), '>', eb.tuple(at, id)));
    }
    const page = await query.orderBy(column).orderBy('id').limit(pageSize).execute();
    await eachLimited(page, concurrency, ({ id }) => renew(id), stopping);
    const last = page.at(-1);
    if (page.length < pageSize || !last) return;
    after = { at: last.due_at, id: last.id };
  }
}
