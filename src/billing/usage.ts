import { isDeepStrictEqual } from 'node:util';
import { type Kysely, type RawBuilder, sql } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import { changedFields } from '../activities/changes.ts';
import { type Db, UNIQUE_VIOLATION } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { Database, SubscriptionRow, UsageEventRow, UsageLimitRow } from '../db/schema.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { MAX_MINOR_UNITS } from '../money/amount.ts';
import { getCustomer } from './customers.ts';
import { type InvoiceTotals, nextInvoicesTotals } from './effective-amount.ts';
import type { NewLine } from './invoices.ts';
import { type Aggregation, getPlan, type MeteredPrice, type Plan, planOf } from './plans.ts';
import { priceFor } from './pricing.ts';
import {
  DEFAULT_RENEWAL_POLICY,
  leftPendingData,
  RENEWABLE,
  renewedUpTo,
  scheduledEnd,
  unbilledUsageWindows,
  usagePeriodAt,
} from './renewal.ts';
import { transitionSubscription } from './subscription-status.ts';

/**
 * Usage-based billing (PRODUCT §5, as BillaBear): usage events per subscription and metric code,
 * aggregated per period (SUM, MAX or COUNT of their values) and priced by the plan's metered prices;
 * a running estimate of the current period's usage cost per customer; usage limits that warn or
 * suspend once the estimate crosses them.
 *
 * One period, one metric, priced once (PRODUCT §11): a plan change mid-period bills the usage so far
 * at the old plan's prices and the rest at the new plan's, but a period's usage of a metric is never
 * aggregated twice. The part of the period after the change continues from where the part before
 * stopped: its quantity is the rise of the period's aggregate (SUM and COUNT: the units after the
 * change; MAX: how far the period's maximum rose above the maximum before the change, 0 when it did
 * not) and its amount `priceFor(price, whole) − priceFor(price, before)`, `before` and `whole` being
 * the aggregates of the period up to the change and up to the window's end. So a MAX is billed once
 * (units up to the earlier maximum at the old price, the rise above it at the new), a graduated
 * (TIERED) price's free tier and flat amounts are given and charged once per period (the units after
 * the change fall in the tiers after the units before it), and a PER_UNIT SUM or COUNT bills what it
 * always did. That continuation is right only when the part before was billed, with the same metric
 * code and aggregation: a change outside a trial, or in a trial when the old plan billed trial usage,
 * to a plan metering the code as the old plan does. A later window cannot tell how the part before
 * was billed, so a plan change mid-period is refused instead (409 `usage_split_unpriceable`,
 * `refuseUnpriceableUsageSplit`), never priced by guess, when a metric the new plan meters has usage
 * earlier in the period and: the old plan meters it with another aggregation, or not at all (an
 * earlier plan priced it); or, in a trial, the old plan did not bill trial usage (free) and the new
 * plan does; or the new plan prices it VOLUME or STAIRSTEP (the whole period's quantity at one tier,
 * which a split period cannot). An old plan's VOLUME or STAIRSTEP price is no reason: the part
 * before is billed whole at the change, and the new price continues from it. In a trial where the
 * new plan does not bill trial usage nothing splits (the rest of the trial is free): no refusal.
 */

/** A usage event as sent: `value` in whole units of the metric; `timestamp` defaults to now. */
export interface NewUsageEvent {
  /** The caller's id of the event: sending it again changes nothing. */
  eventId: string;
  subscriptionId: string;
  code: string;
  value: bigint;
  properties?: Record<string, string>;
  timestamp?: Date;
}

/** PostgreSQL's largest `integer`: an invoice line's quantity must fit in it. */
const MAX_LINE_QUANTITY = 2_147_483_647n;

/**
 * How far in the future a usage event's timestamp may be (clock skew between caller and server),
 * milliseconds: 5 minutes, as Stripe's meter events (docs.stripe.com/api/billing/meter-event/create,
 * `timestamp`).
 */
const FUTURE_SKEW_MS = 5 * 60_000;

/**
 * Why a usage event at `at` cannot be billed on `subscription` (PRODUCT §11: refused, never
 * dropped), or undefined when it can: before the start, in usage already billed (an invoiced
 * period, a plan change, a free trial), at or after its scheduled end `end` (renewal.ts
 * `scheduledEnd`: a cancellation at period end or at a date, the end of a fixed term; the final
 * invoice bills usage up to it, whatever the 5 minutes allowed ahead), or more than 5 minutes after
 * `now`.
 */
function unbillableReason(
  subscription: Pick<SubscriptionRow, 'start_at' | 'usage_billed_until'>,
  end: Date | null,
  at: Date,
  now: Date,
): string | undefined {
  const billed = subscription.usage_billed_until ?? subscription.start_at;
  if (at.getTime() > now.getTime() + FUTURE_SKEW_MS) {
    return 'must not be more than 5 minutes in the future';
  }
  if (at < subscription.start_at) {
    return `is before the subscription starts (${subscription.start_at.toISOString()})`;
  }
  if (at < billed) {
    return `falls in usage already invoiced: usage before ${billed.toISOString()} can no longer be billed`;
  }
  if (end && at >= end) return `is after the subscription ends (${end.toISOString()})`;
  return undefined;
}

/**
 * Stores a usage event, idempotent on `eventId`, and logs `usage_event.recorded`; then, once the
 * event is committed, checks the customer's usage limits (`checkUsageLimits`).
 * @param now when the event happened if it carries no timestamp, and the clock of limit checks
 * @returns the stored event and whether it was stored now (`created: false` for a repeat)
 * @throws ConflictError `usage_event_conflict` when `eventId` was stored with another body
 * @throws NotFoundError when the subscription does not exist
 * @throws ConflictError `subscription_cancelled` when the subscription is CANCELLED
 * @throws ValidationError (field `code`) when the subscription's plan has no metered price of `code`
 * @throws ValidationError (field `timestamp`) when the event cannot be billed any more or not yet:
 * before the subscription starts, before `usage_billed_until` (usage already invoiced), at or after
 * its scheduled end (`scheduledEnd`: `cancel_at`, `cancel_at_period_end`, the end of a fixed term),
 * or more than 5 minutes after `now`
 * @throws ValidationError (field `value`) when with it the period's usage of `code` could not be
 * billed: above an invoice line's quantity (2^31 − 1 units) or amount (10^15 minor units), or the
 * invoice billing it above 10^15 minor units (`refuseUnbillableSum`)
 */
export async function recordUsageEvent(
  db: Db,
  actor: Actor,
  input: NewUsageEvent,
  now: Date,
): Promise<{ event: UsageEventRow; created: boolean }> {
  const result = await inUnitOfWork(db, { actor }, async (work) => {
    const stored = await storedEvent(work.trx, input);
    if (stored) return { event: stored, created: false };
    // FOR NO KEY UPDATE: billing (which locks the row FOR UPDATE) waits for this event's commit and
    // bills it, or this event waits for the billing and sees the moved `usage_billed_until`; and the
    // subscription's events are recorded one at a time, so each sees the others' sum (`refuseUnbillableSum`).
    const subscription = await work.trx
      .selectFrom('subscriptions')
      .selectAll()
      .where('id', '=', input.subscriptionId)
      .forNoKeyUpdate()
      .executeTakeFirst();
    if (!subscription) throw new NotFoundError('subscription', input.subscriptionId);
    if (subscription.status === 'CANCELLED') {
      throw new ConflictError(
        'subscription_cancelled',
        `subscription ${subscription.id} is CANCELLED; it takes no more usage`,
      );
    }
    const plan = planOf(
      await work.trx
        .selectFrom('plans')
        .selectAll()
        .where('id', '=', subscription.plan_id)
        .executeTakeFirstOrThrow(),
    );
    const metered = plan.metered.find((m) => m.code === input.code);
    if (!metered) {
      throw new ValidationError('no metered price for this code', {
        code: `plan ${plan.id} has no metered price with code ${input.code}`,
      });
    }
    const occurredAt = input.timestamp ?? now;
    const unbillable = unbillableReason(subscription, scheduledEnd(subscription, plan), occurredAt, now);
    if (unbillable)
      throw new ValidationError('usage event outside its billable time', { timestamp: unbillable });
    const event = await work.trx
      .insertInto('usage_events')
      .values({
        id: newId('ue'),
        event_id: input.eventId,
        subscription_id: subscription.id,
        customer_id: subscription.customer_id,
        code: input.code,
        value: input.value,
        properties: JSON.stringify(input.properties ?? {}),
        occurred_at: occurredAt,
      })
      .onConflict((oc) => oc.column('event_id').doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!event) {
      // Stored by a concurrent request since our first look: the same rules as a repeat.
      return { event: (await storedEvent(work.trx, input))!, created: false };
    }
    const periodTotal = await keepPeriodTotals(work.trx, subscription, plan, event);
    await refuseUnbillableSum(work.trx, subscription, plan, metered, occurredAt, periodTotal);
    await recordActivity(work, {
      resourceType: 'usage_event',
      resourceId: event.id,
      action: 'usage_event.recorded',
      customerId: event.customer_id,
      data: {
        event_id: event.event_id,
        subscription: event.subscription_id,
        code: event.code,
        value: event.value,
      },
    });
    return { event, created: true };
  });
  if (result.created) {
    await checkUsageLimits(db, actor, result.event.subscription_id, now, result.event.occurred_at);
  }
  return result;
}

/**
 * Adds the usage event just stored to its period's aggregates (`usage_period_totals`, migration
 * 0057), in the caller's transaction with the subscription's row locked (as `recordUsageEvent` holds
 * it: every usage event is recorded under that lock, so no other event of the subscription is
 * stored meanwhile): every row of its subscription and code whose interval holds its time gets its
 * value (sum + value, max, count + 1); when the usage period holding it (`usagePeriodAt`) has no row
 * yet, one is made by summing that period's events once (the event included). Each row so equals the
 * aggregate of the events in its interval, and reading it replaces summing the period again on every
 * event (`refuseUnbillableSum`, `windowsUsage`).
 * @returns the aggregate of the event's period, the event included
 */
async function keepPeriodTotals(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  plan: Plan,
  event: UsageEventRow,
): Promise<Aggregate> {
  const at = event.occurred_at;
  const period = usagePeriodAt(subscription, plan, at);
  const updated = await trx
    .updateTable('usage_period_totals')
    .set((eb) => ({
      sum: eb('sum', '+', event.value),
      max: sql<bigint>`greatest(max, ${event.value}::bigint)`,
      count: eb('count', '+', 1n),
    }))
    .where('subscription_id', '=', subscription.id)
    .where('code', '=', event.code)
    .where('period_start', '<=', at)
    .where('period_end', '>', at)
    .returningAll()
    .execute();
  const same = (row: { period_start: Date; period_end: Date }) =>
    row.period_start.getTime() === period.start.getTime() &&
    row.period_end.getTime() === period.end.getTime();
  let row = updated.find(same);
  if (!row) {
    const summed = await trx
      .selectFrom('usage_events as e')
      .select([
        sql<bigint>`coalesce(sum(e.value), 0)`.as('sum'),
        sql<bigint | null>`max(e.value)`.as('max'),
        sql<bigint>`count(*)`.as('count'),
      ])
      .where('e.subscription_id', '=', subscription.id)
      .where('e.code', '=', event.code)
      .where('e.occurred_at', '>=', period.start)
      .where('e.occurred_at', '<', period.end)
      .executeTakeFirstOrThrow();
    row = await trx
      .insertInto('usage_period_totals')
      .values({
        subscription_id: subscription.id,
        code: event.code,
        period_start: period.start,
        period_end: period.end,
        sum: BigInt(summed.sum),
        max: summed.max === null ? null : BigInt(summed.max),
        count: BigInt(summed.count),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }
  return keptAggregate(row);
}

/**
 * Refuses the usage event just stored at `at` (the caller's transaction then stores nothing) when
 * its period's usage of `metered.code` with it could not be billed: the period's aggregate
 * `periodTotal` (SUM, MAX or COUNT over `usagePeriodAt`, as `keepPeriodTotals` keeps it) above an invoice line's quantity (2^31 − 1 units), or its price
 * (`priceFor`) above 10^15 minor units (an invoice line's largest amount). Billed, such usage would
 * fail every renewal, cancellation and plan change of the subscription (the usage is billed whole
 * or not at all), so its recurring fees too would never be invoiced again; refused, the caller
 * learns it at once. A part of the period after a plan change is billed at most the whole period's
 * quantity and price, so checking the whole suffices. Then the same for the invoice that bills it
 * (effective-amount.ts `nextInvoicesTotals`): every metric's usage not billed yet up to the end of
 * the event's period (a suspension's missed periods all go on the invoice made when it resumes) with
 * the next period's fees when that invoice bills them, taxed, at most 10^15: two metrics of 6 × 10^14
 * and 4 × 10^14 and a fee of 1000, each line below the bound, made an invoice of 10^15 + 1000 that
 * every renewal threw on. Each invoice on its own: with the renewal sweep behind, the previous
 * period's usage goes on the renewal not run yet, the event's period's on the one after it, with that
 * renewal's own fees (JPY 6 × 10^14 in March and 5 × 10^14 on Apr 2 fit; they were added together
 * and refused). A free trial's
 * usage (never billed) is not checked.
 * @throws ValidationError (field `value`) naming the period's quantity and the bound crossed (its
 * price too, when that is what crosses), or the invoice's total, its own usage with the period(s) it
 * covers, and its fees
 */
async function refuseUnbillableSum(
  trx: Kysely<Database>,
  subscription: SubscriptionRow,
  plan: Plan,
  metered: MeteredPrice,
  at: Date,
  periodTotal: Aggregate,
): Promise<void> {
  if (at < subscription.billing_anchor && !plan.bill_trial_usage) return;
  const period = usagePeriodAt(subscription, plan, at);
  const quantity = quantityOf(metered.aggregation, periodTotal);
  const price = quantity > MAX_LINE_QUANTITY ? undefined : priceFor(metered.price, quantity);
  const why =
    price === undefined
      ? `an invoice line's quantity (at most ${MAX_LINE_QUANTITY} units)`
      : price > MAX_MINOR_UNITS
        ? `priced ${price} minor units, beyond an invoice line's amount (at most ${MAX_MINOR_UNITS} minor units)`
        : undefined;
  if (why) {
    throw new ValidationError('usage beyond what one invoice line bills', {
      value: `with it, the ${metered.aggregation.toLowerCase()} of ${metered.code} in the period from ${period.start.toISOString()} would be ${quantity} units, ${price === undefined ? 'beyond ' : ''}${why}`,
    });
  }
  // The invoice that bills it: every metric's usage not billed yet up to the end of its period (the
  // periods a suspension left unbilled too) with the next period's fees, when the same invoice bills them.
  const scheduled = subscription.scheduled_plan_id;
  const invoices = await nextInvoicesTotals(trx, subscription, {
    plan: scheduled === null || scheduled === plan.id ? plan : await getPlan(trx, scheduled),
    quantity: subscription.scheduled_quantity ?? subscription.quantity,
    usageUntil: period.end,
  });
  const over = invoices.find((invoice) => invoice.total > MAX_MINOR_UNITS);
  if (over) {
    throw new ValidationError('usage beyond what one invoice bills', {
      value: `with it, the invoice billing it would total ${over.total} minor units (${usageOf(over)}; its fees: ${over.recurring}; tax included), more than 10^15 (the largest amount of an invoice)`,
    });
  }
}

/** An invoice's usage as a 422 names it: its amount and the period(s) its metered lines cover. */
const usageOf = (invoice: InvoiceTotals): string =>
  invoice.usageFrom && invoice.usageUntil
    ? `its usage, of the ${invoice.usagePeriods === 1 ? 'period' : 'periods'} from ${invoice.usageFrom.toISOString()} to ${invoice.usageUntil.toISOString()}: ${invoice.usage}`
    : `its usage: ${invoice.usage}`;

/**
 * The event stored under `input.eventId`, if any.
 * @throws ConflictError `usage_event_conflict` when it differs from `input` (a timestamp left out
 * matches any)
 */
async function storedEvent(trx: Kysely<Database>, input: NewUsageEvent): Promise<UsageEventRow | undefined> {
  const stored = await trx
    .selectFrom('usage_events')
    .selectAll()
    .where('event_id', '=', input.eventId)
    .executeTakeFirst();
  if (!stored) return undefined;
  const same =
    stored.subscription_id === input.subscriptionId &&
    stored.code === input.code &&
    stored.value === input.value &&
    isDeepStrictEqual(stored.properties, input.properties ?? {}) &&
    (input.timestamp === undefined || stored.occurred_at.getTime() === input.timestamp.getTime());
  if (!same) {
    throw new ConflictError(
      'usage_event_conflict',
      `usage event ${input.eventId} was already recorded with a different body`,
    );
  }
  return stored;
}

/** A period's usage events of one metric code, aggregated: the sum and maximum of their values, their count. */
interface Aggregate {
  sum: bigint;
  max: bigint;
  count: bigint;
}

/**
 * A kept `usage_period_totals` row as an `Aggregate` (its bigint columns read as bigints; a row with
 * no event yet, `max` null, has a maximum of 0).
 */
const keptAggregate = (row: { sum: bigint; max: bigint | null; count: bigint }): Aggregate => ({
  sum: BigInt(row.sum),
  max: BigInt(row.max ?? 0n),
  count: BigInt(row.count),
});

/**
 * One metered price's usage in a period (or the rest of it, see `priceUsage`): the aggregated quantity
 * (units) and its amount (minor units).
 */
export interface MeteredUsage {
  code: string;
  aggregation: Aggregation;
  quantity: bigint;
  amount: bigint;
  price: MeteredPrice['price'];
}

/**
 * A metric's usage in a period up to the end of a window (`whole`) and up to its start (`before`: the
 * part of the period billed already, empty when the window starts the period).
 */
interface WindowAggregates {
  whole: Aggregate;
  before: Aggregate;
}

/** The quantity `aggregation` makes of `aggregate` (units). */
const quantityOf = (aggregation: Aggregation, aggregate: Aggregate): bigint =>
  aggregation === 'SUM' ? aggregate.sum : aggregation === 'MAX' ? aggregate.max : aggregate.count;

/**
 * Each metered price of `metered` priced for the window of `aggregates` (no event: quantity 0), as the
 * rest of its period (see the module's comment): `quantity` = whole − before (units), `amount` =
 * `priceFor(price, whole) − priceFor(price, before)` (minor units); with nothing before, the window's
 * own aggregate priced by `priceFor`. The amount is never below 0: only a VOLUME or STAIRSTEP price
 * can cost less for the whole than for the part before (a larger quantity reaching a cheaper tier),
 * and only over a period a plan change split before such changes were refused
 * (`refuseUnpriceableUsageSplit`): what was billed already covers the whole period then, and the rest
 * costs 0 rather than failing the renewal and the estimate.
 */
function priceUsage(
  metered: readonly MeteredPrice[],
  aggregates: Map<string, WindowAggregates>,
): MeteredUsage[] {
  return metered.map((m) => {
    const aggregate = aggregates.get(m.code);
    const whole = aggregate ? quantityOf(m.aggregation, aggregate.whole) : 0n;
    const before = aggregate ? quantityOf(m.aggregation, aggregate.before) : 0n;
    const rise = priceFor(m.price, whole) - priceFor(m.price, before);
    const amount = rise > 0n ? rise : 0n;
    return { code: m.code, aggregation: m.aggregation, quantity: whole - before, amount, price: m.price };
  });
}

/**
 * The aggregates of a group of usage events (alias `e`): the sum and maximum of their values, their
 * count; and the same (`*_before`) of those of them before `before` (a timestamptz expression).
 */
const aggregateColumns = (before: RawBuilder<Date>) =>
  [
    sql<bigint>`coalesce(sum(e.value), 0)`.as('sum'),
    sql<bigint | null>`max(e.value)`.as('max'),
    sql<bigint>`count(*)`.as('count'),
    sql<bigint>`coalesce(sum(e.value) filter (where e.occurred_at < ${before}), 0)`.as('sum_before'),
    sql<bigint | null>`max(e.value) filter (where e.occurred_at < ${before})`.as('max_before'),
    sql<bigint>`count(*) filter (where e.occurred_at < ${before})`.as('count_before'),
  ] as const;

/**
 * A window of time [start, end) whose usage events are priced together, as the part of its period
 * from `start` on: `periodStart` (≤ start; default `start`) is where its period (or trial) began, and
 * the usage of [periodStart, start) was billed already (before a plan change in the period), so the
 * window bills only the rise of the period's aggregate (see the module's comment).
 */
export interface UsageWindow {
  start: Date;
  end: Date;
  periodStart?: Date;
}

/**
 * The invoice lines of a subscription's metered prices for each window of `windows` (usage events
 * with `occurred_at` in [start, end), as the rest of the period begun at `periodStart`), aggregated
 * per window in one query.
 *
 * Contract: per window, in order, one line per metered price of `plan` whose quantity is not zero, in
 * the plan's order: `type` CHARGE, `metricCode`, `quantity` (units: the SUM, MAX or COUNT of the
 * events' values in the window; after usage of the period billed before the window, the rise of the
 * period's aggregate, see `priceUsage`), PER_UNIT prices as `unitAmount` (× quantity), other models
 * as `amount` (`priceFor(price, quantity)`, or the rise of the period's price) with `unitAmount`
 * null, the plan's `taxRatePpm` and `planId`, and the window as the line's period. Reads only;
 * calling it twice gives the same lines as long as no event of a window arrives in between (the
 * caller decides when usage is billed, see renewal.ts `billUsageUntil`).
 * @param plan the plan the usage is priced with, parsed (`planOf`); amounts in minor units of
 * `plan.currency`
 * @throws RangeError when a quantity exceeds an invoice line's integer quantity (2^31 − 1 units)
 */
export async function usageLines(
  db: Kysely<Database>,
  subscription: Pick<SubscriptionRow, 'id'>,
  plan: Plan,
  windows: readonly UsageWindow[],
): Promise<NewLine[]> {
  const usages = await windowsUsage(db, subscription, plan, windows);
  return windows.flatMap((window, i) =>
    usages[i]!.filter((usage) => usage.quantity > 0n).map((usage): NewLine => {
      if (usage.quantity > MAX_LINE_QUANTITY) {
        throw new RangeError(
          `usage of ${usage.code} (${usage.quantity} units) exceeds an invoice line's quantity`,
        );
      }
      return {
        description: `${plan.name}: ${usage.code} (${usage.aggregation.toLowerCase()} of usage)`,
        type: 'CHARGE',
        quantity: Number(usage.quantity),
        ...(usage.price.model === 'PER_UNIT'
          ? { unitAmount: usage.price.unitAmount }
          : { unitAmount: null, amount: usage.amount }),
        taxRatePpm: plan.tax_rate_ppm,
        ...(plan.tax_inclusive ? { taxInclusive: true } : {}),
        planId: plan.id,
        metricCode: usage.code,
        periodStart: window.start,
        periodEnd: window.end,
      };
    }),
  );
}

/**
 * Per window of `windows` (in order), each metered price of `plan` priced for its usage events with
 * `occurred_at` in [start, end), as the rest of the period begun at `periodStart` (`priceUsage`: one
 * entry per metered price, quantity 0 included). A window that is a whole usage period (nothing
 * before it in its period) whose aggregates `usage_period_totals` keeps (`keepPeriodTotals`) reads
 * them; the others, per metric code, are aggregated from the events in one query. Reads only.
 */
async function windowsUsage(
  db: Kysely<Database>,
  subscription: Pick<SubscriptionRow, 'id'>,
  plan: Plan,
  windows: readonly UsageWindow[],
): Promise<MeteredUsage[][]> {
  if (plan.metered.length === 0 || windows.length === 0) return windows.map(() => []);
  const codes = [...new Set(plan.metered.map((m) => m.code))];
  // A window starting at its period's start: its aggregates may be kept whole (`keepPeriodTotals`).
  const fromPeriodStart = (w: UsageWindow) => (w.periodStart ?? w.start).getTime() === w.start.getTime();
  const whole = windows.filter(fromPeriodStart);
  const kept =
    whole.length === 0
      ? []
      : await db
          .selectFrom('usage_period_totals')
          .selectAll()
          .where('subscription_id', '=', subscription.id)
          .where('code', 'in', codes)
          .where((eb) =>
            eb.or(whole.map((w) => eb.and([eb('period_start', '=', w.start), eb('period_end', '=', w.end)]))),
          )
          .execute();
  const keptOf = (window: UsageWindow, code: string) =>
    fromPeriodStart(window)
      ? kept.find(
          (k) =>
            k.code === code &&
            k.period_start.getTime() === window.start.getTime() &&
            k.period_end.getTime() === window.end.getTime(),
        )
      : undefined;
  // The (window, code) pairs not kept: aggregated from their events.
  const pairs = windows.flatMap((window, i) =>
    codes.filter((code) => !keptOf(window, code)).map((code) => ({ window, code, i })),
  );
  const rows =
    pairs.length === 0
      ? []
      : await db
          .selectFrom('usage_events as e')
          .innerJoin(
            sql<{ period_start: Date; start: Date; end: Date; code: string; position: string }>`(
              select * from unnest(
                ${pairs.map((p) => (p.window.periodStart ?? p.window.start).toISOString())}::timestamptz[],
                ${pairs.map((p) => p.window.start.toISOString())}::timestamptz[],
                ${pairs.map((p) => p.window.end.toISOString())}::timestamptz[],
                ${pairs.map((p) => p.code)}::text[]
              ) with ordinality as t(period_start, start, "end", code, position)
            )`.as('w'),
            (join) =>
              join
                .onRef('e.code', '=', 'w.code')
                .onRef('e.occurred_at', '>=', 'w.period_start')
                .onRef('e.occurred_at', '<', 'w.end'),
          )
          .select(['w.position', ...aggregateColumns(sql.ref('w.start'))])
          .where('e.subscription_id', '=', subscription.id)
          .groupBy('w.position')
          .execute();
  const summed = new Map(rows.map((r) => [Number(r.position) - 1, toAggregates(r)]));
  const none: Aggregate = { sum: 0n, max: 0n, count: 0n };
  return windows.map((window, i) => {
    const aggregates = new Map<string, WindowAggregates>();
    for (const code of codes) {
      const k = keptOf(window, code);
      if (k) {
        aggregates.set(code, {
          whole: keptAggregate(k),
          before: none,
        });
      }
    }
    for (const [j, pair] of pairs.entries()) {
      const aggregate = summed.get(j);
      if (pair.i === i && aggregate) aggregates.set(pair.code, aggregate);
    }
    return priceUsage(plan.metered, aggregates);
  });
}

/** A row of `aggregateColumns` as the aggregates of the whole and of the part before. */
const toAggregates = (r: {
  sum: bigint;
  max: bigint | null;
  count: bigint;
  sum_before: bigint;
  max_before: bigint | null;
  count_before: bigint;
}): WindowAggregates => ({
  whole: { sum: BigInt(r.sum), max: BigInt(r.max ?? 0n), count: BigInt(r.count) },
  before: { sum: BigInt(r.sum_before), max: BigInt(r.max_before ?? 0n), count: BigInt(r.count_before) },
});

/** Whether `price` prices a period's whole quantity at one tier (VOLUME, STAIRSTEP), so a period split by a change cannot be priced in parts. */
const pricesWholeQuantity = (price: MeteredPrice['price']): boolean =>
  price.model === 'VOLUME' || price.model === 'STAIRSTEP';

/**
 * Why the rest of a period cannot be priced after a change (`refuseUnpriceableUsageSplit`), for the
 * metrics `codes` (comma-separated), and the change now that could be made instead.
 */
const UNPRICEABLE = {
  trial: {
    why: (codes: string) =>
      `the trial's usage of ${codes} so far was free on the old plan, and the new plan bills trial usage`,
    wayOut: () => 'a plan not billing trial usage',
  },
  aggregation: {
    why: (codes: string) =>
      `the old plan meters ${codes} with another aggregation than the new plan, or not at all (an earlier plan priced it)`,
    wayOut: (codes: string) =>
      `a plan metering ${codes} with the old plan's aggregation, priced PER_UNIT or TIERED`,
  },
  whole: {
    why: (codes: string) =>
      `the new plan prices ${codes} VOLUME or STAIRSTEP (the whole period's quantity at one tier)`,
    wayOut: (codes: string) => `a plan pricing ${codes} PER_UNIT or TIERED`,
  },
} as const;

/**
 * Refuses a plan change from `oldPlan` to `newPlan` at `at`, mid usage period, after which the rest
 * of the period could not be priced exactly from the part before it (see the module's comment): a
 * metric the new plan meters with usage events in [periodStart, at) when
 * - in a trial (`at` before `billing_anchor`), the old plan does not bill trial usage and the new
 *   plan does (the usage before was free, never billed);
 * - else, the old plan meters its code with another aggregation, or does not meter it (an earlier
 *   plan of the period priced that usage, with an aggregation a later window cannot know);
 * - else, the new plan prices it VOLUME or STAIRSTEP.
 * Passes: metrics without usage yet in the period; those the new plan does not meter (billed whole at
 * the change); an old plan's VOLUME or STAIRSTEP price (billed whole at the change, the new price
 * continues from it); any change in a trial when the new plan does not bill trial usage (the rest of
 * the trial is free: nothing splits). Reads only.
 * @param periodStart where the usage period holding `at` began (renewal.ts `usagePeriodAt`)
 * @throws ConflictError `usage_split_unpriceable` naming the metrics, why each cannot be split and
 * the ways out: the change at the next cycle (`when: next_cycle`), or a plan metering them with the
 * old plan's aggregation and pricing them PER_UNIT or TIERED (in a trial: one not billing trial usage)
 */
export async function refuseUnpriceableUsageSplit(
  db: Kysely<Database>,
  subscription: Pick<SubscriptionRow, 'id' | 'billing_anchor'>,
  oldPlan: Plan,
  newPlan: Plan,
  periodStart: Date,
  at: Date,
): Promise<void> {
  const inTrial = at < subscription.billing_anchor;
  if (inTrial && !newPlan.bill_trial_usage) return;
  const reasonOf = (m: MeteredPrice): keyof typeof UNPRICEABLE | undefined => {
    if (inTrial && !oldPlan.bill_trial_usage) return 'trial';
    if (oldPlan.metered.find((o) => o.code === m.code)?.aggregation !== m.aggregation) return 'aggregation';
    return pricesWholeQuantity(m.price) ? 'whole' : undefined;
  };
  const reasons = new Map(
    newPlan.metered.flatMap((m) => {
      const reason = reasonOf(m);
      return reason ? [[m.code, reason] as const] : [];
    }),
  );
  if (reasons.size === 0) return;
  const used = await db
    .selectFrom('usage_events')
    .select('code')
    .distinct()
    .where('subscription_id', '=', subscription.id)
    .where('code', 'in', [...reasons.keys()])
    .where('occurred_at', '>=', periodStart)
    .where('occurred_at', '<', at)
    .orderBy('code')
    .execute();
  if (used.length === 0) return;
  const groups = Object.entries(UNPRICEABLE).flatMap(([reason, text]) => {
    const codes = used.filter((u) => reasons.get(u.code) === reason).map((u) => u.code);
    return codes.length > 0 ? [{ codes: codes.join(', '), text }] : [];
  });
  throw new ConflictError(
    'usage_split_unpriceable',
    `this period already has usage that a change now would bill in two parts, the part after it not priceable exactly from what was billed before: ${groups.map((g) => g.text.why(g.codes)).join('; ')}. Nothing changed; change with when: next_cycle (the period, or the trial, billed whole on the old plan), or now to ${groups.map((g) => g.text.wayOut(g.codes)).join(' and ')}`,
  );
}

/**
 * One subscription's usage not billed yet, priced as its next invoices will (`usageEstimate`), with its
 * current period. Amounts in minor units of `currency`.
 */
export interface SubscriptionUsageEstimate {
  subscriptionId: string;
  planId: string;
  currency: string;
  periodStart: Date;
  periodEnd: Date;
  lines: MeteredUsage[];
  total: bigint;
}

/** A customer's running usage cost: per subscription, and totals per currency (minor units). */
export interface UsageEstimate {
  customerId: string;
  subscriptions: SubscriptionUsageEstimate[];
  totals: { currency: string; amount: bigint }[];
}

/**
 * The usage cost so far of each of the customer's non-cancelled subscriptions that has a current
 * period: what its next invoices will bill of the usage recorded so far (every stored event is
 * billable where it falls), exactly as the renewal will (renewal.ts `unbilledUsageWindows`, priced by
 * `usageLines`' rules with its plan): the usage not billed yet, from `usage_billed_until` (after a
 * plan change mid-period, as the rest of the period: `priceUsage`), each period on its own — the
 * current one, and the periods a SUSPENDED subscription (not billed meanwhile) or a renewal not run
 * yet left unbilled —, a trial's usage only when the plan bills it (a free trial's costs nothing, so
 * no usage limit acts on it: `checkUsageLimits`). Per metric, in the plan's order, quantity 0
 * included: `quantity` the units those periods bill together, `amount` their price (minor units).
 * `periodStart`/`periodEnd` are the subscription's current period. Recurring (non-metered) fees are
 * not part of it. Reads no clock.
 * @throws NotFoundError when the customer does not exist
 */
export async function usageEstimate(db: Kysely<Database>, customerId: string): Promise<UsageEstimate> {
  await getCustomer(db, customerId);
  const subscriptions = await db
    .selectFrom('subscriptions as s')
    .innerJoin('plans as p', 'p.id', 's.plan_id')
    .selectAll('p')
    .select([
      's.id as subscription_id',
      's.current_period_start',
      's.current_period_end',
      's.billing_anchor',
      's.start_at',
      's.usage_billed_until',
      sql<Date | null>`(
        select max(e.occurred_at) from usage_events e
        where e.subscription_id = s.id and e.occurred_at >= coalesce(s.usage_billed_until, s.start_at)
      )`.as('last_event_at'),
    ])
    .where('s.customer_id', '=', customerId)
    .where('s.status', '!=', 'CANCELLED')
    .where('s.current_period_start', 'is not', null)
    .where('s.current_period_end', 'is not', null)
    .orderBy('s.id')
    .execute();
  const estimates = await Promise.all(
    subscriptions.map(async (row): Promise<SubscriptionUsageEstimate> => {
      const {
        subscription_id,
        current_period_start,
        current_period_end,
        billing_anchor,
        start_at,
        usage_billed_until,
        last_event_at,
        ...planRow
      } = row;
      const plan = planOf(planRow);
      // Up to its last event not billed yet: every event stored is billable where it falls.
      const windows = last_event_at
        ? unbilledUsageWindows(
            { billing_anchor, start_at, usage_billed_until },
            plan,
            new Date(last_event_at.getTime() + 1),
          )
        : [];
      const usages = await windowsUsage(db, { id: subscription_id }, plan, windows);
      const lines = plan.metered.map(
        (m, j): MeteredUsage => ({
          code: m.code,
          aggregation: m.aggregation,
          quantity: usages.reduce((sum, usage) => sum + usage[j]!.quantity, 0n),
          amount: usages.reduce((sum, usage) => sum + usage[j]!.amount, 0n),
          price: m.price,
        }),
      );
      return {
        subscriptionId: subscription_id,
        planId: plan.id,
        currency: plan.currency,
        periodStart: current_period_start!,
        periodEnd: current_period_end!,
        lines,
        total: lines.reduce((sum, line) => sum + line.amount, 0n),
      };
    }),
  );
  const totals = new Map<string, bigint>();
  for (const e of estimates) totals.set(e.currency, (totals.get(e.currency) ?? 0n) + e.total);
  return {
    customerId,
    subscriptions: estimates,
    totals: [...totals]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([currency, amount]) => ({ currency, amount })),
  };
}

/** A new usage limit: `amount` minor units of `currency` of estimated usage cost per period. */
export interface NewUsageLimit {
  customerId: string;
  amount: bigint;
  currency: string;
  action: 'WARN' | 'SUSPEND';
}

/**
 * Creates a usage limit and logs `usage_limit.created`. A limit already crossed acts at the next
 * usage event.
 * @throws NotFoundError when the customer does not exist
 * @throws ConflictError `usage_limit_exists` when the customer has a limit of this currency and action
 */
export async function createUsageLimit(db: Db, actor: Actor, input: NewUsageLimit): Promise<UsageLimitRow> {
  return inUnitOfWork(db, { actor }, async (work) => {
    await getCustomer(work.trx, input.customerId);
    const row = await work.trx
      .insertInto('usage_limits')
      .values({
        id: newId('ul'),
        customer_id: input.customerId,
        amount: input.amount,
        currency: input.currency,
        action: input.action,
      })
      .onConflict((oc) =>
        oc.columns(['customer_id', 'currency', 'action']).where('deleted_at', 'is', null).doNothing(),
      )
      .returningAll()
      .executeTakeFirst();
    if (!row) {
      throw new ConflictError(
        'usage_limit_exists',
        `customer ${input.customerId} already has a ${input.action} limit in ${input.currency}`,
      );
    }
    await recordActivity(work, {
      resourceType: 'usage_limit',
      resourceId: row.id,
      action: 'usage_limit.created',
      customerId: row.customer_id,
      data: { amount: row.amount, currency: row.currency, action: row.action },
    });
    return row;
  });
}

/** @throws NotFoundError when there is no usage limit `id` */
export async function getUsageLimit(db: Db, id: string): Promise<UsageLimitRow> {
  const row = await db.selectFrom('usage_limits').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('usage_limit', id);
  return row;
}

/** What may change on a usage limit: `amount` (minor units of its currency) and `action`. */
export interface UsageLimitUpdate {
  amount?: bigint;
  action?: 'WARN' | 'SUSPEND';
}

/**
 * Updates a usage limit and logs `usage_limit.updated` with the changed fields; a body changing
 * nothing changes and logs nothing. A new amount already crossed acts at the next usage event.
 * @throws NotFoundError when there is no usage limit `id`
 * @throws ConflictError `usage_limit_exists` when the customer has a limit of this currency and the
 * new action; `usage_limit_deleted`
 */
export async function updateUsageLimit(
  db: Db,
  actor: Actor,
  id: string,
  update: UsageLimitUpdate,
): Promise<UsageLimitRow> {
  try {
    return await inUnitOfWork(db, { actor }, async (work) => {
      const row = await work.trx
        .selectFrom('usage_limits')
        .selectAll()
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirst();
      if (!row) throw new NotFoundError('usage_limit', id);
      if (row.deleted_at !== null)
        throw new ConflictError('usage_limit_deleted', `usage limit ${id} is deleted`);
      const changes = changedFields(row, { amount: update.amount, action: update.action });
      if (Object.keys(changes).length === 0) return row;
      const updated = await work.trx
        .updateTable('usage_limits')
        .set({
          ...(changes.amount ? { amount: update.amount } : {}),
          ...(changes.action ? { action: update.action } : {}),
        })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordActivity(work, {
        resourceType: 'usage_limit',
        resourceId: id,
        action: 'usage_limit.updated',
        customerId: row.customer_id,
        data: changes,
      });
      return updated;
    });
  } catch (error) {
    if ((error as { code?: string }).code === UNIQUE_VIOLATION) {
      throw new ConflictError(
        'usage_limit_exists',
        `the customer already has a ${update.action} limit in this currency`,
      );
    }
    throw error;
  }
}

/**
 * Deletes usage limit `id` (BillaBear's DELETE): sets `deleted_at` and logs `usage_limit.deleted`. It
 * acts no more; the row stays for the history of what it did (`usage_limit.warning` /
 * `usage_limit.suspended` activities name it), and a new limit of the same currency and action may be
 * created. A subscription it suspended stays suspended (reactivating it is a separate decision).
 * Deleted already: returned unchanged, nothing logged.
 * @throws NotFoundError when there is no usage limit `id`
 */
export async function deleteUsageLimit(db: Db, actor: Actor, id: string, now: Date): Promise<UsageLimitRow> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const row = await work.trx
      .selectFrom('usage_limits')
      .selectAll()
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirst();
    if (!row) throw new NotFoundError('usage_limit', id);
    if (row.deleted_at !== null) return row;
    const deleted = await work.trx
      .updateTable('usage_limits')
      .set({ deleted_at: now })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordActivity(work, {
      resourceType: 'usage_limit',
      resourceId: id,
      action: 'usage_limit.deleted',
      customerId: row.customer_id,
      data: { amount: row.amount, currency: row.currency, action: row.action },
    });
    return deleted;
  });
}

/**
 * A customer's usage cost in the period holding `at`, in `currency` (minor units): per subscription
 * of the customer not CANCELLED whose plan is priced in `currency`, the usage not billed yet of its
 * usage period holding `at` (renewal.ts `usagePeriodAt`: each subscription's own period; its trial
 * when `at` falls in it, counted only when the plan bills trial usage), priced as its invoice will
 * (`priceUsage`; after a plan change mid-period, the rest of the period), and their sum. Usage of
 * other periods is never added: with the renewal sweep behind on Apr 1, March's 30.00 (not invoiced
 * yet) and April's 30.00 are 30.00 each in their period, not 60.00. Subscriptions in another
 * currency are not counted (no conversion: a limit is per currency). Reads no clock.
 * @returns the total and each subscription's part (ordered by id, 0 included)
 */
export async function customerPeriodUsage(
  db: Kysely<Database>,
  customerId: string,
  currency: string,
  at: Date,
): Promise<{ total: bigint; subscriptions: { subscriptionId: string; amount: bigint }[] }> {
  const rows = await db
    .selectFrom('subscriptions as s')
    .innerJoin('plans as p', 'p.id', 's.plan_id')
    .selectAll('p')
    .select(['s.id as subscription_id', 's.billing_anchor', 's.start_at', 's.usage_billed_until'])
    .where('s.customer_id', '=', customerId)
    .where('s.status', '!=', 'CANCELLED')
    .where('p.currency', '=', currency)
    .orderBy('s.id')
    .execute();
  const subscriptions = await Promise.all(
    rows.map(async (row) => {
      const { subscription_id, billing_anchor, start_at, usage_billed_until, ...planRow } = row;
      const plan = planOf(planRow);
      const owner = { billing_anchor, start_at, usage_billed_until };
      const period = usagePeriodAt(owner, plan, at);
      const windows = unbilledUsageWindows(owner, plan, period.end).filter(
        (w) => w.start >= period.start && w.end <= period.end,
      );
      const usages = await windowsUsage(db, { id: subscription_id }, plan, windows);
      const amount = usages.flat().reduce((sum, usage) => sum + usage.amount, 0n);
      return { subscriptionId: subscription_id, amount };
    }),
  );
  return { total: subscriptions.reduce((sum, s) => sum + s.amount, 0n), subscriptions };
}

/** The latest of `first` and the dates of `others` (nulls left out). */
const latest = (first: Date, ...others: (Date | null)[]): Date =>
  others.reduce<Date>((max, at) => (at !== null && at > max ? at : max), first);

/**
 * Acts on the usage limits of a subscription's customer after a new usage event at `at`. A limit is
 * the customer's (PRODUCT §5), per period and currency: it is compared with the customer's usage
 * cost in the period holding `at` (`customerPeriodUsage`: every subscription of the customer in the
 * plan's currency, each in its own period holding `at`; never the usage of several periods added
 * together, as `usageEstimate` shows it while the renewal sweep is behind: EUR 30.00 in March, not
 * invoiced yet, and 30.00 in April do not cross a limit of 50.00). Each limit in that currency not
 * yet triggered in the period it is claimed for and reached (≥ amount) is claimed for that period
 * with one conditional UPDATE of `last_triggered_period_start`, so it acts exactly once per period
 * however many events race (SUSPEND: once in each subscription's period, see below). WARN is claimed for the period holding `at` (`usagePeriodAt`; never one
 * before the stored current period), without renewing (a warning bills nothing), and logs
 * `usage_limit.warning`. SUSPEND is claimed for the stored period and suspends every subscription of
 * the customer in the limit's currency that meters usage and is IN_TRIAL, ACTIVE or PAST_DUE (the
 * triggering one and its siblings, locked in id order): each is first renewed up to `now` as the
 * renewal sweep would (`renewedUpTo`, as dunning's suspension and one by hand: a period started
 * before the sweep ran is invoiced, not left unbilled; an add-on charge pending since a payment's
 * reactivation whose making fails left pending, `'try'`, named as `add_on_charge_pending` in
 * `subscription.suspended`), then moved to SUSPENDED
 * (`transitionSubscription`, reason `usage_limit`); a renewal that moved the triggering subscription
 * into a later period claims the limit for that period (not again in it); it logs
 * `usage_limit.suspended` once, with `subscriptions` (the ids it suspended). Both activities carry
 * the period's usage cost (`estimate`) and the limit, minor units, on the limit. Siblings may be on
 * other billing anchors: SUSPEND claims the latest current period start among the customer's metered
 * subscriptions in its currency (not CANCELLED), moved on to the latest period its renewals reached,
 * and counts as acted in a subscription's period when the claimed start is not before that period's
 * start. So it acts once in each one's period: EUR, A on the 1st, B on the 15th, suspended on Mar 5
 * at 55.00 (claimed Mar 1): B reactivated by hand on Mar 7 and taking usage on Mar 8 is not
 * suspended again (B's period began Feb 15), as on one anchor; in B's next period (Mar 15) it acts
 * again. It neither acts nor claims when none of them is left to suspend (all SUSPENDED already):
 * usage on a suspended subscription logged a second `usage_limit.suspended` naming none.
 * Runs after the event's commit, so each check sees every committed event: the last of concurrent
 * events sees them all.
 * @param now the clock of the transition
 * @param at the time of the usage event checked for (default `now`): the period compared and claimed
 * @returns the limits triggered now
 */
export async function checkUsageLimits(
  db: Db,
  actor: Actor,
  subscriptionId: string,
  now: Date,
  at: Date = now,
): Promise<UsageLimitRow[]> {
  const subscription = await db
    .selectFrom('subscriptions as s')
    .innerJoin('plans as p', 'p.id', 's.plan_id')
    .select([
      's.customer_id',
      's.status',
      's.current_period_start',
      's.billing_anchor',
      's.start_at',
      'p.currency',
      'p.interval',
      'p.interval_count',
    ])
    .where('s.id', '=', subscriptionId)
    .executeTakeFirst();
  const periodStart = subscription?.current_period_start;
  if (!subscription || !periodStart || subscription.status === 'CANCELLED') return [];
  // The real period of the event: later than the stored one when the renewal sweep is behind.
  const eventPeriodStart = usagePeriodAt(subscription, subscription, at).start;
  const warnPeriodStart = new Date(Math.max(eventPeriodStart.getTime(), periodStart.getTime()));
  const claimFor = (limit: UsageLimitRow): Date => (limit.action === 'WARN' ? warnPeriodStart : periodStart);
  // WARN acted for exactly its period; SUSPEND acted in this subscription's period when it claimed a
  // period starting at or after it (claimed for a sibling's later period, on another billing anchor).
  const actedFor = (limit: UsageLimitRow): boolean => {
    const last = limit.last_triggered_period_start;
    if (last === null) return false;
    return limit.action === 'WARN' ? last.getTime() === warnPeriodStart.getTime() : last >= periodStart;
  };
  const limits = (
    await db
      .selectFrom('usage_limits')
      .selectAll()
      .where('customer_id', '=', subscription.customer_id)
      .where('currency', '=', subscription.currency)
      .where('deleted_at', 'is', null)
      .orderBy('amount')
      .execute()
  ).filter((l) => !actedFor(l));
  if (limits.length === 0) return [];
  const estimate = (await customerPeriodUsage(db, subscription.customer_id, subscription.currency, at)).total;
  const triggered: UsageLimitRow[] = [];
  for (const limit of limits.filter((l) => estimate >= l.amount)) {
    const claimed = await inUnitOfWork(db, { actor }, async (work) => {
      let claimedFor = claimFor(limit);
      // SUSPEND: the customer's subscriptions in the limit's currency metering usage (not CANCELLED).
      const members =
        limit.action === 'SUSPEND'
          ? await work.trx
              .selectFrom('subscriptions as s')
              .innerJoin('plans as p', 'p.id', 's.plan_id')
              .select(['s.id', 's.status', 's.current_period_start'])
              .where('s.customer_id', '=', limit.customer_id)
              .where('p.currency', '=', limit.currency)
              .where('s.status', '!=', 'CANCELLED')
              .where(sql<boolean>`jsonb_array_length(p.metered) > 0`)
              .orderBy('s.id')
              .execute()
          : [];
      if (limit.action === 'SUSPEND') {
        // Nothing left to suspend (all SUSPENDED already): it does not act, nor claim a period.
        if (!members.some((m) => RENEWABLE.includes(m.status))) return undefined;
        // Claimed for the latest current period among them, so that it acts once in each one's period.
        claimedFor = latest(claimedFor, ...members.map((m) => m.current_period_start));
      }
      const row = await work.trx
        .updateTable('usage_limits')
        .set({ last_triggered_period_start: claimedFor })
        .where('id', '=', limit.id)
        .where('deleted_at', 'is', null)
        .where('action', '=', limit.action)
        .where((eb) =>
          limit.action === 'WARN'
            ? eb('last_triggered_period_start', 'is distinct from', claimedFor)
            : eb.or([
                eb('last_triggered_period_start', 'is', null),
                eb('last_triggered_period_start', '<', periodStart),
              ]),
        )
        .returningAll()
        .executeTakeFirst();
      if (!row) return undefined;
      const data: Record<string, unknown> = {
        estimate,
        limit: row.amount,
        currency: row.currency,
        period_start: claimedFor,
        subscription: subscriptionId,
      };
      if (row.action === 'SUSPEND') {
        // The limit is the customer's: every subscription of it in the limit's currency metering usage.
        const siblings = members.filter((m) => RENEWABLE.includes(m.status));
        const ids = [...new Set([subscriptionId, ...siblings.map((s) => s.id)])].sort();
        // All locked up front, in id order, before any is renewed (each renewal takes further locks).
        const rows = await work.trx
          .selectFrom('subscriptions')
          .selectAll()
          .where('id', 'in', ids)
          .orderBy('id')
          .forUpdate()
          .execute();
        const suspended: string[] = [];
        let actedIn = claimedFor;
        for (const locked of rows) {
          const id = locked.id;
          // As dunning's suspension and one by hand: the periods started by now are billed first, as
          // the renewal sweep on time bills them, so the suspension leaves none of them unbilled. An
          // add-on charge pending since a payment's reactivation whose making fails is left pending
          // ('try'), as dunning's suspension leaves it: the limit acts all the same.
          const renewal = await renewedUpTo(work, locked, now, DEFAULT_RENEWAL_POLICY, 'try');
          const renewed = renewal.subscription;
          actedIn = latest(actedIn, renewed.current_period_start);
          if (RENEWABLE.includes(renewed.status)) {
            await transitionSubscription(work, renewed, 'SUSPENDED', now, {
              reason: 'usage_limit',
              usage_limit: row.id,
              ...leftPendingData(locked, renewal),
            });
            suspended.push(id);
          }
        }
        data.subscriptions = suspended;
        if (actedIn.getTime() !== claimedFor.getTime()) {
          // The limit acted for the period holding now, the one a renewal moved it into: not again in it.
          await work.trx
            .updateTable('usage_limits')
            .set({ last_triggered_period_start: actedIn })
            .where('id', '=', row.id)
            .execute();
          data.period_start = actedIn;
        }
      }
      await recordActivity(work, {
        resourceType: 'usage_limit',
        resourceId: row.id,
        action: row.action === 'WARN' ? 'usage_limit.warning' : 'usage_limit.suspended',
        customerId: row.customer_id,
        data,
      });
      return row;
    });
    if (claimed) triggered.push(claimed);
  }
  return triggered;
}
