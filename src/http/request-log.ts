import type { Express, Request } from 'express';
import type { Logger } from 'pino';

const REQUEST_ID = Symbol('billhook.requestId');
const LOG = Symbol('billhook.log');
const ERROR_CODE = Symbol('billhook.errorCode');

interface Carrier {
  [REQUEST_ID]?: string;
  [LOG]?: Logger;
}

interface CodeCarrier {
  [ERROR_CODE]?: string;
}

/** Notes the error code (`code` of the error envelope) a response answers with, for its access line. */
export function noteErrorCode(res: object, code: string): void {
  (res as CodeCarrier)[ERROR_CODE] = code;
}

/**
 * The fields an access line adds for a response that answered an error: `errorCode`, the `code` of
 * the error envelope (e.g. `validation_failed`, `invoice_not_found`, `invalid_api_key`), so a 4xx line says why.
 */
export function errorCodeFields(res: object): { errorCode?: string } {
  const code = (res as CodeCarrier)[ERROR_CODE];
  return code === undefined ? {} : { errorCode: code };
}

/**
 * Gives the requests of `app` a `req.log` made on first use: a child of `log` bound to the id
 * `bindRequestLog` gave the request, so a webhook that logs nothing makes no logger. A `req.log`
 * assigned (pino-http's, on the API routes) is kept as assigned; a request with neither reads
 * `undefined`, which is what pino-http checks before assigning its own.
 *
 * The accessor is defined once, on the app's request prototype: defined on each request object (a
 * new getter closure per request), it turned every request into a slow dictionary-mode object, and
 * the webhook route's CPU per delivery fell by about a tenth without it.
 */
export function lazyRequestLogs(app: Express, log: Logger): void {
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Carrier): Logger | undefined {
      const reqId = this[REQUEST_ID];
      if (this[LOG] === undefined && reqId !== undefined) this[LOG] = log.child({ reqId });
      return this[LOG];
    },
    set(this: Carrier, value: Logger) {
      this[LOG] = value;
    },
  });
}

/** Binds the `req.log` that `lazyRequestLogs` makes on first use to the request id `reqId`. */
export function bindRequestLog(req: Request, reqId: string): void {
  (req as Carrier)[REQUEST_ID] = reqId;
}

/** Query parameters that may carry a credential: their values never reach a log line. */
const SECRET_QUERY = /([?&](?:api_key|apikey|key|token|access_token|secret|password)=)[^&#]*/gi;

/**
 * `url` with the values of credential-like query parameters (`api_key`, `token`, `key`, `secret`,
 * `password`, …) replaced by `[redacted]`: billhook takes keys only in the Authorization header, but
 * a client that puts one in the URL must not have it logged.
 */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1[redacted]');
}
