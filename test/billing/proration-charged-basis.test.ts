import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCoupon } from '../../src/billing/coupons.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { renewDueSubscriptions } from '../../src/billing/renewal.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import { newId } from '../../src/db/ids.ts';
import { ValidationError } from '../../src/errors.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import {
  customerWith,
  flatPlan,
  ledgerIn,
  payOpenOffline,
  subscribedAndPaid,
} from '../support/collection.ts';
import { stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { insertPlan } from '../support/plans.ts';

const d = (iso: string) => new Date(iso);

/**
 * The credit of a plan or quantity change and a cancellation's refund give back what the period's
 * invoices charged for what is in force (its plan, quantity, coupons as they applied to it, the tax
 * rates it was billed with), never a price that was never charged (the charged basis,
 * billing/proration.ts `chargedBasis`). February 2027 has 28 days throughout; one currency per test
 * (`ledgerIn` reads its books).
 */
describe('the charged basis: credits and refunds give back what was charged', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    // Invoices are paid by the tests (settle), not by the charge worker.
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());
  const db = () => app.runtime.db;
  const gateways = () => ({ registry: app.runtime.registry, accounts: app.runtime.accounts });
  /** `changeSubscription` by the system at `at` (ISO), not a preview unless `preview`. */
  const changeAt = (
    id: string,
    input: Parameters<typeof changeSubscription>[3],
    at: string,
    preview = false,
  ) => changeSubscription(db(), 'system', id, input, d(at), preview);
  /** `createSubscription` by the system from Feb 1 2027. */
  const subscribeFeb1 = (input: Parameters<typeof createSubscription>[2]) =>
    createSubscription(db(), 'system', input, d('2027-02-01T00:00:00Z'));
  /** A FLAT_FEE plan of `amount` minor units in `currency`, no tax; its id. */
  const untaxedPlan = (currency: string, amount: number) =>
    insertPlan(db(), { currency, price: { model: 'FLAT_FEE', amount } });
  const creditOf = async (customer: string) =>
    (await app.api('GET', `/v1/customers/${customer}`)).body.credit;
  const cancel = (id: string, refundType: 'prorate' | 'full', at: string) =>
    cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      gateways(),
      id,
      { when: 'now', refundType },
      d(at),
    );
  const refunded = (result: Awaited<ReturnType<typeof cancel>>) =>
    result.refunds.reduce((sum, r) => sum + r.amount, 0n);
  /**
   * A customer with a Stripe card, `flatPlan`s big (3200 + 25%) and small (800 + 25%) in `currency`
   * (big with a setup fee of `setupFee` net, when given), subscribed to plan `on` from Feb 1 and paid.
   */
  const paidFeb1 = async (currency: string, on: 'big' | 'small', setupFee?: bigint) => {
    const { customer, method } = await customerWith(app, { stripe: true });
    const big = await flatPlan(app, currency, 3200);
    const small = await flatPlan(app, currency, 800);
    if (setupFee !== undefined) {
      await db().updateTable('plans').set({ setup_fee: setupFee }).where('id', '=', big).execute();
    }
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan: on === 'big' ? big : small,
      method: method!.id,
      start: d('2027-02-01T00:00:00Z'),
    });
    return { customer, big, small, sub };
  };
  /** Refunds `amount` of invoice `invoiceId` by hand (`POST /v1/invoices/:id/refund`), Stripe answering `refundId`: 201. */
  const refundByHand = async (invoiceId: string, amount: number, refundId: string) => {
    stripeRefundSucceeds(refundId);
    expect((await app.api('POST', `/v1/invoices/${invoiceId}/refund`, { amount })).status).toBe(201);
  };
  /** The field messages of the ValidationError `refused` rejects with (expected to). */
  const refusedFields = async (refused: Promise<unknown>) => {
    const error = await refused.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).fields;
  };
  /** Big plan 3200 + 25% = 4000 a month, paid by card on Feb 1; Feb 15 downgraded to small (800 + 25% = 1000). */
  const downgradedMidFebruary = async (currency: string) => {
    const { customer, small, sub } = await paidFeb1(currency, 'big');
    // Half the period left: credit 3200/2 = 1600, charge 800/2 = 400: net −1200, tax −300: 1500 of
    // customer credit for the big plan's unused half.
    const change = await changeAt(sub.id, { planId: small }, '2027-02-15T00:00:00Z');
    expect(change.credited).toBe(1200n);
    expect(await creditOf(customer.id)).toEqual([{ currency, amount: 1500 }]);
    return { customer, sub };
  };

  it('F1: cancel now with prorate after a downgrade gives back the small plan’s unused quarter (250), not the big plan’s (1000)', async () => {
    const { customer, sub } = await downgradedMidFebruary('NOK');
    // Feb 22 (a quarter left), on the small plan: 1000 × 7/28 = 250 is owed back. The big plan's
    // unused half was credited already (1500).
    const stripe = stripeRefundSucceeds('re_basis_f1');
    const result = await cancel(sub.id, 'prorate', '2027-02-22T00:00:00Z');
    expect(stripe.isDone()).toBe(true);
    expect(refunded(result)).toBe(250n);
    // Paid 4000; back 1500 (credit) + 250 (cash): 2250 kept = half a month big (2000) + a week small (250).
    expect(await creditOf(customer.id)).toEqual([{ currency: 'NOK', amount: 1500 }]);
    const invoice = await db()
      .selectFrom('invoices')
      .select(['total', 'amount_paid', 'amount_refunded', 'status'])
      .where('id', '=', sub.invoice.id)
      .executeTakeFirstOrThrow();
    expect(invoice).toEqual({
      total: 4000n,
      amount_paid: 4000n,
      amount_refunded: 250n,
      status: 'PARTIALLY_REFUNDED',
    });
    // Revenue 3200 − 1200 (downgrade) − 200 (refund's net) = 1800; tax 800 − 300 − 50 = 450.
    const books = await ledgerIn(app, 'NOK');
    expect((books.revenue ?? 0) + (books.refunds ?? 0)).toBe(-1800);
    expect(books.tax_payable).toBe(-450);
    expect(books['customer_credit:customer']).toBe(-1500);
  });

  it('F1: cancel now with a full refund after a downgrade gives back what the period still holds (4000 − 1500 = 2500), not 4000', async () => {
    const { customer, sub } = await downgradedMidFebruary('SEK');
    // Full: everything the period cost comes back. It was charged 4000 and the downgrade gave 1500
    // back as credit already: 2500 in cash.
    const stripe = stripeRefundSucceeds('re_basis_f1_full');
    const result = await cancel(sub.id, 'full', '2027-02-22T00:00:00Z');
    expect(stripe.isDone()).toBe(true);
    expect(refunded(result)).toBe(2500n);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'SEK', amount: 1500 }]);
    // Nothing of February kept: revenue and tax net to 0.
    const books = await ledgerIn(app, 'SEK');
    expect((books.revenue ?? 0) + (books.refunds ?? 0)).toBe(0);
    expect(books.tax_payable ?? 0).toBe(0);
  });

  it('F1: after an upgrade, a prorate refund waits until the upgrade’s invoice is paid, then gives back the new plan’s unused time', async () => {
    const { big, sub } = await paidFeb1('CHF', 'small');
    // Feb 8 (21 of 28 days left): credit 800 × 3/4 = 600, charge 3200 × 3/4 = 2400: 1800 + 450 tax.
    const up = await changeAt(sub.id, { planId: big }, '2027-02-08T00:00:00Z');
    expect(up.invoice?.total).toBe(2250n);
    // Not paid yet: the unused time of the big plan was not paid for; refused, nothing changes.
    expect((await refusedFields(cancel(sub.id, 'prorate', '2027-02-22T00:00:00Z')))?.refund_type).toContain(
      up.invoice!.id,
    );
    const charge = stripeChargeSucceeds();
    expect((await app.api('POST', `/v1/subscriptions/${sub.id}/settle`)).status).toBe(200);
    expect(charge.scope.isDone()).toBe(true);
    // Feb 10 (19 days left): 4000 × 19/28 = 2714 owed, but the period invoice holds 1000; the rest
    // was paid by the upgrade's invoice, which a cancellation does not refund: refused.
    expect((await refusedFields(cancel(sub.id, 'prorate', '2027-02-10T00:00:00Z')))?.refund_type).toContain(
      'owes 2714 CHF',
    );
    // Feb 22 (a quarter left) on the big plan: 4000 × 7/28 = 1000, from the period invoice's 1000.
    const stripe = stripeRefundSucceeds('re_basis_f1_up');
    const result = await cancel(sub.id, 'prorate', '2027-02-22T00:00:00Z');
    expect(stripe.isDone()).toBe(true);
    expect(refunded(result)).toBe(1000n);
    // Paid 1000 + 2250, back 1000: 2250 kept = a week small (250) + two weeks big (2000).
    const books = await ledgerIn(app, 'CHF');
    expect((books.revenue ?? 0) + (books.refunds ?? 0)).toBe(-1800);
    expect(books.tax_payable).toBe(-450);
  });

  /** The product of plan `id`. */
  const productOf = async (id: string) =>
    (await db().selectFrom('plans').select('product_id').where('id', '=', id).executeTakeFirstOrThrow())
      .product_id;

  it("F3: a coupon restricted to the first plan's product does not discount the credit of a later plan it never discounted", async () => {
    // No tax. A (product P1) 1000, B and C (product P2) 2000 and 4000; 50% off P1 only.
    const a = await untaxedPlan('PLN', 1000);
    const b = await untaxedPlan('PLN', 2000);
    const c = await untaxedPlan('PLN', 4000);
    await db()
      .updateTable('plans')
      .set({ product_id: await productOf(b) })
      .where('id', '=', c)
      .execute();
    await createCoupon(db(), 'system', {
      code: 'HALF-P1-PLN',
      percentOffPpm: 500_000,
      duration: 'FOREVER',
      appliesToProducts: [await productOf(a)],
    });
    const { customer } = await customerWith(app);
    const { subscription, invoices } = await subscribeFeb1({
      customerId: customer.id,
      planId: a,
      couponCode: 'HALF-P1-PLN',
    });
    expect(invoices[0]?.total).toBe(500n);
    // Feb 15: A → B. Credit A's half as charged: −500 + 250 (coupon) = −250; B's half 1000, no coupon.
    const first = await changeAt(subscription.id, { planId: b }, '2027-02-15T00:00:00Z');
    expect(first.proration.subtotal).toBe(750n);
    // Feb 22 (7 days left): B → C. B's unused week was charged 2000 × 7/28 = 500 undiscounted: −500;
    // C's week 4000 × 7/28 = 1000: 500 owed.
    const preview = await changeAt(subscription.id, { planId: c }, '2027-02-22T00:00:00Z', true);
    expect(preview.proration.lines.map((l) => [l.type, l.signedAmount, l.couponId !== undefined])).toEqual([
      ['CREDIT', -500n, false],
      ['CHARGE', 1000n, false],
    ]);
    const second = await changeAt(subscription.id, { planId: c }, '2027-02-22T00:00:00Z');
    expect([second.proration.subtotal, second.invoice?.total]).toEqual([500n, 500n]);
    // Invoiced 500 + 750 + 500 = 1750, all owed: half a month A after coupon (250), a week B (500), a week C (1000).
    expect(await ledgerIn(app, 'PLN')).toEqual({ 'receivable:customer': 1750, revenue: -1750 });
  });

  it('F4: after a change with proration none, a prorated change credits the price that was paid, not the unpaid one', async () => {
    // No tax. D 1000, E 3000.
    const dPlan = await untaxedPlan('DKK', 1000);
    const ePlan = await untaxedPlan('DKK', 3000);
    const { customer } = await customerWith(app);
    const { subscription } = await subscribeFeb1({ customerId: customer.id, planId: dPlan });
    // Feb 8: D → E with proration none: nothing billed, E bills from March.
    const free = await changeAt(
      subscription.id,
      { planId: ePlan, proration: 'none' },
      '2027-02-08T00:00:00Z',
    );
    expect(free.invoice).toBeNull();
    // Feb 15 (half left): E → D prorated. February was charged D's 1000: its unused half, 500, back;
    // D's half, 500, charged: nothing either way.
    const back = await changeAt(subscription.id, { planId: dPlan }, '2027-02-15T00:00:00Z');
    expect(back.proration.lines.map((l) => [l.type, l.signedAmount])).toEqual([
      ['CREDIT', -500n],
      ['CHARGE', 500n],
    ]);
    expect([back.credited, back.invoice]).toEqual([0n, null]);
    expect(await creditOf(customer.id)).toEqual([]);
    expect(await ledgerIn(app, 'DKK')).toEqual({ 'receivable:customer': 1000, revenue: -1000 });
    // Same with a quantity change: × 2 with proration none, then back to × 1 prorated: 500 − 500.
    await changeAt(subscription.id, { quantity: 2, proration: 'none' }, '2027-02-16T00:00:00Z');
    const quantity = await changeAt(subscription.id, { quantity: 1 }, '2027-02-22T00:00:00Z', true);
    expect([quantity.proration.subtotal, quantity.credited]).toEqual([0n, 0n]);
  });

  it('F6: a change credits the unused time with the tax the period was billed with, not today’s', async () => {
    // Big 1000, small 500, no plan tax. No address when February is invoiced (1000, no tax); on
    // Feb 10 a French address (20%).
    const big = await untaxedPlan('HUF', 1000);
    const small = await untaxedPlan('HUF', 500);
    const { customer } = await customerWith(app);
    const { subscription, invoices } = await subscribeFeb1({ customerId: customer.id, planId: big });
    expect(invoices[0]).toMatchObject({ total: 1000n, tax: 0n });
    // Paid first: over an unpaid invoice the credit lowers what it owes instead (proration-open-invoice.test.ts).
    await payOpenOffline(db(), subscription.id);
    expect(
      (await app.api('POST', '/v1/tax-rates', { display_name: 'TVA HUF', country: 'FR', percent: 20 }))
        .status,
    ).toBe(201);
    await db()
      .updateTable('customers')
      .set({ address_country: 'FR' })
      .where('id', '=', customer.id)
      .execute();
    // Feb 15 (half left): big → small. Big's unused half: 500, no tax paid on it. Small's half: 250 +
    // 50 tax = 300. Customer credit: 500 − 300 = 200 (net 250 − tax 50).
    const change = await changeAt(subscription.id, { planId: small }, '2027-02-15T00:00:00Z');
    expect(change.proration.lines.map((l) => [l.type, l.signedAmount, l.taxAmount])).toEqual([
      ['CREDIT', -500n, 0n],
      ['CHARGE', 250n, 50n],
    ]);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'HUF', amount: 200 }]);
    expect(await ledgerIn(app, 'HUF')).toEqual({
      'receivable:customer': 0,
      offline_receipts: 1000,
      'customer_credit:customer': -200,
      revenue: -1000 + 250,
      tax_payable: -50,
    });
  });

  it('a full proration after a prorated change is refused: it would credit the whole period at a price charged for part of it', async () => {
    // No tax. D 1000 paid… owed for February; Feb 15 → E 3000 prorated: −500 + 1500 = 1000 invoiced.
    const dPlan = await untaxedPlan('NZD', 1000);
    const ePlan = await untaxedPlan('NZD', 3000);
    const fPlan = await untaxedPlan('NZD', 5000);
    const { customer } = await customerWith(app);
    const { subscription } = await subscribeFeb1({ customerId: customer.id, planId: dPlan });
    const up = await changeAt(subscription.id, { planId: ePlan }, '2027-02-15T00:00:00Z');
    expect(up.invoice?.total).toBe(1000n);
    // Feb 22 → F with `full`: February charged E 2000 in all (1000 + 1000), not E's whole 3000:
    // crediting 3000 would give back 1000 never charged. Refused, nothing changes.
    const full = changeAt(subscription.id, { planId: fPlan, proration: 'full' }, '2027-02-22T00:00:00Z');
    await expect(full).rejects.toThrow(ValidationError);
    await expect(full).rejects.toMatchObject({ fields: { proration: expect.stringContaining('2000') } });
    expect(await ledgerIn(app, 'NZD')).toEqual({ 'receivable:customer': 2000, revenue: -2000 });
    // Prorated instead: E's week back (750), F's week (1250): 500.
    const prorated = await changeAt(subscription.id, { planId: fPlan }, '2027-02-22T00:00:00Z');
    expect(prorated.invoice?.total).toBe(500n);
  });

  it('a downgrade never credits a period that was not paid: nothing of a VOID period invoice, and an UNCOLLECTIBLE one is refused', async () => {
    // No tax. Big 1000, small 400; two subscriptions of one customer, February invoices unpaid.
    const big = await untaxedPlan('AUD', 1000);
    const small = await untaxedPlan('AUD', 400);
    const { customer } = await customerWith(app);
    const subscribe = () => subscribeFeb1({ customerId: customer.id, planId: big });
    const voided = await subscribe();
    const uncollectible = await subscribe();
    expect((await app.api('POST', `/v1/invoices/${voided.invoices[0]!.id}/void`)).status).toBe(200);
    expect(
      (await app.api('POST', `/v1/invoices/${uncollectible.invoices[0]!.id}/mark-uncollectible`)).status,
    ).toBe(200);
    // VOID: February was charged nothing, so nothing is credited; small's half (200) is charged.
    const fromVoid = await changeAt(voided.subscription.id, { planId: small }, '2027-02-15T00:00:00Z');
    expect(fromVoid.proration.lines.map((l) => [l.type, l.signedAmount])).toEqual([['CHARGE', 200n]]);
    expect([fromVoid.credited, fromVoid.invoice?.total]).toEqual([0n, 200n]);
    // UNCOLLECTIBLE: big's unused half (500) was never paid; 300 of customer credit, refundable in
    // cash, would pay it out. Refused, nothing changes.
    const fromUncollectible = changeAt(
      uncollectible.subscription.id,
      { planId: small },
      '2027-02-15T00:00:00Z',
    );
    await expect(fromUncollectible).rejects.toThrow(ValidationError);
    await expect(fromUncollectible).rejects.toMatchObject({
      fields: { proration: expect.stringContaining(uncollectible.invoices[0]!.id) },
    });
    expect(await creditOf(customer.id)).toEqual([]);
    // With proration none it goes through: small bills from March.
    const none = await changeAt(
      uncollectible.subscription.id,
      { planId: small, proration: 'none' },
      '2027-02-15T00:00:00Z',
    );
    expect([none.credited, none.invoice]).toEqual([0n, null]);
    expect(await creditOf(customer.id)).toEqual([]);
  });

  it('a second change credits the first one’s charge with the tax rates it was charged with, after the address changed', async () => {
    // A 1000, B 2000, C 4000, no plan tax; the customer is in Germany (19%), then has no address.
    const a = await untaxedPlan('ISK', 1000);
    const b = await untaxedPlan('ISK', 2000);
    const c = await untaxedPlan('ISK', 4000);
    const { customer } = await customerWith(app);
    expect(
      (await app.api('POST', '/v1/tax-rates', { display_name: 'MwSt ISK', country: 'DE', percent: 19 }))
        .status,
    ).toBe(201);
    await db()
      .updateTable('customers')
      .set({ address_country: 'DE' })
      .where('id', '=', customer.id)
      .execute();
    const { subscription, invoices } = await subscribeFeb1({ customerId: customer.id, planId: a });
    expect(invoices[0]).toMatchObject({ subtotal: 1000n, tax: 190n, total: 1190n });
    // Feb 15: A → B. −500 − 95 and +1000 + 190: 500 + 95 = 595.
    const first = await changeAt(subscription.id, { planId: b }, '2027-02-15T00:00:00Z');
    expect(first.invoice).toMatchObject({ subtotal: 500n, tax: 95n, total: 595n });
    await db()
      .updateTable('customers')
      .set({ address_country: null })
      .where('id', '=', customer.id)
      .execute();
    // Feb 22: B → C. B's unused week was charged 500 + 95 (19%): −500 − 95; C's week 1000, no tax
    // now: 500 − 95 = 405.
    const second = await changeAt(subscription.id, { planId: c }, '2027-02-22T00:00:00Z');
    expect(second.proration.lines.map((l) => [l.type, l.signedAmount, l.taxAmount])).toEqual([
      ['CREDIT', -500n, -95n],
      ['CHARGE', 1000n, 0n],
    ]);
    expect(second.invoice).toMatchObject({ subtotal: 500n, tax: -95n, total: 405n });
    // 1190 + 595 + 405 owed; February kept 2000 of revenue and 190 of tax (A's half and B's week taxed).
    expect(await ledgerIn(app, 'ISK')).toEqual({
      'receivable:customer': 2190,
      revenue: -2000,
      tax_payable: -190,
    });
  });

  it('a change after an upgrade whose invoice was voided is refused: its price was taken back, so its unused time cannot be credited', async () => {
    // No tax. D 1000, E 3000; Feb 15 D → E prorated: 1000 invoiced, then voided.
    const dPlan = await untaxedPlan('SGD', 1000);
    const ePlan = await untaxedPlan('SGD', 3000);
    const { customer } = await customerWith(app);
    const { subscription } = await subscribeFeb1({ customerId: customer.id, planId: dPlan });
    const up = await changeAt(subscription.id, { planId: ePlan }, '2027-02-15T00:00:00Z');
    expect(up.invoice?.total).toBe(1000n);
    expect((await app.api('POST', `/v1/invoices/${up.invoice!.id}/void`)).status).toBe(200);
    // Feb 22 E → D prorated would credit E's week (750) never kept: refused, nothing changes.
    expect(
      (await refusedFields(changeAt(subscription.id, { planId: dPlan }, '2027-02-22T00:00:00Z')))?.proration,
    ).toContain(up.invoice!.id);
    expect(await creditOf(customer.id)).toEqual([]);
    expect(await ledgerIn(app, 'SGD')).toEqual({ 'receivable:customer': 1000, revenue: -1000 });
  });

  /** A customer taxed by an inclusive named rate of 20% (in `country`), on a plan with no tax of its own. */
  const inclusivelyTaxed = async (currency: string, country: string) => {
    const { customer, method } = await customerWith(app, { stripe: true });
    expect(
      (
        await app.api('POST', '/v1/tax-rates', {
          display_name: `VAT ${currency}`,
          country,
          percent: 20,
          inclusive: true,
        })
      ).status,
    ).toBe(201);
    await db()
      .updateTable('customers')
      .set({ address_country: country })
      .where('id', '=', customer.id)
      .execute();
    return { customer, method };
  };

  it('an inclusive tax rate on a tax-exclusive plan: a change credits the unused time as charged, its tax included', async () => {
    // Plan 1200, tax-exclusive, no plan tax; the customer's rate is inclusive: 1000 net + 200 tax.
    const { customer } = await inclusivelyTaxed('QAR', 'PT');
    const big = await untaxedPlan('QAR', 1200);
    const free = await untaxedPlan('QAR', 0);
    const { subscription, invoices } = await subscribeFeb1({ customerId: customer.id, planId: big });
    expect(invoices[0]).toMatchObject({ subtotal: 1000n, tax: 200n, total: 1200n });
    // Feb 15 (half left) to a free plan: half of what was charged, 500 + 100 tax, not 1000 split again
    // as if it included 20% (417 + 83).
    const change = await changeAt(subscription.id, { planId: free }, '2027-02-15T00:00:00Z', true);
    expect(change.proration.lines.map((l) => [l.type, l.signedAmount, l.taxAmount])).toEqual([
      ['CREDIT', -500n, -100n],
    ]);
    expect(change.proration.total).toBe(-600n);
  });

  it('an inclusive tax rate on a tax-exclusive plan: cancel now with prorate, no change, gives back half of the 1200 paid', async () => {
    const { customer, method } = await inclusivelyTaxed('SAR', 'GR');
    const plan = await untaxedPlan('SAR', 1200);
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan,
      method: method!.id,
      start: d('2027-02-01T00:00:00Z'),
    });
    // 1200 paid (1000 + 200 tax). Feb 15, half left: 600 back.
    const stripe = stripeRefundSucceeds('re_basis_inclusive_rate');
    const result = await cancel(sub.id, 'prorate', '2027-02-15T00:00:00Z');
    expect(stripe.isDone()).toBe(true);
    expect(refunded(result)).toBe(600n);
  });

  /** The state of a subscription whose prorated change of the period ran before migration 0042: no basis stored. */
  const basisNotStored = (id: string) =>
    db().updateTable('subscriptions').set({ charged_basis: null }).where('id', '=', id).execute();

  it('a period changed before charged bases were stored: a prorated change is refused (its price is not known), proration none goes through', async () => {
    // No tax. B 3000 (period invoice, paid: before the deploy a change's credit was the customer's
    // whatever the invoice); Feb 15 B → A 1000 prorated before the deploy: 1000 of credit.
    const a = await untaxedPlan('RON', 1000);
    const b = await untaxedPlan('RON', 3000);
    const { customer } = await customerWith(app);
    const { subscription } = await subscribeFeb1({ customerId: customer.id, planId: b });
    await payOpenOffline(db(), subscription.id);
    const down = await changeAt(subscription.id, { planId: a }, '2027-02-15T00:00:00Z');
    expect(down.credited).toBe(1000n);
    await basisNotStored(subscription.id);
    // Feb 22 A → B: A's quarter (250) was charged by that change, but the period invoice says B, so
    // B's quarter (750) would be credited and B's week free. Refused, nothing changes.
    const up = () => changeAt(subscription.id, { planId: b }, '2027-02-22T00:00:00Z');
    expect((await refusedFields(up()))?.proration).toContain('migration 0042');
    expect(await creditOf(customer.id)).toEqual([{ currency: 'RON', amount: 1000 }]);
    expect(await ledgerIn(app, 'RON')).toEqual({
      'customer_credit:customer': -1000,
      'receivable:customer': 0,
      offline_receipts: 3000,
      revenue: -2000,
    });
    // With proration none it goes through: B bills from March.
    const none = await changeAt(subscription.id, { planId: b, proration: 'none' }, '2027-02-22T00:00:00Z');
    expect([none.credited, none.invoice]).toEqual([0n, null]);
  });

  it('a period upgraded before charged bases were stored: a prorate cancellation refund is refused, refund_type none goes through', async () => {
    const { big, sub } = await paidFeb1('MAD', 'small');
    // Feb 15 small → big before the deploy: 1500 invoiced (1200 + 25%).
    const up = await changeAt(sub.id, { planId: big }, '2027-02-15T00:00:00Z');
    expect(up.invoice?.total).toBe(1500n);
    await basisNotStored(sub.id);
    // Feb 22: the period invoice says small, the plan in force was charged by the change: refused.
    expect((await refusedFields(cancel(sub.id, 'prorate', '2027-02-22T00:00:00Z')))?.refund_type).toContain(
      up.invoice!.id,
    );
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}`)).body.status).toBe('ACTIVE');
    const none = await cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      gateways(),
      sub.id,
      { when: 'now', refundType: 'none' },
      d('2027-02-22T00:00:00Z'),
    );
    expect([none.subscription.status, none.refunds]).toEqual(['CANCELLED', []]);
  });

  it('a change after the period invoice was refunded by hand is refused: its unused time could be given back twice', async () => {
    const { customer, small, sub } = await paidFeb1('MXN', 'big');
    // 4000 paid, all of it refunded by hand.
    await refundByHand(sub.invoice.id, 4000, 're_basis_by_hand');
    // Feb 15 downgrade: big's unused half (1500 of customer credit) would be paid a second time.
    expect(
      (await refusedFields(changeAt(sub.id, { planId: small }, '2027-02-15T00:00:00Z')))?.proration,
    ).toContain(`${sub.invoice.id} (4000 MXN of its recurring lines)`);
    expect(await creditOf(customer.id)).toEqual([]);
    // With proration none it goes through: small bills from March.
    const none = await changeAt(sub.id, { planId: small, proration: 'none' }, '2027-02-15T00:00:00Z');
    expect([none.credited, none.invoice]).toEqual([0n, null]);
    expect(await creditOf(customer.id)).toEqual([]);
  });

  it('a downgrade after an upgrade charged at renewal (OPEN) is refused: the upgrade’s unused time is not paid yet', async () => {
    // No tax. A 1000, B 3000; Feb 15 A → B prorate_at_renewal: 1000 OPEN until March 1.
    const a = await untaxedPlan('TRY', 1000);
    const b = await untaxedPlan('TRY', 3000);
    const { customer } = await customerWith(app);
    const { subscription } = await subscribeFeb1({ customerId: customer.id, planId: a });
    const up = await changeAt(
      subscription.id,
      { planId: b, proration: 'prorate_at_renewal' },
      '2027-02-15T00:00:00Z',
    );
    expect([up.invoice?.total, up.invoice?.status]).toEqual([1000n, 'OPEN']);
    // Feb 22 B → A would credit B's quarter (750, not paid) and charge A's (250): 500 of customer
    // credit that a void of the upgrade's invoice would leave. Refused, nothing changes.
    const message = (await refusedFields(changeAt(subscription.id, { planId: a }, '2027-02-22T00:00:00Z')))
      ?.proration;
    expect(message).toContain(`${up.invoice!.id} (OPEN, 1000 due)`);
    // The way out named is collecting that invoice, not voiding it (which is refused next, below).
    expect(message).toContain(`POST /v1/invoices/${up.invoice!.id}/charge`);
    expect(message).not.toMatch(/void it|DRAFT/);
    expect(await creditOf(customer.id)).toEqual([]);
    expect(await ledgerIn(app, 'TRY')).toEqual({ 'receivable:customer': 2000, revenue: -2000 });
    // Voided, the upgrade's price is taken back: the downgrade is refused again, for that.
    expect((await app.api('POST', `/v1/invoices/${up.invoice!.id}/void`)).status).toBe(200);
    expect(
      (await refusedFields(changeAt(subscription.id, { planId: a }, '2027-02-22T00:00:00Z')))?.proration,
    ).toContain(`${up.invoice!.id} (VOID)`);
  });

  it('a change after the setup fee alone was refunded by hand is not refused: the plan’s time was not given back', async () => {
    const { customer, small, sub } = await paidFeb1('ISK', 'big', 2000n);
    // 4000 of plan + 2500 of setup fee (2000 + 25%) paid; the setup fee refunded by hand.
    const paid = await db()
      .selectFrom('invoices')
      .select(['total', 'amount_paid'])
      .where('id', '=', sub.invoice.id)
      .executeTakeFirstOrThrow();
    expect([paid.total, paid.amount_paid]).toEqual([6500n, 6500n]);
    await refundByHand(sub.invoice.id, 2500, 're_basis_setup_fee');
    // Feb 15 downgrade: big's unused half (1500, paid and never given back) becomes customer credit.
    const change = await changeAt(sub.id, { planId: small }, '2027-02-15T00:00:00Z');
    expect(change.credited).toBe(1200n);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'ISK', amount: 1500 }]);
  });

  it('a change after the plan was refunded by hand beyond the setup fee is refused, naming what of its plan was given back', async () => {
    const { customer, small, sub } = await paidFeb1('KRW', 'big', 2000n);
    // 6500 paid; 3000 refunded: the setup fee's 2500 first, then 500 of the plan.
    await refundByHand(sub.invoice.id, 3000, 're_basis_setup_and_plan');
    expect(
      (await refusedFields(changeAt(sub.id, { planId: small }, '2027-02-15T00:00:00Z')))?.proration,
    ).toContain(`${sub.invoice.id} (500 KRW of its recurring lines)`);
    expect(await creditOf(customer.id)).toEqual([]);
  });

  it('a change after last period’s usage was refunded by hand is not refused: the refund gave back usage, not the plan’s time', async () => {
    // No tax. Big 3000 and small 1000 a month, API calls at 2 each billed in arrears.
    const metered = [
      {
        code: 'api_calls',
        aggregation: 'SUM',
        price: { model: 'TIERED', tiers: [{ up_to: null, unit_amount: 2 }] },
      },
    ];
    const big = await insertPlan(db(), {
      currency: 'CZK',
      price: { model: 'FLAT_FEE', amount: 3000 },
      metered,
    });
    const small = await insertPlan(db(), {
      currency: 'CZK',
      price: { model: 'FLAT_FEE', amount: 1000 },
      metered,
    });
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan: big,
      method: method!.id,
      start: d('2027-01-01T00:00:00Z'),
    });
    // 400 calls in January: 800 on February's invoice, next to February's 3000; all paid by card.
    const at = d('2027-01-20T00:00:00Z');
    await recordUsageEvent(
      db(),
      'system',
      { eventId: 'basis_usage_jan', subscriptionId: sub.id, code: 'api_calls', value: 400n, timestamp: at },
      at,
    );
    await renewDueSubscriptions(db(), 'system', d('2027-02-01T00:10:00Z'));
    const charge = stripeChargeSucceeds();
    expect((await app.api('POST', `/v1/subscriptions/${sub.id}/settle`)).status).toBe(200);
    expect(charge.scope.isDone()).toBe(true);
    const february = await db()
      .selectFrom('invoices')
      .select(['id', 'total', 'amount_paid'])
      .where('subscription_id', '=', sub.id)
      .where('period_index', '=', 1)
      .executeTakeFirstOrThrow();
    expect([february.total, february.amount_paid]).toEqual([3800n, 3800n]);
    // January's usage (800) refunded by hand: February's plan time is untouched.
    await refundByHand(february.id, 800, 're_basis_usage');
    // Feb 15 downgrade: credit big's unused half (1500), charge small's (500): 1000 of customer credit.
    const change = await changeAt(sub.id, { planId: small }, '2027-02-15T00:00:00Z');
    expect(change.credited).toBe(1000n);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'CZK', amount: 1000 }]);
  });

  it('a change after a duplicate payment of the period invoice was refunded is not refused: the refund gave back the overpayment, not the plan’s time', async () => {
    const { customer, small, sub } = await paidFeb1('RON', 'big');
    // The 4000 paid a second time by the same card (it became customer credit), then that duplicate
    // refunded.
    const first = await db()
      .selectFrom('transactions')
      .selectAll()
      .where('invoice_id', '=', sub.invoice.id)
      .executeTakeFirstOrThrow();
    const duplicate = await db()
      .insertInto('transactions')
      .values({
        id: newId('txn'),
        invoice_id: sub.invoice.id,
        customer_id: customer.id,
        payment_method_id: first.payment_method_id,
        gateway: 'stripe',
        gateway_account: first.gateway_account,
        amount: 4000n,
        currency: 'RON',
        status: 'pending',
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordChargeResult(work, duplicate, {
        status: 'succeeded',
        gatewayTransactionId: 'pi_basis_duplicate',
      }),
    );
    expect(await creditOf(customer.id)).toEqual([{ currency: 'RON', amount: 4000 }]);
    stripeRefundSucceeds('re_basis_duplicate');
    const refund = await app.api('POST', `/v1/invoices/${sub.invoice.id}/refund`, {
      amount: 4000,
      transaction: duplicate.id,
    });
    expect([refund.status, refund.body.error]).toEqual([201, undefined]);
    expect(await creditOf(customer.id)).toEqual([]);
    const change = await changeAt(sub.id, { planId: small }, '2027-02-15T00:00:00Z');
    expect(change.credited).toBe(1200n);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'RON', amount: 1500 }]);
  });
});
