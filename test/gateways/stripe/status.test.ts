import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { outcomeOfIntent, refundEventType, refundOutcomeOf } from '../../../src/gateways/stripe/status.ts';

const intent = (status: string, lastError?: object) =>
  ({ id: 'pi_1', status, last_payment_error: lastError ?? null }) as unknown as Stripe.PaymentIntent;

describe('Stripe status tables', () => {
  it.each([
    ['succeeded', 'succeeded'],
    ['processing', 'pending'],
    ['requires_capture', 'pending'],
    ['requires_action', 'declined'],
    ['requires_payment_method', 'declined'],
    ['canceled', 'declined'],
    ['requires_confirmation', 'unknown'],
    ['a_status_stripe_adds_later', 'unknown'],
  ])('PaymentIntent %s → %s', (status, outcome) => {
    expect(outcomeOfIntent(intent(status)).status).toBe(outcome);
  });

  it('a declined PaymentIntent carries its last_payment_error code and decline code', () => {
    expect(
      outcomeOfIntent(
        intent('requires_payment_method', {
          code: 'card_declined',
          decline_code: 'insufficient_funds',
          message: 'Your card has insufficient funds.',
        }),
      ),
    ).toMatchObject({ status: 'declined', code: 'card_declined', gatewayTransactionId: 'pi_1' });
  });

  it.each([
    ['succeeded', 'succeeded', 'refund.succeeded'],
    ['pending', 'pending', 'refund.pending'],
    ['requires_action', 'pending', 'refund.pending'],
    ['failed', 'declined', 'refund.failed'],
    ['canceled', 'declined', 'refund.failed'],
    ['a_status_stripe_adds_later', 'unknown', 'refund.pending'],
  ])('Refund %s → call outcome %s, webhook event %s', (status, outcome, event) => {
    expect(refundOutcomeOf({ id: 're_1', status }).status).toBe(outcome);
    expect(refundEventType(status)).toBe(event);
  });
});
