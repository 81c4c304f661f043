import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wholeRefund } from '../../src/billing/credit-returns.ts';
import { changeSubscription, periodCreditToCustomer } from '../../src/billing/proration.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import { newId } from '../../src/db/ids.ts';
import type { TransactionRow } from '../../src/db/schema.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordDispute } from '../../src/payments/disputes.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import { booksIn, moneyCoreDatabase } from '../support/money-core.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

/**
 * A chargeback of a duplicate payment of a period invoice (payments/disputes.ts: it gives back the
 * overpayment first, taken off the customer's credit) and the period's change credit: the period
 * invoice still kept its sale, so it carries a later downgrade's credit, and a refund by hand gives
 * back no more than the period kept. Money core, a currency of its own per case.
 */
describe('a chargeback of a duplicate payment of a period invoice', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  it('leaves the period invoice its sale: a downgrade credit is carried by it, and a refund by hand gives back the rest only', async () => {
    // Basic (2800 + 10% = 3080) from Feb 1 2027, paid twice by card (3080 of credit), one payment
    // charged back (the credit taken back); downgraded to Lite (1400) with 7 of 28 days left: 385 of
    // credit (350 + 35 tax). The period kept 3080 − 385 = 2695: a refund by hand gives back that much
    // (it gave back 3080, the chargeback counted as the sale given back, so the period invoice carried
    // none of the 385, which the customer kept besides: 3465 back of 3080 paid).
    const flat = (amount: number, name: string) =>
      insertPlan(db, { name, currency: 'HUF', price: { model: 'FLAT_FEE', amount }, taxRatePpm: 100_000 });
    const [basic, lite] = [await flat(2800, 'Basic'), await flat(1400, 'Lite')];
    const customerId = await insertCustomer(db);
    const { subscription, invoices } = await createSubscription(
      db,
      'system',
      { customerId, planId: basic },
      new Date('2027-02-01T00:00:00Z'),
    );
    const invoice = invoices[0]!;
    expect(invoice.total).toBe(3080n);
    const pay = async (id: string): Promise<TransactionRow> => {
      const attempt = await db
        .insertInto('transactions')
        .values({
          id: newId('txn'),
          invoice_id: invoice.id,
          customer_id: customerId,
          gateway: 'stripe',
          amount: 3080n,
          currency: 'HUF',
          status: 'pending',
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const paid = await inUnitOfWork(db, { actor: 'system' }, (work) =>
        recordChargeResult(work, attempt, { status: 'succeeded', gatewayTransactionId: id }),
      );
      return paid.transaction;
    };
    await pay('pi_huf_1');
    const duplicate = await pay('pi_huf_2');
    expect((await booksIn(db, 'HUF'))['customer_credit:customer']).toBe(-3080n);
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordDispute(work, duplicate, {
        gatewayDisputeId: 'du_huf',
        status: 'lost',
        amount: 3080n,
        reversal: true,
      }),
    );
    expect((await booksIn(db, 'HUF'))['customer_credit:customer']).toBe(0n);

    await changeSubscription(
      db,
      'system',
      subscription.id,
      { planId: lite },
      new Date('2027-02-22T00:00:00Z'),
      false,
    );
    expect((await booksIn(db, 'HUF'))['customer_credit:customer']).toBe(-385n);
    const row = await db
      .selectFrom('invoices')
      .selectAll()
      .where('id', '=', invoice.id)
      .executeTakeFirstOrThrow();
    expect(await periodCreditToCustomer(db, row)).toEqual({ total: 385n, tax: 35n });
    expect(await wholeRefund(db, row)).toMatchObject({
      credited: 385n,
      kept: 2695n,
      cash: 2695n,
      credit: 0n,
    });
  });
});
