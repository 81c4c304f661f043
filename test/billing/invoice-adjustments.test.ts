import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { actionsOf, customerWith, ledgerIn } from '../support/collection.ts';
import { FIXTURE_INTENT, openInvoice, stripeChargeSucceeds } from '../support/flow.ts';
import { startHangingWeb, startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, stripeFixture } from '../support/stripe.ts';
import { NO_ANSWER_DELAY_MS } from '../support/timeouts.ts';
import { waitFor } from '../support/wait.ts';

/**
 * Taxes per line through the API, adjustment lines, charge_at, and writing an invoice off as
 * uncollectible (with recovery). Each scenario books in its own currency, so `ledgerIn` reads its own
 * accounts in the shared app.
 */
describe('invoice taxes, adjustments and bad debt', () => {
  let app: TestApp;
  /** The web process that charges the invoice whose charge never gets an answer. */
  let hanging: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
    hanging = await startHangingWeb(app);
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await hanging.stop();
    await stopOfflineTestApp(app);
  });

  const invoiceCount = async () =>
    Number(
      (
        await app.runtime.db
          .selectFrom('invoices')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('computes tax per line (rounded half up) and books it on finalize, payment and void', async () => {
    const { customer } = await customerWith(app, { stripe: true });
    const created = await app.api('POST', '/v1/invoices', {
      customer: customer.id,
      currency: 'usd',
      lines: [
        // 10000 × 8.875% = 887.5 → 888
        { description: 'Consulting', amount: 10000, tax_percent: '8.875' },
        // 1999 × 3 = 5997; × 20% = 1199.4 → 1199
        { description: 'Licences', amount: 1999, quantity: 3, tax_percent: 20 },
        // −500 × 20% = −100
        { description: 'Goodwill credit', amount: 500, type: 'CREDIT', tax_percent: '20' },
        { description: 'Untaxed fee', amount: 250 },
      ],
    });
    expect(created.status).toBe(201);
    // subtotal 10000 + 5997 − 500 + 250 = 15747; tax 888 + 1199 − 100 = 1987; total 17734
    expect(created.body).toMatchObject({
      status: 'DRAFT',
      subtotal: 15747,
      tax: 1987,
      total: 17734,
      amount_due: 17734,
    });
    expect(
      created.body.lines.map((l: { amount: number; tax_amount: number; tax_percent: string }) => [
        l.amount,
        l.tax_amount,
        l.tax_percent,
      ]),
    ).toEqual([
      [10000, 888, '8.875'],
      [5997, 1199, '20'],
      [-500, -100, '20'],
      [250, 0, '0'],
    ]);

    expect((await app.api('POST', `/v1/invoices/${created.body.id}/finalize`)).body.status).toBe('OPEN');
    expect(await ledgerIn(app, 'USD')).toEqual({
      'receivable:customer': 17734,
      revenue: -15747,
      tax_payable: -1987,
    });

    stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${created.body.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({ status: 'succeeded', amount: 17734, currency: 'USD' });
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 17734, amount_due: 0 });
    const paidBooks = {
      'gateway_clearing:stripe': 17734,
      'receivable:customer': 0,
      revenue: -15747,
      tax_payable: -1987,
    };
    expect(await ledgerIn(app, 'USD')).toEqual(paidBooks);

    // 1000 × 7.25% = 72.5 → 73: finalizing books it, voiding reverses revenue and tax payable exactly.
    const second = await app.api('POST', '/v1/invoices', {
      customer: customer.id,
      currency: 'USD',
      lines: [{ description: 'Extra seat', amount: 1000, tax_percent: 7.25 }],
    });
    expect(second.body).toMatchObject({ subtotal: 1000, tax: 73, total: 1073 });
    await app.api('POST', `/v1/invoices/${second.body.id}/finalize`);
    expect(await ledgerIn(app, 'USD')).toEqual({
      ...paidBooks,
      'receivable:customer': 1073,
      revenue: -16747,
      tax_payable: -2060,
    });
    expect((await app.api('POST', `/v1/invoices/${second.body.id}/void`)).body.status).toBe('VOID');
    expect(await ledgerIn(app, 'USD')).toEqual(paidBooks);
  });

  it.each([
    ['five decimals', '8.87501'],
    ['over 100', 100.5],
    ['negative', -1],
    ['not a number', 'eight'],
    ['exponent', 1e-7],
    ['a boolean', true],
  ])(
    'refuses a tax_percent that is %s with 422 lines.N.tax_percent, creating nothing',
    async (_name, tax) => {
      const { customer } = await customerWith(app);
      const before = await invoiceCount();
      const answer = await app.api('POST', '/v1/invoices', {
        customer: customer.id,
        currency: 'USD',
        lines: [
          { description: 'ok', amount: 100, tax_percent: '0' },
          { description: 'bad', amount: 100, tax_percent: tax },
        ],
      });
      expect(answer.status).toBe(422);
      expect(Object.keys(answer.body.error.fields)).toEqual(['lines.1.tax_percent']);
      expect(await invoiceCount()).toBe(before);
    },
  );

  it('adds CHARGE and CREDIT adjustment lines to a DRAFT, recomputing subtotal, tax and total', async () => {
    const { customer } = await customerWith(app);
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.id,
      currency: 'GBP',
      lines: [{ description: 'Plan', amount: 10000, tax_percent: '10' }],
    });
    expect(draft.body).toMatchObject({ subtotal: 10000, tax: 1000, total: 11000 });
    const id = draft.body.id;

    const fee = await app.api('POST', `/v1/invoices/${id}/lines`, {
      description: 'Setup fee',
      amount: 2500,
      type: 'CHARGE',
      tax_percent: '10',
    });
    expect(fee.status).toBe(201);
    expect(fee.body).toMatchObject({ subtotal: 12500, tax: 1250, total: 13750, amount_due: 13750 });
    const credit = await app.api('POST', `/v1/invoices/${id}/lines`, {
      description: 'Outage credit',
      amount: 1500,
      quantity: 2,
      type: 'CREDIT',
    });
    expect(credit.status).toBe(201);
    // 12500 − 3000 = 9500; tax unchanged 1250; total 10750
    expect(credit.body).toMatchObject({ subtotal: 9500, tax: 1250, total: 10750, amount_due: 10750 });
    expect(credit.body.lines.map((l: { type: string; amount: number }) => [l.type, l.amount])).toEqual([
      ['CHARGE', 10000],
      ['CHARGE', 2500],
      ['CREDIT', -3000],
    ]);

    // Credits beyond the charges, bad fields: 422 with the field, nothing changes.
    const tooMuch = await app.api('POST', `/v1/invoices/${id}/lines`, {
      description: 'Too generous',
      amount: 20000,
      type: 'CREDIT',
    });
    expect(tooMuch.status).toBe(422);
    expect(Object.keys(tooMuch.body.error.fields)).toEqual(['amount']);
    const invalid = await app.api('POST', `/v1/invoices/${id}/lines`, {
      description: '',
      amount: 1.5,
      tax_percent: '200',
    });
    expect(invalid.status).toBe(422);
    expect(Object.keys(invalid.body.error.fields).sort()).toEqual([
      'amount',
      'description',
      'tax_percent',
      'type',
    ]);
    expect((await app.api('GET', `/v1/invoices/${id}`)).body).toMatchObject({
      total: 10750,
      lines: [{}, {}, {}],
    });
    expect(
      (
        await app.api('POST', '/v1/invoices/inv_missing/lines', {
          description: 'x',
          amount: 1,
          type: 'CHARGE',
        })
      ).status,
    ).toBe(404);

    await app.api('POST', `/v1/invoices/${id}/finalize`);
    expect(await ledgerIn(app, 'GBP')).toEqual({
      'receivable:customer': 10750,
      revenue: -9500,
      tax_payable: -1250,
    });
    const late = await app.api('POST', `/v1/invoices/${id}/lines`, {
      description: 'Late',
      amount: 1,
      type: 'CHARGE',
    });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('invoice_not_draft');
    expect(await actionsOf(app, id)).toEqual([
      'invoice.created',
      'invoice.line_added',
      'invoice.line_added',
      'invoice.finalized',
    ]);
  });

  it('takes charge_at on creation and changes it on DRAFT and OPEN invoices only', async () => {
    const { customer } = await customerWith(app);
    const created = await app.api('POST', '/v1/invoices', {
      customer: customer.id,
      currency: 'CHF',
      lines: [{ description: 'Instalment 1/3', amount: 3000 }],
      charge_at: '2026-12-01T09:00:00Z',
    });
    expect(created.status).toBe(201);
    expect(created.body.charge_at).toBe('2026-12-01T09:00:00.000Z');
    const id = created.body.id;
    const moved = await app.api('POST', `/v1/invoices/${id}`, { charge_at: '2027-01-01T00:00:00+01:00' });
    expect(moved.status).toBe(200);
    expect(moved.body.charge_at).toBe('2026-12-31T23:00:00.000Z');
    await app.api('POST', `/v1/invoices/${id}/finalize`);
    expect((await app.api('POST', `/v1/invoices/${id}`, { charge_at: null })).body).toMatchObject({
      status: 'OPEN',
      charge_at: null,
    });

    for (const [body, field] of [
      [{}, 'charge_at'],
      [{ charge_at: 'tomorrow' }, 'charge_at'],
      [{ charge_at: '2026-12-01T09:00:00' }, 'charge_at'],
      [{ charge_at: null, total: 5 }, '(body)'],
    ] as const) {
      const answer = await app.api('POST', `/v1/invoices/${id}`, body);
      expect(answer.status).toBe(422);
      expect(answer.body.error.fields).toHaveProperty([field]);
    }
    const badCreate = await app.api('POST', '/v1/invoices', {
      customer: customer.id,
      currency: 'CHF',
      lines: [{ description: 'x', amount: 1 }],
      charge_at: 'soon',
    });
    expect(badCreate.status).toBe(422);
    expect(Object.keys(badCreate.body.error.fields)).toEqual(['charge_at']);
    expect((await app.api('POST', '/v1/invoices/inv_missing', { charge_at: null })).status).toBe(404);

    await app.api('POST', `/v1/invoices/${id}/payments`, { amount: 3000, method: 'BANK' });
    const paid = await app.api('POST', `/v1/invoices/${id}`, { charge_at: '2027-02-01T00:00:00Z' });
    expect(paid.status).toBe(409);
    expect(paid.body.error.code).toBe('invoice_not_editable');
    expect(await actionsOf(app, id)).toContain('invoice.updated');
  });

  it('writes the unpaid part off as bad debt, refuses other states, and recovers later offline payments', async () => {
    const { customer } = await customerWith(app);
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.id,
      currency: 'AUD',
      lines: [{ description: 'Annual plan', amount: 5000, tax_percent: '20' }],
    });
    const id = draft.body.id;
    const notOpen = await app.api('POST', `/v1/invoices/${id}/mark-uncollectible`);
    expect(notOpen.status).toBe(409);
    expect(notOpen.body.error.code).toBe('invoice_not_open');
    expect((await app.api('POST', '/v1/invoices/inv_missing/mark-uncollectible')).status).toBe(404);

    await app.api('POST', `/v1/invoices/${id}/finalize`);
    await app.api('POST', `/v1/invoices/${id}/payments`, { amount: 1000, method: 'BANK' });
    const written = await app.api('POST', `/v1/invoices/${id}/mark-uncollectible`);
    expect(written.status).toBe(200);
    expect(written.body).toMatchObject({
      status: 'UNCOLLECTIBLE',
      amount_paid: 1000,
      amount_due: 5000,
      charge_at: null,
    });
    expect(written.body.uncollectible_at).toEqual(expect.any(String));
    expect(await ledgerIn(app, 'AUD')).toEqual({
      'receivable:customer': 0,
      bad_debt: 5000,
      offline_receipts: 1000,
      revenue: -5000,
      tax_payable: -1000,
    });
    const again = await app.api('POST', `/v1/invoices/${id}/mark-uncollectible`);
    expect(again.status).toBe(409);

    // The customer pays after all, in two parts: each reverses the write-off for what it pays.
    const part = await app.api('POST', `/v1/invoices/${id}/payments`, { amount: 2000, method: 'CHECK' });
    expect(part.body).toMatchObject({ status: 'UNCOLLECTIBLE', amount_paid: 3000, amount_due: 3000 });
    expect(await ledgerIn(app, 'AUD')).toMatchObject({
      'receivable:customer': 0,
      bad_debt: 3000,
      offline_receipts: 3000,
    });
    const tooMuch = await app.api('POST', `/v1/invoices/${id}/payments`, { amount: 3001, method: 'CHECK' });
    expect(tooMuch.status).toBe(422);
    const rest = await app.api('POST', `/v1/invoices/${id}/payments`, { amount: 3000, method: 'BANK' });
    expect(rest.body).toMatchObject({ status: 'PAID', amount_paid: 6000, amount_due: 0 });
    expect(await ledgerIn(app, 'AUD')).toEqual({
      'receivable:customer': 0,
      bad_debt: 0,
      offline_receipts: 6000,
      revenue: -5000,
      tax_payable: -1000,
    });
    expect((await app.api('POST', `/v1/invoices/${id}/mark-uncollectible`)).status).toBe(409);
    expect(await actionsOf(app, id)).toEqual([
      'invoice.created',
      'invoice.finalized',
      'invoice.offline_payment_recorded',
      'invoice.payment_applied',
      'invoice.marked_uncollectible',
      'invoice.offline_payment_recorded',
      'invoice.payment_applied',
      'invoice.offline_payment_recorded',
      'invoice.paid',
    ]);
  });

  it('charges an UNCOLLECTIBLE invoice: a decline changes nothing, a success pays it and reverses the write-off', async () => {
    const { customer } = await customerWith(app, { stripe: true });
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.id,
      currency: 'NZD',
      lines: [{ description: 'Annual plan', amount: 5000, tax_percent: '20' }],
    });
    const id = draft.body.id;
    await app.api('POST', `/v1/invoices/${id}/finalize`);
    // 5000 + 20% = 6000 owed; 1000 paid by bank; the other 5000 written off.
    await app.api('POST', `/v1/invoices/${id}/payments`, { amount: 1000, method: 'BANK' });
    await app.api('POST', `/v1/invoices/${id}/mark-uncollectible`);
    const writtenOff = {
      'receivable:customer': 0,
      bad_debt: 5000,
      offline_receipts: 1000,
      revenue: -5000,
      tax_payable: -1000,
    };
    expect(await ledgerIn(app, 'NZD')).toEqual(writtenOff);

    const body = stripeFixture('api.payment_intent.create.card_declined.error.json');
    body.error.payment_intent.id = 'pi_declined_uncollectible';
    body.error.charge = 'ch_declined_uncollectible';
    nock(STRIPE_API_BASE).post('/v1/payment_intents').reply(402, body);
    const declined = await app.api('POST', `/v1/invoices/${id}/charge`, {});
    expect(declined.status).toBe(200);
    expect(declined.body.transaction).toMatchObject({ status: 'failed', amount: 5000, currency: 'NZD' });
    expect(declined.body.invoice).toMatchObject({
      status: 'UNCOLLECTIBLE',
      amount_paid: 1000,
      amount_due: 5000,
    });
    expect(await ledgerIn(app, 'NZD')).toEqual(writtenOff);

    const { seen } = stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${id}/charge`, {});
    expect(charged.status).toBe(200);
    expect(seen.map((r) => r.params.get('amount'))).toEqual(['5000']);
    expect(charged.body.transaction).toMatchObject({ status: 'succeeded', amount: 5000, currency: 'NZD' });
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 6000, amount_due: 0 });
    // The 5000 came through Stripe: clearing +5000, receivable −5000, then the recovery moves the
    // 5000 back from bad debt to the receivable (0 again). Revenue and tax payable are untouched.
    expect(await ledgerIn(app, 'NZD')).toEqual({
      'gateway_clearing:stripe': 5000,
      'receivable:customer': 0,
      bad_debt: 0,
      offline_receipts: 1000,
      revenue: -5000,
      tax_payable: -1000,
    });
    const again = await app.api('POST', `/v1/invoices/${id}/charge`, {});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('invoice_not_open');
    expect((await actionsOf(app, id)).slice(-2)).toEqual(['invoice.marked_uncollectible', 'invoice.paid']);
  });

  it('recovers a late gateway success on an UNCOLLECTIBLE invoice: PAID, bad debt reversed, nothing lost', async () => {
    const { invoice } = await openInvoice(app); // EUR 46.20, the fixture's amount
    nock(STRIPE_API_BASE).post('/v1/payment_intents').delay(NO_ANSWER_DELAY_MS).reply(200, FIXTURE_INTENT);
    const charged = await hanging.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction.status).toBe('unknown');
    nock.abortPendingRequests();

    expect((await app.api('POST', `/v1/invoices/${invoice.id}/mark-uncollectible`)).body.status).toBe(
      'UNCOLLECTIBLE',
    );
    expect(await ledgerIn(app, 'EUR')).toEqual({ 'receivable:customer': 0, bad_debt: 4620, revenue: -4620 });

    const event = stripeFixture('webhook.payment_intent.succeeded.json');
    event.id = 'evt_late_success_after_write_off';
    event.data.object.id = 'pi_late_success_after_write_off';
    event.data.object.metadata = { billhook_reference: charged.body.transaction.id };
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    const after = await waitFor('the late payment to settle the invoice', async () => {
      const read = await app.api('GET', `/v1/invoices/${invoice.id}`);
      return read.body.status === 'PAID' ? read.body : undefined;
    });
    expect(after).toMatchObject({ amount_paid: 4620, amount_due: 0 });
    expect(await ledgerIn(app, 'EUR')).toEqual({
      'gateway_clearing:stripe': 4620,
      'receivable:customer': 0,
      bad_debt: 0,
      revenue: -4620,
    });
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions');
    expect(exceptions.body.data).toEqual([]);
  });
});
