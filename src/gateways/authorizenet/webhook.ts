import { createHmac } from 'node:crypto';
import type { z } from 'zod';
import { constantTimeEqual } from '../../crypto.ts';
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
import { movedAmountOf, type TransactionSource } from './client.ts';
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

/**
 * billhook's currency (ISO 4217) of its charge or refund with this reference (`txn_…`, `re_…`), or
 * undefined when it has none.
 */
export type ReferenceCurrency = (reference: string) => Promise<string | undefined>;

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
 * Our reference (`txn_…`, `re_…`) of a transaction as getTransactionDetails returns it, from its
 * invoice number; undefined when it is not one of billhook's.
 */
function referenceOf(transaction: TransactionDetails): string | undefined {
  return fromInvoiceNumber(
    transaction.order?.invoiceNumber,
    transaction.transactionType === 'refundTransaction' ? 'refund' : 'charge',
  );
}

/**
 * The canonical event for a transaction as getTransactionDetails returns it. A `refundTransaction`
 * is a refund of its `refTransId`; anything else is a charge. The amount is what moved
 * (`movedAmountOf`: `settleAmount` once captured or settled, so a partial capture reports the
 * settled amount and reconciliation never books the authorized one; `authAmount` otherwise), decimal
 * major units of `currency`. `occurredAt` is the notification's `eventDate`.
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
  const moved = movedAmountOf(transaction);
  let amount: bigint;
  try {
    amount = fromGateway(AUTHORIZENET_CURRENCIES, moved, currency);
  } catch (error) {
    throw new WebhookPayloadError(`amount of ${transaction.transId}: ${(error as Error).message}`);
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
      reference: referenceOf(transaction),
      ...(failed ? { failureCode: failure.failureCode } : {}),
    };
  }
  return {
    ...common,
    type: CHARGE_EVENT[state],
    gatewayTransactionId: transaction.transId,
    reference: referenceOf(transaction),
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
  readonly #currencyOfReference: ReferenceCurrency | undefined;

  /**
   * @param signatureKeys the Signature Key(s) from Account → Settings → API Credentials & Keys; several
   * are accepted while a new key is rolled out
   * @param source the API client, for getTransactionDetails and the account currencies
   * @param currencyOfReference billhook's currency of its own charge or refund, for an account that
   * processes several currencies (see `normalize`)
   */
  constructor(
    signatureKeys: readonly string[],
    source: TransactionSource,
    currencyOfReference?: ReferenceCurrency,
  ) {
    if (signatureKeys.length === 0) throw new Error('AuthorizeNetWebhook needs a Signature Key');
    this.#keys = signatureKeys.map((key) => Buffer.from(key, 'utf8'));
    this.#source = source;
    this.#currencyOfReference = currencyOfReference;
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
      constantTimeEqual(given, createHmac('sha512', key).update(rawBody).digest()),
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
   * The details name no currency: an account processing one currency (getMerchantDetails) gives it;
   * for an account processing several, the currency is that of billhook's own charge or refund the
   * transaction's invoice number names.
   * @throws WebhookPayloadError for a body that is not a notification or names no transaction, and
   *   for a transaction of a several-currency account that is not billhook's (no currency can be known)
   * @throws Error when the gateway cannot be asked or does not know the transaction yet (the job retries)
   */
  async normalize(body: string): Promise<PaymentEvent[]> {
    const notification = parseNotification(body);
    const id = transactionIdOf(notification);
    if (!id) return [];
    const lookup = await this.#source.transactionDetails(id);
    if (lookup.kind !== 'found')
      throw new Error(`cannot read Authorize.Net transaction ${id}: ${lookup.message}`);
    const currency = await this.#currencyOf(lookup.transaction);
    return [eventOfTransaction(notification, lookup.transaction, currency)];
  }

  /** The currency of a transaction's amounts, as `normalize` says. */
  async #currencyOf(transaction: TransactionDetails): Promise<string> {
    const currencies = await this.#source.accountCurrencies();
    if (currencies.length === 1 && currencies[0]) return currencies[0];
    const reference = referenceOf(transaction);
    const ours = reference ? await this.#currencyOfReference?.(reference) : undefined;
    if (ours && currencies.includes(ours.toUpperCase())) return ours.toUpperCase();
    throw new WebhookPayloadError(
      `Authorize.Net transaction ${transaction.transId}: the account processes ${currencies.join(', ')} and ` +
        `transaction details name no currency; ${reference ? `billhook has no ${reference} in one of them` : 'it is not one of billhook’s charges or refunds'}`,
    );
  }
}
