import { z } from 'zod';
import type { SubscriptionRow } from '../db/schema.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { heldSinceSuspension, latestSuspension } from './add-on-proration.ts';
import { voidInvoicedAhead } from './cancellation.ts';
import { resumptionBeyondBound } from './effective-amount.ts';
import { periodAt, periodIndexAt } from './periods.ts';
import { getPlan, type Plan } from './plans.ts';
import { cadenceOf, DEFAULT_RENEWAL_POLICY, type RenewalPolicy, scheduledEnd } from './renewal.ts';
import { subscriptionActivity, transitionSubscription } from './subscription-status.ts';

/** What dunning writes in the data of the `subscription.suspended` activity it causes. */
export const DUNNING_REASON = 'dunning';

const SuspensionData = z.object({ reason: z.string().optional() }).loose();

/**
 * SUSPENDED → ACTIVE for a locked subscription, the one step a reactivation by hand
 * (`reactivateSubscription`) and a payment that reinstates it (`reinstateAfterPayment`) share, so
 * both resume billing alike: the periods wholly missed while suspended are never billed (no
 * back-billing), unless `policy.billSuspended` (`BILL_SUSPENDED_SUBSCRIPTIONS`: they were billed
 * while suspended, nothing was missed, and add-ons set while suspended were charged then). Without it:
 * - a settled term's (terms.ts) unpaid invoices of the periods starting at or after `suspended_at`
 *   and ending at or before `now` are voided (`voidInvoicedAhead`, reason `subscription_reactivated`;
 *   one partly paid or with a charge in flight is skipped, left owed; paid ones are kept);
 * - `next_renewal_at` moves up to the start of the period containing `now` when it is earlier, so
 *   the renewal invoices that period and none before it;
 * - but when the subscription's scheduled end (`scheduledEnd`: `cancel_at`, the period end of a
 *   `cancel_at_period_end`, a fixed term's end) came while it was suspended, at or before `now`,
 *   `next_renewal_at` becomes that end: the renewal ends it there (CANCELLED at its own date) and
 *   invoices no period after it, none of them served;
 * - else, when it resumes within the period invoiced before the suspension (its current period holds
 *   `now`) and add-ons were set while it was suspended (add-on-proration.ts `heldSinceSuspension`),
 *   a charge is left pending for them: `add_on_charge_at` = `now` and `add_on_charge_suspension` =
 *   that suspension (`latestSuspension`); `next_renewal_at` stays the period's end. The renewal
 *   (`renewLocked`) charges them from `now` to the end of what the period serves (add-on-proration.ts
 *   `reactivationAddOnCharge`: only units beyond those paid for and those held without a charge in
 *   the suspension, `prorate_now`, `none` honoured) and clears it. A reactivation by hand renews at
 *   once; one by a payment leaves it to the renewal sweep (within a minute) or to whatever renews the
 *   subscription up to now first (an add-on set, a change, a suspension or cancellation by hand:
 *   `renewedUpTo`), which charges from the reactivation all the same, whatever the status by then.
 *   The subscription is reactivated once (a second reactivation, or a payment racing one, finds it
 *   ACTIVE; all of them hold its lock), and units charged are paid for: nothing is charged twice. No
 *   add-on set comes while a charge is pending without renewing first (which makes it); when making
 *   it fails, a quantity set while SUSPENDED again is refused (add-on-proration.ts
 *   `refusePendingAddOnChange`), so a later reactivation never finds one pending with add-ons set
 *   in its own suspension.
 * Logs `subscription.active` with `data`, `resumes_at_period` and the invoices `voided_invoices`,
 * `not_voided_invoices` (skipped), `kept_invoices` (paid). It invoices nothing itself: the caller
 * renews (`renewLocked`) or leaves it to the renewal sweep.
 * Lock order: the subscription is locked (and any invoice of it the caller locked was locked after
 * it); the invoices voided are its own (`lockInvoice`, which takes the subscription again at no
 * cost); a void gives credit back without locking the customer. Another unit can hold none of them
 * without holding the subscription first, so this waits for nobody holding what it has.
 * @returns the subscription as it is now (ACTIVE)
 * @throws ConflictError `invalid_subscription_transition` unless it is SUSPENDED
 */
export async function resumeSuspended(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  plan: Plan,
  now: Date,
  policy: RenewalPolicy,
  data: Record<string, unknown> = {},
): Promise<SubscriptionRow> {
  const index = periodIndexAt(cadenceOf(subscription, plan), now);
  // Before the transition clears `suspended_at` and the renewal moves the current period past them.
  const missed =
    subscription.status === 'SUSPENDED' && subscription.suspended_at && !policy.billSuspended
      ? await voidInvoicedAhead(
          work,
          subscription,
          { from: subscription.suspended_at, until: now },
          now,
          'skip',
          'subscription_reactivated',
        )
      : { voided: [], skipped: [], kept: [] };
  const active = await transitionSubscription(work, subscription, 'ACTIVE', now, {
    ...data,
    resumes_at_period: Math.max(index, 0),
    voided_invoices: missed.voided,
    not_voided_invoices: missed.skipped,
    kept_invoices: missed.kept,
  });
  if (policy.billSuspended) return active;
  const resumeAt = resumesAt(subscription, plan, now, policy);
  if (resumeAt !== null) {
    if (resumeAt.getTime() === subscription.next_renewal_at?.getTime()) return active;
    // Resume at the current period (no back-billing), or at the end that came while suspended.
    return work.trx
      .updateTable('subscriptions')
      .set({ next_renewal_at: resumeAt, updated_at: now })
      .where('id', '=', subscription.id)
      .returningAll()
      .executeTakeFirstOrThrow();
  }
  // Within the period invoiced before the suspension, with add-ons set in it: charged from now.
  const { current_period_start: start, current_period_end: periodEnd } = subscription;
  if (
    subscription.current_period_index === null ||
    !start ||
    !periodEnd ||
    now <= start ||
    now >= periodEnd
  ) {
    return active;
  }
  const suspension = await latestSuspension(work.trx, subscription.id);
  if (suspension === null || (await heldSinceSuspension(work.trx, subscription.id, suspension)).size === 0) {
    return active;
  }
  return work.trx
    .updateTable('subscriptions')
    .set({ add_on_charge_at: now, add_on_charge_suspension: suspension, updated_at: now })
    .where('id', '=', subscription.id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Where `resumeSuspended` moves SUSPENDED `subscription`'s `next_renewal_at` when it resumes at `now`
 * (pure), or null when it stays: with `policy.billSuspended` nothing was missed; when its scheduled
 * end (`scheduledEnd`) came while suspended, that end (the renewal ends it there, billing nothing
 * after); when the period holding `now` started after it, that period's start (no back-billing).
 */
export function resumesAt(
  subscription: SubscriptionRow,
  plan: Plan,
  now: Date,
  policy: RenewalPolicy,
): Date | null {
  if (policy.billSuspended) return null;
  const cadence = cadenceOf(subscription, plan);
  const index = periodIndexAt(cadence, now);
  const skipped =
    index >= 0 &&
    subscription.next_renewal_at !== null &&
    subscription.next_renewal_at < periodAt(cadence, index).start;
  const end = scheduledEnd(subscription, plan);
  // Ended while suspended: the renewal ends it at its date, billing nothing after.
  return end && end <= now ? end : skipped ? periodAt(cadence, index).start : null;
}

/**
 * After invoice `paidInvoiceId` of a subscription was paid (any path), inside the paying transaction
 * (joined to the ledger's writers, the invoice locked, and so the subscription before it:
 * `lockInvoice`, `lockTransactionsAhead`; read again here `FOR UPDATE`, it waits for nothing): a
 * PAST_DUE subscription, or one SUSPENDED by dunning (its latest `subscription.suspended` activity
 * says `reason: dunning`), becomes ACTIVE again when none of its other OPEN invoices has a failed
 * automatic charge (`payment_attempts` > 0). A written-off (UNCOLLECTIBLE) invoice is still owed and
 * can still be paid, but nobody collects it any more, so it keeps no subscription past due, as Stripe
 * moves a `past_due` subscription back to `active` when its invoice is marked uncollectible
 * (docs.stripe.com/billing/subscriptions/overview, "past_due"). A subscription suspended by a
 * person, or cancelled, stays as it is.
 *
 * A SUSPENDED one whose resumption could not be invoiced (effective-amount.ts
 * `resumptionBeyondBound`: the invoice it would resume with, the usage recorded while suspended on
 * it, above 10^15) is not reactivated: it stays SUSPENDED, `subscription.reactivation_refused` logged
 * with why (the payment is recorded all the same); a reactivation by hand refuses it too (422).
 * A SUSPENDED one resumes as a reactivation by hand does (`resumeSuspended` under `policy`, the
 * renewal sweep's `BILL_SUSPENDED_SUBSCRIPTIONS`): the periods it missed are not billed, a settled
 * term's unpaid invoices of them are voided. The period it resumes in is not invoiced here but by
 * the next renewal sweep (within a minute), nor, when it resumes within the period invoiced before
 * the suspension, are the add-on units set while suspended (left pending in `add_on_charge_at`,
 * charged from the reactivation by that renewal: `resumeSuspended`): a renewal inside a payment's
 * transaction would lock the
 * customer (their credit, at the finalization) in the middle of a webhook batch that goes on to lock
 * other subscriptions' invoices and customers, against the lock order, and would fail the payment
 * with the renewal (a closed customer, a tax lookup) — the payment must be recorded whatever the
 * renewal does.
 * @param policy the renewal policy of the configuration (`renewalPolicy`)
 * @returns whether the subscription was reactivated
 */
export async function reinstateAfterPayment(
  work: UnitOfWork,
  subscriptionId: string,
  paidInvoiceId: string,
  now: Date,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<boolean> {
  return reinstate(work, subscriptionId, [paidInvoiceId], now, policy, 'invoice_paid');
}

/**
 * After invoices `voidedInvoiceIds` of a subscription were voided (by an operator, `voidInvoice`, or
 * a cancellation at a later date voiding a settled term's periods after it: `voidInvoicedAhead`),
 * inside the voiding transaction (the subscription locked): a VOID invoice owes nothing, so when one
 * of them had a failed automatic charge (`payment_attempts` > 0: a failure that made the
 * subscription past due) the subscription's status follows what is still owed as after a payment
 * (`reinstateAfterPayment`, the same rule, logged with `reason: invoice_voided` and, as `invoice`,
 * the last of them that had failed): a PAST_DUE one, or one SUSPENDED by dunning, becomes ACTIVE
 * when none of its OPEN invoices has a failed charge. Voiding invoices that never
 * failed changes no status: they made nothing past due. Not called where the subscription is
 * CANCELLED right after (a cancellation now, dunning's CANCEL) or becomes ACTIVE anyway (a
 * reactivation).
 * @param policy the renewal policy of the configuration (`renewalPolicy`)
 * @returns whether the subscription was reactivated
 */
export function reinstateAfterVoid(
  work: UnitOfWork,
  subscriptionId: string,
  voidedInvoiceIds: readonly string[],
  now: Date,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<boolean> {
  return reinstate(work, subscriptionId, voidedInvoiceIds, now, policy, 'invoice_voided');
}

/**
 * After invoice `writtenOffInvoiceId` of a subscription was written off (`markUncollectible`), inside
 * that transaction (the invoice locked, and so the subscription before it): nobody collects it any
 * more, so when it had a failed automatic charge the subscription's status follows what is still
 * collected, as after a void (`reinstateAfterVoid`, the same rule, logged with
 * `reason: invoice_written_off`): a PAST_DUE one, or one SUSPENDED by dunning, becomes ACTIVE when
 * none of its OPEN invoices has a failed charge.
 * @param policy the renewal policy of the configuration (`renewalPolicy`)
 * @returns whether the subscription was reactivated
 */
export function reinstateAfterWriteOff(
  work: UnitOfWork,
  subscriptionId: string,
  writtenOffInvoiceId: string,
  now: Date,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<boolean> {
  return reinstate(work, subscriptionId, [writtenOffInvoiceId], now, policy, 'invoice_written_off');
}

/**
 * `reinstateAfterPayment`, `reinstateAfterVoid` and `reinstateAfterWriteOff`: invoices `settled` (one
 * paid, those voided, one written off) are no longer collected (`reason`); the rest of the
 * subscription's OPEN invoices decide.
 */
async function reinstate(
  work: UnitOfWork,
  subscriptionId: string,
  settled: readonly string[],
  now: Date,
  policy: RenewalPolicy,
  reason: 'invoice_paid' | 'invoice_voided' | 'invoice_written_off',
): Promise<boolean> {
  if (settled.length === 0) return false;
  const subscription = await work.trx
    .selectFrom('subscriptions')
    .selectAll()
    .where('id', '=', subscriptionId)
    .forUpdate()
    .executeTakeFirst();
  if (!subscription) return false;
  if (subscription.status === 'SUSPENDED') {
    const suspension = await work.trx
      .selectFrom('activities')
      .select('data')
      .where('resource_id', '=', subscriptionId)
      .where('action', '=', 'subscription.suspended')
      .orderBy('sequence', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (SuspensionData.safeParse(suspension?.data).data?.reason !== DUNNING_REASON) return false;
  } else if (subscription.status !== 'PAST_DUE') {
    return false;
  }
  // The subscription's invoices as they are now, with those the unit paid and has not written.
  await work.writeRows();
  let invoice = settled.at(-1);
  if (reason !== 'invoice_paid') {
    // Only a void or write-off of what failed can end what the failure began.
    const failed = await work.trx
      .selectFrom('invoices')
      .select('id')
      .where('id', 'in', settled)
      .where('payment_attempts', '>', 0)
      .execute();
    invoice = settled.findLast((id) => failed.some((row) => row.id === id));
    if (invoice === undefined) return false;
  }
  // Still collected after a failed charge: OPEN (a written-off one is not collected any more).
  const overdue = await work.trx
    .selectFrom('invoices')
    .select('id')
    .where('subscription_id', '=', subscriptionId)
    .where('id', 'not in', settled)
    .where('status', '=', 'OPEN')
    .where('payment_attempts', '>', 0)
    .executeTakeFirst();
  if (overdue) return false;
  const data = { reason, invoice };
  if (subscription.status === 'PAST_DUE') {
    await transitionSubscription(work, subscription, 'ACTIVE', now, data);
  } else {
    const plan = await getPlan(work.trx, subscription.plan_id);
    // The invoice it resumes with must be invoiceable (the usage recorded while suspended billed on
    // it), or every renewal after this one would fail: it stays SUSPENDED, the payment recorded.
    const resumeAt = resumesAt(subscription, plan, now, policy);
    const resumed = {
      ...subscription,
      status: 'ACTIVE' as const,
      next_renewal_at: resumeAt ?? subscription.next_renewal_at,
    };
    const over = await resumptionBeyondBound(work.trx, resumed);
    if (over) {
      await subscriptionActivity(work, subscription, 'subscription.reactivation_refused', {
        ...data,
        message: over,
      });
      return false;
    }
    await resumeSuspended(work, subscription, plan, now, policy, data);
  }
  return true;
}
