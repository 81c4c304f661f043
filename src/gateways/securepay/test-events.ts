import { randomBytes, randomInt } from 'node:crypto';
import type { Config } from '../../config/env.ts';
import { toGateway } from '../../money/gateway-amount.ts';
import { DEFAULT_REQUEST_IP } from './conventions.ts';
import { SECUREPAY_CURRENCIES } from './currencies.ts';

/** Notification kinds `send-test-webhook securepay` can build (see SecurepayWebhook: hints only). */
export const SECUREPAY_TEST_EVENT_TYPES = ['payment.paid', 'payment.failed'] as const;
/** One of SECUREPAY_TEST_EVENT_TYPES: `payment.paid` or `payment.failed`. */
export type SecurepayTestEventType = (typeof SECUREPAY_TEST_EVENT_TYPES)[number];

/** What the hint is about. Amount in minor units (cents); currency in either case. */
export interface SecurepayTestEventOptions {
  /** Our `txn_…` reference, which billhook sends as SecurePay's `orderId`; random when omitted. */
  reference?: string;
  amount: number;
  currency: string;
  /** The SecurePay customerCode of the stored card; `anonymous` when omitted (as the sandbox says). */
  customerCode?: string;
}

/**
 * Builds a realistic SecurePay notification for `send-test-webhook` (the idea of `stripe trigger`).
 * SecurePay documents no card-payment webhook, so the body mirrors the fields of a payment answer
 * (`createdAt`, `amount` in cents, `currency`, `status`, `bankTransactionId`, `gatewayResponseCode`,
 * `gatewayResponseMessage`, `customerCode`, `merchantCode`, `ip`, `orderId`; FACTS.md) and is sent
 * unsigned: billhook stores it as an untrusted hint and marks it ignored.
 * @returns the JSON body and the headers to POST to /webhooks/securepay
 * @throws AmountNotRepresentable for an amount SecurePay would not take (`SECUREPAY_CURRENCIES`)
 * @throws Error when SECUREPAY_MERCHANT_CODE is not set (the server would not accept it either: its
 * SecurePay webhook half is enabled only with the API credentials)
 */
export function buildSecurepayTestDelivery(
  eventType: SecurepayTestEventType,
  options: SecurepayTestEventOptions,
  config: Config,
): { body: string; headers: Record<string, string> } {
  const merchantCode = config.SECUREPAY_MERCHANT_CODE;
  if (!merchantCode || !config.SECUREPAY_CLIENT_ID || !config.SECUREPAY_CLIENT_SECRET) {
    throw new Error(
      'SECUREPAY_CLIENT_ID, SECUREPAY_CLIENT_SECRET and SECUREPAY_MERCHANT_CODE must be set: the server would not accept the notification either',
    );
  }
  if (!(SECUREPAY_TEST_EVENT_TYPES as readonly string[]).includes(eventType)) {
    throw new Error(
      `unsupported SecurePay notification ${eventType}; one of: ${SECUREPAY_TEST_EVENT_TYPES.join(', ')}`,
    );
  }
  if (!Number.isSafeInteger(options.amount) || options.amount < 0) {
    throw new Error(`amount must be a non-negative integer in minor units, got ${options.amount}`);
  }
  const paid = eventType === 'payment.paid';
  const body = {
    createdAt: new Date().toISOString(),
    amount: toGateway(SECUREPAY_CURRENCIES, BigInt(options.amount), options.currency),
    currency: options.currency.toUpperCase(),
    status: paid ? 'paid' : 'failed',
    bankTransactionId: String(randomInt(100_000, 1_000_000)),
    gatewayResponseCode: paid ? '00' : '51',
    gatewayResponseMessage: paid ? 'Transaction successful' : 'Insufficient Funds',
    customerCode: options.customerCode ?? 'anonymous',
    merchantCode,
    ip: DEFAULT_REQUEST_IP,
    orderId: options.reference ?? `txn_test${randomBytes(8).toString('hex')}`,
  };
  return { body: JSON.stringify(body, null, 2), headers: { 'content-type': 'application/json' } };
}
