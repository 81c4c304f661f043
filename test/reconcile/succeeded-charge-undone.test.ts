import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { createRefund, recordRefundResult } from '../../src/payments/refunds.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  countEntries,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
}, 120_000);
afterAll(() => db?.destroy());

/** The exceptions raised about transaction `id`: their kinds. */
async function exceptionKinds(id: string): Promise<string[]> {
  const rows = await db
    .selectFrom('reconciliation_exceptions')
    .select('kind')
    .where('transaction_id', '=', id)
    .execute();
  return rows.map((row) => row.kind);
}

/** A transaction's and its invoice's state. */
async function stateOf(transactionId: string, invoiceId: string) {
  const transaction = await db
    .selectFrom('transactions')
    .select(['status', 'failure_code'])
    .where('id', '=', transactionId)
    .executeTakeFirstOrThrow();
  const invoice = await db
    .selectFrom('invoices')
    .select(['status', 'amount_paid', 'amount_due'])
    .where('id', '=', invoiceId)
    .executeTakeFirstOrThrow();
  return { transaction, invoice };
}

/**
 * A charge billhook booked succeeded (1000 minor units, the invoice PAID), then reported failed or
 * canceled by a gateway that can neither void a captured charge nor be read back (Stripe): what is
 * booked and what a person is told.
 */
describe('a succeeded Stripe charge reported undone', () => {
  /*
   * A PaymentIntent declined, then re-confirmed and succeeded: Stripe sends payment_failed and
   * succeeded, in any order. The failure delivered after the success is older news: `stale`, nothing
   * booked, nothing raised (the disorder tests deliver exactly this).
   */
  it('leaves a late charge.failed stale, without an exception', async () => {
    const { transaction, invoice } = await succeededCharge(db, {
      currency: 'NOK',
      gatewayTransactionId: 'pi_nok_late_failure',
    });
    const books = await booksIn(db, 'NOK');
    const entries = await countEntries(db);
    const late = await applyAsBatch(
      db,
      canonicalEvent({
        type: 'charge.failed',
        gatewayTransactionId: 'pi_nok_late_failure',
        amount: 1000n,
        currency: 'NOK',
        failureCode: 'card_declined',
      }),
    );
    expect(late).toMatchObject({ kind: 'stale' });
    expect(await exceptionKinds(transaction.id)).toEqual([]);
    expect(await stateOf(transaction.id, invoice.id)).toEqual({
      transaction: { status: 'succeeded', failure_code: null },
      invoice: { status: 'PAID', amount_paid: 1000n, amount_due: 0n },
    });
    expect(await booksIn(db, 'NOK')).toEqual(books);
    expect(await countEntries(db)).toBe(entries);
  });

  /*
   * Stripe cannot cancel a succeeded PaymentIntent (only refund it): a charge.canceled of one billhook
   * booked succeeded is not a void billhook can book. Nothing changes (invoice PAID, books as paid)
   * and a succeeded_charge_undone exception says so.
   */
  it('raises succeeded_charge_undone for a charge.canceled it cannot book as a void, changing nothing', async () => {
    const { transaction, invoice } = await succeededCharge(db, {
      currency: 'DKK',
      gatewayTransactionId: 'pi_dkk_canceled',
    });
    const books = await booksIn(db, 'DKK');
    const canceled = await applyAsBatch(
      db,
      canonicalEvent({
        type: 'charge.canceled',
        gatewayTransactionId: 'pi_dkk_canceled',
        amount: 1000n,
        currency: 'DKK',
      }),
    );
    expect(canceled).toMatchObject({
      kind: 'exception',
      exception: 'succeeded_charge_undone',
      transactionId: transaction.id,
    });
    expect((canceled as { message: string }).message).toContain('voids only before capture');
    expect(await stateOf(transaction.id, invoice.id)).toEqual({
      transaction: { status: 'succeeded', failure_code: null },
      invoice: { status: 'PAID', amount_paid: 1000n, amount_due: 0n },
    });
    expect(await booksIn(db, 'DKK')).toEqual(books);
  });
});

describe('a succeeded Authorize.Net charge reported voided at Authorize.Net', () => {
  /*
   * Worked by hand, minor units (CAD): invoice 1000 paid (clearing +1000, receivable 0). Voided at the gateway: booked as billhook's
   * own void, clearing 0, receivable +1000 again (the invoice OPEN, 1000 due), the transaction
   * canceled (voided); reported again: duplicate, no entry.
   */
  it('books it as billhook’s own void, once', async () => {
    const { transaction, invoice } = await succeededCharge(db, {
      currency: 'CAD',
      gateway: 'authorizenet',
      gatewayTransactionId: '40000000001',
    });
    expect(await booksIn(db, 'CAD')).toMatchObject({ 'gateway_clearing:authorizenet': 1000n });
    const voided = () =>
      applyAsBatch(
        db,
        canonicalEvent({
          type: 'charge.canceled',
          gateway: 'authorizenet',
          gatewayTransactionId: '40000000001',
          amount: 1000n,
          currency: 'CAD',
          failureCode: 'voided',
        }),
      );
    expect(await voided()).toMatchObject({ kind: 'applied', transactionId: transaction.id });
    expect(await stateOf(transaction.id, invoice.id)).toEqual({
      transaction: { status: 'canceled', failure_code: 'voided' },
      invoice: { status: 'OPEN', amount_paid: 0n, amount_due: 1000n },
    });
    const books = await booksIn(db, 'CAD');
    expect(books).toMatchObject({ 'gateway_clearing:authorizenet': 0n, 'receivable:customer': 1000n });
    const entries = await countEntries(db);

    expect(await voided()).toMatchObject({ kind: 'duplicate' });
    expect(await booksIn(db, 'CAD')).toEqual(books);
    expect(await countEntries(db)).toBe(entries);
    expect(await exceptionKinds(transaction.id)).toEqual([]);
  });
});

/**
 * A succeeded Authorize.Net charge (CAD 1000 minor units, invoice PAID, clearing +1000) reported voided
 * in the Merchant Interface while a refund of billhook's is on it. Only billhook's refund of the whole
 * charge can be Authorize.Net's void (a partial refund of an unsettled charge is declined with code 54,
 * never made a void), so the void is never silently `stale` for any other refund.
 */
describe('an Authorize.Net void reported while a refund of billhook is on the charge', () => {
  /** The charge.canceled Authorize.Net reports for `gatewayTransactionId` (CAD 1000). */
  const voidedAt = (gatewayTransactionId: string, finalAttempt = false) =>
    applyAsBatch(
      db,
      canonicalEvent({
        type: 'charge.canceled',
        gateway: 'authorizenet',
        gatewayTransactionId,
        amount: 1000n,
        currency: 'CAD',
        failureCode: 'voided',
      }),
      finalAttempt,
    );

  /** A succeeded CAD 1000 charge with a refund of billhook's of `amount`, left pending or made `succeeded`. */
  async function refundedCharge(gatewayTransactionId: string, amount: bigint, succeeded: boolean) {
    const charge = await succeededCharge(db, {
      currency: 'CAD',
      gateway: 'authorizenet',
      gatewayTransactionId,
    });
    const refund = await inUnitOfWork(db, { actor: 'system' }, (work) =>
      createRefund(work, charge.transaction, { amount }),
    );
    if (succeeded) {
      await inUnitOfWork(db, { actor: 'system' }, (work) =>
        recordRefundResult(work, refund.id, { status: 'succeeded', gatewayRefundId: gatewayTransactionId }),
      );
    }
    return { ...charge, refund };
  }

  /*
   * Worked by hand: a refund of 300 in flight (pending: its call timed out). The void cannot be it
   * (300 ≠ 1000): a succeeded_charge_undone exception, nothing booked (invoice PAID 1000, clearing
   * still +1000, the transaction succeeded). It used to be `stale` with no exception: clearing +1000
   * for ever, for money that never moves.
   */
  it('raises succeeded_charge_undone for a partial refund in flight, changing nothing', async () => {
    const { transaction, invoice, refund } = await refundedCharge('40000000777', 300n, false);
    const books = await booksIn(db, 'CAD');
    const entries = await countEntries(db);
    const result = await voidedAt('40000000777');
    expect(result).toMatchObject({
      kind: 'exception',
      exception: 'succeeded_charge_undone',
      transactionId: transaction.id,
    });
    expect((result as { message: string }).message).toContain(`${refund.id} (300, pending)`);
    expect(await stateOf(transaction.id, invoice.id)).toEqual({
      transaction: { status: 'succeeded', failure_code: null },
      invoice: { status: 'PAID', amount_paid: 1000n, amount_due: 0n },
    });
    expect(await booksIn(db, 'CAD')).toEqual(books);
    expect(await countEntries(db)).toBe(entries);
  });

  /* A partial refund of 300 that succeeded (clearing +700): the void is not it either; nothing booked. */
  it('raises succeeded_charge_undone for a succeeded partial refund, changing nothing', async () => {
    const { transaction, refund } = await refundedCharge('40000000778', 300n, true);
    const books = await booksIn(db, 'CAD');
    const result = await voidedAt('40000000778');
    expect(result).toMatchObject({ kind: 'exception', exception: 'succeeded_charge_undone' });
    expect((result as { message: string }).message).toContain(`${refund.id} (300, succeeded)`);
    const row = await db
      .selectFrom('transactions')
      .select('status')
      .where('id', '=', transaction.id)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('succeeded');
    expect(await booksIn(db, 'CAD')).toEqual(books);
  });

  /*
   * (Clearing is shared by this file's CAD charges: compared before and after.) A refund of the
   * whole 1000 still pending: the void may be Authorize.Net making that refund, so it
   * waits (`not_found`: the inbox retries), booking nothing; on the queue's last try it is a
   * succeeded_charge_undone exception. Once the refund succeeded, the void is that refund: `stale`.
   */
  it('waits for a whole refund in flight, raises on the last try, and is stale once it succeeded', async () => {
    const { transaction, invoice, refund } = await refundedCharge('40000000779', 1000n, false);
    const books = await booksIn(db, 'CAD');
    const entries = await countEntries(db);
    const waiting = await voidedAt('40000000779');
    expect(waiting).toMatchObject({ kind: 'not_found' });
    expect((waiting as { message: string }).message).toContain(
      `${refund.id} of the whole 1000 CAD is pending`,
    );
    const last = await voidedAt('40000000779', true);
    expect(last).toMatchObject({
      kind: 'exception',
      exception: 'succeeded_charge_undone',
      transactionId: transaction.id,
    });
    expect(await stateOf(transaction.id, invoice.id)).toEqual({
      transaction: { status: 'succeeded', failure_code: null },
      invoice: { status: 'PAID', amount_paid: 1000n, amount_due: 0n },
    });
    expect(await booksIn(db, 'CAD')).toEqual(books);
    expect(await countEntries(db)).toBe(entries);

    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordRefundResult(work, refund.id, { status: 'succeeded', gatewayRefundId: '40000000779' }),
    );
    const refunded = await booksIn(db, 'CAD');
    expect(refunded['gateway_clearing:authorizenet']).toBe(
      (books['gateway_clearing:authorizenet'] ?? 0n) - 1000n,
    );
    expect(await voidedAt('40000000779')).toMatchObject({ kind: 'stale', transactionId: transaction.id });
    expect(await booksIn(db, 'CAD')).toEqual(refunded);
  });
});
