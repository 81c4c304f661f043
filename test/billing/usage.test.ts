import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInvoice } from '../../src/billing/invoices.ts';
import { getPlan } from '../../src/billing/plans.ts';
import { unbilledUsageWindows } from '../../src/billing/renewal.ts';
import { usageLines } from '../../src/billing/usage.ts';
import { newId } from '../../src/db/ids.ts';
import type { SubscriptionStatus } from '../../src/db/schema.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { actionsOf } from '../support/collection.ts';

/** The tests' subscriptions started on October 1st; November is their period 1. */
const SUBSCRIPTION_START = new Date('2026-10-01T00:00:00Z');
const PERIOD_START = new Date('2026-11-01T00:00:00Z');
const PERIOD_END = new Date('2026-12-01T00:00:00Z');
const IN_PERIOD = '2026-11-10T12:00:00Z';

/** The metered prices of the tests' plan: one per aggregation × price model worth telling apart. */
const METERED = [
  { code: 'calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 3 } },
  {
    code: 'seats',
    aggregation: 'MAX',
    price: {
      model: 'VOLUME',
      tiers: [
        { up_to: 10, unit_amount: 500 },
        { up_to: null, unit_amount: 400, flat_amount: 1000 },
      ],
    },
  },
  {
    code: 'builds',
    aggregation: 'COUNT',
    price: {
      model: 'TIERED',
      tiers: [
        { up_to: 2, unit_amount: 0 },
        { up_to: null, unit_amount: 250, flat_amount: 100 },
      ],
    },
  },
  {
    code: 'storage',
    aggregation: 'SUM',
    price: {
      model: 'STAIRSTEP',
      steps: [
        { up_to: 100, flat_amount: 900 },
        { up_to: null, flat_amount: 2900 },
      ],
    },
  },
];

describe('usage-based billing', () => {
  let app: TestApp;
  let planId: string;
  let eurPlanId: string;
  beforeAll(async () => {
    app = await startTestApp();
    const product = (await app.api('POST', '/v1/products', { name: 'Metered' })).body;
    const plan = await app.api('POST', '/v1/plans', {
      product: product.id,
      name: 'Usage',
      currency: 'USD',
      interval: 'MONTH',
      price: { model: 'FLAT_FEE', amount: 0 },
      metered: METERED,
      tax_percent: '10',
    });
    expect(plan.status).toBe(201);
    planId = plan.body.id;
    eurPlanId = (
      await app.api('POST', '/v1/plans', {
        product: product.id,
        name: 'Usage EUR',
        currency: 'EUR',
        interval: 'MONTH',
        price: { model: 'FLAT_FEE', amount: 0 },
        metered: [{ code: 'calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 1 } }],
      })
    ).body.id;
  });
  afterAll(() => app.stop());

  /**
   * A customer and a subscription row (the subscriptions API is someone else's), started on October
   * 1st 2026 and ACTIVE in November, its period 1, with nothing billed yet.
   */
  async function subscribe(options: { plan?: string; customer?: string; status?: SubscriptionStatus } = {}) {
    const customerId =
      options.customer ?? (await app.api('POST', '/v1/customers', { email: 'meter@example.com' })).body.id;
    const id = newId('sub');
    await app.runtime.db
      .insertInto('subscriptions')
      .values({
        id,
        customer_id: customerId,
        plan_id: options.plan ?? planId,
        status: options.status ?? 'ACTIVE',
        billing_anchor: SUBSCRIPTION_START,
        start_at: SUBSCRIPTION_START,
        current_period_index: 1,
        current_period_start: PERIOD_START,
        current_period_end: PERIOD_END,
        metadata: '{}',
      })
      .execute();
    return { id, customerId };
  }

  const post = (subscription: string, code: string, value: number, extra: Record<string, unknown> = {}) =>
    app.api('POST', '/v1/usage-events', {
      event_id: `evt-${newId('ue')}`,
      subscription,
      code,
      value,
      timestamp: IN_PERIOD,
      ...extra,
    });
  const eventCount = async () =>
    (await app.runtime.db.selectFrom('usage_events').select('id').execute()).length;

  describe('POST /v1/usage-events', () => {
    it('stores an event (201) once per event_id: the same again is 200 with the stored event, another body 409', async () => {
      const { id, customerId } = await subscribe();
      const body = {
        event_id: 'evt-1',
        subscription: id,
        code: 'calls',
        value: 7,
        properties: { region: 'eu' },
      };
      const created = await app.api('POST', '/v1/usage-events', body);
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        object: 'usage_event',
        event_id: 'evt-1',
        subscription: id,
        customer: customerId,
        code: 'calls',
        value: 7,
        properties: { region: 'eu' },
      });
      expect(created.body.id).toMatch(/^ue_/);
      expect(Date.parse(created.body.timestamp)).toBeGreaterThan(Date.now() - 60_000);

      const before = await eventCount();
      const again = await app.api('POST', '/v1/usage-events', body);
      expect(again.status).toBe(200);
      expect(again.body).toEqual(created.body);
      const withTimestamp = await app.api('POST', '/v1/usage-events', {
        ...body,
        timestamp: created.body.timestamp,
      });
      expect(withTimestamp.status).toBe(200);
      for (const change of [{ value: 8 }, { code: 'seats' }, { properties: {} }, { timestamp: IN_PERIOD }]) {
        const conflict = await app.api('POST', '/v1/usage-events', { ...body, ...change });
        expect(conflict.status, JSON.stringify(change)).toBe(409);
        expect(conflict.body.error.code).toBe('usage_event_conflict');
      }
      expect(await eventCount()).toBe(before);
      const log = await app.api('GET', `/v1/activities?resource=${created.body.id}`);
      expect(log.body.data.map((a: { action: string }) => a.action)).toEqual(['usage_event.recorded']);
    });

    it('stores each of many concurrent repeats of one event once', async () => {
      const { id } = await subscribe();
      const body = { event_id: 'evt-race', subscription: id, code: 'calls', value: 1, timestamp: IN_PERIOD };
      const answers = await Promise.all(
        Array.from({ length: 8 }, () => app.api('POST', '/v1/usage-events', body)),
      );
      expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
      expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    });

    it('answers 404 for an unknown subscription, 422 for an unknown code or a bad value, 409 once CANCELLED; nothing stored', async () => {
      const { id } = await subscribe();
      const cancelled = await subscribe({ status: 'CANCELLED' });
      const before = await eventCount();
      const missing = await post('sub_nope', 'calls', 1);
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe('subscription_not_found');
      const unknownCode = await post(id, 'minutes', 1);
      expect(unknownCode.status).toBe(422);
      expect(unknownCode.body.error.fields.code).toMatch(/no metered price/);
      for (const value of [-1, 1.5, '3', null]) {
        const bad = await post(id, 'calls', value as number);
        expect(bad.status, String(value)).toBe(422);
        expect(bad.body.error.fields).toHaveProperty('value');
      }
      const badFields = await app.api('POST', '/v1/usage-events', {
        subscription: 'cus_x',
        code: '',
        value: 1,
      });
      expect(badFields.status).toBe(422);
      expect(Object.keys(badFields.body.error.fields)).toEqual(
        expect.arrayContaining(['event_id', 'subscription', 'code']),
      );
      expect((await post(id, 'calls', 1, { timestamp: 'yesterday' })).status).toBe(422);
      const refused = await post(cancelled.id, 'calls', 1);
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('subscription_cancelled');
      expect(await eventCount()).toBe(before);
    });
    it('refuses (422, field timestamp) an event in usage already invoiced, before the start, after a scheduled end or in the future; nothing stored', async () => {
      const { id } = await subscribe();
      // October (period 0) was invoiced with November's invoice: usage before November 1st is billed.
      await app.runtime.db
        .updateTable('subscriptions')
        .set({ usage_billed_until: PERIOD_START, cancel_at_period_end: true, next_renewal_at: PERIOD_END })
        .where('id', '=', id)
        .execute();
      const before = await eventCount();
      const cases: [string, RegExp][] = [
        ['2026-10-31T23:59:59Z', /already invoiced: usage before 2026-11-01T00:00:00.000Z/],
        ['2026-09-30T00:00:00Z', /before the subscription starts \(2026-10-01T00:00:00.000Z\)/],
        ['2026-12-01T00:00:00Z', /after the subscription ends \(2026-12-01T00:00:00.000Z\)/],
        [new Date(Date.now() + 3_600_000).toISOString(), /more than 5 minutes in the future/],
      ];
      for (const [timestamp, message] of cases) {
        const refused = await post(id, 'calls', 1, { timestamp });
        expect(refused.status, timestamp).toBe(422);
        expect(refused.body.error.fields.timestamp, timestamp).toMatch(message);
      }
      expect(await eventCount()).toBe(before);
      // The first instant not billed, and the last one before the end, are taken.
      expect((await post(id, 'calls', 1, { timestamp: '2026-11-01T00:00:00Z' })).status).toBe(201);
      expect((await post(id, 'calls', 1, { timestamp: '2026-11-30T23:59:59.999Z' })).status).toBe(201);
    });
  });

  describe('usageLines and the estimate', () => {
    it('aggregates the period [start, end) by SUM, MAX and COUNT into priced invoice lines', async () => {
      const { id, customerId } = await subscribe();
      const events: [string, number, string][] = [
        ['calls', 100, '2026-11-01T00:00:00Z'], // first instant: in
        ['calls', 250, IN_PERIOD],
        ['calls', 999, '2026-12-01T00:00:00Z'], // the end is excluded
        ['calls', 999, '2026-10-31T23:59:59Z'], // before the period
        ['seats', 4, IN_PERIOD],
        ['seats', 12, IN_PERIOD],
        ['seats', 7, IN_PERIOD],
        ['builds', 0, IN_PERIOD],
        ['builds', 9, IN_PERIOD],
        ['builds', 1, IN_PERIOD],
        ['builds', 1, IN_PERIOD],
        // storage: no event → no line
      ];
      for (const [code, value, timestamp] of events) {
        expect((await post(id, code, value, { timestamp })).status).toBe(201);
      }
      const plan = await getPlan(app.runtime.db, planId);
      const lines = await usageLines(app.runtime.db, { id }, plan, [
        { start: PERIOD_START, end: PERIOD_END },
      ]);
      const common = {
        type: 'CHARGE',
        taxRatePpm: 100_000,
        planId,
        periodStart: PERIOD_START,
        periodEnd: PERIOD_END,
      };
      expect(lines).toEqual([
        // SUM 100 + 250 = 350 × 3
        {
          ...common,
          description: 'Usage: calls (sum of usage)',
          metricCode: 'calls',
          quantity: 350,
          unitAmount: 3n,
        },
        // MAX 12 → VOLUME tier 2: 12 × 400 + 1000 = 5800
        {
          ...common,
          description: 'Usage: seats (max of usage)',
          metricCode: 'seats',
          quantity: 12,
          unitAmount: null,
          amount: 5800n,
        },
        // COUNT 4 → TIERED: 2 × 0 + 2 × 250 + 100 = 600
        {
          ...common,
          description: 'Usage: builds (count of usage)',
          metricCode: 'builds',
          quantity: 4,
          unitAmount: null,
          amount: 600n,
        },
      ]);
      // The lines make an invoice: 1050 + 5800 + 600 = 7450, tax 10% per line = 745.
      const invoice = await createInvoice(app.runtime.db, 'system', {
        customerId,
        currency: 'USD',
        lines,
        subscriptionId: id,
      });
      expect({ subtotal: invoice.subtotal, tax: invoice.tax, total: invoice.total }).toEqual({
        subtotal: 7450n,
        tax: 745n,
        total: 8195n,
      });
      expect(invoice.lines.map((l) => [l.metric_code, l.quantity, l.unit_amount, l.amount])).toEqual([
        ['calls', 350, 3n, 1050n],
        ['seats', 12, null, 5800n],
        ['builds', 4, null, 600n],
      ]);

      // A period without events: no lines.
      const emptyStart = new Date('2025-01-01T00:00:00Z');
      const emptyEnd = new Date('2025-02-01T00:00:00Z');
      expect(await usageLines(app.runtime.db, { id }, plan, [{ start: emptyStart, end: emptyEnd }])).toEqual(
        [],
      );
    });

    it('prices a window after part of its period was billed as the rest of the period (periodStart): each metric once', async () => {
      const { id } = await subscribe();
      const change = new Date('2026-11-15T00:00:00Z'); // a plan change billed November up to here
      const events: [string, number, string][] = [
        ['calls', 100, '2026-11-05T00:00:00Z'],
        ['seats', 8, '2026-11-05T00:00:00Z'],
        ['builds', 1, '2026-11-05T00:00:00Z'],
        ['storage', 60, '2026-11-05T00:00:00Z'],
        ['calls', 50, '2026-11-20T00:00:00Z'],
        ['seats', 6, '2026-11-20T00:00:00Z'],
        ['builds', 1, '2026-11-20T00:00:00Z'],
        ['builds', 1, '2026-11-21T00:00:00Z'],
        ['storage', 30, '2026-11-20T00:00:00Z'],
      ];
      for (const [code, value, timestamp] of events) {
        expect((await post(id, code, value, { timestamp })).status).toBe(201);
      }
      const plan = await getPlan(app.runtime.db, planId);
      const lines = await usageLines(app.runtime.db, { id }, plan, [
        { periodStart: PERIOD_START, start: change, end: PERIOD_END },
      ]);
      expect(lines.map((l) => [l.metricCode, l.quantity, l.unitAmount, l.amount])).toEqual([
        // SUM PER_UNIT: the 50 calls after the change × 3, as a window of its own would bill them.
        ['calls', 50, 3n, undefined],
        // MAX: 6 after the change never rose above the period's 8 before it: no line (the window
        // alone billed 6 × 500 = 3000 for seats billed already).
        // COUNT TIERED (2 free, then 250 + flat 100): builds 2–3 of the period: 1 free, 1 × 250 + 100
        // = 350 (the window alone gave both free again: 0).
        ['builds', 2, null, 350n],
        // SUM STAIRSTEP (up to 100: 900): the period's 90 GB cost 900, billed with the first 60: 0
        // more (the window alone charged the step's 900 again).
        ['storage', 30, null, 0n],
      ]);
      // A VOLUME price whose whole costs less than the part billed before (a period split before such
      // changes were refused): the 8 seats before cost 8 × 500 = 4000, the period's 12 cost 12 × 300 =
      // 3600 at the cheaper tier: the rest of the period costs 0, not −400 (nor a failed renewal).
      expect((await post(id, 'seats', 12, { timestamp: '2026-11-22T00:00:00Z' })).status).toBe(201);
      const cheaperInBulk = {
        ...plan,
        metered: plan.metered
          .filter((m) => m.code === 'seats')
          .map((m) => ({
            ...m,
            price: {
              model: 'VOLUME' as const,
              tiers: [
                { upTo: 10n, unitAmount: 500n, flatAmount: 0n },
                { upTo: null, unitAmount: 300n, flatAmount: 0n },
              ],
            },
          })),
      };
      const rest = await usageLines(app.runtime.db, { id }, cheaperInBulk, [
        { periodStart: PERIOD_START, start: change, end: PERIOD_END },
      ]);
      expect(rest.map((l) => [l.metricCode, l.quantity, l.amount])).toEqual([['seats', 4, 0n]]);
    });

    it('prices every aggregation × price model as worked by hand (events 3, 8, 1: SUM 12, MAX 8, COUNT 3)', async () => {
      const tiers = [
        { up_to: 5, unit_amount: 100, flat_amount: 50 },
        { up_to: null, unit_amount: 10 },
      ];
      const prices = {
        PER_UNIT: { model: 'PER_UNIT', unit_amount: 7 },
        TIERED: { model: 'TIERED', tiers },
        VOLUME: { model: 'VOLUME', tiers },
        STAIRSTEP: {
          model: 'STAIRSTEP',
          steps: [
            { up_to: 4, flat_amount: 1000 },
            { up_to: 10, flat_amount: 2000 },
            { up_to: null, flat_amount: 3000 },
          ],
        },
      };
      // [aggregation, model, quantity, amount]
      const table: [string, keyof typeof prices, number, bigint][] = [
        ['SUM', 'PER_UNIT', 12, 84n], // 12 × 7
        ['MAX', 'PER_UNIT', 8, 56n], // 8 × 7
        ['COUNT', 'PER_UNIT', 3, 21n], // 3 × 7
        ['SUM', 'TIERED', 12, 620n], // 5 × 100 + 50 + 7 × 10
        ['MAX', 'TIERED', 8, 580n], // 5 × 100 + 50 + 3 × 10
        ['COUNT', 'TIERED', 3, 350n], // 3 × 100 + 50
        ['SUM', 'VOLUME', 12, 120n], // 12 × 10 (tier 2 has no flat amount)
        ['MAX', 'VOLUME', 8, 80n], // 8 × 10
        ['COUNT', 'VOLUME', 3, 350n], // 3 × 100 + 50
        ['SUM', 'STAIRSTEP', 12, 3000n], // 11+
        ['MAX', 'STAIRSTEP', 8, 2000n], // 5–10
        ['COUNT', 'STAIRSTEP', 3, 1000n], // 1–4
      ];
      const product = (await app.api('POST', '/v1/products', { name: 'Table' })).body;
      const plan = await app.api('POST', '/v1/plans', {
        product: product.id,
        name: 'Table',
        currency: 'USD',
        interval: 'MONTH',
        price: { model: 'FLAT_FEE', amount: 0 },
        metered: table.map(([aggregation, model]) => ({
          code: `${aggregation}_${model}`.toLowerCase(),
          aggregation,
          price: prices[model],
        })),
      });
      expect(plan.status).toBe(201);
      const { id } = await subscribe({ plan: plan.body.id });
      for (const [aggregation, model] of table) {
        for (const value of [3, 8, 1]) {
          expect((await post(id, `${aggregation}_${model}`.toLowerCase(), value)).status).toBe(201);
        }
      }
      const lines = await usageLines(app.runtime.db, { id }, await getPlan(app.runtime.db, plan.body.id), [
        { start: PERIOD_START, end: PERIOD_END },
      ]);
      expect(
        lines.map((l) => [l.metricCode, l.quantity, l.amount ?? (l.unitAmount ?? 0n) * BigInt(l.quantity)]),
      ).toEqual(
        table.map(([aggregation, model, quantity, amount]) => [
          `${aggregation}_${model}`.toLowerCase(),
          quantity,
          amount,
        ]),
      );
      for (const line of lines) {
        expect(line.unitAmount, line.metricCode).toBe(line.metricCode?.endsWith('per_unit') ? 7n : null);
      }
    });

    it('omits a metric whose quantity is zero: a SUM of zeros, but not a COUNT of them', async () => {
      const { id } = await subscribe();
      await post(id, 'calls', 0);
      await post(id, 'builds', 0);
      const lines = await usageLines(app.runtime.db, { id }, await getPlan(app.runtime.db, planId), [
        { start: PERIOD_START, end: PERIOD_END },
      ]);
      // COUNT 1 falls in the free tier (up to 2 at 0): a line of amount 0.
      expect(lines.map((l) => [l.metricCode, l.quantity, l.amount])).toEqual([['builds', 1, 0n]]);
    });

    it('estimates the current period per subscription and in totals per currency, mid-period', async () => {
      const { id, customerId } = await subscribe();
      const second = await subscribe({ customer: customerId });
      const eur = await subscribe({ customer: customerId, plan: eurPlanId });
      const gone = await subscribe({ customer: customerId });
      await post(id, 'calls', 10);
      await post(id, 'storage', 150); // STAIRSTEP: 101+ → 2900
      await post(id, 'calls', 5, { timestamp: '2026-10-15T00:00:00Z' }); // last period, invoiced below
      await post(second.id, 'seats', 3); // VOLUME 3 × 500
      await post(eur.id, 'calls', 42);
      await post(gone.id, 'calls', 1000);
      // October is invoiced (as period 1's renewal does): its usage is not estimated any more.
      await app.runtime.db
        .updateTable('subscriptions')
        .set({ usage_billed_until: PERIOD_START })
        .where('customer_id', '=', customerId)
        .execute();
      await app.runtime.db
        .updateTable('subscriptions')
        .set({ status: 'CANCELLED' })
        .where('id', '=', gone.id)
        .execute();

      const estimate = await app.api('GET', `/v1/customers/${customerId}/usage-estimate`);
      expect(estimate.status).toBe(200);
      expect(estimate.body.object).toBe('usage_estimate');
      expect(estimate.body.subscriptions.map((s: { subscription: string }) => s.subscription).sort()).toEqual(
        [id, second.id, eur.id].sort(),
      );
      const first = estimate.body.subscriptions.find((s: { subscription: string }) => s.subscription === id);
      expect(first).toEqual({
        subscription: id,
        plan: planId,
        currency: 'USD',
        period_start: PERIOD_START.toISOString(),
        period_end: PERIOD_END.toISOString(),
        lines: [
          { metric_code: 'calls', aggregation: 'SUM', quantity: 10, amount: 30 },
          { metric_code: 'seats', aggregation: 'MAX', quantity: 0, amount: 0 },
          { metric_code: 'builds', aggregation: 'COUNT', quantity: 0, amount: 0 },
          { metric_code: 'storage', aggregation: 'SUM', quantity: 150, amount: 2900 },
        ],
        total: 2930,
      });
      expect(estimate.body.totals).toEqual([
        { currency: 'EUR', amount: 42 },
        { currency: 'USD', amount: 2930 + 1500 },
      ]);
      expect((await app.api('GET', '/v1/customers/cus_nope/usage-estimate')).status).toBe(404);

      // Usage billed already (as a plan change on November 20th bills it) is no longer estimated.
      await app.runtime.db
        .updateTable('subscriptions')
        .set({ usage_billed_until: new Date('2026-11-20T00:00:00Z') })
        .where('id', '=', second.id)
        .execute();
      const after = await app.api('GET', `/v1/customers/${customerId}/usage-estimate`);
      expect(after.body.totals).toEqual([
        { currency: 'EUR', amount: 42 },
        { currency: 'USD', amount: 2930 }, // the 3 seats (1500) of November 10th are billed
      ]);
    });

    it('cuts the usage not billed yet into the trial (when billed) and each period, month ends clamped', () => {
      const d = (iso: string) => new Date(`${iso}T00:00:00Z`);
      const monthly = { interval: 'MONTH' as const, interval_count: 1, bill_trial_usage: true };
      // A trial from January 1st to the 31st (the anchor): periods Jan 31 → Feb 28 → Mar 31.
      const subscription = {
        start_at: d('2027-01-01'),
        billing_anchor: d('2027-01-31'),
        usage_billed_until: null,
      };
      const windows = (
        s: typeof subscription | { usage_billed_until: Date },
        plan = monthly,
        until = '2027-04-10',
      ) =>
        unbilledUsageWindows({ ...subscription, ...s }, plan, d(until)).map((w) => [
          w.start.toISOString().slice(0, 10),
          w.end.toISOString().slice(0, 10),
        ]);
      expect(windows(subscription)).toEqual([
        ['2027-01-01', '2027-01-31'], // the trial
        ['2027-01-31', '2027-02-28'],
        ['2027-02-28', '2027-03-31'],
        ['2027-03-31', '2027-04-10'], // up to `until`
      ]);
      expect(windows(subscription, { ...monthly, bill_trial_usage: false })[0]).toEqual([
        '2027-01-31',
        '2027-02-28',
      ]);
      expect(windows({ usage_billed_until: d('2027-03-05') })).toEqual([
        ['2027-03-05', '2027-03-31'],
        ['2027-03-31', '2027-04-10'],
      ]);
      expect(windows({ usage_billed_until: d('2027-01-10') }, monthly, '2027-01-20')).toEqual([
        ['2027-01-10', '2027-01-20'], // within the trial
      ]);
      expect(windows({ usage_billed_until: d('2027-04-10') })).toEqual([]); // all billed
    });
  });

  describe('a plan change mid-period over usage', () => {
    /** A plan like the tests' (USD, monthly, no fee) with metered prices `metered` (API JSON). */
    const planWith = async (metered: unknown[]) => {
      const product = (await app.api('POST', '/v1/products', { name: 'Metered too' })).body;
      const plan = await app.api('POST', '/v1/plans', {
        product: product.id,
        name: 'Usage too',
        currency: 'USD',
        interval: 'MONTH',
        price: { model: 'FLAT_FEE', amount: 0 },
        metered,
      });
      expect(plan.status).toBe(201);
      return plan.body.id as string;
    };
    // The current month is the subscriptions' period 1 (the API changes them on the wall clock).
    const now = new Date();
    const month = (offset: number) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
    /** A subscription to the tests' plan whose period 1 is the current month, billed up to its start. */
    const subscribeNow = async () => {
      const { id, customerId } = await subscribe();
      await app.runtime.db
        .updateTable('subscriptions')
        .set({
          billing_anchor: month(-1),
          start_at: month(-1),
          current_period_start: month(0),
          current_period_end: month(1),
          usage_billed_until: month(0),
        })
        .where('id', '=', id)
        .execute();
      return { id, customerId };
    };
    /** POST …/change of subscription `id` to plan `plan` now, unprorated. */
    const changeTo = (id: string, plan: string, preview: boolean) =>
      app.api('POST', `/v1/subscriptions/${id}/change`, { plan, proration: 'none', preview });
    const timestamp = month(0).toISOString();

    it('is 409 usage_split_unpriceable over HTTP (preview too) when a VOLUME or STAIRSTEP metric has usage earlier in the period; nothing changes', async () => {
      const other = await planWith(METERED);
      const change = (id: string, preview: boolean) => changeTo(id, other, preview);

      // seats (VOLUME) and storage (STAIRSTEP) used this period: refused, naming both.
      const split = await subscribeNow();
      expect((await post(split.id, 'seats', 3, { timestamp })).status).toBe(201);
      expect((await post(split.id, 'storage', 50, { timestamp })).status).toBe(201);
      for (const preview of [true, false]) {
        const refused = await change(split.id, preview);
        expect(refused.status).toBe(409);
        expect(refused.body.error.code).toBe('usage_split_unpriceable');
        expect(refused.body.error.message).toMatch(
          /the new plan prices seats, storage VOLUME or STAIRSTEP.*when: next_cycle.*a plan pricing seats, storage PER_UNIT or TIERED/,
        );
      }
      const row = await app.runtime.db
        .selectFrom('subscriptions')
        .selectAll()
        .where('id', '=', split.id)
        .executeTakeFirstOrThrow();
      expect(row).toMatchObject({ plan_id: planId, usage_billed_until: month(0) });
      expect((await app.api('GET', `/v1/invoices?customer=${split.customerId}`)).body.data).toEqual([]);

      // Only calls (PER_UNIT) and builds (TIERED) used: they split exactly, the change goes through.
      const exact = await subscribeNow();
      expect((await post(exact.id, 'calls', 10, { timestamp })).status).toBe(201);
      expect((await post(exact.id, 'builds', 1, { timestamp })).status).toBe(201);
      const changed = await change(exact.id, false);
      expect(changed.status).toBe(200);
      expect(changed.body.subscription.plan).toBe(other);
    });

    it("goes by the new plan's price and the old plan's aggregation: an old VOLUME price splits (200), another aggregation is 409 (F2, F1 over HTTP)", async () => {
      // seats metered MAX on both, VOLUME on the old plan only; calls COUNT on the new plan, SUM on the old.
      const perUnitSeats = await planWith([
        { code: 'seats', aggregation: 'MAX', price: { model: 'PER_UNIT', unit_amount: 450 } },
      ]);
      const countedCalls = await planWith([
        { code: 'calls', aggregation: 'COUNT', price: { model: 'PER_UNIT', unit_amount: 3 } },
      ]);
      const split = await subscribeNow();
      expect((await post(split.id, 'seats', 3, { timestamp })).status).toBe(201);
      expect((await post(split.id, 'calls', 10, { timestamp })).status).toBe(201);
      const refused = await changeTo(split.id, countedCalls, true);
      expect(refused.status).toBe(409);
      expect(refused.body.error).toMatchObject({ code: 'usage_split_unpriceable' });
      expect(refused.body.error.message).toMatch(
        /the old plan meters calls with another aggregation.*when: next_cycle.*a plan metering calls with the old plan's aggregation/,
      );
      // The old plan's VOLUME seats are billed whole at the change (3 × 500 = 1500 cents, + 10 calls
      // × 3 = 30: 1530 + 10% tax = 1683); the new plan's PER_UNIT price continues from them.
      const changed = await changeTo(split.id, perUnitSeats, false);
      expect(changed.status).toBe(200);
      expect(changed.body.subscription.plan).toBe(perUnitSeats);
      const invoices = (await app.api('GET', `/v1/invoices?customer=${split.customerId}`)).body.data;
      expect(invoices.map((i: { subtotal: number; total: number }) => [i.subtotal, i.total])).toEqual([
        [1530, 1683],
      ]);
    });
  });

  describe('usage limits', () => {
    it('creates (201) and lists limits per customer; 404, 422 and 409 for a duplicate, changing nothing', async () => {
      const customer = (await app.api('POST', '/v1/customers', { email: 'limits@example.com' })).body;
      const warn = await app.api('POST', '/v1/usage-limits', {
        customer: customer.id,
        amount: 5000,
        currency: 'usd',
        action: 'WARN',
      });
      expect(warn.status).toBe(201);
      expect(warn.body).toMatchObject({
        object: 'usage_limit',
        customer: customer.id,
        amount: 5000,
        currency: 'USD',
        action: 'WARN',
        last_triggered_period_start: null,
      });
      expect(warn.body.id).toMatch(/^ul_/);
      const count = async () =>
        (await app.runtime.db.selectFrom('usage_limits').select('id').execute()).length;
      const before = await count();
      const duplicate = await app.api('POST', '/v1/usage-limits', {
        customer: customer.id,
        amount: 9000,
        currency: 'USD',
        action: 'WARN',
      });
      expect(duplicate.status).toBe(409);
      expect(duplicate.body.error.code).toBe('usage_limit_exists');
      const missing = await app.api('POST', '/v1/usage-limits', {
        customer: 'cus_nope',
        amount: 1,
        currency: 'USD',
        action: 'WARN',
      });
      expect(missing.status).toBe(404);
      const bad = await app.api('POST', '/v1/usage-limits', {
        customer: customer.id,
        amount: 0,
        currency: 'USD',
        action: 'EMAIL',
      });
      expect(bad.status).toBe(422);
      expect(Object.keys(bad.body.error.fields).sort()).toEqual(['action', 'amount']);
      expect(await count()).toBe(before);
      const list = await app.api('GET', `/v1/usage-limits?customer=${customer.id}`);
      expect(list.body.data.map((l: { id: string }) => l.id)).toEqual([warn.body.id]);
      expect((await app.api('GET', '/v1/usage-limits?customer=cus_nope')).status).toBe(404);
      expect((await app.api('GET', `/v1/activities?resource=${warn.body.id}`)).body.data[0].action).toBe(
        'usage_limit.created',
      );
    });

    it('a deleted limit acts no more, however far the usage goes (#26 item 5)', async () => {
      const { id, customerId } = await subscribe();
      const limit = (
        await app.api('POST', '/v1/usage-limits', {
          customer: customerId,
          amount: 3,
          currency: 'USD',
          action: 'SUSPEND',
        })
      ).body;
      expect((await app.api('POST', `/v1/usage-limits/${limit.id}/delete`)).status).toBe(200);
      expect((await post(id, 'calls', 100)).status).toBe(201);
      expect(await actionsOf(app, limit.id)).toEqual(['usage_limit.created', 'usage_limit.deleted']);
      const row = await app.runtime.db
        .selectFrom('subscriptions')
        .select('status')
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      expect(row.status).toBe('ACTIVE');
    });

    it('warns and suspends exactly once per period when concurrent events cross the limits', async () => {
      const { id, customerId } = await subscribe();
      const limit = async (amount: number, action: string, currency = 'USD') =>
        (await app.api('POST', '/v1/usage-limits', { customer: customerId, amount, currency, action })).body;
      const warn = await limit(300, 'WARN'); // 100 calls × 3
      const suspend = await limit(600, 'SUSPEND'); // 200 calls × 3
      const eurWarn = await limit(1, 'WARN', 'EUR'); // no EUR usage

      expect((await post(id, 'calls', 99)).status).toBe(201); // 297: under both
      expect(await actionsOf(app, warn.id)).toEqual(['usage_limit.created']);

      const answers = await Promise.all(Array.from({ length: 12 }, () => post(id, 'calls', 10)));
      expect(answers.every((a) => a.status === 201)).toBe(true); // 99 + 12 × 10 = 219 calls → 657

      expect(await actionsOf(app, warn.id)).toEqual(['usage_limit.created', 'usage_limit.warning']);
      expect(await actionsOf(app, suspend.id)).toEqual(['usage_limit.created', 'usage_limit.suspended']);
      expect(await actionsOf(app, eurWarn.id)).toEqual(['usage_limit.created']); // another currency
      const warning = (await app.api('GET', `/v1/activities?resource=${warn.id}`)).body.data[1];
      expect(warning.customer).toBe(customerId);
      expect(warning.data).toMatchObject({ limit: '300', currency: 'USD', subscription: id });
      expect(BigInt(warning.data.estimate)).toBeGreaterThanOrEqual(300n);
      const subscription = await app.runtime.db
        .selectFrom('subscriptions')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      expect(subscription.status).toBe('SUSPENDED');
      expect(subscription.suspended_at).not.toBeNull();
      const subscriptionLog = await app.api('GET', `/v1/activities?resource=${id}`);
      expect(subscriptionLog.body.data.map((a: { action: string }) => a.action)).toEqual([
        'subscription.suspended',
      ]);
      expect(subscriptionLog.body.data[0].data).toMatchObject({
        from: 'ACTIVE',
        to: 'SUSPENDED',
        usage_limit: suspend.id,
      });
      const limits = await app.api('GET', `/v1/usage-limits?customer=${customerId}`);
      for (const l of limits.body.data.filter((x: { currency: string }) => x.currency === 'USD')) {
        expect(l.last_triggered_period_start).toBe(PERIOD_START.toISOString());
      }

      // More usage in the same period: nothing more (a SUSPENDED subscription still records usage).
      expect((await post(id, 'calls', 500)).status).toBe(201);
      expect(await actionsOf(app, warn.id)).toHaveLength(2);
      expect(await actionsOf(app, suspend.id)).toHaveLength(2);

      // The next period, renewed (November's usage billed on its invoice): the warning acts again once crossed.
      const next = new Date('2027-01-01T00:00:00Z');
      await app.runtime.db
        .updateTable('subscriptions')
        .set({
          current_period_index: 2,
          current_period_start: PERIOD_END,
          current_period_end: next,
          usage_billed_until: PERIOD_END,
        })
        .where('id', '=', id)
        .execute();
      await post(id, 'calls', 50, { timestamp: '2026-12-02T00:00:00Z' }); // 150: under
      expect(await actionsOf(app, warn.id)).toHaveLength(2);
      await post(id, 'calls', 60, { timestamp: '2026-12-03T00:00:00Z' }); // 330: over
      expect(await actionsOf(app, warn.id)).toEqual([
        'usage_limit.created',
        'usage_limit.warning',
        'usage_limit.warning',
      ]);
    });
  });
});
