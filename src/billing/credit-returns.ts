import type { CreditNoteRow } from '../db/schema.ts';
import { ConflictError } from '../errors.ts';
import { postEntry } from '../ledger/journal.ts';
import { invoiceCreditGivenBack } from '../ledger/movements.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { issueCreditReturnNote } from './credit-notes.ts';
import { givenBackStatus, invoiceActivity, lockInvoice } from './invoices.ts';

/**
 * Gives `amount` (minor units of the invoice's currency, > 0) of the customer credit applied to
 * invoice `invoiceId` (`credit_applied`, at finalization) back to the customer's credit, inside
 * `work`: the part of a cancellation's refund that the customer's credit had paid (billing/
 * cancellation.ts `cancellationRefund`), as Chargebee and Recurly refund the credit-paid part as
 * credit. Locks the invoice, issues a credit note for it (`issueCreditReturnNote`: revenue and its
 * tax share given back, cumulative with the invoice's cash refunds), posts
 * `inv_…:credit_given_back:<credit_returned>` (debit refunds and tax payable, credit
 * `customer_credit:<customer>`), adds it to `credit_returned` and sets the status
 * (`givenBackStatus`), and logs `invoice.credit_returned`. The customer's next invoices use the
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
  const note = await issueCreditReturnNote(work, invoice, amount, reason);
  const returned = invoice.credit_returned + amount;
  await postEntry(
    work,
    invoiceCreditGivenBack({
      invoiceId,
      customerId: invoice.customer_id,
      currency: invoice.currency,
      amount,
      subtotal: note.subtotal,
      tax: note.tax,
      creditReturned: returned,
    }),
  );
  await work.trx
    .updateTable('invoices')
    .set({
      credit_returned: returned,
      status: givenBackStatus({ ...invoice, credit_returned: returned }),
      updated_at: new Date(),
    })
    .where('id', '=', invoiceId)
    .execute();
  await invoiceActivity(work, invoice, 'invoice.credit_returned', {
    amount,
    credit_returned: returned,
    credit_note: note.id,
  });
  return note;
}
