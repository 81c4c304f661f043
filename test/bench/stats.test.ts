import { describe, expect, it } from 'vitest';
import { percentile, seriesShape, summarizeLatencies } from '../../bench/stats.ts';

describe('percentile (nearest rank)', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);

  it.each([
    [50, 50],
    [95, 95],
    [99, 99],
    [100, 100],
    [0.5, 1],
  ])('the %s-th of 1…100 is %s', (p, value) => {
    expect(percentile(hundred, p)).toBe(value);
  });

  it('takes the smallest value with at least p% at or below it', () => {
    expect(percentile([10, 20, 30], 50)).toBe(20);
    expect(percentile([10, 20, 30, 40], 50)).toBe(20);
    expect(percentile([10, 20, 30, 40], 51)).toBe(30);
    expect(percentile([7], 99)).toBe(7);
  });

  it('refuses no values and a percentile outside (0, 100]', () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });
});

describe('summarizeLatencies', () => {
  it('sorts numerically and rounds', () => {
    const values = [1000.4, 2.26, 30, 4, 500, 6, 70, 8, 9, 10];
    expect(summarizeLatencies(values)).toEqual({ count: 10, p50: 9, p95: 1000, p99: 1000, max: 1000 });
    expect(summarizeLatencies([2.26, 1.04], 1)).toEqual({ count: 2, p50: 1, p95: 2.3, p99: 2.3, max: 2.3 });
  });

  it('keeps negative values (a commit seen before the client read its 2xx)', () => {
    expect(summarizeLatencies([-3, 5, 1]).p50).toBe(1);
  });

  it('is all zeros for no values', () => {
    expect(summarizeLatencies([])).toEqual({ count: 0, p50: 0, p95: 0, p99: 0, max: 0 });
  });
});

describe('seriesShape', () => {
  it('gives the first, largest and last values', () => {
    expect(seriesShape([300, 340, 320, 330, 335])).toEqual({ start: 300, max: 340, end: 335 });
    expect(seriesShape([5])).toEqual({ start: 5, max: 5, end: 5 });
  });

  it('refuses an empty series', () => {
    expect(() => seriesShape([])).toThrow(RangeError);
  });
});
