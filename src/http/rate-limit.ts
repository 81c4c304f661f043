import type { Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator, MemoryStore, type Options, rateLimit } from 'express-rate-limit';
import { sendError } from './errors.ts';

/**
 * Per-API-key rate limit (express-rate-limit, in this process's memory): `perMinute` requests a
 * minute, announced in the `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds) and
 * `RateLimit-Policy` headers (IETF draft 6, PRODUCT.md §6's `RateLimit-*`); beyond it, 429 with
 * `Retry-After`. The default (600) leaves a consumer polling once a second far from the limit.
 */
export function rateLimitPerKey(perMinute: number): RequestHandler {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-6',
    legacyHeaders: false,
    keyGenerator: (req) => req.apiKey?.id ?? 'anonymous',
    handler: (_req, res) =>
      sendError(
        res,
        429,
        'rate_limit_error',
        'rate_limited',
        `more than ${perMinute} requests a minute with this API key; retry later`,
      ),
  });
}

/** Set by `rateLimitFailedAuth` on a request whose address is over its limit: seconds to wait. */
const RETRY_AFTER = 'failedAuthRetryAfter';

/**
 * Per-source-address limit on failed authentications to /v1 and /admin (a missing, malformed,
 * unknown or revoked key: every 401), in this process's memory, a fixed window of a minute. After
 * `perMinute` failures from an address, until the window ends, its requests without credentials are
 * 429 with `Retry-After` (seconds to the window's end) at once, and those whose key fails are 429
 * instead of 401 (the authentication middlewares ask `refuseFailingAddress`), and no scrypt check
 * runs for its keys (`overFailedAuthLimit`: its guesses cost no KDF). A request with a valid key is
 * not counted here (it has its per-key limit) and not refused, so consumers sharing an address with a
 * misbehaving client keep working — except with an operator-chosen key this process has not verified
 * yet, which waits for the window's end. The address is `req.ip`: the peer's (billhook sets no
 * `trust proxy`, so behind a reverse proxy all clients share one count); IPv6 addresses count per
 * /56, as express-rate-limit's `ipKeyGenerator` does.
 */
export function rateLimitFailedAuth(perMinute: number): RequestHandler {
  const windowMs = 60_000;
  const failures = new MemoryStore();
  failures.init({ windowMs } as Options);
  return async (req, res, next) => {
    const address = ipKeyGenerator(req.ip ?? req.socket.remoteAddress ?? 'unknown');
    const seen = await failures.get(address);
    if (seen && seen.totalHits >= perMinute) {
      const resetAt = seen.resetTime?.getTime() ?? Date.now() + windowMs;
      res.locals[RETRY_AFTER] = Math.max(1, Math.ceil((resetAt - Date.now()) / 1000));
      res.locals.failedAuthLimit = perMinute;
      if (!req.headers.authorization) return refuseFailingAddress(res);
    }
    res.once('finish', () => {
      if (res.statusCode === 401) void failures.increment(address);
    });
    next();
  };
}

/** True when `rateLimitFailedAuth` found the request's address over its limit (no slow key checks then). */
export function overFailedAuthLimit(res: Response): boolean {
  return res.locals[RETRY_AFTER] !== undefined;
}

/**
 * For an authentication middleware about to answer 401: answers 429 with `Retry-After` instead when
 * `rateLimitFailedAuth` found the request's address over its limit.
 * @returns true when it answered
 */
export function refuseFailingAddress(res: Response): boolean {
  const retryAfter = res.locals[RETRY_AFTER] as number | undefined;
  if (retryAfter === undefined) return false;
  res.setHeader('Retry-After', String(retryAfter));
  sendError(
    res,
    429,
    'rate_limit_error',
    'too_many_failed_authentications',
    `more than ${res.locals.failedAuthLimit} failed authentications a minute from this address; retry later`,
  );
  return true;
}

/**
 * Per-source-address rate limit of the unsigned webhook routes (`/webhooks/eway`,
 * `/webhooks/securepay`; express-rate-limit, in this process's memory): `perMinute` deliveries a
 * minute from one address (an IPv6 address counts by its /56, as express-rate-limit's
 * `ipKeyGenerator` does), with the same `RateLimit-*` headers as the API; beyond it, 429
 * `rate_limited` with `Retry-After`, before the body is read. `onLimited` is called for each refusal
 * (counted and logged by the caller). The address is the connection's peer (`req.ip`): behind a front
 * proxy it is the proxy's, so the proxy should limit per client itself.
 */
export function rateLimitPerAddress(perMinute: number, onLimited: (req: Request) => void): RequestHandler {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-6',
    legacyHeaders: false,
    keyGenerator: (req) => ipKeyGenerator(req.ip ?? req.socket.remoteAddress ?? 'unknown'),
    handler: (req, res) => {
      onLimited(req);
      sendError(
        res,
        429,
        'rate_limit_error',
        'rate_limited',
        `more than ${perMinute} deliveries a minute from this address to an unsigned webhook route; retry later`,
      );
    },
  });
}
