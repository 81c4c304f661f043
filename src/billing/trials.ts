import type { Db } from '../db/database.ts';
import { ConflictError, ValidationError } from '../errors.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { getPlan } from './plans.ts';
import {
  DEFAULT_RENEWAL_POLICY,
  lockSubscription,
  nextRenewalAt,
  type RenewalPolicy,
  renewedUpTo,
  renewLocked,
} from './renewal.ts';
import { subscriptionActivity } from './subscription-status.ts';
import type { SubscriptionChange } from './subscriptions.ts';
import { refuseChangeInvoicedAhead } from './terms.ts';

/**
 * Ends a trial now or moves its end (BillaBear "Extend trial", Billby `trial_days` on update): the
 * trial's end is the billing anchor (renewal.ts), so the new end becomes `trial_end_at`,
 * `billing_anchor`, `current_period_end` and `next_renewal_at` (or `cancel_at` when that comes
 * first; a cancellation at period end moves with it), and period 0 starts there. Ending it now
 * invoices period 0 at once (IN_TRIAL → ACTIVE) through `renewLocked`. Logs
 * `subscription.trial_changed` with the old and new end.
 * @param endAt `'now'`, or a moment later than now and than the subscription's start
 * A settled term's trial is not changed: its periods are invoiced already for the periods as they
 * are (and a cancellation voided those after its end by their starts), so moving them would bill
 * periods that are not served and serve periods not billed.
 * The subscription is first renewed up to `now` as the renewal sweep would (`renewedUpTo`): a trial
 * whose end has passed ended then, so it is `not_in_trial` (nothing changed) even before the sweep
 * ran, not extended or ended later than it did (free days the sweep on time would have billed). An
 * add-on charge pending since a payment's reactivation whose making fails is left pending (renewal.ts
 * `renewLocked` with `'try'`), for the renewal sweep to make once it can.
 * @throws NotFoundError; ConflictError `not_in_trial` unless IN_TRIAL, `periods_invoiced_ahead` while
 * periods are invoiced (`refuseChangeInvoicedAhead`; nothing changed); ValidationError (field
 * `trial_end`) for a moment not later than now or than `start_at`, or `now` before a future start
 */
export async function changeTrial(
  db: Db,
  actor: Actor,
  id: string,
  endAt: Date | 'now',
  now: Date,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<SubscriptionChange> {
  return inUnitOfWork(db, { actor }, async (work) => {
    // A trial whose end has come ended then, whether or not the renewal sweep has run yet. An add-on
    // charge pending since a payment's reactivation whose making fails is left pending ('try'): it
    // is for a subscription reactivated in a billed period, never IN_TRIAL, so the answer is
    // `not_in_trial`, not the charge's failure.
    const locked = (await lockSubscription(work, id))!;
    const { subscription } = await renewedUpTo(work, locked, now, policy, 'try');
    if (subscription.status !== 'IN_TRIAL') {
      throw new ConflictError('not_in_trial', `subscription ${id} is ${subscription.status}, not IN_TRIAL`);
    }
    await refuseChangeInvoicedAhead(work.trx, subscription);
    const end = endAt === 'now' ? now : endAt;
    if (end < subscription.start_at || (endAt !== 'now' && end <= now)) {
      throw new ValidationError('trial end', {
        trial_end:
          endAt === 'now' ? 'the trial has not started yet' : 'must be later than now and than start_at',
      });
    }
    const cancelAt = subscription.cancel_at_period_end ? end : subscription.cancel_at;
    const updated = await work.trx
      .updateTable('subscriptions')
      .set({
        trial_end_at: end,
        billing_anchor: end,
        current_period_end: end,
        cancel_at: cancelAt,
        next_renewal_at: nextRenewalAt(end, cancelAt),
        updated_at: now,
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await subscriptionActivity(work, subscription, 'subscription.trial_changed', {
      from: subscription.trial_end_at,
      to: end,
      ended_now: endAt === 'now',
    });
    return renewLocked(work, updated, await getPlan(work.trx, updated.plan_id), now, policy);
  });
}
