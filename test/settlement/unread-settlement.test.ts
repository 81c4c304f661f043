import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type {
  PayoutReport,
  SettlementRange,
  SettlementReport,
  SettlementSource,
} from '../../src/gateways/settlement.ts';
import { syncSettlements } from '../../src/settlement/sync.ts';
import { booksIn, countEntries, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';

/*
 * A settlement the source could not read on its first sweeps (eWAY listing a day not whole: its
 * transactions do not add up to its summary) is left out and named in `unread`. eWAY settlement
 * S-1:AUD of 2026-11-03 pays out billhook's AUD 40.00 charge; settlement S-2:AUD of 2026-11-04 its
 * AUD 25.00 charge. Minor units.
 * Before: the unread S-1 was only a log line and a failed job while it was in the sweep's window of
 * SETTLEMENT_SYNC_DAYS; once the window moved past 2026-11-03 it was never asked for again (clearing
 * kept the 4000 and nothing said so). Now it is an open `settlement_unread` exception (once, however
 * many sweeps), every later sweep reads back to its day until it is booked, and booking it resolves
 * the exception; the account's sync still fails while it is unread.
 */
const S1_DAY = new Date('2026-11-03T00:00:00Z');
const S2_DAY = new Date('2026-11-04T00:00:00Z');
const ACCOUNT = { gateway: 'eway', gatewayAccount: null } as const;

let db: Db;
let readable = false;
const asked: SettlementRange[] = [];
const ids = new Map<string, string>();

const payout = (id: string, day: Date, transId: string, amount: bigint): PayoutReport => ({
  gatewayPayoutId: id,
  status: 'paid',
  currency: 'AUD',
  amount,
  createdAt: day,
  arrivalDate: null,
  lines: [
    {
      gatewayLineId: `line-${transId}`,
      kind: 'charge',
      gatewayTransactionId: transId,
      currency: 'AUD',
      gross: amount,
      fee: 0n,
      net: amount,
      occurredAt: day,
    },
  ],
});

/** eWAY's settlements by day, S-1 unreadable until `readable`. */
const source: SettlementSource = {
  fetchSettlements: async (range): Promise<SettlementReport> => {
    asked.push(range);
    const within = (day: Date) => day >= range.from && day < range.to;
    const report: SettlementReport = { lines: [], payouts: [] };
    if (within(S1_DAY)) {
      if (readable) report.payouts.push(payout('S-1:AUD', S1_DAY, '91000001', 4_000n));
      else
        report.unread = [
          {
            id: 'S-1:AUD',
            settledAt: S1_DAY,
            message:
              'eWAY settlement S-1:AUD of 2026-11-03: its transactions (types 1) credit 1000 and debit 0, its summary says 4000 and 0',
          },
        ];
    }
    if (within(S2_DAY)) report.payouts.push(payout('S-2:AUD', S2_DAY, '91000002', 2_500n));
    return report;
  },
};

const sweep = (from: string, to: string) =>
  syncSettlements(db, 'system', [{ account: ACCOUNT, source }], { from: new Date(from), to: new Date(to) });

const unreadExceptions = () =>
  db
    .selectFrom('reconciliation_exceptions')
    .select(['kind', 'status', 'gateway', 'message'])
    .where('kind', '=', 'settlement_unread')
    .execute();

beforeAll(async () => {
  db = await moneyCoreDatabase();
  for (const [transId, amount] of [
    ['91000001', 4_000n],
    ['91000002', 2_500n],
  ] as const) {
    const { transaction } = await succeededCharge(db, {
      currency: 'AUD',
      amount,
      gateway: 'eway',
      gatewayTransactionId: transId,
    });
    ids.set(transId, transaction.id);
  }
});
afterAll(() => db?.destroy());

describe('a settlement left out unread', () => {
  it('is an open settlement_unread exception (once), read again past the sweep window, booked once when readable', async () => {
    // Two daily sweeps over the last 2 days while S-1 cannot be read: S-2 is booked, S-1 raised once.
    let [result] = await sweep('2026-11-03T00:00:00Z', '2026-11-05T00:00:00Z');
    expect(result).toMatchObject({
      error: expect.objectContaining({ message: expect.stringMatching(/S-1:AUD/) }),
    });
    [result] = await sweep('2026-11-04T00:00:00Z', '2026-11-06T00:00:00Z');
    expect(result).toMatchObject({
      error: expect.objectContaining({ message: expect.stringMatching(/S-1:AUD/) }),
    });
    expect(asked.at(-1)?.from.toISOString()).toBe('2026-11-03T00:00:00.000Z');
    expect(await unreadExceptions()).toEqual([
      {
        kind: 'settlement_unread',
        status: 'open',
        gateway: 'eway',
        message: expect.stringMatching(/S-1:AUD/),
      },
    ]);
    let aud = await booksIn(db, 'AUD');
    expect(aud['bank:eway']).toBe(2_500n);
    expect(aud['gateway_clearing:eway']).toBe(4_000n);

    // eWAY lists the day whole now; the daily window (Nov 10–12) is long past Nov 3.
    readable = true;
    [result] = await sweep('2026-11-10T00:00:00Z', '2026-11-12T00:00:00Z');
    expect(result).toMatchObject({ totals: expect.anything() });
    expect(asked.at(-1)?.from.toISOString()).toBe('2026-11-03T00:00:00.000Z');
    aud = await booksIn(db, 'AUD');
    expect(aud['bank:eway']).toBe(6_500n);
    expect(aud['gateway_clearing:eway'] ?? 0n).toBe(0n);
    expect(await unreadExceptions()).toEqual([
      {
        kind: 'settlement_unread',
        status: 'resolved',
        gateway: 'eway',
        message: expect.stringMatching(/S-1:AUD/),
      },
    ]);
    expect(
      await db
        .selectFrom('payouts')
        .select(['gateway_payout_id', 'amount'])
        .orderBy('gateway_payout_id')
        .execute(),
    ).toEqual([
      { gateway_payout_id: 'S-1:AUD', amount: 4_000n },
      { gateway_payout_id: 'S-2:AUD', amount: 2_500n },
    ]);

    // Booked: the next sweep keeps to its window and changes nothing.
    const entries = await countEntries(db);
    [result] = await sweep('2026-11-11T00:00:00Z', '2026-11-13T00:00:00Z');
    expect(asked.at(-1)?.from.toISOString()).toBe('2026-11-11T00:00:00.000Z');
    expect(await countEntries(db)).toBe(entries);
  });
});
