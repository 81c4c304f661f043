import { type Kysely, type RawBuilder, sql } from 'kysely';
import { GATEWAYS } from '../config/gateways.ts';
import type { Database, InvoiceRow, TransactionRow } from '../db/schema.ts';
import { capabilitiesOf } from '../gateways/registry.ts';

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
 * What is still refundable on a transaction (`refundRooms` for one transaction): what it moved
 * (`capturedAmount`: its amount, or what a partial capture captured) less every refund on it that
 * succeeded or is still in flight (pending, unknown), of its invoice or of customer credit it
 * carried, less, for a refund billhook asks (`of` `billhook`), what disputes took of it and hold or
 * lost (`disputedAwayOf`), in minor units. A refund (payments/refunds.ts `createRefund`) and a
 * cancellation's cash part (billing/cancellation.ts `refundOf`) are bounded by it.
 */
export async function refundable(
  trx: Kysely<Database>,
  transaction: TransactionRow,
  of: RoomFor = 'billhook',
): Promise<bigint> {
  const [only] = await refundRooms(trx, [transaction], of);
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
 * What of invoice `invoice`'s cash a refund billhook sends may still give back, minor units of its
 * currency (may be ≤ 0): paid, less refunded, less given to the customer's credit for want of a
 * gateway step (`cash_credited`), less refunds in flight (`refundedInFlight`). Stripe KWD 1000 paid,
 * 660 refunded and 7 credited: 333. Read it under the invoice's lock (`lockInvoice`).
 */
export async function cashRoom(
  trx: Kysely<Database>,
  invoice: Pick<InvoiceRow, 'id' | 'amount_paid' | 'amount_refunded' | 'cash_credited'>,
): Promise<bigint> {
  return (
    invoice.amount_paid -
    invoice.amount_refunded -
    invoice.cash_credited -
    (await refundedInFlight(trx, invoice.id))
  );
}

/** The gateways paying a lost dispute by a refund of its payment (`lostDisputePaidAsRefund`: PayPal). */
export const LOSS_PAID_BY_REFUND: readonly string[] = GATEWAYS.filter(
  (gateway) => capabilitiesOf(gateway).lostDisputePaidAsRefund,
);

/**
 * SQL condition on the disputes row aliased `d`: a dispute on a gateway paying lost disputes by a
 * refund of the payment (`LOSS_PAID_BY_REFUND`: PayPal's claims), not reversed (a chargeback is no
 * refund), with a succeeded refund of its payment for exactly its amount that carries no dispute
 * (`refunds.status` succeeded, no `disputes.refund_id` naming it): the refund its loss will be paired
 * with (payments/disputes.ts `refundCarrying`), PayPal refunding the buyer before resolving the
 * claim. Only a refund billhook did not send (`refunds.sent_by_billhook` false: PayPal's own, paying
 * the claim, or one made in PayPal's dashboard or Resolution Center) is taken for the claim's: a
 * refund billhook sends (by hand, a cancellation's) is a refund of the payment, which PayPal does not
 * take as settling the claim unless the merchant resolves it there (accept claim, or a refund shown as
 * `PROOF_OF_REFUND` evidence, Disputes API provide-evidence); before, JPY 1000 paid, a claim of 400
 * open and 400 refunded by hand for a partial return: the claim counted as paid, 600 refundable
 * instead of 200. Such a claim, still open, takes nothing of its own beside that refund: neither the payment's
 * refundable room (`disputedAwayOf`) nor the customer's overpayment credit (billing/credit-notes.ts
 * `disputeHolds`). One refund is one claim's: of several open claims of the payment for the same
 * amount, only as many as there are such refunds (the oldest ids first) are taken as paid (before,
 * one refund of 400 freed two open claims of 400: JPY 1000 paid, 600 refundable by hand, not 200).
 * Refunds of another amount are not taken for it (they still count, and the claim too). Reads
 * `refunds` and `disputes` (owned by payments/).
 */
export function claimRefundCameFirst(): RawBuilder<boolean> {
  return sql<boolean>`(d.gateway = ANY(${[...LOSS_PAID_BY_REFUND]}::text[]) AND NOT d.reversed AND (
      SELECT count(*) FROM refunds hr WHERE hr.transaction_id = d.transaction_id AND hr.status = 'succeeded'
        AND hr.amount = d.amount AND NOT hr.sent_by_billhook AND NOT EXISTS (SELECT 1 FROM disputes hd WHERE hd.refund_id = hr.id)
    ) >= (
      SELECT count(*) FROM disputes od WHERE od.transaction_id = d.transaction_id AND od.status = 'open'
        AND od.amount = d.amount AND NOT od.reversed AND od.id <= d.id
    ))`;
}

/**
 * What disputes took away of invoice `invoiceId`'s payments and have not given back, minor units of
 * its currency, ≥ 0 (reads `disputes` and `transactions`, owned by payments/; payments/disputes.ts
 * books them): the sum over its payments of `disputedAwayOf` (the amount of each dispute whose funds
 * the gateway withdrew and still holds, `open`, or gave the customer, `lost`, not a lost one a refund
 * carried, nor an open PayPal claim whose refund came first: `claimRefundCameFirst`). The money went back to the customer (or may yet, while open), so what an invoice kept
 * counts it as given back of the sale, as a refund: its period's change credit is carried elsewhere
 * (billing/proration.ts `periodInvoices`), a refund by hand (billing/credit-returns.ts `wholeRefund`)
 * and a cancellation's refund (billing/cancellation.ts `refundOf`) give back no more than the rest,
 * and each payment can refund no more than what disputes left of it (`refundRooms`). Read it under
 * the invoice's lock (`lockInvoice`).
 */
export async function disputedAway(trx: Kysely<Database>, invoiceId: string): Promise<bigint> {
  const each = await disputedAwayOf(trx, { invoiceId });
  let total = 0n;
  for (const amount of each.values()) total += amount;
  return total;
}

/**
 * What disputes took away of each payment and have not given back, by transaction id (a payment with
 * none is absent), minor units of its currency, > 0 (reads `disputes` and `transactions`, owned by
 * payments/): of the payments of invoice `invoiceId`, or of the payments `transactionIds` (with an
 * invoice or not). Each dispute whose funds the gateway withdrew and still holds (`open`) or gave the
 * customer (`lost`) counts its amount, but a lost one a refund carried (`refund_id` set: that refund
 * counts already, on the same payment, `settleLostDisputeByRefund`), nor an open PayPal claim whose
 * refund came first (`claimRefundCameFirst`: that refund counts already, and its loss will be paired
 * with it; before, both counted: JPY 1000 paid, a claim of 400 open and PayPal's refund of 400 in,
 * 200 refundable by hand, not 600); a won dispute gave its funds back, an inquiry never withdrew any.
 * `disputedAway` (per invoice) and `refundRooms` (per payment) both read it, so both count a dispute
 * the same way, and as billing/credit-notes.ts `disputeHolds` does.
 */
async function disputedAwayOf(
  trx: Kysely<Database>,
  of: { invoiceId: string } | { transactionIds: readonly string[] },
): Promise<Map<string, bigint>> {
  if ('transactionIds' in of && of.transactionIds.length === 0) return new Map();
  const rows = await trx
    .selectFrom('disputes as d')
    .innerJoin('transactions as t', 't.id', 'd.transaction_id')
    .select(['t.id', sql<string>`sum(d.amount)::text`.as('amount')])
    .where((eb) =>
      'invoiceId' in of ? eb('t.invoice_id', '=', of.invoiceId) : eb('t.id', 'in', [...of.transactionIds]),
    )
    .where((eb) =>
      eb.or([
        eb.and([eb('d.status', '=', 'open'), eb.not(claimRefundCameFirst())]),
        eb.and([eb('d.status', '=', 'lost'), eb('d.refund_id', 'is', null)]),
      ]),
    )
    .groupBy('t.id')
    .execute();
  return new Map(rows.map((row) => [row.id, BigInt(row.amount)]));
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

/** A payment and what is still refundable on it (`refundRooms`), minor units of its currency. */
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
 * Whose refund a payment's room bounds (`refundRooms`): `billhook`, a refund billhook asks of the
 * gateway (by hand, a cancellation's, a customer-credit refund's), which a dispute open or lost on the
 * payment bounds too (the customer has that money back: a refund of it would pay them twice);
 * `reported`, a refund a gateway reported that billhook did not ask (made in its dashboard, or the
 * refund PayPal pays a lost dispute with, reconcile/apply.ts): the money has moved, so only what the
 * payment moved less its refunds bounds it (such a refund then carries its lost dispute,
 * `settleLostDisputeByRefund`, which no longer counts).
 */
export type RoomFor = 'billhook' | 'reported';

/**
 * What is still refundable on each of `payments`, in their order, minor units of each one's currency:
 * what it moved (`capturedAmount`) less its refunds succeeded or in flight (of its invoice or of
 * customer credit it carried), less, `of` `billhook` (the default), what disputes took of it and hold
 * or lost (`disputedAwayOf`: open, or lost and carried by no refund; a won one gave it back), so every
 * refund billhook asks (by hand, with or without an amount or a payment named; a cancellation's split;
 * a customer-credit refund's) gives back no more than the payment kept. 2000 by card charged back
 * whole (lost): 0 left; 750 of it open: 1250; that dispute won: 2000 again. May be < 0 (a dispute on
 * a payment already refunded in part). Read under the lock of their invoices (`lockInvoice`), which
 * every refund of them takes and every dispute report that may move funds on them
 * (payments/disputes.ts `recordDispute`), so it stays true until commit.
 */
export async function refundRooms(
  trx: Kysely<Database>,
  payments: TransactionRow[],
  of: RoomFor = 'billhook',
): Promise<RefundRoom[]> {
  if (payments.length === 0) return [];
  const ids = payments.map((t) => t.id);
  const rows = await trx
    .selectFrom('refunds')
    .select(['transaction_id', sql<string>`coalesce(sum(amount), 0)::text`.as('reserved')])
    .where('transaction_id', 'in', ids)
    .where('status', '!=', 'failed')
    .groupBy('transaction_id')
    .execute();
  const reserved = new Map(rows.map((row) => [row.transaction_id, BigInt(row.reserved)]));
  const disputed =
    of === 'billhook' ? await disputedAwayOf(trx, { transactionIds: ids }) : new Map<string, bigint>();
  return payments.map((transaction) => ({
    transaction,
    room:
      capturedAmount(transaction) -
      (reserved.get(transaction.id) ?? 0n) -
      (disputed.get(transaction.id) ?? 0n),
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
