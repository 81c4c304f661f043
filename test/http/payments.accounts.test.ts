import { randomBytes } from 'node:crypto';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signStripePayload } from '../../src/gateways/stripe/test-events.ts';
import { balanceOf } from '../../src/ledger/balances.ts';
import { createLogger } from '../../src/logger.ts';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import { pollDueTransactions } from '../../src/workers/poll-transactions.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { FIXTURE_INTENT, intentEchoing } from '../support/flow.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import {
  deliverStripe,
  paymentIntentSucceeded,
  refundObject,
  stripeEvent,
  stripeFixture,
} from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

const SECRET_KEY = randomBytes(32).toString('hex');
/** Two Stripe accounts, each with its own API key, webhook secret and API base (two stubs). */
const ACCOUNTS = {
  A: {
    base: 'https://account-a.stripe.test',
    key: 'sk_test_account_a_0123456789',
    secret: 'whsec_payments_account_a_01',
  },
  B: {
    base: 'https://account-b.stripe.test',
    key: 'sk_test_account_b_0123456789',
    secret: 'whsec_payments_account_b_02',
  },
};
type Name = keyof typeof ACCOUNTS;

/** The real dispute fixture: GBP 5.00 disputed on PaymentIntent `pi_2RystUItVxyc3Q6n0qqOvNKK` (GBP 15.00). */
const DISPUTE = stripeFixture('webhook.charge.dispute.created.json');

/**
 * PRODUCT.md §12: a payment method belongs to a gateway account, and its charges, refunds, voids and
 * status checks go to that account's API with its credentials; transactions, refunds and disputes
 * record the account, and lists filter by it.
 */
describe('payments on gateway accounts', () => {
  let app: TestApp;
  const id: Record<Name, string> = { A: '', B: '' };
  beforeAll(async () => {
    app = await startOfflineTestApp({ BILLHOOK_SECRET_KEY: SECRET_KEY });
    for (const name of ['A', 'B'] as const) {
      const created = await app.api('POST', '/v1/gateway-accounts', {
        gateway: 'stripe',
        name,
        mode: 'test',
        credentials: { secret_key: ACCOUNTS[name].key, webhook_secrets: [ACCOUNTS[name].secret] },
        api_base: ACCOUNTS[name].base,
      });
      expect(created.status).toBe(201);
      id[name] = created.body.id;
    }
  });
  afterEach(expectEveryMockUsed);
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** A customer with a Stripe payment method on `account` (the default account when undefined) and an OPEN invoice. */
  async function openInvoiceOn(account: Name | undefined, o: { amount?: number; currency?: string } = {}) {
    const customer = await app.api('POST', '/v1/customers', { email: 'ada@example.com' });
    const method = await app.api('POST', '/v1/payment-methods', {
      customer: customer.body.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
      ...(account ? { gateway_account: id[account] } : {}),
    });
    expect(method.status).toBe(201);
    expect(method.body.gateway_account).toBe(account ? id[account] : null);
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.body.id,
      currency: o.currency ?? 'eur',
      lines: [{ description: 'Pro plan', amount: o.amount ?? 4620 }],
    });
    const invoice = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
    expect(invoice.body.status).toBe('OPEN');
    return { customer: customer.body, method: method.body, invoice: invoice.body };
  }

  /**
   * `account`'s API (the default's for undefined), with its key, answers a PaymentIntent in `status`
   * under `intentId`, echoing the request.
   */
  function chargeAnswers(account: Name | undefined, intentId: string, status = 'succeeded') {
    return nock(account ? ACCOUNTS[account].base : STRIPE_API_BASE)
      .matchHeader('authorization', `Bearer ${account ? ACCOUNTS[account].key : 'sk_test_billhook'}`)
      .post('/v1/payment_intents')
      .reply(async (request: Request) => [
        200,
        intentEchoing(new URLSearchParams(await request.text()), intentId, status),
      ]);
  }

  const intent = () => `pi_${randomBytes(8).toString('hex')}`;

  /**
   * Delivers Stripe event `event` to `account`'s route (the default route for undefined), signed with
   * that account's secret, and waits until the worker settled it (not received, not retrying).
   * @returns its inbox row (on that account)
   */
  async function deliverOn(account: Name | undefined, event: { id: string }) {
    const delivered = await deliverStripe(app.url, event, {
      ...(account ? { secret: ACCOUNTS[account].secret, account: id[account] } : {}),
    });
    expect(delivered.status).toBe(200);
    return waitFor(`event ${event.id} to be settled`, async () => {
      const row = await app.runtime.db
        .selectFrom('inbox')
        .selectAll()
        .where('gateway_event_id', '=', event.id)
        .where('gateway_account', account ? '=' : 'is', account ? id[account] : null)
        .orderBy('received_at', 'desc')
        .executeTakeFirst();
      return row && row.status !== 'received' && row.status !== 'retrying' ? row : undefined;
    });
  }

  /** The clearing balances (minor units of `currency`) of the default account and of A and B. */
  async function clearings(currency: string) {
    const of = (code: string) => balanceOf(app.runtime.db, code, currency);
    return {
      default: await of('gateway_clearing:stripe'),
      A: await of(`gateway_clearing:stripe:${id.A}`),
      B: await of(`gateway_clearing:stripe:${id.B}`),
    };
  }

  /** The reconciliation exceptions raised by inbox row `inboxId`. */
  const exceptionsOf = (inboxId: string) =>
    app.runtime.db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'transaction_id', 'gateway_account', 'message'])
      .where('inbox_id', '=', inboxId)
      .execute();

  it("charges each payment method on its own account's API, and records the account on the transaction", async () => {
    for (const account of ['A', 'B', undefined] as const) {
      const { invoice } = await openInvoiceOn(account);
      // Each account's money sits in its own clearing account; the default account's keeps its code.
      const clearing = account ? `gateway_clearing:stripe:${id[account]}` : 'gateway_clearing:stripe';
      const before = await balanceOf(app.runtime.db, clearing, invoice.currency.toUpperCase());
      const scope = chargeAnswers(account, intent());
      const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
      expect(charged.status).toBe(200);
      expect(scope.isDone()).toBe(true);
      expect(charged.body.invoice.status).toBe('PAID');
      expect(charged.body.transaction).toMatchObject({
        status: 'succeeded',
        gateway_account: account ? id[account] : null,
      });
      const after = await balanceOf(app.runtime.db, clearing, invoice.currency.toUpperCase());
      expect(after - before).toBe(BigInt(charged.body.transaction.amount));
    }
    // Gateway calls are measured per account (a few label values: default and each account's id).
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    for (const account of [id.A, id.B, 'default'])
      expect(metrics).toMatch(
        new RegExp(
          `billhook_gateway_call_seconds_count\\{gateway="stripe",account="${account}",operation="charge",outcome="succeeded"\\} [1-9]`,
        ),
      );
  });

  it("refunds a charge made on account B at B's API, and the refund records B", async () => {
    const { invoice } = await openInvoiceOn('B');
    const intentId = intent();
    chargeAnswers('B', intentId);
    await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    const refunds = nock(ACCOUNTS.B.base)
      .matchHeader('authorization', `Bearer ${ACCOUNTS.B.key}`)
      .post('/v1/refunds', (body) => body.payment_intent === intentId && body.amount === '1000')
      .reply(200, {
        ...stripeFixture('api.refund.succeeded.openapi-fixture.json'),
        id: 're_on_b',
        amount: 1000,
      });
    const refunded = await app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 1000 });
    expect(refunded.status).toBe(201);
    expect(refunds.isDone()).toBe(true);
    expect(refunded.body).toMatchObject({ status: 'succeeded', gateway_account: id.B });
    // The refund's money left B's clearing account: B's charge and refund net to nothing there.
    const entries = await app.runtime.db
      .selectFrom('postings')
      .innerJoin('journal_entries', 'journal_entries.id', 'postings.journal_entry_id')
      .innerJoin('ledger_accounts', 'ledger_accounts.id', 'postings.account_id')
      .select(['ledger_accounts.code', 'postings.amount'])
      .where('journal_entries.idempotency_key', '=', `${refunded.body.id}:succeeded`)
      .execute();
    expect(entries.find((p) => p.code.startsWith('gateway_clearing:'))).toEqual({
      code: `gateway_clearing:stripe:${id.B}`,
      amount: -1000n,
    });
  });

  it("voids a charge awaiting capture on account B at B's API", async () => {
    const { invoice } = await openInvoiceOn('B');
    const intentId = intent();
    chargeAnswers('B', intentId, 'requires_capture');
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({ status: 'pending', gateway_account: id.B });
    const canceled = stripeFixture('webhook.payment_intent.canceled.json').data.object;
    const cancel = nock(ACCOUNTS.B.base)
      .matchHeader('authorization', `Bearer ${ACCOUNTS.B.key}`)
      .post(`/v1/payment_intents/${intentId}/cancel`)
      .reply(200, {
        ...canceled,
        id: intentId,
        metadata: { billhook_reference: charged.body.transaction.id },
      });
    const voided = await app.api('POST', `/v1/transactions/${charged.body.transaction.id}/void`, {});
    expect(voided.status).toBe(200);
    expect(cancel.isDone()).toBe(true);
    expect(voided.body.transaction).toMatchObject({ status: 'canceled', failure_code: 'voided' });
  });

  it('asks account B about an unknown-outcome charge made on B', async () => {
    const { invoice } = await openInvoiceOn('B');
    nock(ACCOUNTS.B.base)
      .post('/v1/payment_intents')
      .reply(500, { error: { message: 'down' } });
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    const transaction = charged.body.transaction;
    expect(transaction).toMatchObject({ status: 'unknown', gateway_account: id.B });
    const found = { ...FIXTURE_INTENT, id: intent(), metadata: { billhook_reference: transaction.id } };
    const search = nock(ACCOUNTS.B.base)
      .matchHeader('authorization', `Bearer ${ACCOUNTS.B.key}`)
      .get('/v1/payment_intents/search')
      .query((q) => String(q.query) === `metadata['billhook_reference']:'${transaction.id}'`)
      .reply(200, { object: 'search_result', data: [found], has_more: false });
    const results = await pollDueTransactions(
      app.runtime.db,
      'system',
      app.runtime,
      [60],
      createLogger('silent'),
      { all: true },
    );
    expect(search.isDone()).toBe(true);
    expect(results).toContainEqual({ transactionId: transaction.id, status: 'succeeded', exhausted: false });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.status).toBe('PAID');
  });

  it("records a dispute delivered to B's route on B, and lists filter by gateway_account", async () => {
    const { invoice, customer } = await openInvoiceOn('B', { amount: 1500, currency: 'gbp' });
    chargeAnswers('B', DISPUTE.data.object.payment_intent);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');
    const body = JSON.stringify({ ...DISPUTE, id: `evt_${randomBytes(8).toString('hex')}` });
    const delivered = await fetch(`${app.url}/webhooks/stripe/${id.B}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'stripe-signature': signStripePayload(body, ACCOUNTS.B.secret),
      },
      body,
    });
    expect(delivered.status).toBe(200);
    const dispute = await waitFor('the dispute to be recorded', async () => {
      const list = await app.api('GET', `/v1/disputes?gateway_account=${id.B}`);
      return list.body.data.find(
        (d: { transaction: string }) => d.transaction === charged.body.transaction.id,
      );
    });
    expect(dispute).toMatchObject({ gateway_account: id.B, amount: 500, currency: 'GBP' });

    const ids = async (path: string) =>
      (
        (await app.api('GET', `${path}${path.includes('?') ? '&' : '?'}limit=100`)).body.data as {
          id: string;
        }[]
      ).map((row) => row.id);
    const accountOf = async (path: string) =>
      new Set(
        ((await app.api('GET', `${path}&limit=100`)).body.data as { gateway_account: string | null }[]).map(
          (row) => row.gateway_account,
        ),
      );
    // Every list answers only the rows of the account asked for; `default` is the default account's.
    for (const resource of ['transactions', 'refunds', 'disputes', 'events', 'payment-methods']) {
      expect(await accountOf(`/v1/${resource}?gateway_account=${id.B}`)).toEqual(new Set([id.B]));
    }
    expect(await accountOf('/v1/transactions?gateway_account=default')).toEqual(new Set([null]));
    expect(await accountOf(`/v1/payment-methods?gateway_account=${id.A}`)).toEqual(new Set([id.A]));
    expect(await ids(`/v1/transactions?gateway_account=${id.B}&customer=${customer.id}`)).toEqual([
      charged.body.transaction.id,
    ]);
    // An unknown account id matches nothing; a value that is no account id is refused.
    expect(await ids('/v1/transactions?gateway_account=gwa_unknown')).toEqual([]);
    const refused = await app.api('GET', '/v1/transactions?gateway_account=acct_123');
    expect(refused.status).toBe(422);
    expect(refused.body.error.fields).toHaveProperty('gateway_account');
  });

  it('refuses a payment method on an unknown account or one of another gateway (422), or on a disabled one (409)', async () => {
    const customer = await app.api('POST', '/v1/customers', { email: 'grace@example.com' });
    const method = (gateway: string, account: string) =>
      app.api('POST', '/v1/payment-methods', {
        customer: customer.body.id,
        gateway,
        gateway_token: 'tok_1',
        gateway_account: account,
      });
    for (const [gateway, account] of [
      ['stripe', 'gwa_nosuchaccount'],
      ['paypal', id.A],
    ] as const) {
      const refused = await method(gateway, account);
      expect(refused.status).toBe(422);
      expect(refused.body.error.fields).toHaveProperty('gateway_account');
    }
    const disabled = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'stripe',
      name: 'C',
      mode: 'test',
      credentials: { secret_key: 'sk_test_account_c_0123456789' },
    });
    await app.api('POST', `/v1/gateway-accounts/${disabled.body.id}/disable`);
    const refused = await method('stripe', disabled.body.id);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('gateway_account_disabled');
    expect((await app.api('GET', `/v1/payment-methods?customer=${customer.body.id}`)).body.data).toEqual([]);
  });

  it("after its account is disabled, refuses a charge's refund and void (409) but still checks its status there", async () => {
    const base = 'https://account-e.stripe.test';
    const created = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'stripe',
      name: 'E',
      mode: 'test',
      credentials: { secret_key: 'sk_test_account_e_0123456789' },
      api_base: base,
    });
    const account = created.body.id as string;
    const customer = await app.api('POST', '/v1/customers', { email: 'edsger@example.com' });
    await app.api('POST', '/v1/payment-methods', {
      customer: customer.body.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_account: account,
    });
    const charge = async () => {
      const draft = await app.api('POST', '/v1/invoices', {
        customer: customer.body.id,
        currency: 'eur',
        lines: [{ description: 'Pro plan', amount: 4620 }],
      });
      await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
      return app.api('POST', `/v1/invoices/${draft.body.id}/charge`, {});
    };
    const intentId = intent();
    nock(base)
      .post('/v1/payment_intents')
      .reply(200, { ...FIXTURE_INTENT, id: intentId, status: 'requires_capture', amount_received: 0 });
    const pending = (await charge()).body.transaction;
    nock(base)
      .post('/v1/payment_intents')
      .reply(500, { error: { message: 'down' } });
    const unknown = (await charge()).body.transaction;
    expect([pending.status, unknown.status]).toEqual(['pending', 'unknown']);
    await app.api('POST', `/v1/gateway-accounts/${account}/disable`);

    const voided = await app.api('POST', `/v1/transactions/${pending.id}/void`, {});
    expect([voided.status, voided.body.error?.code]).toEqual([409, 'gateway_account_disabled']);
    // The outcome of a charge already sent may have happened at the account: it is still asked.
    const search = nock(base)
      .get('/v1/payment_intents/search')
      .query((q) => String(q.query) === `metadata['billhook_reference']:'${unknown.id}'`)
      .reply(200, {
        object: 'search_result',
        data: [{ ...FIXTURE_INTENT, id: intent(), metadata: { billhook_reference: unknown.id } }],
        has_more: false,
      });
    // The pending charge, named by Stripe, is retrieved by its id there (requires_capture: still pending).
    const retrieve = nock(base)
      .get(`/v1/payment_intents/${intentId}`)
      .reply(200, { ...FIXTURE_INTENT, id: intentId, status: 'requires_capture', amount_received: 0 });
    await pollDueTransactions(app.runtime.db, 'system', app.runtime, [60], createLogger('silent'), {
      all: true,
    });
    expect([search.isDone(), retrieve.isDone()]).toEqual([true, true]);
    expect((await app.api('GET', `/v1/transactions/${pending.id}`)).body.status).toBe('pending');
    const paid = await app.api('GET', `/v1/transactions/${unknown.id}`);
    expect(paid.body).toMatchObject({ status: 'succeeded', gateway_account: account });
    const refused = await app.api('POST', `/v1/invoices/${paid.body.invoice}/refund`, {});
    expect([refused.status, refused.body.error?.code]).toEqual([409, 'gateway_account_disabled']);
    expect((await app.api('GET', `/v1/refunds?gateway_account=${account}`)).body.data).toEqual([]);
  });

  it('refuses to charge a payment method whose account was disabled (409), creating nothing and calling no API', async () => {
    const created = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'stripe',
      name: 'D',
      mode: 'test',
      credentials: { secret_key: 'sk_test_account_d_0123456789' },
      api_base: 'https://account-d.stripe.test',
    });
    const customer = await app.api('POST', '/v1/customers', { email: 'linus@example.com' });
    await app.api('POST', '/v1/payment-methods', {
      customer: customer.body.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_account: created.body.id,
    });
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.body.id,
      currency: 'eur',
      lines: [{ description: 'Pro plan', amount: 4620 }],
    });
    await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
    expect((await app.api('POST', `/v1/gateway-accounts/${created.body.id}/disable`)).status).toBe(200);

    // Offline: a call to any API would fail the request; none is made.
    const refused = await app.api('POST', `/v1/invoices/${draft.body.id}/charge`, {});
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'gateway_account_disabled' });
    expect(refused.body.error.message).toContain(created.body.id);
    expect((await app.api('GET', `/v1/transactions?customer=${customer.body.id}`)).body.data).toEqual([]);
    expect((await app.api('GET', `/v1/invoices/${draft.body.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_paid: 0,
    });

    // The scheduler's charge of it fails the collection without an attempt (dunning counts it).
    const now = new Date();
    await app.api('POST', `/v1/invoices/${draft.body.id}`, { charge_at: now.toISOString() });
    const { charged } = await chargeDueInvoices(app.runtime.db, 'scheduler', app.runtime, app.config, now);
    expect(charged).toEqual([
      expect.objectContaining({
        invoiceId: draft.body.id,
        outcome: 'failed',
        reason: 'gateway_account_disabled',
      }),
    ]);
    expect((await app.api('GET', `/v1/transactions?customer=${customer.body.id}`)).body.data).toEqual([]);
  });

  /*
   * PRODUCT.md §12: a delivery is verified with its account's secret, so it moves only that
   * account's money. Whoever holds one account's webhook secret (a test-mode account's) must not be
   * able to mark another account's invoices paid, refund or dispute its payments.
   */
  it("moves nothing when a charge's success is delivered on another account's route: an exception names both; on its own route it pays", async () => {
    const { invoice } = await openInvoiceOn('A');
    const intentId = intent();
    chargeAnswers('A', intentId, 'processing');
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    const transaction = charged.body.transaction;
    expect(transaction).toMatchObject({ status: 'pending', gateway_account: id.A });
    const before = await clearings('EUR');
    const succeeded = (eventId: string) =>
      JSON.parse(
        paymentIntentSucceeded({
          eventId,
          intentId,
          amount: 4620,
          currency: 'eur',
          reference: transaction.id,
        }),
      );

    for (const account of ['B', undefined] as const) {
      const row = await deliverOn(account, succeeded(`evt_${randomBytes(8).toString('hex')}`));
      expect(row).toMatchObject({ status: 'exception', gateway_account: account ? id.B : null });
      expect(await exceptionsOf(row.id)).toEqual([
        {
          kind: 'unknown_entity',
          transaction_id: transaction.id,
          gateway_account: account ? id.B : null,
          message: expect.stringContaining(
            `received for ${account ? id.B : "the gateway's default account"} but names ${transaction.id}, which is on ${id.A}: nothing changed`,
          ),
        },
      ]);
    }
    expect((await app.api('GET', `/v1/transactions/${transaction.id}`)).body.status).toBe('pending');
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'OPEN',
      amount_paid: 0,
    });
    expect(await clearings('EUR')).toEqual(before);
    // Listed for a person under the account that received it.
    const listed = await app.api('GET', `/v1/reconciliation-exceptions?gateway_account=${id.B}`);
    expect(listed.body.data).toContainEqual(
      expect.objectContaining({ kind: 'unknown_entity', transaction: transaction.id, gateway_account: id.B }),
    );

    const own = await deliverOn('A', succeeded(`evt_${randomBytes(8).toString('hex')}`));
    expect(own.status).toBe('processed');
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 4620,
    });
    expect(await clearings('EUR')).toEqual({ ...before, A: before.A + 4620n });
  });

  it("records no dashboard refund delivered on another account's route; on its own route it is booked on the payment's account", async () => {
    const { invoice } = await openInvoiceOn('A');
    const intentId = intent();
    chargeAnswers('A', intentId);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');
    const transaction = charged.body.transaction;
    const before = await clearings('EUR');
    const refund = refundObject({
      id: `re_dashboard_${randomBytes(6).toString('hex')}`,
      amount: 1000,
      intent: intentId,
      status: 'succeeded',
    });

    const elsewhere = await deliverOn('B', stripeEvent('refund.updated', refund));
    expect(elsewhere.status).toBe('exception');
    expect(await exceptionsOf(elsewhere.id)).toEqual([
      expect.objectContaining({
        kind: 'unknown_entity',
        transaction_id: transaction.id,
        gateway_account: id.B,
      }),
    ]);
    expect(
      (await app.api('GET', `/v1/refunds?gateway_account=${id.A}&limit=100`)).body.data,
    ).not.toContainEqual(expect.objectContaining({ transaction: transaction.id }));
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_refunded: 0,
    });
    expect(await clearings('EUR')).toEqual(before);

    expect((await deliverOn('A', stripeEvent('refund.updated', refund))).status).toBe('processed');
    const refunds = await app.api('GET', `/v1/refunds?gateway_account=${id.A}&limit=100`);
    expect(
      refunds.body.data.filter((r: { transaction: string }) => r.transaction === transaction.id),
    ).toEqual([expect.objectContaining({ status: 'succeeded', amount: 1000, gateway_account: id.A })]);
    expect(await clearings('EUR')).toEqual({ ...before, A: before.A - 1000n });
  });

  it("records no dispute delivered on another account's route; on its own route it withholds from that account", async () => {
    const { invoice } = await openInvoiceOn('A', { amount: 1500, currency: 'gbp' });
    const intentId = intent();
    chargeAnswers('A', intentId);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');
    const transaction = charged.body.transaction;
    const before = await clearings('GBP');
    // The real dispute fixture (GBP 5.00), about this payment.
    const disputed = (eventId: string) => ({
      ...DISPUTE,
      id: eventId,
      data: { object: { ...DISPUTE.data.object, id: `du_${intentId}`, payment_intent: intentId } },
    });
    const disputesOf = async () =>
      (await app.api('GET', '/v1/disputes?limit=100')).body.data.filter(
        (d: { transaction: string }) => d.transaction === transaction.id,
      );

    const elsewhere = await deliverOn('B', disputed(`evt_${randomBytes(8).toString('hex')}`));
    expect(elsewhere.status).toBe('exception');
    expect(await exceptionsOf(elsewhere.id)).toEqual([
      expect.objectContaining({
        kind: 'unknown_entity',
        transaction_id: transaction.id,
        gateway_account: id.B,
      }),
    ]);
    expect(await disputesOf()).toEqual([]);
    expect(await clearings('GBP')).toEqual(before);

    expect((await deliverOn('A', disputed(`evt_${randomBytes(8).toString('hex')}`))).status).toBe(
      'processed',
    );
    expect(await disputesOf()).toEqual([
      expect.objectContaining({ status: 'open', amount: 500, gateway_account: id.A }),
    ]);
    expect(await clearings('GBP')).toEqual({ ...before, A: before.A - 500n });
  });

  it("still receives a disabled account's webhooks: a refund pending when it was disabled, and a dispute, are booked", async () => {
    const base = 'https://account-f.stripe.test';
    const secret = 'whsec_payments_account_f_06';
    const created = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'stripe',
      name: 'F',
      mode: 'test',
      credentials: { secret_key: 'sk_test_account_f_0123456789', webhook_secrets: [secret] },
      api_base: base,
    });
    const account = created.body.id as string;
    const customer = await app.api('POST', '/v1/customers', { email: 'barbara@example.com' });
    await app.api('POST', '/v1/payment-methods', {
      customer: customer.body.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_account: account,
    });
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.body.id,
      currency: 'eur',
      lines: [{ description: 'Pro plan', amount: 4620 }],
    });
    await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
    const intentId = intent();
    nock(base)
      .post('/v1/payment_intents')
      .reply(async (request: Request) => [
        200,
        intentEchoing(new URLSearchParams(await request.text()), intentId, 'succeeded'),
      ]);
    const charged = await app.api('POST', `/v1/invoices/${draft.body.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({ status: 'succeeded', gateway_account: account });
    // Stripe takes the refund but has not sent it yet: pending.
    const refundId = `re_pending_${randomBytes(6).toString('hex')}`;
    nock(base)
      .post('/v1/refunds')
      .reply(async (request: Request) => {
        const params = new URLSearchParams(await request.text());
        return [
          200,
          refundObject({
            id: refundId,
            amount: 1000,
            intent: intentId,
            status: 'pending',
            reference: params.get('metadata[billhook_reference]') ?? '',
          }),
        ];
      });
    const refunded = await app.api('POST', `/v1/invoices/${draft.body.id}/refund`, { amount: 1000 });
    // Stripe's refund id is learned from its webhook, which carries our reference.
    expect(refunded.body).toMatchObject({ status: 'pending', gateway_account: account });
    const clearing = `gateway_clearing:stripe:${account}`;
    expect(await balanceOf(app.runtime.db, clearing, 'EUR')).toBe(4620n);
    expect((await app.api('POST', `/v1/gateway-accounts/${account}/disable`)).status).toBe(200);

    const deliver = async (event: { id: string }) => {
      const delivered = await deliverStripe(app.url, event, { secret, account });
      expect(delivered.status).toBe(200);
      return waitFor(`event ${event.id} to be processed`, async () => {
        const row = await app.runtime.db
          .selectFrom('inbox')
          .select(['status', 'gateway_account'])
          .where('gateway_event_id', '=', event.id)
          .executeTakeFirst();
        return row?.status === 'processed' ? row : undefined;
      });
    };
    const succeeded = refundObject({
      id: refundId,
      amount: 1000,
      intent: intentId,
      status: 'succeeded',
      reference: refunded.body.id,
    });
    expect(await deliver(stripeEvent('refund.updated', succeeded))).toEqual({
      status: 'processed',
      gateway_account: account,
    });
    expect((await app.api('GET', `/v1/refunds/${refunded.body.id}`)).body.status).toBe('succeeded');
    expect((await app.api('GET', `/v1/invoices/${draft.body.id}`)).body).toMatchObject({
      amount_refunded: 1000,
    });
    expect(await balanceOf(app.runtime.db, clearing, 'EUR')).toBe(3620n);

    // A dispute of 5.00 on the same payment: withheld from the disabled account's clearing.
    await deliver({
      ...DISPUTE,
      id: `evt_${randomBytes(8).toString('hex')}`,
      data: {
        object: { ...DISPUTE.data.object, id: `du_${intentId}`, payment_intent: intentId, currency: 'eur' },
      },
    });
    const disputes = await app.api('GET', `/v1/disputes?gateway_account=${account}`);
    expect(disputes.body.data).toEqual([
      expect.objectContaining({ status: 'open', amount: 500, currency: 'EUR' }),
    ]);
    expect(await balanceOf(app.runtime.db, clearing, 'EUR')).toBe(3120n);
    // Still no new business on it.
    const refused = await app.api('POST', `/v1/invoices/${draft.body.id}/refund`, { amount: 100 });
    expect([refused.status, refused.body.error?.code]).toEqual([409, 'gateway_account_disabled']);
  });
});
