import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cancellationRefund } from '../../src/billing/cancellation.ts';
import { prorate } from '../../src/billing/proration.ts';

/**
 * The refund of a cancellation (billing/cancellation.ts), as a table and over random amounts and
 * moments: what is given back (cash, then credit) and what the customer keeps paying for the used
 * time sum to the period's recurring amount exactly; each part never exceeds what is returnable; it
 * grows with the unused time.
 */
const amount = fc.bigInt({ min: 0n, max: 10n ** 15n });
const timing = fc
  .bigInt({ min: 1n, max: 366n * 86_400n })
  .chain((period) => fc.tuple(fc.constant(period), fc.bigInt({ min: 0n, max: period })));

/** What a refund gives back in all, cash and credit. */
const given = (refund: { cash: bigint; credit: bigint }) => refund.cash + refund.credit;

describe('cancellationRefund', () => {
  // The rule as a table: owed (full: recurring; prorate: its unused share) given back cash first, up
  // to the cash still refundable, then as credit, up to the credit not given back yet.
  it.each([
    // type, recurring, cash left, credit left, given back before, unused/period seconds → cash, credit
    // Issue #23's example: 1000 paid 300 by credit and 700 by card, cancelled at once with `full`.
    ['full', 1000n, 700n, 300n, 0n, 10n, 30n, 700n, 300n],
    // `prorate` half: owed 500, all of it in cash (cash first).
    ['prorate', 1000n, 700n, 300n, 0n, 15n, 30n, 500n, 0n],
    // `prorate` 4/5 unused: owed 800 = 700 cash + 100 credit.
    ['prorate', 1000n, 700n, 300n, 0n, 24n, 30n, 700n, 100n],
    // Paid wholly by credit: credit only.
    ['full', 1000n, 0n, 1000n, 0n, 10n, 30n, 0n, 1000n],
    ['prorate', 1000n, 0n, 1000n, 0n, 10n, 30n, 0n, 333n],
    // 400 of the card payment refunded by hand already: owed 1000 − 400 = 600 = the 300 cash left,
    // then 300 of credit.
    ['full', 1000n, 300n, 300n, 400n, 10n, 30n, 300n, 300n],
    // All 700 of the card refunded by hand, then `prorate` at half: 500 owed, 700 given already, so
    // nothing more (the 300 credit is not handed out on top).
    ['prorate', 1000n, 0n, 300n, 700n, 15n, 30n, 0n, 0n],
    // Paid wholly by credit, a scheduled cancellation gave 500 back (`prorate`, half); cancelling
    // now at 24/30 unused owes 800, less the 500: 300 more, never the whole 500 left.
    ['prorate', 1000n, 0n, 500n, 500n, 24n, 30n, 0n, 300n],
    // The credit given back already (a first cancellation): what is owed less it, in cash.
    ['full', 1000n, 700n, 0n, 300n, 10n, 30n, 700n, 0n],
    // A setup fee on the invoice: owed is the recurring 900 only.
    ['full', 900n, 700n, 300n, 0n, 10n, 30n, 700n, 200n],
    ['none', 1000n, 700n, 300n, 0n, 10n, 30n, 0n, 0n],
    // Nothing unused, or nothing recurring: nothing; negative inputs never give a negative part.
    ['prorate', 1000n, 700n, 300n, 0n, 0n, 30n, 0n, 0n],
    ['full', 0n, 700n, 300n, 0n, 10n, 30n, 0n, 0n],
    ['full', 1000n, -5n, 300n, 0n, 10n, 30n, 0n, 300n],
  ] as const)(
    '%s of %d with %d cash and %d credit left, %d given before, %d/%ds unused → %d cash, %d credit',
    (type, recurring, cash, credit, before, unused, period, wantCash, wantCredit) => {
      expect(cancellationRefund(type, recurring, { cash, credit }, before, unused, period)).toEqual({
        cash: wantCash,
        credit: wantCredit,
        held: 0n,
      });
    },
  );

  // Paid cash the gateway payment can no longer refund (refunds of customer credit it carried, or
  // an offline part): what is owed beyond the cash and the applied credit is `held`, up to it (a
  // cancellation owing any is refused: refund_exceeds_payment).
  it.each([
    // type, recurring, cash, credit, held, given before, unused/period → cash, credit, held
    // 1000 paid by card, 300 of other credit paid back through it: 700 cash, 300 held.
    ['full', 1000n, 700n, 0n, 300n, 0n, 10n, 30n, 700n, 0n, 300n],
    // `prorate` half: owed 500, all cash; nothing held.
    ['prorate', 1000n, 700n, 0n, 300n, 0n, 15n, 30n, 500n, 0n, 0n],
    // `prorate` 4/5: owed 800 = 700 cash + 100 held.
    ['prorate', 1000n, 700n, 0n, 300n, 0n, 24n, 30n, 700n, 0n, 100n],
    // 300 by applied credit, 700 by card of which 200 carried other credit back: 500 cash, 300
    // applied credit, 200 held, in that order.
    ['full', 1000n, 500n, 300n, 200n, 0n, 10n, 30n, 500n, 300n, 200n],
    // The payment carried back all it took: all owed held.
    ['full', 1000n, 0n, 0n, 1000n, 0n, 10n, 30n, 0n, 0n, 1000n],
  ] as const)(
    '%s of %d with %d cash, %d credit and %d held left, %d given before, %d/%ds unused → %d cash, %d credit, %d held',
    (type, recurring, cash, credit, held, before, unused, period, wantCash, wantCredit, wantHeld) => {
      expect(cancellationRefund(type, recurring, { cash, credit, held }, before, unused, period)).toEqual({
        cash: wantCash,
        credit: wantCredit,
        held: wantHeld,
      });
    },
  );

  it('splits the period exactly: refund + kept = recurring; none gives 0, full gives it all, prorate in between', () => {
    fc.assert(
      fc.property(
        amount,
        timing,
        fc.bigInt({ min: 0n, max: 10n ** 15n }),
        (recurring, [period, unused], cut) => {
          // The recurring amount paid partly in cash, partly by credit, at any split.
          const cash = cut % (recurring + 1n);
          const paid = { cash, credit: recurring - cash };
          const refund = given(cancellationRefund('prorate', recurring, paid, 0n, unused, period));
          const kept = recurring - refund;
          expect(refund + kept).toBe(recurring);
          expect(refund >= 0n && kept >= 0n).toBe(true);
          // Rounded half up: within half a minor unit of the exact share.
          const twice = 2n * refund * period - 2n * recurring * unused;
          expect(twice >= -period && twice <= period).toBe(true);
          expect(cancellationRefund('none', recurring, paid, 0n, unused, period)).toEqual({
            cash: 0n,
            credit: 0n,
            held: 0n,
          });
          expect(cancellationRefund('full', recurring, paid, 0n, unused, period)).toEqual({
            ...paid,
            held: 0n,
          });
          expect(given(cancellationRefund('prorate', recurring, paid, 0n, 0n, period))).toBe(0n);
          expect(cancellationRefund('prorate', recurring, paid, 0n, period, period)).toEqual({
            ...paid,
            held: 0n,
          });
        },
      ),
      { numRuns: 2000, seed: 2028 },
    );
  });

  it('never gives back more than owed or returnable, cash first, and more unused time never gives back less', () => {
    fc.assert(
      fc.property(
        amount,
        amount,
        amount,
        timing,
        fc.bigInt({ min: 0n, max: 366n * 86_400n }),
        (recurring, cash, credit, [period, unused], more) => {
          const returnable = { cash, credit };
          for (const type of ['none', 'full', 'prorate'] as const) {
            const refund = cancellationRefund(type, recurring, returnable, 0n, unused, period);
            expect(refund.cash >= 0n && refund.cash <= cash).toBe(true);
            expect(refund.credit >= 0n && refund.credit <= credit).toBe(true);
            expect(given(refund) <= recurring).toBe(true);
            // Credit only once the cash is used up.
            if (refund.credit > 0n) expect(refund.cash).toBe(cash);
          }
          let later = unused + more;
          if (later > period) later = period;
          expect(
            given(cancellationRefund('prorate', recurring, returnable, 0n, later, period)),
          ).toBeGreaterThanOrEqual(
            given(cancellationRefund('prorate', recurring, returnable, 0n, unused, period)),
          );
          let share = prorate(recurring, unused, period);
          if (share > cash + credit) share = cash + credit;
          expect(given(cancellationRefund('prorate', recurring, returnable, 0n, unused, period))).toBe(share);
          // What was given back before counts against what is owed: the two never exceed it.
          const before = more % (recurring + 1n);
          const owed = prorate(recurring, unused, period);
          const after = given(cancellationRefund('prorate', recurring, returnable, before, unused, period));
          expect(after).toBe(
            [owed > before ? owed - before : 0n, cash + credit].reduce((a, b) => (a < b ? a : b)),
          );
        },
      ),
      { numRuns: 2000, seed: 2029 },
    );
  });

  it('gives back held cash as credit only after the cash and the applied credit, in all min(owed, returnable)', () => {
    fc.assert(
      fc.property(
        amount,
        amount,
        amount,
        amount,
        timing,
        (recurring, cash, credit, held, [period, unused]) => {
          for (const type of ['none', 'full', 'prorate'] as const) {
            const refund = cancellationRefund(type, recurring, { cash, credit, held }, 0n, unused, period);
            expect(refund.held >= 0n && refund.held <= held).toBe(true);
            if (refund.held > 0n) expect([refund.cash, refund.credit]).toEqual([cash, credit]);
            const owed =
              type === 'none' ? 0n : type === 'full' ? recurring : prorate(recurring, unused, period);
            const returnable = cash + credit + held;
            expect(given(refund) + refund.held).toBe(owed < returnable ? owed : returnable);
          }
        },
      ),
      { numRuns: 1000, seed: 2031 },
    );
  });

  it("a change's `full` proration is the whole period's difference: prorating the whole period gives the amount back", () => {
    fc.assert(
      fc.property(amount, amount, timing, (before, after, [period]) => {
        expect(prorate(after, period, period) - prorate(before, period, period)).toBe(after - before);
        expect(prorate(after, 0n, period)).toBe(0n);
      }),
      { numRuns: 2000, seed: 2030 },
    );
  });
});
