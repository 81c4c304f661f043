import { Router } from 'express';
import { z } from 'zod';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject } from 'zod-openapi';
import { GATEWAYS } from '../../gateways/types.ts';
import { ErrorEnvelope, Health, WebhookReceived } from './responses.ts';
import { type ApiRoute, NoBody, type RouteResponse, TAGS, type Tag } from './route.ts';
import { API_ROUTES } from './routes.ts';

const SUCCESS_DESCRIPTIONS: Record<number, string> = { 200: 'OK', 201: 'Created', 202: 'Accepted' };

const header = (description: string, schema: Record<string, unknown> = { type: 'string' }) => ({
  description,
  schema,
});

/** The headers every /v1 answer carries (request-id.ts, rate-limit.ts), and those of a POST's success. */
const HEADERS = {
  'X-Request-Id': header(
    "The request's id: the caller's X-Request-Id when it is a plain token, else a new UUID",
  ),
  'RateLimit-Limit': header("Requests this key may make in the window (IETF draft 6's RateLimit-*)", {
    type: 'integer',
  }),
  'RateLimit-Remaining': header('Requests left in the window', { type: 'integer' }),
  'RateLimit-Reset': header('Seconds until the window ends', { type: 'integer' }),
  'RateLimit-Policy': header('The limit and the window in seconds, e.g. `600;w=60`'),
  'Idempotent-Replayed': header(
    '`true` when this is the stored answer of an earlier request with the same Idempotency-Key (same status and body)',
    { type: 'string', enum: ['true'] },
  ),
  'Retry-After': header('Seconds to wait before retrying', { type: 'integer' }),
  'WWW-Authenticate': header('`Bearer realm="billhook"`'),
};
type HeaderName = keyof typeof HEADERS;

const refs = (names: HeaderName[]) =>
  Object.fromEntries(names.map((name) => [name, { $ref: `#/components/headers/${name}` }]));

const API_HEADERS: HeaderName[] = [
  'X-Request-Id',
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
  'RateLimit-Policy',
];

/** The error answers, one component each: the envelope (errors.ts `ErrorBody`) with what it means. */
const ERRORS = {
  400: ['BadRequest', 'The body is not JSON, or the Idempotency-Key or the URL is malformed', []],
  401: ['Unauthorized', 'No valid API key', ['WWW-Authenticate']],
  403: ['Forbidden', "The key's scope does not allow this operation", []],
  404: ['NotFound', 'No such object (`<resource>_not_found`) or route', []],
  409: ['Conflict', "The object's state does not allow it, or the Idempotency-Key is in use", []],
  413: ['PayloadTooLarge', 'The body is too large', []],
  415: ['UnsupportedMediaType', 'The body is not of the media type the operation takes', []],
  422: ['UnprocessableEntity', 'Invalid input: `fields` names each field with its message', []],
  429: ['TooManyRequests', 'Rate limited (per key, or failed authentications per address)', ['Retry-After']],
  500: [
    'InternalError',
    'Internal error (a POST with an Idempotency-Key: replayed to that key)',
    ['Idempotent-Replayed'],
  ],
  503: [
    'Unavailable',
    'The database or the gateway cannot be reached; retry later (a POST with an Idempotency-Key whose answer was kept: replayed to that key, so retry with a new one)',
    ['Retry-After', 'Idempotent-Replayed'],
  ],
} as const satisfies Record<number, readonly [string, string, HeaderName[]]>;
type ErrorStatus = keyof typeof ERRORS;

const errorRefs = (statuses: ErrorStatus[]) =>
  Object.fromEntries(
    statuses.map((status) => [status, { $ref: `#/components/responses/${ERRORS[status][0]}` }]),
  );

/** A success answer of the route table as a response object. */
function success(status: number, response: RouteResponse, headers: HeaderName[]) {
  const { schema, description, mediaType } =
    'description' in response && 'schema' in response
      ? response
      : {
          schema: response as z.ZodType,
          description: SUCCESS_DESCRIPTIONS[status] ?? 'OK',
          mediaType: undefined,
        };
  return { description, headers: refs(headers), content: { [mediaType ?? 'application/json']: { schema } } };
}

/** `{name}` path parameters of `path`, each a string (`gateway`: one of the gateways). */
function pathParams(path: string) {
  const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  if (names.length === 0) return undefined;
  return z.object(
    Object.fromEntries(
      names.map((name) => [name, name === 'gateway' ? z.enum(GATEWAYS) : z.string().max(64)]),
    ),
  );
}

const IdempotencyKey = z.object({
  'Idempotency-Key': z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/)
    .optional()
    .meta({
      description:
        'Makes the POST safe to retry: the same key and request get the stored answer (Idempotent-Replayed: true), a 5xx too when the request may have moved money before it failed (a commit asked for, a gateway called: read what it left, then use a new key); a 4xx, and a 5xx of a request that changed nothing, are not kept, so the corrected request runs with the key; the same key with another request is 422, and while the first still runs 409',
    }),
});

/** `object` without its undefined properties (zod-openapi reads every key it is given). */
const defined = <T extends object>(object: T): T =>
  Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as T;

/** The security requirement of a scope: a Bearer or Basic API key of at least that scope. */
const security = (scope: string): Record<string, string[]>[] => [
  { bearerAuth: [scope] },
  { basicAuth: [scope] },
];

/** One route of the table as an OpenAPI operation. */
function operationOf(route: ApiRoute): ZodOpenApiOperationObject {
  const post = route.method === 'post';
  const successHeaders: HeaderName[] = post ? [...API_HEADERS, 'Idempotent-Replayed'] : API_HEADERS;
  const errors: ErrorStatus[] = post
    ? [400, 401, 403, 404, 409, 413, ...(route.rawBody ? ([415] as const) : []), 422, 429, 500, 503]
    : [400, 401, 403, 404, ...(route.conflicts ? ([409] as const) : []), 422, 429, 500, 503];
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: [route.tag],
    security: security(route.scope),
    requestParams: defined({
      path: pathParams(route.path),
      query: route.query,
      header: post ? IdempotencyKey : undefined,
    }),
    ...(route.body
      ? { requestBody: { required: true, content: { 'application/json': { schema: route.body } } } }
      : route.rawBody
        ? {
            requestBody: {
              required: true,
              description: route.rawBody.description,
              content: { [route.rawBody.mediaType]: { schema: z.string() } },
            },
          }
        : post
          ? { requestBody: { required: false, content: { 'application/json': { schema: NoBody } } } }
          : {}),
    responses: {
      ...Object.fromEntries(
        Object.entries(route.responses).map(([status, response]) => [
          status,
          success(Number(status), response as RouteResponse, successHeaders),
        ]),
      ),
      ...errorRefs(errors),
    },
  };
}

/** An operation outside /v1 (no API key): the webhook receiver, health, metrics, this document. */
function serviceOperation(
  operationId: string,
  tag: Tag,
  summary: string,
  responses: ZodOpenApiOperationObject['responses'],
  extra: Partial<ZodOpenApiOperationObject> = {},
): ZodOpenApiOperationObject {
  return { operationId, summary, tags: [tag], security: [], responses, ...extra };
}

const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

const webhookDelivery = (withAccount: boolean): ZodOpenApiOperationObject =>
  serviceOperation(
    withAccount ? 'receiveGatewayAccountWebhook' : 'receiveGatewayWebhook',
    'Gateway webhooks',
    withAccount
      ? "Receive a gateway's webhook delivery for one of its gateway accounts (gwa_…)"
      : "Receive a gateway's webhook delivery for its default account",
    {
      200: json(WebhookReceived, 'Verified and stored (or already stored): the gateway stops retrying'),
      ...errorRefs([400, 404, 413, 503]),
    },
    {
      description:
        "The raw body is verified with the gateway's own signature scheme (the gateway's webhook secret), stored, then processed by the workers.",
      requestParams: defined({ path: pathParams(withAccount ? '/{gateway}/{account}' : '/{gateway}') }),
      requestBody: {
        required: true,
        description: "The gateway's delivery, as it sent it",
        content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
      },
    },
  );

/** The paths outside /v1: their handlers live in webhooks.ts, health.ts, metrics.ts and here. */
const SERVICE_PATHS: ZodOpenApiPathsObject = {
  '/webhooks/{gateway}': { post: webhookDelivery(false) },
  '/webhooks/{gateway}/{account}': { post: webhookDelivery(true) },
  '/healthz': {
    get: serviceOperation('getHealth', 'Operations', 'The process is up', {
      200: json(Health, 'Up: `{"status": "ok"}`'),
    }),
  },
  '/readyz': {
    get: serviceOperation(
      'getReadiness',
      'Operations',
      'Ready: the database is reachable, migrations current',
      {
        200: json(Health, 'Ready: `{"status": "ready"}`'),
        503: json(Health, 'Not ready: `{"status": "unavailable"}`'),
      },
    ),
  },
  '/metrics': {
    get: serviceOperation('getMetrics', 'Operations', 'Prometheus metrics in the text exposition format', {
      200: { description: 'The metrics', content: { 'text/plain': { schema: z.string() } } },
    }),
  },
  '/openapi.json': {
    get: serviceOperation('getOpenApiDocument', 'Operations', 'This document (OpenAPI 3.1)', {
      200: json(z.record(z.string(), z.unknown()), 'The OpenAPI document'),
    }),
  },
};

/**
 * The OpenAPI 3.1 document of billhook, made from the route table (routes.ts: the same zod schemas
 * that validate requests and describe answers) and the service routes, so it cannot drift from what
 * the API accepts and answers.
 */
export function openApiDocument(routes: readonly ApiRoute[] = API_ROUTES): Record<string, unknown> {
  const paths: ZodOpenApiPathsObject = {};
  for (const route of routes) {
    paths[route.path] = { ...paths[route.path], [route.method]: operationOf(route) };
  }
  const used = new Set<string>([
    ...routes.map((r) => r.tag),
    ...Object.values(SERVICE_PATHS).flatMap((item) =>
      Object.values(item as Record<string, { tags?: string[] }>).flatMap((op) => op.tags ?? []),
    ),
  ]);
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'billhook',
      version: '1',
      description:
        'Amounts are integers in minor units next to an ISO 4217 currency. Ids carry a type prefix. ' +
        'Lists answer `{object: "list", data, has_more}`, cursor-paged: `limit` defaults to 10 (at most 100) with ' +
        '`starting_after`; the ledger, activities and billing cycles default to 100; `/v1/currencies` answers ' +
        'every currency at once. Errors answer `{error: {type, code, message, fields}}`.',
    },
    servers: [{ url: '/', description: 'The origin that serves this document' }],
    tags: Object.entries(TAGS)
      .filter(([name]) => used.has(name))
      .map(([name, description]) => ({ name, description })),
    security: [{ bearerAuth: [] }, { basicAuth: [] }],
    paths: { ...paths, ...SERVICE_PATHS },
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: 'An API key (`bh_…`); its scope (read, write, admin) is listed per operation',
        },
        basicAuth: {
          type: 'http',
          scheme: 'basic',
          description: 'The API key as user name, no password',
        },
      },
      headers: HEADERS,
      responses: Object.fromEntries(
        Object.values(ERRORS).map(([name, description, headers]) => [
          name,
          {
            description,
            headers: refs([...headers, 'X-Request-Id']),
            content: { 'application/json': { schema: ErrorEnvelope } },
          },
        ]),
      ),
    },
  }) as unknown as Record<string, unknown>;
}

/**
 * The served document, made on the first app's start and kept for the process: it depends on the
 * route table only, and making it (zod-openapi's `createDocument`) costs about 75 ms of CPU.
 */
let served: Record<string, unknown> | undefined;

/** `GET /openapi.json` (no key needed). */
export function openApiRoutes(): Router {
  const router = Router();
  served ??= openApiDocument();
  const document = served;
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  return router;
}
