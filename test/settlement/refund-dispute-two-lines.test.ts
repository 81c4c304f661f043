import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { importSettlementFile } from '../../src/settlement/import.ts';
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

const stripe = { gateway: 'stripe' as const, gatewayAccount: null };

/** The settlement lines of `column` = `id` (the gateway's refund or dispute id), oldest first. */
const linesOf = (column: 'gateway_refund_id' | 'gateway_dispute_id', id: string) =>
  db
    .selectFrom('settlement_lines')
    .select(['gateway_line_id', 'refund_id', 'dispute_id'])
    .where(column, '=', id)
    .orderBy('created_at')
    .orderBy('id')
    .execute();

/** The open exceptions naming `text`. */
const exceptionsNaming = (text: string) =>
  db
    .selectFrom('reconciliation_exceptions')
    .select(['kind', 'message'])
    .where('message', 'like', `%${text}%`)
    .execute();

/**
 * A refund or a dispute has one settlement line for the money that left the balance (and one for the
 * money that came back: a refund's failure, a dispute's reversal), as a charge has one charge line.
 * Reported again under another line id (a Stripe webhook's `txn_…`, then a file of the payout without
 * `line_id`), the second line must not book the fee again. Each case in a currency of its own.
 */
describe('one refund or dispute reported by two settlement lines', () => {
  it('CZK: a refund line giving 100 of the fee back, then a file row of the same refund: the fee comes back once', async () => {
    // Worked by hand (minor units): charge 10000, fee 300 (clearing 9700, fees 300); refund 4000
    // (clearing 5700, refunds 4000); the refund gives 100 of the fee back (clearing 5600, fees 200).
    await succeededCharge(db, { currency: 'CZK', amount: 10_000n, gatewayTransactionId: 'pi_czk_two' });
    const apply = (e: Parameters<typeof canonicalEvent>[0]) => applyAsBatch(db, canonicalEvent(e));
    await apply({
      type: 'settlement.line',
      amount: 10_000n,
      currency: 'CZK',
      settlementLine: {
        gatewayLineId: 'txn_czk_charge',
        kind: 'charge',
        gatewayTransactionId: 'pi_czk_two',
        currency: 'CZK',
        gross: 10_000n,
        fee: 300n,
        net: 9_700n,
        occurredAt: new Date('2026-11-02T09:15:00Z'),
      },
    });
    await apply({
      type: 'refund.succeeded',
      gatewayTransactionId: 'pi_czk_two',
      gatewayRefundId: 're_czk_two',
      amount: 4_000n,
      currency: 'CZK',
    });
    await apply({
      type: 'settlement.line',
      amount: 4_000n,
      currency: 'CZK',
      settlementLine: {
        gatewayLineId: 'txn_czk_refund',
        kind: 'refund',
        gatewayTransactionId: 'pi_czk_two',
        gatewayRefundId: 're_czk_two',
        currency: 'CZK',
        gross: -4_000n,
        fee: -100n,
        net: -3_900n,
        occurredAt: new Date('2026-11-03T09:15:00Z'),
      },
    });
    const file =
      'kind,gateway_transaction_id,gateway_refund_id,currency,gross,fee,occurred_at\n' +
      'refund,pi_czk_two,re_czk_two,CZK,-40.00,-1.00,2026-11-03T09:15:00Z\n';
    await importSettlementFile(db, 'system', stripe, 'billhook', file);
    await importSettlementFile(db, 'system', stripe, 'billhook', file);
    const books = await booksIn(db, 'CZK');
    expect({ fees: books['gateway_fees:stripe'], refunds: books.refunds }).toEqual({
      fees: 200n,
      refunds: 4_000n,
    });
    const lines = await linesOf('gateway_refund_id', 're_czk_two');
    expect(lines.map((l) => l.refund_id !== null)).toEqual([true, false]);
    expect(await exceptionsNaming('txn_czk_refund')).toEqual([
      {
        kind: 'settlement_line_unmatched',
        message: expect.stringContaining('whose refund is line txn_czk_refund'),
      },
    ]);
  });

  it('RON: a dispute line with its 1500 fee, then a file row of the same dispute: the fee is booked once', async () => {
    // Worked by hand: charge 10000 (clearing 10000); dispute of 10000 opened (clearing 0, disputed
    // 10000); its line keeps a 1500 fee (clearing −1500, fees 1500).
    await succeededCharge(db, { currency: 'RON', amount: 10_000n, gatewayTransactionId: 'pi_ron_two' });
    const apply = (e: Parameters<typeof canonicalEvent>[0]) => applyAsBatch(db, canonicalEvent(e));
    await apply({
      type: 'dispute.opened',
      gatewayTransactionId: 'pi_ron_two',
      gatewayDisputeId: 'dp_ron_two',
      amount: 10_000n,
      currency: 'RON',
    });
    await apply({
      type: 'settlement.line',
      amount: 10_000n,
      currency: 'RON',
      settlementLine: {
        gatewayLineId: 'txn_ron_dispute',
        kind: 'dispute',
        gatewayTransactionId: 'pi_ron_two',
        gatewayDisputeId: 'dp_ron_two',
        currency: 'RON',
        gross: -10_000n,
        fee: 1_500n,
        net: -11_500n,
        occurredAt: new Date('2026-11-03T09:15:00Z'),
      },
    });
    const file =
      'kind,gateway_transaction_id,gateway_dispute_id,currency,gross,fee,occurred_at\n' +
      'dispute,pi_ron_two,dp_ron_two,RON,-100.00,15.00,2026-11-03T09:15:00Z\n';
    await importSettlementFile(db, 'system', stripe, 'billhook', file);
    const books = await booksIn(db, 'RON');
    expect({
      fees: books['gateway_fees:stripe'],
      clearing: books['gateway_clearing:stripe'],
      disputed: books.disputed_funds,
    }).toEqual({ fees: 1_500n, clearing: -1_500n, disputed: 10_000n });
    const lines = await linesOf('gateway_dispute_id', 'dp_ron_two');
    expect(lines.map((l) => l.dispute_id !== null)).toEqual([true, false]);
    expect(await exceptionsNaming('txn_ron_dispute')).toEqual([
      {
        kind: 'settlement_line_unmatched',
        message: expect.stringContaining('whose dispute is line txn_ron_dispute'),
      },
    ]);
  });
});
