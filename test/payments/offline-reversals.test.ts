import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markUncollectible } from '../../src/billing/bad-debt.ts';
import { createInvoice, finalizeInvoice, recordOfflinePayment } from '../../src/billing/invoices.ts';
import type { Db } from '../../src/db/database.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { reverseOfflinePayment } from '../../src/payments/offline-reversals.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  countEntries,
  entryPostings,
  moneyCoreDatabase,
  pendingCharge,
} from '../support/money-core.ts';

/**
 * Reversing an offline payment (a bounced cheque) on a real database, without HTTP: the invoice owed
 * it again, `op_…:reversed` in the ledger, the overpayment credit it leaves unearned taken back, and
 * every refusal changing nothing. Each case books in a currency of its own (booksIn sums per code).
 */
describe('offline payment reversal', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  const invoiceRow = (id: string) =>
    db.selectFrom('invoices').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const offlinePayments = (invoiceId: string) =>
    db
      .selectFrom('offline_payments')
      .selectAll()
      .where('invoice_id', '=', invoiceId)
      .orderBy('created_at')
      .execute();

  /**
   * A PLN-style duplicate: 10000 due, the card charge fails, a cheque pays 10000 (PAID), then the
   * gateway reports the charge succeeded after all: 20000 paid, 10000 the customer's credit.
   */
  async function chequeThenLateCard(currency: string, gatewayTransactionId: string) {
    const { customerId, invoice, transaction } = await pendingCharge(db, { currency, amount: 10000n });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, transaction, { status: 'failed', failureCode: 'card_declined' }),
    );
    await recordOfflinePayment(db, 'system', invoice.id, {
      method: 'CHECK',
      amount: 10000n,
      reference: 'cheque 1042',
    });
    await applyAsBatch(
      db,
      canonicalEvent({
        type: 'charge.succeeded',
        gatewayTransactionId,
        reference: transaction.id,
        amount: 10000n,
        currency,
      }),
    );
    expect(await invoiceRow(invoice.id)).toMatchObject({ status: 'PAID', amount_paid: 20000n });
    expect(await booksIn(db, currency)).toMatchObject({
      'customer_credit:customer': -10000n,
      offline_receipts: 10000n,
      'receivable:customer': 0n,
    });
    const [cheque] = await offlinePayments(invoice.id);
    return { customerId, invoice, transaction, cheque: cheque! };
  }

  it('a bounced cheque that a late card payment duplicated: the invoice stays PAID by the card and the 10000 credit is taken back', async () => {
    // Before the reversal existed the cheque's 10000 stayed in offline receipts and as the customer's
    // credit, with no way to take it back. Now: offline receipts 0, credit 0, receivable 0.
    const { invoice, cheque } = await chequeThenLateCard('PLN', 'pi_bounce_pln');
    const after = await reverseOfflinePayment(
      db,
      'system',
      invoice.id,
      cheque.id,
      'cheque 1042 returned unpaid',
    );
    expect(after).toMatchObject({ status: 'PAID', amount_paid: 10000n, amount_due: 0n });
    expect(await booksIn(db, 'PLN')).toMatchObject({
      'customer_credit:customer': 0n,
      offline_receipts: 0n,
      'receivable:customer': 0n,
      'gateway_clearing:stripe': 10000n,
    });
    expect(await entryPostings(db, `${cheque.id}:reversed`)).toEqual({
      'receivable:customer': 10000n,
      offline_receipts: -10000n,
    });
    expect(await entryPostings(db, `${cheque.id}:overpaid_reversed`)).toEqual({
      'customer_credit:customer': 10000n,
      'receivable:customer': -10000n,
    });
    const [stored] = await offlinePayments(invoice.id);
    expect(stored).toMatchObject({ reversal_reason: 'cheque 1042 returned unpaid' });
    expect(stored!.reversed_at).toBeInstanceOf(Date);
    const listed = await db
      .selectFrom('transaction_list')
      .select(['status', 'failure_code', 'failure_message'])
      .where('id', '=', cheque.id)
      .executeTakeFirstOrThrow();
    expect(listed).toEqual({
      status: 'canceled',
      failure_code: 'reversed',
      failure_message: 'cheque 1042 returned unpaid',
    });
    const activity = await db
      .selectFrom('activities')
      .select('data')
      .where('resource_id', '=', invoice.id)
      .where('action', '=', 'invoice.offline_payment_reversed')
      .executeTakeFirstOrThrow();
    expect(activity.data).toMatchObject({
      offline_payment: cheque.id,
      amount: '10000',
      overpayment_taken_back: '10000',
      reason: 'cheque 1042 returned unpaid',
    });

    // Once more: 409 offline_payment_reversed, nothing posted.
    const entries = await countEntries(db);
    const books = await booksIn(db, 'PLN');
    await expect(reverseOfflinePayment(db, 'system', invoice.id, cheque.id, 'again')).rejects.toMatchObject({
      status: 409,
      code: 'offline_payment_reversed',
    });
    expect(await countEntries(db)).toBe(entries);
    expect(await booksIn(db, 'PLN')).toEqual(books);
  });

  it('credit the customer spent meanwhile is taken all the same, in debit, with an overpayment_credit_spent exception on the card payment', async () => {
    // The 10000 of credit paid 6000 of a second NOK invoice before the cheque bounced: 4000 is left,
    // so taking back 10000 leaves the credit in debit by 6000 (the customer owes it), for a person.
    const { customerId, invoice, transaction, cheque } = await chequeThenLateCard('NOK', 'pi_bounce_nok');
    const second = await createInvoice(db, 'system', {
      customerId,
      currency: 'NOK',
      lines: [{ description: 'Extra seat', unitAmount: 6000n, quantity: 1, type: 'CHARGE' }],
    });
    expect(await finalizeInvoice(db, 'system', second.id)).toMatchObject({
      status: 'PAID',
      credit_applied: 6000n,
    });
    await reverseOfflinePayment(db, 'system', invoice.id, cheque.id, 'cheque returned: account closed');
    expect(await booksIn(db, 'NOK')).toMatchObject({
      'customer_credit:customer': 6000n,
      offline_receipts: 0n,
      'receivable:customer': 0n,
    });
    const raised = await db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'details'])
      .where('transaction_id', '=', transaction.id)
      .executeTakeFirstOrThrow();
    expect(raised).toMatchObject({
      kind: 'overpayment_credit_spent',
      details: { invoice: invoice.id, offline_payment: cheque.id, share: '10000', credit_left: '4000' },
    });
  });

  it('a part paid by cheque and the rest by transfer: reversing the cheque reopens the invoice for it (JPY)', async () => {
    // 10000 JPY; cheque 6000 (4000 due), transfer 4000 (PAID). The cheque bounces: OPEN, 4000 paid,
    // 6000 due, receivable 6000, offline receipts 4000.
    const { invoice, transaction } = await pendingCharge(db, { currency: 'JPY', amount: 10000n });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, transaction, { status: 'failed', failureCode: 'card_declined' }),
    );
    await recordOfflinePayment(db, 'system', invoice.id, { method: 'CHECK', amount: 6000n });
    await recordOfflinePayment(db, 'system', invoice.id, { method: 'BANK', amount: 4000n });
    expect(await invoiceRow(invoice.id)).toMatchObject({ status: 'PAID', amount_due: 0n });
    const [cheque, transfer] = await offlinePayments(invoice.id);
    await reverseOfflinePayment(db, 'system', invoice.id, cheque!.id, 'cheque bounced');
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'OPEN',
      amount_paid: 4000n,
      amount_due: 6000n,
      paid_at: null,
    });
    expect(await booksIn(db, 'JPY')).toMatchObject({
      offline_receipts: 4000n,
      'receivable:customer': 6000n,
    });
    // The transfer recalled too: nothing paid, everything due again.
    await reverseOfflinePayment(db, 'system', invoice.id, transfer!.id, 'transfer recalled');
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'OPEN',
      amount_paid: 0n,
      amount_due: 10000n,
    });
    expect(await booksIn(db, 'JPY')).toMatchObject({
      offline_receipts: 0n,
      'receivable:customer': 10000n,
    });
    // Paid again by cheque afterwards: PAID, books as before the first cheque's bounce.
    await recordOfflinePayment(db, 'system', invoice.id, { method: 'CHECK', amount: 10000n });
    expect(await invoiceRow(invoice.id)).toMatchObject({ status: 'PAID', amount_due: 0n });
    expect(await booksIn(db, 'JPY')).toMatchObject({
      offline_receipts: 10000n,
      'receivable:customer': 0n,
    });
  });

  it('a cheque that recovered a written-off invoice whole: the invoice is owed again (OPEN) and can be written off again', async () => {
    // 10000 HUF written off (bad debt 10000); a cheque of 10000 recovers it (PAID, bad debt 0). It
    // bounces: OPEN, 10000 due, receivable 10000, bad debt 0 (as a void of a card payment leaves it);
    // written off again under its second key: bad debt 10000, receivable 0.
    const { invoice, transaction } = await pendingCharge(db, { currency: 'HUF', amount: 10000n });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, transaction, { status: 'failed', failureCode: 'card_declined' }),
    );
    await markUncollectible(db, 'system', invoice.id, new Date());
    await recordOfflinePayment(db, 'system', invoice.id, { method: 'CHECK', amount: 10000n });
    expect(await invoiceRow(invoice.id)).toMatchObject({ status: 'PAID', amount_due: 0n });
    expect(await booksIn(db, 'HUF')).toMatchObject({ bad_debt: 0n, 'receivable:customer': 0n });
    const [cheque] = await offlinePayments(invoice.id);
    await reverseOfflinePayment(db, 'system', invoice.id, cheque!.id, 'cheque bounced');
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'OPEN',
      amount_paid: 0n,
      amount_due: 10000n,
    });
    expect(await booksIn(db, 'HUF')).toMatchObject({
      bad_debt: 0n,
      offline_receipts: 0n,
      'receivable:customer': 10000n,
    });
    await markUncollectible(db, 'system', invoice.id, new Date());
    expect(await entryPostings(db, `${invoice.id}:uncollectible:2`)).toEqual({
      bad_debt: 10000n,
      'receivable:customer': -10000n,
    });
    expect(await booksIn(db, 'HUF')).toMatchObject({ bad_debt: 10000n, 'receivable:customer': 0n });
  });

  it('refuses an unknown payment, another invoice’s payment, and a VOID, refunded or written-off invoice, changing nothing', async () => {
    const { invoice, transaction } = await pendingCharge(db, { currency: 'CZK', amount: 10000n });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, transaction, { status: 'failed', failureCode: 'card_declined' }),
    );
    await recordOfflinePayment(db, 'system', invoice.id, { method: 'CHECK', amount: 2500n });
    const [cheque] = await offlinePayments(invoice.id);
    const other = await pendingCharge(db, { currency: 'CZK', amount: 500n });

    const entries = await countEntries(db);
    const books = await booksIn(db, 'CZK');
    const unchanged = async () => {
      expect(await countEntries(db)).toBe(entries);
      expect(await booksIn(db, 'CZK')).toEqual(books);
      expect(await offlinePayments(invoice.id)).toEqual([cheque]);
    };

    await expect(reverseOfflinePayment(db, 'system', invoice.id, 'op_nope', 'bounced')).rejects.toMatchObject(
      { status: 404, code: 'offline_payment_not_found' },
    );
    await expect(
      reverseOfflinePayment(db, 'system', other.invoice.id, cheque!.id, 'bounced'),
    ).rejects.toMatchObject({ status: 404, code: 'offline_payment_not_found' });
    await expect(
      reverseOfflinePayment(db, 'system', 'inv_nope', cheque!.id, 'bounced'),
    ).rejects.toMatchObject({ status: 404, code: 'invoice_not_found' });
    await unchanged();

    // States no flow of billhook reaches with a standing offline payment, set by hand to show the
    // refusal: VOID (owes nothing), REFUNDED / PARTIALLY_REFUNDED (money went back).
    for (const [status, code] of [
      ['VOID', 'invoice_void'],
      ['REFUNDED', 'invoice_refunded'],
      ['PARTIALLY_REFUNDED', 'invoice_refunded'],
    ] as const) {
      await db.updateTable('invoices').set({ status }).where('id', '=', invoice.id).execute();
      await expect(
        reverseOfflinePayment(db, 'system', invoice.id, cheque!.id, 'bounced'),
      ).rejects.toMatchObject({ status: 409, code });
    }
    await db.updateTable('invoices').set({ status: 'OPEN' }).where('id', '=', invoice.id).execute();
    await unchanged();

    // Written off (7500 to bad debt): refused, the write-off left as it is.
    await markUncollectible(db, 'system', invoice.id, new Date());
    const writtenOff = await booksIn(db, 'CZK');
    const entriesWrittenOff = await countEntries(db);
    await expect(
      reverseOfflinePayment(db, 'system', invoice.id, cheque!.id, 'bounced'),
    ).rejects.toMatchObject({ status: 409, code: 'invoice_uncollectible' });
    expect(await booksIn(db, 'CZK')).toEqual(writtenOff);
    expect(await countEntries(db)).toBe(entriesWrittenOff);
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'UNCOLLECTIBLE',
      amount_paid: 2500n,
      amount_due: 7500n,
    });
  });
});
