import { type Kysely, sql } from 'kysely';
import { newId } from '../db/ids.ts';
import type { CreditNoteRow, Database, InvoiceRow, RefundRow } from '../db/schema.ts';
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
 * Issues the credit note of a refund that just succeeded on a locked invoice (read before its
 * `amount_refunded` counts this refund), inside the transaction that records it.
 * @returns the credit note: subtotal (revenue given back) + tax (tax payable given back) = the
 * refund's amount, minor units of the invoice's currency
 */
export async function issueCreditNote(
  trx: Kysely<Database>,
  invoice: InvoiceRow,
  refund: RefundRow,
): Promise<CreditNoteRow> {
  const refunded = invoice.amount_refunded + refund.amount;
  const target = invoice.total > 0n ? prorate(invoice.tax, refunded, invoice.total) : 0n;
  const earlier = await trx
    .selectFrom('credit_notes')
    .select(sql<string>`coalesce(sum(tax), 0)::text`.as('tax'))
    .where('invoice_id', '=', invoice.id)
    .where('status', '=', 'ISSUED')
    .executeTakeFirstOrThrow();
  let tax = target - BigInt(earlier.tax);
  if (tax < 0n) tax = 0n;
  if (tax > refund.amount) tax = refund.amount;
  const note = await trx
    .insertInto('credit_notes')
    .values({
      id: newId('cn'),
      invoice_id: invoice.id,
      refund_id: refund.id,
      customer_id: invoice.customer_id,
      currency: invoice.currency,
      subtotal: refund.amount - tax,
      tax,
      total: refund.amount,
      reason: refund.reason,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await invoiceActivity(trx, invoice, 'invoice.credit_note_issued', {
    credit_note: note.id,
    refund: refund.id,
    subtotal: note.subtotal,
    tax: note.tax,
    total: note.total,
  });
  return note;
}

/**
 * Voids the credit note of a refund that failed after it had succeeded, inside the transaction that
 * records the failure.
 * @returns the voided credit note, whose amounts the reversal posts back; undefined for a refund
 * that succeeded before credit notes existed (it gave back no tax, so its reversal takes none)
 */
export async function voidCreditNote(
  trx: Kysely<Database>,
  invoice: InvoiceRow,
  refundId: string,
): Promise<CreditNoteRow | undefined> {
  const note = await trx
    .updateTable('credit_notes')
    .set({ status: 'VOID', voided_at: new Date() })
    .where('refund_id', '=', refundId)
    .where('status', '=', 'ISSUED')
    .returningAll()
    .executeTakeFirst();
  if (!note) return undefined;
  await invoiceActivity(trx, invoice, 'invoice.credit_note_voided', {
    credit_note: note.id,
    refund: refundId,
  });
  return note;
}
