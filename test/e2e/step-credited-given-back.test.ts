import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { ADMIN_KEY, STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { customerWith, ledgerIn, subscribedAndPaid } from '../support/collection.ts';
import { stripeChargeSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { pdfText } from '../support/pdf-text.ts';
import { insertPlan } from '../support/plans.ts';
import { deliverStripe, refundObject, stripeEvent, stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

const DAY_MS = 86_400_000;

/**
 * The 7 fils a Stripe KWD cancellation with a prorated refund gives to the customer's credit (1000
 * paid, 667 owed: 660 to the card, 7 credited: `cash_credited`) is given back once: money that leaves
 * the payment afterwards outside billhook (a refund in Stripe's dashboard of the payment's 340 left, a
 * dispute of it lost) gives those 7 back a second time, which billhook cannot refuse (the money has
 * moved) and says in an exception for a person. Also: a `full` cancellation after a `prorate` one that
 * credited, and a refund by hand with nothing asked of an invoice with a rounding line after one.
 */
describe('the cash a step-currency refund gives to the customer credit (cash_credited), given back once', () => {
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
  async function cancelledKwd(o: { inclusive?: boolean } = {}) {
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await insertPlan(db(), {
      name: 'Flat 800 KWD',
      currency: 'KWD',
      price: { model: 'FLAT_FEE', amount: o.inclusive ? 1000 : 800 },
      taxRatePpm: 250_000,
    });
    // Tax included: 1000 with 25% in it is 800 + 200, as 800 + 25% is.
    if (o.inclusive)
      await db().updateTable('plans').set({ tax_inclusive: true }).where('id', '=', plan).execute();
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
      .select(['refund_id', 'subtotal', 'tax', 'rounding', 'total'])
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
      { refund_id: null, subtotal: 6n, tax: 1n, rounding: 0n, total: 7n },
      { refund_id: expect.stringMatching(/^re_/), subtotal: 528n, tax: 132n, rounding: 0n, total: 660n },
      { refund_id: refund.id, subtotal: 266n, tax: 67n, rounding: 0n, total: 333n },
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
    const { customer, invoice } = await cancelledKwd();
    // The invoice's document says where the 7 went, beside the 660 refunded (before: 660 only).
    const pdf = await fetch(`${app.url}/v1/invoices/${invoice}/pdf`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(pdf.status).toBe(200);
    const text = pdfText(Buffer.from(await pdf.arrayBuffer()));
    expect(text).toContain('Amount refunded');
    expect(text).toContain('0.660 KWD');
    expect(text).toContain('Refunded as customer credit');
    expect(text).toContain('0.007 KWD');
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

  /** Stripe answers a refund succeeded, echoing the amount sent; the amounts sent are pushed to `sent`. */
  const stripeRefund = (id: string, sent: string[]) =>
    nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .reply(async (request: Request) => {
        const params = new URLSearchParams(await request.text());
        sent.push(params.get('amount')!);
        return [
          200,
          {
            ...stripeFixture('api.refund.succeeded.openapi-fixture.json'),
            id,
            amount: Number(params.get('amount')),
            currency: 'kwd',
            status: 'succeeded',
          },
        ];
      });

  it('KWD: a prorate cancellation scheduled for Feb 19 (357: 350 + 7 credited), then cancelled now with full on Feb 12: 643 more owed, 640 to the card and 3 to the credit; 1000 given back once, notes 800 + 200', async () => {
    stripeChargeSucceeds();
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await insertPlan(db(), {
      name: 'Flat 800 KWD full',
      currency: 'KWD',
      price: { model: 'FLAT_FEE', amount: 800 },
      taxRatePpm: 250_000,
    });
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer.id, planId: plan, paymentMethodId: method!.id },
      new Date('2027-02-01T00:00:00Z'),
    );
    const settled = await app.api('POST', `/v1/subscriptions/${subscription.id}/settle`);
    const invoiceId = settled.body.invoices[0].invoice.id as string;
    const cancel = (when: 'now' | 'date', refundType: 'full' | 'prorate', at: Date, cancelAt?: Date) =>
      cancelSubscriptionWithRefund(
        db(),
        'system',
        app.runtime.boss,
        { registry: app.runtime.registry, accounts: app.runtime.accounts },
        subscription.id,
        { when, cancelAt, refundType },
        at,
      );
    const before = await ledgerIn(app, 'KWD');
    const sent: string[] = [];
    stripeRefund(`re_kwd_350_${subscription.id}`, sent);
    const scheduled = await cancel(
      'date',
      'prorate',
      new Date('2027-02-05T00:00:00Z'),
      new Date('2027-02-19T00:00:00Z'),
    );
    expect({ refunded: scheduled.refunded, credited: scheduled.credited }).toEqual({
      refunded: 350n,
      credited: 7n,
    });
    // full: 1000 owed in all, 357 given back already: 643, of which the card takes 640.
    stripeRefund(`re_kwd_640_${subscription.id}`, sent);
    const now = await cancel('now', 'full', new Date('2027-02-12T00:00:00Z'));
    expect(sent).toEqual(['350', '640']);
    expect({ refunded: now.refunded, credited: now.credited }).toEqual({ refunded: 640n, credited: 3n });
    expect(await invoiceRow(invoiceId)).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 990n,
      cash_credited: 10n,
    });
    const notes = await creditNotes(invoiceId);
    const sum = (k: 'subtotal' | 'tax' | 'total') => notes.reduce((t, n) => t + n[k], 0n);
    expect([sum('subtotal'), sum('tax'), sum('total')]).toEqual([800n, 200n, 1000n]);
    // 990 out to the card, revenue 800 and tax 200 given back whole, 10 to the customer's credit.
    expect(moved(before, await ledgerIn(app, 'KWD'))).toEqual({
      'gateway_clearing:stripe': -990,
      refunds: 800,
      tax_payable: 200,
      'customer_credit:customer': -10,
    });
  });

  it('KWD with a rounding line (1122 + 112 tax − 4 = 1230): a prorate cancellation 1/200 before the end owes 6, all to the credit (note with its rounding share), and a refund by hand with amount omitted then gives the 1224 left as 1220 + 4 credited; the notes hold 1122 + 112 − 4', async () => {
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await insertPlan(db(), {
      name: 'Flat 1122 KWD rounded',
      currency: 'KWD',
      price: { model: 'FLAT_FEE', amount: 1122 },
      taxRatePpm: 100_000,
    });
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan,
      method: method!.id,
      start: new Date(Math.floor((Date.now() - DAY_MS) / 1000) * 1000),
    });
    expect(await invoiceRow(sub.invoice.id)).toMatchObject({
      total: 1230n,
      rounding: 4n,
      amount_paid: 1230n,
    });
    const row = await db()
      .selectFrom('subscriptions')
      .select(['current_period_start', 'current_period_end'])
      .where('id', '=', sub.id)
      .executeTakeFirstOrThrow();
    const end = row.current_period_end!.getTime();
    const seconds = (end - row.current_period_start!.getTime()) / 1000;
    expect(seconds % 200).toBe(0);
    const before = await ledgerIn(app, 'KWD');
    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, {
      when: 'date',
      cancel_at: new Date(end - (seconds / 200) * 1000).toISOString(),
      refund_type: 'prorate',
    });
    expect(cancelled.status).toBe(200);
    // 1230 / 200 = 6.15 → 6.
    expect(cancelled.body).toMatchObject({ refunded: 0, credited: 6 });
    const sent: string[] = [];
    stripeRefund(`re_kwd_1220_${sub.id}`, sent);
    const byHand = await app.api('POST', `/v1/invoices/${sub.invoice.id}/refund`, {});
    // 1230 − 6 = 1224 left: 1220 to the card, 4 to the credit (before: 422 amount_not_representable).
    expect(byHand.status).toBe(201);
    expect(byHand.body).toMatchObject({ amount: 1220, status: 'succeeded', credited: 4 });
    expect(sent).toEqual(['1220']);
    expect(await invoiceRow(sub.invoice.id)).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 1220n,
      cash_credited: 10n,
    });
    // The notes hold the invoice whole: 1122 + 112 − 4 = 1230, the rounding given back with them.
    const notes = await creditNotes(sub.invoice.id);
    const sum = (k: 'subtotal' | 'tax' | 'rounding' | 'total') => notes.reduce((t, n) => t + n[k], 0n);
    expect([sum('subtotal'), sum('tax'), sum('rounding'), sum('total')]).toEqual([1122n, 112n, 4n, 1230n]);
    expect(notes[0]).toMatchObject({ refund_id: null, subtotal: 5n, tax: 1n, rounding: 0n, total: 6n });
    expect(moved(before, await ledgerIn(app, 'KWD'))).toEqual({
      'gateway_clearing:stripe': -1220,
      refunds: 1122,
      tax_payable: 112,
      rounding: -4,
      'customer_credit:customer': -10,
    });
  });

  it('KWD: the 7 credited pays the customer next invoice exactly (one-off 1000: credit 7 applied, 993 off Stripe step rounded to 990 by a 3 rounding line, 990 charged), the credit 0 after', async () => {
    const { customer } = await cancelledKwd();
    const draft = await app.api('POST', '/v1/invoices', {
      customer,
      currency: 'KWD',
      lines: [{ description: 'Consulting', amount: 1000 }],
    });
    expect(draft.status).toBe(201);
    const open = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
    expect(open.body).toMatchObject({
      status: 'OPEN',
      credit_applied: 7,
      rounding: 3,
      total: 997,
      amount_due: 990,
    });
    const charge = stripeChargeSucceeds();
    const paid = await app.api('POST', `/v1/invoices/${draft.body.id}/charge`, {});
    expect(paid.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 990, amount_due: 0 });
    expect(charge.seen.map((r) => r.params.get('amount'))).toEqual(['990']);
    const credit = await db()
      .selectFrom('postings as p')
      .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
      .select((eb) => eb.fn.sum<string>('p.amount').as('balance'))
      .where('a.code', '=', `customer_credit:${customer}`)
      .where('a.currency', '=', 'KWD')
      .executeTakeFirstOrThrow();
    expect(BigInt(credit.balance)).toBe(0n);
  });

  it('KWD tax included (1000 with 25% in it: 800 + 200): the prorate cancellation gives 660 + 7 with notes 6 + 1 and 528 + 132, as with tax added', async () => {
    const { invoice } = await cancelledKwd({ inclusive: true });
    expect(await invoiceRow(invoice)).toMatchObject({ subtotal: 800n, tax: 200n, total: 1000n });
    expect(await creditNotes(invoice)).toEqual([
      { refund_id: null, subtotal: 6n, tax: 1n, rounding: 0n, total: 7n },
      { refund_id: expect.stringMatching(/^re_/), subtotal: 528n, tax: 132n, rounding: 0n, total: 660n },
    ]);
  });

  it('KWD: the 7 credited already spent on the next invoice, then the 340 refunded in the dashboard: taken back all the same, the customer credit left in debit by 7, the exception says so (in_debit 7)', async () => {
    const { customer, invoice, payment } = await cancelledKwd();
    const draft = await app.api('POST', '/v1/invoices', {
      customer,
      currency: 'KWD',
      lines: [{ description: 'Consulting', amount: 1000 }],
    });
    const open = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
    expect(open.body).toMatchObject({ status: 'OPEN', credit_applied: 7 });
    const event = stripeEvent(
      'charge.refund.updated',
      refundObject({
        id: `re_dash_spent_${invoice}`,
        amount: 340,
        intent: payment.gateway_transaction_id,
        status: 'succeeded',
        currency: 'kwd',
      }),
    );
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    await waitFor('dashboard refund succeeded', () =>
      db()
        .selectFrom('refunds')
        .selectAll()
        .where('gateway_refund_id', '=', `re_dash_spent_${invoice}`)
        .where('status', '=', 'succeeded')
        .executeTakeFirst(),
    );
    expect(await exceptionsOf(payment.id)).toEqual([
      {
        kind: 'cash_credited_given_back_twice',
        status: 'open',
        message: expect.stringContaining('their credit is in debit by 7 KWD'),
        details: { invoice, cash_credited: '7', twice: '7', credit_left: '0', in_debit: '7' },
      },
    ]);
    const credit = await db()
      .selectFrom('postings as p')
      .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
      .select((eb) => eb.fn.sum<string>('p.amount').as('balance'))
      .where('a.code', '=', `customer_credit:${customer}`)
      .where('a.currency', '=', 'KWD')
      .executeTakeFirstOrThrow();
    expect(BigInt(credit.balance)).toBe(7n);
  });
});
