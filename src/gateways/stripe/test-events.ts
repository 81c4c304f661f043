import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { toGateway } from '../../money/gateway-amount.ts';
import { StripeClient, type StripeClientOptions } from './client.ts';
import { REFERENCE_KEY } from './conventions.ts';
import { STRIPE_CURRENCIES } from './currencies.ts';

/** Event types `send-test-webhook stripe` can build. */
export const STRIPE_TEST_EVENT_TYPES = [
  'payment_intent.succeeded',
  'payment_intent.payment_failed',
  'payment_intent.canceled',
  'charge.refund.updated',
  'charge.dispute.created',
  'charge.dispute.closed',
  'payout.paid',
] as const;
export type StripeTestEventType = (typeof STRIPE_TEST_EVENT_TYPES)[number];

/** What the test event is about. Amount in billhook minor units; currency lower or upper case. */
export interface StripeTestEventOptions {
  paymentIntent?: string;
  reference?: string;
  amount: number;
  currency: string;
  /** For refund and dispute events: the refund or dispute id. */
  objectId?: string;
  /** For charge.dispute.closed: `won`, `lost` or `warning_closed`. */
  disputeStatus?: string;
  /**
   * For payout events: the payout as Stripe (or the stub) answers `GET /v1/payouts/:id`
   * (`fetchStripePayout`), sent as the event's object with the status the event type says; absent, an
   * automatic, reconciled payout of `amount` and `currency` named `objectId` (or a new id).
   */
  payout?: Record<string, unknown>;
}

const randomId = (prefix: string) => `${prefix}_test${randomBytes(9).toString('hex')}`;

/**
 * An automatic, reconciled Stripe payout of `amount` (minor units, Stripe's own integer) in `currency`
 * (lower case) created at `created` (Unix seconds) and arriving then, `paid`: the fields billhook reads
 * (https://docs.stripe.com/api/payouts/object), as test events and the stub send it.
 */
export function stripePayoutObject(payout: {
  id: string;
  amount: number;
  currency: string;
  created: number;
}): { id: string } & Record<string, unknown> {
  return {
    ...payout,
    object: 'payout',
    arrival_date: payout.created,
    automatic: true,
    description: 'STRIPE PAYOUT',
    failure_code: null,
    failure_message: null,
    livemode: false,
    metadata: {},
    method: 'standard',
    reconciliation_status: 'completed',
    source_type: 'card',
    status: 'paid',
    type: 'bank_account',
  };
}

/**
 * Builds a realistic Stripe event (API version 2025-04-30.basil), shaped like the real test-mode
 * deliveries in test/fixtures/stripe, for `send-test-webhook` (the idea of `stripe trigger`); a
 * `payout.paid` carries the payout of `options.payout` when given. The
 * amount is written as Stripe writes it (`STRIPE_CURRENCIES`: 500 ISK is `50000`).
 * @throws AmountNotRepresentable for an amount Stripe could not have sent (150 minor units of MGA)
 */
export function buildStripeTestEvent(
  type: StripeTestEventType,
  options: StripeTestEventOptions,
): Record<string, unknown> {
  const created = Math.floor(Date.now() / 1000);
  const currency = options.currency.toLowerCase();
  const amount = toGateway(STRIPE_CURRENCIES, BigInt(options.amount), currency);
  const paymentIntent = options.paymentIntent ?? randomId('pi');
  const metadata = options.reference ? { [REFERENCE_KEY]: options.reference } : {};
  let object: Record<string, unknown>;
  if (type.startsWith('payment_intent.')) {
    const status = {
      'payment_intent.succeeded': 'succeeded',
      'payment_intent.payment_failed': 'requires_payment_method',
      'payment_intent.canceled': 'canceled',
    }[type as 'payment_intent.succeeded'];
    object = {
      id: paymentIntent,
      object: 'payment_intent',
      amount,
      amount_received: status === 'succeeded' ? amount : 0,
      currency,
      status,
      metadata,
      created,
      livemode: false,
      latest_charge: randomId('ch'),
      last_payment_error:
        type === 'payment_intent.payment_failed'
          ? {
              code: 'card_declined',
              decline_code: 'insufficient_funds',
              message: 'Your card has insufficient funds.',
              type: 'card_error',
            }
          : null,
    };
  } else if (type === 'charge.refund.updated') {
    object = {
      id: options.objectId ?? randomId('re'),
      object: 'refund',
      amount,
      currency,
      status: 'succeeded',
      payment_intent: paymentIntent,
      charge: randomId('ch'),
      metadata,
      reason: 'requested_by_customer',
      created,
    };
  } else if (type === 'payout.paid') {
    object = {
      ...stripePayoutObject({ id: options.objectId ?? randomId('po'), amount, currency, created }),
      ...options.payout,
      status: 'paid',
    };
  } else {
    object = {
      id: options.objectId ?? randomId('du'),
      object: 'dispute',
      amount,
      currency,
      status: type === 'charge.dispute.created' ? 'needs_response' : (options.disputeStatus ?? 'lost'),
      payment_intent: paymentIntent,
      charge: randomId('ch'),
      reason: 'fraudulent',
      created,
      livemode: false,
    };
  }
  return {
    id: randomId('evt'),
    object: 'event',
    api_version: '2025-04-30.basil',
    created,
    data: { object },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  };
}

/**
 * Payout `id` as Stripe answers `GET /v1/payouts/:id` (https://docs.stripe.com/api/payouts/retrieve)
 * at `options.apiBase` (the stub's payouts too), for a payout event about it.
 * @throws the stripe package's error when Stripe does not answer or has no such payout
 */
export async function fetchStripePayout(
  options: StripeClientOptions,
  id: string,
): Promise<Record<string, unknown>> {
  return new StripeClient(options).payout(id);
}

// One client for signing: constructing a Stripe client costs more than the signature itself.
const signer = new Stripe('sk_signing_only');

/**
 * The `Stripe-Signature` header Stripe would send for `payload`: `t=…,v1=HMAC-SHA256(t.payload)`,
 * computed by the stripe package's `generateTestHeaderString`.
 * @param timestamp seconds since the epoch (default now)
 */
export function signStripePayload(
  payload: string,
  secret: string,
  timestamp = Math.floor(Date.now() / 1000),
): string {
  return signer.webhooks.generateTestHeaderString({ payload, secret, timestamp });
}
