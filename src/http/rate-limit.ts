import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
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
