import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { changeSubscription } from '../../src/billing/proration.ts';
import { setSubscriptionAddOn } from '../../src/billing/subscription-add-ons.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { STRIPE_API_BASE, startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, downgradeCredit, flatPlan, ledgerIn } from '../support/collection.ts';
import { stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { insertPlan } from '../support/plans.ts';
import { stripeFixture } from '../support/stripe.ts';

const d = (iso: string) => new Date(iso);

/**
 * A cancellation's refund gives back the customer credit that paid the period's invoice (issue #23's
 * money follow-up): cash first, through the gateway payment, up to what is still refundable; the rest
 * as customer credit, up to the credit applied and not given back yet, with a credit note (revenue
 * and tax given back, cumulative with the cash refund's note). Each scenario has its own currency and
 * customer, so `ledgerIn` reads its own books in the shared app.
 *
 * The plan: 800 a month + 25% tax = 1000 (200 tax). Customer credit comes from a downgrade, as
 * customers get it: a FLAT_FEE plan at 25% tax changed on Feb 22 2027 (7 of February's 28 days
 * left) to one of 1000 credits (big − 1000) × 7/28 net + 25% tax.
 */
describe('POST /v1/subscriptions/:id/cancel gives back the credit-paid part as credit', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());

  const db = () => app.runtime.db;

  /** A Stripe customer of `currency` with `(big − 1000) × 7/28 × 1.25` of credit from a downgrade. */
  async function customerWithCredit(currency: string, big: number) {
    const { customer, method } = await customerWith(app, { stripe: true });
    await downgradeCredit(app, customer.id, currency, big);
    return { customer: customer.id as string, method: method!.id as string };
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
  const notesOf = (invoice: Awaited<ReturnType<typeof invoiceOf>>) =>
    invoice.credit_notes
      .map((n) => ({
        refund: n.refund === null ? null : 'refund',
        subtotal: n.subtotal,
        tax: n.tax,
        total: n.total,
      }))
      .sort((a, b) => a.total - b.total);

  /** A subscription of the 1000 plan in `currency` whose first invoice takes the customer's credit; the rest charged through Stripe. */
  async function subscribe(currency: string, customer: string, method: string, start?: Date) {
    const plan = await flatPlan(app, currency, 800);
    const sub = start
      ? (
          await createSubscription(
            db(),
            'system',
            { customerId: customer, planId: plan, paymentMethodId: method },
            start,
          )
        ).subscription
      : (await app.api('POST', '/v1/subscriptions', { customer, plan, payment_method: method })).body;
    const stripe = stripeChargeSucceeds();
    const settled = await app.api('POST', `/v1/subscriptions/${sub.id}/settle`);
    return { id: sub.id as string, invoice: settled.body.invoices[0]?.invoice, stripe };
  }

  it('full: 1000 paid 300 by credit and 700 by card gives back 700 to the card and 300 as credit, tax exact, and the next invoice uses the 300', async () => {
    // Credit: (1960 − 1000) × 7/28 = 240 net + 60 tax = 300.
    const { customer, method } = await customerWithCredit('EUR', 1960);
    expect(await creditOf(customer)).toEqual([{ currency: 'EUR', amount: 300 }]);
    const sub = await subscribe('EUR', customer, method);
    expect(sub.stripe.seen[0]!.params.get('amount')).toBe('700');
    expect(sub.invoice).toMatchObject({
      status: 'PAID',
      total: 1000,
      tax: 200,
      credit_applied: 300,
      amount_paid: 700,
    });
    expect(await creditOf(customer)).toEqual([]);
    const before = await ledgerIn(app, 'EUR');

    const stripe = stripeRefundSucceeds('re_cancel_credit_full');
    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(cancelled.status).toBe(200);
    expect(stripe.isDone()).toBe(true);
    // Cash first: all 700 the card paid; the other 300 of the 1000 owed go back as credit. Its note's
    // tax: round(200 × 300 / 1000) = 60 (committed before the card's refund succeeds); the card's
    // note brings the invoice's notes to round(200 × 1000 / 1000) = 200, so 140 of its 700.
    expect(cancelled.body).toMatchObject({
      status: 'CANCELLED',
      refund: { status: 'succeeded', amount: 700, invoice: sub.invoice.id },
      credit_note: {
        object: 'credit_note',
        refund: null,
        subtotal: 240,
        tax: 60,
        total: 300,
        status: 'ISSUED',
      },
    });
    const invoice = await invoiceOf(sub.invoice.id);
    expect(invoice).toMatchObject({ status: 'REFUNDED', amount_refunded: 700, credit_returned: 300 });
    expect(notesOf(invoice)).toEqual([
      { refund: null, subtotal: 240, tax: 60, total: 300 },
      { refund: 'refund', subtotal: 560, tax: 140, total: 700 },
    ]);
    // Balances debit-positive: refunds 240 + 560 and tax payable 60 + 140 debited; Stripe's clearing
    // credited 700 and the customer's credit 300 (a liability: −300). The entries balance: 800 + 200 = 700 + 300.
    const after = await ledgerIn(app, 'EUR');
    const moved = (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
    expect(moved('refunds')).toBe(800);
    expect(moved('tax_payable')).toBe(200);
    expect(moved('gateway_clearing:stripe')).toBe(-700);
    expect(moved('customer_credit:customer')).toBe(-300);
    expect(moved('receivable:customer')).toBe(0);
    expect(Object.values(after).reduce((sum, balance) => sum + balance, 0)).toBe(0);
    expect(await creditOf(customer)).toEqual([{ currency: 'EUR', amount: 300 }]);
    const activity = (await app.api('GET', `/v1/activities?resource=${sub.id}&limit=100`)).body.data.find(
      (a: { action: string }) => a.action === 'subscription.cancelled',
    );
    expect(activity.data).toMatchObject({ refund_type: 'full', refund_amount: '700', credit_amount: '300' });

    // The customer's next invoice (500) takes the 300 back: 200 left to pay.
    const draft = await app.api('POST', '/v1/invoices', {
      customer,
      currency: 'eur',
      lines: [{ description: 'Consulting', amount: 500, quantity: 1 }],
    });
    const next = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
    expect(next.body).toMatchObject({ status: 'OPEN', total: 500, credit_applied: 300, amount_due: 200 });
    expect(await creditOf(customer)).toEqual([]);

    // A later refund of the invoice finds nothing left: the card's 700 is all refunded.
    const again = await app.api('POST', `/v1/invoices/${sub.invoice.id}/refund`, {});
    expect(again.status).toBe(409);
  });

  it('prorate at half the period: 500 owed = all 400 of cash, then 100 of the 600 credit', async () => {
    // Credit: (2920 − 1000) × 7/28 = 480 net + 120 tax = 600; the first invoice (1000) takes it all
    // and the card pays 400.
    const { customer, method } = await customerWithCredit('GBP', 2920);
    const sub = await subscribe('GBP', customer, method, d('2027-01-01T00:00:00Z'));
    expect(sub.invoice).toMatchObject({ status: 'PAID', total: 1000, credit_applied: 600, amount_paid: 400 });
    const before = await ledgerIn(app, 'GBP');
    const stripe = stripeRefundSucceeds('re_cancel_credit_half');
    // 2027-01-01 → 2027-02-01 is 31 days; 2027-01-16T12:00Z leaves 15.5 days: half, so
    // round_half_up(1000 × 1/2) = 500 owed; the customer keeps paying 500 for the used half.
    const result = await cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      sub.id,
      { when: 'now', refundType: 'prorate' },
      d('2027-01-16T12:00:00Z'),
    );
    expect(stripe.isDone()).toBe(true);
    // Cash first: 400 (all the card paid), then 500 − 400 = 100 of credit. Credit note of the 100:
    // round(200 × 100 / 1000) = 20 tax, 80 revenue. The card's note: the notes then give back 500,
    // round(200 × 500 / 1000) = 100 tax in all, so 100 − 20 = 80 tax and 320 revenue.
    expect(result.refunds).toMatchObject([{ status: 'succeeded', amount: 400n }]);
    expect(result.creditNotes).toMatchObject([{ refund_id: null, subtotal: 80n, tax: 20n, total: 100n }]);
    const invoice = await invoiceOf(sub.invoice.id);
    // 500 of the 600 credit stays paid for the used half: partly given back.
    expect(invoice).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 400,
      credit_returned: 100,
    });
    expect(notesOf(invoice)).toEqual([
      { refund: null, subtotal: 80, tax: 20, total: 100 },
      { refund: 'refund', subtotal: 320, tax: 80, total: 400 },
    ]);
    const after = await ledgerIn(app, 'GBP');
    const moved = (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
    expect(moved('refunds')).toBe(400);
    expect(moved('tax_payable')).toBe(100);
    expect(moved('gateway_clearing:stripe')).toBe(-400);
    expect(moved('customer_credit:customer')).toBe(-100);
    expect(await creditOf(customer)).toEqual([{ currency: 'GBP', amount: 100 }]);
  });

  it('a declined card refund leaves the credit given back; a later POST /v1/invoices/:id/refund keeps the tax share cumulative', async () => {
    // Credit 300, card 700, as in the first case (AUD).
    const { customer, method } = await customerWithCredit('AUD', 1960);
    const sub = await subscribe('AUD', customer, method);
    expect(sub.invoice).toMatchObject({ credit_applied: 300, amount_paid: 700 });
    const before = await ledgerIn(app, 'AUD');
    // Stripe answers the refund `failed` (https://docs.stripe.com/api/refunds/object#refund_object-status,
    // `failure_reason` expired_or_canceled_card): the fixture refund with that status.
    const declined = nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .reply(200, {
        ...stripeFixture('api.refund.succeeded.openapi-fixture.json'),
        id: 're_cancel_declined',
        status: 'failed',
        failure_reason: 'expired_or_canceled_card',
      });
    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(declined.isDone()).toBe(true);
    // The credit part committed with the cancellation: 300 back, tax round(200 × 300 / 1000) = 60.
    expect(cancelled.body).toMatchObject({
      status: 'CANCELLED',
      refund: { status: 'failed', amount: 700 },
      credit_note: { subtotal: 240, tax: 60, total: 300 },
    });
    expect(await invoiceOf(sub.invoice.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 0,
      credit_returned: 300,
    });
    // The card's 700 refunded by hand later: the notes then give back 700 + 300 = 1000, so
    // round(200 × 1000 / 1000) = 200 tax in all; this note holds 200 − 60 = 140.
    const stripe = stripeRefundSucceeds('re_later_by_hand');
    const later = await app.api('POST', `/v1/invoices/${sub.invoice.id}/refund`, {});
    expect(later.body).toMatchObject({ status: 'succeeded', amount: 700 });
    expect(stripe.isDone()).toBe(true);
    const invoice = await invoiceOf(sub.invoice.id);
    expect(invoice).toMatchObject({ status: 'REFUNDED', amount_refunded: 700, credit_returned: 300 });
    expect(notesOf(invoice)).toEqual([
      { refund: null, subtotal: 240, tax: 60, total: 300 },
      { refund: 'refund', subtotal: 560, tax: 140, total: 700 },
    ]);
    const after = await ledgerIn(app, 'AUD');
    const moved = (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
    expect([moved('refunds'), moved('tax_payable')]).toEqual([800, 200]);
    expect([moved('gateway_clearing:stripe'), moved('customer_credit:customer')]).toEqual([-700, -300]);
  });

  it('an invoice paid wholly by credit gives the credit back, with no gateway call (no longer 409 nothing_to_refund)', async () => {
    // Credit: (4200 − 1000) × 7/28 = 800 net + 200 tax = 1000: the first invoice is PAID at
    // finalization by credit alone; nothing goes to Stripe (nock has no charge or refund to answer).
    const { customer, method } = await customerWithCredit('CHF', 4200);
    const plan = await flatPlan(app, 'CHF', 800);
    const created = await app.api('POST', '/v1/subscriptions', { customer, plan, payment_method: method });
    const first = (await app.api('GET', `/v1/invoices/${created.body.latest_invoice}`)).body;
    expect(first).toMatchObject({ status: 'PAID', total: 1000, credit_applied: 1000, amount_paid: 0 });
    const before = await ledgerIn(app, 'CHF');

    const cancelled = await app.api('POST', `/v1/subscriptions/${created.body.id}/cancel`, {
      refund_type: 'full',
    });
    expect(cancelled.status).toBe(200);
    // All 1000 back as credit: tax round(200 × 1000 / 1000) = 200.
    expect(cancelled.body).toMatchObject({
      status: 'CANCELLED',
      refund: null,
      credit_note: { refund: null, subtotal: 800, tax: 200, total: 1000 },
    });
    expect(await invoiceOf(first.id)).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 0,
      credit_returned: 1000,
    });
    const after = await ledgerIn(app, 'CHF');
    const moved = (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
    expect(moved('refunds')).toBe(800);
    expect(moved('tax_payable')).toBe(200);
    expect(moved('customer_credit:customer')).toBe(-1000);
    expect(moved('gateway_clearing:stripe')).toBe(0);
    expect(await creditOf(customer)).toEqual([{ currency: 'CHF', amount: 1000 }]);
    expect(
      await db().selectFrom('refunds').select('id').where('invoice_id', '=', first.id).execute(),
    ).toEqual([]);
  });

  /** `cancelSubscriptionWithRefund` of `id` at `now` with the app's gateways. */
  const cancelAt = (id: string, options: Parameters<typeof cancelSubscriptionWithRefund>[5], now: Date) =>
    cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      id,
      options,
      now,
    );

  it('money given back by hand counts against what a cancellation owes: the credit is not handed out on top', async () => {
    // Credit 300, card 700 (SEK); the period 2027-01-01 → 2027-02-01 (31 days).
    const { customer, method } = await customerWithCredit('SEK', 1960);
    const sub = await subscribe('SEK', customer, method, d('2027-01-01T00:00:00Z'));
    expect(sub.invoice).toMatchObject({ status: 'PAID', credit_applied: 300, amount_paid: 700 });
    // All 700 of the card refunded by hand: PARTIALLY_REFUNDED, the 300 of credit it took being kept
    // (before: REFUNDED, as if nothing were kept; `givenBackStatus`).
    const byHand = stripeRefundSucceeds('re_by_hand_before_cancel');
    expect((await app.api('POST', `/v1/invoices/${sub.invoice.id}/refund`, {})).body).toMatchObject({
      status: 'succeeded',
      amount: 700,
    });
    expect(byHand.isDone()).toBe(true);
    const before = await ledgerIn(app, 'SEK');
    // `prorate` at half (2027-01-16T12:00Z): 500 owed, 700 given back already, so nothing more; the
    // 300 credit stays spent (before: given back on top, 1000 back for half a period).
    const half = await cancelAt(sub.id, { when: 'now', refundType: 'prorate' }, d('2027-01-16T12:00:00Z'));
    expect(half).toMatchObject({ refunds: [], creditNotes: [], subscription: { status: 'CANCELLED' } });
    expect(await invoiceOf(sub.invoice.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 700,
      credit_returned: 0,
    });
    expect(await ledgerIn(app, 'SEK')).toEqual(before);
    expect(await creditOf(customer)).toEqual([]);
  });

  it('an invoice refunded whole in cash, then part of its credit given back by a cancellation, is PARTIALLY_REFUNDED (it kept the rest of the credit)', async () => {
    // Credit 300, card 700 (DKK), 2027-01-01 → 2027-02-01 (31 days); the card's 700 refunded by hand.
    const { customer, method } = await customerWithCredit('DKK', 1960);
    const sub = await subscribe('DKK', customer, method, d('2027-01-01T00:00:00Z'));
    const byHand = stripeRefundSucceeds('re_by_hand_then_credit');
    await app.api('POST', `/v1/invoices/${sub.invoice.id}/refund`, {});
    expect(byHand.isDone()).toBe(true);
    // `prorate` on 2027-01-04 (28 of 31 days unused): round_half_up(1000 × 28 / 31) = 903 owed, 700
    // given back already: 203 of the 300 credit. The notes then give back 903: round(200 × 903 /
    // 1000) = 181 tax in all, the card's note holds 140, so this one 41 (and 162 revenue).
    const result = await cancelAt(sub.id, { when: 'now', refundType: 'prorate' }, d('2027-01-04T00:00:00Z'));
    expect(result).toMatchObject({ refunds: [], creditNotes: [{ subtotal: 162n, tax: 41n, total: 203n }] });
    // 300 − 203 = 97 of the credit kept for the 3 days used: not REFUNDED (before: REFUNDED from
    // the cash refund on, `givenBackStatus` counting credit not returned as given back).
    expect(await invoiceOf(sub.invoice.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 700,
      credit_returned: 203,
    });
    expect(await creditOf(customer)).toEqual([{ currency: 'DKK', amount: 203 }]);
  });

  it('a cancellation now after a scheduled one with a refund gives back only the difference; a prorated plan change meanwhile is refused', async () => {
    // Credit: (4200 − 1000) × 7/28 = 800 net + 200 tax = 1000 (NOK): the first invoice
    // (2027-01-01 → 2027-02-01, 31 days) is paid by credit alone.
    const { customer } = await customerWithCredit('NOK', 4200);
    const plan = await flatPlan(app, 'NOK', 800);
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer, planId: plan },
      d('2027-01-01T00:00:00Z'),
    );
    const { id: firstId } = await db()
      .selectFrom('invoices')
      .select('id')
      .where('subscription_id', '=', subscription.id)
      .executeTakeFirstOrThrow();
    const first = (await app.api('GET', `/v1/invoices/${firstId}`)).body;
    expect(first).toMatchObject({ status: 'PAID', total: 1000, credit_applied: 1000, amount_paid: 0 });
    // Scheduled on 2027-01-02 for 2027-01-16T12:00Z (15.5 of the 31 days unused: half) with
    // `prorate`: round_half_up(1000 / 2) = 500 back as credit at once, tax round(200 × 500 / 1000) = 100.
    const scheduled = await cancelAt(
      subscription.id,
      { when: 'date', cancelAt: d('2027-01-16T12:00:00Z'), refundType: 'prorate' },
      d('2027-01-02T00:00:00Z'),
    );
    expect(scheduled.creditNotes).toMatchObject([{ subtotal: 400n, tax: 100n, total: 500n }]);
    expect(await creditOf(customer)).toEqual([{ currency: 'NOK', amount: 500 }]);
    // A prorated downgrade on 2027-01-05 would credit the unused time a second time: refused, and
    // nothing written; without proration it would be allowed.
    const cheaper = await flatPlan(app, 'NOK', 400);
    await expect(
      changeSubscription(
        db(),
        'system',
        subscription.id,
        { planId: cheaper },
        d('2027-01-05T00:00:00Z'),
        false,
      ),
    ).rejects.toMatchObject({ code: 'cancellation_scheduled' });
    expect(await creditOf(customer)).toEqual([{ currency: 'NOK', amount: 500 }]);
    // Cancelled now on 2027-01-08T00:00Z (24 of 31 days unused) with `prorate`:
    // round_half_up(1000 × 24 / 31) = 774 owed, 500 given already: 274 more (not all 500 left);
    // the notes then give back 774, round(200 × 774 / 1000) = 155 tax in all, so 155 − 100 = 55.
    const now = await cancelAt(
      subscription.id,
      { when: 'now', refundType: 'prorate' },
      d('2027-01-08T00:00:00Z'),
    );
    expect(now.creditNotes).toMatchObject([{ subtotal: 219n, tax: 55n, total: 274n }]);
    expect(await invoiceOf(first.id)).toMatchObject({ status: 'PARTIALLY_REFUNDED', credit_returned: 774 });
    expect(await creditOf(customer)).toEqual([{ currency: 'NOK', amount: 774 }]);
  });

  it.each([
    // PLN (2 decimals): credit (4200 − 1000) × 7/28 = 800 net + 200 tax = 1000; fee 800 + 25% = 1000; 2 a call.
    { currency: 'PLN', big: 4200, fee: 800, perCall: 2 },
    // JPY (no decimals), ten times as much: credit (33000 − 1000) × 7/28 = 8000 + 2000 tax = 10000;
    // fee 8000 + 25% = 10000; 20 a call.
    { currency: 'JPY', big: 33000, fee: 8000, perCall: 20 },
  ])(
    'cancel now ($currency): the final usage invoice uses the credit the cancellation gave back, not the card',
    async ({ currency, big, fee, perCall }) => {
      const { customer, method } = await customerWithCredit(currency, big);
      const credit = (((big - 1000) * 7) / 28) * 1.25; // 1000 PLN, 10000 JPY
      const plan = await insertPlan(db(), {
        name: `Metered ${fee}`,
        currency,
        price: { model: 'FLAT_FEE', amount: fee },
        metered: [
          { code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: perCall } },
        ],
        taxRatePpm: 250_000,
      });
      // Period 2027-01-01 → 2027-02-01 (31 days): its invoice (fee × 1.25 = the credit) paid by credit whole.
      const { subscription } = await createSubscription(
        db(),
        'system',
        { customerId: customer, planId: plan, paymentMethodId: method },
        d('2027-01-01T00:00:00Z'),
      );
      const first = await db()
        .selectFrom('invoices')
        .select(['id', 'status', 'total', 'credit_applied'])
        .where('subscription_id', '=', subscription.id)
        .executeTakeFirstOrThrow();
      expect(first).toMatchObject({ status: 'PAID', total: BigInt(credit), credit_applied: BigInt(credit) });
      expect(await creditOf(customer)).toEqual([]);
      await recordUsageEvent(
        db(),
        'system',
        {
          eventId: `calls-${currency}`,
          subscriptionId: subscription.id,
          code: 'api_calls',
          value: 30n,
          timestamp: d('2027-01-05T00:00:00Z'),
        },
        d('2027-01-05T00:00:00Z'),
      );
      // `prorate` at 2027-01-16T12:00Z (half the period unused): round_half_up(credit / 2) back as
      // credit = 500 PLN / 5000 JPY. The final invoice: 30 calls × perCall = 60 PLN / 600 JPY + 25% tax =
      // 75 PLN / 750 JPY, taken from that credit: 425 PLN / 4250 JPY left, nothing for the card.
      const half = credit / 2;
      const usage = 30 * perCall * 1.25;
      const result = await cancelAt(
        subscription.id,
        { when: 'now', refundType: 'prorate' },
        d('2027-01-16T12:00:00Z'),
      );
      expect(result).toMatchObject({ refunds: [], creditNotes: [{ total: BigInt(half) }] });
      const final = await db()
        .selectFrom('invoices')
        .select(['status', 'total', 'credit_applied', 'amount_due', 'charge_at'])
        .where('subscription_id', '=', subscription.id)
        .where('id', '!=', first.id)
        .execute();
      expect(final).toEqual([
        {
          status: 'PAID',
          total: BigInt(usage),
          credit_applied: BigInt(usage),
          amount_due: 0n,
          charge_at: null,
        },
      ]);
      expect(await creditOf(customer)).toEqual([{ currency, amount: half - usage }]);
    },
  );

  it('a settled term whose later periods the credit paid refuses a refund (409 later_periods_paid), changing nothing; their credit back by hand as it says, the refund goes through', async () => {
    // Credit: (10600 − 1000) × 7/28 = 2400 net + 600 tax = 3000 (CZK): the term's three periods of
    // 1000 are each paid by credit at finalization, the first at creation, the others by settle.
    const { customer } = await customerWithCredit('CZK', 10600);
    const plan = await flatPlan(app, 'CZK', 800);
    const sub = (await app.api('POST', '/v1/subscriptions', { customer, plan, repeat: 3 })).body;
    const settled = await app.api('POST', `/v1/subscriptions/${sub.id}/settle`);
    expect(settled.body.invoiced).toHaveLength(2);
    const term = await db()
      .selectFrom('invoices')
      .select(['id', 'status', 'credit_applied', 'amount_paid'])
      .where('subscription_id', '=', sub.id)
      .orderBy('period_index')
      .execute();
    expect(term.map((i) => [i.status, i.credit_applied, i.amount_paid])).toEqual([
      ['PAID', 1000n, 0n],
      ['PAID', 1000n, 0n],
      ['PAID', 1000n, 0n],
    ]);
    expect(await creditOf(customer)).toEqual([]);
    const before = await ledgerIn(app, 'CZK');
    // A refund of the current period only would keep the 2000 of credit paid for the two later ones.
    const refused = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('later_periods_paid');
    expect(refused.body.error.message).toContain(term[1]!.id);
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}`)).body.status).toBe('ACTIVE');
    expect(await ledgerIn(app, 'CZK')).toEqual(before);
    expect(await creditOf(customer)).toEqual([]);
    // As the refusal says, the later periods' credit back by hand: 1000 each (no cancellation refund
    // reaches them; before, 409 period_invoice_credit while the subscription ran, so only a
    // cancellation with refund_type none was left, keeping the 2000). The current period's stays the
    // cancellation's: 409.
    expect(refused.body.error.message).toContain('POST /v1/invoices/:id/credit/return');
    const returnCredit = (id: string) => app.api('POST', `/v1/invoices/${id}/credit/return`, {});
    expect((await returnCredit(term[0]!.id)).body.error?.code).toBe('period_invoice_credit');
    for (const later of [term[1]!, term[2]!]) {
      const back = await returnCredit(later.id);
      expect({ status: back.status, total: back.body.credit_note?.total }).toEqual({
        status: 201,
        total: 1000,
      });
    }
    // Then the refund covers the current period: its 1000 of credit back. 3000 back in all.
    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(cancelled.status).toBe(200);
    expect(await creditOf(customer)).toEqual([{ currency: 'CZK', amount: 3000 }]);
  });

  it('a refused cancellation changes nothing: no credit given back, no note, no entry', async () => {
    // Credit 300 as in the first case (USD); 700 by card.
    const { customer, method } = await customerWithCredit('USD', 1960);
    const sub = await subscribe('USD', customer, method);
    expect(sub.invoice).toMatchObject({ status: 'PAID', credit_applied: 300, amount_paid: 700 });
    const before = await ledgerIn(app, 'USD');
    const unchanged = async () => {
      expect(await invoiceOf(sub.invoice.id)).toMatchObject({
        status: 'PAID',
        amount_refunded: 0,
        credit_returned: 0,
        credit_notes: [],
      });
      expect((await app.api('GET', `/v1/subscriptions/${sub.id}`)).body).toMatchObject({
        status: 'ACTIVE',
        cancel_at: null,
      });
      expect(await ledgerIn(app, 'USD')).toEqual(before);
      expect(await creditOf(customer)).toEqual([]);
    };
    // Refused before anything is computed: a refund needs the cancellation within the current period.
    const later = new Date(Date.now() + 45 * 86_400_000).toISOString();
    const refused = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, {
      when: 'date',
      cancel_at: later,
      refund_type: 'full',
    });
    expect(refused.status).toBe(422);
    await unchanged();
    // Refused after the credit was given back in the unit: the cash refund's gateway is not
    // configured (409), so the credit note, the credit entry and the cancellation roll back with it.
    await expect(
      cancelSubscriptionWithRefund(
        db(),
        'system',
        app.runtime.boss,
        { registry: new Map(), accounts: app.runtime.accounts },
        sub.id,
        { when: 'now', refundType: 'full' },
        new Date(),
      ),
    ).rejects.toMatchObject({ code: 'gateway_not_configured' });
    await unchanged();
  });

  /** Sets add-on `addOn` of subscription `id` to 1 at `at` (its proration invoice), then charges that invoice through Stripe. */
  async function addOnPaidByCard(id: string, addOn: string, at: Date) {
    const { invoice } = await setSubscriptionAddOn(db(), 'system', id, { addOnId: addOn, quantity: 1 }, at);
    const stripe = stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${invoice!.id}/charge`, {});
    expect(charged.status).toBe(200);
    return { invoice: charged.body.invoice, stripe };
  }

  it('JPY (no minor unit), prorate: the add-on invoice paid by card gives back its unused share through its own payment, as the period invoice (before: 422)', async () => {
    // The period 2027-02-01 → 2027-03-01 (28 days): 1000 (800 + 200 tax) by card.
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribe('JPY', customer.id, method!.id, d('2027-02-01T00:00:00Z'));
    expect(sub.invoice).toMatchObject({ status: 'PAID', amount_paid: 1000 });
    // Seats 2000 a month, added Feb 8 (21 of 28 days left): 2000 × 21/28 = 1500, tax 375: 1875 by card.
    const seats = (await app.api('POST', '/v1/add-ons', { name: 'Seats', currency: 'JPY', amount: 2000 }))
      .body;
    const addOn = await addOnPaidByCard(sub.id, seats.id, d('2027-02-08T00:00:00Z'));
    expect(addOn.stripe.seen[0]!.params.get('amount')).toBe('1875');
    expect(addOn.invoice).toMatchObject({ status: 'PAID', total: 1875, tax: 375, amount_paid: 1875 });
    const before = await ledgerIn(app, 'JPY');

    // Cancelled now on Feb 16 with `prorate`, 13 days unused: the period invoice (28 days) gives back
    // round_half_up(1000 × 13/28) = 464 (464.29), the add-on's (Feb 8 → Mar 1, 21 days)
    // round_half_up(1875 × 13/21) = 1161 (1160.71), each to its own card payment, each its own refund.
    const stripe = [
      stripeRefundSucceeds('re_cancel_jpy_period'),
      stripeRefundSucceeds('re_cancel_jpy_addon'),
    ];
    const result = await cancelAt(sub.id, { when: 'now', refundType: 'prorate' }, d('2027-02-16T00:00:00Z'));
    expect(stripe.map((s) => s.isDone())).toEqual([true, true]);
    expect(result.refunds.map((r) => [r.invoice_id, r.amount, r.status])).toEqual([
      [sub.invoice.id, 464n, 'succeeded'],
      [addOn.invoice.id, 1161n, 'succeeded'],
    ]);
    expect(result.creditNotes).toEqual([]);
    // Notes: round(200 × 464/1000) = 93 tax (371 net); round(375 × 1161/1875) = 232 tax (929 net).
    const period = await invoiceOf(sub.invoice.id);
    const addOnAfter = await invoiceOf(addOn.invoice.id);
    expect(period).toMatchObject({ status: 'PARTIALLY_REFUNDED', amount_refunded: 464 });
    expect(addOnAfter).toMatchObject({ status: 'PARTIALLY_REFUNDED', amount_refunded: 1161 });
    expect([notesOf(period), notesOf(addOnAfter)]).toEqual([
      [{ refund: 'refund', subtotal: 371, tax: 93, total: 464 }],
      [{ refund: 'refund', subtotal: 929, tax: 232, total: 1161 }],
    ]);
    // The add-on keeps 1500 − 929 = 571 net for 8 days (2000 × 8/28 = 571.43) and 375 − 232 = 143 tax.
    const after = await ledgerIn(app, 'JPY');
    const moved = (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
    expect(moved('refunds')).toBe(371 + 929);
    expect(moved('tax_payable')).toBe(93 + 232);
    expect(moved('gateway_clearing:stripe')).toBe(-(464 + 1161));
    expect([moved('receivable:customer'), moved('revenue')]).toEqual([0, 0]);
    expect(Object.values(after).reduce((sum, balance) => sum + balance, 0)).toBe(0);
  });

  it('EUR, full over HTTP: the add-on invoice paid partly by customer credit gives its card back and its credit back as credit; the answer lists both credit notes', async () => {
    // Credit (4840 − 1000) × 7/28 = 960 + 240 tax = 1200: the period invoice (1000) takes 1000 of it.
    const { customer, method } = await customerWithCredit('EUR', 4840);
    const plan = await flatPlan(app, 'EUR', 800);
    const created = await app.api('POST', '/v1/subscriptions', { customer, plan, payment_method: method });
    const period = (await app.api('GET', `/v1/invoices/${created.body.latest_invoice}`)).body;
    expect(period).toMatchObject({ status: 'PAID', total: 1000, credit_applied: 1000, amount_paid: 0 });
    // Storage 2000 a month with `full` (the whole period, whenever set): 2000 + 500 tax = 2500; the
    // credit's last 200 applied, 2300 charged to the card.
    const storage = (await app.api('POST', '/v1/add-ons', { name: 'Storage', currency: 'EUR', amount: 2000 }))
      .body;
    const added = await app.api('POST', `/v1/subscriptions/${created.body.id}/add-ons`, {
      add_on: storage.id,
      quantity: 1,
      proration: 'full',
    });
    expect((await app.api('GET', `/v1/invoices/${added.body.invoice}`)).body).toMatchObject({
      status: 'OPEN',
      total: 2500,
      tax: 500,
      credit_applied: 200,
      amount_due: 2300,
    });
    const charge = stripeChargeSucceeds();
    await app.api('POST', `/v1/invoices/${added.body.invoice}/charge`, {});
    expect(charge.seen[0]!.params.get('amount')).toBe('2300');
    expect(await creditOf(customer)).toEqual([]);
    const before = await ledgerIn(app, 'EUR');

    const stripe = stripeRefundSucceeds('re_cancel_eur_addon');
    const cancelled = await app.api('POST', `/v1/subscriptions/${created.body.id}/cancel`, {
      refund_type: 'full',
    });
    expect(cancelled.status).toBe(200);
    expect(stripe.isDone()).toBe(true);
    // Everything back: the period invoice's 1000 as credit (800 + 200 tax); the add-on invoice's
    // 2300 to the card and 200 as credit. The credit's note comes first: round(500 × 200/2500) =
    // 40 tax (160 net); the card's brings the notes to round(500 × 2500/2500) = 500, so 460 (1840 net).
    expect(cancelled.body).toMatchObject({
      status: 'CANCELLED',
      refund: { status: 'succeeded', amount: 2300, invoice: added.body.invoice },
      refunds: [{ amount: 2300, invoice: added.body.invoice }],
      credit_note: { invoice: period.id, subtotal: 800, tax: 200, total: 1000 },
      credit_notes: [
        { invoice: period.id, subtotal: 800, tax: 200, total: 1000 },
        { invoice: added.body.invoice, refund: null, subtotal: 160, tax: 40, total: 200 },
      ],
    });
    expect(cancelled.body.refunds).toHaveLength(1);
    const addOn = await invoiceOf(added.body.invoice);
    expect(addOn).toMatchObject({ status: 'REFUNDED', amount_refunded: 2300, credit_returned: 200 });
    expect(notesOf(addOn)).toEqual([
      { refund: null, subtotal: 160, tax: 40, total: 200 },
      { refund: 'refund', subtotal: 1840, tax: 460, total: 2300 },
    ]);
    expect(await invoiceOf(period.id)).toMatchObject({ status: 'REFUNDED', credit_returned: 1000 });
    // Refunds 800 + 160 + 1840 = all 2800 of revenue, tax payable 200 + 40 + 460 = all 700 of tax;
    // Stripe's clearing 2300 back out and the customer's credit 1200 back.
    const after = await ledgerIn(app, 'EUR');
    const moved = (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
    expect(moved('refunds')).toBe(2800);
    expect(moved('tax_payable')).toBe(700);
    expect(moved('gateway_clearing:stripe')).toBe(-2300);
    expect(moved('customer_credit:customer')).toBe(-1200);
    expect(moved('receivable:customer')).toBe(0);
    expect(await creditOf(customer)).toEqual([{ currency: 'EUR', amount: 1200 }]);
    const activity = (
      await app.api('GET', `/v1/activities?resource=${created.body.id}&limit=100`)
    ).body.data.find((a: { action: string }) => a.action === 'subscription.cancelled');
    expect(activity.data).toMatchObject({
      refund_amount: '2300',
      credit_amount: '1200',
      refunded_invoices: [period.id, added.body.invoice],
    });
  });
});
