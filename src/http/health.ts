import { Router } from 'express';
import type { AppDeps } from './deps.ts';

/** `GET /healthz` (the process is up) and `GET /readyz` (200 only once webhooks can be stored). */
export function healthRoutes({ ready }: Pick<AppDeps, 'ready'>): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const ok = await ready().catch(() => false);
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'unavailable' });
  });
  return router;
}
