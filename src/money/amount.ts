/** Largest amount billhook accepts in minor units: 10^15, well inside PostgreSQL's bigint. */
export const MAX_MINOR_UNITS = 1_000_000_000_000_000n;

/**
 * The size of `amount` (minor units, any sign), without its sign: `abs(-617n)` is 617n, `abs(900n)`
 * 900n, `abs(0n)` 0n. What `Math.abs` is for numbers, on bigints (which it refuses).
 */
export function abs(amount: bigint): bigint {
  return amount < 0n ? -amount : amount;
}

/**
 * min(`amount`, `limit`), never below 0: the share of `amount` (minor units) a part holding `limit`
 * can take (cash before credit, say). `upTo(700n, 500n)` is 500n; `upTo(-5n, 500n)` is 0n.
 */
export function upTo(amount: bigint, limit: bigint): bigint {
  const least = amount < limit ? amount : limit;
  return least > 0n ? least : 0n;
}

declare global {
  interface JSON {
    /** Node ≥ 21 (TC39 "JSON.parse source text access"): a value `JSON.stringify` writes as `text`. */
    rawJSON(text: string): unknown;
  }
}

/**
 * `JSON.stringify`'s replacer for what billhook writes as JSON (the API's answers, the stored
 * idempotent answers, the CLI's reports): a bigint (minor units, a count) becomes a JSON integer with
 * every digit — a number when a double holds it exactly (|n| ≤ 2^53 − 1), else its decimal text as raw
 * JSON — so a sum beyond 2^53 (a ledger balance of 10^16 + 1 IDR) is never rounded on the way out.
 * Other values pass unchanged.
 */
export function exactJsonIntegers(_key: string, value: unknown): unknown {
  if (typeof value !== 'bigint') return value;
  return value <= MAX_SAFE && value >= -MAX_SAFE ? Number(value) : JSON.rawJSON(value.toString());
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
