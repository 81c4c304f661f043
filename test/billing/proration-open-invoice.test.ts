import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markUncollectible } from '../../src/billing/bad-debt.ts';
import { recordOfflinePayment, voidInvoice } from '../../src/billing/invoices.ts';
import { changeSubscription, splitCredit } from '../../src/billing/proration.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import { newId } from '../../src/db/ids.ts';
import { ValidationError } from '../../src/errors.ts';
import { eventTypeOf } from '../../src/outbound/events.ts';
import { STRIPE_API_BASE, startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, ledgerIn } from '../support/collection.ts';
import { paidStripeInvoice, stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { insertPlan } from '../support/plans.ts';

/**
 * A downgrade over a period invoice not paid yet (OPEN, partly paid or not) lowers what that invoice
 * still owes first, as a credit note on an open invoice does (Stripe); only what was paid beyond the
 * lowered total becomes customer credit, which is refundable in cash. Before, the whole net credit
 * became customer credit and outlived a void or write-off of the invoice: credit, refundable in cash,
 * for a period never paid (review R2/R2b).
 *
 * Every scenario: a plan of 2000 a month from Feb 1 2027 (28 days), changed on Feb 15 (14 of 28 days
 * left) to a plan of 1000: 1000 of unused time credited, 500 of the rest charged, 500 net credit
 * (plus its tax where the plans are taxed). One currency per scenario, so each reads its own books.
 */
describe('a downgrade over an unpaid period invoice', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  const feb1 = new Date('2027-02-01T00:00:00Z');
  const feb15 = new Date('2027-02-15T00:00:00Z');
  const invoiceRow = (id: string) =>
    db.selectFrom('invoices').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  /** `customer` (a new one when omitted) subscribed from Feb 1 to 2000 of `currency` at `taxPpm`, its period invoice OPEN; the plan of 1000 to go to. */
  async function subscribed(currency: string, o: { customer?: string; taxPpm?: number } = {}) {
    const plan = (amount: number) =>
      insertPlan(db, {
        name: `Flat ${amount}`,
        currency,
        price: { model: 'FLAT_FEE', amount },
        taxRatePpm: o.taxPpm ?? 0,
      });
    const [big, small] = [await plan(2000), await plan(1000)];
    const customer =
      o.customer ?? (await app.api('POST', '/v1/customers', { email: 'ada@example.com' })).body.id;
    const { subscription, invoices } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: big },
      feb1,
    );
    expect(invoices.map((i) => i.status)).toEqual(['OPEN']);
    return { customer, subscription, periodInvoice: invoices[0]!.id, small };
  }

  it('void after the downgrade leaves no customer credit and empty books (NOK)', async () => {
    const { customer, subscription, periodInvoice, small } = await subscribed('NOK');
    const change = await changeSubscription(db, 'system', subscription.id, { planId: small }, feb15, false);
    // 2000 × 14/28 = 1000 unused credited, 1000 × 14/28 = 500 charged: 500 net, all of it off the
    // 2000 still owed (1500 left due); none of it is customer credit.
    expect(change.credited).toBe(500n);
    expect(change.creditedToInvoice).toEqual({ invoice: periodInvoice, amount: 500n });
    expect(await invoiceRow(periodInvoice)).toMatchObject({
      status: 'OPEN',
      total: 2000n,
      proration_credited: 500n,
      credit_applied: 0n,
      amount_due: 1500n,
    });
    const credit = await app.api('GET', `/v1/customers/${customer}`);
    expect(credit.body.credit).toEqual([]);
    expect(await ledgerIn(app, 'NOK')).toMatchObject({
      'receivable:customer': 1500,
      revenue: -1500,
    });
    await voidInvoice(db, 'system', periodInvoice);
    // The void reverses the 2000 and the 500 taken off it: nothing owed, nothing earned, no credit
    // (before: 500 of customer credit, refundable in cash, and revenue −500).
    const books = await ledgerIn(app, 'NOK');
    expect(books['customer_credit:customer'] ?? 0).toBe(0);
    expect(books['receivable:customer'] ?? 0).toBe(0);
    expect(books.revenue ?? 0).toBe(0);
    expect(await invoiceRow(periodInvoice)).toMatchObject({ status: 'VOID', amount_due: 0n });
  });

  it('a write-off after the downgrade writes off what is left due and leaves no customer credit (SEK)', async () => {
    const { subscription, periodInvoice, small } = await subscribed('SEK');
    await changeSubscription(db, 'system', subscription.id, { planId: small }, feb15, false);
    await markUncollectible(db, 'system', periodInvoice, new Date('2027-02-16T00:00:00Z'));
    // 2000 − 500 credited = 1500 written off (before: 2000 written off and 500 of customer credit).
    const books = await ledgerIn(app, 'SEK');
    expect(books['customer_credit:customer'] ?? 0).toBe(0);
    expect(books['receivable:customer'] ?? 0).toBe(0);
    expect(books.bad_debt).toBe(1500);
    expect(books.revenue).toBe(-1500);
    expect(await invoiceRow(periodInvoice)).toMatchObject({ status: 'UNCOLLECTIBLE', amount_due: 1500n });
  });

  it('a partly paid invoice gives customer credit only for what was paid beyond the lowered total (DKK, 25% tax)', async () => {
    const { subscription, periodInvoice, small } = await subscribed('DKK', { taxPpm: 250_000 });
    // 2000 + 500 tax = 2500, 2000 of it paid by bank transfer: 500 left due.
    await recordOfflinePayment(db, 'system', periodInvoice, { method: 'BANK', amount: 2000n });
    const change = await changeSubscription(db, 'system', subscription.id, { planId: small }, feb15, false);
    // Unused 1000 + 250 tax credited, the rest 500 + 125 tax charged: 500 + 125 = 625 net credit.
    // 500 of it pays off what is left due (its tax share 125 × 500/625 = 100, so 400 net + 100 tax):
    // the invoice is PAID. The lowered total is 2500 − 625 = 1875, 2000 was paid: 125 (100 + 25 tax)
    // is the customer's credit (before: all 625, and 500 still due).
    expect(change.creditedToInvoice).toEqual({ invoice: periodInvoice, amount: 500n });
    expect(await invoiceRow(periodInvoice)).toMatchObject({
      status: 'PAID',
      total: 2500n,
      amount_paid: 2000n,
      proration_credited: 500n,
      amount_due: 0n,
      charge_at: null,
    });
    const books = await ledgerIn(app, 'DKK');
    expect(books['customer_credit:customer']).toBe(-125);
    expect(books['receivable:customer'] ?? 0).toBe(0);
    // Revenue 2000 − 400 − 100 = 1500, tax 500 − 100 − 25 = 375: the 1875 the period now costs.
    expect(books.revenue).toBe(-1500);
    expect(books.tax_payable).toBe(-375);
  });

  it('a credit that clears a PAST_DUE period invoice makes it PAID and the subscription ACTIVE, as a payment would (EUR)', async () => {
    const { customer, subscription, periodInvoice, small } = await subscribed('EUR');
    // 1600 of 2000 paid by bank transfer; an automatic charge of the other 400 failed: PAST_DUE.
    await recordOfflinePayment(db, 'system', periodInvoice, { method: 'BANK', amount: 1600n });
    await db.updateTable('invoices').set({ payment_attempts: 1 }).where('id', '=', periodInvoice).execute();
    await db
      .updateTable('subscriptions')
      .set({ status: 'PAST_DUE' })
      .where('id', '=', subscription.id)
      .execute();
    const change = await changeSubscription(db, 'system', subscription.id, { planId: small }, feb15, false);
    // 500 net credit: 400 clears the invoice, the lowered total 1500 was paid 1600, so 100 is credit.
    expect(change.creditedToInvoice).toEqual({ invoice: periodInvoice, amount: 400n });
    expect(change.subscription.status).toBe('ACTIVE');
    expect(await invoiceRow(periodInvoice)).toMatchObject({
      status: 'PAID',
      amount_due: 0n,
      proration_credited: 400n,
    });
    expect((await app.api('GET', `/v1/customers/${customer}`)).body.credit).toEqual([
      { currency: 'EUR', amount: 100 },
    ]);
  });

  it('the change answer over the API names the invoice and the amount taken off it (RON)', async () => {
    const plan = (amount: number) =>
      insertPlan(db, { currency: 'RON', price: { model: 'FLAT_FEE', amount }, taxRatePpm: 0 });
    const [big, small] = [await plan(2000), await plan(1000)];
    const customer = (await app.api('POST', '/v1/customers', { email: 'ada@example.com' })).body.id;
    const created = await app.api('POST', '/v1/subscriptions', { customer, plan: big });
    expect(created.status).toBe(201);
    const invoices = await db
      .selectFrom('invoices')
      .select(['id', 'status'])
      .where('subscription_id', '=', created.body.id)
      .execute();
    expect(invoices.map((i) => i.status)).toEqual(['OPEN']);
    const changed = await app.api('POST', `/v1/subscriptions/${created.body.id}/change`, { plan: small });
    expect(changed.status).toBe(200);
    // Changed moments after the start: about the whole month of 2000 − 1000 credited (to the second),
    // all of it off the 2000 still owed.
    const credit = -changed.body.proration.total;
    expect(credit).toBeGreaterThan(0);
    expect(changed.body.credited_to_invoice).toEqual({ invoice: invoices[0]!.id, amount: credit });
    const invoice = await app.api('GET', `/v1/invoices/${invoices[0]!.id}`);
    expect(invoice.body).toMatchObject({ proration_credited: credit, amount_due: 2000 - credit });
    expect((await app.api('GET', `/v1/customers/${customer}`)).body.credit).toEqual([]);
  });

  it('a change that nets 0 (a credit before tax the tax takes back) books its lines and takes nothing off the invoice (CHF)', async () => {
    const untaxed = await insertPlan(db, { currency: 'CHF', price: { model: 'FLAT_FEE', amount: 1000 } });
    const taxed = await insertPlan(db, {
      currency: 'CHF',
      price: { model: 'FLAT_FEE', amount: 800 },
      taxRatePpm: 250_000,
    });
    const customer = (await app.api('POST', '/v1/customers', { email: 'ada@example.com' })).body.id;
    const { subscription, invoices } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: untaxed },
      feb1,
    );
    // Half left: 500 credited untaxed, 400 + 100 tax charged: subtotal −100, tax +100, total 0.
    const change = await changeSubscription(db, 'system', subscription.id, { planId: taxed }, feb15, false);
    expect(change.proration).toMatchObject({ subtotal: -100n, tax: 100n, total: 0n });
    expect(change.creditedToInvoice).toBeNull();
    expect(await invoiceRow(invoices[0]!.id)).toMatchObject({ amount_due: 1000n, proration_credited: 0n });
    // Revenue 1000 − 100, tax payable 100: the 1000 still owed.
    const books = await ledgerIn(app, 'CHF');
    expect(books).toMatchObject({ 'receivable:customer': 1000, revenue: -900, tax_payable: -100 });
    expect(books['customer_credit:customer'] ?? 0).toBe(0);
  });

  it('splits the credit with its tax share, the whole tax when all of it is taken off', () => {
    // 625 = 500 + 125 tax: 500 off the invoice → 100 tax there (125 × 500/625), 25 to the customer.
    expect(splitCredit({ subtotal: -500n, tax: -125n, total: -625n }, 500n)).toEqual({
      onInvoice: { subtotal: -400n, tax: -100n, total: -500n },
      toCustomer: { subtotal: -100n, tax: -25n, total: -125n },
    });
    expect(splitCredit({ subtotal: -500n, tax: -125n, total: -625n }, 625n)).toEqual({
      onInvoice: { subtotal: -500n, tax: -125n, total: -625n },
      toCustomer: { subtotal: 0n, tax: 0n, total: 0n },
    });
    // Nothing off (a net 0: 100 credited before tax, 100 more tax): all of it stays as it was booked.
    expect(splitCredit({ subtotal: -100n, tax: 100n, total: 0n }, 0n)).toEqual({
      onInvoice: { subtotal: 0n, tax: 0n, total: 0n },
      toCustomer: { subtotal: -100n, tax: 100n, total: 0n },
    });
    // 7 = 6 + 1 tax, 3 off: round(1 × 3/7 = 0.43) = 0 tax there.
    expect(splitCredit({ subtotal: -6n, tax: -1n, total: -7n }, 3n)).toEqual({
      onInvoice: { subtotal: -3n, tax: 0n, total: -3n },
      toCustomer: { subtotal: -3n, tax: -1n, total: -4n },
    });
  });

  it('a customer-credit refund cannot pay out the credit of an unpaid period (PLN)', async () => {
    // The customer has a card payment of 4620 (a manual invoice paid through Stripe) a credit refund could go through.
    const paid = await paidStripeInvoice(app, { currency: 'pln', amount: 4620 });
    const { customer, subscription, periodInvoice, small } = await subscribed('PLN', {
      customer: paid.customer.id,
    });
    await changeSubscription(db, 'system', subscription.id, { planId: small }, feb15, false);
    // The 500 net credit lowered the unpaid invoice to 1500 due: no customer credit to pay out
    // (before: 500 refunded in cash for a period never paid).
    expect(await invoiceRow(periodInvoice)).toMatchObject({ amount_due: 1500n, proration_credited: 500n });
    const stripe = nock(STRIPE_API_BASE).post('/v1/refunds').reply(500, {});
    const refund = await app.api('POST', `/v1/customers/${customer}/credit/refund`, {
      amount: 500,
      currency: 'PLN',
    });
    expect(refund.status).toBe(422);
    expect(stripe.isDone()).toBe(false);
    nock.cleanAll();
    const books = await ledgerIn(app, 'PLN');
    expect(books['customer_credit:customer'] ?? 0).toBe(0);
  });

  it('a net credit while a charge of the period invoice is in flight is refused 409 and changes nothing (CZK)', async () => {
    const { customer, subscription, periodInvoice, small } = await subscribed('CZK');
    await db
      .insertInto('transactions')
      .values({
        id: newId('txn'),
        invoice_id: periodInvoice,
        customer_id: customer,
        gateway: 'stripe',
        amount: 2000n,
        currency: 'CZK',
        status: 'pending',
      })
      .execute();
    await expect(
      changeSubscription(db, 'system', subscription.id, { planId: small }, feb15, true),
    ).rejects.toMatchObject({ code: 'charge_in_flight' });
    await expect(
      changeSubscription(db, 'system', subscription.id, { planId: small }, feb15, false),
    ).rejects.toMatchObject({ code: 'charge_in_flight' });
    expect(await invoiceRow(periodInvoice)).toMatchObject({ amount_due: 2000n, proration_credited: 0n });
    const row = await db
      .selectFrom('subscriptions')
      .select('plan_id')
      .where('id', '=', subscription.id)
      .executeTakeFirstOrThrow();
    expect(row.plan_id).not.toBe(small);
  });

  it('a refund of the lowered invoice gives back tax at what it still asks, not at its whole ratio (GBP, 25% plan → untaxed plan)', async () => {
    const plan = (amount: number, taxRatePpm: number) =>
      insertPlan(db, { currency: 'GBP', price: { model: 'FLAT_FEE', amount }, taxRatePpm });
    const [big, small] = [await plan(2000, 250_000), await plan(1000, 0)];
    const { customer, method } = await customerWith(app, { stripe: true });
    const { subscription, invoices } = await createSubscription(
      db,
      'system',
      { customerId: customer.id, planId: big, paymentMethodId: method!.id },
      feb1,
    );
    const periodInvoice = invoices[0]!.id;
    // 2000 + 500 tax; Feb 15: 1000 + 250 tax of unused time credited, 500 untaxed charged: −750 of which −250 tax.
    const change = await changeSubscription(db, 'system', subscription.id, { planId: small }, feb15, false);
    expect(change.proration).toMatchObject({ subtotal: -500n, tax: -250n, total: -750n });
    expect(await invoiceRow(periodInvoice)).toMatchObject({
      proration_credited: 750n,
      proration_tax_credited: 250n,
      amount_due: 1750n,
    });
    const { seen } = stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${periodInvoice}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');
    expect(seen[0]!.params.get('amount')).toBe('1750');
    stripeRefundSucceeds('re_open_credit_tax');
    const refund = await app.api('POST', `/v1/invoices/${periodInvoice}/refund`, {});
    expect(refund.body).toMatchObject({ status: 'succeeded', amount: 1750 });
    // (500 − 250) × 1750 / (2500 − 750) = 250 of tax, not 500 × 1750 / 2500 = 350: all given back, nothing owed.
    const notes = await app.api('GET', `/v1/invoices/${periodInvoice}?expand=credit_notes`);
    expect(
      notes.body.credit_notes.map((n: { subtotal: number; tax: number }) => [n.subtotal, n.tax]),
    ).toEqual([[1500, 250]]);
    const books = await ledgerIn(app, 'GBP');
    expect({ earned: (books.revenue ?? 0) + (books.refunds ?? 0), tax: books.tax_payable ?? 0 }).toEqual({
      earned: 0,
      tax: 0,
    });
  });

  it('a net credit over the OPEN period invoice after a change invoice is refused 422; once the period invoice is voided, the change credits the unused share of what the change invoice paid only (HUF)', async () => {
    const plan = (amount: number) =>
      insertPlan(db, { currency: 'HUF', price: { model: 'FLAT_FEE', amount }, taxRatePpm: 0 });
    const [a, b] = [await plan(2000), await plan(4000)];
    const customer = (await app.api('POST', '/v1/customers', { email: 'ada@example.com' })).body.id;
    const { subscription, invoices } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: a },
      feb1,
    );
    const periodInvoice = invoices[0]!.id;
    // Feb 8 (21 of 28 days left): up to 4000: 3000 − 1500 = 1500 invoiced, paid by bank transfer.
    const feb8 = new Date('2027-02-08T00:00:00Z');
    const up = await changeSubscription(db, 'system', subscription.id, { planId: b }, feb8, false);
    expect(up.invoice?.total).toBe(1500n);
    await recordOfflinePayment(db, 'system', up.invoice!.id, { method: 'BANK', amount: 1500n });
    // Feb 15: back down: 2000 of unused 4000-plan time (charged by the period invoice and the change
    // invoice together) − 1000 = 1000 credit. Taken off the period invoice, a void would send it to revenue.
    const down = () => changeSubscription(db, 'system', subscription.id, { planId: a }, feb15, false);
    const refused = down();
    await expect(refused).rejects.toThrow(ValidationError);
    await expect(refused).rejects.toMatchObject({
      status: 422,
      fields: {
        proration: expect.stringMatching(
          new RegExp(
            `credits 1000 HUF.*${periodInvoice} \\(OPEN: ${periodInvoice} still owes 2000\\).*${up.invoice!.id} \\(PAID, 1500\\).*POST /v1/invoices/${periodInvoice}/charge.*POST /v1/invoices/${periodInvoice}/payments with amount 2000.*proration none`,
          ),
        ),
      },
    });
    // Nothing changed.
    expect(await invoiceRow(periodInvoice)).toMatchObject({
      status: 'OPEN',
      amount_due: 2000n,
      proration_credited: 0n,
    });
    const sub = await db
      .selectFrom('subscriptions')
      .selectAll()
      .where('id', '=', subscription.id)
      .executeTakeFirstOrThrow();
    expect(sub.plan_id).toBe(b);
    // Voided instead: of the 2000 of unused 4000-plan time, the voided invoice's share (its 2000 plan
    // for the 14 days left, 1000) was paid by nothing, so it is not credited; the change invoice's
    // share (1000: the unused 14 of the 21 days its 1500 paid) is, and the 2000 plan for the rest is
    // charged as any change charges it (1000): nothing owed either way. Before (the last stop): 422,
    // though what was paid for the unused time is known; before that, 1000 of customer credit here
    // (the 2000 plan's rest credited from an invoice nobody paid) and 1750 for a plan of 500.
    await voidInvoice(db, 'system', periodInvoice);
    const changed = await down();
    expect(changed).toMatchObject({ credited: 0n, creditedToInvoice: null, invoice: null });
    expect(changed.proration).toMatchObject({ subtotal: 0n, tax: 0n, total: 0n });
    expect(changed.proration.lines.map((l) => [l.type, l.amount])).toEqual([
      ['CREDIT', 2000n],
      ['CHARGE', 1000n],
      ['CHARGE', 1000n],
    ]);
    expect(changed.subscription.plan_id).toBe(a);
    const books = await ledgerIn(app, 'HUF');
    expect({ credit: books['customer_credit:customer'] ?? 0, revenue: books.revenue ?? 0 }).toEqual({
      credit: 0,
      revenue: -1500,
    });
  });

  it('a credit that clears the period invoice logs invoice.paid, so the merchant gets the outbound invoice.paid event (AUD)', async () => {
    const { subscription, periodInvoice, small } = await subscribed('AUD');
    await recordOfflinePayment(db, 'system', periodInvoice, { method: 'BANK', amount: 1800n });
    await changeSubscription(db, 'system', subscription.id, { planId: small }, feb15, false);
    expect(await invoiceRow(periodInvoice)).toMatchObject({
      status: 'PAID',
      amount_due: 0n,
      proration_credited: 200n,
    });
    const log = await app.api('GET', `/v1/activities?resource=${periodInvoice}&limit=100`);
    const paid = log.body.data.filter((a: { action: string }) => a.action === 'invoice.paid');
    // The offline payment left 200 due (invoice.payment_applied); the credit cleared it.
    expect(paid).toHaveLength(1);
    expect(paid[0].data).toMatchObject({
      currency: 'AUD',
      amount: '0',
      amount_paid: '1800',
      amount_due: '0',
      paid_by: 'proration_credit',
      proration_credited: '200',
    });
    expect(eventTypeOf(paid[0])).toBe('invoice.paid');
  });
});
