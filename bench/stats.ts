/**
 * The bench's summaries of what it measured: percentiles of latencies and the shape of a series
 * sampled each second (a process's memory).
 */

/**
 * The `p`-th percentile (0 < p ≤ 100) of `sorted` (ascending), by the nearest-rank method: the
 * smallest value with at least p% of the values at or below it.
 * @throws RangeError when `sorted` is empty or `p` is outside (0, 100]
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('no values');
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside (0, 100]`);
  return sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
}

/** Latencies summarised, in the unit they were given (the bench gives milliseconds). */
export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/**
 * p50, p95, p99 and the maximum of `values` (any order), each rounded to `digits` decimals; all 0
 * when there are none (`count` 0).
 */
export function summarizeLatencies(values: readonly number[], digits = 0): LatencySummary {
  if (values.length === 0) return { count: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const round = (n: number) => Number(n.toFixed(digits));
  return {
    count: values.length,
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1]!),
  };
}

/**
 * A series sampled each second (a process's RSS, MB): its first, largest and last values. Memory
 * that is flat under steady load ends near where it started and peaks a little above it; a leak
 * keeps growing to the end.
 * @throws RangeError when `series` is empty
 */
export function seriesShape(series: readonly number[]): { start: number; max: number; end: number } {
  if (series.length === 0) throw new RangeError('no samples');
  return { start: series[0]!, max: Math.max(...series), end: series[series.length - 1]! };
}
