import { type Kysely, sql } from 'kysely';
import { newId } from '../db/ids.ts';
import type { ActivityRow, Database } from '../db/schema.ts';
import { quiesceLedgerWriters, type UnitOfWork } from '../ledger/unit-of-work.ts';

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
 * Appends activities to the audit log in `work`, the unit of work that makes the change (so the log
 * and the state never disagree), authored by `work.actor`. In a deferring unit (`defer: true`) the
 * rows are collected and inserted together at its end, after its journal entries.
 */
export async function recordActivity(work: UnitOfWork, ...inputs: ActivityInput[]): Promise<void> {
  if (inputs.length === 0) return;
  const actor = work.actor;
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
  if (!work.defer(insertActivities, rows)) await insertActivities(work, rows);
}

async function insertActivities(work: UnitOfWork, rows: NewActivityRow[]): Promise<void> {
  await work.joinLedgerWriters();
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
  `.execute(work.trx);
}

/**
 * Which activities to read: after a sequence number, optionally of one resource, one customer, and
 * recorded in [`createdFrom`, `createdBefore`).
 */
export interface ActivityQuery {
  afterSequence: bigint;
  limit: number;
  resourceId?: string;
  customerId?: string;
  createdFrom?: Date;
  createdBefore?: Date;
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
    if (query.createdFrom) select = select.where('created_at', '>=', query.createdFrom);
    if (query.createdBefore) select = select.where('created_at', '<', query.createdBefore);
    return select
      .orderBy('sequence')
      .limit(query.limit + 1)
      .execute();
  });
}
