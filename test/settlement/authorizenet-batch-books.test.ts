import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { BatchDetails, TransactionSummary } from '../../src/gateways/authorizenet/schemas.ts';
import { AuthorizeNetSettlement, type BatchSource } from '../../src/gateways/authorizenet/settlement.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  countEntries,
  entryPostings,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

/*
 * The books of one Authorize.Net settled batch (getSettledBatchList with statistics, getTransactionList),
 * worked by hand in USD minor units. billhook charged A 100.00 (transId 2228100001) and C 50.00
 * (2228100002) and refunded 20.00 of C (2228100003). The batch, listed twice in one answer:
 * - A settled for 80.00 (less than billhook's 100.00: PRODUCT §11, the settled amount is what moved);
 * - C 50.00; the refund of 20.00 (`refundSettledSuccessfully`);
 * - a voided transaction (2228100004, 12.00: moved nothing, left out);
 * - 30.00 of a transaction billhook never made (2228100005, invoice number "60").
 * Statistics: charged 160.00, refunded 20.00, so the payout is 140.00 and the lines' nets sum to it.
 * Clearing: +10000 + 5000 − 2000 (billhook's own movements) − 2000 (A's 20.00 billhook booked but
 * Authorize.Net did not settle: `txn_…:settled_short:stl_…`, owed again by A's customer, with an
 * `amount_mismatch` for a person) − 14000 (the payout) = −3000: the 30.00 of the transaction billhook
 * does not know (`settlement_line_unmatched`). The bank holds 14000. The same sweep again changes
 * nothing.
 */
const BATCH = '3990200';
const [A, C, R, VOIDED, UNKNOWN] = ['2228100001', '2228100002', '2228100003', '2228100004', '2228100005'];
const SETTLED_AT = '2026-11-03T08:55:35Z';

const summary = (transId: string, transactionStatus: string, settleAmount: string): TransactionSummary => ({
  transId,
  transactionStatus,
  settleAmount,
  invoiceNumber: '60',
  submitTimeUTC: '2026-11-02T10:00:00Z',
});

const batch: BatchDetails = {
  batchId: BATCH,
  settlementTimeUTC: SETTLED_AT,
  settlementState: 'settledSuccessfully',
  paymentMethod: 'creditCard',
  statistics: [
    { accountType: 'Visa', chargeAmount: '110.00', refundAmount: '20.00' },
    { accountType: 'MasterCard', chargeAmount: '50.00', refundAmount: '0.00' },
  ],
};

const source: BatchSource = {
  settledBatches: async () => [batch, batch],
  batchTransactions: async (id) =>
    id === BATCH
      ? [
          summary(A, 'settledSuccessfully', '80.00'),
          summary(C, 'settledSuccessfully', '50.00'),
          summary(R, 'refundSettledSuccessfully', '20.00'),
          summary(VOIDED, 'voided', '12.00'),
          summary(UNKNOWN, 'settledSuccessfully', '30.00'),
        ]
      : [],
  accountCurrencies: async () => ['USD'],
};

const ACCOUNT = { gateway: 'authorizenet', gatewayAccount: null } as const;
const sweep = async () =>
  recordSettlementReport(
    db,
    'system',
    ACCOUNT,
    await new AuthorizeNetSettlement(source).fetchSettlements({
      from: new Date('2026-11-03T00:00:00Z'),
      to: new Date('2026-11-04T00:00:00Z'),
    }),
  );

let db: Db;
let chargeA: { transaction: { id: string } };
beforeAll(async () => {
  db = await moneyCoreDatabase();
  chargeA = await succeededCharge(db, {
    currency: 'USD',
    amount: 10_000n,
    gateway: 'authorizenet',
    gatewayTransactionId: A,
  });
  await succeededCharge(db, {
    currency: 'USD',
    amount: 5_000n,
    gateway: 'authorizenet',
    gatewayTransactionId: C,
  });
  await applyAsBatch(
    db,
    canonicalEvent({
      type: 'refund.succeeded',
      gateway: 'authorizenet',
      gatewayTransactionId: C,
      gatewayRefundId: R,
      amount: 2_000n,
      currency: 'USD',
    }),
  );
});
afterAll(() => db?.destroy());

describe('an Authorize.Net settled batch in the books', () => {
  it('a charge settled for less, a refund, a void, a transaction billhook does not know, the batch listed twice: one paid payout of 140.00, what did not settle owed again, clearing short by what billhook does not know', async () => {
    expect(await sweep()).toMatchObject({ payouts: 1, unmatched: 1 });
    const payouts = await db.selectFrom('payouts').selectAll().execute();
    expect(payouts).toEqual([
      expect.objectContaining({ gateway_payout_id: BATCH, status: 'paid', currency: 'USD', amount: 14_000n }),
    ]);
    const lines = await db
      .selectFrom('settlement_lines')
      .select(['gateway_line_id', 'kind', 'gross', 'payout_id'])
      .orderBy('gateway_line_id')
      .execute();
    expect(lines.map((l) => [l.gateway_line_id, l.kind, l.gross, l.payout_id])).toEqual([
      [A, 'charge', 8_000n, payouts[0]!.id],
      [C, 'charge', 5_000n, payouts[0]!.id],
      [R, 'refund', -2_000n, payouts[0]!.id],
      [UNKNOWN, 'charge', 3_000n, payouts[0]!.id],
    ]);
    const usd = await booksIn(db, 'USD');
    expect(usd['gateway_clearing:authorizenet']).toBe(-3_000n);
    const lineA = await db
      .selectFrom('settlement_lines')
      .select('id')
      .where('gateway_line_id', '=', A)
      .executeTakeFirstOrThrow();
    expect(await entryPostings(db, `${chargeA.transaction.id}:settled_short:${lineA.id}`)).toEqual({
      'receivable:customer': 2_000n,
      'gateway_clearing:authorizenet': -2_000n,
    });
    expect(usd['payouts_in_transit:authorizenet'] ?? 0n).toBe(0n);
    expect(usd['bank:authorizenet']).toBe(14_000n);
    expect(usd['gateway_fees:authorizenet'] ?? 0n).toBe(0n);
    const raised = await db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'details'])
      .orderBy('kind')
      .execute();
    expect(raised).toEqual([
      {
        kind: 'amount_mismatch',
        details: expect.objectContaining({
          gateway_line_id: A,
          gross: '8000',
          booked: '10000',
          followed: 'booked_short',
        }),
      },
      { kind: 'settlement_line_unmatched', details: expect.objectContaining({ gateway_line_id: UNKNOWN }) },
    ]);

    const entries = await countEntries(db);
    expect(await sweep()).toMatchObject({ payouts: 0, lines: 0, unmatched: 1 });
    expect(await countEntries(db)).toBe(entries);
    expect(await booksIn(db, 'USD')).toEqual(usd);
    expect(await db.selectFrom('reconciliation_exceptions').select('kind').execute()).toHaveLength(2);
  });
});
