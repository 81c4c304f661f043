// The README's flow as an integrator writes it: a client generated from /openapi.json
// (openapi-typescript) driven with openapi-fetch, and no hand-written type. `billhook-openapi` is the
// generated file: test/contract/openapi-client.test.ts generates it, type-checks this file against it
// (which is why the root tsconfig leaves this file out) and runs `readmeFlow` against a test app.

import type { paths } from 'billhook-openapi';
import createClient from 'openapi-fetch';

/** Fails with the error envelope when an answer is not the expected success. */
function ok<T>(answer: { data?: T; error?: unknown; response: Response }, what: string): T {
  if (answer.data === undefined) {
    throw new Error(`${what}: ${answer.response.status} ${JSON.stringify(answer.error)}`);
  }
  return answer.data;
}

/**
 * Creates a customer, a Stripe payment method, an invoice; finalizes and charges it; reads what was
 * paid; lists the customer's invoices a page of one at a time; refunds part of the payment; reads the
 * gateway's clearing account; then the README's subscription: product, plan, preview, subscription,
 * what the customer owes and the subscription's activities.
 * @param baseUrl billhook's origin; `apiKey` a write key
 * @returns what the flow read, for the test to check (amounts in minor units)
 */
export async function readmeFlow(baseUrl: string, apiKey: string) {
  const client = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${apiKey}` } });

  const customer = ok(await client.POST('/v1/customers', { body: { email: 'ada@example.com' } }), 'customer');
  const method = ok(
    await client.POST('/v1/payment-methods', {
      body: {
        customer: customer.id,
        gateway: 'stripe',
        gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
        gateway_customer_id: 'cus_SRCIP043oBsNpV',
      },
    }),
    'payment method',
  );
  const draft = ok(
    await client.POST('/v1/invoices', {
      body: {
        customer: customer.id,
        currency: 'eur',
        lines: [{ description: 'Pro plan', amount: 4620 }],
      },
      params: { header: { 'Idempotency-Key': `readme-flow-${customer.id}` } },
    }),
    'invoice',
  );
  const open = ok(
    await client.POST('/v1/invoices/{id}/finalize', { params: { path: { id: draft.id } } }),
    'finalize',
  );
  const charged = ok(
    await client.POST('/v1/invoices/{id}/charge', {
      params: { path: { id: open.id } },
      body: { payment_method: method.id },
    }),
    'charge',
  );
  const invoice = ok(
    await client.GET('/v1/invoices/{id}', {
      params: { path: { id: open.id }, query: { expand: 'transactions' } },
    }),
    'read invoice',
  );
  const amountPaid: number = invoice.amount_paid;

  // A second invoice, so that a page of one has more after it.
  ok(
    await client.POST('/v1/invoices', {
      body: { customer: customer.id, currency: 'eur', lines: [{ description: 'Setup', amount: 1000 }] },
    }),
    'second invoice',
  );
  const page = ok(
    await client.GET('/v1/invoices', { params: { query: { customer: customer.id, limit: 1 } } }),
    'list invoices',
  );
  const next = ok(
    await client.GET('/v1/invoices', {
      params: { query: { customer: customer.id, limit: 1, starting_after: page.data[0]?.id } },
    }),
    'next page',
  );

  const refund = ok(
    await client.POST('/v1/invoices/{id}/refund', {
      params: { path: { id: open.id } },
      body: { amount: 1000, reason: 'requested_by_customer' },
    }),
    'refund',
  );
  const refunded = ok(
    await client.GET('/v1/invoices/{id}', { params: { path: { id: open.id } } }),
    'read refunded invoice',
  );

  // The ledger as the README reads it: the clearing account holds what the gateway owes.
  const accounts = ok(
    await client.GET('/v1/ledger/accounts', { params: { query: { code: 'gateway_clearing:stripe' } } }),
    'ledger accounts',
  );

  // The README's subscription: a product, a plan per unit with 8.875% tax, a preview, three units.
  const product = ok(await client.POST('/v1/products', { body: { name: 'Hosting' } }), 'product');
  const plan = ok(
    await client.POST('/v1/plans', {
      body: {
        product: product.id,
        name: 'Hosting monthly',
        currency: 'usd',
        interval: 'MONTH',
        price: { model: 'PER_UNIT', unit_amount: 1500 },
        tax_percent: '8.875',
      },
    }),
    'plan',
  );
  const preview = ok(
    await client.POST('/v1/subscriptions/preview', {
      body: { customer: customer.id, plan: plan.id, quantity: 3 },
    }),
    'preview',
  );
  const subscription = ok(
    await client.POST('/v1/subscriptions', { body: { customer: customer.id, plan: plan.id, quantity: 3 } }),
    'subscription',
  );
  const owed = ok(
    await client.GET('/v1/customers/{id}', { params: { path: { id: customer.id } } }),
    'read customer',
  );
  const activities = ok(
    await client.GET('/v1/activities', { params: { query: { resource: subscription.id } } }),
    'activities',
  );

  return {
    invoice: open.id,
    status: charged.invoice.status,
    transaction: { status: charged.transaction.status, amount: charged.transaction.amount },
    amountPaid,
    transactions: invoice.transactions?.map((t) => t.id) ?? [],
    pages: [
      { ids: page.data.map((i) => i.id), hasMore: page.has_more },
      { ids: next.data.map((i) => i.id), hasMore: next.has_more },
    ],
    refund: { status: refund.status, amount: refund.amount, currency: refund.currency },
    amountRefunded: refunded.amount_refunded,
    clearing: accounts.data.map((a) => ({ currency: a.currency, balance: a.balance })),
    preview: { subtotal: preview.subtotal, tax: preview.tax, total: preview.total },
    subscription: { status: subscription.status, latestInvoice: subscription.latest_invoice },
    balances: owed.balances,
    activities: activities.data.map((a) => a.action),
  };
}
