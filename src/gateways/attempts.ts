/**
 * What a gateway adapter can tell of one of billhook's attempts from its reference alone, for the
 * status checks that repeat a call only while the gateway still keeps its idempotency key
 * (PayPal's `SAFE_REPEAT_WINDOW_MS`, SecurePay's `SAFE_REPEAT_WINDOW_MS`).
 */

/**
 * When one of our transaction ids was created: billhook's ids carry their creation time in
 * milliseconds as the first 10 base-32 characters after the prefix (src/db/ids.ts), e.g.
 * `txn_01jh3k9q2m4v8c1xk0bd`.
 * @returns undefined when `reference` is not of that form or the time is implausible
 */
export function attemptCreatedAt(reference: string): Date | undefined {
  const match = /^[a-z]+_([0-9a-v]{10})[0-9a-v]{10}$/.exec(reference);
  if (!match) return undefined;
  const ms = Number.parseInt(match[1]!, 32);
  // Before 2020 or unreadable: not one of our ids.
  return Number.isSafeInteger(ms) && ms > Date.UTC(2020, 0, 1) ? new Date(ms) : undefined;
}

/**
 * Whether a status check may still repeat attempt `reference`'s call: its creation time is in our id
 * (`attemptCreatedAt`) and at most `windowMs` (milliseconds) before `now` (epoch milliseconds: the
 * sweep's clock). False for a reference that carries no time.
 */
export function withinRepeatWindow(reference: string, now: number, windowMs: number): boolean {
  const created = attemptCreatedAt(reference);
  return created !== undefined && now - created.getTime() <= windowMs;
}
