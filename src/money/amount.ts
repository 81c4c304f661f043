/** Largest amount billhook accepts in minor units: 10^15, well inside PostgreSQL's bigint. */
export const MAX_MINOR_UNITS = 1_000_000_000_000_000n;
