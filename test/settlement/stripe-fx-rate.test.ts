import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { SettlementLine } from '../../src/gateways/settlement.ts';
import { settlementLineOf } from '../../src/gateways/stripe/settlement.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  pendingCharge,
  succeededCharge,
} from '../support/money-core.ts';
import { stripeFixture } from '../support/stripe.ts';

/*
 * A Stripe balance transaction's gross against what billhook booked × its `exchange_rate`
 * (https://docs.stripe.com/api/balance_transactions/object#balance_transaction_object-exchange_rate:
 * "the amount in currency A, multiplied by the exchange_rate, equals the amount in currency B").
 * billhook charged USD 10.00 (PaymentIntent PI); Stripe settled it into a EUR balance at rate 0.9:
 * EUR 9.00 (900), less a EUR 0.66 fee. The transaction is api.balance_transaction.exchange_rate.derived.json
 * (Stripe's documented example, EUR 10.00 as USD 12.34 at 1.234) turned round in memory: source USD
 * 1000, balance EUR, rate and amount as each case says. Stripe's source amount is billhook's USD
 * 10.00 in every case, so before the check a gross of EUR 9.50 at rate 0.9 (9.00) was booked as the
 * conversion of the USD 10.00 without a word, the EUR 0.50 too many hidden in fx:stripe. Minor units.
 */
const PI = 'pi_3RTkpYQ8iJWBZFaM1LBHNo0J';
const LINE = 'txn_fake_ch_fakefakefakefakefake0001';

let db: Db;
beforeEach(async () => {
  db = await moneyCoreDatabase();
});
afterEach(() => db?.destroy());

/** The fixture's charge of USD 10.00 (of PaymentIntent `intent`) settled as `amount` EUR (fee 66) at `rate`. */
function chargeLine(amount: number, rate: number, intent = PI): SettlementLine {
  const txn = stripeFixture('api.balance_transaction.exchange_rate.derived.json');
  Object.assign(txn, { currency: 'eur', amount, net: amount - txn.fee, exchange_rate: rate });
  Object.assign(txn.source, { currency: 'usd', amount: 1000, payment_intent: intent });
  return settlementLineOf(txn)!;
}

const record = (line: SettlementLine) =>
  recordSettlementReport(
    db,
    'system',
    { gateway: 'stripe', gatewayAccount: null },
    {
      lines: [],
      payouts: [
        {
          gatewayPayoutId: 'po_fx_rate_1',
          status: 'paid',
          currency: 'EUR',
          amount: line.net,
          createdAt: new Date('2026-11-04T00:00:00Z'),
          arrivalDate: new Date('2026-11-06T00:00:00Z'),
          lines: [line],
        },
      ],
    },
  );

const mismatches = () =>
  db
    .selectFrom('reconciliation_exceptions as x')
    .leftJoin('settlement_lines as l', 'l.id', 'x.settlement_line_id')
    .select(['x.kind', 'x.status', 'l.gateway_line_id', 'x.message', 'x.details'])
    .where('x.kind', '=', 'amount_mismatch')
    .execute();

describe("Stripe's converted gross against billhook's amount × exchange_rate", () => {
  it('EUR 9.00 for USD 10.00 at 0.9: booked back to 0 in both currencies, nothing raised', async () => {
    await succeededCharge(db, { currency: 'USD', amount: 1000n, gatewayTransactionId: PI });
    await record(chargeLine(900, 0.9));
    expect(await mismatches()).toEqual([]);
    const usd = await booksIn(db, 'USD');
    expect([usd['gateway_clearing:stripe'] ?? 0n, usd['fx:stripe']]).toEqual([0n, 1000n]);
    const eur = await booksIn(db, 'EUR');
    expect([eur['gateway_clearing:stripe'] ?? 0n, eur['fx:stripe'], eur['gateway_fees:stripe']]).toEqual([
      0n,
      -900n,
      66n,
    ]);
  });

  it('EUR 9.50 for USD 10.00 at 0.9 (9.00): one amount_mismatch naming the rate and both amounts, recorded twice', async () => {
    await succeededCharge(db, { currency: 'USD', amount: 1000n, gatewayTransactionId: PI });
    await record(chargeLine(950, 0.9));
    await record(chargeLine(950, 0.9));
    expect(await mismatches()).toEqual([
      {
        kind: 'amount_mismatch',
        status: 'open',
        gateway_line_id: LINE,
        message: expect.stringMatching(/950 EUR.*1000 USD.*0\.9.*900 EUR/),
        details: expect.objectContaining({
          currency: 'EUR',
          gross: '950',
          booked_currency: 'USD',
          booked: '1000',
          exchange_rate: '0.9',
          expected_low: '900',
          expected_high: '900',
        }),
      },
    ]);
    // Booked as the conversion of billhook's USD 10.00: the EUR 0.50 sits in fx:stripe for a person.
    expect((await booksIn(db, 'USD'))['gateway_clearing:stripe'] ?? 0n).toBe(0n);
    expect((await booksIn(db, 'EUR'))['fx:stripe']).toBe(-950n);
  });

  it("within Stripe's rounding: 1000 × 0.9005 = 900.5, so EUR 9.00 and 9.01 pass, 9.02 and 8.99 do not", async () => {
    const raised: Record<number, number> = {};
    for (const amount of [900, 901, 902, 899]) {
      const intent = `pi_round_${amount}`;
      await succeededCharge(db, { currency: 'USD', amount: 1000n, gatewayTransactionId: intent });
      const line = { ...chargeLine(amount, 0.9005, intent), gatewayLineId: `txn_round_${amount}` };
      await recordSettlementReport(
        db,
        'system',
        { gateway: 'stripe', gatewayAccount: null },
        { lines: [line], payouts: [] },
      );
      raised[amount] = (await mismatches()).filter((m) => m.gateway_line_id === line.gatewayLineId).length;
    }
    expect(raised).toEqual({ 900: 0, 901: 0, 902: 1, 899: 1 });
  });

  it('a line recorded before billhook knew its charge raises the amount_mismatch once the charge succeeds', async () => {
    const pending = await pendingCharge(db, { currency: 'USD', amount: 1000n });
    await record(chargeLine(950, 0.9));
    expect(await mismatches()).toEqual([]);
    await applyAsBatch(
      db,
      canonicalEvent({
        type: 'charge.succeeded',
        gatewayTransactionId: PI,
        reference: pending.transaction.id,
        amount: 1000n,
        currency: 'USD',
      }),
    );
    expect(await mismatches()).toEqual([
      expect.objectContaining({
        gateway_line_id: LINE,
        details: expect.objectContaining({ gross: '950', exchange_rate: '0.9', expected_low: '900' }),
      }),
    ]);
  });

  it("a refund line of EUR −4.00 for billhook's USD 4.00 refund at 0.9 (−3.60) raises one amount_mismatch", async () => {
    await succeededCharge(db, { currency: 'USD', amount: 1000n, gatewayTransactionId: PI });
    await applyAsBatch(
      db,
      canonicalEvent({
        type: 'refund.succeeded',
        gatewayTransactionId: PI,
        gatewayRefundId: 're_fx_rate_1',
        amount: 400n,
        currency: 'USD',
      }),
    );
    const refund = stripeFixture('api.balance_transaction.refund.derived.json');
    Object.assign(refund, { currency: 'eur', amount: -400, fee: 0, net: -400, exchange_rate: 0.9 });
    Object.assign(refund.source, { id: 're_fx_rate_1', currency: 'usd', amount: 400 });
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      { lines: [settlementLineOf(refund)!], payouts: [] },
    );
    expect(await mismatches()).toEqual([
      expect.objectContaining({
        gateway_line_id: refund.id,
        details: expect.objectContaining({ gross: '-400', booked: '-400', expected_low: '-360' }),
      }),
    ]);
  });
});
