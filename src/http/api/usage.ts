import { Router } from 'express';
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
import type { AppDeps } from '../deps.ts';
import { listHandler } from './pagination.ts';
import {
  CreateUsageEvent,
  CreateUsageLimit,
  UpdateUsageLimit,
  UsageEventListQuery,
  UsageLimitListQuery,
} from './schemas.ts';
import { serialize } from './serialize.ts';
import { parseInput } from './validate.ts';

/**
 * Usage-based billing: `POST /v1/usage-events` (201 stored, 200 for the same event again) and
 * `GET /v1/usage-events` (by subscription or customer), `GET /v1/customers/:id/usage-estimate`, and
 * usage limits (create, list, read, update).
 */
export function usageRoutes({ db }: AppDeps): Router {
  const router = Router();
  router.post('/usage-events', async (req, res) => {
    const body = parseInput(CreateUsageEvent, req.body);
    const { event, created } = await recordUsageEvent(
      db,
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
  });
  router.get(
    '/usage-events',
    listHandler(db, {
      table: 'usage_events',
      query: UsageEventListQuery,
      check: async (query) => {
        if (query.subscription) await getSubscription(db, query.subscription);
        if (query.customer) await getCustomer(db, query.customer);
      },
      equals: (query) => ({ subscription_id: query.subscription, customer_id: query.customer }),
      map: serialize.usageEvent,
    }),
  );
  router.get('/customers/:id/usage-estimate', async (req, res) => {
    res.json(serialize.usageEstimate(await usageEstimate(db, req.params.id)));
  });
  router.post('/usage-limits', async (req, res) => {
    const body = parseInput(CreateUsageLimit, req.body);
    const limit = await createUsageLimit(db, actorOf(req), {
      customerId: body.customer,
      amount: body.amount,
      currency: body.currency,
      action: body.action,
    });
    res.status(201).json(serialize.usageLimit(limit));
  });
  router.get(
    '/usage-limits',
    listHandler(db, {
      table: 'usage_limits',
      query: UsageLimitListQuery,
      check: async (query) => {
        if (query.customer) await getCustomer(db, query.customer);
      },
      // Deleted limits are read by id only (GET /v1/usage-limits/:id).
      equals: (query) => ({ customer_id: query.customer, deleted_at: null }),
      map: serialize.usageLimit,
    }),
  );
  router.get('/usage-limits/:id', async (req, res) => {
    res.json(serialize.usageLimit(await getUsageLimit(db, req.params.id)));
  });
  router.post('/usage-limits/:id', async (req, res) => {
    const body = parseInput(UpdateUsageLimit, req.body);
    const limit = await updateUsageLimit(db, actorOf(req), req.params.id, {
      amount: body.amount,
      action: body.action,
    });
    res.json(serialize.usageLimit(limit));
  });
  return router;
}
