import { createHmac, randomBytes } from 'node:crypto';

/** The header a delivery's signature is sent in. */
export const SIGNATURE_HEADER = 'Billhook-Signature';

/**
 * A new endpoint secret: `whsec_` and 32 random bytes in hex (Stripe's endpoint secrets start
 * `whsec_`: https://docs.stripe.com/webhooks#verify-official-libraries).
 */
export function newEndpointSecret(): string {
  return `whsec_${randomBytes(32).toString('hex')}`;
}

/**
 * The signature header's value of `body` sent at `timestamp` (Unix seconds), Stripe's scheme
 * (https://docs.stripe.com/webhooks#verify-manually): `t=<timestamp>,v1=<hex HMAC-SHA256 of
 * "<timestamp>.<body>" keyed with the whole secret string>`, so a receiver verifies it with
 * stripe-node's `Stripe.webhooks.constructEvent(body, header, secret)`.
 */
export function signatureHeader(body: string, secret: string, timestamp: number): string {
  const v1 = createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${v1}`;
}
