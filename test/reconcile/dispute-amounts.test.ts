import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { PaymentEvent } from '../../src/gateways/types.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
});
afterAll(() => db?.destroy());

/**
 * A PayPal dispute resolved for the buyer for less than it held: PayPal holds `dispute_amount` when
 * the dispute opens and, resolved, gives the buyer `dispute_outcome.amount_refunded` (webhook.ts reads
 * that as the `dispute.lost` amount) through a refund of the capture; the rest of the hold comes back.
 * Each case books in a currency of its own, on a PayPal capture of 10000.
 */
describe('a dispute lost for another amount than it held', () => {
  /** A succeeded PayPal capture `captureId` of 10000 in `currency`. */
  async function paid(currency: string, captureId: string) {
    const { transaction, charged: succeeded } = await succeededCharge(db, {
      currency,
      amount: 10000n,
      gateway: 'paypal',
      gatewayTransactionId: captureId,
    });
    expect(succeeded).toMatchObject({ kind: 'applied' });
    return transaction;
  }
  const disputeEvent = (type: PaymentEvent['type'], captureId: string, amount: bigint, currency: string) =>
    canonicalEvent({
      type,
      gateway: 'paypal',
      gatewayTransactionId: captureId,
      // PayPal disputes are keyed by the disputed capture (webhook.ts).
      gatewayDisputeId: captureId,
      amount,
      currency,
    });
  const refundEvent = (captureId: string, refundId: string, amount: bigint, currency: string) =>
    canonicalEvent({
      type: 'refund.succeeded',
      gateway: 'paypal',
      gatewayTransactionId: captureId,
      gatewayRefundId: refundId,
      amount,
      currency,
    });

  /*
   * Worked by hand, minor units: captured 10000 (clearing +10000). The dispute opens for 10000: the
   * hold moves 10000 from clearing to disputed funds. It is resolved for the buyer with 6000 refunded:
   * PayPal refunds 6000 of the capture and gives back the other 4000 of the hold. What PayPal still
   * holds for this payment: 10000 - 6000 = 4000; the 6000 left once (as the refund, PRODUCT §11);
   * disputed funds 0, chargeback losses 0.
   */
  it.each([
    ['opened, refunded, resolved', 'CAD', ['opened', 'refunded', 'lost']],
    ['opened, resolved, refunded', 'AUD', ['opened', 'lost', 'refunded']],
    ['resolved, refunded, opened', 'NZD', ['lost', 'refunded', 'opened']],
  ] as const)('books only the 6000 given to the buyer (%s)', async (_order, currency, order) => {
    const capture = `CAP${currency}PARTIAL`;
    await paid(currency, capture);
    const events = {
      opened: disputeEvent('dispute.opened', capture, 10000n, currency),
      lost: disputeEvent('dispute.lost', capture, 6000n, currency),
      refunded: refundEvent(capture, `REF${currency}PARTIAL`, 6000n, currency),
    };
    for (const name of order) await applyAsBatch(db, events[name]);

    const books = await booksIn(db, currency);
    expect({
      clearing: books['gateway_clearing:paypal'] ?? 0n,
      disputed: books.disputed_funds ?? 0n,
      losses: books.chargeback_losses ?? 0n,
      refunds: books.refunds ?? 0n,
    }).toEqual({ clearing: 4000n, disputed: 0n, losses: 0n, refunds: 6000n });
  });
  /*
   * Worked by hand, minor units: captured 10000 (clearing +10000); the dispute opens for 10000 (clearing
   * 0, disputed funds 10000). PayPal then reports it resolved for the buyer with amount_refunded 0.00:
   * the report contradicts itself (the buyer won and got nothing), so it is an amount_mismatch for a
   * person, nothing is booked and the hold stays (clearing 0, disputed 10000, losses 0). It used to
   * throw on disputes_amount_check every time it was applied (a dispute of 0), so the event never left
   * the queue.
   */
  it('raises an exception for a person when the dispute is lost for 0, and keeps the hold', async () => {
    const currency = 'SGD';
    const capture = 'CAPSGDZERO';
    const transaction = await paid(currency, capture);
    await applyAsBatch(db, disputeEvent('dispute.opened', capture, 10000n, currency));
    const outcome = await applyAsBatch(db, disputeEvent('dispute.lost', capture, 0n, currency));
    expect(outcome).toMatchObject({
      kind: 'exception',
      exception: 'amount_mismatch',
      transactionId: transaction.id,
    });
    const dispute = await db
      .selectFrom('disputes')
      .select(['status', 'amount'])
      .where('gateway_dispute_id', '=', capture)
      .executeTakeFirstOrThrow();
    expect(dispute).toEqual({ status: 'open', amount: 10000n });
    const books = await booksIn(db, currency);
    expect({
      clearing: books['gateway_clearing:paypal'] ?? 0n,
      disputed: books.disputed_funds ?? 0n,
      losses: books.chargeback_losses ?? 0n,
    }).toEqual({ clearing: 0n, disputed: 10000n, losses: 0n });
  });

  /*
   * Worked by hand, minor units: captured 10000 (clearing 10000); the dispute opens withholding 6000
   * (clearing 4000, disputed 6000). It is reported lost for 10000: the 6000 held are booked lost, as
   * before (clearing 4000, disputed 0, losses 6000), and the other 4000, which the gateway took some
   * other way, are an amount_mismatch for a person naming 6000 and 10000; a replay of the report is a
   * duplicate (no second exception). It used to be `applied` without a word, 4000 left in clearing.
   */
  it('raises an exception for a person when the dispute is lost for more than it held', async () => {
    const currency = 'NOK';
    const capture = 'CAPNOKBEYOND';
    const transaction = await paid(currency, capture);
    await applyAsBatch(db, disputeEvent('dispute.opened', capture, 6000n, currency));
    const lost = disputeEvent('dispute.lost', capture, 10000n, currency);
    const outcome = await applyAsBatch(db, lost);
    expect(outcome).toMatchObject({
      kind: 'exception',
      exception: 'amount_mismatch',
      transactionId: transaction.id,
      message: expect.stringMatching(
        /lost for 10000 NOK, but it withheld 6000: .* the other 4000 not booked/,
      ),
    });
    expect(await applyAsBatch(db, lost)).toMatchObject({ kind: 'duplicate' });
    const dispute = await db
      .selectFrom('disputes')
      .select(['status', 'amount'])
      .where('gateway_dispute_id', '=', capture)
      .executeTakeFirstOrThrow();
    expect(dispute).toEqual({ status: 'lost', amount: 6000n });
    const books = await booksIn(db, currency);
    expect({
      clearing: books['gateway_clearing:paypal'] ?? 0n,
      disputed: books.disputed_funds ?? 0n,
      losses: books.chargeback_losses ?? 0n,
    }).toEqual({ clearing: 4000n, disputed: 0n, losses: 6000n });
  });

  /*
   * Worked by hand, minor units: captured 10000 (clearing 10000). The dispute is resolved for the
   * buyer with 5000 and no refund carries it: a chargeback loss (clearing 5000, losses 5000). The
   * gateway then reports the same dispute lost for 7000, not as a reversal (PayPal's resolution again,
   * Stripe's charge.dispute.closed): whether it took 2000 more cannot be told from the events, so
   * nothing changes (clearing 5000, losses 5000, the dispute lost for 5000) and one amount_mismatch
   * exception names the dispute, 5000 and 7000, also when the report comes again in another event.
   * It used to be dropped as a duplicate without a word.
   */
  it.each([
    ['PayPal', 'paypal', 'SEK', 'CAPSEKLOSTAGAIN'],
    ['Stripe', 'stripe', 'CHF', 'du_lost_again'],
  ] as const)(
    'raises one exception naming both amounts when a %s dispute already lost is reported lost for another amount',
    async (_name, gateway, currency, disputeId) => {
      const { transaction } = await succeededCharge(db, {
        currency,
        amount: 10000n,
        gateway,
        gatewayTransactionId: `${disputeId}_payment`,
      });
      const lost = (amount: bigint) =>
        applyAsBatch(
          db,
          canonicalEvent({
            type: 'dispute.lost',
            gateway,
            gatewayTransactionId: `${disputeId}_payment`,
            gatewayDisputeId: disputeId,
            amount,
            currency,
          }),
        );
      expect(await lost(5000n)).toMatchObject({ kind: 'applied' });
      expect(await lost(7000n)).toMatchObject({ kind: 'duplicate' });
      expect(await lost(7000n)).toMatchObject({ kind: 'duplicate' });

      const dispute = await db
        .selectFrom('disputes')
        .select(['id', 'status', 'amount', 'reversed'])
        .where('gateway_dispute_id', '=', disputeId)
        .executeTakeFirstOrThrow();
      expect(dispute).toMatchObject({ status: 'lost', amount: 5000n, reversed: false });
      const exceptions = await db
        .selectFrom('reconciliation_exceptions')
        .select(['kind', 'message', 'details'])
        .where('transaction_id', '=', transaction.id)
        .execute();
      expect(exceptions).toEqual([
        {
          kind: 'amount_mismatch',
          message: expect.stringMatching(
            new RegExp(
              `dispute ${dispute.id} \\(${disputeId}\\) was booked lost for 5000 ${currency}.* lost for 7000 ${currency}`,
            ),
          ),
          details: { dispute: dispute.id, lost: '5000', reported: '7000' },
        },
      ]);
      const books = await booksIn(db, currency);
      expect({
        clearing: books[`gateway_clearing:${gateway}`] ?? 0n,
        disputed: books.disputed_funds ?? 0n,
        losses: books.chargeback_losses ?? 0n,
      }).toEqual({ clearing: 5000n, disputed: 0n, losses: 5000n });
    },
  );
});
