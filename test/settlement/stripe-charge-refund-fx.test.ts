import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { SettlementReport } from '../../src/gateways/settlement.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  countEntries,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

/*
 * A Stripe account settling in USD a EUR charge and its partial refund, each converted from exactly
 * what billhook booked (Stripe's `exchange_rate` lines with the source's own amount): EUR 10.00
 * charged, settled USD 11.00 less a USD 0.62 fee (in the settlement currency); EUR 4.00 refunded,
 * settled USD −4.50. Worked by hand, minor units: EUR clearing 1000 − 400 = 600, converted out
 * 1000 and back −400: 0. USD clearing 1100 − 62 − 450 = 588, paid out as po_fx_1: clearing 0, bank
 * 588, fees 62. FX holds the conversion (EUR +600 / USD −650). No amount_mismatch: the conversions
 * are of billhook's own amounts (the cross-currency check must raise nothing here).
 */
const ACCOUNT = { gateway: 'stripe', gatewayAccount: null } as const;
const at = new Date('2026-11-04T10:00:00Z');

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
  await succeededCharge(db, { currency: 'EUR', amount: 1_000n, gatewayTransactionId: 'pi_fx_1' });
  await applyAsBatch(
    db,
    canonicalEvent({
      type: 'refund.succeeded',
      gateway: 'stripe',
      gatewayTransactionId: 'pi_fx_1',
      gatewayRefundId: 're_fx_1',
      amount: 400n,
      currency: 'EUR',
    }),
  );
});
afterAll(() => db?.destroy());

const report: SettlementReport = {
  lines: [],
  payouts: [
    {
      gatewayPayoutId: 'po_fx_1',
      status: 'paid',
      currency: 'USD',
      amount: 588n,
      createdAt: at,
      arrivalDate: at,
      lines: [
        {
          gatewayLineId: 'txn_fx_charge',
          kind: 'charge',
          gatewayTransactionId: 'pi_fx_1',
          currency: 'USD',
          gross: 1_100n,
          fee: 62n,
          net: 1_038n,
          original: { currency: 'EUR', amount: 1_000n },
          occurredAt: at,
        },
        {
          gatewayLineId: 'txn_fx_refund',
          kind: 'refund',
          gatewayTransactionId: 'pi_fx_1',
          gatewayRefundId: 're_fx_1',
          currency: 'USD',
          gross: -450n,
          fee: 0n,
          net: -450n,
          original: { currency: 'EUR', amount: -400n },
          occurredAt: at,
        },
      ],
    },
  ],
};

describe('a Stripe EUR charge and refund settled in USD, converted from billhook’s amounts', () => {
  it('books clearing to 0 in both currencies, the fee in USD, and raises nothing; twice changes nothing', async () => {
    await recordSettlementReport(db, 'system', ACCOUNT, report);
    const entries = await countEntries(db);
    await recordSettlementReport(db, 'system', ACCOUNT, report);
    expect(await countEntries(db)).toBe(entries);
    const eur = await booksIn(db, 'EUR');
    const usd = await booksIn(db, 'USD');
    expect(eur['gateway_clearing:stripe'] ?? 0n).toBe(0n);
    expect(usd['gateway_clearing:stripe'] ?? 0n).toBe(0n);
    expect(usd['bank:stripe']).toBe(588n);
    expect(usd['gateway_fees:stripe']).toBe(62n);
    expect(eur['fx:stripe']).toBe(600n);
    expect(usd['fx:stripe']).toBe(-650n);
    expect(await db.selectFrom('reconciliation_exceptions').select(['kind', 'message']).execute()).toEqual(
      [],
    );
  });
});
