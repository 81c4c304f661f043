// One Stripe account registered twice (the environment's default account and gateway account M with
// the same keys, while the operator moves it): Stripe sends each event to both endpoints, each with
// its own signing secret. The inbox dedupes per gateway account (migration 0044), so the copy on the
// wrong account's route, refused there (`unknown_entity`, not retried), never makes the copy on the
// payment's own route a duplicate, whichever comes first: that one is stored and booked.
import { randomBytes } from 'node:crypto';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STRIPE_API_BASE, STRIPE_WEBHOOK_SECRET, type TestApp } from '../support/app.ts';
import { intentEchoing } from '../support/flow.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, paymentIntentSucceeded, stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

const SECRET_KEY = randomBytes(32).toString('hex');
/** The second endpoint's signing secret (same Stripe account, endpoint /webhooks/stripe/<M>). */
const SECRET_M = 'whsec_review_second_endpoint_01';

describe("one Stripe event delivered to two gateway accounts' routes", () => {
  let app: TestApp;
  let m = '';
  beforeAll(async () => {
    app = await startOfflineTestApp({ BILLHOOK_SECRET_KEY: SECRET_KEY });
    const created = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'stripe',
      name: 'M (same Stripe account, being moved off the environment)',
      mode: 'test',
      credentials: { secret_key: 'sk_test_billhook', webhook_secrets: [SECRET_M] },
    });
    expect(created.status).toBe(201);
    m = created.body.id;
  });
  afterEach(expectEveryMockUsed);
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /**
   * A new invoice of `amount` (minor units of `currency`) charged through the default account's Stripe
   * payment method, Stripe answering `status`: the invoice as finalized, the charge's transaction and
   * the payment intent's id.
   */
  async function defaultCharge(
    email: string,
    currency: string,
    amount: number,
    status: 'processing' | 'succeeded',
  ) {
    const customer = await app.api('POST', '/v1/customers', { email });
    await app.api('POST', '/v1/payment-methods', {
      customer: customer.body.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.body.id,
      currency,
      lines: [{ description: 'Pro plan', amount }],
    });
    const invoice = (await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`)).body;
    const intentId = `pi_${randomBytes(8).toString('hex')}`;
    nock(STRIPE_API_BASE)
      .post('/v1/payment_intents')
      .reply(async (request: Request) => [
        200,
        intentEchoing(new URLSearchParams(await request.text()), intentId, status),
      ]);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    return { invoice, charged: charged.body, intentId };
  }

  /** A default-account Stripe charge of 4620 EUR left pending (processing), and its success event. */
  async function pendingDefaultCharge(email: string) {
    const { invoice, charged, intentId } = await defaultCharge(email, 'eur', 4620, 'processing');
    const transaction = charged.transaction;
    expect(transaction).toMatchObject({ status: 'pending', gateway_account: null });
    const event = JSON.parse(
      paymentIntentSucceeded({
        eventId: `evt_${randomBytes(8).toString('hex')}`,
        intentId,
        amount: 4620,
        currency: 'eur',
        reference: transaction.id,
      }),
    );
    return { invoice, event };
  }

  /** Invoice `id` once PAID. */
  const paidInvoice = (id: string) =>
    waitFor(
      'the invoice to be paid',
      async () => {
        const read = (await app.api('GET', `/v1/invoices/${id}`)).body;
        return read.status === 'PAID' ? read : undefined;
      },
      20_000,
    );

  it("books a default-account payment whose event reached M's route first", async () => {
    const { invoice, event } = await pendingDefaultCharge('ada@example.com');
    // Stripe sends the event to both endpoints; M's arrives first.
    expect((await deliverStripe(app.url, event, { secret: SECRET_M, account: m })).status).toBe(200);
    const first = await waitFor('the first delivery to be settled', async () => {
      const row = await app.runtime.db
        .selectFrom('inbox')
        .selectAll()
        .where('gateway_event_id', '=', event.id)
        .where('gateway_account', '=', m)
        .executeTakeFirst();
      return row && row.status !== 'received' && row.status !== 'retrying' ? row : undefined;
    });
    expect(first).toMatchObject({ gateway_account: m, status: 'exception' });
    // Then the payment's own (default) route gets it.
    const own = await deliverStripe(app.url, event, { secret: STRIPE_WEBHOOK_SECRET });
    expect(own.status).toBe(200);
    expect(await paidInvoice(invoice.id)).toMatchObject({ status: 'PAID', amount_paid: 4620 });
    // One exception, M's, naming both accounts; each route's copy is stored under the event id.
    const rows = await app.runtime.db
      .selectFrom('inbox')
      .select(['id', 'gateway_account', 'gateway_event_id', 'status'])
      .where('gateway_event_id', '=', event.id)
      .orderBy('received_at')
      .execute();
    expect(rows).toEqual([
      expect.objectContaining({ gateway_account: m, gateway_event_id: event.id, status: 'exception' }),
      expect.objectContaining({ gateway_account: null, gateway_event_id: event.id, status: 'processed' }),
    ]);
    const exceptions = await app.runtime.db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'gateway_account', 'inbox_id'])
      .where(
        'inbox_id',
        'in',
        rows.map((r) => r.id),
      )
      .execute();
    expect(exceptions).toEqual([{ kind: 'unknown_entity', gateway_account: m, inbox_id: first.id }]);
    // A later copy on either route is a duplicate there: nothing is booked twice, no second exception.
    expect((await deliverStripe(app.url, event, { secret: STRIPE_WEBHOOK_SECRET })).status).toBe(200);
    expect((await deliverStripe(app.url, event, { secret: SECRET_M, account: m })).status).toBe(200);
    const stored = await app.runtime.db
      .selectFrom('inbox')
      .select('id')
      .where('gateway_event_id', '=', event.id)
      .execute();
    expect(stored).toHaveLength(2);
  });

  it('books it when both copies arrive together, before either is processed (the freed-id way lost the second)', async () => {
    const { invoice, event } = await pendingDefaultCharge('cy@example.com');
    const [onM, own] = await Promise.all([
      deliverStripe(app.url, event, { secret: SECRET_M, account: m }),
      deliverStripe(app.url, event, { secret: STRIPE_WEBHOOK_SECRET }),
    ]);
    expect([onM.status, own.status]).toEqual([200, 200]);
    expect(await paidInvoice(invoice.id)).toMatchObject({ status: 'PAID', amount_paid: 4620 });
    const rows = await waitFor('both copies to be settled', async () => {
      const stored = await app.runtime.db
        .selectFrom('inbox')
        .select(['gateway_account', 'status'])
        .where('gateway_event_id', '=', event.id)
        .orderBy('gateway_account')
        .execute();
      return stored.every((r) => r.status === 'processed' || r.status === 'exception') ? stored : undefined;
    });
    expect(rows).toEqual([
      { gateway_account: m, status: 'exception' },
      { gateway_account: null, status: 'processed' },
    ]);
  });

  it("books a dispute of a default-account payment whose event reached M's route first (no status poll rescues it)", async () => {
    const DISPUTE = stripeFixture('webhook.charge.dispute.created.json');
    const { charged, intentId } = await defaultCharge('bob@example.com', 'gbp', 1500, 'succeeded');
    expect(charged.invoice.status).toBe('PAID');
    const transaction = charged.transaction;
    const event = {
      ...DISPUTE,
      id: `evt_${randomBytes(8).toString('hex')}`,
      data: { object: { ...DISPUTE.data.object, id: `du_${intentId}`, payment_intent: intentId } },
    };
    expect((await deliverStripe(app.url, event, { secret: SECRET_M, account: m })).status).toBe(200);
    await waitFor('the first delivery to be settled', async () => {
      const row = await app.runtime.db
        .selectFrom('inbox')
        .selectAll()
        .where('gateway_event_id', '=', event.id)
        .where('gateway_account', '=', m)
        .executeTakeFirst();
      return row && row.status === 'exception' ? row : undefined;
    });
    expect((await deliverStripe(app.url, event, { secret: STRIPE_WEBHOOK_SECRET })).status).toBe(200);
    const disputes = async () =>
      (await app.api('GET', '/v1/disputes?limit=100')).body.data.filter(
        (d: { transaction: string }) => d.transaction === transaction.id,
      );
    const found = await waitFor(
      'the dispute to be recorded',
      async () => {
        const list = await disputes();
        return list.length > 0 ? list : undefined;
      },
      20_000,
    );
    expect(found).toEqual([expect.objectContaining({ status: 'open', amount: 500 })]);
  });
});
