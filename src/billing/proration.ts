import { type Kysely, sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Database, InvoiceRow, SubscriptionRow } from '../db/schema.ts';
import { ConflictError, ValidationError } from '../errors.ts';
import { resolveSetAsideCharges } from '../exceptions/exceptions.ts';
import { chart } from '../ledger/chart.ts';
import { postEntry } from '../ledger/journal.ts';
import { entryKeys, prorationCredited, prorationCreditedOnInvoice } from '../ledger/movements.ts';
import { type Actor, inRolledBackUnitOfWork, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { couponAppliesTo, couponDiscounts, periodCoupons } from './coupons.ts';
import {
  overpaidBy,
  overpaymentGivenBack,
  overpaymentShare,
  recurringGivenBack,
  recurringLines,
} from './credit-notes.ts';
import { type OpenCustomer, openCustomerOnce } from './customer-status.ts';
import { refuseUninvoiceablePeriod } from './effective-amount.ts';
import { asNewLine } from './invoice-adjustments.ts';
import { chargesInFlight, disputedAway, refundedInFlight } from './invoice-payment.ts';
import {
  finalizeLocked,
  hasAddOnLine,
  insertInvoice,
  invoiceActivity,
  lineAmounts,
  lockInvoice,
  type NewLine,
  roundOwedAgain,
} from './invoices.ts';
import { baseAmount, getPlan, type Plan } from './plans.ts';
import { type InvoicePreview, pricedLines, withRounding } from './preview.ts';
import { reinstateAfterPayment } from './reinstate.ts';
import {
  DEFAULT_RENEWAL_POLICY,
  invoiceUsageUntil,
  lockSubscription,
  renewedUpTo,
  subscriptionInvoiceDetails,
  usagePeriodAt,
} from './renewal.ts';
import { scheduleChange } from './scheduled-change.ts';
import { subscriptionActivity } from './subscription-status.ts';
import type { AppliedTaxRate } from './tax-lookup.ts';
import { taxLocationOf, withCustomerTaxes, withTaxesAt } from './tax-rates.ts';
import { refuseChangeInvoicedAhead } from './terms.ts';
import { refuseUnpriceableUsageSplit } from './usage.ts';

/**
 * Changing a subscription's plan or quantity mid-period, with proration (as Billby and Stripe do):
 * the unused part of the current period is credited as it was charged and the rest of the period
 * charged at the new amount, both by whole seconds. The rest of the period is what it serves
 * (`servedUntil`): up to a cancellation scheduled within it (`cancel_at`), never days not served
 * (the time after it stays charged as it was). What was charged is the period's charged basis
 * (`chargedBasis`): the period invoice's plan line with its coupon lines and the tax rates they were
 * billed with, or, after a prorated change in the period, what that change charged for its new plan
 * (stored on the subscription, `charged_basis`); never today's price, coupons or tax location of the
 * old plan, so the credit is what the customer was charged for the unused time (PRODUCT §11: every
 * amount owed or credited exactly once). A change with proration `none` charges nothing and leaves
 * the basis as it was. The new side is the new price after the coupons that discounted the current
 * period (the coupon lines of its invoice, and those its renewal counted that took nothing off: a
 * price of 0, capped behind another coupon), are still redeemed (one removed since discounts nothing
 * charged after, as no later renewal) and apply to the new plan's product (PRODUCT §11: coupons
 * apply to proration lines as they do to full periods), taxed at the customer's address now. A
 * cancellation's refund gives back from the same basis (cancellation.ts). A net charge, or a change
 * that only raises the tax (subtotal 0, tax above 0: the tax is billed), becomes a
 * `subscription_update` invoice, finalized and charged at once (`charge_at = now`). A net credit (a
 * downgrade, or a change that only lowers the tax) is not paid back: with its tax it first lowers what
 * the period invoice still owes when it is OPEN (`creditOwedPeriod`: debit revenue and tax payable,
 * credit the receivable, as a credit note on an open invoice), and the rest, what was paid beyond the
 * lowered total, becomes the customer's credit (debit revenue for the net credit and tax payable for
 * its tax, credit the customer's credit account), which their next
 * invoices use at finalization, whatever subscription they bill (billing/customer-credit.ts). In a
 * trial or before a future start there is no period to prorate: the change applies to the first
 * invoice. The new plan must bill in the same currency and interval (periods stay on the same
 * anchor); `amount_override` is not prorated (an override stays the period's amount).
 * How the period is prorated is the change's `proration` (`ProrationBehavior`); a change `when:
 * next_cycle` is scheduled instead (scheduled-change.ts).
 * A plan change first invoices the usage not billed yet at the old plan's metered prices
 * (`invoiceUsageUntil`, its own `subscription_update` invoice; not part of a preview): usage is
 * priced with the plan active when it happened, and usage before the change can no longer be
 * recorded. The period's usage after the change is billed as the rest of the period, not as a
 * period of its own (usage.ts: a MAX or a free tier counted once per period and metric); a change
 * mid-period after which the rest of the period cannot be priced exactly from what was billed before
 * (another aggregation, a free trial's usage the new plan would bill, a new VOLUME or STAIRSTEP
 * price) is refused (`refuseUnpriceableUsageSplit`, also in a preview).
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

/**
 * `prorate` of a signed amount (minor units): its size prorated, rounded half up, its sign kept, so a
 * negative tax's share is the negative of the same positive tax's (−100 × 1/3 → −33).
 * @param part ≥ 0, at most `whole`; @param whole > 0
 */
export function prorateSigned(amount: bigint, part: bigint, whole: bigint): bigint {
  return amount < 0n ? -prorate(-amount, part, whole) : prorate(amount, part, whole);
}

/**
 * How a change mid-period is prorated (Billby's `prorate_up`/`prorate_down` schemes, seed 001
 * "Update a subscription"):
 * - `prorate_now` (UP_PRORATE_NOW, DOWN_PRORATE_NOW; the default): the unused time credited as it
 *   was charged (`chargedBasis`), the rest charged at the new amount, invoiced and charged now;
 * - `prorate_at_renewal` (UP_PRORATE_AT_RENEWAL, DOWN_PRORATE_AT_RENEWAL): the same amounts, the
 *   invoice finalized now but charged at the end of what the period serves (`charge_at` =
 *   `current_period_end`, or a cancellation scheduled within the period: `servedUntil`);
 *   a net credit is the customer's credit, used by the renewal invoice as with `prorate_now`;
 * - `full` (UP_FULL_NOW): the whole period's difference (what was charged credited, new charged for
 *   the full period, not only the remaining time; up to a cancellation scheduled within it), invoiced now;
 * - `none` (UP_NO_COST, DOWN_NO_PRORATE): no proration lines; the new plan or quantity bills from the
 *   next period.
 * UP_FULL_AT_RENEWAL is not offered (`full` with `prorate_at_renewal`'s charge date is not kept apart).
 */
export type ProrationBehavior = 'prorate_now' | 'prorate_at_renewal' | 'full' | 'none';

/** The proration of a change now, an add-on's raise too, when the request names none. */
export const DEFAULT_PRORATION: ProrationBehavior = 'prorate_now';

/**
 * A change to make: a plan id and/or a quantity; `when` now (default) or at the next cycle
 * (scheduled-change.ts: applied by the renewal, no proration); `proration` for a change now.
 */
export interface SubscriptionChangeInput {
  planId?: string;
  quantity?: number;
  when?: 'now' | 'next_cycle';
  proration?: ProrationBehavior;
}

/** What a change did (or, previewed, would do). */
export interface ChangeResult {
  subscription: SubscriptionRow;
  proration: InvoicePreview;
  /** The `subscription_update` invoice of a net charge. */
  invoice: InvoiceRow | null;
  /**
   * Net credit before tax (minor units, signed): of a change not invoiced, its lines' subtotal negated,
   * the revenue it gives back; 0 for a change invoiced (a net charge: `invoice`) and for none. With
   * the tax it gives back (−`proration.tax`) it is what the change credits, tax included
   * (−`proration.total`), which lowers what is still owed on the OPEN period invoice first
   * (`creditedToInvoice`); the customer's credit grows by the rest only. Below 0 when the lines
   * charge more than they credit before tax but give back more tax than that (a taxed plan to a
   * dearer untaxed one): 2000 + 25% to an untaxed 2200 for the whole period, subtotal +200, tax
   * −500: credited −200, 300 credited in all. 2000 + 25% down to 1000 + 25%: credited 1000 (1250 in all).
   */
  credited: bigint;
  /** The OPEN period invoice the net credit was taken off first, and how much (minor units, tax included); null: none. */
  creditedToInvoice: { invoice: string; amount: bigint } | null;
  /** The invoice of the old plan's usage not billed yet at a plan change (none when there is none). */
  usageInvoice: InvoiceRow | null;
  /**
   * The invoices the change's catch-up renewal made first (`renewedUpTo`: the periods started by now
   * that the renewal sweep had not invoiced yet, with the usage before them, and an add-on charge
   * pending since a payment's reactivation), in the order made; empty when the sweep was on time,
   * and for a preview (its catch-up is rolled back with the rest).
   */
  catchUpInvoices: InvoiceRow[];
}

/**
 * The end of what `subscription`'s current period serves: its scheduled cancellation (`cancel_at`)
 * when that comes before the period's end, else the period's end (null: no billed period). A change
 * or an add-on's raise charges (and credits) the time up to it, never days the subscription will not
 * be served.
 */
export function servedUntil(
  subscription: Pick<SubscriptionRow, 'current_period_end' | 'cancel_at'>,
): Date | null {
  const { current_period_end: end, cancel_at: cancelAt } = subscription;
  return end && cancelAt && cancelAt < end ? cancelAt : end;
}

/** The whole seconds from `from` to `to` (0 when `to` is not later): how proration measures a period. */
export function secondsBetween(from: Date, to: Date): bigint {
  return BigInt(Math.max(0, Math.floor((to.getTime() - from.getTime()) / 1000)));
}

/**
 * Refuses a prorated change of a subscription whose scheduled cancellation already gave back money
 * of the current period (a `full` or `prorate` refund, in cash or credit, made when it was
 * scheduled: billing/cancellation.ts): the change's credit for the unused time would pay it twice.
 * A change with proration `none`, or at the next cycle, is still allowed.
 * @throws ConflictError `cancellation_scheduled`
 */
async function refuseSecondCredit(work: UnitOfWork, subscription: SubscriptionRow): Promise<void> {
  if (!subscription.cancel_at && !subscription.cancel_at_period_end) return;
  const given = await work.trx
    .selectFrom('invoices')
    .select('id')
    .where('subscription_id', '=', subscription.id)
    .where('period_index', '=', subscription.current_period_index)
    // Cash given to the customer's credit for want of a gateway step (`cash_credited`) too.
    .where((eb) =>
      eb.or([eb('amount_refunded', '>', 0n), eb('credit_returned', '>', 0n), eb('cash_credited', '>', 0n)]),
    )
    .executeTakeFirst();
  if (given) {
    throw new ConflictError(
      'cancellation_scheduled',
      `subscription ${subscription.id} has a cancellation scheduled and invoice ${given.id} of this period gave money back: a prorated change would credit the unused time again; change it with proration none`,
    );
  }
}

/**
 * Refuses a prorated change whose lines credit more than they charge before tax but whose tax rises
 * more than that (an untaxed plan to a cheaper taxed one: −500 unused, +450 remaining at 20%, so −50
 * net, +90 tax, 40 owed). An invoice cannot carry a negative subtotal, and booking the 40 as customer
 * credit would leave a debt no invoice collects; the change is refused and changes nothing. With
 * proration `none`, or at the next cycle, the change is still allowed.
 * @throws ValidationError (field `proration`)
 */
function refuseDebtOnCredit(proration: InvoicePreview): void {
  if (proration.subtotal >= 0n || proration.total <= 0n) return;
  throw new ValidationError('proration owes tax on a net credit', {
    proration: `this change credits ${-proration.subtotal} ${proration.currency} before tax but raises the tax by ${proration.tax}, so ${proration.total} (minor units) would be owed on a negative subtotal, which billhook cannot invoice: change with proration none, or at the next cycle`,
  });
}

/**
 * Refuses a prorated change when an earlier change of the period invoiced the plan in force and that
 * invoice is VOID or UNCOLLECTIBLE: the basis says what it charged for the rest of the period, but
 * that was taken back or never paid, so crediting its unused time would give back a price not paid.
 * @throws ValidationError (field `proration`)
 */
async function refuseCreditOfUnpaidChanges(trx: Kysely<Database>, basis: ChargedBasis): Promise<void> {
  if (basis.invoices.length === 0) return;
  const unpaid = await trx
    .selectFrom('invoices')
    .select(['id', 'status'])
    .where('id', 'in', basis.invoices)
    .where('status', 'in', ['VOID', 'UNCOLLECTIBLE'])
    .orderBy('id')
    .execute();
  if (unpaid.length === 0) return;
  throw new ValidationError('proration credits an unpaid change', {
    proration: `this period's earlier changes invoiced its plan on ${unpaid.map((i) => `${i.id} (${i.status})`).join(', ')}: what they charged for the rest of the period was taken back or never paid, so its unused time cannot be credited. Nothing changed; change with proration none, or at the next cycle`,
  });
}

/**
 * Refuses a prorated change that credits unused time of the current period when the period's
 * invoices (its period invoice, the invoices of its earlier prorated changes) gave back money of
 * their recurring lines since they were paid: a refund by hand (`amount_refunded`), customer credit
 * returned (`credit_returned`) or a dispute open or lost on their payments (`disputedAway`: a
 * chargeback gave that money back; 2500 charged back, a downgrade crediting 625 of the unused time
 * would give back 3125), less what paid back an overpayment (a duplicate payment refunded:
 * `overpaymentGivenBack`) or took back change credit (`changeCreditTakenBackOf`), counted against the setup fee and usage lines first (`recurringGivenBack`,
 * as a cancellation's refund counts what was given back: cancellation.ts). Refunds do not say which
 * time they gave back, so crediting the unused time again could give it back twice (4000 paid and
 * refunded by hand, then 1500 of customer credit for the unused half); a refund of the setup fee or
 * of the last period's usage alone does not refuse. A refund of one of those invoices not answered
 * yet (`pending`, `unknown`) refuses too, whatever it asks: it may give back any of the time (2500
 * paid, all 2500 being refunded: a downgrade crediting 625 of it would give back 3125).
 * @throws ValidationError (field `proration`) naming the invoices and what they gave back of their
 * recurring lines, or hold in refunds not answered yet
 */
async function refuseCreditOfGivenBack(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  basis: ChargedBasis,
): Promise<void> {
  const candidates = await trx
    .selectFrom('invoices')
    .select([
      'id',
      'status',
      'currency',
      'total',
      'credit_applied',
      'proration_credited',
      'amount_paid',
      'amount_refunded',
      'credit_returned',
      'cash_credited',
    ])
    .where((eb) =>
      eb.or([
        eb.and([eb('subscription_id', '=', subscription.id), eb('period_index', '=', basis.periodIndex)]),
        ...(basis.invoices.length ? [eb('id', 'in', basis.invoices)] : []),
      ]),
    )
    .orderBy('id')
    .execute();
  const given: string[] = [];
  for (const invoice of candidates) {
    // A refund not answered yet may give back any of it (read under the subscription's lock, which a
    // refund by hand takes too: `lockInvoice`).
    const inFlight = await refundedInFlight(trx, invoice.id);
    if (inFlight > 0n) {
      given.push(`${invoice.id} (${inFlight} ${invoice.currency} in refunds not answered yet)`);
      continue;
    }
    // A dispute open or lost on its payments gave the customer that money back, as a refund
    // (`disputedAway`), and is counted as one, as a cancellation's refund counts it.
    const disputed = await disputedAway(trx, invoice.id);
    if (
      invoice.amount_refunded === 0n &&
      invoice.credit_returned === 0n &&
      invoice.cash_credited === 0n &&
      disputed === 0n
    )
      continue;
    // The recurring lines, as a cancellation reads them: not usage, not the setup fee (no plan).
    const { recurring } = await recurringLines(trx, invoice.id);
    const creditPaidBack =
      (await overpaymentGivenBack(trx, invoice)) + (await changeCreditTakenBackOf(trx, invoice));
    const ofTime = recurringGivenBack(
      { ...invoice, amount_refunded: invoice.amount_refunded + disputed },
      creditPaidBack,
      recurring,
    );
    if (ofTime > 0n) given.push(`${invoice.id} (${ofTime} ${invoice.currency} of its recurring lines)`);
  }
  if (given.length === 0) return;
  throw new ValidationError('proration credits time given back', {
    proration: `this change credits the unused time of this period, but its invoices gave back money of their plan since they were paid (a refund, customer credit returned or a chargeback, beyond their setup fee, usage and overpayment), or may yet (a refund not answered yet): ${given.join(', ')}; refunds do not say which time they gave back, so it could be given back twice. Nothing changed; change with proration none, or at the next cycle, or once the refunds in flight are answered`,
  });
}

/**
 * What of the unused time a prorated change credits was charged by a period invoice voided since
 * (nothing paid it), decided from stored facts: the basis's `periodInvoice` (the period invoice whose
 * item the period's first prorated change credited, so the chain of bases counts it) is VOID now.
 * Every prorated change of the period credited the basis before it and charged its new side, so the
 * basis in force is funded, for any time left, by the period invoice's item plus each change's
 * difference (charged on its invoice, refused unless PAID when credited: `refuseCreditOfUnpaid`,
 * `refuseCreditOfUnpaidChanges`); the voided invoice's share of the time left is its item over that
 * time (`itemLines`, as the first change credited it), and the rest was paid by the change invoices.
 * SEK 2000 a month (A), up to 4000 on day 8 of 28 (1500 paid), the 2000 invoice voided, down to 500
 * on day 15: 2000 of unused time, of which 1000 of A's, voided: 1000 credited (the unused share of
 * the 1500 paid), 250 charged for the 500 plan, 750 customer credit (before: 1750, more than the 1500
 * paid). A period invoice voided before the period's first prorated change was credited by none
 * (`periodInvoice` null): none.
 * @returns the voided invoice's id and its item (its plan and coupon lines as charged: `invoicedItem`),
 * or undefined when none of the basis was charged by a voided invoice
 * @throws ValidationError (field `proration`) when the share cannot be told from stored facts: the
 * basis was stored before it named its period invoice (before this rule), or a change's credit was
 * taken off the voided invoice while it was owed (`proration_credited`: what of the time it covered
 * was paid is not recorded)
 */
async function voidedShare(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  basis: ChargedBasis,
): Promise<{ invoice: string; item: ChargedItem } | undefined> {
  const period = await trx
    .selectFrom('invoices')
    .select(['id', 'status', 'proration_credited'])
    .where('subscription_id', '=', subscription.id)
    .where('period_index', '=', basis.periodIndex)
    .executeTakeFirst();
  if (period?.status !== 'VOID' || basis.periodInvoice === null) return undefined;
  const wayOut = 'Nothing changed; change with proration none, or at the next cycle';
  if (basis.periodInvoice === undefined) {
    throw new ValidationError('proration credits a voided period', {
      proration: `this period's invoice ${period.id} is VOID and the period's prorated changes were stored before billhook recorded whether they credited it, so what of the unused time was paid is not known. ${wayOut}`,
    });
  }
  const item =
    period.id === basis.periodInvoice
      ? await invoicedItem(trx, subscription.id, basis.periodIndex, true)
      : null;
  if (!item || period.proration_credited > 0n) {
    throw new ValidationError('proration credits a voided period', {
      proration: `this period's invoice ${period.id} was voided after a prorated change of the period credited its unused time${period.proration_credited > 0n ? ` and a change's credit of ${period.proration_credited} was taken off it while it was owed` : ''}: what of the unused time was paid is not recorded. ${wayOut}`,
    });
  }
  return { invoice: period.id, item };
}

/**
 * Refuses a `full` change (the whole period credited as charged) when the period's earlier prorated
 * changes charged its current plan for part of the period only: crediting that plan's whole period
 * would give back a price never charged for the time before. It goes through when what the period
 * charged in all for its plan (the period invoice's plan and coupon lines, plus the changes' net) is
 * the current basis's whole period exactly (no change, or changes that add up to it).
 * @throws ValidationError (field `proration`)
 */
async function refuseFullOverChanges(
  trx: Kysely<Database>,
  subscriptionId: string,
  basis: ChargedBasis,
): Promise<void> {
  const charged =
    chargedTotal(await invoicedItem(trx, subscriptionId, basis.periodIndex)) + basis.changesTotal;
  const whole = chargedTotal(basis.plan);
  if (charged === whole) return;
  throw new ValidationError('full proration after a prorated change', {
    proration: `this period's prorated changes charged its plan ${charged} (minor units, tax included) in all, not the ${whole} of its whole period: a full proration would credit the whole period at a price charged for part of it only. Nothing changed; change with proration prorate_now or prorate_at_renewal, or none`,
  });
}

/**
 * Refuses a change that ends as the customer's credit (a net credit) while an invoice of the
 * period's earlier prorated changes (`basis.invoices`) is OPEN (finalized with the change, not paid
 * yet: charged at once or at the period's end), or the period's invoice is UNCOLLECTIBLE: the unused time it credits
 * was not paid, and customer credit outlives the invoice (it stays if the invoice is then voided or
 * written off) and can be refunded in cash. As a cancellation's refund waits for the period's change
 * invoices to be PAID (`refuseUnsettledChanges`, cancellation.ts). A VOID period invoice charged
 * nothing, so nothing of it is credited (`chargedBasis`); a VOID or UNCOLLECTIBLE change invoice is
 * refused by `refuseCreditOfUnpaidChanges` whatever the net, so voiding an OPEN one is no way out:
 * the message names the invoices to collect. An OPEN period invoice is still credited
 * as charged: the credit is taken off what it still owes first (`creditOwedPeriod`), so voiding it
 * or writing it off afterwards leaves no customer credit for time never paid.
 * @throws ValidationError (field `proration`) naming the invoices and what they still owe
 */
async function refuseCreditOfUnpaid(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  basis: ChargedBasis | undefined,
  proration: InvoicePreview,
): Promise<void> {
  if (proration.total >= 0n || subscription.current_period_index === null) return;
  const changes = basis?.invoices ?? [];
  const unpaid = await trx
    .selectFrom('invoices')
    .select(['id', 'status', 'amount_due'])
    .where((eb) =>
      eb.or([
        eb.and([
          eb('subscription_id', '=', subscription.id),
          eb('period_index', '=', subscription.current_period_index),
          eb('status', '=', 'UNCOLLECTIBLE'),
        ]),
        ...(changes.length ? [eb.and([eb('id', 'in', changes), eb('status', '=', 'OPEN')])] : []),
      ]),
    )
    .orderBy('id')
    .execute();
  if (unpaid.length === 0) return;
  const named = unpaid.map((i) => `${i.id} (${i.status}, ${i.amount_due} due)`).join(', ');
  throw new ValidationError('proration credits an unpaid period', {
    proration: `this change credits ${-proration.total} ${proration.currency} (tax included) for the unused time of this period, but its invoices ${named} are not paid: that time was not paid, and the credit would become customer credit, kept if the invoice is then voided or written off, and refundable in cash. Nothing changed; collect it first (${unpaid.map((i) => `POST /v1/invoices/${i.id}/charge`).join(', ')}), or change with proration none, or at the next cycle`,
  });
}

/**
 * The current period's invoice of `subscription` when it is still owed (OPEN, something due, partly
 * paid or not), locked unless `preview` (a change locks it before its customer: subscription →
 * invoices → customer), else undefined. A change's net credit is taken off it first
 * (`creditOwedPeriod`).
 */
async function owedPeriodInvoice(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  preview: boolean,
): Promise<InvoiceRow | undefined> {
  const row = await work.trx
    .selectFrom('invoices')
    .select('id')
    .where('subscription_id', '=', subscription.id)
    .where('period_index', '=', subscription.current_period_index)
    .where('status', '=', 'OPEN')
    .where('amount_due', '>', 0n)
    .executeTakeFirst();
  if (!row) return undefined;
  const invoice = preview
    ? await work.trx.selectFrom('invoices').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow()
    : await lockInvoice(work, row.id);
  return invoice.status === 'OPEN' && invoice.amount_due > 0n ? invoice : undefined;
}

/**
 * How much of a change's net credit (`proration.total` < 0) is taken off the period invoice still owed
 * (`owed`, from `owedPeriodInvoice`), minor units, tax included: all of it up to what is left due
 * (`creditInvoice` then rounds what is left due down to the charging gateway's step: a rounded Stripe
 * KWD invoice owing 1230 fils, a credit of 571 → 659 left, 9 rounded off, 650 due). The
 * credit is for time of that invoice's period, so it lowers what the customer still owes for it first,
 * as a credit note on an open invoice lowers its amount due (Stripe); only the rest, what was paid
 * beyond the lowered total, becomes customer credit, which is refundable in cash. So voiding the
 * invoice or writing it off later leaves no credit for time never paid (PRODUCT §11).
 *
 * Only when the period invoice alone funds the period (`basis`, its `chargedBasis`, lists no prorated
 * change invoices): after a change invoice (an upgrade, paid in cash or not) part of the unused time
 * credited was charged by that invoice, and taking it off the period invoice would send it back to
 * revenue, not to the customer, if that invoice is voided (2000 a month, up to 4000 on day 8 paid
 * 1500 by bank, back down on day 15: 1000 credit, of which cash-paid time, lost on a void). Which part
 * of the credit each invoice funded is not recorded, so such a credit over an owed period invoice is
 * refused.
 * Exact it is not: each invoice was prorated and rounded on its own, and the charged basis keeps
 * the price in force, not each invoice's share of the time left, so any split of the credit between
 * them would be a rule made up here, and a wrong one moves paid time onto a debt a void erases (or
 * unpaid time into refundable credit).
 * @throws ValidationError (field `proration`) for a net credit over an owed period invoice when the
 * period has change invoices: it names the credit, the invoice and what it owes, the change
 * invoices (status, total), and exactly what to do: settle the period invoice first (`POST
 * /v1/invoices/:id/charge`, or `POST /v1/invoices/:id/payments` with its amount due) and change
 * again (the credit then becomes customer credit), or change with proration none or at the next
 * cycle; not a void of the period invoice (the change then credits none of the unused time it
 * charged: `voidedShare`)
 * @throws ConflictError `charge_in_flight` when a charge of that invoice is pending or unknown: it was
 * asked for the amount due before the credit, and what the customer paid is not known yet
 */
async function creditOwedPeriod(
  trx: Kysely<Database>,
  owed: InvoiceRow | undefined,
  basis: ChargedBasis | undefined,
  proration: InvoicePreview,
): Promise<bigint> {
  if (!owed || proration.total >= 0n) return 0n;
  if (basis && basis.invoices.length > 0) {
    const changes = await trx
      .selectFrom('invoices')
      .select(['id', 'status', 'total'])
      .where('id', 'in', basis.invoices)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    const credit = `${-proration.total} ${proration.currency}`;
    const named = changes.map((i) => `${i.id} (${i.status}, ${i.total})`).join(', ');
    throw new ValidationError('proration credit over an owed period invoice after changes', {
      proration: `this change credits ${credit} (tax included) of unused time that this period's invoice ${owed.id} (OPEN: ${owed.id} still owes ${owed.amount_due}) and its earlier changes' invoices ${named} charged together. Which part of that time each of them funded is not recorded (each was prorated and rounded on its own; the period's charged basis keeps the price in force only), so the credit can neither lower what ${owed.id} owes exactly nor become customer credit, refundable in cash, while ${owed.id} is unpaid. Nothing changed. Settle ${owed.id} first: charge it now (POST /v1/invoices/${owed.id}/charge) or record the payment received outside billhook (POST /v1/invoices/${owed.id}/payments with amount ${owed.amount_due}), then change again: the ${credit} becomes customer credit (voiding ${owed.id} is no way out: the change would then credit none of the unused time ${owed.id} charged, only the unused share of what the change invoices paid). Or change now with proration none (nothing credited or charged for the rest of the period), or at the next cycle (when: next_cycle)`,
    });
  }
  const inFlight = await chargesInFlight(trx, owed.id);
  if (inFlight.length > 0) {
    throw new ConflictError(
      'charge_in_flight',
      `this change credits ${-proration.total} ${proration.currency} (tax included) for time of invoice ${owed.id}, which is owed and has charges in flight (${inFlight.map((t) => `${t.id} ${t.status}`).join(', ')}): the credit lowers what is left due, which depends on their outcome. Nothing changed; change again once they settle, or with proration none`,
    );
  }
  // min(credit, amount_due), on bigints (Math.min takes numbers only).
  let credit = -proration.total;
  if (credit > owed.amount_due) credit = owed.amount_due;
  return credit;
}

/**
 * Splits a change's net credit (`proration`, `total` < 0) into the part taken off the period invoice
 * (`amount`, minor units, 0 … −total) and the rest, the customer's credit, each as subtotal + tax = total
 * (all ≤ 0, as `prorationCredited` takes them). The tax goes with its share of the credit, `tax ×
 * amount / credit` rounded half up on its size (the whole tax when all the credit is taken off): 500
 * with 100 tax, 300 taken off → 60 tax and 240 net on the invoice, 40 and 160 to the customer.
 */
export function splitCredit(
  proration: Pick<InvoicePreview, 'subtotal' | 'tax' | 'total'>,
  amount: bigint,
): Record<'onInvoice' | 'toCustomer', { subtotal: bigint; tax: bigint; total: bigint }> {
  const credit = -proration.total;
  // Nothing taken off (a total of 0 too: a credit before tax that the tax takes back): all of it is
  // the customer's, as it always was.
  if (amount === 0n) {
    const { subtotal, tax, total } = proration;
    return { onInvoice: { subtotal: 0n, tax: 0n, total: 0n }, toCustomer: { subtotal, tax, total } };
  }
  const taxCredit = -proration.tax;
  const taxShare = amount === credit ? taxCredit : prorateSigned(taxCredit, amount, credit);
  const onInvoice = { subtotal: -(amount - taxShare), tax: -taxShare, total: -amount };
  return {
    onInvoice,
    toCustomer: {
      subtotal: proration.subtotal - onInvoice.subtotal,
      tax: proration.tax - onInvoice.tax,
      total: proration.total - onInvoice.total,
    },
  };
}

/**
 * Takes `part` (a change's credit, each ≤ 0: `splitCredit`'s `onInvoice`; or a cancellation's refund of
 * the unused time of an OPEN add-on invoice: cancellation.ts `settleUnpaid`) off the locked OPEN
 * invoice `invoice` at `now`, as a credit note on an open invoice lowers what is due: posts `inv_…:proration_credited:<n>` (`prorationCreditedOnInvoice`),
 * adds it to `proration_credited` (its tax to `proration_tax_credited`) and takes it off `amount_due`;
 * what is left due, when the gateway that will charge it cannot take it, is rounded down to its step
 * (invoices.ts `roundOwedAgain`: `rounding` raised, `total` lowered, `inv_…:rounded:<n>`; Stripe TND
 * 12340 owed less 5729 → 6610 due, 1 rounded off), so the customer gets all of the credit and the
 * invoice stays chargeable (PAID, off the charge schedule, once
 * nothing is left due), and logs `invoice.proration_credited`, then `invoice.paid` (`paid_by`
 * `proration_credit`, `amount` 0: no money moved) when it cleared the invoice.
 * @returns whether nothing is left due (PAID)
 */
export async function creditInvoice(
  work: UnitOfWork,
  invoice: InvoiceRow,
  part: { subtotal: bigint; tax: bigint; total: bigint },
  now: Date,
): Promise<boolean> {
  const credited = invoice.proration_credited - part.total;
  let due = invoice.amount_due + part.total;
  await postEntry(
    work,
    prorationCreditedOnInvoice({
      invoiceId: invoice.id,
      customerId: invoice.customer_id,
      currency: invoice.currency,
      ...part,
      prorationCredited: credited,
    }),
  );
  // What is left due back on the charging gateway's step (PRODUCT §11), as finalization rounds it.
  const rounded = due > 0n ? await roundOwedAgain(work, invoice, due) : undefined;
  if (rounded) due -= rounded.amount;
  const settled = due === 0n;
  await work.update('invoices', invoice, {
    proration_credited: credited,
    proration_tax_credited: invoice.proration_tax_credited - part.tax,
    amount_due: due,
    ...(rounded ? { rounding: rounded.rounding, total: rounded.total } : {}),
    ...(settled ? { status: 'PAID' as const, paid_at: now, charge_at: null } : {}),
    updated_at: now,
  });
  await invoiceActivity(work, invoice, 'invoice.proration_credited', {
    amount: -part.total,
    proration_credited: credited,
    proration_tax_credited: invoice.proration_tax_credited - part.tax,
    amount_due: due,
    ...(rounded ? { rounded_off: rounded.amount, rounding: rounded.rounding, total: rounded.total } : {}),
    ...(settled ? { status: 'PAID' } : {}),
  });
  // Cleared by the credit: PAID as by a payment, so the merchant hears of it (the outbound
  // `invoice.paid` event is built from this activity); no money moved (`amount` 0).
  if (settled) {
    await invoiceActivity(work, invoice, 'invoice.paid', {
      currency: invoice.currency,
      amount: 0n,
      amount_paid: invoice.amount_paid,
      amount_due: 0n,
      paid_by: 'proration_credit',
      proration_credited: credited,
    });
    await resolveSetAsideCharges(
      work,
      invoice.id,
      `invoice ${invoice.id} was paid by a prorated credit (${credited} ${invoice.currency} credited in all): nothing is left to charge`,
    );
  }
  return settled;
}

/**
 * Changes plan and/or quantity of subscription `id` at `now`, prorating the current period; with
 * `preview` it computes the same and writes nothing. Logs `subscription.changed`. It first brings
 * the subscription's periods up to `now` as the renewal sweep would (`renewedUpTo`, in the same unit
 * of work), so a change after the period's end that the sweep has not renewed yet prorates the
 * period holding `now`: monthly 3000 → 6000 on day 10 of a 30-day period the sweep has not renewed
 * yet is that period's invoice of 3000, then a change invoice of 4000 − 2000 = 2000 for the 20 days
 * left (not one invoice of 6000 for the whole period). A preview makes that catch-up too and rolls it
 * back with the rest (`inRolledBackUnitOfWork`), so it gives the same figures; `subscription` is then
 * the row as the change would start from (renewed up to `now`).
 * @throws NotFoundError subscription or plan; ConflictError `subscription_not_changeable`
 * (SUSPENDED, CANCELLED, or ended by the catch-up renewal: `refuseUnchangeable`), `plan_inactive`, `usage_split_unpriceable` (a plan change mid-period
 * over earlier usage of a metric the new plan meters with another aggregation than the old plan, or
 * prices VOLUME or STAIRSTEP, or, in a trial, bills though the old plan did not bill trial usage:
 * `refuseUnpriceableUsageSplit`, preview too),
 * `cancellation_scheduled` (a prorated change while a cancellation is scheduled whose refund gave
 * back money of this period: its unused time would be credited twice), `periods_invoiced_ahead` (a settled term: `refuseChangeInvoicedAhead`, now or at
 * the next cycle, previewed too); ValidationError (field `plan`) for another currency or
 * interval, or no change at all; (field `quantity`) when the next period would bill more than 10^15
 * minor units (`refuseUninvoiceablePeriod`, now or at the next cycle, preview too); (field
 * `proration`) for a net credit whose tax rises more
 * (`refuseDebtOnCredit`), a net credit while a change's invoice of the period is not paid or the
 * period's is UNCOLLECTIBLE (`refuseCreditOfUnpaid`), a change after one whose invoice is VOID or UNCOLLECTIBLE
 * (`refuseCreditOfUnpaidChanges`), `full` after prorated changes that charged the plan for part of
 * the period (`refuseFullOverChanges`), a prorated change of a period changed before bases were
 * stored (`chargedBasis`), or one crediting unused time of a period whose invoices gave money back
 * (`refuseCreditOfGivenBack`), or a net credit over an OPEN period invoice in a period with change
 * invoices (`creditOwedPeriod`); ConflictError `charge_in_flight` for a net credit while a charge of the
 * OPEN period invoice it is taken off is pending or unknown (`creditOwedPeriod`); ConflictError
 * `add_on_charge_pending` (field `plan`) for a change now to a plan taxing otherwise while an add-on
 * charge pending since a payment's reactivation could not be made (`refuseRetaxingPendingCharge`;
 * any other change goes on, the charge left pending for the renewal sweep: renewal.ts `'try'`)
 */
/**
 * Refuses a change now of `subscription` from `oldPlan` to `newPlan` while the add-on charge pending
 * since a payment's reactivation (`add_on_charge_at`) is left pending because making it failed
 * (`failed`: why), when the two plans tax otherwise (rate or inclusive): the charge, made later with
 * the subscription's plan (add-on-proration.ts `reactivationAddOnCharge`), would be taxed by the new
 * plan though its time was served on the old one. Decided before anything is made. Any other change
 * goes on, the charge left pending.
 * @throws ConflictError `add_on_charge_pending` (field `plan`)
 */
function refuseRetaxingPendingCharge(
  subscription: SubscriptionRow,
  oldPlan: Plan,
  newPlan: Plan,
  failed: string,
): void {
  if (oldPlan.tax_rate_ppm === newPlan.tax_rate_ppm && oldPlan.tax_inclusive === newPlan.tax_inclusive)
    return;
  const since = subscription.add_on_charge_at?.toISOString();
  throw new ConflictError(
    'add_on_charge_pending',
    `subscription ${subscription.id} has an add-on charge pending since ${since} (the add-on units set while it was suspended, charged from the payment that reactivated it) that cannot be made now (${failed}); plan ${newPlan.id} taxes otherwise than plan ${oldPlan.id}, which that charge is taxed by. Nothing changed; change it at the next cycle (when: next_cycle), or again once the renewal sweep has made the charge`,
    { plan: `a plan taxing otherwise waits for the add-on charge pending since ${since}` },
  );
}

export async function changeSubscription(
  db: Db,
  actor: Actor,
  id: string,
  change: SubscriptionChangeInput,
  now: Date,
  preview: boolean,
): Promise<ChangeResult> {
  // A preview makes the same catch-up renewal and reads the same rows, then keeps nothing.
  const unitOfWork = preview ? inRolledBackUnitOfWork : inUnitOfWork;
  return unitOfWork(db, { actor }, async (work) => {
    const locked = (await lockSubscription(work, id))!;
    refuseUnchangeable(locked, locked);
    // The periods as the renewal sweep has them by `now`, whatever its lag: the change prorates the
    // period holding `now`, and the period before the change is billed on the old plan.
    // An add-on charge pending since a payment's reactivation whose making fails is left pending
    // ('try'): the change goes on without it, and the renewal sweep makes it once it can.
    const {
      subscription,
      invoices: caughtUp,
      pendingChargeFailed,
    } = await renewedUpTo(work, locked, now, DEFAULT_RENEWAL_POLICY, 'try');
    refuseUnchangeable(locked, subscription);
    const catchUpInvoices = preview ? [] : caughtUp;
    const oldPlan = await getPlan(work.trx, subscription.plan_id);
    const newPlan = change.planId ? await getPlan(work.trx, change.planId) : oldPlan;
    checkTarget(oldPlan, newPlan, change.planId !== undefined);
    if (pendingChargeFailed !== undefined && change.when !== 'next_cycle') {
      refuseRetaxingPendingCharge(subscription, oldPlan, newPlan, pendingChargeFailed);
    }
    const quantity = change.quantity ?? subscription.quantity;
    if (newPlan.id === oldPlan.id && quantity === subscription.quantity) {
      throw new ValidationError('nothing to change', {
        plan: 'the subscription already has this plan and quantity',
      });
    }
    await refuseChangeInvoicedAhead(work.trx, subscription);
    await refuseUninvoiceablePeriod(work.trx, subscription, newPlan, quantity);
    if (change.when === 'next_cycle') {
      return {
        ...(await scheduleChange(work, subscription, newPlan, quantity, now, preview)),
        catchUpInvoices,
      };
    }
    const behavior = change.proration ?? DEFAULT_PRORATION;
    const start = subscription.current_period_start;
    const end = subscription.current_period_end;
    const inPeriod = subscription.current_period_index !== null && start && end && start <= now && now < end;
    // The time the change is for ends where the period's service does: at a cancellation scheduled
    // within it, else at its end (`servedUntil`).
    const served = servedUntil(subscription);
    // The period invoice still owed, which a net credit lowers first: locked before the customer.
    const owed =
      inPeriod && behavior !== 'none' ? await owedPeriodInvoice(work, subscription, preview) : undefined;
    // Taxed once: the preview prices these lines and the invoice stores them as they are. A change
    // (not a preview) reads its customer under invoicing's lock before pricing (`openCustomerOnce`),
    // so the lines' taxes and the invoices' number and terms come from the same read of the customer.
    const customer = preview ? undefined : openCustomerOnce(work.trx, subscription.customer_id);
    const lines: NewLine[] = [];
    // What the period charged so far, and what it charges from now on for the new plan and quantity.
    let charged:
      | { before: ChargedBasis; after: ChargedItem; time: { remaining: bigint; period: bigint } }
      | undefined;
    // The voided period invoice whose share of the unused time is taken out (`voidedShare`).
    let voided: { invoice: string; item: ChargedItem } | undefined;
    if (inPeriod && behavior !== 'none') {
      await refuseSecondCredit(work, subscription);
      const period = secondsBetween(start, end);
      const time = {
        remaining: secondsBetween(behavior === 'full' ? start : now, served!),
        period,
      };
      const before = await chargedBasis(
        work.trx,
        subscription,
        subscription.current_period_index!,
        'proration',
      );
      await refuseCreditOfUnpaidChanges(work.trx, before);
      if (behavior === 'full') await refuseFullOverChanges(work.trx, subscription.id, before);
      const after = await chargedFromNow(work.trx, subscription, newPlan, quantity, customer, now);
      charged = { before, after, time };
      const span = { start: now, end: served! };
      const unused = before.plan
        ? itemLines(before.plan, 'CREDIT', `Unused time on ${before.plan.description}`, span, time)
        : [];
      if (unused.length > 0) await refuseCreditOfGivenBack(work.trx, subscription, before);
      // The share of the unused time a voided period invoice charged is not credited: nothing paid it.
      voided = unused.length > 0 ? await voidedShare(work.trx, subscription, before) : undefined;
      const unpaid = voided
        ? itemLines(
            voided.item,
            'CHARGE',
            `Unused time on ${voided.item.description} of voided invoice ${voided.invoice}, not credited`,
            span,
            time,
          )
        : [];
      lines.push(
        ...unused,
        ...unpaid,
        ...itemLines(after, 'CHARGE', `Remaining time on ${after.description}`, span, time),
      );
    }
    const proration: InvoicePreview = {
      customerId: subscription.customer_id,
      currency: newPlan.currency,
      billingReason: 'subscription_update',
      invoiceAt: now,
      periodStart: now,
      periodEnd: served && inPeriod ? served : now,
      ...pricedLines(lines),
    };
    refuseDebtOnCredit(proration);
    if (newPlan.id !== oldPlan.id) {
      const periodStart = usagePeriodAt(subscription, oldPlan, now).start;
      await refuseUnpriceableUsageSplit(work.trx, subscription, oldPlan, newPlan, periodStart, now);
    }
    await refuseCreditOfUnpaid(work.trx, subscription, charged?.before, proration);
    // A net charge, or a change that only raises the tax (subtotal 0), is invoiced; any other change
    // gives back its subtotal (signed: below 0 when its tax credit outweighs a net charge).
    const invoiced = proration.subtotal >= 0n && proration.total > 0n;
    const credited = invoiced ? 0n : -proration.subtotal;
    const onOwed = await creditOwedPeriod(work.trx, owed, charged?.before, proration);
    const creditedToInvoice = owed && onOwed > 0n ? { invoice: owed.id, amount: onOwed } : null;
    if (preview) {
      // An invoiced change shows the credit and rounding its finalization would apply (PRODUCT §11).
      // With the customer's credit its finalization would apply, as this unit's entries leave it.
      if (invoiced) await work.writeLedger();
      const shown = invoiced
        ? await withRounding(work.trx, proration, subscription.payment_method_id)
        : proration;
      return {
        subscription,
        proration: shown,
        invoice: null,
        credited,
        creditedToInvoice,
        usageInvoice: null,
        catchUpInvoices,
      };
    }

    // Usage so far was the old plan's: billed now at its metered prices (PRODUCT §11), on its own
    // invoice; only later usage is priced with the new plan.
    const usageInvoice =
      newPlan.id === oldPlan.id
        ? null
        : await invoiceUsageUntil(work, subscription, oldPlan, now, now, 'subscription_update', customer);

    let invoice: InvoiceRow | null = null;
    // A change that only raises the tax (subtotal 0) bills the tax.
    if (invoiced) {
      const inserted = await insertInvoice(
        work,
        {
          customerId: subscription.customer_id,
          currency: newPlan.currency,
          lines,
          subscriptionId: subscription.id,
          periodStart: proration.periodStart,
          periodEnd: proration.periodEnd,
          billingReason: 'subscription_update',
          details: subscriptionInvoiceDetails(subscription),
          chargeAt: behavior === 'prorate_at_renewal' && served ? served : now,
        },
        { customer, taxed: true },
      );
      invoice = await finalizeLocked(work, inserted, now, customer);
    }
    const updated = await work.trx
      .updateTable('subscriptions')
      .set({
        plan_id: newPlan.id,
        quantity,
        updated_at: now,
        // A prorated change charged the new plan for the rest of the period: the period's basis now.
        ...(charged
          ? {
              charged_basis: storedBasis({
                periodIndex: charged.before.periodIndex,
                plan: withChangeRounding(charged.after, invoice, charged.time),
                changesTotal: charged.before.changesTotal + (invoice ? invoice.total : proration.total),
                invoices: invoice ? [...charged.before.invoices, invoice.id] : charged.before.invoices,
                // Once its share is taken out, the voided invoice funds nothing of the new basis.
                periodInvoice: voided ? null : charged.before.periodInvoice,
                ...(served && end && served < end ? { until: served } : {}),
              }),
            }
          : {}),
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    // A change not invoiced (a net credit, or a change of tax alone that lowers it) moves its lines'
    // subtotal out of revenue and its tax out of tax payable: first off what the period invoice still
    // owes (`creditOwedPeriod`), the rest into the customer's credit (`total`, negative: a credit),
    // which their next invoices use.
    if (!invoice && (proration.subtotal !== 0n || proration.tax !== 0n)) {
      const parts = splitCredit(proration, onOwed);
      if (owed && onOwed > 0n) await creditInvoice(work, owed, parts.onInvoice, now);
      const rest = parts.toCustomer;
      if (rest.subtotal !== 0n || rest.tax !== 0n) {
        await postEntry(
          work,
          prorationCredited({
            subscriptionId: id,
            customerId: subscription.customer_id,
            currency: newPlan.currency,
            ...rest,
            at: now,
            from: { planId: oldPlan.id, quantity: subscription.quantity },
            to: { planId: newPlan.id, quantity },
          }),
        );
      }
    }
    await subscriptionActivity(work, subscription, 'subscription.changed', {
      from_plan: oldPlan.id,
      to_plan: newPlan.id,
      from_quantity: subscription.quantity,
      to_quantity: quantity,
      proration: behavior,
      invoice: invoice?.id,
      usage_invoice: usageInvoice?.id,
      credited,
      ...(creditedToInvoice
        ? {
            credited_to_invoice: creditedToInvoice.invoice,
            credited_to_invoice_amount: creditedToInvoice.amount,
          }
        : {}),
    });
    // A period invoice the credit settled whole is PAID: the subscription is reinstated as by a payment.
    const reinstated =
      owed && onOwed === owed.amount_due && subscription.status === 'PAST_DUE'
        ? await reinstateAfterPayment(work, id, owed.id, now)
        : false;
    const current = reinstated
      ? await work.trx.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
      : updated;
    return {
      subscription: current,
      proration,
      invoice,
      credited,
      creditedToInvoice,
      usageInvoice,
      catchUpInvoices,
    };
  });
}

/**
 * Refuses a change of a subscription that is not live: SUSPENDED or CANCELLED as `locked` was read,
 * or ended (CANCELLED) by the renewal that brought it up to now (`caughtUp`: its scheduled
 * cancellation or the end of its term came before now, and the renewal sweep has not run it yet).
 * @throws ConflictError `subscription_not_changeable`
 */
function refuseUnchangeable(locked: SubscriptionRow, caughtUp: SubscriptionRow): void {
  if (locked.status === 'SUSPENDED' || locked.status === 'CANCELLED') {
    throw new ConflictError(
      'subscription_not_changeable',
      `subscription ${locked.id} is ${locked.status}; only a live subscription can change`,
    );
  }
  if (caughtUp.status === 'CANCELLED') {
    throw new ConflictError(
      'subscription_not_changeable',
      `subscription ${locked.id} ended at ${caughtUp.cancelled_at?.toISOString()} (its scheduled cancellation or the end of its term; the renewal sweep records it shortly); only a live subscription can change`,
    );
  }
}

/**
 * What a change at `now` charges from then on for `plan` × `quantity` (a charged item for the whole
 * period, to prorate): the plan's price (or the subscription's amount override), less the coupons
 * that counted for the current period, are still redeemed at `now` and apply to its product
 * (coupons.ts `periodCoupons`, `couponAppliesTo`), taxed as the customer is now: read once under
 * invoicing's lock (`customer`) or, for a preview, read here.
 */
async function chargedFromNow(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  plan: Plan,
  quantity: number,
  customer: OpenCustomer | undefined,
  now: Date,
): Promise<ChargedItem> {
  // A coupon restricted to products discounts the new plan only when it is one of them.
  const coupons = (await periodCoupons(trx, subscription, null, now)).filter((coupon) =>
    couponAppliesTo(coupon, plan.product_id),
  );
  const base = baseAmount(plan, quantity, subscription.amount_override);
  const discounts = couponDiscounts(coupons, base);
  return {
    planId: plan.id,
    description: `${plan.name} × ${quantity}`,
    base,
    discounts: coupons.map((coupon, i) => ({
      couponId: coupon.id,
      code: coupon.code,
      amount: discounts[i]!,
    })),
    tax: await taxRuleNow(trx, subscription, plan, customer),
  };
}

/**
 * The tax rule of a line of `plan` charged now to `subscription`'s customer (a plan's line, or an
 * add-on's, which is taxed as the plan's: renewal.ts `recurringLines`): the plan's rate and whether
 * its prices include tax, with the named rates of the customer's address now, read under invoicing's
 * lock (`customer`) or, for a preview (undefined), read here.
 */
export async function taxRuleNow(
  trx: Kysely<Database>,
  subscription: Pick<SubscriptionRow, 'customer_id'>,
  plan: Pick<Plan, 'tax_rate_ppm' | 'tax_inclusive'>,
  customer: OpenCustomer | undefined,
): Promise<ChargedItem['tax']> {
  const plain: NewLine[] = [
    {
      description: '',
      quantity: 1,
      type: 'CHARGE',
      taxRatePpm: plan.tax_rate_ppm,
      taxInclusive: plan.tax_inclusive,
    },
  ];
  const [rule] = customer
    ? await withTaxesAt(trx, taxLocationOf(await customer()), plain)
    : await withCustomerTaxes(trx, subscription.customer_id, plain);
  return { taxRatePpm: rule!.taxRatePpm, taxRates: rule!.taxRates, taxInclusive: rule!.taxInclusive };
}

/** A coupon's discount on a charged item for a whole period, minor units of its price (tax included for a tax-inclusive price). */
export interface ChargedDiscount {
  couponId: string;
  code: string;
  amount: bigint;
}

/**
 * What a period's invoices charged for its plan, for the whole period: the plan and quantity
 * (`description`, "Pro × 2"), the price `base` (minor units; the amount override when set; tax
 * included for a tax-inclusive price), the coupons' discounts on it in the order they applied, and
 * the tax rule it was billed with (its named rates, else a bare percent; whether the price included
 * them). Priced (`itemLines`) it gives back the amounts charged, to the minor unit.
 */
export interface ChargedItem {
  planId: string;
  /**
   * An add-on's item (add-on-proration.ts): its lines carry this add-on and no plan (`planId` is then
   * the subscription's plan, not written on them).
   */
  addOnId?: string;
  /** The quantity its priced line records (1 when omitted: a plan's item says it in `description`). */
  quantity?: number;
  description: string;
  base: bigint;
  discounts: ChargedDiscount[];
  tax: Pick<NewLine, 'taxRatePpm' | 'taxRates' | 'taxInclusive'>;
  /**
   * What finalization rounded off the period invoice that charged it (PRODUCT §11: its `rounding`,
   * billing/invoice-rounding.ts; minor units ≥ 0, for the whole period; 0 when omitted): the item
   * cost that much less than its priced lines, so `itemLines` takes its share of the time off.
   * A change's new side (`chargedFromNow`) has its invoice's rounding spread over the whole period
   * (`withChangeRounding`), also counted in `changesTotal` (the invoice's rounded total).
   */
  rounding?: bigint;
}

/**
 * The current period's charged basis: what its invoices charged for the plan in force (`plan`, for
 * the whole period: the period invoice's plan and coupon lines, or the new side of the period's
 * latest prorated change; null when nothing was charged: no plan line, or the period invoice is
 * VOID), what the period's prorated changes charged (+) and credited (−) in all, tax included
 * (`changesTotal`, minor units), and the invoices of those that charged (`invoices`). A change with
 * proration `none` charges nothing, so it leaves the basis as it was: the price paid for the rest of
 * the period is still the one before it.
 */
export interface ChargedBasis {
  periodIndex: number;
  plan: ChargedItem | null;
  changesTotal: bigint;
  invoices: string[];
  /**
   * The period invoice whose item this basis still counts as charged (the period's first prorated
   * change credited it, every change since credited the basis before it, so the time left is funded
   * by it and the change invoices: `voidedShare`); null: none (VOID or without a plan line when the
   * period's first prorated change ran, or its share of the time taken out since it was voided);
   * undefined: a basis stored before bases named it (not known).
   */
  periodInvoice?: string | null;
  /**
   * Where the latest prorated change charged `plan` up to, when that is before the period's end (a
   * cancellation at a date within the period was scheduled: `servedUntil`); absent: to the period's
   * end. What the time after it was charged is then not in the basis (cancellation.ts refuses a
   * `prorate` refund over it).
   */
  until?: Date;
}

/** `subscriptions.charged_basis` as stored (JSON: amounts as decimal strings of minor units). */
interface StoredBasis {
  period_index: number;
  plan: {
    plan_id: string;
    description: string;
    base: string;
    discounts: { coupon_id: string; code: string; amount: string }[];
    tax_rate_ppm: number | null;
    tax_rates: AppliedTaxRate[] | null;
    tax_inclusive: boolean;
    /** `ChargedItem.rounding`; absent (0) in bases stored before invoices were rounded. */
    rounding?: string;
  } | null;
  changes_total: string;
  invoices: string[];
  /** `ChargedBasis.periodInvoice`; absent in bases stored before it was recorded. */
  period_invoice?: string | null;
  /** `ChargedBasis.until` (ISO 8601); absent: the period's end. */
  until?: string;
}

/** `basis` as `subscriptions.charged_basis` stores it (JSON text). */
function storedBasis(basis: ChargedBasis): string {
  const plan = basis.plan;
  const stored: StoredBasis = {
    period_index: basis.periodIndex,
    plan: plan && {
      plan_id: plan.planId,
      description: plan.description,
      base: plan.base.toString(),
      discounts: plan.discounts.map((d) => ({
        coupon_id: d.couponId,
        code: d.code,
        amount: d.amount.toString(),
      })),
      tax_rate_ppm: plan.tax.taxRatePpm ?? null,
      tax_rates: plan.tax.taxRates ? [...plan.tax.taxRates] : null,
      tax_inclusive: plan.tax.taxInclusive ?? false,
      rounding: (plan.rounding ?? 0n).toString(),
    },
    changes_total: basis.changesTotal.toString(),
    invoices: basis.invoices,
    ...(basis.periodInvoice === undefined ? {} : { period_invoice: basis.periodInvoice }),
    ...(basis.until ? { until: basis.until.toISOString() } : {}),
  };
  return JSON.stringify(stored);
}

/**
 * The charged basis of the current period `periodIndex` of subscription `subscription`: the one its
 * latest prorated change of this period stored (`charged_basis`), else the period invoice's plan line
 * and its coupon lines as they were charged (see `ChargedBasis`). Read-only. `field` is the input
 * field a refusal names: `proration` for a change, `refund_type` for a cancellation's refund.
 * @throws ValidationError (field `field`) when no basis of this period is stored but a prorated
 * change already ran in it (`refuseUnrecordedChange`: before migration 0042 stored bases)
 */
export async function chargedBasis(
  trx: Kysely<Database>,
  subscription: Pick<
    SubscriptionRow,
    'id' | 'customer_id' | 'charged_basis' | 'current_period_start' | 'current_period_end'
  >,
  periodIndex: number,
  field: 'proration' | 'refund_type',
): Promise<ChargedBasis> {
  const stored = subscription.charged_basis as StoredBasis | null;
  if (stored && stored.period_index === periodIndex) {
    const plan = stored.plan;
    return {
      periodIndex,
      plan: plan && {
        planId: plan.plan_id,
        description: plan.description,
        base: BigInt(plan.base),
        discounts: plan.discounts.map((d) => ({
          couponId: d.coupon_id,
          code: d.code,
          amount: BigInt(d.amount),
        })),
        tax: {
          ...(plan.tax_rate_ppm === null ? {} : { taxRatePpm: plan.tax_rate_ppm }),
          ...(plan.tax_rates === null ? {} : { taxRates: plan.tax_rates }),
          taxInclusive: plan.tax_inclusive,
        },
        rounding: BigInt(plan.rounding ?? '0'),
      },
      changesTotal: BigInt(stored.changes_total),
      invoices: stored.invoices,
      ...(stored.period_invoice === undefined ? {} : { periodInvoice: stored.period_invoice }),
      ...(stored.until ? { until: new Date(stored.until) } : {}),
    };
  }
  await refuseUnrecordedChange(trx, subscription, field);
  const plan = await invoicedItem(trx, subscription.id, periodIndex);
  const counted = plan
    ? await trx
        .selectFrom('invoices')
        .select('id')
        .where('subscription_id', '=', subscription.id)
        .where('period_index', '=', periodIndex)
        .where('status', '!=', 'VOID')
        .executeTakeFirst()
    : undefined;
  return { periodIndex, plan, changesTotal: 0n, invoices: [], periodInvoice: counted?.id ?? null };
}

/**
 * Refuses to take the period invoice as the basis of subscription `subscription`'s current period
 * when a prorated change already ran in it without storing a basis (it ran before migration 0042):
 * the plan in force was charged by that change, at a price and for a time the period invoice does
 * not say, and what it charged and credited is not known here. A change's proration lines are
 * recognized by a `subscription_update` invoice with a plan line (not usage, not an add-on's) for the
 * rest of this period, a net credit by its `proration_credit` journal entry dated in this period.
 * A change of no net amount leaves neither; its price is then the period invoice's. The way out:
 * proration or refund_type none, or wait for the next period (its invoice is the basis again).
 * @throws ValidationError (field `field`) naming what was found
 */
async function refuseUnrecordedChange(
  trx: Kysely<Database>,
  subscription: Pick<SubscriptionRow, 'id' | 'customer_id' | 'current_period_start' | 'current_period_end'>,
  field: 'proration' | 'refund_type',
): Promise<void> {
  const { id, current_period_start: start, current_period_end: end } = subscription;
  if (!start || !end) return;
  const invoice = await trx
    .selectFrom('invoice_lines')
    .innerJoin('invoices', 'invoices.id', 'invoice_lines.invoice_id')
    .select('invoices.id')
    .where('invoices.subscription_id', '=', id)
    .where('invoices.billing_reason', '=', 'subscription_update')
    .where('invoice_lines.plan_id', 'is not', null)
    .where('invoice_lines.add_on_id', 'is', null)
    .where('invoice_lines.metric_code', 'is', null)
    .where('invoice_lines.period_start', '>=', start)
    .where('invoice_lines.period_end', '=', end)
    .executeTakeFirst();
  const credit = invoice
    ? undefined
    : (await changeCreditsToCustomer(trx, subscription, start, end)).entries[0];
  if (!invoice && !credit) return;
  const found = invoice ? `its invoice ${invoice.id}` : `its customer credit (journal entry ${credit})`;
  const wayOut =
    field === 'proration'
      ? 'change with proration none, or at the next cycle, or wait for the next period'
      : 'cancel with refund_type none (then refund by hand: POST /v1/invoices/:id/refund), or at the period end, or wait for the next period';
  throw new ValidationError('period changed before charged bases were stored', {
    [field]: `a prorated change of this period (${found}) ran before billhook stored what a change charges (migration 0042), so what the plan in force was charged for the rest of the period is not known and the period invoice's price would be wrong. Nothing changed; ${wayOut}`,
  });
}

/**
 * What the prorated changes of subscription `subscription` made from `start` (inclusive) to `end`
 * (exclusive) gave its customer as customer credit: the `proration_credit` journal entries
 * (`prorationCredited`, keyed `<subscription>:proration_credit:<ISO time of the change>:<change>`)
 * dated in that span, read from the ledger, so whatever became of the credit since (held, spent on
 * later invoices, refunded) it counts. Not the part of a change's credit taken off an OPEN period
 * invoice (`creditInvoice`: `proration_credited` on the invoice, never the customer's).
 * @returns `entries` (their journal entry ids, in no particular order; none: no such change),
 * `total` (what the customer's credit account was credited, minor units ≥ 0, tax included) and `tax`
 * (the tax payable it debited, minor units, signed: below 0 when the change raised the tax)
 */
export async function changeCreditsToCustomer(
  trx: Kysely<Database>,
  subscription: Pick<SubscriptionRow, 'id' | 'customer_id'>,
  start: Date,
  end: Date,
): Promise<{ entries: string[]; total: bigint; tax: bigint }> {
  const prefix = entryKeys.prorationCreditedPrefix(subscription.id);
  const at = sql<string>`substr(e.idempotency_key, ${prefix.length + 1}, 24)`;
  const customerCredit = chart.customerCredit(subscription.customer_id).code;
  const rows = await trx
    .selectFrom('journal_entries as e')
    .innerJoin('postings as p', 'p.journal_entry_id', 'e.id')
    .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
    .select(['e.id', 'a.code', 'p.amount'])
    .where('e.source_type', '=', 'subscription')
    .where('e.source_id', '=', subscription.id)
    .where(sql<boolean>`starts_with(e.idempotency_key, ${prefix})`)
    .where(at, '>=', start.toISOString())
    .where(at, '<', end.toISOString())
    .where('a.code', 'in', [customerCredit, chart.taxPayable.code])
    .execute();
  // The customer's credit account is credited (< 0); tax payable debited (> 0) for the tax given back.
  const sum = (code: string) => rows.filter((r) => r.code === code).reduce((t, r) => t + r.amount, 0n);
  return {
    entries: [...new Set(rows.map((r) => r.id))],
    total: -sum(customerCredit),
    tax: sum(chart.taxPayable.code),
  };
}

/**
 * A succeeded refund of an invoice whose booking is being worked out (payments/refunds.ts
 * `recordRefundResult`), not yet counted as its credit note counts it: `periodInvoices` counts it as
 * giving back its sale, all but what it pays back of an overpayment and `takenBack` (minor units ≥ 0:
 * what of it gives back, beyond what the period kept, the change credit the customer already has;
 * `changeCreditTakenBack`). While one is booked the period counts only the money that moved: its
 * succeeded refunds, not those in flight, which may yet fail (a refund by hand pending when a
 * dashboard refund succeeds; should it succeed too, its own booking takes the credit back).
 */
export interface RefundBeingBooked {
  refundId: string;
  invoiceId: string;
  takenBack: bigint;
}

/**
 * The invoices of `invoice`'s period (`periodInvoices`, `booking` counted as it says), the one owed
 * for the period (`owed`: its `period_index` set) and the credit its prorated changes gave the
 * customer (`changeCreditsToCustomer`, `total` > 0); undefined when `invoice` is of no subscription
 * period or the period gave the customer no such credit.
 */
async function periodWithCredit(trx: Kysely<Database>, invoice: InvoiceRow, booking?: RefundBeingBooked) {
  const { subscription_id: id, period_end: end } = invoice;
  if (id === null || !invoice.period_start || !end) return undefined;
  if (invoice.period_index === null && invoice.billing_reason !== 'subscription_update') return undefined;
  const period = await periodInvoices(trx, id, end, booking);
  const owed =
    invoice.period_index !== null
      ? period.find((i) => i.id === invoice.id)
      : period.find((i) => i.period_index !== null);
  if (!owed?.period_start || invoice.period_start < owed.period_start) return undefined;
  const credit = await changeCreditsToCustomer(
    trx,
    { id, customer_id: invoice.customer_id },
    owed.period_start,
    end,
  );
  if (credit.total <= 0n) return undefined;
  return { period, owed, credit };
}

/**
 * What of the sale part `rest` (minor units ≥ 0: its amount less what it pays back of an overpayment)
 * of succeeded refund `refundId` of locked `invoice` gives back, beyond what the invoice's period kept,
 * the credit its prorated changes gave the customer for time it paid for (`periodCreditToCustomer`):
 * the period's invoices together can carry (`periodInvoices`: their sale paid and credit applied, less
 * what their refunds gave back of the sale, this one's `rest` included) less that credit, when below
 * 0, counting only the period's succeeded refunds (`RefundBeingBooked`). A refund by hand never goes
 * there (`roomAfterChangeCredit`, payments/refunds.ts) unless a dashboard refund succeeded while it
 * was in flight, nor does a cancellation's; a refund made in the gateway's dashboard can: 2500 paid by card, a downgrade
 * credits 625 to the customer, 1875 refunded by hand, then the other 625 refunded in the dashboard:
 * all 625 of it gives back the change credit the customer already has (their credit is taken back
 * for it, not the sale again: payments/refunds.ts `recordRefundResult`).
 * @returns minor units, 0 … `rest` (0 for an invoice of no period, or no such credit)
 */
export async function changeCreditTakenBack(
  trx: Kysely<Database>,
  invoice: InvoiceRow,
  refundId: string,
  rest: bigint,
): Promise<bigint> {
  if (rest <= 0n) return 0n;
  const found = await periodWithCredit(trx, invoice, { refundId, invoiceId: invoice.id, takenBack: 0n });
  if (!found) return 0n;
  const carried = found.period.reduce((sum, i) => sum + i.room, 0n);
  const beyond = found.credit.total - carried;
  if (beyond <= 0n) return 0n;
  return beyond < rest ? beyond : rest;
}

/**
 * What the succeeded refunds of `invoice` (all but `excluding`) gave back, beyond what its period
 * kept, of the credit the period's prorated changes gave the customer (`changeCreditTakenBack` as
 * each was booked, stored on the refund: `change_credit_taken_back`, migration 0046; the customer's
 * credit paid back in cash, neither the sale nor an overpayment), minor units ≥ 0; 0 for an invoice
 * of no period or no such credit. The one source of it: what the invoice gave back of the sale
 * (billing/credit-notes.ts `saleGivenBack`, a refund by hand's room: payments/refunds.ts
 * `roomAfterChangeCredit`, a cancellation's refund) and what its refunds paid back of an overpayment
 * (`overpaymentGivenBack`) are counted without it. A refund that fails after succeeding no longer
 * counts: the period kept that much again. Read under the invoice's lock.
 */
export async function changeCreditTakenBackOf(
  trx: Kysely<Database>,
  invoice: Pick<InvoiceRow, 'id'>,
  excluding?: string,
): Promise<bigint> {
  const row = await trx
    .selectFrom('refunds')
    .select(sql<string>`coalesce(sum(change_credit_taken_back), 0)::text`.as('taken'))
    .where('invoice_id', '=', invoice.id)
    .where('kind', '=', 'payment')
    .where('status', '=', 'succeeded')
    .$if(excluding !== undefined, (qb) => qb.where('id', '!=', excluding ?? ''))
    .executeTakeFirstOrThrow();
  return BigInt(row.taken);
}

/**
 * What of the customer credit the prorated changes of a period gave the customer
 * (`changeCreditsToCustomer` over the period: `credit` with its tax) counts against `invoice`: money
 * the customer got back for time the period's invoices were paid for, so it can no longer be refunded
 * by hand (payments/refunds.ts `roomAfterChangeCredit`) and its credit notes' tax is worked without it
 * (billing/credit-notes.ts `insertCreditNote`), as a cancellation's refund gives back the period net
 * of its changes' credits (`chargedBasis`). Each invoice of the period carries at most what it can
 * still carry (`periodInvoices`: its sale paid in cash, overpayment excluded, and by customer credit
 * not given back, less what its refunds succeeded or in flight gave back of the sale). The period
 * invoice carries min(credit, that); the invoices of the period's prorated changes
 * (`subscription_update`, for the rest of the period: ending with it; not an add-on's proration
 * invoice, add-on-proration.ts: it paid for no plan time) carry the rest, in the order they were
 * made, each up to what it can carry. The tax goes with the shares: the period invoice's is `tax × share / credit` (rounded half up on its size), but never
 * more than its own tax (tax is not given back where it was never collected: an untaxed period
 * invoice carries none of it); the change invoices share the rest of the tax cumulatively in
 * proportion to what they carry (all of it on the first when they carry nothing), so the parts add
 * up exactly to the credit's tax. 3500 (700 tax) paid for the period, an upgrade invoiced 7875 and
 * paid, then a downgrade credits 5250 (1050 tax) to the customer: 3500 (700 tax) on the period
 * invoice (nothing left to refund there), 1750 (350 tax) on the upgrade's (6125 left), so the period
 * keeps 3500 + 7875 − 5250 = 6125 whichever is refunded; once a cancellation gave back 875 of the
 * period invoice, it carries 2625 (525 tax) and the upgrade's 2625 (525 tax): 5250 left on it.
 * Read under the lock of an invoice of the subscription (`lockInvoice` locks the subscription, so
 * none of the period's refunds changes meanwhile).
 * @param booking a succeeded refund of `invoice` whose credit note is being issued
 * (billing/credit-notes.ts): counted as giving back its sale but for its `takenBack`
 * @returns minor units of the invoice's currency, `total` ≥ 0 and its `tax` (signed: below 0 when the
 * changes raised the tax); both 0 for an invoice of no subscription period (a one-off, a usage invoice)
 */
export async function periodCreditToCustomer(
  trx: Kysely<Database>,
  invoice: InvoiceRow,
  booking?: RefundBeingBooked,
): Promise<{ total: bigint; tax: bigint }> {
  const none = { total: 0n, tax: 0n };
  const found = await periodWithCredit(trx, invoice, booking);
  if (!found) return none;
  const { period, owed, credit } = found;
  // min(credit, its room), on bigints (Math.min takes numbers only); the same for each change below.
  let ownTotal = credit.total;
  if (ownTotal > owed.room) ownTotal = owed.room;
  let ownTax = prorateSigned(credit.tax, ownTotal, credit.total);
  const collected = owed.tax - owed.proration_tax_credited;
  if (credit.tax > 0n && ownTax > collected) ownTax = collected > 0n ? collected : 0n;
  if (invoice.id === owed.id) return { total: ownTotal, tax: ownTax };
  // The change invoices carry the rest in order; their tax is the rest of the credit's.
  const restTax = credit.tax - ownTax;
  let rest = credit.total - ownTotal;
  const changes = period.filter((i) => i.period_index === null);
  const carried = changes.map((change) => {
    let part = rest;
    if (part > change.room) part = change.room;
    rest -= part;
    return part;
  });
  const all = carried.reduce((sum, part) => sum + part, 0n);
  let before = 0n;
  for (const [k, change] of changes.entries()) {
    const part = carried[k]!;
    if (change.id === invoice.id) {
      if (all === 0n) return { total: 0n, tax: k === 0 ? restTax : 0n };
      return {
        total: part,
        tax: prorateSigned(restTax, before + part, all) - prorateSigned(restTax, before, all),
      };
    }
    before += part;
  }
  return none;
}

/**
 * The invoices of subscription `subscriptionId`'s period ending at `end` that its changes' credit
 * to the customer counts against (`periodCreditToCustomer`), not VOID, oldest first: the period
 * invoice (`period_index` set) and the invoices of the period's plan or quantity changes
 * (`subscription_update`; not an add-on's proration invoice, which charged no plan time), each
 * with `room`, what it can still carry, minor units ≥ 0: its sale paid (`amount_paid` up to what it
 * asked, total − credit applied − what changes credited it while owed: an overpayment is the
 * customer's credit, not the period's), plus the customer credit applied to it less what of that was
 * given back (`credit_returned`: credit pays for the period as cash does), less the cash given to the
 * customer's credit for want of a gateway step (`cash_credited`), less what its refunds (of
 * its payments, succeeded or in flight; succeeded only while `booking` one) gave back of the sale:
 * not what succeeded ones took back of change credit (`changeCreditTakenBackOf`; the customer was
 * given that credit all the same), and of the rest their first part paying back the overpayment
 * (`overpaymentShare`). `booking`, a refund whose note is being worked out, is counted as its
 * `takenBack` says. 2500 paid 1250 by credit and 1250 by card: room 2500; 2500 paid by card, 1875
 * refunded (its note 1875) then 625 more in the dashboard (all taken back): room 625, as after the
 * 1875.
 */
async function periodInvoices(
  trx: Kysely<Database>,
  subscriptionId: string,
  end: Date,
  booking?: RefundBeingBooked,
) {
  const rows = await trx
    .selectFrom('invoices as i')
    .select([
      'i.id',
      'i.status',
      'i.period_index',
      'i.period_start',
      'i.total',
      'i.tax',
      'i.credit_applied',
      'i.credit_returned',
      'i.cash_credited',
      'i.proration_credited',
      'i.proration_tax_credited',
      'i.amount_paid',
    ])
    .select((eb) =>
      eb
        .selectFrom('refunds as r')
        .select(sql<string>`coalesce(sum(r.amount), 0)::text`.as('amount'))
        .whereRef('r.invoice_id', '=', 'i.id')
        .where('r.kind', '=', 'payment')
        .where('r.status', 'in', booking ? ['succeeded'] : ['succeeded', 'pending', 'unknown'])
        .as('refunded'),
    )
    // What succeeded refunds took back of the change credit (`changeCreditTakenBackOf`, stored on
    // each as it was booked). The refund being booked has none stored yet: its `takenBack` is
    // counted below instead.
    .select((eb) =>
      eb
        .selectFrom('refunds as r')
        .select(sql<string>`coalesce(sum(r.change_credit_taken_back), 0)::text`.as('amount'))
        .whereRef('r.invoice_id', '=', 'i.id')
        .where('r.kind', '=', 'payment')
        .where('r.status', '=', 'succeeded')
        .where('r.id', '!=', booking?.refundId ?? '')
        .as('taken_back'),
    )
    // What its payments' lost disputes took back of its overpayment (payments/disputes.ts: a
    // chargeback of a duplicate payment), counted below as overpayment given back, not the sale.
    .select((eb) =>
      eb
        .selectFrom('disputes as d')
        .innerJoin('transactions as t', 't.id', 'd.transaction_id')
        .select(sql<string>`coalesce(sum(d.overpayment_charged_back), 0)::text`.as('amount'))
        .whereRef('t.invoice_id', '=', 'i.id')
        .where('d.status', '=', 'lost')
        .as('charged_back'),
    )
    .where('i.subscription_id', '=', subscriptionId)
    .where('i.period_end', '=', end)
    .where('i.status', '!=', 'VOID')
    .where((eb) =>
      eb.or([
        eb('i.period_index', 'is not', null),
        eb.and([
          eb('i.billing_reason', '=', 'subscription_update'),
          // Not an add-on's proration invoice (add-on-proration.ts): it charged an add-on, never the
          // plan whose unused time a change credits.
          eb.not(hasAddOnLine(eb)),
        ]),
      ]),
    )
    .orderBy('i.created_at')
    .orderBy('i.id')
    .execute();
  // What disputes took of each invoice's payments and have not given back (open, lost: the
  // customer has that money back), counted as sale given back as a refund's is (`disputedAway`).
  const disputed = new Map<string, bigint>();
  for (const row of rows) disputed.set(row.id, await disputedAway(trx, row.id));
  return rows.map((row) => {
    const refunded = BigInt(row.refunded ?? '0');
    const overpaid = overpaidBy(row);
    const excess = overpaid > 0n ? overpaid : 0n;
    // Change credit taken back (stored on the succeeded refunds; the booked refund's `takenBack`) is
    // no sale given back: the period still gave the customer that credit. Of the rest, refunds pay
    // the overpayment back first (`overpaymentShare`), then the sale. The customer credit that paid
    // the invoice paid the period as its cash did, less what of it went back.
    let takenBack = BigInt(row.taken_back ?? '0');
    if (booking?.invoiceId === row.id) takenBack += booking.takenBack;
    // A chargeback of a duplicate gave back that much of the overpayment before any refund did, and
    // none of the sale.
    const chargedBack = BigInt(row.charged_back ?? '0');
    const saleRefunded = refunded - takenBack - overpaymentShare(row, chargedBack, refunded - takenBack);
    const room =
      row.amount_paid -
      excess +
      row.credit_applied -
      row.credit_returned -
      saleRefunded -
      // Cash given to the customer's credit for want of a gateway step gave that sale back too.
      row.cash_credited -
      ((disputed.get(row.id) ?? 0n) - chargedBack);
    return { ...row, room: room > 0n ? room : 0n };
  });
}

/**
 * The plan line of the invoice of period `periodIndex` (not VOID; with `voided`, VOID only: what a
 * voided one had charged, `voidedShare`) and its coupon lines as a charged item: the price is the line as `asNewLine` prices it again (its net amount with the taxes it
 * included: all of them for a tax-inclusive price, else those of its inclusive named rates), each
 * discount what its coupon line took off (the same way), the tax rule the line's own (its named rates
 * as stored, else its bare percent), and the invoice's `rounding` (PRODUCT §11), at most what the
 * plan and coupon lines charged with tax; null when there is none.
 */
async function invoicedItem(
  trx: Kysely<Database>,
  subscriptionId: string,
  periodIndex: number,
  voided = false,
): Promise<ChargedItem | null> {
  const lines = await trx
    .selectFrom('invoice_lines')
    .innerJoin('invoices', 'invoices.id', 'invoice_lines.invoice_id')
    .leftJoin('coupons', 'coupons.id', 'invoice_lines.coupon_id')
    .selectAll('invoice_lines')
    .select(['coupons.code', 'invoices.rounding as invoice_rounding'])
    .where('invoices.subscription_id', '=', subscriptionId)
    .where('invoices.period_index', '=', periodIndex)
    .where('invoices.status', voided ? '=' : '!=', 'VOID')
    // The plan's line and its coupon lines: not an add-on's, not usage, not the setup fee (no plan).
    .where('invoice_lines.plan_id', 'is not', null)
    .where('invoice_lines.add_on_id', 'is', null)
    .where('invoice_lines.metric_code', 'is', null)
    .orderBy('invoice_lines.position')
    .execute();
  const [line, ...coupons] = lines;
  if (!line || line.coupon_id !== null) return null;
  const plan = await getPlan(trx, line.plan_id!);
  const priced = asNewLine(line);
  const discounts = coupons.filter((l) => l.coupon_id !== null);
  // All of the invoice's rounding is the plan's (as `recurringLines` counts it), at most what its
  // lines charged, so the item never costs less than nothing.
  const charged = [line, ...discounts].reduce((sum, l) => sum + l.amount + l.tax_amount, 0n);
  const rounding = line.invoice_rounding < charged ? line.invoice_rounding : charged > 0n ? charged : 0n;
  return {
    planId: plan.id,
    description: `${plan.name} × ${line.quantity}`,
    base: priced.amount,
    discounts: discounts.map((l) => ({
      couponId: l.coupon_id!,
      code: l.code ?? l.coupon_id!,
      amount: asNewLine(l).amount,
    })),
    tax: priced.taxRates
      ? { taxRates: priced.taxRates, taxInclusive: line.tax_inclusive }
      : { taxRatePpm: line.tax_rate_ppm, taxInclusive: line.tax_inclusive },
    rounding,
  };
}

/**
 * What `item` costs for the whole period, tax included, minor units (0 for null): the total of its
 * lines priced as they were charged, less what finalization rounded off (`rounding`): what its
 * invoice asked, 1230 for 1122 fils + 112 tax rounded by 4.
 */
export function chargedTotal(item: ChargedItem | null): bigint {
  if (!item) return 0n;
  const whole = { remaining: 1n, period: 1n };
  const span = { start: new Date(0), end: new Date(0) };
  return lineAmounts(itemLines(item, 'CHARGE', item.description, span, whole)).reduce(
    (sum, line) => sum + line.amount + line.tax,
    0n,
  );
}

/**
 * The new side of a prorated change (`item`) as its invoice charged it: when finalization rounded
 * that invoice (`invoice.rounding`, PRODUCT §11), the item carries it as `rounding` for the whole
 * period, the rounding spread over the `time.remaining` seconds it charged of `time.period`,
 * `round(rounding × period / remaining)` half up, so later prorations (`itemLines`) and `prorate`
 * refunds count their share of its time. PayPal HUF, an upgrade on Feb 17 (12 of 28 days) invoiced
 * 54429 rounded by 29: rounding 29 × 28/12 = 67.67 → 68 for the period, so a downgrade on Feb 24 (5
 * days left) credits the unused Pro time less round(68 × 5/28) = 12 (29 × 5/12 = 12.08), not all of
 * it as priced. `item` unchanged without an invoice, a rounding or time left.
 */
function withChangeRounding(
  item: ChargedItem,
  invoice: Pick<InvoiceRow, 'rounding'> | null | undefined,
  time: { remaining: bigint; period: bigint },
): ChargedItem {
  if (!invoice || invoice.rounding <= 0n || time.remaining <= 0n) return item;
  return { ...item, rounding: prorate(invoice.rounding, time.period, time.remaining) };
}

/**
 * One side of a change: a line of `type` for `time.remaining` seconds of a period of `item` (its
 * tax rule, its plan, or its add-on for an add-on's item: add-on-proration.ts; its `quantity`, 1
 * when omitted), over `span`, then one line of the other type per discount of `item` that
 * takes something off, so that the side nets to the discounted price for that time,
 * `prorate(base − discounts)`: each coupon line is what its discount takes off (prorated the same
 * way); then, when finalization rounded the invoice that charged it (`item.rounding`), an untaxed
 * line of the other type of `prorate(rounding)`, so the side is worth that time of what was asked.
 * Nothing when the time is worth 0.
 */
export function itemLines(
  item: ChargedItem,
  type: 'CHARGE' | 'CREDIT',
  description: string,
  span: { start: Date; end: Date },
  time: { remaining: bigint; period: bigint },
): NewLine[] {
  const gross = prorate(item.base, time.remaining, time.period);
  if (gross === 0n) return [];
  const line = {
    ...item.tax,
    type,
    quantity: 1,
    ...(item.addOnId === undefined ? { planId: item.planId } : { addOnId: item.addOnId }),
    periodStart: span.start,
    periodEnd: span.end,
  };
  const lines: NewLine[] = [{ ...line, quantity: item.quantity ?? 1, description, amount: gross }];
  let paid = item.base;
  let net = gross;
  for (const discount of item.discounts) {
    paid -= discount.amount;
    const after = prorate(paid, time.remaining, time.period);
    if (net > after) {
      lines.push({
        ...line,
        description: `Coupon ${discount.code} on ${description.charAt(0).toLowerCase()}${description.slice(1)}`,
        type: type === 'CHARGE' ? 'CREDIT' : 'CHARGE',
        amount: net - after,
        couponId: discount.couponId,
      });
    }
    net = after;
  }
  // What finalization rounded off the invoice that charged it, its share of the time: untaxed, the
  // other type, so 1122 fils + 10% tax rounded by 4 (1230 paid) credits half a period as
  // 561 + 56 tax − 2 = 615, half of 1230.
  const rounding = prorate(item.rounding ?? 0n, time.remaining, time.period);
  if (rounding > 0n) {
    lines.push({
      ...line,
      taxRatePpm: 0,
      taxRates: [],
      taxInclusive: false,
      description: `Rounding on ${description.charAt(0).toLowerCase()}${description.slice(1)}`,
      type: type === 'CHARGE' ? 'CREDIT' : 'CHARGE',
      amount: rounding,
    });
  }
  return lines;
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
