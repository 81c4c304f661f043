import querystring from 'node:querystring';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app.ts';
import { byDepth } from '../support/depth.ts';
import { deliverStripe, stripeFixtureRaw } from '../support/stripe.ts';
import {
  type Answer,
  amountJson,
  anyJson,
  asRecord,
  countRowWrites,
  encode,
  exactInteger,
  expectRefusal,
  hostileText,
  INVALID_UTF8,
  idLike,
  isText,
  type Json,
  METACHARACTERS,
  object,
  onlyKeys,
  parsed,
  render,
  rowWrites,
  send,
  splice,
} from './support.ts';

/**
 * PRODUCT.md §8: bad input of every kind gets a clear 4xx and changes nothing; money never becomes a
 * float. Every POST endpoint and every list query is fuzzed with fast-check (fixed seeds, so a run is
 * reproducible) with raw bodies sent by fetch: wrong types, huge, negative and float amounts, number
 * literals JSON.parse rounds, NaN/Infinity, unknown currencies, 10,000-level and deeper nesting,
 * huge arrays and strings around the 1 MB limit, invalid UTF-8, SQL and HTML metacharacters,
 * prototype keys and ids of the wrong prefix. For each case:
 * - never a 5xx; a 4xx is the JSON error envelope (`fields` on a 422) and writes no row (`countRowWrites`:
 *   a trigger counts every row written) of customers, payment_methods, invoices, invoice_lines,
 *   transactions, refunds, disputes, journal_entries, postings, ledger_accounts, inbox,
 *   reconciliation_exceptions, and adds no webhook.process job);
 * - a 2xx only for input that a model of the documented contract (README "The API", the zod schemas'
 *   limits) calls valid; then what was stored reads back exactly, amounts as the same integers.
 *
 * Inputs that once broke billhook are kept at the end as regression tests (minimal, as fast-check shrank them);
 * the broad properties leave those inputs out (see support.ts) so they keep finding new problems.
 */

const GATEWAYS = ['stripe', 'paypal', 'authorizenet', 'eway', 'securepay'] as const;
const MAX_MINOR_UNITS = 1_000_000_000_000_000n;
const BIGINT_MAX = 9_223_372_036_854_775_807n;
const ONE_MB = 1024 * 1024;
/** ISO 4217 per README: the runtime's ICU list plus the funds codes ICU leaves out. */
const CURRENCIES = new Set([...Intl.supportedValuesOf('currency'), 'CLF', 'UYI', 'UYW']);
const ID = (prefix: string) => new RegExp(`^${prefix}_[0-9a-z]{1,40}$`);
const isEmail = (value: unknown) =>
  typeof value === 'string' && value.length <= 320 && z.email().safeParse(value).success;

/** Cases per property, `npm test`'s and `npm run test:deep`'s (test/support/depth.ts; the README quotes these). */
const RUNS = {
  customers: byDepth(65, 400),
  paymentMethods: byDepth(50, 300),
  invoices: byDepth(130, 400),
  invoiceActions: byDepth(65, 400),
  replay: byDepth(50, 300),
  listQueries: byDepth(65, 400),
  rawBodies: byDepth(50, 300),
  sizeLimit: byDepth(10, 60),
} as const;

/** Own properties of the prototypes before any request, to detect pollution by the requests. */
const PROTOTYPE_BEFORE = {
  object: Object.getOwnPropertyNames(Object.prototype).sort(),
  array: Object.getOwnPropertyNames(Array.prototype).sort(),
};

const TABLES = [
  'customers',
  'payment_methods',
  'invoices',
  'invoice_lines',
  'transactions',
  'refunds',
  'disputes',
  'journal_entries',
  'postings',
  'ledger_accounts',
  'inbox',
  'reconciliation_exceptions',
] as const;

describe('fuzzing the /v1 API (PRODUCT.md §8)', () => {
  let app: TestApp;
  let customerId: string;
  let methodId: string;
  let draftId: string;
  let openId: string;
  let eventId: string;
  let realIds: string[];
  let idempotencyCounter = 0;

  /** The rows written in TABLES so far (countRowWrites) and the count of webhook.process jobs. */
  async function snapshot(): Promise<Record<string, string>> {
    const jobs = await sql<{ count: string }>`
      SELECT count(*)::text AS count FROM pgboss.job WHERE name = 'webhook.process'
    `.execute(app.runtime.db);
    return { 'rows written': await rowWrites(app.runtime.db), 'webhook.process jobs': jobs.rows[0]!.count };
  }

  /** POSTs (or GETs) with the admin key and the raw body, sometimes with an Idempotency-Key. */
  function call(
    method: string,
    path: string,
    body?: string | Uint8Array,
    headers: Record<string, string> = { 'content-type': 'application/json' },
  ): Promise<Answer> {
    return send(`${app.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_KEY}`, ...headers },
      body,
    });
  }

  /** Headers of a fuzzed POST: JSON, and in some cases a fresh or a malformed Idempotency-Key. */
  const postHeaders = fc
    .oneof(
      { weight: 6, arbitrary: fc.constant<string | undefined>(undefined) },
      { weight: 2, arbitrary: fc.constant('fresh') },
      { weight: 1, arbitrary: fc.constantFrom('', ' ', 'x'.repeat(256), 'a b', '\u00ff', 'é') },
    )
    .map((key) => ({ key }));

  function headersFor(choice: { key: string | undefined }): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (choice.key === 'fresh') headers['idempotency-key'] = `fuzz-${++idempotencyCounter}`;
    else if (choice.key !== undefined) headers['idempotency-key'] = choice.key;
    return headers;
  }

  /**
   * The invariant of every case: no 5xx; a 4xx is a clear refusal that changed nothing; a 2xx only
   * when the model calls the input valid (`verdict` true) or leaves it open (`undefined`).
   * @returns the answer, for further checks of what a 2xx stored
   */
  async function expectHandled(
    answer: Answer,
    before: Record<string, string>,
    verdict: boolean | undefined,
  ): Promise<Answer> {
    expect(answer.status, answer.text.slice(0, 300)).toBeLessThan(500);
    if (answer.status >= 400) {
      expectRefusal(answer);
      expect(await snapshot()).toEqual(before);
    } else {
      expect(
        verdict,
        `a ${answer.status} for input the contract refuses: ${answer.text.slice(0, 300)}`,
      ).not.toBe(false);
    }
    return answer;
  }

  beforeAll(async () => {
    // No nock here: it would sit in the path of every fetch (and inflate gzip bodies itself). No
    // request may reach a gateway anyway: a charge attempt would show as a new transaction row.
    // No workers: the inbox stays as stored, so any change to it comes from a request.
    app = await startTestApp({}, 'web');
    await countRowWrites(app.runtime.db, TABLES);
    customerId = (await app.api('POST', '/v1/customers', { email: 'ada@example.com', external_id: 'taken' }))
      .body.id;
    methodId = (
      await app.api('POST', '/v1/payment-methods', {
        customer: customerId,
        gateway: 'stripe',
        gateway_token: 'pm_card_visa',
      })
    ).body.id;
    const lines = [{ description: 'Pro plan', amount: 2500 }];
    draftId = (await app.api('POST', '/v1/invoices', { customer: customerId, currency: 'usd', lines })).body
      .id;
    openId = (await app.api('POST', '/v1/invoices', { customer: customerId, currency: 'usd', lines })).body
      .id;
    expect((await app.api('POST', `/v1/invoices/${openId}/finalize`)).body.status).toBe('OPEN');
    expect(
      (await deliverStripe(app.url, stripeFixtureRaw('webhook.payment_intent.succeeded.json'))).status,
    ).toBe(200);
    eventId = (await app.api('GET', '/v1/events')).body.data[0].id;
    realIds = [customerId, methodId, draftId, openId, eventId];
  });
  afterAll(() => app.stop());

  /** A value of the wrong JSON type for a string or number field. */
  const wrongType: fc.Arbitrary<Json> = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constant<Json>({ kind: 'array', items: [] }),
    fc.constant<Json>({ kind: 'array', items: ['a@example.com'] }),
    fc.constant<Json>({ kind: 'object', entries: [] }),
    fc.constant<Json>({ kind: 'object', entries: [['$gt', '']] }),
  );

  const emails = fc.oneof(
    fc.constantFrom('grace@example.com', "o'brien+tag@example.co.uk", 'x@a.io'),
    fc.stringMatching(/^[a-z0-9]{1,20}@[a-z]{1,10}\.(com|org|io)$/),
    fc.constantFrom(
      'not-an-email',
      '',
      'a@',
      '@example.com',
      'a@@example.com',
      'a@example',
      '<script>@example.com',
      "a'--@example.com",
      `${'a'.repeat(310)}@example.com`,
      'ada@example.com\u0001',
    ),
    hostileText,
  );

  /** Unknown or extra fields, prototype keys among them, and duplicates of known ones. */
  function extraFields(known: readonly string[]): fc.Arbitrary<[string, Json][]> {
    return fc.oneof(
      { weight: 5, arbitrary: fc.constant<[string, Json][]>([]) },
      {
        weight: 2,
        arbitrary: fc.array(
          fc.tuple(
            fc.oneof(
              fc.constantFrom('__proto__', 'constructor', 'prototype', 'admin', 'id', 'object', 'created_at'),
              hostileText,
            ),
            anyJson,
          ),
          { minLength: 1, maxLength: 2 },
        ),
      },
      {
        weight: 1,
        arbitrary: fc.tuple(fc.constantFrom(...known), anyJson).map((entry): [string, Json][] => [entry]),
      },
    );
  }

  describe('POST /v1/customers', () => {
    const metadataKey = fc.oneof(
      fc.stringMatching(/^[a-z_]{1,10}$/),
      fc.constantFrom(
        'constructor',
        'prototype',
        'toString',
        'x'.repeat(40),
        'x'.repeat(41),
        '',
        '__proto__',
      ),
      hostileText,
    );
    const metadata: fc.Arbitrary<Json> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .array(fc.tuple(metadataKey, fc.oneof({ weight: 4, arbitrary: hostileText }, wrongType)), {
            maxLength: 4,
          })
          .map((entries): Json => ({ kind: 'object', entries })),
      },
      {
        weight: 1,
        arbitrary: fc
          .constantFrom(50, 51)
          .map(
            (n): Json => ({ kind: 'object', entries: Array.from({ length: n }, (_, i) => [`k${i}`, 'v']) }),
          ),
      },
      { weight: 1, arbitrary: wrongType },
    );
    const body = fc
      .record(
        {
          email: emails,
          name: fc.oneof({ weight: 4, arbitrary: hostileText }, wrongType),
          external_id: fc.oneof({ weight: 4, arbitrary: hostileText }, fc.constant('taken'), wrongType),
          metadata,
          extra: extraFields(['email', 'name', 'external_id', 'metadata']),
        },
        { requiredKeys: ['extra'] },
      )
      .map(({ extra, ...fields }) => object(fields, extra));

    /** CreateCustomer as documented: email, name?, external_id?, metadata? (≤ 50 string keys ≤ 40, values ≤ 500). */
    function valid(value: unknown): boolean {
      const r = asRecord(value);
      if (!r || !onlyKeys(r, ['email', 'name', 'external_id', 'metadata']) || !isEmail(r.email)) return false;
      if (r.name !== undefined && !isText(r.name, 1, 200)) return false;
      if (r.external_id !== undefined && !isText(r.external_id, 1, 200)) return false;
      if (r.metadata === undefined) return true;
      const m = asRecord(r.metadata);
      if (!m || Object.keys(m).length > 50) return false;
      return Object.entries(m).every(([k, v]) => k.length <= 40 && isText(v, 0, 500));
    }

    it(`refuses bad bodies with a clear 4xx that changes nothing, and stores good ones exactly (${RUNS.customers} cases)`, async () => {
      let refused = 0;
      await fc.assert(
        fc.asyncProperty(body, postHeaders, async (tree, headers) => {
          const text = render(tree);
          const sent = parsed(text);
          const verdict = valid(sent);
          const before = await snapshot();
          const answer = await expectHandled(
            await call('POST', '/v1/customers', text, headersFor(headers)),
            before,
            verdict,
          );
          if (answer.status >= 400) {
            refused++;
            return;
          }
          const r = asRecord(sent)!;
          const expected = {
            object: 'customer',
            email: r.email,
            name: r.name ?? null,
            external_id: r.external_id ?? null,
            metadata: r.metadata ?? {},
          };
          expect(answer.status).toBe(201);
          expect(answer.json).toMatchObject(expected);
          expect(answer.json.id).toMatch(ID('cus'));
          expect((await call('GET', `/v1/customers/${answer.json.id}`)).json).toEqual(answer.json);
        }),
        { seed: 8_101, numRuns: RUNS.customers },
      );
      expect(refused).toBeGreaterThan(RUNS.customers / 2);
    });
  });

  describe('POST /v1/payment-methods', () => {
    const body = fc
      .record(
        {
          customer: fc.oneof(
            { weight: 3, arbitrary: fc.constant('REAL') },
            fc.constant('REAL_OTHER'),
            wrongType,
          ),
          gateway: fc.oneof(
            { weight: 4, arbitrary: fc.constantFrom(...GATEWAYS) },
            fc.constantFrom('Stripe', 'STRIPE', ' stripe', 'bitpay', ''),
            hostileText,
            wrongType,
          ),
          gateway_token: fc.oneof(
            { weight: 2, arbitrary: fc.stringMatching(/^pm_[A-Za-z0-9]{1,24}$/) },
            hostileText,
            wrongType,
          ),
          gateway_customer_id: fc.oneof(hostileText, wrongType),
          default: fc.oneof(
            { weight: 3, arbitrary: fc.boolean() },
            fc.constantFrom<Json>('true', 1, 0, null),
          ),
          extra: extraFields(['customer', 'gateway', 'gateway_token']),
        },
        { requiredKeys: ['customer', 'extra'] },
      )
      .chain(({ extra, customer, ...fields }) =>
        (customer === 'REAL_OTHER'
          ? idLike([customerId, methodId])
          : (fc.constant(customer) as fc.Arbitrary<Json>)
        ).map((id) => object({ ...fields, customer: id === 'REAL' ? customerId : id }, extra)),
      );

    function valid(value: unknown): boolean {
      const r = asRecord(value);
      if (!r || !onlyKeys(r, ['customer', 'gateway', 'gateway_token', 'gateway_customer_id', 'default']))
        return false;
      if (typeof r.customer !== 'string' || !ID('cus').test(r.customer)) return false;
      if (!(GATEWAYS as readonly unknown[]).includes(r.gateway) || !isText(r.gateway_token, 1, 200))
        return false;
      if (r.gateway_customer_id !== undefined && !isText(r.gateway_customer_id, 1, 200)) return false;
      return r.default === undefined || typeof r.default === 'boolean';
    }

    it(`refuses bad bodies and unknown or wrong-prefix customers, and stores good ones exactly (${RUNS.paymentMethods} cases)`, async () => {
      let refused = 0;
      await fc.assert(
        fc.asyncProperty(body, postHeaders, async (tree, headers) => {
          const text = render(tree);
          const sent = parsed(text);
          const before = await snapshot();
          const answer = await expectHandled(
            await call('POST', '/v1/payment-methods', text, headersFor(headers)),
            before,
            valid(sent),
          );
          if (answer.status >= 400) {
            refused++;
            return;
          }
          const r = asRecord(sent)!;
          expect(answer.json).toMatchObject({
            object: 'payment_method',
            customer: r.customer,
            gateway: r.gateway,
            gateway_token: r.gateway_token,
            gateway_customer_id: r.gateway_customer_id ?? null,
          });
        }),
        { seed: 8_102, numRuns: RUNS.paymentMethods },
      );
      expect(refused).toBeGreaterThan(RUNS.paymentMethods / 2);
    });
  });

  describe('POST /v1/invoices', () => {
    const currency = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom('usd', 'EUR', 'jpy', 'KWD', 'Clf', 'uyw', 'chf') },
      {
        weight: 3,
        arbitrary: fc.constantFrom(
          'XYZ',
          'US',
          'USDD',
          'usd ',
          ' usd',
          'ÚSD',
          'DEM',
          'XXX',
          'BTC',
          'EURO',
          '',
          '$',
        ),
      },
      { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z]{3}$/) },
      { weight: 1, arbitrary: hostileText },
      { weight: 1, arbitrary: wrongType },
    );
    const line: fc.Arbitrary<Json> = fc
      .record(
        {
          description: fc.oneof({ weight: 4, arbitrary: hostileText }, wrongType),
          amount: amountJson,
          quantity: fc.oneof(
            { weight: 3, arbitrary: fc.integer({ min: 1, max: 1_000_000 }) },
            fc.constantFrom<Json>(0, -1, 1.5, 1_000_001, 2 ** 31, '2', null),
          ),
          type: fc.oneof(
            { weight: 3, arbitrary: fc.constantFrom('CHARGE', 'CREDIT') },
            fc.constantFrom<Json>('charge', 'DEBIT', 'REFUND', '', 1, null),
          ),
          extra: extraFields(['amount']),
        },
        { requiredKeys: ['description', 'amount', 'extra'] },
      )
      .map(({ extra, ...fields }) => object(fields, extra));
    const lines: fc.Arbitrary<Json> = fc.oneof(
      {
        weight: 8,
        arbitrary: fc
          .array(line, { minLength: 1, maxLength: 4 })
          .map((items): Json => ({ kind: 'array', items })),
      },
      { weight: 1, arbitrary: fc.constant<Json>({ kind: 'array', items: [] }) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(500, 501, 5_000).map(
          (n): Json => ({
            kind: 'array',
            items: Array.from({ length: n }, () => object({ description: 'x', amount: 1 })),
          }),
        ),
      },
      { weight: 1, arbitrary: wrongType },
    );

    type Verdict = { valid: boolean | undefined; total?: bigint; overflow: boolean };

    /**
     * CreateInvoice as documented: an existing `cus_` customer, an ISO 4217 currency (any case), 1 to
     * 500 lines of {description 1–500, amount an integer 0…10^15, quantity 1…10^6, type CHARGE|CREDIT},
     * a total (charges less credits) from 0 to 10^15. A line whose own amount exceeds 10^15 while the
     * total stays in range is not ruled on (undefined). `overflow`: a line beyond PostgreSQL's bigint.
     */
    function judge(value: unknown, tree: Json): Verdict {
      const no = { valid: false, overflow: false };
      const r = asRecord(value);
      if (!r || !onlyKeys(r, ['customer', 'currency', 'lines'])) return no;
      if (r.customer !== customerId || typeof r.currency !== 'string') return no;
      const code = r.currency.toUpperCase();
      if (!/^[A-Z]{3}$/.test(code) || !CURRENCIES.has(code)) return no;
      if (!Array.isArray(r.lines) || r.lines.length < 1 || r.lines.length > 500) return no;
      const sentLines = treeLines(tree);
      let total = 0n;
      let large = false;
      let overflow = false;
      for (const [i, item] of r.lines.entries()) {
        const l = asRecord(item);
        if (
          !l ||
          !onlyKeys(l, ['description', 'amount', 'quantity', 'type']) ||
          !isText(l.description, 1, 500)
        )
          return no;
        const amount = exactInteger(sentLines[i]?.amount);
        if (amount === undefined || amount < 0n || amount > MAX_MINOR_UNITS) return no;
        const quantity = l.quantity ?? 1;
        if (
          typeof quantity !== 'number' ||
          !Number.isInteger(quantity) ||
          quantity < 1 ||
          quantity > 1_000_000
        )
          return no;
        if (l.type !== undefined && l.type !== 'CHARGE' && l.type !== 'CREDIT') return no;
        const lineAmount = amount * BigInt(quantity);
        large ||= lineAmount > MAX_MINOR_UNITS;
        overflow ||= lineAmount > BIGINT_MAX;
        total += l.type === 'CREDIT' ? -lineAmount : lineAmount;
      }
      if (total < 0n || total > MAX_MINOR_UNITS) return no;
      return { valid: large ? undefined : true, total, overflow };
    }

    /** The `amount` literal of each line as sent (the parsed value may be rounded). */
    function treeLines(tree: Json): { amount?: Json }[] {
      if (tree === null || typeof tree !== 'object' || tree.kind !== 'object') return [];
      const linesNode = [...tree.entries].reverse().find(([k]) => k === 'lines')?.[1];
      if (linesNode === null || typeof linesNode !== 'object' || linesNode?.kind !== 'array') return [];
      return linesNode.items.map((item) => {
        if (item === null || typeof item !== 'object' || item.kind !== 'object') return {};
        return { amount: [...item.entries].reverse().find(([k]) => k === 'amount')?.[1] };
      });
    }

    const body = fc
      .record({
        customer: fc.oneof(
          { weight: 6, arbitrary: fc.constant<Json>('REAL') },
          wrongType,
          fc.constant<Json>('OTHER'),
        ),
        currency,
        lines,
        extra: extraFields(['customer', 'currency', 'lines']),
      })
      .chain(({ extra, customer, ...fields }) =>
        (customer === 'OTHER' ? idLike([customerId, draftId]) : fc.constant<Json>(customer)).map((id) =>
          object({ ...fields, customer: id === 'REAL' ? customerId : id }, extra),
        ),
      );

    it(`refuses bad invoices with a clear 4xx that changes nothing; good ones keep every amount an exact integer (${RUNS.invoices} cases)`, async () => {
      let refused = 0;
      let created = 0;
      await fc.assert(
        fc.asyncProperty(body, postHeaders, async (tree, headers) => {
          const text = render(tree);
          const sent = parsed(text);
          const verdict = judge(sent, tree);
          const before = await snapshot();
          const answer = await expectHandled(
            await call('POST', '/v1/invoices', text, headersFor(headers)),
            before,
            verdict.valid,
          );
          if (answer.status >= 400) {
            refused++;
            return;
          }
          created++;
          // Money round-trips as the same integers: in the answer, in the raw JSON text, and read back.
          const r = asRecord(sent)!;
          const sentLines = treeLines(tree);
          const invoice = answer.json;
          expect(invoice).toMatchObject({ status: 'DRAFT', currency: String(r.currency).toUpperCase() });
          expect(BigInt(invoice.total)).toBe(verdict.total);
          expect(invoice.amount_due).toBe(invoice.total);
          for (const [i, l] of (r.lines as Record<string, unknown>[]).entries()) {
            const unit = exactInteger(sentLines[i]?.amount)!;
            const quantity = BigInt((l.quantity as number | undefined) ?? 1);
            expect(Number.isSafeInteger(invoice.lines[i].unit_amount)).toBe(true);
            expect(BigInt(invoice.lines[i].unit_amount)).toBe(unit);
            expect(BigInt(invoice.lines[i].amount)).toBe((l.type === 'CREDIT' ? -1n : 1n) * unit * quantity);
          }
          for (const [, digits] of answer.text.matchAll(
            /"(?:total|amount_due|amount_paid|amount_refunded|unit_amount|amount)":([^,}]*)/g,
          ))
            expect(digits).toMatch(/^-?(0|[1-9]\d*)$/);
          // Read back, it shows what disputes took of its payments too (none).
          expect((await call('GET', `/v1/invoices/${invoice.id}`)).json).toEqual({
            ...invoice,
            amount_disputed: 0,
          });
        }),
        { seed: 8_103, numRuns: RUNS.invoices },
      );
      expect(refused).toBeGreaterThan(RUNS.invoices / 2);
      expect(created).toBeGreaterThan(0);
    });

    it('stores the largest valid amount and total (10^15 minor units) as exact integers', async () => {
      const answer = await call(
        'POST',
        '/v1/invoices',
        render(
          object({
            customer: customerId,
            currency: 'jpy',
            lines: { kind: 'array', items: [object({ description: 'max', amount: 1e15 })] },
          }),
        ),
      );
      expect(answer.status).toBe(201);
      expect(answer.text).toContain('"total":1000000000000000,');
      expect(answer.json.lines[0].unit_amount).toBe(1_000_000_000_000_000);
    });
  });

  describe('POST /v1/invoices/:id/finalize, /charge, /refund', () => {
    /** Ids sent as raw path text: odd percent-encodings, undecodable ones included. */
    const RAW_IDS = [
      '%25',
      '%2F',
      '%2e%2e',
      '%20',
      'inv_%41',
      '%3Cscript%3E',
      "'%20OR%20'1'%3D'1",
      '%FF',
      '%C0%AF',
      '%E0%A4%A',
      '%00',
      '%ED%A0%80',
    ];
    const chargeBody: fc.Arbitrary<Json> = fc
      .record(
        {
          payment_method: fc.oneof(fc.constant<Json>('REAL'), wrongType, hostileText),
          extra: extraFields(['payment_method']),
        },
        { requiredKeys: ['extra'] },
      )
      .map(({ extra, payment_method }) =>
        object({ payment_method: payment_method === 'REAL' ? methodId : payment_method }, extra),
      );
    const refundBody: fc.Arbitrary<Json> = fc
      .record(
        {
          amount: amountJson,
          reason: fc.oneof(hostileText, wrongType),
          extra: extraFields(['amount', 'reason']),
        },
        { requiredKeys: ['extra'] },
      )
      .map(({ extra, ...fields }) => object(fields, extra));
    const cases = fc
      .record({
        action: fc.constantFrom('finalize', 'charge', 'refund'),
        target: fc.oneof(
          { weight: 3, arbitrary: fc.constantFrom('DRAFT', 'OPEN') },
          { weight: 2, arbitrary: fc.constant('OTHER') },
          { weight: 1, arbitrary: fc.constant('RAW') },
        ),
        body: fc.oneof(
          fc.constant<Json | undefined>(undefined),
          anyJson,
          fc.constant<Json>({ kind: 'object', entries: [] }),
          chargeBody,
          refundBody,
        ),
        headers: postHeaders,
      })
      .chain((c) =>
        (c.target === 'OTHER'
          ? idLike([draftId, openId, customerId])
          : c.target === 'RAW'
            ? fc.constantFrom(...RAW_IDS)
            : fc.constant(c.target)
        ).map((id) => ({ ...c, target: c.target === 'RAW' ? 'RAW' : id, id })),
      );

    it(`answer every request on a DRAFT, OPEN, missing or wrong-prefix invoice with a clear 4xx that changes nothing (${RUNS.invoiceActions} cases)`, async () => {
      const statuses = new Set<number>();
      await fc.assert(
        fc.asyncProperty(cases, async ({ action, target, id: drawn, body, headers }) => {
          // Finalizing the DRAFT or charging the OPEN invoice would be valid (and change the books).
          const id =
            target === 'DRAFT'
              ? action === 'finalize'
                ? openId
                : draftId
              : target === 'OPEN'
                ? action === 'charge'
                  ? draftId
                  : openId
                : drawn;
          const before = await snapshot();
          const answer = await call(
            'POST',
            `/v1/invoices/${target === 'RAW' ? id : encode(id)}/${action}`,
            body === undefined ? undefined : render(body),
            headersFor(headers),
          );
          await expectHandled(answer, before, false);
          statuses.add(answer.status);
        }),
        { seed: 8_104, numRuns: RUNS.invoiceActions },
      );
      expect([...statuses].sort()).toEqual(expect.arrayContaining([404, 409, 422]));
    });
  });

  describe('POST /v1/events/:id/replay', () => {
    it(`answers missing and wrong-prefix event ids with 404 and replays nothing (${RUNS.replay} cases)`, async () => {
      await fc.assert(
        fc.asyncProperty(
          idLike(realIds).filter((id) => id !== eventId),
          fc.option(anyJson, { nil: undefined }),
          postHeaders,
          async (id, body, headers) => {
            const before = await snapshot();
            const answer = await call(
              'POST',
              `/v1/events/${encode(id)}/replay`,
              body === undefined ? undefined : render(body),
              headersFor(headers),
            );
            await expectHandled(answer, before, false);
          },
        ),
        { seed: 8_105, numRuns: RUNS.replay },
      );
    });
  });

  describe('list query strings', () => {
    const LISTS = [
      { path: '/v1/invoices', customer: 'customer', gateway: undefined },
      { path: '/v1/transactions', customer: 'customer', gateway: 'gateway' },
      { path: '/v1/events', customer: undefined, gateway: 'gateway' },
      { path: '/v1/refunds', customer: undefined, gateway: 'gateway' },
      { path: '/v1/disputes', customer: undefined, gateway: 'gateway' },
      { path: '/v1/reconciliation-exceptions', customer: undefined, gateway: 'gateway' },
      { path: '/v1/ledger/entries', customer: undefined, gateway: undefined },
    ] as const;
    const NUMBERS = [
      '0',
      '1',
      '10',
      '100',
      '101',
      '-1',
      '-0',
      '1.5',
      '1e2',
      '1e400',
      'NaN',
      'Infinity',
      '-Infinity',
      '0x10',
      '',
      ' 5 ',
      '9007199254740991',
      '9007199254740993',
      '99999999999999999999',
      'null',
      'true',
    ];
    const key = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.constantFrom(
          'limit',
          'starting_after',
          'status',
          'customer',
          'gateway',
          'after_sequence',
        ),
      },
      {
        weight: 1,
        arbitrary: fc.constantFrom('limit[]', '__proto__', 'constructor', 'LIMIT', 'status[0]', 'a.b'),
      },
      { weight: 1, arbitrary: hostileText },
    );
    const value = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...NUMBERS) },
      { weight: 2, arbitrary: fc.integer({ min: -1000, max: 1000 }).map(String) },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          'DRAFT',
          'OPEN',
          'PAID',
          'received',
          'pending',
          'open',
          ...GATEWAYS,
          'Stripe',
          'bitpay',
        ),
      },
      { weight: 2, arbitrary: fc.constantFrom('REAL_CUSTOMER', 'REAL_DRAFT', 'REAL_EVENT') },
      { weight: 3, arbitrary: hostileText.filter((s) => s.length < 2000) },
      {
        weight: 1,
        arbitrary: fc.constantFrom('x'.repeat(40), 'x'.repeat(41), 'x'.repeat(64), 'x'.repeat(65)),
      },
    );
    // Raw (not percent-encoded) forms too, `%00` included.
    const pair = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(key, value).map(([k, v]) => ({ k, v, raw: false })) },
      {
        weight: 1,
        arbitrary: fc
          .tuple(
            key,
            fc.constantFrom('%', '%zz', '%E2%82', '%FF', '+', '%2B', '%26', '%3D', '&', '=', '==', '%00'),
          )
          .map(([k, v]) => ({ k, v, raw: true })),
      },
    );
    const cases = fc
      .record({ list: fc.constantFrom(...LISTS), pairs: fc.array(pair, { maxLength: 4 }) })
      // Node itself answers 431 (no JSON) to request heads over 16 KB; stay well under.
      .filter(({ pairs }) => pairs.reduce((n, p) => n + encode(p.k).length + encode(p.v).length, 0) < 6000);

    function queryOf(pairs: { k: string; v: string; raw: boolean }[]): string {
      const real = (v: string) =>
        v === 'REAL_CUSTOMER' ? customerId : v === 'REAL_DRAFT' ? draftId : v === 'REAL_EVENT' ? eventId : v;
      return pairs.map(({ k, v, raw }) => `${encode(k)}=${raw ? v : encode(real(v))}`).join('&');
    }

    const intIn = (v: unknown, min: number, max: number) => {
      if (typeof v !== 'string') return false;
      const n = Number(v);
      return Number.isSafeInteger(n) && n >= min && n <= max;
    };
    const textUpTo = (v: unknown, max: number) => v === undefined || isText(v, 0, max);

    /**
     * The documented query: `limit` an integer 1–100, `starting_after` ≤ 64, `status` ≤ 40,
     * `customer` ≤ 64, `gateway` one of the five; the ledger takes `limit` and `after_sequence` ≥ 0.
     * Values are read as Express reads them (node:querystring; a repeated key is an array).
     */
    function valid(path: string, q: Record<string, unknown>): boolean {
      if (q.limit !== undefined && !intIn(q.limit, 1, 100)) return false;
      if (path === '/v1/ledger/entries')
        return q.after_sequence === undefined || intIn(q.after_sequence, 0, Number.MAX_SAFE_INTEGER);
      if (!textUpTo(q.starting_after, 64) || !textUpTo(q.status, 40) || !textUpTo(q.customer, 64))
        return false;
      return q.gateway === undefined || (GATEWAYS as readonly unknown[]).includes(q.gateway);
    }

    it(`answers bad query strings with a clear 4xx, good ones with a page that honours the filters (${RUNS.listQueries} cases)`, async () => {
      let refused = 0;
      await fc.assert(
        fc.asyncProperty(cases, async ({ list, pairs }) => {
          const query = queryOf(pairs);
          const q = querystring.parse(query) as Record<string, unknown>;
          const before = await snapshot();
          const answer = await call('GET', `${list.path}?${query}`, undefined, {});
          const verdict = valid(list.path, q);
          await expectHandled(answer, before, verdict);
          if (answer.status >= 400) {
            refused++;
            return;
          }
          expect(answer.status).toBe(200);
          expect(verdict).toBe(true);
          const page = answer.json;
          expect(page).toMatchObject({ object: 'list' });
          expect(typeof page.has_more).toBe('boolean');
          const limit =
            q.limit === undefined ? (list.path === '/v1/ledger/entries' ? 100 : 10) : Number(q.limit);
          expect(page.data.length).toBeLessThanOrEqual(limit);
          for (const item of page.data) {
            if (q.status !== undefined && list.path !== '/v1/ledger/entries')
              expect(item.status).toBe(q.status);
            if (q.gateway !== undefined && list.gateway) expect(item.gateway).toBe(q.gateway);
            if (q.customer !== undefined && list.customer) expect(item.customer).toBe(q.customer);
            if (list.path === '/v1/ledger/entries')
              expect(item.sequence).toBeGreaterThan(Number(q.after_sequence ?? 0));
          }
        }),
        { seed: 8_106, numRuns: RUNS.listQueries },
      );
      expect(refused).toBeGreaterThan(RUNS.listQueries / 4);
    });
  });

  describe('raw bodies: invalid UTF-8, deep nesting, huge arrays and strings, wrong content types', () => {
    /** Per endpoint, a body that is wrong whatever happens to its bytes, so every case must be refused. */
    const TARGETS = [
      {
        name: 'customers',
        path: () => '/v1/customers',
        skeleton: () => '{"email":"grace@example.com","name":"Grace","admin":true}',
      },
      {
        name: 'payment-methods',
        path: () => '/v1/payment-methods',
        skeleton: () => `{"customer":"${customerId}","gateway":"bitpay","gateway_token":"tok"}`,
      },
      {
        name: 'invoices',
        path: () => '/v1/invoices',
        skeleton: () =>
          `{"customer":"${customerId}","currency":"usd","lines":[{"description":"x","amount":10.5}]}`,
      },
      { name: 'finalize', path: () => `/v1/invoices/${openId}/finalize`, skeleton: () => '{"force":true}' },
      {
        name: 'charge',
        path: () => `/v1/invoices/${draftId}/charge`,
        skeleton: () => `{"payment_method":"${methodId}"}`,
      },
      { name: 'refund', path: () => `/v1/invoices/${openId}/refund`, skeleton: () => '{"amount":-1}' },
      { name: 'replay', path: () => '/v1/events/evt_missing/replay', skeleton: () => '{}' },
      // A valid body: invalid UTF-8 inside its strings is refused, never stored as U+FFFD.
      {
        name: 'customers (valid)',
        path: () => '/v1/customers',
        skeleton: () => '{"email":"grace@example.com","name":"Grace"}',
      },
    ];

    const nested = (depth: number, open: string, close: string, core = '1') =>
      `${open.repeat(depth)}${core}${close.repeat(depth)}`;
    const body = fc.oneof(
      // invalid UTF-8 spliced into the skeleton, anywhere
      fc.tuple(fc.nat(), fc.constantFrom(...INVALID_UTF8)).map(
        ([at, bad]) =>
          (skeleton: string) =>
            splice(skeleton, at % (skeleton.length + 1), bad),
      ),
      // deep nesting: 10,000 levels, and as deep as fits in the 1 MB limit
      fc
        .tuple(
          fc.constantFrom(10_000, 100_000, 500_000, 524_287, 524_288),
          fc.constantFrom('array', 'object', 'field'),
        )
        .map(
          ([depth, kind]) =>
            () =>
              kind === 'array'
                ? nested(depth, '[', ']', '')
                : kind === 'object'
                  ? nested(Math.floor(depth / 5), '{"a":', '}')
                  : `{"email":"grace@example.com","metadata":{"k":${nested(Math.floor(depth / 2), '[', ']', '')}}}`,
        ),
      // huge arrays
      fc
        .tuple(
          fc.constantFrom(501, 10_000, 100_000, 200_000),
          fc.constantFrom('{}', '1', '{"description":"x","amount":1}'),
        )
        .map(
          ([n, item]) =>
            () =>
              `{"customer":"${customerId}","currency":"usd","lines":[${Array(n).fill(item).join(',')}]}`,
        ),
      // not JSON, or JSON that is not an object
      fc
        .constantFrom(
          '',
          ' ',
          '\ufeff',
          'null',
          '"x"',
          '123',
          'true',
          '[]',
          '{"a":NaN}',
          '{"a":Infinity}',
          "{'a':1}",
          '{"a":1,}',
          '{"a":1}}',
          '{"a":1} x',
          'email=grace%40example.com',
          '<customer><email>grace@example.com</email></customer>',
          '\u0000',
          '{"a":"\\x41"}',
          '{"a":"\\ud800"',
        )
        .map((text) => () => text),
      // hostile JSON of any shape
      anyJson.map((tree) => () => render(tree)),
    );
    const headers = fc.record(
      {
        'content-type': fc.constantFrom(
          'application/json',
          'application/json; charset=utf-8',
          'application/json; charset=latin1',
          'application/json; charset=utf-16',
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'application/xml',
          '*/*',
        ),
        'content-encoding': fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'compress', 'x-garbage'),
      },
      { requiredKeys: [] },
    );

    it(`refuses each with a clear 4xx that changes nothing (${RUNS.rawBodies} cases)`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...TARGETS), body, headers, async (target, make, extra) => {
          const bytes = make(target.skeleton());
          const before = await snapshot();
          const answer = await call('POST', target.path(), bytes, extra as Record<string, string>);
          await expectHandled(answer, before, false);
          const size = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
          if (size > ONE_MB && !extra['content-encoding']) expect(answer.status).toBe(413);
        }),
        { seed: 8_107, numRuns: RUNS.rawBodies },
      );
    });

    it(`answers 413 just over the 1 MB limit and a 4xx just under it, both readable (${RUNS.sizeLimit} cases)`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...TARGETS),
          fc.oneof(
            fc.integer({ min: ONE_MB - 64, max: ONE_MB + 64 }),
            fc.integer({ min: 900_000, max: 1_200_000 }),
          ),
          async (target, size) => {
            const head = '{"email":"grace@example.com","name":"';
            const tail = '"}';
            const text = `${head}${'x'.repeat(Math.max(0, size - head.length - tail.length))}${tail}`;
            const before = await snapshot();
            const answer = await call('POST', target.path(), text);
            await expectHandled(answer, before, false);
            if (Buffer.byteLength(text) > ONE_MB) expect(answer.json.error.code).toBe('body_too_large');
            else expect(answer.status).not.toBe(413);
          },
        ),
        { seed: 8_108, numRuns: RUNS.sizeLimit },
      );
    });
  });

  /**
   * Inputs that broke billhook once (5xx, lossy storage, money rounded), found by the properties
   * above and shrunk by fast-check; kept as plain regression tests.
   */
  describe('inputs that once broke billhook', () => {
    async function expectRefusedUnchanged(method: string, path: string, body?: string | Uint8Array) {
      const before = await snapshot();
      const answer = await call(
        method,
        path,
        body,
        body === undefined ? {} : { 'content-type': 'application/json' },
      );
      expectRefusal(answer);
      expect(await snapshot()).toEqual(before);
    }

    // Bug: PostgreSQL text and jsonb cannot hold U+0000; the API passes it to SQL → 22021/22P05 → 500.
    for (const [site, path, body] of [
      ['a customer name', '/v1/customers', '{"email":"a@example.com","name":"\\u0000"}'],
      ['a metadata value', '/v1/customers', '{"email":"a@example.com","metadata":{"k":"\\u0000"}}'],
      ['a metadata key', '/v1/customers', '{"email":"a@example.com","metadata":{"\\u0000":""}}'],
      ['a payment method token', '/v1/payment-methods', 'PM'],
      ['an invoice line description', '/v1/invoices', 'INVOICE'],
    ] as const) {
      it(`U+0000 in ${site} gets a 4xx, not a 500`, async () => {
        const text =
          body === 'PM'
            ? `{"customer":"${customerId}","gateway":"stripe","gateway_token":"\\u0000"}`
            : body === 'INVOICE'
              ? `{"customer":"${customerId}","currency":"usd","lines":[{"description":"\\u0000","amount":1}]}`
              : body;
        await expectRefusedUnchanged('POST', path, text);
      });
    }
    for (const path of [
      '/v1/invoices?status=%00',
      '/v1/invoices?starting_after=%00',
      '/v1/transactions?customer=%00',
      '/v1/customers/%00',
      '/v1/invoices/%00/finalize',
      '/v1/events/%00/replay',
    ]) {
      it(`U+0000 in ${path} gets a 4xx, not a 500`, async () => {
        await expectRefusedUnchanged(
          path.includes('/finalize') || path.includes('/replay') ? 'POST' : 'GET',
          path,
        );
      });
    }

    // Bug: a path parameter that is not valid percent-encoded UTF-8 makes the router throw a URIError
    // (status 400 but not `expose`d), which http/errors.ts maps to 500.
    for (const path of ['/v1/invoices/%FF/finalize', '/v1/customers/%E0%A4%A']) {
      it(`an undecodable path parameter (${path}) gets 400, not 500`, async () => {
        await expectRefusedUnchanged(path.endsWith('finalize') ? 'POST' : 'GET', path);
      });
    }

    // Bug: billing/invoices.ts checks only the total against 10^15; a line's amount × quantity is not
    // bounded, so a CHARGE and a CREDIT line of 10^15 × 10^6 each (total 0) overflow the bigint column
    // invoice_lines.amount → 22003 → 500. (Lines above 10^15 that still fit are accepted: 201.)
    it('a line amount beyond PostgreSQL bigint gets 422, not 500', async () => {
      await expectRefusedUnchanged(
        'POST',
        '/v1/invoices',
        `{"customer":"${customerId}","currency":"usd","lines":[{"description":"a","amount":1000000000000000,"quantity":1000000},{"description":"b","amount":1000000000000000,"quantity":1000000,"type":"CREDIT"}]}`,
      );
    });

    // Bug: body-parser decodes invalid UTF-8 lossily (U+FFFD) and the customer is stored; PRODUCT §8
    // wants a 4xx. Same for a lone surrogate escape (`"\ud800"`), which pg stores as U+FFFD.
    it('invalid UTF-8 bytes inside a string get a 4xx and store nothing', async () => {
      await expectRefusedUnchanged(
        'POST',
        '/v1/customers',
        splice('{"email":"a@example.com","name":"Ada"}', 35, [0xff]),
      );
    });
    it('a lone surrogate escape gets a 4xx and stores nothing (it is stored as U+FFFD)', async () => {
      await expectRefusedUnchanged('POST', '/v1/customers', '{"email":"a@example.com","name":"\\ud800"}');
    });

    // Bug: zod's record builds metadata with `result[key] = value`, so an own `__proto__` key is
    // silently dropped: 201, and the customer's metadata lacks it. Either store it or refuse it.
    it('a "__proto__" metadata key is stored as sent or refused, never silently dropped', async () => {
      const before = await snapshot();
      const answer = await call(
        'POST',
        '/v1/customers',
        '{"email":"a@example.com","metadata":{"__proto__":"x"}}',
      );
      if (answer.status === 201) expect(answer.json.metadata).toEqual(JSON.parse('{"__proto__":"x"}'));
      else {
        expectRefusal(answer);
        expect(await snapshot()).toEqual(before);
      }
    });

    // Bug: money becomes a float: JSON.parse rounds 4620.0000000000001 to 4620, which passes .int().
    it('an amount with a fraction that JSON.parse rounds away gets 422, not an invoice of 4620', async () => {
      await expectRefusedUnchanged(
        'POST',
        '/v1/invoices',
        `{"customer":"${customerId}","currency":"usd","lines":[{"description":"x","amount":4620.0000000000001}]}`,
      );
    });

    // Bug: with an Idempotency-Key, the 422 answer is stored as jsonb; a message that quotes a key
    // holding U+0000 or a lone surrogate cannot be stored, so http/idempotency.ts calls next(error)
    // after the status was set: Express's default handler answers 422 as an HTML page with the pg
    // stack trace, and the key stays claimed (409 idempotency_key_in_use for 60 s).
    it('a validation error with an Idempotency-Key is a JSON 422, and the same retry gets the same 422', async () => {
      const headers = { 'content-type': 'application/json', 'idempotency-key': 'fuzz-surrogate-key' };
      const text = '{"email":"a@example.com","\\ud800":1}';
      const first = await call('POST', '/v1/customers', text, headers);
      expectRefusal(first, [422]);
      const again = await call('POST', '/v1/customers', text, headers);
      expect(again.status).toBe(422);
    });
  });

  it('leaves no prototype polluted after all the `__proto__` and `constructor` keys (the app runs in this process)', () => {
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_BEFORE.object);
    expect(Object.getOwnPropertyNames(Array.prototype).sort()).toEqual(PROTOTYPE_BEFORE.array);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it('uses every metacharacter in the corpus as plain text (stored and read back unchanged)', async () => {
    for (const name of METACHARACTERS) {
      const created = await app.api('POST', '/v1/customers', {
        email: 'meta@example.com',
        name: name || 'x',
      });
      expect(created.status, name).toBe(201);
      expect((await app.api('GET', `/v1/customers/${created.body.id}`)).body.name).toBe(name || 'x');
    }
  });
});
