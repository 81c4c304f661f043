import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TransactionRow } from '../../src/db/schema.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordDispute } from '../../src/payments/disputes.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, flatPlan, ledgerIn, subscribedAndPaid } from '../support/collection.ts';
import { paidAgain, stripeRefundSucceeds } from '../support/flow.ts';

/**
 * An open dispute on a payment of an overpaid invoice (a duplicate payment: its excess is the
 * customer's credit) holds the share of that credit its loss would take back (billing/credit-notes.ts
 * `overpaymentsHeld`, as a refund in flight holds it): no invoice applies it, no credit refund pays it
 * back, a refund of the invoice counts it as given back first; a win releases it, a loss takes it
 * (`dp_…:overpayment_charged_back`). Before, the credit stayed spendable while the dispute was open,
 * and the loss left the customer's credit in debit with an `overpayment_credit_spent` exception.
 * Plans of 800 with 25% tax: invoices of 1000, paid twice, 1000 of credit. One currency per case.
 */
describe('an open dispute holds the overpayment credit its loss would take back', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
    await app.runtime.boss.offWork(QUEUES.invoiceRefund);
    await app.runtime.boss.offWork(QUEUES.refundRecover);
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());

  const db = () => app.runtime.db;
  const creditOf = async (customer: string) =>
    (await app.api('GET', `/v1/customers/${customer}`)).body.credit;

  /** A Stripe subscription of `currency` whose first invoice (1000) was paid by card, then paid again. */
  async function paidTwice(currency: string) {
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan: await flatPlan(app, currency, 800),
      method: method!.id,
    });
    const { first, second } = await paidAgain(app, sub.invoice.id, 1000n, currency);
    expect(await creditOf(customer.id)).toEqual([{ currency, amount: 1000 }]);
    return { customer: customer.id as string, invoice: sub.invoice.id, first, second };
  }
  /** Records dispute `id` of `amount` on payment `txn` through `statuses`, as its webhooks are. */
  const dispute = async (
    txn: TransactionRow,
    id: string,
    statuses: ('open' | 'lost' | 'won')[],
    amount: bigint,
  ) => {
    for (const status of statuses) {
      await inUnitOfWork(db(), { actor: 'system' }, (work) =>
        recordDispute(work, txn, { gatewayDisputeId: id, status, amount }),
      );
    }
  };
  /** A one-off untaxed invoice of `amount` for `customer`, finalized (their credit applied then). */
  const oneOff = async (customer: string, currency: string, amount: number) => {
    const draft = await app.api('POST', '/v1/invoices', {
      customer,
      currency,
      lines: [{ description: 'Consulting', amount, quantity: 1 }],
    });
    return (await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`)).body;
  };
  const exceptionsOf = (txn: TransactionRow) =>
    db()
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'details'])
      .where('transaction_id', '=', txn.id)
      .execute();
  const refundCount = async () =>
    Number(
      (
        await db()
          .selectFrom('refunds')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('KWD: a dispute of the duplicate open holds its 1.000 of credit (no credit refund: 409, no invoice takes it); lost, it takes that credit and nothing is in debit (before: 0.400 spent, credit in debit 0.400, overpayment_credit_spent)', async () => {
    const { customer, second } = await paidTwice('KWD');
    await dispute(second, 'du_KWD', ['open'], 1000n);
    expect(await creditOf(customer)).toEqual([]);
    const before = await ledgerIn(app, 'KWD');
    const refunds = await refundCount();
    const refused = await app.api('POST', `/v1/customers/${customer}/credit/refund`, {
      amount: 10,
      currency: 'KWD',
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({
      code: 'credit_held_by_dispute',
      message: expect.stringContaining('1000 KWD of their credit is held by open disputes'),
    });
    expect(await refundCount()).toBe(refunds);
    expect(await ledgerIn(app, 'KWD')).toEqual(before);
    // An invoice finalized meanwhile takes none of the held credit.
    const next = await oneOff(customer, 'KWD', 400);
    expect(next).toMatchObject({ status: 'OPEN', credit_applied: 0, amount_due: 400 });

    await dispute(second, 'du_KWD', ['lost'], 1000n);
    // By hand: the invoice 1000 (800 + 200 tax) and the one-off 400 billed; 2000 in by Stripe, the
    // duplicate's 1000 charged back (its loss taken off the 1000 of credit, not lost).
    expect(await ledgerIn(app, 'KWD')).toMatchObject({
      'gateway_clearing:stripe': 1000,
      'receivable:customer': 400,
      'customer_credit:customer': 0,
      disputed_funds: 0,
      chargeback_losses: 0,
      revenue: -1200,
      tax_payable: -200,
    });
    expect((await exceptionsOf(second)).map((e) => e.kind)).toEqual(['duplicate_payment']);
    expect(await creditOf(customer)).toEqual([]);
  });

  it('JPY: the hold is released when the dispute is won: the 1000 of credit is the customer’s again and the next invoice takes it', async () => {
    const { customer, second } = await paidTwice('JPY');
    await dispute(second, 'du_JPY', ['open'], 1000n);
    expect(await creditOf(customer)).toEqual([]);
    expect(await oneOff(customer, 'JPY', 300)).toMatchObject({ status: 'OPEN', credit_applied: 0 });
    await dispute(second, 'du_JPY', ['won'], 1000n);
    expect(await creditOf(customer)).toEqual([{ currency: 'JPY', amount: 1000 }]);
    expect(await oneOff(customer, 'JPY', 400)).toMatchObject({ status: 'PAID', credit_applied: 400 });
    expect(await ledgerIn(app, 'JPY')).toMatchObject({
      'gateway_clearing:stripe': 2000,
      'receivable:customer': 300,
      'customer_credit:customer': -600,
      disputed_funds: 0,
      revenue: -1500,
      tax_payable: -200,
    });
    expect((await exceptionsOf(second)).map((e) => e.kind)).toEqual(['duplicate_payment']);
  });

  it('BHD: a refund by hand of the first payment while 0.300 of the duplicate is disputed counts the held 300 first: 800 refused (409, at most 500), 500 goes through; lost, the dispute takes the last 300 of credit (before: 800 refunded, credit in debit 300)', async () => {
    const { customer, invoice, first, second } = await paidTwice('BHD');
    // 200 of the credit spent before the dispute: 800 left.
    expect(await oneOff(customer, 'BHD', 200)).toMatchObject({ status: 'PAID', credit_applied: 200 });
    await dispute(second, 'du_BHD', ['open'], 300n);
    expect(await creditOf(customer)).toEqual([{ currency: 'BHD', amount: 500 }]);
    const before = await ledgerIn(app, 'BHD');
    const refused = await app.api('POST', `/v1/invoices/${invoice}/refund`, {
      transaction: first.id,
      amount: 800,
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({
      code: 'credit_held_by_dispute',
      message: expect.stringContaining('refund at most 500 BHD now'),
    });
    expect(await ledgerIn(app, 'BHD')).toEqual(before);
    stripeRefundSucceeds('re_BHD_500');
    const refunded = await app.api('POST', `/v1/invoices/${invoice}/refund`, {
      transaction: first.id,
      amount: 500,
    });
    expect(refunded.body).toMatchObject({ status: 'succeeded', amount: 500 });
    expect(await creditOf(customer)).toEqual([]);
    await dispute(second, 'du_BHD', ['lost'], 300n);
    // 1000 billed + 200 one-off; 2000 in, 500 refunded (overpayment: no note), 300 charged back.
    expect(await ledgerIn(app, 'BHD')).toMatchObject({
      'gateway_clearing:stripe': 1200,
      'receivable:customer': 0,
      'customer_credit:customer': 0,
      disputed_funds: 0,
      chargeback_losses: 0,
      revenue: -1000,
      tax_payable: -200,
    });
    expect((await exceptionsOf(second)).map((e) => e.kind)).toEqual(['duplicate_payment']);
  });

  it('USD: a credit refund beyond all of the credit, held or not, is 422 on amount (before: 409 credit_held_by_dispute, "refund at most 700 now, or again once the disputes are decided", though the win frees 300 only)', async () => {
    const { customer, second } = await paidTwice('USD');
    await dispute(second, 'du_USD', ['open'], 300n);
    expect(await creditOf(customer)).toEqual([{ currency: 'USD', amount: 700 }]);
    const before = await ledgerIn(app, 'USD');
    const refunds = await refundCount();
    const beyond = await app.api('POST', `/v1/customers/${customer}/credit/refund`, {
      amount: 5000,
      currency: 'USD',
    });
    expect(beyond.status).toBe(422);
    expect(beyond.body.error.fields).toMatchObject({ amount: expect.stringContaining('at most 700') });
    // Within the credit, but needing what the dispute holds: 409 as before.
    const held = await app.api('POST', `/v1/customers/${customer}/credit/refund`, {
      amount: 900,
      currency: 'USD',
    });
    expect(held.status).toBe(409);
    expect(held.body.error.code).toBe('credit_held_by_dispute');
    expect(await refundCount()).toBe(refunds);
    expect(await ledgerIn(app, 'USD')).toEqual(before);
  });

  it('GBP: a refund of the invoice whose overpayment credit was spent is 409 overpayment_credit_spent even while a dispute holds some, the win not freeing enough (before: credit_held_by_dispute, "refund at most 0 now, or again once the disputes are decided")', async () => {
    const { customer, invoice, first, second } = await paidTwice('GBP');
    // 900 of the credit spent: 100 left, then 300 of the duplicate disputed.
    expect(await oneOff(customer, 'GBP', 900)).toMatchObject({ status: 'PAID', credit_applied: 900 });
    await dispute(second, 'du_GBP', ['open'], 300n);
    expect(await creditOf(customer)).toEqual([]);
    const before = await ledgerIn(app, 'GBP');
    const refused = await app.api('POST', `/v1/invoices/${invoice}/refund`, {
      transaction: first.id,
      amount: 800,
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('overpayment_credit_spent');
    expect(await ledgerIn(app, 'GBP')).toEqual(before);
  });
});
