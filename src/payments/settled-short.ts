import { sql } from 'kysely';
import { rescheduleCharge } from '../billing/charge-schedule.ts';
import { capturedAmount, refundRooms } from '../billing/invoice-payment.ts';
import { lockInvoice, reversePayment } from '../billing/invoices.ts';
import type { InvoiceRow, RefundRow, TransactionRow } from '../db/schema.ts';
import { raiseException } from '../exceptions/exceptions.ts';
import { postEntry } from '../ledger/journal.ts';
import { entryKeys, overpaymentSettledShort, paymentSettledShort } from '../ledger/movements.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';
import { flagOverpaymentCreditShort, overpaymentLostByReversal } from './overpayment-shares.ts';
import { transactionActivity } from './transactions.ts';

/** The settlement line that says a payment settled for less than billhook booked, as the gateway reported it. */
export interface ShortSettlement {
  /** billhook's settlement line (`stl_…`): part of the idempotency key of what is booked. */
  settlementLineId: string;
  /** The gateway's id of the line (an Authorize.Net transId, a Stripe `txn_…`), for messages. */
  gatewayLineId: string;
  /** What settled: the line's gross, minor units of the payment's currency (> 0). */
  settled: bigint;
}

/**
 * What `recordSettledShort` did: `booked` (the books follow the settlement: `shortBy` minor units
 * taken out of clearing and owed again; `invoice` the invoice's state after it, when the payment has
 * one; `overpaymentTakenBack` what came off the customer's credit), or `refused` with why billhook
 * cannot follow it alone (`reason`; nothing was written).
 */
export type SettledShortOutcome =
  | {
      kind: 'booked';
      shortBy: bigint;
      invoice?: Pick<InvoiceRow, 'id' | 'status' | 'amount_paid' | 'amount_due'> & { rescheduled: boolean };
      overpaymentTakenBack: bigint;
    }
  | { kind: 'refused'; reason: string };

/**
 * Why a short settlement of locked succeeded `transaction` to `settled` (minor units) cannot be booked
 * by billhook alone, or undefined when it can: the payment must have a customer; what its refunds
 * (succeeded or in flight) and disputes (open or lost) take of it must fit in what settled
 * (`refundRooms`: 100.00 booked, 90.00 refunded, 80.00 settled cannot be followed: the refund gave
 * back more than was received); its invoice, if any, must be OPEN or PAID (a refunded, void or
 * uncollectible invoice's paid amount is not simply lowered: `reversePayment`); and none of its
 * refunds (succeeded or in flight) may be without a settlement line of its own (`refundsNotSettled`):
 * a settlement file made by hand may net a refund into its charge's row (EUR 100.00 refunded 10.00,
 * a charge row of 90.00 and no refund row), which followed short would count the refund twice (1000
 * more out of clearing and owed by a customer who was given it back). An invoice refunded in part
 * is refused by its status already; this guards a payment without an invoice.
 */
async function whyNotFollowed(
  work: UnitOfWork,
  transaction: TransactionRow,
  invoice: InvoiceRow | undefined,
  settled: bigint,
): Promise<string | undefined> {
  const booked = capturedAmount(transaction);
  const shortBy = booked - settled;
  if (transaction.status !== 'succeeded') return `${transaction.id} is ${transaction.status}`;
  if (settled <= 0n) return `the line settled nothing of ${transaction.id}`;
  if (shortBy <= 0n) return `${transaction.id} settled for no less than billhook booked`;
  if (!transaction.customer_id && !invoice) return `${transaction.id} has no customer to owe the difference`;
  const [room] = await refundRooms(work.trx, [transaction]);
  if (room && room.room < shortBy) {
    return `its refunds (succeeded or in flight) and disputes take ${booked - room.room} of ${transaction.id}, more than the ${settled} that settled`;
  }
  if (invoice && invoice.status !== 'OPEN' && invoice.status !== 'PAID') {
    return `its invoice ${invoice.id} is ${invoice.status}, whose paid amount billhook does not lower on its own`;
  }
  if (invoice && shortBy > invoice.amount_paid) {
    return `its invoice ${invoice.id} shows only ${invoice.amount_paid} paid`;
  }
  const unsettled = await refundsNotSettled(work, transaction.id);
  if (unsettled.length > 0) {
    const named = unsettled
      .map((r) => `${r.id} of ${r.amount} ${transaction.currency} (${r.status})`)
      .join(', ');
    return `its refunds ${named} have no settlement line yet, so the line may be net of them (a settlement file netting a refund into its charge row), which billhook cannot tell from a charge settled short`;
  }
  return undefined;
}

/**
 * The refunds of payment `transactionId` that moved or may move money (succeeded, or in flight:
 * pending, unknown) and that no settlement line is matched to yet (`settlement_lines.refund_id`), by
 * id: a charge line settled for less may be net of them.
 */
function refundsNotSettled(
  work: UnitOfWork,
  transactionId: string,
): Promise<Pick<RefundRow, 'id' | 'amount' | 'status'>[]> {
  return work.trx
    .selectFrom('refunds as r')
    .select(['r.id', 'r.amount', 'r.status'])
    .where('r.transaction_id', '=', transactionId)
    .where('r.status', '!=', 'failed')
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('settlement_lines as sl').select('sl.id').whereRef('sl.refund_id', '=', 'r.id'))),
    )
    .orderBy('r.id')
    .execute();
}

/**
 * Books, inside `work`, that the gateway settled succeeded payment `transactionId` for less than
 * billhook booked (`capturedAmount`), as `line` of its settlement report says: the settlement report
 * is the bank's truth (PRODUCT §11: Authorize.Net's settled amount, not the authorized one, is what a
 * capture moved; §13). The payment's `amount_captured` becomes what settled, so refunds are capped on
 * it (`refundRooms`) and the API shows it; the difference leaves the gateway's clearing and is owed
 * again by the customer (`txn_…:settled_short:stl_…`, `paymentSettledShort`); its invoice is paid
 * that much less (`reversePayment`: PAID → OPEN with the difference due, `invoice.payment_reversed`),
 * and a subscription's invoice owed again goes back on the charge schedule at once (`charge_at` now:
 * `rescheduleCharge`, as an offline payment reversed; an invoice of no subscription is charged by
 * hand). An invoice paid beyond what it asked (a duplicate payment) is paid that much less beyond it:
 * the overpayment credit it made is taken back (`txn_…:overpaid_settled_short:stl_…`, an
 * `overpayment_credit_spent` exception when the customer spent it), its lost disputes' shares worked
 * again (`overpaymentLostByReversal`). `transaction.settled_short` is recorded. E.g. USD 100.00
 * booked, 80.00 settled: clearing −2000, receivable +2000, the invoice OPEN with 2000 due, 8000
 * refundable. Refused (nothing written) when billhook cannot follow it alone (`whyNotFollowed`).
 * Called once per line (the caller books a line once); its entries' keys name the line, so a replay
 * posts nothing twice.
 */
export async function recordSettledShort(
  work: UnitOfWork,
  transactionId: string,
  line: ShortSettlement,
): Promise<SettledShortOutcome> {
  // Rows the unit holds (a reconcile batch's) are written and forgotten: this reads and changes the
  // invoice and the payment with its own statements.
  await work.forgetHeld();
  const known = await work.trx
    .selectFrom('transactions')
    .select(['id', 'invoice_id'])
    .where('id', '=', transactionId)
    .executeTakeFirstOrThrow();
  const locked = known.invoice_id ? await lockInvoice(work, known.invoice_id) : undefined;
  const transaction = await work.trx
    .selectFrom('transactions')
    .selectAll()
    .where('id', '=', transactionId)
    .forUpdate()
    .executeTakeFirstOrThrow();
  const reason = await whyNotFollowed(work, transaction, locked, line.settled);
  if (reason) return { kind: 'refused', reason };
  const shortBy = capturedAmount(transaction) - line.settled;
  const customerId = (transaction.customer_id ?? locked?.customer_id)!;
  const now = new Date();
  const changes = { amount_captured: line.settled, updated_at: now };
  await work.trx.updateTable('transactions').set(changes).where('id', '=', transaction.id).execute();
  const settled: TransactionRow = { ...transaction, ...changes };
  const postShort = () =>
    postEntry(
      work,
      paymentSettledShort({
        transactionId: transaction.id,
        settlementLineId: line.settlementLineId,
        gateway: transaction.gateway,
        gatewayAccount: transaction.gateway_account,
        customerId,
        currency: transaction.currency,
        amount: shortBy,
      }),
    );
  let overpaymentTakenBack = 0n;
  let invoice: Extract<SettledShortOutcome, { kind: 'booked' }>['invoice'];
  if (!locked) await postShort();
  else {
    let rescheduled = false;
    const cause = entryKeys.paymentSettledShort(transaction.id, line.settlementLineId);
    overpaymentTakenBack = await overpaymentLostByReversal(work, locked, shortBy, cause, async () => {
      await reversePayment(work, locked, shortBy, transaction.id, now, {
        reason: 'settled_short',
        settlement_line: line.settlementLineId,
        gateway_line_id: line.gatewayLineId,
      });
      const after = await work.trx
        .selectFrom('invoices')
        .select('status')
        .where('id', '=', locked.id)
        .executeTakeFirstOrThrow();
      // A subscription's invoice owed again is collected again, as any unpaid one (the exception stays
      // open for a person to see why the gateway settled less).
      if (locked.subscription_id !== null && after.status === 'OPEN') {
        await rescheduleCharge(work, locked.id, now);
        rescheduled = true;
      }
      await postShort();
    });
    if (overpaymentTakenBack > 0n) {
      const occurrence = entryKeys.overpaymentSettledShort(transaction.id, line.settlementLineId);
      await flagOverpaymentCreditShort(work, {
        customerId,
        currency: transaction.currency,
        amount: overpaymentTakenBack,
        gateway: transaction.gateway,
        gatewayAccount: transaction.gateway_account,
        transactionId: transaction.id,
        what: `${transaction.id} settled ${shortBy} ${transaction.currency} short: invoice ${locked.id} is no longer paid ${overpaymentTakenBack} ${transaction.currency} beyond what it asked`,
        details: { invoice: locked.id, settlement_line: line.settlementLineId },
        occurrence,
      });
      await postEntry(
        work,
        overpaymentSettledShort({
          transactionId: transaction.id,
          settlementLineId: line.settlementLineId,
          customerId,
          currency: transaction.currency,
          amount: overpaymentTakenBack,
        }),
      );
    }
    const row = await work.trx
      .selectFrom('invoices')
      .select(['id', 'status', 'amount_paid', 'amount_due'])
      .where('id', '=', locked.id)
      .executeTakeFirstOrThrow();
    invoice = { ...row, rescheduled };
  }
  await transactionActivity(work, settled, 'transaction.settled_short');
  return { kind: 'booked', shortBy, invoice, overpaymentTakenBack };
}

/** `LIKE` pattern text for `text` itself (its `%`, `_` and `\\` escaped). */
function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * What billhook had booked as captured of payment `transaction` before settlement lines followed it
 * down (`recordSettledShort`), minor units of its currency, or undefined when none did: its
 * `amount_captured` now plus what each `txn_…:settled_short:stl_…` entry took out of clearing (the
 * entry's debit, the part that did not settle). USD 100.00 authorized, 60.00 captured, settled 50.00:
 * 6000 (5000 + 1000); captured whole (100.00) and settled 80.00: 10000. Reads the journal
 * (`journal_entries`, `postings`): an entry a unit of work deferred and has not written is not seen.
 */
export async function capturedBeforeSettledShort(
  work: UnitOfWork,
  transaction: Pick<TransactionRow, 'id' | 'amount' | 'amount_captured'>,
): Promise<bigint | undefined> {
  const row = await work.trx
    .selectFrom('journal_entries as e')
    .innerJoin('postings as p', 'p.journal_entry_id', 'e.id')
    .select([
      sql<number>`count(DISTINCT e.id)::int`.as('entries'),
      sql<string>`coalesce(sum(p.amount), 0)::text`.as('short'),
    ])
    .where('e.idempotency_key', 'like', `${likeLiteral(entryKeys.paymentSettledShort(transaction.id, ''))}%`)
    .where('p.amount', '>', 0n)
    .executeTakeFirstOrThrow();
  if (row.entries === 0) return undefined;
  return capturedAmount(transaction) + BigInt(row.short);
}

/**
 * Called inside `work` when `refund`, made outside billhook (the gateway's dashboard: billhook learns
 * of it from the gateway's event, `sent_by_billhook` false), has just succeeded (at once, or after
 * being reported pending), after its stored settlement lines were matched:
 * when a settlement line followed its payment down by exactly the refund's amount
 * (`txn_…:settled_short:stl_…` of `refund.amount`) and no settlement line of the refund is recorded,
 * that line may have been net of this refund, which billhook did not know of when it followed it (a
 * settlement file netting the refund into its charge's row, imported before the refund's event came;
 * `refundsNotSettled` guards only refunds billhook knows): the refund is then counted twice. Nothing is
 * changed (billhook cannot tell a netted refund from a charge settled short by the same amount) and an
 * `amount_mismatch` exception names the refund, the line and the entry for a person (once per entry:
 * `occurrence`). EUR 100.00 paid, a file's charge row of 90.00 followed short (1000 out of clearing and
 * owed), then the dashboard refund of 10.00: clearing −2000 and 1000 owed where the gateway took 1000,
 * said nowhere before. A refund of another amount raises nothing.
 */
export async function flagRefundAfterSettledShort(
  work: UnitOfWork,
  refund: Pick<
    RefundRow,
    'id' | 'transaction_id' | 'amount' | 'currency' | 'gateway' | 'gateway_account' | 'status'
  >,
): Promise<void> {
  if (refund.status !== 'succeeded') return;
  const line = await work.trx
    .selectFrom('settlement_lines')
    .select('id')
    .where('refund_id', '=', refund.id)
    .limit(1)
    .executeTakeFirst();
  if (line) return;
  const prefix = entryKeys.paymentSettledShort(refund.transaction_id, '');
  const shorts = await work.trx
    .selectFrom('journal_entries as e')
    .innerJoin('postings as p', 'p.journal_entry_id', 'e.id')
    .select(['e.idempotency_key as key', sql<string>`sum(p.amount)::text`.as('short')])
    .where('e.idempotency_key', 'like', `${likeLiteral(prefix)}%`)
    .where('p.amount', '>', 0n)
    .groupBy('e.idempotency_key')
    .orderBy('e.idempotency_key')
    .execute();
  const same = shorts.find((entry) => BigInt(entry.short) === refund.amount);
  if (!same) return;
  const settlementLineId = same.key.slice(prefix.length);
  const c = refund.currency;
  await raiseException(work, {
    kind: 'amount_mismatch',
    gateway: refund.gateway,
    gatewayAccount: refund.gateway_account,
    transactionId: refund.transaction_id,
    refundId: refund.id,
    settlementLineId,
    occurrence: same.key,
    message:
      `refund ${refund.id} of ${refund.amount} ${c} (minor units), made at ${refund.gateway}, came after settlement line ` +
      `${settlementLineId} was followed as the payment settled ${refund.amount} ${c} short (${same.key}): if that line was net of ` +
      'this refund (a settlement file netting it into its charge row), the refund is counted twice (taken out of clearing ' +
      'and owed by the customer again): nothing changed; check the settlement file and book the difference back',
    details: { refund: refund.id, settlement_line: settlementLineId, entry: same.key, amount: refund.amount },
  });
}
