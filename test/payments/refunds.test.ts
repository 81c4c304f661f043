import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markUncollectible } from '../../src/billing/bad-debt.ts';
import { lockInvoice, recordOfflinePayment, voidInvoice } from '../../src/billing/invoices.ts';
import type { Db } from '../../src/db/database.ts';
import { newId } from '../../src/db/ids.ts';
import type { TransactionRow } from '../../src/db/schema.ts';
import { ValidationError } from '../../src/errors.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { createRefund, type RefundResult, recordRefundResult } from '../../src/payments/refunds.ts';
import { type ChargeResult, recordChargeResult } from '../../src/payments/transactions.ts';
import { booksIn, entryPostings, moneyCoreDatabase, pendingCharge } from '../support/money-core.ts';

/**
 * `createRefund` and `recordRefundResult` on a real database, without HTTP or gateway: refunds never
 * exceed what was captured, a succeeded refund issues its credit note and posts `re_…:succeeded`
 * once, and a refund that fails after succeeding is reversed (`re_…:reversed`). Each case books in a
 * currency of its own.
 */
describe('refunds', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  /** A paid invoice: `pendingCharge`, then the charge recorded succeeded (optionally a partial capture). */
  async function paid(o: Parameters<typeof pendingCharge>[1], result: Partial<ChargeResult> = {}) {
    const charge = await pendingCharge(db, o);
    const recorded = await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, charge.transaction, {
        status: 'succeeded',
        gatewayTransactionId: `pi_${charge.transaction.id}`,
        ...result,
      }),
    );
    return { ...charge, transaction: recorded.transaction };
  }
  /** Commits a pending refund of `amount` as `refundInvoice` does (the invoice locked first). */
  const refund = (transaction: TransactionRow, amount: bigint) =>
    inUnitOfWork(db, { actor: 'system' }, async (work) => {
      await lockInvoice(work, transaction.invoice_id!);
      return createRefund(work, transaction, { amount });
    });
  const record = (refundId: string, result: RefundResult) =>
    inUnitOfWork(db, { actor: 'system' }, (work) => recordRefundResult(work, refundId, result));
  const invoiceRow = (id: string) =>
    db.selectFrom('invoices').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  /** A refund made in the gateway's dashboard of `amount`, reported succeeded (as reconcile/apply.ts records one). */
  const dashboardRefund = (transaction: TransactionRow, amount: bigint, gatewayRefundId: string) =>
    inUnitOfWork(db, { actor: 'system' }, async (work) => {
      const row = await createRefund(work, transaction, { amount, gatewayRefundId });
      await recordRefundResult(work, row.id, { status: 'succeeded', gatewayRefundId });
      return row;
    });

  it('a succeeded refund issues its credit note and posts refunds and tax payable against the clearing account', async () => {
    // 1000 + 10% tax = 1100 paid; half refunded: 550 = 500 of the sale + 50 of its tax.
    const { invoice, transaction } = await paid({ currency: 'USD', taxRatePpm: 100_000 });
    const row = await refund(transaction, 550n);
    expect(row).toMatchObject({
      status: 'pending',
      amount: 550n,
      invoice_id: invoice.id,
      gateway_refund_id: null,
    });
    expect(await entryPostings(db, `${row.id}:succeeded`)).toBeUndefined();

    const recorded = await record(row.id, { status: 'succeeded', gatewayRefundId: 're_usd_1' });
    expect(recorded.kind).toBe('applied');
    expect(recorded.refund).toMatchObject({ status: 'succeeded', gateway_refund_id: 're_usd_1' });
    const note = await db
      .selectFrom('credit_notes')
      .selectAll()
      .where('refund_id', '=', row.id)
      .executeTakeFirstOrThrow();
    expect(note).toMatchObject({ subtotal: 500n, tax: 50n, total: 550n, status: 'ISSUED' });
    expect(await entryPostings(db, `${row.id}:succeeded`)).toEqual({
      refunds: 500n,
      tax_payable: 50n,
      'gateway_clearing:stripe': -550n,
    });
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 550n,
    });
    // Paid: clearing +1100; refunded: clearing −550, refunds +500, tax payable +50.
    expect(await booksIn(db, 'USD')).toEqual({
      'gateway_clearing:stripe': 550n,
      'receivable:customer': 0n,
      refunds: 500n,
      revenue: -1000n,
      tax_payable: -50n,
    });
    // The same result again is a duplicate: nothing posts twice.
    expect((await record(row.id, { status: 'succeeded', gatewayRefundId: 're_usd_1' })).kind).toBe(
      'duplicate',
    );
    expect((await booksIn(db, 'USD')).refunds).toBe(500n);
  });

  it('never refunds more than was captured: refunds in flight count, failed ones free their amount', async () => {
    // Authorize.Net captured 800 of a 1100 charge (a partial capture): 800 is all that can go back.
    const { transaction } = await paid(
      { currency: 'CAD', amount: 1100n, gateway: 'authorizenet' },
      { amountCaptured: 800n },
    );
    expect(transaction).toMatchObject({ amount: 1100n, amount_captured: 800n });
    await expect(refund(transaction, 801n)).rejects.toBeInstanceOf(ValidationError);

    const first = await refund(transaction, 500n); // pending: 300 left
    await expect(refund(transaction, 301n)).rejects.toMatchObject({
      fields: { amount: 'at most 300 can be refunded (paid 800 CAD)' },
    });
    const second = await refund(transaction, 300n); // 0 left
    await expect(refund(transaction, 1n)).rejects.toBeInstanceOf(ValidationError);

    await record(first.id, { status: 'failed', failureCode: 'insufficient_funds' }); // 500 free again
    await expect(refund(transaction, 501n)).rejects.toBeInstanceOf(ValidationError);
    const third = await refund(transaction, 500n);
    const statusOf = async (id: string) =>
      (await db.selectFrom('refunds').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;
    expect([await statusOf(first.id), await statusOf(second.id), await statusOf(third.id)]).toEqual([
      'failed',
      'pending',
      'pending',
    ]);
    // Nothing succeeded: no refund reached the ledger.
    expect((await booksIn(db, 'CAD')).refunds).toBeUndefined();
  });

  it('a refund that fails after succeeding is reversed: credit note voided, postings negated, the invoice PAID again', async () => {
    const { invoice, transaction } = await paid({ currency: 'AUD', amount: 2000n });
    const booksPaid = await booksIn(db, 'AUD');
    const row = await refund(transaction, 2000n);
    await record(row.id, { status: 'succeeded', gatewayRefundId: 're_aud_1' });
    expect(await invoiceRow(invoice.id)).toMatchObject({ status: 'REFUNDED', amount_refunded: 2000n });

    const failed = await record(row.id, { status: 'failed', failureCode: 'expired_or_canceled_card' });
    expect(failed.kind).toBe('applied');
    expect(failed.refund).toMatchObject({ status: 'failed', failure_code: 'expired_or_canceled_card' });
    // re_…:succeeded was refunds +2000, clearing −2000; re_…:reversed is its negation.
    expect(await entryPostings(db, `${row.id}:reversed`)).toEqual({
      refunds: -2000n,
      'gateway_clearing:stripe': 2000n,
    });
    expect(
      await db.selectFrom('credit_notes').select('status').where('refund_id', '=', row.id).execute(),
    ).toEqual([{ status: 'VOID' }]);
    expect(await invoiceRow(invoice.id)).toMatchObject({ status: 'PAID', amount_refunded: 0n });
    expect(await booksIn(db, 'AUD')).toEqual({ ...booksPaid, refunds: 0n });
    // Failed is final: a late success is stale and posts nothing.
    expect((await record(row.id, { status: 'succeeded', gatewayRefundId: 're_aud_1' })).kind).toBe('stale');
    expect(await booksIn(db, 'AUD')).toEqual({ ...booksPaid, refunds: 0n });
  });

  it('a refund of an OPEN invoice paid in part leaves it OPEN, owing and chargeable, also when the refund fails after succeeding', async () => {
    // 10000 asked, 6000 captured: OPEN with 4000 due. 1000 of it refunded in the dashboard: still
    // OPEN with 4000 due (it was PARTIALLY_REFUNDED: neither charged nor collected any more while
    // its customer's receivable still held the 4000).
    const { customerId, invoice, transaction } = await paid(
      { currency: 'EUR', amount: 10000n },
      { amountCaptured: 6000n },
    );
    expect(await invoiceRow(invoice.id)).toMatchObject({ status: 'OPEN', amount_due: 4000n });
    const row = await dashboardRefund(transaction, 1000n, 're_eur_open');
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'OPEN',
      amount_due: 4000n,
      amount_refunded: 1000n,
    });
    const openDue = await db
      .selectFrom('invoices')
      .select((eb) => eb.fn.sum<string>('amount_due').as('due'))
      .where('customer_id', '=', customerId)
      .where('status', '=', 'OPEN')
      .executeTakeFirstOrThrow();
    expect(BigInt(openDue.due)).toBe((await booksIn(db, 'EUR'))['receivable:customer']);
    // The refund fails after succeeding: still OPEN (it was PAID with 4000 due).
    await record(row.id, { status: 'failed', failureCode: 'expired_or_canceled_card' });
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'OPEN',
      amount_due: 4000n,
      amount_refunded: 0n,
    });
    // Still collected: 4000 by bank pays it.
    await recordOfflinePayment(db, 'system', invoice.id, { method: 'BANK', amount: 4000n });
    expect(await invoiceRow(invoice.id)).toMatchObject({ status: 'PAID', amount_due: 0n });
  });

  it('a refund of an UNCOLLECTIBLE invoice recovered in part leaves it UNCOLLECTIBLE, the rest still recoverable', async () => {
    // 10000 written off; a charge captures 6000 of it (4000 still written off), 1000 of which is
    // refunded in the dashboard: UNCOLLECTIBLE with 4000 due (it was PARTIALLY_REFUNDED, so the 4000
    // paid later by cash was refused and stayed bad debt).
    const { customerId, invoice, transaction } = await pendingCharge(db, { currency: 'NZD', amount: 10000n });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, transaction, { status: 'failed', failureCode: 'card_declined' }),
    );
    await markUncollectible(db, 'system', invoice.id, new Date());
    const attempt = await db
      .insertInto('transactions')
      .values({
        id: newId('txn'),
        invoice_id: invoice.id,
        customer_id: customerId,
        gateway: 'stripe',
        amount: 10000n,
        currency: 'NZD',
        status: 'pending',
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const recovered = await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, attempt, {
        status: 'succeeded',
        gatewayTransactionId: 'pi_nzd',
        amountCaptured: 6000n,
      }),
    );
    expect(await invoiceRow(invoice.id)).toMatchObject({ status: 'UNCOLLECTIBLE', amount_due: 4000n });
    await dashboardRefund(recovered.transaction, 1000n, 're_nzd');
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'UNCOLLECTIBLE',
      amount_due: 4000n,
      amount_refunded: 1000n,
    });
    expect((await booksIn(db, 'NZD')).bad_debt).toBe(4000n);
    // Paid whole at last, it keeps 9000 of the 10000 it took in: PARTIALLY_REFUNDED (it was PAID).
    await recordOfflinePayment(db, 'system', invoice.id, { method: 'CASH', amount: 4000n });
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_due: 0n,
      amount_paid: 10000n,
      amount_refunded: 1000n,
    });
    expect((await booksIn(db, 'NZD')).bad_debt).toBe(0n);
  });

  /** An invoice of 10000 in `currency` whose charge failed, voided, then reported succeeded after all (of `captured`). */
  async function paidAfterVoid(currency: string, captured?: bigint) {
    const { invoice, transaction } = await pendingCharge(db, { currency, amount: 10000n });
    const result = (r: Parameters<typeof recordChargeResult>[2]) =>
      inUnitOfWork(db, { actor: 'system' }, (work) => recordChargeResult(work, transaction, r));
    await result({ status: 'failed', failureCode: 'card_declined' });
    await voidInvoice(db, 'system', invoice.id);
    const late = await result({
      status: 'succeeded',
      gatewayTransactionId: `pi_${currency}_late`,
      ...(captured === undefined ? {} : { amountCaptured: captured }),
    });
    return { invoice, transaction: late.transaction };
  }

  it("a refund of a VOID invoice's late payment pays back the customer's credit, not the voided sale", async () => {
    // Nothing was due: the 10000 is the customer's credit. Refunded in the dashboard, it pays that
    // credit back (it was booked as a refund of the voided sale: refunds +10000 while the customer
    // kept the 10000 of credit too, and the invoice REFUNDED).
    const { invoice, transaction } = await paidAfterVoid('GBP');
    expect((await booksIn(db, 'GBP'))['customer_credit:customer']).toBe(-10000n);
    const row = await dashboardRefund(transaction, 10000n, 're_gbp_void');
    expect(await entryPostings(db, `${row.id}:succeeded`)).toEqual({
      'customer_credit:customer': 10000n,
      'gateway_clearing:stripe': -10000n,
    });
    const books = await booksIn(db, 'GBP');
    expect(books['customer_credit:customer']).toBe(0n);
    expect(books.refunds).toBeUndefined();
    expect(
      await db.selectFrom('credit_notes').select('id').where('refund_id', '=', row.id).execute(),
    ).toEqual([]);
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'VOID',
      amount_due: 0n,
      amount_refunded: 10000n,
    });
  });

  it('a VOID invoice captured in part after its void has nothing due', async () => {
    // 4000 of the 10000 captured: all of it the customer's credit, nothing due (it showed 6000 due).
    const { invoice } = await paidAfterVoid('CHF', 4000n);
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'VOID',
      amount_due: 0n,
      amount_paid: 4000n,
    });
    expect((await booksIn(db, 'CHF'))['customer_credit:customer']).toBe(-4000n);
  });
});
