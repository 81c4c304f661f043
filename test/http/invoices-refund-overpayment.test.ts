import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/db/ids.ts';
import { flagDuplicatePayment } from '../../src/exceptions/exceptions.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { createRefund, recordRefundResult } from '../../src/payments/refunds.ts';
import { forgetLockedAhead, recordChargeResult } from '../../src/payments/transactions.ts';
import { STRIPE_API_BASE, startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, ledgerIn, subscribedAndPaid } from '../support/collection.ts';
import { paidAgain, paidAgainAsked, stripeChargeSucceeds } from '../support/flow.ts';
import { insertPlan } from '../support/plans.ts';
import { stripeFixture } from '../support/stripe.ts';

/**
 * Refunds of an invoice paid twice (a duplicate gateway payment: its excess is the customer's
 * credit, payments/transactions.ts): a refund gives the overpayment back first (debit the customer's
 * credit, no credit note), then the sale. Each scenario has its own currency, so it reads its own
 * books in the shared app. Amounts in minor units; plans of 800 with 25% tax: invoices of 1000.
 */
describe('refunds of an overpaid invoice: what they give back of the customer credit', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());

  const db = () => app.runtime.db;
  const invoiceOf = async (id: string) =>
    (await app.api('GET', `/v1/invoices/${id}?expand=credit_notes`)).body;
  const creditOf = async (customer: string) =>
    (await app.api('GET', `/v1/customers/${customer}`)).body.credit;
  const flat = (currency: string) =>
    insertPlan(db(), {
      name: `Flat 800 ${currency}`,
      currency,
      price: { model: 'FLAT_FEE', amount: 800 },
      taxRatePpm: 250_000,
    });

  /** A subscription of `currency` whose first invoice (1000) a Stripe card paid, then a duplicate paid again. */
  async function paidTwice(currency: string) {
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan: await flat(currency),
      method: method!.id,
    });
    const { first, second } = await paidAgain(app, sub.invoice.id, 1000n, currency);
    expect(await creditOf(customer.id)).toEqual([{ currency, amount: 1000 }]);
    return { customer: customer.id as string, sub: sub.id, invoice: sub.invoice.id, first, second };
  }

  /**
   * One customer with a Stripe card, two subscriptions of `currency` whose first invoices (1000
   * each, `a` and `b`) the card paid, each then paid again by a duplicate: 2000 of credit.
   * @returns the customer, the subscriptions, A's first payment and the two duplicates
   */
  async function twoPaidTwice(currency: string) {
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await flat(currency);
    const a = await subscribedAndPaid(app, { customer: customer.id, plan, method: method!.id });
    const b = await subscribedAndPaid(app, { customer: customer.id, plan, method: method!.id });
    const { first: firstA, second: dupA } = await paidAgain(app, a.invoice.id, 1000n, currency);
    const dupB = (await paidAgain(app, b.invoice.id, 1000n, currency)).second;
    return { customer, a, b, firstA, dupA, dupB };
  }

  /**
   * Stripe answers `times` refunds `status` (the real fixture refund; default succeeded), echoing
   * amount, currency and PaymentIntent. @returns the PaymentIntent and amount of each refund asked for, in order
   */
  function stripeRefunds(times: number, status = 'succeeded') {
    const seen: { intent: string; amount: number }[] = [];
    const refund = stripeFixture('api.refund.succeeded.openapi-fixture.json');
    nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .times(times)
      .reply(async (request: Request) => {
        const p = new URLSearchParams(await request.text());
        seen.push({ intent: p.get('payment_intent') ?? '', amount: Number(p.get('amount')) });
        return [
          200,
          {
            ...refund,
            id: `re_stripe_${newId('re')}`,
            status,
            amount: Number(p.get('amount')),
            currency: p.get('currency') ?? refund.currency,
            payment_intent: p.get('payment_intent'),
            metadata: { billhook_reference: p.get('metadata[billhook_reference]') },
          },
        ];
      });
    return seen;
  }

  /**
   * Invoices `customer` one line `description` of `amount` (minor units of lower-case `currency`) by
   * hand and finalizes it (customer credit applied then); the finalized invoice as the API shows it.
   */
  async function invoiced(customer: string, currency: string, description: string, amount: number) {
    const draft = await app.api('POST', '/v1/invoices', {
      customer,
      currency,
      lines: [{ description, amount, quantity: 1 }],
    });
    return (await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`)).body;
  }

  /** What `currency`'s balances moved from `before` to now, per account code. */
  async function movedSince(before: Record<string, number>, currency: string) {
    const after = await ledgerIn(app, currency);
    expect(Object.values(after).reduce((s, b) => s + b, 0)).toBe(0);
    return (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
  }

  /**
   * Since `before`, `amount` of `currency`'s customer credit went back through Stripe as an
   * overpayment (no sale refunded), and `credit` is left of the customer's credit on the books.
   */
  async function expectOverpaymentBack(
    before: Record<string, number>,
    currency: string,
    amount: number,
    credit: number,
  ) {
    const moved = await movedSince(before, currency);
    expect([moved('customer_credit:customer'), moved('refunds'), moved('gateway_clearing:stripe')]).toEqual([
      amount,
      0,
      -amount,
    ]);
    expect((await ledgerIn(app, currency))['customer_credit:customer']).toBe(credit);
  }

  it('an overpayment refund (no credit note) failing after the sale was refunded puts back exactly the credit it took', async () => {
    const paid = await paidTwice('DKK');
    const before = await ledgerIn(app, 'DKK');
    stripeRefunds(2);
    // R1: the duplicate refunded by hand: all of it overpayment (the customer's 1000 credit), no note.
    const r1 = await app.api('POST', `/v1/invoices/${paid.invoice}/refund`, {
      transaction: paid.second.id,
      amount: 1000,
    });
    expect(r1.body).toMatchObject({ status: 'succeeded', amount: 1000, transaction: paid.second.id });
    expect(await creditOf(paid.customer)).toEqual([]);
    // R2: the cancellation's refund through the first payment: the sale, a note of 800 + 200.
    const cancelled = await app.api('POST', `/v1/subscriptions/${paid.sub}/cancel`, { refund_type: 'full' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.refunds).toMatchObject([
      { status: 'succeeded', amount: 1000, transaction: paid.first.id },
    ]);
    // Stripe then reports R1 failed (https://docs.stripe.com/refunds#failed-refunds), recorded as its webhook is.
    await inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordRefundResult(work, r1.body.id, { status: 'failed', failureCode: 'expired_or_canceled_card' }),
    );
    const invoice = await invoiceOf(paid.invoice);
    expect(invoice).toMatchObject({ amount_paid: 2000, amount_refunded: 1000 });
    const issued = invoice.credit_notes.filter((n: { status: string }) => n.status === 'ISSUED');
    expect(issued.map((n: { subtotal: number; tax: number }) => [n.subtotal, n.tax])).toEqual([[800, 200]]);
    const moved = await movedSince(before, 'DKK');
    // R1 paid back the customer's credit and failed: their 1000 of credit is theirs again; the books
    // hold R2 only (refunds 800, tax 200, 1000 out through Stripe).
    expect({
      refunds: moved('refunds'),
      tax: moved('tax_payable'),
      credit: moved('customer_credit:customer'),
      clearing: moved('gateway_clearing:stripe'),
      available: await creditOf(paid.customer),
    }).toEqual({
      refunds: 800,
      tax: 200,
      credit: 0,
      clearing: -1000,
      available: [{ currency: 'DKK', amount: 1000 }],
    });
    // The duplicate refunded again: still the overpayment (the sale went back through the first
    // payment), so it takes the customer's credit back, no credit note: not cash and credit both.
    stripeRefunds(1);
    const r3 = await app.api('POST', `/v1/invoices/${paid.invoice}/refund`, { transaction: paid.second.id });
    expect(r3.body).toMatchObject({ status: 'succeeded', amount: 1000, transaction: paid.second.id });
    const refunded = await invoiceOf(paid.invoice);
    expect(refunded).toMatchObject({ status: 'REFUNDED', amount_refunded: 2000 });
    expect(
      refunded.credit_notes
        .filter((n: { status: string }) => n.status === 'ISSUED')
        .map((n: { subtotal: number; tax: number }) => [n.subtotal, n.tax]),
    ).toEqual([[800, 200]]);
    const settled = await movedSince(before, 'DKK');
    expect([
      settled('refunds'),
      settled('tax_payable'),
      settled('customer_credit:customer'),
      settled('gateway_clearing:stripe'),
    ]).toEqual([800, 200, 1000, -2000]);
    expect(await creditOf(paid.customer)).toEqual([]);
  });
  it('a refund by hand whose overpayment share the customer already spent: 409 overpayment_credit_spent, nothing changes', async () => {
    const paid = await paidTwice('CHF');
    // The customer's next invoice takes the duplicate's 1000 of credit at finalization.
    expect(await invoiced(paid.customer, 'chf', 'Next month', 600)).toMatchObject({
      status: 'PAID',
      credit_applied: 600,
    });
    expect(await creditOf(paid.customer)).toEqual([{ currency: 'CHF', amount: 400 }]);
    const before = await ledgerIn(app, 'CHF');
    const seen = stripeRefunds(1);
    for (const body of [{ amount: 1000 }, { transaction: paid.second.id, amount: 500 }]) {
      const refused = await app.api('POST', `/v1/invoices/${paid.invoice}/refund`, body);
      expect({ status: refused.status, code: refused.body.error?.code }).toEqual({
        status: 409,
        code: 'overpayment_credit_spent',
      });
      expect(refused.body.error.message).toContain('only 400 CHF of their credit is left');
    }
    expect(seen).toEqual([]);
    const refunds = await db()
      .selectFrom('refunds')
      .select('id')
      .where('invoice_id', '=', paid.invoice)
      .execute();
    expect(refunds).toEqual([]);
    expect(await ledgerIn(app, 'CHF')).toEqual(before);
    // What is left of the credit can still go back: 400 of the overpayment, through the duplicate.
    const within = await app.api('POST', `/v1/invoices/${paid.invoice}/refund`, {
      transaction: paid.second.id,
      amount: 400,
    });
    expect(within.body).toMatchObject({ status: 'succeeded', amount: 400 });
    expect(await creditOf(paid.customer)).toEqual([]);
    await expectOverpaymentBack(before, 'CHF', 400, 0);
  });
  it('a duplicate payment is refunded by naming it: {} answers 422 naming the call per payment, the exception and invoice_overpaid name it too', async () => {
    const paid = await paidTwice('SEK');
    const exception = await db()
      .selectFrom('reconciliation_exceptions')
      .selectAll()
      .where('transaction_id', '=', paid.second.id)
      .executeTakeFirstOrThrow();
    expect(exception).toMatchObject({ kind: 'duplicate_payment', status: 'open' });
    const call = `POST /v1/invoices/${paid.invoice}/refund {"transaction": "${paid.second.id}"}`;
    expect(exception.message).toContain(call);
    const before = await ledgerIn(app, 'SEK');

    // A cancellation with a refund is refused while the overpayment is not given back; its message says how.
    const overpaid = await app.api('POST', `/v1/subscriptions/${paid.sub}/cancel`, { refund_type: 'full' });
    expect(overpaid.status).toBe(409);
    expect(overpaid.body.error.code).toBe('invoice_overpaid');
    expect(overpaid.body.error.message).toContain(
      `refund the overpayment by hand first (POST /v1/invoices/${paid.invoice}/refund with transaction = the duplicate payment, amount = 1000), then cancel again`,
    );
    // No amount, no transaction: 2000 is refundable, which no single payment holds; the message gives the calls.
    const whole = await app.api('POST', `/v1/invoices/${paid.invoice}/refund`, {});
    expect(whole.status).toBe(422);
    expect(whole.body.error.fields.amount).toBe(
      `no single payment can refund 2000 SEK (${paid.second.id} can refund 1000, ${paid.first.id} can refund 1000; 2000 in all): one request refunds one payment; POST /v1/invoices/${paid.invoice}/refund once per payment, naming it: {"transaction": "${paid.second.id}"} (up to 1000), {"transaction": "${paid.first.id}"} (up to 1000)`,
    );
    expect(await ledgerIn(app, 'SEK')).toEqual(before);

    // The call the messages name: the duplicate's whole room, 1000, all of it the customer's credit.
    const seen = stripeRefunds(2);
    const duplicateBack = await app.api('POST', `/v1/invoices/${paid.invoice}/refund`, {
      transaction: paid.second.id,
    });
    expect(duplicateBack.status).toBe(201);
    expect(duplicateBack.body).toMatchObject({
      status: 'succeeded',
      amount: 1000,
      transaction: paid.second.id,
    });
    expect(await creditOf(paid.customer)).toEqual([]);
    // Then the cancellation goes through, the sale back through the first payment.
    const cancelled = await app.api('POST', `/v1/subscriptions/${paid.sub}/cancel`, { refund_type: 'full' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.refunds).toMatchObject([
      { status: 'succeeded', amount: 1000, transaction: paid.first.id },
    ]);
    expect(seen).toEqual([
      { intent: `pi_dup_${paid.second.id}`, amount: 1000 },
      { intent: expect.any(String), amount: 1000 },
    ]);
    const invoice = await invoiceOf(paid.invoice);
    expect(invoice).toMatchObject({ status: 'REFUNDED', amount_paid: 2000, amount_refunded: 2000 });
    expect(invoice.credit_notes.map((n: { total: number; tax: number }) => [n.total, n.tax])).toEqual([
      [1000, 200],
    ]);
    const moved = await movedSince(before, 'SEK');
    expect([
      moved('customer_credit:customer'),
      moved('refunds'),
      moved('tax_payable'),
      moved('gateway_clearing:stripe'),
    ]).toEqual([1000, 800, 200, -2000]);
    // Nothing is left to give back: the invoice is REFUNDED.
    const none = await app.api('POST', `/v1/invoices/${paid.invoice}/refund`, { transaction: paid.first.id });
    expect([none.status, none.body.error.code]).toEqual([409, 'invoice_not_paid']);
  });
  it('the books of two customers each paid twice in one currency hold both credits (ledgerIn sums per-customer accounts)', async () => {
    const one = await paidTwice('NOK');
    const two = await paidTwice('NOK');
    expect(await creditOf(one.customer)).toEqual([{ currency: 'NOK', amount: 1000 }]);
    expect(await creditOf(two.customer)).toEqual([{ currency: 'NOK', amount: 1000 }]);
    const books = await ledgerIn(app, 'NOK');
    expect(books['customer_credit:customer']).toBe(-2000);
    expect(Object.values(books).reduce((s, b) => s + b, 0)).toBe(0);
  });
  it('a refund by hand of the duplicate in flight holds its credit: the next invoice cannot take it, and its success is covered (no overpayment_credit_spent)', async () => {
    // Paid twice: 1000 of credit. A refund of the duplicate's 1000 is pending at Stripe: when it
    // succeeds it pays back those 1000 of credit, so meanwhile they are not the customer's to spend:
    // their next invoice of 1000 takes none of it (1000 due), and the refund's success leaves their
    // credit at 0, not in debit by 1000.
    const paid = await paidTwice('PLN');
    stripeRefunds(1, 'pending');
    const pending = await app.api('POST', `/v1/invoices/${paid.invoice}/refund`, {
      transaction: paid.second.id,
      amount: 1000,
    });
    expect(pending.body).toMatchObject({ status: 'pending', amount: 1000 });
    expect(await creditOf(paid.customer)).toEqual([]);
    expect(await invoiced(paid.customer, 'pln', 'Next month', 1000)).toMatchObject({
      status: 'OPEN',
      credit_applied: 0,
      amount_due: 1000,
    });
    const before = await ledgerIn(app, 'PLN');
    // Stripe's refund succeeds (its webhook): booked against the credit it held.
    await inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordRefundResult(work, pending.body.id, { status: 'succeeded' }),
    );
    const exceptions = await db()
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('refund_id', '=', pending.body.id)
      .execute();
    expect(exceptions).toEqual([]);
    const moved = await movedSince(before, 'PLN');
    expect([moved('customer_credit:customer'), moved('gateway_clearing:stripe')]).toEqual([1000, -1000]);
    expect((await ledgerIn(app, 'PLN'))['customer_credit:customer']).toBe(0);
    expect(await creditOf(paid.customer)).toEqual([]);
  });
  it('two refunds of the duplicate in flight hold 800 of its credit: a later invoice of 500 takes the other 200; the first succeeds, no overpayment_credit_spent', async () => {
    // Paid twice: 1000 of credit. Refunds of 400 and 400 of the duplicate in flight hold 800 of it:
    // a later invoice of 500 takes the 200 left (300 due). The first succeeds: it pays back 400 of
    // the 1000 − 200 = 800 there, no exception. The second then fails: its 400 are the customer's
    // again (1000 − 200 − 400 = 400).
    const paid = await paidTwice('NOK');
    stripeRefunds(2, 'pending');
    const refund = (amount: number) =>
      app.api('POST', `/v1/invoices/${paid.invoice}/refund`, { transaction: paid.second.id, amount });
    const [a, b] = [await refund(400), await refund(400)];
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(await invoiced(paid.customer, 'nok', 'Next month', 500)).toMatchObject({
      status: 'OPEN',
      credit_applied: 200,
      amount_due: 300,
    });
    await inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordRefundResult(work, a.body.id, { status: 'succeeded' }),
    );
    await inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordRefundResult(work, b.body.id, { status: 'failed', failureCode: 'expired_or_canceled_card' }),
    );
    const exceptions = await db()
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('kind', '=', 'overpayment_credit_spent')
      .where('transaction_id', '=', paid.second.id)
      .execute();
    expect(exceptions).toEqual([]);
    expect(await creditOf(paid.customer)).toEqual([{ currency: 'NOK', amount: 400 }]);
  });
  it('the overpayments of two invoices of one customer: a refund of the second is checked against the credit the first one in flight holds (409), one within it goes through', async () => {
    // One customer, two subscriptions each paid 1000 by card and paid again (duplicates): 2000 of
    // credit. A later invoice of 1200 takes 1200: 800 left. A refund of 600 of the first duplicate,
    // pending at Stripe, holds 600 of it: 200 left. A refund of 600 of the second duplicate would
    // pay back 600 of the overpayment: refused (both succeeding would leave the credit in debit by
    // 400); one of 200 fits. Both succeed: 2000 − 1200 − 600 − 200 = 0 of credit, not in debit.
    const { customer, a, b, dupA, dupB } = await twoPaidTwice('GBP');
    expect(await creditOf(customer.id)).toEqual([{ currency: 'GBP', amount: 2000 }]);
    expect(await invoiced(customer.id, 'gbp', 'Extra', 1200)).toMatchObject({
      status: 'PAID',
      credit_applied: 1200,
    });
    stripeRefunds(1, 'pending');
    const first = await app.api('POST', `/v1/invoices/${a.invoice.id}/refund`, {
      transaction: dupA.id,
      amount: 600,
    });
    expect([first.status, first.body.status]).toEqual([201, 'pending']);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'GBP', amount: 200 }]);
    const before = await ledgerIn(app, 'GBP');
    const seen = stripeRefunds(1);
    const refused = await app.api('POST', `/v1/invoices/${b.invoice.id}/refund`, {
      transaction: dupB.id,
      amount: 600,
    });
    expect({ status: refused.status, code: refused.body.error?.code }).toEqual({
      status: 409,
      code: 'overpayment_credit_spent',
    });
    expect(refused.body.error.message).toContain('only 200 GBP of their credit is left');
    expect(refused.body.error.message).toContain('refund at most 200 GBP now');
    expect(seen).toEqual([]);
    const none = await db()
      .selectFrom('refunds')
      .select('id')
      .where('invoice_id', '=', b.invoice.id)
      .execute();
    expect(none).toEqual([]);
    expect(await ledgerIn(app, 'GBP')).toEqual(before);
    const within = await app.api('POST', `/v1/invoices/${b.invoice.id}/refund`, {
      transaction: dupB.id,
      amount: 200,
    });
    expect(within.body).toMatchObject({ status: 'succeeded', amount: 200 });
    await inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordRefundResult(work, first.body.id, { status: 'succeeded' }),
    );
    const exceptions = await db()
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('kind', '=', 'overpayment_credit_spent')
      .where('transaction_id', 'in', [dupA.id, dupB.id])
      .execute();
    expect(exceptions).toEqual([]);
    await expectOverpaymentBack(before, 'GBP', 800, 0);
    expect(await creditOf(customer.id)).toEqual([]);
  });

  it('an overpayment refund reported succeeded then failed in one batch of webhooks (one deferring unit of work): the reversal undoes its success', async () => {
    const paid = await paidTwice('CZK');
    stripeRefunds(1, 'pending');
    const pending = await app.api('POST', `/v1/invoices/${paid.invoice}/refund`, {
      transaction: paid.second.id,
      amount: 1000,
    });
    expect(pending.body).toMatchObject({ status: 'pending', amount: 1000 });
    const before = await ledgerIn(app, 'CZK');
    // As webhook.process applies a batch: journal entries written together at the unit's end.
    await inUnitOfWork(db(), { actor: 'webhook', defer: true }, async (work) => {
      await recordRefundResult(work, pending.body.id, { status: 'succeeded' });
      await recordRefundResult(work, pending.body.id, {
        status: 'failed',
        failureCode: 'expired_or_canceled_card',
      });
    });
    const keys = await db()
      .selectFrom('journal_entries')
      .select('idempotency_key')
      .where('idempotency_key', 'like', `${pending.body.id}:%`)
      .orderBy('idempotency_key')
      .execute();
    expect(keys.map((k) => k.idempotency_key)).toEqual([
      `${pending.body.id}:reversed`,
      `${pending.body.id}:succeeded`,
    ]);
    expect(await ledgerIn(app, 'CZK')).toEqual(before);
    expect(await creditOf(paid.customer)).toEqual([{ currency: 'CZK', amount: 1000 }]);
    expect(await invoiceOf(paid.invoice)).toMatchObject({ status: 'PAID', amount_refunded: 0 });
  });

  it('a refund of an overpayment succeeding is checked against the credit there, not less what refunds in flight (which may fail) hold: none flagged while the credit never goes into debit', async () => {
    // One customer, two invoices of 1000 each paid twice: 2000 of credit. Refunds of 400 of each
    // duplicate pending at Stripe hold 800 of it; a later invoice of 1200 takes the 1200 left: 800
    // there. A refund of 400 made in Stripe's dashboard on the first invoice's first payment (it
    // held nothing) pays back 400 of that invoice's overpayment: 400 there, 800 held: one of the held
    // refunds can no longer be covered. The first invoice's held refund then succeeds: its 400 are
    // there (0 left); the second invoice's fails: the credit ends at 0, never in debit, so no
    // exception (counting the failing refund's hold would have flagged a debit that never was).
    const { customer, a, b, firstA, dupA, dupB } = await twoPaidTwice('MXN');
    stripeRefunds(2, 'pending');
    const heldA = await app.api('POST', `/v1/invoices/${a.invoice.id}/refund`, {
      transaction: dupA.id,
      amount: 400,
    });
    const heldB = await app.api('POST', `/v1/invoices/${b.invoice.id}/refund`, {
      transaction: dupB.id,
      amount: 400,
    });
    expect([heldA.body.status, heldB.body.status]).toEqual(['pending', 'pending']);
    expect(await invoiced(customer.id, 'mxn', 'Extra', 1500)).toMatchObject({
      status: 'OPEN',
      credit_applied: 1200,
      amount_due: 300,
    });
    const before = await ledgerIn(app, 'MXN');
    await inUnitOfWork(db(), { actor: 'webhook' }, async (work) => {
      const dashboard = await createRefund(work, firstA, {
        amount: 400n,
        gatewayRefundId: `re_dashboard_${firstA.id}`,
      });
      await recordRefundResult(work, dashboard.id, { status: 'succeeded' });
    });
    await inUnitOfWork(db(), { actor: 'webhook' }, (work) =>
      recordRefundResult(work, heldA.body.id, { status: 'succeeded' }),
    );
    await inUnitOfWork(db(), { actor: 'webhook' }, (work) =>
      recordRefundResult(work, heldB.body.id, { status: 'failed', failureCode: 'expired_or_canceled_card' }),
    );
    const exceptions = await db()
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('kind', '=', 'overpayment_credit_spent')
      .where('transaction_id', 'in', [firstA.id, dupA.id, dupB.id])
      .execute();
    expect(exceptions).toEqual([]);
    await expectOverpaymentBack(before, 'MXN', 800, 0);
  });
  it('a duplicate payment and the refund of it made in the dashboard, in one batch of webhooks: the refund sees the credit the batch booked, no overpayment_credit_spent', async () => {
    // Invoice of 1000 paid by card. One batch (one deferring unit of work, as webhook.process
    // applies it): the duplicate payment's success (1000 more: its txn_…:overpaid entry credits the
    // customer 1000, deferred to the batch's end), then a refund of 1000 of it made in Stripe's
    // dashboard (recorded as reconcile/apply.ts does: created with Stripe's id, then succeeded). It
    // pays back those 1000 of credit, which are there: no exception, the books move nothing in all.
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan: await flat('AUD'),
      method: method!.id,
    });
    const { second } = await paidAgainAsked(app, sub.invoice.id, 1000n, 'AUD');
    const before = await ledgerIn(app, 'AUD');
    const refundId = await inUnitOfWork(db(), { actor: 'webhook', defer: true }, async (work) => {
      const paid = await recordChargeResult(
        work,
        second,
        { status: 'succeeded', gatewayTransactionId: `pi_dup_${second.id}` },
        flagDuplicatePayment,
      );
      await forgetLockedAhead(work);
      const refund = await createRefund(work, paid.transaction, {
        amount: 1000n,
        gatewayRefundId: `re_dashboard_${second.id}`,
      });
      await recordRefundResult(work, refund.id, { status: 'succeeded' });
      return refund.id;
    });
    const exceptions = await db()
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('transaction_id', '=', second.id)
      .execute();
    expect(exceptions).toEqual([{ kind: 'duplicate_payment' }]);
    const moved = await movedSince(before, 'AUD');
    expect({
      credit: moved('customer_credit:customer'),
      receivable: moved('receivable:customer'),
      clearing: moved('gateway_clearing:stripe'),
      refunds: moved('refunds'),
    }).toEqual({ credit: 0, receivable: 0, clearing: 0, refunds: 0 });
    expect(await creditOf(customer.id)).toEqual([]);
    const invoice = await invoiceOf(sub.invoice.id);
    expect(invoice).toMatchObject({ status: 'PARTIALLY_REFUNDED', amount_paid: 2000, amount_refunded: 1000 });
    expect(invoice.credit_notes).toEqual([]);
    const refund = await db()
      .selectFrom('refunds')
      .select('status')
      .where('id', '=', refundId)
      .executeTakeFirstOrThrow();
    expect(refund.status).toBe('succeeded');
  });
  it('the overpayments of two invoices refunded in the dashboard, in one batch of webhooks: the second sees the credit the first took, overpayment_credit_spent for what it lacks', async () => {
    // One customer, two invoices of 1000 each paid twice: 2000 of credit; a later invoice of 1200
    // takes 1200: 800 left. One batch: refunds of 500 of each duplicate, made in Stripe's dashboard.
    // The first pays back 500 of the 800; the second 500 of the 300 left (its entry deferred, the
    // first's too): the customer's credit is in debit by 200, an exception on the second only.
    const { customer, dupA, dupB } = await twoPaidTwice('CAD');
    expect(await invoiced(customer.id, 'cad', 'Extra', 1200)).toMatchObject({
      status: 'PAID',
      credit_applied: 1200,
    });
    expect(await creditOf(customer.id)).toEqual([{ currency: 'CAD', amount: 800 }]);
    const before = await ledgerIn(app, 'CAD');
    const [, refundB] = await inUnitOfWork(db(), { actor: 'webhook', defer: true }, async (work) => {
      const ids: string[] = [];
      for (const dup of [dupA, dupB]) {
        const refund = await createRefund(work, dup, {
          amount: 500n,
          gatewayRefundId: `re_dashboard_${dup.id}`,
        });
        await recordRefundResult(work, refund.id, { status: 'succeeded' });
        ids.push(refund.id);
      }
      return ids;
    });
    const exceptions = await db()
      .selectFrom('reconciliation_exceptions')
      .select(['refund_id', 'message'])
      .where('kind', '=', 'overpayment_credit_spent')
      .where('transaction_id', 'in', [dupA.id, dupB.id])
      .execute();
    expect(exceptions.map((e) => e.refund_id)).toEqual([refundB]);
    expect(exceptions[0]!.message).toContain(
      "only 300 of that credit was left: the customer's credit is in debit by 200",
    );
    await expectOverpaymentBack(before, 'CAD', 1000, 200);
  });
  /**
   * Customer-credit refunds are never counted as an invoice's overpayment given back (only its own
   * refunds are): after one paid back a duplicate's credit through the duplicate, a refund by hand
   * still pays the overpayment back first, and the credit is gone.
   */
  it('an overpayment paid back by a customer-credit refund (through the duplicate): a refund by hand is still its overpayment, 409 overpayment_credit_spent, nothing changes', async () => {
    const paid = await paidTwice('NZD');
    const seen = stripeRefunds(1);
    const back = await app.api('POST', `/v1/customers/${paid.customer}/credit/refund`, {
      amount: 1000,
      currency: 'NZD',
    });
    expect(back.body.refunds).toMatchObject([
      { kind: 'customer_credit', status: 'succeeded', amount: 1000, transaction: paid.second.id },
    ]);
    expect(await creditOf(paid.customer)).toEqual([]);
    const before = await ledgerIn(app, 'NZD');
    const sale = await app.api('POST', `/v1/invoices/${paid.invoice}/refund`, { amount: 1000 });
    expect(sale.status).toBe(409);
    expect(sale.body.error.code).toBe('overpayment_credit_spent');
    expect(seen.map((s) => s.amount)).toEqual([1000]);
    expect(await ledgerIn(app, 'NZD')).toEqual(before);
    expect(await invoiceOf(paid.invoice)).toMatchObject({
      status: 'PAID',
      amount_paid: 2000,
      amount_refunded: 0,
      credit_notes: [],
    });
  });

  it('an overpayment paid back by a customer-credit refund: a full cancellation is still invoice_overpaid, nothing changes', async () => {
    const paid = await paidTwice('SGD');
    stripeRefunds(1);
    const back = await app.api('POST', `/v1/customers/${paid.customer}/credit/refund`, {
      amount: 1000,
      currency: 'SGD',
    });
    expect(back.body.refunds).toMatchObject([{ kind: 'customer_credit', status: 'succeeded', amount: 1000 }]);
    const before = await ledgerIn(app, 'SGD');
    const cancelled = await app.api('POST', `/v1/subscriptions/${paid.sub}/cancel`, { refund_type: 'full' });
    expect(cancelled.status).toBe(409);
    expect(cancelled.body.error.code).toBe('invoice_overpaid');
    expect(await ledgerIn(app, 'SGD')).toEqual(before);
    expect((await app.api('GET', `/v1/subscriptions/${paid.sub}`)).body.status).toBe('ACTIVE');
    expect(await invoiceOf(paid.invoice)).toMatchObject({ status: 'PAID', amount_refunded: 0 });
  });

  /** Subscribes over the API (its first invoice finalized now, OPEN); `settle` pays it by card later. */
  async function subscribed(customer: string, plan: string, method: string) {
    const sub = (await app.api('POST', '/v1/subscriptions', { customer, plan, payment_method: method })).body;
    return {
      settle: async () => {
        const stripe = stripeChargeSucceeds();
        const settled = await app.api('POST', `/v1/subscriptions/${sub.id}/settle`);
        expect(stripe.scope.isDone()).toBe(true);
        return { id: sub.id as string, invoice: settled.body.invoices[0].invoice as { id: string } };
      },
    };
  }

  it("a credit refund through A's payment before A was overpaid, then A's duplicate refunded: it pays back A's overpayment (credit debited, no note), and B's duplicate refund is refused 409", async () => {
    // B (1000) paid, A (1000) finalized; B paid twice: 1000 of credit; A paid. The 1000 of credit goes
    // back through A's payment (the newest). A is then paid twice: 1000 of credit again. Refunding A's
    // duplicate debits that credit (0 left): the customer paid 4000 for 2000 of sales and got 2000 back.
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await flat('ZAR');
    const b = await subscribedAndPaid(app, { customer: customer.id, plan, method: method!.id });
    const later = await subscribed(customer.id, plan, method!.id);
    const dupB = (await paidAgain(app, b.invoice.id, 1000n, 'ZAR')).second;
    const a = await later.settle();
    stripeRefunds(1);
    const back = await app.api('POST', `/v1/customers/${customer.id}/credit/refund`, {
      amount: 1000,
      currency: 'ZAR',
    });
    const { first: aFirst, second: dupA } = await paidAgain(app, a.invoice.id, 1000n, 'ZAR');
    expect(back.body.refunds).toMatchObject([
      { kind: 'customer_credit', status: 'succeeded', amount: 1000, transaction: aFirst.id },
    ]);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'ZAR', amount: 1000 }]);
    const before = await ledgerIn(app, 'ZAR');
    stripeRefunds(1);
    const r = await app.api('POST', `/v1/invoices/${a.invoice.id}/refund`, {
      transaction: dupA.id,
      amount: 1000,
    });
    expect(r.body).toMatchObject({ status: 'succeeded', amount: 1000 });
    const moved = await movedSince(before, 'ZAR');
    expect([moved('customer_credit:customer'), moved('refunds'), moved('tax_payable')]).toEqual([1000, 0, 0]);
    expect((await invoiceOf(a.invoice.id)).credit_notes).toEqual([]);
    expect(await creditOf(customer.id)).toEqual([]);
    const third = await app.api('POST', `/v1/invoices/${b.invoice.id}/refund`, {
      transaction: dupB.id,
      amount: 1000,
    });
    expect(third.status).toBe(409);
    expect(third.body.error.code).toBe('overpayment_credit_spent');
    expect((await ledgerIn(app, 'ZAR'))['customer_credit:customer']).toBe(0);
  });

  /**
   * B and A (1000 each) both paid twice: 2000 of credit. A refund of A (1000, through `through`) is
   * pending: it holds A's overpayment, 1000 left. A credit refund of that 1000 succeeds (through A's
   * other payment). A's refund then succeeds: it pays back A's overpayment, debiting the credit to 0
   * (no credit note); nothing in debit.
   */
  async function heldWhileCreditRefunded(currency: string, through: 'first' | 'duplicate') {
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await flat(currency);
    const b = await subscribedAndPaid(app, { customer: customer.id, plan, method: method!.id });
    const later = await subscribed(customer.id, plan, method!.id);
    await paidAgain(app, b.invoice.id, 1000n, currency);
    const a = await later.settle();
    const { first: aFirst, second: dupA } = await paidAgain(app, a.invoice.id, 1000n, currency);
    expect(await creditOf(customer.id)).toEqual([{ currency, amount: 2000 }]);
    const [held, other] = through === 'first' ? [aFirst, dupA] : [dupA, aFirst];
    stripeRefunds(1, 'pending');
    const r1 = await app.api('POST', `/v1/invoices/${a.invoice.id}/refund`, {
      transaction: held.id,
      amount: 1000,
    });
    expect(r1.body).toMatchObject({ status: 'pending', amount: 1000 });
    expect(await creditOf(customer.id)).toEqual([{ currency, amount: 1000 }]);
    stripeRefunds(1);
    const back = await app.api('POST', `/v1/customers/${customer.id}/credit/refund`, {
      amount: 1000,
      currency,
    });
    expect(back.body.refunds).toMatchObject([
      { kind: 'customer_credit', status: 'succeeded', amount: 1000, transaction: other.id },
    ]);
    expect(await creditOf(customer.id)).toEqual([]);
    await inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordRefundResult(work, r1.body.id, { status: 'succeeded' }),
    );
    const invoice = await invoiceOf(a.invoice.id);
    expect({
      available: await creditOf(customer.id),
      balance: (await ledgerIn(app, currency))['customer_credit:customer'],
      notes: invoice.credit_notes.length,
      refunded: invoice.amount_refunded,
    }).toEqual({ available: [], balance: 0, notes: 0, refunded: 1000 });
    const exceptions = await db()
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('refund_id', '=', r1.body.id)
      .execute();
    expect(exceptions).toEqual([]);
  }

  it("a refund of A's duplicate in flight holds its credit while a credit refund goes through A's first payment: A's refund pays back the overpayment, credit 0, no note", async () => {
    await heldWhileCreditRefunded('ILS', 'duplicate');
  });

  it("a refund of A's first payment in flight holds A's overpayment while a credit refund goes through A's duplicate: the same, credit 0, no note", async () => {
    await heldWhileCreditRefunded('INR', 'first');
  });

  it("a credit refund through A's duplicate while a refund of A in flight holds A's overpayment; A's refund fails: a refund of A again is its overpayment (credit 0, no note), B's duplicate refund 409", async () => {
    // B and A paid twice: 2000 of credit. R1 (A, 1000 through its first payment) pending holds 1000;
    // C, a credit refund of the 1000 left, goes through A's duplicate and succeeds. R1 fails: 1000 of
    // credit free again. A refund of A pays A's overpayment back (debit the credit: 0), as C is never
    // counted as A's overpayment. Paid 4000 for 2000 of sales, 2000 back (C, the second refund).
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await flat('BRL');
    const b = await subscribedAndPaid(app, { customer: customer.id, plan, method: method!.id });
    const subA = await subscribedAndPaid(app, { customer: customer.id, plan, method: method!.id });
    const dupB = (await paidAgain(app, b.invoice.id, 1000n, 'BRL')).second;
    const a = await paidAgain(app, subA.invoice.id, 1000n, 'BRL');
    stripeRefunds(1, 'pending');
    const r1 = await app.api('POST', `/v1/invoices/${subA.invoice.id}/refund`, {
      transaction: a.first.id,
      amount: 1000,
    });
    expect(r1.body).toMatchObject({ status: 'pending', amount: 1000 });
    stripeRefunds(1);
    const back = await app.api('POST', `/v1/customers/${customer.id}/credit/refund`, {
      amount: 1000,
      currency: 'BRL',
    });
    expect(back.body.refunds).toMatchObject([
      { kind: 'customer_credit', status: 'succeeded', amount: 1000, transaction: a.second.id },
    ]);
    await inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordRefundResult(work, r1.body.id, { status: 'failed' }),
    );
    expect(await creditOf(customer.id)).toEqual([{ currency: 'BRL', amount: 1000 }]);
    const before = await ledgerIn(app, 'BRL');
    stripeRefunds(1);
    const again = await app.api('POST', `/v1/invoices/${subA.invoice.id}/refund`, {
      transaction: a.first.id,
      amount: 1000,
    });
    expect(again.body).toMatchObject({ status: 'succeeded', amount: 1000 });
    const moved = await movedSince(before, 'BRL');
    expect([moved('customer_credit:customer'), moved('refunds'), moved('tax_payable')]).toEqual([1000, 0, 0]);
    expect(await invoiceOf(subA.invoice.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 1000,
      credit_notes: [],
    });
    expect(await creditOf(customer.id)).toEqual([]);
    const third = await app.api('POST', `/v1/invoices/${b.invoice.id}/refund`, {
      transaction: dupB.id,
      amount: 1000,
    });
    expect(third.status).toBe(409);
    expect(third.body.error.code).toBe('overpayment_credit_spent');
    expect((await ledgerIn(app, 'BRL'))['customer_credit:customer']).toBe(0);
  });

  it("a credit refund through A's duplicate in flight; a refund by hand of A within the other credit succeeds first: it pays back A's overpayment, then the credit refund: credit 0, B's duplicate refund 409, nothing in debit", async () => {
    // B and A paid twice: 2000 of credit, 4000 paid for 2000 of sales. C (credit refund, 1000) pending
    // through A's duplicate holds 1000. R (A, 1000 through its first payment) is A's overpayment,
    // within the 1000 left: it succeeds (debit 1000), then C does (debit 1000): credit 0, 2000 back.
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await flat('THB');
    const b = await subscribedAndPaid(app, { customer: customer.id, plan, method: method!.id });
    const subA = await subscribedAndPaid(app, { customer: customer.id, plan, method: method!.id });
    const dupB = (await paidAgain(app, b.invoice.id, 1000n, 'THB')).second;
    const a = await paidAgain(app, subA.invoice.id, 1000n, 'THB');
    stripeRefunds(1, 'pending');
    const back = await app.api('POST', `/v1/customers/${customer.id}/credit/refund`, {
      amount: 1000,
      currency: 'THB',
    });
    expect(back.body.refunds).toMatchObject([
      { kind: 'customer_credit', status: 'pending', amount: 1000, transaction: a.second.id },
    ]);
    const before = await ledgerIn(app, 'THB');
    stripeRefunds(1);
    const r = await app.api('POST', `/v1/invoices/${subA.invoice.id}/refund`, {
      transaction: a.first.id,
      amount: 1000,
    });
    expect(r.body).toMatchObject({ status: 'succeeded', amount: 1000 });
    await inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordRefundResult(work, back.body.refunds[0].id, { status: 'succeeded' }),
    );
    const moved = await movedSince(before, 'THB');
    expect([
      moved('customer_credit:customer'),
      moved('refunds'),
      moved('tax_payable'),
      moved('gateway_clearing:stripe'),
    ]).toEqual([2000, 0, 0, -2000]);
    expect(await invoiceOf(subA.invoice.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 1000,
      credit_notes: [],
    });
    expect(await creditOf(customer.id)).toEqual([]);
    const third = await app.api('POST', `/v1/invoices/${b.invoice.id}/refund`, {
      transaction: dupB.id,
      amount: 1000,
    });
    expect(third.status).toBe(409);
    expect(third.body.error.code).toBe('overpayment_credit_spent');
    const books = await ledgerIn(app, 'THB');
    expect(books['customer_credit:customer']).toBe(0);
    const exceptions = await db()
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('refund_id', 'in', [r.body.id, back.body.refunds[0].id])
      .execute();
    expect(exceptions).toEqual([]);
  });
});
