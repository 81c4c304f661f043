import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { customerWith } from '../support/collection.ts';
import { createTestDatabase } from '../support/database.ts';
import { byDepth } from '../support/depth.ts';
import { intentEchoing, stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { insertPlan } from '../support/plans.ts';
import { stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

/**
 * A payment of a PAST_DUE subscription's invoice racing a cancellation of that subscription with a
 * full refund (PRODUCT §5, §11). The payment locks the invoice, pays it and reinstates the
 * subscription (`reinstateAfterPayment`); the cancellation locks the subscription, then its period's
 * invoice (`refundOf`). Every unit of work locks a subscription before its invoices (`lockInvoice`
 * takes the invoice's subscription first), so the two serialise; the payment used to lock the
 * subscription after the invoice, and the two could deadlock (PostgreSQL aborts one with 40P01,
 * answered 500: a charge the card paid and billhook did not book, or a cancellation refused for no
 * reason). The database detects deadlocks after 20 ms (`deadlock_timeout`), so a deadlock shows at
 * once. Whichever goes first, the charge succeeds; the cancellation either came first (409
 * `nothing_to_refund`: the invoice was still unpaid, and the payment then reinstates the
 * subscription) or second (200: cancelled, the payment refunded whole). At the end of each test the
 * books balance and PostgreSQL counted no deadlock.
 */
describe('a payment reinstating a PAST_DUE subscription racing its cancellation', () => {
  let app: TestApp;
  beforeAll(async () => {
    const url = await createTestDatabase({ settings: { deadlock_timeout: '20ms' } });
    app = await startOfflineTestApp({ DATABASE_URL: url });
    // Only the test sweeps (the declined first charge), at its own moment.
    await app.runtime.boss.unschedule(QUEUES.invoiceCharge);
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => stopOfflineTestApp(app));

  const db = () => app.runtime.db;

  /**
   * A subscription to 800 EUR + 25% (1000) a period whose first invoice's automatic charge Stripe
   * declined: PAST_DUE, its invoice OPEN with 1000 due and one failed attempt.
   */
  async function pastDue(name: string) {
    const { customer, method } = await customerWith(app, { stripe: true });
    const plan = await insertPlan(db(), {
      name: `Monthly ${name}`,
      currency: 'EUR',
      price: { model: 'FLAT_FEE', amount: 800 },
      taxRatePpm: 250_000,
    });
    const sub = await app.api('POST', '/v1/subscriptions', {
      customer: customer.id,
      plan,
      payment_method: method!.id,
    });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const invoice = await db()
      .selectFrom('invoices')
      .select('id')
      .where('subscription_id', '=', sub.body.id)
      .executeTakeFirstOrThrow();
    const declined = stripeFixture('api.payment_intent.create.card_declined.error.json');
    declined.error.payment_intent.id = `pi_declined_${name}`;
    declined.error.charge = `ch_declined_${name}`;
    nock(STRIPE_API_BASE).post('/v1/payment_intents').reply(402, declined);
    const { charged } = await chargeDueInvoices(
      db(),
      'scheduler',
      app.runtime,
      { DUNNING_RETRY_DAYS: [1, 3, 5, 7], DUNNING_FINAL_ACTION: 'SUSPEND' },
      new Date(),
    );
    expect(charged).toEqual([expect.objectContaining({ invoiceId: invoice.id, outcome: 'failed' })]);
    expect((await app.api('GET', `/v1/subscriptions/${sub.body.id}`)).body.status).toBe('PAST_DUE');
    return { subscription: sub.body.id as string, invoice: invoice.id };
  }

  /** The books balance (EUR postings sum to 0) and PostgreSQL aborted no transaction of this database with 40P01. */
  async function balancedWithoutDeadlocks() {
    const total = await db()
      .selectFrom('postings')
      .select(sql<string>`coalesce(sum(amount), 0)::text`.as('sum'))
      .where('currency', '=', 'EUR')
      .executeTakeFirstOrThrow();
    expect(total.sum).toBe('0');
    const { rows } = await sql<{ deadlocks: string }>`
      SELECT deadlocks::text FROM pg_stat_database WHERE datname = current_database()
    `.execute(db());
    expect(rows[0]?.deadlocks).toBe('0');
  }

  /** How many statements on subscriptions wait for a lock in this database (pg_stat_activity). */
  async function waitingOnSubscriptions(): Promise<number> {
    const { rows } = await sql<{ waiting: number }>`
      SELECT count(*)::int AS waiting FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%"subscriptions"%'
    `.execute(db());
    return rows[0]?.waiting ?? 0;
  }

  it('the payment waits for the subscription the cancellation holds instead of taking the invoice first', async () => {
    const { subscription, invoice } = await pastDue('held');
    // Another transaction holds the subscription: the cancellation queues for it first, then the
    // payment. Before, the payment took the invoice and queued for the subscription behind the
    // cancellation, which then waited for the invoice: a deadlock, every time.
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holding = () => {};
    const held = new Promise<void>((resolve) => {
      holding = resolve;
    });
    const holder = db()
      .transaction()
      .execute(async (trx) => {
        await trx
          .selectFrom('subscriptions')
          .select('id')
          .where('id', '=', subscription)
          .forUpdate()
          .execute();
        holding();
        await released;
      });
    await held;
    const cancelling = app.api('POST', `/v1/subscriptions/${subscription}/cancel`, { refund_type: 'full' });
    await waitFor(
      'the cancellation to wait for the subscription',
      async () => (await waitingOnSubscriptions()) === 1,
    );
    const charge = stripeChargeSucceeds();
    const charging = app.api('POST', `/v1/invoices/${invoice}/charge`, {});
    await waitFor(
      'the payment to wait for the subscription',
      async () => (await waitingOnSubscriptions()) === 2,
    );
    release();
    await holder;
    const [cancel, charged] = await Promise.all([cancelling, charging]);
    const answers = `charge ${JSON.stringify(charged.body)}, cancel ${JSON.stringify(cancel.body)}`;
    // The cancellation had the subscription first: the invoice was unpaid, nothing to give back.
    expect(cancel.status, answers).toBe(409);
    expect(cancel.body.error.code).toBe('nothing_to_refund');
    // Then the payment: Stripe was asked once, the invoice is paid and the subscription ACTIVE again.
    expect(charged.status, answers).toBe(200);
    expect(charged.body.transaction.status).toBe('succeeded');
    expect(charge.seen).toHaveLength(1);
    expect((await app.api('GET', `/v1/invoices/${invoice}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 1000,
      amount_due: 0,
    });
    expect((await app.api('GET', `/v1/subscriptions/${subscription}`)).body.status).toBe('ACTIVE');
    await balancedWithoutDeadlocks();
  });

  it('the payment succeeds and the cancellation is refused cleanly or refunds it, never a deadlock (500)', async () => {
    const rounds = byDepth(15, 40);
    for (let round = 0; round < rounds; round++) {
      const { subscription, invoice } = await pastDue(String(round));
      stripeRefundSucceeds(`re_race_${round}`);
      // Stripe takes the money; the cancellation is sent as Stripe is asked, so that its unit of work
      // runs beside the one recording the payment.
      let cancelling: Promise<{ status: number; body: any }> | undefined;
      nock(STRIPE_API_BASE)
        .post('/v1/payment_intents')
        .reply(async (request: Request) => {
          const params = new URLSearchParams(await request.text());
          cancelling = app.api('POST', `/v1/subscriptions/${subscription}/cancel`, { refund_type: 'full' });
          return [200, intentEchoing(params, `pi_race_${round}`)];
        });
      const charge = await app.api('POST', `/v1/invoices/${invoice}/charge`, {});
      const cancel = await cancelling!;
      const answers = `round ${round}: charge ${JSON.stringify(charge.body)}, cancel ${JSON.stringify(cancel.body)}`;
      expect(charge.status, answers).toBe(200);
      expect(charge.body.transaction.status, answers).toBe('succeeded');
      expect([200, 409], answers).toContain(cancel.status);
      const paid = await app.api('GET', `/v1/invoices/${invoice}`);
      const status = (await app.api('GET', `/v1/subscriptions/${subscription}`)).body.status;
      const refunds = await db()
        .selectFrom('refunds')
        .innerJoin('transactions', 'transactions.id', 'refunds.transaction_id')
        .select(['refunds.amount', 'refunds.status'])
        .where('transactions.invoice_id', '=', invoice)
        .execute();
      if (cancel.status === 409) {
        // First: the invoice was still unpaid, nothing to give back; the payment then reinstated it.
        expect(cancel.body.error.code).toBe('nothing_to_refund');
        expect(status).toBe('ACTIVE');
        expect(paid.body).toMatchObject({ status: 'PAID', amount_paid: 1000, amount_refunded: 0 });
        expect(refunds).toEqual([]);
      } else {
        // Second: cancelled after the payment, which it gave back whole.
        expect(status).toBe('CANCELLED');
        expect(paid.body).toMatchObject({ status: 'REFUNDED', amount_paid: 1000, amount_refunded: 1000 });
        expect(refunds).toEqual([{ amount: 1000n, status: 'succeeded' }]);
      }
      nock.cleanAll();
    }
    await balancedWithoutDeadlocks();
  });
});
