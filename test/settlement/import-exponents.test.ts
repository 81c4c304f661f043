import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { ValidationError } from '../../src/errors.ts';
import { importSettlementFile } from '../../src/settlement/import.ts';
import { booksIn, countEntries, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';

/*
 * An imported settlement file in a three-decimal currency (KWD) and a zero-decimal one (JPY), for
 * Stripe charges of KWD 12.340 (12340 fils) and JPY 1500. Worked by hand, minor units: payout P-KWD
 * of 11.975 (12.340 less a 0.365 fee), payout P-JPY of 1446 (1500 less 54): fees KWD 365 and JPY 54,
 * the bank 11975 and 1446, clearing 0 in both. A file with 12.3405 KWD or 1500.5 JPY is refused
 * (422 naming the row and column), never rounded, and changes nothing.
 */
const HEADER = 'payout_id,payout_date,line_id,kind,gateway_transaction_id,currency,gross,fee,occurred_at';
const ACCOUNT = { gateway: 'stripe', gatewayAccount: null } as const;

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
  await succeededCharge(db, { currency: 'KWD', amount: 12_340n, gatewayTransactionId: 'pi_import_kwd' });
  await succeededCharge(db, { currency: 'JPY', amount: 1_500n, gatewayTransactionId: 'pi_import_jpy' });
});
afterAll(() => db?.destroy());

const importing = (rows: string[]) =>
  importSettlementFile(db, 'system', ACCOUNT, 'billhook', `${HEADER}\r\n${rows.join('\r\n')}\r\n`);

describe('an imported settlement file in KWD and JPY', () => {
  it('refuses 12.3405 KWD and 1500.5 JPY on their rows, changing nothing', async () => {
    const refused = await importing([
      'P-KWD,2026-11-05,L-KWD,charge,pi_import_kwd,KWD,12.3405,0.365,2026-11-04T10:00:00Z',
      'P-JPY,2026-11-05,L-JPY,charge,pi_import_jpy,JPY,1500.5,54,2026-11-04T10:00:00Z',
    ]).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ValidationError);
    expect((refused as ValidationError).fields).toEqual({
      'row 2, column gross': '12.3405 has 4 decimals but KWD has 3: amounts are never rounded',
      'row 3, column gross': '1500.5 has 1 decimals but JPY has 0: amounts are never rounded',
    });
    expect(await db.selectFrom('settlement_lines').select('id').execute()).toEqual([]);
  });

  it('books 12.340 KWD less 0.365 and 1500 JPY less 54 exactly: fees, the bank, clearing 0', async () => {
    const rows = [
      'P-KWD,2026-11-05,L-KWD,charge,pi_import_kwd,KWD,12.340,0.365,2026-11-04T10:00:00Z',
      'P-JPY,2026-11-05,L-JPY,charge,pi_import_jpy,JPY,1500,54,2026-11-04T10:00:00Z',
    ];
    await importing(rows);
    const entries = await countEntries(db);
    await importing(rows);
    expect(await countEntries(db)).toBe(entries);
    const kwd = await booksIn(db, 'KWD');
    expect(kwd['gateway_clearing:stripe'] ?? 0n).toBe(0n);
    expect(kwd['gateway_fees:stripe']).toBe(365n);
    expect(kwd['bank:stripe']).toBe(11_975n);
    const jpy = await booksIn(db, 'JPY');
    expect(jpy['gateway_clearing:stripe'] ?? 0n).toBe(0n);
    expect(jpy['gateway_fees:stripe']).toBe(54n);
    expect(jpy['bank:stripe']).toBe(1_446n);
    expect(await db.selectFrom('reconciliation_exceptions').select('kind').execute()).toEqual([]);
  });
});
