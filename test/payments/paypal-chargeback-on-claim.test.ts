import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disputedAway, refundable } from '../../src/billing/invoice-payment.ts';
import { lockInvoice } from '../../src/billing/invoices.ts';
import type { Db } from '../../src/db/database.ts';
import type { TransactionRow } from '../../src/db/schema.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { type DisputeReport, recordDispute } from '../../src/payments/disputes.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

/*
 * A chargeback (PayPal's dispute of channel EXTERNAL: a `reversal` report) on an open PayPal claim of
 * the same capture (billhook keys both by the capture), in the orders and amounts the review of
 * `chargebackOnUndecided` tried. JPY (no minor unit), a one-line invoice of 1000 paid once; the books
 * as differences from before the payment.
 */
describe('a chargeback reported on an open PayPal claim', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  const CURRENCY = 'JPY';
  const payment = (id: string) =>
    db.selectFrom('transactions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const refundAtPayPal = (capture: string, amount: bigint, type: 'refund.succeeded' | 'refund.failed') =>
    applyAsBatch(
      db,
      canonicalEvent({
        type,
        gateway: 'paypal',
        gatewayTransactionId: capture,
        gatewayRefundId: `R-${capture}`,
        amount,
        currency: CURRENCY,
      }),
    );
  const rooms = (t: TransactionRow) =>
    inUnitOfWork(db, { actor: 'system' }, async (work) => {
      await lockInvoice(work, t.invoice_id!);
      return {
        disputed: await disputedAway(work.trx, t.invoice_id!),
        refundable: await refundable(work.trx, await payment(t.id)),
      };
    });
  const ACCOUNTS = ['gateway_clearing:paypal', 'disputed_funds', 'refunds', 'chargeback_losses'] as const;
  const since = async (base: Record<string, bigint>) => {
    const now = await booksIn(db, CURRENCY);
    const sum = Object.values(now).reduce((a, b) => a + b, 0n);
    const moved = Object.fromEntries(ACCOUNTS.map((code) => [code, (now[code] ?? 0n) - (base[code] ?? 0n)]));
    return { ...moved, balanced: sum === 0n };
  };
  const held = (clearing: bigint, disputed: bigint, refunds: bigint, losses = 0n) => ({
    'gateway_clearing:paypal': clearing,
    disputed_funds: disputed,
    refunds,
    chargeback_losses: losses,
    balanced: true,
  });
  const paid = async (capture: string) => {
    const base = await booksIn(db, CURRENCY);
    const { transaction } = await succeededCharge(db, {
      currency: CURRENCY,
      gateway: 'paypal',
      amount: 1000n,
      gatewayTransactionId: capture,
    });
    const claim = (status: DisputeReport['status'], amount: bigint, reversal: boolean) =>
      inUnitOfWork(db, { actor: 'system' }, (work) =>
        recordDispute(work, transaction, { gatewayDisputeId: capture, status, amount, reversal }),
      );
    return { base, transaction, claim };
  };
  const exceptionsOf = (t: TransactionRow) =>
    db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'message', 'details'])
      .where('transaction_id', '=', t.id)
      .orderBy('created_at')
      .execute();

  it('the whole 1000 claimed, refunded by PayPal, then charged back: PayPal holds 1000 again beyond the refund (clearing −1000); the refund failing later gives clearing 0; won: 1000', async () => {
    const { base, transaction, claim } = await paid('CBC_WHOLE');
    await claim('open', 1000n, false);
    await refundAtPayPal('CBC_WHOLE', 1000n, 'refund.succeeded');
    expect(await since(base)).toEqual(held(0n, 0n, 1000n));
    expect(await claim('open', 1000n, true)).toMatchObject({ kind: 'applied', dispute: { reversed: true } });
    expect(await since(base)).toEqual(held(-1000n, 1000n, 1000n));
    // Nothing can be refunded by hand (the room is below 0: refunded 1000 and held 1000 of 1000).
    const { disputed, refundable: room } = await rooms(transaction);
    expect(disputed).toBe(1000n);
    expect(room <= 0n).toBe(true);
    await refundAtPayPal('CBC_WHOLE', 1000n, 'refund.failed');
    expect(await since(base)).toEqual(held(0n, 1000n, 0n));
    await claim('won', 1000n, true);
    expect(await since(base)).toEqual(held(1000n, 0n, 0n));
  });

  it('chargeback reported before PayPal’s refund of the claim (out of order): the refund is the payment’s own, 400 stays held; lost: 400 lost beside it', async () => {
    const { base, claim } = await paid('CBC_FIRST');
    await claim('open', 400n, false);
    await claim('open', 400n, true);
    expect(await since(base)).toEqual(held(600n, 400n, 0n));
    await refundAtPayPal('CBC_FIRST', 400n, 'refund.succeeded');
    expect(await since(base)).toEqual(held(200n, 400n, 400n));
    await claim('lost', 400n, true);
    expect(await since(base)).toEqual(held(200n, 0n, 400n, 400n));
  });

  it('PayPal’s refund failing after the chargeback put the hold back: 600 in clearing, 400 held; won: 1000, nothing owed', async () => {
    const { base, transaction, claim } = await paid('CBC_FAIL');
    await claim('open', 400n, false);
    await refundAtPayPal('CBC_FAIL', 400n, 'refund.succeeded');
    await claim('open', 400n, true);
    await refundAtPayPal('CBC_FAIL', 400n, 'refund.failed');
    expect(await since(base)).toEqual(held(600n, 400n, 0n));
    await claim('won', 400n, true);
    expect(await since(base)).toEqual(held(1000n, 0n, 0n));
    expect(await exceptionsOf(transaction)).toEqual([]);
  });

  it('a chargeback of the whole 1000 reported on the open claim of 400 paid by PayPal’s refund: the claim holds 400 again and the other amount is said for a person', async () => {
    const { base, transaction, claim } = await paid('CBC_OTHER');
    await claim('open', 400n, false);
    await refundAtPayPal('CBC_OTHER', 400n, 'refund.succeeded');
    const outcome = await claim('open', 1000n, true);
    expect(outcome).toMatchObject({ dispute: { reversed: true, amount: 400n } });
    expect(await since(base)).toEqual(held(200n, 400n, 400n));
    const raised = [
      {
        kind: 'amount_mismatch',
        message: expect.stringMatching(/of 400 JPY is now reported as a chargeback of 1000 JPY/),
        details: expect.objectContaining({ disputed: '400', chargeback: '1000' }),
      },
    ];
    expect(await exceptionsOf(transaction)).toEqual(raised);
    // Reported again: a duplicate, nothing more raised or moved.
    expect(await claim('open', 1000n, true)).toMatchObject({ kind: 'duplicate' });
    expect(await exceptionsOf(transaction)).toEqual(raised);
    expect(await since(base)).toEqual(held(200n, 400n, 400n));
  });
});
