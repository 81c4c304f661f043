import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordOfflinePayment } from '../../src/billing/invoices.ts';
import type { Db } from '../../src/db/database.ts';
import { ConflictError } from '../../src/errors.ts';
import { flagDuplicatePayment } from '../../src/exceptions/exceptions.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  pendingCharge,
} from '../support/money-core.ts';

/**
 * Offline payments (PRODUCT §5: BANK, CHECK, CASH, OTHER) on a real database, without HTTP: never
 * while a gateway charge of the invoice is in flight. Each case books in a currency of its own.
 */
describe('offline payments', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  const invoiceRow = (id: string) =>
    db.selectFrom('invoices').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  it('are refused while a charge is in flight, and recorded on what is due once it failed', async () => {
    // 10000 due and a charge of 10000 pending; 4000 by bank is refused (it was recorded, 6000 left
    // due, and the charge's success took 10000: 14000 paid, 4000 silently the customer's credit).
    const { invoice, transaction } = await pendingCharge(db, { currency: 'USD', amount: 10000n });
    const before = await booksIn(db, 'USD');
    const refused = recordOfflinePayment(db, 'system', invoice.id, { method: 'BANK', amount: 4000n });
    await expect(refused).rejects.toBeInstanceOf(ConflictError);
    await expect(refused).rejects.toMatchObject({ code: 'charge_in_progress' });
    expect(await booksIn(db, 'USD')).toEqual(before);
    expect(
      await db.selectFrom('offline_payments').select('id').where('invoice_id', '=', invoice.id).execute(),
    ).toEqual([]);

    // The charge fails: 4000 by bank is recorded, 6000 left due.
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, transaction, { status: 'failed', failureCode: 'card_declined' }),
    );
    await recordOfflinePayment(db, 'system', invoice.id, { method: 'BANK', amount: 4000n });
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'OPEN',
      amount_paid: 4000n,
      amount_due: 6000n,
    });
    expect(await booksIn(db, 'USD')).toMatchObject({ offline_receipts: 4000n, 'receivable:customer': 6000n });
  });

  it('a charge in flight that succeeds leaves nothing due and no credit', async () => {
    const { invoice, transaction } = await pendingCharge(db, { currency: 'EUR', amount: 10000n });
    await expect(
      recordOfflinePayment(db, 'system', invoice.id, { method: 'CASH', amount: 10000n }),
    ).rejects.toMatchObject({ code: 'charge_in_progress' });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, transaction, { status: 'succeeded', gatewayTransactionId: 'pi_offline_eur' }),
    );
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'PAID',
      amount_paid: 10000n,
      amount_due: 0n,
    });
    const books = await booksIn(db, 'EUR');
    expect(books['customer_credit:customer']).toBeUndefined();
    expect(books['gateway_clearing:stripe']).toBe(10000n);
    await expect(
      recordOfflinePayment(db, 'system', invoice.id, { method: 'CASH', amount: 1n }),
    ).rejects.toMatchObject({ code: 'invoice_not_open' });
  });

  it('a failed charge that succeeds after an offline payment raises duplicate_payment naming its excess', async () => {
    // 10000 due; the charge of 10000 fails (nothing in flight, so 4000 by bank is recorded: 6000 due);
    // then the gateway reports the charge succeeded after all: 14000 paid, 4000 the customer's credit.
    // It raised nothing (only a charge on an invoice with nothing due did): 4000 silently credit.
    const { invoice, transaction } = await pendingCharge(db, { currency: 'PLN', amount: 10000n });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, transaction, { status: 'failed', failureCode: 'card_declined' }),
    );
    await recordOfflinePayment(db, 'system', invoice.id, { method: 'BANK', amount: 4000n });
    const applied = await applyAsBatch(
      db,
      canonicalEvent({
        type: 'charge.succeeded',
        gatewayTransactionId: 'pi_offline_pln',
        reference: transaction.id,
        amount: 10000n,
        currency: 'PLN',
      }),
    );
    expect(applied).toMatchObject({
      kind: 'exception',
      exception: 'duplicate_payment',
      transactionId: transaction.id,
      details: { invoice: invoice.id, excess: 4000n },
    });
    expect(applied.kind === 'exception' && applied.message).toContain('4000 PLN more than it had left due');
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'PAID',
      amount_paid: 14000n,
      amount_due: 0n,
    });
    expect(await booksIn(db, 'PLN')).toMatchObject({
      'customer_credit:customer': -4000n,
      'receivable:customer': 0n,
    });
  });

  it('a charge paid by an API or poller caller beyond a part paid offline is flagged with its excess', async () => {
    // The same through recordChargeResult's caller hook (the charge's own answer, a status check:
    // `flagDuplicatePayment` raises the exception); the reconcile path above returns it to its
    // inbox processor, which raises it with these details.
    const { invoice, transaction } = await pendingCharge(db, { currency: 'HUF', amount: 10000n });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, transaction, { status: 'failed', failureCode: 'card_declined' }),
    );
    await recordOfflinePayment(db, 'system', invoice.id, { method: 'CHECK', amount: 2500n });
    const recorded = await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(
        work,
        transaction,
        { status: 'succeeded', gatewayTransactionId: 'pi_offline_huf' },
        flagDuplicatePayment,
      ),
    );
    expect(recorded).toMatchObject({ kind: 'applied', overpaid: true, excess: 2500n });
    const raised = await db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'message'])
      .where('transaction_id', '=', transaction.id)
      .executeTakeFirstOrThrow();
    expect(raised.kind).toBe('duplicate_payment');
    expect(raised.message).toContain('2500 HUF');
    expect(raised.message).toContain(`"amount": 2500`);
  });
});
