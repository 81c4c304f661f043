import { describe, expect, it } from 'vitest';
import { givenBackStatus, paidStatus } from '../../src/billing/invoices.ts';

/**
 * An invoice's status once money was given back (billing/invoices.ts `givenBackStatus`, by the one
 * rule `paidStatus`): REFUNDED when its payments are refunded whole or taken by disputes open or
 * lost (`disputedAway`: a chargeback gave the customer that money, as a refund) and the credit that
 * paid it is back, returned or carried by its period's change credit (the customer has that
 * already); a REFUNDED invoice stays REFUNDED (statuses move forward only, but for `paidStatus`
 * worked again: a refund reversed, a dispute won). PAID while nothing was refunded or returned, a
 * dispute alone changing nothing.
 */
describe('givenBackStatus', () => {
  it.each([
    // status before, paid, refunded, credit applied, credit returned, change credit carried,
    // disputed → status
    ['PAID', 700n, 700n, 300n, 300n, 0n, 0n, 'REFUNDED'], // a cancellation's `full`: card and credit back
    // A cash refund alone: the 300 of credit it took is still kept (before: REFUNDED, the credit
    // then given back by nothing; POST /v1/invoices/:id/credit/return gives it back).
    ['PAID', 700n, 700n, 300n, 0n, 0n, 0n, 'PARTIALLY_REFUNDED'],
    // The same with its period's change credit carrying those 300: the customer has them already.
    ['PAID', 700n, 700n, 300n, 0n, 300n, 0n, 'REFUNDED'],
    ['PAID', 700n, 700n, 300n, 100n, 150n, 0n, 'PARTIALLY_REFUNDED'], // 200 kept, 150 carried
    ['PAID', 700n, 0n, 300n, 300n, 0n, 0n, 'PARTIALLY_REFUNDED'], // the credit back, the card's refund still pending
    ['PAID', 400n, 400n, 600n, 100n, 0n, 0n, 'PARTIALLY_REFUNDED'], // `prorate`: 500 of the credit kept for the used half
    ['PAID', 0n, 0n, 1000n, 1000n, 0n, 0n, 'REFUNDED'], // paid wholly by credit, all of it back
    ['PAID', 0n, 0n, 1000n, 333n, 0n, 0n, 'PARTIALLY_REFUNDED'],
    ['PAID', 1000n, 400n, 0n, 0n, 0n, 0n, 'PARTIALLY_REFUNDED'],
    ['PAID', 1000n, 1000n, 0n, 0n, 0n, 0n, 'REFUNDED'], // cash only, all of it refunded
    // REFUNDED before (cash all refunded), then 100 of the 300 credit given back: stays.
    ['REFUNDED', 700n, 700n, 300n, 100n, 0n, 0n, 'REFUNDED'],
    ['PARTIALLY_REFUNDED', 700n, 700n, 300n, 100n, 0n, 0n, 'PARTIALLY_REFUNDED'],
    // Disputes count as given back, as a refund (before: PARTIALLY_REFUNDED, though the customer had
    // it all back). 750 by card charged back, the 1250 of credit returned: nothing kept.
    ['PAID', 750n, 0n, 1250n, 1250n, 0n, 750n, 'REFUNDED'],
    // 2000 by card, 750 of it disputed (open or lost), the other 1250 refunded.
    ['PAID', 2000n, 1250n, 0n, 0n, 0n, 750n, 'REFUNDED'],
    ['PAID', 2000n, 1000n, 0n, 0n, 0n, 750n, 'PARTIALLY_REFUNDED'], // 250 kept
    // A dispute on a payment refunded in part already: more back than paid, nothing kept.
    ['PARTIALLY_REFUNDED', 2000n, 1500n, 0n, 0n, 0n, 2000n, 'REFUNDED'],
    // The credit kept still counts: the card all back, 300 of credit neither returned nor carried.
    ['PAID', 700n, 200n, 300n, 0n, 0n, 500n, 'PARTIALLY_REFUNDED'],
  ] as const)(
    'from %s: paid %d, refunded %d, credit %d, returned %d, carried %d, disputed %d → %s',
    (before, paid, refunded, applied, returned, carried, disputed, status) => {
      expect(
        givenBackStatus(
          {
            status: before,
            amount_paid: paid,
            amount_refunded: refunded,
            credit_applied: applied,
            credit_returned: returned,
            cash_credited: 0n,
          },
          carried,
          disputed,
        ),
      ).toBe(status);
    },
  );
});

/**
 * The one rule alone (`paidStatus`), what a status goes back to when it is worked again (a refund
 * reversed, a dispute won: billing/period-statuses.ts `statusesWorkedAgain`): no history, so a
 * REFUNDED invoice that keeps something again is PARTIALLY_REFUNDED, and PAID once nothing was
 * refunded or returned, whatever disputes took.
 */
describe('paidStatus', () => {
  it.each([
    // paid, refunded, credit applied, credit returned, carried, disputed → status
    [2000n, 1250n, 0n, 0n, 0n, 750n, 'REFUNDED'], // 750 open or lost, the rest refunded
    [2000n, 1250n, 0n, 0n, 0n, 0n, 'PARTIALLY_REFUNDED'], // that dispute won: 750 kept again
    [2000n, 0n, 0n, 0n, 0n, 2000n, 'PAID'], // charged back whole, nothing refunded: PAID, as Stripe's
    [0n, 0n, 1000n, 0n, 1000n, 0n, 'PAID'], // its credit carried by its period's change credit, nothing given back
    [312n, 312n, 625n, 0n, 625n, 0n, 'REFUNDED'], // an upgrade refunded, its credit carried
    [312n, 312n, 625n, 0n, 0n, 0n, 'PARTIALLY_REFUNDED'], // the same once the period invoice carries that credit again
  ] as const)(
    'paid %d, refunded %d, credit %d, returned %d, carried %d, disputed %d → %s',
    (paid, refunded, applied, returned, carried, disputed, status) => {
      expect(
        paidStatus(
          {
            amount_paid: paid,
            amount_refunded: refunded,
            credit_applied: applied,
            credit_returned: returned,
            cash_credited: 0n,
          },
          carried,
          disputed,
        ),
      ).toBe(status);
    },
  );
});
