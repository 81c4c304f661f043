import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import { settlementReport } from '../../src/settlement/report.ts';
import { booksIn, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';

/*
 * The settlement report's clearing columns against the ledger, for a charge Stripe converted
 * (Stripe's documented exchange_rate example, test/fixtures/stripe/api.balance_transaction.exchange_rate.derived.json:
 * EUR 10.00 charged, settled as USD 12.34 with a USD 0.66 fee) and a USD 1.00 adjustment, paid out
 * together (12.34 − 0.66 − 1.00 = 10.68). Minor units.
 * Ledger: EUR clearing +1000 − 1000 (conversion) = 0, fx EUR +1000; USD clearing +1234 (conversion)
 * − 66 (fee) − 100 (adjustment) − 1068 (payout) = 0, fx USD −1234, gateway fees 66, settlement
 * adjustments 100, bank 1068.
 * The report's `fees` column used to be every settlement line's clearing movement (grouped by the
 * entry's source): EUR −1000 and USD +1068, although gateway fees moved 0 and 66.
 */

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
});
afterAll(() => db?.destroy());

describe('the settlement report of a converted charge and an adjustment', () => {
  it('shows fees, conversions and adjustments apart, each what its account moved, and the FX account', async () => {
    const from = new Date(Date.now() - 60_000);
    await succeededCharge(db, { currency: 'EUR', amount: 1000n, gatewayTransactionId: 'pi_report_fx' });
    const occurredAt = new Date();
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      {
        lines: [],
        payouts: [
          {
            gatewayPayoutId: 'po_report_fx',
            status: 'paid',
            currency: 'USD',
            amount: 1068n,
            createdAt: occurredAt,
            arrivalDate: occurredAt,
            lines: [
              {
                gatewayLineId: 'txn_report_fx',
                kind: 'charge',
                gatewayTransactionId: 'pi_report_fx',
                currency: 'USD',
                gross: 1234n,
                fee: 66n,
                net: 1168n,
                original: { currency: 'EUR', amount: 1000n },
                occurredAt,
              },
              {
                gatewayLineId: 'txn_report_adj',
                kind: 'adjustment',
                currency: 'USD',
                gross: -100n,
                fee: 0n,
                net: -100n,
                occurredAt,
              },
            ],
          },
        ],
      },
    );
    const usd = await booksIn(db, 'USD');
    const eur = await booksIn(db, 'EUR');
    expect([
      usd['gateway_clearing:stripe'],
      usd['gateway_fees:stripe'],
      usd['settlement_adjustments:stripe'],
      usd['bank:stripe'],
      usd['fx:stripe'],
    ]).toEqual([0n, 66n, 100n, 1068n, -1234n]);
    expect([eur['gateway_clearing:stripe'], eur['fx:stripe']]).toEqual([0n, 1000n]);

    const rows = await settlementReport(db, { from, to: new Date(Date.now() + 60_000), gateway: 'stripe' });
    const row = (currency: string) => rows.find((r) => r.currency === currency);
    expect(row('EUR')).toMatchObject({
      clearing: {
        opening: 0n,
        charges: 1000n,
        fees: 0n,
        conversions: -1000n,
        adjustments: 0n,
        payouts: 0n,
        other: 0n,
        closing: 0n,
        balances: true,
      },
      gatewayFees: { movements: 0n },
      fx: { opening: 0n, movements: 1000n, closing: 1000n },
    });
    expect(row('USD')).toMatchObject({
      clearing: {
        opening: 0n,
        charges: 0n,
        fees: -66n,
        conversions: 1234n,
        adjustments: -100n,
        payouts: -1068n,
        other: 0n,
        closing: 0n,
        balances: true,
      },
      gatewayFees: { movements: 66n },
      fx: { opening: 0n, movements: -1234n, closing: -1234n },
      bank: { movements: 1068n },
    });
  });
});
