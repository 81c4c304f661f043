import type { Kysely } from 'kysely';
import type { CreditNoteRow, Database, InvoiceRow, SubscriptionRow, TransactionRow } from '../db/schema.ts';
import { ConflictError, ValidationError } from '../errors.ts';
import { gatewayStep } from '../gateways/currencies.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { upTo } from '../money/amount.ts';
import { periodAddOnInvoices } from './add-on-proration.ts';
import {
  overpaymentGivenBack,
  overpaymentShare,
  recurringGivenBack,
  recurringLines,
} from './credit-notes.ts';
import { creditCashRest, returnInvoiceCredit, type WholeRefund, wholeRefund } from './credit-returns.ts';
import {
  chargesInFlight,
  disputedAway,
  invoicePayments,
  type RefundPart,
  type RefundRoom,
  refundedInFlight,
  refundRooms,
  refundsInFlight,
  splitRefund,
  totalRoom,
} from './invoice-payment.ts';
import { lockInvoice, PAID_STATUSES, voidLocked } from './invoices.ts';
import { getPlan } from './plans.ts';
import {
  type ChargedBasis,
  changeCreditTakenBackOf,
  chargedBasis,
  chargedTotal,
  creditInvoice,
  prorate,
  secondsBetween,
  splitCredit,
} from './proration.ts';
import { reinstateAfterPayment, reinstateAfterVoid } from './reinstate.ts';
import {
  DEFAULT_RENEWAL_POLICY,
  finalUsageUntil,
  invoiceUsageUntil,
  type Renewal,
  type RenewalPolicy,
  renewedUpTo,
} from './renewal.ts';
import { subscriptionActivity, transitionSubscription } from './subscription-status.ts';
import { invoicedAhead } from './terms.ts';

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
 * Periods after the end that a settled term invoiced ahead (terms.ts) will not be served: their
 * unpaid invoices are voided with the cancellation (`voidInvoicedAhead`); paid ones are kept (a
 * refund of them is refused: `later_periods_paid`).
 * The refund (`full` or `prorate`) gives back what the period charged (its charged basis, proration.ts
 * `chargedBasis`: after a prorated change, the price it charged, not the period invoice's) out of
 * the money of the current period's paid invoice: cash
 * through the gateway payments that took it (newest first, each up to what it can still refund),
 * and the customer credit that paid the rest back to their credit; more owed than that is refused
 * (`refund_exceeds_payment`). The add-ons' proration invoices of the period (an add-on added or
 * raised mid-period: add-on-proration.ts) are reached the same way, each on its own: a paid one
 * gives back all it charged (`full`) or its unused share (`prorate`: the time after the cancellation
 * of what it charged for, from the moment it was set or, `full`, the period's start) from its own payments and credit; an unpaid
 * (OPEN) one is voided when all of it goes back, else owes that share less (`addOnRefunds`).
 * This module says how much of each (`cancellationRefund`) and gives the credit back (before a final
 * usage invoice, which takes it); payments/cancellations.ts sends the cash.
 */

/** When a cancellation takes effect. */
export type CancelWhen = 'now' | 'period_end' | 'date';

/** What to give back of the current period's paid invoices (the period invoice, its add-on invoices): nothing, all of it, or its unused share. */
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

/**
 * What a cancellation gives back of invoice `invoiceId`, minor units of its currency: `amount` in
 * cash, split over its gateway payments as `parts` (newest first, each up to what it can still
 * refund: `splitRefund`, each then down to its gateway's step: `onGatewaySteps`; they add up to
 * `amount`, none when it is 0), one refund each, `credit` to the customer's credit (a credit note
 * that gives back the customer credit that paid it), and `cashCredited`, the rest of the cash owed
 * that the gateways cannot take (below their step: Stripe KWD 667 owed, 660 in cash, 7 here), to the
 * customer's credit too (a credit note, `creditCashRest`).
 */
export interface CancellationRefund {
  invoiceId: string;
  amount: bigint;
  parts: RefundPart[];
  credit: bigint;
  cashCredited: bigint;
}

/**
 * The cash parts of a refund in `currency` each taken down to the largest amount its payment's
 * gateway takes (a multiple of its step, gateways/currencies.ts `gatewayStep`: Stripe BHD, JOD, KWD,
 * OMR, TND 10; Stripe MGA and PayPal HUF, TWD whole units, 100; ISK, UGX and JPY have no minor
 * unit below the whole one, so any amount is on step), pure; a part of a gateway
 * that does not take the currency at all is left as it is (its refund is refused, 422). PRODUCT §11:
 * nothing is rounded away, the rest is returned for the customer's credit.
 * @param parts minor units > 0 each (`splitRefund`)
 * @returns the parts on step (those taken down to 0 left out) and `rest`, minor units ≥ 0, what they
 * lost: Stripe KWD [667] → [660], rest 7; [5] → [], rest 5; PayPal HUF [6667] → [6600], rest 67
 */
export function onGatewaySteps(
  parts: readonly RefundPart[],
  currency: string,
): { parts: RefundPart[]; rest: bigint } {
  const out: RefundPart[] = [];
  let rest = 0n;
  for (const part of parts) {
    const step = gatewayStep(part.transaction.gateway, currency)?.step ?? 1n;
    const amount = part.amount - (part.amount % step);
    rest += part.amount - amount;
    if (amount > 0n) out.push({ transaction: part.transaction, amount });
  }
  return { parts: out, rest };
}

/**
 * What a cancellation did: the subscription, what to give back of each paid invoice of the period
 * (cash to send, `refunds[].amount`; the credit part given back already), and the credit notes of the
 * customer credit given back.
 */
export interface Cancellation {
  subscription: SubscriptionRow;
  /** One per paid invoice giving something back: the period invoice first, then its add-on invoices, oldest first; empty: none. */
  refunds: CancellationRefund[];
  /** The credit notes of the customer credit given back, in the order of `refunds`, then of the OPEN add-on invoices lowered. */
  creditNotes: CreditNoteRow[];
  /**
   * The invoices its catch-up renewal made first (`renewedUpTo`: the periods started by now that the
   * renewal sweep had not invoiced yet, with the usage before them, and an add-on charge pending
   * since a payment's reactivation), in the order made; empty when the sweep was on time.
   */
  catchUpInvoices: InvoiceRow[];
}

/** Two amounts of one invoice, minor units ≥ 0: what its payments paid in cash and what the customer's credit paid. */
export interface CashAndCredit {
  cash: bigint;
  credit: bigint;
}

/**
 * What a cancellation owes, minor units ≥ 0: `cash` to give back through the gateway payments,
 * `credit` of the customer credit applied to give back as credit, and `held`, owed of paid cash that
 * the payments can no longer refund (a cancellation owing any is refused: `refundOf`).
 */
export interface CancellationShares extends CashAndCredit {
  held: bigint;
}

/**
 * What a cancellation owes back before what was given back already (pure), minor units ≥ 0: 0 for
 * `none`, `recurring` for `full`, `prorate(recurring, unused, period)` for `prorate` (half up, by
 * whole seconds, as a mid-period change prorates: proration.ts).
 * @param recurring ≥ 0, as `cancellationRefund`'s
 */
export function refundOwed(
  type: RefundType,
  recurring: bigint,
  unusedSeconds: bigint,
  periodSeconds: bigint,
): bigint {
  return type === 'none'
    ? 0n
    : type === 'full'
      ? recurring
      : prorate(recurring, unusedSeconds, periodSeconds);
}

/**
 * What a cancellation gives back of a period's invoice, and how (pure). What it owes:
 * - `none`: 0;
 * - `full`: `recurring`;
 * - `prorate`: `prorate(recurring, unused, period)`, rounding half up by whole seconds as a
 *   mid-period change does (proration.ts).
 * Less what the invoice already gave back of those lines (`alreadyGiven`: an earlier cancellation's
 * refund, or a refund by hand), that is given back cash first, up to the cash still refundable, and
 * the rest as customer credit, up to the credit applied to the invoice not given back yet; what is
 * still owed then, up to the paid cash the payments can no longer refund (refunds of customer credit
 * they carried, or an offline part, took that room), is `held`; never more than owed in total, never
 * negative. Cash first because cash is what the customer asked back and what a gateway can still
 * return; the credit they paid with comes back as credit, as Chargebee and Recurly do (the part of a
 * refund paid by credits is refunded as credits), so nothing the customer paid for the unused time
 * is lost. When all are short (an invoice refunded by hand already), less than owed is given back.
 * @param recurring what the period cost, tax included, ≥ 0: for `full` all its invoices charged net
 * for its recurring lines (plan price after coupons, add-ons, and its prorated changes: `refundOf`),
 * for `prorate` what is in force was charged for the whole period (its charged basis)
 * @param returnable what is still returnable of the invoice: `cash` = paid − refunded, up to what its
 * gateway payments can still refund together, `credit` = credit applied − credit returned, `held` (0
 * when omitted) = the rest of paid − refunded, which the payments can no longer refund (owed, it is
 * reported as `held`, not given back: `refundOf` refuses), each ≥ 0
 * @param alreadyGiven what the invoice gave back before of its recurring lines, ≥ 0 (`refundOf`)
 * @param unusedSeconds seconds of the period after the cancellation takes effect, 0 … periodSeconds
 * @param periodSeconds the period's length, > 0
 * @returns `cash` 0 … returnable.cash, `credit` 0 … returnable.credit and `held` 0 … returnable.held,
 * with cash + credit + held ≤ owed; the customer keeps paying `recurring − refund` for the used
 * time, so refund + kept = recurring exactly when the returnable amounts cover what is owed
 */
export function cancellationRefund(
  type: RefundType,
  recurring: bigint,
  returnable: CashAndCredit & { held?: bigint },
  alreadyGiven: bigint,
  unusedSeconds: bigint,
  periodSeconds: bigint,
): CancellationShares {
  const owed = refundOwed(type, recurring, unusedSeconds, periodSeconds) - alreadyGiven;
  const cash = upTo(owed, returnable.cash);
  const credit = upTo(owed - cash, returnable.credit);
  return { cash, credit, held: upTo(owed - cash - credit, returnable.held ?? 0n) };
}

/**
 * The refund of a cancellation of a locked subscription taking effect at `effectiveAt`: the current
 * period's invoice gives back (`periodInvoiceRefund`) when paid (PAID, PARTIALLY_REFUNDED, or
 * REFUNDED with customer credit still to give back), its cash by gateway payments, with something
 * left (cash or credit); else (OPEN, UNCOLLECTIBLE, paid offline, free, refunded by hand) it gives
 * nothing back and only the add-on invoices of the period do; its recurring
 * lines (the plan's line and its coupon lines: `plan_id` set, no `metric_code`; the add-ons' lines:
 * `add_on_id` set) with their tax are what the period cost; the one-off setup fee is not refunded. Usage lines (billed in arrears, for the period before) are not refunded.
 * After prorated changes in the period, what it owes comes from what was charged
 * (`chargedBasis`): `full` gives back all the period's invoices charged net (the recurring lines
 * plus what the changes invoiced, less what they credited), `prorate` the unused time of what is in
 * force at the price its latest prorated change charged (the add-ons' as invoiced); both from the
 * period invoice's payments and credit, so: refused when a change's invoice is not PAID or gave
 * money back (`refuseUnsettledChanges`), or when the period invoice holds less than owed (the rest
 * was paid by a change's invoice).
 * The period's add-on proration invoices (add-on-proration.ts: each charged an add-on's units from the
 * moment they were set to the period's end) are none of the period invoice's: each gives back its
 * own unused share (`full`: all of it) from its own payments and credit, or, unpaid, owes less
 * (`addOnRefunds`), after the period invoice. A period invoice that owes its share but cannot give
 * it (unpaid, or paid offline) refuses such a refund rather than leave the period out.
 * What it owes is given back cash first, then as the customer credit that paid it
 * (`cancellationRefund`); the cash part is capped at what its gateway payments can still refund
 * together (`refundable` of each: every refund on it, of customer credit it carried too) and split
 * over them newest first, each up to its own room (`splitRefund`, as a customer-credit refund
 * splits); an invoice the customer's credit paid whole gives back credit only. What its refunds
 * took back of the period's change credit (a dashboard refund beyond what the period kept:
 * `changeCreditTakenBackOf`) paid back the customer's credit, so it is not counted as given back of
 * the period; what disputes took of its payments and hold or lost (`disputedAway`: a chargeback) is,
 * as a refund: neither cash left to refund nor owed again (a won dispute gives it back).
 * @returns the refunds (cash `amount` and its `parts`, `credit`), the period invoice's first (none
 * when it owes nothing), then the add-on invoices' (`addOnRefunds`), and the OPEN add-on invoices'
 * shares to take off (`settleUnpaid`); nothing when `type` is `none`
 * @throws ConflictError `nothing_to_refund` when the subscription has no billed current period, or
 * nothing of the period has anything to give back: its invoice is not paid, its cash left was not
 * paid by a gateway payment (an offline payment) or nothing of it is left (no cash, no credit), and
 * no add-on invoice of the period owes anything back (`addOnRefunds`); `period_invoice_not_refundable`
 * when add-on invoices of the period would give back their share while the period invoice, owing
 * its share too, cannot (`unreachableShare`: OPEN or UNCOLLECTIBLE, or paid offline);
 * `refund_in_flight` (naming the refunds) when something is owed and a refund of
 * the invoice's payments is still `pending` or `unknown`: its outcome decides what is owed, so the
 * cancellation is refused and changes nothing (not counted as given back: the customer would lose it
 * if it fails; not counted as not given: both would go back if it succeeds), or a refund of an
 * invoice of the period's prorated changes is (naming that invoice and the amount in flight,
 * `refuseUnsettledChanges`);
 * `invoice_overpaid` when something is owed and the invoice was paid more than it asked (a
 * duplicate payment) beyond what its own refunds gave back: a refund gives the overpayment back
 * first, so less of the period would go back than owed;
 * `refund_exceeds_payment` when more is owed than all the invoice's gateway payments
 * (`invoicePayments`) can still refund plus the credit applied: other refunds on them (of customer
 * credit they carried) or a part paid offline hold the rest, which billhook cannot give back (it is
 * not turned into credit here); `later_periods_paid` when invoices of later periods (a settled term) hold money not
 * refunded yet (paid in cash, even partly, or by credit; not an unpaid OPEN invoice, which the
 * cancellation voids); ValidationError (field `refund_type`) when the cancellation takes effect after the
 * current period, when a prorated change of the period has an invoice not PAID or given back since,
 * when it owes more than the period invoice can give back (the rest paid by a change's invoice), or
 * when a prorated change of the period ran before charged bases were stored (`chargedBasis`); and
 * as `addOnRefunds` (an add-on invoice's own refusals: the same codes, and `charge_in_flight`, or
 * 422 `refund_type` for one OPEN and paid in part, DRAFT or UNCOLLECTIBLE)
 */
async function refundOf(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  type: RefundType,
  effectiveAt: Date,
): Promise<PeriodRefunds> {
  if (type === 'none') return { refunds: [], unpaid: [] };
  const trx = work.trx;
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
    .where((eb) =>
      eb.or([
        eb.and([eb('amount_paid', '>', 0n), eb('amount_refunded', '<', eb.ref('amount_paid'))]),
        // A voided invoice gave its credit back (`returnAppliedCredit`) without counting it here, and
        // an unpaid OPEN one is voided by this cancellation (`voidInvoicedAhead`), giving it back.
        eb.and([
          eb('status', 'not in', ['VOID', 'OPEN', 'DRAFT']),
          eb('credit_returned', '<', eb.ref('credit_applied')),
        ]),
      ]),
    )
    .execute();
  if (paidAhead.length > 0) {
    throw new ConflictError(
      'later_periods_paid',
      `subscription ${subscription.id} has later periods paid ahead, in cash or by customer credit (${paidAhead.map((i) => i.id).join(', ')}): this refund covers the current period only; refund the cash of those invoices first (POST /v1/invoices/:id/refund) and give back the customer credit that paid them (POST /v1/invoices/:id/credit/return), or cancel with refund_type none`,
    );
  }
  // Locked before anything else of the cancellation but its subscription (its final invoice may lock
  // the customer: subscription → invoice → customer, `lockInvoice`), and read under the lock, so a
  // refund racing this cancellation is counted in `alreadyGiven` or waits for it.
  const period = await trx
    .selectFrom('invoices')
    .select('id')
    .where('subscription_id', '=', subscription.id)
    .where('period_index', '=', subscription.current_period_index)
    .executeTakeFirst();
  const invoice = period ? await lockInvoice(work, period.id) : undefined;
  // The payments the cash part is split over and sent on (payments/cancellations.ts refunds `parts`).
  const payments = invoice ? await invoicePayments(trx, invoice.id) : [];
  // A dispute open or lost (not carried by a refund) gave the customer that cash back already
  // (`disputedAway`): neither cash left nor owed again.
  const disputed = invoice ? await disputedAway(trx, invoice.id) : 0n;
  // Cash given to the customer's credit for want of a gateway step (`cash_credited`) is given back.
  const paid = invoice
    ? invoice.amount_paid - invoice.amount_refunded - invoice.cash_credited - disputed
    : 0n;
  const credit = invoice ? invoice.credit_applied - invoice.credit_returned : 0n;
  // The period invoice gives nothing back when it is not paid (OPEN, UNCOLLECTIBLE, none), its cash
  // left was not paid by a gateway payment (offline), or nothing of it is left (free, refunded by
  // hand): then only the add-on invoices of the period do, and with none of them either, refused.
  const reachable =
    invoice !== undefined &&
    PAID_STATUSES.includes(invoice.status) &&
    !(paid > 0n && payments.length === 0) &&
    !(paid <= 0n && credit <= 0n);
  const own = reachable
    ? await periodInvoiceRefund(work, subscription, invoice, payments, type, effectiveAt)
    : null;
  const addOns = await addOnRefunds(work, subscription.id, type, { start, end }, effectiveAt);
  if (!reachable && addOns.refunds.length === 0 && addOns.unpaid.length === 0) {
    throw new ConflictError(
      'nothing_to_refund',
      `the current period's invoice of subscription ${subscription.id} has no gateway payment or customer credit to give back, nor has any add-on invoice of the period`,
    );
  }
  // The add-on invoices would give back their share while the period invoice, which owes its share
  // too, gives nothing: refused rather than left out of the answer without a word.
  const unreachable = invoice && !reachable ? unreachableShare(invoice, paid, payments) : undefined;
  if (invoice && unreachable) {
    throw new ConflictError(
      'period_invoice_not_refundable',
      `the current period's invoice ${invoice.id} of subscription ${subscription.id} ${unreachable}, so this cancellation would give back the period's add-on invoices but not its share of the period. Nothing changed; ${invoice.status === 'OPEN' || invoice.status === 'UNCOLLECTIBLE' ? `void it (POST /v1/invoices/${invoice.id}/void) or have it paid, then cancel again, or ` : ''}cancel with refund_type none and give back by hand what each invoice owes (POST /v1/invoices/:id/refund, POST /v1/invoices/:id/credit/return)`,
    );
  }
  return { refunds: own ? [own, ...addOns.refunds] : addOns.refunds, unpaid: addOns.unpaid };
}

/**
 * Why the current period's invoice (locked), which a cancellation's refund cannot reach, still owes
 * its share of the period, or undefined when it owes none: unpaid (`OPEN`, `UNCOLLECTIBLE`: owed
 * whole for a period cut short), or its cash left (`paid`, minor units) paid by no gateway payment
 * (offline), which billhook cannot send back. A free, voided or wholly given back one owes nothing.
 * @param payments its gateway payments (`invoicePayments`)
 */
function unreachableShare(
  invoice: InvoiceRow,
  paid: bigint,
  payments: readonly TransactionRow[],
): string | undefined {
  if (invoice.status === 'OPEN' || invoice.status === 'UNCOLLECTIBLE') {
    return `is ${invoice.status}, owed whole`;
  }
  if (paid > 0n && payments.length === 0) {
    return `was paid ${paid} ${invoice.currency} outside any gateway (an offline payment), which billhook cannot refund`;
  }
  return undefined;
}

/**
 * The refund of the current period's invoice (locked, paid: `refundOf` checked it has a gateway
 * payment or customer credit to give back) for a cancellation of `type` taking effect at
 * `effectiveAt`, as `refundOf` describes; null when it owes nothing.
 * @param payments its gateway payments (`invoicePayments`), newest first
 * @throws as `refundOf` (but `nothing_to_refund` and `later_periods_paid`)
 */
async function periodInvoiceRefund(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  invoice: InvoiceRow,
  payments: TransactionRow[],
  type: RefundType,
  effectiveAt: Date,
): Promise<CancellationRefund | null> {
  const trx = work.trx;
  const { basis, of } = await periodRefundTerms(trx, subscription, invoice, type, effectiveAt);
  const changed = basis.invoices.length > 0 || basis.changesTotal !== 0n;
  const given = await givenBackOf(trx, invoice, payments, type, of);
  // After a prorated change that charged more (an upgrade), the period invoice may hold less than the
  // period owes back: the rest was paid by the change's invoice, which this refund does not reach.
  const { shares, owed } = given;
  if (owed > 0n) await refuseUnsettledChanges(trx, basis, type, invoice.currency);
  const reached = shares.cash + shares.credit + shares.held;
  if (changed && reached < owed) {
    throw new ValidationError('refund beyond the period invoice', {
      refund_type: `this ${type} refund owes ${owed} ${invoice.currency} back for the period, but its invoice ${invoice.id} can give back only ${reached}: the other ${owed - reached} was paid by the invoices of this period's changes${basis.invoices.length ? ` (${basis.invoices.join(', ')})` : ''}, which a cancellation does not refund. Nothing changed; cancel with refund_type none, then ${await byHandInstead(trx, invoice, basis.invoices, type, owed)}`,
    });
  }
  return refundFrom(invoice, given);
}

/** What a `full` or `prorate` refund of a period gives back from (`periodRefundTerms`). */
interface PeriodRefundTerms {
  /** The period's charged basis (`chargedBasis`). */
  basis: ChargedBasis;
  /** What `givenBackOf` works the amount owed from (minor units; `unused` and `length` in seconds). */
  of: { cost: bigint; recurring: bigint; unused: bigint; length: bigint; takenOff: bigint };
}

/**
 * What a cancellation's refund of `type` taking effect at `effectiveAt` gives back of the current
 * period's invoice `invoice` of `subscription` from: what the period charged, from what its invoices
 * charged (`chargedBasis`), not today's prices — for `full` all of it net (the period invoice's
 * recurring lines and what its prorated changes charged or credited, at least 0), for `prorate` what
 * is in force cost for the whole period (its plan as the latest prorated change charged it, else as
 * the period invoice did, and the add-ons' lines) — with the invoice's recurring lines, the unused
 * time from `effectiveAt` to the period's end and the period's length (seconds). Used when the
 * refund is made (`periodInvoiceRefund`) and worked again later (`cancellationOwedNow`).
 * @throws ValidationError as `chargedBasis` and `refuseProrateBeyondChange`
 */
async function periodRefundTerms(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  invoice: InvoiceRow,
  type: RefundType,
  effectiveAt: Date,
): Promise<PeriodRefundTerms> {
  const start = subscription.current_period_start!;
  const end = subscription.current_period_end!;
  const { lines, recurring } = await recurringLines(trx, invoice.id);
  const sumOf = (of: typeof lines) => of.reduce((total, l) => total + l.amount + l.tax_amount, 0n);
  const basis = await chargedBasis(trx, subscription, subscription.current_period_index!, 'refund_type');
  refuseProrateBeyondChange(type, basis, end);
  const net = recurring + basis.changesTotal;
  const cost =
    type === 'full'
      ? net > 0n
        ? net
        : 0n
      : chargedTotal(basis.plan) + sumOf(lines.filter((l) => l.add_on_id !== null));
  const [unused, length] = [secondsBetween(effectiveAt, end), secondsBetween(start, end)];
  return { basis, of: { cost, recurring, unused, length, takenOff: 0n } };
}

/**
 * What subscription `invoice.subscription_id`'s cancellation still owes back of `invoice`, its last
 * period's invoice (locked by the caller), worked again now from the cancellation's stored facts
 * (`cancellation_refund_type` `full` or `prorate`, `cancellation_effective_at`) as
 * `periodInvoiceRefund` worked it when it was made: what the refund owes for the period less what
 * the invoice has given back since (its refunds, the credit it returned, what disputes open or lost
 * took: `givenBackOf`). A dispute that counted as given back when the cancellation was made and has
 * since come back to the merchant (won, or lost for less) no longer counts, so what the cancellation
 * did not give back because of it is owed again: JPY 3000 by card, 2500 of it disputed, cancelled
 * with `prorate` at a third of the period (2000 owed, the 2500 counted as given back: nothing
 * refunded), the dispute won: 2000. Used by payments/disputes.ts `returnedAfterGivingBack`.
 * @returns minor units of the invoice's currency ≥ 0, with the refund type and effective moment; or
 *   undefined when it cannot be worked out exactly: the subscription is not CANCELLED with a `full`
 *   or `prorate` refund, `invoice` is not its last period's invoice, or that period's charged basis
 *   cannot be read (a change made before bases were stored, or a `prorate` over a change charged up
 *   to a scheduled cancellation: `refuseProrateBeyondChange`)
 */
export async function cancellationOwedNow(
  work: UnitOfWork,
  invoice: InvoiceRow,
): Promise<{ owed: bigint; refundType: 'full' | 'prorate'; effectiveAt: Date } | undefined> {
  if (invoice.subscription_id === null || invoice.period_index === null) return undefined;
  const trx = work.trx;
  const subscription = await trx
    .selectFrom('subscriptions')
    .selectAll()
    .where('id', '=', invoice.subscription_id)
    .executeTakeFirst();
  const type = subscription?.cancellation_refund_type;
  const effectiveAt = subscription?.cancellation_effective_at;
  if (subscription?.status !== 'CANCELLED' || !effectiveAt) return undefined;
  if (type !== 'full' && type !== 'prorate') return undefined;
  const start = subscription.current_period_start;
  const end = subscription.current_period_end;
  if (subscription.current_period_index !== invoice.period_index || !start || !end) return undefined;
  let terms: PeriodRefundTerms;
  try {
    terms = await periodRefundTerms(trx, subscription, invoice, type, effectiveAt);
  } catch (error) {
    if (error instanceof ValidationError) return undefined;
    throw error;
  }
  const { owed } = await givenBackOf(trx, invoice, await invoicePayments(trx, invoice.id), type, terms.of);
  return { owed: owed > 0n ? owed : 0n, refundType: type, effectiveAt };
}

/**
 * Refuses a `prorate` refund (`type`) of a period whose latest prorated change charged its plan only
 * up to `basis.until` (a cancellation at that date, scheduled within the period, came first:
 * proration.ts `servedUntil`): the period's time after it was charged before that change, at a price
 * the charged basis no longer holds, so the unused time up to the period's `end` cannot be worked
 * out exactly. A `full` refund (what the period's invoices charged, net) or `none` still can.
 * @throws ValidationError (field `refund_type`)
 */
function refuseProrateBeyondChange(type: RefundType, basis: ChargedBasis, end: Date): void {
  const until = basis.until;
  if (type !== 'prorate' || !until) return;
  throw new ValidationError('prorate refund over a change up to a scheduled cancellation', {
    refund_type: `a prorated change of this period was made after its cancellation at ${until.toISOString()} was scheduled, so it charged the new price up to then only; what the time from then to the period's end (${end.toISOString()}) was charged is not known here. Nothing changed; cancel with refund_type full or none (then refund by hand: POST /v1/invoices/:id/refund)`,
  });
}

/**
 * What to refund by hand instead of a cancellation's `type` refund owing `owed` (minor units) of a
 * period whose change invoices `changeInvoices` paid part of it, its locked period invoice `invoice`
 * holding less (the refusal in `refundOf`): the text after "then", naming requests that work when
 * followed literally, each with what it gives back now (`wholeRefund` of each invoice). A refund by
 * hand of the period invoice gives back in cash at most what it kept of the period, its change
 * credit to the customer counted, not all its cash; a change invoice gives back its cash through its
 * payments and, as credit, the customer credit it took (payments/refunds.ts `refundInvoice`), or,
 * with no cash its payments can refund, that credit alone (`POST /v1/invoices/:id/credit/return`,
 * `returnCreditByHand`: a whole refund would be 409 `only_credit_left`). `full`: each invoice whole,
 * the amount omitted, which gives back what the period kept, and the period invoice's customer
 * credit by `POST /v1/invoices/:id/credit/return` once cancelled (`returnCreditByHand`). `prorate`: amounts, the period invoice's cash
 * up to what it can give back by hand, then each change invoice's cash, then its credit as credit,
 * in order, until `owed` is covered (the rest, if any, named as beyond what can go back by hand).
 */
async function byHandInstead(
  trx: Kysely<Database>,
  invoice: InvoiceRow,
  changeInvoices: readonly string[],
  type: RefundType,
  owed: bigint,
): Promise<string> {
  const whole = await wholeRefund(trx, invoice);
  const c = invoice.currency;
  const rows = changeInvoices.length
    ? await trx.selectFrom('invoices').selectAll().where('id', 'in', changeInvoices).execute()
    : [];
  const changes: { row: InvoiceRow; whole: WholeRefund }[] = [];
  for (const id of changeInvoices) {
    const row = rows.find((r) => r.id === id);
    if (row) changes.push({ row, whole: await wholeRefund(trx, row) });
  }
  const refundPath = (id: string) => `POST /v1/invoices/${id}/refund`;
  const creditPath = (id: string) => `POST /v1/invoices/${id}/credit/return`;
  if (type === 'full') {
    const credit =
      whole.credit > 0n
        ? `; its ${whole.credit} ${c} of customer credit by ${creditPath(invoice.id)} with no amount once cancelled`
        : '';
    const own =
      whole.cash > 0n
        ? `${refundPath(invoice.id)} with no amount (${whole.cash} ${c} in cash: what it kept of the period, the change credit to the customer counted${credit})`
        : `nothing of ${invoice.id} by hand (it has no cash left to give back of what it kept${credit})`;
    const each = changes.map(({ row, whole: w }) => {
      if (w.cash > 0n) {
        const asCredit =
          w.credit > 0n ? ` and ${w.credit} ${c} of the customer credit it took, as credit` : '';
        return `${refundPath(row.id)} with no amount (${w.cash} ${c} in cash${asCredit})`;
      }
      if (w.credit > 0n) {
        return `${creditPath(row.id)} with no amount (${w.credit} ${c} of the customer credit it took, as credit: it has no cash to refund)`;
      }
      return `nothing of ${row.id} (it kept nothing the period's change credit does not carry)`;
    });
    return `refund each invoice of the period whole by hand: ${[own, ...each].join('; ')}`;
  }
  // prorate: the period invoice's cash first, then each change invoice's cash, then its credit.
  const steps: string[] = [];
  let rest = owed;
  const take = (most: bigint) => {
    const part = rest < most ? rest : most;
    rest -= part;
    return part;
  };
  const own = take(whole.cash);
  if (own > 0n) steps.push(`${refundPath(invoice.id)} {"amount": ${own}} (cash)`);
  for (const { row, whole: w } of changes) {
    const cash = take(w.cash);
    if (cash > 0n) steps.push(`${refundPath(row.id)} {"amount": ${cash}} (cash)`);
    const credit = take(w.credit);
    if (credit > 0n)
      steps.push(`${creditPath(row.id)} {"amount": ${credit}} (the customer credit it took, as credit)`);
  }
  const beyond = rest > 0n ? `; the other ${rest} ${c} cannot be given back by hand` : '';
  return `give back ${owed} ${c} by hand: ${steps.join(', ')}${beyond}`;
}

/** What a cancellation gives back of the period's invoices: the paid ones' refunds and the unpaid add-on invoices' shares. */
interface PeriodRefunds {
  /** One per paid invoice that gives something back: the period invoice first, then its add-on invoices, oldest first. */
  refunds: CancellationRefund[];
  /** The period's OPEN add-on invoices the refund reaches, oldest first (`addOnRefunds`). */
  unpaid: UnpaidShare[];
}

/**
 * What a cancellation's refund takes off an OPEN add-on proration invoice (locked, nothing paid on
 * it, no charge in flight): `void` when it gives back all the invoice charged (`full`, or nothing of
 * its time served); else `offDue`, minor units > 0 … amount_due, taken off what it still owes, and
 * `credit`, minor units ≥ 0, the customer credit applied to it given back as credit (the unused share
 * beyond what it still owes).
 */
type UnpaidShare =
  | { invoice: InvoiceRow; void: true }
  | { invoice: InvoiceRow; void: false; offDue: bigint; credit: bigint };

/**
 * What a locked paid `invoice` owes back and can give back for a cancellation's refund of `type`
 * (`cancellationRefund` over its returnable cash and credit, less what it gave back before of its
 * recurring lines: `recurringGivenBack`), with what `refundFrom` checks: the refunds in flight on its
 * payments and what of an overpayment its refunds gave back. Read under the invoice's lock.
 * @param payments its gateway payments (`invoicePayments`), newest first
 * @param of `cost`, what its recurring time cost (minor units, tax included, ≥ 0), `recurring` its
 * recurring lines' total (`recurringLines`), `unused` of `length` seconds it charged for, and
 * `takenOff`, what an earlier cancellation took off it while it was owed (an add-on invoice's
 * `proration_credited`: `settleUnpaid`; 0 for the period invoice, whose `proration_credited` is
 * its changes', counted by its charged basis), given back already too
 * @returns `owed` (what is owed back after what was given back; may be ≤ 0) and its `shares`
 */
async function givenBackOf(
  trx: Kysely<Database>,
  invoice: InvoiceRow,
  payments: TransactionRow[],
  type: RefundType,
  of: { cost: bigint; recurring: bigint; unused: bigint; length: bigint; takenOff: bigint },
): Promise<GivenBack> {
  // A dispute open or lost (not carried by a refund) gave the customer that cash back already
  // (`disputedAway`): neither cash left nor owed again.
  const disputed = await disputedAway(trx, invoice.id);
  const paid = invoice.amount_paid - invoice.amount_refunded - invoice.cash_credited - disputed;
  // What the invoice gave back before, taken as given back of its other lines (setup fee, usage)
  // first: refunds do not say which lines they are for.
  const overpaymentGiven = await overpaymentGivenBack(trx, invoice);
  // Read first: a customer-credit refund settling from here on (it is recorded without the invoice's
  // lock) then cannot make `refundable` below count a refund this check did not see.
  const inFlight = await refundsInFlight(trx, invoice.id);
  // The cash part goes back through `payments`, each up to what it can still refund: every refund on
  // it counts, refunds of customer credit it carried too (read under the invoice's lock, which a
  // refund on it takes). Paid cash beyond their rooms together is `held`: owed, it cannot go back.
  const rooms = await refundRooms(trx, payments);
  const room = totalRoom(rooms);
  let cashLeft = paid > 0n ? paid : 0n;
  if (cashLeft > room) cashLeft = room;
  // Change credit a refund took back (a dashboard refund beyond what the period kept) paid back the
  // customer's credit, not the period: not given back of it (`changeCreditTakenBackOf`).
  const takenBack = await changeCreditTakenBackOf(trx, invoice);
  const alreadyGiven =
    recurringGivenBack(
      { ...invoice, amount_refunded: invoice.amount_refunded + disputed },
      overpaymentGiven + takenBack,
      of.recurring,
    ) + of.takenOff;
  const returnable = {
    cash: cashLeft,
    credit: invoice.credit_applied - invoice.credit_returned,
    held: paid - cashLeft,
  };
  const shares = cancellationRefund(type, of.cost, returnable, alreadyGiven, of.unused, of.length);
  const owed = refundOwed(type, of.cost, of.unused, of.length) - alreadyGiven;
  return { shares, owed, rooms, paymentCount: payments.length, inFlight, overpaymentGiven };
}

/** `givenBackOf`'s answer: what is owed and its shares, and what `refundFrom` checks and splits over. */
interface GivenBack {
  shares: CancellationShares;
  owed: bigint;
  rooms: RefundRoom[];
  paymentCount: number;
  inFlight: string[];
  overpaymentGiven: bigint;
}

/**
 * The refund of a locked paid `invoice` from what it owes back (`givenBackOf`): null when it owes
 * nothing as things stand (a refund in flight only lowers what is owed), else the cash split over its
 * payments newest first (`splitRefund`) and the credit.
 * @throws ConflictError `refund_in_flight` (a refund of its payments `pending` or `unknown`: what is
 * owed depends on its outcome), `invoice_overpaid` (paid more than it asked, not given back yet),
 * `refund_exceeds_payment` (more owed than its payments can still refund plus its credit applied)
 */
function refundFrom(invoice: InvoiceRow, given: GivenBack): CancellationRefund | null {
  const { shares, rooms, inFlight } = given;
  if (shares.cash === 0n && shares.credit === 0n && shares.held === 0n) return null;
  // Otherwise what is owed depends on a refund in flight: given back if it succeeds, not if it fails.
  // Counting it either way could be wrong about the customer's money (more than owed back, or less),
  // so the cancellation waits for the fact.
  if (inFlight.length > 0) {
    const [noun, verb] = inFlight.length === 1 ? ['refund', 'is'] : ['refunds', 'are'];
    throw new ConflictError(
      'refund_in_flight',
      `${noun} ${inFlight.join(', ')} on the payments of invoice ${invoice.id} ${verb} not settled yet (pending or unknown): what this cancellation gives back depends on the outcome; cancel again once settled, or cancel with refund_type none`,
    );
  }
  // An overpaid invoice (a duplicate payment, which became the customer's credit): its refunds give
  // the overpayment back first (`overpaymentShare`), so this refund would give back less of the
  // period than owed. A refund of customer credit (no invoice) does not count here, so an overpayment
  // paid back that way still refuses: safer than a refund counted as overpayment a second time.
  // What of the overpayment its refunds (up to now) have not given back: the share of the rest.
  const overpaid = overpaymentShare(invoice, given.overpaymentGiven, invoice.amount_paid);
  if (overpaid > 0n) {
    throw new ConflictError(
      'invoice_overpaid',
      `invoice ${invoice.id} was paid ${overpaid} ${invoice.currency} more than it asked (a duplicate payment) and its refunds have not given that back: a refund through billhook gives the overpayment back first, so this cancellation would give back less of the period than it owes. Nothing changed; refund the overpayment by hand first (POST /v1/invoices/${invoice.id}/refund with transaction = the duplicate payment, amount = ${overpaid}), then cancel again`,
    );
  }
  if (shares.held > 0n) {
    throw new ConflictError(
      'refund_exceeds_payment',
      `invoice ${invoice.id} owes ${shares.cash + shares.credit + shares.held} ${invoice.currency} back, but its gateway payments (${given.paymentCount}) can refund only ${shares.cash} more together and the credit applied gives back ${shares.credit}: the other ${shares.held} is held by refunds of customer credit those payments carried or a part paid offline, which billhook cannot refund through. Nothing changed; cancel with refund_type none and settle the refund outside billhook (a refund in the gateway's dashboard is booked when its webhook arrives; a refund_type none cancellation gives no applied credit back)`,
    );
  }
  // The cash each payment's gateway takes (its step), the rest to the customer's credit (PRODUCT §11:
  // Stripe KWD 667 owed, 660 to the card and 7 as credit, rather than 422 amount_not_representable).
  const { parts, rest } = onGatewaySteps(splitRefund(rooms, shares.cash), invoice.currency);
  return {
    invoiceId: invoice.id,
    amount: shares.cash - rest,
    parts,
    credit: shares.credit,
    cashCredited: rest,
  };
}

/**
 * What a `full` or `prorate` refund gives back of the add-on proration invoices of subscription
 * `subscriptionId`'s current `period` (add-on-proration.ts `periodAddOnInvoices`, not VOID, oldest
 * first; each locked, after the period invoice), as it gives back the period invoice. Each charged its
 * add-on lines for `[period_start, period_end]` (the moment the add-on was set, or the period's start
 * for one made with `full`, to the period's end, or a cancellation scheduled then), so it owes back, of what its lines charged with their tax
 * (`recurringLines`: the line's stored amounts, not prices worked again): `full`, all of it; `prorate`,
 * the share after `effectiveAt`, `prorate(charged, period_end − effectiveAt, period_end −
 * period_start)` rounded once per invoice as the period invoice's (`refundOwed`); less what it gave
 * back before (a refund by hand). Nothing for `prorate` taking effect at or after the period's end.
 * - a paid one (PAID, PARTIALLY_REFUNDED, REFUNDED) gives it back as the period invoice does
 *   (`givenBackOf`, `refundFrom`): cash through its own gateway payments, newest first, the rest as
 *   the customer credit that paid it;
 * - an OPEN one, nothing paid on it yet (`prorate_at_renewal` charges at the period's end; a charge
 *   declined), is not refunded but owes less: voided when all it charged is given back (`full`, or
 *   none of its time served), as the cancellation voids the unpaid invoices of periods never served
 *   (`voidInvoicedAhead`); else the share is taken off what it still owes, as a change's credit is
 *   taken off an owed period invoice (proration.ts `creditInvoice`), and what is beyond that goes
 *   back as the customer credit applied to it. Its used time stays owed.
 * @returns the paid ones' refunds (null ones left out) and the OPEN ones' shares, oldest first
 * @throws as `refundFrom`; ConflictError `charge_in_flight` (field `refund_type`) when an OPEN one
 * has a charge `pending` or `unknown` (what it still owes depends on it); ValidationError (field
 * `refund_type`) when one is OPEN and paid in part (neither refundable nor voidable), DRAFT or
 * UNCOLLECTIBLE (written off: what it owes back is not known), naming it
 */
async function addOnRefunds(
  work: UnitOfWork,
  subscriptionId: string,
  type: RefundType,
  period: { start: Date; end: Date },
  effectiveAt: Date,
): Promise<PeriodRefunds> {
  const out: PeriodRefunds = { refunds: [], unpaid: [] };
  if (type === 'none' || (type === 'prorate' && effectiveAt >= period.end)) return out;
  const trx = work.trx;
  for (const { id } of await periodAddOnInvoices(trx, subscriptionId, period)) {
    const invoice = await lockInvoice(work, id);
    const [start, end] = [invoice.period_start!, invoice.period_end!];
    const length = secondsBetween(start, end);
    const unused = secondsBetween(effectiveAt > start ? effectiveAt : start, end);
    const { recurring } = await recurringLines(trx, id);
    // What an earlier cancellation (one scheduled with a refund) took off it while owed, or gave back
    // of the credit applied to it, counts as given back: a second one gives the difference only.
    const takenOff = invoice.proration_credited;
    const of = { cost: recurring, recurring, unused, length, takenOff };
    if (PAID_STATUSES.includes(invoice.status)) {
      const refund = refundFrom(
        invoice,
        await givenBackOf(trx, invoice, await invoicePayments(trx, id), type, of),
      );
      if (refund) out.refunds.push(refund);
      continue;
    }
    if (invoice.status !== 'OPEN' || invoice.amount_paid > 0n) {
      throw new ValidationError('refund over an unsettled add-on invoice', {
        refund_type: `a ${type} refund gives back the unused time of this period's add-on invoices, but ${id} is ${invoice.status} with ${invoice.amount_paid} ${invoice.currency} paid of ${invoice.total}: it can neither be refunded nor owe less. Nothing changed; pay it in full first (POST /v1/invoices/:id/charge), or cancel with refund_type none`,
      });
    }
    const inFlight = await chargesInFlight(trx, id);
    if (inFlight.length > 0) {
      throw new ConflictError(
        'charge_in_flight',
        `add-on invoice ${id} has charges in flight (${inFlight.map((t) => `${t.id} ${t.status}`).join(', ')}): what this ${type} refund takes off it depends on their outcome. Nothing changed; cancel again once they settle, or cancel with refund_type none`,
        { refund_type: `a ${type} refund waits for the charges in flight of add-on invoice ${id}` },
      );
    }
    const whole = refundOwed(type, recurring, unused, length);
    const owed = whole - takenOff - invoice.credit_returned;
    if (whole >= invoice.total) out.unpaid.push({ invoice, void: true });
    else if (owed > 0n) {
      // min(owed, amount_due), on bigints (Math.min takes numbers only).
      let offDue = owed;
      if (offDue > invoice.amount_due) offDue = invoice.amount_due;
      out.unpaid.push({ invoice, void: false, offDue, credit: owed - offDue });
    }
  }
  return out;
}

/**
 * What `settleUnpaid` did to the period's OPEN add-on invoices: the ids `voided` (and `voidedCredit`,
 * minor units ≥ 0, the customer credit applied to them the voids gave back, with no credit note: a
 * void reverses the invoice, as one by an operator does), `lowered` (of which `paid`: nothing owed any
 * more, PAID as by a payment), and the `creditNotes` of the credit the lowered ones gave back.
 */
interface Settled {
  voided: string[];
  voidedCredit: bigint;
  lowered: string[];
  paid: string[];
  creditNotes: CreditNoteRow[];
}

/**
 * Takes what the refund owes back off the period's OPEN add-on invoices (`addOnRefunds`): voids those
 * given back whole (`voidLocked`: the receivable reversed, the credit applied given back), and lowers
 * the others (`creditInvoice`: revenue and tax payable debited for the share, its tax pro rata,
 * `splitCredit`; then the credit applied beyond it given back, `returnInvoiceCredit`).
 * @returns what it did (`Settled`)
 */
async function settleUnpaid(work: UnitOfWork, unpaid: UnpaidShare[], now: Date): Promise<Settled> {
  const out: Settled = { voided: [], voidedCredit: 0n, lowered: [], paid: [], creditNotes: [] };
  for (const share of unpaid) {
    const { invoice } = share;
    if (share.void) {
      await voidLocked(work, invoice, now, { reason: 'subscription_cancelled' });
      out.voided.push(invoice.id);
      // What the void gave back to the customer's credit (`returnAppliedCredit`: all the credit
      // applied): no credit note.
      out.voidedCredit += invoice.credit_applied;
      continue;
    }
    const whole = { subtotal: -invoice.subtotal, tax: -invoice.tax, total: -invoice.total };
    if (share.offDue > 0n) {
      // All it still owed taken off (or all but less than the gateway's step, rounded off): PAID
      // (`creditInvoice`), as by a payment.
      if (await creditInvoice(work, invoice, splitCredit(whole, share.offDue).onInvoice, now)) {
        out.paid.push(invoice.id);
      }
    }
    if (share.credit > 0n) {
      out.creditNotes.push(
        await returnInvoiceCredit(work, invoice.id, share.credit, 'subscription_cancelled'),
      );
    }
    out.lowered.push(invoice.id);
  }
  return out;
}

/**
 * Refuses a `full` or `prorate` refund of a period whose prorated changes invoiced a charge that is
 * not PAID (OPEN: not paid yet, charged at once or at the period's end; UNCOLLECTIBLE; VOID: the
 * charge is gone) or that gave money back since (a refund, customer credit returned, a dispute open
 * or lost on its payments: `disputedAway`, a chargeback gave the customer that money back): the
 * refund gives back the time at the price those changes charged, which was not paid, or not all kept
 * (an upgrade's 1250 charged back, lost: a `prorate` refund of 2321 from the period invoice would
 * give back 3571 of the 3750 paid, for a period used 1429 of); or
 * whose change invoice has a refund by hand still in flight (`pending` or `unknown`, not counted in
 * its `amount_refunded` yet): if it succeeds that invoice gave money back, so what the period owes
 * depends on its outcome (an upgrade's 7875 paid, 6125 of it in flight: a `prorate` refund of 875
 * from the period invoice on top would give back 875 more than was paid once both succeed). Never a
 * wrong amount: the cancellation changes nothing. The change invoices are read under the
 * subscription's lock, which a refund of them takes first (`lockInvoice`).
 * @param currency the period's currency (its invoices'), for the message
 * @throws ValidationError (field `refund_type`) naming the invoices and the way out; ConflictError
 * `refund_in_flight` (field `refund_type`) naming each change invoice with refunds in flight and
 * their amount (minor units)
 */
async function refuseUnsettledChanges(
  trx: Kysely<Database>,
  basis: ChargedBasis,
  type: RefundType,
  currency: string,
): Promise<void> {
  if (basis.invoices.length === 0) return;
  const changes = await trx
    .selectFrom('invoices')
    .select(['id', 'status', 'amount_due', 'amount_refunded', 'credit_returned'])
    .where('id', 'in', basis.invoices)
    .orderBy('id')
    .execute();
  const unsettled: string[] = [];
  for (const i of changes) {
    // A dispute open or lost on its payments gave the customer that money back, as a refund would.
    const disputed = await disputedAway(trx, i.id);
    if (i.status !== 'PAID' || i.amount_refunded > 0n || i.credit_returned > 0n || disputed > 0n) {
      const took = disputed > 0n ? `, ${disputed} ${currency} taken by disputes open or lost` : '';
      unsettled.push(`${i.id} (${i.status}, ${i.amount_due} due${took})`);
    }
  }
  if (unsettled.length > 0) {
    throw new ValidationError('refund over an unsettled change', {
      refund_type: `a ${type} refund gives back the rest of the period at the price this period's changes charged, but their invoices ${unsettled.join(', ')} are not paid in full or gave money back since (a refund, customer credit returned, a chargeback). Nothing changed; pay an OPEN invoice first (POST /v1/invoices/:id/charge), or cancel with refund_type none`,
    });
  }
  const inFlight: string[] = [];
  for (const id of [...basis.invoices].sort()) {
    const amount = await refundedInFlight(trx, id);
    if (amount > 0n) inFlight.push(`${id} (${amount} ${currency} in refunds not answered yet)`);
  }
  if (inFlight.length === 0) return;
  const named = inFlight.join(', ');
  throw new ConflictError(
    'refund_in_flight',
    `refunds of this period's change invoices ${named} are not settled yet (pending or unknown): what this cancellation gives back depends on their outcome; cancel again once settled, or cancel with refund_type none. Nothing changed`,
    {
      refund_type: `a ${type} refund waits for the refunds in flight of this period's change invoices: ${named}`,
    },
  );
}

/**
 * Cancels a locked subscription (`work` joined the ledger's writers) as `options` says, after
 * renewing it up to `now` as the renewal sweep would (`renewedUpTo` under `policy`: the default bills
 * no SUSPENDED one), so that whatever the sweep's lag the cancellation, its refund and the period
 * end it cancels at are those of the period holding `now` (cancelled now on day 10 of a period not
 * renewed yet, that period is invoiced first, as it would have been; at period end, it ends with
 * that period, not the one before), storing
 * `cancel_reason`, and voids the unpaid invoices of the periods after its end that were invoiced
 * ahead (`voidInvoicedAhead`: now, every period after the stored current one); logs `subscription.cancelled` (now) or
 * `subscription.cancellation_scheduled` (`period_end`, `date`: with `at`, `refund_type`, `reason`;
 * a PAST_DUE subscription that the voided invoices alone made so is ACTIVE again until `at`:
 * `reinstateAfterVoid`, as is one that the OPEN add-on invoices its refund lowered to nothing owed
 * (PAID) made so: `reinstateAfterPayment`),
 * each with `billed_now_invoices` (now) or `billed_at_end_invoices` (scheduled): the OPEN
 * `subscription_update` invoices charged at the period's end (`prorate_at_renewal`) whose charge is
 * brought to the service's end (`billPendingProrations`), and
 * each with `refund_amount` (cash), `credit_amount` (back to the customer's credit),
 * `refunded_invoices` and `lowered_invoices` (`refundData`) and `voided_invoices` (ids: those ahead
 * and the period's OPEN add-on invoices the refund gave back whole). The OPEN add-on invoices the
 * refund reaches are voided or lowered here (`settleUnpaid`), and the credit part is given back here
 * (`returnInvoiceCredit`), before a cancellation now makes its final usage invoice, which then uses
 * that credit as any invoice finalized does; the cash part is only computed here, and the caller
 * commits its refund in the same unit of work (payments/cancellations.ts).
 * @throws ConflictError `subscription_cancelled` (CANCELLED already, or ended by that renewal: its
 * scheduled cancellation or term end came before `now`), `cancellation_scheduled` (a
 * cancellation is scheduled already), `period_ended` (`period_end` of a SUSPENDED subscription its
 * renewals do not bill, whose last billed period has ended: nothing changed), and as `refundOf` (`nothing_to_refund`, `refund_in_flight`,
 * `invoice_overpaid`, `refund_exceeds_payment`, `later_periods_paid`, `charge_in_flight` on an OPEN
 * add-on invoice), and as `voidInvoicedAhead`
 * (`later_period_not_voidable`); ValidationError `cancel_at` in the past, `refund_type` as `refundOf`.
 * An add-on charge pending since a payment's reactivation (`add_on_charge_at`) is not made by the
 * catch-up renewal (`'leave'`) but after the refusals are decided (`withPendingCharge`), so none
 * names an invoice the refusal rolls back; made, the refund reaches its invoice as any add-on
 * invoice of the period; when making it fails, the cancellation happens all the same, the charge
 * stays pending (`add_on_charge_pending` in the activity: since, error) and the renewal sweep makes
 * it once it can, for what the cancellation would have left owed of it (add-on-proration.ts
 * `servedTo`: `prorate` to the cancellation, `none` to the period's end, `full` nothing)
 */
export async function cancelLocked(
  work: UnitOfWork,
  locked: SubscriptionRow,
  options: CancelOptions,
  now: Date,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<Cancellation> {
  const id = locked.id;
  if (locked.status === 'CANCELLED') {
    throw new ConflictError('subscription_cancelled', `subscription ${id} is already CANCELLED`);
  }
  // The periods as the renewal sweep has them by `now`, whatever its lag: a cancellation after the
  // period's end the sweep has not renewed yet ends (and refunds) the period holding `now`. An add-on
  // charge pending since a payment's reactivation is left for after the decision (`withPendingCharge`).
  const renewed = await renewedUpTo(work, locked, now, policy, 'leave');
  if (renewed.subscription.status === 'CANCELLED') {
    throw new ConflictError(
      'subscription_cancelled',
      `subscription ${id} ended at ${renewed.subscription.cancelled_at?.toISOString()} (its scheduled cancellation or the end of its term; the renewal sweep records it shortly)`,
    );
  }
  // Refused (`refundOf`) before the pending charge's invoice is made, so a refusal names only
  // invoices that exist; then the charge is made (or left pending when making it fails), and the
  // refund worked again to reach its invoice.
  let subscription = renewed.subscription;
  let made = renewed.invoices;
  let leftPending: { add_on_charge_pending: { since: Date; error: string } } | undefined;
  const refundOfHere = async (effectiveAt: Date | null): Promise<PeriodRefunds> => {
    const none: PeriodRefunds = { refunds: [], unpaid: [] };
    const decided = effectiveAt ? await refundOf(work, subscription, options.refundType, effectiveAt) : none;
    const charged = await withPendingCharge(work, subscription, now, policy);
    if (!charged) return decided;
    if (charged.pendingChargeFailed !== undefined) {
      leftPending = {
        add_on_charge_pending: { since: subscription.add_on_charge_at!, error: charged.pendingChargeFailed },
      };
    }
    subscription = charged.subscription;
    made = [...made, ...charged.invoices];
    if (charged.invoices.length === 0 || !effectiveAt) return decided;
    return refundOf(work, subscription, options.refundType, effectiveAt);
  };
  const reason = options.reason ?? null;
  if (options.when === 'now') {
    const { refunds, unpaid } = await refundOfHere(now);
    const ahead = await voidInvoicedAhead(work, subscription, {}, now);
    // The credit first, so that the final invoice's finalization takes it (`applyCustomerCredit`)
    // instead of leaving it unused while the card is charged. Lock order kept: the subscription, the
    // period's invoices (locked by `refundOf`), then the customer (the final invoice's finalization).
    const settled = await settleUnpaid(work, unpaid, now);
    // The period's changes charged at its end (prorate_at_renewal), or what the refund left of them
    // owed: no renewal comes, so they are billed now.
    const billedNow = await billPendingProrations(work, subscription.id, now, now);
    const creditNotes = [...(await giveCreditBack(work, refunds)), ...settled.creditNotes];
    const voided = [...ahead.voided, ...settled.voided];
    // The final invoice: the usage not billed yet, up to this moment (and any stamped ahead of the
    // clock), at the current plan's prices.
    const plan = await getPlan(work.trx, subscription.plan_id);
    const usageUntil = await finalUsageUntil(work.trx, subscription, now);
    const final = await invoiceUsageUntil(work, subscription, plan, usageUntil, now, 'subscription_update');
    const withReason = await work.trx
      .updateTable('subscriptions')
      // Its facts replace any scheduled cancellation's: this one's refund counts from now.
      .set({
        cancel_reason: reason,
        cancel_at: null,
        cancellation_refund_type: options.refundType,
        cancellation_effective_at: now,
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    const cancelled = await transitionSubscription(work, withReason, 'CANCELLED', now, {
      at_period_end: false,
      final_invoice: final?.id,
      voided_invoices: voided,
      billed_now_invoices: billedNow,
      reason,
      refund_type: options.refundType,
      ...refundData(refunds, settled),
      ...leftPending,
    });
    return { subscription: cancelled, refunds, creditNotes, catchUpInvoices: made };
  }
  if (subscription.cancel_at_period_end || subscription.cancel_at) {
    throw new ConflictError(
      'cancellation_scheduled',
      `subscription ${id} already has a cancellation scheduled`,
    );
  }
  const atPeriodEnd = options.when === 'period_end';
  const at = atPeriodEnd ? subscription.next_renewal_at : options.cancelAt!;
  // Renewed up to now, only a subscription its renewals do not bill (SUSPENDED) can have its next
  // renewal in the past: the end of the period invoiced before the suspension. Cancelling there
  // would end it before this request and leave the usage recorded since unbilled.
  if (atPeriodEnd && at !== null && at <= now) {
    throw new ConflictError(
      'period_ended',
      `subscription ${id} is ${subscription.status}: its last billed period ended at ${at.toISOString()}, so it has no period end to cancel at; cancel it now (when: now) or at a date (when: date)`,
    );
  }
  if (!atPeriodEnd && at !== null && at <= now) {
    throw new ValidationError('cancel_at in the past', { cancel_at: 'must be later than now' });
  }
  const { refunds, unpaid } = await refundOfHere(at);
  const ahead = at ? await voidInvoicedAhead(work, subscription, { from: at }, now) : { voided: [] };
  const settled = await settleUnpaid(work, unpaid, now);
  const voided = [...ahead.voided, ...settled.voided];
  // Changes charged at the period's end (prorate_at_renewal) are charged when the service ends.
  const billedNow = at ? await billPendingProrations(work, id, at, now) : [];
  // Live until `at`, it owes nothing for those periods now: PAST_DUE only because of them (or the
  // add-on invoices the refund voided, or lowered to nothing owed: PAID as by a payment, as a plan
  // change's credit clearing a period invoice reinstates), it is not. The subscription and those
  // invoices are locked already (`refundOf`); the customer is not yet (`giveCreditBack` below).
  await reinstateAfterVoid(work, id, voided, now, policy);
  for (const paid of settled.paid) await reinstateAfterPayment(work, id, paid, now, policy);
  const creditNotes = [...(await giveCreditBack(work, refunds)), ...settled.creditNotes];
  const updated = await work.trx
    .updateTable('subscriptions')
    .set({
      cancel_at_period_end: atPeriodEnd,
      cancel_at: at,
      cancel_reason: reason,
      // Its refund (given now, for the time from `at`) is what this cancellation gave back.
      cancellation_refund_type: options.refundType,
      cancellation_effective_at: at ?? now,
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
    voided_invoices: voided,
    billed_at_end_invoices: billedNow,
    reason,
    refund_type: options.refundType,
    ...refundData(refunds, settled),
    ...leftPending,
  });
  return { subscription: updated, refunds, creditNotes, catchUpInvoices: made };
}

/**
 * Makes the add-on charge pending on locked `subscription` since a payment's reactivation
 * (`add_on_charge_at` ≤ `now`; renewal.ts `renewedUpTo` with `'try'`), after a cancellation has
 * decided (its refusals made before the charge's invoice exists, so none names an invoice it rolls
 * back): made, its invoice is the period's like any add-on invoice (the refund reaches it); when
 * making it fails, undone and left pending (`pendingChargeFailed`): the cancellation happens all the
 * same and the renewal sweep makes the charge once it can, for the time served
 * (add-on-proration.ts `reactivationAddOnCharge`, `servedTo`), as its own OPEN invoice.
 * @returns that renewal, or null when no charge is pending
 * @throws ConflictError `subscription_cancelled` when that renewal ended it (a scheduled cancellation
 * or term end it had not reached without the charge)
 */
async function withPendingCharge(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  now: Date,
  policy: RenewalPolicy,
): Promise<Renewal | null> {
  if (subscription.add_on_charge_at === null || subscription.add_on_charge_at > now) return null;
  const charged = await renewedUpTo(work, subscription, now, policy, 'try');
  if (charged.subscription.status === 'CANCELLED') {
    throw new ConflictError(
      'subscription_cancelled',
      `subscription ${subscription.id} ended at ${charged.subscription.cancelled_at?.toISOString()} (its scheduled cancellation or the end of its term; the renewal sweep records it shortly)`,
    );
  }
  return charged;
}

/**
 * Voids the invoices of a locked subscription's periods after its stored current period (all of
 * them: a cancellation now, which renewed it up to now first, so the stored period is the one
 * holding now, the last one served), or only those starting
 * at or after `periods.from` (a cancellation at period end or at a date; a suspension's start) and
 * ending at or before `periods.until` (a reactivation: the periods wholly missed while suspended),
 * that a settled term invoiced ahead (`invoicedAhead`) and nobody paid: OPEN or DRAFT, through the
 * void path (`voidLocked`: the finalization entry reversed, so the receivable no longer claims them,
 * the credit applied given back, off the charge schedule and so out of dunning). Those periods will
 * never be served. Paid ones (PAID, refunded, UNCOLLECTIBLE) are left as they are and returned as
 * `kept`: a refund of them is refused (`refundOf`, `later_periods_paid`) or made by hand. A
 * subscription never settled (`settled_at` null) has none: nothing is voided.
 * Called after `refundOf` locked the current period's invoice, before any credit is given back
 * (the lock order: subscription, invoices, customer).
 * @param periods `{}` for every period after the stored current one
 * @param notVoidable what to do with one partly paid or with a charge in flight: `refuse` the
 * cancellation (a person's, which can wait), or `skip` it, left owed and reported (dunning's, which
 * cancels anyway; a reactivation's)
 * @param reason why, in each `invoice.voided` activity (`subscription_cancelled` unless given)
 * @returns the ids, by period, of the invoices voided, of those skipped, and of the paid ones kept
 * @throws ConflictError `later_period_not_voidable` (naming the invoice) when `notVoidable` is
 * `refuse` and one is partly paid or has a charge in flight: it can neither be voided nor left owed
 * for a period never served
 */
export async function voidInvoicedAhead(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  periods: { from?: Date; until?: Date },
  now: Date,
  notVoidable: 'refuse' | 'skip' = 'refuse',
  reason = 'subscription_cancelled',
): Promise<{ voided: string[]; skipped: string[]; kept: string[] }> {
  // Only settle invoices periods ahead of the renewal (it stamps `settled_at`).
  if (subscription.settled_at === null) return { voided: [], skipped: [], kept: [] };
  const ahead = await invoicedAhead(work.trx, subscription, periods);
  const unpaid = ahead.filter((i) => i.status === 'OPEN' || i.status === 'DRAFT');
  const kept = ahead.filter((i) => i.status !== 'OPEN' && i.status !== 'DRAFT').map((i) => i.id);
  const voided: string[] = [];
  const skipped: string[] = [];
  for (const { id } of unpaid) {
    try {
      await voidLocked(work, await lockInvoice(work, id), now, { reason });
      voided.push(id);
    } catch (error) {
      if (!(error instanceof ConflictError) || error.code !== 'invoice_not_voidable') throw error;
      // `voidLocked` refuses before it writes anything: skipping it leaves the invoice as it was.
      if (notVoidable === 'skip') {
        skipped.push(id);
        continue;
      }
      throw new ConflictError(
        'later_period_not_voidable',
        `cancelling subscription ${subscription.id} voids the unpaid invoices of its periods ${periods.from ? `from ${periods.from.toISOString()} on` : 'after its current one'}, invoiced ahead by settle, but ${error.message}. Nothing changed; cancel again once its charge has settled, or once it is paid whole or written off (POST /v1/invoices/:id/mark-uncollectible: a partly paid invoice cannot be voided)`,
      );
    }
  }
  return { voided, skipped, kept };
}

/**
 * Brings the charge of subscription `subscriptionId`'s pending prorations forward to `until`, the
 * moment its service ends (a cancellation now: now; one scheduled at a date: that date): its OPEN
 * `subscription_update` invoices not in dunning (`payment_attempts` 0) whose `charge_at` is later —
 * a `prorate_at_renewal` plan change's or add-on's net charge, finalized at the change and charged
 * at the end of what the period serves (proration.ts, add-on-proration.ts), which for a cancellation
 * is no renewal but its end. Billed as Stripe bills pending invoice items at a cancellation with
 * `invoice_now`: with refund `none` the customer owes what was invoiced for the period, the upgrade
 * they had until the cancellation included (1000 CHF a month, up to 2000 on day 8 of 28 with
 * `prorate_at_renewal`: 750 finalized, charged Mar 1; cancelled now on Feb 15: charged Feb 15); an
 * add-on invoice a `prorate` refund lowered (`settleUnpaid`) is billed for what it still owes. A
 * net credit of such a change was the customer's credit at once and stays so (nothing here). The
 * charge sweep (payments/collection.ts) charges them from then on, with dunning as any invoice;
 * they stay owed, in receivables, until paid, voided or written off. Dunning's final cancellation
 * (payments/dunning.ts `recordCollectionFailure`, `finalAction` CANCEL) bills them now too.
 * @returns the ids of the invoices whose charge was brought forward, in id order
 */
export async function billPendingProrations(
  work: UnitOfWork,
  subscriptionId: string,
  until: Date,
  now: Date,
): Promise<string[]> {
  const rows = await work.trx
    .updateTable('invoices')
    .set({ charge_at: until, updated_at: now })
    .where('subscription_id', '=', subscriptionId)
    .where('status', '=', 'OPEN')
    .where('billing_reason', '=', 'subscription_update')
    .where('payment_attempts', '=', 0)
    .where('charge_at', '>', until)
    .returning('id')
    .execute();
  return rows.map((r) => r.id).sort();
}

/**
 * Gives each refund's `credit` back to the customer's credit (`returnInvoiceCredit`) and its
 * `cashCredited` (the cash below its gateway's step) to it (`creditCashRest`), each when > 0, in
 * their order.
 */
async function giveCreditBack(work: UnitOfWork, refunds: CancellationRefund[]): Promise<CreditNoteRow[]> {
  const notes: CreditNoteRow[] = [];
  for (const refund of refunds) {
    if (refund.credit > 0n) {
      notes.push(await returnInvoiceCredit(work, refund.invoiceId, refund.credit, 'subscription_cancelled'));
    }
    if (refund.cashCredited > 0n) {
      notes.push(await creditCashRest(work, refund.invoiceId, refund.cashCredited, 'subscription_cancelled'));
    }
  }
  return notes;
}

/**
 * The refund's figures in a cancellation's activity: `refund_amount` (cash, all refunds together),
 * `credit_amount` (customer credit given back: of paid invoices and of OPEN add-on invoices lowered,
 * their credit notes, and what the period's OPEN add-on invoices voided by the refund gave back of
 * the credit applied to them, which has no credit note: `Settled.voidedCredit`), `refunded_invoices`
 * (the paid invoices giving something back) and `lowered_invoices` (the OPEN add-on invoices that owe
 * less: `settleUnpaid`; those voided are in `voided_invoices`); and the two parts of the cash owed
 * back: `refunded`, what goes to the cards (= `refund_amount`), and `credited`, what their gateways
 * cannot take (below their step) given to the customer's credit instead (`cashCredited`: Stripe KWD
 * 667 owed → refunded 660, credited 7; not in `credit_amount`, which is customer credit that paid
 * given back, though its credit note is among the cancellation's `creditNotes`).
 */
function refundData(refunds: CancellationRefund[], settled: Settled) {
  const sum = (amounts: bigint[]) => amounts.reduce((total, amount) => total + amount, 0n);
  return {
    refunded: sum(refunds.map((r) => r.amount)),
    credited: sum(refunds.map((r) => r.cashCredited)),
    refund_amount: sum(refunds.map((r) => r.amount)),
    credit_amount: sum([
      ...refunds.map((r) => r.credit),
      ...settled.creditNotes.map((n) => n.total),
      settled.voidedCredit,
    ]),
    refunded_invoices: refunds.map((r) => r.invoiceId),
    lowered_invoices: settled.lowered,
  };
}
