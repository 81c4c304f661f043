/** Metadata key carrying our transaction or refund id on Stripe objects (payment intents, refunds). */
export const REFERENCE_KEY = 'billhook_reference';

/**
 * Stripe's error message with its more specific `decline_code` appended, e.g.
 * `Your card was declined. (decline_code: generic_decline)` (https://docs.stripe.com/declines/codes).
 */
export function withDeclineCode(message: string, declineCode: string | null | undefined): string {
  return declineCode ? `${message} (decline_code: ${declineCode})` : message;
}
