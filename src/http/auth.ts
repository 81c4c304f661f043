import type { RequestHandler } from 'express';
import { type ApiKeyInfo, authenticate } from '../auth/api-keys.ts';
import type { Db } from '../db/database.ts';
import type { ApiKeyScope } from '../db/schema.ts';
import { sendError } from './errors.ts';
import { overFailedAuthLimit, refuseFailingAddress } from './rate-limit.ts';

const RANK: Record<ApiKeyScope, number> = { read: 0, write: 1, admin: 2 };

/** Reads the key from `Authorization: Bearer KEY` or Basic auth with the key as user name. */
export function keyFrom(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme, value] = header.split(' ', 2);
  if (!value) return undefined;
  if (scheme?.toLowerCase() === 'bearer') return value.trim();
  if (scheme?.toLowerCase() === 'basic')
    return Buffer.from(value, 'base64').toString('utf8').split(':', 1)[0];
  return undefined;
}

declare module 'express-serve-static-core' {
  interface Request {
    apiKey?: ApiKeyInfo;
  }
}

/**
 * Requires a valid, unrevoked API key: 401 without one (429 once its address failed too often, see
 * `rateLimitFailedAuth`); 403 when its scope is below `scope` for
 * writes (`read` keys may only GET).
 */
export function requireApiKey(db: Db, scope: ApiKeyScope): RequestHandler {
  return async (req, res, next) => {
    const secret = keyFrom(req.headers.authorization);
    const key = secret ? await authenticate(db, secret, { slow: !overFailedAuthLimit(res) }) : undefined;
    if (!key) {
      if (refuseFailingAddress(res)) return;
      res.setHeader('WWW-Authenticate', 'Bearer realm="billhook"');
      return sendError(
        res,
        401,
        'authentication_error',
        'invalid_api_key',
        'a valid API key is required (Authorization: Bearer KEY)',
      );
    }
    const needed: ApiKeyScope =
      req.method === 'GET' || req.method === 'HEAD' ? scope : scope === 'admin' ? 'admin' : 'write';
    if (RANK[key.scope] < RANK[needed]) {
      return sendError(
        res,
        403,
        'permission_error',
        'insufficient_scope',
        `this key's scope is ${key.scope}; ${needed} is required`,
      );
    }
    req.apiKey = key;
    next();
  };
}

/**
 * Requires the key `requireApiKey` accepted to have at least `scope` (403 `insufficient_scope`
 * otherwise), for routes above the router's own scope (`/v1/gateway-accounts`: admin).
 */
export function requireScope(scope: ApiKeyScope): RequestHandler {
  return (req, res, next) => {
    const key = req.apiKey;
    if (!key || RANK[key.scope] < RANK[scope]) {
      return sendError(
        res,
        403,
        'permission_error',
        'insufficient_scope',
        `this key's scope is ${key?.scope ?? 'none'}; ${scope} is required`,
      );
    }
    next();
  };
}
