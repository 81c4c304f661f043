import type { Kysely } from 'kysely';
import { getCustomer } from '../../billing/customers.ts';
import { capturedAmount } from '../../billing/invoice-payment.ts';
import { getInvoice } from '../../billing/invoices.ts';
import { getRow } from '../../db/get.ts';
import type { Database, TransactionListRow } from '../../db/schema.ts';
import { ConflictError } from '../../errors.ts';
import { formatAmount } from '../../money/format.ts';
import { day, paymentMethodText } from './invoice-pdf.ts';
import { type PdfSection, renderPdf } from './pdf.ts';

/**
 * The receipt of a payment (`GET /v1/transactions/:id/receipt`): a succeeded gateway payment
 * (`txn_…`) or an offline payment (`op_…`), with what it moved (`amount_captured`, else `amount`),
 * its date and method, and the invoice it paid (number, total, amount due now) and its customer;
 * amounts through `formatAmount`, as the API's minor units in the currency's exponent.
 * @throws NotFoundError `transaction_not_found`; ConflictError `transaction_not_succeeded` for an
 * attempt that moved no money (pending, unknown, failed, canceled)
 */
export async function receiptPdf(db: Kysely<Database>, id: string): Promise<Buffer> {
  const payment = await getRow<TransactionListRow>(db, 'transaction_list', id, 'transaction');
  if (payment.status !== 'succeeded') {
    throw new ConflictError(
      'transaction_not_succeeded',
      `transaction ${id} is ${payment.status}: a receipt is made for a succeeded payment only`,
    );
  }
  const money = (amount: bigint) => formatAmount(amount, payment.currency);
  const sections: PdfSection[] = [
    {
      heading: 'Payment',
      facts: [
        ['Receipt for', payment.id],
        ['Date', day(payment.created_at)],
        ['Method', paymentMethodText(payment)],
      ],
      totals: [['Amount paid', money(capturedAmount(payment))]],
    },
  ];
  if (payment.invoice_id) {
    const invoice = await getInvoice(db, payment.invoice_id);
    sections.push({
      heading: 'Invoice',
      facts: [
        ['Invoice number', invoice.number ?? invoice.id],
        ['Invoice id', invoice.id],
        ...(invoice.po_number ? [['PO number', invoice.po_number] as [string, string]] : []),
      ],
      totals: [
        ['Invoice total', money(invoice.total)],
        ['Amount due now', money(invoice.amount_due)],
      ],
    });
  }
  if (payment.customer_id) {
    const customer = await getCustomer(db, payment.customer_id);
    sections.push({
      heading: 'Received from',
      facts: [
        ...(customer.name ? [['Name', customer.name] as [string, string]] : []),
        ['Email', customer.email],
        ['Customer id', customer.id],
      ],
    });
  }
  return renderPdf({ title: `Receipt ${payment.id}`, sections });
}
