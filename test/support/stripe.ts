import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { signStripePayload } from '../../src/gateways/stripe/test-events.ts';
import { STRIPE_WEBHOOK_SECRET } from './app.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/stripe');

/** A real Stripe payload from test/fixtures/stripe (see SOURCES.md there), parsed. */
export function stripeFixture(name: string): any {
  return JSON.parse(readFileSync(path.join(FIXTURES, name), 'utf8'));
}

/** The raw bytes of a fixture, exactly as stored. */
export function stripeFixtureRaw(name: string): string {
  return readFileSync(path.join(FIXTURES, name), 'utf8');
}

/**
 * The real `payment_intent.succeeded` fixture made about one payment, created now, as JSON text:
 * event `eventId` for PaymentIntent `intentId` of `amount` minor units in `currency`, naming our
 * attempt `reference` in its metadata (and `customer` as the Stripe customer when given).
 */
export function paymentIntentSucceeded(p: {
  eventId: string;
  intentId: string;
  amount: number;
  currency: string;
  reference: string;
  customer?: string;
}): string {
  const template = stripeFixture('webhook.payment_intent.succeeded.json');
  const created = Math.floor(Date.now() / 1000);
  return JSON.stringify({
    ...template,
    id: p.eventId,
    created,
    data: {
      object: {
        ...template.data.object,
        id: p.intentId,
        amount: p.amount,
        amount_received: p.amount,
        currency: p.currency,
        ...(p.customer ? { customer: p.customer } : {}),
        metadata: { billhook_reference: p.reference },
        created,
      },
    },
  });
}

/**
 * A Stripe event of `type` around `object`: the envelope of the real `charge.refund.updated` event,
 * under a new event id.
 */
export function stripeEvent(type: string, object: object) {
  const event = stripeFixture('webhook.charge.refund.updated.json');
  return {
    ...event,
    id: `evt_${type.replaceAll('.', '_')}_${randomBytes(8).toString('hex')}`,
    type,
    data: { object },
  };
}

/**
 * The real refund of `webhook.charge.refund.updated.json`, made about one refund of a payment intent
 * (`intent`; `charge` its charge when given): `amount` in minor units of `currency` (default EUR),
 * naming our refund `reference` (`re_…`) in its metadata when given.
 */
export function refundObject(p: {
  id: string;
  amount: number;
  intent: string | null;
  status: string;
  reference?: string;
  charge?: string;
  currency?: string;
}) {
  const refund = stripeFixture('webhook.charge.refund.updated.json').data.object;
  return {
    ...refund,
    id: p.id,
    amount: p.amount,
    currency: p.currency ?? 'eur',
    status: p.status,
    payment_intent: p.intent,
    ...(p.charge ? { charge: p.charge } : {}),
    metadata: p.reference ? { billhook_reference: p.reference } : {},
  };
}

/**
 * POSTs a payload to /webhooks/stripe signed as Stripe would (or with `signature` as given), with
 * any extra request `headers` (e.g. X-Request-Id); `signal` aborts it (e.g. `AbortSignal.timeout`).
 * @returns the HTTP status, body text and response headers
 */
export async function deliverStripe(
  baseUrl: string,
  payload: string | object,
  options: {
    secret?: string;
    timestamp?: number;
    signature?: string | null;
    headers?: Record<string, string>;
    signal?: AbortSignal;
    /** A gateway account's id (`gwa_…`): posts to its route, `/webhooks/stripe/<account>`. */
    account?: string;
  } = {},
): Promise<{ status: number; body: string; headers: Headers }> {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const signature =
    options.signature === undefined
      ? signStripePayload(body, options.secret ?? STRIPE_WEBHOOK_SECRET, options.timestamp)
      : options.signature;
  const response = await fetch(`${baseUrl}/webhooks/stripe${options.account ? `/${options.account}` : ''}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(signature === null ? {} : { 'stripe-signature': signature }),
      ...options.headers,
    },
    body,
    signal: options.signal,
  });
  return { status: response.status, body: await response.text(), headers: response.headers };
}
