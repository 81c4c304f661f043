import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/db/ids.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import type { TestApp } from '../support/app.ts';
import { ledgerByCode, paidStripeInvoice, stripeRefundSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

/** Balance changes between two `ledgerByCode` snapshots, accounts that moved only. */
function moved(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const code of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const delta = (after[code] ?? 0) - (before[code] ?? 0);
    if (delta !== 0) out[code] = delta;
  }
  return out;
}

describe('refunds give back their share of the tax, each with a credit note (PRODUCT §11)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** A customer with a Stripe card and an invoice of `amount` + `taxPercent`% tax (EUR), paid through Stripe. */
  const paidInvoice = (amount: number, taxPercent: string) =>
    paidStripeInvoice(app, { lines: [{ description: 'Consulting', amount, tax_percent: taxPercent }] });

  async function refund(invoiceId: string, amount: number, gatewayRefundId: string) {
    stripeRefundSucceeds(gatewayRefundId);
    const answer = await app.api('POST', `/v1/invoices/${invoiceId}/refund`, { amount });
    expect(answer.status).toBe(201);
    expect(answer.body.status).toBe('succeeded');
    return answer.body;
  }

  it('a full refund of 1000 + 100 tax in two parts gives back 500 + 50 each: tax payable back to zero', async () => {
    const { invoice } = await paidInvoice(1000, '10');
    expect([invoice.subtotal, invoice.tax, invoice.total]).toEqual([1000, 100, 1100]);
    const paid = await ledgerByCode(app);

    // 550 of 1100: tax back round(100 × 550 / 1100) = 50, revenue back 500.
    const first = await refund(invoice.id, 550, 're_tax_1');
    expect(moved(paid, await ledgerByCode(app))).toEqual({
      'refunds EUR': 500,
      'tax_payable EUR': 50,
      'gateway_clearing:stripe EUR': -550,
    });
    // The other 550: round(100 × 1100 / 1100) − 50 = 50.
    const second = await refund(invoice.id, 550, 're_tax_2');
    const after = await ledgerByCode(app);
    expect(moved(paid, after)).toEqual({
      'refunds EUR': 1000,
      'tax_payable EUR': 100,
      'gateway_clearing:stripe EUR': -1100,
    });
    // What the invoice booked is all given back: tax payable 0, revenue net of refunds 0, nothing owed.
    expect(after['tax_payable EUR']).toBe(0);
    expect(after['revenue EUR']! + after['refunds EUR']!).toBe(0);
    expect(after['receivable:customer EUR']).toBe(0);

    const notes = await app.api('GET', `/v1/credit-notes?invoice=${invoice.id}&sort=created`);
    expect(notes.status).toBe(200);
    expect(notes.body).toMatchObject({ object: 'list', has_more: false });
    expect(notes.body.data).toMatchObject([
      { object: 'credit_note', invoice: invoice.id, refund: first.id, status: 'ISSUED', currency: 'EUR' },
      { object: 'credit_note', invoice: invoice.id, refund: second.id, status: 'ISSUED', currency: 'EUR' },
    ]);
    expect(
      notes.body.data.map((n: { subtotal: number; tax: number; total: number }) => [
        n.subtotal,
        n.tax,
        n.total,
      ]),
    ).toEqual([
      [500, 50, 550],
      [500, 50, 550],
    ]);
    expect(notes.body.data[0].id).toMatch(/^cn_/);
    const one = await app.api('GET', `/v1/credit-notes/${notes.body.data[0].id}`);
    expect(one.status).toBe(200);
    expect(one.body).toEqual(notes.body.data[0]);
    const byRefund = await app.api('GET', `/v1/credit-notes?refund=${second.id}`);
    expect(byRefund.body.data.map((n: { id: string }) => n.id)).toEqual([notes.body.data[1].id]);
  });

  it('rounds cumulatively: refunds of 3, 3 and 5 on 10 + 1 tax give back 0, 1 and 0 of tax (1 in all)', async () => {
    const { invoice } = await paidInvoice(10, '10');
    expect(invoice.total).toBe(11);
    const paid = await ledgerByCode(app);
    // round(1 × 3/11 = 0.27) = 0; round(1 × 6/11 = 0.55) = 1, less 0 → 1; round(1 × 11/11) = 1, less 1 → 0.
    await refund(invoice.id, 3, 're_round_1');
    await refund(invoice.id, 3, 're_round_2');
    await refund(invoice.id, 5, 're_round_3');
    const notes = await app.api('GET', `/v1/credit-notes?invoice=${invoice.id}&sort=created`);
    expect(notes.body.data.map((n: { subtotal: number; tax: number }) => [n.subtotal, n.tax])).toEqual([
      [3, 0],
      [2, 1],
      [5, 0],
    ]);
    expect(moved(paid, await ledgerByCode(app))).toEqual({
      'refunds EUR': 10,
      'tax_payable EUR': 1,
      'gateway_clearing:stripe EUR': -11,
    });
  });

  it('a refund made in the Stripe dashboard gets its credit note; one that fails after succeeding voids it', async () => {
    const { invoice, transaction } = await paidInvoice(1000, '10');
    const paid = await ledgerByCode(app);
    const event = stripeFixture('webhook.charge.refund.updated.json');
    event.id = 'evt_dashboard_tax_refund';
    Object.assign(event.data.object, {
      id: 're_dashboard_tax',
      amount: 550,
      currency: 'eur',
      status: 'succeeded',
      payment_intent: transaction.gateway_transaction_id,
    });
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    const note = await waitFor('the credit note of the dashboard refund', async () => {
      const notes = await app.api('GET', `/v1/credit-notes?invoice=${invoice.id}`);
      return notes.body.data[0];
    });
    expect(note).toMatchObject({ subtotal: 500, tax: 50, total: 550, status: 'ISSUED' });
    expect(moved(paid, await ledgerByCode(app))).toEqual({
      'refunds EUR': 500,
      'tax_payable EUR': 50,
      'gateway_clearing:stripe EUR': -550,
    });

    // Stripe reports the same refund failed (https://docs.stripe.com/refunds#failed-refunds).
    const failed = stripeFixture('webhook.charge.refund.updated.json');
    failed.id = 'evt_dashboard_tax_refund_failed';
    Object.assign(failed.data.object, {
      id: 're_dashboard_tax',
      amount: 550,
      currency: 'eur',
      status: 'failed',
      payment_intent: transaction.gateway_transaction_id,
    });
    expect((await deliverStripe(app.url, failed)).status).toBe(200);
    const voided = await waitFor('the credit note voided', async () => {
      const one = await app.api('GET', `/v1/credit-notes/${note.id}`);
      return one.body.status === 'VOID' ? one.body : undefined;
    });
    expect(voided.voided_at).not.toBeNull();
    expect(moved(paid, await ledgerByCode(app))).toEqual({});
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_refunded: 0,
    });
  });

  it('a dashboard refund of a duplicate payment whose credit the customer already spent is booked, and raises overpayment_credit_spent for a person', async () => {
    const { customer, invoice, transaction } = await paidInvoice(1000, '10');
    // The same 1100 paid again (a duplicate): 1100 of customer credit, which their next invoice spends.
    const first = await app.runtime.db
      .selectFrom('transactions')
      .selectAll()
      .where('id', '=', transaction.id)
      .executeTakeFirstOrThrow();
    const duplicate = await app.runtime.db
      .insertInto('transactions')
      .values({
        id: newId('txn'),
        invoice_id: invoice.id,
        customer_id: first.customer_id,
        gateway: 'stripe',
        gateway_account: first.gateway_account,
        payment_method_id: first.payment_method_id,
        amount: 1100n,
        currency: 'EUR',
        status: 'pending',
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await inUnitOfWork(app.runtime.db, { actor: 'system' }, (work) =>
      recordChargeResult(work, duplicate, { status: 'succeeded', gatewayTransactionId: 'pi_dup_spent' }),
    );
    const next = await app.api('POST', '/v1/invoices', {
      customer: customer.id,
      currency: 'eur',
      lines: [{ description: 'Next month', amount: 1100 }],
    });
    const finalized = await app.api('POST', `/v1/invoices/${next.body.id}/finalize`);
    expect(finalized.body).toMatchObject({ status: 'PAID', credit_applied: 1100 });
    const spent = await ledgerByCode(app);

    // Refunded in the Stripe dashboard: the money has moved, so it is booked as it came.
    const event = stripeFixture('webhook.charge.refund.updated.json');
    event.id = 'evt_dashboard_spent_overpayment';
    Object.assign(event.data.object, {
      id: 're_dashboard_spent',
      amount: 1100,
      currency: 'eur',
      status: 'succeeded',
      payment_intent: 'pi_dup_spent',
    });
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    const exception = await waitFor('the overpayment_credit_spent exception', async () => {
      const list = (await app.api('GET', '/v1/reconciliation-exceptions')).body.data;
      return list.find((x: { kind: string }) => x.kind === 'overpayment_credit_spent');
    });
    expect(exception).toMatchObject({ transaction: duplicate.id });
    expect(exception.message).toContain('in debit by 1100');
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      amount_paid: 2200,
      amount_refunded: 1100,
    });
    expect(moved(spent, await ledgerByCode(app))).toEqual({
      'customer_credit:customer EUR': 1100,
      'gateway_clearing:stripe EUR': -1100,
    });
  });

  it('a lost dispute gives back no tax and issues no credit note: the chargeback is a loss, not a refund', async () => {
    const { invoice, transaction } = await paidInvoice(1000, '10');
    const paid = await ledgerByCode(app);
    const lost = stripeFixture('webhook.charge.dispute.closed.json');
    lost.id = 'evt_dispute_lost_taxed';
    Object.assign(lost.data.object, {
      id: 'dp_lost_taxed',
      status: 'lost',
      payment_intent: transaction.gateway_transaction_id,
      currency: 'eur',
      amount: 1100,
    });
    expect((await deliverStripe(app.url, lost)).status).toBe(200);
    await waitFor('the lost dispute booked', async () => {
      const after = await ledgerByCode(app);
      return after['chargeback_losses EUR'] !== paid['chargeback_losses EUR'] ? after : undefined;
    });
    expect(moved(paid, await ledgerByCode(app))).toEqual({
      'chargeback_losses EUR': 1100,
      'gateway_clearing:stripe EUR': -1100,
    });
    expect((await app.api('GET', `/v1/credit-notes?invoice=${invoice.id}`)).body.data).toEqual([]);
  });

  it('answers 404 for an unknown credit note and 422 with field messages for a bad list query', async () => {
    const missing = await app.api('GET', '/v1/credit-notes/cn_doesnotexist000');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('credit_note_not_found');
    const bad = await app.api('GET', '/v1/credit-notes?limit=0&sort=sideways');
    expect(bad.status).toBe(422);
    expect(Object.keys(bad.body.error.fields).sort()).toEqual(['limit', 'sort']);
    const readOnly = await app.api('GET', '/v1/credit-notes', undefined, 'not_a_key');
    expect(readOnly.status).toBe(401);
  });
});
