import type { Kysely } from 'kysely';
import { newId } from '../db/ids.ts';
import type { Database, TransactionRow } from '../db/schema.ts';
import type { GatewayName } from '../gateways/types.ts';

/** Why an event could not be reconciled automatically. */
export type ExceptionKind =
  | 'unknown_entity'
  | 'amount_mismatch'
  | 'currency_mismatch'
  | 'duplicate_payment'
  | 'refund_exceeds_paid'
  | 'unparseable_payload'
  | 'unknown_outcome';

/** A reconciliation problem for a person to resolve. */
export interface NewException {
  kind: ExceptionKind;
  gateway: GatewayName;
  inboxId?: string;
  transactionId?: string;
  message: string;
  details?: Record<string, unknown>;
}

/** Records an open reconciliation exception, once per (inbox event, kind) or, without an event, per (transaction, kind). */
export async function raiseException(trx: Kysely<Database>, exception: NewException): Promise<void> {
  await trx
    .insertInto('reconciliation_exceptions')
    .values({
      id: newId('rex'),
      kind: exception.kind,
      gateway: exception.gateway,
      inbox_id: exception.inboxId ?? null,
      transaction_id: exception.transactionId ?? null,
      message: exception.message,
      details: JSON.stringify(exception.details ?? {}, (_key, value) =>
        typeof value === 'bigint' ? value.toString() : value,
      ),
    })
    .onConflict((oc) =>
      exception.inboxId
        ? oc.columns(['inbox_id', 'kind']).where('inbox_id', 'is not', null).doNothing()
        : oc.columns(['transaction_id', 'kind']).where('inbox_id', 'is', null).doNothing(),
    )
    .execute();
}

/** The exception for a charge that succeeded on an invoice already paid: the customer paid twice. */
export function duplicatePayment(transaction: {
  id: string;
  invoice_id: string | null;
  gateway: GatewayName;
}): NewException {
  return {
    kind: 'duplicate_payment',
    gateway: transaction.gateway,
    transactionId: transaction.id,
    message: `transaction ${transaction.id} succeeded on invoice ${transaction.invoice_id}, which was already paid: refund it`,
  };
}

/** Raises `duplicatePayment` for a transaction, inside the transaction that recorded it (an `OnOverpaid`). */
export async function flagDuplicatePayment(
  trx: Kysely<Database>,
  transaction: TransactionRow,
): Promise<void> {
  await raiseException(trx, duplicatePayment(transaction));
}
