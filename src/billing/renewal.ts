import type { Kysely } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
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
import {
  couponDiscounts,
  couponInEffect,
  type RedemptionWithCoupon,
  subscriptionRedemptions,
} from './coupons.ts';
import { eachLimited } from './each-limited.ts';
import { finalizeLocked, insertInvoice, invoiceAmounts, type NewLine } from './invoices.ts';
import { type Cadence, type Period, periodAt, periodIndexAt } from './periods.ts';
import { baseAmount, getPlan, type Plan } from './plans.ts';
import { transitionSubscription } from './subscription-status.ts';
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

/** Statuses that are billed. SUSPENDED subscriptions get no invoices; CANCELLED ones are over. */
export const RENEWABLE: readonly SubscriptionStatus[] = ['IN_TRIAL', 'ACTIVE', 'PAST_DUE'];

/** The periods of a subscription on its plan's interval. */
export function cadenceOf(
  subscription: Pick<SubscriptionRow, 'billing_anchor'>,
  plan: Pick<Plan, 'interval' | 'interval_count'>,
): Cadence {
  return { anchor: subscription.billing_anchor, interval: plan.interval, intervalCount: plan.interval_count };
}

const day = (date: Date) => date.toISOString().slice(0, 10);

/**
 * The recurring lines of a period, without touching the database: the plan's base price for the
 * quantity (or the subscription's `amount_override`) at the plan's tax rate, then one CREDIT line per
 * coupon in effect (percent of the base, or amount off, all together capped at the base).
 * @returns the lines and the redemptions that counted this period
 */
export function recurringLines(
  plan: Plan,
  subscription: Pick<SubscriptionRow, 'quantity' | 'amount_override'>,
  period: Pick<Period, 'start' | 'end'>,
  redemptions: readonly RedemptionWithCoupon[],
): { lines: NewLine[]; applied: RedemptionWithCoupon[] } {
  const base = baseAmount(plan, subscription.quantity, subscription.amount_override);
  const common = {
    taxRatePpm: plan.tax_rate_ppm,
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
  const applied = redemptions.filter((r) => couponInEffect(r.coupon, r.periods_applied));
  const discounts = couponDiscounts(
    applied.map((r) => r.coupon),
    base,
  );
  for (const [i, redemption] of applied.entries()) {
    const discount = discounts[i]!;
    if (discount > 0n) {
      lines.push({
        ...common,
        description: `Coupon ${redemption.coupon.code}${redemption.coupon.name ? ` (${redemption.coupon.name})` : ''}`,
        type: 'CREDIT',
        quantity: 1,
        amount: discount,
        couponId: redemption.coupon.id,
      });
    }
  }
  return { lines, applied };
}

/**
 * The windows of a subscription's usage not billed yet, from `usage_billed_until` (or `start_at`) up
 * to `until`: the trial's part as one window, only when `plan.bill_trial_usage` (free otherwise),
 * then one window per billing period (part) so that each period's usage is aggregated and priced on
 * its own. Empty when `until` is not later than what is billed.
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
 * Invoices a locked subscription's usage not billed yet up to `until` (`billUsageUntil`) on an
 * invoice of its own: the final invoice of a cancellation, or the old plan's usage at a plan change.
 * The invoice carries no period index (it is not a period's invoice), covers [what was billed,
 * `until`), is finalized at once and charged by the scheduler from `now`.
 * @returns the invoice, or null when there is no usage to bill (no invoice is made)
 */
export async function invoiceUsageUntil(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  plan: Plan,
  until: Date,
  now: Date,
  billingReason: BillingReason,
): Promise<InvoiceRow | null> {
  const from = subscription.usage_billed_until ?? subscription.start_at;
  const lines = await billUsageUntil(work.trx, subscription, plan, until);
  if (lines.length === 0) return null;
  const invoice = await insertInvoice(work, {
    customerId: subscription.customer_id,
    currency: plan.currency,
    lines,
    subscriptionId: subscription.id,
    periodStart: from,
    periodEnd: until,
    billingReason,
    chargeAt: invoiceAmounts(lines).total > 0n ? now : undefined,
  });
  return finalizeLocked(work, invoice, now);
}

/**
 * The lines of one period's invoice inside `trx`: the recurring lines (base price, coupon credits;
 * each coupon in effect counts one more `periods_applied`). The customer's credit (a downgrade's
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
  const redemptions = (await subscriptionRedemptions(trx, subscription.id)).filter(
    (r) => r.removed_at === null,
  );
  const { lines, applied } = recurringLines(plan, subscription, period, redemptions);
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
 * something is due.
 * @returns the new invoice, or null when the period was invoiced already
 */
async function invoicePeriod(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  plan: Plan,
  period: Period,
  now: Date,
): Promise<InvoiceRow | null> {
  const existing = await work.trx
    .selectFrom('invoices')
    .select('id')
    .where('subscription_id', '=', subscription.id)
    .where('period_index', '=', period.index)
    .executeTakeFirst();
  if (existing) return null;
  const lines = await periodLines(work.trx, subscription, plan, period);
  const invoice = await insertInvoice(work, {
    customerId: subscription.customer_id,
    currency: plan.currency,
    lines,
    subscriptionId: subscription.id,
    periodIndex: period.index,
    periodStart: period.start,
    periodEnd: period.end,
    billingReason: period.index === 0 ? 'subscription_create' : 'subscription_cycle',
    // A zero invoice is PAID at once: nothing for collection to charge.
    chargeAt: invoiceAmounts(lines).total > 0n ? now : undefined,
  });
  return finalizeLocked(work, invoice, now);
}

/** What a renewal did: the subscription as it is now and the invoices it created. */
export interface Renewal {
  subscription: SubscriptionRow;
  invoices: InvoiceRow[];
}

/**
 * Renews a subscription locked in `work` (which joined the ledger's writers first) up to `now`:
 * while its next period has started, either cancels it at that boundary (`cancel_at_period_end`) or
 * invoices the period (once), ends a trial (IN_TRIAL → ACTIVE), advances `current_period_*` and
 * `next_renewal_at`, and logs `subscription.renewed`. After downtime every missed period is
 * invoiced, each once.
 */
export async function renewLocked(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  plan: Plan,
  now: Date,
): Promise<Renewal> {
  let current = subscription;
  const invoices: InvoiceRow[] = [];
  const cadence = cadenceOf(current, plan);
  while (RENEWABLE.includes(current.status) && current.next_renewal_at && current.next_renewal_at <= now) {
    const due = current.next_renewal_at;
    if (current.cancel_at_period_end) {
      // The final invoice: the usage up to the end (the last period's, with any not billed yet).
      const final = await invoiceUsageUntil(work, current, plan, due, now, 'subscription_cycle');
      if (final) invoices.push(final);
      current = await transitionSubscription(work, current, 'CANCELLED', due, {
        reason: 'cancel_at_period_end',
        final_invoice: final?.id,
      });
      break;
    }
    const period = periodAt(cadence, periodIndexAt(cadence, due));
    const invoice = await invoicePeriod(work, current, plan, period, now);
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
        next_renewal_at: period.end,
        updated_at: now,
      })
      .where('id', '=', current.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordActivity(work, {
      resourceType: 'subscription',
      resourceId: current.id,
      action: 'subscription.renewed',
      customerId: current.customer_id,
      data: {
        period_index: period.index,
        period_start: period.start,
        period_end: period.end,
        invoice: invoice?.id,
      },
    });
  }
  return { subscription: current, invoices };
}

/**
 * Locks subscription `id` in `work` after joining the ledger's writers.
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
 * @param skipLocked true to do nothing when another worker is renewing it right now
 * @throws NotFoundError when there is no subscription `id`
 */
export async function renewSubscription(
  db: Db,
  actor: Actor,
  id: string,
  now: Date,
  skipLocked = false,
): Promise<Renewal | null> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const subscription = await lockSubscription(work, id, skipLocked);
    if (!subscription) return null;
    return renewLocked(work, subscription, await getPlan(work.trx, subscription.plan_id), now);
  });
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
 * each in its own transaction, `concurrency` at a time. One that is being renewed by another worker is
 * skipped (`FOR UPDATE SKIP LOCKED`); one that fails is reported and left for the next run.
 */
export async function renewDueSubscriptions(
  db: Db,
  actor: Actor,
  now: Date,
  { pageSize = 500, concurrency = 4 }: { pageSize?: number; concurrency?: number } = {},
): Promise<RenewalSweep> {
  const sweep: RenewalSweep = { invoices: 0, failures: [] };
  let after: { at: Date; id: string } | undefined;
  for (;;) {
    let query = db
      .selectFrom('subscriptions')
      .select(['id', 'next_renewal_at'])
      .where('status', 'in', RENEWABLE)
      .where('next_renewal_at', '<=', now)
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
      query = query.where((eb) => eb(eb.refTuple('next_renewal_at', 'id'), '>', eb.tuple(at, id)));
    }
    const page = await query.orderBy('next_renewal_at').orderBy('id').limit(pageSize).execute();
    await eachLimited(page, concurrency, async ({ id }) => {
      try {
        const renewal = await renewSubscription(db, actor, id, now, true);
        sweep.invoices += renewal?.invoices.length ?? 0;
      } catch (error) {
        sweep.failures.push({
          subscription: id,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    });
    const last = page.at(-1);
    if (page.length < pageSize || !last?.next_renewal_at) break;
    after = { at: last.next_renewal_at, id: last.id };
  }
  return sweep;
}
