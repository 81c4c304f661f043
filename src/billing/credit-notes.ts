import { type Kysely, sql } from 'kysely';
import { newId } from '../db/ids.ts';
import type { CreditNoteRow, Database, InvoiceRow, RefundRow } from '../db/schema.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { invoiceActivity } from './invoices.ts';
import { prorate } from './proration.ts';

/**
 * Credit notes (`cn_…`): the document of a refund of an invoice (PRODUCT §11: "a refund gives back
 * its share of the invoice's tax (tax payable debited pro rata, a credit note for the refund)").
 *
 * The tax share is cumulative, so the refunds of a fully refunded invoice give back exactly all its
 * tax whatever their number and sizes: after a refund brings the invoice's refunded amount to R, the
 * credit notes issued on it hold `round_half_up(tax × R / total)` of tax in all; this one holds the
 * difference with what the earlier (still ISSUED) ones hold, within 0 … its amount. E.g. 1000 + 100
 * tax: refund 550 → 50 tax (500 revenue); then 550 more → 100 − 50 = 50. Refunds of 1 each on
 * 10 + 1 tax: round(1 × 1/11) = 0, round(1 × 2/11) = 0, …, round(1 × 6/11) = 1 on the sixth, so 1 in all.
 *
 * A lost dispute (chargeback) issues no credit note and gives back no tax: the card network took the
 * money back, we did not refund a sale (as Stripe Billing, which issues credit notes for refunds
 * only); the loss is booked whole to chargeback losses.
 */

/**
 * What of the refunds of an invoice, between `refundedBefore` and `refundedAfter` (minor units,
 * cumulative `amount_refunded`), pays back an overpayment: what its payments brought beyond what it
 * asked (total − credit applied), which is the customer's credit (payments/transactions.ts). Refunds
 * give back that excess first (a duplicate charge refunded in the gateway's dashboard is the usual
 * case), then the sale.
 * @returns minor units, 0 … refundedAfter − refundedBefore (or the reverse, for a reversal)
 */
export function overpaymentShare(
  invoice: Pick<InvoiceRow, 'total' | 'credit_applied' | 'amount_paid'>,
  refundedBefore: bigint,
  refundedAfter: bigint,
): bigint {
  const asked = invoice.total - invoice.credit_applied;
  const excess = invoice.amount_paid > asked ? invoice.amount_paid - asked : 0n;
  const upTo = (refunded: bigint) => (refunded < excess ? refunded : excess);
  const share = upTo(refundedAfter) - upTo(refundedBefore);
  return share < 0n ? -share : share;
}

/** How a succeeded refund of an invoice splits: its credit note (for the sale) and what it pays back of an overpayment. */
export interface RefundSplit {
  /** The credit note of the part that refunds the sale; undefined when the refund only pays back an overpayment. */
  note: CreditNoteRow | undefined;
  /** Minor units paid back of the customer's credit from an overpayment (`overpaymentShare`). */
  overpayment: bigint;
}

/**
 * Issues the credit note of a refund that just succeeded on a locked invoice (read before its
 * `amount_refunded` counts this refund), inside the transaction that records it: for the part of
 * the refund that is not an overpayment given back (`overpaymentShare`), its subtotal (revenue given
 * back) + tax (tax payable given back), minor units of the invoice's currency.
 */
export async function issueCreditNote(
  work: UnitOfWork,
  invoice: InvoiceRow,
  refund: RefundRow,
): Promise<RefundSplit> {
  const before = invoice.amount_refunded;
  const after = before + refund.amount;
  const overpayment = overpaymentShare(invoice, before, after);
  const sale = refund.amount - overpayment;
  if (sale === 0n) return { note: undefined, overpayment };
  // Of the cumulative refunds, what refunded the sale (the overpayment went first).
  const saleRefunded = after - overpaymentShare(invoice, 0n, after);
  const target = invoice.total > 0n ? prorate(invoice.tax, saleRefunded, invoice.total) : 0n;
  const earlier = await work.trx
    .selectFrom('credit_notes')
    .select(sql<string>`coalesce(sum(tax), 0)::text`.as('tax'))
    .where('invoice_id', '=', invoice.id)
    .where('status', '=', 'ISSUED')
    .executeTakeFirstOrThrow();
  let tax = target - BigInt(earlier.tax);
  if (tax < 0n) tax = 0n;
  if (tax > sale) tax = sale;
  const note = await work.trx
    .insertInto('credit_notes')
    .values({
      id: newId('cn'),
      invoice_id: invoice.id,
      refund_id: refund.id,
      customer_id: invoice.customer_id,
      currency: invoice.currency,
      subtotal: sale - tax,
      tax,
      total: sale,
      reason: refund.reason,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await invoiceActivity(work, invoice, 'invoice.credit_note_issued', {
    credit_note: note.id,
    refund: refund.id,
    subtotal: note.subtotal,
    tax: note.tax,
    total: note.total,
  });
  return { note, overpayment };
}

/**
 * Voids the credit note of a refund that failed after it had succeeded, on its locked invoice (read
 * before its `amount_refunded` gives the refund back), inside the transaction that records the failure.
 * @returns the voided note, whose amounts the reversal posts back, and the overpayment the refund had
 * paid back (the rest of its amount; without a note, computed again by `overpaymentShare`, which is
 * 0 for a refund that succeeded before credit notes existed on an invoice not overpaid)
 */
export async function voidCreditNote(
  work: UnitOfWork,
  invoice: InvoiceRow,
  refund: RefundRow,
): Promise<RefundSplit> {
  const note = await work.trx
    .updateTable('credit_notes')
    .set({ status: 'VOID', voided_at: new Date() })
    .where('refund_id', '=', refund.id)
    .where('status', '=', 'ISSUED')
    .returningAll()
    .executeTakeFirst();
  if (!note) {
    const after = invoice.amount_refunded - refund.amount;
    return { note: undefined, overpayment: overpaymentShare(invoice, invoice.amount_refunded, after) };
  }
  await invoiceActivity(work, invoice, 'invoice.credit_note_voided', {
    credit_note: note.id,
    refund: refund.id,
  });
  return { note, overpayment: refund.amount - note.total };
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
