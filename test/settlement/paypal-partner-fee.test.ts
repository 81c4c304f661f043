import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { reportOf, SearchPage, type TransactionInfo } from '../../src/gateways/paypal/transaction-search.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  pendingCharge,
} from '../support/money-core.ts';

// The real page's ids are fixed: each test gets a database of its own.
let db: Db;
beforeEach(async () => {
  db = await moneyCoreDatabase();
});
afterEach(() => db?.destroy());

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

/** The real page's rows, and the donation's capture succeeded in billhook (50.00 USD). */
async function donationPaid(): Promise<TransactionInfo[]> {
  const { transaction } = await pendingCharge(db, { currency: 'USD', amount: 5000n, gateway: 'paypal' });
  await applyAsBatch(
    db,
    canonicalEvent({
      type: 'charge.succeeded',
      gateway: 'paypal',
      gatewayTransactionId: '25B16188FF732802U',
      reference: transaction.id,
      amount: 5000n,
      currency: 'USD',
    }),
  );
  return page.transaction_details.map((row) => row.transaction_info);
}
const account = { gateway: 'paypal' as const, gatewayAccount: null };
const state = async () => {
  const books = await booksIn(db, 'USD');
  const exceptions = await db
    .selectFrom('reconciliation_exceptions as e')
    .innerJoin('settlement_lines as l', 'l.id', 'e.settlement_line_id')
    .select(['e.kind', 'l.gateway_line_id'])
    .orderBy('e.id')
    .execute();
  return {
    clearing: books['gateway_clearing:paypal'] ?? 0n,
    fees: books['gateway_fees:paypal'] ?? 0n,
    adjustments: books['settlement_adjustments:paypal'] ?? 0n,
    exceptions,
  };
};

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
    const { transaction } = await pendingCharge(db, { currency: 'USD', amount: 5000n, gateway: 'paypal' });
    await applyAsBatch(
      db,
      canonicalEvent({
        type: 'charge.succeeded',
        gateway: 'paypal',
        gatewayTransactionId: '25B16188FF732802U',
        reference: transaction.id,
        amount: 5000n,
        currency: 'USD',
      }),
    );
    const report = reportOf(page.transaction_details.map((row) => row.transaction_info));
    await recordSettlementReport(db, 'system', { gateway: 'paypal', gatewayAccount: null }, report);

    const books = await booksIn(db, 'USD');
    expect({
      clearing: books['gateway_clearing:paypal'] ?? 0n,
      fees: books['gateway_fees:paypal'] ?? 0n,
      bank: books['bank:paypal'] ?? 0n,
    }).toEqual({ clearing: 0n, fees: 237n, bank: 4763n });
  });
  /*
   * The partner fee swept after its payment, worked by hand (USD minor units): the first sweep lists the
   * payment (gross 5000, fee 149) and the withdrawal of 4763 but not yet the T0113 row: clearing 5000 -
   * 149 - 4763 = 88, fees 149. The next sweep lists the T0113 row alone: its payment is not among the
   * rows, so it cannot be added to the payment's fee; it is an adjustment line of -88 (clearing 0,
   * settlement adjustments 88) with an unexpected_fee exception for a person, who moves the 88 to fees.
   * It used to vanish: 88 left in clearing, no exception. A second run of that sweep changes nothing.
   */
  it('raises an exception and books against adjustments a partner fee swept after its payment', async () => {
    const rows = await donationPaid();
    await recordSettlementReport(
      db,
      'system',
      account,
      reportOf(rows.filter((row) => row.transaction_event_code !== 'T0113')),
    );
    expect(await state()).toMatchObject({ clearing: 88n, fees: 149n, exceptions: [] });
    const later = reportOf(rows.filter((row) => row.transaction_event_code === 'T0113'));
    await recordSettlementReport(db, 'system', account, later);
    await recordSettlementReport(db, 'system', account, later);
    expect(await state()).toEqual({
      clearing: 0n,
      fees: 149n,
      adjustments: 88n,
      exceptions: [{ kind: 'unexpected_fee', gateway_line_id: '5PU95094C5021335H' }],
    });
  });
});

describe('a PayPal partner fee its payment’s line was recorded without', () => {
  /*
   * Worked by hand: the first sweep records the payment's line without the T0113 row (fee 149) and the
   * withdrawal (clearing 88, fees 149). The next sweep lists all three rows: the partner fee is added to
   * the payment's line (fee 237), but that line was booked already: the difference of 88 cannot be
   * booked silently a second time through the line, so it stays in clearing with an unexpected_fee
   * exception on the payment's line. It used to stay in clearing without any exception.
   */
  it('raises an exception on the payment’s line when a later sweep reports it with the partner fee', async () => {
    const rows = await donationPaid();
    await recordSettlementReport(
      db,
      'system',
      account,
      reportOf(rows.filter((row) => row.transaction_event_code !== 'T0113')),
    );
    await recordSettlementReport(db, 'system', account, reportOf(rows));
    expect(await state()).toEqual({
      clearing: 88n,
      fees: 149n,
      adjustments: 0n,
      exceptions: [{ kind: 'unexpected_fee', gateway_line_id: '25B16188FF732802U' }],
    });
  });
});
