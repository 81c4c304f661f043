import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, ledgerIn } from '../support/collection.ts';
import { insertPlan } from '../support/plans.ts';

const DAY = 86_400_000;
const MINUTE = 60_000;
/** Dunning: one retry two days after the first failure; the second failure suspends. */
const DUNNING = { DUNNING_RETRY_DAYS: [2], DUNNING_FINAL_ACTION: 'SUSPEND' as const };

/**
 * A subscription's invoice owed again because the offline payment that paid it was reversed (a
 * bounced cheque) is collected again: back on the charge schedule at the reversal, so the charge
 * sweep charges it and dunning goes on from the attempts it had, as for any unpaid invoice.
 */
describe('a bounced cheque of a subscription invoice', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  afterAll(() => app.stop());

  const subscriptionOf = (id: string) =>
    app.runtime.db
      .selectFrom('subscriptions')
      .select(['status', 'suspended_at'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
  const invoiceRow = (id: string) =>
    app.runtime.db
      .selectFrom('invoices')
      .select(['status', 'amount_due', 'charge_at', 'payment_attempts'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();

  it('that reinstated it after dunning suspended it: the invoice is charged again and the subscription SUSPENDED again (was: ACTIVE for good, 1000 SEK owed and never collected)', async () => {
    const db = app.runtime.db;
    const gateways = { registry: app.runtime.registry, accounts: app.runtime.accounts };
    // 1000 SEK a month from 100 days ago, a customer without a card: period 0's charge fails at
    // once (PAST_DUE) and its one retry two days later (SUSPENDED).
    const start = new Date(Date.now() - 100 * DAY);
    const at = (days: number, minutes = 0) => new Date(start.getTime() + days * DAY + minutes * MINUTE);
    const plan = await insertPlan(db, { currency: 'SEK', price: { model: 'FLAT_FEE', amount: 1000 } });
    const { customer } = await customerWith(app);
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer.id, planId: plan, startAt: start },
      start,
    );
    await chargeDueInvoices(db, 'scheduler', gateways, DUNNING, at(0, 10));
    await chargeDueInvoices(db, 'scheduler', gateways, DUNNING, at(2, 10));
    expect(await subscriptionOf(subscription.id)).toMatchObject({ status: 'SUSPENDED' });
    const invoice = await db
      .selectFrom('invoices')
      .select('id')
      .where('subscription_id', '=', subscription.id)
      .executeTakeFirstOrThrow();
    expect(await invoiceRow(invoice.id)).toMatchObject({ charge_at: null, payment_attempts: 2 });

    // Paid by cheque: PAID, and the subscription ACTIVE again.
    const paid = await app.api('POST', `/v1/invoices/${invoice.id}/payments`, {
      method: 'CHECK',
      amount: 1000,
      reference: 'cheque 0042',
    });
    expect([paid.status, paid.body.status]).toEqual([201, 'PAID']);
    expect(await subscriptionOf(subscription.id)).toMatchObject({ status: 'ACTIVE', suspended_at: null });
    const [cheque] = (await app.api('GET', `/v1/transactions?invoice=${invoice.id}&type=offline`)).body.data;

    // The cheque bounces: 1000 owed again, and back on the charge schedule at once.
    const before = Date.now();
    const reversed = await app.api('POST', `/v1/invoices/${invoice.id}/payments/${cheque.id}/reverse`, {
      reason: 'cheque returned unpaid',
    });
    expect([reversed.status, reversed.body.status, reversed.body.amount_due]).toEqual([200, 'OPEN', 1000]);
    const owed = await invoiceRow(invoice.id);
    expect(owed).toMatchObject({ status: 'OPEN', amount_due: 1000n, payment_attempts: 2 });
    expect(owed.charge_at?.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(owed.charge_at?.getTime()).toBeLessThanOrEqual(Date.now());

    // The sweep charges it: no card, fails, its retries used up: SUSPENDED again, still owed.
    await chargeDueInvoices(db, 'scheduler', gateways, DUNNING, new Date());
    expect(await invoiceRow(invoice.id)).toMatchObject({
      status: 'OPEN',
      amount_due: 1000n,
      charge_at: null,
      payment_attempts: 3,
    });
    expect(await subscriptionOf(subscription.id)).toMatchObject({ status: 'SUSPENDED' });
    // Suspended, the period it was reinstated into (period 3) is billed as a suspension bills it:
    // 1000 of period 0 and 1000 of period 3 owed.
    const invoices = await db
      .selectFrom('invoices')
      .select(['period_index', 'status', 'amount_due'])
      .where('subscription_id', '=', subscription.id)
      .orderBy('period_index')
      .execute();
    expect(invoices.map((i) => [i.period_index, i.status, i.amount_due])).toEqual([
      [0, 'OPEN', 1000n],
      [3, 'OPEN', 1000n],
    ]);
    expect((await ledgerIn(app, 'SEK'))['receivable:customer']).toBe(2000);
  }, 120_000);
});
