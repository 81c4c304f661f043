import { type Kysely, sql } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import { capturedAmount } from '../billing/invoice-payment.ts';
import { applyPayment, lockInvoice, lockInvoiceSubscriptions } from '../billing/invoices.ts';
import { DEFAULT_RENEWAL_POLICY, type RenewalPolicy } from '../billing/renewal.ts';
import type {
  Database,
  InvoiceRow,
  TransactionListRow,
  TransactionRow,
  TransactionStatus,
} from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';
import type { GatewayName } from '../gateways/types.ts';
import { postEntry } from '../ledger/journal.ts';
import { entryKeys, paymentOverpaid, paymentSucceeded } from '../ledger/movements.ts';
import { UnitOfWork } from '../ledger/unit-of-work.ts';
import { resplitOverpayment } from './overpayment-shares.ts';

/**
 * A charge's result as learned from a gateway response, a webhook or a poll. `amountCaptured`, for a
 * succeeded charge only: what moved when the gateway captured less than the transaction's amount (a
 * partial capture, minor units, more than 0 and less than the amount); absent when all of it moved.
 */
export interface ChargeResult {
  status: TransactionStatus;
  gatewayTransactionId?: string;
  amountCaptured?: bigint;
  failureCode?: string;
  failureMessage?: string;
}

/**
 * Forward-only transitions of a transaction (PRODUCT.md §3). `failed → succeeded` is allowed because
 * a gateway can still capture money after reporting a failure (a Stripe PaymentIntent re-confirmed);
 * the reverse never happens, so every delivery order ends in the same state.
 */
const NEXT: Readonly<Record<TransactionStatus, readonly TransactionStatus[]>> = {
  pending: ['unknown', 'succeeded', 'failed', 'canceled'],
  unknown: ['pending', 'succeeded', 'failed', 'canceled'],
  failed: ['succeeded'],
  canceled: [],
  succeeded: [],
};

/**
 * Called inside the recording transaction when a charge succeeded for more than its invoice had left
 * due (money moved twice: the invoice paid already, or paid in part some other way meanwhile, as by
 * an offline payment while the charge had failed), `excess` the minor units beyond what was due (the
 * customer's credit): the caller raises the exception a person acts on.
 */
export type OnOverpaid = (work: UnitOfWork, transaction: TransactionRow, excess: bigint) => Promise<void>;

/**
 * What recording a result did: `applied` with `overpaid` when the charge brought more than its
 * invoice had due, `excess` that much (minor units, 0 when not overpaid).
 */
export type RecordOutcome =
  | { kind: 'applied'; transaction: TransactionRow; overpaid: boolean; excess: bigint }
  | { kind: 'duplicate' | 'stale'; transaction: TransactionRow };

/** Whom a payment event is about: the gateway's transaction id, our reference (`txn_…`), or both. */
export interface TransactionTarget {
  gateway: GatewayName;
  gatewayTransactionId?: string | undefined;
  reference?: string | undefined;
}

/**
 * Locks the transactions `targets` name (by the gateway's id or our reference), their invoices and
 * those invoices' subscriptions, in three statements, each in id order: the subscriptions, the
 * invoices, then the transactions (the lock order: a subscription before its invoices, `lockInvoice`;
 * one invoice before its transactions, as `recordChargeResult` does for one). The invoices and
 * transactions are held for `work` (`UnitOfWork.hold`): `findTransaction`, `lockInvoice` and
 * `lockTransaction` then answer from them without a statement, each row once, and a payment that
 * reinstates its subscription (`reinstateAfterPayment`) finds it locked already. Batch
 * reconciliation calls it before applying a hundred charge events, which would otherwise take three
 * statements each to find and lock.
 *
 * The keys go in as arrays joined through `unnest`, so the statements' text does not depend on the
 * batch: PostgreSQL plans them in well under a millisecond, where a list of a hundred `(gateway, id)`
 * pairs in `IN` took it 15-18 ms to plan (pg_stat_statements), more than running it.
 */
export async function lockTransactionsAhead(
  work: UnitOfWork,
  targets: readonly TransactionTarget[],
): Promise<void> {
  const byGatewayId = targets.filter((t) => t.gatewayTransactionId);
  const byReference = targets.filter((t) => t.reference);
  if (byGatewayId.length === 0 && byReference.length === 0) return;
  const named = sql<string>`(
    SELECT t.id FROM transactions t
      JOIN unnest(${byGatewayId.map((t) => t.gateway)}::text[], ${byGatewayId.map((t) => t.gatewayTransactionId)}::text[])
        AS k (gateway, key) ON t.gateway = k.gateway AND t.gateway_transaction_id = k.key
    UNION
    SELECT t.id FROM transactions t
      JOIN unnest(${byReference.map((t) => t.gateway)}::text[], ${byReference.map((t) => t.reference)}::text[])
        AS k (gateway, key) ON t.gateway = k.gateway AND t.id = k.key
  )`;
  const invoiceIds = work.trx
    .selectFrom('transactions')
    .select('invoice_id')
    .where('id', 'in', named)
    .where('invoice_id', 'is not', null)
    .$narrowType<{ invoice_id: string }>();
  await lockInvoiceSubscriptions(work, invoiceIds);
  const invoices = await work.trx
    .selectFrom('invoices')
    .selectAll()
    .where('id', 'in', invoiceIds)
    .orderBy('id')
    .forUpdate()
    .execute();
  work.hold('invoices', invoices);
  const transactions = await work.trx
    .selectFrom('transactions')
    .selectAll()
    .where('id', 'in', named)
    .orderBy('id')
    .forUpdate()
    .execute();
  work.hold('transactions', transactions);
}

/**
 * Writes the rows `work` changed and has not written yet, and drops the rows `lockTransactionsAhead`
 * held for it (their locks stay until it ends): call it before work in `work` that reads or changes
 * invoices or transactions with its own statements rather than through `lockInvoice` /
 * `lockTransaction` / `UnitOfWork.update`.
 */
export function forgetLockedAhead(work: UnitOfWork): Promise<void> {
  return work.forgetHeld();
}

/**
 * Finds a transaction by the gateway's id, else by our reference (`txn_…`), without locking (or,
 * when `reader` is a unit of work that locked it ahead and has not taken it yet, as locked).
 * @returns undefined when neither matches
 */
export async function findTransaction(
  reader: UnitOfWork | Kysely<Database>,
  gateway: GatewayName,
  gatewayTransactionId: string | undefined,
  reference: string | undefined,
): Promise<TransactionRow | undefined> {
  const work = reader instanceof UnitOfWork ? reader : undefined;
  const db = work ? work.trx : (reader as Kysely<Database>);
  if (gatewayTransactionId) {
    const held = work?.findHeld(
      'transactions',
      (row) => row.gateway === gateway && row.gateway_transaction_id === gatewayTransactionId,
    );
    if (held) return held;
    // PostgreSQL must have the rows the unit changed before it is asked about them.
    await work?.writeRows();
    const row = await db
      .selectFrom('transactions')
      .selectAll()
      .where('gateway', '=', gateway)
      .where('gateway_transaction_id', '=', gatewayTransactionId)
      .executeTakeFirst();
    if (row) return row;
  }
  if (reference) {
    const held = work?.findHeld('transactions', (row) => row.gateway === gateway && row.id === reference);
    if (held) return held;
    await work?.writeRows();
    return db
      .selectFrom('transactions')
      .selectAll()
      .where('id', '=', reference)
      .where('gateway', '=', gateway)
      .executeTakeFirst();
  }
  return undefined;
}

/**
 * An invoice's payments as `/v1/transactions` lists them, oldest first: its gateway payment attempts
 * and the offline payments recorded on it (`type` `offline`), from the `transaction_list` view.
 */
export async function invoiceTransactions(
  db: Kysely<Database>,
  invoiceId: string,
): Promise<TransactionListRow[]> {
  return db
    .selectFrom('transaction_list')
    .selectAll()
    .where('invoice_id', '=', invoiceId)
    .orderBy('sort_key')
    .execute();
}

/**
 * Locks payments `ids` (`FOR UPDATE`, in id order) inside `work` without reading them: what holds a
 * payment without an invoice while its refund room is read (`createRefund`), as an invoice's lock
 * does for its payments. In the lock order every unit keeps: after subscriptions and invoices, before
 * the customer's credit (`lockCustomerCredit`); a row `work` holds already is not waited for.
 */
export async function lockPayments(work: UnitOfWork, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await work.trx
    .selectFrom('transactions')
    .select('id')
    .where('id', 'in', [...ids])
    .orderBy('id')
    .forUpdate()
    .execute();
}

async function lockTransaction(work: UnitOfWork, id: string): Promise<TransactionRow> {
  const held = work.take('transactions', id);
  if (held) return held;
  const row = await work.trx
    .selectFrom('transactions')
    .selectAll()
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw new NotFoundError('transaction', id);
  return row;
}

/** Logs a change of a payment attempt (activities), e.g. `transaction.succeeded`, inside `work.trx`. */
export function transactionActivity(
  work: UnitOfWork,
  transaction: TransactionRow,
  action: string,
): Promise<void> {
  return recordActivity(work, {
    resourceType: 'transaction',
    resourceId: transaction.id,
    action,
    customerId: transaction.customer_id,
    data: {
      invoice: transaction.invoice_id,
      gateway: transaction.gateway,
      gateway_transaction_id: transaction.gateway_transaction_id,
      amount: transaction.amount,
      amount_captured: transaction.amount_captured,
      currency: transaction.currency,
      status: transaction.status,
      failure_code: transaction.failure_code,
    },
  });
}

/**
 * Locks a transaction's invoice (its subscription first: `lockInvoice`), then the transaction: always
 * in this order, so charges, webhooks and refunds on one invoice serialise without deadlocks, and a
 * payment that reinstates the subscription (`applyPayment`) never waits for it holding the invoice.
 * (A transaction never changes invoice, so the caller's earlier read of `invoice_id` stays right.)
 */
async function lockWithInvoice(
  work: UnitOfWork,
  known: Pick<TransactionRow, 'id' | 'invoice_id'>,
): Promise<{ transaction: TransactionRow; invoice: InvoiceRow | undefined }> {
  await work.joinLedgerWriters();
  const invoice = known.invoice_id ? await lockInvoice(work, known.invoice_id) : undefined;
  return { transaction: await lockTransaction(work, known.id), invoice };
}

/**
 * A gateway id already recorded for another of our transactions cannot be this attempt's too (the
 * gateway answered about some other payment): the attempt's outcome stays open (`unknown`), for the
 * poller to ask by our reference, and the id is not recorded.
 */
async function unlessIdTaken(
  work: UnitOfWork,
  transaction: TransactionRow,
  result: ChargeResult,
): Promise<ChargeResult> {
  const id = result.gatewayTransactionId;
  if (!id || id === transaction.gateway_transaction_id) return result;
  await work.writeRows();
  const other = await work.trx
    .selectFrom('transactions')
    .select('id')
    .where('gateway', '=', transaction.gateway)
    .where('gateway_transaction_id', '=', id)
    .where('id', '!=', transaction.id)
    .executeTakeFirst();
  if (!other) return result;
  return {
    status: 'unknown',
    failureCode: 'gateway_id_in_use',
    failureMessage: `${transaction.gateway} answered with ${id}, which is already transaction ${other.id}`,
  };
}

/**
 * Applies a charge result to a transaction, forward-only, inside `work`. On success it posts the
 * payment once (`txn_…:succeeded`: debit the gateway's clearing account, credit the customer's
 * receivable, for what moved: `capturedAmount`, less than the amount after a partial capture, which
 * is stored as `amount_captured`) and pays the invoice down by it (paid, or still OPEN with the rest
 * due after a partial capture); what it paid beyond the invoice's amount due becomes the
 * customer's credit (`txn_…:overpaid`: debit the receivable, credit their credit account), as
 * Chargebee's excess payments and Zuora's unapplied payments are; the invoice's lost disputes then
 * take their share of it (payments/overpayment-shares.ts `resplitOverpayment`: a chargeback gave that
 * money back already). Safe to call again with the same result: it changes nothing.
 * @param onOverpaid told (in the transaction) when the charge brought more than the invoice had left
 * due, with that excess: a second successful payment (nothing was due) or one beyond a part paid
 * meanwhile, for a person to refund
 * @param policy the configuration's renewal policy (`BILL_SUSPENDED_SUBSCRIPTIONS`), under which a
 * payment that reinstates its subscription resumes it (`applyPayment`)
 * @returns `applied` (with `overpaid` as above), `duplicate` for the same state, `stale` for an older state
 */
export async function recordChargeResult(
  work: UnitOfWork,
  known: Pick<TransactionRow, 'id' | 'invoice_id'>,
  reported: ChargeResult,
  onOverpaid?: OnOverpaid,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<RecordOutcome> {
  const transactionId = known.id;
  const { transaction, invoice } = await lockWithInvoice(work, known);
  const result = await unlessIdTaken(work, transaction, reported);
  if (transaction.status === result.status) {
    if (!result.gatewayTransactionId || transaction.gateway_transaction_id)
      return { kind: 'duplicate', transaction };
    // Same state, but now we know the gateway's id (a pending charge's first answer).
    const learned = await work.update('transactions', transaction, {
      gateway_transaction_id: result.gatewayTransactionId,
      updated_at: new Date(),
    });
    return { kind: 'duplicate', transaction: learned };
  }
  if (!NEXT[transaction.status].includes(result.status)) return { kind: 'stale', transaction };
  const changes = {
    status: result.status,
    gateway_transaction_id: result.gatewayTransactionId ?? transaction.gateway_transaction_id,
    // A partial capture: what moved (the column's CHECK keeps it above 0 and below the amount).
    amount_captured:
      result.status === 'succeeded' && result.amountCaptured !== undefined ? result.amountCaptured : null,
    failure_code: result.status === 'succeeded' ? null : (result.failureCode ?? transaction.failure_code),
    failure_message:
      result.status === 'succeeded' ? null : (result.failureMessage ?? transaction.failure_message),
    updated_at: new Date(),
  };
  // The row is locked and no trigger rewrites it: the updated row is the locked one with the changes
  // (written now, or with the batch's other rows when the unit defers).
  const updated = await work.update('transactions', transaction, changes);
  await transactionActivity(work, updated, `transaction.${result.status}`);
  let excess = 0n;
  if (result.status === 'succeeded') {
    const moved = capturedAmount(updated);
    const customer = transaction.customer_id ?? invoice?.customer_id;
    if (customer) {
      await postEntry(
        work,
        paymentSucceeded({
          transactionId,
          gateway: transaction.gateway,
          gatewayAccount: transaction.gateway_account,
          customerId: customer,
          currency: transaction.currency,
          amount: moved,
        }),
      );
    }
    if (invoice) {
      // A partial capture pays the invoice down by what moved; the rest stays due (OPEN, chargeable).
      await applyPayment(
        work,
        invoice,
        moved,
        new Date(),
        policy,
        `charge ${transactionId} (${transaction.gateway})`,
      );
      if (moved > invoice.amount_due) excess = moved - invoice.amount_due;
      if (customer && excess > 0n) {
        // Paid beyond what the invoice asked: the customer's credit, for their next invoices or a refund.
        await postEntry(
          work,
          paymentOverpaid({
            transactionId,
            invoiceId: invoice.id,
            customerId: customer,
            currency: transaction.currency,
            amount: excess,
          }),
        );
        // A lost dispute of the invoice gave the customer back in cash what is overpaid now.
        await resplitOverpayment(work, invoice.id, entryKeys.paymentOverpaid(transactionId));
      }
      if (excess > 0n) await onOverpaid?.(work, updated, excess);
    }
  }
  return { kind: 'applied', transaction: updated, overpaid: excess > 0n, excess };
}

/**
 * The currency (ISO 4217) of billhook's charge (`txn_…`) or refund (`re_…`) with this id, or
 * undefined when there is none.
 */
export async function currencyOfReference(
  db: Kysely<Database>,
  reference: string,
): Promise<string | undefined> {
  const table = reference.startsWith('re_') ? 'refunds' : 'transactions';
  const row = await db.selectFrom(table).select('currency').where('id', '=', reference).executeTakeFirst();
  return row?.currency;
}

/**
 * True when billhook waits on a charge of `gateway` whose gateway id it does not know: pending or
 * unknown, without `gateway_transaction_id` (its answer was lost, a timeout or 5xx). Only then can a
 * gateway's hint about a transaction id billhook has not recorded be about one of billhook's charges.
 */
export async function hasUnidentifiedCharge(db: Kysely<Database>, gateway: GatewayName): Promise<boolean> {
  const row = await db
    .selectFrom('transactions')
    .select('id')
    .where('status', 'in', ['pending', 'unknown'])
    .where('gateway', '=', gateway)
    .where('gateway_transaction_id', 'is', null)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}
