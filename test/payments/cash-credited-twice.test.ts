import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditCashRest } from '../../src/billing/credit-returns.ts';
import type { Db } from '../../src/db/database.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordDispute } from '../../src/payments/disputes.ts';
import { createRefund, recordRefundResult } from '../../src/payments/refunds.ts';
import { booksIn, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';

/**
 * The cash an invoice gave to the customer's credit for want of a gateway step (`cash_credited`)
 * taken again by a PayPal claim lost and then the refund that pays it (PayPal pays a lost claim as a
 * refund: `lostDisputePaidAsRefund`): the same money, so its second giving is taken back and said
 * once, not once for the claim and again for its refund.
 */
describe('cash credited for want of a step, taken again by a PayPal claim and its refund', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  it('PayPal HUF 10000 paid, 6600 refunded and 67 credited, a claim of the 3400 left lost, then its refund of 3400: the 67 taken back from the credit once, one exception, losses 0', async () => {
    const { invoice, transaction } = await succeededCharge(db, {
      currency: 'HUF',
      amount: 10000n,
      gateway: 'paypal',
      gatewayTransactionId: 'CAPTURE-HUF-STEP',
    });
    const paid = await db
      .selectFrom('transactions')
      .selectAll()
      .where('id', '=', transaction.id)
      .executeTakeFirstOrThrow();
    const first = await inUnitOfWork(db, { actor: 'system' }, async (work) => {
      const refund = await createRefund(work, paid, { amount: 6600n });
      await creditCashRest(work, invoice.id, 67n, 'subscription_cancelled');
      return refund;
    });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordRefundResult(work, first.id, { status: 'succeeded', gatewayRefundId: 'REFUND-HUF-6600' }),
    );
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordDispute(work, paid, { gatewayDisputeId: 'PP-D-HUF', status: 'lost', amount: 3400n }),
    );
    const claim = await inUnitOfWork(db, { actor: 'system' }, (work) =>
      createRefund(work, paid, { amount: 3400n, gatewayRefundId: 'REFUND-HUF-CLAIM' }),
    );
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordRefundResult(work, claim.id, { status: 'succeeded', gatewayRefundId: 'REFUND-HUF-CLAIM' }),
    );
    const dispute = await db
      .selectFrom('disputes')
      .selectAll()
      .where('transaction_id', '=', paid.id)
      .executeTakeFirstOrThrow();
    expect(dispute.refund_id).toBe(claim.id);
    const refund = await db
      .selectFrom('refunds')
      .selectAll()
      .where('id', '=', claim.id)
      .executeTakeFirstOrThrow();
    expect(refund.change_credit_taken_back).toBe(67n);
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'refund_id'])
      .where('transaction_id', '=', paid.id)
      .execute();
    expect(exceptions).toEqual([{ kind: 'cash_credited_given_back_twice', refund_id: claim.id }]);
    const books = await booksIn(db, 'HUF');
    expect(books).toMatchObject({ revenue: -10000n, refunds: 10000n, 'gateway_clearing:paypal': 0n });
    expect(books['customer_credit:customer'] ?? 0n).toBe(0n);
    expect(books.chargeback_losses ?? 0n).toBe(0n);
  });
});
