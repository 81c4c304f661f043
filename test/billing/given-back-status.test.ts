import { describe, expect, it } from 'vitest';
import { givenBackStatus } from '../../src/billing/invoices.ts';

/**
 * An invoice's status once money was given back (billing/invoices.ts `givenBackStatus`): REFUNDED
 * when its payments are refunded whole and the credit that paid it came back whole or not at all;
 * a REFUNDED invoice stays REFUNDED (statuses move forward only).
 */
describe('givenBackStatus', () => {
  it.each([
    // status before, paid, refunded, credit applied, credit returned → status
    ['PAID', 700n, 700n, 300n, 300n, 'REFUNDED'], // a cancellation's `full`: card and credit back
    ['PAID', 700n, 700n, 300n, 0n, 'REFUNDED'], // a cash refund alone, as before credit returns existed
    ['PAID', 700n, 0n, 300n, 300n, 'PARTIALLY_REFUNDED'], // the credit back, the card's refund still pending
    ['PAID', 400n, 400n, 600n, 100n, 'PARTIALLY_REFUNDED'], // `prorate`: 500 of the credit kept for the used half
    ['PAID', 0n, 0n, 1000n, 1000n, 'REFUNDED'], // paid wholly by credit, all of it back
    ['PAID', 0n, 0n, 1000n, 333n, 'PARTIALLY_REFUNDED'],
    ['PAID', 1000n, 400n, 0n, 0n, 'PARTIALLY_REFUNDED'],
    // The card's 700 refunded by hand first (REFUNDED), then 100 of the 300 credit given back: stays.
    ['REFUNDED', 700n, 700n, 300n, 100n, 'REFUNDED'],
    ['PARTIALLY_REFUNDED', 700n, 700n, 300n, 100n, 'PARTIALLY_REFUNDED'],
  ] as const)(
    'from %s: paid %d, refunded %d, credit %d, returned %d → %s',
    (before, paid, refunded, applied, returned, status) => {
      expect(
        givenBackStatus({
          status: before,
          amount_paid: paid,
          amount_refunded: refunded,
          credit_applied: applied,
          credit_returned: returned,
        }),
      ).toBe(status);
    },
  );
});
