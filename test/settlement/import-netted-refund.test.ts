import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refundable } from '../../src/billing/invoice-payment.ts';
import type { Db } from '../../src/db/database.ts';
import { importSettlementFile } from '../../src/settlement/import.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

/*
 * A settlement file the merchant made by hand (billhook's CSV) may net a refund into its charge's row:
 * a payment of EUR 100.00 refunded 10.00 at the gateway, written as one charge row of 90.00 and no
 * refund row. billhook cannot tell that row from a charge the gateway settled 10.00 short. An invoice
 * refunded in part is never followed short (its PARTIALLY_REFUNDED status refuses it,
 * payments/settled-short.ts `whyNotFollowed`); a payment without an invoice (a legacy row or an
 * import) had no such guard, and the refund was counted twice: booked once as the refund (clearing
 * −1000) and again as settled short (clearing −1000 more, the customer owing 10.00 they were given
 * back, amount_captured 9000 so only 8000 refundable). Now a short line is not followed while a refund
 * of the payment (succeeded or in flight) has no settlement line of its own: the amount_mismatch says
 * so for a person. Worked by hand, EUR minor units, as differences from before the file: clearing
 * −9000 (to 0 for this payment: +10000 charged, −1000 refunded, −9000 paid out), bank +9000,
 * receivable unchanged, amount_captured unchanged (null: the whole 10000), 9000 refundable. Once the
 * refund's own line is recorded (a row of −10.00 before the charge row), a charge row of 80.00 is the
 * file's word that the charge settled 20.00 short: followed (2000 owed again, bank +7000).
 */
const HEADER =
  'payout_id,payout_date,line_id,kind,gateway_transaction_id,gateway_refund_id,currency,gross,fee,occurred_at';
const ACCOUNT = { gateway: 'stripe', gatewayAccount: null } as const;
const CURRENCY = 'EUR';

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
});
afterAll(() => db?.destroy());

const importing = (rows: string[]) =>
  importSettlementFile(db, 'system', ACCOUNT, 'billhook', `${HEADER}\r\n${rows.join('\r\n')}\r\n`);
const transactionOf = (id: string) =>
  db.selectFrom('transactions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const exceptionsOf = (transactionId: string) =>
  db
    .selectFrom('reconciliation_exceptions')
    .select(['kind', 'status', 'message', 'details'])
    .where('transaction_id', '=', transactionId)
    .orderBy('created_at')
    .execute();

/** A Stripe payment of EUR 100.00 on `intent` without an invoice, refunded 10.00 in Stripe's dashboard. */
async function paidAndRefunded(intent: string) {
  const { transaction } = await succeededCharge(db, {
    currency: CURRENCY,
    amount: 10_000n,
    gatewayTransactionId: intent,
  });
  // A payment without an invoice (a legacy row or an import; billhook's own charges all have one).
  await db.updateTable('transactions').set({ invoice_id: null }).where('id', '=', transaction.id).execute();
  expect(
    await applyAsBatch(
      db,
      canonicalEvent({
        type: 'refund.succeeded',
        gateway: 'stripe',
        gatewayTransactionId: intent,
        gatewayRefundId: `re_${intent}`,
        amount: 1_000n,
        currency: CURRENCY,
      }),
    ),
  ).toMatchObject({ kind: 'applied' });
  return transaction;
}

const moved = (before: Record<string, bigint>, after: Record<string, bigint>, code: string) =>
  (after[code] ?? 0n) - (before[code] ?? 0n);

describe('a hand-made settlement file netting a refund into its charge row (a payment without an invoice)', () => {
  it('EUR 100.00 refunded 10.00, the file saying charge 90.00 and no refund row: not followed as settled short (the refund is not counted twice); the amount_mismatch names the refund', async () => {
    const transaction = await paidAndRefunded('pi_netted_refund');
    const before = await booksIn(db, CURRENCY);
    await importing(['P-NET,2026-11-05,L-NET,charge,pi_netted_refund,,EUR,90.00,0,2026-11-04T10:00:00Z']);
    const after = await booksIn(db, CURRENCY);
    expect(moved(before, after, 'gateway_clearing:stripe')).toBe(-9_000n);
    expect(moved(before, after, 'bank:stripe')).toBe(9_000n);
    expect(moved(before, after, 'receivable:customer')).toBe(0n);
    expect(after['gateway_clearing:stripe'] ?? 0n).toBe(0n);
    const payment = await transactionOf(transaction.id);
    expect(payment).toMatchObject({ status: 'succeeded', amount_captured: null });
    expect(await refundable(db, payment)).toBe(9_000n);
    expect(await exceptionsOf(transaction.id)).toEqual([
      {
        kind: 'amount_mismatch',
        status: 'open',
        message: expect.stringMatching(/not booked: .*re_\w+ of 1000 EUR .*no settlement line/),
        details: expect.objectContaining({ gross: '9000', booked: '10000', followed: 'refused' }),
      },
    ]);
  });

  it('the refund’s own row of −10.00 recorded first, then a charge row of 80.00: the file says the charge settled 20.00 short, which is followed (2000 owed again, amount_captured 8000)', async () => {
    const transaction = await paidAndRefunded('pi_refund_row_first');
    const before = await booksIn(db, CURRENCY);
    await importing([
      'P-ROW,2026-11-05,L-ROW-RE,refund,pi_refund_row_first,re_pi_refund_row_first,EUR,-10.00,0,2026-11-04T10:00:00Z',
      'P-ROW,2026-11-05,L-ROW-CH,charge,pi_refund_row_first,,EUR,80.00,0,2026-11-04T10:00:00Z',
    ]);
    const after = await booksIn(db, CURRENCY);
    expect(moved(before, after, 'bank:stripe')).toBe(7_000n);
    expect(moved(before, after, 'receivable:customer')).toBe(2_000n);
    expect(moved(before, after, 'gateway_clearing:stripe')).toBe(-9_000n);
    expect(await transactionOf(transaction.id)).toMatchObject({ amount_captured: 8_000n });
    expect(await exceptionsOf(transaction.id)).toEqual([
      expect.objectContaining({
        kind: 'amount_mismatch',
        details: expect.objectContaining({ followed: 'booked_short' }),
      }),
    ]);
  });

  it('the charge row of 80.00 written before the refund’s own row of −10.00 in the same payout: followed as when the refund row comes first (the file has the refund’s row; its order does not change the books)', async () => {
    const transaction = await paidAndRefunded('pi_refund_row_after');
    const before = await booksIn(db, CURRENCY);
    await importing([
      'P-AFT,2026-11-05,L-AFT-CH,charge,pi_refund_row_after,,EUR,80.00,0,2026-11-04T10:00:00Z',
      'P-AFT,2026-11-05,L-AFT-RE,refund,pi_refund_row_after,re_pi_refund_row_after,EUR,-10.00,0,2026-11-04T10:00:00Z',
    ]);
    const after = await booksIn(db, CURRENCY);
    expect(moved(before, after, 'bank:stripe')).toBe(7_000n);
    expect(moved(before, after, 'receivable:customer')).toBe(2_000n);
    expect(moved(before, after, 'gateway_clearing:stripe')).toBe(-9_000n);
    expect(await transactionOf(transaction.id)).toMatchObject({ amount_captured: 8_000n });
    expect(await exceptionsOf(transaction.id)).toEqual([
      expect.objectContaining({
        kind: 'amount_mismatch',
        details: expect.objectContaining({ followed: 'booked_short' }),
      }),
    ]);
  });

  it('the same rows outside any payout (no payout_id), charge row first: followed too', async () => {
    const transaction = await paidAndRefunded('pi_refund_row_after_np');
    const before = await booksIn(db, CURRENCY);
    await importing([
      ',,L-ANP-CH,charge,pi_refund_row_after_np,,EUR,80.00,0,2026-11-04T10:00:00Z',
      ',,L-ANP-RE,refund,pi_refund_row_after_np,re_pi_refund_row_after_np,EUR,-10.00,0,2026-11-04T10:00:00Z',
    ]);
    const after = await booksIn(db, CURRENCY);
    expect(moved(before, after, 'receivable:customer')).toBe(2_000n);
    expect(moved(before, after, 'gateway_clearing:stripe')).toBe(-2_000n);
    expect(await transactionOf(transaction.id)).toMatchObject({ amount_captured: 8_000n });
  });
});

describe('a refund made at the gateway that billhook hears of after a file’s charge row was followed short', () => {
  /** A Stripe payment of EUR 100.00 on `intent` without an invoice, not refunded yet as billhook knows. */
  async function paidOnly(intent: string) {
    const { transaction } = await succeededCharge(db, {
      currency: CURRENCY,
      amount: 10_000n,
      gatewayTransactionId: intent,
    });
    await db.updateTable('transactions').set({ invoice_id: null }).where('id', '=', transaction.id).execute();
    return transaction;
  }
  const refundedAtStripe = (
    intent: string,
    amount: bigint,
    type: 'refund.succeeded' | 'refund.pending' = 'refund.succeeded',
  ) =>
    applyAsBatch(
      db,
      canonicalEvent({
        type,
        gateway: 'stripe',
        gatewayTransactionId: intent,
        gatewayRefundId: `re_${intent}`,
        amount,
        currency: CURRENCY,
      }),
    );

  it('EUR 100.00, a file netting a 10.00 refund into its charge row of 90.00 imported before the refund’s event: the row is followed (1000 owed), the refund of 1000 then counts it twice (clearing −2000), which an amount_mismatch naming the refund and the line says, once', async () => {
    /*
     * By hand, EUR minor units, differences from after the payment: the charge row of 90.00 (no
     * payout) is followed as settled 1000 short: clearing −1000, receivable +1000. The refund's event
     * of 1000 then books the refund: clearing −2000, receivable +1000, where Stripe took 1000 in all
     * (the refund) and the customer owes nothing. billhook cannot tell this from a charge settled 10.00
     * short and then refunded 10.00, so nothing is changed and a person is told.
     */
    const transaction = await paidOnly('pi_netted_late');
    const before = await booksIn(db, CURRENCY);
    await importing([',,L-LATE,charge,pi_netted_late,,EUR,90.00,0,2026-11-04T10:00:00Z']);
    expect(await refundedAtStripe('pi_netted_late', 1_000n)).toMatchObject({ kind: 'applied' });
    const after = await booksIn(db, CURRENCY);
    expect(moved(before, after, 'gateway_clearing:stripe')).toBe(-2_000n);
    expect(moved(before, after, 'receivable:customer')).toBe(1_000n);
    const line = await db
      .selectFrom('settlement_lines')
      .select('id')
      .where('gateway_line_id', '=', 'L-LATE')
      .executeTakeFirstOrThrow();
    const raised = [
      expect.objectContaining({
        kind: 'amount_mismatch',
        details: expect.objectContaining({ followed: 'booked_short' }),
      }),
      {
        kind: 'amount_mismatch',
        status: 'open',
        message: expect.stringMatching(/refund re_\w+ of 1000 EUR .*counted twice/),
        details: expect.objectContaining({
          settlement_line: line.id,
          entry: `${transaction.id}:settled_short:${line.id}`,
          amount: '1000',
        }),
      },
    ];
    expect(await exceptionsOf(transaction.id)).toEqual(raised);
    // The refund's event again: nothing more.
    await refundedAtStripe('pi_netted_late', 1_000n);
    expect(await exceptionsOf(transaction.id)).toEqual(raised);
    expect(await booksIn(db, CURRENCY)).toEqual(after);
  });

  it('a charge row of 80.00 followed short (2000), then a refund of 10.00 at Stripe: not the amount the line took, nothing more is raised', async () => {
    const transaction = await paidOnly('pi_short_then_refund');
    await importing([',,L-SHORT-RE,charge,pi_short_then_refund,,EUR,80.00,0,2026-11-04T10:00:00Z']);
    expect(await refundedAtStripe('pi_short_then_refund', 1_000n)).toMatchObject({ kind: 'applied' });
    expect((await exceptionsOf(transaction.id)).map((e) => e.kind)).toEqual(['amount_mismatch']);
  });
  it('the same with the refund reported pending first, then succeeded: said once it succeeded', async () => {
    const transaction = await paidOnly('pi_netted_pending');
    await importing([',,L-PEND,charge,pi_netted_pending,,EUR,90.00,0,2026-11-04T10:00:00Z']);
    await refundedAtStripe('pi_netted_pending', 1_000n, 'refund.pending');
    expect((await exceptionsOf(transaction.id)).map((e) => e.kind)).toEqual(['amount_mismatch']);
    await refundedAtStripe('pi_netted_pending', 1_000n);
    expect(await exceptionsOf(transaction.id)).toEqual([
      expect.objectContaining({ details: expect.objectContaining({ followed: 'booked_short' }) }),
      expect.objectContaining({ message: expect.stringMatching(/counted twice/) }),
    ]);
  });
});
