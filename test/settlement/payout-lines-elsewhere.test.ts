import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { SettlementLine } from '../../src/gateways/settlement.ts';
import { importSettlementFile } from '../../src/settlement/import.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import { booksIn, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
});
afterAll(() => db?.destroy());

const account = { gateway: 'eway' as const, gatewayAccount: null };
const settledAt = new Date('2026-11-03T00:00:00Z');

/** An eWAY charge line of transaction `id` (gross `gross`, fee `fee`) in `currency`, minor units. */
const chargeLine = (id: string, currency: string, gross: bigint, fee: bigint): SettlementLine => ({
  gatewayLineId: id,
  kind: 'charge',
  gatewayTransactionId: id,
  currency,
  gross,
  fee,
  net: gross - fee,
  occurredAt: new Date('2026-11-02T05:00:00Z'),
});

/** Records what eWAY's sweep reads: settlement `settlementId`'s payout `<SettlementID>:<currency>` paying `lines`. */
async function sweep(settlementId: string, currency: string, lines: SettlementLine[]) {
  await recordSettlementReport(db, 'system', account, {
    lines: [],
    payouts: [
      {
        gatewayPayoutId: `${settlementId}:${currency}`,
        status: 'paid',
        currency,
        amount: lines.reduce((sum, line) => sum + line.net, 0n),
        createdAt: settledAt,
        arrivalDate: settledAt,
        lines,
      },
    ],
  });
}

/** The payout of eWAY's id `gatewayPayoutId`, its lines' gateway ids, and its exceptions' kinds and messages. */
async function payoutOf(gatewayPayoutId: string) {
  const payout = await db
    .selectFrom('payouts')
    .select(['id', 'status', 'amount'])
    .where('gateway', '=', 'eway')
    .where('gateway_payout_id', '=', gatewayPayoutId)
    .executeTakeFirstOrThrow();
  const lines = await db
    .selectFrom('settlement_lines')
    .select('gateway_line_id')
    .where('payout_id', '=', payout.id)
    .orderBy('gateway_line_id')
    .execute();
  const exceptions = await db
    .selectFrom('reconciliation_exceptions')
    .select(['kind', 'message', 'details'])
    .where('payout_id', '=', payout.id)
    .orderBy('created_at')
    .execute();
  return { ...payout, lines: lines.map((line) => line.gateway_line_id), exceptions };
}

/** The eWAY balances of the books in `currency` (0 for an account without postings). */
async function ewayBooks(currency: string) {
  const books = await booksIn(db, currency);
  return {
    clearing: books['gateway_clearing:eway'] ?? 0n,
    fees: books['gateway_fees:eway'] ?? 0n,
    inTransit: books['payouts_in_transit:eway'] ?? 0n,
    bank: books['bank:eway'] ?? 0n,
  };
}

describe('one deposit recorded under two payout ids (eWAY sweep `<SettlementID>:<currency>`, a file `<SettlementID>`)', () => {
  /*
   * By hand (AUD minor units): charge 10000 (clearing +10000), eWAY fee 150 (clearing 9850, fees 150),
   * one deposit of 9850 (clearing 0, bank 9850). The file's payout SETTLE-77 lists only the sweep's
   * line, which stays on SETTLE-77:AUD: SETTLE-77 is recorded, holds nothing and moves nothing.
   */
  it('moves the money to the bank once; the payout whose lines are all the other payout’s raises payout_lines_elsewhere naming both, and never moves money', async () => {
    await succeededCharge(db, {
      currency: 'AUD',
      amount: 10_000n,
      gateway: 'eway',
      gatewayTransactionId: '11111111',
    });
    await sweep('SETTLE-77', 'AUD', [chargeLine('11111111', 'AUD', 10_000n, 150n)]);
    const expected = { clearing: 0n, fees: 150n, inTransit: 0n, bank: 9_850n };
    expect(await ewayBooks('AUD')).toEqual(expected);
    const file =
      'payout_id,payout_date,line_id,kind,gateway_transaction_id,currency,gross,fee,occurred_at\n' +
      'SETTLE-77,2026-11-03,11111111,charge,11111111,AUD,100.00,1.50,2026-11-02T05:00:00Z\n';
    await importSettlementFile(db, 'system', account, 'billhook', file);
    // The same file again changes nothing.
    await importSettlementFile(db, 'system', account, 'billhook', file);
    expect(await ewayBooks('AUD')).toEqual(expected);
    const swept = await payoutOf('SETTLE-77:AUD');
    expect(swept).toMatchObject({ status: 'paid', amount: 9_850n, lines: ['11111111'], exceptions: [] });
    const imported = await payoutOf('SETTLE-77');
    expect(imported).toMatchObject({ status: 'paid', amount: 9_850n, lines: [] });
    expect(imported.exceptions).toEqual([
      {
        kind: 'payout_lines_elsewhere',
        message: expect.stringContaining(`payout ${imported.id} (SETTLE-77) of 9850 AUD`),
        details: expect.objectContaining({
          other_payouts: [swept.id],
          other_gateway_payout_ids: ['SETTLE-77:AUD'],
        }),
      },
    ]);
    expect(imported.exceptions[0]?.message).toContain(`payout ${swept.id} (SETTLE-77:AUD) holds already`);

    // Reported failed later, it returns nothing either: it never moved anything.
    await importSettlementFile(
      db,
      'system',
      account,
      'billhook',
      'payout_id,payout_status,payout_date,line_id,kind,gateway_transaction_id,currency,gross,fee,occurred_at\n' +
        'SETTLE-77,failed,2026-11-03,11111111,charge,11111111,AUD,100.00,1.50,2026-11-02T05:00:00Z\n',
    );
    expect(await payoutOf('SETTLE-77')).toMatchObject({ status: 'failed' });
    expect(await ewayBooks('AUD')).toEqual(expected);
  });

  /*
   * By hand (NZD minor units): charges 10000 (fee 150, net 9850) and 5000 (fee 75, net 4925): clearing
   * 15000 - 225 = 14775, fees 225. The sweep pays the first (bank 9850, clearing 4925). The file's
   * SETTLE-78 lists both, 14775: it holds only the second (4925), and moves its whole amount as the
   * report states it (bank 24625, clearing 4925 - 14775 = -9850), raising payout_lines_mismatch on
   * what it holds (4925), naming the payout holding the other line.
   */
  it('checks a payout whose lines are partly another payout’s against the lines it holds (payout_lines_mismatch naming the other payout)', async () => {
    await succeededCharge(db, {
      currency: 'NZD',
      amount: 10_000n,
      gateway: 'eway',
      gatewayTransactionId: '22222221',
    });
    await succeededCharge(db, {
      currency: 'NZD',
      amount: 5_000n,
      gateway: 'eway',
      gatewayTransactionId: '22222222',
    });
    await sweep('SETTLE-78', 'NZD', [chargeLine('22222221', 'NZD', 10_000n, 150n)]);
    await importSettlementFile(
      db,
      'system',
      account,
      'billhook',
      'payout_id,payout_date,line_id,kind,gateway_transaction_id,currency,gross,fee,occurred_at\n' +
        'SETTLE-78,2026-11-03,22222221,charge,22222221,NZD,100.00,1.50,2026-11-02T05:00:00Z\n' +
        'SETTLE-78,2026-11-03,22222222,charge,22222222,NZD,50.00,0.75,2026-11-02T05:00:00Z\n',
    );
    expect(await ewayBooks('NZD')).toEqual({ clearing: -9_850n, fees: 225n, inTransit: 0n, bank: 24_625n });
    const swept = await payoutOf('SETTLE-78:NZD');
    expect(swept).toMatchObject({ lines: ['22222221'], exceptions: [] });
    const imported = await payoutOf('SETTLE-78');
    expect(imported).toMatchObject({ status: 'paid', amount: 14_775n, lines: ['22222222'] });
    expect(imported.exceptions).toEqual([
      {
        kind: 'payout_lines_mismatch',
        message: expect.stringContaining(
          `is 14775 NZD but its lines' nets sum to 4925 (minor units), counting the lines it holds: 1 line(s) it lists are on payout ${swept.id} (SETTLE-78:NZD) already`,
        ),
        details: expect.objectContaining({
          amount: '14775',
          lines_total: '4925',
          lines: 1,
          lines_elsewhere: 1,
        }),
      },
    ]);
  });
});
