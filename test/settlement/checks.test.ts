import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { PaymentEvent } from '../../src/gateways/types.ts';
import { raiseChargesNotPaidOut } from '../../src/settlement/checks.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import { applyAsBatch, canonicalEvent, moneyCoreDatabase, pendingCharge } from '../support/money-core.ts';

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
});
afterAll(() => db?.destroy());

const DAY_MS = 86_400_000;
/** Applies a canonical Authorize.Net event as a reconcile batch of one does. */
const apply = (event: Pick<PaymentEvent, 'type' | 'amount' | 'currency'> & Partial<PaymentEvent>) =>
  applyAsBatch(db, canonicalEvent({ ...event, gateway: 'authorizenet' }));

/** A succeeded USD Authorize.Net charge of `amount` minor units, made `daysAgo` days ago, as `transId`. */
async function charge(amount: bigint, transId: string, daysAgo: number) {
  const { transaction } = await pendingCharge(db, { currency: 'USD', amount, gateway: 'authorizenet' });
  await apply({
    type: 'charge.succeeded',
    gatewayTransactionId: transId,
    reference: transaction.id,
    amount,
    currency: 'USD',
  });
  await db
    .updateTable('transactions')
    .set({ created_at: new Date(Date.now() - daysAgo * DAY_MS) })
    .where('id', '=', transaction.id)
    .execute();
  return transaction.id;
}

/**
 * `charge_not_paid_out` (PRODUCT.md §13) on a real database: a charge refunded whole before it
 * settled (Authorize.Net voids such a charge: billhook's refund of an unsettled charge, error 54)
 * moved no money for any payout to carry, so it is never one; a charge refunded in part still is.
 */
describe('raiseChargesNotPaidOut', () => {
  it('leaves out a charge whose succeeded refunds cover it, and still raises one refunded in part', async () => {
    const settled = await charge(1_000n, '2290000001', 12);
    const voided = await charge(2_000n, '2290000002', 10);
    const partly = await charge(3_000n, '2290000003', 10);
    await apply({
      type: 'refund.succeeded',
      gatewayTransactionId: '2290000002',
      gatewayRefundId: '2290000012',
      amount: 2_000n,
      currency: 'USD',
    });
    await apply({
      type: 'refund.succeeded',
      gatewayTransactionId: '2290000003',
      gatewayRefundId: '2290000013',
      amount: 1_000n,
      currency: 'USD',
    });
    // The account's payouts are known from 12 days ago: the first charge's settled batch.
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'authorizenet', gatewayAccount: null },
      {
        lines: [],
        payouts: [
          {
            gatewayPayoutId: '4100001',
            status: 'paid',
            currency: 'USD',
            amount: 1_000n,
            createdAt: new Date(Date.now() - 11 * DAY_MS),
            arrivalDate: null,
            lines: [
              {
                gatewayLineId: '2290000001',
                kind: 'charge',
                gatewayTransactionId: '2290000001',
                currency: 'USD',
                gross: 1_000n,
                fee: 0n,
                net: 1_000n,
                occurredAt: new Date(Date.now() - 12 * DAY_MS - 60_000),
              },
            ],
          },
        ],
      },
    );
    const delays = { stripe: 0, paypal: 0, authorizenet: 2, eway: 0, securepay: 0 };

    expect(await raiseChargesNotPaidOut(db, 'system', delays, 3)).toBe(1);
    const raised = await db
      .selectFrom('reconciliation_exceptions')
      .select('transaction_id')
      .where('kind', '=', 'charge_not_paid_out')
      .execute();
    expect(raised.map((e) => e.transaction_id)).toEqual([partly]);
    expect(raised.map((e) => e.transaction_id)).not.toContain(voided);
    expect(raised.map((e) => e.transaction_id)).not.toContain(settled);
  });
});
