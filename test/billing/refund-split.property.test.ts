import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type RefundRoom, splitRefund, totalRoom } from '../../src/billing/invoice-payment.ts';
import type { TransactionRow } from '../../src/db/schema.ts';

/**
 * `splitRefund` (billing/invoice-payment.ts), the one planner of refunds spread over several
 * payments (a cancellation's cash part, a customer-credit refund): in the payments' order (newest
 * first), each part within its payment's room, the parts adding up to the amount or to everything
 * the rooms hold, whichever is less; a payment with no room is never used.
 */
const payment = (id: string) => ({ id }) as TransactionRow;

describe('splitRefund', () => {
  it('fills the newest payment first, then the next, each up to its room (the cancellation of test/http/invoices-refund-payments)', () => {
    const rooms: RefundRoom[] = [
      { transaction: payment('txn_new'), room: 3000n },
      { transaction: payment('txn_spent'), room: 0n },
      { transaction: payment('txn_old'), room: 7000n },
    ];
    expect(splitRefund(rooms, 5000n).map((p) => [p.transaction.id, p.amount])).toEqual([
      ['txn_new', 3000n],
      ['txn_old', 2000n],
    ]);
    expect(splitRefund(rooms, 2000n).map((p) => [p.transaction.id, p.amount])).toEqual([['txn_new', 2000n]]);
    expect(splitRefund(rooms, 0n)).toEqual([]);
    // More than all rooms: everything they hold, the caller refuses the shortfall.
    expect(splitRefund(rooms, 12_000n).reduce((sum, p) => sum + p.amount, 0n)).toBe(totalRoom(rooms));
  });

  it('over random rooms and amounts: parts within rooms, in order, adding up to min(amount, total room)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: -1000n, max: 10n ** 12n }), { maxLength: 8 }),
        fc.bigInt({ min: 0n, max: 10n ** 13n }),
        (sizes, amount) => {
          const rooms = sizes.map((room, i) => ({ transaction: payment(`txn_${i}`), room }));
          const parts = splitRefund(rooms, amount);
          const total = totalRoom(rooms);
          // min(amount, total), on bigints.
          let covered = amount;
          if (covered > total) covered = total;
          expect(parts.reduce((sum, p) => sum + p.amount, 0n)).toBe(covered);
          let last = -1;
          for (const part of parts) {
            const index = rooms.findIndex((r) => r.transaction === part.transaction);
            expect(index).toBeGreaterThan(last);
            last = index;
            expect(part.amount).toBeGreaterThan(0n);
            expect(part.amount).toBeLessThanOrEqual(rooms[index]!.room);
          }
          // Only the last part may leave room on its payment: earlier ones are filled.
          for (const part of parts.slice(0, -1)) {
            expect(part.amount).toBe(rooms.find((r) => r.transaction === part.transaction)!.room);
          }
        },
      ),
    );
  });
});
