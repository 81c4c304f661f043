import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { SettlementLine } from '../../src/gateways/settlement.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import { booksIn, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
});
afterAll(() => db?.destroy());

/**
 * A settlement line matched to a billhook charge, refund or dispute in the currency billhook booked it
 * in must say the amount billhook booked for it: a gateway that settled another amount moved other
 * money than the ledger holds, and that is for a person (PRODUCT §3 and §13), never left silently in
 * clearing. Each case books in a currency of its own.
 */
describe('a settlement line whose gross differs from what billhook booked', () => {
  /** A succeeded Stripe charge of `amount` in `currency`, its PaymentIntent `intent`. */
  async function charge(currency: string, amount: bigint, intent: string) {
    const { transaction } = await succeededCharge(db, { currency, amount, gatewayTransactionId: intent });
    return transaction;
  }
  const exceptionsOfLine = (gatewayLineId: string) =>
    db
      .selectFrom('reconciliation_exceptions as e')
      .innerJoin('settlement_lines as s', 's.id', 'e.settlement_line_id')
      .select(['e.kind', 'e.transaction_id'])
      .where('s.gateway_line_id', '=', gatewayLineId)
      .execute();

  /*
   * Worked by hand, minor units: billhook charged 5000 NZD (clearing +5000). The gateway's payout
   * lists that charge settled at 4000 with a fee of 150 (net 3850) and pays 3850: the fee moves to
   * gateway fees (clearing 4850) and the payout to the bank (clearing 1000). The lines sum to the
   * payout, so no payout_lines_mismatch; the 1000 the gateway never settled leaves clearing and is
   * owed again by the customer (`txn_…:settled_short:stl_…`: clearing 0, receivable 1000), and the
   * line that disagreed with the ledger is still raised for a person (test/settlement/settled-short.test.ts
   * works the rest of it).
   */
  it('raises amount_mismatch for the line (a charge billed 5000, settled 4000) and books the 1000 that did not settle as owed again', async () => {
    const transaction = await charge('NZD', 5000n, 'pi_nzd_settled_short');
    const settled: SettlementLine = {
      gatewayLineId: 'txn_nzd_settled_short',
      kind: 'charge',
      gatewayTransactionId: 'pi_nzd_settled_short',
      currency: 'NZD',
      gross: 4000n,
      fee: 150n,
      net: 3850n,
      occurredAt: new Date(),
    };
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      {
        lines: [],
        payouts: [
          {
            gatewayPayoutId: 'po_nzd_short',
            status: 'paid',
            currency: 'NZD',
            amount: 3850n,
            createdAt: new Date(),
            arrivalDate: new Date(),
            lines: [settled],
          },
        ],
      },
    );
    expect(await booksIn(db, 'NZD')).toMatchObject({
      'gateway_clearing:stripe': 0n,
      'receivable:customer': 1000n,
      'gateway_fees:stripe': 150n,
      'bank:stripe': 3850n,
    });
    expect(await exceptionsOfLine('txn_nzd_settled_short')).toEqual([
      { kind: 'amount_mismatch', transaction_id: transaction.id },
    ]);
  });
});
