import type { Kysely } from 'kysely';
import type { PgBoss } from 'pg-boss';
import { clientForAccount, type GatewayClients } from '../accounts/clients.ts';
import { recordActivity } from '../activities/activities.ts';
import { issueCreditNote, type RefundSplit, voidCreditNote } from '../billing/credit-notes.ts';
import { gatewayPaymentMethod, getPaymentMethod } from '../billing/customers.ts';
import { capturedAmount, invoicePayment, refundable } from '../billing/invoice-payment.ts';
import { applyRefund, lockInvoice, reverseRefund } from '../billing/invoices.ts';
import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { Database, InvoiceRow, RefundRow, RefundStatus, TransactionRow } from '../db/schema.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { assertGatewayCanTake } from '../gateways/currencies.ts';
import type { GatewayName, RefundOutcome } from '../gateways/types.ts';
import { postEntry } from '../ledger/journal.ts';
import { type RefundMovement, refundReversed, refundSucceeded } from '../ledger/movements.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { settleLostDisputeByRefund } from './disputes.ts';
import { enqueueRefundRetry } from './refund-queue.ts';

/** A refund's result as learned from a gateway response or a webhook. */
export interface RefundResult {
  status: RefundStatus;
  gatewayRefundId?: string;
  failureCode?: string;
  failureMessage?: string;
}

/**
 * Forward-only refund transitions. `succeeded → failed` is allowed because a gateway can report a
 * refund failed after it first succeeded (Stripe: https://docs.stripe.com/refunds#failed-refunds);
 * the posting is then reversed. The reverse never happens, so every delivery order converges.
 */
const NEXT: Readonly<Record<RefundStatus, readonly RefundStatus[]>> = {
  pending: ['unknown', 'succeeded', 'failed'],
  unknown: ['pending', 'succeeded', 'failed'],
  succeeded: ['failed'],
  failed: [],
};

/** What recording a refund result did. */
export type RefundRecordOutcome = { kind: 'applied' | 'duplicate' | 'stale'; refund: RefundRow };

/** Finds a refund by the gateway's id, else by our reference (`re_…`). */
export async function findRefund(
  db: Kysely<Database>,
  gateway: GatewayName,
  gatewayRefundId: string | undefined,
  reference: string | undefined,
): Promise<RefundRow | undefined> {
  if (gatewayRefundId) {
    const row = await db
      .selectFrom('refunds')
      .selectAll()
      .where('gateway', '=', gateway)
      .where('gateway_refund_id', '=', gatewayRefundId)
      .executeTakeFirst();
    if (row) return row;
  }
  if (!reference) return undefined;
  return db
    .selectFrom('refunds')
    .selectAll()
    .where('id', '=', reference)
    .where('gateway', '=', gateway)
    .executeTakeFirst();
}

/**
 * Applies a refund result inside `work`, forward-only. Success of a refund of an invoice issues its
 * credit note (billing/credit-notes.ts) and posts `re_…:succeeded` once (`refundPostings`: debit the
 * customer's credit for what it pays back of an overpayment, refunds and tax payable pro rata for the
 * rest, credit the gateway's clearing account), updates the invoice and, where the refund is the
 * money of a dispute already booked lost, takes that loss back (`settleLostDisputeByRefund`); a later
 * failure voids the credit note, posts `re_…:reversed` (the same postings negated) and gives the
 * amount back. A refund of customer credit debits their credit account instead.
 */
export async function recordRefundResult(
  work: UnitOfWork,
  refundId: string,
  result: RefundResult,
): Promise<RefundRecordOutcome> {
  await work.joinLedgerWriters();
  const peek = await work.trx
    .selectFrom('refunds')
    .select('invoice_id')
    .where('id', '=', refundId)
    .executeTakeFirst();
  if (!peek) throw new NotFoundError('refund', refundId);
  const invoice = peek.invoice_id ? await lockInvoice(work, peek.invoice_id) : undefined;
  const refund = await work.trx
    .selectFrom('refunds')
    .selectAll()
    .where('id', '=', refundId)
    .forUpdate()
    .executeTakeFirstOrThrow();
  if (refund.status === result.status) return { kind: 'duplicate', refund };
  if (!NEXT[refund.status].includes(result.status)) return { kind: 'stale', refund };
  const updated = await work.trx
    .updateTable('refunds')
    .set({
      status: result.status,
      gateway_refund_id: result.gatewayRefundId ?? refund.gateway_refund_id,
      failure_code: result.failureCode ?? null,
      failure_message: result.failureMessage ?? null,
      updated_at: new Date(),
    })
    .where('id', '=', refundId)
    .returningAll()
    .executeTakeFirstOrThrow();
  await refundActivity(work, updated, `refund.${result.status}`);
  if (result.status === 'succeeded') {
    const split =
      invoice && refund.kind === 'payment' ? await issueCreditNote(work, invoice, refund) : undefined;
    await postEntry(work, refundSucceeded(refundMovement(refund, invoice, split)));
    if (invoice) await applyRefund(work, invoice, refund.amount);
    await settleLostDisputeByRefund(work, updated);
  }
  if (result.status === 'failed' && refund.status === 'succeeded') {
    const split =
      invoice && refund.kind === 'payment' ? await voidCreditNote(work, invoice, refund) : undefined;
    await postEntry(work, refundReversed(refundMovement(refund, invoice, split)));
    if (invoice) await reverseRefund(work, invoice, refund.amount);
  }
  return { kind: 'applied', refund: updated };
}

/**
 * What a succeeded refund moves (ledger/movements.ts `refundSucceeded`): a refund of customer credit,
 * a refund of an invoice split by `split` (its credit note and what it pays back of an overpayment;
 * none for a refund made before credit notes existed), or a refund of a payment without invoice.
 */
function refundMovement(
  refund: RefundRow,
  invoice: InvoiceRow | undefined,
  split: RefundSplit | undefined,
): RefundMovement {
  const common = {
    refundId: refund.id,
    gateway: refund.gateway,
    gatewayAccount: refund.gateway_account,
    currency: refund.currency,
    amount: refund.amount,
  };
  if (refund.kind === 'customer_credit')
    return { ...common, kind: 'customer_credit', customerId: refund.customer_id ?? '' };
  if (!invoice) return { ...common, kind: 'payment' };
  return {
    ...common,
    kind: 'invoice',
    customerId: invoice.customer_id,
    overpayment: split?.overpayment ?? 0n,
    creditNote: split?.note,
  };
}

/**
 * Commits a `pending` refund row against a succeeded transaction, inside `work` (the invoice is
 * locked first), on the transaction's gateway account (a refund reported by a webhook too: money goes
 * back through the account that took it). Refunds in flight count against the refundable amount, so concurrent refunds
 * never exceed what was paid.
 * @param amount minor units; defaults to everything still refundable
 * @param creditOf a customer id: the refund pays back that customer's credit (`customer_credit`,
 * no invoice) instead of part of the transaction's invoice
 * @throws ValidationError when `amount` exceeds what is refundable; AmountNotRepresentable (422) when
 * billhook would send it and the gateway cannot take it exactly (`assertGatewayCanTake`)
 */
export async function createRefund(
  work: UnitOfWork,
  transaction: TransactionRow,
  input: { amount?: bigint; reason?: string; gatewayRefundId?: string; creditOf?: string },
): Promise<RefundRow> {
  const available = await refundable(work.trx, transaction);
  const amount = input.amount ?? available;
  if (amount <= 0n || amount > available) {
    throw new ValidationError('refund exceeds the paid amount', {
      amount: `at most ${available} can be refunded (paid ${capturedAmount(transaction)} ${transaction.currency})`,
    });
  }
  // A refund billhook will send (not one the gateway reported, which has its id) is refused before its
  // row exists when the gateway would misread or refuse the amount: invoice and credit refunds alike.
  if (input.gatewayRefundId === undefined)
    assertGatewayCanTake(transaction.gateway, amount, transaction.currency);
  const refund = await work.trx
    .insertInto('refunds')
    .values({
      id: newId('re'),
      transaction_id: transaction.id,
      invoice_id: input.creditOf ? null : transaction.invoice_id,
      ...(input.creditOf ? { kind: 'customer_credit' as const, customer_id: input.creditOf } : {}),
      gateway: transaction.gateway,
      gateway_account: transaction.gateway_account,
      gateway_refund_id: input.gatewayRefundId ?? null,
      amount,
      currency: transaction.currency,
      status: 'pending',
      reason: input.reason ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await refundActivity(work, refund, 'refund.created');
  return refund;
}

/** Logs a change of a refund (activities) inside `work.trx`. */
function refundActivity(work: UnitOfWork, refund: RefundRow, action: string): Promise<void> {
  return recordActivity(work, {
    resourceType: 'refund',
    resourceId: refund.id,
    action,
    data: {
      transaction: refund.transaction_id,
      invoice: refund.invoice_id,
      amount: refund.amount,
      currency: refund.currency,
      status: refund.status,
    },
  });
}

function refundResultOf(outcome: RefundOutcome): RefundResult {
  switch (outcome.status) {
    case 'succeeded':
    case 'pending':
      return { status: outcome.status, gatewayRefundId: outcome.gatewayRefundId };
    case 'declined':
      return { status: 'failed', failureCode: outcome.code, failureMessage: outcome.message };
    case 'unknown':
      return { status: 'unknown', failureCode: 'unknown_outcome', failureMessage: outcome.message };
  }
}

/**
 * How a refund is sent: the first time, when an unknown answer enqueues the refund's `invoice.refund`
 * retry in the transaction that records it, or as that retry's repeat (same reference).
 */
export type RefundSend = { kind: 'first'; boss: PgBoss } | { kind: 'repeat' };

/**
 * Refunds a PAID or PARTIALLY_REFUNDED invoice through the gateway that took the payment: the refund
 * row is committed `pending` first, then the gateway is called with its id as idempotency key; an
 * unknown answer (timeout, 5xx) is committed with its `invoice.refund` job.
 * @param amount minor units; the whole remaining paid amount when omitted
 * @throws ConflictError `invoice_not_paid`, `gateway_not_configured`, `gateway_account_disabled` (the
 * payment's account); ValidationError when the amount exceeds what was paid;
 * AmountNotRepresentable (422 `amount_not_representable`) when the gateway cannot take the amount
 * exactly (gateways/currencies.ts)
 */
export async function refundInvoice(
  db: Db,
  actor: Actor,
  boss: PgBoss,
  gateways: GatewayClients,
  invoiceId: string,
  input: { amount?: bigint; reason?: string },
): Promise<RefundRow> {
  const { refund, transaction } = await inUnitOfWork(db, { actor }, (work) =>
    prepareInvoiceRefund(work, gateways, invoiceId, input),
  );
  return sendRefund(db, actor, gateways, refund, transaction, { kind: 'first', boss });
}

/**
 * The first half of `refundInvoice`, inside `work`: locks the invoice, checks it is paid by a gateway
 * payment whose account can refund, and inserts the refund `pending` (`createRefund`). The caller
 * commits, then sends it (`sendRefund`, kind `first`).
 * @returns the refund row and the payment it refunds
 * @throws as `refundInvoice`
 */
export async function prepareInvoiceRefund(
  work: UnitOfWork,
  gateways: GatewayClients,
  invoiceId: string,
  input: { amount?: bigint; reason?: string },
): Promise<{ refund: RefundRow; transaction: TransactionRow }> {
  const invoice = await lockInvoice(work, invoiceId);
  if (invoice.status !== 'PAID' && invoice.status !== 'PARTIALLY_REFUNDED') {
    throw new ConflictError(
      'invoice_not_paid',
      `invoice ${invoiceId} is ${invoice.status}; only a paid invoice can be refunded`,
    );
  }
  const transaction = await invoicePayment(work.trx, invoiceId);
  if (!transaction?.gateway_transaction_id) {
    throw new ConflictError('no_gateway_payment', `invoice ${invoiceId} has no gateway payment to refund`);
  }
  await clientForAccount(gateways, transaction.gateway, transaction.gateway_account);
  return { refund: await createRefund(work, transaction, input), transaction };
}

/**
 * Sends a committed refund to the gateway account of its payment (the refund's `gateway_account`), with the refund id as reference (and
 * idempotency key where the gateway has one), and records the outcome (forward-only).
 * @returns the refund as recorded now: succeeded, pending, failed, or unknown after a timeout or 5xx
 */
export async function sendRefund(
  db: Db,
  actor: Actor,
  gateways: GatewayClients,
  refund: RefundRow,
  transaction: TransactionRow,
  send: RefundSend,
): Promise<RefundRow> {
  const method = await getPaymentMethod(db, transaction.payment_method_id ?? '');
  // A repeat settles a refund already sent: it goes to its account even if disabled since.
  const client = await clientForAccount(gateways, refund.gateway, refund.gateway_account, {
    includeDisabled: send.kind === 'repeat',
  });
  const outcome = await client.refund({
    reference: refund.id,
    chargeReference: transaction.id,
    gatewayTransactionId: transaction.gateway_transaction_id ?? '',
    amount: refund.amount,
    currency: refund.currency,
    paymentMethod: gatewayPaymentMethod(method),
    reason: refund.reason ?? undefined,
    repeat: send.kind === 'repeat',
  });
  return inUnitOfWork(db, { actor }, async (work) => {
    const recorded = await recordRefundResult(work, refund.id, refundResultOf(outcome));
    if (send.kind === 'first' && recorded.kind === 'applied' && recorded.refund.status === 'unknown')
      await enqueueRefundRetry(work.trx, send.boss, refund.id);
    return recorded.refund;
  });
}
