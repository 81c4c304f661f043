import type { InvoiceStatus } from '../db/schema.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { disputedAway } from './invoice-payment.ts';
import { invoiceActivity, lockInvoice, paidStatus } from './invoices.ts';
import { periodCreditToCustomer } from './proration.ts';

/** The statuses of an invoice that gave money back: the ones `statusesWorkedAgain` works again. */
const GAVE_BACK: readonly InvoiceStatus[] = ['PARTIALLY_REFUNDED', 'REFUNDED'];

/**
 * Works again, inside `work`, the status of invoice `invoiceId` and of the other invoices of its
 * subscription's period (the same subscription and `period_end`: the invoices among which
 * billing/proration.ts `periodCreditToCustomer` spreads the period's change credit, each carrying
 * what the others cannot), by the one rule (billing/invoices.ts `paidStatus`), once what disputes
 * took of `invoiceId`'s payments changed (payments/disputes.ts `recordDispute`: a dispute whose
 * funds were withdrawn opened, won, lost): what each kept changed, and so may the change credit each
 * carries. Only an invoice that gave money back (PARTIALLY_REFUNDED, REFUNDED) is worked again, so a
 * dispute alone leaves a PAID invoice PAID. This is the one way a status goes back besides a refund
 * reversed (`reverseRefund`): an invoice made REFUNDED while a dispute was open, counting it as given
 * back (its own cash, or the change credit it carried because the disputed invoice kept nothing), is
 * PARTIALLY_REFUNDED again once the dispute is won (the money is the merchant's again). Each status
 * changed logs `invoice.status_changed` (`from`, `status`, `because`: the dispute's id). Locks the
 * invoices (`lockInvoice`: the subscription first, then `invoiceId`, then the others in id order).
 * @throws NotFoundError when there is no invoice `invoiceId`
 */
export async function statusesWorkedAgain(
  work: UnitOfWork,
  invoiceId: string,
  because: string,
): Promise<void> {
  const invoice = await lockInvoice(work, invoiceId);
  const others =
    invoice.subscription_id !== null && invoice.period_end !== null
      ? await work.trx
          .selectFrom('invoices')
          .select('id')
          .where('subscription_id', '=', invoice.subscription_id)
          .where('period_end', '=', invoice.period_end)
          .where('id', '!=', invoiceId)
          .where('status', 'in', GAVE_BACK)
          .orderBy('id')
          .execute()
      : [];
  for (const id of [invoiceId, ...others.map((row) => row.id)]) {
    const row = id === invoiceId ? invoice : await lockInvoice(work, id);
    if (!GAVE_BACK.includes(row.status)) continue;
    const carried = (await periodCreditToCustomer(work.trx, row)).total;
    const status = paidStatus(row, carried, await disputedAway(work.trx, id));
    if (status === row.status) continue;
    await work.trx
      .updateTable('invoices')
      .set({ status, updated_at: new Date() })
      .where('id', '=', id)
      .execute();
    await invoiceActivity(work, row, 'invoice.status_changed', { from: row.status, status, because });
  }
}
