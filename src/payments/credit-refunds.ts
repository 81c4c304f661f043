import type { Kysely } from 'kysely';
import type { PgBoss } from 'pg-boss';
import type { GatewayClients } from '../accounts/clients.ts';
import { creditAvailability, lockCustomerCredit } from '../billing/customer-credit.ts';
import { refundRooms, splitRefund } from '../billing/invoice-payment.ts';
import { lockInvoice, lockInvoiceSubscriptions } from '../billing/invoices.ts';
import type { Db } from '../db/database.ts';
import type { Database, RefundRow, TransactionRow } from '../db/schema.ts';
import { ConflictError, ValidationError } from '../errors.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { askRefundAccounts, prepareRefunds, sendRefunds } from './refunds.ts';
import { lockPayments } from './transactions.ts';

/** What to pay back of a customer's credit: minor units of `currency`, and why. */
export interface CreditRefundInput {
  amount: bigint;
  currency: string;
  reason?: string;
}

/**
 * Pays back `amount` of customer `customerId`'s credit in `currency` (PRODUCT §11) the way the money
 * came in: as refunds (`kind: customer_credit`, no invoice) of their most recent succeeded gateway
 * payments in that currency, newest first, each up to what is still refundable on it (`splitRefund`
 * in billing/invoice-payment.ts, as a cancellation splits its cash part), through the
 * existing refund machinery (committed `pending` first, sent with the refund id as idempotency key,
 * an unknown answer retried by the `invoice.refund` queue). In flight, a refund holds its amount of
 * the credit (`availableCredit`); once it succeeds it posts `re_…:succeeded` (debit the customer's
 * credit, credit the gateway's clearing account), and nothing on any invoice changes. Money that
 * cannot go back through a gateway (credit larger than the customer's refundable payments) is refused,
 * not paid out some other way: a person settles it offline. Locks the subscriptions of the invoices of
 * the payments it uses, then those invoices (each in id order), then its payments without an invoice
 * (`lockPayments`), then the customer's credit: the order every unit of work keeps (`lockInvoice`).
 * @returns the refunds as recorded after their gateway answers, newest payment first
 * @throws NotFoundError when there is no such customer; ConflictError `credit_held_by_dispute` when
 * the amount exceeds the credit available but not what it would be were the disputes that hold some of
 * it won (`availableWithoutDisputes`: a dispute's loss takes that overpayment back; its win releases
 * it), naming them and what can be refunded now; ValidationError (field `amount`) when the amount
 * exceeds the customer's credit in `currency` otherwise, or what their gateway payments can still refund;
 * ConflictError `gateway_not_configured` for a payment's gateway without credentials,
 * `gateway_account_disabled` for a payment on a disabled gateway account
 */
export async function refundCustomerCredit(
  db: Db,
  actor: Actor,
  boss: PgBoss,
  gateways: GatewayClients,
  customerId: string,
  input: CreditRefundInput,
): Promise<RefundRow[]> {
  // The accounts' currencies are asked before anything is locked (an HTTP call: askRefundAccounts).
  const accounts = await askRefundAccounts(db, gateways, customerId);
  const planned = await inUnitOfWork(db, { actor }, async (work) => {
    // Every unit of work locks subscriptions, then invoices, then the customer (an invoice's
    // finalization locks the customer after the invoice, a cancellation its subscription and period's
    // invoice before the final invoice's finalization): the subscriptions of the invoices of the
    // payments this refund would use are locked first, then those invoices, each in id order, then
    // the customer's credit; another order could deadlock (40P01) against either.
    // A payment without an invoice is locked itself (createRefund reads its room under that lock),
    // after the invoices and before the customer, as a batch of webhooks locks payments ahead.
    const payments = await creditRefundCandidates(work.trx, customerId, input.currency);
    const invoiceIds = new Set<string>();
    const alone = new Set<string>();
    for (const { transaction } of splitRefund(await refundRooms(work.trx, payments), input.amount)) {
      if (transaction.invoice_id) invoiceIds.add(transaction.invoice_id);
      else alone.add(transaction.id);
    }
    await lockInvoiceSubscriptions(work, [...invoiceIds]);
    for (const id of [...invoiceIds].sort()) await lockInvoice(work, id);
    await lockPayments(work, [...alone]);
    await lockCustomerCredit(work.trx, customerId);
    const { available, heldByDisputes, disputes, availableWithoutDisputes } = await creditAvailability(
      work,
      customerId,
      input.currency,
    );
    // Beyond what the disputes' release would free too: short of credit (422 below), not held.
    if (input.amount > available && input.amount <= availableWithoutDisputes && heldByDisputes > 0n) {
      const c = input.currency;
      throw new ConflictError(
        'credit_held_by_dispute',
        `a refund of ${input.amount} ${c} of customer ${customerId}'s credit needs credit that is held: ${heldByDisputes} ${c} of their credit is held by open disputes (${disputes.join(', ')}) of payments of their overpaid invoices, whose loss takes that overpayment back from their credit (won, it is theirs again; a PayPal claim lost holds it until the refund paying it comes). Nothing changed; refund at most ${available} ${c} now, or again once the disputes are decided`,
      );
    }
    if (input.amount > available) {
      throw new ValidationError('refund exceeds the customer credit', {
        amount: `at most ${available} can be refunded (the customer's ${input.currency} credit, minor units)`,
      });
    }
    // Again under the locks, over the payments locked (through their invoice or themselves): what is
    // refundable on them stays true until commit. One whose refundable amount a concurrent refund
    // took meanwhile counts for less, and the shortfall is refused below.
    const locked = payments.filter((t) => (t.invoice_id ? invoiceIds.has(t.invoice_id) : alone.has(t.id)));
    const parts = splitRefund(await refundRooms(work.trx, locked), input.amount);
    const covered = parts.reduce((sum, part) => sum + part.amount, 0n);
    if (covered < input.amount) {
      throw new ValidationError('credit exceeds refundable payments', {
        amount: `at most ${covered} can go back through the customer's ${input.currency} gateway payments`,
      });
    }
    return prepareRefunds(
      work,
      gateways,
      parts,
      {
        reason: input.reason ?? 'customer_credit',
        creditOf: customerId,
      },
      accounts,
    );
  });
  return sendRefunds(db, actor, boss, gateways, planned);
}

/**
 * The customer's succeeded gateway payments in `currency` (theirs, or of their invoices), newest
 * first: what a credit refund may go back through.
 */
function creditRefundCandidates(
  trx: Kysely<Database>,
  customerId: string,
  currency: string,
): Promise<TransactionRow[]> {
  return trx
    .selectFrom('transactions')
    .selectAll()
    .where((eb) =>
      eb.or([
        eb('customer_id', '=', customerId),
        eb('invoice_id', 'in', eb.selectFrom('invoices').select('id').where('customer_id', '=', customerId)),
      ]),
    )
    .where('status', '=', 'succeeded')
    .where('currency', '=', currency)
    .where('gateway_transaction_id', 'is not', null)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .execute();
}
