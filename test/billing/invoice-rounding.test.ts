import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAddOn } from '../../src/billing/add-ons.ts';
import { cancelLocked } from '../../src/billing/cancellation.ts';
import { createInvoice, finalizeInvoice, voidInvoice } from '../../src/billing/invoices.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { lockSubscription } from '../../src/billing/renewal.ts';
import { setSubscriptionAddOn } from '../../src/billing/subscription-add-ons.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { nockToken, paypalFixture, TOKEN } from '../gateways/paypal/fixtures.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { downgradeCredit, ledgerIn, payOpenOffline } from '../support/collection.ts';
import { stripeChargeSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { insertPlan } from '../support/plans.ts';
import { stripeFixture } from '../support/stripe.ts';

const PAYPAL_API_BASE = 'https://paypal.rounding.test';
const d = (iso: string) => new Date(iso);

/**
 * PRODUCT §11's second option (billing/invoice-rounding.ts): an invoice whose amount due the gateway
 * that will charge it cannot take is rounded down at finalization with an explicit ROUNDING line,
 * booked to the `rounding` account; charges then send the rounded amount, a void reverses it, and a
 * `full` cancellation gives back what was paid. Each scenario books in its own currency, so the
 * ledger of one currency is that scenario's alone. Net connections are cut off (nock): a gateway call
 * nobody expected fails the test. Before this, each rounded invoice here could not be charged
 * (`amount_not_representable`).
 */
describe('rounding at finalization for the gateway that will charge (PRODUCT §11)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({
      PAYPAL_CLIENT_ID: 'client-id',
      PAYPAL_CLIENT_SECRET: 'client-secret',
      PAYPAL_WEBHOOK_ID: 'WH-ROUNDING',
      PAYPAL_API_BASE,
    });
  });
  afterEach(() => {
    expect(nock.pendingMocks()).toEqual([]);
    nock.cleanAll();
  });
  afterAll(() => stopOfflineTestApp(app));

  const db = () => app.runtime.db;

  /** A customer with a default payment method of `gateway` (the fixture's token for Stripe); their ids. */
  async function customerPaying(gateway: 'stripe' | 'paypal' | null) {
    const customer = await app.api('POST', '/v1/customers', { email: 'ada@example.com' });
    expect(customer.status).toBe(201);
    if (!gateway) return { customer: customer.body.id as string, method: undefined };
    const method = await app.api('POST', '/v1/payment-methods', {
      customer: customer.body.id,
      gateway,
      gateway_token: gateway === 'stripe' ? 'pm_1RWJtyQ8iJWBZFaM7VUymbOi' : '8kk8451t',
      ...(gateway === 'stripe' ? { gateway_customer_id: 'cus_SRCIP043oBsNpV' } : {}),
    });
    expect(method.status).toBe(201);
    return { customer: customer.body.id as string, method: method.body.id as string };
  }

  /** An invoice of one line of `amount` minor units in `currency` for `customer`, finalized; as the API shows it. */
  async function finalized(customer: string, currency: string, amount: bigint) {
    const draft = await createInvoice(db(), 'system', {
      customerId: customer,
      currency,
      lines: [{ description: 'Consulting', unitAmount: amount, quantity: 1, type: 'CHARGE' }],
    });
    await finalizeInvoice(db(), 'system', draft.id);
    return (await app.api('GET', `/v1/invoices/${draft.id}`)).body;
  }

  /** The postings of invoice `invoiceId`'s journal entry `key` (`finalized`, `voided`), by account code. */
  async function entryOf(invoiceId: string, key: string) {
    const rows = await db()
      .selectFrom('journal_entries as e')
      .innerJoin('postings as p', 'p.journal_entry_id', 'e.id')
      .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
      .select(['a.code', 'p.amount'])
      .where('e.idempotency_key', '=', `${invoiceId}:${key}`)
      .execute();
    return Object.fromEntries(rows.map((r) => [r.code.replace(/cus_\w+/, 'customer'), Number(r.amount)]));
  }

  it('a PayPal HUF upgrade proration is rounded down to whole forints, charged as "544", and booked to rounding', async () => {
    // Whole-forint plans (ISO minor units: 100 = 1 HUF) at 27% tax.
    const basic = await insertPlan(db(), {
      name: 'Basic HUF',
      currency: 'HUF',
      price: { model: 'FLAT_FEE', amount: 100_000 },
      taxRatePpm: 270_000,
    });
    const pro = await insertPlan(db(), {
      name: 'Pro HUF',
      currency: 'HUF',
      price: { model: 'FLAT_FEE', amount: 200_000 },
      taxRatePpm: 270_000,
    });
    const { customer, method } = await customerPaying('paypal');
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer, planId: basic, paymentMethodId: method },
      d('2027-02-01T00:00:00Z'),
    );
    // February: 100000 + 27% = 127000, a whole 1270 HUF: no rounding. Paid by bank transfer.
    await payOpenOffline(db(), subscription.id);
    // On Feb 17, 12 of February's 28 days are left. Unused Basic: −100000 × 12/28 = −42857.14 →
    // −42857, tax −42857 × 27% = −11571.39 → −11571; Pro for the rest: 200000 × 12/28 = 85714.29 →
    // 85714, tax 85714 × 27% = 23142.78 → 23143. Subtotal 42857, tax 11572, total 54429 = 544.29
    // HUF: PayPal takes no HUF decimals (step 100), so 29 is rounded off: 54400 (544 HUF) due.
    // Its preview shows the same rounding the change's finalization adds.
    const preview = await changeSubscription(
      db(),
      'system',
      subscription.id,
      { planId: pro },
      d('2027-02-17T00:00:00Z'),
      true,
    );
    expect(preview.proration).toMatchObject({ subtotal: 42_857n, tax: 11_572n, total: 54_429n });
    expect(preview.proration.rounding).toEqual({
      amount: 29n,
      description: 'Rounding: PayPal takes no decimals in HUF',
    });
    const change = await changeSubscription(
      db(),
      'system',
      subscription.id,
      { planId: pro },
      d('2027-02-17T00:00:00Z'),
      false,
    );
    const invoiceId = change.invoice!.id;
    const invoice = (await app.api('GET', `/v1/invoices/${invoiceId}`)).body;
    expect(invoice).toMatchObject({
      status: 'OPEN',
      subtotal: 42_857,
      tax: 11_572,
      rounding: 29,
      total: 54_400,
      amount_due: 54_400,
    });
    expect(invoice.lines.at(-1)).toMatchObject({
      type: 'ROUNDING',
      description: 'Rounding: PayPal takes no decimals in HUF',
      amount: -29,
      tax_amount: 0,
      quantity: 1,
    });
    // Revenue and tax payable as the lines say, the receivable the lowered total, rounding the rest.
    expect(await entryOf(invoiceId, 'finalized')).toEqual({
      'receivable:customer': 54_400,
      revenue: -42_857,
      tax_payable: -11_572,
      rounding: 29,
    });

    nockToken(PAYPAL_API_BASE).optionally().reply(200, TOKEN);
    const sent: unknown[] = [];
    const order = paypalFixture('api.orders.create.vaulted_card_capture.completed.json');
    nock(PAYPAL_API_BASE)
      .post('/v2/checkout/orders')
      .reply(async (request: Request) => {
        const body = JSON.parse(await request.text());
        sent.push(body.purchase_units[0].amount);
        const answer = structuredClone(order);
        answer.purchase_units[0].amount = body.purchase_units[0].amount;
        answer.purchase_units[0].payments.captures[0].amount = body.purchase_units[0].amount;
        return [201, answer];
      });
    const charged = await app.api('POST', `/v1/invoices/${invoiceId}/charge`, {});
    expect(charged.status).toBe(200);
    expect(sent).toEqual([{ currency_code: 'HUF', value: '544' }]);
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 54_400, amount_due: 0 });
    // February 127000 by bank; the change 54400 through PayPal. Revenue 100000 + 42857, tax 27000 +
    // 11572, rounding 29: 127000 + 54400 + 29 = 142857 + 38572 + 0. Balanced, nothing owed.
    expect(await ledgerIn(app, 'HUF')).toEqual({
      'receivable:customer': 0,
      offline_receipts: 127_000,
      'gateway_clearing:paypal': 54_400,
      revenue: -142_857,
      tax_payable: -38_572,
      rounding: 29,
    });
  });

  it("a downgrade after a rounded upgrade credits the upgrade's unused time less its share of that invoice's rounding (PayPal HUF)", async () => {
    const plan = (name: string, amount: number) =>
      insertPlan(db(), {
        name,
        currency: 'HUF',
        price: { model: 'FLAT_FEE', amount },
        taxRatePpm: 270_000,
      });
    const [basic, pro] = [await plan('Basic HUF again', 100_000), await plan('Pro HUF again', 200_000)];
    const { customer, method } = await customerPaying('paypal');
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer, planId: basic, paymentMethodId: method },
      d('2027-02-01T00:00:00Z'),
    );
    await payOpenOffline(db(), subscription.id);
    // Feb 17 upgrade (12 of 28 days): 54429, rounded by 29 for PayPal HUF, 54400 (as the first
    // scenario); paid by bank transfer.
    const upgrade = await changeSubscription(
      db(),
      'system',
      subscription.id,
      { planId: pro },
      d('2027-02-17T00:00:00Z'),
      false,
    );
    expect(upgrade.invoice).toMatchObject({ rounding: 29n, total: 54_400n });
    await payOpenOffline(db(), subscription.id);
    // Feb 24 back to Basic (5 days left). Unused Pro 200000 × 5/28 = 35714.29 → 35714, tax 9642.78
    // → 9643; its share of the upgrade's rounding, 29 over 12 days spread on the period as 29 × 28/12
    // = 67.67 → 68, 68 × 5/28 = 12.14 → 12 (29 × 5/12 = 12.08): an untaxed line of +12. Basic for
    // the rest 17857 + 4821 tax. Net −35714 + 12 + 17857 = −17845, tax −4822: 22667 of credit
    // (before: 22679, the 12 of rounding the customer never paid credited too).
    const downgrade = await changeSubscription(
      db(),
      'system',
      subscription.id,
      { planId: basic },
      d('2027-02-24T00:00:00Z'),
      false,
    );
    expect(downgrade.proration).toMatchObject({ subtotal: -17_845n, tax: -4822n, total: -22_667n });
    expect(downgrade.proration.lines.map((l) => [l.type, l.signedAmount, l.taxAmount])).toEqual([
      ['CREDIT', -35_714n, -9643n],
      ['CHARGE', 12n, 0n],
      ['CHARGE', 17_857n, 4821n],
    ]);
    expect(await creditOf(customer, 'HUF')).toBe(22_667n);
  });

  it('a Stripe KWD period invoice with tax is rounded to a multiple of 10, charged 1230, and a full cancellation refunds exactly 1230, the rounding with it', async () => {
    // 1122 fils + 10% tax = 112.2 → 112: 1234 fils; Stripe takes KWD in steps of 10: 4 rounded off.
    const plan = await insertPlan(db(), {
      name: 'Flat KWD',
      currency: 'KWD',
      price: { model: 'FLAT_FEE', amount: 1122 },
      taxRatePpm: 100_000,
    });
    const { customer, method } = await customerPaying('stripe');
    const created = await app.api('POST', '/v1/subscriptions', { customer, plan, payment_method: method });
    expect(created.status).toBe(201);
    const stripe = stripeChargeSucceeds();
    const settled = await app.api('POST', `/v1/subscriptions/${created.body.id}/settle`);
    expect(stripe.scope.isDone()).toBe(true);
    expect(stripe.seen.map((s) => [s.params.get('amount'), s.params.get('currency')])).toEqual([
      ['1230', 'kwd'],
    ]);
    const invoiceId = settled.body.invoices[0].invoice.id;
    const paid = (await app.api('GET', `/v1/invoices/${invoiceId}`)).body;
    expect(paid).toMatchObject({
      status: 'PAID',
      subtotal: 1122,
      tax: 112,
      rounding: 4,
      total: 1230,
      amount_paid: 1230,
    });
    expect(paid.lines.map((l: { type: string; amount: number }) => [l.type, l.amount])).toEqual([
      ['CHARGE', 1122],
      ['ROUNDING', -4],
    ]);
    expect(paid.lines[1].description).toBe(
      'Rounding: Stripe requires the last digit of a KWD amount to be 0 (a multiple of 10)',
    );

    // `full`: what the period charged is what the invoice asked, 1234 − 4 = 1230, all of it paid by
    // the card: refunded 1230 (a multiple of 10, so Stripe takes it), not refused
    // `refund_exceeds_payment` for the 4 never paid.
    const refundParams: URLSearchParams[] = [];
    const refund = stripeFixture('api.refund.succeeded.openapi-fixture.json');
    nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .reply(async (request: Request) => {
        const params = new URLSearchParams(await request.text());
        refundParams.push(params);
        return [
          200,
          {
            ...refund,
            id: 're_rounding_kwd',
            amount: Number(params.get('amount')),
            currency: 'kwd',
            payment_intent: params.get('payment_intent'),
            metadata: { billhook_reference: params.get('metadata[billhook_reference]') },
            status: 'succeeded',
          },
        ];
      });
    const cancelled = await app.api('POST', `/v1/subscriptions/${created.body.id}/cancel`, {
      refund_type: 'full',
    });
    expect(cancelled.status).toBe(200);
    expect(refundParams.map((p) => p.get('amount'))).toEqual(['1230']);
    expect(cancelled.body).toMatchObject({
      status: 'CANCELLED',
      refund: { status: 'succeeded', amount: 1230 },
    });
    const after = (await app.api('GET', `/v1/invoices/${invoiceId}?expand=credit_notes`)).body;
    expect(after).toMatchObject({ status: 'REFUNDED', amount_paid: 1230, amount_refunded: 1230 });
    // Its credit note gives back everything the invoice asked, as the invoice was: all the tax, 112
    // × 1230 / 1230 = 112, all the rounding, 4, and 1230 − 112 + 4 = 1122 of revenue.
    expect(after.credit_notes).toMatchObject([{ subtotal: 1122, tax: 112, rounding: 4, total: 1230 }]);
    // Every account back to 0 for the invoice: revenue 1122 against refunds 1122, tax payable 112 −
    // 112, rounding 4 − 4, the card's 1230 given back. (Before: refunds 1118, so revenue net −4
    // stayed against the rounding expense +4.)
    expect(await ledgerIn(app, 'KWD')).toEqual({
      'gateway_clearing:stripe': 0,
      'receivable:customer': 0,
      refunds: 1122,
      revenue: -1122,
      rounding: 0,
      tax_payable: 0,
    });
  });

  it('refunds that give back all a rounded invoice asked give back its rounding with it, each its share (Stripe KWD, 610 then 620)', async () => {
    const { customer } = await customerPaying('stripe');
    const before = await ledgerIn(app, 'KWD');
    // 1122 fils + 10% tax = 1234: 4 rounded off for Stripe's KWD step of 10, 1230 charged.
    const draft = await createInvoice(db(), 'system', {
      customerId: customer,
      currency: 'KWD',
      lines: [
        { description: 'Consulting', unitAmount: 1122n, quantity: 1, type: 'CHARGE', taxRatePpm: 100_000 },
      ],
    });
    await finalizeInvoice(db(), 'system', draft.id);
    const stripe = stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${draft.id}/charge`, {});
    expect(charged.status).toBe(200);
    expect(stripe.seen.map((s) => s.params.get('amount'))).toEqual(['1230']);
    expect(charged.body.invoice).toMatchObject({
      status: 'PAID',
      rounding: 4,
      total: 1230,
      amount_paid: 1230,
    });
    const refund = stripeFixture('api.refund.succeeded.openapi-fixture.json');
    nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .times(2)
      .reply(async (request: Request) => {
        const params = new URLSearchParams(await request.text());
        return [
          200,
          {
            ...refund,
            id: `re_rounding_kwd_${params.get('amount')}`,
            amount: Number(params.get('amount')),
            currency: 'kwd',
            payment_intent: params.get('payment_intent'),
            metadata: { billhook_reference: params.get('metadata[billhook_reference]') },
            status: 'succeeded',
          },
        ];
      });
    for (const amount of [610, 620]) {
      const refunded = await app.api('POST', `/v1/invoices/${draft.id}/refund`, { amount });
      expect(refunded.status).toBe(201);
      expect(refunded.body.status).toBe('succeeded');
    }
    // Cumulative shares of what the invoice asked, 1230: after 610, tax 112 × 610 / 1230 = 55.5 → 56
    // and rounding 4 × 610 / 1230 = 1.98 → 2, so 610 − 56 + 2 = 556 of revenue; after all 1230, tax
    // 112 and rounding 4 in all: 56 and 2 more, 620 − 56 + 2 = 566. 556 + 566 = 1122, all of it.
    const read = (await app.api('GET', `/v1/invoices/${draft.id}?expand=credit_notes`)).body;
    expect(read).toMatchObject({ status: 'REFUNDED', amount_refunded: 1230 });
    expect(
      read.credit_notes.map((n: { subtotal: number; tax: number; rounding: number; total: number }) => [
        n.subtotal,
        n.tax,
        n.rounding,
        n.total,
      ]),
    ).toEqual([
      [556, 56, 2, 610],
      [566, 56, 2, 620],
    ]);
    // What this invoice moved (other scenarios book KWD too): refunds 1122 against revenue 1122, tax
    // payable and rounding back to where they were, the card's 1230 given back.
    const after = await ledgerIn(app, 'KWD');
    const moved = Object.fromEntries(
      Object.keys(after).map((code) => [code, (after[code] ?? 0) - (before[code] ?? 0)]),
    );
    expect(moved).toEqual({
      'gateway_clearing:stripe': 0,
      'receivable:customer': 0,
      refunds: 1122,
      revenue: -1122,
      rounding: 0,
      tax_payable: 0,
    });
  });

  it('a subscription preview shows the ROUNDING line its first invoice gets, with the same total (Stripe TND)', async () => {
    // 1235 millimes a month, untaxed: Stripe takes TND in steps of 10, so 5 is rounded off: 1230.
    const plan = await insertPlan(db(), {
      name: 'Flat TND',
      currency: 'TND',
      price: { model: 'FLAT_FEE', amount: 1235 },
      taxRatePpm: 0,
    });
    const { customer, method } = await customerPaying('stripe');
    const body = { customer, plan, payment_method: method };
    const preview = await app.api('POST', '/v1/subscriptions/preview', body);
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({ subtotal: 1235, tax: 0, rounding: 5, total: 1230 });
    const created = await app.api('POST', '/v1/subscriptions', body);
    expect(created.status).toBe(201);
    const invoice = (await app.api('GET', `/v1/invoices/${created.body.latest_invoice}`)).body;
    expect(invoice).toMatchObject({ subtotal: 1235, tax: 0, rounding: 5, total: 1230 });
    const shown = (l: { type: string; description: string; amount: number }) => [
      l.type,
      l.description,
      l.amount,
    ];
    expect(preview.body.lines.map(shown)).toEqual(invoice.lines.map(shown));
  });

  it("a subscription preview applies the customer's credit as finalization will, and rounds what is left due (Stripe TND)", async () => {
    const { customer, method } = await customerPaying('stripe');
    // 3125 fils of credit from a downgrade (as in the JOD scenario below: 2500 net + 625 tax; TND's ledger is checked per invoice and customer only).
    await downgradeCredit(app, customer, 'TND', 11_000);
    const plan = await insertPlan(db(), {
      name: 'Flat TND credit',
      currency: 'TND',
      price: { model: 'FLAT_FEE', amount: 3500 },
      taxRatePpm: 0,
    });
    const body = { customer, plan, payment_method: method };
    // 3500, a multiple of 10: on the whole total nothing would be rounded (what the preview showed
    // before, with 3500 to pay). Finalization applies the 3125 of credit first: 375 left, 5 rounded
    // off for Stripe's TND step of 10: total 3495, 370 due.
    const preview = await app.api('POST', '/v1/subscriptions/preview', body);
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({
      subtotal: 3500,
      tax: 0,
      rounding: 5,
      total: 3495,
      credit_applied: 3125,
      amount_due: 370,
    });
    const created = await app.api('POST', '/v1/subscriptions', body);
    expect(created.status).toBe(201);
    const invoice = (await app.api('GET', `/v1/invoices/${created.body.latest_invoice}`)).body;
    expect(invoice).toMatchObject({
      subtotal: 3500,
      rounding: 5,
      total: 3495,
      credit_applied: 3125,
      amount_due: 370,
    });
    const shown = (l: { type: string; amount: number }) => [l.type, l.amount];
    expect(preview.body.lines.map(shown)).toEqual(invoice.lines.map(shown));
  });

  it('a void reverses the rounding with the rest of the finalization (Stripe BHD)', async () => {
    const { customer } = await customerPaying('stripe');
    // 1235 fils: Stripe takes BHD in steps of 10, so 5 is rounded off: 1230.
    const invoice = await finalized(customer, 'BHD', 1235n);
    expect(invoice).toMatchObject({
      status: 'OPEN',
      subtotal: 1235,
      rounding: 5,
      total: 1230,
      amount_due: 1230,
    });
    expect(await ledgerIn(app, 'BHD')).toEqual({ 'receivable:customer': 1230, revenue: -1235, rounding: 5 });
    await voidInvoice(db(), 'system', invoice.id);
    expect(await entryOf(invoice.id, 'voided')).toEqual({
      'receivable:customer': -1230,
      revenue: 1235,
      rounding: -5,
    });
    expect(await ledgerIn(app, 'BHD')).toEqual({ 'receivable:customer': 0, revenue: 0, rounding: 0 });
  });

  it('USD is untouched: 1234 cents through Stripe keep every cent, no line, no rounding account', async () => {
    const { customer } = await customerPaying('stripe');
    const invoice = await finalized(customer, 'USD', 1234n);
    expect(invoice).toMatchObject({ rounding: 0, total: 1234, amount_due: 1234 });
    expect(invoice.lines.map((l: { type: string }) => l.type)).toEqual(['CHARGE']);
    expect(await ledgerIn(app, 'USD')).toEqual({ 'receivable:customer': 1234, revenue: -1234 });
  });

  it("an invoice the customer's credit pays whole is not rounded (nothing due); one it pays in part is, on what is left (Stripe JOD)", async () => {
    const { customer } = await customerPaying('stripe');
    // Credit from a downgrade (collection.ts `downgradeCredit`): 11000 → 1000 on Feb 22, 7 of 28
    // days left: −11000 × 7/28 = −2750, tax −687.5 → −688; +1000 × 7/28 = 250, tax 62.5 → 63.
    // Net −2500, tax −625: 3125 of credit. Its February invoice, 11000 + 25% = 13750, a multiple of
    // 10, was not rounded; paid by bank transfer.
    await downgradeCredit(app, customer, 'JOD', 11_000);
    // 1235 fils, all paid by the 3125 of credit: PAID, no line, nothing rounded.
    const whole = await finalized(customer, 'JOD', 1235n);
    expect(whole).toMatchObject({
      status: 'PAID',
      rounding: 0,
      total: 1235,
      credit_applied: 1235,
      amount_due: 0,
    });
    expect(whole.lines.map((l: { type: string }) => l.type)).toEqual(['CHARGE']);
    // 3125 − 1235 = 1890 left. 1897: credit 1890, 7 due, rounded off whole: total 1890, PAID by credit.
    const part = await finalized(customer, 'JOD', 1897n);
    expect(part).toMatchObject({
      status: 'PAID',
      rounding: 7,
      total: 1890,
      credit_applied: 1890,
      amount_due: 0,
    });
    // Receivable 0 (the credit paid both), rounding 7; customer credit used up.
    expect(await ledgerIn(app, 'JOD')).toMatchObject({
      'receivable:customer': 0,
      'customer_credit:customer': 0,
      rounding: 7,
    });
  });

  it('no payment method at finalization: no rounding, and a later Stripe charge is refused 422 as before (OMR)', async () => {
    const { customer } = await customerPaying(null);
    const invoice = await finalized(customer, 'OMR', 1235n);
    expect(invoice).toMatchObject({ status: 'OPEN', rounding: 0, total: 1235, amount_due: 1235 });
    const method = await app.api('POST', '/v1/payment-methods', {
      customer,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    expect(method.status).toBe(201);
    const refused = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('amount_not_representable');
    expect(await ledgerIn(app, 'OMR')).toEqual({ 'receivable:customer': 1235, revenue: -1235 });
  });

  /** The customer's credit balance in `currency` (minor units; > 0: held by the customer), from the ledger. */
  async function creditOf(customer: string, currency: string): Promise<bigint> {
    const row = await db()
      .selectFrom('postings as p')
      .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
      .select(sql<string>`coalesce(sum(p.amount), 0)::text`.as('balance'))
      .where('a.code', '=', `customer_credit:${customer}`)
      .where('a.currency', '=', currency)
      .executeTakeFirstOrThrow();
    return -BigInt(row.balance);
  }

  it('a downgrade credits unused time of a rounded period at what its invoice asked, not at the price before rounding (PayPal TWD)', async () => {
    // 11220 + 10% tax = 12342; PayPal takes TWD in whole dollars (step 100): 42 rounded off, 12300 asked.
    const plan = (name: string, amount: number) =>
      insertPlan(db(), { name, currency: 'TWD', price: { model: 'FLAT_FEE', amount }, taxRatePpm: 100_000 });
    const [big, small, free] = [
      await plan('Big TWD', 11_220),
      await plan('Small TWD', 1000),
      await plan('Free TWD', 0),
    ];
    /** A subscription to Big from Feb 1 2027 through PayPal, its period invoice (rounded, OPEN) paid offline when `paid`. */
    async function subscribed(paid: boolean) {
      const { customer, method } = await customerPaying('paypal');
      const { subscription, invoices } = await createSubscription(
        db(),
        'system',
        { customerId: customer, planId: big, paymentMethodId: method },
        d('2027-02-01T00:00:00Z'),
      );
      expect(invoices[0]).toMatchObject({ rounding: 42n, total: 12_300n, amount_due: 12_300n });
      if (paid) expect(await payOpenOffline(db(), subscription.id)).toMatchObject([{ amount: 12_300n }]);
      return { customer, subscription: subscription.id, invoice: invoices[0]!.id };
    }
    const change = (subscription: string, planId: string, proration: 'prorate_now' | 'full') =>
      changeSubscription(
        db(),
        'system',
        subscription,
        { planId, proration },
        d('2027-02-15T00:00:00Z'),
        false,
      );

    // Paid, prorate_now on Feb 15 (14 of 28 days left): unused 5610 + 561 tax − 21 of the rounding
    // = 6150, half of the 12300 paid (not 6171, half of 12342); Small's 500 + 50 charged: 5600.
    const prorated = await subscribed(true);
    const result = await change(prorated.subscription, small, 'prorate_now');
    expect(result.proration).toMatchObject({ subtotal: -5089n, tax: -511n, total: -5600n });
    expect(await creditOf(prorated.customer, 'TWD')).toBe(5600n);

    // Paid, `full`: the whole 12300 asked credited (not 12342), Small's whole 1100 charged: 11200.
    const full = await subscribed(true);
    await change(full.subscription, small, 'full');
    expect(await creditOf(full.customer, 'TWD')).toBe(11_200n);

    // Unpaid, prorate_now: the 5600 taken off the 12300 owed leaves 6700, which PayPal takes (not 6679).
    const open = await subscribed(false);
    await change(open.subscription, small, 'prorate_now');
    expect((await app.api('GET', `/v1/invoices/${open.invoice}`)).body).toMatchObject({
      status: 'OPEN',
      amount_due: 6700,
    });
    expect(await creditOf(open.customer, 'TWD')).toBe(0n);

    // Unpaid, `full` to a free plan: 12300 credited settles the invoice; no credit for the 42 never asked.
    const toFree = await subscribed(false);
    await change(toFree.subscription, free, 'full');
    expect((await app.api('GET', `/v1/invoices/${toFree.invoice}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 0,
      amount_due: 0,
    });
    expect(await creditOf(toFree.customer, 'TWD')).toBe(0n);
  });

  it('a prorate cancellation gives back the unused share of what the rounded invoice asked (Stripe MGA)', async () => {
    // 11220 + 10% tax = 12342; Stripe takes MGA in whole ariary (step 100): 12300 charged.
    const plan = await insertPlan(db(), {
      name: 'Flat MGA',
      currency: 'MGA',
      price: { model: 'FLAT_FEE', amount: 11_220 },
      taxRatePpm: 100_000,
    });
    const { customer, method } = await customerPaying('stripe');
    const { subscription, invoices } = await createSubscription(
      db(),
      'system',
      { customerId: customer, planId: plan, paymentMethodId: method },
      d('2027-02-01T00:00:00Z'),
    );
    const stripe = stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${invoices[0]!.id}/charge`, {});
    expect(charged.status).toBe(200);
    // Stripe counts MGA in whole ariary: 12300 minor units are sent as 123.
    expect(stripe.seen.map((s) => s.params.get('amount'))).toEqual(['123']);
    // 1199800 of February's 2419200 seconds unused: 12300 × 1199800 / 2419200 = 6100.17 → 6100, a
    // whole number of ariary Stripe takes (at the price before rounding, 12342: 6121, which it cannot).
    const result = await inUnitOfWork(db(), { actor: 'system' }, async (work) => {
      const locked = (await lockSubscription(work, subscription.id))!;
      return cancelLocked(work, locked, { when: 'now', refundType: 'prorate' }, d('2027-02-15T02:43:20Z'));
    });
    expect(result.refunds.map((r) => r.amount)).toEqual([6100n]);
  });

  /** The balances invoice `invoiceId`'s own journal entries (source the invoice) leave, by account code. */
  async function invoiceBooks(invoiceId: string) {
    const rows = await db()
      .selectFrom('journal_entries as e')
      .innerJoin('postings as p', 'p.journal_entry_id', 'e.id')
      .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
      .select(['a.code', sql<string>`sum(p.amount)::text`.as('amount')])
      .where('e.source_type', '=', 'invoice')
      .where('e.source_id', '=', invoiceId)
      .groupBy('a.code')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.code.replace(/cus_\w+/, 'customer'), Number(r.amount)]));
  }

  it('a prorate_now downgrade off half-period takes all its credit off the rounded OPEN invoice and rounds what is left due again, and the charge goes through (Stripe TND)', async () => {
    // 11220 + 10% tax = 12342; Stripe takes TND in steps of 10 millimes: 2 rounded off, 12340 owed.
    const plan = (name: string, amount: number) =>
      insertPlan(db(), { name, currency: 'TND', price: { model: 'FLAT_FEE', amount }, taxRatePpm: 100_000 });
    const [big, free] = [await plan('Big TND', 11_220), await plan('Free TND', 0)];
    const { customer, method } = await customerPaying('stripe');
    const { subscription, invoices } = await createSubscription(
      db(),
      'system',
      { customerId: customer, planId: big, paymentMethodId: method },
      d('2027-02-01T00:00:00Z'),
    );
    const invoice = invoices[0]!.id;
    expect(invoices[0]).toMatchObject({ status: 'OPEN', rounding: 2n, amount_due: 12_340n });
    // Feb 16 (13 of 28 days unused): 11220 × 13/28 = 5209.29 → 5209, tax 521, less the rounding's share
    // 2 × 13/28 = 0.93 → 1: a credit of 5729. All of it comes off: 6611 left, which Stripe cannot take,
    // so 1 more is rounded off (rounding 2 + 1 = 3, total 12339): 6610 due, charged; no customer
    // credit (before: 5720 off, 6620 due and 9 of customer credit, which a void left behind).
    const result = await changeSubscription(
      db(),
      'system',
      subscription.id,
      { planId: free, proration: 'prorate_now' },
      d('2027-02-16T00:00:00Z'),
      false,
    );
    const credit = -result.proration.total;
    const after = (await app.api('GET', `/v1/invoices/${invoice}`)).body;
    const stripe = stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${invoice}/charge`, {});
    expect({
      credit,
      due: after.amount_due,
      customerCredit: await creditOf(customer, 'TND'),
      status: charged.status,
      sent: stripe.seen.map((s) => s.params.get('amount')),
    }).toEqual({ credit: 5729n, due: 6610, customerCredit: 0n, status: 200, sent: ['6610'] });
    expect(after).toMatchObject({ rounding: 3, total: 12_339, proration_credited: 5729 });
    expect(after.lines.at(-1)).toMatchObject({ type: 'ROUNDING', amount: -3 });
    // The invoice's own entries: receivable 12340 − 5729 − 1 = 6610 (the payment's entry takes it off),
    // rounding 2 + 1, revenue −11220 + 5208, tax payable −1122 + 521.
    expect(await invoiceBooks(invoice)).toEqual({
      'receivable:customer': 6610,
      revenue: -6012,
      tax_payable: -601,
      rounding: 3,
    });
  });

  it('voiding a rounded invoice after a downgrade credited part of it leaves the customer no credit and every account of it at 0 (Stripe TND)', async () => {
    // As above: 12340 owed (12342 rounded by 2), Feb 16 to a free plan, a credit of 5729.
    const plan = (name: string, amount: number) =>
      insertPlan(db(), { name, currency: 'TND', price: { model: 'FLAT_FEE', amount }, taxRatePpm: 100_000 });
    const [big, free] = [await plan('Big TND void', 11_220), await plan('Free TND void', 0)];
    const { customer, method } = await customerPaying('stripe');
    const { subscription, invoices } = await createSubscription(
      db(),
      'system',
      { customerId: customer, planId: big, paymentMethodId: method },
      d('2027-02-01T00:00:00Z'),
    );
    const invoice = invoices[0]!.id;
    await changeSubscription(
      db(),
      'system',
      subscription.id,
      { planId: free, proration: 'prorate_now' },
      d('2027-02-16T00:00:00Z'),
      false,
    );
    await voidInvoice(db(), 'system', invoice);
    // The void reverses the finalization as rounded (12339, rounding 3) and the 5729 taken off; the
    // customer keeps nothing for time never paid (before: 9 of customer credit, less than one step).
    expect(await creditOf(customer, 'TND')).toBe(0n);
    expect((await app.api('GET', `/v1/invoices/${invoice}`)).body).toMatchObject({
      status: 'VOID',
      amount_due: 0,
    });
    expect(await invoiceBooks(invoice)).toEqual({
      'receivable:customer': 0,
      revenue: 0,
      tax_payable: 0,
      rounding: 0,
    });
  });

  it('a prorate cancellation lowering an OPEN add-on invoice rounds what it still owes to the step, and it is charged (Stripe KWD)', async () => {
    const plan = await insertPlan(db(), {
      name: 'Free KWD',
      currency: 'KWD',
      price: { model: 'FLAT_FEE', amount: 0 },
      taxRatePpm: 0,
    });
    const seats = (await createAddOn(db(), 'system', { name: 'Seats KWD', currency: 'KWD', amount: 1200n }))
      .id;
    const { customer, method } = await customerPaying('stripe');
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId: customer, planId: plan, paymentMethodId: method },
      d('2027-02-01T00:00:00Z'),
    );
    // Feb 8 (21 of 28 days left): 1200 × 21/28 = 900 fils, untaxed, on Stripe's step of 10; OPEN,
    // charged at the period's end.
    const { invoice } = await setSubscriptionAddOn(
      db(),
      'system',
      subscription.id,
      { addOnId: seats, quantity: 1, proration: 'prorate_at_renewal' },
      d('2027-02-08T00:00:00Z'),
    );
    expect(invoice).toMatchObject({ status: 'OPEN', total: 900n, rounding: 0n, amount_due: 900n });
    // Feb 16, `prorate` (13 of its 21 days unused): 900 × 13/21 = 557.14 → 557 less: 343 left, which
    // Stripe cannot take (before: left OPEN at 343, every charge refused 422). Now 3 is rounded off:
    // 340 due, rounding 3, total 897.
    await inUnitOfWork(db(), { actor: 'system' }, async (work) =>
      cancelLocked(
        work,
        (await lockSubscription(work, subscription.id))!,
        { when: 'now', refundType: 'prorate' },
        d('2027-02-16T00:00:00Z'),
      ),
    );
    const lowered = (await app.api('GET', `/v1/invoices/${invoice!.id}`)).body;
    expect(lowered).toMatchObject({
      status: 'OPEN',
      proration_credited: 557,
      rounding: 3,
      total: 897,
      amount_due: 340,
    });
    expect(lowered.lines.at(-1)).toMatchObject({ type: 'ROUNDING', amount: -3 });
    const stripe = stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${invoice!.id}/charge`, {});
    expect(charged.status).toBe(200);
    expect(stripe.seen.map((s) => s.params.get('amount'))).toEqual(['340']);
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 340, amount_due: 0 });
    // The invoice's own entries: receivable 900 − 557 − 3 = 340 (the payment's entry takes it off);
    // revenue 900 − 557 kept for the 8 days served; rounding 3.
    expect(await invoiceBooks(invoice!.id)).toEqual({
      'receivable:customer': 340,
      revenue: -343,
      rounding: 3,
    });
  });

  it('an offline partial payment that would leave what is due off the step is refused 422 naming the amounts that fit; one on the step is recorded and the rest charged (Stripe TND)', async () => {
    // 12340 due through Stripe (TND in steps of 10 millimes). 5005 by bank would leave 7335, which
    // Stripe cannot be charged (before: recorded, and the charge then raised amount_not_representable).
    const { customer } = await customerPaying('stripe');
    const invoice = await finalized(customer, 'TND', 12_340n);
    expect(invoice).toMatchObject({ status: 'OPEN', rounding: 0, amount_due: 12_340 });
    const payments = () =>
      db().selectFrom('offline_payments').select('amount').where('invoice_id', '=', invoice.id).execute();
    const refused = await app.api('POST', `/v1/invoices/${invoice.id}/payments`, {
      amount: 5005,
      method: 'BANK',
    });
    expect(refused.status).toBe(422);
    expect(refused.body.error.fields.amount).toEqual(
      expect.stringMatching(/^5005 would leave 7335 due .*Stripe.*Pay 5000 or 5010, or all 12340 due$/),
    );
    // 5 would leave 12335: nothing less fits, only 10.
    const small = await app.api('POST', `/v1/invoices/${invoice.id}/payments`, { amount: 5, method: 'CASH' });
    expect(small.status).toBe(422);
    expect(small.body.error.fields.amount).toEqual(expect.stringMatching(/Pay 10, or all 12340 due$/));
    // Nothing changed: no payment, nothing booked beyond the finalization.
    expect(await payments()).toEqual([]);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_paid: 0,
      amount_due: 12_340,
    });
    expect(await invoiceBooks(invoice.id)).toEqual({ 'receivable:customer': 12_340, revenue: -12_340 });

    const paid = await app.api('POST', `/v1/invoices/${invoice.id}/payments`, {
      amount: 5000,
      method: 'BANK',
    });
    expect(paid.status).toBe(201);
    expect(paid.body).toMatchObject({ status: 'OPEN', amount_paid: 5000, amount_due: 7340 });
    const stripe = stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect({ status: charged.status, sent: stripe.seen.map((r) => r.params.get('amount')) }).toEqual({
      status: 200,
      sent: ['7340'],
    });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 12_340,
      amount_due: 0,
      rounding: 0,
    });
    expect(await payments()).toEqual([{ amount: 5000n }]);
  });
});
