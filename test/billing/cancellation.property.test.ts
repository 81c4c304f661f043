import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cancellationRefund } from '../../src/billing/cancellation.ts';
import { prorate } from '../../src/billing/proration.ts';

/**
 * The refund of a cancellation (billing/cancellation.ts) over random amounts and moments: what is
 * given back and what the customer keeps paying for the used time sum to the period's recurring
 * amount exactly; the refund never exceeds what is refundable; it grows with the unused time.
 */
const amount = fc.bigInt({ min: 0n, max: 10n ** 15n });
const timing = fc
  .bigInt({ min: 1n, max: 366n * 86_400n })
  .chain((period) => fc.tuple(fc.constant(period), fc.bigInt({ min: 0n, max: period })));

describe('cancellationRefund', () => {
  it('splits the period exactly: refund + kept = recurring; none gives 0, full gives it all, prorate in between', () => {
    fc.assert(
      fc.property(amount, timing, (recurring, [period, unused]) => {
        const refund = cancellationRefund('prorate', recurring, recurring, unused, period);
        const kept = recurring - refund;
        expect(refund + kept).toBe(recurring);
        expect(refund >= 0n && kept >= 0n).toBe(true);
        // Rounded half up: within half a minor unit of the exact share.
        const twice = 2n * refund * period - 2n * recurring * unused;
        expect(twice >= -period && twice <= period).toBe(true);
        expect(cancellationRefund('none', recurring, recurring, unused, period)).toBe(0n);
        expect(cancellationRefund('full', recurring, recurring, unused, period)).toBe(recurring);
        expect(cancellationRefund('prorate', recurring, recurring, 0n, period)).toBe(0n);
        expect(cancellationRefund('prorate', recurring, recurring, period, period)).toBe(recurring);
      }),
      { numRuns: 2000, seed: 2028 },
    );
  });

  it('never refunds more than is refundable, and more unused time never refunds less', () => {
    fc.assert(
      fc.property(
        amount,
        amount,
        timing,
        fc.bigInt({ min: 0n, max: 366n * 86_400n }),
        (recurring, refundable, [period, unused], more) => {
          for (const type of ['none', 'full', 'prorate'] as const) {
            const refund = cancellationRefund(type, recurring, refundable, unused, period);
            expect(refund >= 0n && refund <= refundable && refund <= recurring).toBe(true);
          }
          let later = unused + more;
          if (later > period) later = period;
          expect(cancellationRefund('prorate', recurring, refundable, later, period)).toBeGreaterThanOrEqual(
            cancellationRefund('prorate', recurring, refundable, unused, period),
          );
          let share = prorate(recurring, unused, period);
          if (share > refundable) share = refundable;
          expect(cancellationRefund('prorate', recurring, refundable, unused, period)).toBe(share);
        },
      ),
      { numRuns: 2000, seed: 2029 },
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
