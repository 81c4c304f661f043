import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { PayoutReport } from '../../src/gateways/settlement.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import { booksIn, countEntries, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';

/*
 * A gateway's sweep reporting a payout it reported before with another amount: eWAY settlement
 * S-9:AUD paid AUD 40.00 (billhook's charge, clearing 0, bank 4000), a later sweep saying 35.00.
 * Before: the second report was a silent duplicate (nothing booked, nothing said: the 5.00 the bank
 * may not have received unseen). Now the payout keeps its first amount (its money is booked once)
 * and a `payout_changed` exception names both amounts, once however often it is reported so.
 */
const ACCOUNT = { gateway: 'eway', gatewayAccount: null } as const;
const at = new Date('2026-11-03T00:00:00Z');

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
  await succeededCharge(db, {
    currency: 'AUD',
    amount: 4_000n,
    gateway: 'eway',
    gatewayTransactionId: '92000001',
  });
});
afterAll(() => db?.destroy());

const payout = (amount: bigint): PayoutReport => ({
  gatewayPayoutId: 'S-9:AUD',
  status: 'paid',
  currency: 'AUD',
  amount,
  createdAt: at,
  arrivalDate: null,
  lines: [
    {
      gatewayLineId: 'line-92000001',
      kind: 'charge',
      gatewayTransactionId: '92000001',
      currency: 'AUD',
      gross: 4_000n,
      fee: 0n,
      net: 4_000n,
      occurredAt: at,
    },
  ],
});
const sweep = (amount: bigint) =>
  recordSettlementReport(db, 'system', ACCOUNT, { lines: [], payouts: [payout(amount)] });

describe('a payout reported again with another amount', () => {
  it('keeps its first amount booked and raises payout_changed naming 4000 and 3500 AUD, once', async () => {
    await sweep(4_000n);
    const entries = await countEntries(db);
    await sweep(4_000n);
    expect(await db.selectFrom('reconciliation_exceptions').select('kind').execute()).toEqual([]);
    await sweep(3_500n);
    await sweep(3_500n);
    expect(await countEntries(db)).toBe(entries);
    const aud = await booksIn(db, 'AUD');
    expect(aud['bank:eway']).toBe(4_000n);
    expect(aud['gateway_clearing:eway'] ?? 0n).toBe(0n);
    expect(await db.selectFrom('payouts').select(['gateway_payout_id', 'amount']).execute()).toEqual([
      { gateway_payout_id: 'S-9:AUD', amount: 4_000n },
    ]);
    expect(
      await db
        .selectFrom('reconciliation_exceptions')
        .select(['kind', 'status', 'message', 'payout_id'])
        .execute(),
    ).toEqual([
      {
        kind: 'payout_changed',
        status: 'open',
        message: expect.stringMatching(/S-9:AUD.*4000 AUD.*3500 AUD/),
        payout_id: expect.stringMatching(/^pyo_/),
      },
    ]);
  });
});
