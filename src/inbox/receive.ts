import { fromKysely, type PgBoss } from 'pg-boss';
import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { GatewayName } from '../gateways/types.ts';
import { QUEUES } from '../queue/queues.ts';

/** A verified delivery to store. `body` is the raw body exactly as received (UTF-8). */
export interface Delivery {
  gateway: GatewayName;
  eventId: string;
  eventType: string;
  body: string;
}

/** What receiving did: a new inbox row with its job, or nothing for a duplicate. */
export interface Receipt {
  id: string | undefined;
  duplicate: boolean;
}

/**
 * Stores a verified delivery in the inbox and enqueues its `webhook.process` job in one database
 * transaction, so an acknowledged webhook is never lost and never processed without its row.
 * A delivery whose (gateway, event id) is already stored changes nothing and enqueues no job.
 * @throws the database's error when it is unavailable (the caller answers 503)
 */
export async function receive(db: Db, boss: PgBoss, delivery: Delivery): Promise<Receipt> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('inbox')
      .values({
        id: newId('evt'),
        gateway: delivery.gateway,
        gateway_event_id: delivery.eventId,
        event_type: delivery.eventType,
        body: delivery.body,
      })
      .onConflict((oc) => oc.columns(['gateway', 'gateway_event_id']).doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!row) return { id: undefined, duplicate: true };
    await boss.send(QUEUES.webhookProcess, { inboxId: row.id }, { db: fromKysely(trx) });
    return { id: row.id, duplicate: false };
  });
}
