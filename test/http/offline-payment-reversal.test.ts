import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { dispatchEvents } from '../../src/outbound/dispatch.ts';
import { ADMIN_KEY, type TestApp } from '../support/app.ts';
import { openInvoice } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';

/** POST /v1/invoices/:id/payments/:payment/reverse with `body`, an Idempotency-Key when given. */
async function reverseOver(
  app: TestApp,
  invoiceId: string,
  paymentId: string,
  body: unknown,
  idempotencyKey?: string,
  key = ADMIN_KEY,
) {
  const response = await fetch(`${app.url}/v1/invoices/${invoiceId}/payments/${paymentId}/reverse`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
    },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    replayed: response.headers.get('idempotent-replayed'),
    body: (await response.json()) as any,
  };
}

/** Every ledger account's balance by `code currency`, minor units. */
async function balances(app: TestApp): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  let after = '';
  for (;;) {
    const page = await app.api('GET', `/v1/ledger/accounts?limit=100${after && `&starting_after=${after}`}`);
    for (const a of page.body.data) out[`${a.code} ${a.currency}`] = a.balance;
    if (!page.body.has_more) return out;
    after = page.body.data.at(-1).id;
  }
}

/** The balances that changed between two `balances` readings, as `after - before`. */
function moved(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const code of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const change = (after[code] ?? 0) - (before[code] ?? 0);
    if (change !== 0) out[code] = change;
  }
  return out;
}

describe('POST /v1/invoices/:id/payments/:payment/reverse (a bounced cheque)', () => {
  let app: TestApp;
  let receiver: Server;
  beforeAll(async () => {
    // An endpoint's receiver that takes every delivery (outbound events are checked where stored).
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end());
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    app = await startOfflineTestApp({ BILLHOOK_SECRET_KEY: randomBytes(32).toString('base64') });
    const endpoint = await app.api('POST', '/v1/webhook-endpoints', {
      url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/billhook`,
      enabled_events: ['invoice.paid', 'invoice.payment_reversed'],
    });
    expect(endpoint.status).toBe(201);
  });
  afterAll(async () => {
    await stopOfflineTestApp(app);
    await new Promise((resolve) => receiver.close(resolve));
  });

  /** The outbound events stored for invoice `id`, oldest first: type and `data.object`. */
  async function eventsOf(id: string) {
    await dispatchEvents(app.runtime.db, app.runtime.boss);
    const rows = await app.runtime.db
      .selectFrom('outbound_events as e')
      .innerJoin('activities as a', 'a.id', 'e.activity_id')
      .select(['e.type', 'e.body'])
      // In the order of their activities: one dispatch stores them in one transaction (one
      // created_at), and ids made in one millisecond sort at random.
      .orderBy('a.sequence')
      .execute();
    return rows
      .map((row) => ({ type: row.type, object: JSON.parse(row.body).data.object }))
      .filter((event) => event.object.id === id);
  }

  /** An OPEN EUR invoice of 46.20 paid `amounts` by cheque, one payment each; returns the payments' ids. */
  async function paidByCheques(amounts: number[]) {
    const { invoice, customer } = await openInvoice(app);
    for (const amount of amounts) {
      const paid = await app.api('POST', `/v1/invoices/${invoice.id}/payments`, {
        method: 'CHECK',
        amount,
        reference: `cheque ${amount}`,
      });
      expect(paid.status).toBe(201);
    }
    const listed = await app.api('GET', `/v1/transactions?invoice=${invoice.id}&type=offline&sort=created`);
    return { invoice, customer, payments: listed.body.data.map((t: { id: string }) => t.id) as string[] };
  }

  it('is in /openapi.json under the write scope', async () => {
    const document = (await (await fetch(`${app.url}/openapi.json`)).json()) as any;
    const operation = document.paths['/v1/invoices/{id}/payments/{payment}/reverse']?.post;
    expect(operation).toMatchObject({ operationId: 'reverseInvoicePayment' });
    const { secret } = await createApiKey(app.runtime.db, 'reader', 'read');
    const { invoice, payments } = await paidByCheques([4620]);
    const before = await balances(app);
    const refused = await reverseOver(
      app,
      invoice.id,
      payments[0]!,
      { reason: 'bounced' },
      undefined,
      secret,
    );
    expect(refused.status).toBe(403);
    expect(moved(before, await balances(app))).toEqual({});
  });

  it('owes the invoice again, reverses the ledger, shows the payment reversed, and a repeat with the same Idempotency-Key is answered as before', async () => {
    // EUR 46.20 paid by one cheque: PAID. The cheque bounces: OPEN, 4620 due, receivable +4620 and
    // offline receipts −4620 (before: no operation; the payment stood for good).
    const { invoice, customer, payments } = await paidByCheques([4620]);
    const [cheque] = payments;
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.status).toBe('PAID');
    const before = await balances(app);

    const reversed = await reverseOver(
      app,
      invoice.id,
      cheque!,
      { reason: 'cheque returned unpaid' },
      'bounce-1',
    );
    expect(reversed.status).toBe(200);
    expect(reversed.body).toMatchObject({
      id: invoice.id,
      status: 'OPEN',
      amount_paid: 0,
      amount_due: 4620,
      paid_at: null,
    });
    expect(moved(before, await balances(app))).toEqual({
      [`receivable:${customer.id} EUR`]: 4620,
      'offline_receipts EUR': -4620,
    });
    const payment = await app.api('GET', `/v1/transactions/${cheque}`);
    expect(payment.body).toMatchObject({
      type: 'offline',
      status: 'canceled',
      failure_code: 'reversed',
      failure_message: 'cheque returned unpaid',
      amount: 4620,
    });
    const activities = await app.api('GET', `/v1/activities?resource=${invoice.id}&limit=100`);
    expect(activities.body.data.map((a: { action: string }) => a.action)).toEqual(
      expect.arrayContaining(['invoice.payment_reversed', 'invoice.offline_payment_reversed']),
    );
    // The outbound event after `invoice.paid`: the invoice owed again, naming the payment.
    expect(await eventsOf(invoice.id)).toEqual([
      expect.objectContaining({ type: 'invoice.paid' }),
      {
        type: 'invoice.payment_reversed',
        object: expect.objectContaining({
          id: invoice.id,
          object: 'invoice',
          payment: cheque,
          currency: 'EUR',
          amount: 4620,
          status: 'OPEN',
          amount_paid: 0,
          amount_due: 4620,
          reason: 'cheque returned unpaid',
        }),
      },
    ]);
    // No receipt for a payment that was taken back.
    expect((await app.api('GET', `/v1/transactions/${cheque}/receipt`)).status).toBe(409);

    // The same key: the same answer, replayed, nothing moved again.
    const after = await balances(app);
    const again = await reverseOver(
      app,
      invoice.id,
      cheque!,
      { reason: 'cheque returned unpaid' },
      'bounce-1',
    );
    expect(again.status).toBe(200);
    expect(again.replayed).toBe('true');
    expect(again.body).toEqual(reversed.body);
    // Another key (or none): 409 offline_payment_reversed, nothing moved.
    const twice = await reverseOver(
      app,
      invoice.id,
      cheque!,
      { reason: 'cheque returned unpaid' },
      'bounce-2',
    );
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('offline_payment_reversed');
    expect(moved(after, await balances(app))).toEqual({});

    // Paid again by transfer: PAID, the books where the bounced cheque had left them.
    const paid = await app.api('POST', `/v1/invoices/${invoice.id}/payments`, {
      method: 'BANK',
      amount: 4620,
    });
    expect(paid.body).toMatchObject({ status: 'PAID', amount_due: 0, amount_paid: 4620 });
    expect(moved(before, await balances(app))).toEqual({});
  });

  it('a part-paid invoice: reversing one of two cheques leaves the other paid', async () => {
    // 4620 = 2000 + 2620; the 2000 cheque bounces: OPEN, 2620 paid, 2000 due.
    const { invoice, customer, payments } = await paidByCheques([2000, 2620]);
    const before = await balances(app);
    const reversed = await reverseOver(app, invoice.id, payments[0]!, { reason: 'insufficient funds' });
    expect(reversed.status).toBe(200);
    expect(reversed.body).toMatchObject({ status: 'OPEN', amount_paid: 2620, amount_due: 2000 });
    expect(moved(before, await balances(app))).toEqual({
      [`receivable:${customer.id} EUR`]: 2000,
      'offline_receipts EUR': -2000,
    });
  });

  it('refuses bad input and unknown payments with field-level 4xx, changing nothing', async () => {
    const { invoice, payments } = await paidByCheques([1000]);
    const other = await paidByCheques([500]);
    const before = await balances(app);
    const invoiceBefore = (await app.api('GET', `/v1/invoices/${invoice.id}`)).body;

    for (const body of [{}, { reason: '' }, { reason: '   ' }, { reason: 'x'.repeat(501) }, { reason: 7 }]) {
      const refused = await reverseOver(app, invoice.id, payments[0]!, body, 'bad-input');
      expect(refused.status, JSON.stringify(body)).toBe(422);
      expect(Object.keys(refused.body.error.fields)).toEqual(['reason']);
    }
    const extra = await reverseOver(app, invoice.id, payments[0]!, { reason: 'bounced', amount: 1000 });
    expect(extra.status).toBe(422);
    // An unknown key is named in the body's own field (strict bodies: `(body)`).
    expect(extra.body.error.fields['(body)']).toContain('amount');

    const unknown = await reverseOver(app, invoice.id, 'op_does_not_exist', { reason: 'bounced' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('offline_payment_not_found');
    const elsewhere = await reverseOver(app, invoice.id, other.payments[0]!, { reason: 'bounced' });
    expect(elsewhere.status).toBe(404);
    expect(elsewhere.body.error.code).toBe('offline_payment_not_found');
    const noInvoice = await reverseOver(app, 'inv_does_not_exist', payments[0]!, { reason: 'bounced' });
    expect(noInvoice.status).toBe(404);
    expect(noInvoice.body.error.code).toBe('invoice_not_found');

    // Written off (3620 to bad debt): 409 invoice_uncollectible.
    const written = await app.api('POST', `/v1/invoices/${invoice.id}/mark-uncollectible`);
    expect(written.status).toBe(200);
    const writtenOff = await balances(app);
    const uncollectible = await reverseOver(app, invoice.id, payments[0]!, { reason: 'bounced' });
    expect(uncollectible.status).toBe(409);
    expect(uncollectible.body.error.code).toBe('invoice_uncollectible');
    expect(moved(writtenOff, await balances(app))).toEqual({});
    expect(moved(before, writtenOff)).toEqual({
      [`receivable:${invoiceBefore.customer} EUR`]: -3620,
      'bad_debt EUR': 3620,
    });
    expect((await app.api('GET', `/v1/transactions/${payments[0]}`)).body.status).toBe('succeeded');

    // The key refused with bad input runs a corrected request.
    const corrected = await reverseOver(
      app,
      other.invoice.id,
      other.payments[0]!,
      { reason: 'bounced' },
      'bad-input',
    );
    expect(corrected.status).toBe(200);
    expect(corrected.replayed).toBeNull();
    expect(corrected.body).toMatchObject({ status: 'OPEN', amount_paid: 0, amount_due: 4620 });
  });
});
