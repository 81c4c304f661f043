import type { Kysely } from 'kysely';
import type { Database, InvoiceRow, SubscriptionRow } from '../db/schema.ts';
import { ConflictError } from '../errors.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { openCustomerOnce } from './customer-status.ts';
import { periodAt } from './periods.ts';
import { getPlan } from './plans.ts';
import {
  cadenceOf,
  DEFAULT_RENEWAL_POLICY,
  invoicePeriod,
  type LeftPending,
  leftPendingData,
  RENEWABLE,
  renewLocked,
} from './renewal.ts';

/**
 * Fixed terms (Billby's `repeat`, seed 001): a subscription with `repeat` = n is billed for periods
 * 0 … n − 1; the renewal ends it when period n would start (CANCELLED, reason `term_completed`,
 * renewal.ts). Settle invoices every remaining period of the term at once (`invoiceRemainingCycles`).
 * Those invoices fix the later periods' price: a plan, quantity, add-on, coupon or trial change is
 * refused while any is left, VOID ones included (`refuseChangeInvoicedAhead`), and a cancellation
 * (by a person or by dunning) voids the unpaid ones of the periods after it ends (cancellation.ts),
 * a reactivation those of the periods wholly missed while suspended (subscriptions.ts).
 */

/**
 * The invoices of `subscription`'s periods after its current one (all its period invoices while it
 * has none: in trial, before its start), by period: the periods settle invoiced ahead.
 * @param options `from`: only the periods starting at or after this moment (a cancellation's end, a
 * suspension's start); `until`: only those ending at or before it (a reactivation's moment);
 * `withVoid`: VOID ones too (left out otherwise)
 */
export function invoicedAhead(
  trx: Kysely<Database>,
  subscription: Pick<SubscriptionRow, 'id' | 'current_period_index'>,
  options: { from?: Date; until?: Date; withVoid?: boolean } = {},
): Promise<InvoiceRow[]> {
  let query = trx
    .selectFrom('invoices')
    .selectAll()
    .where('subscription_id', '=', subscription.id)
    .where('period_index', '>', subscription.current_period_index ?? -1);
  if (!options.withVoid) query = query.where('status', '!=', 'VOID');
  if (options.from) query = query.where('period_start', '>=', options.from);
  if (options.until) query = query.where('period_end', '<=', options.until);
  return query.orderBy('period_index').execute();
}

/**
 * Refuses a change of what a subscription's later periods are billed, while periods are invoiced
 * ahead (a settled term): a plan or quantity change (now or at the next cycle, previewed too:
 * proration.ts), an add-on's (subscription-add-ons.ts), a coupon redeemed or removed
 * (subscriptions.ts), a trial ended or moved (trials.ts: it moves the periods those invoices are
 * for). Their invoices bill the current plan, quantity, add-ons and coupons for the periods as they
 * are, and the renewal does not invoice a period twice, so those periods would stay billed as they
 * are. They are not voided and invoiced again: they may be paid or partly paid, numbered and sent,
 * and a period has one invoice. A VOID one counts too (an operator voided it by hand: its period
 * still holds its one invoice, so the renewal would bill it nothing at the new price, or nothing at
 * all), unless its period starts at or after the scheduled cancellation (`cancel_at`), never served.
 * The change can be made once the last of them has started (or the subscription cancelled, which
 * voids the unpaid ones, and a new one created).
 * @throws ConflictError `periods_invoiced_ahead` naming the invoices
 */
export async function refuseChangeInvoicedAhead(
  trx: Kysely<Database>,
  subscription: Pick<SubscriptionRow, 'id' | 'current_period_index' | 'cancel_at'>,
): Promise<void> {
  const { cancel_at: cancelAt } = subscription;
  const ahead = (await invoicedAhead(trx, subscription, { withVoid: true })).filter(
    (i) => i.status !== 'VOID' || !cancelAt || (i.period_start !== null && i.period_start < cancelAt),
  );
  const last = ahead.at(-1);
  if (!last) return;
  const voided = ahead.filter((i) => i.status === 'VOID').map((i) => i.id);
  throw new ConflictError(
    'periods_invoiced_ahead',
    `subscription ${subscription.id} has periods invoiced ahead at its current plan, quantity, add-ons, coupons and periods (settled: ${ahead.map((i) => i.id).join(', ')}${voided.length > 0 ? `; voided by hand, their periods still hold them and would go unbilled: ${voided.join(', ')}` : ''}); a change would leave them billed as they are. Nothing changed; change it once the last of them has started (${last.period_start?.toISOString()}), or cancel it (its unpaid invoices ahead are voided) and subscribe again`,
  );
}

/**
 * The billing cycles of a subscription's term not started yet: `repeat` minus the periods started
 * (`current_period_index` + 1; none while in trial or before its start), 0 once it is CANCELLED.
 * @returns a count, or null when it has no fixed term
 */
export function cyclesRemaining(
  subscription: Pick<SubscriptionRow, 'repeat' | 'current_period_index' | 'status'>,
): number | null {
  if (subscription.repeat === null) return null;
  if (subscription.status === 'CANCELLED') return 0;
  return Math.max(subscription.repeat - (subscription.current_period_index ?? -1) - 1, 0);
}

/**
 * Settle's first step for a subscription with a fixed term (Billby: "generate charges for all
 * remaining billing cycles"), on the row locked in `work`: renews it up to `now` first (`renewLocked`:
 * a trial that ended, a period that started), then invoices each later period of the term the
 * renewal would still invoice — not past a scheduled cancellation — with the renewal's own
 * `invoicePeriod` (the same lines, taxes and coupon counting as each renewal would make, each
 * finalized with `charge_at = now`), and stamps `settled_at` (the first settle's time). The renewals
 * afterwards find every period invoiced and only advance it, until the term ends it on time.
 * Not billed statuses (SUSPENDED, CANCELLED) and subscriptions without a term get no invoice.
 * An add-on charge pending since a payment's reactivation whose making fails is left pending
 * (renewal.ts `renewLocked` with `'try'`): the term is invoiced all the same and the renewal sweep
 * makes the charge once it can; `leftPending` then names it (`add_on_charge_pending`: since, error,
 * renewal.ts `leftPendingData`) for the `subscription.settled` activity, as the other paths' do.
 * @returns the subscription as it is now, the invoices made (the catch-up renewal's first) and
 * `leftPending` (empty unless the charge was left pending)
 * @throws ConflictError `settle_scheduled_change` when a plan change is scheduled (the later periods'
 * prices are not known yet); `settle_metered_plan` when the plan has metered prices (usage is billed
 * in arrears, so a future period's invoice cannot carry it)
 */
export async function invoiceRemainingCycles(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  now: Date,
): Promise<{ subscription: SubscriptionRow; invoices: InvoiceRow[]; leftPending: LeftPending }> {
  if (subscription.repeat === null || !RENEWABLE.includes(subscription.status)) {
    return { subscription, invoices: [], leftPending: {} };
  }
  if (subscription.scheduled_plan_id !== null) {
    throw new ConflictError(
      'settle_scheduled_change',
      `subscription ${subscription.id} has a change scheduled for its next cycle; settle it after the change or cancel the change`,
    );
  }
  const plan = await getPlan(work.trx, subscription.plan_id);
  if (plan.metered.length > 0) {
    throw new ConflictError(
      'settle_metered_plan',
      `plan ${plan.id} has metered prices, billed in arrears: the remaining cycles of a metered plan cannot be invoiced ahead`,
    );
  }
  // An add-on charge pending since a payment's reactivation whose making fails is left pending
  // ('try'), as every change by hand leaves it: the renewal sweep makes it once it can, for the period
  // holding its moment, its own invoice, none of the term's periods invoiced here.
  const renewal = await renewLocked(work, subscription, plan, now, DEFAULT_RENEWAL_POLICY, 'try');
  const leftPending = leftPendingData(subscription, renewal);
  let current = renewal.subscription;
  const invoices = [...renewal.invoices];
  const repeat = current.repeat;
  if (repeat === null || !RENEWABLE.includes(current.status)) {
    return { subscription: current, invoices, leftPending };
  }
  const cadence = cadenceOf(current, plan);
  const customer = openCustomerOnce(work.trx, current.customer_id);
  for (let index = (current.current_period_index ?? -1) + 1; index < repeat; index++) {
    const period = periodAt(cadence, index);
    if (current.cancel_at_period_end || (current.cancel_at && current.cancel_at <= period.start)) break;
    const invoice = await invoicePeriod(work, current, plan, period, now, customer);
    if (invoice) invoices.push(invoice);
  }
  current = await work.trx
    .updateTable('subscriptions')
    .set({ settled_at: current.settled_at ?? now, updated_at: now })
    .where('id', '=', current.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return { subscription: current, invoices, leftPending };
}
