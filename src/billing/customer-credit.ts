import { type Kysely, sql } from 'kysely';
import type { Database, InvoiceRow } from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';
import { chart } from '../ledger/chart.ts';
import { postEntry } from '../ledger/journal.ts';
import {
  customerCreditApplied,
  customerCreditReturned,
  entryKeys,
  prorationCreditVoided,
} from '../ledger/movements.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { overpaymentsHeld } from './credit-notes.ts';

/**
 * A customer's credit (PRODUCT §11): money we owe them, per currency, in their `customer_credit:<id>`
 * ledger account (a liability; its credit balance is the credit). It comes from a downgrade's
 * proration credit (with its tax), from payments beyond what an invoice asked (overpayments) and from
 * a cancellation's refund of the credit that paid its period (billing/credit-returns.ts); it
 * is taken off the customer's next invoices when they are finalized, whatever subscription (or none)
 * they bill, and can be paid back (`refundCustomerCredit`, payments/credit-refunds.ts). It is a
 * payment-like balance, as Stripe's customer balance and Chargebee's credits: applying it does not
 * change an invoice's subtotal, tax or total, only what is left due.
 */

/**
 * Locks customer `customerId`'s row inside `trx` (`FOR NO KEY UPDATE`, which does not wait for the
 * key-share locks that inserting their invoices takes), so that uses of their credit (an invoice's
 * finalization, a credit refund) serialise. The customer comes last in the lock order every unit of
 * work keeps: subscription → invoices (id order) → customer (`lockInvoice`); nothing locks a
 * subscription or an invoice after it.
 * @throws NotFoundError when there is no customer `customerId`
 */
export async function lockCustomerCredit(trx: Kysely<Database>, customerId: string): Promise<void> {
  const row = await trx
    .selectFrom('customers')
    .select('id')
    .where('id', '=', customerId)
    .forNoKeyUpdate()
    .executeTakeFirst();
  if (!row) throw new NotFoundError('customer', customerId);
}

/**
 * Which refunds in flight `availableCredit` takes off a customer's credit: `all` of them, for credit
 * about to be spent (an invoice's finalization, a refund being created); only `credit_refunds` for
 * the debit of a refund of an overpaid invoice as it succeeds (payments/refunds.ts
 * `recordRefundResult`): the money has moved, and is checked against the credit there, so the
 * refund that leaves it in debit is the one flagged, not one that succeeds while others, which may
 * yet fail, hold credit.
 */
export type CreditHolds = 'all' | 'credit_refunds';

/** What `creditAvailability` finds of a customer's credit in one currency, minor units. */
export interface CreditAvailability {
  /** What they can use now, ≥ 0 (`availableCredit`). */
  available: bigint;
  /**
   * What open disputes of their overpaid invoices hold of it (`overpaymentsHeld`'s `byDisputes`;
   * 0 with holds `credit_refunds`): the credit `available` would show once those disputes are won.
   */
  heldByDisputes: bigint;
  /** Those disputes (`dp_…`). */
  disputes: string[];
  /**
   * What they could use were those disputes won (their holds released), ≥ `available`: a request
   * beyond it is refused for want of credit, not because disputes hold it.
   */
  availableWithoutDisputes: bigint;
}

/**
 * The credit customer `customerId` can use in `currency`, minor units ≥ 0: their credit account's
 * balance less what refunds still in flight (pending or unknown) will pay back of it when they
 * succeed: refunds of customer credit, and (`holds` `all`, the default) refunds of their overpaid
 * invoices as far as they pay back the overpayment, and the open disputes of those invoices' payments
 * as far as their loss would take the overpayment back (`overpaymentsHeld`, billing/credit-notes.ts).
 * Each holds that credit from its creation (a dispute from its opening: released when it is won),
 * so it is neither applied to an invoice nor paid back twice meanwhile. In a deferring unit of work
 * (a webhook batch) the balance counts the entries the unit posted and has not written yet: they
 * are written first (`UnitOfWork.writeLedger`). Call it after `lockCustomerCredit` when the answer is
 * about to be spent.
 */
export async function availableCredit(
  work: UnitOfWork,
  customerId: string,
  currency: string,
  holds: CreditHolds = 'all',
): Promise<bigint> {
  return (await creditAvailability(work, customerId, currency, holds)).available;
}

/**
 * `availableCredit` with what open disputes hold of the credit beside it, for a refusal that names
 * them (a credit refund, a refund of an overpaid invoice: 409 `credit_held_by_dispute`).
 */
export async function creditAvailability(
  work: UnitOfWork,
  customerId: string,
  currency: string,
  holds: CreditHolds = 'all',
): Promise<CreditAvailability> {
  await work.writeLedger();
  return creditAvailableIn(work.trx, customerId, currency, holds);
}

/**
 * `availableCredit` read in `trx` as its ledger stands (no unit of work's unwritten entries): what a
 * preview shows finalization would apply (billing/preview.ts `withRounding`), with what open
 * disputes hold beside it (`creditAvailability`'s shape). Minor units ≥ 0.
 */
export async function creditAvailableIn(
  trx: Kysely<Database>,
  customerId: string,
  currency: string,
  holds: CreditHolds = 'all',
): Promise<CreditAvailability> {
  // One statement for a customer without credit: it runs in every invoice's finalization.
  const { rows } = await sql<{ available: string }>`
    SELECT (
      SELECT coalesce(-sum(p.amount), 0) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
      WHERE a.code = ${chart.customerCredit(customerId).code} AND a.currency = ${currency}
    ) - (
      SELECT coalesce(sum(amount), 0) FROM refunds
      WHERE kind = 'customer_credit' AND customer_id = ${customerId} AND currency = ${currency}
        AND status IN ('pending', 'unknown')
    ) AS available
  `.execute(trx);
  const available = BigInt(rows[0]?.available ?? 0);
  const none = { available: 0n, heldByDisputes: 0n, disputes: [], availableWithoutDisputes: 0n };
  if (available <= 0n) return none;
  if (holds === 'credit_refunds') return { ...none, available, availableWithoutDisputes: available };
  const [held] = await overpaymentsHeld(trx, [customerId], currency);
  const byDisputes = held?.byDisputes ?? 0n;
  const left = available - (held?.held ?? 0n);
  return {
    available: left > 0n ? left : 0n,
    heldByDisputes: byDisputes,
    disputes: held?.disputes ?? [],
    availableWithoutDisputes: left + byDisputes > 0n ? left + byDisputes : 0n,
  };
}

/**
 * Takes the customer's available credit off an invoice being finalized (locked, total > 0), inside
 * the finalizing transaction: up to the invoice's total, posted as `inv_…:credit_applied` (debit the
 * customer's credit, credit their receivable). The customer is locked only when they have credit
 * (read again under the lock), so the invoices of customers without credit never wait on each other;
 * credit that arrives meanwhile is left for their next invoice.
 * @returns the credit applied, minor units (0 when they have none in the invoice's currency)
 */
export async function applyCustomerCredit(
  work: UnitOfWork,
  invoice: Pick<InvoiceRow, 'id' | 'customer_id' | 'currency' | 'total'>,
): Promise<bigint> {
  if ((await availableCredit(work, invoice.customer_id, invoice.currency)) === 0n) return 0n;
  await lockCustomerCredit(work.trx, invoice.customer_id);
  const available = await availableCredit(work, invoice.customer_id, invoice.currency);
  let used = available;
  if (used > invoice.total) used = invoice.total;
  if (used > 0n) {
    await postEntry(
      work,
      customerCreditApplied({
        invoiceId: invoice.id,
        customerId: invoice.customer_id,
        currency: invoice.currency,
        amount: used,
      }),
    );
  }
  return used;
}

/**
 * Gives an invoice's applied credit back to its customer when the invoice is voided
 * (`inv_…:credit_returned`: debit the receivable, credit the customer's credit).
 */
export async function returnAppliedCredit(
  work: UnitOfWork,
  invoice: Pick<InvoiceRow, 'id' | 'customer_id' | 'currency' | 'credit_applied'>,
): Promise<void> {
  if (invoice.credit_applied <= 0n) return;
  await postEntry(
    work,
    customerCreditReturned({
      invoiceId: invoice.id,
      customerId: invoice.customer_id,
      currency: invoice.currency,
      amount: invoice.credit_applied,
    }),
  );
}

/**
 * Undoes, when invoice `invoice` is voided, what prorated changes credited to it while it was owed
 * (`proration_credited` > 0: billing/proration.ts): its `inv_…:proration_credited:<n>` entries read
 * back and reversed in one (`prorationCreditVoided`: debit the receivable, credit revenue and tax
 * payable by what they debited), so the void reverses the invoice as it stood and that credit, for
 * time never paid, goes nowhere, least of all to the customer's credit.
 */
export async function undoProrationCredit(
  work: UnitOfWork,
  invoice: Pick<InvoiceRow, 'id' | 'customer_id' | 'currency' | 'proration_credited'>,
): Promise<void> {
  if (invoice.proration_credited <= 0n) return;
  const rows = await work.trx
    .selectFrom('journal_entries as e')
    .innerJoin('postings as p', 'p.journal_entry_id', 'e.id')
    .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
    .select(['a.code', sql<string>`sum(p.amount)::text`.as('amount')])
    .where('e.source_type', '=', 'invoice')
    .where('e.source_id', '=', invoice.id)
    .where(
      sql<boolean>`starts_with(e.idempotency_key, ${entryKeys.prorationCreditedOnInvoicePrefix(invoice.id)})`,
    )
    .where('a.code', 'in', [chart.revenue.code, chart.taxPayable.code])
    .groupBy('a.code')
    .execute();
  // Each entry debited revenue and tax payable (> 0); the movement takes them as credits (≤ 0).
  const debited = (code: string) => BigInt(rows.find((r) => r.code === code)?.amount ?? 0);
  const subtotal = -debited(chart.revenue.code);
  const tax = -debited(chart.taxPayable.code);
  await postEntry(
    work,
    prorationCreditVoided({
      invoiceId: invoice.id,
      customerId: invoice.customer_id,
      currency: invoice.currency,
      subtotal,
      tax,
      total: subtotal + tax,
    }),
  );
}
