import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayClients } from '../../src/accounts/clients.ts';
import { createInvoice, finalizeInvoice } from '../../src/billing/invoices.ts';
import type { Db } from '../../src/db/database.ts';
import type { TransactionRow } from '../../src/db/schema.ts';
import type { GatewayName } from '../../src/gateways/types.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordDispute } from '../../src/payments/disputes.ts';
import { recordReportedVoid, voidTransaction } from '../../src/payments/voids.ts';
import {
  booksIn,
  entryPostings,
  moneyCoreDatabase,
  paidTwice,
  pendingCharge,
} from '../support/money-core.ts';

/**
 * `voidTransaction`'s refusals that need no gateway: what a gateway can void is its declared
 * capability (capabilities.ts), whether or not it is configured; a gateway that can void but has no
 * credentials here is `gateway_not_configured`. Nothing changes either way.
 */
/** No gateway configured: no default account has credentials, and there is no gateway account. */
const NOTHING_CONFIGURED: GatewayClients = {
  registry: new Map(),
  accounts: { adapterOf: async () => undefined },
};

describe('voidTransaction without the gateway configured', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  /** A pending charge the gateway has named (`gateway_transaction_id` set), in `currency`. */
  async function namedPendingCharge(gateway: GatewayName, currency: string) {
    const { transaction } = await pendingCharge(db, { currency, gateway });
    await db
      .updateTable('transactions')
      .set({ gateway_transaction_id: `${gateway}_${currency}_1` })
      .where('id', '=', transaction.id)
      .execute();
    return transaction;
  }

  it('answers gateway_not_configured for a gateway that voids (Stripe) without credentials, and changes nothing', async () => {
    const transaction = await namedPendingCharge('stripe', 'NOK');
    await expect(voidTransaction(db, 'system', NOTHING_CONFIGURED, transaction.id)).rejects.toMatchObject({
      status: 409,
      code: 'gateway_not_configured',
    });
    const row = await db
      .selectFrom('transactions')
      .select('status')
      .where('id', '=', transaction.id)
      .executeTakeFirst();
    expect(row?.status).toBe('pending');
  });

  it('answers gateway_cannot_void for a gateway that voids none of billhook charges (PayPal), configured or not', async () => {
    const transaction = await namedPendingCharge('paypal', 'DKK');
    await expect(voidTransaction(db, 'system', NOTHING_CONFIGURED, transaction.id)).rejects.toMatchObject({
      status: 409,
      code: 'gateway_cannot_void',
    });
  });
});

/**
 * `recordReportedVoid` of a payment of an invoice paid twice (Authorize.Net voids a succeeded charge
 * until settlement): the invoice is paid by the other payment alone, so it is overpaid no more, and
 * the customer's credit the overpayment made goes back to the receivable, whichever payment was
 * voided; a lost dispute of the other payment that had taken that overpayment gives it back.
 */
describe('a reported void of one of two payments', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  const voidReported = (transaction: TransactionRow) =>
    inUnitOfWork(db, { actor: 'system' }, (work) => recordReportedVoid(work, transaction));
  const invoiceRow = (id: string) =>
    db.selectFrom('invoices').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  it("the first voided: the duplicate's credit goes back to the receivable, nothing due and credit 0", async () => {
    // 10000 paid by A, then by B (B's 10000 the customer's credit); A voided before settlement: 10000
    // paid for 10000 asked. The void reversed A's own entries only (A made no credit): the invoice
    // PAID with 10000 in the receivable, and the customer kept 10000 of credit.
    const { invoice, first } = await paidTwice(db, {
      currency: 'CHF',
      amount: 10000n,
      gateway: 'authorizenet',
    });
    expect((await voidReported(first)).kind).toBe('applied');
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'PAID',
      amount_paid: 10000n,
      amount_due: 0n,
    });
    expect(await entryPostings(db, `${first.id}:overpaid_voided`)).toEqual({
      'customer_credit:customer': 10000n,
      'receivable:customer': -10000n,
    });
    expect(await booksIn(db, 'CHF')).toMatchObject({
      'receivable:customer': 0n,
      'customer_credit:customer': 0n,
      'gateway_clearing:authorizenet': 10000n,
    });
    // Reported again: nothing moves twice.
    expect((await voidReported(first)).kind).toBe('duplicate');
    expect(await booksIn(db, 'CHF')).toMatchObject({
      'receivable:customer': 0n,
      'customer_credit:customer': 0n,
    });
  });

  it('the duplicate voided: its own credit goes back, as before', async () => {
    const { invoice, duplicate } = await paidTwice(db, {
      currency: 'SEK',
      amount: 10000n,
      gateway: 'authorizenet',
    });
    expect((await voidReported(duplicate)).kind).toBe('applied');
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'PAID',
      amount_paid: 10000n,
      amount_due: 0n,
    });
    expect(await booksIn(db, 'SEK')).toMatchObject({
      'receivable:customer': 0n,
      'customer_credit:customer': 0n,
      'gateway_clearing:authorizenet': 10000n,
    });
  });

  it("the first voided after the duplicate's chargeback took the overpayment: that loss is a loss again, credit 0", async () => {
    // B charged back (lost): its loss took the overpayment (credit 10000 → 0, nothing lost). A voided:
    // B alone paid the invoice and its money went back to the customer's bank: a loss of 10000.
    const { invoice, first, duplicate } = await paidTwice(db, {
      currency: 'GBP',
      amount: 10000n,
      gateway: 'authorizenet',
    });
    const lost = await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordDispute(work, duplicate, { gatewayDisputeId: 'cb_gbp', status: 'lost', amount: 10000n }),
    );
    expect(lost.dispute.overpayment_charged_back).toBe(10000n);
    expect(await booksIn(db, 'GBP')).toMatchObject({ 'customer_credit:customer': 0n, chargeback_losses: 0n });
    expect((await voidReported(first)).kind).toBe('applied');
    expect(await entryPostings(db, `${lost.dispute.id}:overpayment_share:${first.id}:voided`)).toEqual({
      'customer_credit:customer': -10000n,
      chargeback_losses: 10000n,
    });
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'PAID',
      amount_paid: 10000n,
      amount_due: 0n,
    });
    expect(await booksIn(db, 'GBP')).toMatchObject({
      'receivable:customer': 0n,
      'customer_credit:customer': 0n,
      chargeback_losses: 10000n,
    });
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('transaction_id', 'in', [first.id, duplicate.id])
      .execute();
    expect(exceptions).toEqual([]);
  });

  it("the first voided after the duplicate's credit was spent: the credit is left in debit, for a person", async () => {
    const { customerId, first } = await paidTwice(db, {
      currency: 'EUR',
      amount: 10000n,
      gateway: 'authorizenet',
    });
    // The 10000 of credit pays the next invoice whole.
    const next = await createInvoice(db, 'system', {
      customerId,
      currency: 'EUR',
      lines: [{ description: 'Next month', unitAmount: 10000n, quantity: 1, type: 'CHARGE' }],
    });
    expect(await finalizeInvoice(db, 'system', next.id)).toMatchObject({
      status: 'PAID',
      credit_applied: 10000n,
    });
    expect((await voidReported(first)).kind).toBe('applied');
    expect(await booksIn(db, 'EUR')).toMatchObject({
      'receivable:customer': 0n,
      'customer_credit:customer': 10000n,
    });
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'details'])
      .where('transaction_id', '=', first.id)
      .execute();
    expect(exceptions).toEqual([
      {
        kind: 'overpayment_credit_spent',
        details: expect.objectContaining({ share: '10000', credit_left: '0' }),
      },
    ]);
  });
});
