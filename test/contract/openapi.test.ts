import { readFileSync } from 'node:fs';
import { lintFromString, loadConfig } from '@redocly/openapi-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ROUTES } from '../../src/http/api/routes.ts';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app.ts';

/** `METHOD /v1/…` of every route row of README.md's tables (`:id` written `{id}`). */
function readmeRoutes(): Set<string> {
  const routes = new Set<string>();
  for (const line of readFileSync(new URL('../../README.md', import.meta.url), 'utf8').split('\n')) {
    const cell = /^\| ([^|]+) \|/.exec(line)?.[1];
    if (!cell) continue;
    for (const [, method, path] of cell.matchAll(/`(GET|POST) (\/v1\/[^`\s]+)`/g)) {
      routes.add(`${method} ${path!.replaceAll(/:(\w+)/g, '{$1}')}`);
    }
  }
  return routes;
}

describe('the API as a contract (#26 items 1 and 2)', () => {
  let app: TestApp;
  let document: Record<string, unknown>;
  beforeAll(async () => {
    app = await startTestApp();
    document = (await (await fetch(`${app.url}/openapi.json`)).json()) as Record<string, unknown>;
  });
  afterAll(() => app.stop());

  it('answers an idempotent replay with the first status and body, Idempotent-Replayed: true, as documented', async () => {
    const send = () =>
      fetch(`${app.url}/v1/customers`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${ADMIN_KEY}`,
          'content-type': 'application/json',
          'idempotency-key': 'contract-replay-1',
        },
        body: JSON.stringify({ email: 'replay@example.com' }),
      });
    const first = await send();
    const again = await send();
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.json()).toEqual(await first.json());
    const documented = (document.paths as any)['/v1/customers'].post.responses['201'].headers;
    expect(documented['Idempotent-Replayed']).toBeDefined();
  });

  it("lists in README.md's route tables every operation of the route table, and no other", () => {
    const table = new Set(API_ROUTES.map((r) => `${r.method.toUpperCase()} ${r.path}`));
    const readme = readmeRoutes();
    expect(
      [...table].filter((r) => !readme.has(r)),
      'routes missing from README.md',
    ).toEqual([]);
    expect(
      [...readme].filter((r) => !table.has(r)),
      'README.md rows with no route',
    ).toEqual([]);
  });

  it("passes Redocly's recommended lint with no error or warning (redocly.yaml)", async () => {
    const config = await loadConfig({ configPath: new URL('../../redocly.yaml', import.meta.url).pathname });
    const problems = await lintFromString({
      source: JSON.stringify(document),
      absoluteRef: `${app.url}/openapi.json`,
      config,
    });
    expect(
      problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`),
    ).toEqual([]);
  });

  it('documents every operation: operationId, tag, security, success statuses with schemas, the error envelope', () => {
    const paths = document.paths as Record<string, Record<string, any>>;
    expect(document.servers).toEqual([{ url: '/', description: expect.any(String) }]);
    const schemes = (document.components as any).securitySchemes;
    expect(schemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(schemes.basicAuth).toMatchObject({ type: 'http', scheme: 'basic' });
    expect(paths['/webhooks/{gateway}']?.post.operationId).toBe('receiveGatewayWebhook');
    for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json'])
      expect(paths[path]?.get).toBeDefined();
    const error = (document.components as any).schemas.Error;
    expect(error.required).toEqual(['error']);
    expect(error.properties.error.required).toEqual(['type', 'code', 'message', 'fields']);
    for (const route of API_ROUTES) {
      const operation = paths[route.path]?.[route.method];
      expect(operation?.operationId, `${route.method} ${route.path}`).toBe(route.operationId);
      expect(operation.tags).toEqual([route.tag]);
      expect(operation.security).toEqual([{ bearerAuth: [route.scope] }, { basicAuth: [route.scope] }]);
      const successes = Object.keys(operation.responses).filter((s) => s.startsWith('2'));
      expect(successes.sort()).toEqual(Object.keys(route.responses).sort());
      for (const status of successes) {
        const response = operation.responses[status];
        // JSON, unless the route declares another media type (a PDF).
        const declared = route.responses[Number(status) as 200];
        const mediaType = (declared && 'mediaType' in declared && declared.mediaType) || 'application/json';
        expect(response.content[mediaType].schema).toBeDefined();
        expect(Object.keys(response.headers)).toEqual(
          expect.arrayContaining([
            'X-Request-Id',
            'RateLimit-Limit',
            'RateLimit-Remaining',
            'RateLimit-Reset',
          ]),
        );
        if (route.method === 'post') expect(Object.keys(response.headers)).toContain('Idempotent-Replayed');
      }
      expect(operation.responses['422']).toEqual({ $ref: '#/components/responses/UnprocessableEntity' });
      if (route.method === 'post') {
        expect(operation.parameters.map((p: { name: string }) => p.name)).toContain('Idempotency-Key');
      }
    }
    // A PDF is documented as such: the invoice's and the receipt's.
    for (const path of ['/v1/invoices/{id}/pdf', '/v1/transactions/{id}/receipt'])
      expect(Object.keys(paths[path]!.get.responses['200'].content)).toEqual(['application/pdf']);
    // Creates answer 201; the customer list is the list shape.
    expect(Object.keys(paths['/v1/customers']!.post.responses)).toContain('201');
    expect((document.components as any).schemas.CustomerList.required.sort()).toEqual([
      'data',
      'has_more',
      'object',
    ]);
  });
});
