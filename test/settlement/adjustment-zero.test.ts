import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { importSettlementFile } from '../../src/settlement/import.ts';
import { booksIn, moneyCoreDatabase } from '../support/money-core.ts';

/*
 * Adjustment lines (money a gateway moved that billhook does not book itself) raise
 * settlement_adjustment for a person to classify what they booked into clearing. One that moves
 * nothing books nothing, and used to raise one all the same ("booked into clearing" of 0), which no
 * one could act on. Amounts in HUF minor units (2 decimals: 150.00 HUF is 15000).
 */

let db: Db;
beforeEach(async () => {
  db = await moneyCoreDatabase();
});
afterEach(() => db?.destroy());

const account = async (currency: string, code: string) => (await booksIn(db, currency))[code] ?? 0n;
const exceptions = () =>
  db
    .selectFrom('reconciliation_exceptions as x')
    .leftJoin('settlement_lines as l', 'l.id', 'x.settlement_line_id')
    .select(['x.kind', 'l.gateway_line_id', 'x.status'])
    .orderBy('x.id')
    .execute();

describe('an adjustment line that moves nothing (gross and fee 0, a row of an imported file)', () => {
  it('is recorded and raises nothing: there is nothing in clearing for a person to classify', async () => {
    const stripe = { gateway: 'stripe' as const, gatewayAccount: null };
    await importSettlementFile(
      db,
      'system',
      stripe,
      'billhook',
      'line_id,kind,currency,gross,fee,occurred_at,description\n' +
        'ADJ-0,adjustment,HUF,0,0,2026-11-03,Reserve released and taken again the same day\n' +
        'ADJ-1,adjustment,HUF,-150,0,2026-11-03,Correction\n',
    );
    expect(await account('HUF', 'settlement_adjustments:stripe')).toBe(15_000n);
    // The 150.00 HUF correction is for a person; the row of 0 (it used to raise one "booked into
    // clearing" of 0) is not.
    expect(await exceptions()).toEqual([
      { kind: 'settlement_adjustment', gateway_line_id: 'ADJ-1', status: 'open' },
    ]);
    expect(
      await db.selectFrom('settlement_lines').select('gateway_line_id').orderBy('gateway_line_id').execute(),
    ).toEqual([{ gateway_line_id: 'ADJ-0' }, { gateway_line_id: 'ADJ-1' }]);
  });
});
