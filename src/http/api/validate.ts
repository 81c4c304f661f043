import type { z } from 'zod';
import { ValidationError } from '../../errors.ts';

/** Text safe to store and print: well-formed, with NUL escaped (paths and messages may echo the caller). */
export const printable = (text: string) => text.toWellFormed().replaceAll('\u0000', '\\u0000');

/**
 * Parses a request body or query with a zod schema.
 * @throws ValidationError (422) with one message per offending field path, e.g. `{"lines.0.amount": "…"}`
 */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  // A Map: a caller's key may be `constructor` or `__proto__`, which a plain object already has.
  const fields = new Map<string, string>();
  for (const issue of result.error.issues) {
    // Paths and messages may echo the caller's keys: keep them storable and printable.
    const path = printable(issue.path.join('.') || '(body)');
    if (!fields.has(path)) fields.set(path, printable(issue.message));
  }
  throw new ValidationError(`invalid request: ${[...fields.keys()].join(', ')}`, Object.fromEntries(fields));
}
