import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/db/ids.ts';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { customerWith } from '../support/collection.ts';
import { balancedWithoutDeadlocks, createTestDatabase } from '../support/database.ts';
import { byDepth } from '../support/depth.ts';
import { intentEchoing, stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { applyAsBatch, canonicalEvent } from '../support/money-core.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { insertPlan } from '../support/plans.ts';
import { stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

/**
 * A payment, or a dunning retry, of a PAST_DUE subscription's invoice racing a cancellation of that
 * subscription with a full refund (PRODUCT §5, §11). The payment locks the invoice, pays it and
 * reinstates the subscription (`reinstateAfterPayment`); dunning locks the invoice, counts the
 * failure and moves the subscription (`recordCollectionFailure`); the cancellation locks the
 * subscription, then its period's invoice (`refundOf`). Every unit of work locks a subscription
 * before its invoices (`lockInvoice` takes the invoice's subscription first), so they serialise;
 * payments and dunning used to lock the subscription after the invoice, and could deadlock with the
 * cancellation (PostgreSQL aborts one with 40P01, answered 500: a charge the card paid and billhook
 * did not book, or a cancellation refused for no reason). The database detects deadlocks after
 * 20 ms (`deadlock_timeout`), so a deadlock shows at once. Three tests (an API charge, a webhook
 * batch, a dunning retry) set the order that deadlocked every time (the cancellation queued for the
 * subscription first, the other behind it); one races an API charge and the cancellation round
 * after round. Whichever goes first, the charge succeeds (or, for dunning, is declined
 * and counted); the cancellation either came first (409 `nothing_to_refund`: the invoice was still
 * unpaid) or second (200: cancelled, the payment refunded whole). At the end of each test the books
 * balance and PostgreSQL counted no deadlock.
 */
describe('a payment or dunning retry of a PAST_DUE subscription racing its cancellation', () => {
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
  const DAY = 86_400_000;

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

  /** Invoice `invoice` is PAID (1000 of 1000), `subscription` ACTIVE again, and `balancedWithoutDeadlocks`. */
  async function paidAndReinstated(subscription: string, invoice: string) {
    expect((await app.api('GET', `/v1/invoices/${invoice}`)).body).toMatchObject({
      status: 'PAID',
      amount_paid: 1000,
      amount_due: 0,
    });
    expect((await app.api('GET', `/v1/subscriptions/${subscription}`)).body.status).toBe('ACTIVE');
    await balancedWithoutDeadlocks(db(), 'EUR');
  }

  /** How many statements on subscriptions wait for a lock in this database (pg_stat_activity). */
  async function waitingOnSubscriptions(): Promise<number> {
    const { rows } = await sql<{ waiting: number }>`
      SELECT count(*)::int AS waiting FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%"subscriptions"%'
    `.execute(db());
    return rows[0]?.waiting ?? 0;
  }

  /**
   * Runs `first`, then `second`, each as soon as the other's unit of work before it queued for
   * `subscription`, which another transaction holds meanwhile; then lets that transaction end.
   * @returns what each returned
   */
  async function queuedForSubscription<A, B>(
    subscription: string,
    first: () => Promise<A>,
    second: () => Promise<B>,
  ): Promise<[A, B]> {
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
    const a = first();
    await waitFor(
      'the first to wait for the subscription',
      async () => (await waitingOnSubscriptions()) === 1,
    );
    const b = second();
    await waitFor(
      'the second to wait for the subscription',
      async () => (await waitingOnSubscriptions()) === 2,
    );
    release();
    await holder;
    return Promise.all([a, b]);
  }

  const cancelWithRefund = (subscription: string) => () =>
    app.api('POST', `/v1/subscriptions/${subscription}/cancel`, { refund_type: 'full' });

  it('the payment waits for the subscription the cancellation holds instead of taking the invoice first', async () => {
    const { subscription, invoice } = await pastDue('held');
    // The cancellation has the subscription first, then the payment. Before, the payment took the
    // invoice and queued for the subscription behind the cancellation, which then waited for the
    // invoice: a deadlock, every time.
    const charge = stripeChargeSucceeds();
    const [cancel, charged] = await queuedForSubscription(subscription, cancelWithRefund(subscription), () =>
      app.api('POST', `/v1/invoices/${invoice}/charge`, {}),
    );
    const answers = `charge ${JSON.stringify(charged.body)}, cancel ${JSON.stringify(cancel.body)}`;
    // The cancellation had the subscription first: the invoice was unpaid, nothing to give back.
    expect(cancel.status, answers).toBe(409);
    expect(cancel.body.error.code).toBe('nothing_to_refund');
    // Then the payment: Stripe was asked once, the invoice is paid and the subscription ACTIVE again.
    expect(charged.status, answers).toBe(200);
    expect(charged.body.transaction.status).toBe('succeeded');
    expect(charge.seen).toHaveLength(1);
    await paidAndReinstated(subscription, invoice);
  });

  it('a webhook batch paying the invoice waits for the subscription the cancellation holds instead of taking the invoice first', async () => {
    const { subscription, invoice } = await pastDue('batch');
    // A charge whose answer was lost (`pending`), then Stripe's charge.succeeded for it, applied as the
    // reconcile batch does: its subscription, invoice and transaction locked ahead
    // (`lockTransactionsAhead`). Before, the batch locked the invoice ahead and queued for the
    // subscription (reinstating it) behind the cancellation, which then waited for the invoice.
    const customer = (await app.api('GET', `/v1/invoices/${invoice}`)).body.customer;
    const pending = await db()
      .insertInto('transactions')
      .values({
        id: newId('txn'),
        invoice_id: invoice,
        customer_id: customer,
        gateway: 'stripe',
        amount: 1000n,
        currency: 'EUR',
        status: 'pending',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const event = canonicalEvent({
      type: 'charge.succeeded',
      amount: 1000n,
      currency: 'EUR',
      reference: pending.id,
      gatewayTransactionId: 'pi_batch',
    });
    const [cancel, applied] = await queuedForSubscription(subscription, cancelWithRefund(subscription), () =>
      applyAsBatch(db(), event),
    );
    expect(cancel.status, JSON.stringify(cancel.body)).toBe(409);
    expect(cancel.body.error.code).toBe('nothing_to_refund');
    expect(applied).toEqual({ kind: 'applied', transactionId: pending.id });
    await paidAndReinstated(subscription, invoice);
  });

  it('a dunning retry waits for the subscription the cancellation holds instead of taking the invoice first', async () => {
    const { subscription, invoice } = await pastDue('dunning');
    // The day-1 retry is declined too. Before, dunning counted the failure with the invoice locked and
    // queued for the subscription behind the cancellation, which then waited for the invoice.
    const declined = stripeFixture('api.payment_intent.create.card_declined.error.json');
    declined.error.payment_intent.id = 'pi_declined_dunning_2';
    declined.error.charge = 'ch_declined_dunning_2';
    const retry = nock(STRIPE_API_BASE).post('/v1/payment_intents').reply(402, declined);
    const [cancel, sweep] = await queuedForSubscription(subscription, cancelWithRefund(subscription), () =>
      chargeDueInvoices(
        db(),
        'scheduler',
        app.runtime,
        { DUNNING_RETRY_DAYS: [1, 3, 5, 7], DUNNING_FINAL_ACTION: 'SUSPEND' },
        new Date(Date.now() + DAY),
      ),
    );
    expect(cancel.status, JSON.stringify(cancel.body)).toBe(409);
    expect(cancel.body.error.code).toBe('nothing_to_refund');
    expect(retry.isDone()).toBe(true);
    expect(sweep.charged).toEqual([
      expect.objectContaining({
        invoiceId: invoice,
        outcome: 'failed',
        dunning: expect.objectContaining({ attempts: 2, subscriptionStatus: 'PAST_DUE' }),
      }),
    ]);
    expect((await app.api('GET', `/v1/invoices/${invoice}`)).body).toMatchObject({
      status: 'OPEN',
      amount_due: 1000,
      amount_paid: 0,
      payment_attempts: 2,
    });
    expect((await app.api('GET', `/v1/subscriptions/${subscription}`)).body.status).toBe('PAST_DUE');
    await balancedWithoutDeadlocks(db(), 'EUR');
  });

  it('the payment succeeds and the cancellation is refused cleanly or refunds it, never a deadlock (500)', async () => {
    const rounds = byDepth(8, 40);
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
    await balancedWithoutDeadlocks(db(), 'EUR');
  });
});
