import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { customerWith, ledgerIn, subscribedAndPaid } from '../support/collection.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { insertPlan } from '../support/plans.ts';
import { deliverStripe, refundObject, stripeEvent, stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

const DAY_MS = 86_400_000;

/**
 * The 7 fils a Stripe KWD cancellation with a prorated refund gives to the customer's credit (1000
 * paid, 667 owed: 660 to the card, 7 credited: `cash_credited`) is given back once: money that leaves
 * the payment afterwards outside billhook (a refund in Stripe's dashboard of the payment's 340 left, a
 * dispute of it lost) gives those 7 back a second time, which billhook cannot refuse (the money has
 * moved) and says in an exception for a person.
 */
describe('the cash a step-currency cancellation credited, given back again outside billhook', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterEach(() => {
    expect(nock.pendingMocks()).toEqual([]);
    nock.cleanAll();
  });
  afterAll(() => stopOfflineTestApp(app));

  const db = () => app.runtime.db;

  /** Stripe KWD 800 + 25% tax (1000 fils) paid yesterday, cancelled with prorate two thirds before the period's end: 660 refunded, 7 credited. */
  async function cancelledKwd() {
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await insertPlan(db(), {
      name: 'Flat 800 KWD',
      currency: 'KWD',
      price: { model: 'FLAT_FEE', amount: 800 },
      taxRatePpm: 250_000,
    });
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan,
      method: method!.id,
      start: new Date(Math.floor((Date.now() - DAY_MS) / 1000) * 1000),
    });
    const row = await db()
      .selectFrom('subscriptions')
      .select(['current_period_start', 'current_period_end'])
      .where('id', '=', sub.id)
      .executeTakeFirstOrThrow();
    const end = row.current_period_end!.getTime();
    const seconds = (end - row.current_period_start!.getTime()) / 1000;
    expect(seconds % 3).toBe(0);
    nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .reply(200, {
        ...stripeFixture('api.refund.succeeded.openapi-fixture.json'),
        id: `re_kwd_660_${sub.id}`,
        amount: 660,
        currency: 'kwd',
        status: 'succeeded',
      });
    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, {
      when: 'date',
      cancel_at: new Date(end - ((seconds * 2) / 3) * 1000).toISOString(),
      refund_type: 'prorate',
    });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ refunded: 660, credited: 7 });
    const payment = await db()
      .selectFrom('transactions')
      .selectAll()
      .where('invoice_id', '=', sub.invoice.id)
      .executeTakeFirstOrThrow();
    return { customer: customer.id, invoice: sub.invoice.id, payment };
  }

  const invoiceRow = (id: string) =>
    db().selectFrom('invoices').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const exceptionsOf = (transactionId: string) =>
    db()
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'status', 'message', 'details'])
      .where('transaction_id', '=', transactionId)
      .execute();
  const creditNotes = (invoiceId: string) =>
    db()
      .selectFrom('credit_notes')
      .select(['refund_id', 'subtotal', 'tax', 'total'])
      .where('invoice_id', '=', invoiceId)
      .orderBy('created_at')
      .execute();

  /** What moved between two `ledgerIn` snapshots, accounts that did not move left out. */
  const moved = (before: Record<string, number>, after: Record<string, number>) =>
    Object.fromEntries(
      Object.keys({ ...before, ...after })
        .map((k) => [k, (after[k] ?? 0) - (before[k] ?? 0)] as const)
        .filter(([, v]) => v !== 0),
    );

  it('KWD: a dashboard refund of the 340 left on the payment after 660 refunded + 7 credited gives the 7 back again: booked as that credit paid back (note 266 + 67 tax, credit −7 taken back), exception cash_credited_given_back_twice (before: note 273 + 67, revenue given back 807 of 800, nothing said)', async () => {
    const { invoice, payment } = await cancelledKwd();
    const before = await ledgerIn(app, 'KWD');
    const event = stripeEvent(
      'charge.refund.updated',
      refundObject({
        id: `re_dash_${invoice}`,
        amount: 340,
        intent: payment.gateway_transaction_id,
        status: 'succeeded',
        currency: 'kwd',
      }),
    );
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    const refund = await waitFor('dashboard refund succeeded', () =>
      db()
        .selectFrom('refunds')
        .selectAll()
        .where('gateway_refund_id', '=', `re_dash_${invoice}`)
        .where('status', '=', 'succeeded')
        .executeTakeFirst(),
    );
    expect(refund.change_credit_taken_back).toBe(7n);
    // Notes add up to the invoice: 7 + 660 + 333 = 1000, subtotals 6 + 528 + 266 = 800, tax 200.
    expect(await creditNotes(invoice)).toEqual([
      { refund_id: null, subtotal: 6n, tax: 1n, total: 7n },
      { refund_id: expect.stringMatching(/^re_/), subtotal: 528n, tax: 132n, total: 660n },
      { refund_id: refund.id, subtotal: 266n, tax: 67n, total: 333n },
    ]);
    // 340 out of clearing: 266 revenue and 67 tax given back, 7 taken back from the customer's credit.
    expect(moved(before, await ledgerIn(app, 'KWD'))).toEqual({
      'gateway_clearing:stripe': -340,
      refunds: 266,
      tax_payable: 67,
      'customer_credit:customer': 7,
    });
    expect(await invoiceRow(invoice)).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 1000n,
      cash_credited: 7n,
    });
    expect(await exceptionsOf(payment.id)).toEqual([
      {
        kind: 'cash_credited_given_back_twice',
        status: 'open',
        message: expect.stringContaining('tell the customer their credit is 7 KWD lower'),
        details: { invoice, cash_credited: '7', twice: '7', credit_left: '7', in_debit: '0' },
      },
    ]);
  });

  it('KWD: a lost dispute of the 340 left after 660 refunded + 7 credited: the chargeback books 340, and an exception says the customer has the 7 twice (before: nothing said)', async () => {
    const { invoice, payment } = await cancelledKwd();
    const before = await ledgerIn(app, 'KWD');
    const lost = stripeFixture('webhook.charge.dispute.closed.json');
    lost.id = `evt_dispute_lost_${invoice}`;
    Object.assign(lost.data.object, {
      id: `dp_lost_${invoice}`,
      status: 'lost',
      payment_intent: payment.gateway_transaction_id,
      currency: 'kwd',
      amount: 340,
    });
    expect((await deliverStripe(app.url, lost)).status).toBe(200);
    const dispute = await waitFor('the lost dispute booked', () =>
      db()
        .selectFrom('disputes')
        .selectAll()
        .where('transaction_id', '=', payment.id)
        .where('status', '=', 'lost')
        .executeTakeFirst(),
    );
    expect(moved(before, await ledgerIn(app, 'KWD'))).toEqual({
      chargeback_losses: 340,
      'gateway_clearing:stripe': -340,
    });
    expect(await invoiceRow(invoice)).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 660n,
      cash_credited: 7n,
    });
    expect(await exceptionsOf(payment.id)).toEqual([
      {
        kind: 'cash_credited_given_back_twice',
        status: 'open',
        message: expect.stringContaining('the customer has those 7 KWD twice'),
        details: { invoice, dispute: dispute.id, cash_credited: '7', twice: '7' },
      },
    ]);
  });

  it("KWD: the 7 credited cannot be paid back to the card (off Stripe's step of 10): 422 amount_not_representable, nothing changed", async () => {
    const { customer } = await cancelledKwd();
    const before = await ledgerIn(app, 'KWD');
    const r = await app.api('POST', `/v1/customers/${customer}/credit/refund`, {
      amount: 7,
      currency: 'KWD',
    });
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe('amount_not_representable');
    expect(r.body.error.message).toContain('steps of 0.010 KWD');
    expect(await ledgerIn(app, 'KWD')).toEqual(before);
  });
});
