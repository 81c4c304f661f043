import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, revokeApiKey } from '../../src/auth/api-keys.ts';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app.ts';

describe('/v1 API', () => {
  let app: TestApp;
  let customerId: string;
  beforeAll(async () => {
    app = await startTestApp();
    customerId = (await app.api('POST', '/v1/customers', { email: 'grace@example.com' })).body.id;
  });
  afterAll(() => app.stop());

  async function rowCounts() {
    const count = async (table: 'customers' | 'invoices' | 'payment_methods') =>
      (await app.runtime.db.selectFrom(table).select('id').execute()).length;
    return {
      customers: await count('customers'),
      invoices: await count('invoices'),
      methods: await count('payment_methods'),
    };
  }

  describe('authentication', () => {
    it('answers 401 without a key, with an unknown key and with a revoked key', async () => {
      expect((await fetch(`${app.url}/v1/invoices`)).status).toBe(401);
      expect((await app.api('GET', '/v1/invoices', undefined, 'bh_not_a_real_key')).status).toBe(401);
      const { secret, key } = await createApiKey(app.runtime.db, 'soon revoked', 'write');
      expect((await app.api('GET', '/v1/invoices', undefined, secret)).status).toBe(200);
      await revokeApiKey(app.runtime.db, key.id);
      const revoked = await app.api('GET', '/v1/invoices', undefined, secret);
      expect(revoked.status).toBe(401);
      expect(revoked.body.error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
    });

    it('accepts the key as the Basic auth user name', async () => {
      const response = await fetch(`${app.url}/v1/invoices`, {
        headers: { authorization: `Basic ${Buffer.from(`${ADMIN_KEY}:`).toString('base64')}` },
      });
      expect(response.status).toBe(200);
    });

    it('lets a read-only key read but answers 403 to its writes, changing nothing', async () => {
      const { secret } = await createApiKey(app.runtime.db, 'dashboard', 'read');
      expect((await app.api('GET', '/v1/ledger/accounts', undefined, secret)).status).toBe(200);
      const before = await rowCounts();
      const write = await app.api('POST', '/v1/customers', { email: 'x@example.com' }, secret);
      expect(write.status).toBe(403);
      expect(write.body.error.code).toBe('insufficient_scope');
      expect(await rowCounts()).toEqual(before);
    });

    it('stores only a hash of each key', async () => {
      const rows = await app.runtime.db.selectFrom('api_keys').selectAll().execute();
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) {
        // SHA-256 of a generated key, salted scrypt of a chosen one (test/http/auth.hardening.test.ts).
        expect(row.key_hash).toMatch(/^([0-9a-f]{64}|scrypt\$.+)$/);
        expect(JSON.stringify(row)).not.toContain(ADMIN_KEY);
      }
    });
  });

  describe('bad input gets a 4xx with field-level messages and changes nothing', () => {
    const invoice = (lines: unknown, extra: Record<string, unknown> = {}) => ({
      customer: 'CUSTOMER',
      currency: 'usd',
      lines,
      ...extra,
    });
    it.each([
      ['a customer without email', '/v1/customers', {}, 'email'],
      ['a malformed email', '/v1/customers', { email: 'not-an-email' }, 'email'],
      ['an unknown field', '/v1/customers', { email: 'a@example.com', admin: true }, '(body)'],
      ['a float amount', '/v1/invoices', invoice([{ description: 'x', amount: 10.5 }]), 'lines.0.amount'],
      ['a negative amount', '/v1/invoices', invoice([{ description: 'x', amount: -1 }]), 'lines.0.amount'],
      ['a string amount', '/v1/invoices', invoice([{ description: 'x', amount: '100' }]), 'lines.0.amount'],
      ['a huge amount', '/v1/invoices', invoice([{ description: 'x', amount: 1e16 }]), 'lines.0.amount'],
      [
        'an unknown currency',
        '/v1/invoices',
        invoice([{ description: 'x', amount: 1 }], { currency: 'XYZ' }),
        'currency',
      ],
      ['no lines', '/v1/invoices', invoice([]), 'lines'],
      [
        'a zero quantity',
        '/v1/invoices',
        invoice([{ description: 'x', amount: 1, quantity: 0 }]),
        'lines.0.quantity',
      ],
      [
        'an unknown gateway',
        '/v1/payment-methods',
        { customer: 'CUSTOMER', gateway: 'bitpay', gateway_token: 't' },
        'gateway',
      ],
    ])('%s → 422', async (_name, path, body, field) => {
      const before = await rowCounts();
      const response = await app.api(
        'POST',
        path,
        JSON.parse(JSON.stringify(body).replaceAll('CUSTOMER', customerId)),
      );
      expect(response.status).toBe(422);
      expect(response.body.error).toMatchObject({ type: 'invalid_request', code: 'validation_failed' });
      expect(Object.keys(response.body.error.fields)).toContain(field);
      expect(await rowCounts()).toEqual(before);
    });

    it('answers 400 to a body that is not JSON', async () => {
      const response = await fetch(`${app.url}/v1/customers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body: '{"email": ',
      });
      expect(response.status).toBe(400);
      expect(((await response.json()) as any).error.code).toBe('invalid_json');
    });

    it('stores SQL and HTML metacharacters as plain text', async () => {
      const name = `Robert'); DROP TABLE customers;-- <script>alert(1)</script>`;
      const created = await app.api('POST', '/v1/customers', { email: 'bobby@example.com', name });
      expect(created.status).toBe(201);
      expect((await app.api('GET', `/v1/customers/${created.body.id}`)).body.name).toBe(name);
    });

    it('answers 404 for unknown ids and routes, 409 for a state that does not allow the action', async () => {
      expect((await app.api('GET', '/v1/invoices/inv_nope')).status).toBe(404);
      expect((await app.api('GET', '/v1/nothing-here')).status).toBe(404);
      const unknownCustomer = await app.api('POST', '/v1/invoices', {
        customer: 'cus_nope',
        currency: 'usd',
        lines: [{ description: 'x', amount: 1 }],
      });
      expect(unknownCustomer.status).toBe(404);
      const draft = await app.api('POST', '/v1/invoices', {
        customer: customerId,
        currency: 'jpy',
        lines: [{ description: 'x', amount: 500 }],
      });
      expect((await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`)).body.status).toBe('OPEN');
      const twice = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
      expect(twice.status).toBe(409);
      expect(twice.body.error.code).toBe('invoice_not_draft');
      const refund = await app.api('POST', `/v1/invoices/${draft.body.id}/refund`, {});
      expect(refund.status).toBe(409);
    });
  });

  describe('invoices', () => {
    it('computes totals in minor units from lines with quantities and credits, and finalizes into the ledger', async () => {
      const created = await app.api('POST', '/v1/invoices', {
        customer: customerId,
        currency: 'KWD',
        lines: [
          { description: 'Seats', amount: 12_345, quantity: 3 },
          { description: 'Goodwill credit', amount: 1_000, type: 'CREDIT' },
        ],
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        status: 'DRAFT',
        currency: 'KWD',
        total: 36_035,
        amount_due: 36_035,
        amount_paid: 0,
      });
      expect(created.body.lines.map((l: { amount: number }) => l.amount)).toEqual([37_035, -1_000]);
      await app.api('POST', `/v1/invoices/${created.body.id}/finalize`);
      const accounts = (await app.api('GET', '/v1/ledger/accounts?currency=kwd')).body.data;
      expect(accounts.map((a: { code: string; balance: number }) => [a.code, a.balance])).toEqual([
        [`receivable:${customerId}`, 36_035],
        ['revenue', -36_035],
      ]);

      // Pages of accounts (by code, then currency), one account, and its entries.
      const first = await app.api('GET', '/v1/ledger/accounts?currency=KWD&limit=1');
      expect(first.body).toMatchObject({ has_more: true, data: [{ code: `receivable:${customerId}` }] });
      const second = await app.api(
        'GET',
        `/v1/ledger/accounts?currency=KWD&limit=1&starting_after=${first.body.data[0].id}`,
      );
      expect(second.body).toMatchObject({ has_more: false, data: [{ code: 'revenue', balance: -36_035 }] });
      const receivable = await app.api('GET', `/v1/ledger/accounts/${first.body.data[0].id}`);
      expect(receivable.body).toMatchObject({ object: 'ledger_account', currency: 'KWD', balance: 36_035 });
      const byType = await app.api('GET', '/v1/ledger/accounts?currency=KWD&type=revenue');
      expect(byType.body.data.map((a: { code: string }) => a.code)).toEqual(['revenue']);
      const entries = await app.api('GET', `/v1/ledger/accounts/${first.body.data[0].id}/entries`);
      expect(entries.body).toMatchObject({ has_more: false });
      expect(entries.body.data).toHaveLength(1);
      expect(entries.body.data[0]).toMatchObject({
        object: 'journal_entry',
        source: { type: 'invoice', id: created.body.id },
      });
      expect(entries.body.data[0].postings).toContainEqual({
        account: `receivable:${customerId}`,
        amount: 36_035,
        currency: 'KWD',
      });
      // Bad input: a clear error, field by field.
      const unknown = await app.api('GET', '/v1/ledger/accounts/acct_nope');
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe('ledger_account_not_found');
      expect((await app.api('GET', '/v1/ledger/accounts/acct_nope/entries')).status).toBe(404);
      const badCursor = await app.api('GET', '/v1/ledger/accounts?starting_after=acct_nope');
      expect(badCursor.status).toBe(422);
      expect(badCursor.body.error.code).toBe('resource_missing');
      expect(badCursor.body.error.fields).toEqual({ starting_after: 'no ledger account with id acct_nope' });
      const badType = await app.api('GET', '/v1/ledger/accounts?type=cash&currency=XYZ&limit=500');
      expect(badType.status).toBe(422);
      expect(Object.keys(badType.body.error.fields).sort()).toEqual(['currency', 'limit', 'type']);
    });

    it('voids an unpaid invoice, reversing its receivable; a DRAFT voids without entries', async () => {
      const c = (await app.api('POST', '/v1/customers', { email: 'void@example.com' })).body.id;
      const open = (
        await app.api('POST', '/v1/invoices', {
          customer: c,
          currency: 'SEK',
          lines: [{ description: 'x', amount: 900 }],
        })
      ).body;
      await app.api('POST', `/v1/invoices/${open.id}/finalize`);
      const voided = await app.api('POST', `/v1/invoices/${open.id}/void`);
      expect(voided.body).toMatchObject({ status: 'VOID', amount_due: 0 });
      const sek = (await app.api('GET', '/v1/ledger/accounts')).body.data.filter(
        (a: { currency: string }) => a.currency === 'SEK',
      );
      expect(sek.map((a: { balance: number }) => a.balance)).toEqual([0, 0]);
      expect((await app.api('POST', `/v1/invoices/${open.id}/void`)).body.error.code).toBe(
        'invoice_not_voidable',
      );
      const draft = (
        await app.api('POST', '/v1/invoices', {
          customer: c,
          currency: 'SEK',
          lines: [{ description: 'y', amount: 5 }],
        })
      ).body;
      expect((await app.api('POST', `/v1/invoices/${draft.id}/void`)).body.status).toBe('VOID');
    });

    it('records offline payments, partial then the rest, never more than is due', async () => {
      const c = (await app.api('POST', '/v1/customers', { email: 'offline@example.com' })).body.id;
      const draft = (
        await app.api('POST', '/v1/invoices', {
          customer: c,
          currency: 'NOK',
          lines: [{ description: 'x', amount: 1000 }],
        })
      ).body;
      await app.api('POST', `/v1/invoices/${draft.id}/finalize`);
      const part = await app.api('POST', `/v1/invoices/${draft.id}/payments`, {
        amount: 400,
        method: 'BANK',
        reference: 'SEPA 123',
      });
      expect(part.status).toBe(201);
      expect(part.body).toMatchObject({ status: 'OPEN', amount_paid: 400, amount_due: 600 });
      const over = await app.api('POST', `/v1/invoices/${draft.id}/payments`, {
        amount: 601,
        method: 'CASH',
      });
      expect(over.status).toBe(422);
      expect(over.body.error.fields.amount).toMatch(/at most 600/);
      expect(
        (await app.api('POST', `/v1/invoices/${draft.id}/payments`, { amount: 600, method: 'CHECK' })).body,
      ).toMatchObject({ status: 'PAID', amount_due: 0 });
      expect(
        (await app.api('POST', `/v1/invoices/${draft.id}/payments`, { amount: 1, method: 'CASH' })).status,
      ).toBe(409);
      expect((await app.api('POST', `/v1/invoices/${draft.id}/void`)).status).toBe(409);
      const nok = (await app.api('GET', '/v1/ledger/accounts')).body.data.filter(
        (a: { currency: string }) => a.currency === 'NOK',
      );
      expect(nok.map((a: { code: string; balance: number }) => [a.code, a.balance])).toEqual([
        ['offline_receipts', 1000],
        [`receivable:${c}`, 0],
        ['revenue', -1000],
      ]);
    });

    it('sorts oldest first, filters by creation time, and expands the customer and transactions', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        ids.push(
          (
            await app.api('POST', '/v1/invoices', {
              customer: customerId,
              currency: 'CHF',
              lines: [{ description: `s${i}`, amount: 10 + i }],
            })
          ).body.id,
        );
      }
      const created = (await app.api('GET', `/v1/invoices/${ids[1]}`)).body.created_at as string;
      const oldest = await app.api('GET', `/v1/invoices?customer=${customerId}&sort=created&limit=100`);
      const chf = oldest.body.data
        .filter((i: { currency: string }) => i.currency === 'CHF')
        .map((i: { id: string }) => i.id);
      expect(chf).toEqual(ids);
      const since = await app.api(
        'GET',
        `/v1/invoices?customer=${customerId}&created_gte=${encodeURIComponent(created)}&limit=100`,
      );
      expect(since.body.data.map((i: { id: string }) => i.id)).toEqual([ids[2], ids[1]]);
      const one = await app.api('GET', `/v1/invoices/${ids[0]}?expand=customer,transactions`);
      expect(one.body.customer).toMatchObject({ id: customerId, object: 'customer' });
      expect(one.body.transactions).toEqual([]);
      const listed = await app.api('GET', `/v1/invoices?customer=${customerId}&limit=1&expand=customer`);
      expect(listed.body.data[0].customer.object).toBe('customer');
      expect((await app.api('GET', '/v1/invoices?expand=payments')).status).toBe(422);
      expect((await app.api('GET', '/v1/invoices?created_gte=yesterday')).status).toBe(422);
    });

    it('pages newest first with limit and starting_after', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        ids.push(
          (
            await app.api('POST', '/v1/invoices', {
              customer: customerId,
              currency: 'usd',
              lines: [{ description: `p${i}`, amount: 100 + i }],
            })
          ).body.id,
        );
      }
      const first = await app.api('GET', `/v1/invoices?limit=2&customer=${customerId}&status=DRAFT`);
      expect(first.body.has_more).toBe(true);
      expect(first.body.data.map((i: { id: string }) => i.id)).toEqual([ids[2], ids[1]]);
      const next = await app.api(
        'GET',
        `/v1/invoices?limit=2&customer=${customerId}&status=DRAFT&starting_after=${ids[1]}`,
      );
      expect(next.body.data[0].id).toBe(ids[0]);
      expect((await app.api('GET', '/v1/invoices?limit=101')).status).toBe(422);
    });
  });

  it('writes a ledger balance beyond 2^53 minor units with every digit: IDR 10 × 10^15 + 1 = 10,000,000,000,000,001', async () => {
    const customer = await app.api('POST', '/v1/customers', { email: 'idr-sum@example.com' });
    // Ten invoices of 10^15 minor units (the most one amount may be) and one of 1.
    for (const amount of [...Array<number>(10).fill(1_000_000_000_000_000), 1]) {
      const draft = await app.api('POST', '/v1/invoices', {
        customer: customer.body.id,
        currency: 'idr',
        lines: [{ description: 'Platform fee', amount }],
      });
      expect((await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`)).body.status).toBe('OPEN');
    }
    const response = await fetch(`${app.url}/v1/ledger/accounts?code=revenue&currency=IDR`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(response.status).toBe(200);
    // A double rounds 10^16 + 1 to 10^16, as Number() did here before.
    expect(await response.text()).toMatch(/"balance":-10000000000000001\b/);
  });

  it('serves GET /openapi.json generated from the request schemas, every documented route served', async () => {
    const response = await fetch(`${app.url}/openapi.json`);
    expect(response.status).toBe(200);
    const doc = (await response.json()) as any;
    expect(doc.openapi).toBe('3.1.0');
    const line =
      doc.paths['/v1/invoices'].post.requestBody.content['application/json'].schema.properties.lines.items;
    expect(line.properties.amount).toMatchObject({ type: 'integer', minimum: 0, maximum: 1e15 });
    expect(doc.paths['/v1/invoices'].get.parameters.map((p: { name: string }) => p.name)).toContain(
      'starting_after',
    );
    const v1 = Object.entries(doc.paths as Record<string, Record<string, unknown>>).filter(([path]) =>
      path.startsWith('/v1/'),
    );
    for (const [path, methods] of v1) {
      for (const method of Object.keys(methods)) {
        const answer = await app.api(
          method.toUpperCase(),
          path.replace('{id}', 'x_unknown'),
          method === 'post' ? {} : undefined,
        );
        expect(answer.body?.error?.code, `${method} ${path}`).not.toBe('route_not_found');
      }
    }
  });

  it('answers /v1 and /admin with Cache-Control: no-store, errors included (#22 item 8)', async () => {
    const list = await fetch(`${app.url}/v1/customers`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(list.status).toBe(200);
    expect(list.headers.get('cache-control')).toBe('no-store');
    const refused = await fetch(`${app.url}/v1/customers`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('cache-control')).toBe('no-store');
    const admin = await fetch(`${app.url}/admin/queues`, { headers: { authorization: 'Bearer bh_wrong' } });
    expect(admin.status).toBe(401);
    expect(admin.headers.get('cache-control')).toBe('no-store');
  });

  it('never logs a credential put in the URL: its query value is redacted (#22 item 8)', async () => {
    const answer = await fetch(`${app.url}/v1/customers?api_key=sk_live_in_url&token=tok_in_url&limit=5`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    // Neither is a parameter of the route (422 unknown_parameter): the refusal is logged redacted too.
    expect(answer.status).toBe(422);
    expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('unknown_parameter');
    const urls = app.logs.map((l) => (l.req as { url?: string } | undefined)?.url ?? '');
    expect(urls).toContain('/v1/customers?api_key=[redacted]&token=[redacted]&limit=5');
    expect(JSON.stringify(app.logs)).not.toMatch(/sk_live_in_url|tok_in_url/);
  });

  it('serves /healthz and /readyz without a key, with helmet headers and a request id', async () => {
    const health = await fetch(`${app.url}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers.get('x-content-type-options')).toBe('nosniff');
    expect(health.headers.get('x-request-id')).toMatch(/[\w-]+/);
    expect((await fetch(`${app.url}/readyz`)).status).toBe(200);
  });
});

describe('Idempotency-Key and rate limits', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ API_RATE_LIMIT_PER_MINUTE: '20' });
  });
  afterAll(() => app.stop());

  const post = (path: string, body: unknown, key: string) =>
    fetch(`${app.url}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${ADMIN_KEY}`,
        'content-type': 'application/json',
        'idempotency-key': key,
      },
      body: JSON.stringify(body),
    });

  it('answers a repeated POST with the stored answer, once; another body with the same key is 422', async () => {
    const first = await post('/v1/customers', { email: 'idem@example.com' }, 'create-idem-1');
    const again = await post('/v1/customers', { email: 'idem@example.com' }, 'create-idem-1');
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const a = (await first.json()) as { id: string };
    expect(((await again.json()) as { id: string }).id).toBe(a.id);
    const customers = await app.runtime.db
      .selectFrom('customers')
      .select('id')
      .where('email', '=', 'idem@example.com')
      .execute();
    expect(customers).toHaveLength(1);

    const other = await post('/v1/customers', { email: 'other@example.com' }, 'create-idem-1');
    expect(other.status).toBe(422);
    expect(((await other.json()) as any).error).toMatchObject({
      code: 'idempotency_key_reused',
      fields: { 'Idempotency-Key': expect.any(String) },
    });

    // A refused request is not stored (test/http/idempotency.test.ts): the same invalid request is
    // validated again, not replayed.
    const bad1 = await post('/v1/customers', { email: 'nope' }, 'create-idem-2');
    const bad2 = await post('/v1/customers', { email: 'nope' }, 'create-idem-2');
    expect([bad1.status, bad2.status]).toEqual([422, 422]);
    expect(bad2.headers.get('idempotent-replayed')).toBeNull();
  });

  it('limits each API key with RateLimit headers and 429 with Retry-After, other keys unaffected', async () => {
    const { secret } = await createApiKey(app.runtime.db, 'busy consumer', 'read');
    const answers = [];
    for (let i = 0; i < 21; i++) answers.push(await app.api('GET', '/v1/events', undefined, secret));
    expect(answers.slice(0, 20).every((a) => a.status === 200)).toBe(true);
    expect(answers[20]!.status).toBe(429);
    expect(answers[20]!.body.error.code).toBe('rate_limited');
    const limited = await fetch(`${app.url}/v1/events`, { headers: { authorization: `Bearer ${secret}` } });
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(limited.headers.get('ratelimit-limit')).toBe('20');
    expect(limited.headers.get('ratelimit-remaining')).toBe('0');
    expect(limited.headers.get('ratelimit-reset')).toMatch(/^\d+$/);
    expect(limited.headers.get('ratelimit-policy')).toBe('20;w=60');
    expect((await app.api('GET', '/v1/events')).status).toBe(200);
  });
});
