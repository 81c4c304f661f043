import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renewSubscription } from '../../src/billing/renewal.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { actionsOf } from '../support/collection.ts';
import { ledgerByCode } from '../support/flow.ts';

/**
 * Named tax rates over HTTP (issue #28 item 5): the rates of the customer's address replace a
 * plan's or line's bare percent, a tax-exempt customer pays none, compound and inclusive rates split
 * exactly, and the tax lands in tax payable.
 */
describe('/v1/tax-rates and taxes by address', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.stop());

  /** A customer (over the API) whose billing address is set where the customers' API keeps it. */
  async function customerAt(country: string | null, state: string | null = null, taxExempt = false) {
    const created = await app.api('POST', '/v1/customers', { email: `c${Math.random()}@example.com` });
    expect(created.status).toBe(201);
    await app.runtime.db
      .updateTable('customers')
      .set({ address_country: country, address_state: state, tax_exempt: taxExempt })
      .where('id', '=', created.body.id)
      .execute();
    return created.body.id as string;
  }

  async function rate(body: Record<string, unknown>) {
    const created = await app.api('POST', '/v1/tax-rates', body);
    expect(created.status).toBe(201);
    return created.body;
  }

  async function invoiceFor(customer: string, lines: unknown[], currency = 'AUD') {
    const created = await app.api('POST', '/v1/invoices', { customer, currency, lines });
    expect(created.status).toBe(201);
    return created.body;
  }

  it('creates (201), reads, lists by country and active, updates display fields and archives a rate', async () => {
    const created = await app.api('POST', '/v1/tax-rates', {
      display_name: 'Sales tax',
      description: 'New York City',
      country: 'US',
      state: 'NY',
      percent: 8.875,
      metadata: { code: 'NYC' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      object: 'tax_rate',
      display_name: 'Sales tax',
      description: 'New York City',
      country: 'US',
      state: 'NY',
      percent: '8.875',
      inclusive: false,
      compound: false,
      active: true,
      metadata: { code: 'NYC' },
    });
    expect(created.body.id).toMatch(/^txr_/);
    const id = created.body.id;
    expect((await app.api('GET', `/v1/tax-rates/${id}`)).body).toEqual(created.body);
    const other = await rate({ display_name: 'VAT', country: 'DE', percent: '19' });

    const us = await app.api('GET', '/v1/tax-rates?country=US');
    expect(us.body.data.map((r: { id: string }) => r.id)).toEqual([id]);

    const renamed = await app.api('POST', `/v1/tax-rates/${id}`, {
      display_name: 'NY sales tax',
      description: null,
    });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ display_name: 'NY sales tax', description: null, percent: '8.875' });
    const archived = await app.api('POST', `/v1/tax-rates/${id}`, { active: false });
    expect(archived.body.active).toBe(false);
    const active = await app.api('GET', '/v1/tax-rates?active=true');
    expect(active.body.data.map((r: { id: string }) => r.id)).toContain(other.id);
    expect(active.body.data.map((r: { id: string }) => r.id)).not.toContain(id);
    // The same body again changes and logs nothing.
    expect((await app.api('POST', `/v1/tax-rates/${id}`, { active: false })).status).toBe(200);
    expect(await actionsOf(app, id)).toEqual(['tax_rate.created', 'tax_rate.updated', 'tax_rate.updated']);
  });

  it('refuses bad input with field errors (422), a change of percentage or place, and answers 404', async () => {
    const before = (await app.runtime.db.selectFrom('tax_rates').select('id').execute()).length;
    const bad = await app.api('POST', '/v1/tax-rates', {
      display_name: '',
      country: 'usa',
      percent: 0,
      rate: 5,
    });
    expect(bad.status).toBe(422);
    expect(Object.keys(bad.body.error.fields)).toEqual(
      expect.arrayContaining(['display_name', 'country', 'percent']),
    );
    expect(
      (await app.api('POST', '/v1/tax-rates', { display_name: 'x', country: 'US', percent: 100.5 })).status,
    ).toBe(422);
    // The shape of a code is not enough: ZZ is assigned to no country, so no address could match it.
    const unassigned = await app.api('POST', '/v1/tax-rates', {
      display_name: 'x',
      country: 'ZZ',
      percent: 5,
    });
    expect(unassigned.status).toBe(422);
    expect(unassigned.body.error.fields.country).toMatch(/assigned/);
    const r = await rate({ display_name: 'GST', country: 'SG', percent: 9 });
    const change = await app.api('POST', `/v1/tax-rates/${r.id}`, { percent: 10, country: 'MY' });
    expect(change.status).toBe(422);
    expect(Object.keys(change.body.error.fields).sort()).toEqual(['country', 'percent']);
    expect((await app.api('GET', '/v1/tax-rates/txr_nope')).status).toBe(404);
    expect((await app.api('POST', '/v1/tax-rates/txr_nope', { active: false })).status).toBe(404);
    expect((await app.api('GET', '/v1/tax-rates?country=sg')).status).toBe(422);
    expect((await app.runtime.db.selectFrom('tax_rates').select('id').execute()).length).toBe(before + 1);
  });

  it("applies the address's rates in place of a line's bare percent, booked to tax payable", async () => {
    const gst = await rate({ display_name: 'GST', country: 'AU', percent: 10 });
    const sydney = await customerAt('AU', 'NSW');
    const invoice = await invoiceFor(sydney, [
      { description: 'Consulting', amount: 11045, tax_percent: 20 },
      { description: 'Discount', amount: 45, type: 'CREDIT' },
    ]);
    expect(invoice).toMatchObject({ subtotal: 11000, tax: 1100, total: 12100 });
    expect(invoice.lines[0]).toMatchObject({
      amount: 11045,
      tax_amount: 1105,
      tax_percent: '10',
      tax_inclusive: false,
      taxes: [
        {
          tax_rate: gst.id,
          display_name: 'GST',
          percent: '10',
          inclusive: false,
          compound: false,
          amount: 1105,
        },
      ],
    });
    expect(invoice.lines[1]).toMatchObject({ amount: -45, tax_amount: -5 });
    const finalized = await app.api('POST', `/v1/invoices/${invoice.id}/finalize`);
    expect(finalized.body.status).toBe('OPEN');
    // A liability: credited, so its balance is negative.
    expect((await ledgerByCode(app))['tax_payable AUD']).toBe(-1100);

    // A customer elsewhere keeps the line's bare percent; one with no address too.
    const auckland = await customerAt('NZ');
    const nz = await invoiceFor(auckland, [{ description: 'Consulting', amount: 1000, tax_percent: 15 }]);
    expect(nz.lines[0]).toMatchObject({ tax_amount: 150, tax_percent: '15', taxes: [] });
    const nowhere = await customerAt(null);
    const none = await invoiceFor(nowhere, [{ description: 'Consulting', amount: 1000, tax_percent: 15 }]);
    expect(none.tax).toBe(150);

    // A tax-exempt customer pays no tax, neither the rate nor the bare percent.
    const exempt = await customerAt('AU', null, true);
    const free = await invoiceFor(exempt, [{ description: 'Consulting', amount: 1000, tax_percent: 15 }]);
    expect(free).toMatchObject({ subtotal: 1000, tax: 0, total: 1000 });
    expect(free.lines[0]).toMatchObject({ tax_percent: '0', taxes: [] });

    // An archived rate no longer applies: the bare percent does again.
    await app.api('POST', `/v1/tax-rates/${gst.id}`, { active: false });
    const after = await invoiceFor(sydney, [{ description: 'Consulting', amount: 1000, tax_percent: 20 }]);
    expect(after.tax).toBe(200);
  });

  it('applies country and state rates, a compound one on top of the others, and an adjustment line the same way', async () => {
    const gst = await rate({ display_name: 'GST', country: 'CA', percent: 5 });
    const qst = await rate({ display_name: 'QST', country: 'CA', state: 'QC', percent: 7.5, compound: true });
    const montreal = await customerAt('CA', 'QC');
    const invoice = await invoiceFor(montreal, [{ description: 'Licence', amount: 10000 }], 'CAD');
    // GST 5% of 10000 = 500; QST 7.5% of 10500 = 787.5 → 788 (half away from zero).
    expect(invoice).toMatchObject({ subtotal: 10000, tax: 1288, total: 11288 });
    expect(invoice.lines[0].taxes).toEqual([
      { tax_rate: gst.id, display_name: 'GST', percent: '5', inclusive: false, compound: false, amount: 500 },
      {
        tax_rate: qst.id,
        display_name: 'QST',
        percent: '7.5',
        inclusive: false,
        compound: true,
        amount: 788,
      },
    ]);
    const added = await app.api('POST', `/v1/invoices/${invoice.id}/lines`, {
      description: 'Support',
      amount: 2000,
      type: 'CHARGE',
      tax_percent: 1,
    });
    expect(added.status).toBe(201);
    expect(added.body.lines[1]).toMatchObject({ amount: 2000, tax_amount: 258 });
    expect(added.body).toMatchObject({ subtotal: 12000, tax: 1546, total: 13546 });
    // A preview names the rates its lines would carry.
    const product = (await app.api('POST', '/v1/products', { name: 'Licences' })).body;
    const plan = (
      await app.api('POST', '/v1/plans', {
        product: product.id,
        name: 'Licence yearly',
        currency: 'CAD',
        interval: 'YEAR',
        price: { model: 'FLAT_FEE', amount: 10000 },
        tax_percent: 13,
      })
    ).body;
    const preview = await app.api('POST', '/v1/subscriptions/preview', { customer: montreal, plan: plan.id });
    expect(preview.body).toMatchObject({ subtotal: 10000, tax: 1288 });
    expect(preview.body.lines[0]).toMatchObject({ tax_percent: '12.5', tax_amount: 1288 });
    expect(preview.body.lines[0].taxes.map((t: { tax_rate: string }) => t.tax_rate)).toEqual([
      gst.id,
      qst.id,
    ]);
    const toronto = await customerAt('CA', 'ON');
    expect((await invoiceFor(toronto, [{ description: 'Licence', amount: 10000 }], 'CAD')).tax).toBe(500);
  });

  it('splits two inclusive rates out of a price exactly: net + both taxes = the price, each within a unit (largest remainder)', async () => {
    const cgst = await rate({ display_name: 'CGST', country: 'IN', percent: 10, inclusive: true });
    const sgst = await rate({ display_name: 'SGST', country: 'IN', percent: 10, inclusive: true });
    const pune = await customerAt('IN');
    // 30 including 10% + 10% is exactly 25 + 2.5 + 2.5. Each tax rounded on its own gave 3 + 3 and a
    // net of 24 (a unit off an exact 25); now the net is 25 and the odd unit goes to the first tax.
    const invoice = await invoiceFor(pune, [{ description: 'Chai', amount: 30 }], 'INR');
    expect(invoice).toMatchObject({ subtotal: 25, tax: 5, total: 30 });
    expect(invoice.lines[0]).toMatchObject({ amount: 25, tax_amount: 5 });
    expect(
      invoice.lines[0].taxes.map((t: { tax_rate: string; amount: number }) => [t.tax_rate, t.amount]),
    ).toEqual([
      [cgst.id, 3],
      [sgst.id, 2],
    ]);
    const finalized = await app.api('POST', `/v1/invoices/${invoice.id}/finalize`);
    expect(finalized.status).toBe(200);
    expect(finalized.body).toMatchObject({ status: 'OPEN', total: 30, amount_due: 30 });
    const ledger = await ledgerByCode(app);
    expect(ledger['tax_payable INR']).toBe(-5);
    expect(ledger['revenue INR']).toBe(-25);
  });

  it('splits an inclusive rate out of the price: net + tax = the price, on a subscription of a tax-inclusive plan', async () => {
    const vat = await rate({ display_name: 'VAT', country: 'GB', percent: 20, inclusive: true });
    const london = await customerAt('GB');
    const invoice = await invoiceFor(london, [{ description: 'Box', amount: 1000 }], 'GBP');
    expect(invoice).toMatchObject({ subtotal: 833, tax: 167, total: 1000 });
    expect(invoice.lines[0]).toMatchObject({ amount: 833, tax_amount: 167 });
    expect(invoice.lines[0].taxes[0]).toMatchObject({ tax_rate: vat.id, inclusive: true, amount: 167 });

    // A plan whose price includes tax (an exclusive rate then is included too), with a setup fee.
    const product = (await app.api('POST', '/v1/products', { name: 'Paper' })).body;
    const plan = await app.api('POST', '/v1/plans', {
      product: product.id,
      name: 'Paper monthly',
      currency: 'EUR',
      interval: 'MONTH',
      price: { model: 'FLAT_FEE', amount: 1190 },
      tax_percent: 19,
      tax_inclusive: true,
      setup_fee: 595,
    });
    expect(plan.status).toBe(201);
    expect(plan.body).toMatchObject({ tax_percent: '19', tax_inclusive: true, setup_fee: 595 });
    expect((await app.api('POST', `/v1/plans/${plan.body.id}`, { setup_fee: 1 })).status).toBe(422);
    // Vienna: no named rate in AT, so the plan's bare 19% applies, included in its price.
    const vienna = await customerAt('AT');
    const preview = await app.api('POST', '/v1/subscriptions/preview', {
      customer: vienna,
      plan: plan.body.id,
    });
    expect(preview.body).toMatchObject({ subtotal: 1500, tax: 285, total: 1785 });
    expect(preview.body.lines[0]).toMatchObject({
      amount: 1000,
      tax_amount: 190,
      tax_inclusive: true,
      taxes: [],
    });
    const sub = await app.api('POST', '/v1/subscriptions', { customer: vienna, plan: plan.body.id });
    expect(sub.status).toBe(201);
    const first = (await app.api('GET', `/v1/invoices/${sub.body.latest_invoice}`)).body;
    // 1190 incl. 19% = 1000 + 190; the setup fee 595 = 500 + 95, its own line.
    expect(first).toMatchObject({ subtotal: 1500, tax: 285, total: 1785 });
    expect(first.lines).toMatchObject([
      { type: 'CHARGE', amount: 1000, tax_amount: 190, tax_inclusive: true },
      {
        type: 'CHARGE',
        description: 'Paper monthly: setup fee',
        unit_amount: 595,
        amount: 500,
        tax_amount: 95,
      },
    ]);
    // The next period has no setup fee.
    await renewSubscription(app.runtime.db, 'system', sub.body.id, new Date(sub.body.current_period_end));
    const invoices = await app.api('GET', `/v1/invoices?customer=${vienna}&limit=10`);
    const second = invoices.body.data.find(
      (i: { billing_reason: string }) => i.billing_reason === 'subscription_cycle',
    );
    expect(second).toMatchObject({ subtotal: 1000, tax: 190, total: 1190 });
    expect(second.lines).toHaveLength(1);
    expect((await ledgerByCode(app))['tax_payable EUR']).toBe(-(285 + 190));
  });
});
