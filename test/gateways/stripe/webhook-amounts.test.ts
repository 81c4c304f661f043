import { describe, expect, it } from 'vitest';
import { StripeWebhook } from '../../../src/gateways/stripe/webhook.ts';
import { WebhookPayloadError } from '../../../src/gateways/types.ts';
import { stripeFixture } from '../../support/stripe.ts';

const webhook = new StripeWebhook(['whsec_unit_amounts']);

/** A real fixture event with its object's amount and currency replaced. */
function event(name: string, amount: number, currency: string): string {
  const body = stripeFixture(name);
  Object.assign(body.data.object, { amount, currency });
  if ('amount_received' in body.data.object) body.data.object.amount_received = amount;
  return JSON.stringify(body);
}

// Webhook amounts are read back by the same rules Stripe's amounts are sent with
// (STRIPE_CURRENCIES, https://docs.stripe.com/currencies).
describe('StripeWebhook amounts by Stripe’s currency rules', () => {
  it('reads ISK and UGX as two-decimal values whose decimals are 00 (#special-cases)', async () => {
    const [intent] = await webhook.normalize(event('webhook.payment_intent.succeeded.json', 50_000, 'isk'));
    expect(intent).toMatchObject({ type: 'charge.succeeded', amount: 500n, currency: 'ISK' });
    const [refund] = await webhook.normalize(event('webhook.charge.refund.updated.json', 20_000, 'ugx'));
    expect(refund).toMatchObject({ amount: 200n, currency: 'UGX' });
  });

  it('reads MGA as whole ariary (#zero-decimal): 1000 is 1,000 MGA = 100000n minor units', async () => {
    const [dispute] = await webhook.normalize(event('webhook.charge.dispute.created.json', 1000, 'mga'));
    expect(dispute).toMatchObject({ type: 'dispute.opened', amount: 100_000n, currency: 'MGA' });
  });

  it('books a three-decimal amount as Stripe reports it (KWD 1295)', async () => {
    const [intent] = await webhook.normalize(event('webhook.payment_intent.succeeded.json', 1295, 'kwd'));
    expect(intent).toMatchObject({ amount: 1295n, currency: 'KWD' });
  });

  it('refuses an ISK amount that is not a whole króna (50050): a payload error, never rounded', async () => {
    const body = event('webhook.payment_intent.succeeded.json', 50_050, 'isk');
    await expect(webhook.normalize(body)).rejects.toThrow(WebhookPayloadError);
    await expect(webhook.normalize(body)).rejects.toThrow(/payment intent pi_\w+: Stripe reported 50050 ISK/);
  });
});
