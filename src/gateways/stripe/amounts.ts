import { fromGateway } from '../../money/gateway-amount.ts';
import { WebhookPayloadError } from '../types.ts';
import { STRIPE_CURRENCIES } from './currencies.ts';

/**
 * Billhook minor units of a Stripe amount, by Stripe's currency rules (`STRIPE_CURRENCIES`: ISK
 * `50000` is 500 ISK, MGA `1000` is 1,000 MGA).
 * @param what names the object in the error, e.g. `refund re_…`
 * @throws WebhookPayloadError for an amount billhook cannot book exactly (ISK `50050`)
 */
export function amountOf(amount: number, currency: string, what: string): bigint {
  try {
    return fromGateway(STRIPE_CURRENCIES, amount, currency);
  } catch (error) {
    throw new WebhookPayloadError(`Stripe ${what}: ${(error as Error).message}`);
  }
}

/**
 * A signed Stripe amount (a balance transaction's `amount`, `fee` or `net`: negative for money out of
 * the balance, https://docs.stripe.com/api/balance_transactions/object#balance_transaction_object-amount)
 * in billhook minor units with its sign: its size is read as `amountOf` reads it.
 * @throws WebhookPayloadError for an amount billhook cannot book exactly
 */
export function signedAmountOf(amount: number, currency: string, what: string): bigint {
  const size = amountOf(Math.abs(amount), currency, what);
  return amount < 0 ? -size : size;
}
