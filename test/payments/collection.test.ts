import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayClients } from '../../src/accounts/clients.ts';
import { createInvoice, finalizeInvoice } from '../../src/billing/invoices.ts';
import { renewDueSubscriptions } from '../../src/billing/renewal.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import type { Config } from '../../src/config/env.ts';
import { newId } from '../../src/db/ids.ts';
import type { SubscriptionStatus } from '../../src/db/schema.ts';
import { flagDuplicatePayment } from '../../src/exceptions/exceptions.ts';
import { chargeInvoice } from '../../src/payments/charges.ts';
import { CLAIM_LEASE_MS, chargeDueInvoices, claimDueInvoices } from '../../src/payments/collection.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { actionsOf, customerWith, ledgerIn } from '../support/collection.ts';
import { stripeChargeSucceeds } from '../support/flow.ts';
import { startHangingWeb, startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { insertPlan } from '../support/plans.ts';
import { deliverStripe, stripeFixture } from '../support/stripe.ts';
import { NO_ANSWER_DELAY_MS } from '../support/timeouts.ts';
import { waitFor, wakeWorkers } from '../support/wait.ts';

const DAY = 86_400_000;
const T0 = new Date('2027-03-01T06:00:00Z');
const at = (days: number, ms = 0) => new Date(T0.getTime() + days * DAY + ms);
const DEFAULTS: Pick<Config, 'DUNNING_RETRY_DAYS' | 'DUNNING_FINAL_ACTION'> = {
  DUNNING_RETRY_DAYS: [1, 3, 5, 7],
  DUNNING_FINAL_ACTION: 'SUSPEND',
};

/**
 * Scheduled charges (instalments), and dunning of failed automatic charges with subscriptions
 * (PRODUCT §5). The clock is simulated: each sweep is called with its `now`; the app's own
 * `invoice.charge` cron is stopped so only the test sweeps. Each scenario books in its own currency.
 */
describe('invoice.charge: scheduled charges and dunning', () => {
  let app: TestApp;
  /** Its gateway registry charges the invoice whose charge never gets an answer. */
  let hanging: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
    hanging = await startHangingWeb(app);
    await app.runtime.boss.unschedule(QUEUES.invoiceCharge);
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  afterEach(async () => {
    nock.cleanAll();
    // Each scenario sweeps alone: what an earlier one left scheduled is unscheduled.
    await app.runtime.db.updateTable('invoices').set({ charge_at: null }).execute();
  });
  afterAll(async () => {
    await hanging.stop();
    await stopOfflineTestApp(app);
  });

  // As the invoice.charge worker runs it: activities name the scheduler as their actor.
  const sweep = (now: Date, config = DEFAULTS, gateways: GatewayClients = app.runtime) =>
    chargeDueInvoices(app.runtime.db, 'scheduler', gateways, config, now);
  const invoice = async (id: string) => (await app.api('GET', `/v1/invoices/${id}`)).body;
  const subscriptionStatus = async (id: string) =>
    (
      await app.runtime.db
        .selectFrom('subscriptions')
        .select('status')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    ).status;
  /** Fakes one card decline; Stripe makes a new PaymentIntent (and charge) per attempt. */
  let declined = 0;
  const declines = () => {
    const body = stripeFixture('api.payment_intent.create.card_declined.error.json');
    declined += 1;
    body.error.payment_intent.id = `pi_declined_${declined}`;
    body.error.charge = `ch_declined_${declined}`;
    return nock(STRIPE_API_BASE).post('/v1/payment_intents').reply(402, body);
  };

  /** An OPEN invoice due at `chargeAt` (and, with `subscription`, billing that subscription). */
  async function dueInvoice(
    customerId: string,
    currency: string,
    amount: bigint,
    chargeAt: Date,
    o: { subscription?: string; taxRatePpm?: number; periodIndex?: number } = {},
  ) {
    const draft = await createInvoice(app.runtime.db, 'system', {
      customerId,
      currency,
      lines: [
        { description: 'Period', unitAmount: amount, quantity: 1, type: 'CHARGE', taxRatePpm: o.taxRatePpm },
      ],
      chargeAt,
      subscriptionId: o.subscription,
      periodIndex: o.subscription ? (o.periodIndex ?? 0) : undefined,
      billingReason: o.subscription ? 'subscription_cycle' : 'manual',
    });
    return (await finalizeInvoice(app.runtime.db, 'system', draft.id)).id;
  }

  /** A subscription row inserted directly (the subscriptions module writes them in production). */
  async function subscription(
    customerId: string,
    currency: string,
    status: SubscriptionStatus,
    paymentMethodId?: string,
    metered: unknown[] = [],
  ) {
    const db = app.runtime.db;
    const product = await db
      .insertInto('products')
      .values({ id: newId('prod'), name: 'Pro' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const plan = await db
      .insertInto('plans')
      .values({
        id: newId('plan'),
        product_id: product.id,
        name: 'Pro monthly',
        currency,
        interval: 'MONTH',
        price: JSON.stringify({ model: 'FLAT_FEE', amount: 2000 }),
        metered: JSON.stringify(metered),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const row = await db
      .insertInto('subscriptions')
      .values({
        id: newId('sub'),
        customer_id: customerId,
        plan_id: plan.id,
        payment_method_id: paymentMethodId ?? null,
        status,
        billing_anchor: at(-30),
        start_at: at(-30),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  }

  it('tells Stripe which kind of merchant-initiated charge each is: scheduled, subscription and dunning charges recurring, an operator charge of a one-off invoice one_off', async () => {
    const { customer } = await customerWith(app, { stripe: true });
    const sub = await subscription(customer.id, 'CHF', 'ACTIVE');
    const scheduled = await dueInvoice(customer.id, 'CHF', 1000n, at(0));
    const renewal = await dueInvoice(customer.id, 'CHF', 2000n, at(0), { subscription: sub });
    const oneOff = await dueInvoice(customer.id, 'CHF', 3000n, at(40));
    const renewalByHand = await dueInvoice(customer.id, 'CHF', 4000n, at(40), {
      subscription: sub,
      periodIndex: 1,
    });
    // The sweep charges the two due invoices (one declined, so dunning retries it a day later).
    declines();
    const { seen } = stripeChargeSucceeds();
    await sweep(at(0, 1000));
    const { seen: retried } = stripeChargeSucceeds();
    await sweep(at(1, 2000));
    // An operator charges the one-off invoice and the subscription's invoice by hand.
    const { seen: byHand } = stripeChargeSucceeds();
    const { seen: byHandRenewal } = stripeChargeSucceeds();
    for (const id of [oneOff, renewalByHand]) {
      expect((await app.api('POST', `/v1/invoices/${id}/charge`, {})).status).toBe(200);
    }
    const offSession = (requests: { params: URLSearchParams }[]) =>
      requests.map((r) => [r.params.get('amount'), r.params.get('off_session')]);
    expect([...offSession(seen), ...offSession(retried)].sort()).toEqual([
      ['1000', 'recurring'],
      ['2000', 'recurring'],
    ]);
    expect([...offSession(byHand), ...offSession(byHandRenewal)].sort()).toEqual([
      ['3000', 'one_off'],
      ['4000', 'recurring'],
    ]);
    expect((await invoice(scheduled)).status).toBe('PAID');
    expect((await invoice(renewal)).status).toBe('PAID');
  });

  it('charges a three-instalment plan as its dates come, once each, and only OPEN invoices', async () => {
    const { customer } = await customerWith(app, { stripe: true });
    const ids = [];
    for (const month of [0, 31, 59]) ids.push(await dueInvoice(customer.id, 'SEK', 3000n, at(month)));
    const draft = await createInvoice(app.runtime.db, 'system', {
      customerId: customer.id,
      currency: 'SEK',
      lines: [{ description: 'Not finalized', unitAmount: 100n, quantity: 1, type: 'CHARGE' }],
      chargeAt: at(-1),
    });

    expect((await sweep(at(-1))).charged).toEqual([]);
    const first = stripeChargeSucceeds();
    const jan = await sweep(at(0));
    expect(jan.charged).toEqual([expect.objectContaining({ invoiceId: ids[0], outcome: 'succeeded' })]);
    expect(first.seen).toHaveLength(1);
    expect(first.seen[0]?.idempotencyKey).toBe(jan.charged[0]?.transactionId);
    expect(await invoice(ids[0]!)).toMatchObject({ status: 'PAID', charge_at: null, amount_paid: 3000 });
    expect(await invoice(ids[1]!)).toMatchObject({ status: 'OPEN', charge_at: at(31).toISOString() });
    expect((await sweep(at(15))).charged).toEqual([]);

    stripeChargeSucceeds();
    expect((await sweep(at(31))).charged).toEqual([
      expect.objectContaining({ invoiceId: ids[1], outcome: 'succeeded' }),
    ]);
    stripeChargeSucceeds();
    expect((await sweep(at(60))).charged).toEqual([
      expect.objectContaining({ invoiceId: ids[2], outcome: 'succeeded' }),
    ]);
    expect((await sweep(at(90))).charged).toEqual([]);

    for (const id of ids) expect(await invoice(id)).toMatchObject({ status: 'PAID', payment_attempts: 0 });
    expect(await invoice(draft.id)).toMatchObject({ status: 'DRAFT' });
    const attempts = await app.runtime.db
      .selectFrom('transactions')
      .select(['invoice_id', 'automatic', 'status'])
      .where('invoice_id', 'in', ids)
      .execute();
    expect(attempts).toHaveLength(3);
    expect(attempts.every((t) => t.automatic && t.status === 'succeeded')).toBe(true);
    expect(await ledgerIn(app, 'SEK')).toEqual({
      'gateway_clearing:stripe': 9000,
      'receivable:customer': 0,
      revenue: -9000,
    });
  });

  it('charges KWD instalments of 10.000 KWD (3.340 + 3.330 + 3.330) to the fils, each at its date; the declined one is dunned while the next comes on its own date', async () => {
    const { customer } = await customerWith(app, { stripe: true });
    // 10000 fils split on Stripe's KWD step (the last digit 0): nothing lost, nothing rounded.
    const amounts = [3340n, 3330n, 3330n];
    const ids = [];
    for (const [i, amount] of amounts.entries())
      ids.push(await dueInvoice(customer.id, 'KWD', amount, at(i * 30)));
    for (const [i, id] of ids.entries())
      expect(await invoice(id)).toMatchObject({
        rounding: 0,
        total: Number(amounts[i]),
        amount_due: Number(amounts[i]),
      });
    expect(await ledgerIn(app, 'KWD')).toEqual({ 'receivable:customer': 10000, revenue: -10000 });

    const first = stripeChargeSucceeds();
    await sweep(at(0));
    expect(first.seen.map((r) => [r.params.get('amount'), r.params.get('currency')])).toEqual([
      ['3340', 'kwd'],
    ]);

    declines();
    const failed = await sweep(at(30));
    expect(failed.charged).toEqual([expect.objectContaining({ invoiceId: ids[1], outcome: 'failed' })]);
    // Dunned on its own schedule: day 1 after its first failure, not the plan's next instalment.
    expect(await invoice(ids[1]!)).toMatchObject({
      status: 'OPEN',
      payment_attempts: 1,
      amount_due: 3330,
      charge_at: at(31).toISOString(),
    });
    expect(await invoice(ids[2]!)).toMatchObject({ status: 'OPEN', charge_at: at(60).toISOString() });
    const retry = stripeChargeSucceeds();
    expect((await sweep(at(31))).charged).toEqual([
      expect.objectContaining({ invoiceId: ids[1], outcome: 'succeeded' }),
    ]);
    expect(retry.seen.map((r) => r.params.get('amount'))).toEqual(['3330']);
    const last = stripeChargeSucceeds();
    expect((await sweep(at(60))).charged).toEqual([
      expect.objectContaining({ invoiceId: ids[2], outcome: 'succeeded' }),
    ]);
    expect(last.seen.map((r) => r.params.get('amount'))).toEqual(['3330']);
    for (const id of ids)
      expect(await invoice(id)).toMatchObject({ status: 'PAID', amount_due: 0, charge_at: null });
    expect(await ledgerIn(app, 'KWD')).toEqual({
      'gateway_clearing:stripe': 10000,
      'receivable:customer': 0,
      revenue: -10000,
    });
  });

  it('never charges an invoice twice when two sweeps run at once', async () => {
    const { customer } = await customerWith(app, { stripe: true });
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(await dueInvoice(customer.id, 'NOK', 1000n + BigInt(i), at(100)));
    for (let i = 0; i < 6; i++) stripeChargeSucceeds();
    const [a, b] = await Promise.all([sweep(at(100)), sweep(at(100))]);
    const charged = [...a.charged, ...b.charged];
    expect(charged.map((c) => c.invoiceId).sort()).toEqual([...ids].sort());
    expect(charged.every((c) => c.outcome === 'succeeded')).toBe(true);
    const attempts = await app.runtime.db
      .selectFrom('transactions')
      .select('invoice_id')
      .where('invoice_id', 'in', ids)
      .execute();
    expect(attempts).toHaveLength(6);
    expect(await ledgerIn(app, 'NOK')).toMatchObject({
      'gateway_clearing:stripe': 6015,
      'receivable:customer': 0,
    });
  });

  it('charges a claimed invoice only while it still carries the claim: a reschedule in between wins', async () => {
    const { customer } = await customerWith(app, { stripe: true });
    const id = await dueInvoice(customer.id, 'HUF', 5000n, at(150));
    const claim = await claimDueInvoices(app.runtime.db, at(150));
    expect(claim).toEqual({ ids: [id], lease: new Date(at(150).getTime() + CLAIM_LEASE_MS) });
    expect(await invoice(id)).toMatchObject({ charge_at: claim.lease.toISOString() });
    // Nothing else is due meanwhile: a second sweep claims nothing.
    expect((await claimDueInvoices(app.runtime.db, at(150))).ids).toEqual([]);

    await app.api('POST', `/v1/invoices/${id}`, { charge_at: at(160).toISOString() });
    const stale = chargeInvoice(app.runtime.db, 'system', app.runtime, id, undefined, flagDuplicatePayment, {
      automatic: true,
      claimedChargeAt: claim.lease,
    });
    await expect(stale).rejects.toMatchObject({ code: 'charge_not_claimed' });
    const attempts = await app.runtime.db
      .selectFrom('transactions')
      .select('id')
      .where('invoice_id', '=', id)
      .execute();
    expect(attempts).toEqual([]);
    expect(await invoice(id)).toMatchObject({ status: 'OPEN', charge_at: at(160).toISOString() });
  });

  it('fails cleanly when the customer has no payment method: counted as an attempt, retried per dunning', async () => {
    const { customer } = await customerWith(app);
    const id = await dueInvoice(customer.id, 'DKK', 500n, at(0));
    const { charged } = await sweep(at(0));
    expect(charged).toEqual([
      expect.objectContaining({ invoiceId: id, outcome: 'failed', reason: 'payment_method_not_found' }),
    ]);
    expect(await invoice(id)).toMatchObject({
      status: 'OPEN',
      payment_attempts: 1,
      charge_at: at(1).toISOString(),
    });
    expect(await actionsOf(app, id)).toEqual([
      'invoice.created',
      'invoice.finalized',
      'invoice.payment_failed',
    ]);
  });

  it('recovers a failed renewal on the day-3 retry: PAST_DUE, then ACTIVE, books settled', async () => {
    const { customer } = await customerWith(app, { stripe: true });
    // The subscription pays with its own (non-default) payment method.
    const card = await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway: 'stripe',
      gateway_token: 'pm_subscription_card',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    const sub = await subscription(customer.id, 'USD', 'ACTIVE', card.body.id);
    // 2000 + 10% tax = 2200
    const id = await dueInvoice(customer.id, 'USD', 2000n, at(0), { subscription: sub, taxRatePpm: 100_000 });

    declines();
    expect((await sweep(at(0))).charged).toEqual([
      expect.objectContaining({ invoiceId: id, outcome: 'failed' }),
    ]);
    expect(await invoice(id)).toMatchObject({
      status: 'OPEN',
      payment_attempts: 1,
      charge_at: at(1).toISOString(),
      dunning_started_at: at(0).toISOString(),
    });
    expect(await subscriptionStatus(sub)).toBe('PAST_DUE');
    const attempts = await app.api('GET', `/v1/invoices/${id}?expand=transactions`);
    expect(attempts.body.transactions).toEqual([
      expect.objectContaining({ status: 'failed', automatic: true }),
    ]);

    declines();
    expect((await sweep(at(1))).charged).toEqual([
      expect.objectContaining({ invoiceId: id, outcome: 'failed' }),
    ]);
    expect(await invoice(id)).toMatchObject({ payment_attempts: 2, charge_at: at(3).toISOString() });
    expect((await sweep(at(2))).charged).toEqual([]);

    const { seen } = stripeChargeSucceeds();
    expect((await sweep(at(3))).charged).toEqual([
      expect.objectContaining({ invoiceId: id, outcome: 'succeeded' }),
    ]);
    expect(seen[0]?.params.get('payment_method')).toBe('pm_subscription_card');
    expect(await invoice(id)).toMatchObject({
      status: 'PAID',
      payment_attempts: 2,
      charge_at: null,
      amount_paid: 2200,
    });
    expect(await subscriptionStatus(sub)).toBe('ACTIVE');
    expect(await ledgerIn(app, 'USD')).toEqual({
      'gateway_clearing:stripe': 2200,
      'receivable:customer': 0,
      revenue: -2000,
      tax_payable: -200,
    });
    expect(await actionsOf(app, sub)).toEqual(['subscription.past_due', 'subscription.active']);
    expect(await actionsOf(app, id)).toEqual([
      'invoice.created',
      'invoice.finalized',
      'invoice.payment_failed',
      'invoice.payment_failed',
      'invoice.paid',
    ]);
    const log = await app.api('GET', `/v1/activities?resource=${id}`);
    expect(
      log.body.data
        .filter((a: { action: string }) => a.action === 'invoice.payment_failed')
        .map((a: { actor: string }) => a.actor),
    ).toEqual(['scheduler', 'scheduler']);
  });

  it('after all four retries fail, suspends the subscription (default) and keeps the invoice OPEN; paying reactivates it', async () => {
    const { customer } = await customerWith(app, { stripe: true });
    const sub = await subscription(customer.id, 'CAD', 'ACTIVE');
    const id = await dueInvoice(customer.id, 'CAD', 4000n, at(0), { subscription: sub });
    const expected = [at(1), at(3), at(5), at(7), null];
    for (const [i, day] of [0, 1, 3, 5, 7].entries()) {
      declines();
      const { charged } = await sweep(at(day));
      expect(charged).toEqual([expect.objectContaining({ invoiceId: id, outcome: 'failed' })]);
      expect(await invoice(id)).toMatchObject({
        status: 'OPEN',
        payment_attempts: i + 1,
        charge_at: expected[i]?.toISOString() ?? null,
      });
      expect(await subscriptionStatus(sub)).toBe(i < 4 ? 'PAST_DUE' : 'SUSPENDED');
    }
    expect((await sweep(at(60))).charged).toEqual([]);
    expect(await ledgerIn(app, 'CAD')).toEqual({ 'receivable:customer': 4000, revenue: -4000 });

    // The customer pays by bank transfer: the invoice is PAID and the suspension by dunning lifted.
    const paid = await app.api('POST', `/v1/invoices/${id}/payments`, { amount: 4000, method: 'BANK' });
    expect(paid.body.status).toBe('PAID');
    expect(await subscriptionStatus(sub)).toBe('ACTIVE');
    expect(await actionsOf(app, sub)).toEqual([
      'subscription.past_due',
      'subscription.suspended',
      'subscription.active',
    ]);
  });

  it("bills the period started by the last retry before suspending: a weekly plan's day-7 retry, seconds after week 1 starts, whichever sweep runs first", async () => {
    const db = app.runtime.db;
    const plan = await insertPlan(db, {
      currency: 'AUD',
      interval: 'WEEK',
      price: { model: 'FLAT_FEE', amount: 2000 },
    });
    // No payment method: each collection fails without an attempt. Week 0 starts at T0, its first
    // charge fails 30 s later, so the retries are due on days 1, 3, 5 and 7 at 30 s past: the last
    // one 30 s after week 1 starts, before the renewal sweep has renewed it.
    const { customer } = await customerWith(app);
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer.id, planId: plan },
      T0,
    );
    for (const day of [0, 1, 3, 5, 7]) await sweep(at(day, 30_000));
    expect(await subscriptionStatus(subscription.id)).toBe('SUSPENDED');
    // Week 1 is billed as the renewal sweep on time bills it (2000, due now), then suspended; the
    // sweep finds nothing more to bill. Before: never billed (the sweep finds it SUSPENDED).
    expect((await renewDueSubscriptions(db, 'scheduler', at(7, 60_000))).invoices).toBe(0);
    const invoices = await db
      .selectFrom('invoices')
      .select(['period_index', 'total', 'status', 'charge_at'])
      .where('subscription_id', '=', subscription.id)
      .orderBy('period_index')
      .execute();
    expect(invoices).toEqual([
      { period_index: 0, total: 2000n, status: 'OPEN', charge_at: null },
      { period_index: 1, total: 2000n, status: 'OPEN', charge_at: at(7, 30_000) },
    ]);
    expect(await actionsOf(app, subscription.id)).toEqual([
      'subscription.created',
      'subscription.renewed',
      'subscription.past_due',
      'subscription.renewed',
      'subscription.suspended',
    ]);
  });

  it("one failed attempt whose dunning step cannot be taken does not stop the sweep: the other customers' invoices are charged", async () => {
    const db = app.runtime.db;
    // SEK 700: its charge declines and its dunning step fails (the database refuses to mark it
    // counted, as a catch-up renewal that throws would), so it stays uncounted.
    const failing = await customerWith(app, { stripe: true });
    const stuck = await dueInvoice(failing.customer.id, 'SEK', 700n, at(0));
    await sql`CREATE OR REPLACE FUNCTION dunning_step_fails() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'dunning step fails'; END $$`.execute(db);
    await sql`CREATE TRIGGER dunning_step_fails BEFORE UPDATE OF dunning_counted_at ON transactions
      FOR EACH ROW WHEN (NEW.invoice_id = ${sql.lit(stuck)}) EXECUTE FUNCTION dunning_step_fails()`.execute(
      db,
    );
    try {
      declines();
      await sweep(at(0));
      // NOK 900 of another customer, due next: the next sweep first counts the late failures (the
      // SEK one fails again), then charges it. Before: the sweep threw there and charged nothing.
      const paying = await customerWith(app, { stripe: true });
      const other = await dueInvoice(paying.customer.id, 'NOK', 900n, at(0, 60_000));
      stripeChargeSucceeds();
      const { charged } = await sweep(at(0, 60_000));
      expect(charged).toEqual([expect.objectContaining({ invoiceId: other, outcome: 'succeeded' })]);
      expect(await invoice(other)).toMatchObject({ status: 'PAID', amount_paid: 900 });
      expect(await invoice(stuck)).toMatchObject({ status: 'OPEN', amount_paid: 0 });
    } finally {
      await sql`DROP TRIGGER dunning_step_fails ON transactions`.execute(db);
      // Counted by hand, so the scenarios after this one sweep their own attempts only.
      await db
        .updateTable('transactions')
        .set({ dunning_counted_at: at(0) })
        .where('invoice_id', '=', stuck)
        .execute();
    }
  });

  it('with DUNNING_FINAL_ACTION=CANCEL cancels after the last retry; a later payment does not revive it', async () => {
    const { customer } = await customerWith(app, { stripe: true });
    const calls = { code: 'calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 3 } };
    const sub = await subscription(customer.id, 'JPY', 'IN_TRIAL', undefined, [calls]);
    const id = await dueInvoice(customer.id, 'JPY', 900n, at(0), { subscription: sub });
    await recordUsageEvent(
      app.runtime.db,
      'system',
      { eventId: 'dunned-calls', subscriptionId: sub, code: 'calls', value: 7n, timestamp: at(1) },
      at(1),
    );
    const config = { DUNNING_RETRY_DAYS: [2], DUNNING_FINAL_ACTION: 'CANCEL' as const };
    declines();
    await sweep(at(0), config);
    expect(await subscriptionStatus(sub)).toBe('PAST_DUE');
    expect(await invoice(id)).toMatchObject({ payment_attempts: 1, charge_at: at(2).toISOString() });
    declines();
    await sweep(at(2), config);
    expect(await subscriptionStatus(sub)).toBe('CANCELLED');
    expect(await invoice(id)).toMatchObject({ status: 'OPEN', payment_attempts: 2, charge_at: null });
    // Cancelling ends it: the usage not billed yet (7 calls × 3 = 21 JPY) is on a final invoice.
    const final = await app.runtime.db
      .selectFrom('invoices')
      .select(['total', 'billing_reason', 'status'])
      .where('subscription_id', '=', sub)
      .where('id', '!=', id)
      .execute();
    expect(final).toEqual([{ total: 21n, billing_reason: 'subscription_update', status: 'OPEN' }]);

    await app.api('POST', `/v1/invoices/${id}/payments`, { amount: 900, method: 'BANK' });
    expect((await invoice(id)).status).toBe('PAID');
    expect(await subscriptionStatus(sub)).toBe('CANCELLED');
  });

  it('does not reactivate a subscription a person suspended when its invoice is paid', async () => {
    const { customer } = await customerWith(app);
    const sub = await subscription(customer.id, 'PLN', 'SUSPENDED');
    const id = await dueInvoice(customer.id, 'PLN', 700n, at(400), { subscription: sub });
    await app.api('POST', `/v1/invoices/${id}/payments`, { amount: 700, method: 'CASH' });
    expect((await invoice(id)).status).toBe('PAID');
    expect(await subscriptionStatus(sub)).toBe('SUSPENDED');
  });

  it('does not take a reason a person gave ("dunning") for dunning\'s own: paying leaves it SUSPENDED', async () => {
    const { customer } = await customerWith(app);
    const sub = await subscription(customer.id, 'PLN', 'ACTIVE');
    const suspended = await app.api('POST', `/v1/subscriptions/${sub}/suspend`, {
      suspend_reason: 'dunning',
    });
    expect(suspended.body).toMatchObject({ status: 'SUSPENDED', suspend_reason: 'dunning' });
    const id = await dueInvoice(customer.id, 'PLN', 700n, at(400), { subscription: sub });
    await app.api('POST', `/v1/invoices/${id}/payments`, { amount: 700, method: 'CASH' });
    expect((await invoice(id)).status).toBe('PAID');
    expect(await subscriptionStatus(sub)).toBe('SUSPENDED');
  });

  it('clears the suspend reason when a payment reinstates a subscription dunning suspended', async () => {
    const { customer } = await customerWith(app);
    const sub = await subscription(customer.id, 'PLN', 'ACTIVE');
    const id = await dueInvoice(customer.id, 'PLN', 500n, at(0), { subscription: sub });
    const config = { DUNNING_RETRY_DAYS: [2], DUNNING_FINAL_ACTION: 'SUSPEND' as const };
    await sweep(at(0), config); // no payment method: a failed attempt, PAST_DUE
    await sweep(at(2), config); // the last retry fails: SUSPENDED by dunning
    expect(await subscriptionStatus(sub)).toBe('SUSPENDED');
    await app.api('POST', `/v1/invoices/${id}/payments`, { amount: 500, method: 'BANK' });
    const row = await app.runtime.db
      .selectFrom('subscriptions')
      .select(['status', 'suspend_reason', 'suspended_at'])
      .where('id', '=', sub)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'ACTIVE', suspend_reason: null, suspended_at: null });
  });

  it('keeps a PAST_DUE subscription PAST_DUE while another of its invoices is still overdue', async () => {
    const { customer } = await customerWith(app);
    const sub = await subscription(customer.id, 'CZK', 'ACTIVE');
    const one = await dueInvoice(customer.id, 'CZK', 100n, at(0), { subscription: sub, periodIndex: 0 });
    const two = await dueInvoice(customer.id, 'CZK', 100n, at(0), { subscription: sub, periodIndex: 1 });
    await sweep(at(0)); // no payment method: both fail
    expect(await subscriptionStatus(sub)).toBe('PAST_DUE');
    await app.api('POST', `/v1/invoices/${one}/payments`, { amount: 100, method: 'BANK' });
    expect(await subscriptionStatus(sub)).toBe('PAST_DUE');
    await app.api('POST', `/v1/invoices/${two}/payments`, { amount: 100, method: 'BANK' });
    expect(await subscriptionStatus(sub)).toBe('ACTIVE');
  });

  it('enters dunning when an unknown automatic charge is later reported failed by a webhook', async () => {
    const { customer } = await customerWith(app, { stripe: true });
    const sub = await subscription(customer.id, 'USD', 'ACTIVE');
    // The payment_failed fixture is USD 118.80.
    const id = await dueInvoice(customer.id, 'USD', 11880n, at(200), { subscription: sub });
    nock(STRIPE_API_BASE).post('/v1/payment_intents').delay(NO_ANSWER_DELAY_MS).reply(200, {});
    const { charged } = await sweep(at(200), DEFAULTS, hanging.runtime);
    nock.abortPendingRequests();
    expect(charged).toEqual([expect.objectContaining({ invoiceId: id, outcome: 'unknown' })]);
    // Nothing is scheduled while the gateway has the outcome (a pending payment may take days).
    expect(await invoice(id)).toMatchObject({ payment_attempts: 0, charge_at: null });
    expect(await subscriptionStatus(sub)).toBe('ACTIVE');
    // Not charged again while the outcome is open.
    expect((await sweep(at(200, 5 * 60_000))).charged).toEqual([]);

    const event = stripeFixture('webhook.payment_intent.payment_failed.json');
    event.id = 'evt_late_failure_of_renewal';
    event.data.object.metadata = { billhook_reference: charged[0]?.transactionId };
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    await waitFor('the attempt to be failed', async () => {
      const row = await app.runtime.db
        .selectFrom('transactions')
        .select('status')
        .where('id', '=', charged[0]!.transactionId!)
        .executeTakeFirstOrThrow();
      return row.status === 'failed';
    });

    const noticed = at(200, 6 * 60_000);
    const next = await sweep(noticed);
    expect(next.lateFailures).toEqual([
      expect.objectContaining({
        invoiceId: id,
        attempts: 1,
        nextChargeAt: new Date(noticed.getTime() + DAY),
      }),
    ]);
    expect(next.charged).toEqual([]);
    expect(await invoice(id)).toMatchObject({ status: 'OPEN', payment_attempts: 1 });
    expect(await subscriptionStatus(sub)).toBe('PAST_DUE');
    // Counted once only.
    expect((await sweep(noticed)).lateFailures).toEqual([]);
    const failures = (await actionsOf(app, id)).filter((a) => a === 'invoice.payment_failed');
    expect(failures).toHaveLength(1);
  });
});

describe('the invoice.charge queue', () => {
  it('runs the sweep as a pg-boss job: an invoice due now is charged by the worker', async () => {
    const app = await startOfflineTestApp();
    try {
      const { customer } = await customerWith(app, { stripe: true });
      const draft = await app.api('POST', '/v1/invoices', {
        customer: customer.id,
        currency: 'EUR',
        lines: [{ description: 'Scheduled payment', amount: 1234 }],
        charge_at: new Date(Date.now() - 1000).toISOString(),
      });
      await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
      stripeChargeSucceeds();
      await app.runtime.boss.send(QUEUES.invoiceCharge, {});
      wakeWorkers(app.runtime.boss, QUEUES.invoiceCharge);
      await waitFor('the worker to charge the invoice', async () => {
        const read = await app.api('GET', `/v1/invoices/${draft.body.id}`);
        return read.body.status === 'PAID';
      });
      const log = await app.api('GET', `/v1/activities?resource=${draft.body.id}`);
      expect(log.body.data.at(-1)).toMatchObject({ action: 'invoice.paid', actor: 'scheduler' });
    } finally {
      await stopOfflineTestApp(app);
      nock.cleanAll();
    }
  });
});
