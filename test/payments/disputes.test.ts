import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { TransactionRow } from '../../src/db/schema.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { type DisputeReport, recordDispute } from '../../src/payments/disputes.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import { booksIn, entryPostings, moneyCoreDatabase, pendingCharge } from '../support/money-core.ts';

/**
 * `recordDispute` on a real database, without HTTP or gateway: a dispute moves forward only
 * (inquiry → open → won | lost), each report is applied, a duplicate or a stale one changes nothing,
 * and each movement (`dp_…:opened`, `:won`, `:lost`) posts once. Each case books in a currency of
 * its own, on a Stripe payment of 3000.
 */
describe('recordDispute', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  /** A succeeded Stripe payment of 3000 in `currency` (its invoice PAID). */
  async function payment(currency: string): Promise<TransactionRow> {
    const { transaction } = await pendingCharge(db, { currency, amount: 3000n });
    const recorded = await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordChargeResult(work, transaction, { status: 'succeeded', gatewayTransactionId: `pi_${currency}` }),
    );
    return recorded.transaction;
  }
  const report = (
    transaction: TransactionRow,
    status: DisputeReport['status'],
    id = `du_${transaction.currency}`,
  ) =>
    inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordDispute(work, transaction, { gatewayDisputeId: id, status, amount: 3000n, reason: 'fraudulent' }),
    );
  const disputesOf = (transaction: TransactionRow) =>
    db
      .selectFrom('disputes')
      .select(['status', 'amount'])
      .where('transaction_id', '=', transaction.id)
      .execute();

  it('applies open then won: the withheld 3000 goes to disputed funds and comes back to clearing', async () => {
    const paid = await payment('EUR');
    const opened = await report(paid, 'open');
    expect(opened.kind).toBe('applied');
    const id = opened.dispute.id;
    expect(await entryPostings(db, `${id}:opened`)).toEqual({
      disputed_funds: 3000n,
      'gateway_clearing:stripe': -3000n,
    });
    expect(await booksIn(db, 'EUR')).toMatchObject({ 'gateway_clearing:stripe': 0n, disputed_funds: 3000n });

    const won = await report(paid, 'won');
    expect(won).toMatchObject({ kind: 'applied', dispute: { id, status: 'won' } });
    expect(await entryPostings(db, `${id}:won`)).toEqual({
      'gateway_clearing:stripe': 3000n,
      disputed_funds: -3000n,
    });
    expect(await booksIn(db, 'EUR')).toEqual({
      'gateway_clearing:stripe': 3000n,
      disputed_funds: 0n,
      'receivable:customer': 0n,
      revenue: -3000n,
    });
  });

  it('a report of the state already recorded is a duplicate: one dispute, one entry', async () => {
    const paid = await payment('GBP');
    const first = await report(paid, 'open');
    const again = await report(paid, 'open');
    expect(again).toMatchObject({ kind: 'duplicate', dispute: { id: first.dispute.id, status: 'open' } });
    expect(await disputesOf(paid)).toEqual([{ status: 'open', amount: 3000n }]);
    expect(await booksIn(db, 'GBP')).toMatchObject({ 'gateway_clearing:stripe': 0n, disputed_funds: 3000n });
  });

  it('a report older than the recorded state is stale: a late "open" after "won" changes nothing', async () => {
    const paid = await payment('CHF');
    await report(paid, 'open');
    const won = await report(paid, 'won');
    const books = await booksIn(db, 'CHF');
    const late = await report(paid, 'open');
    expect(late).toMatchObject({ kind: 'stale', dispute: { id: won.dispute.id, status: 'won' } });
    expect(await disputesOf(paid)).toEqual([{ status: 'won', amount: 3000n }]);
    expect(await booksIn(db, 'CHF')).toEqual(books);
  });

  it('a "lost" that arrives before the opening posts both movements: 3000 lost to chargebacks', async () => {
    const paid = await payment('SEK');
    const lost = await report(paid, 'lost');
    expect(lost).toMatchObject({ kind: 'applied', dispute: { status: 'lost' } });
    const id = lost.dispute.id;
    expect(await entryPostings(db, `${id}:opened`)).toEqual({
      disputed_funds: 3000n,
      'gateway_clearing:stripe': -3000n,
    });
    expect(await entryPostings(db, `${id}:lost`)).toEqual({
      chargeback_losses: 3000n,
      disputed_funds: -3000n,
    });
    // The opening report arriving now is stale: nothing moves twice.
    expect((await report(paid, 'open')).kind).toBe('stale');
    expect(await booksIn(db, 'SEK')).toEqual({
      chargeback_losses: 3000n,
      disputed_funds: 0n,
      'gateway_clearing:stripe': 0n,
      'receivable:customer': 0n,
      revenue: -3000n,
    });
  });
});
