import type { Kysely } from 'kysely';
import { invoiceCreditNotes } from '../../billing/credit-notes.ts';
import { getCustomer } from '../../billing/customers.ts';
import { capturedAmount } from '../../billing/invoice-payment.ts';
import { getInvoice } from '../../billing/invoices.ts';
import type { Database, TransactionListRow } from '../../db/schema.ts';
import { ConflictError } from '../../errors.ts';
import { formatAmount } from '../../money/format.ts';
import { ppmToPercent } from '../../money/rates.ts';
import { invoiceTransactions } from '../../payments/transactions.ts';
import { type PdfDocument, type PdfSection, renderPdf } from './pdf.ts';

/** A time as its UTC calendar day (`2026-12-06`), how documents date things. */
export function day(time: Date): string {
  return time.toISOString().slice(0, 10);
}

/** How a payment was made, in words: `Stripe` / `Offline: BANK (ref 986-655)`. */
export function paymentMethodText(t: TransactionListRow): string {
  if (t.type === 'offline')
    return `Offline: ${t.offline_method}${t.reference ? ` (ref ${t.reference})` : ''}`;
  return `${t.gateway}${t.gateway_transaction_id ? ` ${t.gateway_transaction_id}` : ''}`;
}

/**
 * The invoice's PDF (`GET /v1/invoices/:id/pdf`): its number, dates (issued, due with the terms), PO
 * number and title, the customer, each line (quantity, unit amount, tax rate, amount), the totals the
 * API shows (subtotal, tax, rounding when there is some, total, credit applied, paid, refunded, due), its credit notes (subtotal,
 * tax, total each), its succeeded payments and its notes; every amount through `formatAmount`, so
 * the PDF prints the API's minor units in the currency's exponent.
 * @throws NotFoundError for a missing invoice; ConflictError `invoice_not_finalized` for a DRAFT
 * (it has no number yet, as Stripe gives a draft no `invoice_pdf`)
 */
export async function invoicePdf(db: Kysely<Database>, id: string): Promise<Buffer> {
  const invoice = await getInvoice(db, id);
  if (invoice.status === 'DRAFT' || invoice.number === null || invoice.finalized_at === null) {
    throw new ConflictError(
      'invoice_not_finalized',
      `invoice ${id} is a DRAFT: it has a PDF once finalized (with its number)`,
    );
  }
  const [customer, creditNotes, payments] = await Promise.all([
    getCustomer(db, invoice.customer_id),
    invoiceCreditNotes(db, id),
    invoiceTransactions(db, id),
  ]);
  const money = (amount: bigint) => formatAmount(amount, invoice.currency);
  const sections: PdfSection[] = [
    {
      heading: invoice.title ?? 'Invoice',
      facts: [
        ['Invoice number', invoice.number],
        ['Invoice id', invoice.id],
        ['Status', invoice.status],
        ['Issued', day(invoice.finalized_at)],
        [
          'Due',
          `${invoice.due_date ? day(invoice.due_date) : day(invoice.finalized_at)} (net ${invoice.payment_terms_days ?? 0} days)`,
        ],
        ...(invoice.po_number ? [['PO number', invoice.po_number] as [string, string]] : []),
        ...(invoice.period_start && invoice.period_end
          ? [['Period', `${day(invoice.period_start)} to ${day(invoice.period_end)}`] as [string, string]]
          : []),
      ],
    },
    {
      heading: 'Bill to',
      facts: [
        ...(customer.name ? [['Name', customer.name] as [string, string]] : []),
        ['Email', customer.email],
        ['Customer id', customer.id],
      ],
    },
    {
      heading: 'Lines',
      columns: ['Description', 'Quantity', 'Unit amount', 'Tax', 'Amount'],
      rows: invoice.lines.map((line) => ({
        cells: [
          line.description,
          String(line.quantity),
          line.unit_amount === null ? '' : money(line.unit_amount),
          `${ppmToPercent(line.tax_rate_ppm)}% ${money(line.tax_amount)}`,
        ],
        amount: money(line.amount),
      })),
      totals: [
        ['Subtotal', money(invoice.subtotal)],
        ['Tax', money(invoice.tax)],
        // PRODUCT §11: finalization's rounding for the gateway, also a line above (negative).
        ...(invoice.rounding > 0n ? [['Rounding', money(-invoice.rounding)] as [string, string]] : []),
        ['Total', money(invoice.total)],
        ...(invoice.credit_applied > 0n
          ? [['Credit applied', money(invoice.credit_applied)] as [string, string]]
          : []),
        ...(invoice.credit_returned > 0n
          ? [['Credit given back', money(invoice.credit_returned)] as [string, string]]
          : []),
        ...(invoice.proration_credited > 0n
          ? [['Credited by a plan change', money(invoice.proration_credited)] as [string, string]]
          : []),
        ['Amount paid', money(invoice.amount_paid)],
        ...(invoice.amount_refunded > 0n
          ? [['Amount refunded', money(invoice.amount_refunded)] as [string, string]]
          : []),
        // Cash paid given to the customer's credit because the gateway takes the currency only on a
        // step (Stripe KWD: 660 refunded, 7 here), given back as a refund is.
        ...(invoice.cash_credited > 0n
          ? [['Refunded as customer credit', money(invoice.cash_credited)] as [string, string]]
          : []),
        ['Amount due', money(invoice.amount_due)],
      ],
    },
  ];
  if (creditNotes.length > 0) {
    sections.push({
      heading: 'Credit notes',
      columns: ['Credit note', 'Total'],
      rows: creditNotes.map((note) => ({
        cells: [
          `${note.id} · ${day(note.created_at)} · ${note.status} · subtotal ${money(note.subtotal)}, tax ${money(note.tax)}${note.rounding > 0n ? `, rounding ${money(-note.rounding)}` : ''}`,
        ],
        amount: money(note.total),
      })),
    });
  }
  const paid = payments.filter((p) => p.status === 'succeeded');
  if (paid.length > 0) {
    sections.push({
      heading: 'Payments',
      columns: ['Payment', 'Amount'],
      rows: paid.map((p) => ({
        cells: [`${p.id} · ${day(p.created_at)} · ${paymentMethodText(p)}`],
        amount: money(capturedAmount(p)),
      })),
    });
  }
  if (invoice.notes) sections.push({ heading: 'Notes', text: invoice.notes });
  const document: PdfDocument = { title: `Invoice ${invoice.number}`, sections };
  return renderPdf(document);
}
