import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAddOn } from '../../src/billing/add-ons.ts';
import { createCoupon } from '../../src/billing/coupons.ts';
import { previewSubscriptionAddOn } from '../../src/billing/preview.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { DUNNING_REASON, reinstateAfterPayment } from '../../src/billing/reinstate.ts';
import {
  DEFAULT_RENEWAL_POLICY,
  lockSubscription,
  renewDueSubscriptions,
} from '../../src/billing/renewal.ts';
import { cancelScheduledChange } from '../../src/billing/scheduled-change.ts';
import { redeemAddOnCoupon, setSubscriptionAddOn } from '../../src/billing/subscription-add-ons.ts';
import { transitionSubscription } from '../../src/billing/subscription-status.ts';
import {
  addSubscriptionCoupon,
  createSubscription,
  reactivateSubscription,
  removeSubscriptionCoupon,
  suspendSubscription,
} from '../../src/billing/subscriptions.ts';
import { invoiceRemainingCycles } from '../../src/billing/terms.ts';
import { changeTrial } from '../../src/billing/trials.ts';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import type { Db } from '../../src/db/database.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { settleSubscription } from '../../src/payments/settle.ts';
import { DAY_MS } from '../../src/time.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { customerWith, downgradeCredit, ledgerIn } from '../support/collection.ts';
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
import { insertCustomer, insertPlan } from '../support/plans.ts';

/** The quantity of add-on `addOnId` subscription `id` has, 0 without it. */
const quantityOf = async (db: Db, id: string, addOnId: string) =>
  (
    await db
      .selectFrom('subscription_add_ons')
      .select('quantity')
      .where('subscription_id', '=', id)
      .where('add_on_id', '=', addOnId)
      .executeTakeFirst()
  )?.quantity ?? 0;

/**
 * What else a person does to a subscription while its add-on charge pending since a payment's
 * reactivation keeps failing (test/support/pending-add-on-charge.ts: 2 seats × 1500 from Feb 17, 1286):
 * each goes on without the charge, which the renewal sweep makes once it can, once.
 */
describe('a pending add-on charge that keeps failing never blocks what a person does', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  it('CHF: Support (10.00) added on Feb 21 with prorate_now is charged Feb 21 – Mar 1, 286; once mended the seats Feb 17 – Mar 1 are charged once, 1286', async () => {
    const { id, mend } = await pendingChargeFailing(db, 'CHF', { chargeOnly: true });
    const support = (await createAddOn(db, 'system', { name: 'Support', currency: 'CHF', amount: 1000n })).id;
    try {
      // Before: refused with the charge's failure ('add-on charge refused'), nothing added.
      const set = await setSubscriptionAddOn(
        db,
        'system',
        id,
        { addOnId: support, quantity: 1, proration: 'prorate_now' },
        feb21,
      );
      // 1000 × 8/28 = 285.71 → 286, OPEN for collection.
      expect(set.invoice).toMatchObject({
        total: 286n,
        status: 'OPEN',
        period_start: feb21,
        period_end: mar1,
      });
      expect(await quantityOf(db, id, support)).toBe(1);
      expect(await stateOf(db, id)).toMatchObject({ status: 'ACTIVE', add_on_charge_at: feb17 });
      expect(await activityData(db, id, 'subscription.add_on_set')).toMatchObject({
        add_on: support,
        from: 0,
        to: 1,
        add_on_charge_pending: {
          since: feb17.toISOString(),
          error: expect.stringContaining('add-on charge refused'),
        },
      });
    } finally {
      await mend();
    }
    const mended = await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:01:00Z'));
    expect(mended.failures.filter((f) => f.subscription === id)).toEqual([]);
    expect((await invoicesOf(db, id)).slice(2)).toEqual([
      expect.objectContaining({ total: 286n, period_start: feb21, period_end: mar1 }),
      chargeInvoice(1286n, mar1),
    ]);
    expect((await stateOf(db, id)).add_on_charge_at).toBeNull();
    expect((await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:02:00Z'))).invoices).toBe(0);
    // March: 4000 + 3 × 1500 + 1000 = 9500, the seats charged once.
    await renewDueSubscriptions(db, 'scheduler', mar1);
    expect((await invoicesOf(db, id)).slice(4)).toEqual([
      expect.objectContaining({ period_index: 2, total: 9500n }),
    ]);
    // Owed, no tax: 4000 + 5500 + 286 + 1286 + 9500 = 20572.
    expect(await ledgerIn(app, 'CHF')).toEqual({ 'receivable:customer': 20572, revenue: -20572 });
  });

  it('INR: a charge that fails after its invoice is finalized (the clearing of add_on_charge_at refused) is undone whole: Support (10.00) added on Feb 21 takes the next invoice number of the prefix, no gap, and no activity of the undone invoice is left', async () => {
    const customer = await app.api('POST', '/v1/customers', {
      email: 'ines@example.com',
      invoice_prefix: 'PENDINR',
    });
    expect(customer.status).toBe(201);
    const { id, mend } = await pendingChargeFailing(db, 'INR', { customer: customer.body.id });
    // The database now takes the charge's invoice (finalized, numbered at the unit's end) but refuses
    // what follows it, clearing the charge: the failure comes after the invoice number was asked for.
    await mend();
    const trigger = `charge_clear_fails_${id.replace(/[^a-z0-9]/gi, '_')}`;
    await sql`CREATE OR REPLACE FUNCTION charge_clear_fails() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'clearing the add-on charge refused'; END $$`.execute(db);
    await sql`CREATE TRIGGER ${sql.raw(trigger)} BEFORE UPDATE ON subscriptions FOR EACH ROW
      WHEN (NEW.id = ${sql.lit(id)} AND OLD.add_on_charge_at IS NOT NULL AND NEW.add_on_charge_at IS NULL)
      EXECUTE FUNCTION charge_clear_fails()`.execute(db);
    const counter = () =>
      db
        .selectFrom('invoice_number_counters')
        .select('last_number')
        .where('prefix', '=', 'PENDINR')
        .executeTakeFirstOrThrow()
        .then((r) => BigInt(r.last_number));
    const before = await counter();
    expect(before).toBe(2n); // January and February
    const support = (await createAddOn(db, 'system', { name: 'Support', currency: 'INR', amount: 1000n })).id;
    try {
      const set = await setSubscriptionAddOn(
        db,
        'system',
        id,
        { addOnId: support, quantity: 1, proration: 'prorate_now' },
        feb21,
      );
      expect(set.invoice).toMatchObject({ total: 286n, status: 'OPEN' });
      expect(await activityData(db, id, 'subscription.add_on_set')).toMatchObject({
        add_on_charge_pending: { since: feb17.toISOString(), error: expect.stringContaining('clearing') },
      });
    } finally {
      await sql`DROP TRIGGER IF EXISTS ${sql.raw(trigger)} ON subscriptions`.execute(db);
    }
    // The undone charge's invoice took no number: Support's is PENDINR-000003, the counter at 3.
    const numbers = await db
      .selectFrom('invoices')
      .select(['number', 'total'])
      .where('subscription_id', '=', id)
      .orderBy('number')
      .execute();
    expect(numbers).toEqual([
      { number: 'PENDINR-000001', total: 4000n },
      { number: 'PENDINR-000002', total: 5500n },
      { number: 'PENDINR-000003', total: 286n },
    ]);
    expect(await counter()).toBe(3n);
    // No activity (the outbound events are built from them) names an invoice that does not exist.
    const orphans = await db
      .selectFrom('activities')
      .select(['action', 'resource_id'])
      .where('resource_type', '=', 'invoice')
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(selectFrom('invoices').select('id').whereRef('invoices.id', '=', 'activities.resource_id')),
        ),
      )
      .execute();
    expect(orphans).toEqual([]);
    expect(await stateOf(db, id)).toMatchObject({ add_on_charge_at: feb17 });
    // Once it can be made, the charge takes the next number, PENDINR-000004: 1286.
    await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:01:00Z'));
    const charge = await db
      .selectFrom('invoices')
      .select(['number', 'total'])
      .where('subscription_id', '=', id)
      .where('period_start', '=', feb17)
      .executeTakeFirstOrThrow();
    expect(charge).toEqual({ number: 'PENDINR-000004', total: 1286n });
  });

  it('KRW: settling a 12-cycle term on Feb 21 while the charge fails invoices March – December (10 × 8500) all the same; once mended the seats Feb 17 – Mar 1 are charged once, 1286', async () => {
    const { id, mend } = await pendingChargeFailing(db, 'KRW', { repeat: 12, chargeOnly: true });
    try {
      // Before: refused with the charge's failure ('add-on charge refused'; a 500 through the API).
      const settled = await inUnitOfWork(db, { actor: 'system' }, async (work) =>
        invoiceRemainingCycles(work, (await lockSubscription(work, id))!, feb21),
      );
      expect(settled.invoices.map((i) => i.total)).toEqual(Array(10).fill(8500n));
      expect(await stateOf(db, id)).toMatchObject({ status: 'ACTIVE', add_on_charge_at: feb17 });
    } finally {
      await mend();
    }
    const mended = await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:01:00Z'));
    expect(mended.failures.filter((f) => f.subscription === id)).toEqual([]);
    expect((await invoicesOf(db, id)).slice(12)).toEqual([chargeInvoice(1286n, mar1)]);
    expect((await stateOf(db, id)).add_on_charge_at).toBeNull();
    // 4000 + 5500 + 10 × 8500 + 1286 = 95786 owed, once.
    expect(await ledgerIn(app, 'KRW')).toEqual({ 'receivable:customer': 95786, revenue: -95786 });
  });

  it("THB: settling a 12-cycle term on Feb 21 while the charge fails logs subscription.settled naming add_on_charge_pending (since Feb 17, the charge's error), as a suspension's or a cancellation's activity does", async () => {
    const { id, mend } = await pendingChargeFailing(db, 'THB', { repeat: 12, chargeOnly: true });
    try {
      const settled = await settleSubscription(
        db,
        'system',
        { registry: app.runtime.registry, accounts: app.runtime.accounts },
        id,
        async () => {},
        DEFAULT_RENEWAL_POLICY,
        feb21,
      );
      // March – December, 10 × 8500, invoiced all the same; none charged (the customer has no card).
      expect(settled.invoiced.map((i) => i.total)).toEqual(Array(10).fill(8500n));
      expect(settled.results.every((r) => r.transaction === null)).toBe(true);
      // Before: the activity said nothing of the charge left pending.
      expect(await activityData(db, id, 'subscription.settled')).toMatchObject({
        invoiced: settled.invoiced.map((i) => i.id),
        add_on_charge_pending: {
          since: feb17.toISOString(),
          error: expect.stringContaining('add-on charge refused'),
        },
      });
      expect(await stateOf(db, id)).toMatchObject({ status: 'ACTIVE', add_on_charge_at: feb17 });
    } finally {
      await mend();
    }
    // Settled again once mended: the charge is made by the settle's own renewal, and its activity names
    // nothing pending.
    const again = await settleSubscription(
      db,
      'system',
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      id,
      async () => {},
      DEFAULT_RENEWAL_POLICY,
      d('2027-02-21T00:01:00Z'),
    );
    expect(again.invoiced.map((i) => i.total)).toEqual([1286n]);
    expect(await activityData(db, id, 'subscription.settled')).not.toHaveProperty('add_on_charge_pending');
    expect((await stateOf(db, id)).add_on_charge_at).toBeNull();
  });
  it('DKK: the seats the charge is for, lowered 3 → 1 or raised 3 → 4 on Feb 21, are 409 add_on_charge_pending (field quantity), nothing changed; once mended 1286, and then lowered they charge nothing more', async () => {
    const { id, seats, mend } = await pendingChargeFailing(db, 'DKK');
    try {
      // Lowered before the charge is made, the charge would be for 1 seat beyond the one paid for:
      // nothing (the 2 seats served Feb 17 – 21 never billed). Before: refused with the charge's error.
      for (const quantity of [1, 4]) {
        const refused = await setSubscriptionAddOn(
          db,
          'system',
          id,
          { addOnId: seats, quantity, proration: 'prorate_now' },
          feb21,
        ).catch((e: unknown) => e);
        expect(refused).toMatchObject({
          status: 409,
          code: 'add_on_charge_pending',
          fields: { quantity: expect.stringContaining(feb17.toISOString()) },
        });
      }
      expect(await quantityOf(db, id, seats)).toBe(3);
      expect(await invoicesOf(db, id)).toHaveLength(2);
      expect(await stateOf(db, id)).toMatchObject({ add_on_charge_at: feb17 });
    } finally {
      await mend();
    }
    await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:01:00Z'));
    expect((await invoicesOf(db, id)).slice(2)).toEqual([chargeInvoice(1286n, mar1)]);
    // The charge made, the seats are the subscription's to change: lowered, no credit, nothing charged.
    const lowered = await setSubscriptionAddOn(
      db,
      'system',
      id,
      { addOnId: seats, quantity: 1 },
      d('2027-02-22T00:00:00Z'),
    );
    expect(lowered.invoice).toBeNull();
    expect(await invoicesOf(db, id)).toHaveLength(3);
    expect(await ledgerIn(app, 'DKK')).toEqual({ 'receivable:customer': 10786, revenue: -10786 });
  });

  it('NOK: a 10% coupon redeemed on the subscription and one on Seats on Feb 21, the latter removed Feb 22, go on; once mended the charge is 1286 undiscounted, and March 4000 − 400 + 4500 = 8100', async () => {
    const { id, seats, mend } = await pendingChargeFailing(db, 'NOK');
    await createCoupon(db, 'system', { code: 'TENTH-NOK', percentOffPpm: 100_000, duration: 'FOREVER' });
    await createCoupon(db, 'system', {
      code: 'SEATS-TENTH-NOK',
      percentOffPpm: 100_000,
      duration: 'FOREVER',
      appliesToAddOns: [seats],
    });
    try {
      // Before: both refused with the charge's failure, nothing redeemed.
      const plan = await addSubscriptionCoupon(db, 'system', id, 'TENTH-NOK', undefined, feb21);
      const onSeats = await redeemAddOnCoupon(db, 'system', id, seats, 'SEATS-TENTH-NOK', undefined, feb21);
      expect([plan.first_period_index, onSeats.first_period_index]).toEqual([2, 2]);
      // And the one on Seats removed again on Feb 22 (before: refused with the charge's failure too).
      const removed = await removeSubscriptionCoupon(db, 'system', id, onSeats.id, d('2027-02-22T00:00:00Z'));
      expect(removed.removed_at).toEqual(d('2027-02-22T00:00:00Z'));
      expect(await stateOf(db, id)).toMatchObject({ add_on_charge_at: feb17 });
      expect(await invoicesOf(db, id)).toHaveLength(2);
    } finally {
      await mend();
    }
    // The seats served Feb 17 – Mar 1 were served before the coupons counted: 1286 whole.
    await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:01:00Z'));
    expect((await invoicesOf(db, id)).slice(2)).toEqual([chargeInvoice(1286n, mar1)]);
    await renewDueSubscriptions(db, 'scheduler', mar1);
    expect((await invoicesOf(db, id)).slice(3)).toEqual([
      expect.objectContaining({ period_index: 2, total: 8100n }),
    ]);
    // Owed, no tax: 4000 + 5500 + 1286 + 8100 = 18886.
    expect(await ledgerIn(app, 'NOK')).toEqual({ 'receivable:customer': 18886, revenue: -18886 });
  });

  it('SEK: suspended by hand on Feb 21 while the charge fails, reactivated by hand on Feb 24; an add-on set while suspended is 409; once mended the seats Feb 17 – Mar 1 are charged, 1286', async () => {
    const { id, mend } = await pendingChargeFailing(db, 'SEK', { chargeOnly: true });
    const support = (await createAddOn(db, 'system', { name: 'Support', currency: 'SEK', amount: 1000n })).id;
    const feb24 = d('2027-02-24T00:00:00Z');
    try {
      // Before: refused with the charge's failure ('add-on charge refused'), still ACTIVE.
      const suspended = await suspendSubscription(db, 'system', id, feb21, 'customer asked');
      expect(suspended).toMatchObject({ status: 'SUSPENDED', add_on_charge_at: feb17 });
      expect(await activityData(db, id, 'subscription.suspended')).toMatchObject({
        suspend_reason: 'customer asked',
        add_on_charge_pending: {
          since: feb17.toISOString(),
          error: expect.stringContaining('add-on charge refused'),
        },
      });
      // Units set in this suspension would be charged from its reactivation in place of the pending
      // charge (reinstate.ts resumeSuspended): refused, nothing changed.
      const refused = await setSubscriptionAddOn(
        db,
        'system',
        id,
        { addOnId: support, quantity: 1 },
        d('2027-02-22T00:00:00Z'),
      ).catch((e: unknown) => e);
      expect(refused).toMatchObject({
        status: 409,
        code: 'add_on_charge_pending',
        fields: { quantity: expect.stringContaining(feb17.toISOString()) },
      });
      expect(await quantityOf(db, id, support)).toBe(0);
      // Before: refused with the charge's failure too. Within February (invoiced), nothing invoiced.
      const reactivated = await reactivateSubscription(db, 'system', id, feb24);
      expect(reactivated.subscription).toMatchObject({ status: 'ACTIVE', add_on_charge_at: feb17 });
      expect(reactivated.invoices).toEqual([]);
      expect(await invoicesOf(db, id)).toHaveLength(2);
    } finally {
      await mend();
    }
    // The 2 seats were served from Feb 17; the suspension since credits none of it: 1286, once.
    const mended = await renewDueSubscriptions(db, 'scheduler', d('2027-02-24T00:01:00Z'));
    expect(mended.failures.filter((f) => f.subscription === id)).toEqual([]);
    expect((await invoicesOf(db, id)).slice(2)).toEqual([chargeInvoice(1286n, mar1)]);
    expect(await stateOf(db, id)).toMatchObject({ status: 'ACTIVE', add_on_charge_at: null });
    expect((await renewDueSubscriptions(db, 'scheduler', d('2027-02-24T00:02:00Z'))).invoices).toBe(0);
    // Owed, no tax: 4000 + 5500 + 1286 = 10786.
    expect(await ledgerIn(app, 'SEK')).toEqual({ 'receivable:customer': 10786, revenue: -10786 });
  });

  it("EUR: moving a trial's end, or ending it now, on Feb 21 is 409 not_in_trial (ACTIVE since January), nothing changed; once mended 1286", async () => {
    const { id, mend } = await pendingChargeFailing(db, 'EUR');
    try {
      // Before: the charge's failure ('add-on charge refused') in place of the answer.
      for (const end of [d('2027-03-15T00:00:00Z'), 'now' as const]) {
        const refused = await changeTrial(db, 'system', id, end, feb21).catch((e: unknown) => e);
        expect(refused).toMatchObject({ status: 409, code: 'not_in_trial' });
      }
      expect(await stateOf(db, id)).toMatchObject({ status: 'ACTIVE', add_on_charge_at: feb17 });
      expect(await invoicesOf(db, id)).toHaveLength(2);
    } finally {
      await mend();
    }
    await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:01:00Z'));
    expect((await invoicesOf(db, id)).slice(2)).toEqual([chargeInvoice(1286n, mar1)]);
    expect(await ledgerIn(app, 'EUR')).toEqual({ 'receivable:customer': 10786, revenue: -10786 });
  });

  it('USD: a change to a 50.00 plan scheduled for Mar 1 is cancelled on Feb 22 while the charge fails; once mended 1286, and March bills the old plan, 4000 + 3 × 1500 = 8500', async () => {
    const { id, plan, mend } = await pendingChargeFailing(db, 'USD');
    const bigger = await insertPlan(db, { currency: 'USD', price: { model: 'FLAT_FEE', amount: 5000 } });
    try {
      // Scheduled on Feb 21 (a change by hand goes on without the charge).
      await changeSubscription(db, 'system', id, { planId: bigger, when: 'next_cycle' }, feb21, false);
      // Before: refused with the charge's failure ('add-on charge refused'), the change still scheduled.
      const cancelled = await cancelScheduledChange(db, 'system', id, d('2027-02-22T00:00:00Z'));
      expect(cancelled).toMatchObject({
        plan_id: plan,
        scheduled_plan_id: null,
        scheduled_quantity: null,
        add_on_charge_at: feb17,
      });
      expect(await activityData(db, id, 'subscription.scheduled_change_cancelled')).toMatchObject({
        plan: bigger,
      });
    } finally {
      await mend();
    }
    await renewDueSubscriptions(db, 'scheduler', d('2027-02-22T00:01:00Z'));
    expect((await invoicesOf(db, id)).slice(2)).toEqual([chargeInvoice(1286n, mar1)]);
    await renewDueSubscriptions(db, 'scheduler', mar1);
    expect((await invoicesOf(db, id)).slice(3)).toEqual([
      expect.objectContaining({ period_index: 2, total: 8500n }),
    ]);
    expect(await stateOf(db, id)).toMatchObject({ status: 'ACTIVE' });
    // Owed, no tax: 4000 + 5500 + 1286 + 8500 = 19286.
    expect(await ledgerIn(app, 'USD')).toEqual({ 'receivable:customer': 19286, revenue: -19286 });
  });

  it("AUD: a usage event on Feb 21 reaching the customer's SUSPEND limit (600 calls × 2 = 1200 ≥ 1000) suspends it while the charge fails; once mended the seats Feb 17 – Mar 1 are charged, 1286", async () => {
    const { id, mend } = await pendingChargeFailing(db, 'AUD', {
      metered: [{ code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 2 } }],
    });
    const { customer_id: customer } = await db
      .selectFrom('subscriptions')
      .select('customer_id')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    const limit = await app.api('POST', '/v1/usage-limits', {
      customer,
      amount: 1000,
      currency: 'AUD',
      action: 'SUSPEND',
    });
    expect(limit.status).toBe(201);
    try {
      // Before: the event was stored, then the limit's suspension failed with the charge's error
      // ('add-on charge refused', thrown to the caller): still ACTIVE, the limit never acted (a retry
      // of the event is a repeat, not checked again).
      const usage = {
        eventId: 'evt-aud-1',
        subscriptionId: id,
        code: 'api_calls',
        value: 600n,
        timestamp: feb21,
      };
      expect((await recordUsageEvent(db, 'system', usage, feb21)).created).toBe(true);
      expect(await stateOf(db, id)).toMatchObject({ status: 'SUSPENDED', add_on_charge_at: feb17 });
      expect(await activityData(db, id, 'subscription.suspended')).toMatchObject({
        reason: 'usage_limit',
        usage_limit: limit.body.id,
        add_on_charge_pending: { since: feb17.toISOString() },
      });
    } finally {
      await mend();
    }
    await renewDueSubscriptions(db, 'scheduler', d('2027-02-21T00:01:00Z'));
    expect((await invoicesOf(db, id)).slice(2)).toEqual([chargeInvoice(1286n, mar1)]);
    expect((await stateOf(db, id)).add_on_charge_at).toBeNull();
  });

  it('GBP: previewing Support (10.00) on Feb 21 answers its proration, 286, writing nothing; previewing the seats lowered 3 → 1 is 409 add_on_charge_pending as setting them is', async () => {
    const { id, seats, mend } = await pendingChargeFailing(db, 'GBP', { chargeOnly: true });
    const support = (await createAddOn(db, 'system', { name: 'Support', currency: 'GBP', amount: 1000n })).id;
    const policy = { billSuspended: false };
    try {
      // Before: the charge's failure ('add-on charge refused') in place of the preview.
      const preview = await previewSubscriptionAddOn(
        db,
        'system',
        id,
        { addOnId: support, quantity: 1, proration: 'prorate_now' },
        feb21,
        policy,
      );
      expect(preview.proration).toMatchObject({ total: 286n, periodStart: feb21, periodEnd: mar1 });
      const refused = await previewSubscriptionAddOn(
        db,
        'system',
        id,
        { addOnId: seats, quantity: 1 },
        feb21,
        policy,
      ).catch((e: unknown) => e);
      expect(refused).toMatchObject({ status: 409, code: 'add_on_charge_pending' });
      expect(await invoicesOf(db, id)).toHaveLength(2);
      expect(await quantityOf(db, id, support)).toBe(0);
    } finally {
      await mend();
    }
  });

  it('CAD over HTTP, on the real clock (the API takes its own): with the charge failing, a suspension, a reactivation and a coupon answer 200/201, the seats lowered and a trial moved 409, a scheduled change cancelled 409 no_scheduled_change; once mended the charge is made once', async () => {
    const now = Date.now();
    const at = (days: number) => new Date(now + days * DAY_MS);
    const plan = await insertPlan(db, { currency: 'CAD', price: { model: 'FLAT_FEE', amount: 4000 } });
    const seats = (await createAddOn(db, 'system', { name: 'Seats', currency: 'CAD', amount: 1500n })).id;
    const { subscription, invoices } = await createSubscription(
      db,
      'system',
      { customerId: await insertCustomer(db), planId: plan },
      at(-10),
    );
    const id = subscription.id;
    await setSubscriptionAddOn(db, 'system', id, { addOnId: seats, quantity: 1, proration: 'none' }, at(-10));
    await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      transitionSubscription(work, (await lockSubscription(work, id))!, 'SUSPENDED', at(-5), {
        reason: DUNNING_REASON,
      }),
    );
    await setSubscriptionAddOn(db, 'system', id, { addOnId: seats, quantity: 3 }, at(-4));
    const resumed = at(-1 / 24);
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      reinstateAfterPayment(work, id, invoices[0]!.id, resumed),
    );
    expect(await stateOf(db, id)).toMatchObject({ status: 'ACTIVE', add_on_charge_at: resumed });
    const trigger = `add_on_charge_fails_${id.replace(/[^a-z0-9]/gi, '_')}`;
    await sql`CREATE OR REPLACE FUNCTION add_on_charge_fails() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'add-on charge refused'; END $$`.execute(db);
    await sql`CREATE TRIGGER ${sql.raw(trigger)} BEFORE INSERT ON invoices FOR EACH ROW
      WHEN (NEW.subscription_id = ${sql.lit(id)} AND NEW.billing_reason = 'subscription_update')
      EXECUTE FUNCTION add_on_charge_fails()`.execute(db);
    await createCoupon(db, 'system', { code: 'TENTH-CAD', percentOffPpm: 100_000, duration: 'FOREVER' });
    try {
      // Before: each answered 500 internal_error (the charge's failure).
      const lowered = await app.api('POST', `/v1/subscriptions/${id}/add-ons`, {
        add_on: seats,
        quantity: 1,
      });
      expect([lowered.status, lowered.body.error.code]).toEqual([409, 'add_on_charge_pending']);
      expect(Object.keys(lowered.body.error.fields)).toEqual(['quantity']);
      const coupon = await app.api('POST', `/v1/subscriptions/${id}/coupons`, { coupon: 'TENTH-CAD' });
      expect(coupon.status).toBe(201);
      const trial = await app.api('POST', `/v1/subscriptions/${id}/trial`, { trial_end: 'now' });
      expect([trial.status, trial.body.error.code]).toEqual([409, 'not_in_trial']);
      const unscheduled = await app.api('POST', `/v1/subscriptions/${id}/scheduled-change/cancel`);
      expect([unscheduled.status, unscheduled.body.error.code]).toEqual([409, 'no_scheduled_change']);
      const suspended = await app.api('POST', `/v1/subscriptions/${id}/suspend`, { suspend_reason: 'asked' });
      expect([suspended.status, suspended.body.status]).toEqual([200, 'SUSPENDED']);
      const reactivated = await app.api('POST', `/v1/subscriptions/${id}/reactivate`);
      expect([reactivated.status, reactivated.body.status]).toEqual([200, 'ACTIVE']);
      expect(await stateOf(db, id)).toMatchObject({ status: 'ACTIVE', add_on_charge_at: resumed });
      expect(await invoicesOf(db, id)).toHaveLength(1);
    } finally {
      await sql`DROP TRIGGER IF EXISTS ${sql.raw(trigger)} ON invoices`.execute(db);
    }
    // Mended: the 2 seats from the reactivation to the period's end, once.
    await renewDueSubscriptions(db, 'scheduler', new Date());
    const after = await invoicesOf(db, id);
    expect(after.slice(1)).toEqual([
      expect.objectContaining({ billing_reason: 'subscription_update', period_start: resumed }),
    ]);
    expect(after[1]!.total).toBeGreaterThan(0n);
    expect((await stateOf(db, id)).add_on_charge_at).toBeNull();
  });
});

/**
 * A cancellation scheduled (at period end, or at a date) while the pending add-on charge fails: what
 * the charge owes once made follows the cancellation's refund as a cancellation now does, as if the
 * charge had been made first and the refund (given when scheduled, for the time from `cancel_at`)
 * had reached its invoice: `prorate` up to `cancel_at`, `none` to the period's end, `full` nothing.
 */
describe('a cancellation scheduled while a pending add-on charge keeps failing', () => {
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
  const feb25 = d('2027-02-25T00:00:00Z');

  it('PLN: cancel at Feb 25 with refund none, scheduled Feb 21; the sweep ends it Feb 25; once mended the seats are charged to the period end, Feb 17 – Mar 1, 1286 (nothing given back), not to Feb 25', async () => {
    const { id, mend } = await pendingChargeFailing(db, 'PLN');
    try {
      const scheduled = await cancel(id, { when: 'date', cancelAt: feb25, refundType: 'none' }, feb21);
      expect(scheduled.subscription).toMatchObject({ status: 'ACTIVE', cancel_at: feb25 });
      expect(await activityData(db, id, 'subscription.cancellation_scheduled')).toMatchObject({
        add_on_charge_pending: { since: feb17.toISOString() },
      });
      await renewDueSubscriptions(db, 'scheduler', feb25);
      expect(await stateOf(db, id)).toMatchObject({ status: 'CANCELLED', cancelled_at: feb25 });
    } finally {
      await mend();
    }
    // Made first on Feb 21, the charge was 1286 to Mar 1 and the cancellation gave none of it back.
    // Before: 2 × 1500 × 8/28 = 857, Feb 17 – Feb 25.
    await renewDueSubscriptions(db, 'scheduler', d('2027-02-25T00:01:00Z'));
    expect((await invoicesOf(db, id)).slice(2)).toEqual([chargeInvoice(1286n, mar1)]);
    expect((await stateOf(db, id)).add_on_charge_at).toBeNull();
    expect(await ledgerIn(app, 'PLN')).toEqual({ 'receivable:customer': 10786, revenue: -10786 });
  });

  it('RON: cancel at Feb 25 with refund none, scheduled Feb 21; mended on Feb 22, before the cancellation, the sweep charges Feb 17 – Mar 1, 1286', async () => {
    const { id, mend } = await pendingChargeFailing(db, 'RON');
    try {
      await cancel(id, { when: 'date', cancelAt: feb25, refundType: 'none' }, feb21);
    } finally {
      await mend();
    }
    // Still ACTIVE until Feb 25. Before: 857 for Feb 17 – Feb 25 (the time served up to cancel_at).
    await renewDueSubscriptions(db, 'scheduler', d('2027-02-22T00:00:00Z'));
    expect((await invoicesOf(db, id)).slice(2)).toEqual([chargeInvoice(1286n, mar1)]);
    expect(await stateOf(db, id)).toMatchObject({
      status: 'ACTIVE',
      cancel_at: feb25,
      add_on_charge_at: null,
    });
    await renewDueSubscriptions(db, 'scheduler', feb25);
    expect(await stateOf(db, id)).toMatchObject({ status: 'CANCELLED', cancelled_at: feb25 });
    expect(await invoicesOf(db, id)).toHaveLength(3);
    expect(await ledgerIn(app, 'RON')).toEqual({ 'receivable:customer': 10786, revenue: -10786 });
  });

  it('HUF: cancel at Feb 25 with a prorate refund, February paid by customer credit: 786 back to the credit when scheduled; once mended the seats are charged Feb 17 – Feb 25, 857', async () => {
    const { customer } = await customerWith(app);
    const { id, mend } = await pendingChargeFailing(db, 'HUF', {
      customer: customer.id,
      beforeFebruary: () => downgradeCredit(app, customer.id, 'HUF', 18600),
    });
    try {
      // 4 of February's 28 days given back: 5500 × 4/28 = 785.71 → 786.
      const scheduled = await cancel(id, { when: 'date', cancelAt: feb25, refundType: 'prorate' }, feb21);
      expect(scheduled.creditNotes.map((n) => n.total)).toEqual([786n]);
      await renewDueSubscriptions(db, 'scheduler', feb25);
    } finally {
      await mend();
    }
    // The time served up to the cancellation: 2 × 1500 × 8/28 = 857.14 → 857, 786 of it paid by the
    // credit the cancellation gave back, 71 still owed.
    await renewDueSubscriptions(db, 'scheduler', d('2027-02-25T00:01:00Z'));
    const after = await invoicesOf(db, id);
    expect(after.slice(2)).toEqual([chargeInvoice(857n, feb25)]);
    expect(
      await db
        .selectFrom('invoices')
        .select(['credit_applied', 'amount_due'])
        .where('id', '=', after[2]!.id)
        .executeTakeFirstOrThrow(),
    ).toEqual({ credit_applied: 786n, amount_due: 71n });
    const books = await ledgerIn(app, 'HUF');
    expect(Object.values(books).reduce((sum, balance) => sum + balance, 0)).toBe(0);
  });

  it('CZK: cancel at period end with a full refund, February paid by customer credit: 5500 back to the credit when scheduled; the sweep ends it Mar 1; once mended nothing is charged and the charge is cleared', async () => {
    const { customer } = await customerWith(app);
    const { id, mend } = await pendingChargeFailing(db, 'CZK', {
      customer: customer.id,
      beforeFebruary: () => downgradeCredit(app, customer.id, 'CZK', 18600),
    });
    try {
      const scheduled = await cancel(id, { when: 'period_end', refundType: 'full' }, feb21);
      expect(scheduled.subscription).toMatchObject({ cancel_at: mar1, cancel_at_period_end: true });
      expect(scheduled.creditNotes.map((n) => n.total)).toEqual([5500n]);
      await renewDueSubscriptions(db, 'scheduler', mar1);
      expect(await stateOf(db, id)).toMatchObject({ status: 'CANCELLED', cancelled_at: mar1 });
    } finally {
      await mend();
    }
    // Made first, the charge's OPEN invoice would have been voided whole by the full refund. Before:
    // 1286 charged for Feb 17 – Mar 1 though the whole period was given back.
    const mended = await renewDueSubscriptions(db, 'scheduler', d('2027-03-01T00:01:00Z'));
    expect(mended.failures.filter((f) => f.subscription === id)).toEqual([]);
    expect(await invoicesOf(db, id)).toHaveLength(2);
    expect((await stateOf(db, id)).add_on_charge_at).toBeNull();
    // The 5500 given back, less March's 1250 (1000 + 25%) of the customer's downgraded subscription
    // (downgradeCredit), which the Mar 1 sweep invoiced: none of it taken by the charge.
    expect(await app.api('GET', `/v1/customers/${customer.id}`).then((r) => r.body.credit)).toEqual([
      { currency: 'CZK', amount: 5500 - 1250 },
    ]);
  });

  it('MXN: cancel at Feb 25 with a prorate refund scheduled Feb 21 (786 back to the credit), then cancelled now on Feb 23 with refund none, the charge failing at both: once mended the seats are charged Feb 17 – Feb 25, 857, not to Mar 1', async () => {
    const { customer } = await customerWith(app);
    const { id, mend } = await pendingChargeFailing(db, 'MXN', {
      customer: customer.id,
      beforeFebruary: () => downgradeCredit(app, customer.id, 'MXN', 18600),
    });
    const feb23 = d('2027-02-23T00:00:00Z');
    try {
      // 4 of February's 28 days given back: 5500 × 4/28 = 785.71 → 786.
      const scheduled = await cancel(id, { when: 'date', cancelAt: feb25, refundType: 'prorate' }, feb21);
      expect(scheduled.creditNotes.map((n) => n.total)).toEqual([786n]);
      const cancelled = await cancel(id, { when: 'now', refundType: 'none' }, feb23);
      expect(cancelled.subscription).toMatchObject({
        status: 'CANCELLED',
        cancelled_at: feb23,
        cancel_at: null,
      });
      expect(await activityData(db, id, 'subscription.cancelled')).toMatchObject({
        add_on_charge_pending: { since: feb17.toISOString() },
      });
    } finally {
      await mend();
    }
    // Made first on Feb 21: 2 × 1500 × 12/28 = 1285.71 → 1286 to Mar 1, lowered by the scheduled
    // prorate refund by its unused share from Feb 25 (1286 × 4/12 = 428.67 → 429) to 857; the
    // cancellation now on Feb 23 with refund none gave nothing more back. Before: the scheduled
    // cancellation's refund was forgotten once cancel-now replaced it, 1286 to Mar 1.
    await renewDueSubscriptions(db, 'scheduler', d('2027-02-23T00:01:00Z'));
    expect((await invoicesOf(db, id)).slice(2)).toEqual([chargeInvoice(857n, feb25)]);
    expect((await stateOf(db, id)).add_on_charge_at).toBeNull();
    const books = await ledgerIn(app, 'MXN');
    expect(Object.values(books).reduce((sum, balance) => sum + balance, 0)).toBe(0);
  });

  it('ZAR: cancel at period end with a full refund scheduled Feb 21 (5500 back to the credit), then cancelled now on Feb 23 with refund none, the charge failing at both: once mended nothing is charged and the charge is cleared', async () => {
    const { customer } = await customerWith(app);
    const { id, mend } = await pendingChargeFailing(db, 'ZAR', {
      customer: customer.id,
      beforeFebruary: () => downgradeCredit(app, customer.id, 'ZAR', 18600),
    });
    const feb23 = d('2027-02-23T00:00:00Z');
    try {
      const scheduled = await cancel(id, { when: 'period_end', refundType: 'full' }, feb21);
      expect(scheduled.creditNotes.map((n) => n.total)).toEqual([5500n]);
      const cancelled = await cancel(id, { when: 'now', refundType: 'none' }, feb23);
      expect(cancelled.subscription).toMatchObject({
        status: 'CANCELLED',
        cancelled_at: feb23,
        cancel_at: null,
      });
    } finally {
      await mend();
    }
    // Made first on Feb 21, the charge's OPEN invoice (1286) was voided whole by the scheduled full
    // refund; the cancellation now with refund none took nothing back. (Its own try of the charge,
    // with the full refund still scheduled, owes nothing and clears it: no charge left to forget.)
    const mended = await renewDueSubscriptions(db, 'scheduler', d('2027-02-23T00:01:00Z'));
    expect(mended.failures.filter((f) => f.subscription === id)).toEqual([]);
    expect(await invoicesOf(db, id)).toHaveLength(2);
    expect((await stateOf(db, id)).add_on_charge_at).toBeNull();
  });

  it('BRL: cancel at Feb 25 with refund none scheduled Jan 15, before the charge was pending, then cancelled now on Feb 23 with refund none while the charge fails: once mended the seats are charged Feb 17 – Feb 25, 857, not to Mar 1', async () => {
    const { id, mend } = await pendingChargeFailing(db, 'BRL', {
      beforeFebruary: (sub) =>
        cancel(sub, { when: 'date', cancelAt: feb25, refundType: 'none' }, d('2027-01-15T00:00:00Z')),
    });
    const feb23 = d('2027-02-23T00:00:00Z');
    try {
      expect(await stateOf(db, id)).toMatchObject({
        status: 'ACTIVE',
        cancel_at: feb25,
        add_on_charge_at: feb17,
      });
      const cancelled = await cancel(id, { when: 'now', refundType: 'none' }, feb23);
      expect(cancelled.subscription).toMatchObject({
        status: 'CANCELLED',
        cancelled_at: feb23,
        cancel_at: null,
      });
      expect(await activityData(db, id, 'subscription.cancelled')).toMatchObject({
        add_on_charge_pending: { since: feb17.toISOString() },
      });
    } finally {
      await mend();
    }
    // Made first (on Feb 23 or any time before), the charge was to the scheduled cancel_at, Feb 25
    // (an add-on charged after a scheduled cancellation is charged to cancel_at only):
    // 2 × 1500 × 8/28 = 857.14 → 857; the cancellation now with refund none gave nothing back.
    // Before: the cancel_at it replaced was forgotten, 1286 to Mar 1.
    await renewDueSubscriptions(db, 'scheduler', d('2027-02-23T00:01:00Z'));
    expect((await invoicesOf(db, id)).slice(2)).toEqual([chargeInvoice(857n, feb25)]);
    expect((await stateOf(db, id)).add_on_charge_at).toBeNull();
    expect(await ledgerIn(app, 'BRL')).toEqual({ 'receivable:customer': 10357, revenue: -10357 });
  });

  it("SGD: cancelled now on Mar 10 with a full refund of March (8500, paid by customer credit) while February's charge fails: the refund reaches March only, so once mended the seats Feb 17 – Mar 1 are still charged, 1286", async () => {
    const { customer } = await customerWith(app);
    const { id, mend } = await pendingChargeFailing(db, 'SGD', { customer: customer.id });
    // Credit from a downgrade on Feb 22: (32200 − 1000) × 7/28 = 7800 + 25% = 9750, enough for March's
    // 8500 and the downgraded subscription's own March, 1000 + 25% = 1250.
    await downgradeCredit(app, customer.id, 'SGD', 32200);
    const mar10 = d('2027-03-10T00:00:00Z');
    try {
      await renewDueSubscriptions(db, 'scheduler', mar1);
      const march = (await invoicesOf(db, id))[2]!;
      expect(march).toMatchObject({ period_index: 2, total: 8500n, status: 'PAID' });
      const cancelled = await cancel(id, { when: 'now', refundType: 'full' }, mar10);
      expect(cancelled.subscription).toMatchObject({ status: 'CANCELLED', cancelled_at: mar10 });
      expect(cancelled.creditNotes.map((n) => [n.invoice_id, n.total])).toEqual([[march.id, 8500n]]);
      expect(await stateOf(db, id)).toMatchObject({ add_on_charge_at: feb17 });
    } finally {
      await mend();
    }
    // Made first, the charge's invoice (Feb 17 – Mar 1) was no invoice of March's: the full refund of
    // March left it owed. Before: nothing charged and the charge cleared (1286 of seats served never
    // billed), as for a full refund of February.
    const mended = await renewDueSubscriptions(db, 'scheduler', d('2027-03-10T00:01:00Z'));
    expect(mended.failures.filter((f) => f.subscription === id)).toEqual([]);
    // Paid at once by the 8500 of credit the refund gave back (the rest of the 9750 went to the two
    // Marches): 8500 − 1286 = 7214 left.
    expect((await invoicesOf(db, id)).slice(3)).toEqual([{ ...chargeInvoice(1286n, mar1), status: 'PAID' }]);
    expect((await stateOf(db, id)).add_on_charge_at).toBeNull();
    expect(await app.api('GET', `/v1/customers/${customer.id}`).then((r) => r.body.credit)).toEqual([
      { currency: 'SGD', amount: 8500 - 1286 },
    ]);
    const books = await ledgerIn(app, 'SGD');
    expect(Object.values(books).reduce((sum, balance) => sum + balance, 0)).toBe(0);
  });
});
