import { rescheduleCharge } from '../billing/charge-schedule.ts';
import { availableCredit, lockCustomerCredit } from '../billing/customer-credit.ts';
import { invoicePayments } from '../billing/invoice-payment.ts';
import {
  getInvoice,
  type InvoiceWithLines,
  invoiceActivity,
  lockInvoice,
  lockOfflinePayment,
  markOfflinePaymentReversed,
  reversePayment,
} from '../billing/invoices.ts';
import type { Db } from '../db/database.ts';
import type { InvoiceRow, OfflinePaymentRow } from '../db/schema.ts';
import { ConflictError } from '../errors.ts';
import { postEntry } from '../ledger/journal.ts';
import { entryKeys, offlineOverpaymentReversed, offlinePaymentReversed } from '../ledger/movements.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { flagOverpaymentCreditShort, overpaymentLostByReversal } from './overpayment-shares.ts';

/**
 * Why invoice `invoice` cannot have offline payment `payment` taken back, as the 409 to answer, or
 * undefined when it can: `offline_payment_reversed` (taken back already), `invoice_void` (a VOID
 * invoice owes nothing: there is nothing to owe again), `invoice_refunded` (PARTIALLY_REFUNDED or
 * REFUNDED: money went back to the customer, by refund or returned credit, and which payment it came
 * from is not known, so a person settles the cheque and that refund together), `invoice_uncollectible`
 * (written off: the reversal would have to be written off again, which billhook does not do itself;
 * mark it collectible by paying, or settle the cheque by hand).
 */
function whyNotReversible(invoice: InvoiceRow, payment: OfflinePaymentRow): ConflictError | undefined {
  if (payment.reversed_at !== null) {
    return new ConflictError(
      'offline_payment_reversed',
      `offline payment ${payment.id} was reversed already (${payment.reversal_reason}); nothing changed`,
    );
  }
  const money = `${payment.amount} ${payment.currency}`;
  switch (invoice.status) {
    case 'OPEN':
    case 'PAID':
      return undefined;
    case 'VOID':
      return new ConflictError(
        'invoice_void',
        `invoice ${invoice.id} is VOID: it owes nothing, so offline payment ${payment.id} of ${money} cannot be owed again; nothing changed`,
      );
    case 'PARTIALLY_REFUNDED':
    case 'REFUNDED':
      return new ConflictError(
        'invoice_refunded',
        `invoice ${invoice.id} is ${invoice.status} (${invoice.amount_refunded} refunded, ${invoice.credit_returned} of credit returned): offline payment ${payment.id} of ${money} cannot be taken back after money went back to the customer; settle it by hand. Nothing changed`,
      );
    case 'UNCOLLECTIBLE':
      return new ConflictError(
        'invoice_uncollectible',
        `invoice ${invoice.id} is UNCOLLECTIBLE (written off): offline payment ${payment.id} of ${money} cannot be taken back on a written-off invoice; settle it by hand. Nothing changed`,
      );
    default:
      return new ConflictError(
        'invoice_not_reversible',
        `invoice ${invoice.id} is ${invoice.status}: offline payment ${payment.id} cannot be taken back; nothing changed`,
      );
  }
}

/**
 * Takes `amount` (minor units, > 0) of overpayment back off the customer's credit for reversed offline
 * payment `payment` (`op_…:overpaid_reversed`). Such an overpayment was made by a gateway payment of
 * the invoice (an offline payment never exceeds what is due): credit the customer spent meanwhile is
 * taken all the same, left in debit, with an `overpayment_credit_spent` exception about the invoice's
 * newest gateway payment (`flagOverpaymentCreditShort`), as a void takes it back. Without any gateway
 * payment on the invoice there is none to name: a shortfall is then refused.
 * @throws ConflictError `overpayment_credit_spent` (no gateway payment, credit short): the unit rolls back
 */
async function takeBackOverpayment(
  work: UnitOfWork,
  invoice: InvoiceRow,
  payment: OfflinePaymentRow,
  amount: bigint,
): Promise<void> {
  const what = `offline payment ${payment.id} was reversed: invoice ${invoice.id} is no longer paid ${amount} ${invoice.currency} beyond what it asked`;
  const [gatewayPayment] = await invoicePayments(work.trx, invoice.id);
  if (gatewayPayment) {
    await flagOverpaymentCreditShort(work, {
      customerId: invoice.customer_id,
      currency: invoice.currency,
      amount,
      gateway: gatewayPayment.gateway,
      gatewayAccount: gatewayPayment.gateway_account,
      transactionId: gatewayPayment.id,
      what,
      details: { invoice: invoice.id, offline_payment: payment.id },
      occurrence: entryKeys.offlineOverpaymentReversed(payment.id),
    });
  } else {
    await lockCustomerCredit(work.trx, invoice.customer_id);
    const left = await availableCredit(work, invoice.customer_id, invoice.currency, 'credit_refunds');
    if (left < amount) {
      throw new ConflictError(
        'overpayment_credit_spent',
        `${what}, the customer's credit, but only ${left} of it is left; nothing changed`,
      );
    }
  }
  await postEntry(
    work,
    offlineOverpaymentReversed({
      offlinePaymentId: payment.id,
      invoiceId: invoice.id,
      customerId: invoice.customer_id,
      currency: invoice.currency,
      amount,
    }),
  );
}

/**
 * Reverses offline payment `paymentId` of invoice `invoiceId` (`POST
 * /v1/invoices/:id/payments/:payment/reverse`: a bounced cheque, a recalled transfer) for `reason`, in
 * one unit of work: the invoice owed it again (`reversePayment`: `amount_paid` lowered, `amount_due`
 * raised, PAID back to OPEN once something is due, `invoice.payment_reversed`), `op_…:reversed`
 * posted (receivable debited, offline receipts credited, the payment's whole amount); the invoice's
 * lost disputes' overpayment shares worked again (`resplitOverpayment`) and what it is no longer paid
 * beyond what it asked taken back off the customer's credit (`op_…:overpaid_reversed`: 10000 paid by
 * cheque and again by card, the card's 10000 the customer's credit; the cheque bounces: the invoice
 * stays PAID by the card, the credit 0); the payment marked reversed (`canceled`, failure code
 * `reversed`, in `GET /v1/transactions`) and `invoice.offline_payment_reversed` recorded. A
 * subscription's invoice owed again goes back on the charge schedule at once (`charge_at` now:
 * `rescheduleCharge`), so the collection sweep charges it and dunning goes on from the attempts it
 * had: a subscription the payment reinstated after dunning suspended it is SUSPENDED again when that
 * charge fails (the reversal itself leaves the subscription as it is). An invoice of no subscription
 * is not put back on the schedule (as a void of a gateway payment): charge it, or set its `charge_at`.
 * @param reason why, 1–500 characters (stored and shown as the payment's failure message)
 * @throws NotFoundError `invoice_not_found`, `offline_payment_not_found` (none of that invoice)
 * @throws ConflictError `offline_payment_reversed`, `invoice_void`, `invoice_refunded`,
 *   `invoice_uncollectible` (`whyNotReversible`), `overpayment_credit_spent` (`takeBackOverpayment`);
 *   nothing changed
 */
export async function reverseOfflinePayment(
  db: Db,
  actor: Actor,
  invoiceId: string,
  paymentId: string,
  reason: string,
): Promise<InvoiceWithLines> {
  await inUnitOfWork(db, { actor }, async (work) => {
    const invoice = await lockInvoice(work, invoiceId);
    const payment = await lockOfflinePayment(work, invoiceId, paymentId);
    const refusal = whyNotReversible(invoice, payment);
    if (refusal) throw refusal;
    const now = new Date();
    const takenBack = await overpaymentLostByReversal(
      work,
      invoice,
      payment.amount,
      entryKeys.offlinePaymentReversed(payment.id),
      async () => {
        await reversePayment(work, invoice, payment.amount, payment.id, now, { reason });
        // A subscription's invoice owed again is collected again, as any unpaid one: charged by the
        // sweep at once, dunning going on from its attempts (a subscription the payment reinstated
        // after its retries were used up is suspended again if that charge fails too).
        if (invoice.subscription_id !== null) await rescheduleCharge(work, invoiceId, now);
        await postEntry(
          work,
          offlinePaymentReversed({
            offlinePaymentId: payment.id,
            invoiceId,
            customerId: invoice.customer_id,
            currency: invoice.currency,
            amount: payment.amount,
          }),
        );
      },
    );
    if (takenBack > 0n) await takeBackOverpayment(work, invoice, payment, takenBack);
    await markOfflinePaymentReversed(work, payment, reason, now);
    await invoiceActivity(work, invoice, 'invoice.offline_payment_reversed', {
      offline_payment: payment.id,
      method: payment.method,
      amount: payment.amount,
      currency: payment.currency,
      reason,
      overpayment_taken_back: takenBack > 0n ? takenBack : 0n,
    });
  });
  return getInvoice(db, invoiceId);
}
