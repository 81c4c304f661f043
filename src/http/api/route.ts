import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import type { ApiKeyScope } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import { requireScope } from '../auth.ts';
import type { AppDeps } from '../deps.ts';
import { parseInput, printable } from './validate.ts';

/** The groups `/openapi.json` files operations under, with what each holds. */
export const TAGS = {
  Customers: 'Customers with their ledger balances and credit',
  'Payment methods': "Gateways' payment-method tokens (never card data)",
  Invoices: 'Invoices: create, finalize, charge, refund',
  Transactions: 'Payment attempts at the gateways',
  Refunds: 'Refunds of payments and of customer credit',
  'Credit notes': "A refund's share of its invoice's subtotal and tax",
  Disputes: 'Disputes (chargebacks) the gateways reported',
  Events: "The inbox: gateways' webhooks as stored",
  'Reconciliation exceptions': 'What needs a person',
  Activities: 'The audit log',
  Ledger: 'Ledger accounts and journal entries',
  Products: 'What is sold',
  Plans: "A product's price per period",
  Subscriptions: 'Subscriptions, proration and billing cycles',
  Coupons: 'Discounts on subscriptions',
  'Add-ons': 'Recurring prices per unit added to subscriptions',
  'Tax rates': 'Named tax rates by country or state, applied by the customer address',
  Currencies: "ISO 4217 currencies and each gateway's support",
  Usage: 'Usage events, estimates and limits',
  Settlement: 'Payouts, settlement reports and imports',
  'Gateway accounts': "Gateways' accounts and their credentials (admin)",
  'Webhook endpoints': 'Where billhook pushes its own events (admin)',
  'Gateway webhooks': "The gateways' deliveries to billhook, authenticated by their signatures",
  Operations: 'Health, readiness, metrics and this document',
} as const;

/** A group of operations in `/openapi.json`. */
export type Tag = keyof typeof TAGS;

/** What a route's handler gets besides `req` and `res`: the app's parts and its parsed input. */
export interface RouteInput<Q extends z.ZodType, B extends z.ZodType> {
  deps: AppDeps;
  /** The query parsed with the route's `query` schema (422 with field messages before the handler runs). */
  query: z.output<Q>;
  /** The JSON body parsed with the route's `body` schema (422 with field messages before the handler runs). */
  body: z.output<B>;
}

/** The `{name}` parameters of a path: `ParamNames<'/v1/a/{id}/b/{delivery}'>` is `'id' | 'delivery'`. */
type ParamNames<P extends string> = P extends `${string}{${infer N}}${infer R}` ? N | ParamNames<R> : never;

/** `req.params` of a route of path `P`. */
export type PathParams<P extends string> = { [K in ParamNames<P>]: string };

/**
 * A success answer: its schema, or its schema and what it means, with its media type when it is not
 * JSON (a PDF: `{ schema: z.string(), description, mediaType: 'application/pdf' }`).
 */
export type RouteResponse = z.ZodType | { schema: z.ZodType; description: string; mediaType?: string };

/**
 * One operation of the API: how it is served (method, path, scope, handler) and how
 * `/openapi.json` documents it (the same schemas). Express routes (`mountRoutes`) and the document
 * (openapi.ts) are both made from these.
 *
 * To add a route, add one object to its resource's table (e.g. `customerRoutes` in customers.ts):
 * ```ts
 * route({
 *   method: 'post', path: '/v1/customers/{id}/close', operationId: 'closeCustomer', tag: 'Customers',
 *   scope: 'write', summary: 'Close a customer', body: CloseCustomer,  // a zod schema, or none
 *   responses: { 200: Customer },                                       // zod schemas of responses.ts
 *   handler: async (req, res, { deps, body }) => { res.json(serialize.customer(…)) },
 * }),
 * ```
 * Path parameters are written `{name}` and read as `req.params.name`; a route under `/v1` is
 * mounted below the API key check, so `scope` (`read`, `write`, `admin`) is what the key needs.
 * Error answers (the envelope) are documented for every route; list only the success statuses,
 * each with the exact schema the handler sends (a new object shape: a schema in responses.ts with
 * `.meta({ id })`). A new resource file adds its table to `API_ROUTES` (routes.ts); a new route
 * also gets its row in README.md's tables (test/contract/openapi.test.ts checks both ways).
 */
export interface RouteSpec<
  Q extends z.ZodObject = z.ZodObject,
  B extends z.ZodType = z.ZodType,
  P extends string = string,
> {
  method: 'get' | 'post';
  /** The full path, path parameters as `{name}`: `/v1/invoices/{id}/finalize`. */
  path: P;
  /** Unique, camelCase: the generated client's method name. */
  operationId: string;
  summary: string;
  description?: string;
  /** The group the document files it under. */
  tag: Tag;
  /** The API key scope it needs. */
  scope: ApiKeyScope;
  /** Every query parameter it takes (any other is 422 `unknown_parameter`). */
  query?: Q;
  /** Its JSON body; without it (and without `rawBody`) a POST takes none: `{}` or nothing, any field is 422. */
  body?: B;
  /** A body that is not JSON (the settlement import's CSV): its media type and what it holds. */
  rawBody?: { mediaType: string; description: string };
  /** Each success status with the exact schema of its body. */
  responses: Partial<Record<200 | 201 | 202, RouteResponse>>;
  /** A GET that can answer 409 (the object's state does not allow it: a DRAFT's PDF); a POST always can. */
  conflicts?: boolean;
  /** Runs once the scope is checked and the input parsed; path parameters are `req.params.<name>`. */
  handler: (req: Request<PathParams<P>>, res: Response, input: RouteInput<Q, B>) => Promise<void> | void;
}

/** A route of any query and body (the table's element type). */
// biome-ignore lint/suspicious/noExplicitAny: a table holds routes of different input types
export type ApiRoute = RouteSpec<any, any, any>;

/** Declares a route with its handler's input typed by its schemas (see `RouteSpec`). */
export function route<
  Q extends z.ZodObject = z.ZodObject,
  B extends z.ZodType = z.ZodType,
  P extends string = string,
>(spec: RouteSpec<Q, B, P>): ApiRoute {
  return spec;
}

/** `/v1/invoices/{id}` as Express writes it below `prefix` (`/v1`): `/invoices/:id`. */
export function expressPath(path: string, prefix: string): string {
  return path.slice(prefix.length).replaceAll(/\{(\w+)\}/g, ':$1');
}

/**
 * Strict queries (PRODUCT.md §14): a query parameter `spec` does not list in its `query` is refused,
 * so a misspelt or unimplemented filter never returns unfiltered rows (`?subscription=` on a list that
 * cannot filter by it).
 * @returns a check of a request's query that throws AppError 422 `unknown_parameter`, with one field
 *   message per unknown parameter naming the parameters the route takes
 */
function strictQuery(spec: ApiRoute): (query: Request['query']) => void {
  const allowed = new Set(Object.keys(spec.query?.shape ?? {}));
  const takes = allowed.size ? `takes ${[...allowed].join(', ')}` : 'takes no query parameters';
  const message = `unknown parameter: ${spec.method.toUpperCase()} ${spec.path} ${takes}`;
  return (query) => {
    const unknown = Object.keys(query).filter((name) => !allowed.has(name));
    if (unknown.length === 0) return;
    const fields = Object.fromEntries(unknown.map((name) => [printable(name), message]));
    throw new AppError(
      422,
      'invalid_request',
      'unknown_parameter',
      `unknown query parameter: ${Object.keys(fields).join(', ')}`,
      fields,
    );
  };
}

/**
 * The body of a POST that declares none (as Stripe documents its bodyless actions): nothing, or an
 * object without fields. `noFields` parses with it; the document (openapi.ts) shows it, optional.
 */
export const NoBody = z
  .strictObject({})
  .meta({ description: 'Nothing, or an empty object: the operation takes no field' });

/**
 * The body schema of a POST that declares no `body` (nor `rawBody`): `{}`, or nothing (an absent
 * body is `undefined`, an empty one `{}`); each field sent is refused by name (422, a field message
 * per field, nothing changes), anything but an object as `(body)`. The keys are read on the raw
 * object: `__proto__` is one of them (JSON.parse makes it an own key; zod's records skip it).
 */
function noFields(spec: ApiRoute): z.ZodType {
  const message = `unknown field: POST ${spec.path} takes no body`;
  return z.preprocess((body, ctx) => {
    const fields = body && typeof body === 'object' && !Array.isArray(body) ? Object.keys(body) : [];
    for (const field of fields) ctx.addIssue({ code: 'custom', path: [field], message });
    return fields.length ? z.NEVER : body;
  }, NoBody);
}

/**
 * The Express routes of `routes`, mounted below `prefix` (their paths start with it): each checks
 * the key's scope (403 `insufficient_scope`: before any input check, as Stripe answers), refuses a
 * query parameter it does not take (422 `unknown_parameter`, `strictQuery`), parses its query and
 * body (422 with a message per field; a POST without a `body` takes none) and runs its handler. A
 * HEAD of a GET route is that GET (Express); a request for no route passes on (to a 404).
 */
export function mountRoutes(routes: readonly ApiRoute[], deps: AppDeps, prefix = '/v1'): Router {
  const router = Router();
  for (const spec of routes) {
    const checkQuery = strictQuery(spec);
    const bodySchema = spec.body ?? (spec.method === 'post' && !spec.rawBody ? noFields(spec) : undefined);
    router[spec.method](expressPath(spec.path, prefix), requireScope(spec.scope), async (req, res) => {
      checkQuery(req.query);
      const query = spec.query ? parseInput(spec.query, req.query) : {};
      const body = bodySchema ? parseInput(bodySchema, req.body) : undefined;
      // `{name}` segments are single path segments: each param is a string.
      await spec.handler(req as Request<Record<string, string>>, res, { deps, query, body });
    });
  }
  return router;
}
