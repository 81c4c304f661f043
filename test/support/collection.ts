import { expect } from 'vitest';
import { recordOfflinePayment } from '../../src/billing/invoices.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import type { TestApp } from './app.ts';
import { ledgerByCode, stripeChargeSucceeds } from './flow.ts';
import { insertPlan } from './plans.ts';

/**
 * `ledgerByCode` restricted to one currency, keys without the currency: tests that give each
 * scenario its own currency (one customer per currency) read their own books in a shared app.
 */
export async function ledgerIn(app: TestApp, currency: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [key, balance] of Object.entries(await ledgerByCode(app))) {
    const [code, cur] = key.split(' ');
    if (cur === currency) out[code!] = balance;
  }
  return out;
}

/** Creates a customer over the API, optionally with a Stripe payment method (the fixture's ids). */
export async function customerWith(app: TestApp, o: { stripe?: boolean } = {}) {
  const customer = await app.api('POST', '/v1/customers', { email: 'grace@example.com' });
  expect(customer.status).toBe(201);
  if (o.stripe) {
    const method = await app.api('POST', '/v1/payment-methods', {
      customer: customer.body.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    expect(method.status).toBe(201);
    return { customer: customer.body, method: method.body };
  }
  return { customer: customer.body, method: undefined };
}

/** The actions logged for one resource, in order. */
export async function actionsOf(app: TestApp, resource: string): Promise<string[]> {
  const log = await app.api('GET', `/v1/activities?resource=${resource}&limit=100`);
  return log.body.data.map((a: { action: string }) => a.action);
}

/**
 * Subscribes `customer` to `plan` with the Stripe payment method `method`, from `start` (through the
 * billing module, on a simulated clock) or now (over the API), and pays its first invoice whole by
 * the card (`POST /v1/subscriptions/:id/settle`, Stripe answering as `stripeChargeSucceeds`).
 * @returns the subscription's id and its first invoice
 */
export async function subscribedAndPaid(
  app: TestApp,
  o: { customer: string; plan: string; method: string; start?: Date },
): Promise<{ id: string; invoice: { id: string } }> {
  const sub = o.start
    ? (
        await createSubscription(
          app.runtime.db,
          'system',
          { customerId: o.customer, planId: o.plan, paymentMethodId: o.method },
          o.start,
        )
      ).subscription
    : (
        await app.api('POST', '/v1/subscriptions', {
          customer: o.customer,
          plan: o.plan,
          payment_method: o.method,
        })
      ).body;
  const stripe = stripeChargeSucceeds();
  const settled = await app.api('POST', `/v1/subscriptions/${sub.id}/settle`);
  expect(stripe.scope.isDone()).toBe(true);
  return { id: sub.id, invoice: settled.body.invoices[0].invoice };
}

/** A FLAT_FEE plan `Flat <amount>` of `amount` minor units in `currency` at 25% tax; its id. */
export function flatPlan(app: TestApp, currency: string, amount: number): Promise<string> {
  return insertPlan(app.runtime.db, {
    name: `Flat ${amount}`,
    currency,
    price: { model: 'FLAT_FEE', amount },
    taxRatePpm: 250_000,
  });
}

/**
 * Gives `customer` customer credit as customers get it, from a downgrade: a subscription from Feb 1
 * 2027 to a `flatPlan` of `big` in `currency`, its February invoice (big + 25%) paid by bank transfer
 * (`payOpenOffline`: over an unpaid invoice the credit would lower what it owes instead), changed on
 * Feb 22 2027 (7 of February's 28 days left) to one of 1000 (`changeSubscription`, not a preview):
 * (big − 1000) × 7/28 net + 25% tax of credit.
 */
export async function downgradeCredit(app: TestApp, customer: string, currency: string, big: number) {
  const db = app.runtime.db;
  const [from, to] = [await flatPlan(app, currency, big), await flatPlan(app, currency, 1000)];
  const { subscription } = await createSubscription(
    db,
    'system',
    { customerId: customer, planId: from },
    new Date('2027-02-01T00:00:00Z'),
  );
  await payOpenOffline(db, subscription.id);
  await changeSubscription(
    db,
    'system',
    subscription.id,
    { planId: to },
    new Date('2027-02-22T00:00:00Z'),
    false,
  );
}

/**
 * Pays subscription `subscriptionId`'s OPEN invoices whole by bank transfer (offline payments of what
 * each has due), for tests of a downgrade's customer credit: over an unpaid period invoice the credit
 * lowers what that invoice still owes instead (billing/proration.ts `creditOwedPeriod`).
 * @returns the invoices paid (id and amount), oldest first
 */
export async function payOpenOffline(
  db: Db,
  subscriptionId: string,
): Promise<{ id: string; amount: bigint }[]> {
  const open = await db
    .selectFrom('invoices')
    .select(['id', 'amount_due'])
    .where('subscription_id', '=', subscriptionId)
    .where('status', '=', 'OPEN')
    // Oldest first: ids made in one millisecond sort at random, numbers in the order finalized.
    .orderBy('created_at')
    .orderBy('number')
    .execute();
  for (const invoice of open) {
    await recordOfflinePayment(db, 'system', invoice.id, { method: 'BANK', amount: invoice.amount_due });
  }
  return open.map((i) => ({ id: i.id, amount: i.amount_due }));
}
