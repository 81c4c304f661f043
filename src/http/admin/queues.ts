import { buffer } from 'node:stream/consumers';
import { createDashboardHandler, type DashboardHandler } from '@pg-boss/dashboard/handler';
import { type Request as ExpressRequest, Router } from 'express';
import { BOSS_SCHEMA } from '../../queue/boss.ts';
import { ADMIN } from './layout.ts';

/** Where the queue dashboard is mounted. */
export const QUEUES_PATH = `${ADMIN}/queues`;

/**
 * The queue dashboard: pg-boss's official one (`@pg-boss/dashboard`, https://pgboss.io/dashboard):
 * queues, jobs by state, a job's data, output, error, attempts and times. It reads pg-boss's schema
 * through pools of its own on `databaseUrl`; `close()` releases them (the runtime's stop calls it).
 * Its own credential check stays off: billhook's console session authenticates every request before
 * it (`auth: false`, the package's default when mounted).
 *
 * Read-only (`PGBOSS_DASHBOARD_READ_ONLY=1`, set here before the handler is made, which is when the
 * package reads it): @pg-boss/dashboard 1.9.0 bundles pg-boss 12.33.2, whose schema is version 42,
 * and its job actions start that pg-boss, which refuses billhook's pg-boss 12.38 schema (46: "pg-boss
 * database requires migrations") and shows "Database error occurred". Read-only, every action is
 * refused with a 403 saying so and the buttons that would fail are not offered; billhook's own
 * dead-letters page retries and deletes jobs (src/http/admin/dead-letters.ts). Lift this when the
 * dashboard bundles a pg-boss with billhook's schema (src/inbox/UPGRADING.md).
 */
export function createQueueDashboard(databaseUrl: string): DashboardHandler {
  process.env.PGBOSS_DASHBOARD_READ_ONLY = '1';
  return createDashboardHandler({
    databases: [{ url: databaseUrl, name: 'billhook', schema: BOSS_SCHEMA }],
    basePath: QUEUES_PATH,
  });
}

/**
 * The fetch-style request of an Express one, at the URL the browser used: scheme and host as Express
 * sees them (`req.protocol`, `req.host`: the `X-Forwarded-*` headers of a trusted proxy, `trust
 * proxy`), so the dashboard's check that an action's `Origin` is the page's own host holds behind a
 * TLS-terminating proxy and on any host name.
 */
async function fetchRequest(req: ExpressRequest): Promise<Request> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    for (const one of [value ?? []].flat()) headers.append(name, one);
  }
  const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await buffer(req);
  return new Request(new URL(req.originalUrl, `${req.protocol}://${req.host}`), {
    method: req.method,
    headers,
    body,
  });
}

/**
 * `/admin/queues/…`: each request handed to the dashboard as it came (after billhook's
 * authentication), its answer sent back as it is but for the Content-Security-Policy: the
 * dashboard's pages start with inline scripts (React Router's hydration data), so its path allows
 * them (`script-src 'self' 'unsafe-inline'`) where the rest of the console allows none. It changes
 * nothing (read-only, see `createQueueDashboard`), so it records no activity.
 */
export function queueDashboardRoutes(dashboard: DashboardHandler): Router {
  const router = Router();
  router.all([QUEUES_PATH, `${QUEUES_PATH}/*rest`, `${QUEUES_PATH}.data`], async (req, res) => {
    const request = await fetchRequest(req);
    const response = await dashboard(request);
    res.status(response.status);
    response.headers.forEach((value, name) => {
      if (name !== 'set-cookie' && name !== 'content-length' && name !== 'content-encoding')
        res.setHeader(name, value);
    });
    const cookies = response.headers.getSetCookie();
    if (cookies.length) res.setHeader('set-cookie', cookies);
    res.setHeader(
      'content-security-policy',
      "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'",
    );
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  return router;
}
