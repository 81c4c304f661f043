import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Cadence, periodAt, periodIndexAt } from '../../src/billing/periods.ts';
import type { PlanInterval } from '../../src/db/schema.ts';

const d = (iso: string) => new Date(iso);
const starts = (cadence: Cadence, n: number) =>
  Array.from({ length: n }, (_, i) => periodAt(cadence, i).start.toISOString());

describe('periodAt, hand-worked', () => {
  it.each<[string, string, PlanInterval, number, string[]]>([
    [
      'monthly from Jan 31 (leap year): Feb 29, back to the 31st, Apr 30',
      '2024-01-31T10:00:00.000Z',
      'MONTH',
      1,
      [
        '2024-01-31T10:00:00.000Z',
        '2024-02-29T10:00:00.000Z',
        '2024-03-31T10:00:00.000Z',
        '2024-04-30T10:00:00.000Z',
        '2024-05-31T10:00:00.000Z',
      ],
    ],
    [
      'monthly from Jan 31 (common year): Feb 28',
      '2023-01-31T00:00:00.000Z',
      'MONTH',
      1,
      ['2023-01-31T00:00:00.000Z', '2023-02-28T00:00:00.000Z', '2023-03-31T00:00:00.000Z'],
    ],
    [
      'monthly from Dec 31 crosses the year',
      '2025-12-31T23:59:59.000Z',
      'MONTH',
      1,
      ['2025-12-31T23:59:59.000Z', '2026-01-31T23:59:59.000Z', '2026-02-28T23:59:59.000Z'],
    ],
    [
      'yearly from Feb 29: Feb 28 in common years, Feb 29 again in 2028',
      '2024-02-29T12:00:00.000Z',
      'YEAR',
      1,
      [
        '2024-02-29T12:00:00.000Z',
        '2025-02-28T12:00:00.000Z',
        '2026-02-28T12:00:00.000Z',
        '2027-02-28T12:00:00.000Z',
        '2028-02-29T12:00:00.000Z',
      ],
    ],
    [
      'quarterly from Nov 30: Feb 28, May 30, Aug 30, Nov 30',
      '2025-11-30T00:00:00.000Z',
      'MONTH',
      3,
      [
        '2025-11-30T00:00:00.000Z',
        '2026-02-28T00:00:00.000Z',
        '2026-05-30T00:00:00.000Z',
        '2026-08-30T00:00:00.000Z',
        '2026-11-30T00:00:00.000Z',
      ],
    ],
    [
      'quarterly from Nov 30 into a leap February',
      '2027-11-30T00:00:00.000Z',
      'MONTH',
      3,
      ['2027-11-30T00:00:00.000Z', '2028-02-29T00:00:00.000Z', '2028-05-30T00:00:00.000Z'],
    ],
    [
      'weekly',
      '2026-01-01T08:00:00.000Z',
      'WEEK',
      1,
      ['2026-01-01T08:00:00.000Z', '2026-01-08T08:00:00.000Z', '2026-01-15T08:00:00.000Z'],
    ],
    [
      'every 2 days across Feb 28 of a common year',
      '2026-02-27T00:00:00.000Z',
      'DAY',
      2,
      ['2026-02-27T00:00:00.000Z', '2026-03-01T00:00:00.000Z', '2026-03-03T00:00:00.000Z'],
    ],
    [
      'every 2 years from Feb 29',
      '2024-02-29T00:00:00.000Z',
      'YEAR',
      2,
      ['2024-02-29T00:00:00.000Z', '2026-02-28T00:00:00.000Z', '2028-02-29T00:00:00.000Z'],
    ],
  ])('%s', (_name, anchor, interval, intervalCount, expected) => {
    const cadence = { anchor: d(anchor), interval, intervalCount };
    expect(starts(cadence, expected.length)).toEqual(expected);
    expect(periodAt(cadence, 0).end).toEqual(periodAt(cadence, 1).start);
  });

  it('refuses a negative index', () => {
    expect(() => periodAt({ anchor: d('2026-01-01'), interval: 'DAY', intervalCount: 1 }, -1)).toThrow(
      RangeError,
    );
  });
});

describe('periodIndexAt, hand-worked', () => {
  const monthly: Cadence = { anchor: d('2024-01-31T10:00:00Z'), interval: 'MONTH', intervalCount: 1 };
  it.each([
    ['2024-01-31T09:59:59.999Z', -1], // before the anchor
    ['2024-01-31T10:00:00.000Z', 0],
    ['2024-02-29T09:59:59.999Z', 0],
    ['2024-02-29T10:00:00.000Z', 1],
    ['2024-03-30T00:00:00.000Z', 1],
    ['2024-03-31T10:00:00.000Z', 2],
    ['2025-01-31T10:00:00.000Z', 12],
  ])('monthly from Jan 31: %s is in period %i', (at, index) => {
    expect(periodIndexAt(monthly, d(at))).toBe(index);
  });
});

describe('periods, properties', () => {
  const cadence = fc.record({
    anchor: fc.date({ min: d('1970-01-01T00:00:00Z'), max: d('2200-01-01T00:00:00Z'), noInvalidDate: true }),
    interval: fc.constantFrom<PlanInterval>('DAY', 'WEEK', 'MONTH', 'YEAR'),
    intervalCount: fc.integer({ min: 1, max: 36 }),
  });

  it('are contiguous and strictly increasing, and each instant falls in its own period', () => {
    fc.assert(
      fc.property(cadence, fc.integer({ min: 0, max: 200 }), (c, n) => {
        const period = periodAt(c, n);
        const next = periodAt(c, n + 1);
        expect(period.end.getTime()).toBe(next.start.getTime());
        expect(period.start.getTime()).toBeLessThan(period.end.getTime());
        expect(periodIndexAt(c, period.start)).toBe(n);
        expect(periodIndexAt(c, new Date(period.end.getTime() - 1))).toBe(n);
      }),
      { numRuns: 500 },
    );
  });

  it('never drift: the day of month is the anchor day, or the last day of a shorter month', () => {
    fc.assert(
      fc.property(cadence, fc.integer({ min: 0, max: 200 }), (c, n) => {
        fc.pre(c.interval === 'MONTH' || c.interval === 'YEAR');
        const start = periodAt(c, n).start;
        const lastDay = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 0)).getUTCDate();
        expect(start.getUTCDate()).toBe(Math.min(c.anchor.getUTCDate(), lastDay));
        expect(start.getUTCHours()).toBe(c.anchor.getUTCHours());
      }),
    );
  });
});
