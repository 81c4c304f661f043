import { randomUUID } from 'node:crypto';
import { recordActivity } from '../activities/activities.ts';
import type { Db } from '../db/database.ts';
import type { InvoiceRow, SubscriptionRow } from '../db/schema.ts';
import { writeTransaction } from '../db/write-transaction.ts';
import { ConflictError, ValidationError } from '../errors.ts';
import { chart } from '../ledger/chart.ts';
import { postEntry } from '../ledger/journal.ts';
import { finalizeLocked, insertInvoice, type NewLine } from './invoices.ts';
import { baseAmount, getPlan, type Plan } from './plans.ts';
import { type InvoicePreview, pricedLines } from './preview.ts';
import { lockSubscription } from './renewal.ts';

/**
 * Changing a subscription's plan or quantity mid-period, with proration (as Billby and Stripe do):
 * the unused part of the current period is credited at the old amount and the rest of the period
 * charged at the new amount, both by whole seconds. A net charge becomes a `subscription_update`
 * invoice, finalized and charged at once (`charge_at = now`). A net credit (a downgrade) is not paid
 * back: with its tax it becomes the customer's credit (debit revenue for the net credit and tax
 * payable for its tax, credit the customer's credit account), which their next invoices use at
 * finalization, whatever subscription they bill (billing/customer-credit.ts). In a trial or before a
 * future start there is no period to prorate: the change applies to the first invoice. The new plan
 * must bill in the same currency and interval (periods stay on the same anchor); coupons and
 * `amount_override` are not prorated (an override stays the period's amount).
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

/** A change to make: a plan id and/or a quantity. */
export interface SubscriptionChangeInput {
  planId?: string;
  quantity?: number;
}

/** What a change did (or, previewed, would do). */
export interface ChangeResult {
  subscription: SubscriptionRow;
  proration: InvoicePreview;
  /** The `subscription_update` invoice of a net charge. */
  invoice: InvoiceRow | null;
  /** Net credit before tax (minor units); the customer's credit grows by it plus its tax. */
  credited: bigint;
}

const seconds = (ms: number) => BigInt(Math.floor(ms / 1000));

/**
 * Changes plan and/or quantity of subscription `id` at `now`, prorating the current period; with
 * `preview` it computes the same and writes nothing. Logs `subscription.changed`.
 * @throws NotFoundError subscription or plan; ConflictError `subscription_not_changeable`
 * (SUSPENDED, CANCELLED), `plan_inactive`; ValidationError (field `plan`) for another currency or
 * interval, or no change at all
 */
export async function changeSubscription(
  db: Db,
  id: string,
  change: SubscriptionChangeInput,
  now: Date,
  preview: boolean,
): Promise<ChangeResult> {
  return writeTransaction(db, async (trx) => {
    const subscription = (await lockSubscription(trx, id))!;
    if (subscription.status === 'SUSPENDED' || subscription.status === 'CANCELLED') {
      throw new ConflictError(
        'subscription_not_changeable',
        `subscription ${id} is ${subscription.status}; only a live subscription can change`,
      );
    }
    const oldPlan = await getPlan(trx, subscription.plan_id);
    const newPlan = change.planId ? await getPlan(trx, change.planId) : oldPlan;
    checkTarget(oldPlan, newPlan, change.planId !== undefined);
    const quantity = change.quantity ?? subscription.quantity;
    if (newPlan.id === oldPlan.id && quantity === subscription.quantity) {
      throw new ValidationError('nothing to change', {
        plan: 'the subscription already has this plan and quantity',
      });
    }
    const start = subscription.current_period_start;
    const end = subscription.current_period_end;
    const inPeriod = subscription.current_period_index !== null && start && end && start <= now && now < end;
    const lines: NewLine[] = [];
    if (inPeriod) {
      const periodSeconds = seconds(end.getTime() - start.getTime());
      const remaining = seconds(end.getTime() - now.getTime());
      const credit = prorate(
        baseAmount(oldPlan, subscription.quantity, subscription.amount_override),
        remaining,
        periodSeconds,
      );
      const charge = prorate(
        baseAmount(newPlan, quantity, subscription.amount_override),
        remaining,
        periodSeconds,
      );
      const common = { quantity: 1, periodStart: now, periodEnd: end };
      if (credit > 0n) {
        lines.push({
          ...common,
          description: `Unused time on ${oldPlan.name} × ${subscription.quantity}`,
          type: 'CREDIT',
          amount: credit,
          taxRatePpm: oldPlan.tax_rate_ppm,
          planId: oldPlan.id,
        });
      }
      if (charge > 0n) {
        lines.push({
          ...common,
          description: `Remaining time on ${newPlan.name} × ${quantity}`,
          type: 'CHARGE',
          amount: charge,
          taxRatePpm: newPlan.tax_rate_ppm,
          planId: newPlan.id,
        });
      }
    }
    const proration: InvoicePreview = {
      customerId: subscription.customer_id,
      currency: newPlan.currency,
      billingReason: 'subscription_update',
      invoiceAt: now,
      periodStart: now,
      periodEnd: end && inPeriod ? end : now,
      ...pricedLines(lines),
    };
    const credited = proration.subtotal < 0n ? -proration.subtotal : 0n;
    if (preview) return { subscription, proration, invoice: null, credited };

    let invoice: InvoiceRow | null = null;
    if (proration.subtotal > 0n && proration.total > 0n) {
      const inserted = await insertInvoice(trx, {
        customerId: subscription.customer_id,
        currency: newPlan.currency,
        lines,
        subscriptionId: subscription.id,
        periodStart: proration.periodStart,
        periodEnd: proration.periodEnd,
        billingReason: 'subscription_update',
        chargeAt: now,
      });
      invoice = { ...inserted, status: await finalizeLocked(trx, inserted, now) };
    }
    const updated = await trx
      .updateTable('subscriptions')
      .set({ plan_id: newPlan.id, quantity, updated_at: now })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    // The net credit, with its tax, is the customer's credit until their next invoices use it.
    if (credited > 0n) {
      await postEntry(trx, {
        idempotencyKey: `${id}:proration_credit:${randomUUID()}`,
        description: `proration credit of subscription ${id} (unused time at the old price)`,
        source: { type: 'subscription', id },
        postings: [
          { account: chart.revenue, amount: credited, currency: newPlan.currency },
          { account: chart.taxPayable, amount: -proration.tax, currency: newPlan.currency },
          {
            account: chart.customerCredit(subscription.customer_id),
            amount: -(credited - proration.tax),
            currency: newPlan.currency,
          },
        ].filter((p) => p.amount !== 0n),
      });
    }
    await recordActivity(trx, {
      resourceType: 'subscription',
      resourceId: id,
      action: 'subscription.changed',
      customerId: subscription.customer_id,
      data: {
        from_plan: oldPlan.id,
        to_plan: newPlan.id,
        from_quantity: subscription.quantity,
        to_quantity: quantity,
        invoice: invoice?.id,
        credited,
      },
    });
    return { subscription: updated, proration, invoice, credited };
  });
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
