import type { Kysely } from 'kysely';
import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { CouponRedemptionRow, Database, InvoiceRow, SubscriptionRow } from '../db/schema.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { DAY_MS } from '../time.ts';
import { cancelLocked } from './cancellation.ts';
import { endRedemption, redeemCoupon } from './coupons.ts';
import { assertCustomerOpen } from './customer-status.ts';
import { refuseUninvoiceablePeriod, resumptionBeyondBound } from './effective-amount.ts';
import { getPlan, type Plan } from './plans.ts';
import { resumeSuspended } from './reinstate.ts';
import {
  DEFAULT_RENEWAL_POLICY,
  leftPendingData,
  lockSubscription,
  type RenewalPolicy,
  renewedUpTo,
  renewLocked,
} from './renewal.ts';
import { subscriptionActivity, transitionSubscription } from './subscription-status.ts';
import { refuseChangeInvoicedAhead } from './terms.ts';

/**
 * Subscriptions of a customer to a plan (PRODUCT §5). Status changes go through
 * `transitionSubscription`; every change logs an activity in its own transaction.
 *
 * - Trial: `trial_days` (default: the plan's) run from the start; the subscription is IN_TRIAL and
 *   the trial is not a billing period: the billing anchor is the trial's end, where period 0 starts
 *   and is invoiced (IN_TRIAL → ACTIVE). `current_period_start/end` show the trial window meanwhile,
 *   with `current_period_index` null.
 * - Future start: `start_at` later than now makes an ACTIVE (or IN_TRIAL) subscription with no
 *   current period yet; nothing is invoiced before `start_at` (its anchor). A start in the past is
 *   refused (no back-billing by creation).
 * - Cancel now → CANCELLED (OPEN invoices stay as they are, for collection) after a final invoice of
 *   the usage not billed yet; at period end → a flag, and the renewal at the end of the period makes
 *   that final invoice and cancels instead of invoicing the next period.
 * - Suspend → SUSPENDED: no invoices are made (unless BILL_SUSPENDED_SUBSCRIPTIONS). Reactivate → ACTIVE: billing resumes with the period
 *   that contains the moment of reactivation, invoiced at once; the fees of periods wholly missed
 *   while suspended are never invoiced (no back-billing), the usage recorded meanwhile is (on that
 *   invoice, one set of lines per period).
 */

/** A new subscription. Amounts in minor units of the plan's currency. */
export interface NewSubscription {
  customerId: string;
  planId: string;
  quantity?: number;
  amountOverride?: bigint;
  paymentMethodId?: string;
  /** When billing (or the trial) starts; now when omitted. */
  startAt?: Date;
  /** Whole days of trial; the plan's `trial_days` when omitted. */
  trialDays?: number;
  /** Its fixed term in billing cycles (1 … 1200), null for none; the plan's `repeat` when omitted. */
  repeat?: number | null;
  couponCode?: string;
  metadata?: Record<string, string>;
  /** The PO number and notes each of its invoices is created with. */
  poNumber?: string;
  invoiceNotes?: string;
}

/** How far back a `start_at` may be (clock skew between caller and server), milliseconds. */
const START_SKEW_MS = 5 * 60_000;

/** A subscription as created or changed, with the invoices that change made. */
export interface SubscriptionChange {
  subscription: SubscriptionRow;
  invoices: InvoiceRow[];
}

/**
 * Checks what a new subscription refers to: the customer (404, 409 `customer_closed`), the plan (404,
 * 409 inactive), the payment method (422 unless it is the customer's and not detached), the start
 * (422 in the past).
 * @returns the plan and the effective start
 */
export async function checkNewSubscription(
  db: Kysely<Database>,
  input: NewSubscription,
  now: Date,
): Promise<{ plan: Plan; startAt: Date }> {
  await assertCustomerOpen(db, input.customerId);
  const plan = await getPlan(db, input.planId);
  if (!plan.active) throw new ConflictError('plan_inactive', `plan ${plan.id} is not active`);
  if (input.paymentMethodId) await checkPaymentMethod(db, input.customerId, input.paymentMethodId);
  const startAt = input.startAt ?? now;
  if (startAt.getTime() < now.getTime() - START_SKEW_MS) {
    throw new ValidationError('start in the past', { start_at: 'must not be in the past' });
  }
  return { plan, startAt };
}

async function checkPaymentMethod(db: Kysely<Database>, customerId: string, id: string): Promise<void> {
  const method = await db
    .selectFrom('payment_methods')
    .select('id')
    .where('id', '=', id)
    .where('customer_id', '=', customerId)
    .where('detached_at', 'is', null)
    .executeTakeFirst();
  if (!method) {
    throw new ValidationError('unknown payment method', {
      payment_method: `no payment method ${id} of customer ${customerId} that is attached`,
    });
  }
}

/**
 * The row of a new subscription (not inserted): IN_TRIAL with a trial, else ACTIVE; anchored at the
 * trial's end or the start.
 */
export function newSubscriptionRow(
  input: NewSubscription,
  plan: Plan,
  startAt: Date,
  now: Date,
): SubscriptionRow {
  const trialDays = input.trialDays ?? plan.trial_days;
  const trialEnd = trialDays > 0 ? new Date(startAt.getTime() + trialDays * DAY_MS) : null;
  const anchor = trialEnd ?? startAt;
  return {
    id: newId('sub'),
    customer_id: input.customerId,
    plan_id: plan.id,
    payment_method_id: input.paymentMethodId ?? null,
    status: trialEnd ? 'IN_TRIAL' : 'ACTIVE',
    quantity: input.quantity ?? 1,
    amount_override: input.amountOverride ?? null,
    billing_anchor: anchor,
    start_at: startAt,
    trial_end_at: trialEnd,
    current_period_index: null,
    current_period_start: trialEnd ? startAt : null,
    current_period_end: trialEnd,
    next_renewal_at: anchor,
    cancel_at_period_end: false,
    cancelled_at: null,
    suspended_at: null,
    ended_at: null,
    metadata: input.metadata ?? {},
    created_at: now,
    updated_at: now,
    usage_billed_until: startAt,
    cancel_at: null,
    cancel_reason: null,
    cancellation_refund_type: null,
    cancellation_effective_at: null,
    suspend_reason: null,
    scheduled_plan_id: null,
    scheduled_quantity: null,
    po_number: input.poNumber ?? null,
    invoice_notes: input.invoiceNotes ?? null,
    repeat: input.repeat === undefined ? plan.repeat : input.repeat,
    settled_at: null,
    charged_basis: null,
    add_on_charge_at: null,
    add_on_charge_suspension: null,
  };
}

/**
 * Creates a subscription, redeems its coupon and, when its first period starts now, invoices that
 * period at once (finalized, `charge_at = now`), all in one transaction. Logs `subscription.created`.
 * @throws NotFoundError customer or plan; ConflictError `plan_inactive` and coupon refusals;
 * ValidationError payment method, start, coupon, and (field `quantity`) a period billing more than
 * 10^15 minor units (`refuseUninvoiceablePeriod`)
 */
export async function createSubscription(
  db: Db,
  actor: Actor,
  input: NewSubscription,
  now: Date,
): Promise<SubscriptionChange> {
  return inUnitOfWork(db, { actor }, (work) => insertSubscription(work, input, now));
}

/**
 * `createSubscription` inside the caller's unit of work (which has joined the ledger's writers).
 * @throws as `createSubscription`
 */
export async function insertSubscription(
  work: UnitOfWork,
  input: NewSubscription,
  now: Date,
): Promise<SubscriptionChange> {
  const { plan, startAt } = await checkNewSubscription(work.trx, input, now);
  const row = newSubscriptionRow(input, plan, startAt, now);
  const subscription = await work.trx
    .insertInto('subscriptions')
    .values({ ...row, metadata: JSON.stringify(row.metadata), charged_basis: null })
    .returningAll()
    .executeTakeFirstOrThrow();
  await subscriptionActivity(work, subscription, 'subscription.created', {
    plan: plan.id,
    status: subscription.status,
    quantity: subscription.quantity,
    start_at: subscription.start_at,
    trial_end_at: subscription.trial_end_at,
  });
  if (input.couponCode) {
    await redeemCoupon(
      work,
      subscription,
      { currency: plan.currency, productId: plan.product_id },
      input.couponCode,
      now,
    );
  }
  await refuseUninvoiceablePeriod(work.trx, subscription, plan, subscription.quantity);
  return renewLocked(work, subscription, plan, now);
}

/** @throws NotFoundError when there is no subscription `id` */
export async function getSubscription(db: Kysely<Database>, id: string): Promise<SubscriptionRow> {
  const row = await db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('subscription', id);
  return row;
}

/** Runs `fn` on subscription `id` locked in a transaction that joined the ledger's writers. */
async function withSubscription<T>(
  db: Db,
  actor: Actor,
  id: string,
  fn: (work: UnitOfWork, subscription: SubscriptionRow) => Promise<T>,
): Promise<T> {
  return inUnitOfWork(db, { actor }, async (work) => fn(work, (await lockSubscription(work, id))!));
}

/**
 * What `updateSubscription` may change: metadata (replaced), the payment method charged, and the PO
 * number and notes of its invoices from now on (null clears them; invoices made already keep theirs).
 */
export interface SubscriptionUpdate {
  metadata?: Record<string, string>;
  paymentMethodId?: string;
  poNumber?: string | null;
  invoiceNotes?: string | null;
}

/**
 * Updates a subscription's metadata or payment method; logs `subscription.updated`.
 * @throws NotFoundError; ValidationError when the payment method is not the customer's
 */
export async function updateSubscription(
  db: Db,
  actor: Actor,
  id: string,
  update: SubscriptionUpdate,
  now: Date,
): Promise<SubscriptionRow> {
  return withSubscription(db, actor, id, async (work, subscription) => {
    if (update.paymentMethodId)
      await checkPaymentMethod(work.trx, subscription.customer_id, update.paymentMethodId);
    const updated = await work.trx
      .updateTable('subscriptions')
      .set({
        ...(update.metadata !== undefined ? { metadata: JSON.stringify(update.metadata) } : {}),
        ...(update.paymentMethodId !== undefined ? { payment_method_id: update.paymentMethodId } : {}),
        ...(update.poNumber !== undefined ? { po_number: update.poNumber } : {}),
        ...(update.invoiceNotes !== undefined ? { invoice_notes: update.invoiceNotes } : {}),
        updated_at: now,
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await subscriptionActivity(work, updated, 'subscription.updated', {
      metadata: update.metadata,
      payment_method: update.paymentMethodId,
      po_number: update.poNumber,
      invoice_notes: update.invoiceNotes,
    });
    return updated;
  });
}

/**
 * Cancels a subscription now (→ CANCELLED) or at the end of its current period (sets
 * `cancel_at_period_end`, logs `subscription.cancellation_scheduled`; renewal then cancels), with no
 * refund: `cancelLocked` (cancellation.ts) with `refund_type: none`. Cancelling now first bills the
 * usage not billed yet up to now on a final invoice (`invoiceUsageUntil`, billing reason
 * `subscription_update`; none when there is no such usage); at period end, the renewal does the same
 * up to the end. Either voids the unpaid invoices a settled term made of the periods after the end.
 * @throws NotFoundError; ConflictError `subscription_cancelled` when it is cancelled already,
 * `cancellation_scheduled` when a cancellation is already scheduled, `later_period_not_voidable` when
 * such an invoice is partly paid or has a charge in flight
 */
export async function cancelSubscription(
  db: Db,
  actor: Actor,
  id: string,
  atPeriodEnd: boolean,
  now: Date,
): Promise<SubscriptionRow> {
  return withSubscription(db, actor, id, async (work, subscription) => {
    const when = atPeriodEnd ? 'period_end' : 'now';
    return (await cancelLocked(work, subscription, { when, refundType: 'none' }, now)).subscription;
  });
}

/**
 * Suspends a subscription, storing `reason` as `suspend_reason`: no invoices while SUSPENDED, unless
 * `BILL_SUSPENDED_SUBSCRIPTIONS` is on (renewal.ts `RenewalPolicy`). It is first renewed up to `now`
 * as the renewal sweep would (`renewedUpTo`), so a period that started before the sweep ran is
 * invoiced as with a sweep on time, not left unbilled by the suspension. An add-on charge pending
 * since a payment's reactivation whose making fails is left pending (renewal.ts `renewLocked` with
 * `'try'`; `add_on_charge_pending` in the `subscription.suspended` activity): the suspension happens
 * all the same and the renewal sweep makes the charge once it can, for the time from its moment to
 * the period's end, as after dunning's suspension.
 * @param reason the caller's reason, ≤ 1000 characters (the API checks it)
 * @throws NotFoundError; ConflictError `invalid_subscription_transition` unless it is IN_TRIAL,
 * ACTIVE or PAST_DUE (or once that renewal ended it: CANCELLED at its scheduled end)
 */
export async function suspendSubscription(
  db: Db,
  actor: Actor,
  id: string,
  now: Date,
  reason?: string,
): Promise<SubscriptionRow> {
  return withSubscription(db, actor, id, async (work, locked) => {
    if (locked.status === 'SUSPENDED') {
      throw new ConflictError('invalid_subscription_transition', `subscription ${id} is already SUSPENDED`);
    }
    // The periods that started before now are billed as the renewal sweep bills them, whatever its lag.
    // An add-on charge pending since a payment's reactivation whose making fails is left pending
    // ('try'), as dunning's suspension leaves it: the renewal sweep makes it once it can (the time
    // from its moment was served; a suspension credits none of it).
    const renewed = await renewedUpTo(work, locked, now, DEFAULT_RENEWAL_POLICY, 'try');
    // The person's reason under its own key: `reason` is the system's (`dunning`, reinstate.ts).
    return transitionSubscription(
      work,
      renewed.subscription,
      'SUSPENDED',
      now,
      { suspend_reason: reason ?? null, ...leftPendingData(locked, renewed) },
      reason ?? null,
    );
  });
}

/**
 * SUSPENDED → ACTIVE, clearing `suspend_reason`: `resumeSuspended` (reinstate.ts), the step a payment
 * that reinstates a subscription dunning suspended shares. Billing resumes with the period containing
 * `now`, invoiced at once here (`renewLocked`) unless it was invoiced before the suspension, when the
 * add-on units set while suspended are charged from `now` instead (add-on-proration.ts
 * `reactivationAddOnCharge`, made by the same renewal); the periods wholly missed while suspended are never invoiced (with `policy.billSuspended` none were
 * missed: they were billed).
 * A settled term (terms.ts) invoiced those missed periods ahead: their unpaid invoices are voided
 * (`voidInvoicedAhead`, reason `subscription_reactivated`), the periods starting at or after
 * `suspended_at` and ending at or before `now` (never served; the suspended period and the current
 * one are served in part and kept owed). One partly paid or with a charge in flight is skipped, left
 * owed; paid ones are kept (refund them by hand). The `subscription.active` activity names them:
 * `voided_invoices`, `not_voided_invoices` (skipped), `kept_invoices` (paid). With
 * `policy.billSuspended` nothing is voided: suspended periods are billed. An add-on charge pending
 * since an earlier reactivation by a payment (suspended again since, by hand or by dunning) whose
 * making fails is left pending (`renewLocked` with `'try'`): the reactivation happens all the same
 * and the renewal sweep makes the charge once it can.
 * @throws NotFoundError; ConflictError `invalid_subscription_transition` unless it is SUSPENDED;
 *   ValidationError (field `usage`) when the invoice it resumes with would bill more than 10^15
 *   (`refuseUninvoiceableResumption`): nothing changes
 */
export async function reactivateSubscription(
  db: Db,
  actor: Actor,
  id: string,
  now: Date,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<SubscriptionChange> {
  return withSubscription(db, actor, id, async (work, subscription) => {
    if (subscription.status !== 'SUSPENDED') {
      throw new ConflictError(
        'invalid_subscription_transition',
        `subscription ${id} is ${subscription.status}; only a SUSPENDED subscription can be reactivated`,
      );
    }
    const plan = await getPlan(work.trx, subscription.plan_id);
    const active = await resumeSuspended(work, subscription, plan, now, policy);
    await refuseUninvoiceableResumption(work.trx, active);
    // An add-on charge pending since an earlier reactivation whose making fails is left pending.
    return renewLocked(work, active, plan, now, policy, 'try');
  });
}

/**
 * Refuses the reactivation of `subscription` (as `resumeSuspended` left it, inside the unit of work
 * that rolls back on the refusal) when the invoice its renewal makes could not be invoiced
 * (effective-amount.ts `resumptionBeyondBound`: the period it resumes at with the usage not billed
 * yet, every period missed while suspended, above 10^15 minor units). Accepted, the renewal threw
 * inside the reactivation on a field the request never sent (`lines`).
 * @throws ValidationError (field `usage`) naming the invoice's total, its usage and its fees
 */
async function refuseUninvoiceableResumption(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
): Promise<void> {
  const over = await resumptionBeyondBound(trx, subscription);
  if (over)
    throw new ValidationError('the reactivation could not be invoiced', {
      usage: `${over}; nothing changed`,
    });
}

/**
 * Redeems coupon `code` on subscription `id` (from its next invoice on: the subscription is first
 * renewed up to now as the renewal sweep would, `renewedUpTo` under `policy`, so a period that
 * started before the sweep ran is billed without it; with `policy.billSuspended` a SUSPENDED one's
 * too, as the sweep bills it).
 * @param policy the renewal policy of the configuration (`BILL_SUSPENDED_SUBSCRIPTIONS`)
 * @param now the moment of the redemption (the clock's by default)
 * @throws NotFoundError; ConflictError `subscription_cancelled`, `periods_invoiced_ahead` (a settled
 * term: its next invoices are made already, so the coupon would never discount them:
 * `refuseChangeInvoicedAhead`; nothing redeemed) and as `redeemCoupon`
 */
export async function addSubscriptionCoupon(
  db: Db,
  actor: Actor,
  id: string,
  code: string,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
  now: Date = new Date(),
): Promise<CouponRedemptionRow> {
  return withSubscription(db, actor, id, async (work, locked) => {
    // "The next period" is the one after the period holding now, whatever the renewal sweep's lag.
    // An add-on charge pending since a payment's reactivation whose making fails is left pending: the
    // coupon counts from the next period, not for the time that charge is for.
    const { subscription } = await renewedUpTo(work, locked, now, policy, 'try');
    if (subscription.status === 'CANCELLED') {
      throw new ConflictError('subscription_cancelled', `subscription ${id} is CANCELLED`);
    }
    await refuseChangeInvoicedAhead(work.trx, subscription);
    const plan = await getPlan(work.trx, subscription.plan_id);
    return redeemCoupon(
      work,
      subscription,
      { currency: plan.currency, productId: plan.product_id },
      code,
      now,
    );
  });
}

/**
 * Removes coupon redemption `redemptionId` from subscription `id`, redeemed on it or on one of its
 * add-ons (Billby's DELETE of a redeemed coupon on a subscription or a subscription add-on):
 * `endRedemption` sets `removed_at` and logs `coupon.removed`. From the next invoice on it discounts
 * nothing; invoices it already discounted keep their discount lines, and the coupon's
 * `times_redeemed` is unchanged (it was redeemed; the same coupon cannot be redeemed on this
 * subscription again). Removed already: returned unchanged, nothing logged. The subscription is
 * locked, so a renewal running now either applies it or not, never half; it is first renewed up to
 * `now` as the renewal sweep would (`renewedUpTo` under `policy`: with `policy.billSuspended` a
 * SUSPENDED one too), so a period that started before the sweep ran keeps the discount.
 * @param policy the renewal policy of the configuration (`BILL_SUSPENDED_SUBSCRIPTIONS`)
 * @throws NotFoundError for the subscription or a redemption that is not this subscription's;
 * ConflictError `periods_invoiced_ahead` (a settled term: the invoices it discounts ahead are made
 * already, so removing it would change nothing billed: `refuseChangeInvoicedAhead`; nothing changed)
 */
export async function removeSubscriptionCoupon(
  db: Db,
  actor: Actor,
  id: string,
  redemptionId: string,
  now: Date,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<CouponRedemptionRow> {
  return withSubscription(db, actor, id, async (work, locked) => {
    // "The next invoice" is the one after the period holding now, whatever the renewal sweep's lag.
    // An add-on charge pending since a payment's reactivation whose making fails is left pending: a
    // coupon removed after its moment still discounts it (coupons.ts `periodCoupons` at that moment).
    const { subscription } = await renewedUpTo(work, locked, now, policy, 'try');
    const redemption = await work.trx
      .selectFrom('coupon_redemptions')
      .selectAll()
      .where('id', '=', redemptionId)
      .where('subscription_id', '=', subscription.id)
      .executeTakeFirst();
    if (!redemption) throw new NotFoundError('coupon_redemption', redemptionId);
    if (redemption.removed_at !== null) return redemption;
    await refuseChangeInvoicedAhead(work.trx, subscription);
    return endRedemption(work, redemption, now);
  });
}
