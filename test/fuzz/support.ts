import fc from 'fast-check';
import { sql } from 'kysely';
import { expect } from 'vitest';
import type { Db } from '../../src/db/database.ts';

/**
 * Shared pieces of the fuzz suites (PRODUCT.md §8: bad input of every kind gets a clear 4xx and
 * changes nothing): a JSON tree that can hold what plain JS objects cannot (duplicate keys,
 * `__proto__` as an own key, number literals such as `1e400` or `10.50`), hostile strings, and the
 * checks every refusal must pass.
 */

/** A JSON document to send. Objects keep their entries as written; `literal` is raw number text. */
export type Json =
  | null
  | boolean
  | number
  | string
  | { kind: 'literal'; text: string }
  | { kind: 'array'; items: Json[] }
  | { kind: 'object'; entries: [string, Json][] };

/** An object node from a record (ordinary keys) plus extra raw entries (duplicates, `__proto__`). */
export function object(fields: Record<string, Json | undefined>, extra: [string, Json][] = []): Json {
  const entries = Object.entries(fields).filter((entry): entry is [string, Json] => entry[1] !== undefined);
  return { kind: 'object', entries: [...entries, ...extra] };
}

/** Serialises a tree to JSON text exactly as built (NaN and Infinity only through `literal`). */
export function render(value: Json): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
    return JSON.stringify(value);
  }
  if (value.kind === 'literal') return value.text;
  if (value.kind === 'array') return `[${value.items.map(render).join(',')}]`;
  return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}:${render(v)}`).join(',')}}`;
}

/** What the server sees once it parsed the text (`undefined` when the text is not JSON). */
export function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A plain object as JSON.parse builds it (own keys only, `__proto__` included), else undefined. */
export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** True when `value` has only keys among `allowed` (own keys, as JSON.parse makes them). */
export function onlyKeys(value: Record<string, unknown>, allowed: readonly string[]): boolean {
  return Object.keys(value).every((key) => allowed.includes(key));
}

/** Well-formed text (no lone surrogate) of `min`..`max` UTF-16 code units (zod's `.min()` / `.max()` count those). */
export function isText(value: unknown, min: number, max: number): value is string {
  return typeof value === 'string' && value.isWellFormed() && value.length >= min && value.length <= max;
}

/**
 * The exact value of a JSON number literal as a decimal fraction `numerator / 10^scale`, so that
 * `4620.0000000000001` is known not to be an integer even though JSON.parse rounds it to 4620.
 * @returns undefined for text that is not a JSON number
 */
export function exactDecimal(text: string): { integer: bigint | undefined } | undefined {
  const match = /^(-?)(0|[1-9]\d*)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!match) return undefined;
  const [, sign, whole, fraction = '', exponentText = '0'] = match;
  const exponent = Number(exponentText);
  if (Math.abs(exponent) > 400) return { integer: undefined };
  let digits = `${whole}${fraction}`;
  let scale = fraction.length - exponent;
  if (scale < 0) {
    digits += '0'.repeat(-scale);
    scale = 0;
  }
  const kept = digits.slice(0, digits.length - scale) || '0';
  const dropped = digits.slice(digits.length - scale);
  if (/[1-9]/.test(dropped)) return { integer: undefined };
  const integer = BigInt(kept);
  return { integer: sign === '-' ? -integer : integer };
}

/** SQL, HTML, template and path metacharacters, number-like words and prototype keys. */
export const METACHARACTERS = [
  "'",
  "''",
  "' OR '1'='1",
  "'); DROP TABLE customers; --",
  '"; DELETE FROM invoices; --',
  '1; UPDATE invoices SET status = $$PAID$$',
  '\\',
  '%',
  '_%\\',
  '$1',
  '?',
  '<script>alert(1)</script>',
  '<img src=x onerror=alert(1)>',
  '"><svg/onload=alert(1)>',
  '&amp;&lt;&#0;',
  '{{7*7}}',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, literal on purpose
  '${7*7}',
  '../../etc/passwd',
  '\r\n\r\nX-Injected: 1',
  '\t',
  '\u202e',
  '\ufeff',
  '\u2028',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  '👩‍👩‍👧',
  'NaN',
  'Infinity',
  '-Infinity',
  'null',
  'undefined',
  'true',
  '1e400',
  '0x1F',
  '-0',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
] as const;

/** Percent-encodes any string (a lone surrogate as U+FFFD, which encodeURIComponent cannot encode). */
export const encode = (s: string) => encodeURIComponent(s.toWellFormed());

/**
 * Up to 30 of any code point, lone surrogates included: what `fc.string({ unit: 'binary' })` makes,
 * without the 2.2 s of CPU that arbitrary takes to build (fast-check maps every code point back
 * to its index, for shrinking its "dangerous strings", which METACHARACTERS covers here).
 */
const anyCodePoints = fc
  .array(fc.integer({ min: 0, max: 0x10ffff }), { maxLength: 30 })
  .map((codes) => String.fromCodePoint(...codes));

/** Hostile text: random (any code point), metacharacters, and lengths around the API's limits. */
export const hostileText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 3, arbitrary: anyCodePoints },
  { weight: 4, arbitrary: fc.constantFrom(...METACHARACTERS) },
  { weight: 1, arbitrary: fc.constantFrom('\ud800', 'a\udfffb', '\u0000') },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(1, 39, 40, 41, 64, 65, 199, 200, 201, 320, 321, 499, 500, 501, 5000)
      .map((n) => 'x'.repeat(n)),
  },
);

/** An id with a type prefix, the wrong one, none, or a shape the API does not make; never one of `realIds`. */
export function idLike(realIds: readonly string[]): fc.Arbitrary<string> {
  const suffix = fc.stringMatching(/^[0-9a-z]{1,24}$/);
  return fc
    .oneof(
      fc
        .tuple(fc.constantFrom('cus', 'pm', 'inv', 'txn', 're', 'dp', 'evt', 'il', 'key', 'x', ''), suffix)
        .map(([prefix, rest]) => `${prefix}_${rest}`),
      fc
        .tuple(
          fc.constantFrom(...realIds),
          fc.constantFrom('cus_', 'pm_', 'inv_', 'txn_', 'evt_', 'CUS_', ''),
        )
        .map(([id, prefix]) => `${prefix}${id.slice(id.indexOf('_') + 1)}`),
      fc.constantFrom(...realIds).map((id) => `${id} `),
      fc.constantFrom(...realIds).map((id) => id.toUpperCase()),
      fc.constantFrom(...realIds).map((id) => `${id}x`.repeat(3)),
      hostileText,
    )
    .filter((id) => !realIds.includes(id));
}

/** Any JSON value, with hostile strings and keys (prototype keys among them) and odd numbers. */
export const anyJson: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    hostileText,
    fc.array(tie('value'), { maxLength: 4 }).map((items): Json => ({ kind: 'array', items })),
    fc
      .array(fc.tuple(fc.oneof(hostileText, fc.constantFrom('__proto__', 'constructor')), tie('value')), {
        maxLength: 4,
      })
      .map((entries): Json => ({ kind: 'object', entries })),
  ),
})).value;

/**
 * A JSON amount as a client might send it: integers in and out of range, negatives, floats,
 * number literals (exponents, trailing zeros, 400-digit numbers), NaN/Infinity words, strings,
 * booleans, null, arrays and objects.
 */
export const amountJson: fc.Arbitrary<Json> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 10_000_000 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      0,
      1,
      999_999_999_999_999,
      1_000_000_000_000_000,
      1_000_000_000_000_001,
      -1,
      -0,
      Number.MAX_SAFE_INTEGER,
      2 ** 53,
      2 ** 63,
      1e21,
      1e300,
      Number.MIN_VALUE,
      0.1,
      10.5,
      -4620,
    ),
  },
  { weight: 2, arbitrary: fc.integer({ min: -10_000_000, max: -1 }) },
  { weight: 2, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom('', '-'),
        fc.oneof(fc.constant('0'), fc.stringMatching(/^[1-9]\d{0,19}$/)),
        fc.option(fc.stringMatching(/^\d{1,8}$/), { nil: undefined }),
        fc.option(fc.integer({ min: -20, max: 20 }), { nil: undefined }),
      )
      .map(
        ([sign, whole, fraction, exponent]): Json => ({
          kind: 'literal',
          text: `${sign}${whole}${fraction === undefined ? '' : `.${fraction}`}${exponent === undefined ? '' : `e${exponent}`}`,
        }),
      ),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom('1e400', '-1e400', '1'.repeat(400), '1.0', '1E3', '0.5e1', '100.00', '-0.0', '2.5e-1')
      .map((text): Json => ({ kind: 'literal', text })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom('NaN', 'Infinity', '-Infinity', '0x10', '1_000', '+1', '.5', '01')
      .map((text): Json => ({ kind: 'literal', text })),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom<Json>(
      '100',
      '1e3',
      'NaN',
      'Infinity',
      '',
      ' 1',
      '4620',
      null,
      true,
      false,
      { kind: 'array', items: [100] },
      { kind: 'object', entries: [['value', 100]] },
    ),
  },
);

/**
 * Reads an amount the way money must be read: the exact value of what was sent, only when it is an
 * integer (a JSON number whose decimal value is whole). Strings, floats and literals such as
 * `4620.0000000000001` (which JSON.parse rounds to 4620) are not amounts.
 */
export function exactInteger(value: Json | undefined): bigint | undefined {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? exactDecimal(JSON.stringify(value))?.integer : undefined;
  }
  if (value !== null && typeof value === 'object' && value.kind === 'literal') {
    return exactDecimal(value.text)?.integer;
  }
  return undefined;
}

/** An HTTP answer, read whole. */
export interface Answer {
  status: number;
  text: string;
  json: any;
  contentType: string | null;
}

/** Sends a request with a raw body and reads the answer whole (the JSON too, when it is JSON). */
export async function send(
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: string | Uint8Array },
): Promise<Answer> {
  const response = await fetch(url, {
    method: init.method,
    headers: init.headers,
    body: init.body as NonNullable<Parameters<typeof fetch>[1]>['body'],
  });
  const text = await response.text();
  return {
    status: response.status,
    text,
    json: parsed(text),
    contentType: response.headers.get('content-type'),
  };
}

/**
 * A clear refusal: a 4xx whose body is the JSON error envelope `{error: {type, code, message}}`,
 * with `fields` naming what is wrong on a validation error (422).
 */
export function expectRefusal(answer: Answer, allowed: readonly number[] = []): void {
  if (allowed.length > 0) expect(allowed, answer.text.slice(0, 300)).toContain(answer.status);
  expect(answer.status, answer.text.slice(0, 300)).toBeGreaterThanOrEqual(400);
  expect(answer.status, answer.text.slice(0, 300)).toBeLessThan(500);
  expect(answer.contentType ?? '', answer.text.slice(0, 300)).toMatch(/^application\/json/);
  const error = answer.json?.error;
  expect(typeof error?.type, answer.text.slice(0, 300)).toBe('string');
  expect(typeof error?.code).toBe('string');
  expect(typeof error?.message).toBe('string');
  expect(error.message.length).toBeGreaterThan(0);
  if (answer.status === 422 || error.code === 'validation_failed') {
    expect(typeof error.fields, answer.text.slice(0, 300)).toBe('object');
    expect(Object.keys(error.fields).length).toBeGreaterThan(0);
    for (const message of Object.values(error.fields)) expect(typeof message).toBe('string');
  }
}

/** Every byte sequence that is not UTF-8: lone continuation bytes, overlongs, surrogates, > U+10FFFF, cut-off sequences. */
export const INVALID_UTF8: readonly number[][] = [
  [0xff],
  [0xfe, 0xff],
  [0x80],
  [0xbf],
  [0xc0, 0xaf],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xc3],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
];

/** `text` with the bytes of `bad` spliced in at character `at` (clamped). */
export function splice(text: string, at: number, bad: readonly number[]): Uint8Array {
  const position = Math.max(0, Math.min(text.length, at));
  return Buffer.concat([
    Buffer.from(text.slice(0, position), 'utf8'),
    Buffer.from(bad),
    Buffer.from(text.slice(position), 'utf8'),
  ]);
}

/**
 * From now on, counts every row written in `tables` of `db` (inserted, updated or deleted) in a
 * counter row, by a row-level trigger on each table (idempotent). "Changes nothing" is then "the
 * count did not move" ({@link rowWrites}): one read per case instead of hashing every row of every
 * table, which grew with the rows the good cases store. It is stricter than comparing the rows: a
 * write of the same values counts too; a write rolled back does not (the counter rolls back with it).
 */
export async function countRowWrites(db: Db, tables: readonly string[]): Promise<void> {
  await sql`CREATE TABLE IF NOT EXISTS fuzz_row_writes (one boolean PRIMARY KEY DEFAULT true, n bigint NOT NULL)`.execute(
    db,
  );
  await sql`INSERT INTO fuzz_row_writes (n) VALUES (0) ON CONFLICT DO NOTHING`.execute(db);
  await sql`
    CREATE OR REPLACE FUNCTION fuzz_count_row_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE fuzz_row_writes SET n = n + 1;
      RETURN NULL;
    END $$
  `.execute(db);
  for (const table of tables) {
    await sql`
      CREATE OR REPLACE TRIGGER fuzz_count_row_write AFTER INSERT OR UPDATE OR DELETE ON ${sql.table(table)}
        FOR EACH ROW EXECUTE FUNCTION fuzz_count_row_write()
    `.execute(db);
  }
}

/** The rows written in the counted tables since {@link countRowWrites} (a decimal string). */
export async function rowWrites(db: Db): Promise<string> {
  const result = await sql<{ n: string }>`SELECT n::text AS n FROM fuzz_row_writes`.execute(db);
  return result.rows[0]!.n;
}
