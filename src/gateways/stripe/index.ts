import type { Config } from '../../config/env.ts';
import type { GatewayAdapter } from '../types.ts';
import { STRIPE_CAPABILITIES } from './capabilities.ts';
import { StripeClient } from './client.ts';
import { stripeSettlementSource } from './settlement.ts';
import { StripeWebhook } from './webhook.ts';

/**
 * The Stripe adapter: the webhook half is enabled by `STRIPE_WEBHOOK_SECRET`, the outbound half by
 * `STRIPE_SECRET_KEY` (calls go to `STRIPE_API_BASE`), which also lets the webhook half ask Stripe
 * for the refunds of a `charge.refunded` event that lists none and for the PaymentIntent of a refund's
 * or dispute's charge when the event does not name it, for the balance transaction of a charge event
 * and the lines of a payout event (settlement.ts), and enables the settlement half (`settlement`: the
 * payouts created in a range with their lines).
 */
export function stripeAdapter(config: Config): GatewayAdapter {
  const client = config.STRIPE_SECRET_KEY
    ? new StripeClient({
        secretKey: config.STRIPE_SECRET_KEY,
        apiBase: config.STRIPE_API_BASE,
        timeoutMs: config.GATEWAY_TIMEOUT_MS,
      })
    : undefined;
  return {
    name: 'stripe',
    capabilities: STRIPE_CAPABILITIES,
    webhook:
      config.STRIPE_WEBHOOK_SECRET.length > 0
        ? new StripeWebhook(
            config.STRIPE_WEBHOOK_SECRET,
            config.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
            client && {
              refundsOfCharge: (chargeId) => client.refundsOfCharge(chargeId),
              paymentIntentOfCharge: (chargeId) => client.paymentIntentOfCharge(chargeId),
              balanceTransaction: (id) => client.balanceTransaction(id),
              payoutBalanceTransactions: (payoutId) => client.payoutBalanceTransactions(payoutId),
            },
          )
        : undefined,
    client,
    settlement: client && stripeSettlementSource(client),
  };
}
