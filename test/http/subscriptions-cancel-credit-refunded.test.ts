import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/db/ids.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import {
  customerWith,
  downgradeCredit,
  flatPlan,
  ledgerIn,
  subscribedAndPaid,
} from '../support/collection.ts';
import { stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';

const d = (iso: string) => new Date(iso);

/**
 * A cancellation's refund on a period's invoice whose card payment can no longer take back all it
 * owes: the payment already carried a refund of the customer's credit (`kind: customer_credit`, the
 * credit coming from elsewhere), or part of the invoice was paid offline. The cash part is capped at
 * what is still refundable on the payment; when that and the credit applied do not cover what is
 * owed, the cancellation is refused with 409 `refund_exceeds_payment` and changes nothing (the rest
 * cannot go back through the payment, and is not turned into customer credit: a reviewer showed that
 * doing so misbooked overpaid invoices and reused a journal entry's key). Before, it answered 422 on
 * `amount`, a field the cancel request does not have. When the payment covers what is owed, the
 * refund goes through as any. An invoice paid twice (a duplicate charge) is refused too, with 409
 * `invoice_overpaid`: a refund gives the overpayment back first, so the period would not be.
 *
 * Plans: FLAT_FEE 800 + 25% tax = 1000 EUR (200 tax; 2 decimals), 8000 + 25% = 10000 JPY (2000
 * tax; no decimals). The customer's credit comes from a downgrade of another subscription on Feb 22
 * 2027 (7 of February's 28 days left): (big − 1000) × 7/28 net + 25% tax.
 */
describe('POST /v1/subscriptions/:id/cancel after its payment carried a customer-credit refund', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());

  const db = () => app.runtime.db;

  /**
   * A subscription of `fee` + 25% in `currency` (from `start`, else now) paid whole by the Stripe card;
   * then `(big − 1000) × 7/28 × 1.25` of credit from a downgrade, paid back through that card payment.
   */
  async function paidThenCreditRefunded(
    currency: string,
    fee: number,
    big: number,
    credit: number,
    start?: Date,
  ) {
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await flatPlan(app, currency, fee);
    const sub = await subscribedAndPaid(app, { customer: customer.id, plan, method: method!.id, start });
    const invoice = sub.invoice;
    await downgradeCredit(app, customer.id, currency, big);
    expect(await creditOf(customer.id)).toEqual([{ currency, amount: credit }]);
    // Paid back through the customer's newest gateway payment: the period's.
    const refunded = stripeRefundSucceeds(`re_credit_${currency.toLowerCase()}`);
    const back = await app.api('POST', `/v1/customers/${customer.id}/credit/refund`, {
      amount: credit,
      currency,
    });
    expect(refunded.isDone()).toBe(true);
    expect(back.body.refunds).toMatchObject([
      { kind: 'customer_credit', status: 'succeeded', amount: credit },
    ]);
    expect(await creditOf(customer.id)).toEqual([]);
    return { id: sub.id as string, invoice: invoice.id, customer: customer.id as string };
  }

  const creditOf = async (customer: string) =>
    (await app.api('GET', `/v1/customers/${customer}`)).body.credit;
  const invoiceOf = async (id: string) =>
    (await app.api('GET', `/v1/invoices/${id}?expand=credit_notes`)).body as {
      status: string;
      amount_paid: number;
      amount_refunded: number;
      credit_applied: number;
      credit_returned: number;
      credit_notes: { refund: string | null; subtotal: number; tax: number; total: number; status: string }[];
    };
  /** The invoice's credit notes, oldest first: with or without a refund, and their amounts. */
  const notesOf = (invoice: Awaited<ReturnType<typeof invoiceOf>>) =>
    invoice.credit_notes.map((n) => ({
      refund: n.refund === null ? null : 'refund',
      subtotal: n.subtotal,
      tax: n.tax,
      total: n.total,
      status: n.status,
    }));
  /** The refunds on the invoice's payment(s), oldest first. */
  const refundsOf = (invoice: string) =>
    db()
      .selectFrom('refunds')
      .innerJoin('transactions', 'transactions.id', 'refunds.transaction_id')
      .select(['refunds.kind', 'refunds.amount', 'refunds.status', 'refunds.invoice_id'])
      .where('transactions.invoice_id', '=', invoice)
      .orderBy('refunds.created_at')
      .execute();
  /** What a refused cancellation must leave as it was: the subscription, the invoice, its refunds and notes, the books. */
  async function snapshot(sub: { id: string; invoice: string; customer: string }, currency: string) {
    return {
      subscription: (await app.api('GET', `/v1/subscriptions/${sub.id}`)).body,
      invoice: await invoiceOf(sub.invoice),
      refunds: await refundsOf(sub.invoice),
      credit: await creditOf(sub.customer),
      ledger: await ledgerIn(app, currency),
    };
  }

  it('full (EUR): 1000 paid by card that carried 300 of other credit back: 409 refund_exceeds_payment, nothing changes', async () => {
    // Credit: (1960 − 1000) × 7/28 = 240 net + 60 tax = 300, paid back through the 1000 card payment.
    const sub = await paidThenCreditRefunded('EUR', 800, 1960, 300);
    const before = await snapshot(sub, 'EUR');
    // Owed 1000; the card can take back 1000 − 300 = 700; no credit was applied: 300 uncovered.
    const refused = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('refund_exceeds_payment');
    expect(refused.body.error.message).toContain('can refund only 700 more');
    expect(await snapshot(sub, 'EUR')).toEqual(before);
    expect(before.subscription.status).toBe('ACTIVE');
    // Cancelled without a refund, the 700 the card can still take can be refunded by hand.
    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'none' });
    expect(cancelled.body).toMatchObject({ status: 'CANCELLED', refund: null });
    const stripe = stripeRefundSucceeds('re_by_hand_after_credit_eur');
    const byHand = await app.api('POST', `/v1/invoices/${sub.invoice}/refund`, { amount: 700 });
    expect(stripe.isDone()).toBe(true);
    expect(byHand.body).toMatchObject({ status: 'succeeded', amount: 700 });
    expect(await invoiceOf(sub.invoice)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 700,
    });
  });

  it('prorate (JPY, no decimals): refused when the card cannot take what is owed, given back in cash when it can', async () => {
    // Period 2027-01-01 → 2027-02-01 (31 days), 10000 JPY paid by card. Credit: (9000 − 1000) × 7/28
    // = 2000 net + 500 tax = 2500 JPY, paid back through that payment: 7500 left refundable on it.
    const sub = await paidThenCreditRefunded('JPY', 8000, 9000, 2500, d('2027-01-01T00:00:00Z'));
    const cancel = (at: string) =>
      cancelSubscriptionWithRefund(
        db(),
        'system',
        app.runtime.boss,
        { registry: app.runtime.registry, accounts: app.runtime.accounts },
        sub.id,
        { when: 'now', refundType: 'prorate' },
        d(at),
      );
    const before = await snapshot(sub, 'JPY');
    // At 2027-01-04: 28 of 31 days unused, round_half_up(10000 × 28/31 = 9032.26) = 9032 owed > 7500.
    await expect(cancel('2027-01-04T00:00:00Z')).rejects.toMatchObject({ code: 'refund_exceeds_payment' });
    expect(await snapshot(sub, 'JPY')).toEqual(before);
    // At 2027-01-10: 22 of 31 days unused, round_half_up(10000 × 22/31 = 7096.77) = 7097 ≤ 7500: all
    // of it to the card. Its note: round(2000 × 7097 / 10000 = 1419.4) = 1419 tax, 5678 revenue.
    const stripe = stripeRefundSucceeds('re_cancel_after_credit_jpy');
    const result = await cancel('2027-01-10T00:00:00Z');
    expect(stripe.isDone()).toBe(true);
    expect(result.subscription.status).toBe('CANCELLED');
    expect(result.refunds).toMatchObject([{ status: 'succeeded', amount: 7097n, currency: 'JPY' }]);
    expect(result.creditNotes).toEqual([]);
    expect(await refundsOf(sub.invoice)).toEqual([
      { kind: 'customer_credit', amount: 2500n, status: 'succeeded', invoice_id: null },
      { kind: 'payment', amount: 7097n, status: 'succeeded', invoice_id: sub.invoice },
    ]);
    const invoice = await invoiceOf(sub.invoice);
    expect(invoice).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_paid: 10000,
      amount_refunded: 7097,
    });
    expect(notesOf(invoice)).toEqual([
      { refund: 'refund', subtotal: 5678, tax: 1419, total: 7097, status: 'ISSUED' },
    ]);
    const after = await ledgerIn(app, 'JPY');
    expect((after.refunds ?? 0) - (before.ledger.refunds ?? 0)).toBe(5678);
    expect(after['gateway_clearing:stripe']! - before.ledger['gateway_clearing:stripe']!).toBe(-7097);
  });

  it('full (EUR) on an invoice paid 400 offline and 600 by card: 409 refund_exceeds_payment, nothing changes', async () => {
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await flatPlan(app, 'EUR', 800);
    const created = (
      await app.api('POST', '/v1/subscriptions', { customer: customer.id, plan, payment_method: method!.id })
    ).body;
    const invoice = created.latest_invoice as string;
    const offline = await app.api('POST', `/v1/invoices/${invoice}/payments`, {
      amount: 400,
      method: 'BANK',
    });
    expect(offline.status).toBeLessThan(300);
    const charge = stripeChargeSucceeds();
    await app.api('POST', `/v1/subscriptions/${created.id}/settle`);
    expect(charge.seen[0]!.params.get('amount')).toBe('600');
    const sub = { id: created.id as string, invoice, customer: customer.id as string };
    expect(await invoiceOf(invoice)).toMatchObject({ status: 'PAID', amount_paid: 1000 });
    const before = await snapshot(sub, 'EUR');
    // Owed 1000; the card can take back 600; the 400 paid offline cannot go back through it.
    const refused = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('refund_exceeds_payment');
    expect(await snapshot(sub, 'EUR')).toEqual(before);
  });

  it('full (EUR) on an invoice paid twice (a duplicate charge): 409 invoice_overpaid, nothing changes', async () => {
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await flatPlan(app, 'EUR', 800);
    const paid = await subscribedAndPaid(app, { customer: customer.id, plan, method: method!.id });
    // The same 1000 taken a second time (money that really moved twice): the 1000 beyond what the
    // invoice asked becomes the customer's credit (payments/transactions.ts).
    const first = await db()
      .selectFrom('transactions')
      .selectAll()
      .where('invoice_id', '=', paid.invoice.id)
      .executeTakeFirstOrThrow();
    const second = await db()
      .insertInto('transactions')
      .values({
        id: newId('txn'),
        invoice_id: paid.invoice.id,
        customer_id: first.customer_id,
        gateway: 'stripe',
        gateway_account: first.gateway_account,
        payment_method_id: first.payment_method_id,
        amount: 1000n,
        currency: 'EUR',
        status: 'pending',
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordChargeResult(work, second, { status: 'succeeded', gatewayTransactionId: 'pi_duplicate_eur' }),
    );
    const sub = { id: paid.id, invoice: paid.invoice.id, customer: customer.id as string };
    expect(await creditOf(sub.customer)).toEqual([{ currency: 'EUR', amount: 1000 }]);
    const before = await snapshot(sub, 'EUR');
    // Owed 1000 of the period; a refund of 1000 would give back the overpayment first (the
    // customer's 1000 of credit) and none of the period: refused.
    const refused = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('invoice_overpaid');
    expect(refused.body.error.message).toContain('paid 1000 EUR more than it asked');
    expect(await snapshot(sub, 'EUR')).toEqual(before);
  });
});
