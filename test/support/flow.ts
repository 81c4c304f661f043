import { randomBytes } from 'node:crypto';
import nock from 'nock';
import { expect } from 'vitest';
import { newId } from '../../src/db/ids.ts';
import type { TransactionRow } from '../../src/db/schema.ts';
import { flagDuplicatePayment } from '../../src/exceptions/exceptions.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import { STRIPE_API_BASE, type TestApp } from './app.ts';
import { stripeFixture } from './stripe.ts';

/** The real succeeded PaymentIntent of the fixture `webhook.payment_intent.succeeded.json` (EUR 46.20). */
export const FIXTURE_INTENT = stripeFixture('webhook.payment_intent.succeeded.json').data.object;

/** What `openInvoice` creates: the invoice amount and currency, and the stored payment method. */
export interface OpenInvoiceOptions {
  /** Minor units. */
  amount?: number;
  currency?: string;
  gateway?: string;
  token?: string;
  gatewayCustomerId?: string;
  /** The payment method's gateway account (`gwa_…`); default: the gateway's default account. */
  gatewayAccount?: string;
  /** The invoice line's description. */
  description?: string;
  /** The invoice's lines as the API takes them, instead of the one line of `amount` and `description`. */
  lines?: Record<string, unknown>[];
  /**
   * Store the payment method after the invoice is finalized: no gateway is known at finalization, so
   * the invoice is not rounded to a gateway's step (PRODUCT §11, billing/invoice-rounding.ts) and a
   * charge of an amount the gateway cannot take is refused.
   */
  methodAfter?: boolean;
}

/**
 * Creates a customer with a stored payment method and a finalized (OPEN) invoice over the API; by
 * default a Stripe payment method (the real fixture's ids) and EUR 46.20.
 */
export async function openInvoice(app: TestApp, o: OpenInvoiceOptions = {}) {
  const gateway = o.gateway ?? 'stripe';
  const customer = await app.api('POST', '/v1/customers', { email: 'ada@example.com', name: 'Ada' });
  expect(customer.status).toBe(201);
  const storeMethod = async () => {
    const method = await app.api('POST', '/v1/payment-methods', {
      customer: customer.body.id,
      gateway,
      gateway_token: o.token ?? 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      ...(o.gatewayCustomerId !== undefined || gateway === 'stripe'
        ? { gateway_customer_id: o.gatewayCustomerId ?? 'cus_SRCIP043oBsNpV' }
        : {}),
      ...(o.gatewayAccount ? { gateway_account: o.gatewayAccount } : {}),
    });
    expect(method.status).toBe(201);
    return method.body;
  };
  const before = o.methodAfter ? undefined : await storeMethod();
  const draft = await app.api('POST', '/v1/invoices', {
    customer: customer.body.id,
    currency: o.currency ?? 'eur',
    lines: o.lines ?? [
      { description: o.description ?? 'Pro plan, November', amount: o.amount ?? 4620, quantity: 1 },
    ],
  });
  expect(draft.status).toBe(201);
  const invoice = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
  expect(invoice.body.status).toBe('OPEN');
  const method = before ?? (await storeMethod());
  return { customer: customer.body, method, invoice: invoice.body };
}

/** A faked Stripe request (nock 15 hands the reply function a fetch Request): header and form parameters. */
async function readRequest(request: Request): Promise<{ idempotencyKey: string; params: URLSearchParams }> {
  return {
    idempotencyKey: request.headers.get('idempotency-key') ?? '',
    params: new URLSearchParams(await request.text()),
  };
}

/**
 * Fakes `POST /v1/payment_intents` with the fixture's succeeded PaymentIntent, echoing the request's
 * amount, currency and metadata, under `intentId` (a new id per call by default, as Stripe does).
 * @returns the nock scope and the requests it saw
 */
export function stripeChargeSucceeds(intentId = `pi_${randomBytes(12).toString('hex')}`) {
  const seen: { idempotencyKey: string; params: URLSearchParams }[] = [];
  const scope = nock(STRIPE_API_BASE)
    .post('/v1/payment_intents')
    .reply(async (request: Request) => {
      const seenRequest = await readRequest(request);
      seen.push(seenRequest);
      return [200, intentEchoing(seenRequest.params, intentId)];
    });
  return { scope, seen };
}

/**
 * The real PaymentIntent fixture as Stripe answers a create with these form `params`: `intentId` in
 * `status`, echoing the amount, currency and our reference (`metadata[billhook_reference]`); the
 * amount received is the amount once succeeded, else 0.
 */
export function intentEchoing(params: URLSearchParams, intentId: string, status = 'succeeded') {
  return {
    ...FIXTURE_INTENT,
    id: intentId,
    status,
    amount: Number(params.get('amount')),
    amount_received: status === 'succeeded' ? Number(params.get('amount')) : 0,
    currency: params.get('currency'),
    metadata: { billhook_reference: params.get('metadata[billhook_reference]') },
  };
}

/**
 * Pays OPEN invoice `invoiceId` in part by a gateway payment: charged over the API, Stripe answers its
 * PaymentIntent `intentId` `processing` (the transaction stays pending, asked for all that is due),
 * which then succeeds capturing only `captured` (minor units), recorded as the reconcile path records a
 * partial capture (reconcile/apply.ts: Authorize.Net's `settleAmount` below the charge); the invoice
 * stays OPEN with the rest due.
 * @returns the transaction as it was committed pending (its `amount` what was asked)
 */
export async function capturedInPart(
  app: TestApp,
  invoiceId: string,
  captured: number,
  intentId: string,
): Promise<TransactionRow> {
  nock(STRIPE_API_BASE)
    .post('/v1/payment_intents')
    .reply(async (request: Request) => [
      200,
      intentEchoing(new URLSearchParams(await request.text()), intentId, 'processing'),
    ]);
  const pending = await app.api('POST', `/v1/invoices/${invoiceId}/charge`, {});
  expect(pending.body.transaction).toMatchObject({ status: 'pending' });
  const db = app.runtime.db;
  const row = await db
    .selectFrom('transactions')
    .selectAll()
    .where('id', '=', pending.body.transaction.id)
    .executeTakeFirstOrThrow();
  await inUnitOfWork(db, { actor: 'system' }, (work) =>
    recordChargeResult(work, row, {
      status: 'succeeded',
      gatewayTransactionId: intentId,
      amountCaptured: BigInt(captured),
    }),
  );
  return row;
}

/** What `paidStripeInvoice` returns: the API's answer to the charge (the invoice PAID, its transaction) and the customer. */
export interface PaidStripeInvoice {
  customer: { id: string };
  /** Amounts in minor units. */
  invoice: { id: string; status: string; subtotal: number; tax: number; total: number };
  transaction: { id: string; gateway_transaction_id: string };
}

/**
 * `openInvoice` (options as there), then charged over the API with Stripe answering succeeded once:
 * the invoice is PAID and Stripe saw exactly one PaymentIntent.
 */
export async function paidStripeInvoice(
  app: TestApp,
  o: OpenInvoiceOptions = {},
): Promise<PaidStripeInvoice> {
  const opened = await openInvoice(app, o);
  const { seen } = stripeChargeSucceeds();
  const charged = await app.api('POST', `/v1/invoices/${opened.invoice.id}/charge`, {});
  expect(charged.body.invoice.status).toBe('PAID');
  expect(seen).toHaveLength(1);
  return { customer: opened.customer, ...charged.body };
}

/** Fakes `POST /v1/refunds` with the fixture refund, echoing amount, payment intent and metadata. */
export function stripeRefundSucceeds(refundId: string) {
  const refund = stripeFixture('api.refund.succeeded.openapi-fixture.json');
  return nock(STRIPE_API_BASE)
    .post('/v1/refunds')
    .reply(async (request: Request) => {
      const { idempotencyKey, params: p } = await readRequest(request);
      expect(idempotencyKey).toMatch(/^re_/);
      return [
        200,
        {
          ...refund,
          id: refundId,
          amount: Number(p.get('amount')),
          currency: FIXTURE_INTENT.currency,
          payment_intent: p.get('payment_intent'),
          metadata: { billhook_reference: p.get('metadata[billhook_reference]') },
        },
      ];
    });
}

/**
 * Ledger balances by account code and currency (`"<code> <currency>"`), with customer ids replaced by
 * `customer`, for comparisons: the accounts of every customer (their receivable, their credit) summed
 * under one key, so a change to any of them shows, whatever other customers hold.
 */
export async function ledgerByCode(app: TestApp): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  let after = '';
  for (;;) {
    const page = await app.api('GET', `/v1/ledger/accounts?limit=100${after && `&starting_after=${after}`}`);
    for (const a of page.body.data) {
      const key = `${a.code.replace(/cus_\w+/, 'customer')} ${a.currency}`;
      out[key] = (out[key] ?? 0) + a.balance;
    }
    if (!page.body.has_more) return out;
    after = page.body.data.at(-1).id;
  }
}

/**
 * A second, duplicate Stripe payment of `amount` (minor units of `currency`) on PAID invoice
 * `invoiceId` (money moved twice), recorded succeeded as the charge path records it
 * (`flagDuplicatePayment`): its excess is the customer's credit (payments/transactions.ts).
 * @returns the invoice's first payment and the duplicate (as it was inserted pending)
 */
export async function paidAgain(app: TestApp, invoiceId: string, amount: bigint, currency: string) {
  const { first, second } = await paidAgainAsked(app, invoiceId, amount, currency);
  await inUnitOfWork(app.runtime.db, { actor: 'system' }, (work) =>
    recordChargeResult(
      work,
      second,
      { status: 'succeeded', gatewayTransactionId: `pi_dup_${second.id}` },
      flagDuplicatePayment,
    ),
  );
  return { first, second };
}

/**
 * The `pending` row of a second Stripe payment of `amount` (minor units of `currency`) on PAID
 * invoice `invoiceId`, inserted as its first payment's (same account and method), not sent.
 * @returns the invoice's first payment and that row
 */
export async function paidAgainAsked(app: TestApp, invoiceId: string, amount: bigint, currency: string) {
  const db = app.runtime.db;
  const first = await db
    .selectFrom('transactions')
    .selectAll()
    .where('invoice_id', '=', invoiceId)
    .executeTakeFirstOrThrow();
  const second = await db
    .insertInto('transactions')
    .values({
      id: newId('txn'),
      invoice_id: invoiceId,
      customer_id: first.customer_id,
      gateway: 'stripe',
      gateway_account: first.gateway_account,
      payment_method_id: first.payment_method_id,
      amount,
      currency,
      status: 'pending',
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { first, second };
}
