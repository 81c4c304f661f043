import { randomInt, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../../config/env.ts';
import { toGateway } from '../../money/gateway-amount.ts';
import { TEST_CERT_URL } from './certificates.ts';
import { PAYPAL_CURRENCIES } from './currencies.ts';
import { PAYPAL_AUTH_ALGO, signedMessage } from './webhook.ts';

/** Event types `send-test-webhook paypal` can build. */
export const PAYPAL_TEST_EVENT_TYPES = [
  'PAYMENT.CAPTURE.COMPLETED',
  'PAYMENT.CAPTURE.DECLINED',
  'PAYMENT.CAPTURE.DENIED',
  'PAYMENT.CAPTURE.PENDING',
  'PAYMENT.CAPTURE.REFUNDED',
  'PAYMENT.CAPTURE.REVERSED',
  'CUSTOMER.DISPUTE.CREATED',
  'CUSTOMER.DISPUTE.UPDATED',
  'CUSTOMER.DISPUTE.RESOLVED',
] as const;
/** One of `PAYPAL_TEST_EVENT_TYPES`. */
export type PaypalTestEventType = (typeof PAYPAL_TEST_EVENT_TYPES)[number];

/** What the test event is about. */
export interface PaypalTestEventOptions {
  /** The capture (PayPal transaction) the event is about; default a new random id. */
  captureId?: string;
  /**
   * Our id carried back: for capture events the capture's `custom_id` / `invoice_id` (a `txn_…`),
   * for a refund event the refund's `custom_id` (a `re_…`).
   */
  reference?: string;
  /** Amount in minor units of `currency` (the capture's, the refund's or the dispute's). */
  amount: number | bigint;
  /** ISO 4217 code, any case. */
  currency: string;
  /** For refund, reversal and dispute events: the refund or dispute id; default random. */
  objectId?: string;
  /** For CUSTOMER.DISPUTE.RESOLVED: the `dispute_outcome.outcome_code` (default RESOLVED_SELLER_FAVOUR). */
  disputeOutcome?: string;
  /** PEM file of the private key to sign with; default the PAYPAL_TEST_KEY_FILE environment variable. */
  keyFile?: string;
  /** The transmission time (default now). */
  now?: Date;
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const paypalId = (length = 17) =>
  Array.from({ length }, () => ALPHANUMERIC[randomInt(ALPHANUMERIC.length)]).join('');
const link = (href: string, rel: string, method = 'GET') => ({ href, rel, method });
const API = 'https://api.sandbox.paypal.com';

/**
 * The resource of a test event, shaped like the simulator-signed deliveries in
 * test/fixtures/paypal (captures and refunds, resource_version 2.0) and PayPal's documented dispute
 * sample (https://developer.paypal.com/docs/api/customer-disputes/v1/).
 */
function resourceFor(
  type: PaypalTestEventType,
  options: PaypalTestEventOptions,
  captureId: string,
  time: string,
): { resourceType: string; summary: string; resource: Record<string, unknown> } {
  const currency = options.currency.toUpperCase();
  const money = {
    currency_code: currency,
    value: toGateway(PAYPAL_CURRENCIES, BigInt(options.amount), currency),
  };
  if (type.startsWith('PAYMENT.CAPTURE.') && !type.endsWith('REFUNDED') && !type.endsWith('REVERSED')) {
    const status =
      type === 'PAYMENT.CAPTURE.COMPLETED' ? 'COMPLETED' : type.endsWith('PENDING') ? 'PENDING' : 'DECLINED';
    const orderId = paypalId();
    return {
      resourceType: 'capture',
      summary: `Payment ${status.toLowerCase()} for ${money.value} ${currency}`,
      resource: {
        id: captureId,
        amount: money,
        final_capture: true,
        seller_protection: {
          status: 'ELIGIBLE',
          dispute_categories: ['ITEM_NOT_RECEIVED', 'UNAUTHORIZED_TRANSACTION'],
        },
        disbursement_mode: 'INSTANT',
        ...(status === 'COMPLETED'
          ? { seller_receivable_breakdown: { gross_amount: money, net_amount: money } }
          : {}),
        ...(options.reference ? { custom_id: options.reference, invoice_id: options.reference } : {}),
        status,
        ...(status === 'PENDING' ? { status_details: { reason: 'PENDING_REVIEW' } } : {}),
        supplementary_data: { related_ids: { order_id: orderId } },
        create_time: time,
        update_time: time,
        links: [
          link(`${API}/v2/payments/captures/${captureId}`, 'self'),
          link(`${API}/v2/payments/captures/${captureId}/refund`, 'refund', 'POST'),
          link(`${API}/v2/checkout/orders/${orderId}`, 'up'),
        ],
      },
    };
  }
  if (type === 'PAYMENT.CAPTURE.REFUNDED' || type === 'PAYMENT.CAPTURE.REVERSED') {
    const refundId = options.objectId ?? paypalId();
    const reversed = type === 'PAYMENT.CAPTURE.REVERSED';
    return {
      resourceType: 'refund',
      summary: `A ${money.value} ${currency} capture payment was ${reversed ? 'reversed' : 'refunded'}`,
      resource: {
        id: refundId,
        amount: money,
        ...(reversed ? { note_to_payer: 'Payment reversed' } : {}),
        ...(options.reference && !reversed ? { custom_id: options.reference } : {}),
        seller_payable_breakdown: {
          gross_amount: money,
          paypal_fee: { currency_code: currency, value: toGateway(PAYPAL_CURRENCIES, 0n, currency) },
          net_amount: money,
          total_refunded_amount: money,
        },
        status: 'COMPLETED',
        create_time: time,
        update_time: time,
        links: [
          link(`${API}/v2/payments/refunds/${refundId}`, 'self'),
          link(`${API}/v2/payments/captures/${captureId}`, 'up'),
        ],
      },
    };
  }
  const disputeId = options.objectId ?? `PP-D-${randomInt(10_000, 99_999)}`;
  const status = { 'CUSTOMER.DISPUTE.CREATED': 'OPEN', 'CUSTOMER.DISPUTE.UPDATED': 'UNDER_REVIEW' }[
    type as 'CUSTOMER.DISPUTE.CREATED'
  ];
  return {
    resourceType: 'dispute',
    summary: `A dispute ${status ? 'was updated' : 'was resolved'} with Case # ${disputeId}`,
    resource: {
      dispute_id: disputeId,
      create_time: time,
      update_time: time,
      disputed_transactions: [
        {
          seller_transaction_id: captureId,
          seller: { merchant_id: 'RD465XN5VS364', name: 'Test Store' },
          items: [],
          seller_protection_eligible: true,
        },
      ],
      reason: 'MERCHANDISE_OR_SERVICE_NOT_RECEIVED',
      status: status ?? 'RESOLVED',
      dispute_amount: money,
      ...(status
        ? {}
        : {
            dispute_outcome: {
              outcome_code: options.disputeOutcome ?? 'RESOLVED_SELLER_FAVOUR',
              ...(options.disputeOutcome === 'RESOLVED_BUYER_FAVOUR' ? { amount_refunded: money } : {}),
            },
          }),
      dispute_life_cycle_stage: 'CHARGEBACK',
      dispute_channel: 'INTERNAL',
      links: [link(`${API}/v1/customer/disputes/${disputeId}`, 'self')],
    },
  };
}

/** What signs a delivery as PayPal would: the test private key and the webhook id. */
export interface PaypalSigning {
  /** PEM of the RSA private key whose certificate the server trusts (PAYPAL_TEST_CERT_FILE). */
  privateKeyPem: string;
  /** The webhook id in the signed message (the server's PAYPAL_WEBHOOK_ID). */
  webhookId: string;
  /** The PAYPAL-CERT-URL to send; default the test certificate URL. */
  certUrl?: string;
  transmissionId?: string;
  /** Default now, to the second, e.g. `2024-08-02T19:33:35Z`. */
  transmissionTime?: string;
}

/**
 * The headers PayPal sends with a delivery of `body` (lower-case names): PAYPAL-TRANSMISSION-ID,
 * -TIME, -SIG (base64 SHA256withRSA over `transmission_id|transmission_time|webhook_id|crc32(body)`),
 * PAYPAL-CERT-URL, PAYPAL-AUTH-ALGO, PAYPAL-AUTH-VERSION.
 */
export function signPaypalDelivery(body: string, signing: PaypalSigning): Record<string, string> {
  const transmissionId = signing.transmissionId ?? randomUUID();
  const transmissionTime = signing.transmissionTime ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const message = signedMessage(transmissionId, transmissionTime, signing.webhookId, body);
  return {
    'content-type': 'application/json',
    'paypal-transmission-id': transmissionId,
    'paypal-transmission-time': transmissionTime,
    'paypal-transmission-sig': sign('sha256', Buffer.from(message), signing.privateKeyPem).toString('base64'),
    'paypal-cert-url': signing.certUrl ?? TEST_CERT_URL,
    'paypal-auth-algo': PAYPAL_AUTH_ALGO,
    'paypal-auth-version': 'v2',
  };
}

/**
 * Builds a realistic PayPal webhook delivery for `send-test-webhook paypal <event-type>`: an event
 * shaped like the simulator-signed deliveries in test/fixtures/paypal, signed with the test private
 * key (`options.keyFile`, else the PAYPAL_TEST_KEY_FILE environment variable) and the configured
 * PAYPAL_WEBHOOK_ID, pointing at the test certificate URL. A server accepts it only when started
 * with PAYPAL_TEST_CERT_FILE naming the matching certificate
 * (test/fixtures/paypal/test-signing/billhook-test-only.{key,cert}.pem).
 * @returns the body (JSON text) and the headers (lower-case names) to POST to `/webhooks/paypal`
 * @throws Error when PAYPAL_WEBHOOK_ID or the key file is missing, or the event type is not supported
 */
export function buildPaypalTestDelivery(
  eventType: string,
  options: PaypalTestEventOptions,
  config: Pick<Config, 'PAYPAL_WEBHOOK_ID'>,
): { body: string; headers: Record<string, string> } {
  if (!(PAYPAL_TEST_EVENT_TYPES as readonly string[]).includes(eventType)) {
    throw new Error(
      `unsupported PayPal event type ${eventType}; one of: ${PAYPAL_TEST_EVENT_TYPES.join(', ')}`,
    );
  }
  const webhookId = config.PAYPAL_WEBHOOK_ID;
  if (!webhookId)
    throw new Error('PAYPAL_WEBHOOK_ID is not set: the server would not accept the event either');
  const keyFile = options.keyFile ?? process.env.PAYPAL_TEST_KEY_FILE;
  if (!keyFile) {
    throw new Error(
      'PAYPAL_TEST_KEY_FILE is not set: it names the test private key (test/fixtures/paypal/test-signing/billhook-test-only.key.pem) matching PAYPAL_TEST_CERT_FILE',
    );
  }
  const now = options.now ?? new Date();
  const time = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const type = eventType as PaypalTestEventType;
  const { resourceType, summary, resource } = resourceFor(
    type,
    options,
    options.captureId ?? paypalId(),
    time,
  );
  const id = `WH-${paypalId()}-${paypalId()}`;
  const event = {
    id,
    event_version: '1.0',
    create_time: now.toISOString(),
    resource_type: resourceType,
    resource_version: resourceType === 'dispute' ? undefined : '2.0',
    event_type: type,
    summary,
    resource,
    links: [
      link(`${API}/v1/notifications/webhooks-events/${id}`, 'self'),
      link(`${API}/v1/notifications/webhooks-events/${id}/resend`, 'resend', 'POST'),
    ],
  };
  const body = JSON.stringify(event);
  const headers = signPaypalDelivery(body, {
    privateKeyPem: readFileSync(keyFile, 'utf8'),
    webhookId,
    transmissionTime: time,
  });
  return { body, headers };
}
