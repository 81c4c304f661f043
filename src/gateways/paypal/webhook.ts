import { verify as verifySignature } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { z } from 'zod';
import { abs } from '../../money/amount.ts';
import { parseJsonPayload, parsePayload } from '../payload.ts';
import type { SettlementLine } from '../settlement.ts';
import {
  type PaymentEvent,
  type PaymentEventType,
  type VerifiedDelivery,
  type WebhookHeaders,
  WebhookPayloadError,
  WebhookVerificationError,
  type WebhookVerifier,
} from '../types.ts';
import { checkCertUrl, PaypalCertificates } from './certificates.ts';
import type { PaypalClient } from './client.ts';
import {
  Capture,
  type CaptureState,
  Dispute,
  Envelope,
  linkedId,
  type Money,
  minorUnits,
  Refund,
} from './schemas.ts';
import { captureLine, PaypalSettlementError, refundLine } from './settlement.ts';
import {
  CAPTURE_EVENTS,
  DISPUTE_EVENT_TYPES,
  disputeEventType,
  meaningOf,
  REFUND_EVENT,
  REFUND_STATUS,
} from './status.ts';

/** The only signature algorithm PayPal uses for webhooks (`PAYPAL-AUTH-ALGO`). */
export const PAYPAL_AUTH_ALGO = 'SHA256withRSA';

/**
 * The message PayPal signs for a delivery: `transmission_id|transmission_time|webhook_id|crc32`,
 * the CRC-32 of the raw body as an unsigned decimal
 * (https://developer.paypal.com/api/rest/webhooks/rest/#link-selfverificationmethod).
 */
export function signedMessage(
  transmissionId: string,
  transmissionTime: string,
  webhookId: string,
  rawBody: Buffer | string,
): string {
  return `${transmissionId}|${transmissionTime}|${webhookId}|${crc32(rawBody) >>> 0}`;
}

/** Settings of the PayPal webhook verifier. */
export interface PaypalWebhookOptions {
  /** The id of this webhook in the PayPal developer dashboard (PAYPAL_WEBHOOK_ID); part of the signed message. */
  webhookId: string;
  /** Timeout of a certificate fetch in milliseconds. */
  timeoutMs: number;
  /** The clock certificate validity is checked against (tests pin it). Default: now. */
  now?: () => Date;
  /** Test mode only: the PEM of PAYPAL_TEST_CERT_FILE, trusted for the test certificate URL. */
  testCertificatePem?: string;
  /**
   * PAYPAL_WEBHOOK_VERIFICATION=api: ask PayPal (verify-webhook-signature) instead of checking the
   * signature offline; the client's credentials authenticate the call.
   */
  verifyByApi?: Pick<PaypalClient, 'verifyWebhookSignature'>;
}

function header(headers: WebhookHeaders, name: string): string {
  const value = headers[name];
  if (typeof value !== 'string' || value === '') {
    throw new WebhookVerificationError(`missing ${name.toUpperCase()} header`);
  }
  return value;
}

const parse = <T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> =>
  parsePayload(schema, value, `PayPal ${what}`);

/** Minor units of a PayPal money object, or WebhookPayloadError for an amount billhook cannot book. */
function amountOf(money: Money, what: string): { amount: bigint; currency: string } {
  try {
    return minorUnits(money);
  } catch (error) {
    throw new WebhookPayloadError(`${what}: ${(error as Error).message}`);
  }
}

/** The processor's decline details as one message, e.g. `capture DECLINED (response_code 5120, avs_code G)`. */
export function declineMessage(capture: CaptureState): string {
  const details = Object.entries(capture.processor_response ?? {})
    .filter(([, value]) => typeof value === 'string' && value !== '')
    .map(([key, value]) => `${key} ${value}`);
  const reason = capture.status_details?.reason;
  return [
    `capture ${capture.id} ${capture.status}`,
    reason ? ` (${reason})` : '',
    details.length > 0 ? `: ${details.join(', ')}` : '',
  ].join('');
}

/** The decline code of a capture: the processor's response code, else the status reason, else the status. */
export function declineCode(capture: CaptureState): string {
  return capture.processor_response?.response_code ?? capture.status_details?.reason ?? capture.status;
}

/**
 * A dispute in PayPal's shape that billhook cannot match to one payment (it names several disputed
 * transactions, or none). It is accepted on receipt and stored; the worker then raises it as an
 * exception for a person, since a 400 would only make PayPal send it again.
 */
class UnmatchedDispute extends WebhookPayloadError {}

/**
 * The `settlement.line` event of a capture, refund or reversal whose breakdown translates exactly
 * (settlement.ts), after the event's own; none when there is no line.
 * @throws WebhookPayloadError when the breakdown is malformed or does not add up
 */
function settlementEvents(
  base: Pick<PaymentEvent, 'gateway' | 'gatewayEventId' | 'occurredAt' | 'raw'>,
  line: () => SettlementLine | undefined,
): PaymentEvent[] {
  let settlementLine: SettlementLine | undefined;
  try {
    settlementLine = line();
  } catch (error) {
    if (error instanceof PaypalSettlementError) throw new WebhookPayloadError(error.message);
    throw error;
  }
  if (!settlementLine) return [];
  return [
    {
      ...base,
      type: 'settlement.line',
      gatewayTransactionId: settlementLine.gatewayTransactionId,
      gatewayRefundId: settlementLine.gatewayRefundId,
      gatewayDisputeId: settlementLine.gatewayDisputeId,
      reference: settlementLine.reference,
      amount: abs(settlementLine.gross),
      currency: settlementLine.currency,
      settlementLine,
    },
  ];
}

/**
 * The canonical events of a PayPal event (see `PaypalWebhook.normalize`).
 * @throws WebhookPayloadError when a known event type has an unexpected shape or amount
 */
function eventsOf(event: z.output<typeof Envelope>): PaymentEvent[] {
  const base = {
    gateway: 'paypal' as const,
    gatewayEventId: event.id,
    occurredAt: new Date(event.create_time),
    raw: event.resource,
  };
  const chargeType = CAPTURE_EVENTS.get(event.event_type);
  if (chargeType) {
    const capture = parse(Capture, event.resource, 'capture');
    const failed = chargeType === 'charge.failed';
    return [
      {
        ...base,
        type: chargeType,
        gatewayTransactionId: capture.id,
        reference: capture.custom_id || capture.invoice_id || undefined,
        ...amountOf(capture.amount, `capture ${capture.id}`),
        failureCode: failed ? declineCode(capture) : undefined,
        failureMessage: failed ? declineMessage(capture) : undefined,
        reason: chargeType === 'charge.pending' ? capture.status_details?.reason : undefined,
      },
      ...(chargeType === 'charge.succeeded'
        ? settlementEvents(base, () => captureLine(event.resource, base.occurredAt))
        : []),
    ];
  }
  if (event.event_type === 'PAYMENT.CAPTURE.REFUNDED' || event.event_type === 'PAYMENT.CAPTURE.REVERSED') {
    const refund = parse(Refund, event.resource, 'refund');
    if (!refund.amount) throw new WebhookPayloadError(`PayPal refund ${refund.id} has no amount`);
    const captureId = linkedId(refund.links, 'up', 'captures');
    const money = amountOf(refund.amount, `refund ${refund.id}`);
    if (event.event_type === 'PAYMENT.CAPTURE.REVERSED') {
      if (!captureId) {
        throw new WebhookPayloadError(`PayPal reversal ${refund.id} has no up link to its capture`);
      }
      return [
        {
          ...base,
          type: 'dispute.lost',
          gatewayTransactionId: captureId,
          gatewayDisputeId: captureId,
          ...money,
          reason: refund.status_details?.reason ?? 'PAYMENT_REVERSED',
          reversal: true,
        },
        ...settlementEvents(base, () => refundLine(event.resource, 'dispute', base.occurredAt)),
      ];
    }
    const type: PaymentEventType = REFUND_EVENT[meaningOf(REFUND_STATUS, refund.status)];
    return [
      {
        ...base,
        type,
        gatewayTransactionId: captureId,
        gatewayRefundId: refund.id,
        reference: refund.custom_id || undefined,
        ...money,
        failureCode: type === 'refund.failed' ? (refund.status_details?.reason ?? refund.status) : undefined,
        reason: refund.note_to_payer,
      },
      ...(type === 'refund.succeeded'
        ? settlementEvents(base, () => refundLine(event.resource, 'refund', base.occurredAt))
        : []),
    ];
  }
  if (DISPUTE_EVENT_TYPES.has(event.event_type)) {
    const dispute = parse(Dispute, event.resource, 'dispute');
    const captures = dispute.disputed_transactions.map((t) => t.seller_transaction_id);
    const [captureId] = captures;
    if (captures.length !== 1 || !captureId) {
      throw new UnmatchedDispute(
        `PayPal dispute ${dispute.dispute_id} names ${captures.length} disputed transactions: only a dispute of exactly one capture can be matched`,
      );
    }
    const type = disputeEventType(dispute.status, dispute.dispute_outcome?.outcome_code);
    const refunded = dispute.dispute_outcome?.amount_refunded;
    const money =
      type === 'dispute.lost' && refunded
        ? amountOf(refunded, `dispute ${dispute.dispute_id}`)
        : amountOf(dispute.dispute_amount, `dispute ${dispute.dispute_id}`);
    return [
      {
        ...base,
        type,
        gatewayTransactionId: captureId,
        gatewayDisputeId: captureId,
        ...money,
        reason: dispute.reason,
        // A chargeback (the buyer went to their card issuer) is paid by PayPal's reversal, not a refund.
        ...(dispute.dispute_channel === 'EXTERNAL' ? { reversal: true as const } : {}),
      },
    ];
  }
  return [];
}

/**
 * The event id and type of a verified event, once the whole event has been checked as `normalize`
 * reads it (PRODUCT.md §2: a body not of the gateway's shape is answered 400 and not stored).
 */
function delivery(json: unknown): VerifiedDelivery {
  const event = parse(Envelope, json, 'event');
  try {
    eventsOf(event);
  } catch (error) {
    if (!(error instanceof UnmatchedDispute)) throw error;
  }
  return { eventId: event.id, eventType: event.event_type };
}

/**
 * PayPal's inbound side: offline verification of the delivery's SHA256withRSA signature against
 * PayPal's certificate, then normalisation of the capture, refund, reversal and dispute events.
 */
export class PaypalWebhook implements WebhookVerifier {
  readonly #webhookId: string;
  readonly #certificates: PaypalCertificates;
  readonly #api: PaypalWebhookOptions['verifyByApi'];

  /** @throws Error without a webhook id (the signed message needs it) */
  constructor(options: PaypalWebhookOptions) {
    if (!options.webhookId) throw new Error('PaypalWebhook needs the webhook id (PAYPAL_WEBHOOK_ID)');
    this.#webhookId = options.webhookId;
    this.#api = options.verifyByApi;
    this.#certificates = new PaypalCertificates({
      timeoutMs: options.timeoutMs,
      now: options.now ?? (() => new Date()),
      testCertificatePem: options.testCertificatePem,
    });
  }

  /**
   * Verifies a delivery offline (https://developer.paypal.com/api/rest/webhooks/rest/#link-selfverificationmethod):
   * reads PAYPAL-TRANSMISSION-ID, -TIME, -SIG (base64), PAYPAL-CERT-URL and PAYPAL-AUTH-ALGO (header
   * names arrive lower-cased); requires SHA256withRSA; checks the certificate URL before fetching
   * anything; then verifies the signature over `signedMessage(…)` with the public key of the (cached,
   * checked) certificate. The event id for dedupe is the body's `id` (`WH-…`).
   * No timestamp tolerance is applied: PayPal documents none, and a replayed delivery carries the
   * same event id, which the inbox stores once.
   * @throws WebhookVerificationError for a missing header, another algorithm, a foreign certificate
   * URL, an untrusted certificate or a signature that does not match
   * @throws WebhookPayloadError when the signed body is not a PayPal event, or a known event type
   *   has an unexpected shape or amount (see `normalize`; a dispute of several captures is accepted)
   * @throws GatewayUnreachable when PayPal's certificate could not be fetched (PayPal retries)
   *
   * With `verifyByApi` (PAYPAL_WEBHOOK_VERIFICATION=api) the same headers are checked (algorithm,
   * certificate URL on a PayPal host), then PayPal's verify-webhook-signature call decides instead of
   * the certificate: FAILURE → WebhookVerificationError; no answer → GatewayUnreachable (503, PayPal
   * retries). The event travels as parsed JSON, as PayPal's API takes it.
   */
  async verify(rawBody: Buffer, headers: WebhookHeaders): Promise<VerifiedDelivery> {
    const transmissionId = header(headers, 'paypal-transmission-id');
    const transmissionTime = header(headers, 'paypal-transmission-time');
    const signature = header(headers, 'paypal-transmission-sig');
    const certUrlHeader = header(headers, 'paypal-cert-url');
    const certUrl = checkCertUrl(certUrlHeader);
    const algorithm = header(headers, 'paypal-auth-algo');
    if (algorithm !== PAYPAL_AUTH_ALGO) {
      throw new WebhookVerificationError(`PAYPAL-AUTH-ALGO ${algorithm} is not ${PAYPAL_AUTH_ALGO}`);
    }
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) {
      throw new WebhookVerificationError('PAYPAL-TRANSMISSION-SIG is not base64');
    }
    if (this.#api) {
      const event = parseJsonPayload(rawBody.toString('utf8'));
      const genuine = await this.#api.verifyWebhookSignature({
        auth_algo: algorithm,
        cert_url: certUrlHeader,
        transmission_id: transmissionId,
        transmission_sig: signature,
        transmission_time: transmissionTime,
        webhook_id: this.#webhookId,
        webhook_event: event,
      });
      if (!genuine) {
        throw new WebhookVerificationError(
          'PayPal answered verification_status FAILURE: the delivery is not signed for PAYPAL_WEBHOOK_ID',
        );
      }
      return delivery(event);
    }
    const key = await this.#certificates.publicKeyFor(certUrl);
    const message = signedMessage(transmissionId, transmissionTime, this.#webhookId, rawBody);
    if (!verifySignature('sha256', Buffer.from(message), key, Buffer.from(signature, 'base64'))) {
      throw new WebhookVerificationError(
        'PayPal signature verification failed: the signature does not match the raw body, transmission id and time and PAYPAL_WEBHOOK_ID (is it the id of this webhook, and is the body passed unparsed?)',
      );
    }
    return delivery(parseJsonPayload(rawBody.toString('utf8')));
  }

  /**
   * Maps PayPal events to canonical events (tables in status.ts). Amounts are PayPal's decimal
   * strings converted exactly to minor units; `occurredAt` is the event's `create_time`.
   * - `PAYMENT.CAPTURE.COMPLETED` / `DECLINED` / `DENIED` / `PENDING` → charge.succeeded / failed /
   *   failed / pending: gatewayTransactionId = the capture id, reference = its `custom_id` (else
   *   `invoice_id`), which our charge sets to our transaction id;
   * - `PAYMENT.CAPTURE.REFUNDED` → refund.succeeded (or failed / pending by the refund's status): the
   *   resource is the refund, the captured payment is its `up` link, the amount is this refund's,
   *   reference = its `custom_id` (our `re_…` when billhook made it);
   * - `PAYMENT.CAPTURE.REVERSED` → dispute.lost: PayPal took the money back (a chargeback or a
   *   PayPal-initiated reversal), which books as a chargeback loss, not as a refund we chose;
   * - `CUSTOMER.DISPUTE.CREATED` / `UPDATED` / `RESOLVED` → dispute.opened, or won / lost by the
   *   resolved dispute's outcome.
   * Settlement: a completed capture, a completed refund and a reversal that carry PayPal's fee
   * breakdown (`seller_receivable_breakdown` / `seller_payable_breakdown`) additionally give a
   * `settlement.line` event after their own, carrying the line of settlement.ts (`captureLine`,
   * `refundLine`); `amount` is the line's gross without its sign. None when the breakdown is absent
   * or the fee is reported only before a currency conversion (Transaction Search then reports it).
   * Disputes and reversals are keyed by the disputed capture (gatewayDisputeId = capture id), so a
   * reversal and the dispute it belongs to, or a dispute PayPal re-opened on the same transaction
   * (outcome `NONE`), move the money once. A claim accepted for the buyer is reported twice, as the
   * resolution and as a refund of the capture: the ledger books that money once, as the refund
   * (payments/disputes.ts; capabilities.ts `lostDisputePaidAsRefund`). A reversal, and a dispute
   * whose `dispute_channel` is `EXTERNAL` (a card chargeback), are `reversal`: no refund carries
   * their money, so a refund of the same amount before or after stays a refund of its own.
   * @throws WebhookPayloadError when a known event type has an unexpected shape or amount
   */
  async normalize(body: string): Promise<PaymentEvent[]> {
    return eventsOf(parse(Envelope, parseJsonPayload(body), 'event'));
  }
}
