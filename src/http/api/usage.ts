import { getCustomer } from '../../billing/customers.ts';
import { getSubscription } from '../../billing/subscriptions.ts';
import {
  createUsageLimit,
  getUsageLimit,
  recordUsageEvent,
  updateUsageLimit,
  usageEstimate,
} from '../../billing/usage.ts';
import { actorOf } from '../actor.ts';
import { listRoute } from './pagination.ts';
import { listOf, UsageEstimate, UsageEvent, UsageLimit } from './responses.ts';
import { type ApiRoute, route, type Tag } from './route.ts';
import {
  CreateUsageEvent,
  CreateUsageLimit,
  UpdateUsageLimit,
  UsageEventListQuery,
  UsageLimitListQuery,
} from './schemas.ts';
import { serialize } from './serialize.ts';

const tag: Tag = 'Usage';

/**
 * Usage-based billing: `POST /v1/usage-events` (201 stored, 200 for the same event again) and
 * `GET /v1/usage-events` (by subscription or customer), `GET /v1/customers/:id/usage-estimate`, and
 * usage limits (create, list, read, update).
 */
export const usageRoutes: ApiRoute[] = [
  route({
    method: 'post',
    path: '/v1/usage-events',
    operationId: 'createUsageEvent',
    tag,
    scope: 'write',
    summary: 'Record a usage event (idempotent on event_id: 201 stored, 200 the same again)',
    body: CreateUsageEvent,
    responses: {
      201: { schema: UsageEvent, description: 'Stored' },
      200: { schema: UsageEvent, description: 'The event stored earlier with this event_id' },
    },
    handler: async (req, res, { deps, body }) => {
      const { event, created } = await recordUsageEvent(
        deps.db,
        actorOf(req),
        {
          eventId: body.event_id,
          subscriptionId: body.subscription,
          code: body.code,
          value: body.value,
          properties: body.properties,
          timestamp: body.timestamp === undefined ? undefined : new Date(body.timestamp),
        },
        new Date(),
      );
      res.status(created ? 201 : 200).json(serialize.usageEvent(event));
    },
  }),
  listRoute({
    path: '/v1/usage-events',
    operationId: 'listUsageEvents',
    tag,
    summary: 'List usage events (filter by subscription or customer)',
    query: UsageEventListQuery,
    responses: { 200: listOf(UsageEvent, 'UsageEventList') },
    list: {
      table: 'usage_events',
      check: async (query, db) => {
        if (query.subscription) await getSubscription(db, query.subscription);
        if (query.customer) await getCustomer(db, query.customer);
      },
      equals: (query) => ({ subscription_id: query.subscription, customer_id: query.customer }),
      map: serialize.usageEvent,
    },
  }),
  route({
    method: 'get',
    path: '/v1/customers/{id}/usage-estimate',
    operationId: 'getCustomerUsageEstimate',
    tag,
    scope: 'read',
    summary: "A customer's usage cost not billed yet (what the next invoices bill of the usage so far)",
    responses: { 200: UsageEstimate },
    handler: async (req, res, { deps }) => {
      res.json(serialize.usageEstimate(await usageEstimate(deps.db, req.params.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/usage-limits',
    operationId: 'createUsageLimit',
    tag,
    scope: 'write',
    summary: 'Warn or suspend once a customer usage estimate reaches an amount',
    body: CreateUsageLimit,
    responses: { 201: UsageLimit },
    handler: async (req, res, { deps, body }) => {
      const limit = await createUsageLimit(deps.db, actorOf(req), {
        customerId: body.customer,
        amount: body.amount,
        currency: body.currency,
        action: body.action,
      });
      res.status(201).json(serialize.usageLimit(limit));
    },
  }),
  listRoute({
    path: '/v1/usage-limits',
    operationId: 'listUsageLimits',
    tag,
    summary: 'List usage limits (filter by customer)',
    query: UsageLimitListQuery,
    responses: { 200: listOf(UsageLimit, 'UsageLimitList') },
    list: {
      table: 'usage_limits',
      check: async (query, db) => {
        if (query.customer) await getCustomer(db, query.customer);
      },
      // Deleted limits are read by id only (GET /v1/usage-limits/:id).
      equals: (query) => ({ customer_id: query.customer, deleted_at: null }),
      map: serialize.usageLimit,
    },
  }),
  route({
    method: 'get',
    path: '/v1/usage-limits/{id}',
    operationId: 'getUsageLimit',
    tag,
    scope: 'read',
    summary: 'Read a usage limit',
    responses: { 200: UsageLimit },
    handler: async (req, res, { deps }) => {
      res.json(serialize.usageLimit(await getUsageLimit(deps.db, req.params.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/usage-limits/{id}',
    operationId: 'updateUsageLimit',
    tag,
    scope: 'write',
    summary: "Update a usage limit's amount or action",
    body: UpdateUsageLimit,
    responses: { 200: UsageLimit },
    handler: async (req, res, { deps, body }) => {
      const limit = await updateUsageLimit(deps.db, actorOf(req), req.params.id, {
        amount: body.amount,
        action: body.action,
      });
      res.json(serialize.usageLimit(limit));
    },
  }),
];
