import type { Kysely } from 'kysely';
import type { Db } from '../db/database.ts';
import type { CouponRow, Database, InvoiceRow, SubscriptionRow } from '../db/schema.ts';
import { ConflictError, ValidationError } from '../errors.ts';
import { postEntry } from '../ledger/journal.ts';
import { prorationCredited } from '../ledger/movements.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { couponAppliesTo, couponDiscounts } from './coupons.ts';
import { openCustomerOnce } from './customer-status.ts';
import { finalizeLocked, insertInvoice, type NewLine } from './invoices.ts';
import { baseAmount, getPlan, type Plan } from './plans.ts';
import { type InvoicePreview, pricedLines } from './preview.ts';
import { invoiceUsageUntil, lockSubscription, subscriptionInvoiceDetails } from './renewal.ts';
import { scheduleChange } from './scheduled-change.ts';
import { subscriptionActivity } from './subscription-status.ts';
import { taxLocationOf, withCustomerTaxes, withTaxesAt } from './tax-rates.ts';
import { refuseChangeInvoicedAhead } from './terms.ts';

/**
 * Changing a subscription's plan or quantity mid-period, with proration (as Billby and Stripe do):
 * the unused part of the current period is credited at the old amount and the rest of the period
 * charged at the new amount, both by whole seconds. Coupons apply to proration lines as they do to
 * full periods (PRODUCT §11): the coupons that discounted the current period (the coupon lines of
 * its invoice) discount both sides, so the credit is what the customer actually paid for the unused
 * time and the charge what the new price costs them after the coupon. A net charge, or a change
 * that only raises the tax (subtotal 0, tax above 0: the tax is billed), becomes a
 * `subscription_update` invoice, finalized and charged at once (`charge_at = now`). A net credit (a
 * downgrade, or a change that only lowers the tax) is not paid back: with its tax it becomes the
 * customer's credit (debit revenue for the net credit and tax payable for its tax, credit the
 * customer's credit account), which their next
 * invoices use at finalization, whatever subscription they bill (billing/customer-credit.ts). In a
 * trial or before a future start there is no period to prorate: the change applies to the first
 * invoice. The new plan must bill in the same currency and interval (periods stay on the same
 * anchor); `amount_override` is not prorated (an override stays the period's amount).
 * How the period is prorated is the change's `proration` (`ProrationBehavior`); a change `when:
 * next_cycle` is scheduled instead (scheduled-change.ts).
 * A plan change first invoices the usage not billed yet at the old plan's metered prices
 * (`invoiceUsageUntil`, its own `subscription_update` invoice; not part of a preview): usage is
 * priced with the plan active when it happened, and usage before the change can no longer be
 * recorded.
 */

/**
 * `amount × remaining / period` rounded half up, bigint (minor units).
 * @param amount minor units ≥ 0
 * @param remainingSeconds seconds of the period still to come, 0 … periodSeconds
 * @param periodSeconds the period's length in seconds, > 0
 */
export function prorate(amount: bigint, remainingSeconds: bigint, periodSeconds: bigint): bigint {
  return (2n * amount * remainingSeconds + periodSeconds) / (2n * periodSeconds);
}

/**
 * How a change mid-period is prorated (Billby's `prorate_up`/`prorate_down` schemes, seed 001
 * "Update a subscription"):
 * - `prorate_now` (UP_PRORATE_NOW, DOWN_PRORATE_NOW; the default): the unused time credited at the
 *   old amount, the rest charged at the new, invoiced and charged now;
 * - `prorate_at_renewal` (UP_PRORATE_AT_RENEWAL, DOWN_PRORATE_AT_RENEWAL): the same amounts, the
 *   invoice finalized now but charged at the end of the period (`charge_at` = `current_period_end`);
 *   a net credit is the customer's credit, used by the renewal invoice as with `prorate_now`;
 * - `full` (UP_FULL_NOW): the whole period's difference (old credited, new charged for the full
 *   period, not only the remaining time), invoiced now;
 * - `none` (UP_NO_COST, DOWN_NO_PRORATE): no proration lines; the new plan or quantity bills from the
 *   next period.
 * UP_FULL_AT_RENEWAL is not offered (`full` with `prorate_at_renewal`'s charge date is not kept apart).
 */
export type ProrationBehavior = 'prorate_now' | 'prorate_at_renewal' | 'full' | 'none';

/**
 * A change to make: a plan id and/or a quantity; `when` now (default) or at the next cycle
 * (scheduled-change.ts: applied by the renewal, no proration); `proration` for a change now.
 */
export interface SubscriptionChangeInput {
  planId?: string;
  quantity?: number;
  when?: 'now' | 'next_cycle';
  proration?: ProrationBehavior;
}

/** What a change did (or, previewed, would do). */
export interface ChangeResult {
  subscription: SubscriptionRow;
  proration: InvoicePreview;
  /** The `subscription_update` invoice of a net charge. */
  invoice: InvoiceRow | null;
  /** Net credit before tax (minor units); the customer's credit grows by it plus its tax. */
  credited: bigint;
  /** The invoice of the old plan's usage not billed yet at a plan change (none when there is none). */
  usageInvoice: InvoiceRow | null;
}

/** The whole seconds from `from` to `to` (0 when `to` is not later): how proration measures a period. */
export function secondsBetween(from: Date, to: Date): bigint {
  return BigInt(Math.max(0, Math.floor((to.getTime() - from.getTime()) / 1000)));
}

/**
 * Refuses a prorated change of a subscription whose scheduled cancellation already gave back money
 * of the current period (a `full` or `prorate` refund, in cash or credit, made when it was
 * scheduled: billing/cancellation.ts): the change's credit for the unused time would pay it twice.
 * A change with proration `none`, or at the next cycle, is still allowed.
 * @throws ConflictError `cancellation_scheduled`
 */
async function refuseSecondCredit(work: UnitOfWork, subscription: SubscriptionRow): Promise<void> {
  if (!subscription.cancel_at && !subscription.cancel_at_period_end) return;
  const given = await work.trx
    .selectFrom('invoices')
    .select('id')
    .where('subscription_id', '=', subscription.id)
    .where('period_index', '=', subscription.current_period_index)
    .where((eb) => eb.or([eb('amount_refunded', '>', 0n), eb('credit_returned', '>', 0n)]))
    .executeTakeFirst();
  if (given) {
    throw new ConflictError(
      'cancellation_scheduled',
      `subscription ${subscription.id} has a cancellation scheduled and invoice ${given.id} of this period gave money back: a prorated change would credit the unused time again; change it with proration none`,
    );
  }
}

/**
 * Refuses a prorated change whose lines credit more than they charge before tax but whose tax rises
 * more than that (an untaxed plan to a cheaper taxed one: −500 unused, +450 remaining at 20%, so −50
 * net, +90 tax, 40 owed). An invoice cannot carry a negative subtotal, and booking the 40 as customer
 * credit would leave a debt no invoice collects; the change is refused and changes nothing. With
 * proration `none`, or at the next cycle, the change is still allowed.
 * @throws ValidationError (field `proration`)
 */
function refuseDebtOnCredit(proration: InvoicePreview): void {
  if (proration.subtotal >= 0n || proration.total <= 0n) return;
  throw new ValidationError('proration owes tax on a net credit', {
    proration: `this change credits ${-proration.subtotal} ${proration.currency} before tax but raises the tax by ${proration.tax}, so ${proration.total} (minor units) would be owed on a negative subtotal, which billhook cannot invoice: change with proration none, or at the next cycle`,
  });
}

/**
 * Changes plan and/or quantity of subscription `id` at `now`, prorating the current period; with
 * `preview` it computes the same and writes nothing. Logs `subscription.changed`.
 * @throws NotFoundError subscription or plan; ConflictError `subscription_not_changeable`
 * (SUSPENDED, CANCELLED), `plan_inactive`, `cancellation_scheduled` (a prorated change while a
 * cancellation is scheduled whose refund gave back money of this period: its unused time would be
 * credited twice), `periods_invoiced_ahead` (a settled term: `refuseChangeInvoicedAhead`, now or at
 * the next cycle, previewed too); ValidationError (field `plan`) for another currency or
 * interval, or no change at all; (field `proration`) for a net credit whose tax rises more
 * (`refuseDebtOnCredit`)
 */
export async function changeSubscription(
  db: Db,
  actor: Actor,
  id: string,
  change: SubscriptionChangeInput,
  now: Date,
  preview: boolean,
): Promise<ChangeResult> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const subscription = (await lockSubscription(work, id))!;
    if (subscription.status === 'SUSPENDED' || subscription.status === 'CANCELLED') {
      throw new ConflictError(
        'subscription_not_changeable',
        `subscription ${id} is ${subscription.status}; only a live subscription can change`,
      );
    }
    const oldPlan = await getPlan(work.trx, subscription.plan_id);
    const newPlan = change.planId ? await getPlan(work.trx, change.planId) : oldPlan;
    checkTarget(oldPlan, newPlan, change.planId !== undefined);
    const quantity = change.quantity ?? subscription.quantity;
    if (newPlan.id === oldPlan.id && quantity === subscription.quantity) {
      throw new ValidationError('nothing to change', {
        plan: 'the subscription already has this plan and quantity',
      });
    }
    await refuseChangeInvoicedAhead(work.trx, subscription);
    if (change.when === 'next_cycle') {
      return scheduleChange(work, subscription, newPlan, quantity, now, preview);
    }
    const behavior = change.proration ?? 'prorate_now';
    const start = subscription.current_period_start;
    const end = subscription.current_period_end;
    const inPeriod = subscription.current_period_index !== null && start && end && start <= now && now < end;
    const lines: NewLine[] = [];
    if (inPeriod && behavior !== 'none') {
      await refuseSecondCredit(work, subscription);
      const period = secondsBetween(start, end);
      const time = {
        remaining: behavior === 'full' ? period : secondsBetween(now, end),
        period,
      };
      const coupons = await periodCoupons(work.trx, subscription);
      const common = { quantity: 1, periodStart: now, periodEnd: end };
      lines.push(
        ...prorationLines(
          {
            ...common,
            type: 'CREDIT',
            taxRatePpm: oldPlan.tax_rate_ppm,
            taxInclusive: oldPlan.tax_inclusive,
            planId: oldPlan.id,
          },
          `Unused time on ${oldPlan.name} × ${subscription.quantity}`,
          baseAmount(oldPlan, subscription.quantity, subscription.amount_override),
          coupons,
          time,
        ),
        ...prorationLines(
          {
            ...common,
            type: 'CHARGE',
            taxRatePpm: newPlan.tax_rate_ppm,
            taxInclusive: newPlan.tax_inclusive,
            planId: newPlan.id,
          },
          `Remaining time on ${newPlan.name} × ${quantity}`,
          baseAmount(newPlan, quantity, subscription.amount_override),
          // A coupon restricted to products discounts the new plan only when it is one of them.
          coupons.filter((coupon) => couponAppliesTo(coupon, newPlan.product_id)),
          time,
        ),
      );
    }
    // Taxed once: the preview prices these lines and the invoice stores them as they are. A change
    // (not a preview) reads its customer under invoicing's lock before pricing (`openCustomerOnce`),
    // so the lines' taxes and the invoices' number and terms come from the same read of the customer.
    const customer = preview ? undefined : openCustomerOnce(work.trx, subscription.customer_id);
    const taxed = customer
      ? await withTaxesAt(work.trx, taxLocationOf(await customer()), lines)
      : await withCustomerTaxes(work.trx, subscription.customer_id, lines);
    const proration: InvoicePreview = {
      customerId: subscription.customer_id,
      currency: newPlan.currency,
      billingReason: 'subscription_update',
      invoiceAt: now,
      periodStart: now,
      periodEnd: end && inPeriod ? end : now,
      ...pricedLines(taxed),
    };
    refuseDebtOnCredit(proration);
    const credited = proration.subtotal < 0n ? -proration.subtotal : 0n;
    if (preview) return { subscription, proration, invoice: null, credited, usageInvoice: null };

    // Usage so far was the old plan's: billed now at its metered prices (PRODUCT §11), on its own
    // invoice; only later usage is priced with the new plan.
    const usageInvoice =
      newPlan.id === oldPlan.id
        ? null
        : await invoiceUsageUntil(work, subscription, oldPlan, now, now, 'subscription_update', customer);

    let invoice: InvoiceRow | null = null;
    // A change that only raises the tax (subtotal 0) bills the tax.
    if (proration.subtotal >= 0n && proration.total > 0n) {
      const inserted = await insertInvoice(
        work,
        {
          customerId: subscription.customer_id,
          currency: newPlan.currency,
          lines: taxed,
          subscriptionId: subscription.id,
          periodStart: proration.periodStart,
          periodEnd: proration.periodEnd,
          billingReason: 'subscription_update',
          details: subscriptionInvoiceDetails(subscription),
          chargeAt: behavior === 'prorate_at_renewal' && end ? end : now,
        },
        { customer, taxed: true },
      );
      invoice = await finalizeLocked(work, inserted, now, customer);
    }
    const updated = await work.trx
      .updateTable('subscriptions')
      .set({ plan_id: newPlan.id, quantity, updated_at: now })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    // A change not invoiced (a net credit, or a change of tax alone that lowers it) moves its lines'
    // subtotal out of revenue and its tax out of tax payable into the customer's credit (`total`,
    // negative: a credit), which their next invoices use.
    if (!invoice && (proration.subtotal !== 0n || proration.tax !== 0n)) {
      await postEntry(
        work,
        prorationCredited({
          subscriptionId: id,
          customerId: subscription.customer_id,
          currency: newPlan.currency,
          subtotal: proration.subtotal,
          tax: proration.tax,
          total: proration.total,
          at: now,
          from: { planId: oldPlan.id, quantity: subscription.quantity },
          to: { planId: newPlan.id, quantity },
        }),
      );
    }
    await subscriptionActivity(work, subscription, 'subscription.changed', {
      from_plan: oldPlan.id,
      to_plan: newPlan.id,
      from_quantity: subscription.quantity,
      to_quantity: quantity,
      proration: behavior,
      invoice: invoice?.id,
      usage_invoice: usageInvoice?.id,
      credited,
    });
    return { subscription: updated, proration, invoice, credited, usageInvoice };
  });
}

/**
 * The coupons that discounted the plan in the current period of `subscription`: those with a coupon
 * line on the period's invoice (not an add-on's), in the order of their lines (a coupon redeemed later starts with the next period).
 */
async function periodCoupons(trx: Kysely<Database>, subscription: SubscriptionRow): Promise<CouponRow[]> {
  if (subscription.current_period_index === null) return [];
  const rows = await trx
    .selectFrom('invoice_lines')
    .innerJoin('invoices', 'invoices.id', 'invoice_lines.invoice_id')
    .innerJoin('coupons', 'coupons.id', 'invoice_lines.coupon_id')
    .selectAll('coupons')
    .where('invoices.subscription_id', '=', subscription.id)
    .where('invoices.period_index', '=', subscription.current_period_index)
    // An add-on's coupon discounted its add-on's line, not the plan's.
    .where('invoice_lines.add_on_id', 'is', null)
    .orderBy('invoice_lines.position')
    .execute();
  return rows.filter((row, i) => rows.findIndex((r) => r.id === row.id) === i);
}

/**
 * One side of a change: a line of `line.type` for `time.remaining` seconds of a period of `base`
 * (a full period's amount, minor units), then one line of the other type per coupon of `coupons` that
 * discounts it, so that the side nets to the discounted price for that time, `prorate(base −
 * discounts)`: each coupon line is what its discount takes off (prorated the same way). Nothing when
 * the time is worth 0.
 */
function prorationLines(
  line: Omit<NewLine, 'description' | 'amount'>,
  description: string,
  base: bigint,
  coupons: readonly CouponRow[],
  time: { remaining: bigint; period: bigint },
): NewLine[] {
  const gross = prorate(base, time.remaining, time.period);
  if (gross === 0n) return [];
  const lines: NewLine[] = [{ ...line, description, amount: gross }];
  const discounts = couponDiscounts(coupons, base);
  let paid = base;
  let net = gross;
  for (const [i, coupon] of coupons.entries()) {
    paid -= discounts[i]!;
    const after = prorate(paid, time.remaining, time.period);
    if (net > after) {
      lines.push({
        ...line,
        description: `Coupon ${coupon.code} on ${description.charAt(0).toLowerCase()}${description.slice(1)}`,
        type: line.type === 'CHARGE' ? 'CREDIT' : 'CHARGE',
        amount: net - after,
        couponId: coupon.id,
      });
    }
    net = after;
  }
  return lines;
}

function checkTarget(oldPlan: Plan, newPlan: Plan, planGiven: boolean): void {
  if (!planGiven) return;
  if (!newPlan.active) throw new ConflictError('plan_inactive', `plan ${newPlan.id} is not active`);
  if (newPlan.currency !== oldPlan.currency) {
    throw new ValidationError('another currency', {
      plan: `plan ${newPlan.id} bills in ${newPlan.currency}, not ${oldPlan.currency}`,
    });
  }
  if (newPlan.interval !== oldPlan.interval || newPlan.interval_count !== oldPlan.interval_count) {
    throw new ValidationError('another interval', {
      plan: `plan ${newPlan.id} bills every ${newPlan.interval_count} ${newPlan.interval}; the subscription every ${oldPlan.interval_count} ${oldPlan.interval}`,
    });
  }
}
