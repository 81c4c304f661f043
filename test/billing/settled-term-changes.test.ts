import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CancelOptions } from '../../src/billing/cancellation.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { lockSubscription, renewSubscription } from '../../src/billing/renewal.ts';
import {
  addSubscriptionCoupon,
  createSubscription,
  reactivateSubscription,
  suspendSubscription,
} from '../../src/billing/subscriptions.ts';
import { invoiceRemainingCycles } from '../../src/billing/terms.ts';
import { changeTrial } from '../../src/billing/trials.ts';
import { newId } from '../../src/db/ids.ts';
import { ConflictError } from '../../src/errors.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, downgradeCredit, flatPlan, ledgerIn } from '../support/collection.ts';
import { insertPlan } from '../support/plans.ts';

const d = (iso: string) => new Date(iso);

/**
 * A settled term (terms.ts: the later periods of a fixed term invoiced ahead) after a cancellation or
 * a plan or quantity change: the periods after the end are not left owed (their unpaid invoices are
 * voided), and a change is refused while periods are invoiced ahead at the old price.
 */
describe('settled terms: cancellations void the periods invoiced ahead, changes are refused', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());
  const db = () => app.runtime.db;
  const gateways = () => ({ registry: app.runtime.registry, accounts: app.runtime.accounts });
  const creditOf = async (customer: string) =>
    (await app.api('GET', `/v1/customers/${customer}`)).body.credit;

  /**
   * A customer (no card) subscribed from March 1st 2027 to `plan` for a 3-month term, settled on
   * March 1st at 00:05: March invoiced at creation, April and May by settle, each charged from then
   * (`charge_at`) and, with no card, left OPEN.
   */
  async function settledTerm(plan: string, customer?: string) {
    const { id, customer: customerId } = await subscribed(plan, customer);
    expect((await settle(id)).map((i) => i.period_index)).toEqual([1, 2]);
    return { id, customer: customerId };
  }

  /** A customer (no card, unless given) subscribed from March 1st 2027 to `plan` for a 3-month term, not settled. */
  async function subscribed(plan: string, customer?: string, trialDays?: number) {
    const customerId = customer ?? (await customerWith(app)).customer.id;
    const start = d('2027-03-01T00:00:00Z');
    const { subscription } = await createSubscription(
      db(),
      'system',
      { customerId, planId: plan, startAt: start, repeat: 3, ...(trialDays ? { trialDays } : {}) },
      start,
    );
    return { id: subscription.id, customer: customerId };
  }

  /** Settles subscription `id` on March 1st 2027 at 00:05: the invoices it made. */
  async function settle(id: string) {
    const settled = await inUnitOfWork(db(), { actor: 'system' }, async (work) =>
      invoiceRemainingCycles(work, (await lockSubscription(work, id))!, d('2027-03-01T00:05:00Z')),
    );
    return settled.invoices;
  }

  /** The subscription's period invoices, by period: what is owed of each and when it is charged. */
  const periods = (id: string) =>
    db()
      .selectFrom('invoices')
      .select([
        'id',
        'period_index',
        'status',
        'total',
        'credit_applied',
        'amount_due',
        'charge_at',
        'payment_attempts',
      ])
      .where('subscription_id', '=', id)
      .where('period_index', 'is not', null)
      .orderBy('period_index')
      .execute();

  const cancel = (id: string, options: CancelOptions, now: Date) =>
    cancelSubscriptionWithRefund(db(), 'system', app.runtime.boss, gateways(), id, options, now);

  const statusOf = async (id: string) =>
    (await db().selectFrom('subscriptions').select('status').where('id', '=', id).executeTakeFirst())?.status;

  /** The data of the last activity `action` of subscription `id`. */
  const activityData = async (id: string, action: string) =>
    (await app.api('GET', `/v1/activities?resource=${id}&limit=100`)).body.data.find(
      (a: { action: string }) => a.action === action,
    )?.data;

  it('cancelling now voids the unpaid invoices of the later periods: nothing owed or scheduled for them, the receivable reversed', async () => {
    // 1000 a month, no tax. Owed after settle: March, April, May = 3000.
    const plan = await insertPlan(db(), { currency: 'HUF', price: { model: 'FLAT_FEE', amount: 1000 } });
    const { id } = await settledTerm(plan);
    expect(await ledgerIn(app, 'HUF')).toEqual({ 'receivable:customer': 3000, revenue: -3000 });
    const [march, april, may] = await periods(id);
    expect(april).toMatchObject({ status: 'OPEN', amount_due: 1000n, charge_at: d('2027-03-01T00:05:00Z') });

    // March 10th: cancel now, no refund. April and May will never be served.
    const result = await cancel(id, { when: 'now', refundType: 'none' }, d('2027-03-10T00:00:00Z'));
    expect(result.subscription.status).toBe('CANCELLED');
    expect(await periods(id)).toEqual([
      { ...march, status: 'OPEN', amount_due: 1000n },
      { ...april, status: 'VOID', amount_due: 0n, charge_at: null },
      { ...may, status: 'VOID', amount_due: 0n, charge_at: null },
    ]);
    // March's 1000 (served, in part) is still owed; April's and May's finalizations are reversed.
    expect(await ledgerIn(app, 'HUF')).toEqual({ 'receivable:customer': 1000, revenue: -1000 });
    expect(await activityData(id, 'subscription.cancelled')).toMatchObject({
      voided_invoices: [april!.id, may!.id],
    });
    expect(await activityData(april!.id, 'invoice.voided')).toMatchObject({
      from: 'OPEN',
      reason: 'subscription_cancelled',
    });
  });

  it('a cancellation at period end or at a date voids, when scheduled, the unpaid invoices of the periods starting at or after it', async () => {
    const plan = await insertPlan(db(), { currency: 'MXN', price: { model: 'FLAT_FEE', amount: 1000 } });
    // At period end (April 1st): April and May are voided; the renewal then cancels, invoicing nothing.
    const atEnd = await settledTerm(plan);
    const [march, april, may] = await periods(atEnd.id);
    await cancel(atEnd.id, { when: 'period_end', refundType: 'none' }, d('2027-03-10T00:00:00Z'));
    expect((await periods(atEnd.id)).map((i) => [i.status, i.amount_due, i.charge_at])).toEqual([
      ['OPEN', 1000n, march!.charge_at],
      ['VOID', 0n, null],
      ['VOID', 0n, null],
    ]);
    expect(await activityData(atEnd.id, 'subscription.cancellation_scheduled')).toMatchObject({
      voided_invoices: [april!.id, may!.id],
    });
    const renewed = await renewSubscription(db(), 'system', atEnd.id, d('2027-04-01T00:05:00Z'));
    expect(renewed?.invoices).toEqual([]);
    expect(renewed?.subscription.status).toBe('CANCELLED');
    expect(await ledgerIn(app, 'MXN')).toEqual({ 'receivable:customer': 1000, revenue: -1000 });

    // At a date inside April (April 15th): April starts before it and is billed whole, as the renewal
    // bills the periods starting before a cancel_at; May (from May 1st) is voided.
    const atDate = await settledTerm(plan);
    await cancel(
      atDate.id,
      { when: 'date', cancelAt: d('2027-04-15T00:00:00Z'), refundType: 'none' },
      d('2027-03-10T00:00:00Z'),
    );
    expect((await periods(atDate.id)).map((i) => [i.period_index, i.status, i.amount_due])).toEqual([
      [0, 'OPEN', 1000n],
      [1, 'OPEN', 1000n],
      [2, 'VOID', 0n],
    ]);
    await renewSubscription(db(), 'system', atDate.id, d('2027-04-15T00:00:00Z'));
    expect(
      (await db().selectFrom('subscriptions').select('status').where('id', '=', atDate.id).executeTakeFirst())
        ?.status,
    ).toBe('CANCELLED');
    // Both customers: March (both), April (the second) = 3000 owed.
    expect(await ledgerIn(app, 'MXN')).toEqual({ 'receivable:customer': 3000, revenue: -3000 });
  });

  it('cancelling now with a refund voids a later period paid in part by credit, giving that credit back, where it refused before', async () => {
    // Credit: (5800 − 1000) × 7/28 = 1200 net + 25% = 1500 (PEN). A term of 800 + 25% = 1000 a month:
    // March is paid by 1000 of it at creation; settle applies the last 500 to April (500 due), May 1000 due.
    const { customer } = await customerWith(app);
    await downgradeCredit(app, customer.id, 'PEN', 5800);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'PEN', amount: 1500 }]);
    const { id } = await settledTerm(await flatPlan(app, 'PEN', 800), customer.id);
    expect((await periods(id)).map((i) => [i.status, i.credit_applied, i.amount_due])).toEqual([
      ['PAID', 1000n, 0n],
      ['OPEN', 500n, 500n],
      ['OPEN', 0n, 1000n],
    ]);
    expect(await creditOf(customer.id)).toEqual([]);
    const before = await ledgerIn(app, 'PEN');

    // March 15th: cancel now, refund full. March's 1000 of credit comes back as credit (its refund);
    // April's 500 comes back with its void; April's 500 and May's 1000 are no longer owed.
    const result = await cancel(id, { when: 'now', refundType: 'full' }, d('2027-03-15T00:00:00Z'));
    expect(result.refunds).toEqual([]);
    expect(result.creditNotes).toMatchObject([{ total: 1000n }]);
    expect((await periods(id)).map((i) => [i.status, i.amount_due, i.charge_at])).toEqual([
      ['REFUNDED', 0n, null],
      ['VOID', 0n, null],
      ['VOID', 0n, null],
    ]);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'PEN', amount: 1500 }]);
    // Voids: revenue +800 +800, tax +200 +200, receivable −1000 −1000 + 500 (April's credit back),
    // credit −500; the refund of March's credit: refunds +800, tax +200, credit −1000.
    const after = await ledgerIn(app, 'PEN');
    const moved = Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - (before[k] ?? 0)]));
    expect(moved).toEqual({
      'receivable:customer': -1500,
      'customer_credit:customer': -1500,
      revenue: 1600,
      tax_payable: 600,
      refunds: 800,
      // The downgrade's period was paid by bank transfer before (`downgradeCredit`): unmoved.
      offline_receipts: 0,
    });
  });

  it('a later period with a charge in flight cannot be voided: the cancellation is refused (409), changing nothing', async () => {
    const plan = await insertPlan(db(), { currency: 'ISK', price: { model: 'FLAT_FEE', amount: 1000 } });
    const { id, customer } = await settledTerm(plan);
    const [, april, may] = await periods(id);
    // May's charge was sent and has no answer yet: it may still take the money.
    await db()
      .insertInto('transactions')
      .values({
        id: newId('txn'),
        invoice_id: may!.id,
        customer_id: customer,
        gateway: 'stripe',
        amount: 1000n,
        currency: 'ISK',
        status: 'pending',
      })
      .execute();
    const before = await ledgerIn(app, 'ISK');
    const refused = await cancel(id, { when: 'now', refundType: 'none' }, d('2027-03-10T00:00:00Z')).catch(
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(ConflictError);
    expect(refused).toMatchObject({ status: 409, code: 'later_period_not_voidable' });
    expect((refused as Error).message).toContain(may!.id);
    expect((await periods(id)).map((i) => [i.id, i.status, i.amount_due])).toEqual([
      [expect.any(String), 'OPEN', 1000n],
      [april!.id, 'OPEN', 1000n],
      [may!.id, 'OPEN', 1000n],
    ]);
    expect(
      (await db().selectFrom('subscriptions').select('status').where('id', '=', id).executeTakeFirst())
        ?.status,
    ).toBe('ACTIVE');
    expect(await ledgerIn(app, 'ISK')).toEqual(before);
  });

  it('a later period paid is kept; one paid in part refuses the cancellation (409) until paid whole', async () => {
    const plan = await insertPlan(db(), { currency: 'NZD', price: { model: 'FLAT_FEE', amount: 1000 } });
    const { id } = await settledTerm(plan);
    const [march, april, may] = await periods(id);
    const pay = async (invoice: string, amount: number) =>
      expect(
        (await app.api('POST', `/v1/invoices/${invoice}/payments`, { method: 'BANK', amount })).status,
      ).toBe(201);
    // April paid whole by bank transfer; May 400 of 1000.
    await pay(april!.id, 1000);
    await pay(may!.id, 400);
    const before = await ledgerIn(app, 'NZD');
    const now = { when: 'now', refundType: 'none' } as const;
    const refused = await cancel(id, now, d('2027-03-10T00:00:00Z')).catch((error: unknown) => error);
    expect(refused).toMatchObject({ status: 409, code: 'later_period_not_voidable' });
    expect((refused as Error).message).toContain(may!.id);
    expect(await ledgerIn(app, 'NZD')).toEqual(before);
    // May's other 600 paid: both later periods are paid, kept as they are (refund them by hand).
    await pay(may!.id, 600);
    const paid = await ledgerIn(app, 'NZD');
    const result = await cancel(id, now, d('2027-03-10T00:00:00Z'));
    expect(result.subscription.status).toBe('CANCELLED');
    expect((await periods(id)).map((i) => [i.id, i.status, i.amount_due])).toEqual([
      [march!.id, 'OPEN', 1000n],
      [april!.id, 'PAID', 0n],
      [may!.id, 'PAID', 0n],
    ]);
    expect(await ledgerIn(app, 'NZD')).toEqual(paid);
    expect(await activityData(id, 'subscription.cancelled')).toMatchObject({ voided_invoices: [] });
  });

  it('a plan change (next cycle or now, previewed too) is refused while periods are invoiced ahead; allowed once the last has started', async () => {
    // X 1000 a month, Y 3000, no tax.
    const x = await insertPlan(db(), { currency: 'CZK', price: { model: 'FLAT_FEE', amount: 1000 } });
    const y = await insertPlan(db(), { currency: 'CZK', price: { model: 'FLAT_FEE', amount: 3000 } });
    const { id } = await settledTerm(x);
    const [, april, may] = await periods(id);
    const change = (input: Parameters<typeof changeSubscription>[3], now: string, preview = false) =>
      changeSubscription(db(), 'system', id, input, d(now), preview);
    // April and May are billed 1000 each: a change to Y would leave them so (3000 instead of 7000).
    for (const [input, preview] of [
      [{ planId: y, when: 'next_cycle' }, false],
      [{ planId: y }, false],
      [{ quantity: 2, proration: 'none' }, false],
      [{ planId: y }, true],
    ] as const) {
      const refused = await change(input, '2027-03-10T00:00:00Z', preview).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ConflictError);
      expect(refused).toMatchObject({ status: 409, code: 'periods_invoiced_ahead' });
      expect((refused as Error).message).toContain(`${april!.id}, ${may!.id}`);
    }
    const unchanged = await db()
      .selectFrom('subscriptions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    expect(unchanged).toMatchObject({ plan_id: x, quantity: 1, scheduled_plan_id: null });
    // The renewals invoice nothing more: 1000 × 3, as settled.
    expect((await renewSubscription(db(), 'system', id, d('2027-05-01T00:05:00Z')))?.invoices).toEqual([]);
    expect((await periods(id)).map((i) => [i.status, i.total])).toEqual([
      ['OPEN', 1000n],
      ['OPEN', 1000n],
      ['OPEN', 1000n],
    ]);
    // May (the last period) has started: nothing is invoiced ahead. May 17th, 15 of its 31 days left:
    // credit prorate(1000, 15/31) = 484 (483.87), charge prorate(3000, 15/31) = 1452 (1451.6): 968.
    const allowed = await change({ planId: y }, '2027-05-17T00:00:00Z');
    expect(allowed.proration.subtotal).toBe(968n);
    expect(allowed.invoice).toMatchObject({ status: 'OPEN', total: 968n });
    expect(await ledgerIn(app, 'CZK')).toEqual({ 'receivable:customer': 3968, revenue: -3968 });
  });

  it('over HTTP: a change or an add-on of a settled term is 409 periods_invoiced_ahead naming the invoices; cancelling now voids them', async () => {
    const product = (await app.api('POST', '/v1/products', { name: 'Term' })).body.id;
    const plan = async (amount: number) =>
      (
        await app.api('POST', '/v1/plans', {
          product,
          name: `Term ${amount}`,
          currency: 'SEK',
          interval: 'MONTH',
          price: { model: 'FLAT_FEE', amount },
          repeat: 3,
        })
      ).body.id;
    const [small, big] = [await plan(1000), await plan(3000)];
    const { customer } = await customerWith(app);
    const sub = (await app.api('POST', '/v1/subscriptions', { customer: customer.id, plan: small })).body;
    // No card: settle invoices April and May (their charges fail and are reported) and leaves them OPEN.
    const settled = await app.api('POST', `/v1/subscriptions/${sub.id}/settle`);
    expect(settled.status).toBe(200);
    expect(settled.body.invoiced).toHaveLength(2);
    for (const body of [{ plan: big, when: 'next_cycle' }, { plan: big, preview: true }, { quantity: 3 }]) {
      const refused = await app.api('POST', `/v1/subscriptions/${sub.id}/change`, body);
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('periods_invoiced_ahead');
      for (const invoice of settled.body.invoiced) expect(refused.body.error.message).toContain(invoice);
    }
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}`)).body).toMatchObject({
      plan: small,
      quantity: 1,
      scheduled_change: null,
    });
    // An add-on bills the next periods' invoices: those periods are invoiced already. Refused however
    // it would be prorated for the rest of this period: no proration invoice either.
    const addOn = (await app.api('POST', '/v1/add-ons', { name: 'Seat', currency: 'SEK', amount: 200 })).body;
    for (const path of ['add-ons', 'add-ons/preview']) {
      for (const proration of [undefined, 'prorate_now', 'full', 'none']) {
        const refused = await app.api('POST', `/v1/subscriptions/${sub.id}/${path}`, {
          add_on: addOn.id,
          quantity: 1,
          ...(proration ? { proration } : {}),
        });
        expect(refused.status).toBe(409);
        expect(refused.body.error.code).toBe('periods_invoiced_ahead');
      }
    }
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}/add-ons`)).body.data).toEqual([]);
    const updates = await db()
      .selectFrom('invoices')
      .select('id')
      .where('subscription_id', '=', sub.id)
      .where('billing_reason', '=', 'subscription_update')
      .execute();
    expect(updates).toEqual([]);

    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, {});
    expect(cancelled.status).toBe(200);
    for (const invoice of settled.body.invoiced) {
      expect((await app.api('GET', `/v1/invoices/${invoice}`)).body).toMatchObject({
        status: 'VOID',
        amount_due: 0,
      });
    }
    expect(await ledgerIn(app, 'SEK')).toEqual({ 'receivable:customer': 1000, revenue: -1000 });
  });
  it('cancelling before the renewal sweep moved it into a period that started ends that period as with a sweep on time: April owed, May voided', async () => {
    const plan = await insertPlan(db(), { currency: 'PHP', price: { model: 'FLAT_FEE', amount: 1000 } });
    const now = await settledTerm(plan);
    const atEnd = await settledTerm(plan);
    const onTime = await settledTerm(plan);
    // April 1st 00:03: April started; the sweep renewed one into it, not the other two (stored: March).
    const at = d('2027-04-01T00:03:00Z');
    await renewSubscription(db(), 'system', onTime.id, d('2027-04-01T00:01:00Z'));
    // Each cancellation renews the subscription up to now first (billing/sweep-lag.test.ts): April
    // is the period it ends (now) or whose end it cancels at (period end), served and owed either way.
    await cancel(atEnd.id, { when: 'period_end', refundType: 'none' }, at);
    await cancel(now.id, { when: 'now', refundType: 'none' }, at);
    await cancel(onTime.id, { when: 'now', refundType: 'none' }, at);
    await renewSubscription(db(), 'system', atEnd.id, d('2027-05-01T00:05:00Z'));
    for (const { id } of [atEnd, now, onTime]) {
      expect((await periods(id)).map((i) => [i.status, i.amount_due, i.charge_at])).toEqual([
        ['OPEN', 1000n, expect.any(Date)],
        ['OPEN', 1000n, expect.any(Date)],
        ['VOID', 0n, null],
      ]);
      expect(await statusOf(id)).toBe('CANCELLED');
    }
    // March and April of each are owed.
    expect(await ledgerIn(app, 'PHP')).toEqual({ 'receivable:customer': 6000, revenue: -6000 });
    for (const sub of [now, onTime]) {
      const [, , may] = await periods(sub.id);
      expect(await activityData(sub.id, 'subscription.cancelled')).toMatchObject({
        voided_invoices: [may!.id],
      });
    }
  });

  it("dunning's final action CANCEL voids the later periods' unpaid invoices as a cancellation now does; one with a charge in flight is left owed and named", async () => {
    const plan = await insertPlan(db(), { currency: 'KZT', price: { model: 'FLAT_FEE', amount: 1000 } });
    const { id, customer } = await settledTerm(plan);
    const [march, april, may] = await periods(id);
    // May's charge was sent by an earlier sweep (its lease ahead) and has no answer yet.
    await db()
      .insertInto('transactions')
      .values({
        id: newId('txn'),
        invoice_id: may!.id,
        customer_id: customer,
        gateway: 'stripe',
        amount: 1000n,
        currency: 'KZT',
        status: 'pending',
      })
      .execute();
    await db()
      .updateTable('invoices')
      .set({ charge_at: d('2027-03-01T00:15:00Z') })
      .where('id', '=', may!.id)
      .execute();
    // The sweep: no card, no retries (final action at the first failure): CANCEL.
    await chargeDueInvoices(
      db(),
      'system',
      gateways(),
      { DUNNING_RETRY_DAYS: [], DUNNING_FINAL_ACTION: 'CANCEL' },
      d('2027-03-01T00:10:00Z'),
    );
    expect(await statusOf(id)).toBe('CANCELLED');
    expect((await periods(id)).map((i) => [i.id, i.status, i.amount_due])).toEqual([
      [march!.id, 'OPEN', 1000n],
      [april!.id, 'VOID', 0n],
      [may!.id, 'OPEN', 1000n],
    ]);
    // March (served in part) and May (its charge may still take the money) are owed; April is not.
    expect(await ledgerIn(app, 'KZT')).toEqual({ 'receivable:customer': 2000, revenue: -2000 });
    expect(await activityData(id, 'subscription.cancelled')).toMatchObject({
      reason: 'dunning',
      voided_invoices: [april!.id],
      not_voided_invoices: [may!.id],
    });
  });

  it('a suspended settled term keeps its later periods owed but the charge sweep leaves them until it is reactivated', async () => {
    const plan = await insertPlan(db(), { currency: 'HRK', price: { model: 'FLAT_FEE', amount: 1000 } });
    const { id } = await settledTerm(plan);
    const [march, april, may] = await periods(id);
    await suspendSubscription(db(), 'system', id, d('2027-03-01T00:06:00Z'), 'on hold');
    const policy = { DUNNING_RETRY_DAYS: [1], DUNNING_FINAL_ACTION: 'SUSPEND' as const };
    const first = await chargeDueInvoices(db(), 'system', gateways(), policy, d('2027-03-01T00:10:00Z'));
    // March (served) is charged and enters dunning; April and May wait, owed and scheduled.
    // (The sweep charges every invoice due in this file's database: those of this subscription count.)
    const ours = (swept: typeof first) =>
      swept.charged
        .map((c) => c.invoiceId)
        .filter((i) => [march!.id, april!.id, may!.id].includes(i))
        .sort();
    expect(ours(first)).toEqual([march!.id]);
    expect((await periods(id)).map((i) => [i.status, i.payment_attempts, i.charge_at])).toEqual([
      ['OPEN', 1, d('2027-03-02T00:10:00Z')],
      ['OPEN', 0, april!.charge_at],
      ['OPEN', 0, may!.charge_at],
    ]);
    expect(await ledgerIn(app, 'HRK')).toEqual({ 'receivable:customer': 3000, revenue: -3000 });
    // Reactivated: they are charged again.
    await reactivateSubscription(db(), 'system', id, d('2027-03-02T00:00:00Z'));
    const second = await chargeDueInvoices(db(), 'system', gateways(), policy, d('2027-03-02T00:10:00Z'));
    expect(ours(second)).toEqual([march!.id, april!.id, may!.id].sort());
  });

  it('reactivation voids the unpaid invoices of the periods wholly missed while suspended; the suspended and current periods stay owed and are charged', async () => {
    // 1000 a month, no card: March, April and May owed after settle (3000).
    const plan = await insertPlan(db(), { currency: 'THB', price: { model: 'FLAT_FEE', amount: 1000 } });
    const { id } = await settledTerm(plan);
    const [march, april, may] = await periods(id);
    // Suspended on March 10th, reactivated on May 10th: April was never served.
    await suspendSubscription(db(), 'system', id, d('2027-03-10T00:00:00Z'), 'on hold');
    expect(await ledgerIn(app, 'THB')).toEqual({ 'receivable:customer': 3000, revenue: -3000 });
    const active = await reactivateSubscription(db(), 'system', id, d('2027-05-10T00:00:00Z'));
    expect(active.subscription.status).toBe('ACTIVE');
    expect(await periods(id)).toEqual([
      march,
      { ...april, status: 'VOID', amount_due: 0n, charge_at: null },
      may,
    ]);
    expect(await ledgerIn(app, 'THB')).toEqual({ 'receivable:customer': 2000, revenue: -2000 });
    expect(await activityData(id, 'subscription.active')).toMatchObject({
      voided_invoices: [april!.id],
      not_voided_invoices: [],
      kept_invoices: [],
    });
    // The sweep charges March and May (no card: they fail and stay owed), never April.
    const policy = { DUNNING_RETRY_DAYS: [1], DUNNING_FINAL_ACTION: 'SUSPEND' as const };
    const swept = await chargeDueInvoices(db(), 'system', gateways(), policy, d('2027-05-10T00:10:00Z'));
    expect(
      swept.charged
        .map((c) => c.invoiceId)
        .filter((i) => [march!.id, april!.id, may!.id].includes(i))
        .sort(),
    ).toEqual([march!.id, may!.id].sort());
    expect((await periods(id)).map((i) => [i.status, i.amount_due, i.payment_attempts])).toEqual([
      ['OPEN', 1000n, 1],
      ['VOID', 0n, 0],
      ['OPEN', 1000n, 1],
    ]);
  });

  it('reactivation keeps a missed period that was paid: PAID, named as kept', async () => {
    const plan = await insertPlan(db(), { currency: 'UAH', price: { model: 'FLAT_FEE', amount: 1000 } });
    const { id } = await settledTerm(plan);
    const [march, april, may] = await periods(id);
    expect(
      (await app.api('POST', `/v1/invoices/${april!.id}/payments`, { method: 'BANK', amount: 1000 })).status,
    ).toBe(201);
    await suspendSubscription(db(), 'system', id, d('2027-03-10T00:00:00Z'), 'on hold');
    const before = await ledgerIn(app, 'UAH');
    await reactivateSubscription(db(), 'system', id, d('2027-05-10T00:00:00Z'));
    expect((await periods(id)).map((i) => [i.id, i.status, i.amount_due])).toEqual([
      [march!.id, 'OPEN', 1000n],
      [april!.id, 'PAID', 0n],
      [may!.id, 'OPEN', 1000n],
    ]);
    expect(await ledgerIn(app, 'UAH')).toEqual(before);
    expect(await activityData(id, 'subscription.active')).toMatchObject({
      voided_invoices: [],
      not_voided_invoices: [],
      kept_invoices: [april!.id],
    });
  });

  it('invoices ahead voided by hand still refuse a change (their periods hold them: the new plan would never be billed); those after a scheduled cancellation do not', async () => {
    const x = await insertPlan(db(), { currency: 'RUB', price: { model: 'FLAT_FEE', amount: 1000 } });
    const y = await insertPlan(db(), { currency: 'RUB', price: { model: 'FLAT_FEE', amount: 3000 } });
    const { id } = await settledTerm(x);
    const [, april, may] = await periods(id);
    for (const invoice of [april!, may!]) {
      expect((await app.api('POST', `/v1/invoices/${invoice.id}/void`)).status).toBe(200);
    }
    const refused = await app.api('POST', `/v1/subscriptions/${id}/change`, { plan: y, when: 'next_cycle' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('periods_invoiced_ahead');
    expect(refused.body.error.message).toContain(
      `voided by hand, their periods still hold them and would go unbilled: ${april!.id}, ${may!.id}`,
    );
    expect((await app.api('GET', `/v1/subscriptions/${id}`)).body).toMatchObject({
      plan: x,
      scheduled_change: null,
    });
    expect(await ledgerIn(app, 'RUB')).toEqual({ 'receivable:customer': 1000, revenue: -1000 });

    // Cancelled at April 15th (May voided: never served), renewed into April: May does not refuse.
    const other = await settledTerm(x);
    await cancel(
      other.id,
      { when: 'date', cancelAt: d('2027-04-15T00:00:00Z'), refundType: 'none' },
      d('2027-03-10T00:00:00Z'),
    );
    await renewSubscription(db(), 'system', other.id, d('2027-04-01T00:05:00Z'));
    const changed = await changeSubscription(
      db(),
      'system',
      other.id,
      { planId: y, when: 'next_cycle' },
      d('2027-04-02T00:00:00Z'),
      false,
    );
    expect(changed.subscription.scheduled_plan_id).toBe(y);
  });

  it("a settled term's trial is not ended or moved (409 periods_invoiced_ahead): its periods are invoiced as they are", async () => {
    // A 14-day trial: periods from March 15th, all three invoiced by settle in the trial.
    const plan = await insertPlan(db(), { currency: 'MYR', price: { model: 'FLAT_FEE', amount: 1000 } });
    const { id } = await subscribed(plan, undefined, 14);
    expect((await settle(id)).map((i) => i.period_index)).toEqual([0, 1, 2]);
    const before = await periods(id);
    const subscription = await db()
      .selectFrom('subscriptions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    for (const endAt of ['now', d('2027-04-15T00:00:00Z')] as const) {
      const refused = await changeTrial(db(), 'system', id, endAt, d('2027-03-03T00:00:00Z')).catch(
        (error: unknown) => error,
      );
      expect(refused).toMatchObject({ status: 409, code: 'periods_invoiced_ahead' });
    }
    expect(
      await db().selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirst(),
    ).toEqual(subscription);
    expect(await periods(id)).toEqual(before);
    expect(await ledgerIn(app, 'MYR')).toEqual({ 'receivable:customer': 3000, revenue: -3000 });
  });

  it('over HTTP: a coupon redeemed on or removed from a settled term is 409 periods_invoiced_ahead, changing nothing', async () => {
    const plan = await insertPlan(db(), { currency: 'INR', price: { model: 'FLAT_FEE', amount: 1000 } });
    for (const code of ['SETTLEHALF', 'SETTLETENTH']) {
      const percent = code === 'SETTLEHALF' ? 50 : 10;
      expect(
        (await app.api('POST', '/v1/coupons', { code, percent_off: percent, duration: 'FOREVER' })).status,
      ).toBe(201);
    }
    // A tenth off redeemed before settle: April and May are invoiced at 900.
    const { id } = await subscribed(plan);
    const tenth = await addSubscriptionCoupon(db(), 'system', id, 'SETTLETENTH');
    await settle(id);
    expect((await periods(id)).map((i) => i.total)).toEqual([1000n, 900n, 900n]);
    const redeemed = await app.api('POST', `/v1/subscriptions/${id}/coupons`, { coupon: 'SETTLEHALF' });
    expect(redeemed.status).toBe(409);
    expect(redeemed.body.error.code).toBe('periods_invoiced_ahead');
    const removed = await app.api('POST', `/v1/subscriptions/${id}/coupons/${tenth.id}/remove`);
    expect(removed.status).toBe(409);
    expect(removed.body.error.code).toBe('periods_invoiced_ahead');
    const coupons = (await app.api('GET', `/v1/subscriptions/${id}/coupons`)).body.data;
    expect(coupons).toHaveLength(1);
    expect(coupons[0]).toMatchObject({ id: tenth.id, removed_at: null });
    const half = (await app.api('GET', '/v1/coupons?limit=100')).body.data.find(
      (c: { code: string }) => c.code === 'SETTLEHALF',
    );
    expect(half.times_redeemed).toBe(0);
    expect(await ledgerIn(app, 'INR')).toEqual({ 'receivable:customer': 2800, revenue: -2800 });
  });
});
