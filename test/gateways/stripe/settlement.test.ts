import { describe, expect, it } from 'vitest';
import {
  payoutLinesListable,
  payoutReportOf,
  readPayout,
  settlementLineOf,
  settlementLinesOf,
} from '../../../src/gateways/stripe/settlement.ts';
import { signStripePayload } from '../../../src/gateways/stripe/test-events.ts';
import { StripeWebhook } from '../../../src/gateways/stripe/webhook.ts';
import { WebhookPayloadError } from '../../../src/gateways/types.ts';
import { stripeFixture, stripeFixtureRaw } from '../../support/stripe.ts';

/** The PaymentIntent the derived fixtures name (SOURCES.md). */
const PI = 'pi_3RTkpYQ8iJWBZFaM1LBHNo0J';
const seconds = (unix: number) => new Date(unix * 1000);

/** The real dispute withdrawal with its source expanded to the dispute of the same real event. */
function disputeWithdrawal(): any {
  const dispute = stripeFixture('webhook.charge.dispute.created.json').data.object;
  return { ...stripeFixture('api.balance_transaction.dispute.extracted.json'), source: dispute };
}

/** stripe-mock's balance transaction made into one of `type` (amounts as given, source `source`). */
function transaction(type: string, amount: number, fee: number, source: unknown = null): any {
  return {
    ...stripeFixture('api.balance_transaction.openapi-fixture.json'),
    type,
    reporting_category: type,
    amount,
    fee,
    net: amount - fee,
    source,
  };
}

describe('settlementLineOf: a balance transaction as a settlement line', () => {
  it('reads a charge: gross, fee and net with their signs, the PaymentIntent of the expanded charge', () => {
    const txn = stripeFixture('api.balance_transaction.charge.expanded.derived.json');
    expect(settlementLineOf(txn)).toEqual({
      gatewayLineId: 'txn_fake_ch_fakefakefakefakefake0001',
      kind: 'charge',
      gatewayTransactionId: PI,
      currency: 'USD',
      gross: 2000n,
      fee: 88n,
      net: 1912n,
      occurredAt: seconds(1557995177),
      availableOn: seconds(1558569600),
      description: 'charge: Payment for invoice 3D77FB04-0001',
    });
  });

  it('reads a refund: gross negative, the refund id and the refunded PaymentIntent', () => {
    const line = settlementLineOf(stripeFixture('api.balance_transaction.refund.derived.json'));
    expect(line).toMatchObject({
      gatewayLineId: 'txn_1PgaxNB7WZ01zgkWEV3TLf41',
      kind: 'refund',
      gatewayRefundId: 're_1Pgc72B7WZ01zgkWqPvrRrPE',
      gatewayTransactionId: PI,
      gross: -100n,
      fee: 0n,
      net: -100n,
    });
    expect(line?.gatewayDisputeId).toBeUndefined();
  });

  it("reads the real dispute withdrawal: an adjustment of a du_… source, with Stripe's dispute fee", () => {
    expect(settlementLineOf(disputeWithdrawal())).toMatchObject({
      gatewayLineId: 'txn_0RystVItVxyc3Q6nDwOJhj6Z',
      kind: 'dispute',
      gatewayDisputeId: 'du_0RystVItVxyc3Q6n8IfZyZXt',
      gatewayTransactionId: 'pi_2RystUItVxyc3Q6n0qqOvNKK',
      currency: 'GBP',
      gross: -500n,
      fee: 1500n,
      net: -2000n,
      description: 'adjustment: Chargeback withdrawal for ch_2RystUItVxyc3Q6n07hnQyX7',
    });
  });

  it('reads a dispute reinstatement (dp_… source, gross positive) as a dispute line too', () => {
    const source = { id: 'dp_1Pgc71B7WZ01zgkWMevJiAUx', object: 'dispute', payment_intent: PI };
    expect(settlementLineOf(transaction('adjustment', 1000, 0, source))).toMatchObject({
      kind: 'dispute',
      gatewayDisputeId: 'dp_1Pgc71B7WZ01zgkWMevJiAUx',
      gross: 1000n,
    });
  });

  it.each([
    ['refund_failure', 'refund_failure'],
    // Stripe's failed refund as it renders one now: type=adjustment, reporting_category refund_failure
    // (https://docs.stripe.com/reports/reporting-categories), the refund's failure_balance_transaction.
    ['adjustment', 'refund_failure'],
  ])(
    "reads a failed refund's money back (type %s, category %s) as a refund line of the refund",
    (type, category) => {
      const source = { id: 're_1Pgc72B7WZ01zgkWqPvrRrPE', object: 'refund', payment_intent: PI };
      expect(
        settlementLineOf({ ...transaction(type, 100, 0, source), reporting_category: category }),
      ).toMatchObject({
        kind: 'refund',
        gatewayRefundId: 're_1Pgc72B7WZ01zgkWqPvrRrPE',
        gatewayTransactionId: PI,
        gross: 100n,
      });
    },
  );

  it('sets original to the charge in its own currency when Stripe converted it (exchange_rate)', () => {
    const line = settlementLineOf(stripeFixture('api.balance_transaction.exchange_rate.derived.json'));
    expect(line).toMatchObject({
      kind: 'charge',
      currency: 'USD',
      gross: 1234n,
      fee: 66n,
      net: 1168n,
      original: { currency: 'EUR', amount: 1000n },
      exchangeRate: '1.234',
    });
    // A converted refund: original signed like gross.
    const refund = stripeFixture('api.balance_transaction.refund.derived.json');
    refund.exchange_rate = 1.234;
    refund.amount = -123;
    refund.net = -123;
    refund.source.currency = 'eur';
    expect(settlementLineOf(refund)?.original).toEqual({ currency: 'EUR', amount: -100n });
    // The rate as the decimal Stripe wrote (JSON's 1.2340 is 1.234; 1.23e-7 as JavaScript writes it).
    refund.exchange_rate = JSON.parse('1.2340');
    expect(settlementLineOf(refund)?.exchangeRate).toBe('1.234');
    refund.exchange_rate = JSON.parse('0.000000123');
    expect(settlementLineOf(refund)?.exchangeRate).toBe('0.000000123');
  });

  it.each([
    ['stripe_fee', -500],
    ['stripe_fx_fee', -12],
    ['tax_fee', -30],
    ['application_fee', 880],
  ])('reads %s as a fee line', (type, amount) => {
    expect(settlementLineOf(transaction(type, amount, 0))).toMatchObject({
      kind: 'fee',
      gross: BigInt(amount),
      fee: 0n,
      net: BigInt(amount),
    });
  });

  it.each([
    ['reserve_hold', null],
    ['adjustment', { id: 'ch_1PgafuB7WZ01zgkWXYmPNZs8', object: 'charge', payment_intent: PI }],
    // A source whose own amount is negative is read only for a line with an exchange rate.
    ['reserve_transaction', { id: 'rtx_1', object: 'reserve_transaction', amount: -200, currency: 'usd' }],
  ])('reads %s as an adjustment for a person, naming no payment', (type, source) => {
    const line = settlementLineOf(transaction(type, -200, 0, source));
    expect(line).toMatchObject({
      kind: 'adjustment',
      gross: -200n,
      description: expect.stringContaining(type),
    });
    expect(line?.gatewayTransactionId).toBeUndefined();
  });

  it.each(['payout_failure', 'payout_cancel'])(
    "reads %s as the failed payout's money coming back (payout_return: its payout's failure booked it)",
    (type) => {
      expect(settlementLineOf(transaction(type, 1100, 0, 'po_1Pgc79B7WZ01zgkWu1KToYf4'))).toMatchObject({
        kind: 'payout_return',
        gross: 1100n,
        net: 1100n,
      });
    },
  );

  it("leaves the payout's own transaction out: it is the payout, not one of its lines", () => {
    const own = transaction('payout', -1100, 0, 'po_1Pgc79B7WZ01zgkWu1KToYf4');
    expect(settlementLineOf(own)).toBeUndefined();
    const charge = stripeFixture('api.balance_transaction.charge.expanded.derived.json');
    expect(settlementLinesOf([charge, own]).map((l) => l.gatewayLineId)).toEqual([charge.id]);
  });

  it('refuses an amount Stripe cannot have meant exactly, never rounding it (ISK decimals are always 00)', () => {
    const txn = { ...transaction('stripe_fee', -50050, 0), currency: 'isk' };
    expect(() => settlementLineOf(txn)).toThrow(WebhookPayloadError);
    expect(() => settlementLineOf(txn)).toThrow(/ISK/);
    expect(() => settlementLineOf({ ...transaction('stripe_fee', -500, 0), currency: 'isk' })).not.toThrow();
    expect(settlementLineOf({ ...transaction('stripe_fee', -500, 0), currency: 'isk' })?.gross).toBe(-5n);
  });

  it('refuses what it cannot read: a float, net ≠ amount − fee, an unexpanded charge, a rate without its source', () => {
    expect(() => settlementLineOf(transaction('stripe_fee', -5.5, 0))).toThrow(
      /not a Stripe balance transaction/,
    );
    expect(() => settlementLineOf({ ...transaction('stripe_fee', -500, 0), net: -499 })).toThrow(
      /net must equal gross - fee/,
    );
    expect(() => settlementLineOf(stripeFixture('api.balance_transaction.openapi-fixture.json'))).toThrow(
      /source ch_1PgafuB7WZ01zgkWXYmPNZs8 is not expanded/,
    );
    const rate = { ...transaction('stripe_fx_fee', -12, 0), exchange_rate: 1.1 };
    expect(() => settlementLineOf(rate)).toThrow(/exchange_rate 1.1 without its source/);
    const fx = stripeFixture('api.balance_transaction.exchange_rate.derived.json');
    fx.source.amount = 999.5;
    expect(() => settlementLineOf(fx)).toThrow(
      /charge ch_fakefakefakefakefake0001: .*not a non-negative integer/,
    );
  });
});

describe('payoutReportOf: a Stripe payout as a payout report', () => {
  it("reads stripe-mock's payout: Stripe's status, amount in minor units, dates from Unix seconds", () => {
    const payout = readPayout(stripeFixture('api.payout.openapi-fixture.json'));
    expect(payoutReportOf(payout)).toEqual({
      gatewayPayoutId: 'po_1Pgc79B7WZ01zgkWu1KToYf4',
      status: 'in_transit',
      currency: 'USD',
      amount: 1100n,
      createdAt: seconds(1234567890),
      arrivalDate: seconds(1234567890),
      description: 'STRIPE PAYOUT',
    });
    expect(payoutReportOf({ ...payout, arrival_date: null }).arrivalDate).toBeNull();
  });

  it('carries the failure code of a failed payout', () => {
    const payout = readPayout(stripeFixture('webhook.payout.failed.derived.json').data.object);
    expect(payoutReportOf(payout)).toMatchObject({ status: 'failed', failureCode: 'account_closed' });
  });

  it('refuses a status Stripe does not document and a payout without an amount', () => {
    const payout = readPayout(stripeFixture('api.payout.openapi-fixture.json'));
    expect(() => payoutReportOf({ ...payout, status: 'returned' })).toThrow(/unknown status returned/);
    const { amount: _, ...noAmount } = stripeFixture('api.payout.openapi-fixture.json');
    expect(() => readPayout(noAmount)).toThrow(/not a Stripe payout: amount/);
  });

  it("lists an automatic payout's lines once reconciled (or paid, on an API version without the field)", () => {
    const payout = readPayout(stripeFixture('api.payout.openapi-fixture.json'));
    expect(payoutLinesListable(payout)).toBe(true);
    expect(payoutLinesListable({ ...payout, reconciliation_status: 'in_progress' })).toBe(false);
    expect(payoutLinesListable({ ...payout, reconciliation_status: 'in_progress', status: 'paid' })).toBe(
      false,
    );
    expect(payoutLinesListable({ ...payout, reconciliation_status: undefined, status: 'paid' })).toBe(true);
    expect(payoutLinesListable({ ...payout, reconciliation_status: undefined })).toBe(false);
    expect(payoutLinesListable({ ...payout, automatic: false })).toBe(false);
  });
});

describe('StripeWebhook without a secret key: payout and charge events', () => {
  const SECRET = 'whsec_unit_settlement';
  const webhook = new StripeWebhook([SECRET]);

  it.each([
    ['webhook.payout.created.derived.json', 'pending'],
    ['webhook.payout.paid.derived.json', 'paid'],
    ['webhook.payout.failed.derived.json', 'failed'],
    ['webhook.payout.reconciliation_completed.derived.json', 'in_transit'],
  ])('normalises %s to one payout.updated without lines', async (name, status) => {
    const events = await webhook.normalize(stripeFixtureRaw(name));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'payout.updated',
      gateway: 'stripe',
      gatewayEventId: stripeFixture(name).id,
      amount: 1100n,
      currency: 'USD',
      occurredAt: seconds(1748441984),
      payout: { gatewayPayoutId: 'po_1Pgc79B7WZ01zgkWu1KToYf4', status, amount: 1100n },
    });
    expect(events[0]?.payout?.lines).toBeUndefined();
  });

  it('books nothing for charge.updated (its balance transaction cannot be asked for)', async () => {
    expect(await webhook.normalize(stripeFixtureRaw('webhook.charge.updated.derived.json'))).toEqual([]);
  });

  it('refuses a payout event with an undocumented status at the door (verify) and in normalize', async () => {
    const event = stripeFixture('webhook.payout.paid.derived.json');
    event.data.object.status = 'returned';
    const body = JSON.stringify(event);
    const headers = { 'stripe-signature': signStripePayload(body, SECRET) };
    await expect(webhook.verify(Buffer.from(body), headers)).rejects.toThrow(/unknown status returned/);
    await expect(webhook.normalize(body)).rejects.toThrow(WebhookPayloadError);
  });
});
