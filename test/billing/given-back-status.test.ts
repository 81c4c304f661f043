import { describe, expect, it } from 'vitest';
import { givenBackStatus } from '../../src/billing/invoices.ts';

/**
 * An invoice's status once money was given back (billing/invoices.ts `givenBackStatus`): REFUNDED
 * when its payments are refunded whole and the credit that paid it is back, returned or carried by
 * its period's change credit (the customer has that already); a REFUNDED invoice stays REFUNDED
 * (statuses move forward only).
 */
describe('givenBackStatus', () => {
  it.each([
    // status before, paid, refunded, credit applied, credit returned, change credit carried → status
    ['PAID', 700n, 700n, 300n, 300n, 0n, 'REFUNDED'], // a cancellation's `full`: card and credit back
    // A cash refund alone: the 300 of credit it took is still kept (before: REFUNDED, the credit
    // then given back by nothing; POST /v1/invoices/:id/credit/return gives it back).
    ['PAID', 700n, 700n, 300n, 0n, 0n, 'PARTIALLY_REFUNDED'],
    // The same with its period's change credit carrying those 300: the customer has them already.
    ['PAID', 700n, 700n, 300n, 0n, 300n, 'REFUNDED'],
    ['PAID', 700n, 700n, 300n, 100n, 150n, 'PARTIALLY_REFUNDED'], // 200 kept, 150 carried
    ['PAID', 700n, 0n, 300n, 300n, 0n, 'PARTIALLY_REFUNDED'], // the credit back, the card's refund still pending
    ['PAID', 400n, 400n, 600n, 100n, 0n, 'PARTIALLY_REFUNDED'], // `prorate`: 500 of the credit kept for the used half
    ['PAID', 0n, 0n, 1000n, 1000n, 0n, 'REFUNDED'], // paid wholly by credit, all of it back
    ['PAID', 0n, 0n, 1000n, 333n, 0n, 'PARTIALLY_REFUNDED'],
    ['PAID', 1000n, 400n, 0n, 0n, 0n, 'PARTIALLY_REFUNDED'],
    ['PAID', 1000n, 1000n, 0n, 0n, 0n, 'REFUNDED'], // cash only, all of it refunded
    // REFUNDED before (cash all refunded), then 100 of the 300 credit given back: stays.
    ['REFUNDED', 700n, 700n, 300n, 100n, 0n, 'REFUNDED'],
    ['PARTIALLY_REFUNDED', 700n, 700n, 300n, 100n, 0n, 'PARTIALLY_REFUNDED'],
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
