import { AsyncLocalStorage } from 'node:async_hooks';
import { type Kysely, sql } from 'kysely';
import { DeferredWrites } from '../db/deferred-writes.ts';
import { newId } from '../db/ids.ts';
import type { ActivityRow, Database } from '../db/schema.ts';
import { joinLedgerWriters, quiesceLedgerWriters } from '../ledger/journal.ts';

const actors = new AsyncLocalStorage<string>();

/**
 * Runs `fn` with `actor` as the author of every activity it records: an API key id (`key_…`),
 * `webhook:<gateway>`, `scheduler`, `worker` or `cli`. Outside any `runAs`, the actor is `system`.
 */
export function runAs<T>(actor: string, fn: () => T): T {
  return actors.run(actor, fn);
}

/** The actor of the current call chain (see `runAs`). */
export function currentActor(): string {
  return actors.getStore() ?? 'system';
}

/** One state change to log. `action` is `<resource>.<verb>` in the past tense, e.g. `invoice.finalized`. */
export interface ActivityInput {
  resourceType: string;
  resourceId: string;
  action: string;
  customerId?: string | null;
  /** What changed (JSON; bigints are written as decimal strings). */
  data?: Record<string, unknown>;
}

/** A row of `activities` as inserted. */
type NewActivityRow = {
  id: string;
  resource_type: string;
  resource_id: string;
  action: string;
  customer_id: string | null;
  actor: string;
  data: string;
};

/**
 * Appends activities to the audit log inside `trx`, the transaction that makes the change, so the log
 * and the state never disagree. `trx` must have joined the ledger's writers before its first row lock
 * or write (open it with `writeTransaction`, db/write-transaction.ts): the join here is only a
 * fallback, too late once `trx` holds a row another writer waits for. Inside
 * `withDeferredActivities` the rows are collected and inserted together at its end.
 */
export async function recordActivity(trx: Kysely<Database>, ...inputs: ActivityInput[]): Promise<void> {
  if (inputs.length === 0) return;
  const actor = currentActor();
  const rows = inputs.map((input) => ({
    id: newId('act'),
    resource_type: input.resourceType,
    resource_id: input.resourceId,
    action: input.action,
    customer_id: input.customerId ?? null,
    actor,
    data: JSON.stringify(input.data ?? {}, (_key, value) =>
      typeof value === 'bigint' ? value.toString() : value,
    ),
  }));
  if (!deferred.collect(trx, rows)) await insertActivities(trx, rows);
}

async function insertActivities(trx: Kysely<Database>, rows: NewActivityRow[]): Promise<void> {
  await joinLedgerWriters(trx);
  // One array per column (unnest), in the order recorded (the sequence follows it): the same
  // statement text for one row or a batch's two hundred, prepared once per connection.
  const column = <K extends keyof NewActivityRow>(key: K) => rows.map((row) => row[key]);
  await sql`
    INSERT INTO activities (id, resource_type, resource_id, action, customer_id, actor, data)
    SELECT id, resource_type, resource_id, action, customer_id, actor, data
    FROM unnest(
      ${column('id')}::text[], ${column('resource_type')}::text[], ${column('resource_id')}::text[],
      ${column('action')}::text[], ${column('customer_id')}::text[], ${column('actor')}::text[],
      ${column('data')}::jsonb[]
    ) WITH ORDINALITY AS a (id, resource_type, resource_id, action, customer_id, actor, data, n)
    ORDER BY n
  `.execute(trx);
}

const deferred = new DeferredWrites(insertActivities);

/**
 * Runs `fn` (which changes state inside `trx`) collecting the activities it records, then inserts them
 * all in one statement, still inside `trx` and in the order recorded: for batch work such as applying
 * a hundred webhooks in one transaction. If `fn` throws, nothing is inserted (the transaction rolls
 * back anyway).
 */
export function withDeferredActivities<T>(trx: Kysely<Database>, fn: () => Promise<T>): Promise<T> {
  return deferred.around(trx, fn);
}

/** Which activities to read: after a sequence number, optionally of one resource or one customer. */
export interface ActivityQuery {
  afterSequence: bigint;
  limit: number;
  resourceId?: string;
  customerId?: string;
}

/**
 * Reads activities in sequence order after `afterSequence`, at most `limit + 1` rows (the extra one
 * tells that more exist). Waits for in-flight writers first, so pages form a gap-free prefix.
 */
export async function listActivities(db: Kysely<Database>, query: ActivityQuery): Promise<ActivityRow[]> {
  return db.transaction().execute(async (trx) => {
    await quiesceLedgerWriters(trx);
    let select = trx
      .selectFrom('activities')
      .selectAll()
      .where('sequence', '>', query.afterSequence as never);
    if (query.resourceId) select = select.where('resource_id', '=', query.resourceId);
    if (query.customerId) select = select.where('customer_id', '=', query.customerId);
    return select
      .orderBy('sequence')
      .limit(query.limit + 1)
      .execute();
  });
}
