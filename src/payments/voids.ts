import type { Kysely } from 'kysely';
import { clientForAccount, type GatewayClients } from '../accounts/clients.ts';
import { capturedAmount } from '../billing/invoice-payment.ts';
import { lockInvoice, reversePayment } from '../billing/invoices.ts';
import type { Db } from '../db/database.ts';
import type { Database, InvoiceRow, TransactionRow } from '../db/schema.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { raiseException } from '../exceptions/exceptions.ts';
import { capabilitiesOf } from '../gateways/registry.ts';
import type { VoidCapability } from '../gateways/types.ts';
import { postEntry } from '../ledger/journal.ts';
import { entryKeys, overpaymentVoided, paymentVoided } from '../ledger/movements.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { flagOverpaymentCreditShort, overpaymentLostByReversal } from './overpayment-shares.ts';
import { transactionActivity } from './transactions.ts';

/**
 * What `voidTransaction` did: `voided` (the gateway canceled it; the transaction is `canceled` with
 * failure code `voided`), or `unknown` (no sure answer: nothing recorded as changed, and an
 * `unknown_outcome` reconciliation exception asks a person to check the gateway).
 */
export type VoidResult =
  | { status: 'voided'; transaction: TransactionRow }
  | { status: 'unknown'; message: string; transaction: TransactionRow };

/** The statuses a void can cancel under each capability (`GatewayCapabilities.void`). */
const VOIDABLE: Readonly<Record<VoidCapability, readonly TransactionRow['status'][]>> = {
  uncaptured: ['pending', 'unknown'],
  unsettled: ['pending', 'unknown', 'succeeded'],
  none: [],
};

/**
 * Why `transaction` cannot be voided now, as the 409 to answer, or undefined when it can:
 * `gateway_cannot_void` (the gateway voids none of billhook's charges), `transaction_not_voidable`
 * (failed or canceled already), `transaction_captured` (succeeded, on a gateway that voids only
 * before capture: refund it), `gateway_id_unknown` (no answer named the gateway's payment yet),
 * `transaction_refunded` / `transaction_disputed` (a refund or dispute was recorded on it).
 */
async function whyNotVoidable(
  trx: Kysely<Database>,
  transaction: TransactionRow,
): Promise<ConflictError | undefined> {
  const capability = capabilitiesOf(transaction.gateway).void;
  if (capability === 'none') {
    return new ConflictError(
      'gateway_cannot_void',
      `${transaction.gateway} cannot void billhook's charges (captured at once): refund ${transaction.id} instead`,
    );
  }
  if (!VOIDABLE[capability].includes(transaction.status)) {
    return transaction.status === 'succeeded'
      ? new ConflictError(
          'transaction_captured',
          `${transaction.id} succeeded and ${transaction.gateway} voids only before capture: refund it instead`,
        )
      : new ConflictError('transaction_not_voidable', `${transaction.id} is ${transaction.status}`);
  }
  if (!transaction.gateway_transaction_id) {
    return new ConflictError(
      'gateway_id_unknown',
      `${transaction.gateway} has not named its payment for ${transaction.id} yet: wait for its status check`,
    );
  }
  const refund = await trx
    .selectFrom('refunds')
    .select('id')
    .where('transaction_id', '=', transaction.id)
    .where('status', '!=', 'failed')
    .executeTakeFirst();
  if (refund) return new ConflictError('transaction_refunded', `${transaction.id} has refund ${refund.id}`);
  const dispute = await trx
    .selectFrom('disputes')
    .select('id')
    .where('transaction_id', '=', transaction.id)
    .executeTakeFirst();
  if (dispute)
    return new ConflictError('transaction_disputed', `${transaction.id} has dispute ${dispute.id}`);
  return undefined;
}

/**
 * Locks `known`'s invoice (if any), then the transaction, inside `work`: the order charges, webhooks
 * and refunds lock in. Reads the transaction as it is now.
 */
async function lockForVoid(
  work: UnitOfWork,
  known: TransactionRow,
): Promise<{ transaction: TransactionRow; invoice: InvoiceRow | undefined }> {
  const invoice = known.invoice_id ? await lockInvoice(work, known.invoice_id) : undefined;
  const transaction = await work.trx
    .selectFrom('transactions')
    .selectAll()
    .where('id', '=', known.id)
    .forUpdate()
    .executeTakeFirstOrThrow();
  return { transaction, invoice };
}

/**
 * Books a void of locked `transaction` (pending, unknown or succeeded) inside `work`: a succeeded one
 * is taken back first, its invoice paid down no more (`reversePayment`) and its payment reversed
 * (`paymentVoided`); the invoice's lost disputes then hold their share of what is still overpaid
 * (payments/overpayment-shares.ts `overpaymentLostByReversal`), and what the invoice is no longer paid beyond
 * what it asked (`overpaymentNotRefunded` before the void less after it: the voided payment's own
 * `txn_…:overpaid`, or the duplicate's when the first of two payments is voided) is taken off the
 * customer's credit back to the receivable (`overpaymentVoided`; credit spent meanwhile is left in
 * debit, with an `overpayment_credit_spent` exception); then the transaction becomes `canceled` with
 * failure code `voided` and `message`, and `transaction.voided` is recorded. 10000 paid twice, the
 * first payment voided: the invoice is PAID by the second, the customer's credit and the receivable 0
 * (the customer kept 10000 of credit, and the receivable showed 10000 with nothing due).
 * @throws ConflictError `invoice_not_reversible` (from `reversePayment`, before anything is written)
 *   when the invoice a succeeded one paid was refunded or closed meanwhile
 */
async function bookVoid(
  work: UnitOfWork,
  transaction: TransactionRow,
  invoice: InvoiceRow | undefined,
  message: string,
): Promise<TransactionRow> {
  // A payment has its customer, or its invoice's.
  const customerId = transaction.customer_id ?? invoice?.customer_id;
  if (transaction.status === 'succeeded' && customerId) {
    const moved = capturedAmount(transaction);
    const payment = { transactionId: transaction.id, customerId, currency: transaction.currency };
    const postVoided = () =>
      postEntry(
        work,
        paymentVoided({
          ...payment,
          gateway: transaction.gateway,
          gatewayAccount: transaction.gateway_account,
          amount: moved,
        }),
      );
    if (!invoice) await postVoided();
    else {
      const takenBack = await overpaymentLostByReversal(
        work,
        invoice,
        moved,
        entryKeys.paymentVoided(transaction.id),
        async () => {
          await reversePayment(work, invoice, moved, transaction.id);
          await postVoided();
        },
      );
      if (takenBack > 0n) {
        await flagOverpaymentCreditShort(work, {
          customerId,
          currency: transaction.currency,
          amount: takenBack,
          gateway: transaction.gateway,
          gatewayAccount: transaction.gateway_account,
          transactionId: transaction.id,
          what: `${transaction.id} was voided: invoice ${invoice.id} is no longer paid ${takenBack} ${transaction.currency} beyond what it asked`,
          details: { invoice: invoice.id },
          occurrence: entryKeys.overpaymentVoided(transaction.id),
        });
        await postEntry(work, overpaymentVoided({ ...payment, amount: takenBack }));
      }
    }
  }
  const changes = {
    status: 'canceled' as const,
    failure_code: 'voided',
    failure_message: message,
    updated_at: new Date(),
  };
  await work.trx.updateTable('transactions').set(changes).where('id', '=', transaction.id).execute();
  const voided: TransactionRow = { ...transaction, ...changes };
  await transactionActivity(work, voided, 'transaction.voided');
  return voided;
}

/**
 * Records a void the gateway confirmed, inside `work`, on the transaction locked after its invoice
 * (`lockForVoid`), as `bookVoid` books it. A transaction already canceled or failed meanwhile (a
 * webhook) is left as is.
 */
async function recordVoid(work: UnitOfWork, known: TransactionRow): Promise<TransactionRow> {
  const { transaction, invoice } = await lockForVoid(work, known);
  if (transaction.status === 'canceled' || transaction.status === 'failed') return transaction;
  return bookVoid(work, transaction, invoice, `voided at ${transaction.gateway} through the API`);
}

/**
 * What `recordReportedVoid` did: `applied` (booked as a void), `duplicate` (canceled already: billhook's
 * own void, or this report before), `stale` (billhook's succeeded refund of the whole charge carries
 * the money: Authorize.Net makes billhook's whole refund of an unsettled charge as a void,
 * gateways/authorizenet/client.ts `refund`), `waiting` (billhook's refund of the whole charge is still
 * pending or unknown: the void may be that refund, so nothing is booked until it is answered;
 * `reason` says which), or `refused` with why it cannot be booked (`reason`), changing nothing.
 */
export type ReportedVoidOutcome =
  | { kind: 'applied' | 'duplicate' | 'stale'; transaction: TransactionRow }
  | { kind: 'refused' | 'waiting'; transaction: TransactionRow; reason: string };

/**
 * What a reported void of succeeded `transaction` means given its refunds not failed (at least one):
 * only one refund of the whole charge (`capturedAmount`) can be Authorize.Net's void of billhook's
 * refund (a partial refund of an unsettled charge is declined, never made a void): succeeded, the
 * void is `stale`; pending or unknown, `waiting` for its answer. Any other refund (partial, or more
 * than one) is `refused`: the void took back money a refund of billhook's still counts on.
 */
async function voidBehindRefund(
  trx: Kysely<Database>,
  transaction: TransactionRow,
): Promise<ReportedVoidOutcome> {
  const refunds = await trx
    .selectFrom('refunds')
    .select(['id', 'amount', 'status'])
    .where('transaction_id', '=', transaction.id)
    .where('status', '!=', 'failed')
    .orderBy('id')
    .execute();
  const whole = capturedAmount(transaction);
  const [only] = refunds;
  if (refunds.length === 1 && only && only.amount === whole) {
    if (only.status === 'succeeded') return { kind: 'stale', transaction };
    return {
      kind: 'waiting',
      transaction,
      reason: `refund ${only.id} of the whole ${whole} ${transaction.currency} is ${only.status}: the void may be that refund`,
    };
  }
  const listed = refunds.map((r) => `${r.id} (${r.amount}, ${r.status})`).join(', ');
  return {
    kind: 'refused',
    transaction,
    reason:
      `${transaction.id} (${whole} ${transaction.currency} captured) has refunds ${listed} that are not one refund ` +
      'of the whole charge, so the void is not one of them (minor units)',
  };
}

/**
 * Records, inside `work`, a void the gateway reports of succeeded charge `known` that billhook did not
 * ask for (made in the gateway's own dashboard, e.g. Authorize.Net's Merchant Interface, before
 * settlement: no money moved, PRODUCT.md §11), as billhook's own void books it (`bookVoid`: the
 * invoice owed again, the payment's postings reversed, the subscription it may have reinstated left as
 * it is). Only what `POST /v1/transactions/:id/void` could void is booked (`whyNotVoidable`: a gateway
 * that voids succeeded charges until settlement, no dispute on it) on an invoice whose payment can be
 * taken back (`reversePayment`); anything else is `refused`, for the caller to raise for a person.
 * One with a refund of billhook's not failed is never booked (`voidBehindRefund`): `stale`, `waiting`
 * or `refused`. A repeat changes nothing (`duplicate`).
 */
export async function recordReportedVoid(
  work: UnitOfWork,
  known: TransactionRow,
): Promise<ReportedVoidOutcome> {
  const { transaction, invoice } = await lockForVoid(work, known);
  if (transaction.status === 'canceled') return { kind: 'duplicate', transaction };
  if (transaction.status !== 'succeeded') return { kind: 'stale', transaction };
  const refusal = await whyNotVoidable(work.trx, transaction);
  if (refusal?.code === 'transaction_refunded') return voidBehindRefund(work.trx, transaction);
  if (refusal) return { kind: 'refused', transaction, reason: refusal.message };
  try {
    const message = `voided at ${transaction.gateway}, not through billhook's API`;
    return { kind: 'applied', transaction: await bookVoid(work, transaction, invoice, message) };
  } catch (error) {
    if (!(error instanceof ConflictError) || error.code !== 'invoice_not_reversible') throw error;
    return { kind: 'refused', transaction, reason: error.message };
  }
}

/**
 * Voids payment attempt `id` (`POST /v1/transactions/:id/void`) at the gateway account it was charged
 * on (its `gateway_account`): an authorization or a payment not yet captured (`pending`, or `unknown` once the gateway named it), or, on a gateway that
 * voids until settlement (Authorize.Net), a succeeded charge it has not settled. The gateway decides
 * what it can still void; nothing is recorded until it confirms.
 * @throws NotFoundError `transaction_not_found`
 * @throws ConflictError (409) when it cannot be voided: the codes of `whyNotVoidable`,
 *   `gateway_not_configured`, `gateway_account_disabled` (the charge's account), `void_declined` (the gateway refused: settled, say; its code and message
 *   in the message), `invoice_not_reversible` (the invoice it paid was refunded or closed meanwhile)
 */
export async function voidTransaction(
  db: Db,
  actor: Actor,
  gateways: GatewayClients,
  id: string,
): Promise<VoidResult> {
  const transaction = await db.selectFrom('transactions').selectAll().where('id', '=', id).executeTakeFirst();
  if (!transaction) throw new NotFoundError('transaction', id);
  const refusal = await whyNotVoidable(db, transaction);
  if (refusal) throw refusal;
  const client = await clientForAccount(gateways, transaction.gateway, transaction.gateway_account);
  const outcome = await client.void({
    reference: transaction.id,
    gatewayTransactionId: transaction.gateway_transaction_id!,
    amount: transaction.amount,
    currency: transaction.currency,
  });
  if (outcome.status === 'declined') {
    throw new ConflictError(
      'void_declined',
      `${transaction.gateway} refused to void ${transaction.id}: ${outcome.code}: ${outcome.message}`,
    );
  }
  if (outcome.status === 'unknown') {
    await inUnitOfWork(db, { actor }, async (work) => {
      await transactionActivity(work, transaction, 'transaction.void_unknown');
      await raiseException(work, {
        kind: 'unknown_outcome',
        gateway: transaction.gateway,
        transactionId: transaction.id,
        message: `the void of ${transaction.id} got no answer from ${transaction.gateway} (${outcome.message}): check whether it was voided, then resolve`,
        details: { void: transaction.id },
      });
    });
    return { status: 'unknown', message: outcome.message, transaction };
  }
  const voided = await inUnitOfWork(db, { actor }, (work) => recordVoid(work, transaction));
  return { status: 'voided', transaction: voided };
}
