import { describe, expect, it } from 'vitest';
import { givenBackStatus } from '../../src/billing/invoices.ts';

/**
 * An invoice's status once money was given back (billing/invoices.ts `givenBackStatus`): REFUNDED
 * when its payments are refunded whole and the credit that paid it came back whole or not at all, or
 * when nothing of what it took in (cash and credit) is left once the change credit it carries (the
 * customer has it already) is counted; a REFUNDED invoice stays REFUNDED (statuses move forward only).
 */
describe('givenBackStatus', () => {
  it.each([
    // status before, paid, refunded, credit applied, credit returned, change credit carried → status
    ['PAID', 700n, 700n, 300n, 300n, 0n, 'REFUNDED'], // a cancellation's `full`: card and credit back
    ['PAID', 700n, 700n, 300n, 0n, 0n, 'REFUNDED'], // a cash refund alone, as before credit returns existed
    ['PAID', 700n, 0n, 300n, 300n, 0n, 'PARTIALLY_REFUNDED'], // the credit back, the card's refund still pending
    ['PAID', 400n, 400n, 600n, 100n, 0n, 'PARTIALLY_REFUNDED'], // `prorate`: 500 of the credit kept for the used half
    ['PAID', 0n, 0n, 1000n, 1000n, 0n, 'REFUNDED'], // paid wholly by credit, all of it back
    ['PAID', 0n, 0n, 1000n, 333n, 0n, 'PARTIALLY_REFUNDED'],
    ['PAID', 1000n, 400n, 0n, 0n, 0n, 'PARTIALLY_REFUNDED'],
    // The card's 700 refunded by hand first (REFUNDED), then 100 of the 300 credit given back: stays.
    ['REFUNDED', 700n, 700n, 300n, 100n, 0n, 'REFUNDED'],
    ['PARTIALLY_REFUNDED', 700n, 700n, 300n, 100n, 0n, 'PARTIALLY_REFUNDED'],
    // A downgrade credited 625 of 2500 paid to the customer: 1875 refunded is all there is (before:
    // PARTIALLY_REFUNDED for good); 1874 leaves 1 to refund.
    ['PAID', 2500n, 1875n, 0n, 0n, 625n, 'REFUNDED'],
    ['PAID', 2500n, 1874n, 0n, 0n, 625n, 'PARTIALLY_REFUNDED'],
    // 1250 by card + 1250 by credit, 625 credited by a downgrade; a cancellation `full` gives back
    // 1250 + 625 of the credit: 2500 − 1875 − 625 = 0 left (before: PARTIALLY_REFUNDED). The credit
    // back, the card's refund still pending: 1250 left.
    ['PAID', 1250n, 1250n, 1250n, 625n, 625n, 'REFUNDED'],
    ['PAID', 1250n, 0n, 1250n, 625n, 625n, 'PARTIALLY_REFUNDED'],
  ] as const)(
    'from %s: paid %d, refunded %d, credit %d, returned %d, carried %d → %s',
    (before, paid, refunded, applied, returned, carried, status) => {
      expect(
        givenBackStatus(
          {
            status: before,
            amount_paid: paid,
            amount_refunded: refunded,
            credit_applied: applied,
            credit_returned: returned,
          },
          carried,
        ),
      ).toBe(status);
    },
  );
});
