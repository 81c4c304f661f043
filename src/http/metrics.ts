import { Router } from 'express';
import type { AppDeps } from './deps.ts';

/** `GET /metrics`: billhook's Prometheus metrics in the text exposition format. */
export function metricsRoutes({ metrics }: AppDeps): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return router;
}
