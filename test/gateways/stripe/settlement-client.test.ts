import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/env.ts';
import { StripeClient } from '../../../src/gateways/stripe/client.ts';
import { stripeAdapter } from '../../../src/gateways/stripe/index.ts';
import { stripeSettlementSource } from '../../../src/gateways/stripe/settlement.ts';
import { StripeWebhook } from '../../../src/gateways/stripe/webhook.ts';
import { WebhookPayloadError } from '../../../src/gateways/types.ts';
import { stripeFixture, stripeFixtureRaw } from '../../support/stripe.ts';
import { ANSWERED_CALL_TIMEOUT_MS } from '../../support/timeouts.ts';

const BASE = 'https://stripe.settlement.test';
const PI = 'pi_3RTkpYQ8iJWBZFaM1LBHNo0J';
const PAYOUT = 'po_1Pgc79B7WZ01zgkWu1KToYf4';
const client = new StripeClient({
  secretKey: 'sk_test_settlement',
  apiBase: BASE,
  timeoutMs: ANSWERED_CALL_TIMEOUT_MS,
});

/** The webhook half as the adapter builds it with a secret key: asking `client`. */
const webhook = new StripeWebhook(['whsec_unit_settlement'], 300, {
  refundsOfCharge: (charge) => client.refundsOfCharge(charge),
  paymentIntentOfCharge: (charge) => client.paymentIntentOfCharge(charge),
  balanceTransaction: (id) => client.balanceTransaction(id),
  payoutBalanceTransactions: (payout) => client.payoutBalanceTransactions(payout),
});

const CHARGE = stripeFixture('api.balance_transaction.charge.expanded.derived.json');
const REFUND = stripeFixture('api.balance_transaction.refund.derived.json');
const DISPUTE = {
  ...stripeFixture('api.balance_transaction.dispute.extracted.json'),
  source: stripeFixture('webhook.charge.dispute.created.json').data.object,
};
/** The payout's own balance transaction (type `payout`), which Stripe lists among its transactions. */
const OWN = {
  ...stripeFixture('api.balance_transaction.openapi-fixture.json'),
  id: 'txn_1Pgc79B7WZ01zgkWpayout00',
  type: 'payout',
  reporting_category: 'payout',
  amount: -1100,
  net: -1100,
  source: PAYOUT,
};

/** A page of a Stripe list. */
const page = (data: unknown[], hasMore: boolean, url = '/v1/balance_transactions') => ({
  object: 'list',
  data,
  has_more: hasMore,
  url,
});

/** Whether a query (as nock parses it, keys as sent) expands `path` (stripe-node writes `expand[0]=…`). */
const expands = (query: Record<string, unknown>, path: string) => query['expand[0]'] === path;

/** Stripe's three pages of `payout`'s transactions, each asked after the last id of the one before. */
function nockPayoutPages(payout = PAYOUT) {
  const ask = (startingAfter: string | undefined) =>
    nock(BASE)
      .get('/v1/balance_transactions')
      .query(
        (q) =>
          q.payout === payout &&
          q.limit === '100' &&
          expands(q, 'data.source') &&
          q.starting_after === startingAfter,
      );
  ask(undefined).reply(200, page([CHARGE, REFUND], true));
  ask(REFUND.id).reply(200, page([DISPUTE], true));
  ask(DISPUTE.id).reply(200, page([OWN], false));
}

beforeAll(() => {
  nock.disableNetConnect();
});
afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
});
afterAll(() => {
  nock.enableNetConnect();
});

describe('StripeClient: settlement calls', () => {
  it("asks for a charge's balance transaction with its source expanded", async () => {
    nock(BASE)
      .get(`/v1/balance_transactions/${CHARGE.id}`)
      .query((q) => expands(q, 'source'))
      .matchHeader('authorization', 'Bearer sk_test_settlement')
      .reply(200, CHARGE);
    expect(await client.balanceTransaction(CHARGE.id)).toMatchObject({ id: CHARGE.id, fee: 88 });
  });

  it("fetches every page of a payout's transactions (starting_after the last id while has_more)", async () => {
    nockPayoutPages();
    const all = await client.payoutBalanceTransactions(PAYOUT);
    expect(all.map((t: any) => t.id)).toEqual([CHARGE.id, REFUND.id, DISPUTE.id, OWN.id]);
  });

  it('throws on a page that is not a list, or that has more but names no last id', async () => {
    nock(BASE).get('/v1/balance_transactions').query(true).reply(200, { data: 'nope' });
    await expect(client.payoutBalanceTransactions(PAYOUT)).rejects.toThrow(/not a list/);
    nock(BASE).get('/v1/balance_transactions').query(true).reply(200, page([], true));
    await expect(client.payoutBalanceTransactions(PAYOUT)).rejects.toThrow(/has_more but no last id/);
  });

  it('throws when Stripe answers an error (the sweep retries, it books nothing)', async () => {
    nock(BASE)
      .get('/v1/payouts')
      .query(true)
      .reply(500, { error: { type: 'api_error', message: 'Something went wrong' } });
    await expect(
      client.payoutsCreated({ from: new Date('2026-11-01T00:00:00Z'), to: new Date('2026-11-02T00:00:00Z') }),
    ).rejects.toThrow(/Something went wrong/);
  });
});

describe('stripeSettlementSource.fetchSettlements', () => {
  it('reports every payout created in the range, each with every page of its lines when Stripe lists them', async () => {
    const from = new Date('2026-11-01T00:00:00Z');
    const to = new Date('2026-11-08T00:00:00Z');
    const reconciled = stripeFixture('api.payout.openapi-fixture.json');
    const manual = { ...reconciled, id: 'po_1Pgc79B7WZ01zgkWmanual00', automatic: false, status: 'paid' };
    const inRange = (q: Record<string, unknown>) =>
      q['created[gte]'] === String(from.getTime() / 1000) &&
      q['created[lt]'] === String(to.getTime() / 1000) &&
      q.limit === '100';
    nock(BASE)
      .get('/v1/payouts')
      .query((q) => inRange(q) && q.starting_after === undefined)
      .reply(200, page([reconciled], true, '/v1/payouts'));
    nock(BASE)
      .get('/v1/payouts')
      .query((q) => inRange(q) && q.starting_after === reconciled.id)
      .reply(200, page([manual], false, '/v1/payouts'));
    nockPayoutPages();

    const report = await stripeSettlementSource(client).fetchSettlements({ from, to });
    expect(report.lines).toEqual([]);
    expect(report.payouts.map((p) => [p.gatewayPayoutId, p.status, p.lines?.length])).toEqual([
      [PAYOUT, 'in_transit', 3],
      [manual.id, 'paid', undefined],
    ]);
    const [lines] = report.payouts.map((p) => p.lines ?? []);
    expect(lines?.map((l) => [l.kind, l.gross, l.fee, l.net])).toEqual([
      ['charge', 2000n, 88n, 1912n],
      ['refund', -100n, 0n, -100n],
      ['dispute', -500n, 1500n, -2000n],
    ]);
  });

  it('is the adapter’s settlement half when a secret key is configured, and absent without one', () => {
    const env = { STRIPE_WEBHOOK_SECRET: 'whsec_unit_settlement', STRIPE_API_BASE: BASE };
    expect(
      stripeAdapter(loadConfig({ ...env, STRIPE_SECRET_KEY: 'sk_test_settlement' })).settlement,
    ).toBeDefined();
    expect(stripeAdapter(loadConfig(env)).settlement).toBeUndefined();
  });
});

describe('StripeWebhook with a secret key: payout and charge events', () => {
  it('normalises payout.paid to payout.updated with every page of its lines, leaving out its own', async () => {
    nockPayoutPages();
    const [event, ...rest] = await webhook.normalize(stripeFixtureRaw('webhook.payout.paid.derived.json'));
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      type: 'payout.updated',
      gatewayEventId: 'evt_1Pgc79B7WZ01zgkWpayoutPd',
      amount: 1100n,
      currency: 'USD',
      payout: { gatewayPayoutId: PAYOUT, status: 'paid', amount: 1100n },
    });
    expect(event?.payout?.lines?.map((l) => l.gatewayLineId)).toEqual([CHARGE.id, REFUND.id, DISPUTE.id]);
    expect(event?.payout?.lines?.[0]).toMatchObject({ kind: 'charge', gatewayTransactionId: PI });
  });

  it('fetches the lines on payout.reconciliation_completed, not while reconciliation is in progress', async () => {
    nockPayoutPages();
    const [reconciled] = await webhook.normalize(
      stripeFixtureRaw('webhook.payout.reconciliation_completed.derived.json'),
    );
    expect(reconciled?.payout?.lines).toHaveLength(3);
    // payout.created: reconciliation in_progress, nothing asked (afterEach: no request pending or made).
    const [created] = await webhook.normalize(stripeFixtureRaw('webhook.payout.created.derived.json'));
    expect(created?.payout).toMatchObject({ status: 'pending' });
    expect(created?.payout?.lines).toBeUndefined();
    const [failed] = await webhook.normalize(stripeFixtureRaw('webhook.payout.failed.derived.json'));
    expect(failed).toMatchObject({ failureCode: 'account_closed', payout: { status: 'failed' } });
    expect(failed?.payout?.lines).toBeUndefined();
  });

  it('refuses a payout whose listed line has an amount it cannot book exactly', async () => {
    nock(BASE)
      .get('/v1/balance_transactions')
      .query(true)
      .reply(200, page([{ ...CHARGE, currency: 'isk', amount: 50050, fee: 50, net: 50000 }], false));
    await expect(webhook.normalize(stripeFixtureRaw('webhook.payout.paid.derived.json'))).rejects.toThrow(
      WebhookPayloadError,
    );
  });

  it('turns charge.updated naming its balance transaction into a settlement.line with the fee', async () => {
    const txn = {
      ...stripeFixture('api.balance_transaction.openapi-fixture.json'),
      fee: 33,
      net: 67,
      source: stripeFixture('webhook.charge.updated.derived.json').data.object,
    };
    nock(BASE)
      .get('/v1/balance_transactions/txn_1PgaxNB7WZ01zgkWEV3TLf40')
      .query((q) => expands(q, 'source'))
      .reply(200, txn);
    const [event, ...rest] = await webhook.normalize(stripeFixtureRaw('webhook.charge.updated.derived.json'));
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      type: 'settlement.line',
      gatewayEventId: 'evt_1PgaxNB7WZ01zgkWchargeUp',
      gatewayTransactionId: PI,
      amount: 100n,
      currency: 'USD',
      settlementLine: {
        gatewayLineId: 'txn_1PgaxNB7WZ01zgkWEV3TLf40',
        kind: 'charge',
        gatewayTransactionId: PI,
        gross: 100n,
        fee: 33n,
        net: 67n,
      },
    });
  });

  it('books nothing for a charge Stripe has not booked in the balance yet (no request made)', async () => {
    const event = stripeFixture('webhook.charge.updated.derived.json');
    event.data.object.balance_transaction = null;
    event.type = 'charge.succeeded';
    expect(await webhook.normalize(JSON.stringify(event))).toEqual([]);
  });
});
