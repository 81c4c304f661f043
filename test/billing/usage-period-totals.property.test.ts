import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeSubscription } from '../../src/billing/proration.ts';
import { renewDueSubscriptions } from '../../src/billing/renewal.ts';
import {
  cancelSubscription,
  createSubscription,
  reactivateSubscription,
  suspendSubscription,
} from '../../src/billing/subscriptions.ts';
import { recordUsageEvent } from '../../src/billing/usage.ts';
import { ValidationError } from '../../src/errors.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { customerWith } from '../support/collection.ts';
import { byDepth } from '../support/depth.ts';
import { insertPlan } from '../support/plans.ts';

/**
 * The kept period aggregates (`usage_period_totals`, migration 0057) over random histories of one
 * subscription: events of three metrics (SUM, MAX, COUNT) recorded late or on time, some stored before
 * the rows existed (as before 0057), some racing each other, refused ones (before what is billed),
 * events stamped up to 5 minutes ahead of the clock, renewals (on time or behind), plan changes
 * mid-period, suspensions and reactivations, with or without a trial billing its usage, ended by a
 * cancellation now's final invoice. Afterwards every kept row equals the GROUP BY of the
 * events in its interval, and the invoices billed each accepted event exactly once: the SUM lines add
 * up to the values, the COUNT lines to the number of events, the MAX lines to each usage period's
 * maximum (a plan change bills the rise above the maximum before it).
 */
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const CODES = ['calls', 'peak', 'rows'] as const;

const step = fc.record({
  kind: fc.constantFrom('event', 'event', 'event', 'event', 'burst', 'renew', 'change', 'suspend'),
  advanceHours: fc.integer({ min: 1, max: 12 * 24 }),
  // How long before the clock the event is stamped: up to 20 days late, or up to 299 s ahead.
  lagSeconds: fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 20 * 86_400 }), weight: 3 },
    { arbitrary: fc.integer({ min: -299, max: 0 }), weight: 1 },
  ),
  code: fc.integer({ min: 0, max: 2 }),
  value: fc.integer({ min: 0, max: 60 }),
  burst: fc.array(
    fc.record({ code: fc.integer({ min: 0, max: 2 }), value: fc.integer({ min: 0, max: 60 }) }),
    { minLength: 2, maxLength: 6 },
  ),
});
const scenario = fc.record({
  trialDays: fc.constantFrom(0, 10),
  pre: fc.array(
    fc.record({
      code: fc.integer({ min: 0, max: 2 }),
      value: fc.integer({ min: 0, max: 60 }),
      hours: fc.integer({ min: 0, max: 5 * 24 }),
    }),
    { maxLength: 4 },
  ),
  steps: fc.array(step, { minLength: 3, maxLength: 14 }),
  // Cancelled at the last step's clock (events stamped ahead of it billed too), or an hour later.
  endAtClock: fc.boolean(),
});

describe('usage period totals (property)', () => {
  let app: TestApp;
  let plans: [string, string];
  beforeAll(async () => {
    app = await startTestApp();
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
    const plan = async (name: string, calls: number, peak: number, rows: number) => {
      const id = await insertPlan(app.runtime.db, {
        name,
        currency: 'EUR',
        price: { model: 'FLAT_FEE', amount: 1000 },
        metered: [
          { code: 'calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: calls } },
          { code: 'peak', aggregation: 'MAX', price: { model: 'PER_UNIT', unit_amount: peak } },
          { code: 'rows', aggregation: 'COUNT', price: { model: 'PER_UNIT', unit_amount: rows } },
        ],
      });
      await app.runtime.db
        .updateTable('plans')
        .set({ bill_trial_usage: true })
        .where('id', '=', id)
        .execute();
      return id;
    };
    plans = [await plan('Metered A', 3, 100, 7), await plan('Metered B', 5, 200, 11)];
  });
  afterAll(() => app.stop());

  let run = 0;
  it('kept rows equal the events, and the invoices bill each accepted event exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const k = ++run;
        const { customer } = await customerWith(app);
        const start = new Date('2027-03-01T00:00:00Z');
        const { subscription } = await createSubscription(
          app.runtime.db,
          'system',
          { customerId: customer.id, planId: plans[0], startAt: start, trialDays: s.trialDays },
          start,
        );
        const id = subscription.id;
        let planIndex = 0;
        let seq = 0;
        // Stored before the kept rows existed (as before migration 0057).
        for (const p of s.pre) {
          await app.runtime.db
            .insertInto('usage_events')
            .values({
              id: `ue_pre_${k}_${++seq}`,
              event_id: `pre-${k}-${seq}`,
              subscription_id: id,
              customer_id: customer.id,
              code: CODES[p.code]!,
              value: BigInt(p.value),
              properties: '{}',
              occurred_at: new Date(start.getTime() + p.hours * HOUR_MS),
            })
            .execute();
        }
        const kept = () =>
          app.runtime.db
            .selectFrom('usage_period_totals')
            .selectAll()
            .where('subscription_id', '=', id)
            .orderBy('code')
            .orderBy('period_start')
            .orderBy('period_end')
            .execute();
        /** Records one event; a refusal (422) must leave the kept rows as they were. */
        const record = async (code: number, value: number, at: Date, now: Date) => {
          const before = await kept();
          try {
            await recordUsageEvent(
              app.runtime.db,
              'system',
              {
                eventId: `ev-${k}-${++seq}`,
                subscriptionId: id,
                code: CODES[code]!,
                value: BigInt(value),
                timestamp: at,
              },
              now,
            );
          } catch (error) {
            if (!(error instanceof ValidationError)) throw error;
            expect(await kept()).toEqual(before);
          }
        };
        let now = start;
        let suspended = false;
        for (const st of s.steps) {
          now = new Date(now.getTime() + st.advanceHours * HOUR_MS);
          const at = new Date(now.getTime() - st.lagSeconds * 1000);
          if (st.kind === 'event') await record(st.code, st.value, at, now);
          else if (st.kind === 'burst') {
            await Promise.all(
              st.burst.map((b, i) => record(b.code, b.value, new Date(at.getTime() + i), now)),
            );
          } else if (st.kind === 'renew') await renewDueSubscriptions(app.runtime.db, 'system', now);
          else if (st.kind === 'suspend') {
            // Suspended by hand, or reactivated: the usage of the periods missed is billed on resuming.
            suspended = !suspended;
            if (suspended) await suspendSubscription(app.runtime.db, 'system', id, now);
            else await reactivateSubscription(app.runtime.db, 'system', id, now);
          } else if (!suspended) {
            planIndex = 1 - planIndex;
            await changeSubscription(
              app.runtime.db,
              'system',
              id,
              { planId: plans[planIndex], when: 'now' },
              now,
              false,
            );
          }
        }
        // Ended after every event and every stored-before one: the final invoice bills the rest.
        const end = new Date(
          Math.max(now.getTime(), start.getTime() + 6 * DAY_MS) + (s.endAtClock ? 0 : HOUR_MS),
        );
        await cancelSubscription(app.runtime.db, 'system', id, false, end);

        // 1. Each kept row is the GROUP BY of the events in its interval.
        const rows = await kept();
        const grouped = await sql<{ sum: string; max: string | null; count: string }>`
          select coalesce(sum(e.value), 0)::text as sum, max(e.value)::text as max, count(e.id)::text as count
          from usage_period_totals t
          left join usage_events e on e.subscription_id = t.subscription_id and e.code = t.code
            and e.occurred_at >= t.period_start and e.occurred_at < t.period_end
          where t.subscription_id = ${id}
          group by t.code, t.period_start, t.period_end
          order by t.code, t.period_start, t.period_end`.execute(app.runtime.db);
        expect(
          rows.map((r) => [String(r.sum), r.max === null ? null : String(r.max), String(r.count)]),
        ).toEqual(grouped.rows.map((g) => [g.sum, g.max, g.count]));

        // 2. Every accepted event billed once.
        const events = await app.runtime.db
          .selectFrom('usage_events')
          .select(['code', 'value', 'occurred_at'])
          .where('subscription_id', '=', id)
          .execute();
        const sub = await app.runtime.db
          .selectFrom('subscriptions')
          .select(['billing_anchor', 'usage_billed_until', 'status'])
          .where('id', '=', id)
          .executeTakeFirstOrThrow();
        expect(sub.status).toBe('CANCELLED');
        expect(events.every((e) => e.occurred_at < sub.usage_billed_until!)).toBe(true);
        const lines = await app.runtime.db
          .selectFrom('invoice_lines as l')
          .innerJoin('invoices as i', 'i.id', 'l.invoice_id')
          .select(['l.metric_code', 'l.quantity', 'i.status'])
          .where('i.subscription_id', '=', id)
          .where('l.metric_code', 'is not', null)
          .execute();
        expect(lines.filter((l) => l.status === 'VOID')).toEqual([]);
        const billed = (code: string) =>
          lines.filter((l) => l.metric_code === code).reduce((sum, l) => sum + BigInt(l.quantity), 0n);
        const of = (code: string) => events.filter((e) => e.code === code);
        expect(billed('calls')).toBe(of('calls').reduce((sum, e) => sum + e.value, 0n));
        expect(billed('rows')).toBe(BigInt(of('rows').length));
        // MAX: each usage period's maximum (the trial before the anchor, then months from it).
        const anchor = sub.billing_anchor;
        const periodOf = (at: Date) => {
          if (at < anchor) return 'trial';
          const months =
            (at.getUTCFullYear() - anchor.getUTCFullYear()) * 12 + at.getUTCMonth() - anchor.getUTCMonth();
          const from = new Date(anchor);
          from.setUTCMonth(anchor.getUTCMonth() + months);
          return String(at < from ? months - 1 : months);
        };
        const maxima = new Map<string, bigint>();
        for (const e of of('peak')) {
          const p = periodOf(e.occurred_at);
          if ((maxima.get(p) ?? -1n) < e.value) maxima.set(p, e.value);
        }
        expect(billed('peak')).toBe([...maxima.values()].reduce((sum, m) => sum + m, 0n));
      }),
      { numRuns: byDepth(8, 40), seed: 5707, endOnFailure: true },
    );
  }, 600_000);
});
