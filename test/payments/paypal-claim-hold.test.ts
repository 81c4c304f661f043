import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disputedAway, refundable } from '../../src/billing/invoice-payment.ts';
import { lockInvoice } from '../../src/billing/invoices.ts';
import type { Db } from '../../src/db/database.ts';
import type { TransactionRow } from '../../src/db/schema.ts';
import { ValidationError } from '../../src/errors.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { type DisputeReport, recordDispute } from '../../src/payments/disputes.ts';
import { flagUnpaidLostClaims } from '../../src/payments/lost-claims.ts';
import { createRefund, recordRefundResult } from '../../src/payments/refunds.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

/**
 * PayPal holds a claim's amount while the claim is open, and a refund issued meanwhile is paid out of
 * those held funds (PayPal Help, "My buyer filed a dispute, claim, or chargeback, and the payment is on
 * hold": "You can use these funds to issue a refund anytime during the dispute … If you send a full
 * refund, the dispute is closed"). So once the refund that pays the claim is in (PayPal's own,
 * `PAYMENT.CAPTURE.REFUNDED`, before or after the claim's opening), PayPal holds nothing for the claim
 * and the ledger's clearing says what PayPal holds: JPY 1000 paid, a claim of 400, PayPal's refund of
 * 400: 600 in clearing and 0 disputed (before: 200 and 400 until the claim closed). Each close (won,
 * lost and paid by that refund, lost for less) ends where it ended before.
 *
 * A refund billhook sends itself (by hand, through the API) is a refund of the payment, not the claim's
 * money: PayPal resolves a claim by "accept claim" (PayPal refunds the buyer) or by the merchant's
 * evidence (a refund already made is `PROOF_OF_REFUND` naming its refund id, Disputes API
 * provide-evidence), so billhook cannot know the claim is settled by it and keeps the claim open and
 * holding: 1000 paid, claim of 400 open, 400 refunded by hand for a partial return: 200 still
 * refundable, not 600, and the claim's loss is paired with PayPal's own refund when it comes.
 *
 * Money core: one-line untaxed invoices of 1000 paid once; each test reads the books as differences
 * from before its payment, so the file's tests share one database.
 */
describe('an open PayPal claim and its refund: the ledger shows what PayPal holds', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  const CURRENCY = 'JPY';
  const payment = (id: string) =>
    db.selectFrom('transactions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const report = (t: TransactionRow, status: DisputeReport['status'], amount: bigint) =>
    inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordDispute(work, t, { gatewayDisputeId: `D-${t.id}`, status, amount }),
    );
  /** PayPal's own refund of `amount` on `capture` (`PAYMENT.CAPTURE.REFUNDED` of a refund billhook did not send). */
  const refundedAtPayPal = (
    capture: string,
    amount: bigint,
    id = `R-${capture}`,
    type = 'refund.succeeded',
  ) =>
    applyAsBatch(
      db,
      canonicalEvent({
        type: type as 'refund.succeeded' | 'refund.failed',
        gateway: 'paypal',
        gatewayTransactionId: capture,
        gatewayRefundId: id,
        amount,
        currency: CURRENCY,
      }),
    );
  /** A refund billhook sends (by hand), answered succeeded by PayPal. */
  const byHand = async (t: TransactionRow, amount: bigint) => {
    const refund = await inUnitOfWork(db, { actor: 'system' }, async (work) =>
      createRefund(work, await payment(t.id), { amount, reason: 'partial_return' }),
    );
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordRefundResult(work, refund.id, { status: 'succeeded', gatewayRefundId: `BH-${refund.id}` }),
    );
    return refund;
  };
  const rooms = (t: TransactionRow) =>
    inUnitOfWork(db, { actor: 'system' }, async (work) => {
      await lockInvoice(work, t.invoice_id!);
      return {
        disputed: await disputedAway(work.trx, t.invoice_id!),
        refundable: await refundable(work.trx, await payment(t.id)),
      };
    });
  const ACCOUNTS = ['gateway_clearing:paypal', 'disputed_funds', 'refunds', 'chargeback_losses'] as const;
  /** The books' change since `base` in the accounts a claim moves, and whether every account still sums to 0. */
  const since = async (base: Record<string, bigint>) => {
    const now = await booksIn(db, CURRENCY);
    const sum = Object.values(now).reduce((a, b) => a + b, 0n);
    const moved = Object.fromEntries(ACCOUNTS.map((code) => [code, (now[code] ?? 0n) - (base[code] ?? 0n)]));
    return { ...moved, balanced: sum === 0n };
  };
  /** A PayPal payment of 1000 on `capture`, and the books before it. */
  const paid = async (capture: string) => {
    const base = await booksIn(db, CURRENCY);
    const { transaction } = await succeededCharge(db, {
      currency: CURRENCY,
      gateway: 'paypal',
      amount: 1000n,
      gatewayTransactionId: capture,
    });
    return { base, transaction };
  };
  const held = (clearing: bigint, disputed: bigint, refunds: bigint, losses = 0n) => ({
    'gateway_clearing:paypal': clearing,
    disputed_funds: disputed,
    refunds,
    chargeback_losses: losses,
    balanced: true,
  });

  it('two claims of 400 (B an inquiry first, A open and paid by PayPal’s refund, B escalated, B won): the ledger holds what the claims say at each step', async () => {
    const { base, transaction } = await paid('HOLD_STEAL');
    const claim = (id: string, status: DisputeReport['status']) =>
      inUnitOfWork(db, { actor: 'system' }, (work) =>
        recordDispute(work, transaction, { gatewayDisputeId: id, status, amount: 400n }),
      );
    await claim('PP-B', 'inquiry');
    await claim('PP-A', 'open');
    await refundedAtPayPal('HOLD_STEAL', 400n);
    expect(await since(base)).toEqual(held(600n, 0n, 400n));
    await claim('PP-B', 'open');
    // One refund of 400 pays one claim: 400 held for the other.
    expect(await since(base)).toEqual(held(200n, 400n, 400n));
    await claim('PP-B', 'won');
    // A is open and paid by the refund (hold_refund_id set): nothing held.
    const a = await db
      .selectFrom('disputes')
      .selectAll()
      .where('gateway_dispute_id', '=', 'PP-A')
      .executeTakeFirstOrThrow();
    expect(a).toMatchObject({ status: 'open', hold_refund_id: expect.stringMatching(/^re_/) });
    expect(await since(base)).toEqual(held(600n, 0n, 400n));
  });

  it('claim of 400 paid out of its hold by PayPal’s refund of 400, then escalated to a chargeback (reversal) and lost (twice): 400 lost beside the refund, 200 in clearing, nothing held, balanced', async () => {
    const { base, transaction } = await paid('HOLD_CB');
    const claim = (status: DisputeReport['status'], reversal: boolean) =>
      inUnitOfWork(db, { actor: 'system' }, (work) =>
        recordDispute(work, transaction, { gatewayDisputeId: 'PP-CB', status, amount: 400n, reversal }),
      );
    await claim('open', false);
    await refundedAtPayPal('HOLD_CB', 400n);
    expect(await since(base)).toEqual(held(600n, 0n, 400n));
    await claim('open', true);
    await claim('lost', true);
    await claim('lost', true);
    expect(await since(base)).toEqual(held(200n, 0n, 400n, 400n));
  });

  it('claim of 400 paid out of its hold by PayPal’s refund of 400, then reported as a chargeback while still open: the chargeback holds 400 again (200 in clearing, 400 held, 200 refundable) until it is decided; lost: 400 lost beside the refund; won: 600 back in clearing', async () => {
    /*
     * By hand (JPY, differences from before the payment): paid 1000 → clearing 1000. Claim of 400
     * open → clearing 600, disputed 400. PayPal's refund of 400, paid out of the claim's hold → the
     * refund's entry takes 400 out of clearing, dp_…:hold_refunded gives the hold back to it: clearing
     * 600, disputed 0, refunds 400. The buyer then files a chargeback with their card issuer on the same
     * capture (CUSTOMER.DISPUTE.* of dispute_channel EXTERNAL: a `reversal` report, open): a
     * chargeback is no refund's money (PayPal takes or holds its amount whatever was refunded before),
     * so the refund no longer pays it and PayPal holds 400 again of the 600 it had: clearing 200,
     * disputed 400, refunds 400; the payment's refundable room is 1000 − 400 refunded − 400 held = 200
     * (it was 600, and a refund by hand of 600 would have given back 1400 of 1000). Lost (the reversal
     * takes the held 400): clearing 200, disputed 0, refunds 400, losses 400. Won instead: the 400
     * held comes back: clearing 600, disputed 0, refunds 400, losses 0.
     */
    for (const [capture, ending] of [
      ['HOLD_CB_MID_LOST', 'lost'],
      ['HOLD_CB_MID_WON', 'won'],
    ] as const) {
      const { base, transaction } = await paid(capture);
      const claim = (status: DisputeReport['status'], reversal: boolean) =>
        inUnitOfWork(db, { actor: 'system' }, (work) =>
          recordDispute(work, transaction, { gatewayDisputeId: capture, status, amount: 400n, reversal }),
        );
      await claim('open', false);
      await refundedAtPayPal(capture, 400n);
      expect(await since(base)).toEqual(held(600n, 0n, 400n));
      expect(await rooms(transaction)).toEqual({ disputed: 0n, refundable: 600n });
      expect(await claim('open', true)).toMatchObject({
        kind: 'applied',
        dispute: { status: 'open', reversed: true, hold_refund_id: null },
      });
      expect(await since(base)).toEqual(held(200n, 400n, 400n));
      expect(await rooms(transaction)).toEqual({ disputed: 400n, refundable: 200n });
      // Reported again: nothing more moves.
      expect(await claim('open', true)).toMatchObject({ kind: 'duplicate' });
      expect(await since(base)).toEqual(held(200n, 400n, 400n));
      await claim(ending, true);
      expect(await since(base)).toEqual(
        ending === 'lost' ? held(200n, 0n, 400n, 400n) : held(600n, 0n, 400n),
      );
      // Won, nothing is owed: the refund was the claim's money, paid out of its hold, not a refund
      // given back because the chargeback counted as the customer's (no dispute_won_after_refund).
      expect(
        await db
          .selectFrom('reconciliation_exceptions')
          .select('kind')
          .where('transaction_id', '=', transaction.id)
          .execute(),
      ).toEqual([]);
    }
  });

  it('claim first, then PayPal’s refund of 400: 600 in clearing and nothing held (was 200 and 400); lost and paid by that refund: still 600, nothing lost', async () => {
    const { base, transaction } = await paid('HOLD_1');
    expect(await since(base)).toEqual(held(1000n, 0n, 0n));
    await report(transaction, 'open', 400n);
    expect(await since(base)).toEqual(held(600n, 400n, 0n));
    await refundedAtPayPal('HOLD_1', 400n);
    // PayPal paid the refund out of the 400 it held for the claim: it holds 600, none of it disputed.
    expect(await since(base)).toEqual(held(600n, 0n, 400n));
    expect(await rooms(transaction)).toEqual({ disputed: 0n, refundable: 600n });
    const lost = await report(transaction, 'lost', 400n);
    expect(lost.dispute).toMatchObject({ status: 'lost', refund_id: expect.stringMatching(/^re_/) });
    expect(await since(base)).toEqual(held(600n, 0n, 400n));
  });

  it('claim first, PayPal’s refund of 400, then the claim won: 600 in clearing throughout, nothing held', async () => {
    const { base, transaction } = await paid('HOLD_2');
    await report(transaction, 'open', 400n);
    await refundedAtPayPal('HOLD_2', 400n);
    expect(await since(base)).toEqual(held(600n, 0n, 400n));
    await report(transaction, 'won', 400n);
    expect(await since(base)).toEqual(held(600n, 0n, 400n));
  });

  it('refund first (PayPal’s refund of 400 delivered before the claim’s opening): 600 in clearing, nothing held, after the opening and after the loss', async () => {
    const { base, transaction } = await paid('HOLD_3');
    await refundedAtPayPal('HOLD_3', 400n);
    expect(await since(base)).toEqual(held(600n, 0n, 400n));
    await report(transaction, 'open', 400n);
    expect(await since(base)).toEqual(held(600n, 0n, 400n));
    await report(transaction, 'lost', 400n);
    expect(await since(base)).toEqual(held(600n, 0n, 400n));
  });

  it('refund first, then the claim opened and won: 600 in clearing throughout', async () => {
    const { base, transaction } = await paid('HOLD_4');
    await refundedAtPayPal('HOLD_4', 400n);
    await report(transaction, 'open', 400n);
    await report(transaction, 'won', 400n);
    expect(await since(base)).toEqual(held(600n, 0n, 400n));
  });

  it('claim of 400 open, PayPal’s refund of 400, then the claim lost for 300: ends as before (300 lost, 100 released, 300 in clearing)', async () => {
    const { base, transaction } = await paid('HOLD_5');
    await report(transaction, 'open', 400n);
    await refundedAtPayPal('HOLD_5', 400n);
    expect(await since(base)).toEqual(held(600n, 0n, 400n));
    await report(transaction, 'lost', 300n);
    // The refund of 400 is not this loss of 300's: the loss is a chargeback loss, as before.
    expect(await since(base)).toEqual(held(300n, 0n, 400n, 300n));
  });

  it('PayPal’s refund failing after it succeeded while the claim is open: the claim holds its 400 again (600 in clearing, 400 held)', async () => {
    const { base, transaction } = await paid('HOLD_6');
    await report(transaction, 'open', 400n);
    await refundedAtPayPal('HOLD_6', 400n);
    expect(await since(base)).toEqual(held(600n, 0n, 400n));
    await refundedAtPayPal('HOLD_6', 400n, 'R-HOLD_6', 'refund.failed');
    expect(await since(base)).toEqual(held(600n, 400n, 0n));
    expect(await rooms(transaction)).toEqual({ disputed: 400n, refundable: 600n });
  });

  it('a refund by hand of exactly the claim’s 400 (a partial return) does not settle the open claim: 200 refundable, 400 still held; the loss pairs with PayPal’s own refund', async () => {
    const { base, transaction } = await paid('HOLD_7');
    await report(transaction, 'open', 400n);
    const mine = await byHand(transaction, 400n);
    // Before: the refund by hand was taken as the claim's money: disputed 0, 600 refundable, 0 held.
    expect(await rooms(transaction)).toEqual({ disputed: 400n, refundable: 200n });
    await expect(byHand(transaction, 201n)).rejects.toBeInstanceOf(ValidationError);
    expect(await since(base)).toEqual(held(200n, 400n, 400n));
    // PayPal resolves the claim for the buyer and pays it by a refund of its own.
    const lost = await report(transaction, 'lost', 400n);
    expect(lost.dispute.refund_id).toBeNull();
    await refundedAtPayPal('HOLD_7', 400n);
    const dispute = await db
      .selectFrom('disputes')
      .selectAll()
      .where('id', '=', lost.dispute.id)
      .executeTakeFirstOrThrow();
    expect(dispute.refund_id).not.toBeNull();
    expect(dispute.refund_id).not.toBe(mine.id);
    expect(await since(base)).toEqual(held(200n, 0n, 800n));
  });

  it('a refund by hand of 400 sent after the claim of 400 was lost is not its money either: the loss stays booked until PayPal’s refund comes', async () => {
    const { base, transaction } = await paid('HOLD_8');
    await report(transaction, 'open', 400n);
    const lost = await report(transaction, 'lost', 400n);
    expect(await since(base)).toEqual(held(600n, 0n, 0n, 400n));
    // 1000 paid, 400 lost: 600 refundable by hand; 400 of it for a partial return.
    const mine = await byHand(transaction, 400n);
    const after = await db
      .selectFrom('disputes')
      .select('refund_id')
      .where('id', '=', lost.dispute.id)
      .executeTakeFirstOrThrow();
    expect(after.refund_id).toBeNull();
    expect(await rooms(transaction)).toEqual({ disputed: 400n, refundable: 200n });
    expect(await since(base)).toEqual(held(200n, 0n, 400n, 400n));
    await refundedAtPayPal('HOLD_8', 400n);
    const paidBy = await db
      .selectFrom('disputes')
      .select('refund_id')
      .where('id', '=', lost.dispute.id)
      .executeTakeFirstOrThrow();
    expect(paidBy.refund_id).not.toBe(mine.id);
    expect(paidBy.refund_id).not.toBeNull();
    expect(await since(base)).toEqual(held(200n, 0n, 800n, 0n));
  });

  it('a claim of 400 lost with no PayPal refund after a refund by hand of 400 sent while it was open: the loss stays booked and lost_claim_unpaid names that refund for a person', async () => {
    const { base, transaction } = await paid('HOLD_9');
    await report(transaction, 'open', 400n);
    const mine = await byHand(transaction, 400n);
    const lost = await report(transaction, 'lost', 400n);
    expect(lost.dispute.refund_id).toBeNull();
    expect(await since(base)).toEqual(held(200n, 0n, 400n, 400n));
    const eightDaysOn = new Date(Date.now() + 8 * 86_400_000);
    expect(await flagUnpaidLostClaims(db, 'system', eightDaysOn, 7)).toContain(lost.dispute.id);
    const flagged = await db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'message', 'details'])
      .where('transaction_id', '=', transaction.id)
      .execute();
    expect(flagged).toEqual([
      {
        kind: 'lost_claim_unpaid',
        message: expect.stringContaining(`Billhook sent refund ${mine.id} of the same payment and amount`),
        details: expect.objectContaining({ dispute: lost.dispute.id, refunds_sent_by_billhook: [mine.id] }),
      },
    ]);
    // Nothing unbooked by the exception: a person decides.
    expect(await since(base)).toEqual(held(200n, 0n, 400n, 400n));
  });
});
