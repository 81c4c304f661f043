import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refundable } from '../../src/billing/invoice-payment.ts';
import { createInvoice, finalizeInvoice } from '../../src/billing/invoices.ts';
import type { Db } from '../../src/db/database.ts';
import { newId } from '../../src/db/ids.ts';
import {
  SettledBatchListResponse,
  TransactionListResponse,
} from '../../src/gateways/authorizenet/schemas.ts';
import { AuthorizeNetSettlement, type BatchSource } from '../../src/gateways/authorizenet/settlement.ts';
import type { SettlementLine } from '../../src/gateways/settlement.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { createRefund } from '../../src/payments/refunds.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import { anetFixture } from '../gateways/authorizenet/support.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  countEntries,
  entryPostings,
  moneyCoreDatabase,
  paidTwice,
  pendingCharge,
  succeededCharge,
} from '../support/money-core.ts';
import { insertCustomer } from '../support/plans.ts';

/*
 * A charge the gateway settled for another amount than billhook booked: the settlement report is the
 * bank's truth (PRODUCT §11: Authorize.Net's settled amount, not the authorized one, is what a capture
 * moved). Settled for less, the books follow the money: the difference leaves gateway clearing and is
 * owed again on the invoice (`txn_…:settled_short:stl_…`), the payment's `amount_captured` is what
 * settled, the invoice is OPEN with the rest due, and refunds are capped on what was received; the
 * `amount_mismatch` stays open once for a person. Settled for more, billhook books nothing beyond what
 * it charged (it never books more than it asked for): the excess stays in clearing with the
 * `amount_mismatch` naming it, for a person to give back or book. Each case books in a currency of
 * its own (Authorize.Net's batches are USD, so those cases use their own transIds and customers).
 */

/** The real getSettledBatchList sample's second batch (3990090), as `id`, settled for `amount` (charges only). */
function batchOf(id: string, amount: string) {
  const list = SettledBatchListResponse.parse(anetFixture('api.getSettledBatchList.json'));
  const batch = list.batchList[1]!;
  return {
    ...batch,
    batchId: id,
    statistics: [{ ...batch.statistics![0]!, chargeAmount: amount, refundAmount: '0.00' }],
  };
}

/** The real getTransactionList sample's one transaction as `transId`, settled for `settleAmount`. */
function settledAs(transId: string, settleAmount: string) {
  const [sample] = TransactionListResponse.parse(anetFixture('api.getTransactionList.json')).transactions;
  return { ...sample!, transId, settleAmount };
}

/** An Authorize.Net sweep answering one batch `id` holding one charge `transId` settled for `amount`. */
function sweepOf(id: string, transId: string, amount: string) {
  const batch = batchOf(id, amount);
  const source: BatchSource = {
    settledBatches: async () => [batch],
    batchTransactions: async (asked) => (asked === id ? [settledAs(transId, amount)] : []),
    accountCurrencies: async () => ['USD'],
  };
  return async () =>
    recordSettlementReport(
      db,
      'system',
      { gateway: 'authorizenet', gatewayAccount: null },
      await new AuthorizeNetSettlement(source).fetchSettlements({
        from: new Date(batch.settlementTimeUTC!),
        to: new Date(new Date(batch.settlementTimeUTC!).getTime() + 1000),
      }),
    );
}

const exceptionsOf = (transactionId: string) =>
  db
    .selectFrom('reconciliation_exceptions')
    .select(['kind', 'status', 'message', 'details'])
    .where('transaction_id', '=', transactionId)
    .orderBy('created_at')
    .execute();

const invoiceOf = (id: string) =>
  db.selectFrom('invoices').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const transactionOf = (id: string) =>
  db.selectFrom('transactions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
});
afterAll(() => db?.destroy());

describe('a capture the gateway settled for another amount than billhook booked', () => {
  it('Authorize.Net settles USD 100.00 for 80.00: 20.00 out of clearing and owed again, the invoice OPEN with 20.00 due, amount_captured 80.00, one amount_mismatch; the same batch again changes nothing', async () => {
    const { invoice, transaction, customerId } = await succeededCharge(db, {
      currency: 'USD',
      amount: 10_000n,
      gateway: 'authorizenet',
      gatewayTransactionId: '2228200001',
    });
    expect((await invoiceOf(invoice.id)).status).toBe('PAID');
    const sweep = sweepOf('3990301', '2228200001', '80.00');
    expect(await sweep()).toMatchObject({ payouts: 1, unmatched: 0 });

    const line = await db
      .selectFrom('settlement_lines')
      .select(['id', 'gross', 'transaction_id'])
      .where('gateway_line_id', '=', '2228200001')
      .executeTakeFirstOrThrow();
    expect(line).toMatchObject({ gross: 8_000n, transaction_id: transaction.id });
    expect(await entryPostings(db, `${transaction.id}:settled_short:${line.id}`)).toEqual({
      'receivable:customer': 2_000n,
      'gateway_clearing:authorizenet': -2_000n,
    });
    const usd = await booksIn(db, 'USD');
    expect(usd).toMatchObject({
      'gateway_clearing:authorizenet': 0n,
      'bank:authorizenet': 8_000n,
      'receivable:customer': 2_000n,
    });
    expect(await transactionOf(transaction.id)).toMatchObject({
      status: 'succeeded',
      amount_captured: 8_000n,
    });
    expect(await invoiceOf(invoice.id)).toMatchObject({
      status: 'OPEN',
      amount_paid: 8_000n,
      amount_due: 2_000n,
      paid_at: null,
    });
    const raised = await exceptionsOf(transaction.id);
    expect(raised).toEqual([
      {
        kind: 'amount_mismatch',
        status: 'open',
        message: expect.stringMatching(
          /settled 8000 USD but billhook booked 10000.*2000 taken out of clearing/,
        ),
        details: expect.objectContaining({ gateway_line_id: '2228200001', gross: '8000', booked: '10000' }),
      },
    ]);
    const activities = await db
      .selectFrom('activities')
      .select('action')
      .where('resource_id', 'in', [invoice.id, transaction.id])
      .execute();
    expect(activities.map((a) => a.action)).toEqual(
      expect.arrayContaining(['invoice.payment_reversed', 'transaction.settled_short']),
    );

    const entries = await countEntries(db);
    expect(await sweep()).toMatchObject({ payouts: 0, lines: 0 });
    expect(await countEntries(db)).toBe(entries);
    expect(await booksIn(db, 'USD')).toEqual(usd);
    expect(await invoiceOf(invoice.id)).toMatchObject({
      status: 'OPEN',
      amount_paid: 8_000n,
      amount_due: 2_000n,
    });
    expect(await exceptionsOf(transaction.id)).toHaveLength(1);
    expect(
      await db.selectFrom('invoices').select('charge_at').where('customer_id', '=', customerId).execute(),
    ).toEqual([{ charge_at: null }]);
  });

  it("a subscription's invoice settled short goes back on the charge schedule at once, as any unpaid one (the amount_mismatch stays open for a person)", async () => {
    const customerId = await insertCustomer(db);
    const product = await db
      .insertInto('products')
      .values({ id: newId('prod'), name: 'Pro' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const plan = await db
      .insertInto('plans')
      .values({
        id: newId('plan'),
        product_id: product.id,
        name: 'Pro monthly',
        currency: 'USD',
        interval: 'MONTH',
        price: JSON.stringify({ model: 'FLAT_FEE', amount: 10_000 }),
        metered: JSON.stringify([]),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const subscription = await db
      .insertInto('subscriptions')
      .values({
        id: newId('sub'),
        customer_id: customerId,
        plan_id: plan.id,
        status: 'ACTIVE',
        billing_anchor: new Date(),
        start_at: new Date(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const draft = await createInvoice(db, 'system', {
      customerId,
      currency: 'USD',
      lines: [{ description: 'Period', unitAmount: 10_000n, quantity: 1, type: 'CHARGE' }],
      subscriptionId: subscription.id,
      periodIndex: 0,
      billingReason: 'subscription_cycle',
    });
    const invoice = await finalizeInvoice(db, 'system', draft.id);
    const transaction = await db
      .insertInto('transactions')
      .values({
        id: newId('txn'),
        invoice_id: invoice.id,
        customer_id: customerId,
        gateway: 'authorizenet',
        amount: 10_000n,
        currency: 'USD',
        status: 'pending',
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await applyAsBatch(
      db,
      canonicalEvent({
        type: 'charge.succeeded',
        gateway: 'authorizenet',
        gatewayTransactionId: '2228200004',
        reference: transaction.id,
        amount: 10_000n,
        currency: 'USD',
      }),
    );
    expect(await invoiceOf(invoice.id)).toMatchObject({ status: 'PAID', charge_at: null });
    const swept = new Date();
    await sweepOf('3990304', '2228200004', '80.00')();
    const owed = await invoiceOf(invoice.id);
    expect(owed).toMatchObject({ status: 'OPEN', amount_paid: 8_000n, amount_due: 2_000n });
    expect(owed.charge_at?.getTime()).toBeGreaterThanOrEqual(swept.getTime());
    expect(await exceptionsOf(transaction.id)).toEqual([
      expect.objectContaining({
        kind: 'amount_mismatch',
        status: 'open',
        message: expect.stringMatching(/OPEN with 8000 paid and 2000 due, back on the charge schedule/),
      }),
    ]);
  });

  it("a batch swept before billhook knew the charge succeeded: its line is followed when the charge's webhook is applied (a reconcile batch), once", async () => {
    const { invoice, transaction } = await pendingCharge(db, {
      currency: 'USD',
      amount: 10_000n,
      gateway: 'authorizenet',
    });
    await sweepOf('3990305', '2228200005', '80.00')();
    expect(await exceptionsOf(transaction.id)).toEqual([]);
    const succeeded = () =>
      applyAsBatch(
        db,
        canonicalEvent({
          type: 'charge.succeeded',
          gateway: 'authorizenet',
          gatewayTransactionId: '2228200005',
          reference: transaction.id,
          amount: 10_000n,
          currency: 'USD',
        }),
      );
    expect(await succeeded()).toMatchObject({ kind: 'applied' });
    const line = await db
      .selectFrom('settlement_lines')
      .select(['id', 'transaction_id'])
      .where('gateway_line_id', '=', '2228200005')
      .executeTakeFirstOrThrow();
    expect(line.transaction_id).toBe(transaction.id);
    expect(await entryPostings(db, `${transaction.id}:settled_short:${line.id}`)).toEqual({
      'receivable:customer': 2_000n,
      'gateway_clearing:authorizenet': -2_000n,
    });
    expect(await transactionOf(transaction.id)).toMatchObject({
      status: 'succeeded',
      amount_captured: 8_000n,
    });
    expect(await invoiceOf(invoice.id)).toMatchObject({
      status: 'OPEN',
      amount_paid: 8_000n,
      amount_due: 2_000n,
    });
    expect(await exceptionsOf(transaction.id)).toEqual([
      expect.objectContaining({ kind: 'amount_mismatch', status: 'open' }),
    ]);
    const entries = await countEntries(db);
    await succeeded();
    await sweepOf('3990305', '2228200005', '80.00')();
    expect(await countEntries(db)).toBe(entries);
    expect(await invoiceOf(invoice.id)).toMatchObject({
      status: 'OPEN',
      amount_paid: 8_000n,
      amount_due: 2_000n,
    });
    expect(await exceptionsOf(transaction.id)).toHaveLength(1);
  });

  it('a refund after a short settlement is capped on the 80.00 received, not the 100.00 booked', async () => {
    const { transaction } = await succeededCharge(db, {
      currency: 'USD',
      amount: 10_000n,
      gateway: 'authorizenet',
      gatewayTransactionId: '2228200002',
    });
    await sweepOf('3990302', '2228200002', '80.00')();
    const settled = await transactionOf(transaction.id);
    expect(await refundable(db, settled)).toBe(8_000n);
    const refund = (amount: bigint) =>
      inUnitOfWork(db, { actor: 'system' }, (work) => createRefund(work, settled, { amount }));
    await expect(refund(10_000n)).rejects.toMatchObject({ status: 422 });
    await expect(refund(8_001n)).rejects.toMatchObject({ status: 422 });
    expect(await refund(8_000n)).toMatchObject({ amount: 8_000n, status: 'pending' });
  });

  it('Authorize.Net settles USD 100.00 for 120.00: nothing beyond the 100.00 charged is booked, the invoice stays PAID, the 20.00 stays in clearing with one amount_mismatch saying so; again changes nothing', async () => {
    const { invoice, transaction } = await succeededCharge(db, {
      currency: 'USD',
      amount: 10_000n,
      gateway: 'authorizenet',
      gatewayTransactionId: '2228200003',
    });
    const before = await booksIn(db, 'USD');
    const sweep = sweepOf('3990303', '2228200003', '120.00');
    await sweep();
    const after = await booksIn(db, 'USD');
    expect(after['gateway_clearing:authorizenet']).toBe(before['gateway_clearing:authorizenet']! - 12_000n);
    expect(after['bank:authorizenet']).toBe(before['bank:authorizenet']! + 12_000n);
    expect(await transactionOf(transaction.id)).toMatchObject({ amount_captured: null });
    expect(await invoiceOf(invoice.id)).toMatchObject({
      status: 'PAID',
      amount_paid: 10_000n,
      amount_due: 0n,
    });
    const raised = await exceptionsOf(transaction.id);
    expect(raised).toEqual([
      {
        kind: 'amount_mismatch',
        status: 'open',
        message: expect.stringMatching(
          /settled 12000 USD but billhook booked 10000.*2000 more than billhook charged/,
        ),
        details: expect.objectContaining({ gross: '12000', booked: '10000' }),
      },
    ]);
    const entries = await countEntries(db);
    await sweep();
    expect(await countEntries(db)).toBe(entries);
    expect(await exceptionsOf(transaction.id)).toHaveLength(1);
  });

  /** A Stripe payout line (the shape stripe/settlement.ts makes of a balance transaction) of `intent`. */
  const stripeLine = (intent: string, currency: string, gross: bigint, fee: bigint): SettlementLine => ({
    gatewayLineId: `txn_${intent}`,
    kind: 'charge',
    gatewayTransactionId: intent,
    currency,
    gross,
    fee,
    net: gross - fee,
    occurredAt: new Date(),
  });
  const stripePayout = (id: string, line: SettlementLine) =>
    recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      {
        lines: [],
        payouts: [
          {
            gatewayPayoutId: id,
            status: 'paid',
            currency: line.currency,
            amount: line.net,
            createdAt: new Date(),
            arrivalDate: new Date(),
            lines: [line],
          },
        ],
      },
    );

  it.each([
    ['JPY', 10_000n, 8_000n],
    ['KWD', 100_000n, 80_000n],
  ] as const)(
    '%s (its own exponent) settled short by a Stripe payout line: the difference is owed again in its minor units',
    async (currency, booked, settled) => {
      const intent = `pi_${currency.toLowerCase()}_settled_short_exp`;
      const { invoice, transaction } = await succeededCharge(db, {
        currency,
        amount: booked,
        gatewayTransactionId: intent,
      });
      await stripePayout(`po_${currency.toLowerCase()}_short_exp`, stripeLine(intent, currency, settled, 0n));
      expect(await booksIn(db, currency)).toMatchObject({
        'gateway_clearing:stripe': 0n,
        'bank:stripe': settled,
        'receivable:customer': booked - settled,
      });
      expect(await invoiceOf(invoice.id)).toMatchObject({
        status: 'OPEN',
        amount_paid: settled,
        amount_due: booked - settled,
      });
      expect(await transactionOf(transaction.id)).toMatchObject({ amount_captured: settled });
    },
  );

  it('any gateway whose lines reach the books the same way (a Stripe payout line): CAD 50.00 settled 40.00 is owed 10.00 again', async () => {
    const { invoice, transaction } = await succeededCharge(db, {
      currency: 'CAD',
      amount: 5_000n,
      gatewayTransactionId: 'pi_cad_settled_short',
    });
    await stripePayout('po_cad_short', stripeLine('pi_cad_settled_short', 'CAD', 4_000n, 150n));
    expect(await booksIn(db, 'CAD')).toMatchObject({
      'gateway_clearing:stripe': 0n,
      'gateway_fees:stripe': 150n,
      'bank:stripe': 3_850n,
      'receivable:customer': 1_000n,
    });
    expect(await invoiceOf(invoice.id)).toMatchObject({
      status: 'OPEN',
      amount_paid: 4_000n,
      amount_due: 1_000n,
    });
    expect(await transactionOf(transaction.id)).toMatchObject({ amount_captured: 4_000n });
  });

  it('after a short settlement the gateway reporting a refund or a dispute of the 100.00 booked is an amount_mismatch, booked nothing; one of the 80.00 received is booked', async () => {
    const { transaction } = await succeededCharge(db, {
      currency: 'CHF',
      amount: 10_000n,
      gatewayTransactionId: 'pi_chf_settled_short',
    });
    await stripePayout('po_chf_short', stripeLine('pi_chf_settled_short', 'CHF', 8_000n, 0n));
    const before = await booksIn(db, 'CHF');
    const event = (type: 'refund.succeeded' | 'dispute.opened', amount: bigint) =>
      applyAsBatch(
        db,
        canonicalEvent({
          type,
          gatewayTransactionId: 'pi_chf_settled_short',
          ...(type === 'refund.succeeded'
            ? { gatewayRefundId: 're_chf_whole' }
            : { gatewayDisputeId: 'dp_chf' }),
          amount,
          currency: 'CHF',
        }),
      );
    expect(await event('refund.succeeded', 10_000n)).toMatchObject({
      kind: 'exception',
      exception: 'amount_mismatch',
    });
    expect(await event('dispute.opened', 10_000n)).toMatchObject({
      kind: 'exception',
      exception: 'amount_mismatch',
    });
    expect(await booksIn(db, 'CHF')).toEqual(before);
    expect(await event('dispute.opened', 8_000n)).toMatchObject({ kind: 'applied' });
    expect(await booksIn(db, 'CHF')).toMatchObject({
      disputed_funds: 8_000n,
      'gateway_clearing:stripe': -8_000n,
    });
    expect(await refundable(db, await transactionOf(transaction.id))).toBe(0n);
  });

  it('an invoice paid twice, its duplicate payment settled short: the shortfall comes off the overpayment credit, the invoice stays PAID', async () => {
    const { invoice, duplicate } = await paidTwice(db, { currency: 'SGD', amount: 3_000n });
    await stripePayout('po_sgd_short', stripeLine('SGD_second', 'SGD', 2_500n, 0n));
    expect(await booksIn(db, 'SGD')).toMatchObject({
      'gateway_clearing:stripe': 3_000n,
      'receivable:customer': 0n,
      'customer_credit:customer': -2_500n,
    });
    expect(await invoiceOf(invoice.id)).toMatchObject({
      status: 'PAID',
      amount_paid: 5_500n,
      amount_due: 0n,
    });
    expect(await transactionOf(duplicate.id)).toMatchObject({ amount_captured: 2_500n });
    const line = await db
      .selectFrom('settlement_lines')
      .select('id')
      .where('transaction_id', '=', duplicate.id)
      .executeTakeFirstOrThrow();
    expect(await entryPostings(db, `${duplicate.id}:overpaid_settled_short:${line.id}`)).toEqual({
      'customer_credit:customer': 500n,
      'receivable:customer': -500n,
    });
  });

  it('a short settlement of a payment whose invoice was refunded in part (PARTIALLY_REFUNDED) is not followed: books unchanged, the amount_mismatch names the invoice', async () => {
    const { invoice, transaction } = await succeededCharge(db, {
      currency: 'SEK',
      amount: 10_000n,
      gatewayTransactionId: 'pi_sek_settled_short',
    });
    await applyAsBatch(
      db,
      canonicalEvent({
        type: 'refund.succeeded',
        gatewayTransactionId: 'pi_sek_settled_short',
        gatewayRefundId: 're_sek_part',
        amount: 1_000n,
        currency: 'SEK',
      }),
    );
    expect((await invoiceOf(invoice.id)).status).toBe('PARTIALLY_REFUNDED');
    const entries = await countEntries(db);
    await stripePayout('po_sek_short', stripeLine('pi_sek_settled_short', 'SEK', 8_000n, 0n));
    // The payout's own entries only (sent, paid): nothing of the 20.00.
    expect(await countEntries(db)).toBe(entries + 2);
    expect(await transactionOf(transaction.id)).toMatchObject({ amount_captured: null });
    expect(await invoiceOf(invoice.id)).toMatchObject({ status: 'PARTIALLY_REFUNDED', amount_paid: 10_000n });
    expect(await exceptionsOf(transaction.id)).toEqual([
      expect.objectContaining({
        kind: 'amount_mismatch',
        message: expect.stringMatching(/not booked: its invoice .* is PARTIALLY_REFUNDED/),
        details: expect.objectContaining({ followed: 'refused' }),
      }),
    ]);
  });

  it('a short settlement billhook cannot follow alone (a refund of 90.00 of the 100.00 already asked, more than the 80.00 settled leaves): books unchanged, the amount_mismatch says why', async () => {
    const { invoice, transaction } = await succeededCharge(db, {
      currency: 'NOK',
      amount: 10_000n,
      gatewayTransactionId: 'pi_nok_settled_short',
    });
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      createRefund(work, transaction, { amount: 9_000n }),
    );
    const before = await booksIn(db, 'NOK');
    await stripePayout('po_nok_short', stripeLine('pi_nok_settled_short', 'NOK', 8_000n, 0n));
    const after = await booksIn(db, 'NOK');
    expect(after['receivable:customer']).toBe(before['receivable:customer'] ?? 0n);
    expect(await transactionOf(transaction.id)).toMatchObject({ amount_captured: null });
    expect((await invoiceOf(invoice.id)).amount_paid).toBe(10_000n);
    expect(await exceptionsOf(transaction.id)).toEqual([
      expect.objectContaining({
        kind: 'amount_mismatch',
        message: expect.stringMatching(/not booked: .*refund/),
      }),
    ]);
  });

  it('a payment captured in part (Authorize.Net USD 100.00 authorized, 60.00 captured) settled for 50.00: a redelivered charge.succeeded of the 60.00 booked is old news, not a second amount_mismatch; the books and the one exception stay', async () => {
    /*
     * By hand, minor units: the capture books 6000 into clearing (the invoice of 10000 paid 6000, 4000
     * due); the batch settles 5000: 1000 out of clearing and owed again (receivable +1000), the
     * invoice paid 5000 with 5000 due, amount_captured 5000, one amount_mismatch. The capture webhook
     * of 6000 delivered again afterwards says what billhook booked before the settlement lowered it:
     * nothing moves, no exception.
     */
    const { invoice, transaction } = await pendingCharge(db, {
      currency: 'USD',
      amount: 10_000n,
      gateway: 'authorizenet',
    });
    const captured = () =>
      applyAsBatch(
        db,
        canonicalEvent({
          type: 'charge.succeeded',
          gateway: 'authorizenet',
          gatewayTransactionId: '2228200060',
          reference: transaction.id,
          amount: 6_000n,
          currency: 'USD',
        }),
      );
    expect(await captured()).toMatchObject({ kind: 'applied' });
    expect(await transactionOf(transaction.id)).toMatchObject({
      status: 'succeeded',
      amount_captured: 6_000n,
    });
    const before = await booksIn(db, 'USD');
    await sweepOf('3990360', '2228200060', '50.00')();
    const line = await db
      .selectFrom('settlement_lines')
      .select('id')
      .where('gateway_line_id', '=', '2228200060')
      .executeTakeFirstOrThrow();
    expect(await entryPostings(db, `${transaction.id}:settled_short:${line.id}`)).toEqual({
      'receivable:customer': 1_000n,
      'gateway_clearing:authorizenet': -1_000n,
    });
    const settled = await booksIn(db, 'USD');
    expect(settled['receivable:customer']! - (before['receivable:customer'] ?? 0n)).toBe(1_000n);
    expect(settled['bank:authorizenet']! - (before['bank:authorizenet'] ?? 0n)).toBe(5_000n);
    expect(settled['gateway_clearing:authorizenet']! - (before['gateway_clearing:authorizenet'] ?? 0n)).toBe(
      -6_000n,
    );
    expect(await transactionOf(transaction.id)).toMatchObject({ amount_captured: 5_000n });
    expect(await invoiceOf(invoice.id)).toMatchObject({
      status: 'OPEN',
      amount_paid: 5_000n,
      amount_due: 5_000n,
    });
    const raised = await exceptionsOf(transaction.id);
    expect(raised).toEqual([expect.objectContaining({ kind: 'amount_mismatch', status: 'open' })]);

    const entries = await countEntries(db);
    expect(await captured()).not.toMatchObject({ kind: 'exception' });
    expect(await countEntries(db)).toBe(entries);
    expect(await booksIn(db, 'USD')).toEqual(settled);
    expect(await transactionOf(transaction.id)).toMatchObject({ amount_captured: 5_000n });
    expect(await exceptionsOf(transaction.id)).toEqual(raised);
    // Any other amount is still for a person: 55.00 is neither what was captured nor what settled.
    expect(
      await applyAsBatch(
        db,
        canonicalEvent({
          type: 'charge.succeeded',
          gateway: 'authorizenet',
          gatewayTransactionId: '2228200060',
          reference: transaction.id,
          amount: 5_500n,
          currency: 'USD',
        }),
      ),
    ).toMatchObject({ kind: 'exception', exception: 'amount_mismatch' });
  });

  it('a redelivered charge.succeeded of the 100.00 booked (DKK 100.00 settled 80.00) is not a second amount_mismatch: the books and the one exception stay', async () => {
    const { transaction } = await succeededCharge(db, {
      currency: 'DKK',
      amount: 10_000n,
      gatewayTransactionId: 'pi_dkk_settled_short_redelivered',
    });
    await stripePayout('po_dkk_short', stripeLine('pi_dkk_settled_short_redelivered', 'DKK', 8_000n, 0n));
    const before = await booksIn(db, 'DKK');
    const exceptionsBefore = await exceptionsOf(transaction.id);
    const result = await applyAsBatch(
      db,
      canonicalEvent({
        type: 'charge.succeeded',
        gatewayTransactionId: 'pi_dkk_settled_short_redelivered',
        amount: 10_000n,
        currency: 'DKK',
      }),
    );
    expect(result).not.toMatchObject({ kind: 'exception' });
    expect(await booksIn(db, 'DKK')).toEqual(before);
    expect(await exceptionsOf(transaction.id)).toEqual(exceptionsBefore);
  });
});
