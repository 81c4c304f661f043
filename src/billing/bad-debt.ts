import type { Db } from '../db/database.ts';
import { ConflictError } from '../errors.ts';
import { postEntry } from '../ledger/journal.ts';
import { badDebtWrittenOff } from '../ledger/movements.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { getInvoice, type InvoiceWithLines, invoiceActivity, lockInvoice, writeOffsOf } from './invoices.ts';
import { reinstateAfterWriteOff } from './reinstate.ts';
import { DEFAULT_RENEWAL_POLICY, type RenewalPolicy } from './renewal.ts';

/**
 * OPEN → UNCOLLECTIBLE: writes the unpaid amount off as bad debt (`inv_…:uncollectible`: debit bad
 * debt, credit the customer's receivable; an invoice written off before, recovered and OPEN again
 * since its recovering payment was voided, under a key of its own: `writeOffsOf`) and stops
 * scheduled charges. `amount_due` keeps the unpaid
 * amount, still owed: a payment that arrives later (a late gateway success, an offline payment)
 * reverses the write-off for what it pays (`applyPayment`) and can make the invoice PAID. Nobody
 * collects it any more, so a subscription PAST_DUE (or SUSPENDED by dunning) only because of its
 * failed charges becomes ACTIVE in the same unit (`reinstateAfterWriteOff`, resuming as `policy` says).
 * @throws NotFoundError for a missing invoice; ConflictError `invoice_not_open` from any other state
 */
export async function markUncollectible(
  db: Db,
  actor: Actor,
  id: string,
  now: Date,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<InvoiceWithLines> {
  await inUnitOfWork(db, { actor }, async (work) => {
    const invoice = await lockInvoice(work, id);
    if (invoice.status !== 'OPEN') {
      throw new ConflictError(
        'invoice_not_open',
        `invoice ${id} is ${invoice.status}; only an OPEN invoice can be marked uncollectible`,
      );
    }
    await postEntry(
      work,
      badDebtWrittenOff({
        invoiceId: id,
        customerId: invoice.customer_id,
        currency: invoice.currency,
        amount: invoice.amount_due,
        writeOff: (await writeOffsOf(work.trx, id)) + 1,
      }),
    );
    await work.trx
      .updateTable('invoices')
      .set({ status: 'UNCOLLECTIBLE', uncollectible_at: now, charge_at: null, updated_at: now })
      .where('id', '=', id)
      .execute();
    await invoiceActivity(work, invoice, 'invoice.marked_uncollectible', {
      written_off: invoice.amount_due,
      currency: invoice.currency,
    });
    if (invoice.subscription_id) await reinstateAfterWriteOff(work, invoice.subscription_id, id, now, policy);
  });
  return getInvoice(db, id);
}
