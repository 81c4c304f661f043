import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAddOn } from '../../src/billing/add-ons.ts';
import { lockInvoice } from '../../src/billing/invoices.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { DUNNING_REASON, reinstateAfterPayment } from '../../src/billing/reinstate.ts';
import { lockSubscription, renewSubscription } from '../../src/billing/renewal.ts';
import { setSubscriptionAddOn } from '../../src/billing/subscription-add-ons.ts';
import { transitionSubscription } from '../../src/billing/subscription-status.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import { recordCollectionFailure } from '../../src/payments/dunning.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import {
  customerWith,
  downgradeCredit,
  flatPlan,
  ledgerIn,
  subscribedAndPaid,
} from '../support/collection.ts';
import { stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { deliverStripe, refundObject, stripeEvent } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

const d = (iso: string) => new Date(iso);

/**
 * Money at cancellation: what goes back after a cancellation, and what stays owed. The plan: 800 a
 * month + 25% tax = 1000 (200 tax). Customer credit comes from a downgrade (`downgradeCredit`: a
 * 25%-taxed FLAT_FEE plan changed with 7 of February's 28 days left: (big − 1000) × 7/28 net + 25%).
 * Each scenario has its own currency and customer, so `ledgerIn` reads its own books.
 */
describe('money at cancellation', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());

  const db = () => app.runtime.db;
  const creditOf = async (customer: string) =>
    (await app.api('GET', `/v1/customers/${customer}`)).body.credit;
  const invoiceOf = async (id: string) => (await app.api('GET', `/v1/invoices/${id}`)).body;

  /** A subscription from `start` of the 1000 plan in `currency`, its first invoice settled (credit first, the rest by Stripe). */
  async function subscribe(currency: string, customer: string, method: string, start: Date) {
    const plan = await flatPlan(app, currency, 800);
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer, planId: plan, paymentMethodId: method },
      start,
    );
    const stripe = stripeChargeSucceeds();
    const settled = await app.api('POST', `/v1/subscriptions/${subscription.id}/settle`);
    return { id: subscription.id as string, invoice: settled.body.invoices[0]?.invoice, stripe, plan };
  }

  const cancelAt = (id: string, refundType: 'none' | 'full' | 'prorate', at: Date) =>
    cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      id,
      { when: 'now', refundType },
      at,
    );

  it('JPY: POST …/credit/return after a prorate cancellation gives back nothing more (before: the 500 used half too, 1000 back of a period used half)', async () => {
    // Credit (2920 − 1000) × 7/28 = 480 + 120 tax = 600; the Jan 1 invoice (1000) takes all 600 and
    // the card pays 400.
    const { customer, method } = await customerWith(app, { stripe: true });
    await downgradeCredit(app, customer.id, 'JPY', 2920);
    const sub = await subscribe('JPY', customer.id, method!.id, d('2027-01-01T00:00:00Z'));
    expect(sub.invoice).toMatchObject({ status: 'PAID', total: 1000, credit_applied: 600, amount_paid: 400 });
    // Jan 1 → Feb 1 is 31 days; Jan 16 12:00 leaves 15.5: round_half_up(1000 × 1/2) = 500 owed, all
    // 400 of cash to the card, then 100 of the 600 credit as credit. The customer keeps 500 for the
    // used half: 500 of the credit that paid it.
    stripeRefundSucceeds('re_jpy_prorate_then_return');
    const result = await cancelAt(sub.id, 'prorate', d('2027-01-16T12:00:00Z'));
    expect(result.refunds).toMatchObject([{ status: 'succeeded', amount: 400n }]);
    expect(result.creditNotes).toMatchObject([{ total: 100n }]);
    expect(await invoiceOf(sub.invoice.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 400,
      credit_returned: 100,
    });
    expect(await creditOf(customer.id)).toEqual([{ currency: 'JPY', amount: 100 }]);
    const before = await ledgerIn(app, 'JPY');

    // Before: 201, 500 more credit (the used half), 400 + 600 = 1000 back of a period used half;
    // the customer could then have it paid to their card (POST /v1/customers/:id/credit/refund).
    const back = await app.api('POST', `/v1/invoices/${sub.invoice.id}/credit/return`, {});
    expect(back.status).toBe(409);
    expect(back.body.error).toMatchObject({
      code: 'credit_not_returnable',
      message: expect.stringContaining('prorate refund'),
    });
    const asked = await app.api('POST', `/v1/invoices/${sub.invoice.id}/credit/return`, { amount: 1 });
    expect(asked.status).toBe(409);
    expect(await invoiceOf(sub.invoice.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 400,
      credit_returned: 100,
    });
    expect(await creditOf(customer.id)).toEqual([{ currency: 'JPY', amount: 100 }]);
    expect(await ledgerIn(app, 'JPY')).toEqual(before);
  });

  it('CHF: a prorate_at_renewal upgrade invoice is billed at a cancellation now with refund none (before: OPEN, charged only at the end of a period never served)', async () => {
    // Feb 1 → Mar 1 (28 days), 800 + 25% = 1000 by card. Feb 8 (21 of 28 days left) up to 1600 +
    // 25%, prorate_at_renewal: −800 × 21/28 = −600 (−150 tax) unused, +1600 × 21/28 = 1200 (300
    // tax): 600 + 150 = 750, finalized now, charged at the period's end (Mar 1).
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribe('CHF', customer.id, method!.id, d('2027-02-01T00:00:00Z'));
    expect(sub.invoice).toMatchObject({ status: 'PAID', total: 1000, amount_paid: 1000 });
    const up = await changeSubscription(
      db(),
      'system',
      sub.id,
      { planId: await flatPlan(app, 'CHF', 1600), proration: 'prorate_at_renewal' },
      d('2027-02-08T00:00:00Z'),
      false,
    );
    expect(up.invoice).toMatchObject({
      status: 'OPEN',
      subtotal: 600n,
      tax: 150n,
      total: 750n,
      amount_due: 750n,
    });
    expect(up.invoice!.charge_at).toEqual(d('2027-03-01T00:00:00Z'));

    // Cancelled now on Feb 15 with refund none: no renewal will come. The upgrade was served Feb 8 →
    // Feb 15 and `none` gives back nothing of the period: the 750 is owed, billed now (Stripe's
    // invoice_now), not left to a charge date after the subscription ended.
    const cancelled = await cancelAt(sub.id, 'none', d('2027-02-15T00:00:00Z'));
    expect(cancelled.subscription.status).toBe('CANCELLED');
    expect(await invoiceOf(up.invoice!.id)).toMatchObject({
      status: 'OPEN',
      amount_due: 750,
      charge_at: '2027-02-15T00:00:00.000Z',
    });
    const activity = (await app.api('GET', `/v1/activities?resource=${sub.id}&limit=100`)).body.data.find(
      (a: { action: string }) => a.action === 'subscription.cancelled',
    );
    expect(activity.data).toMatchObject({ refund_type: 'none', billed_now_invoices: [up.invoice!.id] });

    // The collection sweep just after charges it: 750 to the card, the receivable back to 0.
    const stripe = stripeChargeSucceeds();
    const { charged } = await chargeDueInvoices(
      db(),
      'scheduler',
      app.runtime,
      app.config,
      d('2027-02-15T00:00:01Z'),
    );
    expect(charged.map((c) => c.invoiceId)).toContain(up.invoice!.id);
    expect(stripe.seen[0]!.params.get('amount')).toBe('750');
    expect(await invoiceOf(up.invoice!.id)).toMatchObject({
      status: 'PAID',
      amount_paid: 750,
      amount_due: 0,
    });
    expect((await ledgerIn(app, 'CHF'))['receivable:customer'] ?? 0).toBe(0);
  });

  it('PLN: a cancellation at a date brings a prorate_at_renewal charge to that date (before: the period end, after the service ended)', async () => {
    // As CHF: 1000 a month, up to 2000 on Feb 8 with prorate_at_renewal: 750 for Mar 1. On Feb 15
    // a cancellation at Feb 20 (refund none): the charge comes when the service ends, Feb 20.
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribe('PLN', customer.id, method!.id, d('2027-02-01T00:00:00Z'));
    const up = await changeSubscription(
      db(),
      'system',
      sub.id,
      { planId: await flatPlan(app, 'PLN', 1600), proration: 'prorate_at_renewal' },
      d('2027-02-08T00:00:00Z'),
      false,
    );
    expect(up.invoice).toMatchObject({ status: 'OPEN', total: 750n, charge_at: d('2027-03-01T00:00:00Z') });
    const scheduled = await cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      sub.id,
      { when: 'date', cancelAt: d('2027-02-20T00:00:00Z'), refundType: 'none' },
      d('2027-02-15T00:00:00Z'),
    );
    expect(scheduled.subscription).toMatchObject({ status: 'ACTIVE', cancel_at: d('2027-02-20T00:00:00Z') });
    expect(await invoiceOf(up.invoice!.id)).toMatchObject({
      status: 'OPEN',
      amount_due: 750,
      charge_at: '2027-02-20T00:00:00.000Z',
    });
    const activity = (await app.api('GET', `/v1/activities?resource=${sub.id}&limit=100`)).body.data.find(
      (a: { action: string }) => a.action === 'subscription.cancellation_scheduled',
    );
    expect(activity.data).toMatchObject({ billed_at_end_invoices: [up.invoice!.id] });
  });

  /**
   * A March 2027 period invoice of 2000 + 25% = 2500 in `currency`, paid 1250 by customer credit (a
   * downgrade's (5000 − 1000) × 7/28 = 1000 + 250 tax) and 1250 by card, renewed on Apr 1: a past
   * period's invoice, which no cancellation's refund reaches any more.
   */
  async function pastPeriodPaidHalfByCredit(currency: string) {
    const { customer, method } = await customerWith(app, { stripe: true });
    await downgradeCredit(app, customer.id, currency, 5000);
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan: await flatPlan(app, currency, 2000),
      method: method!.id,
      start: d('2027-03-01T00:00:00Z'),
    });
    expect(await invoiceOf(sub.invoice.id)).toMatchObject({
      status: 'PAID',
      total: 2500,
      tax: 500,
      credit_applied: 1250,
      amount_paid: 1250,
    });
    await renewSubscription(db(), 'system', sub.id, d('2027-04-01T00:00:01Z'));
    expect(await creditOf(customer.id)).toEqual([]);
    return { customer: customer.id as string, invoice: sub.invoice.id as string };
  }

  it('SGD: a whole refund by hand of a past period invoice paid half by credit gives back the credit with the cash (before: the 1250 of cash only)', async () => {
    const { customer, invoice } = await pastPeriodPaidHalfByCredit('SGD');
    const before = await ledgerIn(app, 'SGD');
    const stripe = stripeRefundSucceeds('re_sgd_past_whole');
    const refunded = await app.api('POST', `/v1/invoices/${invoice}/refund`, {});
    expect(refunded.status).toBe(201);
    expect(refunded.body).toMatchObject({ status: 'succeeded', amount: 1250 });
    expect(stripe.isDone()).toBe(true);
    // All 2500 back: 1250 to the card, 1250 to the customer's credit. Notes: the credit's first,
    // round(500 × 1250/2500) = 250 tax (1000 net); the card's brings them to 500: 250 (1000 net).
    expect(await invoiceOf(invoice)).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 1250,
      credit_returned: 1250,
    });
    expect(await creditOf(customer)).toEqual([{ currency: 'SGD', amount: 1250 }]);
    const after = await ledgerIn(app, 'SGD');
    const moved = (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
    expect(moved('refunds')).toBe(2000);
    expect(moved('tax_payable')).toBe(500);
    expect(moved('gateway_clearing:stripe')).toBe(-1250);
    expect(moved('customer_credit:customer')).toBe(-1250);
    expect(moved('receivable:customer')).toBe(0);
    // Nothing is left to give back by hand.
    expect((await app.api('POST', `/v1/invoices/${invoice}/credit/return`, {})).status).toBe(409);
  });

  it('NZD: a dashboard refund of all the cash of a past period invoice paid half by credit keeps the credit (the dashboard refunded a payment, not the invoice) and says so in an exception naming POST …/credit/return (before: nothing said)', async () => {
    const { customer, invoice } = await pastPeriodPaidHalfByCredit('NZD');
    const payment = await db()
      .selectFrom('transactions')
      .selectAll()
      .where('invoice_id', '=', invoice)
      .executeTakeFirstOrThrow();
    const event = stripeEvent(
      'charge.refund.updated',
      refundObject({
        id: 're_nzd_dashboard_whole',
        amount: 1250,
        intent: payment.gateway_transaction_id,
        status: 'succeeded',
        currency: 'nzd',
      }),
    );
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    await waitFor('dashboard refund succeeded', () =>
      db()
        .selectFrom('refunds')
        .selectAll()
        .where('gateway_refund_id', '=', 're_nzd_dashboard_whole')
        .where('status', '=', 'succeeded')
        .executeTakeFirst(),
    );
    // The card's 1250 is back; the 1250 of credit still pays the invoice (1000 of revenue and 250
    // of tax kept): PARTIALLY_REFUNDED, the customer's credit untouched.
    expect(await invoiceOf(invoice)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 1250,
      credit_returned: 0,
    });
    expect(await creditOf(customer)).toEqual([]);
    const exceptions = await db()
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'message', 'details', 'status'])
      .where('transaction_id', '=', payment.id)
      .execute();
    expect(exceptions).toEqual([
      {
        kind: 'invoice_credit_kept',
        status: 'open',
        message: expect.stringContaining(`POST /v1/invoices/${invoice}/credit/return`),
        details: { invoice, credit: '1250' },
      },
    ]);
    // Followed, the books match a whole refund by hand: 1250 back as credit, REFUNDED.
    const back = await app.api('POST', `/v1/invoices/${invoice}/credit/return`, {});
    expect(back.status).toBe(201);
    expect(back.body.credit_note).toMatchObject({ subtotal: 1000, tax: 250, total: 1250 });
    expect(await invoiceOf(invoice)).toMatchObject({ status: 'REFUNDED', credit_returned: 1250 });
    expect(await creditOf(customer)).toEqual([{ currency: 'NZD', amount: 1250 }]);
  });

  it('AUD: a refund refused while an add-on charge is pending is decided before the charge is invoiced: 409 nothing_to_refund, naming no invoice the refused cancellation made (before: the reason was an add-on invoice it made and rolled back, then a message rewritten to hide its id)', async () => {
    // Feb 1 → Mar 1 (28 days): 800 + 25% = 1000, OPEN (never paid). Suspended by dunning Feb 8;
    // Seats (2000 AUD a month, 25%) set to 1 on Feb 10 while suspended (charged nothing then); the
    // period invoice's payment reinstates it Feb 17: the seat is charged from then, pending until the
    // renewal sweep (or whatever renews the subscription first) invoices it.
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await flatPlan(app, 'AUD', 800);
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer.id, planId: plan, paymentMethodId: method!.id },
      d('2027-02-01T00:00:00Z'),
    );
    const period = await db()
      .selectFrom('invoices')
      .selectAll()
      .where('subscription_id', '=', subscription.id)
      .executeTakeFirstOrThrow();
    expect(period).toMatchObject({ status: 'OPEN', total: 1000n });
    await inUnitOfWork(db(), { actor: 'system' }, async (work) =>
      transitionSubscription(
        work,
        (await lockSubscription(work, subscription.id))!,
        'SUSPENDED',
        d('2027-02-08T00:00:00Z'),
        { reason: DUNNING_REASON },
      ),
    );
    const seats = await createAddOn(db(), 'system', { name: 'Seats', currency: 'AUD', amount: 2000n });
    await setSubscriptionAddOn(
      db(),
      'system',
      subscription.id,
      { addOnId: seats.id, quantity: 1 },
      d('2027-02-10T00:00:00Z'),
    );
    expect(
      await inUnitOfWork(db(), { actor: 'system' }, (work) =>
        reinstateAfterPayment(work, subscription.id, period.id, d('2027-02-17T00:00:00Z')),
      ),
    ).toBe(true);
    const invoicesOf = () =>
      db()
        .selectFrom('invoices')
        .select(['id', 'status', 'total'])
        .where('subscription_id', '=', subscription.id)
        .orderBy('id')
        .execute();
    const before = await invoicesOf();
    expect(before).toEqual([{ id: period.id, status: 'OPEN', total: 1000n }]);
    const ledgerBefore = await ledgerIn(app, 'AUD');

    // Cancelled now on Feb 21 with prorate: the OPEN period invoice gives nothing back, and no add-on
    // invoice of the period exists yet: refused, before the pending charge of the seat from Feb 17
    // (2000 × 12/28 = 857 + 214 tax = 1071) is invoiced. Before: the cancellation invoiced the charge
    // first and was refused over it (period_invoice_not_refundable, "would give back the period's
    // add-on invoices" — an invoice the refusal rolled back), answered as add_on_charge_pending with
    // that invoice's id rewritten out of the message.
    const refused = await cancelAt(subscription.id, 'prorate', d('2027-02-21T00:00:00Z')).then(
      () => ({ status: 200, code: 'cancelled', message: '' }),
      (e: unknown) => e as { status: number; code: string; message: string },
    );
    expect(refused).toMatchObject({ status: 409, code: 'nothing_to_refund' });
    // Every invoice it names exists.
    const named = [...refused.message.matchAll(/inv_[0-9a-z]+/g)].map((m) => m[0]);
    const ids = (await invoicesOf()).map((i) => i.id);
    for (const id of named) expect(ids).toContain(id);
    expect(await invoicesOf()).toEqual(before);
    expect(await ledgerIn(app, 'AUD')).toEqual(ledgerBefore);
    const after = await db()
      .selectFrom('subscriptions')
      .select(['status', 'add_on_charge_at'])
      .where('id', '=', subscription.id)
      .executeTakeFirstOrThrow();
    expect(after).toEqual({ status: 'ACTIVE', add_on_charge_at: d('2027-02-17T00:00:00Z') });
  });
  it('JPY: POST …/credit/return of an upgrade paid by credit after a prorate cancellation gives back nothing (before: its 750 too, 1750 back of a period used half)', async () => {
    // Feb 1 → Mar 1 (28 days), 800 + 25% = 1000 by card. Credit (3400 − 1000) × 7/28 = 600 + 150
    // tax = 750. Feb 8 (21 days left) up to 1600 + 25%, prorate_now: 1500 − 750 = 750, paid whole by
    // that credit.
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribe('JPY', customer.id, method!.id, d('2027-02-01T00:00:00Z'));
    expect(sub.invoice).toMatchObject({ status: 'PAID', total: 1000, amount_paid: 1000 });
    await downgradeCredit(app, customer.id, 'JPY', 3400);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'JPY', amount: 750 }]);
    const up = await changeSubscription(
      db(),
      'system',
      sub.id,
      { planId: await flatPlan(app, 'JPY', 1600), proration: 'prorate_now' },
      d('2027-02-08T00:00:00Z'),
      false,
    );
    expect(up.invoice).toMatchObject({
      status: 'PAID',
      total: 750n,
      credit_applied: 750n,
      period_index: null,
    });
    // Cancelled Feb 15 with prorate: 14 days unused at 2000 a month = 1000 owed back, all from the
    // period invoice's card payment. Used: 7 days at 1000 (250) and 7 at 2000 (500) = 750, which the
    // upgrade's 750 of credit paid.
    stripeRefundSucceeds('re_jpy_upgrade_prorate_then_return');
    const result = await cancelAt(sub.id, 'prorate', d('2027-02-15T00:00:00Z'));
    expect(result.refunds).toMatchObject([
      { status: 'succeeded', amount: 1000n, invoice_id: sub.invoice.id },
    ]);
    expect(result.creditNotes).toEqual([]);
    const before = await ledgerIn(app, 'JPY');

    // Before: 201, the upgrade's 750 back as credit: 1750 back of a period used half.
    const back = await app.api('POST', `/v1/invoices/${up.invoice!.id}/credit/return`, {});
    expect(back.status).toBe(409);
    expect(back.body.error).toMatchObject({
      code: 'credit_not_returnable',
      message: expect.stringContaining('prorate refund'),
    });
    // A whole refund by hand of it no longer names credit/return as the way to give it back.
    const whole = await app.api('POST', `/v1/invoices/${up.invoice!.id}/refund`, {});
    expect(whole.status).toBe(409);
    expect(whole.body.error.code).not.toBe('only_credit_left');
    expect(await invoiceOf(up.invoice!.id)).toMatchObject({ status: 'PAID', credit_returned: 0 });
    expect(await creditOf(customer.id)).toEqual([]);
    expect(await ledgerIn(app, 'JPY')).toEqual(before);
  });
  it("DKK: dunning's final cancellation bills a prorate_at_renewal upgrade invoice now (before: OPEN, charged Mar 1, after the service ended)", async () => {
    // As CHF: 1000 a month by card, up to 2000 on Feb 8 with prorate_at_renewal: 750 for Mar 1.
    // Seats (800 + 25% a month) set Feb 10 (19 of 28 days): round(1000 × 19/28) = 679, due now; its
    // charge fails Feb 12 and dunning's policy has no retry left: CANCEL.
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribe('DKK', customer.id, method!.id, d('2027-02-01T00:00:00Z'));
    const up = await changeSubscription(
      db(),
      'system',
      sub.id,
      { planId: await flatPlan(app, 'DKK', 1600), proration: 'prorate_at_renewal' },
      d('2027-02-08T00:00:00Z'),
      false,
    );
    expect(up.invoice).toMatchObject({ status: 'OPEN', total: 750n, charge_at: d('2027-03-01T00:00:00Z') });
    const seats = (await createAddOn(db(), 'system', { name: 'Seats', currency: 'DKK', amount: 800n })).id;
    const addOn = (
      await setSubscriptionAddOn(
        db(),
        'system',
        sub.id,
        { addOnId: seats, quantity: 1 },
        d('2027-02-10T00:00:00Z'),
      )
    ).invoice!;
    expect(addOn.status).toBe('OPEN');
    const step = await inUnitOfWork(db(), { actor: 'system' }, async (work) =>
      recordCollectionFailure(
        work,
        await lockInvoice(work, addOn.id),
        { retryDays: [], finalAction: 'CANCEL' },
        d('2027-02-12T00:00:00Z'),
        { code: 'card_declined' },
      ),
    );
    expect(step.subscriptionStatus).toBe('CANCELLED');
    // No renewal comes: the upgrade, served Feb 8 → Feb 12, is billed at the end of the service.
    expect(await invoiceOf(up.invoice!.id)).toMatchObject({
      status: 'OPEN',
      amount_due: 750,
      charge_at: '2027-02-12T00:00:00.000Z',
    });
    const activity = (await app.api('GET', `/v1/activities?resource=${sub.id}&limit=100`)).body.data.find(
      (a: { action: string }) => a.action === 'subscription.cancelled',
    );
    expect(activity.data).toMatchObject({ billed_now_invoices: [up.invoice!.id] });
  });
  it("HKD: POST …/credit/return of an add-on's invoice paid by credit after a prorate cancellation gives back nothing more (before: the used week too)", async () => {
    // Feb 1 → Mar 1 (28 days), 800 + 25% = 1000 by card. Credit (5000 − 1000) × 7/28 = 1000 + 250
    // tax = 1250. Seats (800 + 25% a month) set Feb 8, 21 of 28 days: 750, paid whole by credit.
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribe('HKD', customer.id, method!.id, d('2027-02-01T00:00:00Z'));
    await downgradeCredit(app, customer.id, 'HKD', 5000);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'HKD', amount: 1250 }]);
    const seats = (await createAddOn(db(), 'system', { name: 'Seats', currency: 'HKD', amount: 800n })).id;
    const addOn = (
      await setSubscriptionAddOn(
        db(),
        'system',
        sub.id,
        { addOnId: seats, quantity: 1 },
        d('2027-02-08T00:00:00Z'),
      )
    ).invoice!;
    expect(addOn).toMatchObject({ status: 'PAID', total: 750n, credit_applied: 750n });
    // Cancelled Feb 15 with prorate, 14 of the seat's 21 days unused: 750 × 14/21 = 500 back as the
    // credit that paid it (and 500 of the period invoice to the card); the 250 paid the week used.
    stripeRefundSucceeds('re_hkd_addon_prorate_then_return');
    await cancelAt(sub.id, 'prorate', d('2027-02-15T00:00:00Z'));
    expect(await invoiceOf(addOn.id)).toMatchObject({ credit_applied: 750, credit_returned: 500 });
    expect(await creditOf(customer.id)).toEqual([{ currency: 'HKD', amount: 1000 }]);
    const before = await ledgerIn(app, 'HKD');

    // Before: 201, the other 250 back too (750 back of a seat used a week).
    const back = await app.api('POST', `/v1/invoices/${addOn.id}/credit/return`, {});
    expect(back.status).toBe(409);
    expect(back.body.error).toMatchObject({
      code: 'credit_not_returnable',
      message: expect.stringContaining('prorate refund'),
    });
    expect(await invoiceOf(addOn.id)).toMatchObject({ credit_returned: 500 });
    expect(await creditOf(customer.id)).toEqual([{ currency: 'HKD', amount: 1000 }]);
    expect(await ledgerIn(app, 'HKD')).toEqual(before);
  });
  it('KRW: POST …/credit/return of an upgrade paid by credit after a prorate cancellation scheduled at a date gives back nothing, before that date too (before: its 750)', async () => {
    // As the JPY upgrade: 1000 by card Feb 1, up to 2000 on Feb 8 with 750 paid by credit. On Feb 10
    // a cancellation at Feb 15 with prorate: 1000 back from the period invoice's card payment now.
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribe('KRW', customer.id, method!.id, d('2027-02-01T00:00:00Z'));
    await downgradeCredit(app, customer.id, 'KRW', 3400);
    const up = await changeSubscription(
      db(),
      'system',
      sub.id,
      { planId: await flatPlan(app, 'KRW', 1600), proration: 'prorate_now' },
      d('2027-02-08T00:00:00Z'),
      false,
    );
    expect(up.invoice).toMatchObject({ status: 'PAID', total: 750n, credit_applied: 750n });
    stripeRefundSucceeds('re_krw_upgrade_scheduled_then_return');
    const scheduled = await cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      sub.id,
      { when: 'date', cancelAt: d('2027-02-15T00:00:00Z'), refundType: 'prorate' },
      d('2027-02-10T00:00:00Z'),
    );
    expect(scheduled.subscription.status).toBe('ACTIVE');
    expect(scheduled.refunds).toMatchObject([
      { status: 'succeeded', amount: 1000n, invoice_id: sub.invoice.id },
    ]);
    const before = await ledgerIn(app, 'KRW');

    const back = await app.api('POST', `/v1/invoices/${up.invoice!.id}/credit/return`, {});
    expect(back.status).toBe(409);
    expect(back.body.error).toMatchObject({ code: 'credit_not_returnable' });
    expect(await invoiceOf(up.invoice!.id)).toMatchObject({ credit_returned: 0 });
    expect(await creditOf(customer.id)).toEqual([]);
    expect(await ledgerIn(app, 'KRW')).toEqual(before);
  });
});
