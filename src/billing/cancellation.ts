import type { Kysely } from 'kysely';
import type { Database, SubscriptionRow } from '../db/schema.ts';
import { ConflictError, ValidationError } from '../errors.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { getPlan } from './plans.ts';
import { prorate, secondsBetween } from './proration.ts';
import { invoiceUsageUntil } from './renewal.ts';
import { subscriptionActivity, transitionSubscription } from './subscription-status.ts';

/**
 * Cancelling a subscription as BillaBear and Billby do (seed 004 "Cancel subscription": `when`
 * end-of-run / instantly / specific-date, `refund_type` none / full / prorate; seed 001: a
 * `cancel_date` makes the subscription NON_RENEWING, `cancel_reason`):
 * - `now`: CANCELLED at once, after a final invoice of the usage not billed yet;
 * - `period_end`: `cancel_at_period_end` (and `cancel_at` = the period's end); the renewal at the
 *   end makes the final invoice and cancels instead of invoicing the next period;
 * - `date`: `cancel_at`; the status stays (ACTIVE, IN_TRIAL…) until then and renewal invoices the
 *   periods that start before it (whole: the last period is not shortened), then cancels at
 *   `cancel_at` with the final usage invoice. `cancel_at` set is billhook's NON_RENEWING.
 * The refund (`full` or `prorate`) gives back money of the current period's paid invoice through the
 * gateway that took it (payments/cancellations.ts); this module only says how much
 * (`cancellationRefund`).
 */

/** When a cancellation takes effect. */
export type CancelWhen = 'now' | 'period_end' | 'date';

/** What to give back of the current period's paid invoice: nothing, all of it, or its unused share. */
export type RefundType = 'none' | 'full' | 'prorate';

/** A cancellation request: when (with `cancelAt` for `date`), the refund, and why. */
export interface CancelOptions {
  when: CancelWhen;
  /** The moment, for `when: 'date'`; must be later than now. */
  cancelAt?: Date;
  refundType: RefundType;
  /** The caller's reason (≤ 1000 characters), stored as `cancel_reason`. */
  reason?: string;
}

/** A refund a cancellation asks for: `amount` minor units of invoice `invoiceId`'s currency. */
export interface CancellationRefund {
  invoiceId: string;
  amount: bigint;
}

/** What a cancellation did: the subscription, and the refund to send (null: none). */
export interface Cancellation {
  subscription: SubscriptionRow;
  refund: CancellationRefund | null;
}

/**
 * How much a cancellation gives back of a period's invoice, minor units (pure):
 * - `none`: 0;
 * - `full`: `min(recurring, refundable)`;
 * - `prorate`: `min(prorate(recurring, unused, period), refundable)`, `prorate` rounding half up by
 *   whole seconds as a mid-period change does (proration.ts).
 * @param recurring what the period's recurring lines cost, tax included (plan price after coupons), ≥ 0
 * @param refundable what is still refundable of the invoice (paid − refunded), ≥ 0
 * @param unusedSeconds seconds of the period after the cancellation takes effect, 0 … periodSeconds
 * @param periodSeconds the period's length, > 0
 * @returns 0 … min(recurring, refundable); the customer keeps paying `recurring − refund` for the
 * used time, so refund + kept = recurring exactly when the refundable amount covers it
 */
export function cancellationRefund(
  type: RefundType,
  recurring: bigint,
  refundable: bigint,
  unusedSeconds: bigint,
  periodSeconds: bigint,
): bigint {
  const owed =
    type === 'none' ? 0n : type === 'full' ? recurring : prorate(recurring, unusedSeconds, periodSeconds);
  return owed < refundable ? owed : refundable;
}

/**
 * The refund of a cancellation of a locked subscription taking effect at `effectiveAt`: the current
 * period's invoice must be PAID (or partly refunded already) by a gateway payment; its recurring
 * lines (the plan's line and its coupon lines: `plan_id` set, no `metric_code`; the add-ons' lines:
 * `add_on_id` set) with their tax are what the period cost; the one-off setup fee is not refunded. Usage lines (billed in arrears, for the period before) and proration
 * invoices of the period are not refunded.
 * @returns the refund, or null when `type` is `none` or the amount is 0
 * @throws ConflictError `nothing_to_refund` when the period has no paid invoice with a gateway
 * payment, `later_periods_paid` when invoices of later periods (a settled term) hold money not
 * refunded yet; ValidationError (field `refund_type`) when the cancellation takes effect after the
 * current period
 */
async function refundOf(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  type: RefundType,
  effectiveAt: Date,
): Promise<CancellationRefund | null> {
  if (type === 'none') return null;
  const start = subscription.current_period_start;
  const end = subscription.current_period_end;
  if (subscription.current_period_index === null || !start || !end) {
    throw new ConflictError(
      'nothing_to_refund',
      `subscription ${subscription.id} has no billed current period`,
    );
  }
  if (effectiveAt > end) {
    throw new ValidationError('refund after the current period', {
      refund_type: 'a refund needs the cancellation to take effect within the current period',
    });
  }
  // A settled term (terms.ts) has later periods invoiced and maybe paid ahead: this refund covers the
  // current period only, so money paid for later periods would be kept without a word. Refused
  // instead; each of those invoices is refunded on its own (`POST /v1/invoices/:id/refund`).
  const paidAhead = await trx
    .selectFrom('invoices')
    .select('id')
    .where('subscription_id', '=', subscription.id)
    .where('period_index', '>', subscription.current_period_index)
    .where('amount_paid', '>', 0n)
    .whereRef('amount_refunded', '<', 'amount_paid')
    .execute();
  if (paidAhead.length > 0) {
    throw new ConflictError(
      'later_periods_paid',
      `subscription ${subscription.id} has later periods paid ahead (${paidAhead.map((i) => i.id).join(', ')}): refund those invoices (POST /v1/invoices/:id/refund), then cancel with refund_type`,
    );
  }
  const invoice = await trx
    .selectFrom('invoices')
    .selectAll()
    .where('subscription_id', '=', subscription.id)
    .where('period_index', '=', subscription.current_period_index)
    .executeTakeFirst();
  const paid = await trx
    .selectFrom('transactions')
    .select('id')
    .where('invoice_id', '=', invoice?.id ?? '')
    .where('status', '=', 'succeeded')
    .where('gateway_transaction_id', 'is not', null)
    .executeTakeFirst();
  if (!invoice || (invoice.status !== 'PAID' && invoice.status !== 'PARTIALLY_REFUNDED') || !paid) {
    throw new ConflictError(
      'nothing_to_refund',
      `the current period's invoice of subscription ${subscription.id} is not paid by a gateway payment`,
    );
  }
  const lines = await trx
    .selectFrom('invoice_lines')
    .select(['amount', 'tax_amount'])
    .where('invoice_id', '=', invoice.id)
    .where((eb) => eb.or([eb('plan_id', 'is not', null), eb('add_on_id', 'is not', null)]))
    .where('metric_code', 'is', null)
    .execute();
  const recurring = lines.reduce((sum, l) => sum + l.amount + l.tax_amount, 0n);
  const amount = cancellationRefund(
    type,
    recurring > 0n ? recurring : 0n,
    invoice.amount_paid - invoice.amount_refunded,
    secondsBetween(effectiveAt, end),
    secondsBetween(start, end),
  );
  return amount > 0n ? { invoiceId: invoice.id, amount } : null;
}

/**
 * Cancels a locked subscription (`work` joined the ledger's writers) as `options` says, storing
 * `cancel_reason`; logs `subscription.cancelled` (now) or `subscription.cancellation_scheduled`
 * (`period_end`, `date`: with `at`, `refund_type`, `reason`). The refund is only computed here;
 * the caller sends it in the same unit of work (payments/cancellations.ts).
 * @throws ConflictError `subscription_cancelled` (CANCELLED already), `cancellation_scheduled` (a
 * cancellation is scheduled already), `nothing_to_refund`; ValidationError `cancel_at` in the past,
 * `refund_type` as `refundOf`
 */
export async function cancelLocked(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  options: CancelOptions,
  now: Date,
): Promise<Cancellation> {
  const id = subscription.id;
  if (subscription.status === 'CANCELLED') {
    throw new ConflictError('subscription_cancelled', `subscription ${id} is already CANCELLED`);
  }
  const reason = options.reason ?? null;
  if (options.when === 'now') {
    const refund = await refundOf(work.trx, subscription, options.refundType, now);
    // The final invoice: the usage not billed yet, up to this moment, at the current plan's prices.
    const plan = await getPlan(work.trx, subscription.plan_id);
    const final = await invoiceUsageUntil(work, subscription, plan, now, now, 'subscription_update');
    const withReason = await work.trx
      .updateTable('subscriptions')
      .set({ cancel_reason: reason, cancel_at: null })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    const cancelled = await transitionSubscription(work, withReason, 'CANCELLED', now, {
      at_period_end: false,
      final_invoice: final?.id,
      reason,
      refund_type: options.refundType,
      refund_amount: refund?.amount ?? 0n,
    });
    return { subscription: cancelled, refund };
  }
  if (subscription.cancel_at_period_end || subscription.cancel_at) {
    throw new ConflictError(
      'cancellation_scheduled',
      `subscription ${id} already has a cancellation scheduled`,
    );
  }
  const atPeriodEnd = options.when === 'period_end';
  const at = atPeriodEnd ? subscription.next_renewal_at : options.cancelAt!;
  if (!atPeriodEnd && at !== null && at <= now) {
    throw new ValidationError('cancel_at in the past', { cancel_at: 'must be later than now' });
  }
  const refund = at ? await refundOf(work.trx, subscription, options.refundType, at) : null;
  const updated = await work.trx
    .updateTable('subscriptions')
    .set({
      cancel_at_period_end: atPeriodEnd,
      cancel_at: at,
      cancel_reason: reason,
      // The renewal looks at the subscription when the cancellation comes, if before its next period.
      ...(at && subscription.next_renewal_at && at < subscription.next_renewal_at
        ? { next_renewal_at: at }
        : {}),
      updated_at: now,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await subscriptionActivity(work, subscription, 'subscription.cancellation_scheduled', {
    at,
    at_period_end: atPeriodEnd,
    reason,
    refund_type: options.refundType,
    refund_amount: refund?.amount ?? 0n,
  });
  return { subscription: updated, refund };
}
