import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
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
