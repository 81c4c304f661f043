import express, { type Express, type RequestHandler, Router } from 'express';
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
 * Times each `/v1` request into `billhook_api_request_seconds` when its answer is sent, by method,
 * route and status code. The route is the pattern of the Express route that matched, under `/v1`
 * (`/v1/invoices/:id`: an id in the URL never becomes a label value), or `unmatched` when none did (an
 * unknown path, or a request answered before routing: no key, rate limited, a body that is not JSON,
 * an idempotent replay). Mounted at `/v1`.
 */
export function apiRequestDuration({ metrics }: Pick<AppDeps, 'metrics'>): RequestHandler {
  return (req, res, next) => {
    const end = metrics.apiRequestSeconds.startTimer({ method: req.method });
    res.once('finish', () => {
      const pattern: unknown = req.route?.path;
      const route = typeof pattern === 'string' ? `/v1${pattern}` : 'unmatched';
      end({ route, status: String(res.statusCode) });
    });
    next();
  };
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
