import express, { type Express, Router } from 'express';
import type { AppDeps } from './deps.ts';
import { healthRoutes } from './health.ts';

/** `GET /metrics`: billhook's Prometheus metrics in the text exposition format. */
export function metricsRoutes({ metrics }: Pick<AppDeps, 'metrics'>): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return router;
}

/**
 * The HTTP side of a `worker`-role process (METRICS_PORT): only `GET /metrics` (its job failures,
 * gateway call latency, process metrics), `GET /healthz` and `GET /readyz`, so Prometheus can scrape
 * every process, not only the web ones.
 */
export function createMetricsApp(deps: Pick<AppDeps, 'metrics' | 'ready'>): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(healthRoutes(deps));
  app.use(metricsRoutes(deps));
  return app;
}
