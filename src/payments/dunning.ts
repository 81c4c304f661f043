import type { Logger } from 'pino';
import { billPendingProrations, voidInvoicedAhead } from '../billing/cancellation.ts';
import { recordFailedCollection } from '../billing/charge-schedule.ts';
import { invoiceActivity, lockInvoice } from '../billing/invoices.ts';
import { getPlan } from '../billing/plans.ts';
import { DUNNING_REASON } from '../billing/reinstate.ts';
import {
  DEFAULT_RENEWAL_POLICY,
  finalUsageUntil,
  invoiceUsageUntil,
  RENEWABLE,
  renewedUpTo,
} from '../billing/renewal.ts';
import { transitionSubscription } from '../billing/subscription-status.ts';
import type { Config } from '../config/env.ts';
import type { Db } from '../db/database.ts';
import type { InvoiceRow, SubscriptionRow, SubscriptionStatus } from '../db/schema.ts';
import { CURRENCY_TABLES } from '../gateways/currencies.ts';
import { capabilitiesOf } from '../gateways/registry.ts';
import type { GatewayName } from '../gateways/types.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { DAY_MS } from '../time.ts';
import { setAsideUnsendableCharge } from './charges.ts';

/**
 * The dunning schedule: `retryDays` are whole days after an invoice's first failed automatic charge
 * on which it is charged again (default 1, 3, 5, 7); once the last retry failed, the invoice's
 * subscription is SUSPENDED or CANCELLED (`finalAction`). The invoice itself stays OPEN, unscheduled:
 * still owed and still in receivables until someone is paid, voids it or marks it uncollectible.
 */
export interface DunningPolicy {
  retryDays: readonly number[];
  finalAction: 'SUSPEND' | 'CANCEL';
}

/** The dunning policy of the configuration (`DUNNING_RETRY_DAYS`, `DUNNING_FINAL_ACTION`). */
export function dunningPolicy(
  config: Pick<Config, 'DUNNING_RETRY_DAYS' | 'DUNNING_FINAL_ACTION'>,
): DunningPolicy {
  return { retryDays: config.DUNNING_RETRY_DAYS, finalAction: config.DUNNING_FINAL_ACTION };
}

/** Why an automatic collection failed: its attempt (none when no attempt could be made) and code. */
export interface CollectionFailure {
  transactionId?: string;
  code: string | null;
  message?: string | null;
}

/** What counting a failure decided. `nextChargeAt` null means the retries are used up. */
export interface DunningStep {
  invoiceId: string;
  attempts: number;
  nextChargeAt: Date | null;
  subscriptionStatus?: SubscriptionStatus;
}

/**
 * Counts one failed automatic collection of an OPEN invoice locked by `lockInvoice` (so its
 * subscription was locked before it: reading it again `FOR UPDATE` here waits for nothing), inside
 * `work` (joined to the ledger's writers): `payment_attempts` + 1; the first failure starts dunning
 * at `now`; the next charge is `dunning_started_at` + the next retry day, or none once the retries
 * are used up. Its subscription (if any) goes ACTIVE / IN_TRIAL → PAST_DUE, and after the last
 * retry → SUSPENDED or CANCELLED by `policy.finalAction`. Cancelling does what a cancel now does
 * first: renews it up to `now` as the renewal sweep would (`renewedUpTo`: the periods started by
 * then invoiced, each once, with the usage before them, and an add-on charge pending since a
 * payment's reactivation made; JPY 1000 a month + 2 a call, March unpaid, cancelled Apr 5 before
 * the sweep renewed April: April invoiced 1000 + March's usage, where before April was never billed)
 * and cancels it unless that renewal ended it (CANCELLED at its scheduled end); then voids the unpaid invoices a settled term made of the periods after the current one
 * (`voidInvoicedAhead`), skipping, not refusing, one partly paid or with a charge in flight (left
 * owed, named as `not_voided_invoices` in the `subscription.cancelled` activity beside
 * `voided_invoices`: the final action happens anyway), brings the charge of its OPEN
 * `prorate_at_renewal` change invoices to now (`billPendingProrations`, `billed_now_invoices`: 1000
 * DKK a month, up to 2000 on Feb 8 with 750 for Mar 1, cancelled by dunning Feb 12: charged Feb 12),
 * then invoices its usage not billed yet (`invoiceUsageUntil`). Suspending first renews it up to `now` as the renewal sweep would
 * (`renewedUpTo`, as a suspension by hand does: the default schedule's last retry on a weekly plan is
 * due seconds after the next week starts, so which sweep ran first decided whether that week was
 * billed), and suspends it unless that renewal ended it (CANCELLED at its scheduled end). Suspending
 * keeps a settled term's invoices ahead OPEN (a reactivation serves the periods from then on, and
 * the renewal does not invoice a period twice; it voids the unpaid ones of the periods wholly
 * missed: `reactivateSubscription`, or a payment that reinstates it: `reinstateAfterPayment`) but
 * the charge sweep leaves them while it is SUSPENDED (`claimInvoicesDue`). Logs `invoice.payment_failed` (and the subscription's change).
 */
export async function recordCollectionFailure(
  work: UnitOfWork,
  invoice: InvoiceRow,
  policy: DunningPolicy,
  now: Date,
  failure: CollectionFailure,
): Promise<DunningStep> {
  const attempts = invoice.payment_attempts + 1;
  const startedAt = invoice.dunning_started_at ?? now;
  const retryDay = policy.retryDays[attempts - 1];
  const nextChargeAt = retryDay === undefined ? null : new Date(startedAt.getTime() + retryDay * DAY_MS);
  await recordFailedCollection(
    work,
    invoice.id,
    { attempts, dunningStartedAt: startedAt, nextChargeAt },
    now,
  );
  await invoiceActivity(work, invoice, 'invoice.payment_failed', {
    attempt: attempts,
    transaction: failure.transactionId ?? null,
    failure_code: failure.code,
    failure_message: failure.message ?? null,
    next_charge_at: nextChargeAt?.toISOString() ?? null,
    retries_exhausted: nextChargeAt === null,
  });
  const step: DunningStep = { invoiceId: invoice.id, attempts, nextChargeAt };
  if (!invoice.subscription_id) return step;
  const subscription = await work.trx
    .selectFrom('subscriptions')
    .selectAll()
    .where('id', '=', invoice.subscription_id)
    .forUpdate()
    .executeTakeFirstOrThrow();
  const data = { reason: DUNNING_REASON, invoice: invoice.id, attempt: attempts };
  let status = subscription.status;
  if (nextChargeAt && (status === 'ACTIVE' || status === 'IN_TRIAL')) {
    status = (await transitionSubscription(work, subscription, 'PAST_DUE', now, data)).status;
  } else if (!nextChargeAt && (status === 'ACTIVE' || status === 'IN_TRIAL' || status === 'PAST_DUE')) {
    // As a cancellation or a suspension now by hand: the periods started by now are billed first, as
    // the renewal sweep on time bills them (whichever of the two sweeps runs first at a period's
    // start), and an add-on charge pending since a payment's reactivation (time served) is made
    // (`renewedUpTo`). That renewal may end it (CANCELLED at its scheduled end). A pending charge
    // whose making fails is left pending ('try'): the final action happens all the same, and the
    // renewal sweep makes the charge for the time served once it can.
    const { subscription: renewed, pendingChargeFailed } = await renewedUpTo(
      work,
      subscription,
      now,
      DEFAULT_RENEWAL_POLICY,
      'try',
    );
    if (!RENEWABLE.includes(renewed.status)) return { ...step, subscriptionStatus: renewed.status };
    if (policy.finalAction === 'CANCEL') {
      // The lock order of a cancellation: the subscription, its invoices, then the customer (the
      // voids giving credit back, the final invoice's finalization).
      const plan = await getPlan(work.trx, renewed.plan_id);
      const { voided, skipped } = await voidInvoicedAhead(work, renewed, {}, now, 'skip');
      // Changes charged at the period's end (prorate_at_renewal): no renewal comes, billed now.
      const billedNow = await billPendingProrations(work, renewed.id, now, now);
      const usageUntil = await finalUsageUntil(work.trx, renewed, now);
      const final = await invoiceUsageUntil(work, renewed, plan, usageUntil, now, 'subscription_update');
      status = (
        await transitionSubscription(work, renewed, 'CANCELLED', now, {
          ...data,
          final_invoice: final?.id,
          voided_invoices: voided,
          not_voided_invoices: skipped,
          billed_now_invoices: billedNow,
          ...leftPending(subscription, pendingChargeFailed),
        })
      ).status;
    } else {
      status = (
        await transitionSubscription(work, renewed, 'SUSPENDED', now, {
          ...data,
          ...leftPending(subscription, pendingChargeFailed),
        })
      ).status;
    }
  }
  return { ...step, subscriptionStatus: status };
}

/**
 * The `add_on_charge_pending` of a final action's activity when its renewal left the add-on charge
 * pending since `subscription`'s reactivation (`add_on_charge_at`) because making it failed
 * (`pendingChargeFailed`, renewal.ts `renewLocked` with `'try'`): when it was pending and why it
 * failed; nothing otherwise.
 */
function leftPending(
  subscription: Pick<SubscriptionRow, 'add_on_charge_at'>,
  pendingChargeFailed: string | undefined,
): { add_on_charge_pending?: { since: Date | null; error: string } } {
  if (pendingChargeFailed === undefined) return {};
  return { add_on_charge_pending: { since: subscription.add_on_charge_at, error: pendingChargeFailed } };
}

/**
 * Why `gateway` would refuse again a charge it refused with `code` (its capabilities'
 * `refusalsNotRetried`: Stripe `amount_too_small`), or undefined for an ordinary decline (retried by
 * dunning) or no code. Only the table's own entries count, never inherited object properties.
 */
export function refusalNotRetried(gateway: GatewayName, code: string | null): string | undefined {
  const refusals = capabilitiesOf(gateway).refusalsNotRetried;
  return code !== null && Object.hasOwn(refusals, code) ? refusals[code] : undefined;
}

/**
 * Counts the failure of automatic attempt `transactionId` once, whenever and however it became
 * failed (the gateway's answer, the poller, a webhook): the attempt is marked counted and, when its
 * invoice is still OPEN, `recordCollectionFailure` applies — unless the gateway refused the charge
 * itself with a code of its `refusalsNotRetried` (Stripe `amount_too_small`, `amount_too_large`):
 * then the invoice is set aside instead (`setAsideUnsendableCharge`: off the schedule, one exception
 * naming the code, no dunning step, no PAST_DUE), as a charge billhook cannot send is. Idempotent: a
 * counted, succeeded or manual attempt changes nothing.
 * @returns the dunning step taken, or undefined when there was nothing to count
 */
export async function countFailedAttempt(
  db: Db,
  actor: Actor,
  policy: DunningPolicy,
  transactionId: string,
  now: Date,
): Promise<DunningStep | undefined> {
  const known = await db
    .selectFrom('transactions')
    .select('invoice_id')
    .where('id', '=', transactionId)
    .executeTakeFirst();
  if (!known?.invoice_id) return undefined;
  const invoiceId = known.invoice_id;
  return inUnitOfWork(db, { actor }, async (work) => {
    const invoice = await lockInvoice(work, invoiceId);
    const attempt = await work.trx
      .selectFrom('transactions')
      .selectAll()
      .where('id', '=', transactionId)
      .forUpdate()
      .executeTakeFirstOrThrow();
    if (!attempt.automatic || attempt.status !== 'failed' || attempt.dunning_counted_at) return undefined;
    await work.trx
      .updateTable('transactions')
      .set({ dunning_counted_at: now })
      .where('id', '=', transactionId)
      .execute();
    if (invoice.status !== 'OPEN') return undefined;
    // The gateway refused the charge itself (Stripe amount_too_small): sending it again cannot help.
    const refusal = refusalNotRetried(attempt.gateway, attempt.failure_code);
    if (refusal) {
      await setAsideUnsendableCharge(
        work,
        invoice,
        attempt,
        `${CURRENCY_TABLES[attempt.gateway].gateway} refused the charge with code ${attempt.failure_code} (${attempt.failure_message ?? 'no message'}): ${refusal}`,
        now,
      );
      return undefined;
    }
    return recordCollectionFailure(work, invoice, policy, now, {
      transactionId,
      code: attempt.failure_code,
      message: attempt.failure_message,
    });
  });
}

/**
 * The dunning sweep: counts every failed automatic attempt not counted yet. This is the one place
 * every failure of an automatic charge passes, including outcomes learned late (a pending or unknown
 * charge that the poller or a webhook resolves as failed) and failures recorded just before a crash.
 * An attempt whose step fails (rolled back, still uncounted) is logged on `log` and left to the next
 * sweep: the others are counted all the same.
 * @returns the dunning steps taken
 */
export async function countFailedAttempts(
  db: Db,
  actor: Actor,
  policy: DunningPolicy,
  now: Date,
  log?: Logger,
): Promise<DunningStep[]> {
  const steps: DunningStep[] = [];
  let after = '';
  for (;;) {
    const uncounted = await db
      .selectFrom('transactions')
      .select('id')
      .where('automatic', '=', true)
      .where('status', '=', 'failed')
      .where('dunning_counted_at', 'is', null)
      .where('id', '>', after)
      .orderBy('id')
      .limit(100)
      .execute();
    for (const { id } of uncounted) {
      after = id;
      try {
        const step = await countFailedAttempt(db, actor, policy, id, now);
        if (step) steps.push(step);
      } catch (error) {
        // One attempt whose step cannot be taken (its catch-up renewal failing, say) is tried again
        // by the next sweep; it never stops the others' dunning, nor the sweep's charges after it.
        log?.warn(
          { transactionId: id, err: error instanceof Error ? error.message : String(error) },
          'dunning step failed',
        );
      }
    }
    if (uncounted.length < 100) return steps;
  }
}
