import { type Kysely, sql } from 'kysely';

/**
 * `usage_period_totals`: per subscription, metric code and usage period [period_start, period_end),
 * the aggregates of its usage events in it (sum, max, count of `value`), kept in the transaction of
 * each usage event (billing/usage.ts `keepPeriodTotals`), so that recording an event reads its
 * period's aggregate instead of summing every event of the period again (10k events on one
 * subscription: each event summed the period three times). A row is made by one sum of the period's
 * events the first time an event falls in it, with the subscription's row locked (every usage event
 * is recorded under that lock), then added to by each event in it; each row always equals the
 * aggregate of the events in its interval (events are never changed or deleted). Rows of an interval
 * no longer a period (the billing anchor moved) keep being added to and are read only when a window
 * is exactly their interval. Nothing to backfill: a period without a row is summed from its events.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE usage_period_totals (
      subscription_id text NOT NULL REFERENCES subscriptions(id),
      code text NOT NULL,
      period_start timestamptz NOT NULL,
      period_end timestamptz NOT NULL,
      sum numeric NOT NULL,
      max bigint,
      count bigint NOT NULL,
      PRIMARY KEY (subscription_id, code, period_start, period_end)
    )
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS usage_period_totals`.execute(db);
}
