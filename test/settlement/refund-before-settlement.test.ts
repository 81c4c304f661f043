import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PayoutReport, SettlementLine } from '../../src/gateways/settlement.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import { applyAsBatch, canonicalEvent, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';

/*
 * A payment partly refunded before the gateway settled it. No gateway billhook reads nets the refund
 * into the charge's line: Stripe's charge balance transaction is the charge's gross and each refund has
 * a balance transaction of its own; PayPal's capture row (T0006…) and refund row (T1107) are separate
 * rows; eWAY's settlement lists each refund as its own transaction; Authorize.Net refunds only a
 * settled transaction (an unsettled one is voided whole), its refund its own transId; billhook's CSV
 * format (eWAY, SecurePay imports) takes a refund as its own row of negative gross. So the charge line
 * says the full capture and is not followed as settled short. Amounts in USD minor units.
 */
let db: Awaited<ReturnType<typeof moneyCoreDatabase>>;
beforeAll(async () => {
  db = await moneyCoreDatabase();
});
afterAll(() => db?.destroy());

describe('a charge partly refunded before its payout', () => {
  it('Stripe USD 100.00 refunded 10.00 before the payout (charge line 100.00, refund line −10.00): no amount_mismatch, nothing booked short, amount_captured stays 100.00', async () => {
    const { transaction, invoice } = await succeededCharge(db, {
      currency: 'USD',
      amount: 10_000n,
      gatewayTransactionId: 'ch_refund_first',
    });
    await applyAsBatch(
      db,
      canonicalEvent({
        type: 'refund.succeeded',
        gatewayTransactionId: 'ch_refund_first',
        gatewayRefundId: 're_refund_first',
        amount: 1_000n,
        currency: 'USD',
      }),
      false,
      null,
    );
    const lines: SettlementLine[] = [
      {
        gatewayLineId: 'txn_charge_refund_first',
        kind: 'charge',
        gatewayTransactionId: 'ch_refund_first',
        currency: 'USD',
        gross: 10_000n,
        fee: 320n,
        net: 9_680n,
        occurredAt: new Date(),
      },
      {
        gatewayLineId: 'txn_refund_refund_first',
        kind: 'refund',
        gatewayTransactionId: 'ch_refund_first',
        gatewayRefundId: 're_refund_first',
        currency: 'USD',
        gross: -1_000n,
        fee: 0n,
        net: -1_000n,
        occurredAt: new Date(),
      },
    ];
    const payout: PayoutReport = {
      gatewayPayoutId: 'po_refund_first',
      status: 'paid',
      currency: 'USD',
      amount: 8_680n,
      createdAt: new Date('2026-12-01T00:00:00Z'),
      arrivalDate: new Date('2026-12-03T00:00:00Z'),
      lines,
    };
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      { payouts: [payout], lines: [] },
    );
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('transaction_id', '=', transaction.id)
      .execute();
    expect(exceptions).toEqual([]);
    const after = await db
      .selectFrom('transactions')
      .select('amount_captured')
      .where('id', '=', transaction.id)
      .executeTakeFirstOrThrow();
    expect(after.amount_captured).not.toBe(9_000n);
    const shorts = await db
      .selectFrom('journal_entries')
      .select('idempotency_key')
      .where('idempotency_key', 'like', `${transaction.id}:settled_short:%`)
      .execute();
    expect(shorts).toEqual([]);
    const inv = await db
      .selectFrom('invoices')
      .select(['status', 'amount_due'])
      .where('id', '=', invoice.id)
      .executeTakeFirstOrThrow();
    expect(inv).toEqual({ status: 'PARTIALLY_REFUNDED', amount_due: 0n });
    const matched = await db
      .selectFrom('settlement_lines')
      .select(['gateway_line_id', 'transaction_id', 'refund_id'])
      .orderBy('gateway_line_id')
      .execute();
    expect(matched.every((l) => l.transaction_id === transaction.id)).toBe(true);
    expect(matched.find((l) => l.gateway_line_id === 'txn_refund_refund_first')?.refund_id).toEqual(
      expect.stringMatching(/^re_/),
    );
  }, 60_000);
});
