import express, { type Express } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import { exactJsonIntegers } from '../money/amount.ts';
import { adminRoutes } from './admin/index.ts';
import { openApiRoutes } from './api/openapi.ts';
import { mountRoutes } from './api/route.ts';
import { API_ROUTES } from './api/routes.ts';
import { settlementFileBody } from './api/settlement-import.ts';
import { requireApiKey } from './auth.ts';
import type { AppDeps } from './deps.ts';
import { errorHandler, sendError } from './errors.ts';
import { healthRoutes } from './health.ts';
import { idempotency } from './idempotency.ts';
import { refuseNulInUrl, requireUtf8, strictJsonReviver } from './json-input.ts';
import { apiRequestDuration, metricsRoutes } from './metrics.ts';
import { rateLimitFailedAuth, rateLimitPerKey } from './rate-limit.ts';
import { requestId } from './request-id.ts';
import { errorCodeFields, lazyRequestLogs, redactUrl } from './request-log.ts';
import { addWebhookRoutes } from './webhooks.ts';

/**
 * The Express application: webhooks (raw bodies, no auth: the gateway's signature is the auth),
 * health checks, and the `/v1` JSON API behind API keys. Money leaves as JSON integers (minor units).
 */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.config.TRUST_PROXY);
  app.set('json replacer', exactJsonIntegers);
  // Every request's `req.log`: made on first use from the id the webhook route binds, or the one
  // pino-http assigns on the other routes.
  lazyRequestLogs(app, deps.log);
  // Webhooks first: the hot path skips helmet and per-request access logs (gateways read no
  // headers; their log lines carry the request id through a logger made only when one is written).
  addWebhookRoutes(app, deps);
  // Helmet's default policy, less `upgrade-insecure-requests`: with it a browser that opened the
  // admin page over plain HTTP by host name sends its form POSTs (Retry all, Delete all, Replay) to
  // https, where nothing answers. Behind a TLS-terminating proxy the page is https and so are its forms.
  app.use(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } }));
  app.use(
    pinoHttp({
      logger: deps.log,
      genReqId: requestId,
      customLogLevel: (_req, res, error) =>
        error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
      quietReqLogger: true,
      // A 4xx or 5xx line says why: the error envelope's code.
      customSuccessObject: (_req, res, fields: object) => ({ ...fields, ...errorCodeFields(res) }),
      customErrorObject: (_req, res, _error, fields: object) => ({ ...fields, ...errorCodeFields(res) }),
      // A credential sent in the URL by mistake is not logged (its query value is redacted too).
      serializers: { req: (req: { url: string }) => Object.assign(req, { url: redactUrl(req.url) }) },
    }),
  );
  // The API's and the console's answers carry customers' data and keys: never kept by a browser or a
  // shared cache (an error answer included).
  app.use(['/v1', '/admin'], (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  app.use('/v1', apiRequestDuration(deps));
  // Failed authentications are limited per source address (valid keys have their own limit).
  app.use(['/v1', '/admin'], rateLimitFailedAuth(deps.config.AUTH_FAILURES_PER_MINUTE));
  app.use(healthRoutes(deps));
  app.use(metricsRoutes(deps));
  app.use(openApiRoutes());
  app.use(adminRoutes(deps));
  const v1 = express.Router();
  v1.use(refuseNulInUrl);
  v1.use(requireApiKey(deps.db, 'read'));
  // A settlement report is CSV: read as text here, so the JSON parser below leaves it alone.
  v1.use('/settlements/import', settlementFileBody);
  v1.use(
    express.json({
      limit: '1mb',
      strict: true,
      type: () => true,
      verify: requireUtf8,
      reviver: strictJsonReviver,
    }),
  );
  v1.use(rateLimitPerKey(deps.config.API_RATE_LIMIT_PER_MINUTE));
  v1.use(idempotency(deps.db, deps.config.IDEMPOTENCY_KEY_TTL_HOURS));
  // The route table (api/routes.ts): each route checks its scope, refuses a query parameter or a body
  // field it does not take, parses its input, runs its handler.
  v1.use(mountRoutes(API_ROUTES, deps));
  app.use('/v1', v1);
  app.use((req, res) =>
    sendError(res, 404, 'not_found', 'route_not_found', `no route ${req.method} ${req.path}`),
  );
  app.use(errorHandler());
  return app;
}
