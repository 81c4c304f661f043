import { type Kysely, type RawBuilder, sql } from 'kysely';
import { newId } from '../db/ids.ts';
import type { CreditNoteRow, Database, InvoiceLineRow, InvoiceRow, RefundRow } from '../db/schema.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { upTo } from '../money/amount.ts';
import { claimRefundCameFirst, disputedAway, LOSS_PAID_BY_REFUND } from './invoice-payment.ts';
import { invoiceActivity } from './invoices.ts';
import {
  changeCreditTakenBack,
  changeCreditTakenBackOf,
  periodCreditToCustomer,
  prorate,
  prorateSigned,
} from './proration.ts';

/**
 * Credit notes (`cn_…`): the document of a refund of an invoice (PRODUCT §11: "a refund gives back
 * its share of the invoice's tax (tax payable debited pro rata, a credit note for the refund)").
 *
 * The tax share is cumulative, so the refunds of a fully refunded invoice give back exactly all its
 * tax whatever their number and sizes: after a refund brings the invoice's refunded amount to R, the
 * credit notes issued on it hold `tax × R / total` of tax in all, rounded half away from zero; this
 * one holds the difference with what the earlier (still ISSUED) ones hold, within 0 … its amount (for
 * an invoice whose tax is negative, within the invoice's tax … 0: its notes' tax is negative). E.g. 1000 + 100
 * tax: refund 550 → 50 tax (500 revenue); then 550 more → 100 − 50 = 50. Refunds of 1 each on
 * 10 + 1 tax: round(1 × 1/11) = 0, round(1 × 2/11) = 0, …, round(1 × 6/11) = 1 on the sixth, so 1 in all.
 *
 * Customer credit that paid part of an invoice and is given back as credit (a cancellation's refund,
 * `issueCreditReturnNote`) has a credit note too, without a refund: the invoice's `credit_returned`
 * counts in R with the cash refunds of the sale, so cash refunds and credit returns in any order give
 * back exactly all the tax of what they give back in all.
 *
 * A lost dispute (chargeback) issues no credit note and gives back no tax: the card network took the
 * money back, we did not refund a sale (as Stripe Billing, which issues credit notes for refunds
 * only); the loss is booked whole to chargeback losses.
 */

/** What an invoice asks of its payments (minor units): the fields `overpaidBy` reads. */
type Asked = Pick<InvoiceRow, 'status' | 'total' | 'credit_applied' | 'proration_credited' | 'amount_paid'>;

/**
 * What `invoice`'s payments brought beyond what it asked (total − credit applied − what prorated
 * changes credited to it while owed; a VOID invoice asks nothing), minor units: its overpayment,
 * which is the customer's credit; 0 or less when it was not paid more than it asked. An invoice is
 * voided only with nothing paid (invoices.ts `voidLocked`), so whatever a VOID invoice shows paid
 * came after its void (a charge that failed and then succeeded): all of it became the customer's
 * credit (payments/transactions.ts `recordChargeResult`: nothing was due), and a refund of it pays
 * that credit back, never the voided sale again.
 */
export function overpaidBy(invoice: Asked): bigint {
  if (invoice.status === 'VOID') return invoice.amount_paid;
  return invoice.amount_paid - (invoice.total - invoice.credit_applied - invoice.proration_credited);
}

/**
 * What of a refund of `amount` (minor units) of an invoice pays back an overpayment: what its
 * payments brought beyond what it asked (total − credit applied), which is the customer's credit
 * (payments/transactions.ts), less `given`, what of it earlier refunds paid back
 * (`overpaymentGivenBack`). Refunds give back that excess first (a duplicate charge refunded in the
 * gateway's dashboard is the usual case), then the sale.
 * @returns minor units, 0 … amount
 */
export function overpaymentShare(invoice: Asked, given: bigint, amount: bigint): bigint {
  const left = overpaidBy(invoice) - given;
  if (left <= 0n || amount <= 0n) return 0n;
  return amount < left ? amount : left;
}

/**
 * What of `invoice`'s overpayment was given back, minor units 0 … the overpayment: by its succeeded
 * refunds (all but `excluding`: `overpaymentRefunded`) and by its payments' lost disputes (a
 * chargeback of the duplicate: their `overpayment_charged_back`, payments/disputes.ts; a dispute won
 * after its loss gave it back, no longer `lost`). What is left of the overpayment after it is what a
 * refund or a chargeback gives back first (`overpaymentShare`). Read under the invoice's lock.
 */
export async function overpaymentGivenBack(
  trx: Kysely<Database>,
  invoice: Asked & Pick<InvoiceRow, 'id'>,
  excluding?: string,
): Promise<bigint> {
  const excess = overpaidBy(invoice);
  if (excess <= 0n) return 0n;
  const row = await trx
    .selectFrom('disputes as d')
    .innerJoin('transactions as t', 't.id', 'd.transaction_id')
    .select(sql<string>`coalesce(sum(d.overpayment_charged_back), 0)::text`.as('given'))
    .where('t.invoice_id', '=', invoice.id)
    .where('d.status', '=', 'lost')
    .executeTakeFirstOrThrow();
  const given = (await overpaymentRefunded(trx, invoice, excluding)) + BigInt(row.given);
  return given < excess ? given : excess;
}

/**
 * What of `invoice`'s overpayment its succeeded refunds (all but `excluding`) paid back, minor units
 * 0 … the overpayment: each refund's amount less its ISSUED credit note (the sale it refunded; none:
 * all of it, but never more than the invoice was overpaid, for refunds made before credit notes
 * existed) and less what it took back of the change credit of the invoice's period (its
 * `change_credit_taken_back`: billing/proration.ts `changeCreditTakenBackOf`, no overpayment). Counted from the refunds themselves, not from the invoice's cumulative
 * `amount_refunded`: a refund that fails after succeeding (its note voided) takes back exactly its
 * own share, whatever refunds succeeded after it. The part of its `amount_refunded` that paid back
 * credit, not the sale (`saleGivenBack`); `overpaymentGivenBack` counts lost disputes too. Read under
 * the invoice's lock.
 */
export async function overpaymentRefunded(
  trx: Kysely<Database>,
  invoice: Asked & Pick<InvoiceRow, 'id'>,
  excluding?: string,
): Promise<bigint> {
  const excess = overpaidBy(invoice);
  if (excess <= 0n) return 0n;
  const row = await trx
    .selectFrom('refunds as r')
    .leftJoin('credit_notes as n', (join) =>
      join.onRef('n.refund_id', '=', 'r.id').on('n.status', '=', 'ISSUED'),
    )
    .select(
      sql<string>`coalesce(sum(r.amount - coalesce(n.total, 0) - r.change_credit_taken_back), 0)::text`.as(
        'given',
      ),
    )
    .where('r.invoice_id', '=', invoice.id)
    .where('r.kind', '=', 'payment')
    .where('r.status', '=', 'succeeded')
    .$if(excluding !== undefined, (qb) => qb.where('r.id', '!=', excluding ?? ''))
    .executeTakeFirstOrThrow();
  const given = BigInt(row.given);
  return given < excess ? given : excess;
}

/**
 * What a customer's refunds in flight and disputes that hold (`disputeHolds`: open, or a PayPal claim
 * lost whose refund is still to come) hold of their credit in one currency (`overpaymentsHeld`).
 */
export interface OverpaymentHeld {
  customerId: string;
  currency: string;
  /** Minor units of `currency`, > 0: all that is held. */
  held: bigint;
  /** Of `held`, what disputes hold (`disputeHolds`; minor units, 0 … held). */
  byDisputes: bigint;
  /** The disputes (`dp_…`) that hold some of it, in no particular order. */
  disputes: string[];
}

/**
 * SQL condition on the disputes row aliased `d`: the dispute holds its share of its invoice's
 * overpayment (`overpaymentDisputeHold`): it is `open` (funds withdrawn, not decided), or it is lost
 * and its money is still to leave by the refund that pays it (a gateway paying lost disputes as
 * refunds, PayPal's claims: not reversed, no refund carrying it yet, payments/overpayment-shares.ts
 * `givesBackOverpayment` false). That refund, reported afterwards, pays the overpayment back first
 * (`issueCreditNote`), so the loss does not release the share; the refund does, once it carries the
 * dispute (`refund_id`: payments/disputes.ts `settleLostDisputeByRefund`), and so does a reversal
 * (the dispute `reversed`: its loss takes the share itself, `dp_…:overpayment_charged_back`).
 * An open claim on such a gateway whose refund came first (billing/invoice-payment.ts
 * `claimRefundCameFirst`: the refund its loss will be paired with) holds nothing: that refund paid the overpayment back already (PayPal refunding the
 * buyer before resolving the claim). Before, both held it: 1000 HUF paid twice, a claim of 400 open
 * and PayPal's refund of 400 in: 200 of credit available, not 600, until the loss came.
 * A lost claim no refund paired with within `LOST_CLAIM_REFUND_DAYS` holds nothing either once its
 * `lost_claim_unpaid` exception is raised (payments/lost-claims.ts `flagUnpaidLostClaims`): a person
 * finds out where its money went.
 */
export function disputeHolds(): RawBuilder<boolean> {
  const paidByRefund = sql`d.gateway = ANY(${[...LOSS_PAID_BY_REFUND]}::text[]) AND NOT d.reversed`;
  return sql<boolean>`((d.status = 'open' AND NOT ${claimRefundCameFirst()})
    OR (d.status = 'lost' AND d.refund_id IS NULL AND ${paidByRefund} AND NOT EXISTS (
      SELECT 1 FROM reconciliation_exceptions he WHERE he.transaction_id = d.transaction_id
        AND he.kind = 'lost_claim_unpaid' AND he.occurrence = d.id)))`;
}

/**
 * What an overpaid invoice's disputes that hold (`disputeHolds`) hold of its overpayment (minor
 * units, 0 … what is left of it): the disputes whose funds the gateway withdrew (`open`) on its
 * payments would, lost, give the overpayment back first (payments/disputes.ts
 * `chargeBackOverpayment`, or the refund that carries a lost PayPal claim: `issueCreditNote`), so
 * that share of the customer's credit is held from the dispute's opening, after what was given back
 * (`given`) and what its refunds in flight hold (`refunding`): released when the dispute is won (it
 * is no longer open), taken when it is lost (a PayPal claim's loss: when the refund that pays it
 * comes, held until then). `disputed` is the sum of those disputes' amounts.
 */
export function overpaymentDisputeHold(
  invoice: Asked,
  given: bigint,
  refunding: bigint,
  disputed: bigint,
): bigint {
  return overpaymentShare(invoice, given + refunding, disputed);
}

/**
 * What the refunds in flight (`pending`, `unknown`) and the disputes that hold (`disputeHolds`: funds
 * withdrawn, not decided, `open`; or a PayPal claim lost whose refund is still to come) of the
 * overpaid invoices of customers `customerIds` (in `currency`; every currency when omitted) will pay
 * or take back of their overpayments: per invoice, the `overpaymentShare` of
 * the refunds' sum after what was given back (`overpaymentGivenBack`), which their success debits
 * from the customer's credit, then the share of those disputes' sum after that
 * (`overpaymentDisputeHold`), which their loss takes off it (`dp_…:overpayment_charged_back`, or the
 * refund paying a lost claim). That credit is theirs meanwhile, not the customer's to spend
 * (billing/customer-credit.ts `availableCredit`): a dispute won releases its share, a dispute lost
 * takes it (a claim's when its refund comes). One statement when
 * no such refund or dispute is there (the usual case), then one per invoice with some.
 * @returns per customer and currency with some held, in no particular order
 */
export async function overpaymentsHeld(
  trx: Kysely<Database>,
  customerIds: readonly string[],
  currency?: string,
): Promise<OverpaymentHeld[]> {
  if (customerIds.length === 0) return [];
  const invoices = await trx
    .selectFrom('invoices as i')
    .select([
      'i.id',
      'i.customer_id',
      'i.currency',
      'i.status',
      'i.total',
      'i.credit_applied',
      'i.proration_credited',
      'i.amount_paid',
      sql<string>`(SELECT coalesce(sum(r.amount), 0) FROM refunds r WHERE r.invoice_id = i.id AND r.status IN ('pending', 'unknown'))::text`.as(
        'in_flight',
      ),
      sql<string>`(SELECT coalesce(sum(d.amount), 0) FROM disputes d JOIN transactions t ON t.id = d.transaction_id WHERE t.invoice_id = i.id AND ${disputeHolds()})::text`.as(
        'disputed',
      ),
      sql<
        string[]
      >`(SELECT coalesce(array_agg(d.id ORDER BY d.id), '{}') FROM disputes d JOIN transactions t ON t.id = d.transaction_id WHERE t.invoice_id = i.id AND ${disputeHolds()})`.as(
        'dispute_ids',
      ),
    ])
    .where('i.customer_id', 'in', customerIds)
    .$if(currency !== undefined, (qb) => qb.where('i.currency', '=', currency ?? ''))
    .where((eb) =>
      eb.or([
        eb.exists(
          eb
            .selectFrom('refunds as r')
            .select('r.id')
            .whereRef('r.invoice_id', '=', 'i.id')
            .where('r.status', 'in', ['pending', 'unknown']),
        ),
        eb.exists(
          eb
            .selectFrom('disputes as d')
            .innerJoin('transactions as t', 't.id', 'd.transaction_id')
            .select('d.id')
            .whereRef('t.invoice_id', '=', 'i.id')
            .where(disputeHolds()),
        ),
      ]),
    )
    // Overpaid (`overpaidBy` > 0): a VOID invoice asks nothing.
    .where(
      sql<boolean>`i.amount_paid > CASE WHEN i.status = 'VOID' THEN 0 ELSE i.total - i.credit_applied - i.proration_credited END`,
    )
    .execute();
  const held = new Map<string, OverpaymentHeld>();
  for (const invoice of invoices) {
    const given = await overpaymentGivenBack(trx, invoice);
    const refunding = overpaymentShare(invoice, given, BigInt(invoice.in_flight));
    const disputing = overpaymentDisputeHold(invoice, given, refunding, BigInt(invoice.disputed));
    if (refunding + disputing === 0n) continue;
    const key = `${invoice.customer_id} ${invoice.currency}`;
    const sum = held.get(key) ?? {
      customerId: invoice.customer_id,
      currency: invoice.currency,
      held: 0n,
      byDisputes: 0n,
      disputes: [],
    };
    held.set(key, {
      ...sum,
      held: sum.held + refunding + disputing,
      byDisputes: sum.byDisputes + disputing,
      disputes: disputing > 0n ? [...sum.disputes, ...invoice.dispute_ids] : sum.disputes,
    });
  }
  return [...held.values()];
}

/**
 * How a succeeded refund of an invoice splits: its credit note (for the sale), what it pays back of an
 * overpayment and what change credit it takes back; `overpayment` + `takenBack` is what it pays back
 * of the customer's credit (their credit account is debited by it).
 */
export interface RefundSplit {
  /** The credit note of the part that refunds the sale; undefined when the refund refunds none of it. */
  note: CreditNoteRow | undefined;
  /** Minor units paid back of the customer's credit from an overpayment (`overpaymentShare`). */
  overpayment: bigint;
  /**
   * Minor units that gave back, beyond what the invoice's period kept, the credit its prorated changes
   * gave the customer (`changeCreditTakenBack`, billing/proration.ts): taken back from that credit,
   * not refunded of the sale again (no revenue, no tax); stored on the refund
   * (`change_credit_taken_back`). A refund made in the gateway's dashboard gets here, or one billhook
   * sent that was in flight while such a refund succeeded; 0 for every other refund billhook sends.
   */
  takenBack: bigint;
  /**
   * Of `takenBack`, minor units ≥ 0 that gave back again cash the invoice had given to the customer's
   * credit for want of a gateway step (`cash_credited`, billing/credit-returns.ts `creditCashRest`):
   * Stripe KWD 1000 paid, a cancellation gave 660 to the card and 7 as credit, a refund of the 340
   * left made in Stripe's dashboard gives those 7 back twice (`cashCreditedTwice`). Taken back from
   * that credit as change credit is (no revenue or tax given back again), and said in an exception
   * (payments/refunds.ts `recordRefundResult`); 0 for every refund billhook sends (`createRefund`
   * bounds them by it).
   */
  cashCreditedTwice: bigint;
}

/**
 * Of a refund's `rest` (minor units, its part neither an overpayment nor change credit taken back),
 * what gives back again the cash invoice `invoice` (read before its `amount_refunded` counts the
 * refund) gave to the customer's credit for want of a gateway step (`cash_credited`), pure: the cash
 * the refund takes beyond what the invoice kept (`amount_paid` − `amount_refunded` − `cash_credited`
 * − `disputed`, what disputes open or lost took), up to `cash_credited` less what earlier refunds
 * or disputes gave back of it again, and up to `rest`. KWD 1000 paid, 660 refunded, 7 credited, a
 * dashboard refund of 340: 7; of 333: 0.
 */
export function cashCreditedTwice(
  invoice: Pick<InvoiceRow, 'amount_paid' | 'amount_refunded' | 'cash_credited'>,
  disputed: bigint,
  amount: bigint,
  rest: bigint,
): bigint {
  if (invoice.cash_credited === 0n || rest <= 0n) return 0n;
  const beyond = (refunded: bigint) =>
    upTo(refunded + disputed + invoice.cash_credited - invoice.amount_paid, invoice.cash_credited);
  return upTo(beyond(invoice.amount_refunded + amount) - beyond(invoice.amount_refunded), rest);
}

/**
 * What of a lost dispute refund `refund` (just succeeded) is the money of, minor units ≥ 0: on a
 * gateway that pays a lost dispute as a refund (`lostDisputePaidAsRefund`: PayPal), the lost dispute
 * of its payment and amount no refund carries yet (not a reversal), which payments/disputes.ts
 * `settleLostDisputeByRefund` then pairs with it; 0 otherwise. Not counted as a dispute beside the
 * refund: it is the same money.
 */
async function lostDisputeCarriedBy(trx: Kysely<Database>, refund: RefundRow): Promise<bigint> {
  if (!LOSS_PAID_BY_REFUND.includes(refund.gateway)) return 0n;
  const found = await trx
    .selectFrom('disputes')
    .select('amount')
    .where('transaction_id', '=', refund.transaction_id)
    .where('status', '=', 'lost')
    .where('amount', '=', refund.amount)
    .where('refund_id', 'is', null)
    .where('reversed', '=', false)
    .limit(1)
    .executeTakeFirst();
  return found?.amount ?? 0n;
}

/**
 * Issues the credit note of a refund that just succeeded on a locked invoice (read before its
 * `amount_refunded` counts this refund), inside the transaction that records it: for the part of
 * the refund that is neither an overpayment given back (`overpaymentShare`, after what the invoice's
 * other succeeded refunds gave back of it) nor change credit taken back (what of the rest the
 * period's invoices no longer kept: `changeCreditTakenBack`), its subtotal (revenue given back) + tax
 * (tax payable given back), minor units of the invoice's currency. 2500 (500 tax) paid, a downgrade
 * credits 625 (125 tax) to the customer, 1875 refunded by hand (note 1500 + 375: tax payable 0):
 * the other 625, refunded in the gateway's dashboard, issues no note (all of it taken back), where
 * it used to issue 500 + 125 and leave tax payable 125 in debit.
 */
export async function issueCreditNote(
  work: UnitOfWork,
  invoice: InvoiceRow,
  refund: RefundRow,
): Promise<RefundSplit> {
  const given = await overpaymentGivenBack(work.trx, invoice, refund.id);
  const overpayment = overpaymentShare(invoice, given, refund.amount);
  // Of what it gave back, what its refunds did: a chargeback's share is no part of `amount_refunded`.
  const refunded = await overpaymentRefunded(work.trx, invoice, refund.id);
  const changeTakenBack = await changeCreditTakenBack(
    work.trx,
    invoice,
    refund.id,
    refund.amount - overpayment,
  );
  // Cash given to the customer's credit for want of a gateway step that this refund gives back
  // again (one made at the gateway): that credit paid back in cash, not the sale given back twice.
  const twice = cashCreditedTwice(
    invoice,
    (await disputedAway(work.trx, invoice.id)) - (await lostDisputeCarriedBy(work.trx, refund)),
    refund.amount,
    refund.amount - overpayment - changeTakenBack,
  );
  const takenBack = changeTakenBack + twice;
  const sale = refund.amount - overpayment - takenBack;
  if (sale === 0n) return { note: undefined, overpayment, takenBack, cashCreditedTwice: twice };
  // What the invoice's other succeeded refunds took back of change credit is no sale given back either.
  const earlier = await changeCreditTakenBackOf(work.trx, invoice, refund.id);
  const note = await insertCreditNote(work, invoice, {
    refundId: refund.id,
    amount: sale,
    takenBack,
    givenBack: saleGivenBack(
      invoice,
      refunded + overpayment + earlier + takenBack,
      invoice.amount_refunded + refund.amount,
    ),
    reason: refund.reason,
  });
  return { note, overpayment, takenBack, cashCreditedTwice: twice };
}

/**
 * Issues the credit note of `amount` (minor units, > 0) of the customer credit applied to a locked
 * invoice given back to the customer's credit (billing/credit-returns.ts), inside the transaction
 * that books it; the invoice is read before its `credit_returned` counts this amount. Its tax share
 * is cumulative with the invoice's cash refunds (module docstring): 1000 with 200 tax paid 300 by
 * credit and 700 by card, the credit given back first → 300 × 200 / 1000 = 60 tax; the card's
 * refund of 700 then brings the notes to round(200 × 1000 / 1000) = 200, so it holds 140.
 * @returns the note (`refund` null)
 */
export async function issueCreditReturnNote(
  work: UnitOfWork,
  invoice: InvoiceRow,
  amount: bigint,
  reason: string | null,
): Promise<CreditNoteRow> {
  const creditPaidBack =
    (await overpaymentRefunded(work.trx, invoice)) + (await changeCreditTakenBackOf(work.trx, invoice));
  return insertCreditNote(work, invoice, {
    refundId: null,
    amount,
    givenBack: saleGivenBack(invoice, creditPaidBack) + amount,
    reason,
  });
}

/**
 * What an invoice has given back of its sale, minor units: of its cumulative cash refunds `refunded`
 * (its `amount_refunded` unless given), what refunded the sale, that is all but `creditPaidBack`
 * (what they paid back of the customer's credit: an overpayment, `overpaymentRefunded`, and change
 * credit taken back, billing/proration.ts `changeCreditTakenBackOf`), plus the customer credit
 * returned (`credit_returned`) and the cash given to the customer's credit because its gateway could
 * not take it (`cash_credited`: a step's rest, billing/credit-returns.ts `creditCashRest`). Its credit
 * notes' tax share is counted on it, and a cancellation's refund is owed less it
 * (billing/cancellation.ts).
 */
export function saleGivenBack(
  invoice: Pick<InvoiceRow, 'amount_refunded' | 'credit_returned' | 'cash_credited'>,
  creditPaidBack: bigint,
  refunded = invoice.amount_refunded,
): bigint {
  return refunded - creditPaidBack + invoice.credit_returned + invoice.cash_credited;
}

/**
 * What an invoice has given back of its recurring lines (plan, coupons, add-ons: `recurring`, minor
 * units, tax included, ≥ 0), minor units ≥ 0: what it gave back of its sale (`saleGivenBack`, with
 * `creditPaidBack`, its overpayment given back and change credit taken back, left out), counted against its other lines (setup
 * fee, usage) first, as refunds do not say which lines they are for: 6500 = 4000 of plan + 2500 of
 * setup fee, 2500 given back → 0; 3000 given back → 500. A cancellation's refund is owed less it
 * (billing/cancellation.ts); a prorated change is refused when it is above 0 (billing/proration.ts).
 */
export function recurringGivenBack(
  invoice: Pick<InvoiceRow, 'total' | 'amount_refunded' | 'credit_returned' | 'cash_credited'>,
  creditPaidBack: bigint,
  recurring: bigint,
): bigint {
  const given = saleGivenBack(invoice, creditPaidBack);
  const other = invoice.total > recurring ? invoice.total - recurring : 0n;
  return given > other ? given - other : 0n;
}

/**
 * The recurring lines of invoice `invoiceId` (the plan's line and its coupon lines: `plan_id` set; the
 * add-ons' lines: `add_on_id` set; not usage: no `metric_code`; so not the one-off setup fee, which has
 * no plan), with `recurring`, their amounts with tax summed (minor units of the invoice's currency,
 * at least 0): what a cancellation's refund counts as the period's cost (billing/cancellation.ts) and
 * `recurringGivenBack` counts the invoice's refunds against (billing/proration.ts). Finalization's
 * ROUNDING line (billing/invoice-rounding.ts, PRODUCT §11) is counted in `recurring` too (among
 * `lines`, with no plan and no add-on): what the period charged is what the invoice asked, so a
 * `full` cancellation of a Stripe KWD invoice of 1122 + 112 tax rounded by 4 gives back the 1230
 * paid, not 1234 (`refund_exceeds_payment`). All of the rounding is taken off the recurring part,
 * even when the invoice has other lines (a setup fee): the customer never gets back more than paid.
 */
export async function recurringLines(
  trx: Kysely<Database>,
  invoiceId: string,
): Promise<{ lines: Pick<InvoiceLineRow, 'amount' | 'tax_amount' | 'add_on_id'>[]; recurring: bigint }> {
  const lines = await trx
    .selectFrom('invoice_lines')
    .select(['amount', 'tax_amount', 'add_on_id'])
    .where('invoice_id', '=', invoiceId)
    .where((eb) =>
      eb.or([eb('plan_id', 'is not', null), eb('add_on_id', 'is not', null), eb('type', '=', 'ROUNDING')]),
    )
    .where('metric_code', 'is', null)
    .execute();
  const sum = lines.reduce((total, l) => total + l.amount + l.tax_amount, 0n);
  return { lines, recurring: sum > 0n ? sum : 0n };
}

/**
 * Inserts a credit note of `amount` on an invoice whose credit notes, with this one, give back
 * `givenBack` of its total (cash refunds of the sale and credit returned, cumulative). Its tax is worked
 * over what the invoice still asks once prorated changes of its period credited it: while owed, taken
 * off it (`proration_credited`, which took its own tax, `proration_tax_credited`, at the change's
 * ratio: billing/proration.ts), and once paid, given to the customer as credit for time it paid for
 * (`periodCreditToCustomer`: `credited` with its tax `taxCredited`, this invoice's share of the
 * period's change credit, read from the ledger: the period invoice carries up to its sale paid (in
 * cash, and by customer credit not given back) less what its refunds, this one included, gave back
 * of the sale, with the credit's tax pro rata but
 * never more than its own tax; the period's change invoices carry the rest and the rest of the
 * tax; 0 for an invoice of no subscription period). With `asked` = total − proration_credited −
 * credited and `taxAsked` = tax − proration_tax_credited − taxCredited, it is
 * `taxAsked × givenBack / asked`, rounded half away from zero, never beyond `taxAsked`, less what the earlier ISSUED notes hold,
 * within 0 … amount, or within `taxAsked` … 0 when that is negative (the credits carry more tax than
 * the charges: a refund gives back that negative tax, 500 net and −100 tax for a refund of all of
 * 1000 untaxed less a 500 credit at 20%). 2500 (500 tax) less a change's 750 (250 tax), 1750 refunded
 * → 250 × 1750 / 1750 = 250 tax, not 500 × 1750 / 2500 = 350, whether the 750 was taken off the
 * invoice while owed or given to the customer once it was paid (a refund by hand and a cancellation's
 * refund alike: each gives back at most the 1750 the period kept). A cancellation's refund of 875 of
 * a 3500 (700 tax) period invoice after a 5250 (1050 tax) change credit to the customer, more than
 * it was paid (an upgrade's invoice carries the rest): it carries 3500 − 875 = 2625 (525 tax), so
 * asked 875, taxAsked 175: the note is 700 + 175.
 * The note gives back its share of the invoice's `rounding` (what finalization took off for the
 * gateway's step, PRODUCT §11) the same cumulative way, `rounding × givenBack / asked` rounded half up
 * (all of it once `givenBack` reaches `asked`), less what earlier ISSUED notes hold, never below 0; it
 * is in the subtotal (revenue given back) and its `rounding`, so total = subtotal + tax − rounding as
 * on the invoice: Stripe KWD 1122 + 112 tax rounded by 4, 1230 paid and refunded → 1122 + 112 − 4.
 */
async function insertCreditNote(
  work: UnitOfWork,
  invoice: InvoiceRow,
  o: {
    refundId: string | null;
    amount: bigint;
    takenBack?: bigint;
    givenBack: bigint;
    reason: string | null;
  },
): Promise<CreditNoteRow> {
  // The refund's own note is not written yet: the period's invoices count it as `o` says.
  const toCustomer = await periodCreditToCustomer(
    work.trx,
    invoice,
    o.refundId === null
      ? undefined
      : { refundId: o.refundId, invoiceId: invoice.id, takenBack: o.takenBack ?? 0n },
  );
  const asked = invoice.total - invoice.proration_credited - toCustomer.total;
  const taxAsked = invoice.tax - invoice.proration_tax_credited - toCustomer.tax;
  // Never beyond `taxAsked` (on its side of 0), when more is given back than the invoice still asks.
  let target = asked > 0n ? prorateSigned(taxAsked, o.givenBack, asked) : 0n;
  if (taxAsked < 0n ? target < taxAsked : target > taxAsked) target = taxAsked;
  const earlier = await work.trx
    .selectFrom('credit_notes')
    .select([
      sql<string>`coalesce(sum(tax), 0)::text`.as('tax'),
      sql<string>`coalesce(sum(rounding), 0)::text`.as('rounding'),
    ])
    .where('invoice_id', '=', invoice.id)
    .where('status', '=', 'ISSUED')
    .executeTakeFirstOrThrow();
  let tax = target - BigInt(earlier.tax);
  if (taxAsked < 0n) {
    if (tax > 0n) tax = 0n;
  } else if (tax < 0n) tax = 0n;
  if (tax > o.amount) tax = o.amount;
  // PRODUCT §11: what finalization rounded off goes back with the sale, cumulative as the tax, all of
  // it once everything the invoice asks is given back, so its `rounding` account returns to 0.
  const roundingTarget =
    invoice.rounding <= 0n || asked <= 0n
      ? 0n
      : o.givenBack >= asked
        ? invoice.rounding
        : prorate(invoice.rounding, o.givenBack > 0n ? o.givenBack : 0n, asked);
  let rounding = roundingTarget - BigInt(earlier.rounding);
  if (rounding < 0n) rounding = 0n;
  const note = await work.trx
    .insertInto('credit_notes')
    .values({
      id: newId('cn'),
      invoice_id: invoice.id,
      refund_id: o.refundId,
      customer_id: invoice.customer_id,
      currency: invoice.currency,
      subtotal: o.amount - tax + rounding,
      tax,
      rounding,
      total: o.amount,
      reason: o.reason,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await invoiceActivity(work, invoice, 'invoice.credit_note_issued', {
    credit_note: note.id,
    refund: o.refundId,
    subtotal: note.subtotal,
    tax: note.tax,
    rounding: note.rounding,
    total: note.total,
  });
  return note;
}

/**
 * Voids the credit note of a refund that failed after it had succeeded, on its locked invoice, inside
 * the transaction that records the failure.
 * @returns the voided note, whose amounts the reversal posts back; undefined when the refund had none
 * (it only paid back an overpayment, or succeeded before credit notes existed). What the refund paid
 * back of an overpayment is not computed again here: the invoice's refunds since may have changed
 * `overpaymentShare`'s answer, so the reversal reads it from the refund's own success entry
 * (payments/refunds.ts).
 */
export async function voidCreditNote(
  work: UnitOfWork,
  invoice: InvoiceRow,
  refund: RefundRow,
): Promise<CreditNoteRow | undefined> {
  const note = await work.trx
    .updateTable('credit_notes')
    .set({ status: 'VOID', voided_at: new Date() })
    .where('refund_id', '=', refund.id)
    .where('status', '=', 'ISSUED')
    .returningAll()
    .executeTakeFirst();
  if (!note) return undefined;
  await invoiceActivity(work, invoice, 'invoice.credit_note_voided', {
    credit_note: note.id,
    refund: refund.id,
  });
  return note;
}

/** An invoice's credit notes (ISSUED and VOID), oldest first: what `expand=credit_notes` and its PDF show. */
export async function invoiceCreditNotes(db: Kysely<Database>, invoiceId: string): Promise<CreditNoteRow[]> {
  return db
    .selectFrom('credit_notes')
    .selectAll()
    .where('invoice_id', '=', invoiceId)
    .orderBy('id')
    .execute();
}
