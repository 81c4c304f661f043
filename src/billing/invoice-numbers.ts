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
 * PostgreSQL sequence is not: `nextval` is never rolled back). Call it once per invoice, after the
 * invoice's own row lock (the order every finalization takes).
 * @param prefix 1–12 upper-case letters or digits (the customers table checks a customer's own)
 */
export async function nextInvoiceNumber(work: UnitOfWork, prefix: string): Promise<string> {
  const { rows } = await sql<{ last_number: string }>`
    INSERT INTO invoice_number_counters (prefix, last_number) VALUES (${prefix}, 1)
    ON CONFLICT (prefix) DO UPDATE SET last_number = invoice_number_counters.last_number + 1
    RETURNING last_number::text
  `.execute(work.trx);
  return `${prefix}-${rows[0]!.last_number.padStart(NUMBER_DIGITS, '0')}`;
}
