import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import express from 'express';
import { listenOn } from '../../listen.ts';
import { stubBalance } from './stub-balance.ts';

/** How the stub answers charges: as Stripe does for a card that succeeds, is still processing, or is declined. */
export type StubOutcome = 'succeeded' | 'processing' | 'declined';

/**
 * A local stand-in for Stripe's API (`STRIPE_API_BASE=http://127.0.0.1:PORT`), for trying billhook
 * without a Stripe account and for benchmarks. It answers `POST /v1/payment_intents` and
 * `POST /v1/refunds` with objects shaped like Stripe's (https://docs.stripe.com/api/payment_intents/object),
 * echoing amount, currency and metadata, and repeats the same answer for a repeated Idempotency-Key.
 * Its settlement half (`stubBalance`): each PaymentIntent it confirmed (not declined) and each refund
 * is a balance transaction, and `POST /v1/payouts` pays them out.
 * It moves no money and checks no key.
 * @throws PortUnavailable when `port` is in use
 */
export function startStripeStub(port: number, outcome: StubOutcome): Promise<Server> {
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  const answers = new Map<string, { status: number; body: unknown }>();
  const currencies = new Map<string, string>();
  const id = (prefix: string) => `${prefix}_stub${randomBytes(10).toString('hex')}`;
  const balance = stubBalance(app, id);
  const metadata = (body: Record<string, string>) =>
    Object.fromEntries(
      Object.entries(body)
        .filter(([key]) => key.startsWith('metadata['))
        .map(([key, value]) => [key.slice(9, -1), value]),
    );

  const idempotent =
    (make: (body: Record<string, string>) => { status: number; body: unknown }): express.RequestHandler =>
    (req, res) => {
      const key = req.header('idempotency-key') ?? '';
      const answer = (key && answers.get(key)) || make(req.body as Record<string, string>);
      if (key) answers.set(key, answer);
      res.status(answer.status).json(answer.body);
    };

  app.post(
    '/v1/payment_intents',
    idempotent((body) => {
      const intent = {
        id: id('pi'),
        object: 'payment_intent',
        amount: Number(body.amount),
        amount_received: outcome === 'succeeded' ? Number(body.amount) : 0,
        currency: body.currency ?? 'usd',
        customer: body.customer ?? null,
        payment_method: body.payment_method,
        metadata: metadata(body),
        created: Math.floor(Date.now() / 1000),
        livemode: false,
        status: outcome === 'declined' ? 'requires_payment_method' : outcome,
      };
      currencies.set(intent.id, intent.currency);
      if (outcome !== 'declined') {
        return { status: 200, body: { ...intent, latest_charge: balance.charged(intent).id } };
      }
      const error = {
        type: 'card_error',
        code: 'card_declined',
        decline_code: 'generic_decline',
        message: 'Your card was declined.',
      };
      return {
        status: 402,
        body: { error: { ...error, payment_intent: { ...intent, last_payment_error: error } } },
      };
    }),
  );
  app.post(
    '/v1/refunds',
    idempotent((body) => {
      const refund = {
        id: id('re'),
        object: 'refund',
        amount: Number(body.amount),
        currency: currencies.get(body.payment_intent ?? '') ?? 'usd',
        payment_intent: body.payment_intent,
        metadata: metadata(body),
        status: 'succeeded',
        created: Math.floor(Date.now() / 1000),
      };
      return { status: 200, body: { ...refund, balance_transaction: balance.refunded(refund).id } };
    }),
  );
  return listenOn(app, port, '127.0.0.1').then(({ server }) => server);
}
