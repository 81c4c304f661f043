/**
 * Runs `fn` on every item, at most `limit` at a time (the billing sweeps' concurrency); once `signal`
 * is aborted (the process stopping) no item is started, and those running finish.
 */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && !signal?.aborted) await fn(items[next++]!);
  });
  await Promise.all(lanes);
}
