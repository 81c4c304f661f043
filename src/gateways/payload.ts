import type { z } from 'zod';
import { WebhookPayloadError } from './types.ts';

/**
 * Parses a verified webhook body as JSON.
 * @param parseText the parser (default `JSON.parse`; Authorize.Net's strips a BOM and keeps amounts exact)
 * @throws WebhookPayloadError `body is not JSON`
 */
export function parseJsonPayload(text: string, parseText: (text: string) => unknown = JSON.parse): unknown {
  try {
    return parseText(text);
  } catch {
    throw new WebhookPayloadError('body is not JSON');
  }
}

/**
 * Checks a gateway payload against its zod schema.
 * @param what names the payload in the error, e.g. `Stripe refund`
 * @throws WebhookPayloadError `not a <what>: <field path>: <problem>` for the first problem found
 */
export function parsePayload<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const first = result.error.issues[0];
    throw new WebhookPayloadError(`not a ${what}: ${first?.path.join('.') || '(root)'}: ${first?.message}`);
  }
  return result.data;
}
