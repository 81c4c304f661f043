import { createHmac, timingSafeEqual } from 'node:crypto';
import type { z } from 'zod';
import { fromGateway } from '../../money/gateway-amount.ts';
import { parseJsonPayload, parsePayload } from '../payload.ts';
import {
  type PaymentEvent,
  type PaymentEventType,
  type VerifiedDelivery,
  type WebhookHeaders,
  WebhookPayloadError,
  WebhookVerificationError,
  type WebhookVerifier,
} from '../types.ts';
import type { TransactionSource } from './client.ts';
import { fromInvoiceNumber, parseAnetJson } from './conventions.ts';
import { AUTHORIZENET_CURRENCIES } from './currencies.ts';
import { Notification, type TransactionDetails } from './schemas.ts';
import { stateOfStatus, type TransactionState } from './status.ts';

/**
 * The notification types billhook reconciles
 * (https://developer.authorize.net/api/reference/features/webhooks.html#Event_Types_and_Payloads):
 * charges (`authcapture`, `capture`, `priorAuthCapture`), refunds, voids, and the fraud filter's
 * held / approved / declined. Each only names a transaction; what happened is read from the API.
 */
export const AUTHORIZENET_EVENT_TYPES = [
  'net.authorize.payment.authcapture.created',
  'net.authorize.payment.capture.created',
  'net.authorize.payment.priorAuthCapture.created',
  'net.authorize.payment.refund.created',
  'net.authorize.payment.void.created',
  'net.authorize.payment.fraud.held',
  'net.authorize.payment.fraud.approved',
  'net.authorize.payment.fraud.declined',
] as const;

const RECONCILED = new Set<string>(AUTHORIZENET_EVENT_TYPES);

/** A transaction's state as a charge event; an unknown status moves no money (`charge.pending`). */
const CHARGE_EVENT: Readonly<Record<TransactionState, PaymentEventType>> = {
  succeeded: 'charge.succeeded',
  failed: 'charge.failed',
  pending: 'charge.pending',
  canceled: 'charge.canceled',
  unknown: 'charge.pending',
};

/** A refund transaction's state as a refund event; an unknown status moves no money (`refund.pending`). */
const REFUND_EVENT: Readonly<Record<TransactionState, PaymentEventType>> = {
  succeeded: 'refund.succeeded',
  failed: 'refund.failed',
  pending: 'refund.pending',
  canceled: 'refund.failed',
  unknown: 'refund.pending',
};

/** Header carrying `sha512=HEX` (Node lower-cases header names). */
const SIGNATURE_HEADER = 'x-anet-signature';
const SIGNATURE_FORMAT = /^sha512=([0-9a-f]{128})$/i;

const parse = <T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> =>
  parsePayload(schema, value, `Authorize.Net ${what}`);

function parseNotification(text: string): Notification {
  return parse(Notification, parseJsonPayload(text, parseAnetJson), 'notification');
}

/**
 * The transaction a notification of a reconciled event type names (`payload.id` of a `transaction`
 * entity); undefined for the event types billhook does not reconcile (customer profiles,
 * subscriptions …).
 * @throws WebhookPayloadError when a reconciled event type names no transaction
 */
function transactionIdOf(notification: Notification): string | undefined {
  if (!RECONCILED.has(notification.eventType)) return undefined;
  const { entityName, id } = notification.payload;
  if (entityName !== 'transaction' || !id) {
    throw new WebhookPayloadError(
      `${notification.eventType} names no transaction (entityName ${entityName})`,
    );
  }
  return id;
}

/**
 * The canonical event for a transaction as getTransactionDetails returns it. A `refundTransaction`
 * is a refund of its `refTransId`; anything else is a charge. Amounts are `authAmount` (decimal
 * major units; for a settled charge it equals `settleAmount`, which is 0 for declines and voids).
 * `occurredAt` is the notification's `eventDate`.
 * @throws WebhookPayloadError for an amount or date that cannot be read
 */
export function eventOfTransaction(
  notification: Notification,
  transaction: TransactionDetails,
  currency: string,
): PaymentEvent {
  const occurredAt = new Date(notification.eventDate);
  if (Number.isNaN(occurredAt.getTime())) {
    throw new WebhookPayloadError(`eventDate ${JSON.stringify(notification.eventDate)} is not a date`);
  }
  let amount: bigint;
  try {
    amount = fromGateway(AUTHORIZENET_CURRENCIES, transaction.authAmount, currency);
  } catch (error) {
    throw new WebhookPayloadError(`authAmount of ${transaction.transId}: ${(error as Error).message}`);
  }
  const state = stateOfStatus(transaction.transactionStatus);
  const failed = state === 'failed' || state === 'canceled';
  const failure = failed
    ? {
        failureCode: transaction.responseReasonCode ?? transaction.transactionStatus,
        failureMessage:
          transaction.responseReasonDescription ?? `transaction is ${transaction.transactionStatus}`,
      }
    : {};
  const common = {
    gateway: 'authorizenet' as const,
    gatewayEventId: notification.notificationId,
    amount,
    currency,
    occurredAt,
    raw: transaction,
  };
  if (transaction.transactionType === 'refundTransaction') {
    return {
      ...common,
      type: REFUND_EVENT[state],
      gatewayTransactionId: transaction.refTransId,
      gatewayRefundId: transaction.transId,
      reference: fromInvoiceNumber(transaction.order?.invoiceNumber, 'refund'),
      ...(failed ? { failureCode: failure.failureCode } : {}),
    };
  }
  return {
    ...common,
    type: CHARGE_EVENT[state],
    gatewayTransactionId: transaction.transId,
    reference: fromInvoiceNumber(transaction.order?.invoiceNumber, 'charge'),
    ...failure,
  };
}

/**
 * Authorize.Net's inbound side. A notification is signed, not trusted for content: `verify` checks
 * `X-ANET-Signature` on the raw bytes; `normalize` reads the named transaction back with
 * getTransactionDetails and reports only what that returns (PRODUCT.md §2).
 */
export class AuthorizeNetWebhook implements WebhookVerifier {
  readonly #keys: readonly Buffer[];
  readonly #source: TransactionSource;

  /**
   * @param signatureKeys the Signature Key(s) from Account → Settings → API Credentials & Keys; several
   * are accepted while a new key is rolled out
   * @param source the API client, for getTransactionDetails and the account currency
   */
  constructor(signatureKeys: readonly string[], source: TransactionSource) {
    if (signatureKeys.length === 0) throw new Error('AuthorizeNetWebhook needs a Signature Key');
    this.#keys = signatureKeys.map((key) => Buffer.from(key, 'utf8'));
    this.#source = source;
  }

  /**
   * `X-ANET-Signature: sha512=HEX` is the HMAC-SHA512 of the raw body keyed with the Signature Key
   * (https://developer.authorize.net/api/reference/features/webhooks.html). The key is used as its text (the 128 hex characters as ASCII bytes, not decoded),
   * as the verified fixture in test/fixtures/authorizenet shows; hex is compared case-insensitively
   * (as bytes) in constant time. There is no timestamp: replays are absorbed by deduplicating on
   * `notificationId`.
   * @throws WebhookVerificationError for a missing, malformed or non-matching signature
   * @throws WebhookPayloadError when the signed body is not a notification, or a reconciled event
   *   type names no transaction
   */
  async verify(rawBody: Buffer, headers: WebhookHeaders): Promise<VerifiedDelivery> {
    const header = headers[SIGNATURE_HEADER];
    const value = Array.isArray(header) ? header[0] : header;
    if (!value) throw new WebhookVerificationError('missing X-ANET-Signature header');
    const hex = SIGNATURE_FORMAT.exec(value.trim())?.[1];
    if (!hex) throw new WebhookVerificationError('X-ANET-Signature is not sha512=<128 hex digits>');
    const given = Buffer.from(hex, 'hex');
    const matches = this.#keys.some((key) =>
      timingSafeEqual(createHmac('sha512', key).update(rawBody).digest(), given),
    );
    if (!matches) {
      throw new WebhookVerificationError(
        'X-ANET-Signature does not match the body: check AUTHORIZENET_SIGNATURE_KEY and that the raw body is verified',
      );
    }
    const notification = parseNotification(rawBody.toString('utf8'));
    transactionIdOf(notification);
    return { eventId: notification.notificationId, eventType: notification.eventType };
  }

  /**
   * For a reconciled event type: getTransactionDetails of `payload.id`, then one canonical event by
   * the status table (status.ts). Other event types (customer profiles, subscriptions …) give [].
   * @throws WebhookPayloadError for a body that is not a notification or names no transaction
   * @throws Error when the gateway cannot be asked or does not know the transaction yet (the job retries)
   */
  async normalize(body: string): Promise<PaymentEvent[]> {
    const notification = parseNotification(body);
    const id = transactionIdOf(notification);
    if (!id) return [];
    const lookup = await this.#source.transactionDetails(id);
    if (lookup.kind !== 'found')
      throw new Error(`cannot read Authorize.Net transaction ${id}: ${lookup.message}`);
    const currency = await this.#source.accountCurrency();
    return [eventOfTransaction(notification, lookup.transaction, currency)];
  }
}
