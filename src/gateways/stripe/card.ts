import type Stripe from 'stripe';
import { cardOrNothing, lastFour, month, year } from '../card.ts';
import type { CardDetails } from '../types.ts';

/**
 * The card a PaymentIntent charged, from its `latest_charge` when expanded (the charge call asks
 * `expand[]=latest_charge`, https://docs.stripe.com/api/expanding_objects): the charge's
 * `payment_method_details.card` `brand` (`visa`, `mastercard`, `amex`, …), `last4`, `exp_month`,
 * `exp_year` (https://docs.stripe.com/api/charges/object#charge_object-payment_method_details-card;
 * test/fixtures/stripe/api.charge.succeeded.openapi-fixture.json). Undefined when `latest_charge`
 * is an id or the payment was not a card.
 */
export function cardOfIntent(intent: Stripe.PaymentIntent): CardDetails | undefined {
  const charge = intent.latest_charge;
  if (!charge || typeof charge !== 'object') return undefined;
  const card = charge.payment_method_details?.card;
  if (!card) return undefined;
  return cardOrNothing({
    brand: typeof card.brand === 'string' && card.brand !== '' ? card.brand : null,
    last4: lastFour(card.last4),
    expMonth: month(card.exp_month),
    expYear: year(card.exp_year),
  });
}
