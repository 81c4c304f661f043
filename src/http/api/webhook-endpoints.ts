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
import { toPage } from './pagination.ts';
import { listOf, WebhookDelivery, WebhookEndpoint, WebhookEndpointWithSecret } from './responses.ts';
import { type ApiRoute, route, type Tag } from './route.ts';

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

const tag: Tag = 'Webhook endpoints';

/** `POST /v1/webhook-endpoints/{id}/disable` and `/enable`. */
const enabling = (verb: 'disable' | 'enable', enabled: boolean) =>
  route({
    method: 'post',
    path: `/v1/webhook-endpoints/{id}/${verb}`,
    operationId: `${verb}WebhookEndpoint`,
    tag,
    scope: 'admin',
    summary: enabled ? 'Enable a webhook endpoint again (admin)' : 'Disable a webhook endpoint (admin)',
    responses: { 200: WebhookEndpoint },
    handler: async (req, res, { deps }) => {
      res.json(
        serializeWebhookEndpoint(await setEndpointEnabled(deps.db, actorOf(req), req.params.id, enabled)),
      );
    },
  });

/**
 * /v1/webhook-endpoints (admin scope; PRODUCT.md §14): where billhook pushes its own events
 * (src/outbound/). Create (201, the `whsec_…` secret shown once), list, read, update, disable,
 * enable, rotate the secret (200, the new secret shown once); the delivery log and manual
 * redelivery (202: a new delivery, queued). Each change is an activity (`webhook_endpoint.*`).
 */
export const webhookEndpointRoutes: ApiRoute[] = [
  route({
    method: 'post',
    path: '/v1/webhook-endpoints',
    operationId: 'createWebhookEndpoint',
    tag,
    scope: 'admin',
    summary: "Register an endpoint for billhook's events (admin; the whsec_ secret shown once)",
    body: CreateWebhookEndpoint,
    responses: { 201: WebhookEndpointWithSecret },
    handler: async (req, res, { deps: { db, accounts }, body }) => {
      const { endpoint, secret } = await createEndpoint(db, actorOf(req), accounts.keys, {
        url: body.url,
        enabledEvents: body.enabled_events,
        description: body.description,
      });
      res.status(201).json({ ...serializeWebhookEndpoint(endpoint), secret });
    },
  }),
  route({
    method: 'get',
    path: '/v1/webhook-endpoints',
    operationId: 'listWebhookEndpoints',
    tag,
    scope: 'admin',
    summary: 'List webhook endpoints (admin)',
    responses: { 200: listOf(WebhookEndpoint, 'WebhookEndpointList') },
    handler: async (_req, res, { deps }) => {
      const rows = await listEndpoints(deps.db);
      res.json({ object: 'list', data: rows.map(serializeWebhookEndpoint), has_more: false });
    },
  }),
  route({
    method: 'get',
    path: '/v1/webhook-endpoints/{id}',
    operationId: 'getWebhookEndpoint',
    tag,
    scope: 'admin',
    summary: 'Read a webhook endpoint (admin)',
    responses: { 200: WebhookEndpoint },
    handler: async (req, res, { deps }) => {
      res.json(serializeWebhookEndpoint(await getEndpoint(deps.db, req.params.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/webhook-endpoints/{id}',
    operationId: 'updateWebhookEndpoint',
    tag,
    scope: 'admin',
    summary: "Update a webhook endpoint's URL, event types or description (admin)",
    body: UpdateWebhookEndpoint,
    responses: { 200: WebhookEndpoint },
    handler: async (req, res, { deps, body }) => {
      const endpoint = await updateEndpoint(deps.db, actorOf(req), req.params.id, {
        url: body.url,
        enabledEvents: body.enabled_events,
        description: body.description,
      });
      res.json(serializeWebhookEndpoint(endpoint));
    },
  }),
  enabling('disable', false),
  enabling('enable', true),
  route({
    method: 'post',
    path: '/v1/webhook-endpoints/{id}/rotate-secret',
    operationId: 'rotateWebhookEndpointSecret',
    tag,
    scope: 'admin',
    summary: "Replace a webhook endpoint's signing secret (admin; the new one shown once)",
    responses: { 200: WebhookEndpointWithSecret },
    handler: async (req, res, { deps: { db, accounts } }) => {
      const { endpoint, secret } = await rotateEndpointSecret(db, actorOf(req), accounts.keys, req.params.id);
      res.json({ ...serializeWebhookEndpoint(endpoint), secret });
    },
  }),
  route({
    method: 'get',
    path: '/v1/webhook-endpoints/{id}/deliveries',
    operationId: 'listWebhookEndpointDeliveries',
    tag,
    scope: 'admin',
    summary: "An endpoint's delivery log, newest first (admin)",
    query: DeliveryListQuery,
    responses: { 200: listOf(WebhookDelivery, 'WebhookDeliveryList') },
    handler: async (req, res, { deps, query }) => {
      const rows = await listDeliveries(deps.db, req.params.id, {
        limit: query.limit,
        startingAfter: query.starting_after,
      });
      res.json(toPage(rows, query.limit, serializeWebhookDelivery));
    },
  }),
  route({
    method: 'post',
    path: '/v1/webhook-endpoints/{id}/deliveries/{delivery}/redeliver',
    operationId: 'redeliverWebhookDelivery',
    tag,
    scope: 'admin',
    summary: "Send a delivery's event again, as a new delivery (admin)",
    responses: { 202: { schema: WebhookDelivery, description: 'A new delivery, queued' } },
    handler: async (req, res, { deps }) => {
      const delivery = await redeliver(deps.db, deps.boss, req.params.id, req.params.delivery);
      res.status(202).json(serializeWebhookDelivery(delivery));
    },
  }),
];
