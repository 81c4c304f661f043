import { sql } from 'kysely';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';

/** The prefix of an invoice number when the customer has none of their own. */
export const DEFAULT_INVOICE_PREFIX = 'INV';

/** Digits of the counter in an invoice number, zero-padded (`INV-000123`); longer counters keep every digit. */
const NUMBER_DIGITS = 6;

/**
 * The next invoice number of `prefix` (`INV` → `INV-000124`), taken inside `work`, the unit that
 * finalizes the invoice. The prefix's counter row is created or incremented with one upsert, which
 * locks it until `work` ends: a concurrent finalization with the same prefix waits, and a
 * finalization that rolls back gives its number back, so the numbers of a prefix are gap-free (a
 * PostgreSQL sequence is not: `nextval` is never rolled back).
 * @param prefix 1–12 upper-case letters or digits (the customers table checks a customer's own)
 */
async function nextInvoiceNumber(work: UnitOfWork, prefix: string): Promise<string> {
  const { rows } = await sql<{ last_number: string }>`
    INSERT INTO invoice_number_counters (prefix, last_number) VALUES (${prefix}, 1)
    ON CONFLICT (prefix) DO UPDATE SET last_number = invoice_number_counters.last_number + 1
    RETURNING last_number::text
  `.execute(work.trx);
  return `${prefix}-${rows[0]!.last_number.padStart(NUMBER_DIGITS, '0')}`;
}

/**
 * Numbers invoice `invoiceId` (finalized in `work`) at the end of `work`, just before its commit
 * (`UnitOfWork.atEnd`): every finalization of a prefix waits for its counter row, so the row is
 * locked as late as possible and held only for the commit, not through the rest of the unit (a
 * renewal catching up on several periods, say). Invoices finalized in one unit are numbered in the
 * order they were finalized.
 */
export function numberAtEnd(work: UnitOfWork, invoiceId: string, prefix: string): void {
  work.atEnd(async () => {
    const number = await nextInvoiceNumber(work, prefix);
    await work.trx.updateTable('invoices').set({ number }).where('id', '=', invoiceId).execute();
  });
}
