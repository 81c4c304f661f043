import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendTestWebhook } from '../../src/cli/send-test-webhook.ts';
import { loadConfig } from '../../src/config/env.ts';
import { startStripeStub } from '../../src/gateways/stripe/stub.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { STRIPE_WEBHOOK_SECRET, startTestApp, type TestApp } from '../support/app.ts';
import { waitFor, wakeWorkers } from '../support/wait.ts';

/** The README's walk-through: the local Stripe stub, a charge still processing, the webhook that settles it. */
describe('README walk-through with the Stripe stub', () => {
  let stub: Server;
  let app: TestApp;
  beforeAll(async () => {
    stub = await startStripeStub(0, 'processing');
    app = await startTestApp({ STRIPE_API_BASE: `http://127.0.0.1:${(stub.address() as AddressInfo).port}` });
  });
  afterAll(async () => {
    await app.stop();
    await new Promise((resolve) => stub.close(resolve));
  });

  it('charges into pending, and send-test-webhook settles it to PAID with the ledger balanced', async () => {
    const customer = (await app.api('POST', '/v1/customers', { email: 'ada@example.com' })).body;
    await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway: 'stripe',
      gateway_token: 'pm_card_visa',
    });
    const draft = (
      await app.api('POST', '/v1/invoices', {
        customer: customer.id,
        currency: 'usd',
        lines: [{ description: 'Pro plan', amount: 2500 }],
      })
    ).body;
    await app.api('POST', `/v1/invoices/${draft.id}/finalize`);
    const charged = (await app.api('POST', `/v1/invoices/${draft.id}/charge`)).body;
    expect(charged.transaction).toMatchObject({
      status: 'pending',
      amount: 2500,
      gateway_transaction_id: expect.stringMatching(/^pi_stub/),
    });

    const sent = await sendTestWebhook(
      loadConfig({ STRIPE_WEBHOOK_SECRET }),
      'stripe',
      'payment_intent.succeeded',
      {
        url: app.url,
        transactionId: charged.transaction.gateway_transaction_id,
        amount: 2500,
        currency: 'usd',
      },
    );
    expect(sent.status).toBe(200);
    const invoice = await waitFor('the invoice to be paid', async () => {
      const body = (await app.api('GET', `/v1/invoices/${draft.id}`)).body;
      return body.status === 'PAID' ? body : undefined;
    });
    expect(invoice).toMatchObject({ amount_paid: 2500, amount_due: 0 });
    const balances = (await app.api('GET', '/v1/ledger/accounts')).body.data.map(
      (a: { code: string; balance: number }) => [a.code, a.balance],
    );
    expect(balances).toEqual([
      ['gateway_clearing:stripe', 2500],
      [`receivable:${customer.id}`, 0],
      ['revenue', -2500],
    ]);

    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(
      /billhook_gateway_call_seconds_count\{gateway="stripe",account="default",operation="charge",outcome="pending"\} 1/,
    );
    stub.closeAllConnections();
    const refund = await app.api('POST', `/v1/invoices/${draft.id}/refund`, { amount: 500 });
    expect(refund.body).toMatchObject({ status: 'succeeded', amount: 500, currency: 'USD' });
  });

  it("pays the charge out: the stub's payout, its payout.paid webhook, the lines matched and clearing 0", async () => {
    // The stub pays out its whole USD balance: the 2500 charge (fee 2.9% + 30 = 103) less the 500 refund.
    const stubBase = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
    const created = await fetch(`${stubBase}/v1/payouts`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk_test_demo', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'currency=usd',
    });
    const stubPayout = (await created.json()) as { id: string; amount: number };
    expect(stubPayout).toMatchObject({ id: expect.stringMatching(/^po_stub/), amount: 1897 });
    const sent = await sendTestWebhook(
      loadConfig({ STRIPE_WEBHOOK_SECRET, STRIPE_SECRET_KEY: 'sk_test_demo', STRIPE_API_BASE: stubBase }),
      'stripe',
      'payout.paid',
      { url: app.url, objectId: stubPayout.id, amount: 1897, currency: 'usd' },
    );
    expect(sent.status).toBe(200);
    const recorded = await waitFor('the payout to be recorded', async () => {
      return app.runtime.db
        .selectFrom('payouts')
        .select('id')
        .where('gateway_payout_id', '=', stubPayout.id)
        .executeTakeFirst();
    });
    const payout = (await app.api('GET', `/v1/payouts/${recorded.id}`)).body;
    expect(payout).toMatchObject({
      status: 'paid',
      amount: 1897,
      gross: 2500,
      fees: 103,
      refunds: -500,
      net: 1897,
    });
    expect(
      payout.lines.map((l: { kind: string; unmatched: boolean }) => [l.kind, l.unmatched]).sort(),
    ).toEqual([
      ['charge', false],
      ['refund', false],
    ]);
    const balances = Object.fromEntries(
      (await app.api('GET', '/v1/ledger/accounts')).body.data.map((a: { code: string; balance: number }) => [
        a.code,
        a.balance,
      ]),
    );
    expect(balances).toMatchObject({
      'gateway_clearing:stripe': 0,
      'gateway_fees:stripe': 103,
      'bank:stripe': 1897,
      'payouts_in_transit:stripe': 0,
      refunds: 500,
    });
  });

  it('subscribes three units: preview, first invoice with tax, charged by the invoice.charge job', async () => {
    const customer = (await app.api('POST', '/v1/customers', { email: 'grace@example.com' })).body;
    await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway: 'stripe',
      gateway_token: 'pm_card_visa',
    });
    const product = (await app.api('POST', '/v1/products', { name: 'Hosting' })).body;
    const plan = (
      await app.api('POST', '/v1/plans', {
        product: product.id,
        name: 'Hosting monthly',
        currency: 'usd',
        interval: 'MONTH',
        price: { model: 'PER_UNIT', unit_amount: 1500 },
        tax_percent: '8.875',
      })
    ).body;
    const body = { customer: customer.id, plan: plan.id, quantity: 3 };
    const preview = await app.api('POST', '/v1/subscriptions/preview', body);
    expect(preview.body).toMatchObject({ subtotal: 4500, tax: 399, total: 4899 });
    const subscription = await app.api('POST', '/v1/subscriptions', body);
    expect(subscription.body).toMatchObject({ status: 'ACTIVE', quantity: 3 });
    const invoice = (await app.api('GET', `/v1/invoices/${subscription.body.latest_invoice}`)).body;
    expect(invoice).toMatchObject({ status: 'OPEN', total: 4899, billing_reason: 'subscription_create' });

    // What the every-minute cron does: the invoice.charge job charges it (pending at the stub).
    await app.runtime.boss.send(QUEUES.invoiceCharge, {});
    wakeWorkers(app.runtime.boss, QUEUES.invoiceCharge);
    const charged = await waitFor('the renewal charge', async () => {
      const body = (await app.api('GET', `/v1/invoices/${invoice.id}?expand=transactions`)).body;
      // The sweep clears charge_at once the gateway has the outcome (pending).
      return body.transactions.length && body.charge_at === null ? body : undefined;
    });
    expect(charged.transactions[0]).toMatchObject({ status: 'pending', amount: 4899 });
    expect(charged.charge_at).toBeNull();
  });
});
