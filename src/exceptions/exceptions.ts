import { type Kysely, type RawBuilder, sql } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import { newId } from '../db/ids.ts';
import type { Database, ReconciliationExceptionRow, TransactionRow } from '../db/schema.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import type { GatewayName } from '../gateways/types.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';

/** Why an event could not be reconciled automatically. */
export type ExceptionKind =
  | 'unknown_entity'
  | 'amount_mismatch'
  | 'currency_mismatch'
  | 'duplicate_payment'
  | 'refund_exceeds_paid'
  /**
   * A refund that succeeded (made in the gateway's dashboard, or billhook's own while in flight)
   * paying back an invoice's overpayment the customer had already spent as credit: their credit
   * account is left in debit (payments/refunds.ts `recordRefundResult`).
   */
  | 'overpayment_credit_spent'
  /**
   * A refund that succeeded (made in the gateway's dashboard) giving back more than an invoice's
   * period kept once its subscription changes gave the customer credit for time it paid for: that
   * part is taken back from the customer's credit, left in debit for what it no longer held
   * (payments/refunds.ts `changeCreditTakenBackException`).
   */
  | 'refund_exceeds_change_credit'
  /**
   * A dispute won (or lost for less than it held) whose invoice gave money back while it was open
   * (payments/disputes.ts `returnedAfterGivingBack`): those refunds and credit notes counted the
   * disputed money as the customer's already (billing/invoice-payment.ts `disputedAway`), so the
   * customer may be owed up to what came back to the merchant (`details.amount`), to refund by hand.
   */
  | 'dispute_won_after_refund'
  /**
   * Money that left an invoice's payment outside billhook (a refund made at the gateway, a dispute
   * opened or lost) giving back again cash the invoice had given to the customer's credit for want of
   * a gateway step (`cash_credited`: Stripe KWD 660 refunded and 7 credited, then the 340 left taken
   * back at Stripe): a refund's part is taken back from that credit (payments/refunds.ts
   * `cashCreditedTwiceException`); a dispute's is for a person to recover (payments/disputes.ts
   * `cashCreditedDisputed`).
   */
  | 'cash_credited_given_back_twice'
  /**
   * A refund made at the gateway that gave back all the cash of an invoice some customer credit
   * also paid, on an invoice no cancellation's refund reaches (a one-off, a change's, an add-on's, a
   * past period's): that credit still pays it; whether it goes back too (`POST
   * /v1/invoices/:id/credit/return`) is the merchant's call (payments/refunds.ts `flagCreditKept`).
   */
  | 'invoice_credit_kept'
  /**
   * A dispute booked lost that the gateway now reports won, which billhook cannot book as the
   * chargeback's money coming back (payments/disputes.ts `wonAfterLoss`): nothing changed.
   */
  | 'dispute_won_after_loss'
  /**
   * A PayPal claim lost (`lostDisputePaidAsRefund`) that no refund paid within
   * `LOST_CLAIM_REFUND_DAYS` of its loss (payments/lost-claims.ts `flagUnpaidLostClaims`): its loss
   * stays booked, the overpayment credit it held is the customer's again, and a person finds out at
   * PayPal how the buyer was paid.
   */
  | 'lost_claim_unpaid'
  /**
   * A charge billhook booked as succeeded that the gateway now reports failed, or voided in a way
   * billhook cannot book as a void (reconcile/apply.ts `succeededChargeUndone`): nothing changed, a
   * person finds out what moved.
   */
  | 'succeeded_charge_undone'
  | 'unparseable_payload'
  | 'unknown_outcome'
  /**
   * A scheduled charge the gateway cannot take exactly or its account does not process the currency
   * of (gateways/currencies.ts): never sent; or one the gateway refused with a code it would repeat
   * (`refusalsNotRetried`: Stripe `amount_too_small`): not sent again. `details.code` says which.
   */
  | 'amount_not_representable'
  /** A stored webhook that kept failing and whose dead letter was deleted: never processed. */
  | 'abandoned_event'
  /**
   * A payout whose lines' nets do not sum to its amount (PRODUCT.md §13), counting the lines it holds
   * (a line another payout holds already stays there).
   */
  | 'payout_lines_mismatch'
  /**
   * A payout first recorded with lines that are all another payout's of its account already (one
   * deposit under two payout ids: eWAY's sweep's `<SettlementID>:<currency>` and a file's
   * `SettlementID`): its money is not moved (settlement/payouts.ts `recordPayout`); it names both.
   */
  | 'payout_lines_elsewhere'
  /**
   * A payout reported again (a later sweep, a webhook) with another amount or currency than it was
   * recorded with: it stays booked as first recorded (settlement/payouts.ts `changedPayout`).
   */
  | 'payout_changed'
  /** A settlement line about a charge, refund or dispute billhook does not know. */
  | 'settlement_line_unmatched'
  /**
   * A settlement line of kind `adjustment` (money the gateway moved that billhook does not book
   * itself: a reserve, a correction, a PayPal row of a code it does not know), booked into clearing
   * against settlement adjustments until a person classifies it (settlement/lines.ts).
   */
  | 'settlement_adjustment'
  /**
   * A settlement line billhook recorded but cannot book (its `unbooked` reason, e.g. a PayPal currency
   * conversion row): nothing of it is in the books until a person books it.
   */
  | 'settlement_line_unbooked'
  /**
   * A settlement line the gateway reported again under the same line id with another currency,
   * gross, fee or `original` (settlement/lines.ts `changedLine`): the new version books nothing; a
   * person finds which is right and books the difference.
   */
  | 'settlement_line_changed'
  /**
   * Something a gateway's settlement data holds that billhook cannot read (an Authorize.Net batch
   * whose currency cannot be known, an eWAY settlement whose transactions do not add up to its
   * summary: `SettlementReport.unread`): not in the books; every sync reads back to it until it is
   * booked, which resolves this (settlement/sync.ts `syncSettlements`).
   */
  | 'settlement_unread'
  /** A succeeded charge in no payout after the gateway's payout delay plus a margin. */
  | 'charge_not_paid_out'
  /** A fee that differs from the configured expectation for its gateway and currency. */
  | 'unexpected_fee';

/** A reconciliation problem for a person to resolve. */
export interface NewException {
  kind: ExceptionKind;
  gateway: GatewayName;
  inboxId?: string;
  transactionId?: string;
  /**
   * The refund, payout (`pyo_…`) or settlement line (`stl_…`) it is about: without an event, one
   * exception is kept per (transaction, kind, refund, payout, settlement line).
   */
  refundId?: string;
  payoutId?: string;
  settlementLineId?: string;
  /** The gateway account (`gwa_…`) it is about; absent for the default account. */
  gatewayAccount?: string | null;
  /**
   * What this occurrence is about beyond the transaction, kind, refund, payout and settlement line
   * (or the inbox event): the dispute (`dp_…`) or the entry (`dp_…:overpayment_charged_back`) that
   * raised it. Part of the key that keeps an exception once: another occurrence of the same kind on
   * the same transaction (another dispute, another entry) opens its own exception; a replay raises
   * the same occurrence and is not recorded again. Absent: '' (one per key, as before).
   */
  occurrence?: string;
  message: string;
  details?: Record<string, unknown>;
}

/**
 * Records an open reconciliation exception, once per (inbox event, kind, occurrence) or, without an
 * event, per (transaction, kind, refund, payout, settlement line, occurrence): a second one with the
 * same key (a replay of the same event or report) is not recorded again; one about another
 * occurrence (`occurrence`: another dispute of the same payment, another entry) is.
 */
export async function raiseException(work: UnitOfWork, exception: NewException): Promise<void> {
  const row = await work.trx
    .insertInto('reconciliation_exceptions')
    .values({
      id: newId('rex'),
      kind: exception.kind,
      gateway: exception.gateway,
      inbox_id: exception.inboxId ?? null,
      transaction_id: exception.transactionId ?? null,
      refund_id: exception.refundId ?? null,
      payout_id: exception.payoutId ?? null,
      settlement_line_id: exception.settlementLineId ?? null,
      gateway_account: exception.gatewayAccount ?? null,
      occurrence: exception.occurrence ?? '',
      message: exception.message,
      details: JSON.stringify(exception.details ?? {}, (_key, value) =>
        typeof value === 'bigint' ? value.toString() : value,
      ),
    })
    .onConflict((oc) =>
      exception.inboxId
        ? oc.columns(['inbox_id', 'kind', 'occurrence']).where('inbox_id', 'is not', null).doNothing()
        : oc
            .columns(['transaction_id', 'kind', 'refund_id', 'payout_id', 'settlement_line_id', 'occurrence'])
            .where('inbox_id', 'is', null)
            .doNothing(),
    )
    .returning(EXCEPTION_SUBJECT)
    .executeTakeFirst();
  if (row) {
    await recordActivity(work, {
      resourceType: 'reconciliation_exception',
      resourceId: row.id,
      action: 'reconciliation_exception.opened',
      customerId: await exceptionCustomer(work.trx, row),
      data: { kind: row.kind, transaction: row.transaction_id, inbox: exception.inboxId ?? null },
    });
  }
}

/** The columns of an exception that say what it is about (its payment, refund, settlement line, invoice). */
const EXCEPTION_SUBJECT = [
  'id',
  'kind',
  'transaction_id',
  'refund_id',
  'settlement_line_id',
  'details',
] as const satisfies readonly (keyof ReconciliationExceptionRow)[];

/** What {@link exceptionCustomer} reads of an exception row. */
type ExceptionSubject = Pick<ReconciliationExceptionRow, (typeof EXCEPTION_SUBJECT)[number]>;

/**
 * The customer of a payment, as SQL: the payment's own customer, else its invoice's (the rule a
 * payment refund stores, payments/refunds.ts `createRefund`); null when `transactionId` (a `txn_…`,
 * or a query giving one) names none or no payment. The one place this rule is read from the database.
 */
function paymentCustomerSql(
  transactionId: string | null | RawBuilder<string | null>,
): RawBuilder<string | null> {
  return sql<string | null>`(SELECT coalesce(t.customer_id, i.customer_id) FROM transactions t
    LEFT JOIN invoices i ON i.id = t.invoice_id WHERE t.id = ${transactionId}::text)`;
}

/**
 * The customer (`cus_…`) payment `transactionId` is about, for the activities of what happens to it
 * (a dispute's: payments/disputes.ts): its own customer, else its invoice's, as refunds and
 * exceptions name it ({@link exceptionCustomer}). Null when it names neither.
 */
export async function paymentCustomer(trx: Kysely<Database>, transactionId: string): Promise<string | null> {
  const found = await sql<{
    customer: string | null;
  }>`SELECT ${paymentCustomerSql(transactionId)} AS customer`.execute(trx);
  return found.rows[0]?.customer ?? null;
}

/**
 * The customer (`cus_…`) an exception is about, for its activities (and so the outbound
 * `reconciliation_exception.opened` event, and `GET /v1/activities?customer=`): its payment's
 * customer, else that payment's invoice's ({@link paymentCustomer}); else its refund's
 * (`refunds.customer_id`); else that of the payment its settlement line matched; else the invoice its
 * `details.invoice` names. Null when it names none of them (an event about a payment billhook does
 * not know, a payout's fee).
 */
export async function exceptionCustomer(
  trx: Kysely<Database>,
  row: ExceptionSubject,
): Promise<string | null> {
  const invoice = typeof row.details?.invoice === 'string' ? row.details.invoice : null;
  if (!row.transaction_id && !row.refund_id && !row.settlement_line_id && !invoice) return null;
  const lineTransaction = sql<string | null>`(SELECT transaction_id FROM settlement_lines
    WHERE id = ${row.settlement_line_id}::text)`;
  const found = await sql<{ customer: string | null }>`
    SELECT coalesce(
      ${paymentCustomerSql(row.transaction_id)},
      (SELECT customer_id FROM refunds WHERE id = ${row.refund_id}::text),
      ${paymentCustomerSql(lineTransaction)},
      (SELECT customer_id FROM invoices WHERE id = ${invoice}::text)
    ) AS customer`.execute(trx);
  return found.rows[0]?.customer ?? null;
}

/**
 * Whether an exception of `kind` about transaction `transactionId` (raised with its event or without,
 * open or resolved) names `value` as `details[key]` (e.g. `dispute`: a `dp_…`): for a writer that
 * raises one exception about a thing, whichever path raised it first. `legacy`: text that the
 * message of such an exception raised before its details named the thing contains (billhook's own
 * wording with the thing's id): one without `details[key]` whose message contains it counts too.
 */
export async function exceptionNames(
  trx: Kysely<Database>,
  exception: { transactionId: string; kind: ExceptionKind; key: string; value: string; legacy?: string },
): Promise<boolean> {
  const { legacy } = exception;
  const row = await trx
    .selectFrom('reconciliation_exceptions')
    .select('id')
    .where('transaction_id', '=', exception.transactionId)
    .where('kind', '=', exception.kind)
    .where((eb) =>
      eb.or([
        eb(sql<string>`details->>${exception.key}`, '=', exception.value),
        ...(legacy === undefined
          ? []
          : [sql<boolean>`NOT (details ? ${exception.key}) AND strpos(message, ${legacy}) > 0`]),
      ]),
    )
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * The exception for a charge that succeeded for more than its invoice had left due: the customer
 * paid twice (the invoice was paid already, or paid in part some other way meanwhile), `excess` (minor
 * units of the transaction's currency) beyond what was due, which became their credit. Its message
 * names the excess and the call that refunds it (the invoice's refund, `transaction` = it, with the
 * excess as `amount` when it is less than what the charge moved: its `amount_captured`, else its
 * `amount`).
 */
export function duplicatePayment(
  transaction: Pick<
    TransactionRow,
    'id' | 'invoice_id' | 'gateway' | 'currency' | 'amount' | 'amount_captured'
  >,
  excess: bigint,
): NewException {
  const money = `${excess} ${transaction.currency}`;
  const moved = transaction.amount_captured ?? transaction.amount;
  const amount = excess < moved ? `, "amount": ${excess}` : '';
  return {
    kind: 'duplicate_payment',
    gateway: transaction.gateway,
    transactionId: transaction.id,
    message: transaction.invoice_id
      ? `transaction ${transaction.id} succeeded on invoice ${transaction.invoice_id} for ${money} more than it had left due (${excess < moved ? 'paid in part some other way meanwhile' : 'it was already paid'}), which is the customer's credit: refund it with POST /v1/invoices/${transaction.invoice_id}/refund {"transaction": "${transaction.id}"${amount}}`
      : `transaction ${transaction.id} succeeded for ${money} more than its invoice had left due: refund it`,
    details: { invoice: transaction.invoice_id, excess },
  };
}

/**
 * Raises `duplicatePayment` for a transaction that brought `excess` beyond what its invoice had due,
 * inside the transaction that recorded it (an `OnOverpaid`).
 */
export async function flagDuplicatePayment(
  work: UnitOfWork,
  transaction: TransactionRow,
  excess: bigint,
): Promise<void> {
  await raiseException(work, duplicatePayment(transaction, excess));
}

/**
 * Marks an open exception resolved (a person dealt with it), with an optional note, and logs it.
 * @throws NotFoundError when there is no exception `id`; ConflictError `exception_already_resolved`
 */
export async function resolveException(
  db: Kysely<Database>,
  actor: Actor,
  id: string,
  note?: string,
): Promise<ReconciliationExceptionRow> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const current = await work.trx
      .selectFrom('reconciliation_exceptions')
      .selectAll()
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirst();
    if (!current) throw new NotFoundError('reconciliation_exception', id);
    if (current.status === 'resolved') {
      throw new ConflictError(
        'exception_already_resolved',
        `exception ${id} was resolved at ${current.resolved_at?.toISOString()}`,
      );
    }
    const row = await work.trx
      .updateTable('reconciliation_exceptions')
      .set({ status: 'resolved', resolved_at: new Date() })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordActivity(work, {
      resourceType: 'reconciliation_exception',
      resourceId: id,
      action: 'reconciliation_exception.resolved',
      customerId: await exceptionCustomer(work.trx, row),
      data: { kind: row.kind, note: note ?? null },
    });
    return row;
  });
}

/**
 * Resolves, in `work`, the open exceptions of `kind` about settlement line `settlementLineId`
 * (`stl_…`) once what they ask no longer holds, each with the note and a
 * `reconciliation_exception.resolved` activity: `settlement_line_unmatched` once the line matched
 * (billhook learned its charge, refund or dispute after the line arrived), `settlement_line_unbooked`
 * once what it asked a person to book is booked by another line (a PayPal conversion row of a
 * payment whose converted capture line was booked since, settlement/lines.ts `resolveConversionsOf`).
 * @returns how many were resolved
 */
export async function resolveLineExceptions(
  work: UnitOfWork,
  settlementLineId: string,
  kind: 'settlement_line_unmatched' | 'settlement_line_unbooked',
  note: string,
): Promise<number> {
  const rows = await work.trx
    .updateTable('reconciliation_exceptions')
    .set({ status: 'resolved', resolved_at: new Date() })
    .where('settlement_line_id', '=', settlementLineId)
    .where('kind', '=', kind)
    .where('status', '=', 'open')
    .returning(EXCEPTION_SUBJECT)
    .execute();
  return resolvedBy(work, rows, note);
}

/**
 * Resolves, in `work`, the open exceptions of `kind` about refund `refundId` (`re_…`) once what they
 * ask a person to do no longer holds (a `refund_exceeds_change_credit` whose refund failed after
 * succeeding: the credit it took back is the customer's again, payments/refunds.ts
 * `recordRefundResult`), each with the note and a `reconciliation_exception.resolved` activity.
 * @returns how many were resolved
 */
export async function resolveRefundExceptions(
  work: UnitOfWork,
  refundId: string,
  kind: ExceptionKind,
  note: string,
): Promise<number> {
  const rows = await work.trx
    .updateTable('reconciliation_exceptions')
    .set({ status: 'resolved', resolved_at: new Date() })
    .where('refund_id', '=', refundId)
    .where('kind', '=', kind)
    .where('status', '=', 'open')
    .returning(EXCEPTION_SUBJECT)
    .execute();
  return resolvedBy(work, rows, note);
}

/**
 * Resolves, in `work`, the open exceptions of `kind` about transaction `transactionId` raised for
 * `occurrence` (a dispute `dp_…`: `NewException.occurrence`) once what they ask a person to do no
 * longer holds (a `lost_claim_unpaid` whose claim the refund PayPal pays it with has now carried,
 * payments/disputes.ts `settleLostDisputeByRefund`), each with the note and a
 * `reconciliation_exception.resolved` activity.
 * @returns how many were resolved
 */
export async function resolveOccurrenceExceptions(
  work: UnitOfWork,
  exception: { transactionId: string; kind: ExceptionKind; occurrence: string },
  note: string,
): Promise<number> {
  const rows = await work.trx
    .updateTable('reconciliation_exceptions')
    .set({ status: 'resolved', resolved_at: new Date() })
    .where('transaction_id', '=', exception.transactionId)
    .where('kind', '=', exception.kind)
    .where('occurrence', '=', exception.occurrence)
    .where('status', '=', 'open')
    .returning(EXCEPTION_SUBJECT)
    .execute();
  return resolvedBy(work, rows, note);
}

/**
 * Resolves, in `work`, the open `amount_not_representable` exceptions about the attempts of invoice
 * `invoiceId` (`inv_…`) once it ended without them: paid another way (a charge by hand, an offline
 * payment, a prorated credit) or voided. Each such exception was raised on a failed attempt of the
 * invoice (payments/charges.ts `setAsideUnsendableCharge`: Stripe `amount_too_small` for USD 0.30,
 * an Authorize.Net account that does not process CAD), asking a person to do just that; `note` says
 * how the invoice ended. Each gets a `reconciliation_exception.resolved` activity.
 * @returns how many were resolved
 */
export async function resolveSetAsideCharges(
  work: UnitOfWork,
  invoiceId: string,
  note: string,
): Promise<number> {
  const rows = await work.trx
    .updateTable('reconciliation_exceptions')
    .set({ status: 'resolved', resolved_at: new Date() })
    .where('kind', '=', 'amount_not_representable')
    .where('status', '=', 'open')
    .where('transaction_id', 'in', (eb) =>
      eb.selectFrom('transactions').select('id').where('invoice_id', '=', invoiceId),
    )
    .returning(EXCEPTION_SUBJECT)
    .execute();
  return resolvedBy(work, rows, note);
}

/**
 * Resolves, with `note`, the open `settlement_unread` exceptions of the gateway account (`gateway`,
 * `gatewayAccount`: null for its default account) whose left-out item (`details.id`, a gateway payout
 * id) is among `payoutIds`: a later settlement sync read it and booked it as a payout
 * (settlement/sync.ts). Each gets a `reconciliation_exception.resolved` activity.
 * @returns how many were resolved
 */
export async function resolveUnreadSettlements(
  work: UnitOfWork,
  account: { gateway: GatewayName; gatewayAccount: string | null },
  payoutIds: readonly string[],
  note: string,
): Promise<number> {
  if (payoutIds.length === 0) return 0;
  const rows = await work.trx
    .updateTable('reconciliation_exceptions')
    .set({ status: 'resolved', resolved_at: new Date() })
    .where('kind', '=', 'settlement_unread')
    .where('status', '=', 'open')
    .where('gateway', '=', account.gateway)
    .where(sql<boolean>`gateway_account IS NOT DISTINCT FROM ${account.gatewayAccount}`)
    .where(sql<string>`details->>'id'`, 'in', payoutIds)
    .returning(EXCEPTION_SUBJECT)
    .execute();
  return resolvedBy(work, rows, note);
}

/** Logs the `reconciliation_exception.resolved` activity, with `note`, of each exception `rows` resolved in `work`. */
async function resolvedBy(
  work: UnitOfWork,
  rows: readonly ExceptionSubject[],
  note: string,
): Promise<number> {
  const activities = [];
  for (const row of rows) {
    activities.push({
      resourceType: 'reconciliation_exception',
      resourceId: row.id,
      action: 'reconciliation_exception.resolved',
      customerId: await exceptionCustomer(work.trx, row),
      data: { kind: row.kind, note },
    });
  }
  await recordActivity(work, ...activities);
  return rows.length;
}
