import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { lockInvoice } from '../../src/billing/invoices.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { DUNNING_REASON } from '../../src/billing/reinstate.ts';
import { renewDueSubscriptions } from '../../src/billing/renewal.ts';
import type { Db } from '../../src/db/database.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import { recordCollectionFailure } from '../../src/payments/dunning.ts';
import { STRIPE_API_BASE, startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, downgradeCredit, ledgerIn, payOpenOffline } from '../support/collection.ts';
import {
  activityData,
  chargeInvoice,
  d,
  feb17,
  feb21,
  invoicesOf,
  mar1,
  pendingChargeFailing,
  stateOf,
} from '../support/pending-add-on-charge.ts';
import { insertPlan } from '../support/plans.ts';
import { stripeFixture } from '../support/stripe.ts';

describe('a pending add-on charge that keeps failing never blocks a cancellation or a change by hand', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  const cancel = (id: string, options: Parameters<typeof cancelSubscriptionWithRefund>[5], now: Date) =>
    cancelSubscriptionWithRefund(
      db,
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      id,
      options,
      now,
    );

  it('CHF: cancel now (refund none) on Feb 21 ends it; once mended the sweep charges the seats Feb 17 – Mar 1 once, 1286', async () => {
    const { id, mend } = await pendingChargeFailing(db, 'CHF');
    try {
      // Before: the cancellation renewed first, made the charge first in its unit, and failed with it
      // ('add-on charge refused'): nobody could cancel the subscription while the charge failed.
      const cancelled = await cancel(id, { when: 'now', refundType: 'none' }, feb21);
      expect(cancelled.subscription).toMatchObject({ status: 'CANCELLED', cancelled_at: feb21 });
      expect(cancelled.catchUpInvoices).toEqual([]);
      expect(await stateOf(db, id)).toEqual({
        status: 'CANCELLED',
        cancelled_at: feb21,
        cancel_at: null,
        add_on_charge_at: feb17,
      });
      expect(await activityData(db, id, 'subscription.cancelled')).toMatchObject({
        refund_type: 'none',
        add_on_charge_pending: {
          since: feb17.toISOString(),
          error: expect.stringContaining('add-on charge refused'),
        },
      });
      // Still failing: the sweep reports it and changes nothing.
      const failing = await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:01:00Z'));
      expect(failing.failures.filter((f) => f.subscription === id)).toHaveLength(1);
    } finally {
      await mend();
    }
    // Mended: the sweep makes the charge as the cancellation would have (refund none keeps it
    // whole): 2 seats Feb 17 – Mar 1, 1286, OPEN for collection. Once: the next sweep makes nothing.
    const mended = await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:02:00Z'));
    expect(mended.failures.filter((f) => f.subscription === id)).toEqual([]);
    expect((await invoicesOf(db, id)).slice(2)).toEqual([chargeInvoice(1286n, mar1)]);
    expect((await stateOf(db, id)).add_on_charge_at).toBeNull();
    expect((await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:03:00Z'))).invoices).toBe(0);
    expect(await invoicesOf(db, id)).toHaveLength(3);
    // Owed, no tax: 4000 + 5500 + 1286 = 10786.
    expect(await ledgerIn(app, 'CHF')).toEqual({ 'receivable:customer': 10786, revenue: -10786 });
  });

  it('NOK: cancel at period end on Feb 21 is scheduled; the sweep ends it Mar 1; once mended 1286 for Feb 17 – Mar 1', async () => {
    const { id, mend } = await pendingChargeFailing(db, 'NOK');
    try {
      // Before: refused with the charge's failure, nothing scheduled.
      const scheduled = await cancel(id, { when: 'period_end', refundType: 'none' }, feb21);
      expect(scheduled.subscription).toMatchObject({
        status: 'ACTIVE',
        cancel_at_period_end: true,
        cancel_at: mar1,
      });
      expect(await activityData(db, id, 'subscription.cancellation_scheduled')).toMatchObject({
        at: mar1.toISOString(),
        add_on_charge_pending: { since: feb17.toISOString() },
      });
      await renewDueSubscriptions(db, 'scheduler', mar1);
      expect(await stateOf(db, id)).toEqual({
        status: 'CANCELLED',
        cancelled_at: mar1,
        cancel_at: mar1,
        add_on_charge_at: feb17,
      });
    } finally {
      await mend();
    }
    await renewDueSubscriptions(db, 'scheduler', d('2027-03-01T00:01:00Z'));
    expect((await invoicesOf(db, id)).slice(2)).toEqual([chargeInvoice(1286n, mar1)]);
    expect((await renewDueSubscriptions(db, 'scheduler', d('2027-03-01T00:02:00Z'))).invoices).toBe(0);
    expect(await ledgerIn(app, 'NOK')).toEqual({ 'receivable:customer': 10786, revenue: -10786 });
  });

  it('SEK: a prorate refund refused while the charge fails is refused for the period (nothing_to_refund), decided before the charge is made: nothing changed', async () => {
    const { id, mend } = await pendingChargeFailing(db, 'SEK');
    try {
      // February (5500) is OPEN: a prorate refund reaches nothing. Before: the charge's failure.
      const refused = await cancel(id, { when: 'now', refundType: 'prorate' }, feb21).catch(
        (e: unknown) => e,
      );
      expect(refused).toMatchObject({ status: 409, code: 'nothing_to_refund' });
      expect(await stateOf(db, id)).toMatchObject({ status: 'ACTIVE', add_on_charge_at: feb17 });
      expect(await invoicesOf(db, id)).toHaveLength(2);
    } finally {
      await mend();
    }
  });

  it('HUF: cancel now with a prorate refund on Feb 21, February paid by customer credit: 1571 back to the credit; once mended the seats are charged for the time served, Feb 17 – Feb 21, 429', async () => {
    const { customer } = await customerWith(app);
    // Customer credit from a downgrade: (18600 − 1000) × 7/28 = 4400 + 25% = 5500, all of it taken by
    // February's 5500.
    const { id, february, mend } = await pendingChargeFailing(db, 'HUF', {
      customer: customer.id,
      beforeFebruary: () => downgradeCredit(app, customer.id, 'HUF', 18600),
    });
    expect(
      await db
        .selectFrom('invoices')
        .select(['status', 'credit_applied'])
        .where('id', '=', february.id)
        .executeTakeFirstOrThrow(),
    ).toEqual({
      status: 'PAID',
      credit_applied: 5500n,
    });
    try {
      // Before: refused with the charge's failure. Now: 8 of February's 28 days given back,
      // 5500 × 8/28 = 1571.43 → 1571 to the customer's credit; the charge left pending.
      const cancelled = await cancel(id, { when: 'now', refundType: 'prorate' }, feb21);
      expect(cancelled.subscription).toMatchObject({ status: 'CANCELLED', cancelled_at: feb21 });
      expect(cancelled.creditNotes.map((n) => n.total)).toEqual([1571n]);
      expect(await stateOf(db, id)).toMatchObject({ status: 'CANCELLED', add_on_charge_at: feb17 });
    } finally {
      await mend();
    }
    // The seats served Feb 17 – Feb 21 (the refund gave back the rest of the period): 2 × 1500 × 4/28
    // = 428.57 → 429, paid at once by the 1571 of credit the cancellation gave back; once.
    await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:01:00Z'));
    expect((await invoicesOf(db, id)).slice(2)).toEqual([{ ...chargeInvoice(429n, feb21), status: 'PAID' }]);
    expect(await app.api('GET', `/v1/customers/${customer.id}`).then((r) => r.body.credit)).toEqual([
      { currency: 'HUF', amount: 1571 - 429 },
    ]);
    expect((await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:02:00Z'))).invoices).toBe(0);
    const books = await ledgerIn(app, 'HUF');
    expect(Object.values(books).reduce((sum, balance) => sum + balance, 0)).toBe(0);
  });

  it('CZK: cancel now with a full refund on Feb 21, February paid by customer credit: 5500 back to the credit; once mended nothing is charged (a full refund gives back all the period charged) and the charge is cleared', async () => {
    const { customer } = await customerWith(app);
    const { id, mend } = await pendingChargeFailing(db, 'CZK', {
      customer: customer.id,
      beforeFebruary: () => downgradeCredit(app, customer.id, 'CZK', 18600),
    });
    try {
      const cancelled = await cancel(id, { when: 'now', refundType: 'full' }, feb21);
      expect(cancelled.subscription.status).toBe('CANCELLED');
      expect(cancelled.creditNotes.map((n) => n.total)).toEqual([5500n]);
    } finally {
      await mend();
    }
    // Made first, the charge's OPEN invoice would have been voided whole by the full refund: nothing.
    const mended = await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:01:00Z'));
    expect(mended.failures.filter((f) => f.subscription === id)).toEqual([]);
    expect(await invoicesOf(db, id)).toHaveLength(2);
    expect((await stateOf(db, id)).add_on_charge_at).toBeNull();
    const books = await ledgerIn(app, 'CZK');
    expect(Object.values(books).reduce((sum, balance) => sum + balance, 0)).toBe(0);
  });

  it('SGD: with a change to a 25% plan scheduled for Mar 1, cancel now on Mar 10 while the charge fails invoices March on the new plan (10625) and ends it; once mended the charge is made untaxed, 1286', async () => {
    const { id, mend } = await pendingChargeFailing(db, 'SGD');
    const taxed = await insertPlan(db, {
      currency: 'SGD',
      price: { model: 'FLAT_FEE', amount: 4000 },
      taxRatePpm: 250_000,
    });
    await changeSubscription(db, 'system', id, { planId: taxed, when: 'next_cycle' }, feb21, false);
    const mar10 = d('2027-03-10T00:00:00Z');
    try {
      // Before the renewal took the scheduled change after the charge's moment to wait for it: the
      // cancellation ended it in February's period and March 1 – 10 on the new plan was never invoiced.
      const cancelled = await cancel(id, { when: 'now', refundType: 'none' }, mar10);
      expect(cancelled.subscription).toMatchObject({
        status: 'CANCELLED',
        plan_id: taxed,
        current_period_index: 2,
      });
      expect(cancelled.catchUpInvoices.map((i) => [i.period_index, i.total])).toEqual([[2, 10625n]]);
    } finally {
      await mend();
    }
    await renewDueSubscriptions(db, 'scheduler', d('2027-03-10T00:01:00Z'));
    const after = await db
      .selectFrom('invoices')
      .select(['period_index', 'subtotal', 'tax', 'total', 'period_start', 'period_end'])
      .where('subscription_id', '=', id)
      .orderBy('created_at')
      // Invoices made in one transaction share created_at: in the order numbered.
      .orderBy('number')
      .orderBy('id')
      .execute();
    expect(after.slice(2)).toEqual([
      {
        period_index: 2,
        subtotal: 8500n,
        tax: 2125n,
        total: 10625n,
        period_start: mar1,
        period_end: d('2027-04-01T00:00:00Z'),
      },
      { period_index: null, subtotal: 1286n, tax: 0n, total: 1286n, period_start: feb17, period_end: mar1 },
    ]);
    // Owed, 2125 of it tax: 4000 + 5500 + 10625 + 1286 = 21411.
    expect(await ledgerIn(app, 'SGD')).toEqual({
      'receivable:customer': 21411,
      revenue: -19286,
      tax_payable: -2125,
    });
  });

  it('DKK: a change by hand now (quantity 1 → 2 of a flat fee, no proration) goes on; once mended 1286 for Feb 17 – Mar 1, once; a change to a plan taxing otherwise is 409 add_on_charge_pending, nothing changed', async () => {
    const { id, mend } = await pendingChargeFailing(db, 'DKK');
    const taxed = await insertPlan(db, {
      currency: 'DKK',
      price: { model: 'FLAT_FEE', amount: 4000 },
      taxRatePpm: 250_000,
    });
    try {
      // The charge would be taxed by the new plan (25%) though its seats were served on the untaxed one.
      const retaxing = await changeSubscription(
        db,
        'system',
        id,
        { planId: taxed, proration: 'none' },
        feb21,
        false,
      ).catch((e: unknown) => e);
      expect(retaxing).toMatchObject({
        status: 409,
        code: 'add_on_charge_pending',
        fields: { plan: expect.stringContaining(feb17.toISOString()) },
      });
      expect(await invoicesOf(db, id)).toHaveLength(2);
      // Before: refused with the charge's failure ('add-on charge refused').
      const changed = await changeSubscription(
        db,
        'system',
        id,
        { quantity: 2, proration: 'none' },
        feb21,
        false,
      );
      expect(changed.subscription).toMatchObject({ quantity: 2, status: 'ACTIVE', add_on_charge_at: feb17 });
    } finally {
      await mend();
    }
    await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:01:00Z'));
    expect((await invoicesOf(db, id)).slice(2)).toEqual([chargeInvoice(1286n, mar1)]);
    // March bills the flat 4000 + 3 × 1500 = 8500; the charge is not made again.
    await renewDueSubscriptions(db, 'scheduler', mar1);
    const after = await invoicesOf(db, id);
    expect(after.slice(3)).toEqual([expect.objectContaining({ period_index: 2, total: 8500n })]);
    expect(await ledgerIn(app, 'DKK')).toEqual({
      'receivable:customer': 4000 + 5500 + 1286 + 8500,
      revenue: -(4000 + 5500 + 1286 + 8500),
    });
  });
});

describe("dunning's final action while a pending add-on charge keeps failing", () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());

  it("PLN: March's 8500 declined by Stripe, dunning's CANCEL ends it; once mended the seats Feb 17 – Mar 1 are charged once, 1286", async () => {
    const { customer, method } = await customerWith(app, { stripe: true });
    const { id, mend } = await pendingChargeFailing(db, 'PLN', {
      customer: customer.id,
      paymentMethodId: method!.id,
    });
    // January and February paid by bank transfer.
    expect((await payOpenOffline(db, id)).map((p) => p.amount)).toEqual([4000n, 5500n]);
    const policy = { DUNNING_RETRY_DAYS: [], DUNNING_FINAL_ACTION: 'CANCEL' as const };
    try {
      // The Mar 1 sweep invoices March (4000 + 3 × 1500 = 8500) without the failing charge.
      const sweep = await renewDueSubscriptions(db, 'scheduler', mar1);
      expect(sweep.failures.filter((f) => f.subscription === id)).toHaveLength(1);
      const march = (await invoicesOf(db, id))[2]!;
      expect(march).toMatchObject({ period_index: 2, total: 8500n, status: 'OPEN' });
      // Its charge declined by Stripe; no retries: dunning's final action, CANCEL. Before: the final
      // action renewed first, making the charge first, and failed with it — the subscription stayed
      // PAST_DUE and the dunning step was retried (and failed) by every sweep.
      const declined = stripeFixture('api.payment_intent.create.card_declined.error.json');
      declined.error.payment_intent.id = 'pi_declined_pending_charge';
      declined.error.charge = 'ch_declined_pending_charge';
      nock(STRIPE_API_BASE).post('/v1/payment_intents').reply(402, declined);
      const { charged } = await chargeDueInvoices(
        db,
        'scheduler',
        app.runtime,
        policy,
        d('2027-03-01T00:05:00Z'),
      );
      expect(charged).toEqual([
        expect.objectContaining({
          invoiceId: march.id,
          outcome: 'failed',
          dunning: expect.objectContaining({ subscriptionStatus: 'CANCELLED' }),
        }),
      ]);
      expect(await stateOf(db, id)).toMatchObject({
        status: 'CANCELLED',
        cancelled_at: d('2027-03-01T00:05:00Z'),
        add_on_charge_at: feb17,
      });
      expect(await activityData(db, id, 'subscription.cancelled')).toMatchObject({
        reason: DUNNING_REASON,
        add_on_charge_pending: {
          since: feb17.toISOString(),
          error: expect.stringContaining('add-on charge refused'),
        },
      });
    } finally {
      await mend();
    }
    // Mended: charged as a charge made first and kept by dunning's cancellation (no refund): 1286 for
    // Feb 17 – Mar 1, OPEN for collection; once.
    await renewDueSubscriptions(db, 'scheduler', d('2027-03-01T00:06:00Z'));
    expect((await invoicesOf(db, id)).slice(3)).toEqual([chargeInvoice(1286n, mar1)]);
    expect((await renewDueSubscriptions(db, 'scheduler', d('2027-03-01T00:07:00Z'))).invoices).toBe(0);
    // Owed: March 8500 and the charge 1286; January and February paid.
    expect(await ledgerIn(app, 'PLN')).toMatchObject({ 'receivable:customer': 8500 + 1286 });
  });

  it("RON: dunning's SUSPEND of February's last failed retry on Feb 21 suspends it; once mended the seats Feb 17 – Mar 1 are charged, 1286", async () => {
    const { id, february, mend } = await pendingChargeFailing(db, 'RON');
    try {
      // Before: the suspension renewed first, making the charge first, and failed with it.
      const step = await inUnitOfWork(db, { actor: 'system' }, async (work) =>
        recordCollectionFailure(
          work,
          await lockInvoice(work, february.id),
          { retryDays: [], finalAction: 'SUSPEND' },
          feb21,
          { code: 'card_declined' },
        ),
      );
      expect(step.subscriptionStatus).toBe('SUSPENDED');
      expect(await stateOf(db, id)).toMatchObject({ status: 'SUSPENDED', add_on_charge_at: feb17 });
      expect(await activityData(db, id, 'subscription.suspended')).toMatchObject({
        add_on_charge_pending: { since: feb17.toISOString() },
      });
    } finally {
      await mend();
    }
    await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:01:00Z'));
    expect((await invoicesOf(db, id)).slice(2)).toEqual([chargeInvoice(1286n, mar1)]);
    expect((await stateOf(db, id)).add_on_charge_at).toBeNull();
  });
});
