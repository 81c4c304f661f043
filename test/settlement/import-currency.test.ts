import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { importSettlementFile } from '../../src/settlement/import.ts';
import { booksIn, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';

/*
 * An imported settlement file's line in another currency than the charge it names. SecurePay charge
 * `txn_…` of AUD 100.00; the file's payout SP-1 lists it as NZD 100.00, fee 1.75. The file says no
 * original currency or amount, so nothing says this is a conversion: it was booked as one against
 * billhook's AUD 100.00 (AUD clearing 0, fx:securepay AUD +10000, NZD −10000) without a word. A row
 * saying it converted AUD 90.00 was booked the same way, the AUD 10.00 of difference hidden in FX.
 * Now each raises one amount_mismatch naming both; a row converted from exactly AUD 100.00 raises
 * nothing. Minor units.
 */
const HEADER =
  'payout_id,payout_date,line_id,kind,gateway_transaction_id,currency,gross,fee,occurred_at,original_currency,original_amount';
const ACCOUNT = { gateway: 'securepay', gatewayAccount: null } as const;

let db: Db;
let reference: string;
beforeEach(async () => {
  db = await moneyCoreDatabase();
  reference = 'txn_import_currency_1';
  await succeededCharge(db, {
    currency: 'AUD',
    amount: 10_000n,
    gateway: 'securepay',
    gatewayTransactionId: reference,
  });
});
afterEach(() => db?.destroy());

const file = (row: string) =>
  `${HEADER}\r\nSP-1,2026-11-03,SP-LINE-1,charge,${reference},NZD,100.00,1.75,2026-11-02T09:15:00+11:00,${row}\r\n`;
const importing = (csv: string) => importSettlementFile(db, 'system', ACCOUNT, 'securepay', csv);
const mismatches = () =>
  db
    .selectFrom('reconciliation_exceptions')
    .select(['kind', 'message', 'details'])
    .where('kind', '=', 'amount_mismatch')
    .execute();

describe('an imported line in another currency than its charge', () => {
  it('NZD 100.00 for an AUD 100.00 charge, the file saying nothing of a conversion: one amount_mismatch, booked once', async () => {
    await importing(file(','));
    await importing(file(','));
    expect(await mismatches()).toEqual([
      {
        kind: 'amount_mismatch',
        message: expect.stringMatching(/10000 NZD saying nothing of what it converted.*10000 AUD/),
        details: expect.objectContaining({
          currency: 'NZD',
          gross: '10000',
          converted_currency: null,
          booked_currency: 'AUD',
          booked: '10000',
        }),
      },
    ]);
    // The payout of NZD 98.25 moved its net; AUD clearing is 0 against FX, for a person to look at.
    const nzd = await booksIn(db, 'NZD');
    expect(nzd['gateway_clearing:securepay'] ?? 0n).toBe(0n);
    expect(nzd['fx:securepay']).toBe(-10_000n);
    expect(nzd['gateway_fees:securepay']).toBe(175n);
    expect(nzd['bank:securepay']).toBe(9_825n);
    expect((await booksIn(db, 'AUD'))['fx:securepay']).toBe(10_000n);
  });

  it('NZD 100.00 converted from AUD 90.00 for an AUD 100.00 charge: one amount_mismatch naming both', async () => {
    await importing(file('AUD,90.00'));
    expect(await mismatches()).toEqual([
      expect.objectContaining({
        message: expect.stringMatching(/10000 NZD converted from 9000 AUD.*10000 AUD/),
        details: expect.objectContaining({ converted_currency: 'AUD', converted: '9000', booked: '10000' }),
      }),
    ]);
  });

  it('NZD 100.00 converted from AUD 100.00: booked as a conversion, nothing raised', async () => {
    await importing(file('AUD,100.00'));
    expect(await mismatches()).toEqual([]);
    expect((await booksIn(db, 'AUD'))['gateway_clearing:securepay'] ?? 0n).toBe(0n);
  });
});
