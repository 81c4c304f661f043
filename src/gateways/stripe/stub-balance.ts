import type express from 'express';
import { stripePayoutObject } from './test-events.ts';

/**
 * The stub's balance (stub.ts): what Stripe's settlement API answers about the stub's own payments,
 * small enough to read. Each PaymentIntent the stub confirmed is a charge with a balance transaction
 * (type `charge`, fee 2.9% + 30 of the currency's Stripe units, rounded half up: Stripe's standard
 * card pricing, https://stripe.com/pricing), each refund a balance transaction of type `refund`
 * (no fee); `POST /v1/payouts` pays out every transaction of a currency not yet paid out. It answers:
 * - `GET /v1/balance_transactions/:id` (`expand[]=source` expands the charge or refund);
 * - `GET /v1/balance_transactions?payout=po_…` (`expand[]=data.source`; `limit`, `starting_after`,
 *   `has_more` as https://docs.stripe.com/api/pagination), the payout's own transaction included;
 * - `POST /v1/payouts` with `currency` (and `amount`, which must then be the whole balance): a payout
 *   made `paid` at once, automatic (its transactions can be listed) and reconciled;
 * - `GET /v1/payouts/:id` and `GET /v1/payouts?created[gte]=…&created[lt]=…`.
 * Amounts are Stripe's wire integers; newest first, as Stripe lists.
 */

/** A Stripe object as the stub stores it: its id and JSON fields. */
type StubObject = { id: string } & Record<string, unknown>;

/** A balance transaction of the stub, its source by id. */
interface StubTransaction {
  id: string;
  object: 'balance_transaction';
  type: 'charge' | 'refund' | 'payout';
  reporting_category: string;
  amount: number;
  fee: number;
  net: number;
  currency: string;
  created: number;
  available_on: number;
  exchange_rate: null;
  description: string;
  status: 'available';
  fee_details: { amount: number; currency: string; type: 'stripe_fee'; description: string }[];
  source: string;
}

/** The stub's fee on a charge of `amount` Stripe units: 2.9% rounded half up, plus 30. */
export const stubFee = (amount: number): number => Math.floor((amount * 29 + 500) / 1000) + 30;

/** What stub.ts tells the balance: a PaymentIntent confirmed, a refund made. */
export interface StubBalance {
  /** Books the charge of a confirmed PaymentIntent (`id`, `amount`, `currency`, `metadata`): the charge. */
  charged(intent: StubObject): StubObject;
  /** Books a refund (`id`, `amount`, `currency`, `payment_intent`): its balance transaction. */
  refunded(refund: StubObject): StubTransaction;
}

const now = () => Math.floor(Date.now() / 1000);

/** Stripe's error answer (https://docs.stripe.com/api/errors). */
const invalid = (res: express.Response, status: number, code: string, message: string) =>
  res.status(status).json({ error: { type: 'invalid_request_error', code, message } });

/** Whether the query asks to expand `path` (`expand[]=path`, as stripe-node writes it `expand[0]=path`). */
const expands = (query: express.Request['query'], path: string) =>
  Object.entries(query).some(([key, value]) => key.startsWith('expand[') && value === path);

/** One page of `items` (newest first) after `starting_after`, at most `limit` (default 10, at most 100). */
function page(req: express.Request, items: readonly StubObject[], url: string) {
  const limit = Math.min(Math.max(Number(req.query.limit ?? 10) || 10, 1), 100);
  const after = typeof req.query.starting_after === 'string' ? req.query.starting_after : undefined;
  const start = after ? items.findIndex((item) => item.id === after) + 1 : 0;
  const data = items.slice(start, start + limit);
  return { object: 'list', data, has_more: start + limit < items.length, url };
}

/** Adds the settlement routes to the stub's `app`; `id(prefix)` makes its ids. */
export function stubBalance(app: express.Express, id: (prefix: string) => string): StubBalance {
  const transactions: StubTransaction[] = [];
  const sources = new Map<string, StubObject>();
  const payoutOf = new Map<string, string>();
  const payouts: StubObject[] = [];

  const book = (
    entry: Omit<StubTransaction, 'id' | 'object' | 'created' | 'available_on' | 'exchange_rate' | 'status'>,
  ) => {
    const created = now();
    const txn: StubTransaction = {
      id: id('txn'),
      object: 'balance_transaction',
      created,
      available_on: created,
      exchange_rate: null,
      status: 'available',
      ...entry,
    };
    transactions.push(txn);
    return txn;
  };
  const render = (txn: StubTransaction, expand: boolean) =>
    expand ? { ...txn, source: sources.get(txn.source) ?? txn.source } : txn;
  const newestFirst = <T>(items: readonly T[]) => [...items].reverse();

  app.get('/v1/balance_transactions/:id', (req, res) => {
    const txn = transactions.find((t) => t.id === req.params.id);
    if (!txn) return invalid(res, 404, 'resource_missing', `No such balance transaction: '${req.params.id}'`);
    res.json(render(txn, expands(req.query, 'source')));
  });
  app.get('/v1/balance_transactions', (req, res) => {
    const payout = req.query.payout;
    if (typeof payout === 'string' && !payouts.some((p) => p.id === payout)) {
      return invalid(res, 404, 'resource_missing', `No such payout: '${payout}'`);
    }
    const listed = transactions
      .filter((t) => typeof payout !== 'string' || payoutOf.get(t.id) === payout)
      .map((t) => render(t, expands(req.query, 'data.source')));
    res.json(page(req, newestFirst(listed), '/v1/balance_transactions'));
  });

  app.post('/v1/payouts', (req, res) => {
    const body = req.body as Record<string, string>;
    const currency = body.currency?.toLowerCase();
    if (!currency) return invalid(res, 400, 'parameter_missing', 'Missing required param: currency.');
    const due = transactions.filter((t) => t.currency === currency && !payoutOf.has(t.id));
    const amount = due.reduce((sum, t) => sum + t.net, 0);
    if (amount <= 0) return invalid(res, 400, 'balance_insufficient', `No ${currency} balance to pay out.`);
    if (body.amount !== undefined && Number(body.amount) !== amount) {
      return invalid(
        res,
        400,
        'amount_mismatch',
        `The stub pays out the whole ${currency} balance: ${amount}.`,
      );
    }
    const payoutId = id('po');
    const own = book({
      type: 'payout',
      reporting_category: 'payout',
      amount: -amount,
      fee: 0,
      net: -amount,
      currency,
      description: 'STRIPE PAYOUT',
      fee_details: [],
      source: payoutId,
    });
    for (const t of [...due, own]) payoutOf.set(t.id, payoutId);
    const payout: StubObject = {
      ...stripePayoutObject({ id: payoutId, amount, currency, created: own.created as number }),
      balance_transaction: own.id,
    };
    payouts.push(payout);
    sources.set(payoutId, payout);
    res.json(payout);
  });
  app.get('/v1/payouts/:id', (req, res) => {
    const payout = payouts.find((p) => p.id === req.params.id);
    if (!payout) return invalid(res, 404, 'resource_missing', `No such payout: '${req.params.id}'`);
    res.json(payout);
  });
  app.get('/v1/payouts', (req, res) => {
    const gte = Number(req.query['created[gte]'] ?? Number.NEGATIVE_INFINITY);
    const lt = Number(req.query['created[lt]'] ?? Number.POSITIVE_INFINITY);
    const listed = payouts.filter((p) => (p.created as number) >= gte && (p.created as number) < lt);
    res.json(page(req, newestFirst(listed), '/v1/payouts'));
  });

  return {
    charged(intent) {
      const amount = intent.amount as number;
      const currency = intent.currency as string;
      const chargeId = id('ch');
      const fee = stubFee(amount);
      const txn = book({
        type: 'charge',
        reporting_category: 'charge',
        amount,
        fee,
        net: amount - fee,
        currency,
        description: `Payment ${intent.id}`,
        fee_details: [{ amount: fee, currency, type: 'stripe_fee', description: 'Stripe processing fees' }],
        source: chargeId,
      });
      const charge: StubObject = {
        id: chargeId,
        object: 'charge',
        amount,
        amount_captured: amount,
        currency,
        balance_transaction: txn.id,
        captured: true,
        created: txn.created,
        metadata: intent.metadata as Record<string, string>,
        paid: true,
        payment_intent: intent.id,
        status: 'succeeded',
      };
      sources.set(chargeId, charge);
      return charge;
    },
    refunded(refund) {
      const txn = book({
        type: 'refund',
        reporting_category: 'refund',
        amount: -(refund.amount as number),
        fee: 0,
        net: -(refund.amount as number),
        currency: refund.currency as string,
        description: `REFUND FOR ${refund.payment_intent as string}`,
        fee_details: [],
        source: refund.id,
      });
      sources.set(refund.id, { ...refund, balance_transaction: txn.id });
      return txn;
    },
  };
}
