import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInvoice, finalizeInvoice, lockInvoice } from '../../src/billing/invoices.ts';
import type { Db } from '../../src/db/database.ts';
import { newId } from '../../src/db/ids.ts';
import type { TransactionRow } from '../../src/db/schema.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { type DisputeReport, recordDispute } from '../../src/payments/disputes.ts';
import { createRefund, recordRefundResult } from '../../src/payments/refunds.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import {
  booksIn,
  entryPostings,
  moneyCoreDatabase,
  paidTwice as paidTwiceOn,
  pendingCharge,
} from '../support/money-core.ts';

/**
 * `recordDispute` on a real database, without HTTP or gateway: a dispute moves forward only
 * (inquiry → open → won | lost), each report is applied, a duplicate or a stale one changes nothing,
 * and each movement (`dp_…:opened`, `:won`, `:lost`) posts once. Each case books in a currency of
 * its own, on a Stripe payment of 3000.
 */
describe('recordDispute', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  /** A succeeded Stripe payment of 3000 in `currency` (its invoice PAID). */
  async function payment(currency: string): Promise<TransactionRow> {
    const { transaction } = await pendingCharge(db, { currency, amount: 3000n });
    const recorded = await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, transaction, { status: 'succeeded', gatewayTransactionId: `pi_${currency}` }),
    );
    return recorded.transaction;
  }
  const report = (
    transaction: TransactionRow,
    status: DisputeReport['status'],
    id = `du_${transaction.currency}`,
  ) =>
    inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordDispute(work, transaction, { gatewayDisputeId: id, status, amount: 3000n, reason: 'fraudulent' }),
    );
  const disputesOf = (transaction: TransactionRow) =>
    db
      .selectFrom('disputes')
      .select(['status', 'amount'])
      .where('transaction_id', '=', transaction.id)
      .execute();

  it('applies open then won: the withheld 3000 goes to disputed funds and comes back to clearing', async () => {
    const paid = await payment('EUR');
    const opened = await report(paid, 'open');
    expect(opened.kind).toBe('applied');
    const id = opened.dispute.id;
    expect(await entryPostings(db, `${id}:opened`)).toEqual({
      disputed_funds: 3000n,
      'gateway_clearing:stripe': -3000n,
    });
    expect(await booksIn(db, 'EUR')).toMatchObject({ 'gateway_clearing:stripe': 0n, disputed_funds: 3000n });

    const won = await report(paid, 'won');
    expect(won).toMatchObject({ kind: 'applied', dispute: { id, status: 'won' } });
    expect(await entryPostings(db, `${id}:won`)).toEqual({
      'gateway_clearing:stripe': 3000n,
      disputed_funds: -3000n,
    });
    expect(await booksIn(db, 'EUR')).toEqual({
      'gateway_clearing:stripe': 3000n,
      disputed_funds: 0n,
      'receivable:customer': 0n,
      revenue: -3000n,
    });
  });

  it('a report of the state already recorded is a duplicate: one dispute, one entry', async () => {
    const paid = await payment('GBP');
    const first = await report(paid, 'open');
    const again = await report(paid, 'open');
    expect(again).toMatchObject({ kind: 'duplicate', dispute: { id: first.dispute.id, status: 'open' } });
    expect(await disputesOf(paid)).toEqual([{ status: 'open', amount: 3000n }]);
    expect(await booksIn(db, 'GBP')).toMatchObject({ 'gateway_clearing:stripe': 0n, disputed_funds: 3000n });
  });

  it('a report older than the recorded state is stale: a late "open" after "won" changes nothing', async () => {
    const paid = await payment('CHF');
    await report(paid, 'open');
    const won = await report(paid, 'won');
    const books = await booksIn(db, 'CHF');
    const late = await report(paid, 'open');
    expect(late).toMatchObject({ kind: 'stale', dispute: { id: won.dispute.id, status: 'won' } });
    expect(await disputesOf(paid)).toEqual([{ status: 'won', amount: 3000n }]);
    expect(await booksIn(db, 'CHF')).toEqual(books);
  });

  it('a "lost" that arrives before the opening posts both movements: 3000 lost to chargebacks', async () => {
    const paid = await payment('SEK');
    const lost = await report(paid, 'lost');
    expect(lost).toMatchObject({ kind: 'applied', dispute: { status: 'lost' } });
    const id = lost.dispute.id;
    expect(await entryPostings(db, `${id}:opened`)).toEqual({
      disputed_funds: 3000n,
      'gateway_clearing:stripe': -3000n,
    });
    expect(await entryPostings(db, `${id}:lost`)).toEqual({
      chargeback_losses: 3000n,
      disputed_funds: -3000n,
    });
    // The opening report arriving now is stale: nothing moves twice.
    expect((await report(paid, 'open')).kind).toBe('stale');
    expect(await booksIn(db, 'SEK')).toEqual({
      chargeback_losses: 3000n,
      disputed_funds: 0n,
      'gateway_clearing:stripe': 0n,
      'receivable:customer': 0n,
      revenue: -3000n,
    });
  });

  /**
   * An invoice of 10000 in `currency` (and `taxRatePpm` of tax) paid twice through `gateway` (a
   * duplicate payment, money-core's `paidTwice`): its total is the customer's credit.
   */
  async function paidTwice(currency: string, gateway: TransactionRow['gateway'] = 'stripe', taxRatePpm = 0) {
    const paid = await paidTwiceOn(db, { currency, amount: 10000n, gateway, taxRatePpm });
    expect((await booksIn(db, currency))['customer_credit:customer']).toBe(-paid.invoice.total);
    return paid;
  }
  const lose = (transaction: TransactionRow, status: DisputeReport['status'], reversal = false) =>
    inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordDispute(work, transaction, {
        gatewayDisputeId: `du_${transaction.id}`,
        status,
        amount: transaction.amount,
        reason: 'duplicate',
        reversal,
      }),
    );

  it("a chargeback of a duplicate payment takes the overpayment back from the customer's credit, and a win gives it back", async () => {
    // 10000 + 10% tax = 11000, paid twice, one payment charged back (lost): the customer has the
    // duplicate back in cash, so their 11000 of credit goes to 0 and nothing is lost (the credit
    // stayed 11000, theirs to spend or have refunded, and chargeback losses showed 11000).
    const { invoice, first, duplicate } = await paidTwice('NOK', 'stripe', 100_000);
    expect(invoice.total).toBe(11000n);
    await lose(duplicate, 'open', true);
    const lost = await lose(duplicate, 'lost', true);
    expect(lost.dispute).toMatchObject({ status: 'lost', overpayment_charged_back: 11000n });
    expect(await entryPostings(db, `${lost.dispute.id}:overpayment_charged_back`)).toEqual({
      'customer_credit:customer': 11000n,
      chargeback_losses: -11000n,
    });
    expect(await booksIn(db, 'NOK')).toMatchObject({
      'customer_credit:customer': 0n,
      chargeback_losses: 0n,
      'gateway_clearing:stripe': 11000n,
      revenue: -10000n,
      tax_payable: -1000n,
    });
    const row = await db
      .selectFrom('invoices')
      .selectAll()
      .where('id', '=', invoice.id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'PAID', amount_paid: 22000n });
    // A refund of the other payment then gives back the sale with all its tax (its credit note), not
    // the overpayment again (it was refused: the overpayment first, from credit no longer held).
    const refund = await inUnitOfWork(db, { actor: 'system' }, async (work) => {
      await lockInvoice(work, invoice.id);
      return createRefund(work, first, { amount: 11000n });
    });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordRefundResult(work, refund.id, { status: 'succeeded', gatewayRefundId: 're_nok' }),
    );
    expect(await entryPostings(db, `${refund.id}:succeeded`)).toEqual({
      refunds: 10000n,
      tax_payable: 1000n,
      'gateway_clearing:stripe': -11000n,
    });
    expect(await booksIn(db, 'NOK')).toMatchObject({
      'customer_credit:customer': 0n,
      chargeback_losses: 0n,
      refunds: 10000n,
      tax_payable: 0n,
      'gateway_clearing:stripe': 0n,
    });
    // The chargeback reversed after all (won): the money is back, and so is the customer's credit.
    const won = await lose(duplicate, 'won', true);
    expect(won).toMatchObject({ kind: 'applied', dispute: { status: 'won' } });
    expect(await entryPostings(db, `${lost.dispute.id}:overpayment_returned`)).toEqual({
      chargeback_losses: 11000n,
      'customer_credit:customer': -11000n,
    });
    expect(await booksIn(db, 'NOK')).toMatchObject({
      'customer_credit:customer': -11000n,
      chargeback_losses: 0n,
      'gateway_clearing:stripe': 11000n,
    });
  });

  it("a chargeback of a duplicate payment whose credit was spent leaves the customer's credit in debit, for a person", async () => {
    const { customerId, duplicate } = await paidTwice('DKK');
    // The 10000 of credit pays the next invoice whole.
    const next = await createInvoice(db, 'system', {
      customerId,
      currency: 'DKK',
      lines: [{ description: 'Next month', unitAmount: 10000n, quantity: 1, type: 'CHARGE' }],
    });
    expect(await finalizeInvoice(db, 'system', next.id)).toMatchObject({
      status: 'PAID',
      credit_applied: 10000n,
    });
    const lost = await lose(duplicate, 'lost', true);
    expect(lost.dispute.overpayment_charged_back).toBe(10000n);
    expect(await booksIn(db, 'DKK')).toMatchObject({
      'customer_credit:customer': 10000n,
      chargeback_losses: 0n,
    });
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'details'])
      .where('transaction_id', '=', duplicate.id)
      .execute();
    expect(exceptions).toEqual([
      {
        kind: 'overpayment_credit_spent',
        details: expect.objectContaining({ dispute: lost.dispute.id, share: '10000', credit_left: '0' }),
      },
    ]);
  });

  it("both payments of a duplicate charged back, the first won after its loss: the second's loss takes the overpayment, credit 0 and losses 0", async () => {
    // PayPal, HKD: 10000 asked, paid twice (10000 credit). A charged back (a reversal, lost:
    // its loss takes the overpayment, credit 0); B charged back (nothing overpaid left to take: a loss
    // of 10000); then A's chargeback is won. The customer paid 20000 and has B's 10000 back: 10000 net
    // for 10000 asked, so credit 0 and nothing lost. The share was fixed at A's loss: A's win gave
    // its 10000 back to the credit and B's loss stayed 10000 (credit 10000 and losses 10000).
    const { first, duplicate } = await paidTwice('HKD', 'paypal');
    const lostFirst = await lose(first, 'lost', true);
    expect(lostFirst.dispute.overpayment_charged_back).toBe(10000n);
    const lostSecond = await lose(duplicate, 'lost', true);
    expect(lostSecond.dispute.overpayment_charged_back).toBe(0n);
    expect(await booksIn(db, 'HKD')).toMatchObject({
      'customer_credit:customer': 0n,
      chargeback_losses: 10000n,
    });
    expect(await lose(first, 'won', true)).toMatchObject({ kind: 'applied', dispute: { status: 'won' } });
    const returned = `${lostFirst.dispute.id}:overpayment_returned`;
    expect(await entryPostings(db, `${lostSecond.dispute.id}:overpayment_share:${returned}`)).toEqual({
      'customer_credit:customer': 10000n,
      chargeback_losses: -10000n,
    });
    expect(await booksIn(db, 'HKD')).toMatchObject({
      'customer_credit:customer': 0n,
      chargeback_losses: 0n,
      'gateway_clearing:paypal': 10000n,
    });
    const shares = await db
      .selectFrom('disputes')
      .select(['id', 'status', 'overpayment_charged_back'])
      .where('id', 'in', [lostFirst.dispute.id, lostSecond.dispute.id])
      .orderBy('status')
      .execute();
    expect(shares).toEqual([
      { id: lostSecond.dispute.id, status: 'lost', overpayment_charged_back: 10000n },
      { id: lostFirst.dispute.id, status: 'won', overpayment_charged_back: 10000n },
    ]);
    // Reported again, nothing moves twice.
    expect((await lose(first, 'won', true)).kind).toBe('duplicate');
    expect(await booksIn(db, 'HKD')).toMatchObject({ 'customer_credit:customer': 0n, chargeback_losses: 0n });
  });

  it('a failed charge that succeeds after the other payment was charged back: the lost dispute takes the overpayment, credit 0 and losses 0', async () => {
    // SGD: B fails; A pays 10000 and is charged back (lost: nothing overpaid then, a loss of 10000);
    // then B succeeds after all (10000 overpaid). 20000 paid, 10000 back by the bank: 10000 net for
    // 10000 asked. `txn_B:overpaid` made it credit 10000 beside the loss of 10000.
    const {
      customerId,
      invoice,
      transaction: b,
    } = await pendingCharge(db, { currency: 'SGD', amount: 10000n });
    const record = (t: TransactionRow, result: Parameters<typeof recordChargeResult>[2]) =>
      inUnitOfWork(db, { actor: 'system' }, (work) => recordChargeResult(work, t, result));
    await record(b, { status: 'failed', failureCode: 'card_declined' });
    const pendingA = await db
      .insertInto('transactions')
      .values({
        id: newId('txn'),
        invoice_id: invoice.id,
        customer_id: customerId,
        gateway: 'stripe',
        amount: 10000n,
        currency: 'SGD',
        status: 'pending',
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const a = (await record(pendingA, { status: 'succeeded', gatewayTransactionId: 'pi_sgd_a' })).transaction;
    await lose(a, 'open');
    const lost = await lose(a, 'lost');
    expect(lost.dispute.overpayment_charged_back).toBe(0n);
    expect(await booksIn(db, 'SGD')).toMatchObject({ chargeback_losses: 10000n });
    const late = await record(b, { status: 'succeeded', gatewayTransactionId: 'pi_sgd_b' });
    expect(late).toMatchObject({ kind: 'applied', overpaid: true, excess: 10000n });
    expect(await entryPostings(db, `${lost.dispute.id}:overpayment_share:${b.id}:overpaid`)).toEqual({
      'customer_credit:customer': 10000n,
      chargeback_losses: -10000n,
    });
    expect(await booksIn(db, 'SGD')).toMatchObject({
      'customer_credit:customer': 0n,
      chargeback_losses: 0n,
      'receivable:customer': 0n,
    });
    const row = await db
      .selectFrom('disputes')
      .select('overpayment_charged_back')
      .where('id', '=', lost.dispute.id)
      .executeTakeFirstOrThrow();
    expect(row.overpayment_charged_back).toBe(10000n);
  });

  it('a refund of the duplicate failing after a chargeback of the other payment was lost: the lost dispute takes the overpayment, credit 0 and losses 0', async () => {
    // MXN: 10000 paid twice; the duplicate refunded (the overpayment given back, credit 0); the first
    // payment charged back and lost (nothing overpaid left to take: a loss of 10000); then the refund
    // fails after succeeding (the money never left). 20000 paid, 10000 back by the bank: 10000 net for
    // 10000 asked. `re_…:reversed` gave the customer their 10000 of credit back beside the loss.
    const { first, duplicate } = await paidTwice('MXN');
    const refund = await inUnitOfWork(db, { actor: 'system' }, async (work) => {
      await lockInvoice(work, duplicate.invoice_id!);
      return createRefund(work, duplicate, { amount: 10000n });
    });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordRefundResult(work, refund.id, { status: 'succeeded', gatewayRefundId: 're_mxn' }),
    );
    const lost = await lose(first, 'lost');
    expect(lost.dispute.overpayment_charged_back).toBe(0n);
    expect(await booksIn(db, 'MXN')).toMatchObject({
      'customer_credit:customer': 0n,
      chargeback_losses: 10000n,
    });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordRefundResult(work, refund.id, {
        status: 'failed',
        gatewayRefundId: 're_mxn',
        failureCode: 'expired',
      }),
    );
    expect(await entryPostings(db, `${lost.dispute.id}:overpayment_share:${refund.id}:reversed`)).toEqual({
      'customer_credit:customer': 10000n,
      chargeback_losses: -10000n,
    });
    expect(await booksIn(db, 'MXN')).toMatchObject({
      'customer_credit:customer': 0n,
      chargeback_losses: 0n,
      'gateway_clearing:stripe': 10000n,
    });
  });

  it('a lost claim a refund will carry (PayPal) takes no credit: the refund gives the overpayment back', async () => {
    const { duplicate } = await paidTwice('PLN', 'paypal');
    const lost = await lose(duplicate, 'lost');
    expect(lost.dispute.overpayment_charged_back).toBe(0n);
    expect(await booksIn(db, 'PLN')).toMatchObject({
      'customer_credit:customer': -10000n,
      chargeback_losses: 10000n,
    });
  });
});
