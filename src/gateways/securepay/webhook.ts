import { createHash } from 'node:crypto';
import { parseJsonPayload, parsePayload } from '../payload.ts';
import type { PaymentEvent, VerifiedDelivery, WebhookHeaders, WebhookVerifier } from '../types.ts';
import { Hint } from './schemas.ts';

function parseHint(text: string): Hint {
  return parsePayload(Hint, parseJsonPayload(text), 'SecurePay notification');
}

/**
 * The inbox event type of a hint: `payment.<status>` when it names a plain status word (e.g.
 * `payment.paid`), else `payment.notification`.
 */
function eventTypeOf(hint: Hint): string {
  const status = hint.status?.trim().toLowerCase();
  return status && /^[a-z][a-z_]{0,31}$/.test(status) ? `payment.${status}` : 'payment.notification';
}

/**
 * SecurePay's inbound side. SecurePay documents no webhook for card payments and no signature
 * scheme (FACTS.md: none in any public integration; 3DS is an API flow; the HMAC
 * `X-SecurePay-Signature` check of one public module has no documentary basis and is not copied).
 * So `/webhooks/securepay` accepts a notification only as an untrusted hint: it is stored for the
 * record and marked ignored, and SecurePay outcomes come only from the API's own answers (the
 * payment, the refund, and the idempotent repeat of `SecurepayClient.fetchTransaction`).
 */
export class SecurepayWebhook implements WebhookVerifier {
  readonly unsigned = true;

  /**
   * A shape check, not a signature check (there is none to make): the body must be a JSON object
   * with a string `orderId` (1–128 characters of letters, digits, `_ . : -`). Headers are not read.
   * The event id is `<orderId>:<first 32 hex digits of SHA-256(raw body)>`, so a redelivery of the
   * same bytes is a duplicate while a different notification about the same order is stored too.
   * Only the hint is stored: `{"orderId":…}` with its `status` when that is a plain status word.
   * @throws WebhookPayloadError when the body is not JSON or names no orderId (answered 400, nothing stored)
   */
  async verify(rawBody: Buffer, _headers: WebhookHeaders): Promise<VerifiedDelivery> {
    const hint = parseHint(rawBody.toString('utf8'));
    const digest = createHash('sha256').update(rawBody).digest('hex').slice(0, 32);
    const eventType = eventTypeOf(hint);
    const status = eventType === 'payment.notification' ? undefined : hint.status?.trim().toLowerCase();
    return {
      eventId: `${hint.orderId}:${digest}`,
      eventType,
      storedBody: JSON.stringify({ orderId: hint.orderId, status }),
    };
  }

  /**
   * Always `[]`: a hint is never turned into a payment event (the worker marks it ignored). Nothing
   * in it is trusted: SecurePay has no status query to confirm it against, and the payment's answer
   * (or its repeat) already settled, or will settle, the attempt it names.
   * @throws WebhookPayloadError when the stored body is not the hint shape
   */
  async normalize(body: string): Promise<PaymentEvent[]> {
    parseHint(body);
    return [];
  }
}
