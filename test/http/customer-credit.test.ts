import nock from 'nock';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { changeSubscription } from '../../src/billing/proration.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { eventTypeOf } from '../../src/outbound/events.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { payOpenOffline } from '../support/collection.ts';
import { createTestDatabase } from '../support/database.ts';
import { ledgerByCode, openInvoice, stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { insertPlan } from '../support/plans.ts';
import { waitFor } from '../support/wait.ts';

describe('POST /v1/customers/:id/credit/refund pays credit back through the gateway', () => {
  let app: TestApp;
  let url: string;
  beforeAll(async () => {
    url = await createTestDatabase();
    app = await startOfflineTestApp({ DATABASE_URL: url });
    // The `unknown` credit refund (Stripe 500) stays unknown here: its retry (`invoice.refund`) is
    // not what is tested, and a repeat sent during a later test took that test's Stripe answer.
    await app.runtime.boss.offWork(QUEUES.invoiceRefund);
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /**
   * Gives customer `customer` 385 EUR of credit: Basic (2800 + 10%) from Feb 1 2027, downgraded to
   * Lite (1400) with 7 of 28 days left: 700 − 350 = 350 net credit + 35 tax. Basic's invoice (3080) is
   * paid by bank transfer first: over an unpaid invoice the credit would lower what it owes instead.
   */
  async function downgradeCredit(customer: string, currency = 'EUR') {
    const db = app.runtime.db;
    const flat = (amount: number, name: string) =>
      insertPlan(db, { name, currency, price: { model: 'FLAT_FEE', amount }, taxRatePpm: 100_000 });
    const [basic, lite] = [await flat(2800, 'Basic'), await flat(1400, 'Lite')];
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: basic },
      new Date('2027-02-01T00:00:00Z'),
    );
    await payOpenOffline(db, subscription.id);
    await changeSubscription(
      db,
      'system',
      subscription.id,
      { planId: lite },
      new Date('2027-02-22T00:00:00Z'),
      false,
    );
  }

  it('refuses (422) a credit refund the gateway cannot take exactly, before any refund row or call', async () => {
    // 100.000 KWD paid through Stripe, then 0.385 KWD of credit (the same downgrade in KWD minor units).
    const { customer, invoice } = await openInvoice(app, { amount: 100_000, currency: 'kwd' });
    stripeChargeSucceeds();
    expect((await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {})).body.invoice.status).toBe('PAID');
    await downgradeCredit(customer.id, 'KWD');
    const before = await ledgerByCode(app);
    const refunds = (await app.api('GET', '/v1/refunds')).body.data.length;
    // Stripe takes KWD only in multiples of 10 minor units (docs.stripe.com/currencies): 385 is refused;
    // nock has no refund to answer, so a call would fail the test's pending-mock check too.
    const refused = await app.api('POST', `/v1/customers/${customer.id}/credit/refund`, {
      amount: 385,
      currency: 'KWD',
    });
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('amount_not_representable');
    expect((await app.api('GET', '/v1/refunds')).body.data).toHaveLength(refunds);
    expect(await ledgerByCode(app)).toEqual(before);
  });

  it('refunds part of the credit against the latest Stripe payment; 422 beyond the credit, 404 unknown customer', async () => {
    // A paid invoice of 1000 EUR through Stripe, then 385 EUR of credit from a downgrade.
    const { customer, invoice } = await openInvoice(app, { amount: 1000 });
    stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');
    await downgradeCredit(customer.id);
    const shown = await app.api('GET', `/v1/customers/${customer.id}`);
    // Owes nothing (the Basic invoice, 3080, was paid by bank transfer) less the credit (385); credit 385.
    expect(shown.body).toMatchObject({
      balances: [{ currency: 'EUR', balance: 0 - 385 }],
      credit: [{ currency: 'EUR', amount: 385 }],
    });
    const before = await ledgerByCode(app);

    const path = `/v1/customers/${customer.id}/credit/refund`;
    const tooMuch = await app.api('POST', path, { amount: 386, currency: 'EUR' });
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.body.error.fields.amount).toMatch(/at most 385/);
    const bad = await app.api('POST', path, { amount: 1.5, currency: 'EURO', note: 'x' });
    expect(bad.status).toBe(422);
    expect(Object.keys(bad.body.error.fields).sort()).toEqual(['(body)', 'amount', 'currency']);
    const missing = await app.api('POST', '/v1/customers/cus_doesnotexist000/credit/refund', {
      amount: 100,
      currency: 'EUR',
    });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('customer_not_found');
    expect((await app.api('GET', '/v1/refunds')).body.data).toEqual([]);
    expect(await ledgerByCode(app)).toEqual(before);

    const stripe = stripeRefundSucceeds('re_credit_1');
    const refunded = await app.api('POST', path, { amount: 300, currency: 'eur', reason: 'goodwill' });
    expect(refunded.status).toBe(201);
    expect(stripe.isDone()).toBe(true);
    expect(refunded.body).toMatchObject({
      object: 'customer_credit_refund',
      customer: { id: customer.id, credit: [{ currency: 'EUR', amount: 85 }] },
      refunds: [
        {
          kind: 'customer_credit',
          transaction: charged.body.transaction.id,
          invoice: null,
          customer: customer.id,
          amount: 300,
          currency: 'EUR',
          status: 'succeeded',
          gateway_refund_id: 're_credit_1',
        },
      ],
    });
    // The credit (a liability) shrinks by 300 and Stripe holds 300 less; nothing else moves.
    const after = await ledgerByCode(app);
    expect(after['customer_credit:customer EUR']).toBe(-85);
    expect(after['gateway_clearing:stripe EUR']).toBe(before['gateway_clearing:stripe EUR']! - 300);
    expect(after['refunds EUR'] ?? 0).toBe(before['refunds EUR'] ?? 0);
    expect(after['tax_payable EUR']).toBe(before['tax_payable EUR']);
    expect(after['receivable:customer EUR']).toBe(before['receivable:customer EUR']);
    // The paid invoice is untouched: no refund on it, no credit note.
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_refunded: 0,
    });
    expect((await app.api('GET', `/v1/credit-notes?customer=${customer.id}`)).body.data).toEqual([]);
    // Credit left is 85: 86 is refused.
    const rest = await app.api('POST', path, { amount: 86, currency: 'EUR' });
    expect(rest.status).toBe(422);
    expect(rest.body.error.fields.amount).toMatch(/at most 85/);
  });

  it('a credit refund with no answer (Stripe 500) stays unknown and holds its credit from the next invoice', async () => {
    const { customer, invoice } = await openInvoice(app, { amount: 1000 });
    stripeChargeSucceeds();
    expect((await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {})).body.invoice.status).toBe('PAID');
    await downgradeCredit(customer.id);
    nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .times(10)
      .reply(500, { error: { type: 'api_error', message: 'An unknown error occurred' } });
    const unanswered = await app.api('POST', `/v1/customers/${customer.id}/credit/refund`, {
      amount: 300,
      currency: 'EUR',
    });
    expect(unanswered.status).toBe(201);
    expect(unanswered.body.refunds).toMatchObject([{ status: 'unknown', amount: 300 }]);
    // 385 − 300 held by the refund in flight: 85 usable; the ledger has not moved yet.
    expect(unanswered.body.customer.credit).toEqual([{ currency: 'EUR', amount: 85 }]);
    expect((await ledgerByCode(app))['customer_credit:customer EUR']).toBeLessThanOrEqual(-385);
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.id,
      currency: 'EUR',
      lines: [{ description: 'Extra seats', amount: 1000 }],
    });
    const next = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
    expect(next.body).toMatchObject({ status: 'OPEN', total: 1000, credit_applied: 85, amount_due: 915 });
  });

  it('refuses credit that no gateway payment of the customer can carry back (422), changing nothing', async () => {
    const customer = await app.api('POST', '/v1/customers', { email: 'nopay@example.com' });
    await downgradeCredit(customer.body.id);
    const before = await ledgerByCode(app);
    const refused = await app.api('POST', `/v1/customers/${customer.body.id}/credit/refund`, {
      amount: 100,
      currency: 'EUR',
    });
    expect(refused.status).toBe(422);
    expect(refused.body.error.fields.amount).toMatch(/at most 0 can go back/);
    expect(await ledgerByCode(app)).toEqual(before);
    expect((await app.api('GET', `/v1/customers/${customer.body.id}`)).body.credit).toEqual([
      { currency: 'EUR', amount: 385 },
    ]);
  });

  it('an invoice the credit pays whole at finalization logs invoice.paid, so the merchant gets the outbound event; one of 0 logs none', async () => {
    const customer = await app.api('POST', '/v1/customers', { email: 'paidbycredit@example.com' });
    await downgradeCredit(customer.body.id);
    // 385 EUR of credit: an invoice of 300 is paid whole by it at finalization, 85 left.
    const finalized = async (amount: number) => {
      const draft = await app.api('POST', '/v1/invoices', {
        customer: customer.body.id,
        currency: 'eur',
        lines: [{ description: 'Extra seats', amount, quantity: 1 }],
      });
      expect(draft.status).toBe(201);
      const invoice = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
      expect(invoice.body).toMatchObject({ status: 'PAID', amount_due: 0 });
      const log = await app.api('GET', `/v1/activities?resource=${draft.body.id}&limit=100`);
      return log.body.data.filter((a: { action: string }) => a.action === 'invoice.paid');
    };
    const paid = await finalized(300);
    expect(paid).toHaveLength(1);
    expect(paid[0].data).toMatchObject({
      currency: 'EUR',
      amount: '0',
      amount_paid: '0',
      amount_due: '0',
      paid_by: 'customer_credit',
      credit_applied: '300',
    });
    expect(eventTypeOf(paid[0])).toBe('invoice.paid');
    expect((await app.api('GET', `/v1/customers/${customer.body.id}`)).body.credit).toEqual([
      { currency: 'EUR', amount: 85 },
    ]);
    // Nothing to pay, nothing paid: no invoice.paid.
    expect(await finalized(0)).toEqual([]);
  });

  it("locks the payment's invoice before the customer's credit, as every unit of work does (no deadlock with a cancellation or finalization)", async () => {
    // An invoice is always locked before its customer: an invoice's finalization locks the customer
    // after it (applyCustomerCredit), a cancellation its period's invoice before its final invoice's
    // finalization. A credit refund that locked the customer first and then the invoice of the
    // payment it refunds could deadlock (40P01) against either. Shown here without a race: while
    // another transaction holds the customer's lock, the credit refund waits for it already holding
    // the invoice's lock (the old order waited for the customer before touching the invoice).
    const { customer, invoice } = await openInvoice(app, { amount: 1000 });
    stripeChargeSucceeds();
    expect((await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {})).body.invoice.status).toBe('PAID');
    await downgradeCredit(customer.id);
    const holder = new pg.Client({ connectionString: url });
    const prober = new pg.Client({ connectionString: url });
    await holder.connect();
    await prober.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM customers WHERE id = $1 FOR NO KEY UPDATE', [customer.id]);
      const holderPid: number = (await holder.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const stripe = stripeRefundSucceeds('re_credit_lock_order');
      const refunding = app.api('POST', `/v1/customers/${customer.id}/credit/refund`, {
        amount: 300,
        currency: 'EUR',
      });
      // The refund's transaction waits for the customer's row, held above: a statement on customers
      // that the holder blocks (not any ungranted lock: pg-boss's advisory locks wait too).
      await waitFor('the credit refund to wait for the customer lock', async () => {
        const { rows } = await prober.query(
          `SELECT count(*)::int AS waiting FROM pg_stat_activity
           WHERE $1 = ANY(pg_blocking_pids(pid)) AND query LIKE '%"customers"%'`,
          [holderPid],
        );
        return rows[0].waiting > 0;
      });
      // It holds the invoice's lock meanwhile: taking it now fails at once (55P03 lock_not_available).
      await prober.query('BEGIN');
      await expect(
        prober.query('SELECT id FROM invoices WHERE id = $1 FOR UPDATE NOWAIT', [invoice.id]),
      ).rejects.toMatchObject({ code: '55P03' });
      await prober.query('ROLLBACK');
      await holder.query('COMMIT');
      const refunded = await refunding;
      expect(refunded.status).toBe(201);
      expect(stripe.isDone()).toBe(true);
      // The stored row first: should the refund not have succeeded, its failure says why.
      const stored = await prober.query(
        `SELECT status, failure_code, failure_message FROM refunds WHERE customer_id = $1`,
        [customer.id],
      );
      expect(stored.rows).toEqual([{ status: 'succeeded', failure_code: null, failure_message: null }]);
      expect(refunded.body.refunds).toMatchObject([
        { kind: 'customer_credit', status: 'succeeded', amount: 300 },
      ]);
      expect(refunded.body.customer.credit).toEqual([{ currency: 'EUR', amount: 85 }]);
    } finally {
      await holder.end();
      await prober.end();
    }
  });
});
