import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { reportOf, SearchPage } from '../../src/gateways/paypal/transaction-search.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import { booksIn, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
});
afterAll(() => db?.destroy());

/** The real Transaction Search page of a donation, its partner fee and the withdrawal (test/fixtures/paypal/SOURCES.md). */
const page = SearchPage.parse(
  JSON.parse(
    readFileSync(
      path.resolve(
        import.meta.dirname,
        '../fixtures/paypal/api.reporting.transactions.donation_partner_fee_withdrawal.json',
      ),
      'utf8',
    ),
  ),
);

/**
 * PayPal's balance history swept by Transaction Search (PRODUCT §13): a payment, the partner fee
 * taken from it, and the withdrawal of what was left to the bank.
 */
describe('a PayPal payment with a partner fee, withdrawn to the bank', () => {
  /*
   * Worked by hand from the rows, USD minor units: the T0013 payment 25B16188FF732802U of 50.00 with
   * PayPal's fee 1.49 (gross 5000, fee 149), the T0113 partner fee of 0.88 on it (paypal_reference_id
   * 25B16188FF732802U: 88 more out of the balance), and the T0403 withdrawal of 47.63 = 5000 - 149 -
   * 88. Booked: clearing +5000 (the payment), -149 and -88 to gateway fees, -4763 to the bank: 0.
   */
  it('books the partner fee, so the withdrawal leaves clearing at 0', async () => {
    await succeededCharge(db, {
      currency: 'USD',
      amount: 5000n,
      gateway: 'paypal',
      gatewayTransactionId: '25B16188FF732802U',
    });
    const report = reportOf(page.transaction_details.map((row) => row.transaction_info));
    await recordSettlementReport(db, 'system', { gateway: 'paypal', gatewayAccount: null }, report);

    const books = await booksIn(db, 'USD');
    expect({
      clearing: books['gateway_clearing:paypal'] ?? 0n,
      fees: books['gateway_fees:paypal'] ?? 0n,
      bank: books['bank:paypal'] ?? 0n,
    }).toEqual({ clearing: 0n, fees: 237n, bank: 4763n });
  });
});
