import type { PlanInterval } from '../db/schema.ts';
import { DAY_MS } from '../time.ts';

/**
 * Billing periods of a subscription, in UTC. Period n starts at `anchor + n × intervalCount intervals`
 * and ends where period n + 1 starts, always computed from the anchor (never from the previous
 * period), so a month-end anchor never drifts: Jan 31 → Feb 28 (29 in a leap year) → Mar 31 → Apr 30;
 * a Feb 29 yearly anchor → Feb 28 in common years → Feb 29 again in the next leap year. A day that
 * does not exist in the target month falls on that month's last day; the time of day is kept.
 * DAY and WEEK add exact 24-hour days (UTC has no daylight saving).
 */

/** How a subscription's periods repeat: from `anchor`, every `intervalCount` `interval`s (≥ 1). */
export interface Cadence {
  anchor: Date;
  interval: PlanInterval;
  intervalCount: number;
}

/** Period `index` (0-based): [start, end) in UTC. */
export interface Period {
  index: number;
  start: Date;
  end: Date;
}

/** Days in month `month` (0-11) of `year`, UTC. */
function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

/** `date` plus `months` calendar months, its day clamped to the target month's last day. */
function addMonths(date: Date, months: number): Date {
  const total = date.getUTCFullYear() * 12 + date.getUTCMonth() + months;
  const year = Math.floor(total / 12);
  const month = total - year * 12;
  const result = new Date(date.getTime());
  result.setUTCDate(1);
  result.setUTCFullYear(year, month, Math.min(date.getUTCDate(), daysInMonth(year, month)));
  return result;
}

/** `anchor` plus `count` intervals (count ≥ 0), UTC, month ends clamped as described above. */
export function addIntervals(anchor: Date, interval: PlanInterval, count: number): Date {
  switch (interval) {
    case 'DAY':
      return new Date(anchor.getTime() + count * DAY_MS);
    case 'WEEK':
      return new Date(anchor.getTime() + count * 7 * DAY_MS);
    case 'MONTH':
      return addMonths(anchor, count);
    case 'YEAR':
      return addMonths(anchor, count * 12);
  }
}

/**
 * Period `index` of `cadence`.
 * @throws RangeError for a negative or fractional index
 */
export function periodAt(cadence: Cadence, index: number): Period {
  if (!Number.isInteger(index) || index < 0) throw new RangeError(`period index must be ≥ 0, got ${index}`);
  const { anchor, interval, intervalCount } = cadence;
  return {
    index,
    start: addIntervals(anchor, interval, index * intervalCount),
    end: addIntervals(anchor, interval, (index + 1) * intervalCount),
  };
}

/**
 * The index of the period that contains `at` (start ≤ at < end), or -1 when `at` is before the
 * anchor (before the first period).
 */
export function periodIndexAt(cadence: Cadence, at: Date): number {
  const { anchor, interval, intervalCount } = cadence;
  if (at < anchor) return -1;
  const elapsed = at.getTime() - anchor.getTime();
  let index: number;
  switch (interval) {
    case 'DAY':
      return Math.floor(elapsed / (DAY_MS * intervalCount));
    case 'WEEK':
      return Math.floor(elapsed / (7 * DAY_MS * intervalCount));
    case 'MONTH':
    case 'YEAR': {
      const months =
        (at.getUTCFullYear() - anchor.getUTCFullYear()) * 12 + at.getUTCMonth() - anchor.getUTCMonth();
      index = Math.max(0, Math.floor(months / (intervalCount * (interval === 'YEAR' ? 12 : 1))));
    }
  }
  // The month estimate is off by at most one period near a period's first days: settle it.
  while (index > 0 && periodAt(cadence, index).start > at) index--;
  while (periodAt(cadence, index + 1).start <= at) index++;
  return index;
}
