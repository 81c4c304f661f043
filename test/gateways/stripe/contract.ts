import nock from 'nock';
import { StripeClient } from '../../../src/gateways/stripe/client.ts';
import { stripeFixture } from '../../support/stripe.ts';
import { ANSWERED_CALL_TIMEOUT_MS, NO_ANSWER_DELAY_MS } from '../../support/timeouts.ts';
import type { ContractCase } from '../contract-case.ts';

const BASE = 'https://stripe.contract.test';
const INTENT = stripeFixture('webhook.payment_intent.succeeded.json').data.object;
const REFERENCE = 'txn_contractstripe01';
const REFUND = stripeFixture('api.refund.succeeded.openapi-fixture.json');

/** A Stripe answer: an object as JSON, a string as is (with the JSON content type Stripe sends). */
const reply = (body: string | object) =>
  [
    200,
    typeof body === 'string' ? body : JSON.stringify(body),
    { 'content-type': 'application/json' },
  ] as const;

/** Stripe in the shared contract suite, on the real fixture PaymentIntent, decline and refund. */
export const contract: ContractCase = {
  gateway: 'stripe',
  client: (timeoutMs = ANSWERED_CALL_TIMEOUT_MS) =>
    new StripeClient({ secretKey: 'sk_test_contract', apiBase: BASE, timeoutMs }),
  charge: {
    reference: REFERENCE,
    amount: 4620n,
    currency: 'EUR',
    initiation: 'recurring',
    paymentMethod: { token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi', customerId: 'cus_SRCIP043oBsNpV' },
  },
  approvedTransactionId: INTENT.id,
  nockApproved() {
    nock(BASE).post('/v1/payment_intents').matchHeader('idempotency-key', REFERENCE).reply(200, INTENT);
  },
  nockDeclined() {
    nock(BASE)
      .post('/v1/payment_intents')
      .reply(402, stripeFixture('api.payment_intent.create.card_declined.error.json'));
    return { code: 'card_declined', message: /Your card was declined.*generic_decline/ };
  },
  nockTimeout() {
    nock(BASE).post('/v1/payment_intents').delay(NO_ANSWER_DELAY_MS).reply(200, INTENT);
  },
  nockPollFindsSuccess() {
    nock(BASE)
      .get('/v1/payment_intents/search')
      .query((q) => String(q.query).includes(REFERENCE))
      .reply(200, {
        object: 'search_result',
        data: [{ ...INTENT, metadata: { billhook_reference: REFERENCE } }],
        has_more: false,
      });
  },
  nockPartialRefund(amount) {
    nock(BASE)
      .post('/v1/refunds', (body) => body.payment_intent === INTENT.id && body.amount === String(amount))
      .reply(200, { ...REFUND, amount: Number(amount), payment_intent: INTENT.id });
  },
  nockVoid() {
    nock(BASE)
      .post(`/v1/payment_intents/${INTENT.id}/cancel`)
      .reply(200, { ...INTENT, status: 'canceled' });
    return { status: 'succeeded' };
  },
  nockChargeAnswer(body) {
    nock(BASE)
      .post('/v1/payment_intents')
      .reply(...reply(body));
  },
  nockRefundAnswer(amount, body) {
    nock(BASE)
      .post('/v1/refunds', (sent) => sent.amount === String(amount))
      .reply(...reply(body));
  },
  // Not in the PaymentIntent lifecycle (https://docs.stripe.com/payments/paymentintents/lifecycle).
  unmappedChargeAnswer: { ...INTENT, status: 'requires_reauthorization' },
  unmappedRefundAnswer: (amount) => ({ ...REFUND, amount: Number(amount), status: 'in_review' }),
};
