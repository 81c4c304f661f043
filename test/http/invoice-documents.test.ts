import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { pdfText } from '../support/pdf-text.ts';
import { stripeFixture } from '../support/stripe.ts';

describe('invoice and receipt PDFs, offline payments as transactions (issue #28 items 1 and 6)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /**
   * GETs the PDF at `path` with the admin key and returns its bytes; fails the test, with the answer
   * as the message, unless it is a 200 `application/pdf` starting `%PDF-` (so an error answer is
   * never read as a PDF without text).
   */
  async function download(path: string): Promise<Buffer> {
    const response = await fetch(`${app.url}${path}`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    const body = Buffer.from(await response.arrayBuffer());
    const answer = `GET ${path}: ${response.status} ${body.subarray(0, 500).toString('latin1')}`;
    expect(response.status, answer).toBe(200);
    expect(response.headers.get('content-type'), answer).toBe('application/pdf');
    expect(body.subarray(0, 5).toString(), answer).toBe('%PDF-');
    return body;
  }

  /** A finalized invoice of `lines` in `currency` for a new customer with a Stripe card, with `details`. */
  async function openInvoice(currency: string, lines: unknown[], details: Record<string, unknown> = {}) {
    const customer = await app.api('POST', '/v1/customers', {
      email: 'docs@example.com',
      name: 'Ada Lovelace',
      payment_terms_days: 14,
    });
    await app.api('POST', '/v1/payment-methods', {
      customer: customer.body.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.body.id,
      currency,
      lines,
      ...details,
    });
    expect(draft.status).toBe(201);
    const open = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
    expect(open.body.status).toBe('OPEN');
    return { customer: customer.body, invoice: open.body };
  }

  it('prints a KWD invoice with the API’s numbers in three decimals, and its offline payment', async () => {
    const { invoice } = await openInvoice(
      'kwd',
      [
        { description: 'Hosting', amount: 1296, quantity: 2, tax_percent: '5' },
        { description: 'Loyalty', amount: 100, type: 'CREDIT' },
      ],
      {
        po_number: 'PO6767',
        title: 'Hosting, December',
        notes: 'Pay by bank transfer to IBAN KW81CBKU0000000000001234560101.',
      },
    );
    // 2 × 1.296 = 2.592 at 5% = 0.130 (half up); credit 0.100 at 0%: subtotal 2.492, tax 0.130, 2.622.
    // The customer's card is Stripe's, which takes KWD in steps of 0.010: finalization rounds 0.002
    // off with a ROUNDING line (PRODUCT §11), total 2.620.
    expect([invoice.subtotal, invoice.tax, invoice.rounding, invoice.total]).toEqual([2492, 130, 2, 2620]);
    const paid = await app.api('POST', `/v1/invoices/${invoice.id}/payments`, {
      amount: 1000,
      method: 'BANK',
      reference: 'WIRE-42',
    });
    expect(paid.status).toBe(201);
    expect(paid.body.amount_due).toBe(1620);

    const text = pdfText(await download(`/v1/invoices/${invoice.id}/pdf`));
    expect(text).toContain(`Invoice ${invoice.number}`);
    expect(text).toContain('Hosting, December');
    expect(text).toContain(`Invoice number: ${invoice.number}`);
    expect(text).toContain(`Due: ${invoice.due_date.slice(0, 10)} (net 14 days)`);
    expect(text).toContain('PO number: PO6767');
    expect(text).toContain('Name: Ada Lovelace');
    for (const amount of ['1.296 KWD', '2.592 KWD', '-0.100 KWD', '2.492 KWD', '0.130 KWD', '2.620 KWD']) {
      expect(text).toContain(amount);
    }
    // The rounding: its line and its row in the totals, both −0.002.
    // (The description wraps in its column, each piece ending in its space.)
    expect(text.join('')).toContain('Rounding: Stripe requires the last digit of a KWD amount to be 0');
    expect(text.filter((line) => line.includes('-0.002 KWD')).length).toBeGreaterThanOrEqual(2);
    expect(text).toContain('1.000 KWD'); // amount paid
    expect(text).toContain('1.620 KWD'); // amount due
    expect(text.some((line) => line.includes('Offline: BANK (ref WIRE-42)'))).toBe(true);
    expect(text.join(' ')).toContain('IBAN KW81CBKU0000000000001234560101');
  });

  it('lists an offline payment as a transaction (type offline), on the invoice and in /v1/transactions', async () => {
    const { customer, invoice } = await openInvoice('eur', [{ description: 'Consulting', amount: 5000 }]);
    stripeChargeSucceeds();
    // Half by cheque first, then the rest through Stripe: one of each kind, in creation order.
    const cheque = await app.api('POST', `/v1/invoices/${invoice.id}/payments`, {
      amount: 2000,
      method: 'CHECK',
      reference: '000123',
    });
    expect(cheque.status).toBe(201);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');
    expect(charged.body.transaction.type).toBe('gateway');

    const listed = await app.api('GET', `/v1/transactions?customer=${customer.id}&sort=created`);
    expect(listed.status).toBe(200);
    const [offline, gateway] = listed.body.data;
    expect(offline).toMatchObject({
      object: 'transaction',
      type: 'offline',
      invoice: invoice.id,
      customer: customer.id,
      gateway: null,
      gateway_account: null,
      amount: 2000,
      amount_captured: 2000,
      currency: 'EUR',
      status: 'succeeded',
      offline_method: 'CHECK',
      reference: '000123',
    });
    expect(offline.id).toMatch(/^op_/);
    expect(gateway).toMatchObject({ id: charged.body.transaction.id, type: 'gateway', amount: 3000 });
    // Newest first by default, and paging crosses the two kinds by creation time.
    const first = await app.api('GET', `/v1/transactions?customer=${customer.id}&limit=1`);
    expect(first.body.data.map((t: { id: string }) => t.id)).toEqual([gateway.id]);
    expect(first.body.has_more).toBe(true);
    const next = await app.api(
      'GET',
      `/v1/transactions?customer=${customer.id}&limit=1&starting_after=${gateway.id}`,
    );
    expect(next.body.data.map((t: { id: string }) => t.id)).toEqual([offline.id]);
    expect(next.body.has_more).toBe(false);

    expect((await app.api('GET', `/v1/transactions/${offline.id}`)).body).toEqual(offline);
    const offlineOnly = await app.api('GET', `/v1/transactions?invoice=${invoice.id}&type=offline`);
    expect(offlineOnly.body.data.map((t: { id: string }) => t.id)).toEqual([offline.id]);
    const stripeOnly = await app.api('GET', `/v1/transactions?invoice=${invoice.id}&gateway_account=default`);
    expect(stripeOnly.body.data.map((t: { id: string }) => t.id)).toEqual([gateway.id]);
    const expanded = await app.api('GET', `/v1/invoices/${invoice.id}?expand=transactions`);
    expect(expanded.body.transactions.map((t: { id: string; type: string }) => [t.id, t.type])).toEqual([
      [offline.id, 'offline'],
      [gateway.id, 'gateway'],
    ]);

    // Each payment has its receipt, with what it moved and the invoice it paid.
    for (const [id, amount, method] of [
      [offline.id, '20.00 EUR', 'Offline: CHECK (ref 000123)'],
      [gateway.id, '30.00 EUR', `stripe ${charged.body.transaction.gateway_transaction_id}`],
    ]) {
      const text = pdfText(await download(`/v1/transactions/${id}/receipt`));
      expect(text).toContain(`Receipt ${id}`);
      expect(text).toContain(amount);
      expect(text).toContain(`Method: ${method}`);
      expect(text).toContain(`Invoice number: ${invoice.number}`);
      expect(text).toContain('50.00 EUR'); // the invoice's total
    }
  });

  it('lists credit notes on the invoice (expand=credit_notes) and prints them with their tax share', async () => {
    const { invoice } = await openInvoice('eur', [
      { description: 'Consulting', amount: 1000, tax_percent: '10' },
    ]);
    stripeChargeSucceeds();
    expect((await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {})).body.invoice.status).toBe('PAID');
    stripeRefundSucceeds('re_docs_1');
    const refund = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 550 });
    expect(refund.body.status).toBe('succeeded');

    const read = await app.api('GET', `/v1/invoices/${invoice.id}?expand=credit_notes`);
    expect(read.body.credit_notes).toHaveLength(1);
    expect(read.body.credit_notes[0]).toMatchObject({
      object: 'credit_note',
      invoice: invoice.id,
      refund: refund.body.id,
      subtotal: 500,
      tax: 50,
      total: 550,
      status: 'ISSUED',
    });
    // Without expand the invoice carries no list (as Stripe's invoice; GET /v1/credit-notes?invoice= too).
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.credit_notes).toBeUndefined();

    const text = pdfText(await download(`/v1/invoices/${invoice.id}/pdf`));
    expect(text).toContain('Credit notes');
    const note = read.body.credit_notes[0];
    // A row too long for the page wraps at spaces: read the text as one run.
    expect(text.join(' ').replace(/\s+/g, ' ')).toContain(
      `${note.id} · ${note.created_at.slice(0, 10)} · ISSUED · subtotal 5.00 EUR, tax 0.50 EUR 5.50 EUR`,
    );
    for (const amount of ['5.50 EUR', '11.00 EUR']) expect(text).toContain(amount);
    expect(text).toContain('Amount refunded');
  });

  it('refuses a DRAFT’s PDF (no number yet) and a receipt for a payment that moved no money', async () => {
    const customer = await app.api('POST', '/v1/customers', { email: 'draft@example.com' });
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.body.id,
      currency: 'jpy',
      lines: [{ description: 'Seat', amount: 1500 }],
    });
    const refused = await app.api('GET', `/v1/invoices/${draft.body.id}/pdf`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('invoice_not_finalized');
    expect((await app.api('GET', '/v1/invoices/inv_nothere/pdf')).status).toBe(404);
    expect((await app.api('GET', '/v1/transactions/txn_nothere/receipt')).status).toBe(404);

    // A declined Stripe charge: a failed transaction, no receipt.
    const { invoice } = await openInvoice('jpy', [{ description: 'Seat', amount: 1500 }]);
    const body = stripeFixture('api.payment_intent.create.card_declined.error.json');
    body.error.payment_intent.id = 'pi_declined_documents';
    body.error.charge = 'ch_declined_documents';
    nock(STRIPE_API_BASE).post('/v1/payment_intents').reply(402, body);
    const declined = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(declined.body.transaction.status).toBe('failed');
    const noReceipt = await app.api('GET', `/v1/transactions/${declined.body.transaction.id}/receipt`);
    expect(noReceipt.status).toBe(409);
    expect(noReceipt.body.error.code).toBe('transaction_not_succeeded');
    // A zero-exponent currency prints whole yen.
    const text = pdfText(await download(`/v1/invoices/${invoice.id}/pdf`));
    expect(text).toContain('1500 JPY');
  });
});
