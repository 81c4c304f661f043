import type { Kysely } from 'kysely';
import { newId } from '../db/ids.ts';
import type { Database } from '../db/schema.ts';
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
