import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createInvoice,
  finalizeInvoice,
  lockInvoice,
  recordOfflinePayment,
  voidInvoice,
} from '../../src/billing/invoices.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { renewSubscription } from '../../src/billing/renewal.ts';
import { cancelSubscription, createSubscription } from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import { newId } from '../../src/db/ids.ts';
import type { TransactionRow } from '../../src/db/schema.ts';
import { balanceOf } from '../../src/ledger/balances.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { createRefund, recordRefundResult } from '../../src/payments/refunds.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

/**
 * A customer's credit belongs to the customer, per currency (PRODUCT §11): a downgrade's credit and
 * an overpayment are taken off their next invoices at finalization, whatever subscription (or none)
 * those bill.
 */
describe("a customer's credit", () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  const d = (iso: string) => new Date(iso);
  const credit = (customer: string, currency = 'USD') =>
    balanceOf(db, `customer_credit:${customer}`, currency);
  const receivable = (customer: string, currency = 'USD') =>
    balanceOf(db, `receivable:${customer}`, currency);
  const flat = (amount: number, name: string) =>
    insertPlan(db, { name, price: { model: 'FLAT_FEE', amount }, taxRatePpm: 100_000 });

  /** A customer with 385 USD of credit: Basic (2800 + 10%) from Feb 1 2027, downgraded to Lite (1400) with 7 of 28 days left. */
  async function customerWithDowngradeCredit() {
    const [basic, lite] = [await flat(2800, 'Basic'), await flat(1400, 'Lite')];
    const customer = await insertCustomer(db);
    const { subscription, invoices } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: basic },
      d('2027-02-01T00:00:00Z'),
    );
    // Basic's invoice (2800 + 280 tax = 3080) paid first: over an unpaid one the credit would lower
    // what it still owes instead of becoming customer credit (proration-open-invoice.test.ts).
    await recordOfflinePayment(db, 'system', invoices[0]!.id, { method: 'BANK', amount: 3080n });
    // Unused 7/28 of Basic: 700 credited, 7/28 of Lite: 350 charged → net credit 350 + 35 tax = 385.
    await changeSubscription(
      db,
      'system',
      subscription.id,
      { planId: lite },
      d('2027-02-22T00:00:00Z'),
      false,
    );
    expect(await credit(customer)).toBe(-385n);
    return { customer, subscription };
  }

  /** A one-line manual invoice (no subscription) of `amount` + `taxPpm`, finalized. */
  async function manualInvoice(customer: string, amount: bigint, taxPpm = 0, currency = 'USD') {
    const draft = await createInvoice(db, 'system', {
      customerId: customer,
      currency,
      lines: [{ description: 'Setup', unitAmount: amount, quantity: 1, type: 'CHARGE', taxRatePpm: taxPpm }],
    });
    return finalizeInvoice(db, 'system', draft.id);
  }

  it('a downgrade credit that outlives its subscription pays the customer’s next manual invoice', async () => {
    const { customer, subscription } = await customerWithDowngradeCredit();
    await cancelSubscription(db, 'system', subscription.id, false, d('2027-02-23T00:00:00Z'));
    const taxBefore = await balanceOf(db, 'tax_payable', 'USD');
    const revenueBefore = await balanceOf(db, 'revenue', 'USD');
    // 1000 + 100 tax = 1100, of which the 385 of credit pays 385: 715 left due.
    const invoice = await manualInvoice(customer, 1000n, 100_000);
    expect(invoice).toMatchObject({
      status: 'OPEN',
      subtotal: 1000n,
      tax: 100n,
      total: 1100n,
      credit_applied: 385n,
      amount_due: 715n,
    });
    expect(await credit(customer)).toBe(0n);
    // Receivable: the first Basic invoice (3080, paid) + 715.
    expect(await receivable(customer)).toBe(715n);
    // The credit is like a payment: revenue and tax of the new invoice are booked whole.
    expect(await balanceOf(db, 'revenue', 'USD')).toBe(revenueBefore - 1000n);
    expect(await balanceOf(db, 'tax_payable', 'USD')).toBe(taxBefore - 100n);
  });

  it('credit larger than an invoice pays it whole (PAID at once); the rest goes to another subscription’s invoice', async () => {
    const { customer } = await customerWithDowngradeCredit();
    const small = await manualInvoice(customer, 200n);
    expect(small).toMatchObject({ status: 'PAID', credit_applied: 200n, amount_due: 0n, charge_at: null });
    expect(await credit(customer)).toBe(-185n);
    // Another subscription of the same customer: its first invoice (1000 + 100) takes the other 185.
    const other = await flat(1000, 'Other');
    const { invoices } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: other },
      d('2027-03-05T00:00:00Z'),
    );
    expect(invoices.map((i) => [i.total, i.status])).toEqual([[1100n, 'OPEN']]);
    // The invoice returned is the one finalized, with the credit applied (not the draft read before).
    expect(invoices[0]).toMatchObject({ credit_applied: 185n, amount_due: 915n });
    const stored = await db
      .selectFrom('invoices')
      .selectAll()
      .where('id', '=', invoices[0]!.id)
      .executeTakeFirstOrThrow();
    expect([stored.credit_applied, stored.amount_due]).toEqual([185n, 915n]);
    expect(await credit(customer)).toBe(0n);
    // Receivable: Basic's 3080 (paid) + 0 (paid by credit) + 915.
    expect(await receivable(customer)).toBe(915n);
  });

  it('a renewal returns its invoices as finalized: the credit applied and what is left due', async () => {
    const { customer, subscription } = await customerWithDowngradeCredit();
    // The next period of Lite: 1400 + 140 tax = 1540, of which the 385 of credit pays 385.
    const renewal = await renewSubscription(db, 'system', subscription.id, d('2027-03-01T00:00:00Z'));
    expect(renewal?.invoices).toHaveLength(1);
    const [returned] = renewal!.invoices;
    const stored = await db
      .selectFrom('invoices')
      .selectAll()
      .where('id', '=', returned!.id)
      .executeTakeFirstOrThrow();
    expect(returned).toMatchObject({ status: 'OPEN', total: 1540n, credit_applied: 385n, amount_due: 1155n });
    expect(returned).toMatchObject({
      status: stored.status,
      credit_applied: stored.credit_applied,
      amount_due: stored.amount_due,
      finalized_at: stored.finalized_at,
      charge_at: stored.charge_at,
    });
    expect(await credit(customer)).toBe(0n);
  });

  it('credit in one currency is not used for another; voiding an invoice gives its credit back', async () => {
    const { customer } = await customerWithDowngradeCredit();
    const euros = await manualInvoice(customer, 500n, 0, 'EUR');
    expect(euros).toMatchObject({ credit_applied: 0n, amount_due: 500n });
    const dollars = await manualInvoice(customer, 1000n);
    expect(dollars).toMatchObject({ credit_applied: 385n, amount_due: 615n });
    await voidInvoice(db, 'system', dollars.id);
    expect(await credit(customer)).toBe(-385n);
    // Basic's 3080 was paid; the voided invoice owes nothing.
    expect(await receivable(customer)).toBe(0n);
  });

  it('a refund of an overpaid invoice pays back the overpayment (customer credit) first, then the sale with its tax', async () => {
    const customer = await insertCustomer(db);
    const invoice = await manualInvoice(customer, 1000n, 100_000);
    /** A gateway payment of 1100 on the invoice, recorded succeeded. */
    const pay = async (gatewayId: string) => {
      const transaction = await db
        .insertInto('transactions')
        .values({
          id: newId('txn'),
          invoice_id: invoice.id,
          customer_id: customer,
          gateway: 'stripe',
          amount: 1100n,
          currency: 'USD',
          status: 'pending',
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await inUnitOfWork(db, { actor: 'system' }, (work) =>
        recordChargeResult(work, transaction, { status: 'succeeded', gatewayTransactionId: gatewayId }),
      );
      return transaction;
    };
    const refund = (transaction: TransactionRow, amount: bigint) =>
      inUnitOfWork(db, { actor: 'system' }, async (work) => {
        await lockInvoice(work, invoice.id);
        const row = await createRefund(work, transaction, { amount });
        return (await recordRefundResult(work, row.id, { status: 'succeeded' })).refund;
      });
    const first = await pay('pi_twice_1');
    const second = await pay('pi_twice_2');
    // Paid twice: 1100 of the 2200 is the customer's credit.
    expect(await credit(customer)).toBe(-1100n);
    const taxBefore = await balanceOf(db, 'tax_payable', 'USD');
    const refundsBefore = await balanceOf(db, 'refunds', 'USD');
    // Refunding the duplicate (1100) gives the overpayment back: credit 0, no credit note, no tax.
    const duplicate = await refund(second, 1100n);
    expect(await credit(customer)).toBe(0n);
    expect(await balanceOf(db, 'tax_payable', 'USD')).toBe(taxBefore);
    expect(await balanceOf(db, 'refunds', 'USD')).toBe(refundsBefore);
    expect(
      await db.selectFrom('credit_notes').select('id').where('refund_id', '=', duplicate.id).execute(),
    ).toEqual([]);
    // Then 550 of the sale: a credit note of 500 + 50 tax.
    const sale = await refund(first, 550n);
    const note = await db
      .selectFrom('credit_notes')
      .selectAll()
      .where('refund_id', '=', sale.id)
      .executeTakeFirstOrThrow();
    expect([note.subtotal, note.tax, note.total]).toEqual([500n, 50n, 550n]);
    expect(await balanceOf(db, 'tax_payable', 'USD')).toBe(taxBefore + 50n);
    expect(await balanceOf(db, 'refunds', 'USD')).toBe(refundsBefore + 500n);
    expect(await credit(customer)).toBe(0n);
    expect(await receivable(customer)).toBe(0n);
  });

  it('a payment beyond what its invoice asked becomes customer credit, used by the next invoice', async () => {
    const customer = await insertCustomer(db);
    const invoice = await manualInvoice(customer, 1000n);
    // The invoice is paid offline while a Stripe charge of 1000 is still in flight; the charge succeeds.
    await app.api('POST', `/v1/invoices/${invoice.id}/payments`, { amount: 1000, method: 'BANK' });
    const transaction = await db
      .insertInto('transactions')
      .values({
        id: newId('txn'),
        invoice_id: invoice.id,
        customer_id: customer,
        gateway: 'stripe',
        amount: 1000n,
        currency: 'USD',
        status: 'pending',
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const recorded = await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, transaction, { status: 'succeeded', gatewayTransactionId: 'pi_overpaid_1' }),
    );
    expect(recorded).toMatchObject({ kind: 'applied', overpaid: true });
    // Clearing +1000, receivable −1000 +1000 = 0, customer credit −1000: we owe the customer 1000.
    expect(await receivable(customer)).toBe(0n);
    expect(await credit(customer)).toBe(-1000n);
    expect(await balanceOf(db, 'gateway_clearing:stripe', 'USD')).toBeGreaterThanOrEqual(1000n);
    const next = await manualInvoice(customer, 600n);
    expect(next).toMatchObject({ status: 'PAID', credit_applied: 600n, amount_due: 0n });
    expect(await credit(customer)).toBe(-400n);
    expect(await receivable(customer)).toBe(0n);
  });
});
