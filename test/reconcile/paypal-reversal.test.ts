import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
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
 * A succeeded PayPal capture `capture` of 10000 minor units in `currency`: its transaction, the
 * charge.succeeded outcome (`charged`), `event` (applies one canonical event of that capture as a
 * reconcile batch of one) and `reversed` (a `dispute.lost` reversal of `amount` keyed by the capture).
 */
async function paypalCapture(currency: string, capture: string) {
  const { transaction, charged } = await succeededCharge(db, {
    currency,
    amount: 10000n,
    gateway: 'paypal',
    gatewayTransactionId: capture,
  });
  const event = (e: Parameters<typeof canonicalEvent>[0]) =>
    applyAsBatch(db, canonicalEvent({ gateway: 'paypal', gatewayTransactionId: capture, ...e }));
  const reversed = (amount: bigint, reason: string) =>
    event({ type: 'dispute.lost', gatewayDisputeId: capture, amount, currency, reason, reversal: true });
  return { transaction, charged, event, reversed };
}

/** The PayPal clearing, disputed funds, chargeback losses and refunds balances in `currency` (minor units, 0n when none). */
async function paypalBooks(currency: string) {
  const books = await booksIn(db, currency);
  return {
    clearing: books['gateway_clearing:paypal'] ?? 0n,
    disputed: books.disputed_funds ?? 0n,
    losses: books.chargeback_losses ?? 0n,
    refunds: books.refunds ?? 0n,
  };
}

/**
 * A PayPal chargeback (`PAYMENT.CAPTURE.REVERSED`, which webhook.ts reads as `dispute.lost` keyed by
 * the capture) on a capture that was partly refunded before, by a refund of the same amount. The
 * reversal is PayPal taking the money back; no refund of the capture carries it.
 */
describe('a PayPal reversal after an earlier refund of the same amount', () => {
  /*
   * Worked by hand, minor units: captured 10000 (clearing +10000). The merchant refunds 5000 at
   * PayPal (refunds +5000, clearing 5000). The buyer's bank charges back the other 5000: PayPal
   * reverses it (clearing 0). Books: clearing 0, refunds 5000, chargeback losses 5000, disputed 0.
   */
  it('books the reversal as a chargeback loss, not as carried by the earlier refund', async () => {
    const currency = 'CAD';
    const capture = 'CAPCADREVERSED';
    const { charged, event, reversed } = await paypalCapture(currency, capture);
    expect(charged).toMatchObject({ kind: 'applied' });
    expect(
      await event({ type: 'refund.succeeded', gatewayRefundId: 'REFCADEARLIER', amount: 5000n, currency }),
    ).toMatchObject({ kind: 'applied' });
    expect(await reversed(5000n, 'PAYMENT_REVERSED')).toMatchObject({ kind: 'applied' });

    expect(await paypalBooks(currency)).toEqual({
      clearing: 0n,
      disputed: 0n,
      losses: 5000n,
      refunds: 5000n,
    });
  });
  /*
   * The mirror order, worked by hand: captured 10000 (clearing 10000); the chargeback reverses 5000
   * (disputed funds, then chargeback losses 5000; clearing 5000); the merchant then refunds the
   * other 5000 at PayPal (refunds 5000, clearing 0). That refund pays the customer's other half, not
   * the chargeback: clearing 0, chargeback losses 5000, refunds 5000.
   */
  it('keeps the chargeback loss when a later refund of the same amount pays the rest back', async () => {
    const currency = 'AUD';
    const capture = 'CAPAUDREVERSED';
    const { event, reversed } = await paypalCapture(currency, capture);
    await reversed(5000n, 'PAYMENT_REVERSED');
    expect(
      await event({ type: 'refund.succeeded', gatewayRefundId: 'REFAUDLATER', amount: 5000n, currency }),
    ).toMatchObject({ kind: 'applied' });

    expect(await paypalBooks(currency)).toEqual({
      clearing: 0n,
      disputed: 0n,
      losses: 5000n,
      refunds: 5000n,
    });
  });
  /*
   * A claim the merchant won, then a card chargeback on the same capture, worked by hand: captured
   * 10000 (clearing 10000); the claim holds 10000 (clearing 0, disputed funds 10000) and is resolved
   * for the merchant (clearing 10000 again); the buyer's bank then charges the 10000 back and PayPal
   * reverses the capture: clearing 0, chargeback losses 10000.
   */
  it('books a reversal that comes after a won claim on the same capture', async () => {
    const currency = 'NZD';
    const capture = 'CAPNZDWONTHENREVERSED';
    const { event, reversed } = await paypalCapture(currency, capture);
    await event({ type: 'dispute.opened', gatewayDisputeId: capture, amount: 10000n, currency });
    await event({ type: 'dispute.won', gatewayDisputeId: capture, amount: 10000n, currency });
    expect(await booksIn(db, currency)).toMatchObject({ 'gateway_clearing:paypal': 10000n });
    await reversed(10000n, 'PAYMENT_REVERSED');

    expect(await paypalBooks(currency)).toMatchObject({ clearing: 0n, disputed: 0n, losses: 10000n });
  });
  /*
   * The reversal's settlement line after a won claim, worked by hand: captured 10000 (clearing 10000);
   * the claim holds 10000 and is won (clearing 10000); PayPal then reverses 6000 of the capture (the
   * dispute <capture>:reversal, chargeback losses 6000, clearing 4000). The reversal's line (gross
   * -6000, fee 0, keyed by the capture like the claim) is that reversal's money: it matches the
   * reversal dispute, which booked exactly 6000, so no amount_mismatch. It used to match the won claim
   * (booked 10000): a false "settled -6000 but billhook booked -10000".
   */
  it('matches the reversal line after a won claim to the reversal dispute, without amount_mismatch', async () => {
    const currency = 'SGD';
    const capture = 'CAPSGDWONPARTIAL';
    const { event, reversed } = await paypalCapture(currency, capture);
    await event({ type: 'dispute.opened', gatewayDisputeId: capture, amount: 10000n, currency });
    await event({ type: 'dispute.won', gatewayDisputeId: capture, amount: 10000n, currency });
    await reversed(6000n, 'CHARGEBACK');
    expect(await booksIn(db, currency)).toMatchObject({
      'gateway_clearing:paypal': 4000n,
      chargeback_losses: 6000n,
    });
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'paypal', gatewayAccount: null },
      {
        lines: [
          {
            gatewayLineId: 'REVSGDPARTIAL',
            kind: 'dispute',
            gatewayTransactionId: capture,
            gatewayDisputeId: capture,
            currency,
            gross: -6000n,
            fee: 0n,
            net: -6000n,
            occurredAt: new Date(),
          },
        ],
        payouts: [],
      },
    );
    const line = await db
      .selectFrom('settlement_lines')
      .select(['id', 'dispute_id'])
      .where('gateway_line_id', '=', 'REVSGDPARTIAL')
      .executeTakeFirstOrThrow();
    const reversal = await db
      .selectFrom('disputes')
      .select('id')
      .where('gateway_dispute_id', '=', `${capture}:reversal`)
      .executeTakeFirstOrThrow();
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('settlement_line_id', '=', line.id)
      .execute();
    expect({ dispute: line.dispute_id, exceptions }).toEqual({ dispute: reversal.id, exceptions: [] });
    expect(await booksIn(db, currency)).toMatchObject({ 'gateway_clearing:paypal': 4000n });
  });
});

/**
 * A PayPal claim resolved for the buyer (CUSTOMER.DISPUTE.RESOLVED, channel INTERNAL: `dispute.lost`
 * without `reversal`) delivered before the PAYMENT.CAPTURE.REVERSED that paid it (`dispute.lost` with
 * `reversal`, same capture and amount).
 */
describe('a PayPal claim resolution delivered before its reversal', () => {
  /*
   * Worked by hand, minor units: captured 10000 (clearing 10000). The resolution says lost 5000: no
   * refund carries it, so it is a chargeback loss (clearing 5000, losses 5000). The reversal of the same
   * 5000 marks it reversed. The merchant then refunds the other 5000 (refunds 5000, clearing 0): that
   * refund pays the rest, not the chargeback, as when the reversal comes first: clearing 0, losses
   * 5000, refunds 5000. It used to pair the refund with the loss (clearing 5000, losses 0).
   */
  it.each([
    ['reversal first', 'CHF'],
    ['resolution first', 'SEK'],
  ] as const)('keeps the chargeback loss when a later refund pays the rest (%s)', async (order, currency) => {
    const capture = `CAP${currency}ORDER`;
    const { event, reversed } = await paypalCapture(currency, capture);
    const lost = { type: 'dispute.lost', gatewayDisputeId: capture, amount: 5000n, currency } as const;
    const resolution = () => event({ ...lost, reason: 'MERCHANDISE' });
    const reversal = () => reversed(5000n, 'BUYER_COMPLAINT');
    if (order === 'reversal first') {
      await reversal();
      await resolution();
    } else {
      await resolution();
      expect(await reversal()).toMatchObject({ kind: 'applied' });
    }
    await event({ type: 'refund.succeeded', gatewayRefundId: `REF${currency}REST`, amount: 5000n, currency });

    expect(await paypalBooks(currency)).toEqual({
      clearing: 0n,
      disputed: 0n,
      losses: 5000n,
      refunds: 5000n,
    });
  });

  /*
   * An earlier refund of 5000, then the resolution lost 5000 (paired with that refund: dp_…:refunded,
   * nothing lost; clearing 5000, refunds 5000), then the reversal of 5000. Whether that refund was the
   * claim's money (the reversal repeats it) or the other half (5000 more left as a chargeback) cannot be
   * told from the events: nothing is unbooked silently, an unknown_outcome exception names the dispute
   * and the refund, and the books stay (clearing 5000, losses 0, refunds 5000). It used to be dropped
   * as a duplicate without a word.
   */
  it('raises an exception naming the dispute and the refund when the lost claim was paired with a refund', async () => {
    const currency = 'HKD';
    const capture = 'CAPHKDEARLY';
    const { transaction, event, reversed } = await paypalCapture(currency, capture);
    await event({ type: 'refund.succeeded', gatewayRefundId: 'REFHKDEARLY', amount: 5000n, currency });
    const lost = { type: 'dispute.lost', gatewayDisputeId: capture, amount: 5000n, currency } as const;
    await event({ ...lost, reason: 'UNAUTHORISED' });
    await reversed(5000n, 'CHARGEBACK');
    await reversed(5000n, 'CHARGEBACK');

    const dispute = await db
      .selectFrom('disputes')
      .select(['id', 'refund_id', 'reversed'])
      .where('gateway_dispute_id', '=', capture)
      .executeTakeFirstOrThrow();
    const refund = await db
      .selectFrom('refunds')
      .select('id')
      .where('gateway_refund_id', '=', 'REFHKDEARLY')
      .executeTakeFirstOrThrow();
    expect(dispute).toMatchObject({ refund_id: refund.id, reversed: false });
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'transaction_id', 'refund_id', 'message'])
      .where('transaction_id', '=', transaction.id)
      .execute();
    expect(exceptions).toEqual([
      {
        kind: 'unknown_outcome',
        transaction_id: transaction.id,
        refund_id: refund.id,
        message: expect.stringContaining(`dispute ${dispute.id} (${capture})`),
      },
    ]);
    expect(await paypalBooks(currency)).toMatchObject({ clearing: 5000n, losses: 0n, refunds: 5000n });
  });

  /*
   * Worked by hand, minor units: captured 10000 (clearing 10000). The resolution says lost 5000, no
   * refund carries it: a chargeback loss (clearing 5000, losses 5000). The reversal then reports 7000
   * on the same capture: whether PayPal took 2000 more cannot be told from the events, so nothing
   * changes (clearing 5000, losses 5000, the dispute not marked reversed) and one amount_mismatch
   * exception names the dispute, 5000 and 7000, also when the reversal is delivered again. It used to
   * be dropped as a duplicate without a word.
   */
  it('raises one exception naming both amounts when the reversal differs from the lost claim', async () => {
    const currency = 'DKK';
    const capture = 'CAPDKKDIFFERS';
    const { transaction, event, reversed } = await paypalCapture(currency, capture);
    await event({
      type: 'dispute.lost',
      gatewayDisputeId: capture,
      amount: 5000n,
      currency,
      reason: 'MERCHANDISE',
    });
    expect(await reversed(7000n, 'CHARGEBACK')).toMatchObject({ kind: 'duplicate' });
    await reversed(7000n, 'CHARGEBACK');

    const dispute = await db
      .selectFrom('disputes')
      .select(['id', 'amount', 'reversed'])
      .where('gateway_dispute_id', '=', capture)
      .executeTakeFirstOrThrow();
    expect(dispute).toMatchObject({ amount: 5000n, reversed: false });
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'message'])
      .where('transaction_id', '=', transaction.id)
      .execute();
    expect(exceptions).toEqual([
      {
        kind: 'amount_mismatch',
        message: expect.stringMatching(
          new RegExp(
            `dispute ${dispute.id} \\(${capture}\\) was booked lost for 5000 DKK.* reversal .* of 7000 DKK`,
          ),
        ),
      },
    ]);
    expect(await paypalBooks(currency)).toEqual({
      clearing: 5000n,
      disputed: 0n,
      losses: 5000n,
      refunds: 0n,
    });
  });
});
