import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAddOn } from '../../src/billing/add-ons.ts';
import { previewSubscriptionAddOn } from '../../src/billing/preview.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { DUNNING_REASON, reinstateAfterPayment } from '../../src/billing/reinstate.ts';
import {
  DEFAULT_RENEWAL_POLICY,
  lockSubscription,
  renewDueSubscriptions,
} from '../../src/billing/renewal.ts';
import { transitionSubscription } from '../../src/billing/subscription-status.ts';
import {
  createSubscription,
  reactivateSubscription,
  suspendSubscription,
} from '../../src/billing/subscriptions.ts';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import type { Db } from '../../src/db/database.ts';
import { newId } from '../../src/db/ids.ts';
import { ValidationError } from '../../src/errors.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { customerWith } from '../support/collection.ts';

const d = (iso: string) => new Date(iso);

/**
 * The 10^15 bound of an invoice (its total, `invoiceAmounts`) holds for the invoice that will bill
 * usage, not only for each usage line: several metrics of a period, the periods a suspension left
 * unbilled (one catch-up invoice), and the next period's fees with the usage it carries, each below
 * 10^15 alone, can pass it together, and then every renewal of the subscription threw. Refused at
 * once instead (422 naming the field): a usage event (`value`), a change or an add-on and its
 * preview (`quantity`), a reactivation (`usage`). Amounts in JPY (no minor unit) unless said.
 */
describe('usage bounded by the invoice that bills it', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
  });
  afterAll(() => app.stop());

  /** A monthly JPY plan: `fee` a month (FLAT_FEE, or PER_UNIT with `perUnit`), each metric `code` at `perCall` a unit (SUM). */
  async function planOf(
    o: { fee?: number; perUnit?: number; codes?: string[]; perCall?: number; currency?: string } = {},
  ) {
    const product = await app.api('POST', '/v1/products', { name: 'API' });
    const plan = await app.api('POST', '/v1/plans', {
      product: product.body.id,
      name: 'API monthly',
      currency: o.currency ?? 'JPY',
      interval: 'MONTH',
      price:
        o.perUnit === undefined
          ? { model: 'FLAT_FEE', amount: o.fee ?? 1000 }
          : { model: 'PER_UNIT', unit_amount: o.perUnit },
      metered: (o.codes ?? ['api_calls']).map((code) => ({
        code,
        aggregation: 'SUM',
        price: { model: 'PER_UNIT', unit_amount: o.perCall ?? 1_000_000 },
      })),
    });
    expect(plan.status).toBe(201);
    return plan.body.id as string;
  }
  /** A subscription to `planId` from March 1st 2027 (its March invoice made at once). */
  async function subscribe(planId: string) {
    const { customer } = await customerWith(app);
    const { subscription } = await createSubscription(
      db,
      'system',
      { customerId: customer.id, planId, startAt: d('2027-03-01T00:00:00Z') },
      d('2027-03-01T00:00:00Z'),
    );
    return { customerId: customer.id as string, id: subscription.id };
  }
  /** Records `value` units of `code` at `at` (the clock at that moment): "stored", or the 422's message on `value`. */
  async function record(subscriptionId: string, code: string, value: bigint, at: string) {
    const before = await db.selectFrom('usage_events').select('id').execute();
    try {
      await recordUsageEvent(
        db,
        'system',
        { eventId: newId('evt'), subscriptionId, code, value, timestamp: d(at) },
        d(at),
      );
      return 'stored';
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect(await db.selectFrom('usage_events').select('id').execute()).toHaveLength(before.length);
      return (error as ValidationError).fields?.value;
    }
  }
  /** The subscription's invoices, oldest first: total and period start. */
  const invoicesOf = (subscriptionId: string) =>
    db
      .selectFrom('invoices')
      .select(['total', 'period_index', 'period_start'])
      .where('subscription_id', '=', subscriptionId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();

  it('refuses (422, field value) an event taking two metrics of one period beyond 10^15 together, each line below it', async () => {
    // api_calls 6 × 10^8 units at 10^6: 6 × 10^14; storage 4 × 10^8: 4 × 10^14; April's fee 1000:
    // 1000 + 10^15 − ... 6 × 10^14 + 4 × 10^14 = 10^15, + 1000 > 10^15. Before: stored (each line
    // ≤ 10^15), and April's renewal threw for good.
    const s = await subscribe(await planOf({ codes: ['api_calls', 'storage'] }));
    expect(await record(s.id, 'api_calls', 600_000_000n, '2027-03-05T00:00:00Z')).toBe('stored');
    expect(await record(s.id, 'storage', 400_000_000n, '2027-03-06T00:00:00Z')).toMatch(
      /the invoice billing it .* 1000000000001000 .* more than 10\^15/,
    );
    // 399,999,999 units: 6 × 10^14 + 399,999,999,000,000 + 1000 = 999,999,999,001,000 fits.
    expect(await record(s.id, 'storage', 399_999_999n, '2027-03-06T00:00:00Z')).toBe('stored');
    const sweep = await renewDueSubscriptions(db, 'system', d('2027-04-01T00:10:00Z'));
    expect(sweep.failures.filter((f) => f.subscription === s.id)).toEqual([]);
    const [, april] = await invoicesOf(s.id);
    expect(april).toMatchObject({ period_index: 1, total: 999_999_999_001_000n });
  });

  it("a suspension's catch-up invoice: March and April each below 10^15, together above, are refused; the reactivation invoices May with both", async () => {
    // Suspended on March 10th (not billed while suspended): the invoice made when it resumes carries
    // every period's usage not billed yet. March 6 × 10^14, April 5 × 10^14: 1.1 × 10^15 + May's 1000.
    // Before: both stored, then the reactivation (and every renewal) failed on that invoice.
    const s = await subscribe(await planOf());
    await suspendSubscription(db, 'system', s.id, d('2027-03-10T00:00:00Z'));
    expect(await record(s.id, 'api_calls', 600_000_000n, '2027-03-12T00:00:00Z')).toBe('stored');
    expect(await record(s.id, 'api_calls', 500_000_000n, '2027-04-12T00:00:00Z')).toMatch(
      /the invoice billing it .* 1100000000001000 .* more than 10\^15/,
    );
    expect(await record(s.id, 'api_calls', 399_999_999n, '2027-04-12T00:00:00Z')).toBe('stored');
    await reactivateSubscription(db, 'system', s.id, d('2027-05-15T00:00:00Z'));
    const [, may] = await invoicesOf(s.id);
    // May's fee 1000 + March's 6 × 10^14 + April's 399,999,999 × 10^6.
    expect(may).toMatchObject({ total: 999_999_999_001_000n });
    expect(may!.period_start).toEqual(d('2027-05-01T00:00:00Z'));
  });

  it('refuses (422, field quantity) a change at the next cycle whose fees with the usage the same invoice bills pass 10^15', async () => {
    // 10^12 a unit: 500 units is 5 × 10^14 a period, below 10^15 alone; with March's 6 × 10^14 of
    // usage on April's invoice, 1.1 × 10^15. Before: scheduled, then April's renewal threw.
    const s = await subscribe(await planOf({ perUnit: 1_000_000_000_000 }));
    expect(await record(s.id, 'api_calls', 600_000_000n, '2027-03-05T00:00:00Z')).toBe('stored');
    const change = async (quantity: number) => {
      try {
        await changeSubscription(
          db,
          'system',
          s.id,
          { quantity, when: 'next_cycle' },
          d('2027-03-20T00:00:00Z'),
          false,
        );
        return 'changed';
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return (error as ValidationError).fields?.quantity;
      }
    };
    expect(await change(500)).toMatch(/with the usage it bills, 1100000000000000 .* more than 10\^15/);
    expect(
      (
        await db
          .selectFrom('subscriptions')
          .select('scheduled_quantity')
          .where('id', '=', s.id)
          .executeTakeFirstOrThrow()
      ).scheduled_quantity,
    ).toBeNull();
    // 400 units: 4 × 10^14 + 6 × 10^14 = 10^15 exactly fits.
    expect(await change(400)).toBe('changed');
    const sweep = await renewDueSubscriptions(db, 'system', d('2027-04-01T00:10:00Z'));
    expect(sweep.failures.filter((f) => f.subscription === s.id)).toEqual([]);
    const [, april] = await invoicesOf(s.id);
    expect(april).toMatchObject({ total: 1_000_000_000_000_000n });
  });

  it("the add-on preview refuses (422, field quantity) what setting the add-on refuses: the next period's fees and usage beyond 10^15", async () => {
    // An add-on of 10^12 (KRW); 500 of it is 5 × 10^14, March's usage 6 × 10^14. Before: the preview
    // answered an invoice of 1.1 × 10^15 that setting the add-on then refused.
    const s = await subscribe(await planOf({ currency: 'KRW' }));
    const addOn = await createAddOn(db, 'system', {
      name: 'Big',
      currency: 'KRW',
      amount: 1_000_000_000_000n,
    });
    expect(await record(s.id, 'api_calls', 600_000_000n, '2027-03-05T00:00:00Z')).toBe('stored');
    const preview = async (quantity: number) => {
      try {
        const { next } = await previewSubscriptionAddOn(
          db,
          'system',
          s.id,
          { addOnId: addOn.id, quantity, proration: 'none' },
          d('2027-03-20T00:00:00Z'),
          DEFAULT_RENEWAL_POLICY,
        );
        return next?.total;
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return (error as ValidationError).fields?.quantity;
      }
    };
    expect(await preview(500)).toMatch(/more than 10\^15/);
    // 399: 1000 + 399 × 10^12 + 6 × 10^14 = 999,000,000,001,000 fits (the preview prices the fees only).
    expect(await preview(399)).toBe(399_000_000_001_000n);
  });

  /** Inserts a usage event of `value` api_calls at `at` as it was stored before the bound held per invoice. */
  const insertUsage = (s: { id: string; customerId: string }, value: bigint, at: string) =>
    db
      .insertInto('usage_events')
      .values({
        id: newId('ue'),
        event_id: newId('evt'),
        subscription_id: s.id,
        customer_id: s.customerId,
        code: 'api_calls',
        value,
        properties: '{}',
        occurred_at: d(at),
      })
      .execute();

  it('a payment does not reactivate a subscription dunning suspended whose catch-up invoice passes 10^15: it stays SUSPENDED, the refusal logged', async () => {
    // Suspended by dunning on March 10th; 6 × 10^14 of usage in March and in April stored before the
    // bound held per invoice. Its March invoice paid on May 15th: before, ACTIVE, and the renewal of
    // May (1.2 × 10^15 + 1000) failed every minute after, the subscription never billed again.
    const s = await subscribe(await planOf());
    await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      transitionSubscription(
        work,
        (await lockSubscription(work, s.id))!,
        'SUSPENDED',
        d('2027-03-10T00:00:00Z'),
        {
          reason: DUNNING_REASON,
        },
      ),
    );
    await insertUsage(s, 600_000_000n, '2027-03-12T00:00:00Z');
    await insertUsage(s, 600_000_000n, '2027-04-12T00:00:00Z');
    const [march] = await db
      .selectFrom('invoices')
      .select('id')
      .where('subscription_id', '=', s.id)
      .execute();
    const reinstate = () =>
      inUnitOfWork(db, { actor: 'system' }, (work) =>
        reinstateAfterPayment(work, s.id, march!.id, d('2027-05-15T00:00:00Z')),
      );
    expect(await reinstate()).toBe(false);
    const row = await db
      .selectFrom('subscriptions')
      .select(['status', 'next_renewal_at'])
      .where('id', '=', s.id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'SUSPENDED', next_renewal_at: d('2027-04-01T00:00:00Z') });
    const refused = await db
      .selectFrom('activities')
      .select('data')
      .where('resource_id', '=', s.id)
      .where('action', '=', 'subscription.reactivation_refused')
      .executeTakeFirstOrThrow();
    expect(refused.data).toMatchObject({
      reason: 'invoice_paid',
      invoice: march!.id,
      message: expect.stringMatching(/would total 1200000000001000 minor units .* more than 10\^15/),
    });
    // Within the bound (April's usage 3 × 10^14 instead), the payment reactivates it.
    const t = await subscribe(await planOf());
    await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      transitionSubscription(
        work,
        (await lockSubscription(work, t.id))!,
        'SUSPENDED',
        d('2027-03-10T00:00:00Z'),
        {
          reason: DUNNING_REASON,
        },
      ),
    );
    await insertUsage(t, 600_000_000n, '2027-03-12T00:00:00Z');
    await insertUsage(t, 300_000_000n, '2027-04-12T00:00:00Z');
    const [tMarch] = await db
      .selectFrom('invoices')
      .select('id')
      .where('subscription_id', '=', t.id)
      .execute();
    expect(
      await inUnitOfWork(db, { actor: 'system' }, (work) =>
        reinstateAfterPayment(work, t.id, tMarch!.id, d('2027-05-15T00:00:00Z')),
      ),
    ).toBe(true);
    const sweep = await renewDueSubscriptions(db, 'system', d('2027-05-15T00:10:00Z'));
    expect(sweep.failures.filter((f) => f.subscription === t.id)).toEqual([]);
    const [, may] = await invoicesOf(t.id);
    expect(may).toMatchObject({ total: 900_000_000_001_000n });
  });

  it('a reactivation by hand refuses (422, field usage) a catch-up invoice beyond 10^15, changing nothing', async () => {
    // Usage stored before the bound held per invoice (inserted as it was then): March and April 6 ×
    // 10^14 each while suspended. Before: the reactivation failed inside its renewal (field `lines`,
    // naming nothing the request sent); now it names the usage, and nothing changes.
    const s = await subscribe(await planOf());
    await suspendSubscription(db, 'system', s.id, d('2027-03-10T00:00:00Z'));
    await insertUsage(s, 600_000_000n, '2027-03-12T00:00:00Z');
    await insertUsage(s, 600_000_000n, '2027-04-12T00:00:00Z');
    const refused = await reactivateSubscription(db, 'system', s.id, d('2027-05-15T00:00:00Z')).then(
      () => 'reactivated',
      (error) => {
        expect(error).toBeInstanceOf(ValidationError);
        return (error as ValidationError).fields;
      },
    );
    expect(refused).toEqual({
      usage: expect.stringMatching(/1200000000001000 .* more than 10\^15/),
    });
    const row = await db
      .selectFrom('subscriptions')
      .select('status')
      .where('id', '=', s.id)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('SUSPENDED');
    expect(await invoicesOf(s.id)).toHaveLength(1);
  });
});
