import type { Kysely } from 'kysely';
import { fromKysely, type PgBoss } from 'pg-boss';
import { newId } from '../db/ids.ts';
import type { ActivityRow, Database } from '../db/schema.ts';
import { quiesceLedgerWriters } from '../ledger/unit-of-work.ts';
import { QUEUES } from '../queue/queues.ts';
import type { DeliverJob } from './deliver.ts';
import { EVENT_ACTIONS, eventOf, eventText, eventTypeOf } from './events.ts';

/** Activities read per transaction of the dispatcher. */
const PAGE = 500;

/** What one run of the dispatcher did. */
export interface DispatchResult {
  /** Events that matched at least one endpoint (stored, with their deliveries). */
  events: number;
  deliveries: number;
}

/**
 * The outbox of billhook's own events: reads the activities after the dispatcher's cursor (a
 * gap-free prefix of their sequence: it waits for in-flight writers first, so an activity committed
 * late is not skipped and one rolled back never existed), and for each that is an event
 * (`eventTypeOf`) with at least one enabled endpoint taking its type, registered before it happened,
 * stores the event (`evt_…`, its exact body) and one delivery per such endpoint, with a
 * `webhook-endpoint.deliver` job each, and moves the cursor — all in one transaction, so an event is
 * neither lost nor dispatched twice (two dispatchers at once: the cursor row serialises them).
 * Repeats page by page until the cursor reaches the newest activity.
 */
export async function dispatchEvents(db: Kysely<Database>, boss: PgBoss): Promise<DispatchResult> {
  const result: DispatchResult = { events: 0, deliveries: 0 };
  for (;;) {
    const page = await readPage(db);
    if (page.to === page.from) return result;
    const done = await db.transaction().execute(async (trx) => {
      const cursor = await trx
        .selectFrom('outbound_cursor')
        .select('sequence')
        .forUpdate()
        .executeTakeFirstOrThrow();
      if (cursor.sequence !== page.from) return false; // another dispatcher moved it: read again
      const endpoints = await trx
        .selectFrom('webhook_endpoints')
        .selectAll()
        .where('disabled_at', 'is', null)
        .execute();
      const jobs: { data: DeliverJob }[] = [];
      for (const activity of page.activities) {
        const type = eventTypeOf(activity);
        if (!type) continue;
        const takers = endpoints.filter(
          (e) => e.enabled_events.includes(type) && e.created_at <= activity.created_at,
        );
        if (takers.length === 0) continue;
        const body = eventOf(activity, type);
        const inserted = await trx
          .insertInto('outbound_events')
          .values({ id: body.id, activity_id: activity.id, type, body: eventText(body) })
          .onConflict((oc) => oc.column('activity_id').doNothing())
          .returning('id')
          .executeTakeFirst();
        if (!inserted) continue;
        const deliveries = takers.map((endpoint) => ({
          id: newId('wdl'),
          endpoint_id: endpoint.id,
          event_id: body.id,
          event_type: type,
          status: 'pending' as const,
        }));
        await trx.insertInto('webhook_deliveries').values(deliveries).execute();
        jobs.push(...deliveries.map((d) => ({ data: { deliveryId: d.id } })));
        result.events += 1;
        result.deliveries += deliveries.length;
      }
      if (jobs.length > 0) await boss.insert(QUEUES.webhookEndpointDeliver, jobs, { db: fromKysely(trx) });
      await trx.updateTable('outbound_cursor').set({ sequence: page.to }).execute();
      return true;
    });
    if (done && page.activities.length < PAGE) return result;
  }
}

/**
 * The next page after the cursor: the event actions' activities in sequence order, and where the
 * cursor goes once they are dispatched (the last one read on a full page, else the newest activity).
 */
async function readPage(
  db: Kysely<Database>,
): Promise<{ from: bigint; to: bigint; activities: ActivityRow[] }> {
  return db.transaction().execute(async (trx) => {
    const { sequence: from } = await trx
      .selectFrom('outbound_cursor')
      .select('sequence')
      .executeTakeFirstOrThrow();
    await quiesceLedgerWriters(trx);
    const newest = await trx
      .selectFrom('activities')
      .select((eb) => eb.fn.max('sequence').as('max'))
      .executeTakeFirstOrThrow();
    const activities = await trx
      .selectFrom('activities')
      .selectAll()
      .where('sequence', '>', from as never)
      .where('action', 'in', EVENT_ACTIONS)
      .orderBy('sequence')
      .limit(PAGE)
      .execute();
    const last = activities.at(-1);
    const to = activities.length === PAGE && last ? last.sequence : BigInt(newest.max ?? from);
    return { from, to, activities };
  });
}
