import type { RequestHandler } from 'express';
import { AppError } from '../../errors.ts';
import type { ApiRoute } from './route.ts';
import { API_ROUTES } from './routes.ts';
import { printable } from './validate.ts';

/** A route's path as a pattern of the request's path (`{id}`: one segment). */
function pathPattern(path: string): RegExp {
  const escaped = path.replaceAll(/[.*+?^$()|[\]\\]/g, '\\$&').replaceAll(/\\?\{\w+\\?\}/g, '[^/]+');
  return new RegExp(`^${escaped}/?$`);
}

/** Routes with their path patterns; literal paths first (`/subscriptions/preview` before `{id}`). */
const ROUTES = API_ROUTES.map((op) => ({
  op,
  pattern: pathPattern(op.path),
  params: (op.path.match(/\{/g) ?? []).length,
  allowed: new Set(Object.keys(op.query?.shape ?? {})),
})).sort((a, b) => a.params - b.params);

/** The documented operation a request is for, or undefined (the router then answers 404). */
function operationOf(method: string, path: string): (typeof ROUTES)[number] | undefined {
  const wanted = (method === 'HEAD' ? 'get' : method.toLowerCase()) as ApiRoute['method'];
  return ROUTES.find((r) => r.op.method === wanted && r.pattern.test(path));
}

/**
 * Strict queries (PRODUCT.md §14), for every /v1 route in one place: a query parameter the route's
 * route in the route table (`API_ROUTES`, as the OpenAPI document lists them) does not list is refused, so a misspelt or
 * unimplemented filter never returns unfiltered rows (`?subscription=` on a list that cannot filter
 * by it). Answers 422 `unknown_parameter` with one field message per unknown parameter, naming the
 * ones the route takes; a request for no documented operation passes on (to a 404).
 */
export function strictQuery(): RequestHandler {
  return (req, _res, next) => {
    const names = Object.keys(req.query);
    if (names.length === 0) return next();
    const route = operationOf(req.method, `${req.baseUrl}${req.path}`);
    if (!route) return next();
    const unknown = names.filter((name) => !route.allowed.has(name));
    if (unknown.length === 0) return next();
    const takes = route.allowed.size ? `takes ${[...route.allowed].join(', ')}` : 'takes no query parameters';
    const fields = Object.fromEntries(
      unknown.map((name) => [
        printable(name),
        `unknown parameter: ${route.op.method.toUpperCase()} ${route.op.path} ${takes}`,
      ]),
    );
    next(
      new AppError(
        422,
        'invalid_request',
        'unknown_parameter',
        `unknown query parameter: ${Object.keys(fields).join(', ')}`,
        fields,
      ),
    );
  };
}
