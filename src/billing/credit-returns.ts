import type { CreditNoteRow } from '../db/schema.ts';
import { ConflictError } from '../errors.ts';
import { postEntry } from '../ledger/journal.ts';
import { invoiceCreditGivenBack } from '../ledger/movements.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { issueCreditReturnNote, overpaymentShare } from './credit-notes.ts';
import { givenBackStatus, invoiceActivity, lockInvoice } from './invoices.ts';

/**
 * What to give back of an invoice to its customer's credit, minor units of its currency, each ≥ 0:
 * `applied`, of the customer credit applied to it (`credit_applied` − `credit_returned`), and `paid`,
 * of the cash its payments paid and it did not refund (`amount_paid` − `amount_refunded`) that its
 * gateway payment can no longer refund (refunds of customer credit it carried took that room).
 */
export interface CreditReturn {
  applied: bigint;
  paid: bigint;
}

/**
 * Gives `amount.applied` of the customer credit applied to invoice `invoiceId` (`credit_applied`, at
 * finalization) and `amount.paid` of its paid cash back to the customer's credit, inside `work`: the
 * part of a cancellation's refund that does not go back in cash (billing/cancellation.ts
 * `cancellationRefund`), as Chargebee and Recurly refund the credit-paid part as credit and Chargebee
 * gives what a payment cannot take back as refundable credits. Locks the invoice, issues one credit
 * note for both (`issueCreditReturnNote`: revenue and its tax share given back, cumulative with the
 * invoice's cash refunds; the part of `paid` that was an overpayment is the customer's credit
 * already, so it is in no note), posts `inv_…:credit_given_back:<credit_returned>[:<amount_refunded>]`
 * (debit refunds and tax payable, credit `customer_credit:<customer>`), adds `applied` to
 * `credit_returned` and `paid` to `amount_refunded` (what the invoice's payments paid given back,
 * in cash or as credit: never more than `amount_paid`) and sets the status (`givenBackStatus`), and
 * logs `invoice.credit_returned`. The customer's next invoices use the credit as any other
 * (`applyCustomerCredit`), or it is paid back through another payment (`refundCustomerCredit`).
 * @returns the credit note (`refund_id` null), or null when all of it was an overpayment
 * @throws ConflictError `credit_not_returnable` when `applied` is beyond credit_applied −
 * credit_returned, `paid` beyond amount_paid − amount_refunded, or both are 0; NotFoundError when
 * there is no invoice `invoiceId`
 */
export async function returnInvoiceCredit(
  work: UnitOfWork,
  invoiceId: string,
  amount: CreditReturn,
  reason: string | null,
): Promise<CreditNoteRow | null> {
  const invoice = await lockInvoice(work, invoiceId);
  const credit = invoice.credit_applied - invoice.credit_returned;
  const cash = invoice.amount_paid - invoice.amount_refunded;
  const { applied, paid } = amount;
  if (applied < 0n || paid < 0n || applied + paid === 0n || applied > credit || paid > cash) {
    throw new ConflictError(
      'credit_not_returnable',
      `invoice ${invoiceId} has ${credit} ${invoice.currency} of applied credit and ${cash} of paid cash left to give back, not ${applied} and ${paid}`,
    );
  }
  const returned = invoice.credit_returned + applied;
  const refunded = invoice.amount_refunded + paid;
  const sale = applied + paid - overpaymentShare(invoice, invoice.amount_refunded, refunded);
  const note = sale > 0n ? await issueCreditReturnNote(work, invoice, sale, reason) : null;
  if (note) {
    await postEntry(
      work,
      invoiceCreditGivenBack({
        invoiceId,
        customerId: invoice.customer_id,
        currency: invoice.currency,
        amount: sale,
        subtotal: note.subtotal,
        tax: note.tax,
        creditReturned: returned,
        paid,
        amountRefunded: refunded,
      }),
    );
  }
  const after = { ...invoice, credit_returned: returned, amount_refunded: refunded };
  await work.trx
    .updateTable('invoices')
    .set({
      credit_returned: returned,
      amount_refunded: refunded,
      status: givenBackStatus(after),
      updated_at: new Date(),
    })
    .where('id', '=', invoiceId)
    .execute();
  await invoiceActivity(work, invoice, 'invoice.credit_returned', {
    amount: applied + paid,
    credit_returned: returned,
    ...(paid > 0n ? { paid, amount_refunded: refunded } : {}),
    credit_note: note?.id ?? null,
  });
  return note;
}
