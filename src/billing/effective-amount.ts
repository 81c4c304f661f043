import type { Kysely } from 'kysely';
import type { Database, SubscriptionRow } from '../db/schema.ts';
import { ValidationError } from '../errors.ts';
import { invoiceAmounts, lineAmount, type NewLine } from './invoices.ts';
import { type Period, periodAt, periodIndexAt } from './periods.ts';
import { getPlan, type Plan } from './plans.ts';
import { cadenceOf, type RecurringState, subscriptionRecurringLines, termCompletedAt } from './renewal.ts';

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
 */
export async function nextRenewalLines(
  db: Kysely<Database>,
  subscription: SubscriptionRow,
  change?: (state: RecurringState) => RecurringState,
): Promise<{ plan: Plan; next: { period: Period; lines: NewLine[] } | null }> {
  const plan = await getPlan(db, subscription.scheduled_plan_id ?? subscription.plan_id);
  const due = subscription.next_renewal_at;
  const cadence = cadenceOf(subscription, plan);
  const renews =
    subscription.status !== 'CANCELLED' &&
    due !== null &&
    !subscription.cancel_at_period_end &&
    !(subscription.cancel_at && subscription.cancel_at <= due) &&
    !termCompletedAt(subscription, cadence, due);
  if (!renews) return { plan, next: null };
  const period = periodAt(cadence, Math.max(periodIndexAt(cadence, due), 0));
  const { lines } = await subscriptionRecurringLines(
    db,
    {
      id: subscription.id,
      quantity: subscription.scheduled_quantity ?? subscription.quantity,
      amount_override: subscription.amount_override,
    },
    plan,
    period,
    change,
  );
  return { plan, next: { period, lines } };
}

/**
 * Refuses a subscription's new plan × quantity (a change now or at the next cycle: proration.ts
 * `changeSubscription`; a new subscription: subscriptions.ts `insertSubscription`; previews too; an
 * add-on's new quantity: subscription-add-ons.ts `setSubscriptionAddOn`, with the plan and quantity
 * the next period bills) when
 * its next renewal could not be invoiced: its recurring lines for `plan` × `quantity`
 * (`nextRenewalLines`: the price, coupons, add-ons, a setup fee) above 10^15 minor units, a line or
 * all together. Accepted, every later renewal of the subscription threw (its periods never invoiced
 * again): a change now prorates only the rest of the period (a tenth of 2 × 10^15 passes), and a
 * trial or a future start invoices nothing at creation. Nothing when it has no next renewal.
 * @throws ValidationError (field `quantity`) naming the plan, the quantity and the bound
 */
export async function refuseUninvoiceablePeriod(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  plan: Plan,
  quantity: number,
): Promise<void> {
  const { next } = await nextRenewalLines(trx, {
    ...subscription,
    scheduled_plan_id: plan.id,
    scheduled_quantity: quantity,
  });
  if (!next) return;
  try {
    invoiceAmounts(next.lines);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    throw new ValidationError('the next period could not be invoiced', {
      quantity: `plan ${plan.id} × ${quantity} would bill each period more than 10^15 minor units (the largest amount of an invoice)`,
    });
  }
}
