import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../support/app.ts';
import { ledgerByCode, paidStripeInvoice, stripeRefundSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

type Note = { id: string; subtotal: number; tax: number; total: number; status: string };

/**
 * PRODUCT §11: a refund gives back its share of the invoice's tax, and an invoice's tax can be
 * negative (an untaxed charge less a taxed credit, or a plan change from a taxed plan to an untaxed
 * one). Its credit notes carry a negative tax, rounded cumulatively (billing/credit-notes.ts), so the
 * notes of a full refund hold exactly the invoice's tax and net, and the books return to zero.
 */
describe('credit notes of an invoice whose tax is negative', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** 1000 untaxed less `credit` at 20%, paid through Stripe. */
  const paidNegativeTaxInvoice = (credit: number) =>
    paidStripeInvoice(app, {
      lines: [
        { description: 'Consulting', amount: 1000 },
        { description: 'Credit for a taxed overcharge', amount: credit, type: 'CREDIT', tax_percent: '20' },
      ],
    });

  async function refund(invoiceId: string, amount: number, gatewayRefundId: string) {
    stripeRefundSucceeds(gatewayRefundId);
    const answer = await app.api('POST', `/v1/invoices/${invoiceId}/refund`, { amount });
    expect(answer.status).toBe(201);
    expect(answer.body.status).toBe('succeeded');
  }

  const notesOf = async (invoiceId: string): Promise<Note[]> =>
    (await app.api('GET', `/v1/credit-notes?invoice=${invoiceId}`)).body.data;

  it('a full refund of 1000 (untaxed) less a 500 credit at 20% (500 − 100 tax = 400) gives back all of both', async () => {
    const before = await ledgerByCode(app);
    const { invoice } = await paidNegativeTaxInvoice(500);
    expect([invoice.subtotal, invoice.tax, invoice.total]).toEqual([500, -100, 400]);
    await refund(invoice.id, 400, 're_negtax_full');
    // The old code clamped the note's tax to 0: [400, 0, 400], leaving revenue 100 and tax −100.
    expect((await notesOf(invoice.id)).map((n) => [n.subtotal, n.tax, n.total])).toEqual([[500, -100, 400]]);
    const after = await ledgerByCode(app);
    const delta = (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
    expect(delta('tax_payable EUR')).toBe(0);
    expect(delta('revenue EUR') + delta('refunds EUR')).toBe(0);
  });

  it('refunds of 133, 133 and 134 of 500 − 100 tax give back −33, −34, −33 of tax (−100 in all), ledger back to zero', async () => {
    const before = await ledgerByCode(app);
    const { invoice } = await paidNegativeTaxInvoice(500);
    expect([invoice.subtotal, invoice.tax, invoice.total]).toEqual([500, -100, 400]);
    await refund(invoice.id, 133, 're_negtax_p1');
    await refund(invoice.id, 133, 're_negtax_p2');
    await refund(invoice.id, 134, 're_negtax_p3');
    const notes = (await notesOf(invoice.id)).sort((a, b) => a.total - b.total || a.id.localeCompare(b.id));
    expect(notes.map((n) => n.tax).sort()).toEqual([-33, -33, -34]);
    expect(notes.reduce((s, n) => s + n.tax, 0)).toBe(-100);
    expect(notes.reduce((s, n) => s + n.subtotal, 0)).toBe(500);
    for (const n of notes) expect(n.subtotal + n.tax).toBe(n.total);
    const after = await ledgerByCode(app);
    const delta = (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
    expect(delta('tax_payable EUR')).toBe(0);
    expect(delta('revenue EUR') + delta('refunds EUR')).toBe(0);
  });

  it('|tax| above the total (1000 less 800 at 20%: 200 − 160 = 40): refunds of 20 + 20 give −80 each', async () => {
    const before = await ledgerByCode(app);
    const { invoice } = await paidNegativeTaxInvoice(800);
    expect([invoice.subtotal, invoice.tax, invoice.total]).toEqual([200, -160, 40]);
    await refund(invoice.id, 20, 're_negtax_big1');
    await refund(invoice.id, 20, 're_negtax_big2');
    const notes = await notesOf(invoice.id);
    expect(notes.map((n) => [n.subtotal, n.tax, n.total])).toEqual([
      [100, -80, 20],
      [100, -80, 20],
    ]);
    const after = await ledgerByCode(app);
    const delta = (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
    expect(delta('tax_payable EUR')).toBe(0);
  });

  it('a refund that fails after succeeding voids its negative-tax note; the rest still gives back exactly −100', async () => {
    const before = await ledgerByCode(app);
    const { invoice, transaction } = await paidNegativeTaxInvoice(500);
    // A dashboard refund of 200 (−50 tax), then 100 through the API (−25), then the first fails.
    const event = stripeFixture('webhook.charge.refund.updated.json');
    event.id = 'evt_negtax_dashboard';
    Object.assign(event.data.object, {
      id: 're_negtax_dashboard',
      amount: 200,
      currency: 'eur',
      status: 'succeeded',
      payment_intent: transaction.gateway_transaction_id,
    });
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    const first = await waitFor('the dashboard refund note', async () => (await notesOf(invoice.id))[0]);
    expect(first).toMatchObject({ subtotal: 250, tax: -50, total: 200 });
    await refund(invoice.id, 100, 're_negtax_api');
    const failed = stripeFixture('webhook.charge.refund.updated.json');
    failed.id = 'evt_negtax_dashboard_failed';
    Object.assign(failed.data.object, {
      id: 're_negtax_dashboard',
      amount: 200,
      currency: 'eur',
      status: 'failed',
      payment_intent: transaction.gateway_transaction_id,
    });
    expect((await deliverStripe(app.url, failed)).status).toBe(200);
    await waitFor('the first note voided', async () => {
      const one = await app.api('GET', `/v1/credit-notes/${first.id}`);
      return one.body.status === 'VOID' ? one.body : undefined;
    });
    // The rest: 300.
    await refund(invoice.id, 300, 're_negtax_rest');
    const issued = (await notesOf(invoice.id)).filter((n) => n.status === 'ISSUED');
    expect(issued.reduce((s, n) => s + n.tax, 0)).toBe(-100);
    expect(issued.reduce((s, n) => s + n.subtotal, 0)).toBe(500);
    expect(issued.every((n) => n.tax <= 0)).toBe(true);
    const after = await ledgerByCode(app);
    const delta = (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
    expect(delta('tax_payable EUR')).toBe(0);
    expect(delta('revenue EUR') + delta('refunds EUR')).toBe(0);
  });
});
