import type { Kysely } from 'kysely';
import { fromKysely, type PgBoss } from 'pg-boss';
import { z } from 'zod';
import type { Keyring } from '../accounts/cipher.ts';
import { newId } from '../db/ids.ts';
import { listRows } from '../db/list.ts';
import type { Database, WebhookDeliveryRow } from '../db/schema.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { QUEUES } from '../queue/queues.ts';
import { endpointSecret, getEndpoint } from './endpoints.ts';
import { SIGNATURE_HEADER, signatureHeader } from './signature.ts';

/** Job data of `webhook-endpoint.deliver`: one delivery (an event to one endpoint). */
export const DeliverJob = z.object({ deliveryId: z.string().startsWith('wdl_') });
export type DeliverJob = z.infer<typeof DeliverJob>;

/** How long a receiver has to answer a delivery, milliseconds (Stripe allows its endpoints a few seconds too). */
export const DELIVERY_TIMEOUT_MS = 10_000;

/** The longest error text a delivery row keeps. */
const ERROR_CHARS = 500;

/** What one attempt came to: answered 2xx, to be retried, or not made (done already, or the endpoint is disabled). */
export type AttemptOutcome = 'succeeded' | 'retry' | 'skipped';

/**
 * Makes one attempt of delivery `deliveryId`: POSTs the event's stored body to the endpoint's URL,
 * signed now (`Billhook-Signature: t=…,v1=…`, signature.ts), and records the attempt on the row
 * (attempts, the HTTP status or the error, the time). A 2xx answer is `succeeded`; any other
 * status, a timeout ({@link DELIVERY_TIMEOUT_MS}) or a connection error is `retry` (the row
 * `retrying`, or `failed` when `lastTry`). A delivery already succeeded, or to an endpoint disabled
 * since, is `skipped` (the latter recorded as failed: `endpoint disabled`). A failed one is attempted
 * again: its job runs only when its dead letter was retried (the console, `billhook jobs retry`), for
 * a fresh set of retries once the receiver is fixed.
 * @throws NotFoundError when the delivery does not exist
 */
export async function attemptDelivery(
  db: Kysely<Database>,
  keys: Keyring,
  deliveryId: string,
  lastTry: boolean,
): Promise<AttemptOutcome> {
  const delivery = await db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('outbound_events as e', 'e.id', 'd.event_id')
    .select(['d.id', 'd.endpoint_id', 'd.status', 'e.body'])
    .where('d.id', '=', deliveryId)
    .executeTakeFirst();
  if (!delivery) throw new NotFoundError('webhook_delivery', deliveryId);
  if (delivery.status === 'succeeded') return 'skipped';
  const endpoint = await getEndpoint(db, delivery.endpoint_id);
  if (endpoint.disabled_at) {
    await record(
      db,
      deliveryId,
      { status: 'failed', last_status_code: null, last_error: 'endpoint disabled' },
      false,
    );
    return 'skipped';
  }
  const header = signatureHeader(
    delivery.body,
    endpointSecret(keys, endpoint),
    Math.floor(Date.now() / 1000),
  );
  let statusCode: number | null = null;
  let error: string | null = null;
  try {
    const response = await fetch(endpoint.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'billhook', [SIGNATURE_HEADER]: header },
      body: delivery.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    statusCode = response.status;
    await response.body?.cancel();
    if (!response.ok) error = `HTTP ${response.status}`;
  } catch (cause) {
    error = (cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)).slice(
      0,
      ERROR_CHARS,
    );
  }
  if (error === null) {
    await record(
      db,
      deliveryId,
      { status: 'succeeded', last_status_code: statusCode, last_error: null, delivered_at: new Date() },
      true,
    );
    return 'succeeded';
  }
  await record(
    db,
    deliveryId,
    { status: lastTry ? 'failed' : 'retrying', last_status_code: statusCode, last_error: error },
    true,
  );
  return 'retry';
}

async function record(
  db: Kysely<Database>,
  id: string,
  set: Pick<WebhookDeliveryRow, 'status' | 'last_status_code' | 'last_error'> & { delivered_at?: Date },
  attempted: boolean,
): Promise<void> {
  const now = new Date();
  await db
    .updateTable('webhook_deliveries')
    .set((eb) => ({
      ...set,
      ...(attempted ? { attempts: eb('attempts', '+', 1), last_attempt_at: now } : {}),
      updated_at: now,
    }))
    .where('id', '=', id)
    .execute();
}

/**
 * An endpoint's deliveries, newest first, one page (`limit + 1` rows read: the extra one tells that
 * more exist), after `startingAfter` (a delivery id).
 * @throws NotFoundError (`webhook_endpoint_not_found`)
 */
export async function listDeliveries(
  db: Kysely<Database>,
  endpointId: string,
  page: { limit: number; startingAfter?: string },
): Promise<WebhookDeliveryRow[]> {
  await getEndpoint(db, endpointId);
  return listRows<WebhookDeliveryRow>(db, 'webhook_deliveries', {
    limit: page.limit,
    startingAfter: page.startingAfter,
    equals: { endpoint_id: endpointId },
  });
}

/**
 * Sends delivery `deliveryId`'s event to its endpoint again: a new delivery (`redelivery_of` naming
 * it) and its job, committed together; the new one is signed with the endpoint's current secret.
 * @throws NotFoundError (`webhook_delivery_not_found`) when the endpoint has no such delivery;
 * ConflictError 409 `webhook_endpoint_disabled`
 */
export async function redeliver(
  db: Kysely<Database>,
  boss: PgBoss,
  endpointId: string,
  deliveryId: string,
): Promise<WebhookDeliveryRow> {
  const endpoint = await getEndpoint(db, endpointId);
  if (endpoint.disabled_at)
    throw new ConflictError(
      'webhook_endpoint_disabled',
      `webhook endpoint ${endpointId} is disabled: enable it first`,
    );
  return db.transaction().execute(async (trx) => {
    const original = await trx
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('id', '=', deliveryId)
      .where('endpoint_id', '=', endpointId)
      .executeTakeFirst();
    if (!original) throw new NotFoundError('webhook_delivery', deliveryId);
    const delivery = await trx
      .insertInto('webhook_deliveries')
      .values({
        id: newId('wdl'),
        endpoint_id: endpointId,
        event_id: original.event_id,
        event_type: original.event_type,
        status: 'pending',
        redelivery_of: original.id,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const job: DeliverJob = { deliveryId: delivery.id };
    await boss.send(QUEUES.webhookEndpointDeliver, job, { db: fromKysely(trx) });
    return delivery;
  });
}
