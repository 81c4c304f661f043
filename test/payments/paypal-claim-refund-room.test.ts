import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disputedAway, refundable } from '../../src/billing/invoice-payment.ts';
import { lockInvoice } from '../../src/billing/invoices.ts';
import type { Db } from '../../src/db/database.ts';
import type { TransactionRow } from '../../src/db/schema.ts';
import { ValidationError } from '../../src/errors.ts';
import type { GatewayName } from '../../src/gateways/types.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { type DisputeReport, recordDispute } from '../../src/payments/disputes.ts';
import { createRefund } from '../../src/payments/refunds.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

/**
 * PayPal pays a claim it resolves for the buyer by a refund of the capture (`lostDisputePaidAsRefund`),
 * and may report that refund while the claim is still open. That refund is the claim's money (its
 * loss is paired with it: payments/disputes.ts `refundCarrying`), so the claim no longer takes
 * anything of the payment's refundable room besides it (billing/invoice-payment.ts `disputedAwayOf`),
 * as it no longer holds the customer's credit (billing/credit-notes.ts `disputeHolds`). Before, both
 * the refund and the open claim counted: JPY 1000 paid by PayPal, a claim of 400 open and PayPal's
 * refund of 400 in, a refund by hand could give back 200, not 600, until the loss came.
 * Money core: one-line untaxed invoices of JPY 1000 paid once.
 */
describe('a PayPal claim whose refund came first takes the refundable room once', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  const paid = (currency: string, gateway: GatewayName, capture: string) =>
    succeededCharge(db, { currency, gateway, amount: 1000n, gatewayTransactionId: capture });
  const payment = (id: string) =>
    db.selectFrom('transactions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const report = (t: TransactionRow, status: DisputeReport['status'], amount: bigint) =>
    inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordDispute(work, t, { gatewayDisputeId: `D-${t.id}`, status, amount }),
    );
  /** The gateway's own refund of `amount` on `capture` (PayPal's `PAYMENT.CAPTURE.REFUNDED`, a dashboard refund). */
  const refundedAtGateway = (gateway: GatewayName, capture: string, currency: string, amount: bigint) =>
    applyAsBatch(
      db,
      canonicalEvent({
        type: 'refund.succeeded',
        gateway,
        gatewayTransactionId: capture,
        gatewayRefundId: `R-${capture}`,
        amount,
        currency,
      }),
    );
  /** What the invoice's disputes took, and what a refund by hand of the payment can give back, under the invoice's lock. */
  const rooms = (t: TransactionRow) =>
    inUnitOfWork(db, { actor: 'system' }, async (work) => {
      await lockInvoice(work, t.invoice_id!);
      return {
        disputed: await disputedAway(work.trx, t.invoice_id!),
        refundable: await refundable(work.trx, await payment(t.id)),
      };
    });
  const byHand = (t: TransactionRow, amount: bigint) =>
    inUnitOfWork(db, { actor: 'system' }, async (work) =>
      createRefund(work, await payment(t.id), { amount, reason: 'requested_by_customer' }),
    );

  it('JPY: claim of 400 open and PayPal’s refund of 400 in: 600 refundable by hand, not 200; the loss then paired with that refund leaves 0 and nothing lost', async () => {
    const { transaction } = await paid('JPY', 'paypal', 'JPY_cap');
    await report(transaction, 'open', 400n);
    expect(await rooms(transaction)).toEqual({ disputed: 400n, refundable: 600n });
    expect(await refundedAtGateway('paypal', 'JPY_cap', 'JPY', 400n)).toMatchObject({ kind: 'applied' });
    // 1000 paid, 400 back to the buyer by PayPal's refund, which is the claim's money: 600 left.
    expect(await rooms(transaction)).toEqual({ disputed: 0n, refundable: 600n });
    const refund = await byHand(transaction, 600n);
    expect(refund).toMatchObject({ status: 'pending', amount: 600n });
    expect(await rooms(transaction)).toEqual({ disputed: 0n, refundable: 0n });
    // The claim lost: carried by PayPal's refund (dp_…:refunded), nothing more taken of the room.
    const lost = await report(transaction, 'lost', 400n);
    expect(lost.dispute).toMatchObject({ status: 'lost', refund_id: expect.stringMatching(/^re_/) });
    expect(lost.dispute.refund_id).not.toBe(refund.id);
    expect(await rooms(transaction)).toEqual({ disputed: 0n, refundable: 0n });
    const books = await booksIn(db, 'JPY');
    expect(books).toMatchObject({ 'gateway_clearing:paypal': 600n, disputed_funds: 0n });
    expect(books.chargeback_losses ?? 0n).toBe(0n);
  });

  it('JPY: a refund of another amount is not the claim’s: the open claim of 400 still takes its room beside a PayPal refund of 300 (300 left)', async () => {
    const { transaction } = await paid('JPY', 'paypal', 'JPY_cap2');
    await report(transaction, 'open', 400n);
    await refundedAtGateway('paypal', 'JPY_cap2', 'JPY', 300n);
    expect(await rooms(transaction)).toEqual({ disputed: 400n, refundable: 300n });
    await expect(byHand(transaction, 301n)).rejects.toBeInstanceOf(ValidationError);
  });

  it('JPY: two claims of 400 open and one PayPal refund of 400: the refund is one claim’s, the other still takes its 400: 200 refundable, not 600', async () => {
    const { transaction } = await paid('JPY', 'paypal', 'JPY_cap3');
    for (const id of ['PP-A', 'PP-B']) {
      await inUnitOfWork(db, { actor: 'system' }, (work) =>
        recordDispute(work, transaction, { gatewayDisputeId: id, status: 'open', amount: 400n }),
      );
    }
    expect(await rooms(transaction)).toEqual({ disputed: 800n, refundable: 200n });
    await refundedAtGateway('paypal', 'JPY_cap3', 'JPY', 400n);
    expect(await rooms(transaction)).toEqual({ disputed: 400n, refundable: 200n });
    await expect(byHand(transaction, 201n)).rejects.toBeInstanceOf(ValidationError);
  });

  it('JPY: a claim of 400 won after PayPal’s refund of 400 came while it was open: nothing counted the claim as given back, so no dispute_won_after_refund (before: "the customer may be owed up to 400", a second refund asked of a person)', async () => {
    const { transaction } = await paid('JPY', 'paypal', 'JPY_cap4');
    await report(transaction, 'open', 400n);
    await refundedAtGateway('paypal', 'JPY_cap4', 'JPY', 400n);
    expect(await rooms(transaction)).toEqual({ disputed: 0n, refundable: 600n });
    const won = await report(transaction, 'won', 400n);
    expect(won).toMatchObject({ kind: 'applied', dispute: { status: 'won' } });
    // 1000 paid, 400 refunded: 600 kept and refundable; the hold came back.
    expect(await rooms(transaction)).toEqual({ disputed: 0n, refundable: 600n });
    expect(
      await db
        .selectFrom('reconciliation_exceptions')
        .select('kind')
        .where('transaction_id', '=', transaction.id)
        .execute(),
    ).toEqual([]);
    expect(
      await db
        .selectFrom('invoices')
        .select(['status', 'amount_refunded'])
        .where('id', '=', transaction.invoice_id!)
        .executeTakeFirstOrThrow(),
    ).toEqual({ status: 'PARTIALLY_REFUNDED', amount_refunded: 400n });
  });

  it('HKD: a Stripe dispute is no refund’s: open for 400 beside a dashboard refund of 400, 200 refundable (the dispute withdrew its own 400)', async () => {
    const { transaction } = await paid('HKD', 'stripe', 'pi_HKD_cap');
    await report(transaction, 'open', 400n);
    await refundedAtGateway('stripe', 'pi_HKD_cap', 'HKD', 400n);
    expect(await rooms(transaction)).toEqual({ disputed: 400n, refundable: 200n });
    await expect(byHand(transaction, 201n)).rejects.toBeInstanceOf(ValidationError);
  });
});
