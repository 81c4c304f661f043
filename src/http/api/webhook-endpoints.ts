import { Router } from 'express';
import { z } from 'zod';
import type { WebhookDeliveryRow, WebhookEndpointRow } from '../../db/schema.ts';
import { listDeliveries, redeliver } from '../../outbound/deliver.ts';
import {
  createEndpoint,
  getEndpoint,
  listEndpoints,
  rotateEndpointSecret,
  setEndpointEnabled,
  updateEndpoint,
} from '../../outbound/endpoints.ts';
import { OUTBOUND_EVENT_TYPES } from '../../outbound/events.ts';
import { actorOf } from '../actor.ts';
import { requireScope } from '../auth.ts';
import type { AppDeps } from '../deps.ts';
import { parseInput } from './validate.ts';

const url = z.url({ protocol: /^https?$/ }).max(2000);
const enabledEvents = z
  .array(z.enum(OUTBOUND_EVENT_TYPES))
  .min(1)
  .transform((types) => [...new Set(types)]);
const description = z.string().trim().max(500);

/** `POST /v1/webhook-endpoints`: `{url, enabled_events: [type, …], description?}`, unknown fields and event types refused. */
export const CreateWebhookEndpoint = z
  .object({ url, enabled_events: enabledEvents, description: description.optional() })
  .strict();

/** `POST /v1/webhook-endpoints/:id`: the fields given replace the stored ones (`description: null` clears it). */
export const UpdateWebhookEndpoint = z
  .object({
    url: url.optional(),
    enabled_events: enabledEvents.optional(),
    description: description.nullable().optional(),
  })
  .strict();

/** `GET /v1/webhook-endpoints/:id/deliveries`: a page, newest first. */
export const DeliveryListQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(10),
    starting_after: z.string().max(64).optional(),
  })
  .strict();

/** An endpoint as the API shows it: never its secret (create and rotate add it, once). */
export function serializeWebhookEndpoint(e: WebhookEndpointRow) {
  return {
    id: e.id,
    object: 'webhook_endpoint',
    url: e.url,
    description: e.description,
    enabled_events: e.enabled_events,
    status: e.disabled_at ? 'disabled' : 'enabled',
    disabled_at: e.disabled_at,
    created_at: e.created_at,
    updated_at: e.updated_at,
  };
}

/** A delivery as the delivery log shows it: its event, attempts, the last answer's status or error. */
export function serializeWebhookDelivery(d: WebhookDeliveryRow) {
  return {
    id: d.id,
    object: 'webhook_delivery',
    endpoint: d.endpoint_id,
    event: d.event_id,
    event_type: d.event_type,
    status: d.status,
    attempts: d.attempts,
    last_status_code: d.last_status_code,
    last_error: d.last_error,
    last_attempt_at: d.last_attempt_at,
    delivered_at: d.delivered_at,
    redelivery_of: d.redelivery_of,
    created_at: d.created_at,
    updated_at: d.updated_at,
  };
}

/**
 * /v1/webhook-endpoints (admin scope; PRODUCT.md §14): where billhook pushes its own events
 * (src/outbound/). Create (201, the `whsec_…` secret shown once), list, read, update, disable,
 * enable, rotate the secret (200, the new secret shown once); the delivery log and manual
 * redelivery (202: a new delivery, queued). Each change is an activity (`webhook_endpoint.*`).
 */
export function webhookEndpointRoutes({ db, boss, accounts }: AppDeps): Router {
  const router = Router();
  router.use('/webhook-endpoints', requireScope('admin'));
  router.post('/webhook-endpoints', async (req, res) => {
    const body = parseInput(CreateWebhookEndpoint, req.body);
    const { endpoint, secret } = await createEndpoint(db, actorOf(req), accounts.keys, {
      url: body.url,
      enabledEvents: body.enabled_events,
      description: body.description,
    });
    res.status(201).json({ ...serializeWebhookEndpoint(endpoint), secret });
  });
  router.get('/webhook-endpoints', async (_req, res) => {
    const rows = await listEndpoints(db);
    res.json({ object: 'list', data: rows.map(serializeWebhookEndpoint), has_more: false });
  });
  router.get('/webhook-endpoints/:id', async (req, res) => {
    res.json(serializeWebhookEndpoint(await getEndpoint(db, req.params.id)));
  });
  router.post('/webhook-endpoints/:id', async (req, res) => {
    const body = parseInput(UpdateWebhookEndpoint, req.body);
    const endpoint = await updateEndpoint(db, actorOf(req), req.params.id, {
      url: body.url,
      enabledEvents: body.enabled_events,
      description: body.description,
    });
    res.json(serializeWebhookEndpoint(endpoint));
  });
  for (const [verb, enabled] of [
    ['disable', false],
    ['enable', true],
  ] as const) {
    router.post(`/webhook-endpoints/:id/${verb}`, async (req, res) => {
      res.json(serializeWebhookEndpoint(await setEndpointEnabled(db, actorOf(req), req.params.id, enabled)));
    });
  }
  router.post('/webhook-endpoints/:id/rotate-secret', async (req, res) => {
    const { endpoint, secret } = await rotateEndpointSecret(db, actorOf(req), accounts.keys, req.params.id);
    res.json({ ...serializeWebhookEndpoint(endpoint), secret });
  });
  router.get('/webhook-endpoints/:id/deliveries', async (req, res) => {
    const query = parseInput(DeliveryListQuery, req.query);
    const rows = await listDeliveries(db, req.params.id, {
      limit: query.limit,
      startingAfter: query.starting_after,
    });
    res.json({
      object: 'list',
      data: rows.slice(0, query.limit).map(serializeWebhookDelivery),
      has_more: rows.length > query.limit,
    });
  });
  router.post('/webhook-endpoints/:id/deliveries/:delivery/redeliver', async (req, res) => {
    const delivery = await redeliver(db, boss, req.params.id, req.params.delivery);
    res.status(202).json(serializeWebhookDelivery(delivery));
  });
  return router;
}
