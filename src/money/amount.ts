/** Largest amount billhook accepts in minor units: 10^15, well inside PostgreSQL's bigint. */
export const MAX_MINOR_UNITS = 1_000_000_000_000_000n;

/**
 * Reads an integer minor-unit amount that a gateway sent as a JSON number (Stripe, eWAY, SecurePay).
 * @param value the JSON value, e.g. `4620` for EUR 46.20
 * @throws RangeError when it is not a safe, non-negative integer (a float never becomes money)
 */
export function minorUnitsFromJson(value: unknown): bigint {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `expected a non-negative integer amount in minor units, got ${typeof value === 'bigint' ? `${value}n` : JSON.stringify(value)}`,
    );
  }
  return BigInt(value);
}

/** Converts a bigint amount in minor units to a JSON number for a gateway that takes integers. */
export function minorUnitsToJson(amount: bigint): number {
  if (amount > BigInt(Number.MAX_SAFE_INTEGER) || amount < 0n) {
    throw new RangeError(`amount out of range: ${amount}`);
  }
  return Number(amount);
}
