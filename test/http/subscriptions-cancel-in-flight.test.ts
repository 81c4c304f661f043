import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { changeSubscription } from '../../src/billing/proration.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { recordRefundResult } from '../../src/payments/refunds.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { STRIPE_API_BASE, startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, ledgerIn, payOpenOffline, subscribedAndPaid } from '../support/collection.ts';
import { stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { insertPlan } from '../support/plans.ts';
import { stripeFixture } from '../support/stripe.ts';

const d = (iso: string) => new Date(iso);

/**
 * A cancellation with a refund while a cash refund of the period's invoice is still in flight (sent,
 * not settled: `pending` at Stripe, or `unknown` after no answer) is refused with 409
 * `refund_in_flight` naming that refund, and changes nothing: what the cancellation owes depends on
 * whether that refund succeeds (it counts against what is owed) or fails (it does not). Before, the
 * in-flight refund was not counted: `full` failed with a 422 on a field the cancel request does not
 * have (`amount`), and `prorate` sent the prorated share on top of the refund in flight (more than
 * owed for the used time once both succeed).
 *
 * Plans: FLAT_FEE 800 + 25% tax = 1000 EUR (2 decimals: 10.00 €), 8000 + 25% = 10000 JPY (no
 * decimals) and 10000 KWD fils (3 decimals: 10.000 KWD).
 */
describe('POST /v1/subscriptions/:id/cancel while a refund of the period is in flight', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    // An `unknown` refund stays unknown here: its retry (`invoice.refund`) is not what is tested.
    await app.runtime.boss.offWork(QUEUES.invoiceRefund);
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());

  const db = () => app.runtime.db;

  /** A subscription of `fee` + 25% tax in `currency`, its first invoice paid whole by the Stripe card. */
  async function paidSubscription(currency: string, fee: number, start?: Date) {
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await insertPlan(db(), {
      name: `Flat ${fee}`,
      currency,
      price: { model: 'FLAT_FEE', amount: fee },
      taxRatePpm: 250_000,
    });
    return subscribedAndPaid(app, { customer: customer.id, plan, method: method!.id, start });
  }

  /** Stripe answers a refund `pending` (https://docs.stripe.com/api/refunds/object#refund_object-status): the fixture refund with that status. */
  const stripeRefundPending = (id: string, amount: number, currency: string) =>
    nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .reply(200, {
        ...stripeFixture('api.refund.succeeded.openapi-fixture.json'),
        id,
        amount,
        currency: currency.toLowerCase(),
        status: 'pending',
      });

  /** What a refused cancellation must leave as it was: the subscription, refunds, credit notes, journal entries and balances. */
  async function snapshot(sub: { id: string; invoice: { id: string } }, currency: string) {
    const subscription = await db()
      .selectFrom('subscriptions')
      .selectAll()
      .where('id', '=', sub.id)
      .executeTakeFirstOrThrow();
    const refunds = await db()
      .selectFrom('refunds')
      .selectAll()
      .where('invoice_id', '=', sub.invoice.id)
      .orderBy('id')
      .execute();
    const notes = await db()
      .selectFrom('credit_notes')
      .selectAll()
      .where('invoice_id', '=', sub.invoice.id)
      .execute();
    const entries = await db()
      .selectFrom('journal_entries')
      .select((eb) => eb.fn.countAll<string>().as('count'))
      .executeTakeFirstOrThrow();
    const invoice = await db()
      .selectFrom('invoices')
      .selectAll()
      .where('id', '=', sub.invoice.id)
      .executeTakeFirstOrThrow();
    return {
      subscription,
      refunds,
      notes,
      entries: entries.count,
      invoice,
      ledger: await ledgerIn(app, currency),
    };
  }

  it('a refund pending at Stripe: 409 refund_in_flight naming it, nothing changes; once it settles the cancellation gives back the rest', async () => {
    const sub = await paidSubscription('EUR', 800);
    // 300 of the 1000 refunded by hand; Stripe answers `pending`.
    const pending = stripeRefundPending('re_pending_eur', 300, 'EUR');
    const byHand = await app.api('POST', `/v1/invoices/${sub.invoice.id}/refund`, { amount: 300 });
    expect(pending.isDone()).toBe(true);
    expect(byHand.body).toMatchObject({ status: 'pending', amount: 300 });
    const before = await snapshot(sub, 'EUR');

    const refused = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('refund_in_flight');
    expect(refused.body.error.message).toContain(byHand.body.id);
    expect(await snapshot(sub, 'EUR')).toEqual(before);

    // The refund settles (Stripe's `refund.updated`, recorded as the webhook path records it).
    await inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordRefundResult(work, byHand.body.id, { status: 'succeeded', gatewayRefundId: 're_pending_eur' }),
    );
    // Cancelled again, `full`: 1000 owed − 300 given back = 700, all cash (the card paid 1000 − 300
    // refunded = 700 still refundable).
    const stripe = stripeRefundSucceeds('re_after_settled_eur');
    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(cancelled.status).toBe(200);
    expect(stripe.isDone()).toBe(true);
    expect(cancelled.body).toMatchObject({
      status: 'CANCELLED',
      refund: { status: 'succeeded', amount: 700 },
      credit_note: null,
    });
    const invoice = (await app.api('GET', `/v1/invoices/${sub.invoice.id}`)).body;
    expect(invoice).toMatchObject({ status: 'REFUNDED', amount_paid: 1000, amount_refunded: 1000 });
  });

  it('a cancellation that owes nothing whatever the refund in flight does goes through: at the period end, prorate gives back 0', async () => {
    const sub = await paidSubscription('EUR', 800);
    const pending = stripeRefundPending('re_pending_eur_end', 300, 'EUR');
    const byHand = await app.api('POST', `/v1/invoices/${sub.invoice.id}/refund`, { amount: 300 });
    expect(pending.isDone()).toBe(true);
    // At the period's end no time is unused: prorate owes 0 whether the 300 in flight succeeds or not.
    const scheduled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, {
      when: 'period_end',
      refund_type: 'prorate',
    });
    expect(scheduled.status).toBe(200);
    expect(scheduled.body).toMatchObject({ cancel_at_period_end: true, refund: null, credit_note: null });
    const refunds = await db()
      .selectFrom('refunds')
      .select(['id', 'status'])
      .where('invoice_id', '=', sub.invoice.id)
      .execute();
    expect(refunds).toEqual([{ id: byHand.body.id, status: 'pending' }]);
  });

  it("a refund of the customer's credit in flight on the period's payment: 409 refund_in_flight too (KWD, 3 decimals)", async () => {
    // 8000 + 25% = 10000 fils (10.000 KWD) paid by card.
    const sub = await paidSubscription('KWD', 8000);
    const customer = (await app.api('GET', `/v1/subscriptions/${sub.id}`)).body.customer as string;
    // Credit from a downgrade of another subscription on 2027-02-22 (7 of 28 days left):
    // (9000 − 1000) × 7/28 = 2000 net + 25% = 2500 fils.
    const plan = (fee: number) =>
      insertPlan(db(), { currency: 'KWD', price: { model: 'FLAT_FEE', amount: fee }, taxRatePpm: 250_000 });
    const { subscription: other } = await createSubscription(
      db(),
      'system',
      { customerId: customer, planId: await plan(9000) },
      d('2027-02-01T00:00:00Z'),
    );
    // Its February invoice (11250 fils) paid by bank transfer first: over an unpaid one the credit
    // would lower what it owes instead.
    await payOpenOffline(db(), other.id);
    await changeSubscription(
      db(),
      'system',
      other.id,
      { planId: await plan(1000) },
      d('2027-02-22T00:00:00Z'),
      false,
    );
    expect((await app.api('GET', `/v1/customers/${customer}`)).body.credit).toEqual([
      { currency: 'KWD', amount: 2500 },
    ]);
    // Paid back through the customer's newest payment, the period's: Stripe answers `pending`.
    const pending = stripeRefundPending('re_credit_pending_kwd', 2500, 'KWD');
    const credit = await app.api('POST', `/v1/customers/${customer}/credit/refund`, {
      amount: 2500,
      currency: 'KWD',
    });
    expect(pending.isDone()).toBe(true);
    expect(credit.body.refunds).toMatchObject([{ kind: 'customer_credit', status: 'pending', amount: 2500 }]);
    const before = await snapshot(sub, 'KWD');
    // What the period's payment can still carry back (10000 − 2500 = 7500, or all 10000 if it
    // fails) decides the cash part: refused, as for a refund of the invoice itself.
    const refused = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('refund_in_flight');
    expect(refused.body.error.message).toContain(credit.body.refunds[0].id);
    expect(await snapshot(sub, 'KWD')).toEqual(before);
  });

  it('a refund with no answer (unknown) and a prorated cancellation: 409 refund_in_flight, not the prorated share on top (JPY)', async () => {
    // Period 2027-01-01 → 2027-02-01 (31 days), paid 10000 JPY by card.
    const sub = await paidSubscription('JPY', 8000, d('2027-01-01T00:00:00Z'));
    // 3000 refunded by hand; Stripe does not answer (500): `unknown`, retried by `invoice.refund`.
    nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .times(10)
      .reply(500, { error: { type: 'api_error', message: 'An unknown error occurred' } });
    const byHand = await app.api('POST', `/v1/invoices/${sub.invoice.id}/refund`, { amount: 3000 });
    expect(byHand.body).toMatchObject({ status: 'unknown', amount: 3000 });
    nock.cleanAll();
    const before = await snapshot(sub, 'JPY');
    // `prorate` at 2027-01-16T12:00Z (15.5 of 31 days unused: half): round_half_up(10000 / 2) = 5000
    // owed for the unused half. Counting the 3000 in flight as not given back would send 5000 more
    // (8000 back for half a period if the 3000 succeeds); counting it as given back would send 2000
    // (3000 short if it fails). Neither is known: refused.
    await expect(
      cancelSubscriptionWithRefund(
        db(),
        'system',
        app.runtime.boss,
        { registry: app.runtime.registry, accounts: app.runtime.accounts },
        sub.id,
        { when: 'now', refundType: 'prorate' },
        d('2027-01-16T12:00:00Z'),
      ),
    ).rejects.toMatchObject({ code: 'refund_in_flight', message: expect.stringContaining(byHand.body.id) });
    expect(await snapshot(sub, 'JPY')).toEqual(before);
    // Through the API as well (`full`).
    const refused = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('refund_in_flight');
    expect(await snapshot(sub, 'JPY')).toEqual(before);
    // A cancellation without refund does not depend on it: allowed.
    const plain = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'none' });
    expect(plain.body).toMatchObject({ status: 'CANCELLED', refund: null, credit_note: null });
  });

  it("a refund in flight on an add-on invoice of the period: 409 refund_in_flight naming it, and the period invoice's refund is not sent either (EUR)", async () => {
    // 1000 EUR cents (800 + 200 tax) by card; Storage 2000 a month added with `full` (the whole
    // period): 2000 + 500 tax = 2500, charged to the card.
    const sub = await paidSubscription('EUR', 800);
    const storage = (await app.api('POST', '/v1/add-ons', { name: 'Storage', currency: 'EUR', amount: 2000 }))
      .body;
    const added = await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: storage.id,
      quantity: 1,
      proration: 'full',
    });
    const charge = stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${added.body.invoice}/charge`, {});
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', total: 2500, amount_paid: 2500 });
    expect(charge.seen).toHaveLength(1);
    // 1000 of it refunded by hand, Stripe answers `pending`: in flight.
    stripeRefundPending('re_addon_pending', 1000, 'EUR');
    const byHand = await app.api('POST', `/v1/invoices/${added.body.invoice}/refund`, { amount: 1000 });
    expect(byHand.body).toMatchObject({ status: 'pending', amount: 1000 });
    const before = await snapshot(sub, 'EUR');
    // `full` owes the add-on invoice 2500 less what it gave back: 1500 if the 1000 succeeds, 2500 if it
    // fails. Not known: refused, and nothing of the period invoice's 1000 is sent or written either.
    const refused = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('refund_in_flight');
    expect(refused.body.error.message).toContain(byHand.body.id);
    expect(refused.body.error.message).toContain(added.body.invoice);
    expect(await snapshot(sub, 'EUR')).toEqual(before);
  });
});
