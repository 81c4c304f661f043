import type { Kysely } from 'kysely';
import { type Keyring, open, seal } from '../accounts/cipher.ts';
import { recordActivity } from '../activities/activities.ts';
import { newId } from '../db/ids.ts';
import type { Database, WebhookEndpointRow } from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import type { OutboundEventType } from './events.ts';
import { newEndpointSecret } from './signature.ts';

/** What an endpoint is created or updated with: its URL (http or https) and the event types it takes. */
export interface EndpointInput {
  url: string;
  enabledEvents: OutboundEventType[];
  description?: string | null;
}

/** An endpoint with its secret in clear: what create and rotate return, once. */
export interface EndpointWithSecret {
  endpoint: WebhookEndpointRow;
  secret: string;
}

/**
 * Registers an endpoint for billhook's events: a new `whsec_…` secret, stored encrypted
 * (AES-256-GCM under BILLHOOK_SECRET_KEY, bound to the endpoint's id), with a
 * `webhook_endpoint.created` activity (never the secret).
 * @returns the endpoint and its secret, which is never shown again
 * @throws SecretKeyMissing (409) without BILLHOOK_SECRET_KEY
 */
export function createEndpoint(
  db: Kysely<Database>,
  actor: Actor,
  keys: Keyring,
  input: EndpointInput,
): Promise<EndpointWithSecret> {
  const id = newId('we');
  const secret = newEndpointSecret();
  const sealed = seal(keys, secret, id);
  return inUnitOfWork(db, { actor }, async (work) => {
    const endpoint = await work.trx
      .insertInto('webhook_endpoints')
      .values({
        id,
        url: input.url,
        description: input.description ?? null,
        enabled_events: input.enabledEvents,
        secret: sealed.data,
        secret_key_id: sealed.keyId,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await endpointActivity(work, endpoint, 'webhook_endpoint.created', {
      url: endpoint.url,
      enabled_events: endpoint.enabled_events,
    });
    return { endpoint, secret };
  });
}

/** Every endpoint, newest first. */
export function listEndpoints(db: Kysely<Database>): Promise<WebhookEndpointRow[]> {
  return db.selectFrom('webhook_endpoints').selectAll().orderBy('id', 'desc').execute();
}

/**
 * One endpoint.
 * @throws NotFoundError (`webhook_endpoint_not_found`)
 */
export async function getEndpoint(db: Kysely<Database>, id: string): Promise<WebhookEndpointRow> {
  const row = await db.selectFrom('webhook_endpoints').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('webhook_endpoint', id);
  return row;
}

/**
 * Changes an endpoint's URL, event types or description (the fields given); a
 * `webhook_endpoint.updated` activity names them. Deliveries already made keep their event.
 * @throws NotFoundError (`webhook_endpoint_not_found`)
 */
export function updateEndpoint(
  db: Kysely<Database>,
  actor: Actor,
  id: string,
  input: Partial<EndpointInput>,
): Promise<WebhookEndpointRow> {
  const set = {
    ...(input.url === undefined ? {} : { url: input.url }),
    ...(input.enabledEvents === undefined ? {} : { enabled_events: input.enabledEvents }),
    ...(input.description === undefined ? {} : { description: input.description }),
  };
  return changeEndpoint(db, actor, id, set, 'webhook_endpoint.updated', {
    fields: Object.keys(set),
  });
}

/**
 * Disables (`enabled: false`: no new deliveries, and retries of pending ones stop) or enables an
 * endpoint again (events from then on); a `webhook_endpoint.disabled` or `.enabled` activity.
 * @throws NotFoundError (`webhook_endpoint_not_found`)
 */
export function setEndpointEnabled(
  db: Kysely<Database>,
  actor: Actor,
  id: string,
  enabled: boolean,
): Promise<WebhookEndpointRow> {
  return changeEndpoint(
    db,
    actor,
    id,
    { disabled_at: enabled ? null : new Date() },
    enabled ? 'webhook_endpoint.enabled' : 'webhook_endpoint.disabled',
    {},
  );
}

/**
 * Replaces an endpoint's secret with a new `whsec_…` one at once (deliveries from then on are signed
 * with it); a `webhook_endpoint.secret_rotated` activity.
 * @returns the endpoint and its new secret, shown only now
 * @throws NotFoundError (`webhook_endpoint_not_found`); SecretKeyMissing (409)
 */
export async function rotateEndpointSecret(
  db: Kysely<Database>,
  actor: Actor,
  keys: Keyring,
  id: string,
): Promise<EndpointWithSecret> {
  const secret = newEndpointSecret();
  const sealed = seal(keys, secret, id);
  const endpoint = await changeEndpoint(
    db,
    actor,
    id,
    { secret: sealed.data, secret_key_id: sealed.keyId },
    'webhook_endpoint.secret_rotated',
    {},
  );
  return { endpoint, secret };
}

/**
 * The endpoint's secret in clear, to sign with.
 * @throws SecretKeyMissing or ConflictError `secret_key_unknown` (409) when the key it was sealed
 * with is not configured; Error when the stored secret was altered
 */
export function endpointSecret(keys: Keyring, endpoint: WebhookEndpointRow): string {
  return open(keys, { keyId: endpoint.secret_key_id, data: endpoint.secret }, endpoint.id);
}

async function changeEndpoint(
  db: Kysely<Database>,
  actor: Actor,
  id: string,
  set: {
    url?: string;
    enabled_events?: string[];
    description?: string | null;
    disabled_at?: Date | null;
    secret?: Buffer;
    secret_key_id?: string;
  },
  action: string,
  data: Record<string, unknown>,
): Promise<WebhookEndpointRow> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const endpoint = await work.trx
      .updateTable('webhook_endpoints')
      .set({ ...set, updated_at: new Date() })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (!endpoint) throw new NotFoundError('webhook_endpoint', id);
    await endpointActivity(work, endpoint, action, data);
    return endpoint;
  });
}

function endpointActivity(
  work: UnitOfWork,
  endpoint: WebhookEndpointRow,
  action: string,
  data: Record<string, unknown>,
): Promise<void> {
  return recordActivity(work, { resourceType: 'webhook_endpoint', resourceId: endpoint.id, action, data });
}
