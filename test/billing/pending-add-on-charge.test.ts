import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAddOn } from '../../src/billing/add-ons.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { DUNNING_REASON, reinstateAfterPayment } from '../../src/billing/reinstate.ts';
import { lockSubscription, renewDueSubscriptions, renewSubscription } from '../../src/billing/renewal.ts';
import { setSubscriptionAddOn } from '../../src/billing/subscription-add-ons.ts';
import { transitionSubscription } from '../../src/billing/subscription-status.ts';
import { cancelSubscription, createSubscription } from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { ledgerIn } from '../support/collection.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

const d = (iso: string) => new Date(iso);

/**
 * An add-on charge pending since a payment's reactivation (`add_on_charge_at`) is made by the renewal
 * first. When making it keeps failing, the periods go on being invoiced (each once); the charge stays
 * pending, made once what fails is mended, for the period holding the reactivation.
 */
describe('a pending add-on charge that keeps failing', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  const periodInvoices = (id: string) =>
    db
      .selectFrom('invoices')
      .select(['period_index', 'billing_reason', 'status', 'total', 'period_start', 'period_end'])
      .where('subscription_id', '=', id)
      .orderBy('created_at')
      // Invoices made in one transaction share created_at: in the order numbered.
      .orderBy('number')
      .orderBy('id')
      .execute();

  it('CHF: the renewal sweep invoices March and April while the charge fails, then makes the charge for Feb 17 – Mar 1 once it can', async () => {
    // 40.00 a month, no tax; Seats 15.00 each a month. January 4000 with 1 seat (none prorated),
    // February 4000 + 1500 = 5500, left OPEN.
    const plan = await insertPlan(db, { currency: 'CHF', price: { model: 'FLAT_FEE', amount: 4000 } });
    const seats = (await createAddOn(db, 'system', { name: 'Seats', currency: 'CHF', amount: 1500n })).id;
    const customer = await insertCustomer(db);
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-01-01T00:00:00Z'),
    );
    const id = subscription.id;
    await setSubscriptionAddOn(
      db,
      'system',
      id,
      { addOnId: seats, quantity: 1, proration: 'none' },
      d('2027-01-01T00:00:00Z'),
    );
    const february = (await renewSubscription(db, 'system', id, d('2027-02-01T00:00:00Z')))!.invoices[0]!;
    expect(february.total).toBe(5500n);
    // Suspended by dunning Feb 8, raised to 3 seats Feb 10 (nothing charged while suspended),
    // reinstated by February's payment Feb 17: the charge of the 2 seats from Feb 17 is pending.
    await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      transitionSubscription(
        work,
        (await lockSubscription(work, id))!,
        'SUSPENDED',
        d('2027-02-08T00:00:00Z'),
        {
          reason: DUNNING_REASON,
        },
      ),
    );
    await setSubscriptionAddOn(db, 'system', id, { addOnId: seats, quantity: 3 }, d('2027-02-10T00:00:00Z'));
    const feb17 = d('2027-02-17T00:00:00Z');
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      reinstateAfterPayment(work, id, february.id, feb17),
    );

    // Making that charge fails (the database refuses its invoice) until someone mends it.
    await sql`CREATE OR REPLACE FUNCTION add_on_charge_fails() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'add-on charge refused'; END $$`.execute(db);
    await sql`CREATE TRIGGER add_on_charge_fails BEFORE INSERT ON invoices FOR EACH ROW
      WHEN (NEW.subscription_id = ${sql.lit(id)} AND NEW.billing_reason = 'subscription_update')
      EXECUTE FUNCTION add_on_charge_fails()`.execute(db);
    const mar1 = d('2027-03-01T00:00:00Z');
    const apr1 = d('2027-04-01T00:00:00Z');
    const may1 = d('2027-05-01T00:00:00Z');
    try {
      // The sweeps of Feb 17 (the charge alone), Mar 1 and Apr 1 each report it failing, and
      // invoice March and April all the same: 4000 + 3 × 1500 = 8500 each. Before: no invoice after
      // February (every renewal of it rolled back with the charge), so the plan went unbilled.
      for (const at of [feb17, mar1, apr1]) {
        const sweep = await renewDueSubscriptions(db, 'scheduler', at);
        expect(sweep.failures.filter((f) => f.subscription === id)).toEqual([
          { subscription: id, error: expect.stringContaining('add-on charge refused') },
        ]);
      }
      expect(await periodInvoices(id)).toEqual([
        expect.objectContaining({ period_index: 0, total: 4000n }),
        expect.objectContaining({ period_index: 1, total: 5500n, status: 'OPEN' }),
        expect.objectContaining({ period_index: 2, total: 8500n, status: 'OPEN', period_start: mar1 }),
        expect.objectContaining({ period_index: 3, total: 8500n, status: 'OPEN', period_start: apr1 }),
      ]);
      const pending = await db
        .selectFrom('subscriptions')
        .select(['status', 'next_renewal_at', 'add_on_charge_at', 'current_period_index'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      expect(pending).toEqual({
        status: 'ACTIVE',
        next_renewal_at: may1,
        add_on_charge_at: feb17,
        current_period_index: 3,
      });
    } finally {
      await sql`DROP TRIGGER add_on_charge_fails ON invoices`.execute(db);
    }
    // Mended: the next sweep makes the charge for the period holding Feb 17, though the periods have
    // moved on: 2 × 1500 × 12/28 = 1285.71 → 1286, over Feb 17 – Mar 1. Then nothing more.
    const mended = await renewDueSubscriptions(db, 'scheduler', d('2027-04-01T00:01:00Z'));
    expect(mended.failures.filter((f) => f.subscription === id)).toEqual([]);
    const after = await periodInvoices(id);
    expect(after.slice(4)).toEqual([
      {
        period_index: null,
        billing_reason: 'subscription_update',
        status: 'OPEN',
        total: 1286n,
        period_start: feb17,
        period_end: mar1,
      },
    ]);
    expect(after).toHaveLength(5);
    expect(
      await db
        .selectFrom('subscriptions')
        .select(['add_on_charge_at'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow(),
    ).toEqual({ add_on_charge_at: null });
    expect((await renewDueSubscriptions(db, 'scheduler', d('2027-04-01T00:02:00Z'))).invoices).toBe(0);
    // All owed, no tax: 4000 + 5500 + 8500 + 8500 + 1286 = 27786.
    expect(await ledgerIn(app, 'CHF')).toEqual({ 'receivable:customer': 27786, revenue: -27786 });
  });
  it('DKK: a cancellation at period end reached while the charge fails still makes the charge for Feb 17 – Mar 1 once it can', async () => {
    // 40.00 a month, no tax; Seats 15.00 each a month. January 4000 with 1 seat, February 5500
    // (4000 + 1500), cancelled at period end (Mar 1) on Feb 5.
    const plan = await insertPlan(db, { currency: 'DKK', price: { model: 'FLAT_FEE', amount: 4000 } });
    const seats = (await createAddOn(db, 'system', { name: 'Seats', currency: 'DKK', amount: 1500n })).id;
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: await insertCustomer(db), planId: plan },
      d('2027-01-01T00:00:00Z'),
    );
    const id = subscription.id;
    await setSubscriptionAddOn(
      db,
      'system',
      id,
      { addOnId: seats, quantity: 1, proration: 'none' },
      d('2027-01-01T00:00:00Z'),
    );
    const february = (await renewSubscription(db, 'system', id, d('2027-02-01T00:00:00Z')))!.invoices[0]!;
    expect(february.total).toBe(5500n);
    await cancelSubscription(db, 'system', id, true, d('2027-02-05T00:00:00Z'));
    // Suspended by dunning Feb 8, raised to 3 seats Feb 10, reinstated by February's payment Feb 17:
    // the charge of the 2 seats from Feb 17 to Mar 1 is pending.
    await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      transitionSubscription(
        work,
        (await lockSubscription(work, id))!,
        'SUSPENDED',
        d('2027-02-08T00:00:00Z'),
        {
          reason: DUNNING_REASON,
        },
      ),
    );
    await setSubscriptionAddOn(db, 'system', id, { addOnId: seats, quantity: 3 }, d('2027-02-10T00:00:00Z'));
    const feb17 = d('2027-02-17T00:00:00Z');
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      reinstateAfterPayment(work, id, february.id, feb17),
    );
    await sql`CREATE OR REPLACE FUNCTION add_on_charge_fails() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'add-on charge refused'; END $$`.execute(db);
    await sql`CREATE TRIGGER add_on_charge_fails BEFORE INSERT ON invoices FOR EACH ROW
      WHEN (NEW.subscription_id = ${sql.lit(id)} AND NEW.billing_reason = 'subscription_update')
      EXECUTE FUNCTION add_on_charge_fails()`.execute(db);
    const mar1 = d('2027-03-01T00:00:00Z');
    try {
      // The sweeps of Feb 17 and Mar 1 report the charge failing; the one of Mar 1 ends the
      // subscription at its scheduled cancellation all the same (renewed without the charge).
      for (const at of [feb17, mar1]) {
        const sweep = await renewDueSubscriptions(db, 'scheduler', at);
        expect(sweep.failures.filter((f) => f.subscription === id)).toHaveLength(1);
      }
      expect(
        await db
          .selectFrom('subscriptions')
          .select(['status', 'cancelled_at', 'add_on_charge_at'])
          .where('id', '=', id)
          .executeTakeFirstOrThrow(),
      ).toEqual({ status: 'CANCELLED', cancelled_at: mar1, add_on_charge_at: feb17 });
    } finally {
      await sql`DROP TRIGGER add_on_charge_fails ON invoices`.execute(db);
    }
    // Mended: the 2 seats served Feb 17 – Mar 1 are charged, 2 × 1500 × 12/28 = 1285.71 → 1286.
    // Before: nothing (a CANCELLED subscription was charged nothing), the pending charge cleared:
    // 1286 of seats served never billed.
    const mended = await renewDueSubscriptions(db, 'scheduler', d('2027-03-01T00:01:00Z'));
    expect(mended.failures.filter((f) => f.subscription === id)).toEqual([]);
    expect((await periodInvoices(id)).slice(2)).toEqual([
      {
        period_index: null,
        billing_reason: 'subscription_update',
        status: 'OPEN',
        total: 1286n,
        period_start: feb17,
        period_end: mar1,
      },
    ]);
    expect(
      await db
        .selectFrom('subscriptions')
        .select(['status', 'add_on_charge_at'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow(),
    ).toEqual({ status: 'CANCELLED', add_on_charge_at: null });
    expect((await renewDueSubscriptions(db, 'scheduler', d('2027-03-01T00:02:00Z'))).invoices).toBe(0);
    // All owed, no tax: 4000 + 5500 + 1286 = 10786.
    expect(await ledgerIn(app, 'DKK')).toEqual({ 'receivable:customer': 10786, revenue: -10786 });
  });
  it('SGD: a change to a taxed plan scheduled for Mar 1 takes effect on time while the charge fails, and the charge for Feb 17 – Mar 1 is made untaxed as February was', async () => {
    // 40.00 a month untaxed (A), Seats 15.00 each; a change to B (40.00 + 25% tax) scheduled on Feb 5
    // for Mar 1. January 4000 with 1 seat, February 5500.
    const plan = await insertPlan(db, { currency: 'SGD', price: { model: 'FLAT_FEE', amount: 4000 } });
    const taxed = await insertPlan(db, {
      currency: 'SGD',
      price: { model: 'FLAT_FEE', amount: 4000 },
      taxRatePpm: 250_000,
    });
    const seats = (await createAddOn(db, 'system', { name: 'Seats', currency: 'SGD', amount: 1500n })).id;
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: await insertCustomer(db), planId: plan },
      d('2027-01-01T00:00:00Z'),
    );
    const id = subscription.id;
    await setSubscriptionAddOn(
      db,
      'system',
      id,
      { addOnId: seats, quantity: 1, proration: 'none' },
      d('2027-01-01T00:00:00Z'),
    );
    const february = (await renewSubscription(db, 'system', id, d('2027-02-01T00:00:00Z')))!.invoices[0]!;
    expect(february.total).toBe(5500n);
    await changeSubscription(
      db,
      'system',
      id,
      { planId: taxed, when: 'next_cycle' },
      d('2027-02-05T00:00:00Z'),
      false,
    );
    await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      transitionSubscription(
        work,
        (await lockSubscription(work, id))!,
        'SUSPENDED',
        d('2027-02-08T00:00:00Z'),
        { reason: DUNNING_REASON },
      ),
    );
    await setSubscriptionAddOn(db, 'system', id, { addOnId: seats, quantity: 3 }, d('2027-02-10T00:00:00Z'));
    const feb17 = d('2027-02-17T00:00:00Z');
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      reinstateAfterPayment(work, id, february.id, feb17),
    );
    await sql`CREATE OR REPLACE FUNCTION add_on_charge_fails() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'add-on charge refused'; END $$`.execute(db);
    await sql`CREATE TRIGGER add_on_charge_fails BEFORE INSERT ON invoices FOR EACH ROW
      WHEN (NEW.subscription_id = ${sql.lit(id)} AND NEW.billing_reason = 'subscription_update')
      EXECUTE FUNCTION add_on_charge_fails()`.execute(db);
    const mar1 = d('2027-03-01T00:00:00Z');
    try {
      for (const at of [feb17, mar1]) {
        const sweep = await renewDueSubscriptions(db, 'scheduler', at);
        expect(sweep.failures.filter((f) => f.subscription === id)).toHaveLength(1);
      }
      // March on B at once: (4000 + 3 × 1500) + 25% = 10625. (Once, March waited for the charge, as
      // the charge was taxed by the subscription's plan: 25% as B's lines.)
      expect(await periodInvoices(id)).toHaveLength(3);
    } finally {
      await sql`DROP TRIGGER add_on_charge_fails ON invoices`.execute(db);
    }
    // Mended: the charge, taxed by the plan in force on Feb 17 (A, untaxed) as February's seat line:
    // 2 × 1500 × 12/28 = 1286.
    await renewDueSubscriptions(db, 'scheduler', d('2027-03-01T00:01:00Z'));
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
    // Owed, 2125 of it tax: 4000 + 5500 + 1286 + 10625 = 21411.
    expect(await ledgerIn(app, 'SGD')).toEqual({
      'receivable:customer': 21411,
      revenue: -19286,
      tax_payable: -2125,
    });
  });
});
