import { type Kysely, sql } from 'kysely';
import type { Database, TransactionRow } from '../db/schema.ts';

/**
 * The payment a cash refund of invoice `invoiceId` goes back through: its latest succeeded
 * transaction (reads `transactions`, owned by payments/). A refund by hand (payments/refunds.ts
 * `prepareInvoiceRefund`) and a cancellation's refund (billing/cancellation.ts `refundOf`) both ask
 * here, so the cancellation checks the very payment its cash refund is then sent on.
 * @returns the transaction, or undefined when none succeeded; its `gateway_transaction_id` is null
 * when no gateway took it (then there is no gateway payment to refund)
 */
export async function invoicePayment(
  trx: Kysely<Database>,
  invoiceId: string,
): Promise<TransactionRow | undefined> {
  return trx
    .selectFrom('transactions')
    .selectAll()
    .where('invoice_id', '=', invoiceId)
    .where('status', '=', 'succeeded')
    .orderBy('created_at', 'desc')
    .executeTakeFirst();
}

/**
 * The ids of the refunds still in flight (`pending` or `unknown`: committed or sent, not settled)
 * against any payment of invoice `invoiceId`, oldest first: refunds of the invoice and refunds of
 * customer credit carried by its payments (reads `refunds`, owned by payments/). Read it under the
 * invoice's lock (`lockInvoice`): a refund billhook asks for is created under that lock (by hand,
 * a cancellation's, a customer-credit refund's). A refund made in the gateway's own dashboard is
 * recorded when its webhook is reconciled (reconcile/apply.ts), which locks the invoice only when
 * it records the outcome: the money has moved at the gateway by then, so no lock could refuse it, and
 * a cancellation committed just before it may give back that share too.
 */
export async function refundsInFlight(trx: Kysely<Database>, invoiceId: string): Promise<string[]> {
  const rows = await trx
    .selectFrom('refunds')
    .innerJoin('transactions', 'transactions.id', 'refunds.transaction_id')
    .select('refunds.id')
    .where('transactions.invoice_id', '=', invoiceId)
    .where('refunds.status', 'in', ['pending', 'unknown'])
    .orderBy('refunds.created_at')
    .orderBy('refunds.id')
    .execute();
  return rows.map((r) => r.id);
}

/**
 * What a transaction moved, in minor units of its currency: `amount_captured` after a partial capture,
 * else its whole `amount` (only meaningful once it succeeded). Refunds, disputes and the ledger count this.
 */
export function capturedAmount(transaction: Pick<TransactionRow, 'amount' | 'amount_captured'>): bigint {
  return transaction.amount_captured ?? transaction.amount;
}

/**
 * What is still refundable on a transaction: what it moved (`capturedAmount`: its amount, or what a
 * partial capture captured) less every refund on it that succeeded or is still in flight (pending,
 * unknown), of its invoice or of customer credit it carried, in minor units (reads `refunds`, owned
 * by payments/). A refund (payments/refunds.ts `createRefund`) and a cancellation's cash part
 * (billing/cancellation.ts `refundOf`) are bounded by it.
 */
export async function refundable(trx: Kysely<Database>, transaction: TransactionRow): Promise<bigint> {
  const row = await trx
    .selectFrom('refunds')
    .select(sql<bigint>`coalesce(sum(amount), 0)`.as('reserved'))
    .where('transaction_id', '=', transaction.id)
    .where('status', '!=', 'failed')
    .executeTakeFirstOrThrow();
  return capturedAmount(transaction) - BigInt(row.reserved);
}
