import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAddOn } from '../../src/billing/add-ons.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { setSubscriptionAddOn } from '../../src/billing/subscription-add-ons.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { nockToken, paypalFixture, TOKEN } from '../gateways/paypal/fixtures.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { customerWith, ledgerIn, subscribedAndPaid } from '../support/collection.ts';
import { stripeChargeSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { insertPlan } from '../support/plans.ts';
import { stripeFixture } from '../support/stripe.ts';

const PAYPAL_API_BASE = 'https://paypal.step-prorate.test';
const DAY_MS = 86_400_000;
const d = (iso: string) => new Date(iso);

/**
 * A cancellation with refund_type `prorate` in a currency whose gateway takes amounts only on a step
 * (Stripe KWD: multiples of 10 fils; PayPal HUF: whole forints, multiples of 100 fillér) used to be
 * refused 422 `amount_not_representable` whenever the prorated share was off the step (Stripe KWD
 * 1.000 cancelled a third through: 667 owed, the card refund can only be 660 or 670). Now the card
 * gets the largest on-step amount not above the share and the rest goes to the customer's credit by a
 * credit note (`inv_…:cash_credited:<n>`), so every minor unit owed is booked once (PRODUCT §11).
 *
 * Each scenario is cancelled at a date (`when: date`, refund now) chosen in whole seconds from its
 * period's own start and end, so the share is exact: the period's length in seconds (28 to 31 days of
 * 86400) is a multiple of 3 and of 200. Plans: 800 + 25% tax = 1000 KWD fils (1.000 KWD) and 8000 +
 * 25% = 10000 HUF fillér (100 HUF); each scenario books in its own currency or customer.
 */
describe('cancellation with a prorated refund in step currencies', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({
      PAYPAL_CLIENT_ID: 'client-id',
      PAYPAL_CLIENT_SECRET: 'client-secret',
      PAYPAL_WEBHOOK_ID: 'WH-STEP-PRORATE',
      PAYPAL_API_BASE,
    });
  });
  afterEach(() => {
    expect(nock.pendingMocks()).toEqual([]);
    nock.cleanAll();
  });
  afterAll(() => stopOfflineTestApp(app));

  const db = () => app.runtime.db;

  /** Now, in whole seconds, less a day: a period started then holds now, a third through is ahead. */
  const startedYesterday = () => new Date(Math.floor((Date.now() - DAY_MS) / 1000) * 1000);

  /** The current period of subscription `id` and the moment `unusedSeconds` before its end. */
  async function periodOf(id: string) {
    const row = await db()
      .selectFrom('subscriptions')
      .select(['current_period_start', 'current_period_end'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    const start = row.current_period_start!;
    const end = row.current_period_end!;
    const seconds = (end.getTime() - start.getTime()) / 1000;
    return { start, end, seconds, before: (unused: number) => new Date(end.getTime() - unused * 1000) };
  }

  /** A subscription to `fee` + 25% tax in `currency` from yesterday, its first invoice paid by the Stripe card. */
  async function stripeSubscription(currency: string, fee: number) {
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await insertPlan(db(), {
      name: `Flat ${fee}`,
      currency,
      price: { model: 'FLAT_FEE', amount: fee },
      taxRatePpm: 250_000,
    });
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan,
      method: method!.id,
      start: startedYesterday(),
    });
    return { ...sub, customer: customer.id };
  }

  /** Stripe answers a refund succeeded (its fixture), echoing the amount sent; the amounts sent are pushed to `sent`. */
  const stripeRefund = (id: string, currency: string, sent: string[]) =>
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
            currency: currency.toLowerCase(),
            status: 'succeeded',
          },
        ];
      });

  async function invoiceRow(id: string) {
    return db().selectFrom('invoices').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  }

  async function creditNotes(invoiceId: string) {
    return db()
      .selectFrom('credit_notes')
      .select(['refund_id', 'subtotal', 'tax', 'rounding', 'total'])
      .where('invoice_id', '=', invoiceId)
      .orderBy('created_at')
      .execute();
  }

  async function cancelledActivity(subscriptionId: string) {
    const log = await app.api('GET', `/v1/activities?resource=${subscriptionId}&limit=100`);
    return log.body.data.find((a: { action: string }) => a.action === 'subscription.cancellation_scheduled');
  }

  async function customerCredit(customerId: string, currency: string) {
    const key = `customer_credit:${customerId}`;
    const accounts = await app.api('GET', '/v1/ledger/accounts?limit=100');
    return accounts.body.data
      .filter((a: { code: string; currency: string }) => a.code === key && a.currency === currency)
      .reduce((sum: number, a: { balance: number }) => sum + a.balance, 0);
  }

  it('Stripe KWD 1.000 cancelled with prorate a third through: 667 owed, 660 to the card (amount=660), 7 to the customer credit', async () => {
    const sub = await stripeSubscription('KWD', 800);
    const period = await periodOf(sub.id);
    // Two thirds of the period unused: 1000 × ⅔ = 666.67 → 667 (half up), owed back.
    expect(period.seconds % 3).toBe(0);
    const cancelAt = period.before((period.seconds * 2) / 3);
    const sent: string[] = [];
    const stripe = stripeRefund('re_kwd_660', 'KWD', sent);

    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, {
      when: 'date',
      cancel_at: cancelAt.toISOString(),
      refund_type: 'prorate',
    });
    expect(cancelled.status).toBe(200);
    expect(stripe.isDone()).toBe(true);
    // Stripe counts KWD in fils (3 decimals), in steps of 10: 0.660 KWD.
    expect(sent).toEqual(['660']);
    expect(cancelled.body).toMatchObject({
      cancel_at: cancelAt.toISOString(),
      refunds: [{ status: 'succeeded', amount: 660, currency: 'KWD', invoice: sub.invoice.id }],
      refunded: 660,
      credited: 7,
    });
    // The 7 has its credit note (6 + 1 tax: 200 × 7 / 1000 = 1.4 → 1); the card's 660 then brings
    // the notes' tax to 200 × 667 / 1000 = 133.4 → 133, so its note holds 132 of tax and 528 net.
    expect(cancelled.body.credit_notes).toMatchObject([{ subtotal: 6, tax: 1, total: 7 }]);
    expect(await creditNotes(sub.invoice.id)).toEqual([
      { refund_id: null, subtotal: 6n, tax: 1n, rounding: 0n, total: 7n },
      { refund_id: cancelled.body.refunds[0].id, subtotal: 528n, tax: 132n, rounding: 0n, total: 660n },
    ]);
    const refunds = await db()
      .selectFrom('refunds')
      .select(['amount', 'status', 'gateway_refund_id'])
      .where('invoice_id', '=', sub.invoice.id)
      .execute();
    expect(refunds).toEqual([{ amount: 660n, status: 'succeeded', gateway_refund_id: 're_kwd_660' }]);
    expect(await invoiceRow(sub.invoice.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_paid: 1000n,
      amount_refunded: 660n,
      cash_credited: 7n,
      credit_returned: 0n,
    });
    // 1000 paid into clearing, 660 out; revenue 800 and tax 200 given back by 667 (534 + 133); the
    // customer's credit holds the 7: 340 − 800 + 534 − 67 − 7 = 0.
    expect(await ledgerIn(app, 'KWD')).toMatchObject({
      'gateway_clearing:stripe': 340,
      revenue: -800,
      refunds: 534,
      tax_payable: -67,
    });
    expect(await customerCredit(sub.customer, 'KWD')).toBe(-7);
    expect((await cancelledActivity(sub.id)).data).toMatchObject({
      refund_type: 'prorate',
      refunded: '660',
      credited: '7',
      refund_amount: '660',
    });
    // The 7 went back as credit: a refund by hand of the payment's 340 left would give it again.
    const ledger = await ledgerIn(app, 'KWD');
    const again = await app.api('POST', `/v1/invoices/${sub.invoice.id}/refund`, { amount: 340 });
    expect(again.status).toBe(422);
    expect(again.body.error.fields.amount).toContain('at most 333');
    expect(await ledgerIn(app, 'KWD')).toEqual(ledger);
    expect(await invoiceRow(sub.invoice.id)).toMatchObject({ amount_refunded: 660n, cash_credited: 7n });
  });

  it('Stripe KWD share below one step (5 fils owed): no refund sent, all 5 to the customer credit', async () => {
    const sub = await stripeSubscription('KWD', 800);
    const period = await periodOf(sub.id);
    // 1/200 of the period unused: 1000 / 200 = 5 exactly, below Stripe's 10.
    expect(period.seconds % 200).toBe(0);
    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, {
      when: 'date',
      cancel_at: period.before(period.seconds / 200).toISOString(),
      refund_type: 'prorate',
    });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ refunds: [], refund: null, refunded: 0, credited: 5 });
    // 200 × 5 / 1000 = 1 of tax, 4 net.
    expect(await creditNotes(sub.invoice.id)).toEqual([
      { refund_id: null, subtotal: 4n, tax: 1n, rounding: 0n, total: 5n },
    ]);
    expect(await invoiceRow(sub.invoice.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 0n,
      cash_credited: 5n,
    });
    expect(await customerCredit(sub.customer, 'KWD')).toBe(-5);
    const refunds = await db()
      .selectFrom('refunds')
      .select('id')
      .where('invoice_id', '=', sub.invoice.id)
      .execute();
    expect(refunds).toEqual([]);
    expect((await cancelledActivity(sub.id)).data).toMatchObject({ refunded: '0', credited: '5' });
    // The unused time was given back (as credit): a prorated change would credit it again.
    const change = await app.api('POST', `/v1/subscriptions/${sub.id}/change`, {
      quantity: 2,
      proration: 'prorate_now',
    });
    expect(change.status).toBe(409);
    expect(change.body.error.code).toBe('cancellation_scheduled');
    expect(await customerCredit(sub.customer, 'KWD')).toBe(-5);
  });

  it('PayPal HUF 100 cancelled with prorate a third through: 6667 owed, "66" HUF to the card, 67 fillér to the customer credit', async () => {
    const customer = (await app.api('POST', '/v1/customers', { email: 'huf@example.com' })).body;
    const method = await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway: 'paypal',
      gateway_token: '8kk8451t',
    });
    expect(method.status).toBe(201);
    const plan = await insertPlan(db(), {
      name: 'Flat 8000 HUF',
      currency: 'HUF',
      price: { model: 'FLAT_FEE', amount: 8000 },
      taxRatePpm: 250_000,
    });
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer.id, planId: plan, paymentMethodId: method.body.id },
      startedYesterday(),
    );
    nockToken(PAYPAL_API_BASE).optionally().times(3).reply(200, TOKEN);
    const order = paypalFixture('api.orders.create.vaulted_card_capture.completed.json');
    const charged: unknown[] = [];
    nock(PAYPAL_API_BASE)
      .post('/v2/checkout/orders')
      .reply(async (request: Request) => {
        const body = JSON.parse(await request.text());
        charged.push(body.purchase_units[0].amount);
        const answer = structuredClone(order);
        answer.purchase_units[0].amount = body.purchase_units[0].amount;
        answer.purchase_units[0].payments.captures[0].amount = body.purchase_units[0].amount;
        return [201, answer];
      });
    const settled = await app.api('POST', `/v1/subscriptions/${subscription.id}/settle`);
    expect(settled.status).toBe(200);
    expect(charged).toEqual([{ currency_code: 'HUF', value: '100' }]);
    const invoiceId = settled.body.invoices[0].invoice.id;
    expect(await invoiceRow(invoiceId)).toMatchObject({ status: 'PAID', amount_paid: 10000n });

    const period = await periodOf(subscription.id);
    const refunded: unknown[] = [];
    const capture = order.purchase_units[0].payments.captures[0].id;
    nock(PAYPAL_API_BASE)
      .post(`/v2/payments/captures/${capture}/refund`)
      .reply(async (request: Request) => {
        refunded.push(JSON.parse(await request.text()).amount);
        return [201, paypalFixture('api.captures.refund.completed.json')];
      });
    const cancelled = await app.api('POST', `/v1/subscriptions/${subscription.id}/cancel`, {
      when: 'date',
      cancel_at: period.before((period.seconds * 2) / 3).toISOString(),
      refund_type: 'prorate',
    });
    expect(cancelled.status).toBe(200);
    // 10000 × ⅔ = 6666.67 → 6667 owed; PayPal takes whole forints: 66 HUF (6600), 67 as credit.
    expect(refunded).toEqual([{ value: '66', currency_code: 'HUF' }]);
    expect(cancelled.body).toMatchObject({
      refunds: [{ status: 'succeeded', amount: 6600, currency: 'HUF' }],
      refunded: 6600,
      credited: 67,
    });
    // 2000 × 67 / 10000 = 13.4 → 13 tax; then 2000 × 6667 / 10000 = 1333.4 → 1333 in all: 1320.
    expect(await creditNotes(invoiceId)).toEqual([
      { refund_id: null, subtotal: 54n, tax: 13n, rounding: 0n, total: 67n },
      { refund_id: cancelled.body.refunds[0].id, subtotal: 5280n, tax: 1320n, rounding: 0n, total: 6600n },
    ]);
    expect(await invoiceRow(invoiceId)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 6600n,
      cash_credited: 67n,
    });
    // 10000 in, 6600 out: 3400 − 8000 + 5334 − 667 − 67 = 0.
    expect(await ledgerIn(app, 'HUF')).toMatchObject({
      'gateway_clearing:paypal': 3400,
      revenue: -8000,
      refunds: 5334,
      tax_payable: -667,
    });
    expect(await customerCredit(customer.id, 'HUF')).toBe(-67);
  });
  /** PayPal answers each order created captured (its fixture), capture `<prefix>-<n>`, echoing the amount; amounts sent pushed to `sent`. */
  function paypalOrders(prefix: string, times: number, sent: unknown[]) {
    const order = paypalFixture('api.orders.create.vaulted_card_capture.completed.json');
    let n = 0;
    nock(PAYPAL_API_BASE)
      .post('/v2/checkout/orders')
      .times(times)
      .reply(async (request: Request) => {
        const body = JSON.parse(await request.text());
        sent.push(body.purchase_units[0].amount);
        const answer = structuredClone(order);
        n += 1;
        answer.id = `${prefix}ORDER${n}`;
        answer.purchase_units[0].amount = body.purchase_units[0].amount;
        answer.purchase_units[0].payments.captures[0].amount = body.purchase_units[0].amount;
        answer.purchase_units[0].payments.captures[0].id = `${prefix}CAPTURE${n}`;
        return [201, answer];
      });
  }

  /** The period invoice and an add-on invoice of one period, each giving back its own share. */
  async function periodAndAddOn(currency: string, fee: number, gateway: 'stripe' | 'paypal') {
    const customer = (await app.api('POST', '/v1/customers', { email: `${currency}@example.com` })).body;
    const method = await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway,
      ...(gateway === 'stripe'
        ? { gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi', gateway_customer_id: 'cus_SRCIP043oBsNpV' }
        : { gateway_token: '8kk8451t' }),
    });
    expect(method.status).toBe(201);
    const plan = await insertPlan(db(), {
      name: `Flat ${fee} ${currency}`,
      currency,
      price: { model: 'FLAT_FEE', amount: fee },
      taxRatePpm: 250_000,
    });
    // Feb 1 → Mar 1 2027: 28 days.
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer.id, planId: plan, paymentMethodId: method.body.id },
      d('2027-02-01T00:00:00Z'),
    );
    const settled = await app.api('POST', `/v1/subscriptions/${subscription.id}/settle`);
    expect(settled.status).toBe(200);
    const periodInvoice = settled.body.invoices[0].invoice.id as string;
    // Two seats of `fee` + 25% a month set Feb 8, 21 of 28 days: 2 × fee × 21/28 + 25%.
    const seats = await createAddOn(db(), 'system', { name: 'Seats', currency, amount: BigInt(fee) });
    const addOn = (
      await setSubscriptionAddOn(
        db(),
        'system',
        subscription.id,
        { addOnId: seats.id, quantity: 2 },
        d('2027-02-08T00:00:00Z'),
      )
    ).invoice!;
    const charged = await app.api('POST', `/v1/invoices/${addOn.id}/charge`, {});
    expect(charged.status).toBe(200);
    return { subscription: subscription.id, customer: customer.id, periodInvoice, addOnInvoice: addOn.id };
  }

  const cancelNow = (id: string, at: Date) =>
    cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      id,
      { when: 'now', refundType: 'prorate' },
      at,
    );

  /** What each of `invoices` gave back, from its row. */
  async function givenBack(invoices: string[]) {
    const rows = await db()
      .selectFrom('invoices')
      .select(['id', 'total', 'amount_paid', 'amount_refunded', 'cash_credited'])
      .where('id', 'in', invoices)
      .execute();
    return invoices.map((id) => rows.find((r) => r.id === id));
  }

  /** The change of each account of `currency` from `before` to `after`, those that moved only. */
  function moved(before: Record<string, number>, after: Record<string, number>) {
    const out: Record<string, number> = {};
    for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
      const delta = (after[key] ?? 0) - (before[key] ?? 0);
      if (delta !== 0) out[key] = delta;
    }
    return out;
  }

  it('Stripe KWD period invoice + add-on invoice, prorate on Feb 19 (10 of 28 days unused): 357 + 714 owed, 350 + 710 to the card, 7 + 4 to the credit, 1071 in all', async () => {
    const kwd = await (async () => {
      stripeChargeSucceeds();
      stripeChargeSucceeds();
      return periodAndAddOn('KWD', 800, 'stripe');
    })();
    // Period invoice 800 + 200 = 1000; seats 2 × 800 × 21/28 = 1200 + 300 = 1500 (both on Stripe's step).
    expect(await givenBack([kwd.periodInvoice, kwd.addOnInvoice])).toMatchObject([
      { total: 1000n, amount_paid: 1000n },
      { total: 1500n, amount_paid: 1500n },
    ]);
    const before = await ledgerIn(app, 'KWD');
    const creditBefore = await customerCredit(kwd.customer, 'KWD');
    const sent: string[] = [];
    stripeRefund('re_kwd_period_350', 'KWD', sent);
    stripeRefund('re_kwd_addon_710', 'KWD', sent);
    // 1000 × 10/28 = 357.14 → 357; 1500 × 10/21 = 714.29 → 714: each rounded once, half up.
    const result = await cancelNow(kwd.subscription, d('2027-02-19T00:00:00Z'));
    expect(sent).toEqual(['350', '710']);
    expect(result.refunds.map((r) => [r.invoice_id, r.amount, r.status])).toEqual([
      [kwd.periodInvoice, 350n, 'succeeded'],
      [kwd.addOnInvoice, 710n, 'succeeded'],
    ]);
    expect({ refunded: result.refunded, credited: result.credited }).toEqual({
      refunded: 1060n,
      credited: 11n,
    });
    expect(await givenBack([kwd.periodInvoice, kwd.addOnInvoice])).toMatchObject([
      { amount_refunded: 350n, cash_credited: 7n },
      { amount_refunded: 710n, cash_credited: 4n },
    ]);
    // Notes (tax cumulative per invoice): period 7 → 1 tax (1.4), then 357 → 71 (71.4): 70 on the
    // refund's; add-on 4 → 1 (300 × 4 / 1500 = 0.8), then 714 → 143 (142.8): 142.
    // Refunds 6 + 280 + 3 + 568 = 857, tax payable 1 + 70 + 1 + 142 = 214: 1071 given back, of
    // which 1060 out of Stripe's clearing and 11 to the customer's credit.
    expect(moved(before, await ledgerIn(app, 'KWD'))).toMatchObject({
      'gateway_clearing:stripe': -1060,
      refunds: 857,
      tax_payable: 214,
    });
    expect((await customerCredit(kwd.customer, 'KWD')) - creditBefore).toBe(-11);
  });

  it('PayPal HUF period invoice + add-on invoice, prorate on Feb 19: 3571 + 7143 owed, "35" + "71" HUF to the card, 71 + 43 to the credit, 10714 in all', async () => {
    const charged: unknown[] = [];
    paypalOrders('HUFMULTI', 2, charged);
    const huf = await periodAndAddOn('HUF', 8000, 'paypal');
    // Period 8000 + 2000 = 10000 ("100"); seats 2 × 8000 × 21/28 = 12000 + 3000 = 15000 ("150").
    expect(charged).toEqual([
      { currency_code: 'HUF', value: '100' },
      { currency_code: 'HUF', value: '150' },
    ]);
    const before = await ledgerIn(app, 'HUF');
    const creditBefore = await customerCredit(huf.customer, 'HUF');
    const refunded: unknown[] = [];
    for (const n of [1, 2]) {
      nock(PAYPAL_API_BASE)
        .post(`/v2/payments/captures/HUFMULTICAPTURE${n}/refund`)
        .reply(async (request: Request) => {
          refunded.push([n, JSON.parse(await request.text()).amount]);
          return [201, { ...paypalFixture('api.captures.refund.completed.json'), id: `HUFREFUND${n}` }];
        });
    }
    // 10000 × 10/28 = 3571.43 → 3571; 15000 × 10/21 = 7142.86 → 7143.
    const result = await cancelNow(huf.subscription, d('2027-02-19T00:00:00Z'));
    expect(refunded).toEqual([
      [1, { value: '35', currency_code: 'HUF' }],
      [2, { value: '71', currency_code: 'HUF' }],
    ]);
    expect(result.refunds.map((r) => [r.invoice_id, r.amount, r.status])).toEqual([
      [huf.periodInvoice, 3500n, 'succeeded'],
      [huf.addOnInvoice, 7100n, 'succeeded'],
    ]);
    expect({ refunded: result.refunded, credited: result.credited }).toEqual({
      refunded: 10600n,
      credited: 114n,
    });
    expect(await givenBack([huf.periodInvoice, huf.addOnInvoice])).toMatchObject([
      { amount_refunded: 3500n, cash_credited: 71n },
      { amount_refunded: 7100n, cash_credited: 43n },
    ]);
    // Period: 71 → 14 tax (14.2), 3571 → 714 (714.2): 700; add-on: 43 → 9 (8.6), 7143 → 1429
    // (1428.6): 1420. Refunds 57 + 2800 + 34 + 5680 = 8571, tax 14 + 700 + 9 + 1420 = 2143: 10714.
    expect(moved(before, await ledgerIn(app, 'HUF'))).toMatchObject({
      'gateway_clearing:paypal': -10600,
      refunds: 8571,
      tax_payable: 2143,
    });
    expect((await customerCredit(huf.customer, 'HUF')) - creditBefore).toBe(-114);
  });
  it('Stripe KWD refund by hand, amount omitted, of a period a downgrade credited: what it kept (678) goes 670 to the card, 8 to the customer credit', async () => {
    stripeChargeSucceeds();
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await insertPlan(db(), {
      name: 'Flat 800 KWD',
      currency: 'KWD',
      price: { model: 'FLAT_FEE', amount: 800 },
      taxRatePpm: 250_000,
    });
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer.id, planId: plan, paymentMethodId: method!.id },
      d('2027-02-01T00:00:00Z'),
    );
    const settled = await app.api('POST', `/v1/subscriptions/${subscription.id}/settle`);
    const invoiceId = settled.body.invoices[0].invoice.id as string;
    const cheaper = await insertPlan(db(), {
      name: 'Flat 400 KWD',
      currency: 'KWD',
      price: { model: 'FLAT_FEE', amount: 400 },
      taxRatePpm: 250_000,
    });
    // Feb 11, 18 of 28 days left: 800 × 18/28 = 514.29 → 514 credited with −128.5 → −129 tax,
    // 400 × 18/28 = 257.14 → 257 charged with 64.25 → 64 tax: 322 to the customer's credit.
    await changeSubscription(
      db(),
      'system',
      subscription.id,
      { planId: cheaper, proration: 'prorate_now' },
      d('2027-02-11T00:00:00Z'),
      false,
    );
    expect(await customerCredit(customer.id, 'KWD')).toBe(-322);
    const before = await ledgerIn(app, 'KWD');
    const sent: string[] = [];
    stripeRefund('re_kwd_by_hand_670', 'KWD', sent);
    // The period kept 1000 − 322 = 678: Stripe takes 670, the 8 goes to the customer's credit.
    const refunded = await app.api('POST', `/v1/invoices/${invoiceId}/refund`, {});
    expect(refunded.status).toBe(201);
    expect(sent).toEqual(['670']);
    expect(refunded.body).toMatchObject({ status: 'succeeded', amount: 670, credited: 8 });
    // PARTIALLY_REFUNDED as a whole refund by hand after a downgrade is in any currency: the 322 of
    // cash the downgrade's credit stands for stays paid.
    expect(await invoiceRow(invoiceId)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 670n,
      cash_credited: 8n,
    });
    expect(await customerCredit(customer.id, 'KWD')).toBe(-330);
    // 678 given back: 670 out of clearing, 8 to the credit, by notes debiting refunds and tax payable.
    const change = moved(before, await ledgerIn(app, 'KWD'));
    expect(change).toMatchObject({ 'gateway_clearing:stripe': -670 });
    expect((change.refunds ?? 0) + (change.tax_payable ?? 0)).toBe(678);
  });
  it('Stripe KWD: a prorate cancellation scheduled for Feb 19 (357: 350 + 7 credited), then cancelled now on Feb 12: 607 owed in all, 250 more to the card, the 7 counted once', async () => {
    stripeChargeSucceeds();
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await insertPlan(db(), {
      name: 'Flat 800 KWD twice',
      currency: 'KWD',
      price: { model: 'FLAT_FEE', amount: 800 },
      taxRatePpm: 250_000,
    });
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer.id, planId: plan, paymentMethodId: method!.id },
      d('2027-02-01T00:00:00Z'),
    );
    const settled = await app.api('POST', `/v1/subscriptions/${subscription.id}/settle`);
    const invoiceId = settled.body.invoices[0].invoice.id as string;
    const cancel = (when: 'now' | 'date', at: Date, cancelAt?: Date) =>
      cancelSubscriptionWithRefund(
        db(),
        'system',
        app.runtime.boss,
        { registry: app.runtime.registry, accounts: app.runtime.accounts },
        subscription.id,
        { when, cancelAt, refundType: 'prorate' },
        at,
      );
    const sent: string[] = [];
    stripeRefund('re_kwd_scheduled_350', 'KWD', sent);
    // Scheduled on Feb 5 for Feb 19: 1000 × 10/28 = 357.14 → 357 back now, 350 + 7.
    const scheduled = await cancel('date', d('2027-02-05T00:00:00Z'), d('2027-02-19T00:00:00Z'));
    expect({ refunded: scheduled.refunded, credited: scheduled.credited }).toEqual({
      refunded: 350n,
      credited: 7n,
    });
    // Cancelled now on Feb 12: 1000 × 17/28 = 607.14 → 607 owed, 357 given back already (350 + the
    // 7 credited): 250, on Stripe's step, all to the card (counting only the 350 would send 257:
    // 250 + 7 credited again).
    stripeRefund('re_kwd_now_250', 'KWD', sent);
    const now = await cancel('now', d('2027-02-12T00:00:00Z'));
    expect(sent).toEqual(['350', '250']);
    expect({ refunded: now.refunded, credited: now.credited }).toEqual({ refunded: 250n, credited: 0n });
    expect(await invoiceRow(invoiceId)).toMatchObject({ amount_refunded: 600n, cash_credited: 7n });
    expect(await customerCredit(customer.id, 'KWD')).toBe(-7);
  });
});
