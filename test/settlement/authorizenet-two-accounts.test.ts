import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { BatchDetails, TransactionSummary } from '../../src/gateways/authorizenet/schemas.ts';
import { AuthorizeNetSettlement, type BatchSource } from '../../src/gateways/authorizenet/settlement.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import { booksIn, insertGatewayAccount, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';

/*
 * Two Authorize.Net accounts (PRODUCT §12): the default one and gwa_anet_b, each with its own
 * clearing, fees, payouts in transit and bank. USD, minor units. Account A (default) charged 40.00
 * (transId 2228400001), account B 25.00 (2228400002). B's sweep reads B's batch 3990401, which
 * settles B's 25.00 only: a paid payout of 25.00 on B (B's clearing 0, B's bank 2500), A's clearing
 * still 4000 and A's bank nothing. Then B's batch 3990402 lists A's transaction (one account's keys
 * configured as two): matched to nothing, booked on neither account, `settlement_line_unmatched`
 * naming both; its payout moves its 40.00 out of B's clearing only (B −4000, for a person), A's
 * clearing still 4000.
 */
const B = 'gwa_anet_b';
const [A_CHARGE, B_CHARGE] = ['2228400001', '2228400002'];

const summary = (transId: string, settleAmount: string): TransactionSummary => ({
  transId,
  transactionStatus: 'settledSuccessfully',
  settleAmount,
  submitTimeUTC: '2026-11-02T10:00:00Z',
});
const batch = (batchId: string, chargeAmount: string): BatchDetails => ({
  batchId,
  settlementTimeUTC: '2026-11-03T08:55:35Z',
  settlementState: 'settledSuccessfully',
  statistics: [{ accountType: 'Visa', chargeAmount, refundAmount: '0.00' }],
});
const sourceOf = (
  batches: BatchDetails[],
  transactions: Record<string, TransactionSummary[]>,
): BatchSource => ({
  settledBatches: async () => batches,
  batchTransactions: async (id) => transactions[id] ?? [],
  accountCurrencies: async () => ['USD'],
});
const sweepB = async (source: BatchSource) =>
  recordSettlementReport(
    db,
    'system',
    { gateway: 'authorizenet', gatewayAccount: B },
    await new AuthorizeNetSettlement(source).fetchSettlements({
      from: new Date('2026-11-03T00:00:00Z'),
      to: new Date('2026-11-04T00:00:00Z'),
    }),
  );

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
  await insertGatewayAccount(db, B, 'authorizenet');
  await succeededCharge(db, {
    currency: 'USD',
    amount: 4_000n,
    gateway: 'authorizenet',
    gatewayTransactionId: A_CHARGE,
  });
  await succeededCharge(db, {
    currency: 'USD',
    amount: 2_500n,
    gateway: 'authorizenet',
    gatewayAccount: B,
    gatewayTransactionId: B_CHARGE,
  });
});
afterAll(() => db?.destroy());

describe('two Authorize.Net accounts: a payout of account B', () => {
  it('moves B’s clearing to B’s bank and leaves A’s clearing as it was; a line of A’s charge on B is booked on neither', async () => {
    await sweepB(sourceOf([batch('3990401', '25.00')], { 3990401: [summary(B_CHARGE, '25.00')] }));
    let usd = await booksIn(db, 'USD');
    expect(usd['gateway_clearing:authorizenet']).toBe(4_000n);
    expect(usd['bank:authorizenet'] ?? 0n).toBe(0n);
    expect(usd[`gateway_clearing:authorizenet:${B}`]).toBe(0n);
    expect(usd[`bank:authorizenet:${B}`]).toBe(2_500n);

    await sweepB(sourceOf([batch('3990402', '40.00')], { 3990402: [summary(A_CHARGE, '40.00')] }));
    usd = await booksIn(db, 'USD');
    expect(usd['gateway_clearing:authorizenet']).toBe(4_000n);
    expect(usd['bank:authorizenet'] ?? 0n).toBe(0n);
    expect(usd[`gateway_clearing:authorizenet:${B}`]).toBe(-4_000n);
    expect(usd[`bank:authorizenet:${B}`]).toBe(6_500n);
    const raised = await db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'gateway_account', 'details'])
      .execute();
    expect(raised).toEqual([
      {
        kind: 'settlement_line_unmatched',
        gateway_account: B,
        details: expect.objectContaining({ gateway_line_id: A_CHARGE, other_gateway_account: null }),
      },
    ]);
  });
});
