import type { Kysely } from 'kysely';
import type { Db } from '../db/database.ts';
import type { CreditNoteRow, Database, InvoiceRow, SubscriptionRow } from '../db/schema.ts';
import { ConflictError, ValidationError } from '../errors.ts';
import { postEntry } from '../ledger/journal.ts';
import { invoiceCashCredited, invoiceCreditGivenBack } from '../ledger/movements.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { upTo } from '../money/amount.ts';
import { periodAddOnInvoices } from './add-on-proration.ts';
import { issueCreditReturnNote } from './credit-notes.ts';
import {
  disputedAway,
  invoicePayments,
  refundedInFlight,
  refundRooms,
  totalRoom,
} from './invoice-payment.ts';
import { givenBackStatus, invoiceActivity, lockInvoice, PAID_STATUSES } from './invoices.ts';
import { changeCreditTakenBackOf, periodCreditToCustomer } from './proration.ts';

/**
 * What a whole refund by hand of an invoice gives back (`wholeRefund`), and what it is worked from;
 * minor units of the invoice's currency.
 */
export interface WholeRefund {
  /** The invoice's share of its period's change credit to the customer (`periodCreditToCustomer`), ≥ 0. */
  credited: bigint;
  /** Its refunds of its payments still in flight (pending, unknown), ≥ 0. */
  inFlight: bigint;
  /** `amount_refunded` + `inFlight`. */
  refunded: bigint;
  /**
   * What its succeeded refunds took back, beyond what the period kept, of the change credit the
   * customer has (`changeCreditTakenBackOf`: the customer's credit paid back, not the sale), ≥ 0.
   */
  takenBack: bigint;
  /**
   * What disputes took of its payments and hold or lost, not carried by a refund (`disputedAway`):
   * the customer has that money back, ≥ 0.
   */
  disputed: bigint;
  /**
   * What it kept: cash paid + customer credit applied − credit returned − (`refunded` − `takenBack`)
   * − `disputed` − `credited` (may be < 0).
   */
  kept: bigint;
  /** Cash left to give back of what it kept: min(kept, paid − refunded − disputed), ≥ 0. */
  cashLeft: bigint;
  /** What of `cashLeft` its gateway payments can still refund together (`refundRooms`), ≥ 0. */
  cash: bigint;
  /** Customer credit to give back as credit: min(kept − cash, credit applied − credit returned), ≥ 0. */
  credit: bigint;
}

/**
 * What a refund by hand of locked `invoice` with the amount omitted gives back (payments/refunds.ts
 * `refundInvoice`; the credit part for an invoice that is not a period invoice only, a period
 * invoice's credit coming back through its cancellation's refund): all the invoice kept, that is
 * what it took in (its cash paid and the customer credit applied to it, less what of that credit
 * was given back) less its refunds (succeeded or in flight; not what they took back of that change
 * credit beyond what the period kept: `changeCreditTakenBackOf`) less what disputes took of its
 * payments and hold or lost (`disputedAway`: a chargeback gave that back) less the part of its period's change
 * credit to the customer it carries
 * (`periodCreditToCustomer`: the customer has that already), cash first, up to the cash paid less
 * its refunds and to what its gateway payments can still refund together (`refundRooms`), then the
 * rest as the customer credit that paid it, up to that credit not given back yet — each part back
 * the way it came, as a cancellation's refund gives cash first and then credit
 * (billing/cancellation.ts `cancellationRefund`). 2500 paid by card, a downgrade credits 625 to the
 * customer: 1875 cash, no credit. An upgrade of the same period invoiced 937, paid 625 by that credit
 * and 312 by card: 312 cash and 625 credit (the period invoice carries the change credit, so the
 * change invoice gives back its credit whole). 2500 paid 2000 by credit and 500 by card, 625
 * credited: 500 cash and 1375 credit. Read under the invoice's lock (`lockInvoice`).
 * @returns minor units of the invoice's currency (see `WholeRefund`)
 */
export async function wholeRefund(trx: Kysely<Database>, invoice: InvoiceRow): Promise<WholeRefund> {
  const credited = (await periodCreditToCustomer(trx, invoice)).total;
  const inFlight = await refundedInFlight(trx, invoice.id);
  const refunded = invoice.amount_refunded + inFlight;
  const creditLeft = invoice.credit_applied - invoice.credit_returned;
  // Change credit a refund took back (a dashboard refund beyond what the period kept) paid back the
  // customer's credit, not the sale: it does not lower what the period kept.
  const takenBack = await changeCreditTakenBackOf(trx, invoice);
  // A chargeback (a dispute open or lost, not carried by a refund) gave the customer that cash back.
  const disputed = await disputedAway(trx, invoice.id);
  // Cash given to the customer's credit for want of a gateway step went back as a refund did.
  const stepCredited = invoice.cash_credited;
  const kept = invoice.amount_paid + creditLeft - (refunded - takenBack) - stepCredited - disputed - credited;
  const room = totalRoom(await refundRooms(trx, await invoicePayments(trx, invoice.id)));
  const cashLeft = upTo(kept, invoice.amount_paid - refunded - stepCredited - disputed);
  const cash = upTo(cashLeft, room);
  return {
    credited,
    inFlight,
    refunded,
    takenBack,
    disputed,
    kept,
    cashLeft,
    cash,
    credit: upTo(kept - cash, creditLeft),
  };
}

/**
 * Gives `amount` (minor units of the invoice's currency, > 0) of the customer credit applied to
 * invoice `invoiceId` (`credit_applied`, at finalization) back to the customer's credit, inside
 * `work`: the part of a cancellation's refund that the customer's credit had paid (billing/
 * cancellation.ts `cancellationRefund`), as Chargebee and Recurly refund the credit-paid part as
 * credit. Locks the invoice, issues a credit note for it (`issueCreditReturnNote`: revenue and its
 * tax share given back, cumulative with the invoice's cash refunds), posts
 * `inv_…:credit_given_back:<credit_returned>` (debit refunds and tax payable, credit
 * `customer_credit:<customer>`), adds it to `credit_returned` and sets the status
 * (`givenBackStatus`, the part of its period's change credit it carries then counted as back, and
 * what disputes took of its payments and hold or lost, `disputedAway`), and
 * logs `invoice.credit_returned`. The customer's next invoices use the
 * credit as any other (`applyCustomerCredit`).
 * @returns the credit note (`refund_id` null)
 * @throws ConflictError `credit_not_returnable` when `amount` is not within 1 … credit_applied −
 * credit_returned; NotFoundError when there is no invoice `invoiceId`
 */
export async function returnInvoiceCredit(
  work: UnitOfWork,
  invoiceId: string,
  amount: bigint,
  reason: string | null,
): Promise<CreditNoteRow> {
  const invoice = await lockInvoice(work, invoiceId);
  const left = invoice.credit_applied - invoice.credit_returned;
  if (amount <= 0n || amount > left) {
    throw new ConflictError(
      'credit_not_returnable',
      `invoice ${invoiceId} has ${left} ${invoice.currency} of applied credit left to give back, not ${amount}`,
    );
  }
  return giveToCredit(work, invoice, amount, reason, 'credit_returned');
}

/**
 * Gives `amount` (minor units of the invoice's currency, > 0) of the cash invoice `invoiceId` was
 * paid to the customer's credit instead of back to the card, inside `work`: the rest of a prorated
 * cash refund below the step of the gateway that took the payment (gateways/currencies.ts
 * `gatewayStep`: Stripe KWD 10 fils, PayPal HUF 100 fillér), which no refund can carry (PRODUCT §11
 * forbids rounding it away: Stripe KWD 667 owed, 660 to the card and 7 here). Locks the invoice,
 * issues a credit note for it (`issueCreditReturnNote`: revenue and its tax share given back,
 * cumulative with the invoice's cash refunds and credit returned), posts
 * `inv_…:cash_credited:<cash_credited>` (`invoiceCashCredited`: debit refunds and tax payable,
 * credit `customer_credit:<customer>`), adds it to `cash_credited` and sets the status
 * (`givenBackStatus`), and logs `invoice.cash_credited`. The customer's next invoices use the
 * credit as any other (`applyCustomerCredit`); a credit refund pays it back to a card in steps the
 * gateway takes.
 * @returns the credit note (`refund_id` null)
 * @throws ConflictError `cash_not_creditable` when `amount` is not within 1 … the cash paid less
 * refunded, given as credit already and taken by disputes; NotFoundError when there is no invoice
 */
export async function creditCashRest(
  work: UnitOfWork,
  invoiceId: string,
  amount: bigint,
  reason: string | null,
): Promise<CreditNoteRow> {
  const invoice = await lockInvoice(work, invoiceId);
  const disputed = await disputedAway(work.trx, invoiceId);
  const left = invoice.amount_paid - invoice.amount_refunded - invoice.cash_credited - disputed;
  if (amount <= 0n || amount > left) {
    throw new ConflictError(
      'cash_not_creditable',
      `invoice ${invoiceId} has ${left} ${invoice.currency} of cash paid left to give back, not ${amount}`,
    );
  }
  return giveToCredit(work, invoice, amount, reason, 'cash_credited');
}

/**
 * Gives `amount` (minor units, checked by the caller) of locked invoice `invoice` to the customer's
 * credit, inside `work`, growing its running total `column` (`credit_returned`: credit that paid it,
 * `inv_…:credit_given_back:<n>`, `invoiceCreditGivenBack`; `cash_credited`: cash below its gateway's
 * step, `inv_…:cash_credited:<n>`, `invoiceCashCredited`): issues its credit note
 * (`issueCreditReturnNote`: revenue and its tax share given back, cumulative with the invoice's cash
 * refunds and credit given back), posts the movement, adds `amount` to `column`, then sets the status
 * from the invoice as it now stands (`givenBackStatus`, with the part of its period's change credit
 * it carries then and what disputes took of its payments and hold or lost, `disputedAway`), and logs
 * `invoice.<column>` (`invoice.credit_returned`, `invoice.cash_credited`).
 * @returns the credit note (`refund_id` null)
 */
async function giveToCredit(
  work: UnitOfWork,
  invoice: InvoiceRow,
  amount: bigint,
  reason: string | null,
  column: 'credit_returned' | 'cash_credited',
): Promise<CreditNoteRow> {
  const note = await issueCreditReturnNote(work, invoice, amount, reason);
  const total = invoice[column] + amount;
  const movement = {
    invoiceId: invoice.id,
    customerId: invoice.customer_id,
    currency: invoice.currency,
    amount,
    subtotal: note.subtotal,
    tax: note.tax,
    rounding: note.rounding,
  };
  if (column === 'credit_returned')
    await postEntry(work, invoiceCreditGivenBack({ ...movement, creditReturned: total }));
  else await postEntry(work, invoiceCashCredited({ ...movement, cashCredited: total }));
  await work.trx
    .updateTable('invoices')
    .set({ [column]: total, updated_at: new Date() })
    .where('id', '=', invoice.id)
    .execute();
  const after = { ...invoice, [column]: total };
  // What of its period's change credit it carries, worked with this amount counted as given back.
  const carried = (await periodCreditToCustomer(work.trx, after)).total;
  const disputed = await disputedAway(work.trx, invoice.id);
  await work.trx
    .updateTable('invoices')
    .set({ status: givenBackStatus(after, carried, disputed) })
    .where('id', '=', invoice.id)
    .execute();
  await invoiceActivity(work, invoice, `invoice.${column}`, {
    amount,
    [column]: total,
    credit_note: note.id,
  });
  return note;
}

/**
 * Whether a subscription's cancellation refund reaches period invoice `invoice`, so what it paid with
 * customer credit goes back that way and not by hand (read under the invoice's lock):
 * - `none`: it is no period invoice (a one-off; a change's or an add-on's, unless `refunded`), or of
 *   a period invoiced ahead of its subscription's current one, or the last period of a subscription
 *   cancelled with refund_type `none` (no cancellation refund gave it back): a refund by hand decides
 *   what it gives back;
 * - `past`: of a period its subscription has renewed past (`period_index` < `current_period_index`):
 *   no cancellation reaches it, so a whole refund by hand gives its credit back with its cash, as
 *   for one that is no period invoice (payments/refunds.ts `refundInvoice`);
 * - `running`: the current period's invoice of a subscription not cancelled: its cancellation's
 *   refund (`full`, `prorate`) gives it back (billing/cancellation.ts);
 * - `refunded`: the last period's invoice of a subscription CANCELLED whose latest cancellation
 *   (its stored `cancellation_refund_type`) gave back with `full` or `prorate`: that refund gave back what the customer is
 *   owed for the period (cash first, then the credit that paid it: `cancellationRefund`); what the
 *   invoice still holds paid for the time used. A 1000 JPY period paid 600 by credit and 400 by card,
 *   cancelled with `prorate` at half: 400 to the card, 100 as credit; the other 500 of credit paid
 *   the used half and stays. So is a prorated change's or an add-on's invoice of that last period,
 *   which the refund counted (`cancellationReach`).
 */
export type CancellationReach =
  | { kind: 'none' }
  | { kind: 'past' }
  | { kind: 'running' }
  | { kind: 'refunded'; refundType: string };

/**
 * As `CancellationReach` says, for `invoice` (its `id`, `period_index`, `subscription_id`,
 * `period_start` and `period_end` read). An invoice of no period (`period_index` null) is `refunded`
 * too when it is one of the current period's invoices that a cancellation's refund, made (now, or
 * when a cancellation at a date was scheduled, the subscription running until then), counted: a prorated change's (in the period's stored charged basis,
 * proration.ts `chargedBasis`: the refund gives back the unused time at the price the changes
 * charged, from the period invoice) or an add-on's (add-on-proration.ts `periodAddOnInvoices`: the
 * refund gives back its unused time). What those still hold paid for the time used: 1000 JPY a month
 * by card, an upgrade to 2000 on day 7 of 28 invoiced 750 and paid by credit, cancelled with
 * `prorate` on day 14: the 1000 owed back came from the period invoice, and the upgrade's 750 of
 * credit paid the 250 + 500 used.
 */
export async function cancellationReach(
  trx: Kysely<Database>,
  invoice: Pick<InvoiceRow, 'id' | 'period_index' | 'subscription_id' | 'period_start' | 'period_end'>,
): Promise<CancellationReach> {
  if (invoice.subscription_id === null) return { kind: 'none' };
  const subscription = await trx
    .selectFrom('subscriptions')
    .select([
      'status',
      'current_period_index',
      'current_period_start',
      'current_period_end',
      'charged_basis',
      'cancellation_refund_type',
    ])
    .where('id', '=', invoice.subscription_id)
    .executeTakeFirst();
  if (!subscription || subscription.current_period_index === null) return { kind: 'none' };
  if (invoice.period_index === null) {
    // A change's or an add-on's invoice: only its last period's cancellation refund counted it, once
    // made (a cancellation at a date gives back when scheduled, the subscription running until then;
    // one with a refund never lets it renew past that period).
    if (!(await ofLastPeriod(trx, invoice, subscription))) return { kind: 'none' };
    return latestCancellationRefund(subscription);
  }
  if (invoice.period_index < subscription.current_period_index) return { kind: 'past' };
  if (invoice.period_index > subscription.current_period_index) return { kind: 'none' };
  if (subscription.status !== 'CANCELLED') return { kind: 'running' };
  return latestCancellationRefund(subscription);
}

/**
 * Whether `invoice` (no period index) is one of the current period's invoices a cancellation's refund
 * counts: a prorated change's listed in the stored charged basis of that period, or an add-on's
 * invoice of it (`periodAddOnInvoices`).
 */
async function ofLastPeriod(
  trx: Kysely<Database>,
  invoice: Pick<InvoiceRow, 'id' | 'subscription_id' | 'period_start' | 'period_end'>,
  subscription: Pick<
    SubscriptionRow,
    'current_period_index' | 'current_period_start' | 'current_period_end' | 'charged_basis'
  >,
): Promise<boolean> {
  const basis = subscription.charged_basis as { period_index?: number; invoices?: string[] } | null;
  if (basis?.period_index === subscription.current_period_index && basis.invoices?.includes(invoice.id)) {
    return true;
  }
  const [start, end] = [subscription.current_period_start, subscription.current_period_end];
  if (!start || !end || !invoice.period_start || !invoice.period_end) return false;
  const addOns = await periodAddOnInvoices(trx, invoice.subscription_id!, { start, end });
  return addOns.some((i) => i.id === invoice.id);
}

/**
 * The refund of a subscription's latest cancellation that said one (`cancellation_refund_type`,
 * stored by it: a later one, cancelled now after one scheduled, replaced it; the renewal ending a
 * scheduled one keeps it, and dunning's stores `none` only when none was): `refunded` for `full` or
 * `prorate`, else `none`.
 */
function latestCancellationRefund(
  subscription: Pick<SubscriptionRow, 'cancellation_refund_type'>,
): CancellationReach {
  const refundType = subscription.cancellation_refund_type;
  return refundType === 'full' || refundType === 'prorate'
    ? { kind: 'refunded', refundType }
    : { kind: 'none' };
}

/**
 * `POST /v1/invoices/:id/credit/return`: gives customer credit that paid invoice `invoiceId` back to
 * the customer's credit, without a cash refund (`returnInvoiceCredit`: its credit note, the
 * `inv_…:credit_given_back:<n>` entry, `credit_returned`, the status). It is the credit part of a
 * whole refund by hand (`wholeRefund`): of what the invoice kept, what its gateway payments cannot
 * refund in cash (the cash refunded or disputed already, its payments' room taken by a
 * customer-credit refund, no gateway payment at all, or cash left on several payments that a
 * refund naming each gives back) goes back as the credit that paid it, so `amount` is at most
 * `whole.credit` = min(kept − cash still refundable, credit applied − credit returned): credit the
 * period's change credit carries (the customer has it already), or that cash still refundable
 * covers, is not given back. 2000 paid 1250 by credit and 750 by card, its 750 refunded by hand:
 * 1250; paid 625 by credit and 312 by card, the period invoice's payment charged back (a lost
 * dispute), so the upgrade carries the period's 625 of change credit: 0. An invoice no cancellation
 * gives back: not a period invoice (`period_index` null: a prorated change's, an add-on's, a
 * one-off), a period invoice of another period than its subscription's current one (a past period,
 * renewed since; one invoiced ahead), or any period invoice of a subscription already CANCELLED; the
 * current period's invoice gives its credit back through its subscription's cancellation refund
 * (`full`, `prorate`), which reaches that period only, until then; once a cancellation gave back
 * with `full` or `prorate`, it gave what the customer is owed of that period, so nothing more goes
 * back by hand (`cancellationReach`: 1000 JPY paid 600 by credit and 400 by card, a `prorate`
 * refund at half gave 400 to the card and 100 as credit; the other 500 paid for the used half).
 * @param input `amount` minor units of the invoice's currency (> 0; default all that can go back),
 * `reason` on the credit note
 * @returns the credit note of the credit given back (`refund_id` null)
 * @throws NotFoundError when there is no invoice `invoiceId`; ConflictError `invoice_not_paid` (not
 * PAID, PARTIALLY_REFUNDED or REFUNDED), `period_invoice_credit` (the current period's invoice of a
 * subscription not cancelled: cancel with a refund instead), `credit_not_returnable` (no credit
 * left to give back, naming why; or the last period's invoice of a subscription whose cancellation
 * gave back with `full` or `prorate`, `cancellationReach`: what it still holds paid for the time
 * used); ValidationError
 * (field `amount`) when `amount` is more than can go back; nothing changes on an error
 */
export async function returnCreditByHand(
  db: Db,
  actor: Actor,
  invoiceId: string,
  input: { amount?: bigint; reason?: string },
): Promise<CreditNoteRow> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const invoice = await lockInvoice(work, invoiceId);
    const c = invoice.currency;
    if (!PAID_STATUSES.includes(invoice.status)) {
      throw new ConflictError(
        'invoice_not_paid',
        `invoice ${invoiceId} is ${invoice.status}; only a paid invoice gives its customer credit back`,
      );
    }
    // The current period's invoice gives its credit back through its subscription's cancellation
    // refund, which reaches that period only; once the subscription is cancelled (no such refund can
    // come any more: one with refund_type none, or a full refused beyond the period invoice), by hand
    // too, as any other period's invoice (no cancellation refund reaches it). A cancellation counts
    // credit returned as given back (`recurringGivenBack`), so nothing goes back twice either way.
    const reach = await cancellationReach(work.trx, invoice);
    if (reach.kind === 'running') {
      throw new ConflictError(
        'period_invoice_credit',
        `invoice ${invoiceId} is the current period's invoice of subscription ${invoice.subscription_id}, which is not cancelled: the customer credit that paid it comes back through its cancellation's refund (POST /v1/subscriptions/${invoice.subscription_id}/cancel with refund_type full or prorate), or by hand once it is cancelled or the period is over. Nothing changed`,
      );
    }
    // The cancellation's own refund settled what this period owes back: the rest paid for time used.
    if (reach.kind === 'refunded') {
      const held = invoice.credit_applied - invoice.credit_returned;
      throw new ConflictError(
        'credit_not_returnable',
        invoice.period_index === null
          ? `invoice ${invoiceId} is a prorated change's or an add-on's invoice of the last period of subscription ${invoice.subscription_id}, whose cancellation's ${reach.refundType} refund gave back what the period owes (the period's unused time, from the period invoice and the add-on invoices: ${invoice.amount_refunded} ${c} refunded and ${invoice.credit_returned} ${c} of credit returned of this one); the ${held} ${c} of customer credit it still holds paid for the time used before the cancellation, which the customer owes. Nothing changed`
          : `invoice ${invoiceId} is the last period's invoice of subscription ${invoice.subscription_id}, whose cancellation gave back what the period owed with its ${reach.refundType} refund (${invoice.amount_refunded} ${c} refunded, ${invoice.credit_returned} ${c} of credit returned); the ${held} ${c} of customer credit it still holds paid for what that refund does not give back (the time used before the cancellation, a setup fee, usage), which the customer owes. Nothing changed`,
      );
    }
    const whole = await wholeRefund(work.trx, invoice);
    const creditLeft = invoice.credit_applied - invoice.credit_returned;
    if (whole.credit <= 0n) {
      const why =
        creditLeft <= 0n
          ? `it has no customer credit left to give back (applied ${invoice.credit_applied}, returned ${invoice.credit_returned})`
          : `of what it kept (${whole.kept > 0n ? whole.kept : 0n} ${c}: paid ${invoice.amount_paid} and ${creditLeft} of credit not given back, less ${whole.refunded} refunded${whole.disputed > 0n ? `, ${whole.disputed} disputed` : ''}${whole.credited > 0n ? `, ${whole.credited} of its period's change credit the customer has already` : ''}), ${whole.cash} ${c} is cash its payments can still refund (POST /v1/invoices/${invoiceId}/refund) and nothing is left as credit`;
      throw new ConflictError(
        'credit_not_returnable',
        `invoice ${invoiceId} gives no customer credit back: ${why}. Nothing changed`,
      );
    }
    const amount = input.amount ?? whole.credit;
    if (amount > whole.credit) {
      throw new ValidationError('credit beyond what can go back', {
        amount: `at most ${whole.credit} ${c} (credit applied ${invoice.credit_applied}, returned ${invoice.credit_returned}; kept ${whole.kept}, cash still refundable ${whole.cash})`,
      });
    }
    return returnInvoiceCredit(work, invoiceId, amount, input.reason ?? null);
  });
}
