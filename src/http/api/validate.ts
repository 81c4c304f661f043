import type { z } from 'zod';
import { ValidationError } from '../../errors.ts';

/**
 * Parses a request body or query with a zod schema.
 * @throws ValidationError (422) with one message per offending field path, e.g. `{"lines.0.amount": "…"}`
 */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const fields: Record<string, string> = {};
  for (const issue of result.error.issues) {
    const path = issue.path.join('.') || '(body)';
    fields[path] ??= issue.message;
  }
  throw new ValidationError(`invalid request: ${Object.keys(fields).join(', ')}`, fields);
}
