import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { API_ROUTES } from '../../src/http/api/routes.ts';
import { countRowWrites, rowWrites } from '../fuzz/support.ts';
import { ADMIN_KEY, type TestApp } from '../support/app.ts';
import { openInvoice } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';

/** Every POST of the route table that declares no body (new ones join on their own). */
const BODYLESS = API_ROUTES.filter((r) => r.method === 'post' && !r.body && !r.rawBody);

/**
 * Strict bodies and the order of the input checks (#23 item 1, PRODUCT.md §14): a POST that takes no
 * body refuses a field (422, a message per field, nothing written) and accepts `{}` or nothing; the
 * key's scope is checked before the query and the body (403 before 422), as Stripe answers.
 */
describe('strict bodies and the order of checks on /v1', () => {
  let app: TestApp;
  beforeAll(async () => {
    // A key for the webhook endpoints' secrets: without it rotate-secret answers 409 before its 404.
    app = await startOfflineTestApp({ BILLHOOK_SECRET_KEY: randomBytes(32).toString('base64') });
    // Every table but api_keys (its last_used_at is written at most once a minute per key).
    const tables = await sql<{ name: string }>`
      SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'api_keys'
    `.execute(app.runtime.db);
    expect(tables.rows.length).toBeGreaterThan(30);
    await countRowWrites(
      app.runtime.db,
      tables.rows.map((t) => t.name),
    );
  });
  afterAll(() => stopOfflineTestApp(app));

  /** A new key of `scope`. */
  const keyOf = (scope: 'read' | 'write') => createApiKey(app.runtime.db, `${scope} key`, scope);

  /** `path` with each `{name}` replaced by an id that names nothing. */
  const missing = (path: string) => path.replaceAll(/\{\w+\}/g, 'x_unknown');

  it('refuses a field on every POST that takes no body, naming it, and writes nothing; `{}` and no body reach the route', async () => {
    expect(BODYLESS.length).toBeGreaterThan(15);
    for (const { path } of BODYLESS) {
      const before = await rowWrites(app.runtime.db);
      const refused = await app.api('POST', missing(path), { not_a_field: 1, other: 'x' });
      expect(refused.status, path).toBe(422);
      expect(refused.body.error.code, path).toBe('validation_failed');
      expect(refused.body.error.fields, path).toEqual({
        not_a_field: `unknown field: POST ${path} takes no body`,
        other: `unknown field: POST ${path} takes no body`,
      });
      expect(await rowWrites(app.runtime.db), path).toBe(before);
      // Past the input checks, the id names nothing.
      expect((await app.api('POST', missing(path), {})).status, path).toBe(404);
      expect((await app.api('POST', missing(path))).status, path).toBe(404);
    }
    // Not an object at all.
    const array = await app.api('POST', missing(BODYLESS[0]!.path), [1]);
    expect(array.status).toBe(422);
    expect(Object.keys(array.body.error.fields)).toEqual(['(body)']);
    // Keys a plain object already has are named too (the fuzz test's `{"constructor":null}`).
    const inherited = await fetch(`${app.url}${missing(BODYLESS[0]!.path)}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: '{"constructor":null,"__proto__":1,"toString":2}',
    });
    expect(inherited.status).toBe(422);
    const refusal = JSON.parse(await inherited.text()) as { error: { fields: object; message: string } };
    expect(Object.keys(refusal.error.fields)).toEqual(['constructor', '__proto__', 'toString']);
    expect(refusal.error.message).toBe('invalid request: constructor, __proto__, toString');
  });

  it('finalizes and closes nothing for a body with a field; `{}` and an empty body act', async () => {
    const { customer } = await openInvoice(app);
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.id,
      currency: 'eur',
      lines: [{ description: 'Setup', amount: 500 }],
    });
    expect(draft.body.status).toBe('DRAFT');
    const before = await rowWrites(app.runtime.db);
    const refused = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`, { force: true });
    expect([refused.status, Object.keys(refused.body.error.fields)]).toEqual([422, ['force']]);
    const closing = await app.api('POST', `/v1/customers/${customer.id}/close`, { now: true });
    expect([closing.status, Object.keys(closing.body.error.fields)]).toEqual([422, ['now']]);
    expect(await rowWrites(app.runtime.db)).toBe(before);
    expect((await app.api('GET', `/v1/invoices/${draft.body.id}`)).body.status).toBe('DRAFT');
    expect((await app.api('GET', `/v1/customers/${customer.id}`)).body.closed_at).toBeNull();

    const finalized = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`, {});
    expect([finalized.status, finalized.body.status]).toEqual([200, 'OPEN']);
    // An empty JSON body (Content-Length: 0) is `{}` to the parser.
    const closed = await fetch(`${app.url}/v1/customers/${customer.id}/close`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: '',
    });
    expect(closed.status).toBe(200);
    expect(((await closed.json()) as { closed_at: string | null }).closed_at).not.toBeNull();
  });

  it("checks the key's scope before the query and the body: 403 insufficient_scope, not 422", async () => {
    const read = (await keyOf('read')).secret;
    const write = (await keyOf('write')).secret;
    const post = await app.api(
      'POST',
      '/v1/invoices/x_unknown/finalize?not_a_parameter=1',
      { not_a_field: 1 },
      read,
    );
    expect([post.status, post.body.error.code]).toEqual([403, 'insufficient_scope']);
    const create = await app.api('POST', '/v1/customers?not_a_parameter=1', { email: 1 }, read);
    expect([create.status, create.body.error.code]).toEqual([403, 'insufficient_scope']);
    const list = await app.api('GET', '/v1/webhook-endpoints?not_a_parameter=1', undefined, write);
    expect([list.status, list.body.error.code]).toEqual([403, 'insufficient_scope']);
    // With the scope, the unknown parameter comes before the body.
    const allowed = await app.api(
      'POST',
      '/v1/invoices/x_unknown/finalize?not_a_parameter=1',
      { a: 1 },
      write,
    );
    expect([allowed.status, allowed.body.error.code]).toEqual([422, 'unknown_parameter']);
    // A request for no route is 404, whatever its query.
    const nowhere = await app.api('GET', '/v1/no-such-resource?not_a_parameter=1');
    expect([nowhere.status, nowhere.body.error.code]).toEqual([404, 'route_not_found']);
  });

  it('answers a HEAD of a GET route as the GET: its unknown parameter is 422, its known ones answer', async () => {
    const head = (query: string) =>
      fetch(`${app.url}/v1/refunds?${query}`, {
        method: 'HEAD',
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      });
    expect((await head('charge=ch_1')).status).toBe(422);
    expect((await head('limit=5')).status).toBe(200);
  });
});
