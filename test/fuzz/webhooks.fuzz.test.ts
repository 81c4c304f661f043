import { isUtf8 } from 'node:buffer';
import { createHash, createHmac, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TEST_CERT_URL } from '../../src/gateways/paypal/certificates.ts';
import { signedMessage } from '../../src/gateways/paypal/webhook.ts';
import { signStripePayload } from '../../src/gateways/stripe/test-events.ts';
import { isCurrency } from '../../src/money/currency.ts';
import { STRIPE_WEBHOOK_SECRET, startTestApp, type TestApp } from '../support/app.ts';
import { byDepth } from '../support/depth.ts';
import { stripeFixtureRaw } from '../support/stripe.ts';
import {
  type Answer,
  anyJson,
  asRecord,
  countRowWrites,
  encode,
  expectRefusal,
  hostileText,
  INVALID_UTF8,
  isText,
  type Json,
  object,
  parsed,
  render,
  send,
  splice,
} from './support.ts';

/**
 * PRODUCT.md §2 and §8 for `POST /webhooks/:gateway`: arbitrary bodies (random bytes, hostile JSON,
 * invalid UTF-8, empty, around the 256 KiB limit), headers (signatures of every wrong kind, content
 * types and encodings) and signatures made with the right secret over garbage. For each case:
 * - never a 5xx, never a 2xx unless the delivery is correctly signed (or, for eWAY and SecurePay,
 *   which sign nothing, is a well-formed hint) and has the gateway's event shape;
 * - a refusal is 400, 404 (gateway not configured), 413 (over 256 KiB, readable) or 415 (a
 *   Content-Encoding, which webhooks never use), as the JSON error envelope, and stores nothing: the
 *   no inbox row is written (`countRowWrites`: a trigger counts every row written) and no
 *   webhook.process job added;
 * - an accepted delivery is one new inbox row holding the body exactly as sent (none for a repeat);
 *   an unsigned route's (eWAY, SecurePay) holds only the parsed hint, and takes at most 8 KiB.
 *
 * Two apps: the default one (only Stripe configured: the other four routes must answer 404) and one
 * with all five gateways configured (PayPal trusting the test certificate, so no fetch happens).
 * Deliveries that once broke billhook are kept at the end as regression tests.
 */

const LIMIT = 256 * 1024;
/** The unsigned routes' body limit (eWAY, SecurePay). */
const UNSIGNED_LIMIT = 8 * 1024;
const limitOf = (gateway: string) => (gateway === 'eway' || gateway === 'securepay' ? UNSIGNED_LIMIT : LIMIT);
/** Longest event id stored (MAX_EVENT_ID_LENGTH). */
const MAX_EVENT_ID = 255;
const OTHER_GATEWAYS = ['paypal', 'authorizenet', 'eway', 'securepay'] as const;
const PAYPAL_WEBHOOK_ID = 'WH-FUZZ-0001';
const ANET_SIGNATURE_KEY = 'FUZZ0123456789ABCDEF'.repeat(6).slice(0, 128);
const PAYPAL_TEST_DIR = path.resolve(import.meta.dirname, '../fixtures/paypal/test-signing');
const PAYPAL_TEST_CERT_FILE = path.join(PAYPAL_TEST_DIR, 'billhook-test-only.cert.pem');
const PAYPAL_TEST_KEY_PEM = readFileSync(path.join(PAYPAL_TEST_DIR, 'billhook-test-only.key.pem'), 'utf8');
const STRIPE_FIXTURE = stripeFixtureRaw('webhook.payment_intent.succeeded.json');

/** Cases per property, `npm test`'s and `npm run test:deep`'s (test/support/depth.ts; the README quotes these). */
const RUNS = {
  stripeUnsigned: byDepth(85, 500),
  stripeSigned: byDepth(85, 500),
  notConfigured: byDepth(50, 300),
  configuredUnsigned: byDepth(100, 600),
  signedGarbage: byDepth(85, 500),
  sizeLimit: byDepth(15, 80),
} as const;

const utf8 = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));

/** A header value fetch and Node's parser both carry: visible ASCII, space and Latin-1. */
const headerText = fc.string({
  unit: fc
    .integer({ min: 0x20, max: 0xff })
    .filter((c) => c !== 0x7f)
    .map((c) => String.fromCharCode(c)),
  maxLength: 80,
});

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'image/png',
] as const;

/** Content-Type (or none, or garbage) and, in some cases, a Content-Encoding. */
const transportHeaders = fc.record(
  {
    'content-type': fc.oneof(fc.constantFrom(...CONTENT_TYPES), headerText),
    'content-encoding': fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-garbage'),
  },
  { requiredKeys: [] },
);

/** Garbage headers a gateway might send, or an attacker. */
const strayHeaders = fc.dictionary(
  fc.constantFrom(
    'stripe-signature',
    'x-anet-signature',
    'paypal-transmission-id',
    'paypal-transmission-time',
    'paypal-transmission-sig',
    'paypal-cert-url',
    'paypal-auth-algo',
    'x-request-id',
    'x-forwarded-for',
    'x-http-method-override',
  ),
  headerText,
  { maxKeys: 4 },
);

/** Bytes of any kind: random, hostile text and JSON, a mutated real event, invalid UTF-8, empty, huge. */
const garbageBody: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  { weight: 3, arbitrary: hostileText.map(utf8) },
  { weight: 4, arbitrary: anyJson.map((tree) => utf8(render(tree))) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.nat(STRIPE_FIXTURE.length), fc.constantFrom(...INVALID_UTF8))
      .map(([at, bad]) => splice(STRIPE_FIXTURE, at, bad)),
  },
  {
    weight: 2,
    arbitrary: fc.nat(STRIPE_FIXTURE.length).map((cut) => utf8(STRIPE_FIXTURE.slice(0, cut))),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        '',
        ' ',
        '\ufeff',
        'null',
        '[]',
        '{}',
        'TransactionID=',
        'AccessCode=%00',
        '{"orderId":""}',
        '{"TransactionID":0}',
        '{"TransactionID":-1}',
        '{"TransactionID":1.5}',
        '{"TransactionID":"12a"}',
        '{"TransactionID":"1234567890123456789"}',
        'AccessCode=a b',
      )
      .map(utf8),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(fc.integer({ min: LIMIT - 16, max: LIMIT + 16 }), fc.integer({ min: 200_000, max: 400_000 }))
      .map((size) => new Uint8Array(size).fill(0x7b)),
  },
);

describe('fuzzing POST /webhooks/:gateway (PRODUCT.md §2, §8)', () => {
  let stripeOnly: TestApp;
  let allGateways: TestApp;

  /** The inbox's row count and rows written (countRowWrites), and the webhook.process jobs. */
  async function inboxState(app: TestApp): Promise<string> {
    const result = await sql<{ state: string }>`
      SELECT (SELECT count(*) FROM inbox) || ':' || (SELECT n FROM fuzz_row_writes)
        || ' jobs:' || (SELECT count(*) FROM pgboss.job WHERE name = 'webhook.process') AS state
    `.execute(app.runtime.db);
    return result.rows[0]!.state;
  }

  /** The stored row of an event, if any. */
  async function stored(app: TestApp, gateway: string, eventId: string) {
    return app.runtime.db
      .selectFrom('inbox')
      .select(['body', 'event_type'])
      .where('gateway', '=', gateway as never)
      .where('gateway_event_id', '=', eventId)
      .executeTakeFirst();
  }

  function deliver(
    app: TestApp,
    route: string,
    body: Uint8Array,
    headers: Record<string, string>,
    method = 'POST',
  ): Promise<Answer> {
    return send(`${app.url}/webhooks/${route}`, {
      method,
      headers,
      body: method === 'GET' ? undefined : body,
    });
  }

  /** A refusal: one of `allowed` (415 only with a Content-Encoding), the envelope, nothing stored. */
  async function expectRefused(
    app: TestApp,
    answer: Answer,
    before: string,
    size: number,
    headers: Record<string, string>,
    allowed: number[] = [400, 413],
    limit = LIMIT,
  ) {
    const encoded = headers['content-encoding'] !== undefined && headers['content-encoding'] !== 'identity';
    expectRefusal(answer, encoded ? [...allowed, 415] : allowed);
    if (answer.status === 413) expect(answer.json.error.code).toBe('body_too_large');
    if (!encoded && allowed.includes(413)) expect(answer.status === 413, `${size} bytes`).toBe(size > limit);
    expect(await inboxState(app)).toBe(before);
  }

  /**
   * An accepted delivery: 200 {"received":true}, its row holds the body as sent, or `storedBody` for
   * an unsigned hint (a repeat adds nothing).
   */
  async function expectStored(
    app: TestApp,
    gateway: string,
    eventId: string,
    answer: Answer,
    before: string,
    seenBefore: boolean,
    body: Uint8Array,
    storedBody = Buffer.from(body).toString('utf8'),
  ) {
    expect(answer.status, answer.text.slice(0, 300)).toBe(200);
    expect(answer.json).toEqual({ received: true });
    const row = await stored(app, gateway, eventId);
    expect(row).toBeDefined();
    const count = (state: string) => Number(state.split(':')[0]);
    expect(count(await inboxState(app))).toBe(count(before) + (seenBefore ? 0 : 1));
    if (!seenBefore) expect(row!.body).toBe(storedBody);
  }

  beforeAll(async () => {
    [stripeOnly, allGateways] = await Promise.all([
      startTestApp({}, 'web'),
      startTestApp(
        {
          PAYPAL_CLIENT_ID: 'fuzz-client',
          PAYPAL_CLIENT_SECRET: 'fuzz-secret',
          PAYPAL_WEBHOOK_ID,
          PAYPAL_TEST_CERT_FILE,
          AUTHORIZENET_API_LOGIN_ID: 'fuzz-login',
          AUTHORIZENET_TRANSACTION_KEY: 'fuzz-transaction-key',
          AUTHORIZENET_SIGNATURE_KEY: ANET_SIGNATURE_KEY,
          EWAY_API_KEY: 'fuzz-key',
          EWAY_API_PASSWORD: 'fuzz-password',
          SECUREPAY_CLIENT_ID: 'fuzz-client',
          SECUREPAY_CLIENT_SECRET: 'fuzz-secret',
          SECUREPAY_MERCHANT_CODE: '5AR0055',
          SECUREPAY_WEBHOOKS: 'on',
          // Every case comes from one address: the per-address limit is tested on its own.
          UNSIGNED_WEBHOOK_RATE_LIMIT_PER_MINUTE: '1000000',
        },
        'web',
      ),
    ]);
    await Promise.all([stripeOnly, allGateways].map((app) => countRowWrites(app.runtime.db, ['inbox'])));
  });
  afterAll(() => Promise.all([stripeOnly.stop(), allGateways.stop()]));

  /* ---------------------------------------------------------------- Stripe, the configured route */

  /** `Stripe-Signature` values that must all fail: garbage, stale, future, wrong secret, other bytes. */
  type StripeForgery =
    | { kind: 'none' }
    | { kind: 'text'; value: string }
    | { kind: 'random'; t: string; v1: string[] }
    | { kind: 'wrong-secret' | 'stale' | 'future' | 'other-body' | 'v0-only' | 'other-timestamp' };
  const stripeForgery: fc.Arbitrary<StripeForgery> = fc.oneof(
    fc.constant<StripeForgery>({ kind: 'none' }),
    headerText.map((value): StripeForgery => ({ kind: 'text', value })),
    fc
      .record({
        t: fc.oneof(
          fc.constantFrom('NOW', '0', '-1', 'abc', '1e10', '99999999999999999999', ''),
          fc.integer({ min: 0, max: 2 ** 31 }).map(String),
        ),
        v1: fc.array(
          fc.oneof(
            fc.stringMatching(/^[0-9a-f]{64}$/),
            headerText.filter((s) => !/[,=]/.test(s)),
          ),
          {
            maxLength: 3,
          },
        ),
      })
      .map((r): StripeForgery => ({ kind: 'random', ...r })),
    fc
      .constantFrom('wrong-secret', 'stale', 'future', 'other-body', 'v0-only', 'other-timestamp')
      .map((kind) => ({ kind }) as StripeForgery),
  );

  function forge(forgery: StripeForgery, body: Uint8Array): string | undefined {
    const text = Buffer.from(body).toString('utf8');
    const now = Math.floor(Date.now() / 1000);
    switch (forgery.kind) {
      case 'none':
        return undefined;
      case 'text':
        return forgery.value;
      case 'random':
        return [`t=${forgery.t === 'NOW' ? now : forgery.t}`, ...forgery.v1.map((v) => `v1=${v}`)].join(',');
      case 'wrong-secret':
        return signStripePayload(text, 'whsec_not_the_secret');
      case 'stale':
        return signStripePayload(text, STRIPE_WEBHOOK_SECRET, now - 301);
      case 'future':
        return signStripePayload(text, STRIPE_WEBHOOK_SECRET, now + 400);
      case 'other-body':
        return signStripePayload(`${text} `, STRIPE_WEBHOOK_SECRET);
      case 'v0-only':
        return signStripePayload(text, STRIPE_WEBHOOK_SECRET).replace('v1=', 'v0=');
      case 'other-timestamp':
        return signStripePayload(text, STRIPE_WEBHOOK_SECRET, now - 10).replace(/t=\d+/, `t=${now}`);
    }
  }

  it(`/webhooks/stripe refuses unsigned and wrongly signed deliveries with 400 or 413 and stores nothing (${RUNS.stripeUnsigned} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        garbageBody,
        stripeForgery,
        transportHeaders,
        strayHeaders,
        async (body, forgery, transport, stray) => {
          const signature = forge(forgery, body);
          const headers: Record<string, string> = { ...stray, ...transport };
          delete headers['stripe-signature'];
          if (signature !== undefined) headers['stripe-signature'] = signature;
          const before = await inboxState(stripeOnly);
          const answer = await deliver(stripeOnly, 'stripe', body, headers);
          await expectRefused(stripeOnly, answer, before, body.length, headers);
        },
      ),
      { seed: 9_101, numRuns: RUNS.stripeUnsigned },
    );
  });

  /** A payment intent billhook can book (and, read as a charge, a charge with no refunds list). */
  const INTENT = { id: 'pi_1', amount: 4620, currency: 'usd', status: 'succeeded' } as const;
  /** A refund billhook can book. */
  const REFUND = { id: 're_1', amount: 100, currency: 'usd', status: 'succeeded' } as const;

  /** A Stripe event envelope with fields of any type, valid values weighted up. */
  const stripeEnvelope: fc.Arbitrary<Json> = fc
    .record(
      {
        id: fc.oneof(
          { weight: 4, arbitrary: fc.stringMatching(/^evt_[0-9A-Za-z]{4,24}$/) },
          hostileText,
          fc.constantFrom<Json>('', null, 1, { kind: 'array', items: [] }),
        ),
        type: fc.oneof(
          {
            weight: 4,
            arbitrary: fc.constantFrom('payment_intent.succeeded', 'charge.refunded', 'account.updated'),
          },
          hostileText,
          fc.constantFrom<Json>('', null, 7),
        ),
        created: fc.oneof(
          { weight: 4, arbitrary: fc.integer({ min: 0, max: 2 ** 31 }) },
          fc.constantFrom<Json>(-1, 1.5, 2 ** 53, 1e300, '1717000000', null, {
            kind: 'literal',
            text: '1e400',
          }),
        ),
        data: fc.oneof(
          { weight: 4, arbitrary: fc.constant(object({ object: object(INTENT) })) },
          {
            weight: 2,
            arbitrary: fc.constantFrom(
              object({ object: object({ ...INTENT, amount: 46.2 }) }),
              object({ object: object({ ...INTENT, currency: 'xyz' }) }),
              object({ object: object({ ...INTENT, metadata: object({ n: 1 }) }) }),
              object({ object: object({ id: 'pi_1', amount: 4620 }) }),
              object({
                object: object({
                  ...INTENT,
                  refunds: object({ data: { kind: 'array', items: [object(REFUND)] } }),
                }),
              }),
              object({
                object: object({
                  ...INTENT,
                  refunds: object({ data: { kind: 'array', items: [object({ ...REFUND, amount: -1 })] } }),
                }),
              }),
            ),
          },
          fc.constantFrom<Json>(
            null,
            'x',
            { kind: 'array', items: [] },
            object({ object: null }),
            object({ object: { kind: 'array', items: [] } }),
          ),
          anyJson,
        ),
        livemode: fc.boolean(),
      },
      { requiredKeys: [] },
    )
    .map((fields) => object(fields));

  const nullishText = (v: unknown) => v === undefined || v === null || typeof v === 'string';
  const minorAmount = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const currencyCode = (v: unknown) => typeof v === 'string' && isCurrency(v.toUpperCase());
  const idOrObject = (v: unknown) =>
    v === undefined || v === null || typeof v === 'string' || typeof asRecord(v)?.id === 'string';
  const metadata = (v: unknown) =>
    v === undefined ||
    v === null ||
    Object.values(asRecord(v) ?? { x: 0 }).every((x) => typeof x === 'string');

  /** A Stripe payment intent as billhook books it (its fields as the docs type them). */
  function bookableIntent(value: unknown): boolean {
    const o = asRecord(value);
    const error = o?.last_payment_error;
    return (
      !!o &&
      typeof o.id === 'string' &&
      minorAmount(o.amount) &&
      (o.amount_received === undefined || minorAmount(o.amount_received)) &&
      currencyCode(o.currency) &&
      typeof o.status === 'string' &&
      metadata(o.metadata) &&
      nullishText(o.cancellation_reason) &&
      (error === undefined ||
        error === null ||
        ['code', 'decline_code', 'message'].every((k) => nullishText(asRecord(error)?.[k] ?? 0)))
    );
  }

  /** A Stripe refund as billhook books it. */
  function bookableRefund(value: unknown): boolean {
    const o = asRecord(value);
    return (
      !!o &&
      typeof o.id === 'string' &&
      minorAmount(o.amount) &&
      currencyCode(o.currency) &&
      ['status', 'reason', 'failure_reason'].every((k) => nullishText(o[k])) &&
      idOrObject(o.payment_intent) &&
      idOrObject(o.charge) &&
      metadata(o.metadata)
    );
  }

  /** A Stripe charge (of `charge.refunded`) as billhook books it: each refund it lists bookable. */
  function bookableCharge(value: unknown): boolean {
    const o = asRecord(value);
    if (!o || typeof o.id !== 'string' || !idOrObject(o.payment_intent)) return false;
    const refunds = o.refunds === undefined || o.refunds === null ? [] : asRecord(o.refunds)?.data;
    return (
      Array.isArray(refunds) &&
      refunds.every(
        (r) => !!asRecord(r) && bookableRefund({ payment_intent: o.payment_intent, charge: o.id, ...r }),
      )
    );
  }

  /**
   * A Stripe event as billhook reads it: id and type non-empty strings, created an integer,
   * data.object an object, which for the reconciled types the generator makes (payment_intent.succeeded,
   * charge.refunded) must be one billhook can book (PRODUCT §2: otherwise 400, nothing stored).
   */
  function stripeEventId(bytes: Uint8Array): string | undefined {
    if (bytes.length > LIMIT || !isUtf8(bytes)) return undefined;
    const r = asRecord(parsed(Buffer.from(bytes).toString('utf8')));
    const data = asRecord(r?.data);
    if (
      !r ||
      !isText(r.id, 1, MAX_EVENT_ID) ||
      !isText(r.type, 1, MAX_EVENT_ID) ||
      !Number.isSafeInteger(r.created)
    )
      return undefined;
    const object = asRecord(data?.object);
    if (!object) return undefined;
    if (r.type === 'payment_intent.succeeded' && !bookableIntent(object)) return undefined;
    if (r.type === 'charge.refunded' && !bookableCharge(object)) return undefined;
    return r.id;
  }

  it(`/webhooks/stripe accepts a correctly signed body only when it is a Stripe event, and stores it exactly (${RUNS.stripeSigned} cases)`, async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { weight: 3, arbitrary: stripeEnvelope.map((tree) => utf8(render(tree))) },
          { weight: 2, arbitrary: garbageBody },
          {
            weight: 1,
            arbitrary: fc
              .tuple(stripeEnvelope, fc.constantFrom(...INVALID_UTF8), fc.nat())
              .map(([tree, bad, at]) => splice(render(tree), at % 40, bad)),
          },
        ),
        fc.constantFrom<string | undefined>(undefined, 'text/plain', 'application/octet-stream'),
        async (body, contentType) => {
          const headers: Record<string, string> = {
            'stripe-signature': signStripePayload(Buffer.from(body).toString('utf8'), STRIPE_WEBHOOK_SECRET),
            'content-type': contentType ?? 'application/json',
          };
          const eventId = stripeEventId(body);
          const seenBefore =
            eventId !== undefined && (await stored(stripeOnly, 'stripe', eventId)) !== undefined;
          const before = await inboxState(stripeOnly);
          const answer = await deliver(stripeOnly, 'stripe', body, headers);
          if (eventId === undefined) return expectRefused(stripeOnly, answer, before, body.length, headers);
          accepted++;
          await expectStored(stripeOnly, 'stripe', eventId, answer, before, seenBefore, body);
        },
      ),
      { seed: 9_102, numRuns: RUNS.stripeSigned },
    );
    expect(accepted).toBeGreaterThan(RUNS.stripeSigned / 20);
  });

  /* ------------------------------------------------- routes of gateways that are not configured */

  it(`answers 404 on the four unconfigured gateways and on unknown ones, whatever is sent, storing nothing (${RUNS.notConfigured} cases)`, async () => {
    const unknownName = fc.oneof(
      fc.constantFrom('bitpay', 'STRIPE', 'Stripe', 'stripe ', 'stripe.json', 'stripe%2F', 'paypal;', '0'),
      fc.stringMatching(/^[a-z0-9-]{1,20}$/).filter((name) => name !== 'stripe'),
      hostileText.filter((name) => name.toWellFormed() !== 'stripe' && name !== ''),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(...OTHER_GATEWAYS), unknownName),
        garbageBody,
        fc.boolean(),
        transportHeaders,
        strayHeaders,
        async (gateway, body, signed, transport, stray) => {
          const headers: Record<string, string> = { ...stray, ...transport };
          if (signed)
            headers['stripe-signature'] = signStripePayload(
              Buffer.from(body).toString('utf8'),
              STRIPE_WEBHOOK_SECRET,
            );
          const before = await inboxState(stripeOnly);
          const route = (OTHER_GATEWAYS as readonly string[]).includes(gateway) ? gateway : encode(gateway);
          const answer = await deliver(stripeOnly, route, body, headers);
          expectRefusal(answer, [404]);
          expect(await inboxState(stripeOnly)).toBe(before);
        },
      ),
      { seed: 9_103, numRuns: RUNS.notConfigured },
    );
  });

  /* ----------------------------------------------------- all five configured: unsigned garbage */

  /** eWAY's hint as documented: a JSON or form body naming a positive numeric TransactionID or an AccessCode (keys in any case). */
  function ewayEventId(bytes: Uint8Array): string | undefined {
    if (bytes.length > UNSIGNED_LIMIT || !isUtf8(bytes)) return undefined;
    const text = Buffer.from(bytes).toString('utf8').trim();
    const fields = asRecord(
      text.startsWith('{') ? parsed(text) : Object.fromEntries(new URLSearchParams(text)),
    );
    if (!fields) return undefined;
    const lower = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k.toLowerCase(), v]));
    let transaction: string | undefined;
    const id = lower.transactionid;
    if (typeof id === 'number' && Number.isSafeInteger(id) && id > 0) transaction = String(id);
    else if (typeof id === 'string' && /^\d{1,18}$/.test(id.trim()) && BigInt(id.trim()) > 0n)
      transaction = BigInt(id.trim()).toString();
    else if (id !== undefined) return undefined;
    const code = lower.accesscode;
    if (code !== undefined && (typeof code !== 'string' || !/^[A-Za-z0-9_-]{1,512}$/.test(code.trim())))
      return undefined;
    if (transaction) return `transaction:${transaction}`;
    const id_ = typeof code === 'string' ? `access_code:${code.trim()}` : undefined;
    return id_ !== undefined && id_.length <= MAX_EVENT_ID ? id_ : undefined;
  }

  /** What the inbox keeps of an eWAY hint: the TransactionID or the AccessCode it names, nothing else. */
  function ewayStored(eventId: string): string {
    const [kind, value] = [eventId.slice(0, eventId.indexOf(':')), eventId.slice(eventId.indexOf(':') + 1)];
    return JSON.stringify(kind === 'transaction' ? { TransactionID: value } : { AccessCode: value });
  }

  /** What the inbox keeps of a SecurePay hint: its orderId, and its status when a plain status word. */
  function securepayStored(bytes: Uint8Array): string {
    const r = asRecord(parsed(Buffer.from(bytes).toString('utf8')))!;
    const status = typeof r.status === 'string' ? r.status.trim().toLowerCase() : undefined;
    return JSON.stringify({
      orderId: r.orderId,
      status: status && /^[a-z][a-z_]{0,31}$/.test(status) ? status : undefined,
    });
  }

  /** SecurePay's hint: a JSON object with an `orderId` of 1–128 letters, digits, `_ . : -`. */
  function securepayEventId(bytes: Uint8Array): string | undefined {
    if (bytes.length > UNSIGNED_LIMIT || !isUtf8(bytes)) return undefined;
    const r = asRecord(parsed(Buffer.from(bytes).toString('utf8')));
    if (!r || typeof r.orderId !== 'string' || !/^[\w.:-]{1,128}$/.test(r.orderId)) return undefined;
    if (r.status !== undefined && typeof r.status !== 'string') return undefined;
    return `${r.orderId}:${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}`;
  }

  const hintBody: fc.Arbitrary<Uint8Array> = fc.oneof(
    {
      weight: 2,
      arbitrary: fc
        .record(
          {
            TransactionID: fc.oneof(
              fc.integer({ min: 1, max: 99_999_999 }),
              fc.stringMatching(/^ ?\d{1,20} ?$/),
              fc.constantFrom<Json>(0, -5, 1.5, '', 'abc', null, true, Number.MAX_SAFE_INTEGER + 2),
              hostileText,
            ),
            AccessCode: fc.oneof(
              fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/),
              hostileText,
              fc.constant<Json>(null),
            ),
            orderId: fc.oneof(
              fc.stringMatching(/^[\w.:-]{1,30}$/),
              hostileText,
              fc.constantFrom<Json>('', 'x'.repeat(129), 5),
            ),
            status: fc.oneof(fc.constantFrom('paid', 'failed', 'PAID!'), hostileText, fc.constant<Json>(3)),
            extra: hostileText,
          },
          { requiredKeys: [] },
        )
        .chain((fields) =>
          fc.constantFrom('json', 'form', 'lower').map((shape) => {
            if (shape === 'json') return utf8(render(object(fields)));
            const form = new URLSearchParams();
            for (const [k, v] of Object.entries(fields))
              form.append(shape === 'lower' ? k.toLowerCase() : k, typeof v === 'string' ? v : render(v));
            return utf8(form.toString());
          }),
        ),
    },
    { weight: 2, arbitrary: garbageBody },
  );

  it(`with all five configured: garbage gets 400/413 (never 5xx), and only an unsigned gateway's well-formed hint is stored (${RUNS.configuredUnsigned} cases)`, async () => {
    const accepted: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('stripe', ...OTHER_GATEWAYS),
        hintBody,
        transportHeaders,
        strayHeaders,
        async (gateway, body, transport, stray) => {
          const headers: Record<string, string> = { ...stray, ...transport };
          // A TEST_CERT_URL lets PayPal's check run to the signature without any fetch.
          if (headers['paypal-cert-url'] !== undefined && headers['paypal-cert-url'].length % 2 === 0)
            headers['paypal-cert-url'] = TEST_CERT_URL;
          const encoded =
            transport['content-encoding'] !== undefined && transport['content-encoding'] !== 'identity';
          const eventId = encoded
            ? undefined
            : gateway === 'eway'
              ? ewayEventId(body)
              : gateway === 'securepay'
                ? securepayEventId(body)
                : undefined;
          const seenBefore =
            eventId !== undefined && (await stored(allGateways, gateway, eventId)) !== undefined;
          const before = await inboxState(allGateways);
          const answer = await deliver(allGateways, gateway, body, headers);
          if (eventId === undefined)
            return expectRefused(
              allGateways,
              answer,
              before,
              body.length,
              headers,
              undefined,
              limitOf(gateway),
            );
          accepted[gateway] = (accepted[gateway] ?? 0) + 1;
          const hint = gateway === 'eway' ? ewayStored(eventId) : securepayStored(body);
          await expectStored(allGateways, gateway, eventId, answer, before, seenBefore, body, hint);
        },
      ),
      { seed: 9_104, numRuns: RUNS.configuredUnsigned },
    );
    expect(accepted.eway).toBeGreaterThan(0);
    expect(accepted.securepay).toBeGreaterThan(0);
  });

  /* ------------------------------------- all five configured: correctly signed garbage (PayPal, Authorize.Net) */

  /** A PayPal capture billhook can book. */
  const CAPTURE = {
    id: '2GG279541U471931P',
    status: 'COMPLETED',
    amount: object({ currency_code: 'USD', value: '10.00' }),
  } as const;

  const paypalEnvelope: fc.Arbitrary<Json> = fc
    .record(
      {
        id: fc.oneof(
          { weight: 3, arbitrary: fc.stringMatching(/^WH-[0-9A-Z]{4,20}$/) },
          hostileText,
          fc.constant<Json>(5),
        ),
        event_type: fc.oneof(
          { weight: 3, arbitrary: fc.constantFrom('PAYMENT.CAPTURE.COMPLETED', 'CHECKOUT.ORDER.APPROVED') },
          hostileText,
          fc.constant<Json>(null),
        ),
        create_time: fc.oneof(
          { weight: 3, arbitrary: fc.constantFrom('2024-08-02T19:33:35Z', '2024-08-02T19:33:35.123+02:00') },
          fc.constantFrom<Json>('2024-08-02', '2024-08-02T19:33:35', 'yesterday', '', 1722627215),
          hostileText,
        ),
        resource: fc.oneof(
          { weight: 3, arbitrary: fc.constant(object(CAPTURE)) },
          {
            weight: 1,
            arbitrary: fc.constantFrom(
              object({ id: '2GG279541U471931P' }),
              object({ ...CAPTURE, amount: object({ currency_code: 'USD', value: '2.515' }) }),
              object({ ...CAPTURE, amount: object({ currency_code: 'XXY', value: '1.00' }) }),
              object({ ...CAPTURE, custom_id: 5 }),
            ),
          },
          fc.constantFrom<Json>(null, 'x', { kind: 'array', items: [] }),
          anyJson,
        ),
      },
      { requiredKeys: [] },
    )
    .map((fields) => object(fields));

  const anetNotification: fc.Arbitrary<Json> = fc
    .record(
      {
        notificationId: fc.oneof(
          { weight: 3, arbitrary: fc.uuid() },
          fc.integer({ min: 1 }),
          hostileText,
          fc.constantFrom<Json>('', null),
        ),
        eventType: fc.oneof(
          {
            weight: 3,
            arbitrary: fc.constantFrom(
              'net.authorize.payment.authcapture.created',
              'net.authorize.customer.created',
            ),
          },
          hostileText,
          fc.constant<Json>(1),
        ),
        eventDate: fc.oneof(
          { weight: 3, arbitrary: fc.constant('2024-08-02T19:33:35.123Z') },
          hostileText,
          fc.constant<Json>(0),
        ),
        webhookId: fc.oneof(fc.uuid(), fc.constant<Json>(7)),
        payload: fc.oneof(
          {
            weight: 3,
            arbitrary: fc
              .record(
                {
                  entityName: fc.oneof(fc.constant('transaction'), hostileText, fc.constant<Json>(1)),
                  id: fc.oneof(
                    fc.stringMatching(/^\d{1,12}$/),
                    fc.integer({ min: 1 }),
                    fc.constant<Json>(null),
                  ),
                },
                { requiredKeys: [] },
              )
              .map((fields) => object(fields)),
          },
          fc.constantFrom<Json>(null, 'x', { kind: 'array', items: [] }),
        ),
      },
      { requiredKeys: [] },
    )
    .map((fields) => object(fields));

  const iso = z.iso.datetime({ offset: true });

  /** A PayPal capture as billhook books it: id and status, an amount exact in its currency's minor units. */
  function bookableCapture(value: unknown): boolean {
    const o = asRecord(value);
    const amount = asRecord(o?.amount);
    const currency = typeof amount?.currency_code === 'string' ? amount.currency_code.toUpperCase() : '';
    const exponent = { USD: 2 }[currency];
    return (
      !!o &&
      isText(o.id, 1, Infinity) &&
      isText(o.status, 1, Infinity) &&
      ['custom_id', 'invoice_id'].every((k) => o[k] === undefined || typeof o[k] === 'string') &&
      (o.links === undefined || Array.isArray(o.links)) &&
      exponent !== undefined &&
      typeof amount?.value === 'string' &&
      new RegExp(`^\\d+(\\.\\d{1,${exponent}})?$`).test(amount.value)
    );
  }

  /**
   * PayPal's event: id and event_type non-empty strings, create_time ISO 8601 with offset, resource
   * an object, which for PAYMENT.CAPTURE.COMPLETED (the reconciled type the generator makes) must be
   * a capture billhook can book (PRODUCT §2: otherwise 400, nothing stored).
   */
  function paypalEventId(bytes: Uint8Array): string | undefined {
    if (bytes.length > LIMIT || !isUtf8(bytes)) return undefined;
    const r = asRecord(parsed(Buffer.from(bytes).toString('utf8')));
    if (!r || !isText(r.id, 1, MAX_EVENT_ID) || !isText(r.event_type, 1, MAX_EVENT_ID)) return undefined;
    if (!iso.safeParse(r.create_time).success || !asRecord(r.resource)) return undefined;
    if (r.event_type === 'PAYMENT.CAPTURE.COMPLETED' && !bookableCapture(r.resource)) return undefined;
    return r.id;
  }

  /** Authorize.Net's notification (numbers read as their source text, a BOM allowed). */
  function anetEventId(bytes: Uint8Array): string | undefined {
    if (bytes.length > LIMIT || !isUtf8(bytes)) return undefined;
    let text = Buffer.from(bytes).toString('utf8');
    if (text.startsWith('\ufeff')) text = text.slice(1);
    let value: unknown;
    try {
      value = JSON.parse(text, (_key, v: unknown, context?: { source?: string }) =>
        typeof v === 'number' ? (context?.source ?? String(v)) : v,
      );
    } catch {
      return undefined;
    }
    const r = asRecord(value);
    const payload = asRecord(r?.payload);
    if (!r || !payload || !isText(r.notificationId, 1, MAX_EVENT_ID) || !isText(r.eventType, 1, MAX_EVENT_ID))
      return undefined;
    // eventDate is only read later, never a column: any non-empty string will do.
    if (typeof r.eventDate !== 'string' || r.eventDate === '') return undefined;
    if (r.webhookId !== undefined && typeof r.webhookId !== 'string') return undefined;
    if (payload.entityName !== undefined && typeof payload.entityName !== 'string') return undefined;
    if (payload.id !== undefined && typeof payload.id !== 'string') return undefined;
    // A payment notification must name the transaction the worker will read back.
    if (
      r.eventType === 'net.authorize.payment.authcapture.created' &&
      (payload.entityName !== 'transaction' || !payload.id)
    )
      return undefined;
    return r.notificationId;
  }

  function signPaypal(body: Uint8Array): Record<string, string> {
    const transmissionId = 'b2384410-f8d2-11ee-8a8b-0b0d7e1b4c70';
    const transmissionTime = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const message = signedMessage(transmissionId, transmissionTime, PAYPAL_WEBHOOK_ID, Buffer.from(body));
    return {
      'paypal-transmission-id': transmissionId,
      'paypal-transmission-time': transmissionTime,
      'paypal-transmission-sig': sign('sha256', Buffer.from(message), PAYPAL_TEST_KEY_PEM).toString('base64'),
      'paypal-cert-url': TEST_CERT_URL,
      'paypal-auth-algo': 'SHA256withRSA',
    };
  }

  const signAnet = (body: Uint8Array, upper: boolean) => {
    const hex = createHmac('sha512', ANET_SIGNATURE_KEY).update(body).digest('hex');
    return { 'x-anet-signature': `sha512=${upper ? hex.toUpperCase() : hex}` };
  };

  it(`PayPal and Authorize.Net accept a correctly signed body only in their event shape, and store it exactly (${RUNS.signedGarbage} cases)`, async () => {
    const accepted: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('paypal', 'authorizenet'),
        fc.oneof(
          { weight: 2, arbitrary: paypalEnvelope.map((tree) => utf8(render(tree))) },
          { weight: 2, arbitrary: anetNotification.map((tree) => utf8(render(tree))) },
          { weight: 1, arbitrary: anetNotification.map((tree) => utf8(`\ufeff${render(tree)}`)) },
          { weight: 2, arbitrary: garbageBody },
        ),
        fc.boolean(),
        async (gateway, body, upper) => {
          const headers = {
            'content-type': 'application/json',
            ...(gateway === 'paypal' ? signPaypal(body) : signAnet(body, upper)),
          };
          const eventId = gateway === 'paypal' ? paypalEventId(body) : anetEventId(body);
          const seenBefore =
            eventId !== undefined && (await stored(allGateways, gateway, eventId)) !== undefined;
          const before = await inboxState(allGateways);
          const answer = await deliver(allGateways, gateway, body, headers);
          if (eventId === undefined) return expectRefused(allGateways, answer, before, body.length, headers);
          accepted[gateway] = (accepted[gateway] ?? 0) + 1;
          await expectStored(allGateways, gateway, eventId, answer, before, seenBefore, body);
        },
      ),
      { seed: 9_105, numRuns: RUNS.signedGarbage },
    );
    expect(accepted.paypal).toBeGreaterThan(0);
    expect(accepted.authorizenet).toBeGreaterThan(0);
  });

  /* ------------------------------------------------------------------- the 256 KiB limit, exactly */

  it(`stores a valid, signed delivery up to exactly 256 KiB and answers 413 (readable, nothing stored) one byte over (${RUNS.sizeLimit} cases)`, async () => {
    let serial = 0;
    /** A valid delivery for `gateway`, padded to `size` bytes, with its headers and event id. */
    function delivery(gateway: string, size: number) {
      const id = `fuzz-size-${++serial}`;
      const shell: Record<string, string> = {
        stripe: `{"id":"evt_${id}","type":"x.y","created":1,"data":{"object":{}},"pad":"`,
        paypal: `{"id":"WH-${id}","event_type":"X.Y","create_time":"2024-08-02T19:33:35Z","resource":{},"pad":"`,
        authorizenet: `{"notificationId":"${id}","eventType":"x","eventDate":"2024-08-02","payload":{},"pad":"`,
        eway: `{"TransactionID":${1_000_000 + serial},"pad":"`,
        securepay: `{"orderId":"${id}","pad":"`,
      };
      const head = shell[gateway]!;
      const body = utf8(`${head}${'x'.repeat(Math.max(0, size - head.length - 2))}"}`);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        ...(gateway === 'stripe'
          ? {
              'stripe-signature': signStripePayload(
                Buffer.from(body).toString('utf8'),
                STRIPE_WEBHOOK_SECRET,
              ),
            }
          : gateway === 'paypal'
            ? signPaypal(body)
            : gateway === 'authorizenet'
              ? signAnet(body, false)
              : {}),
      };
      const eventId =
        gateway === 'stripe'
          ? `evt_${id}`
          : gateway === 'paypal'
            ? `WH-${id}`
            : gateway === 'authorizenet'
              ? id
              : gateway === 'eway'
                ? `transaction:${1_000_000 + serial}`
                : securepayEventId(body)!;
      return { body, headers, eventId };
    }
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('stripe', ...OTHER_GATEWAYS),
        fc.oneof(
          fc.integer({ min: LIMIT - 8, max: LIMIT + 8 }),
          fc.constantFrom(LIMIT, LIMIT + 1, 4 * LIMIT),
          fc.integer({ min: UNSIGNED_LIMIT - 8, max: UNSIGNED_LIMIT + 8 }),
        ),
        async (gateway, size) => {
          const { body, headers, eventId } = delivery(gateway, size);
          expect(body.length).toBe(size);
          const before = await inboxState(allGateways);
          const answer = await deliver(allGateways, gateway, body, headers);
          if (size > limitOf(gateway))
            return expectRefused(allGateways, answer, before, size, headers, [413], limitOf(gateway));
          const hint =
            gateway === 'eway'
              ? ewayStored(eventId)
              : gateway === 'securepay'
                ? securepayStored(body)
                : undefined;
          await expectStored(allGateways, gateway, eventId, answer, before, false, body, hint);
        },
      ),
      { seed: 9_106, numRuns: RUNS.sizeLimit },
    );
  });

  it('answers 404 to other methods and sub-paths of the webhook routes, storing nothing', async () => {
    const before = await inboxState(stripeOnly);
    const body = utf8(STRIPE_FIXTURE);
    const headers = { 'stripe-signature': signStripePayload(STRIPE_FIXTURE, STRIPE_WEBHOOK_SECRET) };
    for (const [method, route] of [
      ['GET', 'stripe'],
      ['PUT', 'stripe'],
      ['DELETE', 'stripe'],
      ['PATCH', 'stripe'],
      ['POST', 'stripe/extra'],
      ['POST', ''],
    ] as const) {
      expectRefusal(await deliver(stripeOnly, route, body, headers, method), [404]);
    }
    expect(await inboxState(stripeOnly)).toBe(before);
  });

  /**
   * Deliveries that broke billhook once (5xx, two ids merged into one), found by the properties above
   * and shrunk by fast-check; kept as plain regression tests.
   */
  describe('deliveries that once broke billhook', () => {
    // Bug: PostgreSQL text cannot hold U+0000. A correctly signed Stripe event whose id (or type)
    // holds "\u0000" reaches the inbox INSERT (gateway_event_id) → 22021 → 500, and with group
    // commit the whole batch fails, so deliveries that shared the transaction get a 500 too.
    it('a signed Stripe event with U+0000 in its id gets 400, not 500', async () => {
      const text = '{"id":"evt_\\u0000","type":"x","created":1,"data":{"object":{}}}';
      const before = await inboxState(stripeOnly);
      const headers = { 'stripe-signature': signStripePayload(text, STRIPE_WEBHOOK_SECRET) };
      const answer = await deliver(stripeOnly, 'stripe', utf8(text), headers);
      await expectRefused(stripeOnly, answer, before, text.length, headers, [400]);
    });

    // Bug: eWAY callbacks are unsigned, so anyone can send this: a form hint with a raw NUL byte
    // anywhere in the body is accepted by the shape check, then the inbox INSERT of the body fails
    // (22021) → 500, failing the other deliveries batched into the same transaction.
    it('an unsigned eWAY hint with a NUL byte gets 400 (or is stored), never 500', async () => {
      const body = utf8('TransactionID=1&a=\u0000');
      const before = await inboxState(allGateways);
      const answer = await deliver(allGateways, 'eway', body, {
        'content-type': 'application/x-www-form-urlencoded',
      });
      expect(answer.status).toBeLessThan(500);
      if (answer.status !== 200) await expectRefused(allGateways, answer, before, body.length, {}, [400]);
    });

    // Bug: PostgreSQL stores a lone surrogate as U+FFFD, so two correctly signed events whose ids
    // differ only there ("evt_\ud800", "evt_\udfff") get the same gateway_event_id: the second is
    // answered 200 as a duplicate and never stored or processed. (Stripe does not send such ids; the
    // verifier should refuse ids that are not well-formed Unicode, as it must refuse U+0000.)
    it('two signed Stripe events whose ids differ only in a lone surrogate are not merged into one', async () => {
      const event = (id: string) => `{"id":"${id}","type":"x","created":1,"data":{"object":{}}}`;
      const before = await inboxState(stripeOnly);
      for (const id of ['evt_lone\\ud800', 'evt_lone\\udfff']) {
        const text = event(id);
        const headers = { 'stripe-signature': signStripePayload(text, STRIPE_WEBHOOK_SECRET) };
        const answer = await deliver(stripeOnly, 'stripe', utf8(text), headers);
        if (answer.status === 200) continue;
        await expectRefused(stripeOnly, answer, before, text.length, headers, [400]);
      }
      const rows = await stripeOnly.runtime.db
        .selectFrom('inbox')
        .select('gateway_event_id')
        .where('gateway_event_id', 'like', 'evt\\_lone%')
        .execute();
      // Either both were refused (nothing stored) or both were stored under distinct ids.
      expect(new Set(rows.map((r) => r.gateway_event_id)).size).toBe(rows.length);
      expect(rows.length === 0 || rows.length === 2).toBe(true);
    });

    // Bug: an undecodable percent-encoding in :gateway makes the router throw a URIError (status
    // 400, not exposed), which http/errors.ts turns into 500.
    // Bug (issue #22): a correctly signed event with a 3 KB id passes every check, then its inbox row
    // is too large for the unique index (54000) and its whole group-commit batch fails with it.
    it.each([
      ['stripe', (id: string) => `{"id":"${id}","type":"x.y","created":1,"data":{"object":{}}}`],
      [
        'paypal',
        (id: string) =>
          `{"id":"${id}","event_type":"X.Y","create_time":"2024-08-02T19:33:35Z","resource":{}}`,
      ],
      [
        'authorizenet',
        (id: string) => `{"notificationId":"${id}","eventType":"x","eventDate":"2024-08-02","payload":{}}`,
      ],
    ])(
      'a correctly signed %s event with a 3,000-character id gets 400 event_id_too_long, nothing stored',
      async (gateway, event) => {
        const text = event(`id-${'k'.repeat(2997)}`);
        const body = utf8(text);
        const headers: Record<string, string> = {
          'content-type': 'application/json',
          ...(gateway === 'stripe'
            ? { 'stripe-signature': signStripePayload(text, STRIPE_WEBHOOK_SECRET) }
            : gateway === 'paypal'
              ? signPaypal(body)
              : signAnet(body, false)),
        };
        const before = await inboxState(allGateways);
        const answer = await deliver(allGateways, gateway, body, headers);
        await expectRefused(allGateways, answer, before, body.length, headers, [400]);
        expect(answer.json.error.code).toBe('event_id_too_long');
      },
    );

    it('/webhooks/%FF gets 404 (or 400), not 500', async () => {
      const before = await inboxState(stripeOnly);
      const answer = await deliver(stripeOnly, '%FF', utf8('{}'), { 'content-type': 'application/json' });
      expectRefusal(answer, [400, 404]);
      expect(await inboxState(stripeOnly)).toBe(before);
    });
  });
});
