import { type Kysely, sql } from 'kysely';
import type { Database, TransactionRow } from '../db/schema.ts';

/**
 * The payments a cash refund of invoice `invoiceId` may go back through: its succeeded gateway
 * transactions (`gateway_transaction_id` set), newest first (creation time, then id; reads
 * `transactions`, owned by payments/). A refund by hand (payments/refunds.ts `prepareInvoiceRefund`:
 * one of them) and a cancellation's refund (billing/cancellation.ts `refundOf`: split over them by
 * `splitRefund`) both ask here, so a cancellation checks the very payments its cash refunds are then
 * sent on. Read it under the invoice's lock (`lockInvoice`).
 * @returns the payments, none when no gateway took a payment of the invoice
 */
export function invoicePayments(trx: Kysely<Database>, invoiceId: string): Promise<TransactionRow[]> {
  return trx
    .selectFrom('transactions')
    .selectAll()
    .where('invoice_id', '=', invoiceId)
    .where('status', '=', 'succeeded')
    .where('gateway_transaction_id', 'is not', null)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .execute();
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
 * by payments/; `refundRooms` for one transaction). A refund (payments/refunds.ts `createRefund`) and a
 * cancellation's cash part (billing/cancellation.ts `refundOf`) are bounded by it.
 */
export async function refundable(trx: Kysely<Database>, transaction: TransactionRow): Promise<bigint> {
  const [only] = await refundRooms(trx, [transaction]);
  return only!.room;
}

/**
 * The sum of an invoice's refunds still in flight (`pending` or `unknown`), minor units of its
 * currency: what they may yet give back (reads `refunds`, owned by payments/). Read it under the
 * invoice's lock (`lockInvoice`), as `refundsInFlight`.
 */
export async function refundedInFlight(trx: Kysely<Database>, invoiceId: string): Promise<bigint> {
  const row = await trx
    .selectFrom('refunds')
    .select(sql<string>`coalesce(sum(amount), 0)::text`.as('amount'))
    .where('invoice_id', '=', invoiceId)
    .where('status', 'in', ['pending', 'unknown'])
    .executeTakeFirstOrThrow();
  return BigInt(row.amount);
}

/**
 * What disputes took away of invoice `invoiceId`'s payments and have not given back, minor units of
 * its currency, ≥ 0 (reads `disputes` and `transactions`, owned by payments/; payments/disputes.ts
 * books them): the amount of each dispute whose funds the gateway withdrew and still holds (`open`)
 * or gave the customer (`lost`), not a lost one a refund carried (`refund_id` set: that refund
 * counts already, `settleLostDisputeByRefund`); a won dispute gave its funds back, an inquiry never
 * withdrew any. The money went back to the customer (or may yet, while open), so what an invoice
 * kept counts it as given back of the sale, as a refund: its period's change credit is carried
 * elsewhere (billing/proration.ts `periodInvoices`), a refund by hand (billing/credit-returns.ts
 * `wholeRefund`) and a cancellation's refund (billing/cancellation.ts `refundOf`) give back no more
 * than the rest. Read it under the invoice's lock (`lockInvoice`).
 */
export async function disputedAway(trx: Kysely<Database>, invoiceId: string): Promise<bigint> {
  const row = await trx
    .selectFrom('disputes as d')
    .innerJoin('transactions as t', 't.id', 'd.transaction_id')
    .select(sql<string>`coalesce(sum(d.amount), 0)::text`.as('amount'))
    .where('t.invoice_id', '=', invoiceId)
    .where((eb) =>
      eb.or([
        eb('d.status', '=', 'open'),
        eb.and([eb('d.status', '=', 'lost'), eb('d.refund_id', 'is', null)]),
      ]),
    )
    .executeTakeFirstOrThrow();
  return BigInt(row.amount);
}

/**
 * An invoice's charges still in flight (`pending` or `unknown`), by id (reads `transactions`, owned by
 * payments/): what the gateway may yet take for it, so what is left due is not known. Read it under
 * the invoice's lock (`lockInvoice`). A void, a new charge and a change's credit over the invoice
 * each refuse while there is one.
 */
export function chargesInFlight(
  trx: Kysely<Database>,
  invoiceId: string,
): Promise<Pick<TransactionRow, 'id' | 'status'>[]> {
  return trx
    .selectFrom('transactions')
    .select(['id', 'status'])
    .where('invoice_id', '=', invoiceId)
    .where('status', 'in', ['pending', 'unknown'])
    .orderBy('id')
    .execute();
}

/** A payment and what is still refundable on it (`refundable`), minor units of its currency. */
export interface RefundRoom {
  transaction: TransactionRow;
  room: bigint;
}

/** One refund of a split (`splitRefund`): `amount` minor units (> 0) back through `transaction`. */
export interface RefundPart {
  transaction: TransactionRow;
  amount: bigint;
}

/**
 * What is still refundable on each of `payments` (`refundable`: what it moved less its refunds
 * succeeded or in flight), in their order, read in one statement. Read under the lock of their
 * invoices (`lockInvoice`), which every refund of them takes, so it stays true until commit.
 */
export async function refundRooms(trx: Kysely<Database>, payments: TransactionRow[]): Promise<RefundRoom[]> {
  if (payments.length === 0) return [];
  const rows = await trx
    .selectFrom('refunds')
    .select(['transaction_id', sql<string>`coalesce(sum(amount), 0)::text`.as('reserved')])
    .where(
      'transaction_id',
      'in',
      payments.map((t) => t.id),
    )
    .where('status', '!=', 'failed')
    .groupBy('transaction_id')
    .execute();
  const reserved = new Map(rows.map((row) => [row.transaction_id, BigInt(row.reserved)]));
  return payments.map((transaction) => ({
    transaction,
    room: capturedAmount(transaction) - (reserved.get(transaction.id) ?? 0n),
  }));
}

/** What `rooms` can refund together, minor units: the sum of their rooms above 0 (what `splitRefund` can place). */
export function totalRoom(rooms: readonly RefundRoom[]): bigint {
  return rooms.reduce((sum, { room }) => (room > 0n ? sum + room : sum), 0n);
}

/**
 * How `amount` (minor units, ≥ 0) goes back through payments given with their room (`refundRooms`,
 * in the order to use them: newest first), pure: each takes up to its room, until `amount` is
 * covered; a payment with no room left (≤ 0) is skipped. A customer-credit refund
 * (payments/credit-refunds.ts) and a cancellation's cash part (billing/cancellation.ts `refundOf`)
 * split this way.
 * @returns the parts, each > 0, in the rooms' order; they add up to less than `amount` when the
 * rooms cannot carry it all (the caller refuses the shortfall)
 */
export function splitRefund(rooms: readonly RefundRoom[], amount: bigint): RefundPart[] {
  const parts: RefundPart[] = [];
  let left = amount;
  for (const { transaction, room } of rooms) {
    if (left <= 0n) break;
    if (room <= 0n) continue;
    // min(left, room), on bigints (Math.min takes numbers only).
    let part = left;
    if (part > room) part = room;
    parts.push({ transaction, amount: part });
    left -= part;
  }
  return parts;
}
