import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { changeSubscription } from '../../src/billing/proration.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, ledgerIn, subscribedAndPaid } from '../support/collection.ts';
import { stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { insertPlan } from '../support/plans.ts';

const d = (iso: string) => new Date(iso);

/**
 * A cancellation's refund on a period's invoice whose card payment already carried a refund of the
 * customer's credit (`kind: customer_credit`, the credit coming from elsewhere): the card can take
 * back only what is left refundable on it, so the cash part is capped there and what is owed beyond
 * goes back to the customer's credit (a credit note without refund, tax share cumulative with the
 * cash refund's note; `inv_…:credit_given_back:<credit_returned>:<amount_refunded>`), which they
 * keep and can use or have paid back through another payment. Before, the cash part was the
 * invoice's paid − refunded, and the cancellation answered 422 on `amount`, a field it does not have.
 *
 * Plans: FLAT_FEE 800 + 25% tax = 1000 EUR (200 tax; 2 decimals), 8000 + 25% = 10000 JPY (2000
 * tax; no decimals) and 8000 + 25% = 10000 fils (10.000 KWD; 3 decimals). The customer's credit comes from a downgrade of another subscription on Feb 22
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
  const flat = (currency: string, amount: number) =>
    insertPlan(db(), {
      name: `Flat ${amount}`,
      currency,
      price: { model: 'FLAT_FEE', amount },
      taxRatePpm: 250_000,
    });

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
    const plan = await flat(currency, fee);
    const sub = await subscribedAndPaid(app, { customer: customer.id, plan, method: method!.id, start });
    const invoice = sub.invoice;
    const { subscription: other } = await createSubscription(
      db(),
      'system',
      { customerId: customer.id, planId: await flat(currency, big) },
      d('2027-02-01T00:00:00Z'),
    );
    await changeSubscription(
      db(),
      'system',
      other.id,
      { planId: await flat(currency, 1000) },
      d('2027-02-22T00:00:00Z'),
      false,
    );
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
  /** The postings of the journal entry `key` (debit > 0), by account code with customer ids masked. */
  async function entry(key: string) {
    const rows = await db()
      .selectFrom('journal_entries')
      .innerJoin('postings', 'postings.journal_entry_id', 'journal_entries.id')
      .innerJoin('ledger_accounts', 'ledger_accounts.id', 'postings.account_id')
      .select(['ledger_accounts.code', 'postings.amount'])
      .where('journal_entries.idempotency_key', '=', key)
      .execute();
    return Object.fromEntries(rows.map((r) => [r.code.replace(/cus_\w+/, 'customer'), Number(r.amount)]));
  }

  it('full (EUR): 1000 paid by card that carried 300 of other credit back gives 700 to the card and 300 as credit, tax exact', async () => {
    // Credit: (1960 − 1000) × 7/28 = 240 net + 60 tax = 300, paid back through the 1000 card payment.
    const sub = await paidThenCreditRefunded('EUR', 800, 1960, 300);
    const before = await ledgerIn(app, 'EUR');

    const stripe = stripeRefundSucceeds('re_cancel_after_credit_eur');
    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(cancelled.status).toBe(200);
    expect(stripe.isDone()).toBe(true);
    // Owed 1000; the card can take 1000 − 300 = 700 more; the other 300 as credit. Its note first:
    // round(200 × 300 / 1000) = 60 tax; the card's refund brings the notes to round(200 × 1000 /
    // 1000) = 200, so 140 of its 700.
    expect(cancelled.body).toMatchObject({
      status: 'CANCELLED',
      refund: { status: 'succeeded', amount: 700, invoice: sub.invoice },
      credit_note: { refund: null, subtotal: 240, tax: 60, total: 300, status: 'ISSUED' },
    });
    expect(await refundsOf(sub.invoice)).toEqual([
      { kind: 'customer_credit', amount: 300n, status: 'succeeded', invoice_id: null },
      { kind: 'payment', amount: 700n, status: 'succeeded', invoice_id: sub.invoice },
    ]);
    // All the invoice's payment given back (700 cash + 300 as credit): REFUNDED.
    const invoice = await invoiceOf(sub.invoice);
    expect(invoice).toMatchObject({
      status: 'REFUNDED',
      amount_paid: 1000,
      amount_refunded: 1000,
      credit_applied: 0,
      credit_returned: 0,
    });
    expect(notesOf(invoice)).toEqual([
      { refund: null, subtotal: 240, tax: 60, total: 300, status: 'ISSUED' },
      { refund: 'refund', subtotal: 560, tax: 140, total: 700, status: 'ISSUED' },
    ]);
    expect(await creditOf(sub.customer)).toEqual([{ currency: 'EUR', amount: 300 }]);
    // The credit note without refund: debit refunds 240 and tax payable 60, credit the customer 300.
    expect(await entry(`${sub.invoice}:credit_given_back:0:300`)).toEqual({
      refunds: 240,
      tax_payable: 60,
      'customer_credit:customer': -300,
    });
    // Books: refunds +800 (240 + 560) and tax payable +200 debited, Stripe's clearing −700, the
    // customer's credit −300 (a liability): 800 + 200 = 700 + 300.
    const after = await ledgerIn(app, 'EUR');
    expect((after.refunds ?? 0) - (before.refunds ?? 0)).toBe(800);
    expect(after.tax_payable! - before.tax_payable!).toBe(200);
    expect(after['gateway_clearing:stripe']! - before['gateway_clearing:stripe']!).toBe(-700);
    expect(after['customer_credit:customer']! - (before['customer_credit:customer'] ?? 0)).toBe(-300);
    // Nothing more to give back: the card's payment is refunded whole.
    const again = await app.api('POST', `/v1/invoices/${sub.invoice}/refund`, { amount: 1 });
    expect(again.status).toBe(409);
  });

  it('prorate (JPY, no decimals): owed beyond what the card can still take goes back as credit, capped there', async () => {
    // Period 2027-01-01 → 2027-02-01 (31 days), 10000 JPY paid by card. Credit: (9000 − 1000) × 7/28
    // = 2000 net + 500 tax = 2500 JPY, paid back through that payment: 7500 left refundable on it.
    const sub = await paidThenCreditRefunded('JPY', 8000, 9000, 2500, d('2027-01-01T00:00:00Z'));
    const before = await ledgerIn(app, 'JPY');
    const stripe = stripeRefundSucceeds('re_cancel_after_credit_jpy');
    // Cancelled at 2027-01-04 with `prorate`: 28 of 31 days unused, round_half_up(10000 × 28/31 =
    // 9032.26) = 9032 owed: 7500 to the card, 9032 − 7500 = 1532 as credit.
    const result = await cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      sub.id,
      { when: 'now', refundType: 'prorate' },
      d('2027-01-04T00:00:00Z'),
    );
    expect(stripe.isDone()).toBe(true);
    expect(result.subscription.status).toBe('CANCELLED');
    expect(result.refund).toMatchObject({ status: 'succeeded', amount: 7500n, currency: 'JPY' });
    // The credit note of 1532 first: round(2000 × 1532 / 10000 = 306.4) = 306 tax, 1226 revenue;
    // the card's 7500 brings the notes to round(2000 × 9032 / 10000 = 1806.4) = 1806: 1500 of it.
    expect(result.creditNote).toMatchObject({ refund_id: null, subtotal: 1226n, tax: 306n, total: 1532n });
    expect(await refundsOf(sub.invoice)).toEqual([
      { kind: 'customer_credit', amount: 2500n, status: 'succeeded', invoice_id: null },
      { kind: 'payment', amount: 7500n, status: 'succeeded', invoice_id: sub.invoice },
    ]);
    // 9032 of the 10000 paid given back (7500 cash + 1532 as credit): PARTIALLY_REFUNDED, and the
    // customer keeps paying 968 for the 3 days used.
    const invoice = await invoiceOf(sub.invoice);
    expect(invoice).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_paid: 10000,
      amount_refunded: 9032,
      credit_returned: 0,
    });
    expect(notesOf(invoice)).toEqual([
      { refund: null, subtotal: 1226, tax: 306, total: 1532, status: 'ISSUED' },
      { refund: 'refund', subtotal: 6000, tax: 1500, total: 7500, status: 'ISSUED' },
    ]);
    expect(await creditOf(sub.customer)).toEqual([{ currency: 'JPY', amount: 1532 }]);
    expect(await entry(`${sub.invoice}:credit_given_back:0:1532`)).toEqual({
      refunds: 1226,
      tax_payable: 306,
      'customer_credit:customer': -1532,
    });
    const after = await ledgerIn(app, 'JPY');
    expect((after.refunds ?? 0) - (before.refunds ?? 0)).toBe(1226 + 6000);
    expect(after.tax_payable! - before.tax_payable!).toBe(306 + 1500);
    expect(after['gateway_clearing:stripe']! - before['gateway_clearing:stripe']!).toBe(-7500);
    expect(after['customer_credit:customer']! - (before['customer_credit:customer'] ?? 0)).toBe(-1532);
  });
  it('full (KWD, 3 decimals): applied credit and paid cash the card cannot take go back in one credit note', async () => {
    const { customer, method } = await customerWith(app, { stripe: true });
    /** `(big − 1000) × 7/28 × 1.25` fils of credit from a downgrade of a subscription of its own. */
    const downgrade = async (big: number) => {
      const { subscription } = await createSubscription(
        db(),
        'system',
        { customerId: customer.id, planId: await flat('KWD', big) },
        d('2027-02-01T00:00:00Z'),
      );
      await changeSubscription(
        db(),
        'system',
        subscription.id,
        { planId: await flat('KWD', 1000) },
        d('2027-02-22T00:00:00Z'),
        false,
      );
    };
    // (10600 − 1000) × 7/28 = 2400 net + 600 tax = 3000 fils, taken by the period's invoice of 10000
    // (8000 + 2000 tax): the card pays 7000.
    await downgrade(10600);
    const plan = await flat('KWD', 8000);
    const sub = (
      await app.api('POST', '/v1/subscriptions', { customer: customer.id, plan, payment_method: method!.id })
    ).body;
    const charge = stripeChargeSucceeds();
    const settled = await app.api('POST', `/v1/subscriptions/${sub.id}/settle`);
    expect(charge.seen[0]!.params.get('amount')).toBe('7000');
    const invoiceId = settled.body.invoices[0].invoice.id as string;
    expect(settled.body.invoices[0].invoice).toMatchObject({
      total: 10000,
      credit_applied: 3000,
      amount_paid: 7000,
    });
    // Then (7400 − 1000) × 7/28 = 1600 + 400 tax = 2000 fils more, paid back through the card's payment:
    // 7000 − 2000 = 5000 left refundable on it.
    await downgrade(7400);
    const back = stripeRefundSucceeds('re_credit_kwd_2');
    const paidBack = await app.api('POST', `/v1/customers/${customer.id}/credit/refund`, {
      amount: 2000,
      currency: 'KWD',
    });
    expect(back.isDone()).toBe(true);
    expect(paidBack.body.refunds).toMatchObject([
      { kind: 'customer_credit', amount: 2000, status: 'succeeded' },
    ]);
    const before = await ledgerIn(app, 'KWD');

    const stripe = stripeRefundSucceeds('re_cancel_after_credit_kwd');
    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(cancelled.status).toBe(200);
    expect(stripe.isDone()).toBe(true);
    // Owed 10000: 5000 to the card (all it can take), 3000 of applied credit and 2000 of paid cash as
    // credit, in one note of 5000: round(2000 × 5000 / 10000) = 1000 tax. The card's 5000 brings the
    // notes to round(2000 × 10000 / 10000) = 2000: 1000 of it.
    expect(cancelled.body).toMatchObject({
      refund: { status: 'succeeded', amount: 5000 },
      credit_note: { refund: null, subtotal: 4000, tax: 1000, total: 5000 },
    });
    const invoice = await invoiceOf(invoiceId);
    expect(invoice).toMatchObject({
      status: 'REFUNDED',
      amount_paid: 7000,
      amount_refunded: 7000,
      credit_applied: 3000,
      credit_returned: 3000,
    });
    expect(notesOf(invoice)).toEqual([
      { refund: null, subtotal: 4000, tax: 1000, total: 5000, status: 'ISSUED' },
      { refund: 'refund', subtotal: 4000, tax: 1000, total: 5000, status: 'ISSUED' },
    ]);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'KWD', amount: 5000 }]);
    expect(await entry(`${invoiceId}:credit_given_back:3000:2000`)).toEqual({
      refunds: 4000,
      tax_payable: 1000,
      'customer_credit:customer': -5000,
    });
    const after = await ledgerIn(app, 'KWD');
    expect((after.refunds ?? 0) - (before.refunds ?? 0)).toBe(8000);
    expect(after.tax_payable! - before.tax_payable!).toBe(2000);
    expect(after['gateway_clearing:stripe']! - before['gateway_clearing:stripe']!).toBe(-5000);
    expect(after['customer_credit:customer']! - (before['customer_credit:customer'] ?? 0)).toBe(-5000);
  });
});
