import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { STRIPE_API_BASE, startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, ledgerIn } from '../support/collection.ts';
import { capturedInPart, openInvoice, paidStripeInvoice, stripeChargeSucceeds } from '../support/flow.ts';
import { insertPlan } from '../support/plans.ts';
import { stripeFixture } from '../support/stripe.ts';

const d = (iso: string) => new Date(iso);

/**
 * An invoice paid by two gateway payments: a first charge captured only in part (a partial capture,
 * as reconcile/apply.ts records one: Authorize.Net's `settleAmount` below the charge), then a second
 * charge of the rest. Its cash goes back through both: by hand one payment per request (the one
 * `transaction` names, else the newest whose room covers the amount; 422 on `amount` listing each
 * payment's room when none can), and by a cancellation's refund split over them newest first, one
 * refund each. Before, only the latest payment was ever refunded: the second request of a full
 * refund by hand answered 422 (nothing left on that payment), `transaction` was an unknown field, and
 * the cancellation answered 409 `refund_exceeds_payment`.
 *
 * The Stripe card stands in for the gateway that refunds (its PaymentIntents capture whole; the
 * partial capture is recorded as the reconcile path records it). Amounts in minor units: EUR has 2
 * decimals, JPY none, KWD 3 (Stripe takes KWD amounts in multiples of 10).
 */
describe('POST /v1/invoices/:id/refund and cancellation refunds on an invoice paid by two gateway payments', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());

  const db = () => app.runtime.db;
  const invoiceOf = async (id: string) => (await app.api('GET', `/v1/invoices/${id}`)).body;

  /**
   * Pays OPEN invoice `invoiceId` (`due` minor units due) in two gateway payments: Stripe answers the
   * first PaymentIntent `processing` (the transaction stays pending), which then succeeds capturing
   * only `first` of it; the invoice stays OPEN with the rest due, which a second charge pays (PAID).
   * @returns the two transactions' ids and PaymentIntents, oldest first
   */
  async function paidInTwo(invoiceId: string, due: number, first: number) {
    const paidBefore = (await invoiceOf(invoiceId)).amount_paid as number;
    const intents = [`pi_first_${invoiceId.slice(4)}`, `pi_second_${invoiceId.slice(4)}`] as const;
    const row = await capturedInPart(app, invoiceId, first, intents[0]);
    expect(row.amount).toBe(BigInt(due));
    expect(await invoiceOf(invoiceId)).toMatchObject({
      status: 'OPEN',
      amount_paid: paidBefore + first,
      amount_due: due - first,
    });
    const second = stripeChargeSucceeds(intents[1]);
    const rest = await app.api('POST', `/v1/invoices/${invoiceId}/charge`, {});
    expect(second.seen.map((s) => s.params.get('amount'))).toEqual([String(due - first)]);
    expect(rest.body.invoice).toMatchObject({ status: 'PAID', amount_paid: paidBefore + due, amount_due: 0 });
    return {
      first: { id: row.id as string, intent: intents[0] },
      second: { id: rest.body.transaction.id as string, intent: intents[1] },
    };
  }

  /**
   * Stripe answers `times` refunds succeeded (the real fixture refund), echoing amount, currency and
   * PaymentIntent. @returns the PaymentIntent and amount of each refund asked for, in order
   */
  function stripeRefunds(times: number) {
    const seen: { intent: string; amount: number }[] = [];
    const refund = stripeFixture('api.refund.succeeded.openapi-fixture.json');
    const scope = nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .times(times)
      .reply(async (request: Request) => {
        expect(request.headers.get('idempotency-key')).toMatch(/^re_/);
        const p = new URLSearchParams(await request.text());
        seen.push({ intent: p.get('payment_intent') ?? '', amount: Number(p.get('amount')) });
        return [
          200,
          {
            ...refund,
            id: `re_stripe_${seen.length}_${p.get('payment_intent')}`,
            amount: Number(p.get('amount')),
            currency: p.get('currency') ?? refund.currency,
            payment_intent: p.get('payment_intent'),
            metadata: { billhook_reference: p.get('metadata[billhook_reference]') },
          },
        ];
      });
    return { scope, seen };
  }

  /** What a refused request must leave as it was: the invoice, its refunds and credit notes, the journal and `currency`'s balances. */
  async function snapshot(invoiceId: string, currency: string) {
    const refunds = await db()
      .selectFrom('refunds')
      .innerJoin('transactions', 'transactions.id', 'refunds.transaction_id')
      .selectAll('refunds')
      .where('transactions.invoice_id', '=', invoiceId)
      .orderBy('refunds.id')
      .execute();
    const notes = await db()
      .selectFrom('credit_notes')
      .selectAll()
      .where('invoice_id', '=', invoiceId)
      .execute();
    const entries = await db()
      .selectFrom('journal_entries')
      .select((eb) => eb.fn.countAll<string>().as('count'))
      .executeTakeFirstOrThrow();
    return {
      invoice: await invoiceOf(invoiceId),
      refunds,
      notes,
      entries: entries.count,
      ledger: await ledgerIn(app, currency),
    };
  }

  /** What `currency`'s balances moved from `before` to now, per account code. */
  async function movedSince(before: Record<string, number>, currency: string) {
    const after = await ledgerIn(app, currency);
    expect(
      Object.values(after).reduce((sum, balance) => sum + balance, 0),
      'ledger balanced',
    ).toBe(0);
    return (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
  }

  it('EUR: refunded whole by hand in two requests, the newest payment first; the 422s change nothing', async () => {
    // 100.00 EUR: 60.00 captured by the first charge, 40.00 by the second.
    const { invoice } = await openInvoice(app, { amount: 10000, currency: 'eur' });
    const paid = await paidInTwo(invoice.id, 10000, 6000);
    const other = await paidStripeInvoice(app, { amount: 500, currency: 'eur' });
    const before = await snapshot(invoice.id, 'EUR');
    const refund = (body: object) => app.api('POST', `/v1/invoices/${invoice.id}/refund`, body);

    // 70.00: more than either payment can take (40.00 and 60.00).
    const tooBig = await refund({ amount: 7000 });
    expect(tooBig.status).toBe(422);
    expect(tooBig.body.error.fields).toEqual({
      amount: `no single payment can refund 7000 EUR (${paid.second.id} can refund 4000, ${paid.first.id} can refund 6000; 10000 in all): one request refunds one payment; POST /v1/invoices/${invoice.id}/refund once per payment, naming it: {"transaction": "${paid.second.id}"} (up to 4000), {"transaction": "${paid.first.id}"} (up to 6000)`,
    });
    // No amount: the whole 100.00 refundable, which no single payment holds.
    const whole = await refund({});
    expect(whole.status).toBe(422);
    expect(whole.body.error.fields.amount).toMatch(/^no single payment can refund 10000 EUR/);
    // Beyond everything paid.
    const beyond = await refund({ amount: 10001 });
    expect(beyond.status).toBe(422);
    expect(beyond.body.error.fields.amount).toMatch(/^at most 10000 EUR can be refunded, across 2 payments/);
    // A payment that does not exist, one of another invoice, and an id of another kind.
    for (const transaction of ['txn_nosuchpayment', other.transaction.id]) {
      const named = await refund({ transaction, amount: 100 });
      expect(named.status).toBe(422);
      expect(named.body.error.fields).toEqual({
        transaction: `${transaction} is not a succeeded gateway payment of invoice ${invoice.id}`,
      });
    }
    const malformed = await refund({ transaction: 're_notapayment' });
    expect(malformed.status).toBe(422);
    expect(Object.keys(malformed.body.error.fields)).toEqual(['transaction']);
    expect(await snapshot(invoice.id, 'EUR')).toEqual(before);

    const stripe = stripeRefunds(2);
    // 40.00: the newest payment's room covers it.
    const newest = await refund({ amount: 4000 });
    expect(newest.status).toBe(201);
    expect(newest.body).toMatchObject({ status: 'succeeded', amount: 4000, transaction: paid.second.id });
    // No amount: all still refundable (60.00), which only the first payment holds now.
    const rest = await refund({});
    expect(rest.status).toBe(201);
    expect(rest.body).toMatchObject({ status: 'succeeded', amount: 6000, transaction: paid.first.id });
    expect(stripe.seen).toEqual([
      { intent: paid.second.intent, amount: 4000 },
      { intent: paid.first.intent, amount: 6000 },
    ]);
    expect(await invoiceOf(invoice.id)).toMatchObject({
      status: 'REFUNDED',
      amount_paid: 10000,
      amount_refunded: 10000,
    });
    // No tax on this invoice: each refund debits refunds and credits clearing by its amount.
    const moved = await movedSince(before.ledger, 'EUR');
    expect(moved('refunds')).toBe(10000);
    expect(moved('gateway_clearing:stripe')).toBe(-10000);
    expect(moved('receivable:customer')).toBe(0);
    // Nothing left anywhere.
    const again = await refund({});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('invoice_not_paid');
  });

  it('JPY: a payment named by transaction, then the other, then what is left: refunded whole in three requests', async () => {
    // 10000 JPY (no decimals): 7000 captured by the first charge, 3000 by the second.
    const { invoice } = await openInvoice(app, { amount: 10000, currency: 'jpy' });
    const paid = await paidInTwo(invoice.id, 10000, 7000);
    const before = await snapshot(invoice.id, 'JPY');
    const refund = (body: object) => app.api('POST', `/v1/invoices/${invoice.id}/refund`, body);
    const stripe = stripeRefunds(3);

    // The older payment, named: 5000 of its 7000.
    const named = await refund({ transaction: paid.first.id, amount: 5000 });
    expect(named.status).toBe(201);
    expect(named.body).toMatchObject({ status: 'succeeded', amount: 5000, transaction: paid.first.id });
    // 4000 fits neither 3000 (newest) nor 7000 − 5000 = 2000.
    const split = await refund({ amount: 4000 });
    expect(split.status).toBe(422);
    expect(split.body.error.fields).toEqual({
      amount: `no single payment can refund 4000 JPY (${paid.second.id} can refund 3000, ${paid.first.id} can refund 2000; 5000 in all): one request refunds one payment; POST /v1/invoices/${invoice.id}/refund once per payment, naming it: {"transaction": "${paid.second.id}"} (up to 3000), {"transaction": "${paid.first.id}"} (up to 2000)`,
    });
    // The newest, named, no amount: all of its 3000.
    const second = await refund({ transaction: paid.second.id });
    expect(second.body).toMatchObject({ status: 'succeeded', amount: 3000, transaction: paid.second.id });
    // Nothing left on it: the single payment's own 422.
    const empty = await refund({ transaction: paid.second.id, amount: 1 });
    expect(empty.status).toBe(422);
    expect(empty.body.error.fields).toEqual({ amount: 'at most 0 can be refunded (paid 3000 JPY)' });
    // No body: the 2000 left, all on the first payment.
    const last = await refund({});
    expect(last.body).toMatchObject({ status: 'succeeded', amount: 2000, transaction: paid.first.id });
    expect(stripe.seen).toEqual([
      { intent: paid.first.intent, amount: 5000 },
      { intent: paid.second.intent, amount: 3000 },
      { intent: paid.first.intent, amount: 2000 },
    ]);
    expect(await invoiceOf(invoice.id)).toMatchObject({ status: 'REFUNDED', amount_refunded: 10000 });
    const moved = await movedSince(before.ledger, 'JPY');
    expect(moved('refunds')).toBe(10000);
    expect(moved('gateway_clearing:stripe')).toBe(-10000);
  });

  /** A plan of `fee` + 25% tax in `currency`. */
  const flat = (currency: string, fee: number) =>
    insertPlan(db(), {
      name: `Flat ${fee}`,
      currency,
      price: { model: 'FLAT_FEE', amount: fee },
      taxRatePpm: 250_000,
    });

  it('EUR cancellation, refund_type full: two refunds, the newest payment first, each up to its room', async () => {
    // 800 + 25% tax = 1000 EUR (200 tax): 600 captured by the first charge, 400 by the second.
    const { customer, method } = await customerWith(app, { stripe: true });
    const created = await app.api('POST', '/v1/subscriptions', {
      customer: customer.id,
      plan: await flat('EUR', 800),
      payment_method: method!.id,
    });
    const invoiceId = created.body.latest_invoice as string;
    const paid = await paidInTwo(invoiceId, 1000, 600);
    const before = await ledgerIn(app, 'EUR');

    const stripe = stripeRefunds(2);
    const cancelled = await app.api('POST', `/v1/subscriptions/${created.body.id}/cancel`, {
      refund_type: 'full',
    });
    expect(cancelled.status).toBe(200);
    // Owed: all 1000. The newest payment can give back 400, the first the other 600.
    expect(stripe.seen).toEqual([
      { intent: paid.second.intent, amount: 400 },
      { intent: paid.first.intent, amount: 600 },
    ]);
    const first = { status: 'succeeded', amount: 400, transaction: paid.second.id, invoice: invoiceId };
    expect(cancelled.body).toMatchObject({
      status: 'CANCELLED',
      refund: first,
      refunds: [first, { status: 'succeeded', amount: 600, transaction: paid.first.id, invoice: invoiceId }],
      credit_note: null,
    });
    expect(await invoiceOf(invoiceId)).toMatchObject({
      status: 'REFUNDED',
      amount_paid: 1000,
      amount_refunded: 1000,
    });
    // Tax back pro rata: the 400's note round_half_up(200 × 400 / 1000) = 80; the 600's brings the
    // notes to round_half_up(200 × 1000 / 1000) = 200, so 120 of it.
    const notes = (await app.api('GET', `/v1/credit-notes?invoice=${invoiceId}&limit=10`)).body.data;
    expect(
      notes
        .map((n: { refund: string; subtotal: number; tax: number }) => ({
          refund: n.refund,
          subtotal: n.subtotal,
          tax: n.tax,
        }))
        .sort((a: { tax: number }, b: { tax: number }) => a.tax - b.tax),
    ).toEqual([
      { refund: cancelled.body.refunds[0].id, subtotal: 320, tax: 80 },
      { refund: cancelled.body.refunds[1].id, subtotal: 480, tax: 120 },
    ]);
    const moved = await movedSince(before, 'EUR');
    expect(moved('refunds')).toBe(800);
    expect(moved('tax_payable')).toBe(200);
    expect(moved('gateway_clearing:stripe')).toBe(-1000);
    const activity = (
      await app.api('GET', `/v1/activities?resource=${created.body.id}&limit=100`)
    ).body.data.find((a: { action: string }) => a.action === 'subscription.cancelled');
    expect(activity.data).toMatchObject({ refund_type: 'full', refund_amount: '1000', credit_amount: '0' });
  });

  it('JPY cancellation, refund_type prorate at half the period: the newest payment whole, the rest from the first', async () => {
    // Period 2027-01-01 → 2027-02-01 (31 days); 8000 + 25% = 10000 JPY (2000 tax): 7000 captured by
    // the first charge, 3000 by the second.
    const { customer, method } = await customerWith(app, { stripe: true });
    const { subscription, invoices } = await createSubscription(
      db(),
      'system',
      { customerId: customer.id, planId: await flat('JPY', 8000), paymentMethodId: method!.id },
      d('2027-01-01T00:00:00Z'),
    );
    const invoice = invoices[0]!;
    const paid = await paidInTwo(invoice.id, 10000, 7000);
    const before = await ledgerIn(app, 'JPY');
    const stripe = stripeRefunds(2);
    // 2027-01-16T12:00Z leaves 15.5 of 31 days: round_half_up(10000 / 2) = 5000 owed, cash: the
    // newest payment's 3000, then 2000 of the first's 7000.
    const result = await cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      subscription.id,
      { when: 'now', refundType: 'prorate' },
      d('2027-01-16T12:00:00Z'),
    );
    expect(result.refunds).toMatchObject([
      { status: 'succeeded', amount: 3000n, transaction_id: paid.second.id },
      { status: 'succeeded', amount: 2000n, transaction_id: paid.first.id },
    ]);
    expect(stripe.seen).toEqual([
      { intent: paid.second.intent, amount: 3000 },
      { intent: paid.first.intent, amount: 2000 },
    ]);
    expect(await invoiceOf(invoice.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 5000,
    });
    // Tax back: round_half_up(2000 × 5000 / 10000) = 1000 over both notes; refunds the other 4000.
    const moved = await movedSince(before, 'JPY');
    expect(moved('refunds')).toBe(4000);
    expect(moved('tax_payable')).toBe(1000);
    expect(moved('gateway_clearing:stripe')).toBe(-5000);
  });

  it('KWD cancellation owing more than both payments can refund (a part paid offline): 409 refund_exceeds_payment, nothing changes', async () => {
    // 8000 + 25% = 10000 fils (10.000 KWD): 2000 paid by bank transfer, then 5000 of a charge of
    // 8000 captured, then 3000 charged.
    const { customer, method } = await customerWith(app, { stripe: true });
    const created = await app.api('POST', '/v1/subscriptions', {
      customer: customer.id,
      plan: await flat('KWD', 8000),
      payment_method: method!.id,
    });
    const invoiceId = created.body.latest_invoice as string;
    const offline = await app.api('POST', `/v1/invoices/${invoiceId}/payments`, {
      amount: 2000,
      method: 'BANK',
    });
    expect(offline.status).toBe(201);
    await paidInTwo(invoiceId, 8000, 5000);
    const before = await snapshot(invoiceId, 'KWD');
    const subscription = (await app.api('GET', `/v1/subscriptions/${created.body.id}`)).body;
    // Owed 10000; the two payments can give back 3000 + 5000 = 8000; the 2000 paid offline cannot.
    const refused = await app.api('POST', `/v1/subscriptions/${created.body.id}/cancel`, {
      refund_type: 'full',
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('refund_exceeds_payment');
    expect(refused.body.error.message).toContain(
      'its gateway payments (2) can refund only 8000 more together',
    );
    expect(await snapshot(invoiceId, 'KWD')).toEqual(before);
    expect((await app.api('GET', `/v1/subscriptions/${created.body.id}`)).body).toEqual(subscription);
  });
});
