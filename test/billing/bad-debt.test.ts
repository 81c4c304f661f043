import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markUncollectible } from '../../src/billing/bad-debt.ts';
import { recordOfflinePayment } from '../../src/billing/invoices.ts';
import type { Db } from '../../src/db/database.ts';
import { newId } from '../../src/db/ids.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import { recordReportedVoid } from '../../src/payments/voids.ts';
import { booksIn, entryPostings, moneyCoreDatabase, pendingCharge } from '../support/money-core.ts';

/**
 * Bad debt (billing/bad-debt.ts) on a real database, without HTTP: each write-off is booked, and each
 * payment recovers the write-off it pays. Each case books in a currency of its own.
 */
describe('bad debt', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  const invoiceRow = (id: string) =>
    db.selectFrom('invoices').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  it('an invoice written off again after its recovering payment was voided is written off again, and recovered again', async () => {
    // 10000 written off; charged by hand through Authorize.Net and recovered (PAID); the charge is
    // voided before settlement (OPEN, 10000 owed again); written off again. The second write-off
    // posted nothing (its key was the first's): UNCOLLECTIBLE with the receivable still 10000 and bad
    // debt 0, then 4000 paid by bank booked bad debt −4000 with the receivable still 10000.
    const { customerId, invoice, transaction } = await pendingCharge(db, {
      currency: 'NOK',
      amount: 10000n,
      gateway: 'authorizenet',
    });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, transaction, { status: 'failed', failureCode: 'declined' }),
    );
    await markUncollectible(db, 'system', invoice.id, new Date());
    expect(await booksIn(db, 'NOK')).toMatchObject({ bad_debt: 10000n, 'receivable:customer': 0n });
    const byHand = await db
      .insertInto('transactions')
      .values({
        id: newId('txn'),
        invoice_id: invoice.id,
        customer_id: customerId,
        gateway: 'authorizenet',
        amount: 10000n,
        currency: 'NOK',
        status: 'pending',
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const paid = await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, byHand, { status: 'succeeded', gatewayTransactionId: 'anet_nok' }),
    );
    expect(await booksIn(db, 'NOK')).toMatchObject({ bad_debt: 0n, 'receivable:customer': 0n });
    const voided = await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordReportedVoid(work, paid.transaction),
    );
    expect(voided.kind).toBe('applied');
    expect(await invoiceRow(invoice.id)).toMatchObject({ status: 'OPEN', amount_due: 10000n });

    await markUncollectible(db, 'system', invoice.id, new Date());
    expect(await entryPostings(db, `${invoice.id}:uncollectible:2`)).toEqual({
      bad_debt: 10000n,
      'receivable:customer': -10000n,
    });
    expect(await booksIn(db, 'NOK')).toMatchObject({ bad_debt: 10000n, 'receivable:customer': 0n });

    await recordOfflinePayment(db, 'system', invoice.id, { method: 'BANK', amount: 4000n });
    expect(await entryPostings(db, `${invoice.id}:recovered:2:4000`)).toEqual({
      'receivable:customer': 4000n,
      bad_debt: -4000n,
    });
    expect(await booksIn(db, 'NOK')).toMatchObject({
      bad_debt: 6000n,
      'receivable:customer': 0n,
      offline_receipts: 4000n,
    });
    await recordOfflinePayment(db, 'system', invoice.id, { method: 'BANK', amount: 6000n });
    expect(await invoiceRow(invoice.id)).toMatchObject({ status: 'PAID', amount_due: 0n });
    expect(await booksIn(db, 'NOK')).toMatchObject({
      bad_debt: 0n,
      'receivable:customer': 0n,
      offline_receipts: 10000n,
    });
  });
});
