import type { Config } from '../../config/env.ts';
import { ACCESS_CODE_PATTERN } from './conventions.ts';

/** Event types `send-test-webhook eway` can build: a hint naming a transaction or an access code. */
export const EWAY_TEST_EVENT_TYPES = ['transaction', 'access_code'] as const;
export type EwayTestEventType = (typeof EWAY_TEST_EVENT_TYPES)[number];

/** What the hint points at, and how it is encoded. */
export interface EwayTestEventOptions {
  /** eWAY's numeric TransactionID, for `transaction` (e.g. `11818347`). */
  transactionId?: string | number;
  /** An eWAY access code, for `access_code`. */
  accessCode?: string;
  /** `form` (default: `TransactionID=…`, as eWAY appends it to a RedirectUrl) or `json`. */
  format?: 'form' | 'json';
}

/**
 * Builds the callback hint eWAY's redirect would carry, for `send-test-webhook eway transaction
 * --transaction-id 123` (or `access_code --access-code …`): a body naming only the transaction or
 * access code, since eWAY signs nothing and billhook believes only what it then queries from eWAY.
 * The server must have `EWAY_API_KEY` / `EWAY_API_PASSWORD` set (the route is 404 otherwise) and will
 * query `EWAY_API_BASE` for the transaction before it reconciles anything.
 * @returns the body and its content-type header, ready to POST to /webhooks/eway
 * @throws Error when the option the event type needs is missing or malformed, or when the eWAY
 * credentials are not configured
 */
export function buildEwayTestDelivery(
  eventType: EwayTestEventType,
  options: EwayTestEventOptions,
  config: Pick<Config, 'EWAY_API_KEY' | 'EWAY_API_PASSWORD'>,
): { body: string; headers: Record<string, string> } {
  if (!config.EWAY_API_KEY || !config.EWAY_API_PASSWORD) {
    throw new Error(
      'EWAY_API_KEY and EWAY_API_PASSWORD are not set: the server would not accept the hint either',
    );
  }
  let field: ['TransactionID', number | string] | ['AccessCode', string];
  if (eventType === 'transaction') {
    const id = String(options.transactionId ?? '');
    if (!/^\d{1,16}$/.test(id) || !Number.isSafeInteger(Number(id)) || Number(id) <= 0) {
      throw new Error(
        `eway transaction needs --transaction-id, a positive integer (got ${JSON.stringify(id)})`,
      );
    }
    field = ['TransactionID', Number(id)];
  } else if (eventType === 'access_code') {
    const code = options.accessCode ?? '';
    if (!ACCESS_CODE_PATTERN.test(code)) {
      throw new Error('eway access_code needs --access-code, letters, digits, - or _');
    }
    field = ['AccessCode', code];
  } else {
    throw new Error(
      `unsupported eWAY event type ${String(eventType)}; one of: ${EWAY_TEST_EVENT_TYPES.join(', ')}`,
    );
  }
  if (options.format === 'json') {
    return {
      body: JSON.stringify({ [field[0]]: field[1] }),
      headers: { 'content-type': 'application/json' },
    };
  }
  return {
    body: new URLSearchParams({ [field[0]]: String(field[1]) }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  };
}
