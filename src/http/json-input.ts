import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { sendError } from './errors.ts';

/** Raised by the body parser for a body that is not UTF-8: answered 400. */
class NotUtf8 extends Error {
  readonly status = 400;
  readonly expose = true;
  readonly type = 'entity.verify.failed';
}

/** `express.json`'s `verify`: the raw body must be valid UTF-8 (no lossy decoding of bad bytes). */
export function requireUtf8(_req: IncomingMessage, _res: unknown, body: Buffer): void {
  if (!isUtf8(body)) throw new NotUtf8('the body is not valid UTF-8');
}

/** Body fields that are percentages: a JSON number with decimals is taken as its source text. */
const PERCENT_FIELDS = new Set(['tax_percent', 'percent_off', 'percent']);

/**
 * `express.json`'s reviver: input that JSON can carry but billhook must not take in is replaced by
 * `NaN`, which every schema refuses with a field-level 422:
 * - a number written with a fraction or exponent (`4620.0000000000001`, `1e3`): parsing would round it
 *   to an integer silently, and money is never a float (a percentage's fraction is kept as the text
 *   written, which its schema reads digit by digit, so `8.875` is never a float either);
 * - a string with a NUL character or a lone surrogate (PostgreSQL cannot store them).
 * A percentage field (`PERCENT_FIELDS`) with a fraction keeps its exact source text instead
 * (`8.875` → `"8.875"`), which its schema reads as parts per million, never as a float.
 */
export function strictJsonReviver(
  this: unknown,
  key: string,
  value: unknown,
  context?: { source?: string },
): unknown {
  if (typeof value === 'number' && context?.source !== undefined && /[.eE]/.test(context.source))
    return PERCENT_FIELDS.has(key) ? context.source : Number.NaN;
  if (typeof value === 'string' && (value.includes('\u0000') || !value.isWellFormed())) return Number.NaN;
  return value;
}

/**
 * Refuses (400) a URL whose path or query carries a NUL character: no id or filter contains one, and
 * PostgreSQL cannot compare with it.
 */
export const refuseNulInUrl: RequestHandler = (req, res, next) => {
  const values = Object.values(req.query).flat();
  if (/%00/.test(req.originalUrl) || values.some((v) => typeof v === 'string' && v.includes('\u0000'))) {
    return sendError(res, 400, 'invalid_request', 'invalid_url', 'the URL contains a NUL character');
  }
  next();
};
