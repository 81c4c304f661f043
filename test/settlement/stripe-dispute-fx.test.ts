import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { PayoutReport, SettlementLine } from '../../src/gateways/settlement.ts';
import { settlementLineOf } from '../../src/gateways/stripe/settlement.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';
import { stripeFixture } from '../support/stripe.ts';

/*
 * A Stripe dispute's balance transaction in the balance currency (USD) for a dispute in the
 * payment's currency (EUR). The payment: EUR 10.00 (PaymentIntent PI), settled as USD 12.34, fee 0.66
 * (api.balance_transaction.exchange_rate.derived.json, Stripe's API reference example of
 * `exchange_rate`). billhook holds its dispute as EUR 10.00. The dispute's withdrawal
 * (api.balance_transaction.dispute.exchange_rate.derived.json: the real withdrawal of
 * webhook.charge.dispute.created.json, converted at 1.234) is USD −12.34 and a 15.00 dispute fee,
 * its source the dispute of EUR 10.00. Its conversion is booked against billhook's EUR 10.00; a
 * withdrawal Stripe converted from other money (the dispute of EUR 5.00 there, USD −6.17) left the
 * EUR 5.00 difference in fx:stripe without a word, where PayPal's chargeback lines raise
 * `amount_mismatch` (paypal-chargeback-fx.test.ts). Minor units.
 */
const PI = 'pi_3RTkpYQ8iJWBZFaM1LBHNo0J';
const DISPUTE = 'du_0RystVItVxyc3Q6n8IfZyZXt';

let db: Db;
beforeEach(async () => {
  db = await moneyCoreDatabase();
  await succeededCharge(db, { currency: 'EUR', amount: 1000n, gateway: 'stripe', gatewayTransactionId: PI });
  await applyAsBatch(
    db,
    canonicalEvent({
      type: 'dispute.opened',
      gatewayTransactionId: PI,
      gatewayDisputeId: DISPUTE,
      amount: 1000n,
      currency: 'EUR',
    }),
  );
});
afterEach(() => db?.destroy());

const chargeLine = (): SettlementLine =>
  settlementLineOf(stripeFixture('api.balance_transaction.exchange_rate.derived.json'))!;

/** The dispute's withdrawal, Stripe's dispute of `disputed` EUR converted to `amount` USD (null: no rate). */
function disputeLine(change: { disputed?: number; amount?: number; exchangeRate?: number | null } = {}) {
  const txn = stripeFixture('api.balance_transaction.dispute.exchange_rate.derived.json');
  if (change.amount !== undefined)
    Object.assign(txn, { amount: change.amount, net: change.amount - txn.fee });
  if (change.disputed !== undefined) txn.source.amount = change.disputed;
  if (change.exchangeRate !== undefined) txn.exchange_rate = change.exchangeRate;
  return settlementLineOf(txn)!;
}

/** Stripe's payout of the charge and the dispute withdrawal: what their nets come to. */
const paidOut = (lines: SettlementLine[]): PayoutReport => ({
  gatewayPayoutId: 'po_dispute_fx_1',
  status: 'paid',
  currency: 'USD',
  amount: lines.reduce((sum, l) => sum + l.net, 0n),
  createdAt: new Date('2025-08-25T00:00:00Z'),
  arrivalDate: new Date('2025-08-27T00:00:00Z'),
  lines,
});

const record = (lines: SettlementLine[]) =>
  recordSettlementReport(
    db,
    'system',
    { gateway: 'stripe', gatewayAccount: null },
    { lines: [], payouts: [paidOut(lines)] },
  );

const mismatches = () =>
  db
    .selectFrom('reconciliation_exceptions as x')
    .leftJoin('settlement_lines as l', 'l.id', 'x.settlement_line_id')
    .select(['x.kind', 'x.status', 'l.gateway_line_id', 'x.message', 'x.details'])
    .where('x.kind', '=', 'amount_mismatch')
    .execute();

describe('Stripe dispute line in another currency than its dispute', () => {
  it('USD −12.34 converted from the EUR 10.00 dispute billhook holds: books clearing and FX back to 0 in both currencies, raises nothing', async () => {
    await record([chargeLine(), disputeLine()]);
    expect(await mismatches()).toEqual([]);
    const eur = await booksIn(db, 'EUR');
    expect(eur['gateway_clearing:stripe'] ?? 0n).toBe(0n);
    expect(eur['fx:stripe'] ?? 0n).toBe(0n);
    expect(eur.disputed_funds).toBe(1000n);
    const usd = await booksIn(db, 'USD');
    // 1234 − 66 in, −1234 − 1500 out, the payout of −1566 taken from the bank.
    expect(usd['gateway_clearing:stripe'] ?? 0n).toBe(0n);
    expect(usd['fx:stripe'] ?? 0n).toBe(0n);
    expect(usd['gateway_fees:stripe']).toBe(1566n);
    expect(usd['bank:stripe']).toBe(-1566n);
  });

  it('USD −6.17 converted from a EUR 5.00 dispute at Stripe, EUR 10.00 in billhook, raises one amount_mismatch naming both (the difference in FX)', async () => {
    await record([chargeLine(), disputeLine({ disputed: 500, amount: -617 })]);
    await record([chargeLine(), disputeLine({ disputed: 500, amount: -617 })]);
    expect(await mismatches()).toEqual([
      {
        kind: 'amount_mismatch',
        status: 'open',
        gateway_line_id: 'txn_0RystVItVxyc3Q6nDwOJhj6Z',
        message: expect.stringMatching(/-617 USD.*-500 EUR.*-1000 EUR/),
        details: expect.objectContaining({
          currency: 'USD',
          gross: '-617',
          converted_currency: 'EUR',
          converted: '-500',
          booked_currency: 'EUR',
          booked: '-1000',
        }),
      },
    ]);
    // Booked against billhook's EUR 10.00, as PayPal's: EUR clearing is 0, USD 6.17 sits in FX.
    expect((await booksIn(db, 'EUR'))['gateway_clearing:stripe'] ?? 0n).toBe(0n);
    expect((await booksIn(db, 'USD'))['fx:stripe']).toBe(-617n);
  });

  it('a USD dispute line without exchange_rate for the EUR 10.00 dispute raises one amount_mismatch: nothing says what it converted', async () => {
    await record([chargeLine(), disputeLine({ exchangeRate: null })]);
    expect(await mismatches()).toEqual([
      expect.objectContaining({
        gateway_line_id: 'txn_0RystVItVxyc3Q6nDwOJhj6Z',
        message: expect.stringMatching(/-1234 USD.*-1000 EUR/),
        details: expect.objectContaining({ converted_currency: null, converted: null, booked: '-1000' }),
      }),
    ]);
  });
});
