import { sql } from 'kysely';
import { expect } from 'vitest';
import { createAddOn } from '../../src/billing/add-ons.ts';
import { DUNNING_REASON, reinstateAfterPayment } from '../../src/billing/reinstate.ts';
import { lockSubscription, renewSubscription } from '../../src/billing/renewal.ts';
import { setSubscriptionAddOn } from '../../src/billing/subscription-add-ons.ts';
import { transitionSubscription } from '../../src/billing/subscription-status.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { insertCustomer, insertPlan } from './plans.ts';

/**
 * Helpers of the tests of an add-on charge pending since a payment's reactivation whose making keeps
 * failing (test/billing/pending-add-on-charge*.test.ts).
 */

export const d = (iso: string) => new Date(iso);
export const feb17 = d('2027-02-17T00:00:00Z');
export const feb21 = d('2027-02-21T00:00:00Z');
export const mar1 = d('2027-03-01T00:00:00Z');

/**
 * A subscription in `currency` with an add-on charge pending since a payment's reactivation on Feb 17
 * 2027: 40.00 a month untaxed (`taxRatePpm` to tax it), Seats 15.00 each; January 4000 with 1 seat,
 * February 4000 + 1500 = 5500 (OPEN); suspended by dunning Feb 8, raised to 3 seats Feb 10 (nothing
 * charged while suspended), reinstated by February's payment Feb 17: 2 seats from Feb 17 to Mar 1
 * are owed, 2 × 1500 × 12/28 = 1285.71 → 1286. Then making that charge fails (the database refuses
 * the subscription's `subscription_update` invoices; with `chargeOnly`, only those from Feb 17, the
 * charge's, so other add-on invoices can be made) until `mend` is called.
 */
export async function pendingChargeFailing(
  db: Db,
  currency: string,
  o: {
    customer?: string;
    paymentMethodId?: string;
    taxRatePpm?: number;
    /** Run after January is invoiced, before February is (customer credit for February, say), with the subscription's id. */
    beforeFebruary?: (id: string) => Promise<unknown>;
    /** Refuse only the charge's invoice (`period_start` Feb 17), not the other add-on invoices. */
    chargeOnly?: boolean;
    /** The plan's metered prices, as `insertPlan` takes them. */
    metered?: unknown;
    /** A fixed term of this many billing cycles (`repeat`). */
    repeat?: number;
  } = {},
) {
  const plan = await insertPlan(db, {
    currency,
    price: { model: 'FLAT_FEE', amount: 4000 },
    ...(o.taxRatePpm === undefined ? {} : { taxRatePpm: o.taxRatePpm }),
    ...(o.metered === undefined ? {} : { metered: o.metered }),
  });
  const seats = (await createAddOn(db, 'system', { name: 'Seats', currency, amount: 1500n })).id;
  const { subscription } = await createSubscription(
    db,
    'system',
    {
      customerId: o.customer ?? (await insertCustomer(db)),
      planId: plan,
      paymentMethodId: o.paymentMethodId,
      ...(o.repeat === undefined ? {} : { repeat: o.repeat }),
    },
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
  await o.beforeFebruary?.(id);
  const february = (await renewSubscription(db, 'system', id, d('2027-02-01T00:00:00Z')))!.invoices[0]!;
  expect(february.total).toBe(5500n);
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
  await inUnitOfWork(db, { actor: 'system' }, (work) => reinstateAfterPayment(work, id, february.id, feb17));
  const trigger = `add_on_charge_fails_${id.replace(/[^a-z0-9]/gi, '_')}`;
  await sql`CREATE OR REPLACE FUNCTION add_on_charge_fails() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'add-on charge refused'; END $$`.execute(db);
  await sql`CREATE TRIGGER ${sql.raw(trigger)} BEFORE INSERT ON invoices FOR EACH ROW
    WHEN (NEW.subscription_id = ${sql.lit(id)} AND NEW.billing_reason = 'subscription_update'
      ${o.chargeOnly ? sql`AND NEW.period_start = ${sql.lit(feb17.toISOString())}::timestamptz` : sql``})
    EXECUTE FUNCTION add_on_charge_fails()`.execute(db);
  const mend = () => sql`DROP TRIGGER IF EXISTS ${sql.raw(trigger)} ON invoices`.execute(db);
  return { id, plan, seats, february, mend };
}

export const invoicesOf = (db: Db, id: string) =>
  db
    .selectFrom('invoices')
    .select(['id', 'period_index', 'billing_reason', 'status', 'total', 'period_start', 'period_end'])
    .where('subscription_id', '=', id)
    .orderBy('created_at')
    // Invoices made in one transaction share created_at: in the order numbered.
    .orderBy('number')
    .orderBy('id')
    .execute();

export const stateOf = (db: Db, id: string) =>
  db
    .selectFrom('subscriptions')
    .select(['status', 'cancelled_at', 'cancel_at', 'add_on_charge_at'])
    .where('id', '=', id)
    .executeTakeFirstOrThrow();

/** The latest activity `action` of subscription `id`'s, its data. */
export const activityData = async (db: Db, id: string, action: string) =>
  (
    await db
      .selectFrom('activities')
      .select('data')
      .where('resource_type', '=', 'subscription')
      .where('resource_id', '=', id)
      .where('action', '=', action)
      .orderBy('sequence', 'desc')
      .limit(1)
      .executeTakeFirstOrThrow()
  ).data;

/** The add-on charge's invoice made once it is mended: one, OPEN, `total` over Feb 17 – `end`. */
export const chargeInvoice = (total: bigint, end: Date) => ({
  id: expect.any(String),
  period_index: null,
  billing_reason: 'subscription_update',
  status: 'OPEN',
  total,
  period_start: feb17,
  period_end: end,
});
