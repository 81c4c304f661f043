import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { reportOf, SearchPage, type TransactionInfo } from '../../src/gateways/paypal/transaction-search.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import { booksIn, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';

/*
 * Rows of PayPal's Transaction Search other than payments, refunds, partner fees and withdrawals.
 * The sweep used to skip each of them without a word: money left the balance, nothing was booked,
 * no exception, and clearing kept it for ever. Amounts below in USD minor units.
 */

const fixture = (name: string) =>
  JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../fixtures/paypal', name), 'utf8'));
/** PayPal's documented T0006 payment of 465.00 with its fee 13.79 (test/fixtures/paypal/SOURCES.md). */
const payment = SearchPage.parse(fixture('api.reporting.transactions.docs_sample.json'))
  .transaction_details[0]!.transaction_info;
/** The real sandbox T0001 mass payment the account sent and completed: −30.00, fee −0.25. */
const sent = SearchPage.parse(
  fixture('api.reporting.transactions.sandbox.page_2.json'),
).transaction_details.find(
  (d) =>
    d.transaction_info.transaction_event_code === 'T0001' && d.transaction_info.transaction_status === 'S',
)!.transaction_info;
const at = payment.transaction_initiation_date;

/** A withdrawal to the bank (T0400) of `value` USD, e.g. `'431.21'`. */
const withdrawal = (value: string): TransactionInfo => ({
  transaction_id: '3WDRAWAL0400AAAA1',
  transaction_event_code: 'T0400',
  transaction_initiation_date: at,
  transaction_amount: { currency_code: 'USD', value: `-${value}` },
  transaction_status: 'S',
});

let db: Db;
beforeEach(async () => {
  db = await moneyCoreDatabase();
  await succeededCharge(db, {
    currency: 'USD',
    amount: 46_500n,
    gateway: 'paypal',
    gatewayTransactionId: payment.transaction_id,
  });
});
afterEach(() => db?.destroy());

const sweep = (...rows: TransactionInfo[]) =>
  recordSettlementReport(db, 'system', { gateway: 'paypal', gatewayAccount: null }, reportOf(rows));

const exceptions = () =>
  db
    .selectFrom('reconciliation_exceptions as x')
    .leftJoin('settlement_lines as l', 'l.id', 'x.settlement_line_id')
    .select(['x.kind', 'l.gateway_line_id', 'x.message'])
    .orderBy('x.id')
    .execute();

describe('a PayPal T01nn fee row of the sweep (a chargeback fee)', () => {
  it('is a fee line naming its payment, booked to gateway fees, so the withdrawal leaves clearing at 0', async () => {
    // The T0106 chargeback fee of 20.00 (constructed: no real row found), and the withdrawal of what
    // is left: 465.00 − 13.79 − 20.00 = 431.21. Clearing 46500 − 1379 − 2000 − 43121 = 0.
    const fee: TransactionInfo = {
      transaction_id: '7FEE0106CHARGEBK1',
      paypal_reference_id: payment.transaction_id,
      transaction_event_code: 'T0106',
      transaction_initiation_date: at,
      transaction_amount: { currency_code: 'USD', value: '-20.00' },
      transaction_status: 'S',
    };
    await sweep(payment, fee, withdrawal('431.21'));
    const books = await booksIn(db, 'USD');
    expect({
      clearing: books['gateway_clearing:paypal'] ?? 0n,
      fees: books['gateway_fees:paypal'],
      adjustments: books['settlement_adjustments:paypal'] ?? 0n,
      bank: books['bank:paypal'],
    }).toEqual({ clearing: 0n, fees: 3_379n, adjustments: 0n, bank: 43_121n });
    const line = await db
      .selectFrom('settlement_lines')
      .select(['kind', 'gross', 'net', 'gateway_transaction_id'])
      .where('gateway_line_id', '=', fee.transaction_id)
      .executeTakeFirstOrThrow();
    expect(line).toEqual({
      kind: 'fee',
      gross: -2000n,
      net: -2000n,
      gateway_transaction_id: '5TY05013RG002845M',
    });
    expect(await exceptions()).toEqual([]);
  });
});

describe('a completed PayPal row the sweep does not book itself (a mass payment sent)', () => {
  it('is an adjustment line with a settlement_adjustment exception for a person, never dropped', async () => {
    // The sent T0001 takes 30.00 and its fee 0.25 out of the balance: the withdrawal is
    // 465.00 − 13.79 − 30.25 = 420.96. Clearing 46500 − 1379 − 3025 − 42096 = 0.
    await sweep(payment, sent, withdrawal('420.96'));
    const books = await booksIn(db, 'USD');
    expect({
      clearing: books['gateway_clearing:paypal'] ?? 0n,
      fees: books['gateway_fees:paypal'],
      adjustments: books['settlement_adjustments:paypal'],
      bank: books['bank:paypal'],
    }).toEqual({ clearing: 0n, fees: 1_379n, adjustments: 3_025n, bank: 42_096n });
    expect(await exceptions()).toEqual([
      {
        kind: 'settlement_adjustment',
        gateway_line_id: sent.transaction_id,
        message: expect.stringContaining('of -3025 USD (net, minor units) booked into clearing'),
      },
    ]);
    // A second sweep of the same rows books and raises nothing more.
    await sweep(payment, sent, withdrawal('420.96'));
    expect((await booksIn(db, 'USD'))['settlement_adjustments:paypal']).toBe(3_025n);
    expect(await exceptions()).toHaveLength(1);
  });

  it('is not booked while pending', async () => {
    await sweep({ ...sent, transaction_status: 'P' });
    expect(await db.selectFrom('settlement_lines').select('id').execute()).toEqual([]);
  });
});
