import type { Kysely } from 'kysely';
import type { Database, SubscriptionRow } from '../db/schema.ts';
import { ValidationError } from '../errors.ts';
import { MAX_MINOR_UNITS } from '../money/amount.ts';
import type { RedemptionWithCoupon } from './coupons.ts';
import { lineAmount, lineAmounts, type NewLine } from './invoices.ts';
import { type Period, periodAt, periodIndexAt } from './periods.ts';
import { getPlan, type Plan } from './plans.ts';
import {
  cadenceOf,
  type RecurringState,
  subscriptionRecurringLines,
  termCompletedAt,
  unbilledUsageWindows,
  usagePeriodAt,
} from './renewal.ts';
import { withCustomerTaxes } from './tax-rates.ts';
import { usageLines } from './usage.ts';

/**
 * A subscription's `effective_amount`: what its next renewal would charge before usage and tax,
 * minor units of the plan's currency (Billby's `effective_amount`, seed 000):
 * `base − Σ discounts`, where `base` is `amount_override` when set, else the plan's price for the
 * quantity (`baseAmount`: per unit × quantity, or the tier/volume/stairstep model), and the
 * discounts are those of the coupons still in effect for the next period (each coupon's percent of
 * the base or amount off, together capped at the base: `couponDiscounts`), exactly the recurring
 * lines the renewal would write (`recurringLines`), plus the subscription's add-ons (amount ×
 * quantity, less the coupons redeemed on each) and, when no period is invoiced yet (period 0 after a trial
 * or a future start, or the period a subscription suspended before its first invoice resumes at), the plan's setup fee.
 * A change scheduled for the next cycle counts (its plan and quantity). A tax-inclusive price counts
 * as charged (tax included). Never negative; 0 for a CANCELLED subscription or one cancelling before
 * its next period, or whose fixed term ends there (no next renewal).
 */
export async function effectiveAmount(
  db: Kysely<Database>,
  subscription: SubscriptionRow,
): Promise<{ amount: bigint; currency: string }> {
  const { plan, next } = await nextRenewalLines(db, subscription);
  const amount = next ? next.lines.reduce((sum, line) => sum + lineAmount(line), 0n) : 0n;
  return { amount, currency: plan.currency };
}

/**
 * The recurring lines of `subscription`'s next renewal (`subscriptionRecurringLines`, with `change`
 * applied to its redemptions and add-ons when given), priced with the plan and quantity it will then
 * bill (a change scheduled for the next cycle counts), and that period; `next` is null when there is
 * no next renewal (CANCELLED, cancelling before its next period, or its fixed term ends there).
 * `next.applied` are the redemptions that discount it.
 */
export async function nextRenewalLines(
  db: Kysely<Database>,
  subscription: SubscriptionRow,
  change?: (state: RecurringState) => RecurringState,
): Promise<{ plan: Plan; next: RenewalLines | null }> {
  const plan = await getPlan(db, subscription.scheduled_plan_id ?? subscription.plan_id);
  return { plan, next: await renewalLinesAt(db, subscription, plan, subscription.next_renewal_at, change) };
}

/** A renewal's period and recurring lines, and the redemptions that discount it. */
interface RenewalLines {
  period: Period;
  lines: NewLine[];
  applied: RedemptionWithCoupon[];
}

/**
 * The recurring lines of `subscription`'s renewal at `due` for `plan` × its scheduled quantity (or
 * quantity), or null when nothing renews there: CANCELLED, no `due`, a cancellation at period end or
 * at a date not after `due`, or its fixed term over by `due` (`termCompletedAt`; what is billed there
 * is a final invoice of usage, without fees). `first` as `subscriptionRecurringLines`' (whether it
 * carries the setup fee; read from its invoices when not given). Reads only.
 */
async function renewalLinesAt(
  db: Kysely<Database>,
  subscription: SubscriptionRow,
  plan: Plan,
  due: Date | null,
  change?: (state: RecurringState) => RecurringState,
  first?: boolean,
): Promise<RenewalLines | null> {
  const cadence = cadenceOf(subscription, plan);
  const renews =
    subscription.status !== 'CANCELLED' &&
    due !== null &&
    !subscription.cancel_at_period_end &&
    !(subscription.cancel_at && subscription.cancel_at <= due) &&
    !termCompletedAt(subscription, cadence, due);
  if (!renews) return null;
  const period = periodAt(cadence, Math.max(periodIndexAt(cadence, due), 0));
  const { lines, applied } = await subscriptionRecurringLines(
    db,
    {
      id: subscription.id,
      quantity: subscription.scheduled_quantity ?? subscription.quantity,
      amount_override: subscription.amount_override,
    },
    plan,
    period,
    change,
    first,
  );
  return { period, lines, applied };
}

/**
 * One of the next invoices (`nextInvoicesTotals`), minor units of the plan's currency: `total`
 * (subtotal + tax), `usage` (its metered lines, taxed) and `recurring` (the rest: its fees). When it
 * bills usage, the windows its metered lines cover: from `usageFrom` to `usageUntil`, over
 * `usagePeriods` usage periods (more than one: the periods a suspension left unbilled).
 */
export interface InvoiceTotals {
  recurring: bigint;
  usage: bigint;
  total: bigint;
  usageFrom?: Date;
  usageUntil?: Date;
  usagePeriods?: number;
}

/**
 * What `subscription`'s next invoices bill, as far as can be known now (PRODUCT §11: an invoice is at
 * most 10^15 minor units): the next period's recurring lines for `plan` × `quantity`
 * (`nextRenewalLines`, `change` applied to its redemptions and add-ons), and the usage not billed
 * yet up to `usageUntil` (default: that period's start; `unbilledUsageWindows`, every period a
 * suspension left unbilled included, priced with the plan the subscription has now: usage is priced
 * with the plan active when it happened), each taxed as the customer is. Usage goes on the next
 * period's invoice when that period bills the plan the subscription has now (`periodLines`), else on
 * an invoice of its own (a change to another plan bills the usage before it first:
 * `invoiceUsageUntil`), as it does without a next renewal (a cancellation's final invoice; nothing
 * when `usageUntil` is not given then). Usage of a period from the next period's start on (a renewal
 * not run yet: the sweep behind) is not on that invoice but on the renewal at its period's end: each
 * such period's usage is an invoice of its own, with that renewal's own recurring lines
 * (`renewalLinesAt` at the period's end: never the first invoice, so no setup fee; the ONCE coupons
 * the next renewal uses no more; REPEATING coupons by that period's index; none when the subscription
 * ends there, a cancellation or the end of its fixed term billing the usage alone), so the previous
 * period's usage is never added to it (JPY: March's 6 × 10^14 and April's 5 × 10^14 go on April's
 * and May's invoices, each below 10^15), and the next period's fees are not taken for a later one's
 * (JPY 2,000,000 a month free for March and April: April's usage goes on May's invoice with May's
 * full 2,000,000, not April's 0; a term ending on May 1: April's usage alone, not with 2,000,000); a
 * SUSPENDED subscription's missed periods all go on the invoice resuming it. Reads only.
 * @returns per invoice (each not empty) its total (subtotal + tax; a line beyond 10^15 counted
 * untaxed), its usage and fees, and the windows its usage covers (`InvoiceTotals`), minor units of the
 * plan's currency
 */
export async function nextInvoicesTotals(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  o: {
    plan: Plan;
    quantity: number;
    change?: (state: RecurringState) => RecurringState;
    usageUntil?: Date;
  },
): Promise<InvoiceTotals[]> {
  const { next } = await nextRenewalLines(
    trx,
    { ...subscription, scheduled_plan_id: o.plan.id, scheduled_quantity: o.quantity },
    o.change,
  );
  const current = o.plan.id === subscription.plan_id ? o.plan : await getPlan(trx, subscription.plan_id);
  const until = o.usageUntil ?? next?.period.start;
  const windows = until ? unbilledUsageWindows(subscription, current, until) : [];
  let usage: NewLine[];
  try {
    usage = await usageLines(trx, subscription, current, windows);
  } catch (error) {
    // A quantity beyond a line's (2^31 − 1 units): uninvoiceable whatever its price.
    if (!(error instanceof RangeError)) throw error;
    return [{ recurring: 0n, usage: MAX_MINOR_UNITS + 1n, total: MAX_MINOR_UNITS + 1n }];
  }
  const recurring = next?.lines ?? [];
  const together = next !== null && o.plan.id === subscription.plan_id;
  // A renewal not run yet (the sweep behind): the next renewal bills the usage before its period, and
  // each later period's usage goes on the renewal after that period, with that period's fees (those of
  // the next period, as far as can be known now). A SUSPENDED subscription's missed periods all go on
  // the invoice resuming it.
  const nextStart = next?.period.start;
  const later =
    nextStart && subscription.status !== 'SUSPENDED'
      ? usage.filter((line) => line.periodStart !== undefined && line.periodStart >= nextStart)
      : [];
  const first = usage.filter((line) => !later.includes(line));
  const laterPeriods = [...new Set(later.map((line) => line.periodStart!.getTime()))];
  const invoices = [...(together ? [[...recurring, ...first]] : [recurring, first])];
  // Each later period's usage goes on the renewal at its end, with that renewal's own fees: after the
  // next renewal (never the first: no setup fee; its ONCE coupons used), none when the subscription
  // ends there (a cancellation, the end of its term: a final invoice of usage).
  const used = new Set((next?.applied ?? []).map((r) => r.id));
  const afterNext = (state: RecurringState): RecurringState => {
    const changed = o.change ? o.change(state) : state;
    return {
      ...changed,
      redemptions: changed.redemptions.map((r) =>
        used.has(r.id) ? { ...r, periods_applied: r.periods_applied + 1 } : r,
      ),
    };
  };
  const upcoming = { ...subscription, scheduled_plan_id: o.plan.id, scheduled_quantity: o.quantity };
  for (const start of laterPeriods) {
    const due = usagePeriodAt(subscription, current, new Date(start)).end;
    const fees = await renewalLinesAt(trx, upcoming, o.plan, due, afterNext, false);
    invoices.push([...(fees?.lines ?? []), ...later.filter((line) => line.periodStart!.getTime() === start)]);
  }
  const out: InvoiceTotals[] = [];
  for (const lines of invoices) {
    if (lines.length === 0) continue;
    const taxed = await withCustomerTaxes(trx, subscription.customer_id, lines);
    const total = totalOf(taxed);
    const usageLinesOf = lines.filter((line) => usage.includes(line));
    const billed = usageLinesOf.length;
    const usageTotal = billed > 0 ? totalOf(taxed.slice(-billed)) : 0n;
    const starts = usageLinesOf.map((line) => line.periodStart!.getTime());
    const ends = usageLinesOf.map((line) => line.periodEnd!.getTime());
    out.push({
      recurring: total - usageTotal,
      usage: usageTotal,
      total,
      ...(billed > 0
        ? {
            usageFrom: new Date(Math.min(...starts)),
            usageUntil: new Date(Math.max(...ends)),
            usagePeriods: new Set(starts).size,
          }
        : {}),
    });
  }
  return out;
}

/** The total of `lines` as `invoiceAmounts` makes it (subtotal + tax), without its bounds: a line beyond 10^15 counts untaxed. */
function totalOf(lines: readonly NewLine[]): bigint {
  try {
    return lineAmounts(lines).reduce((sum, line) => sum + line.amount + line.tax, 0n);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    return lines.reduce((sum, line) => sum + lineAmount(line), 0n);
  }
}

/**
 * Refuses a subscription's new plan × quantity (a change now or at the next cycle: proration.ts
 * `changeSubscription`; a new subscription: subscriptions.ts `insertSubscription`; previews too; an
 * add-on's new quantity: subscription-add-ons.ts `setSubscriptionAddOn`, and its preview, with the
 * plan and quantity the next period bills and the add-on `change` given) when its next invoices could
 * not be invoiced (`nextInvoicesTotals`): the next period's recurring lines for `plan` × `quantity`
 * (the price, coupons, add-ons, a setup fee) with the usage not billed yet that the same invoice bills
 * (the period's so far, every period a suspension left unbilled), taxed, above 10^15 minor units, a
 * line or all together. Accepted, every later renewal of the subscription threw (its periods never
 * invoiced again): a change now prorates only the rest of the period (a tenth of 2 × 10^15 passes),
 * a trial or a future start invoices nothing at creation, and 5 × 10^14 a period passed beside 6 ×
 * 10^14 of usage billed on the same invoice. Nothing when it has no next renewal.
 * @throws ValidationError (field `quantity`) naming the plan, the quantity and the bound (and the
 * invoice's total with the usage it bills, when usage takes it over)
 */
export async function refuseUninvoiceablePeriod(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  plan: Plan,
  quantity: number,
  change?: (state: RecurringState) => RecurringState,
): Promise<void> {
  const invoices = await nextInvoicesTotals(trx, subscription, { plan, quantity, change });
  const over = invoices.find((invoice) => invoice.total > MAX_MINOR_UNITS);
  if (!over) return;
  throw new ValidationError('the next period could not be invoiced', {
    quantity:
      over.usage === 0n || over.recurring > MAX_MINOR_UNITS
        ? `plan ${plan.id} × ${quantity} would bill each period more than 10^15 minor units (the largest amount of an invoice)`
        : `plan ${plan.id} × ${quantity} with the usage it bills, ${over.total} minor units, would bill the next period's invoice more than 10^15 (the largest amount of an invoice)`,
  });
}

/**
 * Why the invoice SUSPENDED `subscription` resumes with (its row as the reactivation leaves it:
 * ACTIVE, `next_renewal_at` where `resumeSuspended` moves it) could not be invoiced, or undefined
 * when it can: the period it resumes at with the usage not billed yet (every period missed while
 * suspended: the usage recorded then is billed on it) above 10^15 minor units (`nextInvoicesTotals`,
 * with the plan and quantity it then bills). A reactivation by hand refuses it (422 `usage`:
 * subscriptions.ts `reactivateSubscription`); a payment's leaves it SUSPENDED (reinstate.ts).
 */
export async function resumptionBeyondBound(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
): Promise<string | undefined> {
  const scheduled = subscription.scheduled_plan_id;
  const invoices = await nextInvoicesTotals(trx, subscription, {
    plan: await getPlan(trx, scheduled ?? subscription.plan_id),
    quantity: subscription.scheduled_quantity ?? subscription.quantity,
  });
  const over = invoices.find((invoice) => invoice.total > MAX_MINOR_UNITS);
  if (!over) return undefined;
  return `the invoice resuming subscription ${subscription.id} would total ${over.total} minor units (the usage not billed yet, of the periods missed while suspended too: ${over.usage}; the period's fees: ${over.recurring}; tax included), more than 10^15 (the largest amount of an invoice)`;
}
