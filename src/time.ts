/**
 * Milliseconds in a day of 24 hours (86 400 000): offsets between instants (UTC), such as a payment
 * term of N days after finalization or a retention window. Not a calendar day: billing periods step
 * by calendar months and years (billing/periods.ts).
 */
export const DAY_MS = 86_400_000;
