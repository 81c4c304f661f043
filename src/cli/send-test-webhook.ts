import type { Config } from '../config/env.ts';
import {
  buildStripeTestEvent,
  STRIPE_TEST_EVENT_TYPES,
  type StripeTestEventOptions,
  type StripeTestEventType,
  signStripePayload,
} from '../gateways/stripe/test-events.ts';

/** Where and what to send. */
export interface SendOptions extends StripeTestEventOptions {
  /** Base URL of the running billhook, e.g. `http://127.0.0.1:3000`. */
  url: string;
}

/** The server's answer to a test delivery. */
export interface SendResult {
  eventId: string;
  status: number;
  body: string;
}

/**
 * Builds a realistic event for `gateway`, signs it with the configured webhook secret and POSTs it to
 * `/webhooks/<gateway>` of the running server, as the gateway would.
 * @throws Error naming the supported gateways or event types, or when no secret is configured
 */
export async function sendTestWebhook(
  config: Config,
  gateway: string,
  eventType: string,
  options: SendOptions,
): Promise<SendResult> {
  if (gateway !== 'stripe') throw new Error(`send-test-webhook supports: stripe (got ${gateway})`);
  if (!(STRIPE_TEST_EVENT_TYPES as readonly string[]).includes(eventType)) {
    throw new Error(
      `unsupported Stripe event type ${eventType}; one of: ${STRIPE_TEST_EVENT_TYPES.join(', ')}`,
    );
  }
  const secret = config.STRIPE_WEBHOOK_SECRET[0];
  if (!secret)
    throw new Error('STRIPE_WEBHOOK_SECRET is not set: the server would not accept the event either');
  const event = buildStripeTestEvent(eventType as StripeTestEventType, options);
  const payload = JSON.stringify(event, null, 2);
  const response = await fetch(new URL('/webhooks/stripe', options.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': signStripePayload(payload, secret) },
    body: payload,
  });
  return { eventId: String(event.id), status: response.status, body: await response.text() };
}
