import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { ValidationError } from '../../src/errors.ts';
import { importSettlementFile } from '../../src/settlement/import.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  countEntries,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

/*
 * A settlement day whose refunds exceed its payments: the gateway takes the difference from the bank
 * (Authorize.Net's and eWAY's syncs book such a day as a payout below 0). SecurePay charge
 * `txn_…` of AUD 50.00, paid out earlier (not in this file); its refund of AUD 30.00 settles on a day
 * of nothing else: payout SP-2 of −30.00. The file could not say so: a payout_amount had to be 0 or
 * more, and nets summing below 0 were refused, so the day could not be imported at all. Now the
 * stated −30.00 is a paid payout taking 3000 from the bank (clearing +5000 − 3000 refunded + 3000
 * the payout = 5000, the charge still to be paid out); nets below 0 without a payout_amount are still
 * refused (a sign written wrongly is not read as money taken from the bank). Minor units.
 */
const HEADER =
  'payout_id,payout_date,payout_amount,line_id,kind,gateway_transaction_id,gateway_refund_id,currency,gross,fee,occurred_at';
const ACCOUNT = { gateway: 'securepay', gatewayAccount: null } as const;
const ORDER = 'txn_import_negative_1';

let db: Db;
let refund: string;
beforeEach(async () => {
  db = await moneyCoreDatabase();
  await succeededCharge(db, {
    currency: 'AUD',
    amount: 5_000n,
    gateway: 'securepay',
    gatewayTransactionId: ORDER,
  });
  refund = 're_import_negative_1';
  await applyAsBatch(
    db,
    canonicalEvent({
      type: 'refund.succeeded',
      gateway: 'securepay',
      gatewayTransactionId: ORDER,
      gatewayRefundId: refund,
      amount: 3_000n,
      currency: 'AUD',
    }),
  );
});
afterEach(() => db?.destroy());

const file = (payoutAmount: string) =>
  `${HEADER}\r\nSP-2,2026-11-05,${payoutAmount},SP-LINE-9,refund,${ORDER},${refund},AUD,-30.00,0,2026-11-04T16:05:00+11:00\r\n`;
const importing = (csv: string) => importSettlementFile(db, 'system', ACCOUNT, 'securepay', csv);

describe('an imported payout below 0: the gateway took money from the bank', () => {
  it('payout_amount -30.00 for a day of a 30.00 refund: a paid payout of -3000, the bank debited, once', async () => {
    await importing(file('-30.00'));
    const entries = await countEntries(db);
    await importing(file('-30.00'));
    expect(await countEntries(db)).toBe(entries);
    expect(
      await db.selectFrom('payouts').select(['gateway_payout_id', 'status', 'amount']).execute(),
    ).toEqual([{ gateway_payout_id: 'SP-2', status: 'paid', amount: -3_000n }]);
    const aud = await booksIn(db, 'AUD');
    expect(aud['gateway_clearing:securepay']).toBe(5_000n);
    expect(aud['bank:securepay']).toBe(-3_000n);
    expect(aud['payouts_in_transit:securepay'] ?? 0n).toBe(0n);
    expect(await db.selectFrom('reconciliation_exceptions').select('kind').execute()).toEqual([]);
  });

  it('nets below 0 with no payout_amount are still refused (422 naming the row), nothing changed', async () => {
    const entries = await countEntries(db);
    const refused = await importing(file('')).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ValidationError);
    expect((refused as ValidationError).fields).toEqual({
      'row 2, column payout_id': expect.stringContaining('give payout_amount'),
    });
    expect(await countEntries(db)).toBe(entries);
    expect(await db.selectFrom('payouts').select('id').execute()).toEqual([]);
  });
});

describe('a file stating another amount for a payout recorded already', () => {
  it('payout SP-2 recorded at -30.00, a file saying 30.00 (the sign changed) is refused (422 naming the payout), nothing changed', async () => {
    await importing(file('-30.00'));
    const entries = await countEntries(db);
    const refused = await importing(file('30.00')).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ValidationError);
    expect((refused as ValidationError).fields).toEqual({
      'payout SP-2, column payout_amount': expect.stringMatching(/recorded.*-3000 AUD.*3000 AUD/),
    });
    expect(await countEntries(db)).toBe(entries);
    expect(
      await db.selectFrom('payouts').select(['gateway_payout_id', 'status', 'amount']).execute(),
    ).toEqual([{ gateway_payout_id: 'SP-2', status: 'paid', amount: -3_000n }]);
    const aud = await booksIn(db, 'AUD');
    expect(aud['bank:securepay']).toBe(-3_000n);
    expect(aud['gateway_clearing:securepay']).toBe(5_000n);
  });

  it('a negative payout later failed: the bank debit is undone and the 30.00 is owed to the gateway again (clearing 2000)', async () => {
    const failed = (status: string) =>
      `${HEADER},payout_status\r\nSP-2,2026-11-05,-30.00,SP-LINE-9,refund,${ORDER},${refund},AUD,-30.00,0,2026-11-04T16:05:00+11:00,${status}\r\n`;
    await importing(failed('in_transit'));
    let aud = await booksIn(db, 'AUD');
    expect(aud['payouts_in_transit:securepay']).toBe(-3_000n);
    expect(aud['gateway_clearing:securepay']).toBe(5_000n);
    await importing(failed('failed'));
    await importing(failed('failed'));
    aud = await booksIn(db, 'AUD');
    expect(aud['payouts_in_transit:securepay'] ?? 0n).toBe(0n);
    expect(aud['bank:securepay'] ?? 0n).toBe(0n);
    // 50.00 charged less 30.00 refunded: 20.00 still held by the gateway for billhook.
    expect(aud['gateway_clearing:securepay']).toBe(2_000n);
    expect(
      await db.selectFrom('payouts').select(['gateway_payout_id', 'status', 'amount']).execute(),
    ).toEqual([{ gateway_payout_id: 'SP-2', status: 'failed', amount: -3_000n }]);
  });
});
