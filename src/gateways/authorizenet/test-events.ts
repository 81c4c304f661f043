import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { Config } from '../../config/env.ts';
import { toGateway } from '../../money/gateway-amount.ts';
import { AUTHORIZENET_CURRENCIES } from './currencies.ts';
import { AUTHORIZENET_EVENT_TYPES } from './webhook.ts';

/** Event types `send-test-webhook authorizenet` can build: the ones billhook reconciles. */
export const AUTHORIZENET_TEST_EVENT_TYPES = AUTHORIZENET_EVENT_TYPES;
export type AuthorizenetTestEventType = (typeof AUTHORIZENET_TEST_EVENT_TYPES)[number];

/** What the test notification is about. */
export interface AuthorizenetTestEventOptions {
  /** The transId the notification names (a charge, or for `refund.created` the refund). */
  transactionId: string;
  /** Amount in minor units of `currency` (shown as `authAmount`, decimal major units). */
  amount: number | bigint;
  currency: string;
}

/**
 * `X-ANET-Signature` as Authorize.Net computes it: `sha512=` + upper-case hex HMAC-SHA512 of the
 * body keyed with the Signature Key as text (verified on test/fixtures/authorizenet).
 */
export function signAuthorizenetPayload(body: string, signatureKey: string): string {
  return `sha512=${createHmac('sha512', signatureKey).update(body).digest('hex').toUpperCase()}`;
}

/** responseCode a notification of this type carries (1 approved, 4 held, 2 declined by review). */
function responseCodeOf(eventType: AuthorizenetTestEventType): number {
  if (eventType === 'net.authorize.payment.fraud.held') return 4;
  if (eventType === 'net.authorize.payment.fraud.declined') return 2;
  return 1;
}

/**
 * Builds a realistic notification, shaped like the documented ones in test/fixtures/authorizenet
 * (`notificationId`, `eventType`, `eventDate`, `webhookId`, `payload {responseCode, authCode,
 * avsResponse, authAmount, entityName, id}`, plus `fraudList` for fraud events), compact as
 * Authorize.Net sends it, signed with the first key of `AUTHORIZENET_SIGNATURE_KEY`.
 * billhook normalises it by calling getTransactionDetails for `transactionId`, so that transaction
 * must exist at `AUTHORIZENET_API_BASE` (the sandbox, or a stub answering it).
 * @returns the body and the headers to POST to `/webhooks/authorizenet`
 * @throws Error when no Signature Key is configured
 */
export function buildAuthorizenetTestDelivery(
  eventType: AuthorizenetTestEventType,
  options: AuthorizenetTestEventOptions,
  config: Pick<Config, 'AUTHORIZENET_SIGNATURE_KEY'>,
): { body: string; headers: Record<string, string> } {
  const key = config.AUTHORIZENET_SIGNATURE_KEY?.split(',')[0]?.trim();
  if (!key) {
    throw new Error(
      'AUTHORIZENET_SIGNATURE_KEY is not set: the server would not accept the notification either',
    );
  }
  // authAmount is a JSON number in decimal major units (45.00); written as text so no float rounds it.
  const authAmount = toGateway(AUTHORIZENET_CURRENCIES, BigInt(options.amount), options.currency);
  const fraud = eventType.startsWith('net.authorize.payment.fraud.')
    ? ',"fraudList":[{"fraudFilter":"AmountFilter","fraudAction":"authAndHold"}]'
    : '';
  const body =
    `{"notificationId":${JSON.stringify(randomUUID())},"eventType":${JSON.stringify(eventType)},` +
    `"eventDate":${JSON.stringify(new Date().toISOString())},"webhookId":${JSON.stringify(randomUUID())},` +
    `"payload":{"responseCode":${responseCodeOf(eventType)},"authCode":${JSON.stringify(randomBytes(3).toString('hex').toUpperCase())},` +
    `"avsResponse":"Y","authAmount":${authAmount}${fraud},"entityName":"transaction","id":${JSON.stringify(options.transactionId)}}}`;
  return {
    body,
    headers: { 'content-type': 'application/json', 'X-ANET-Signature': signAuthorizenetPayload(body, key) },
  };
}
