import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { type ChargeResult, recordChargeResult } from '../../src/payments/transactions.ts';
import { booksIn, entryPostings, moneyCoreDatabase, pendingCharge } from '../support/money-core.ts';

/**
 * `recordChargeResult` on a real database, without HTTP or gateway: a charge's state moves forward
 * only (PRODUCT.md §3), and a success posts `txn_…:succeeded` once and pays the invoice down.
 * Each case books in a currency of its own.
 */
describe('recordChargeResult', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  const record = (transaction: { id: string; invoice_id: string | null }, result: ChargeResult) =>
    inUnitOfWork(db, { actor: 'system' }, (work) => recordChargeResult(work, transaction, result));
  const rowOf = (table: 'transactions' | 'invoices', id: string) =>
    db.selectFrom(table).selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  it('pending → succeeded: the payment is posted once and the invoice is PAID', async () => {
    // 1000 + 10% tax = 1100 due.
    const { invoice, transaction } = await pendingCharge(db, { currency: 'EUR', taxRatePpm: 100_000 });
    const recorded = await record(transaction, { status: 'succeeded', gatewayTransactionId: 'pi_eur_1' });
    expect(recorded).toMatchObject({ kind: 'applied', overpaid: false });
    expect(await rowOf('transactions', transaction.id)).toMatchObject({
      status: 'succeeded',
      gateway_transaction_id: 'pi_eur_1',
      amount_captured: null,
    });
    expect(await rowOf('invoices', invoice.id)).toMatchObject({ status: 'PAID', amount_paid: 1100n });
    expect(await entryPostings(db, `${transaction.id}:succeeded`)).toEqual({
      'gateway_clearing:stripe': 1100n,
      'receivable:customer': -1100n,
    });
    // Finalized (receivable +1100, revenue −1000, tax −100), then paid (clearing +1100, receivable −1100).
    expect(await booksIn(db, 'EUR')).toEqual({
      'gateway_clearing:stripe': 1100n,
      'receivable:customer': 0n,
      revenue: -1000n,
      tax_payable: -100n,
    });
  });

  it('succeeded is never taken back to failed: a late decline is stale and changes nothing', async () => {
    const { invoice, transaction } = await pendingCharge(db, { currency: 'GBP', amount: 2500n });
    await record(transaction, { status: 'succeeded', gatewayTransactionId: 'pi_gbp_1' });
    const books = await booksIn(db, 'GBP');

    const late = await record(transaction, { status: 'failed', failureCode: 'card_declined' });
    expect(late.kind).toBe('stale');
    expect(await rowOf('transactions', transaction.id)).toMatchObject({
      status: 'succeeded',
      failure_code: null,
    });
    expect(await rowOf('invoices', invoice.id)).toMatchObject({ status: 'PAID', amount_paid: 2500n });
    expect(await booksIn(db, 'GBP')).toEqual(books);
    // The same success again is a duplicate: still one entry.
    expect((await record(transaction, { status: 'succeeded', gatewayTransactionId: 'pi_gbp_1' })).kind).toBe(
      'duplicate',
    );
    expect(await booksIn(db, 'GBP')).toEqual({
      'gateway_clearing:stripe': 2500n,
      'receivable:customer': 0n,
      revenue: -2500n,
    });
  });

  it('unknown → succeeded: a timeout posts nothing, the confirmed success later posts the payment', async () => {
    const { invoice, transaction } = await pendingCharge(db, { currency: 'CHF', amount: 700n });
    const unknown = await record(transaction, { status: 'unknown', failureCode: 'unknown_outcome' });
    expect(unknown.kind).toBe('applied');
    expect(await rowOf('transactions', transaction.id)).toMatchObject({ status: 'unknown' });
    expect(await rowOf('invoices', invoice.id)).toMatchObject({ status: 'OPEN', amount_due: 700n });
    expect(await entryPostings(db, `${transaction.id}:succeeded`)).toBeUndefined();

    const settled = await record(transaction, { status: 'succeeded', gatewayTransactionId: 'pi_chf_1' });
    expect(settled.kind).toBe('applied');
    expect(await rowOf('transactions', transaction.id)).toMatchObject({
      status: 'succeeded',
      failure_code: null,
    });
    expect(await entryPostings(db, `${transaction.id}:succeeded`)).toEqual({
      'gateway_clearing:stripe': 700n,
      'receivable:customer': -700n,
    });
    expect(await rowOf('invoices', invoice.id)).toMatchObject({ status: 'PAID', amount_paid: 700n });
  });

  it('failed → succeeded is allowed (the gateway captured after all); canceled stays canceled', async () => {
    const { transaction } = await pendingCharge(db, { currency: 'SEK', amount: 900n });
    await record(transaction, { status: 'failed', failureCode: 'card_declined' });
    expect(await booksIn(db, 'SEK')).toEqual({ 'receivable:customer': 900n, revenue: -900n });
    expect((await record(transaction, { status: 'succeeded', gatewayTransactionId: 'pi_sek_1' })).kind).toBe(
      'applied',
    );
    expect(await booksIn(db, 'SEK')).toEqual({
      'gateway_clearing:stripe': 900n,
      'receivable:customer': 0n,
      revenue: -900n,
    });

    const other = await pendingCharge(db, { currency: 'NOK', amount: 400n });
    await record(other.transaction, { status: 'canceled' });
    expect(
      (await record(other.transaction, { status: 'succeeded', gatewayTransactionId: 'pi_nok_1' })).kind,
    ).toBe('stale');
    expect(await entryPostings(db, `${other.transaction.id}:succeeded`)).toBeUndefined();
    expect(await booksIn(db, 'NOK')).toEqual({ 'receivable:customer': 400n, revenue: -400n });
  });

  it('in a deferring unit (a reconcile batch) a second result for the payment sees the first, and both rows are written at its end', async () => {
    const { invoice, transaction } = await pendingCharge(db, { currency: 'PLN' });
    const seen = await inUnitOfWork(db, { actor: 'system', defer: true }, async (work) => {
      const first = await recordChargeResult(work, transaction, {
        status: 'succeeded',
        gatewayTransactionId: 'pi_pln_deferred',
      });
      const again = await recordChargeResult(work, transaction, {
        status: 'succeeded',
        gatewayTransactionId: 'pi_pln_deferred',
      });
      const stored = await work.trx
        .selectFrom('transactions')
        .select('status')
        .where('id', '=', transaction.id)
        .executeTakeFirstOrThrow();
      return { first: first.kind, again: again.kind, storedDuring: stored.status };
    });
    expect(seen).toEqual({ first: 'applied', again: 'duplicate', storedDuring: 'pending' });
    expect(await rowOf('transactions', transaction.id)).toMatchObject({
      status: 'succeeded',
      gateway_transaction_id: 'pi_pln_deferred',
    });
    expect(await rowOf('invoices', invoice.id)).toMatchObject({
      status: 'PAID',
      amount_paid: 1000n,
      amount_due: 0n,
    });
    expect(await entryPostings(db, `${transaction.id}:succeeded`)).toEqual({
      'gateway_clearing:stripe': 1000n,
      'receivable:customer': -1000n,
    });
  });
});
