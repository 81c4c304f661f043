import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { reportOf, type TransactionInfo } from '../../src/gateways/paypal/transaction-search.ts';
import type { SettlementLine } from '../../src/gateways/settlement.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

/**
 * A settlement line recorded unmatched (its dispute or refund not known to billhook yet) is matched
 * when that dispute or refund is recorded, in the same unit of work, without waiting for a sweep to
 * list the line again; a sweep listing it again afterwards books nothing more.
 */
let db: Db;
beforeEach(async () => {
  db = await moneyCoreDatabase();
});
afterEach(() => db?.destroy());

const at = new Date('2026-11-02T10:00:00Z');
const exceptions = () =>
  db
    .selectFrom('reconciliation_exceptions')
    .select(['kind', 'status'])
    .where('kind', '=', 'settlement_line_unmatched')
    .execute();
const line = (gatewayLineId: string) =>
  db
    .selectFrom('settlement_lines as l')
    .leftJoin('disputes as d', 'd.id', 'l.dispute_id')
    .leftJoin('refunds as r', 'r.id', 'l.refund_id')
    .select(['l.transaction_id', 'd.gateway_dispute_id', 'r.gateway_refund_id'])
    .where('l.gateway_line_id', '=', gatewayLineId)
    .executeTakeFirstOrThrow();
const bookedEntries = () =>
  db
    .selectFrom('journal_entries')
    .select('idempotency_key')
    .where('idempotency_key', 'like', 'stl_%')
    .execute();

describe('stored unmatched lines matched when their object is recorded', () => {
  const CAPTURE = '4JPYCAPTURE00001';
  const paypal = { gateway: 'paypal' as const, gatewayAccount: null };
  const row = (r: Partial<TransactionInfo> & Pick<TransactionInfo, 'transaction_id'>): TransactionInfo =>
    ({ transaction_initiation_date: at, transaction_status: 'S', ...r }) as TransactionInfo;
  const capture = row({
    transaction_id: CAPTURE,
    transaction_event_code: 'T0006',
    transaction_amount: { currency_code: 'JPY', value: '12000' },
    fee_amount: { currency_code: 'JPY', value: '-468' },
  });
  const chargeback = row({
    transaction_id: '6CHARGEBACK12011',
    paypal_reference_id: CAPTURE,
    transaction_event_code: 'T1201',
    transaction_amount: { currency_code: 'JPY', value: '-12000' },
  });
  const sweep = (rows: TransactionInfo[]) => recordSettlementReport(db, 'system', paypal, reportOf(rows));

  it('PayPal: a T1201 of JPY −12000 swept before the chargeback is matched when the chargeback is recorded', async () => {
    await succeededCharge(db, {
      currency: 'JPY',
      amount: 12_000n,
      gateway: 'paypal',
      gatewayTransactionId: CAPTURE,
    });
    await sweep([capture, chargeback]);
    expect(await exceptions()).toEqual([{ kind: 'settlement_line_unmatched', status: 'open' }]);
    expect((await booksIn(db, 'JPY'))['gateway_clearing:paypal']).toBe(12_000n - 468n);

    const applied = await applyAsBatch(
      db,
      canonicalEvent({
        type: 'dispute.lost',
        gateway: 'paypal',
        gatewayTransactionId: CAPTURE,
        gatewayDisputeId: CAPTURE,
        amount: 12_000n,
        currency: 'JPY',
        reversal: true,
      }),
    );
    expect(applied.kind).toBe('applied');
    // No later sweep: the line is the chargeback's, its exception resolved. Clearing holds the
    // capture's net (12000 − 468) less the 12000 the chargeback took: −468 (no payout here).
    expect(await line('6CHARGEBACK12011')).toMatchObject({ gateway_dispute_id: CAPTURE });
    expect(await exceptions()).toEqual([{ kind: 'settlement_line_unmatched', status: 'resolved' }]);
    expect((await booksIn(db, 'JPY'))['gateway_clearing:paypal']).toBe(-468n);

    // A sweep listing the row again books nothing more.
    const entries = await bookedEntries();
    await sweep([capture, chargeback]);
    expect(await bookedEntries()).toEqual(entries);
    expect((await booksIn(db, 'JPY'))['gateway_clearing:paypal']).toBe(-468n);
    expect(await exceptions()).toEqual([{ kind: 'settlement_line_unmatched', status: 'resolved' }]);
  });

  it('Stripe: a refund line of EUR −25.00 recorded before the refund webhook is matched when the refund is recorded', async () => {
    const stripe = { gateway: 'stripe' as const, gatewayAccount: null };
    const { transaction } = await succeededCharge(db, {
      currency: 'EUR',
      amount: 10_000n,
      gatewayTransactionId: 'ch_rematch_1',
    });
    const refundLine: SettlementLine = {
      gatewayLineId: 'txn_refund_rematch_1',
      kind: 'refund',
      gatewayTransactionId: 'ch_rematch_1',
      gatewayRefundId: 're_rematch_1',
      currency: 'EUR',
      gross: -2_500n,
      fee: 0n,
      net: -2_500n,
      occurredAt: at,
    };
    await recordSettlementReport(db, 'system', stripe, { lines: [refundLine], payouts: [] });
    expect(await exceptions()).toEqual([{ kind: 'settlement_line_unmatched', status: 'open' }]);
    expect(await line('txn_refund_rematch_1')).toMatchObject({ transaction_id: null });

    const applied = await applyAsBatch(
      db,
      canonicalEvent({
        type: 'refund.succeeded',
        gatewayTransactionId: 'ch_rematch_1',
        gatewayRefundId: 're_rematch_1',
        amount: 2_500n,
        currency: 'EUR',
      }),
    );
    expect(applied.kind).toBe('applied');
    expect(await line('txn_refund_rematch_1')).toMatchObject({
      transaction_id: transaction.id,
      gateway_refund_id: 're_rematch_1',
    });
    expect(await exceptions()).toEqual([{ kind: 'settlement_line_unmatched', status: 'resolved' }]);
    // The charge (no charge line here) put 10000 into clearing, the refund took 2500, the line 2500
    // out of it was the refund's: nothing booked twice.
    const entries = await bookedEntries();
    await recordSettlementReport(db, 'system', stripe, { lines: [refundLine], payouts: [] });
    expect(await bookedEntries()).toEqual(entries);
    expect(await exceptions()).toEqual([{ kind: 'settlement_line_unmatched', status: 'resolved' }]);
  });
});
