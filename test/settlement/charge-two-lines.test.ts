import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayName } from '../../src/config/gateways.ts';
import type { Db } from '../../src/db/database.ts';
import { parseSettlementCsv } from '../../src/gateways/settlement-csv.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { importSettlementFile } from '../../src/settlement/import.ts';
import { recordSettlementLine } from '../../src/settlement/lines.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
});
afterAll(() => db?.destroy());

/** The reconciliation exceptions of `gateway`, with the gateway's id of the line each is about. */
const exceptionsOf = (gateway: GatewayName) =>
  db
    .selectFrom('reconciliation_exceptions as e')
    .leftJoin('settlement_lines as s', 's.id', 'e.settlement_line_id')
    .select(['e.kind', 'e.message', 's.gateway_line_id'])
    .where('e.gateway', '=', gateway)
    .orderBy('e.created_at')
    .execute();

/** The settlement lines of payment `transactionId` (`txn_…`), oldest first. */
const linesOf = (gatewayTransactionId: string) =>
  db
    .selectFrom('settlement_lines as s')
    .leftJoin('payouts as p', 'p.id', 's.payout_id')
    .select(['s.gateway_line_id', 's.transaction_id', 'p.gateway_payout_id', 's.available_on'])
    .where('s.gateway_transaction_id', '=', gatewayTransactionId)
    .orderBy('s.created_at')
    .orderBy('s.id')
    .execute();

/**
 * A charge's fee is booked once, by the first settlement line that matches the charge. Worked by hand
 * (minor units) in each case: charge 10000 (clearing +10000), fee 175 (clearing 9825, fees 175), one
 * payout of 9825 (clearing 0, bank 9825). Each case books in a currency of its own.
 */
describe('one charge reported by two settlement lines', () => {
  it('SecurePay: a row imported unpaid, then inside its payout with available_on, is one line that gains its payout', async () => {
    const { transaction } = await succeededCharge(db, {
      currency: 'AUD',
      amount: 10_000n,
      gateway: 'securepay',
      gatewayTransactionId: 'ORDER-TWO-LINES-1',
    });
    const account = { gateway: 'securepay' as const, gatewayAccount: null };
    await importSettlementFile(
      db,
      'system',
      account,
      'securepay',
      'kind,gateway_transaction_id,currency,gross,fee,occurred_at\n' +
        'charge,ORDER-TWO-LINES-1,AUD,100.00,1.75,2026-11-02T09:15:00+11:00\n',
    );
    const paidOut =
      'payout_id,payout_date,kind,gateway_transaction_id,currency,gross,fee,occurred_at,available_on\n' +
      'SP-TWO-LINES-1,2026-11-03,charge,ORDER-TWO-LINES-1,AUD,100.00,1.75,2026-11-02T09:15:00+11:00,2026-11-03\n';
    await importSettlementFile(db, 'system', account, 'securepay', paidOut);
    // The same payout file again changes nothing.
    await importSettlementFile(db, 'system', account, 'securepay', paidOut);
    const books = await booksIn(db, 'AUD');
    expect({
      clearing: books['gateway_clearing:securepay'] ?? 0n,
      fees: books['gateway_fees:securepay'] ?? 0n,
      inTransit: books['payouts_in_transit:securepay'] ?? 0n,
      bank: books['bank:securepay'] ?? 0n,
    }).toEqual({ clearing: 0n, fees: 175n, inTransit: 0n, bank: 9_825n });
    expect(await linesOf('ORDER-TWO-LINES-1')).toEqual([
      {
        gateway_line_id: expect.stringMatching(/^csv_[0-9a-f]{24}$/),
        transaction_id: transaction.id,
        gateway_payout_id: 'SP-TWO-LINES-1',
        available_on: new Date('2026-11-03T00:00:00Z'),
      },
    ]);
    expect(await exceptionsOf('securepay')).toEqual([]);
  });

  it('Stripe: a webhook line (txn_…) and a file of its payout without line_id book the fee once; the file line is unmatched, naming both lines', async () => {
    const { transaction } = await succeededCharge(db, {
      currency: 'NZD',
      amount: 10_000n,
      gatewayTransactionId: 'pi_two_lines',
    });
    await applyAsBatch(
      db,
      canonicalEvent({
        type: 'settlement.line',
        amount: 10_000n,
        currency: 'NZD',
        settlementLine: {
          gatewayLineId: 'txn_two_lines',
          kind: 'charge',
          gatewayTransactionId: 'pi_two_lines',
          currency: 'NZD',
          gross: 10_000n,
          fee: 175n,
          net: 9_825n,
          occurredAt: new Date('2026-11-02T09:15:00Z'),
        },
      }),
    );
    const file =
      'payout_id,payout_date,kind,gateway_transaction_id,currency,gross,fee,occurred_at\n' +
      'po_two_lines,2026-11-03,charge,pi_two_lines,NZD,100.00,1.75,2026-11-02T09:15:00Z\n';
    const account = { gateway: 'stripe' as const, gatewayAccount: null };
    await importSettlementFile(db, 'system', account, 'billhook', file);
    // Importing it again (its unmatched line tried again) changes nothing.
    await importSettlementFile(db, 'system', account, 'billhook', file);
    const books = await booksIn(db, 'NZD');
    expect({
      clearing: books['gateway_clearing:stripe'] ?? 0n,
      fees: books['gateway_fees:stripe'] ?? 0n,
      inTransit: books['payouts_in_transit:stripe'] ?? 0n,
      bank: books['bank:stripe'] ?? 0n,
    }).toEqual({ clearing: 0n, fees: 175n, inTransit: 0n, bank: 9_825n });
    const lines = await linesOf('pi_two_lines');
    expect(lines).toEqual([
      expect.objectContaining({
        gateway_line_id: 'txn_two_lines',
        transaction_id: transaction.id,
        gateway_payout_id: null,
      }),
      expect.objectContaining({
        gateway_line_id: expect.stringMatching(/^csv_/),
        transaction_id: null,
        gateway_payout_id: 'po_two_lines',
      }),
    ]);
    const exceptions = await exceptionsOf('stripe');
    expect(exceptions).toEqual([
      {
        kind: 'settlement_line_unmatched',
        gateway_line_id: lines[1]?.gateway_line_id,
        message: expect.stringContaining('whose charge is line txn_two_lines'),
      },
    ]);
    expect(exceptions[0]?.message).toContain(`charge line ${lines[1]?.gateway_line_id} `);
  });

  it("Stripe: a webhook's line of a charge a file's line matched first is recorded unmatched at once, never retried", async () => {
    await succeededCharge(db, { currency: 'CAD', amount: 10_000n, gatewayTransactionId: 'pi_two_lines_cad' });
    await importSettlementFile(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      'billhook',
      'kind,gateway_transaction_id,currency,gross,fee,occurred_at\n' +
        'charge,pi_two_lines_cad,CAD,100.00,1.75,2026-11-02T09:15:00Z\n',
    );
    const result = await applyAsBatch(
      db,
      canonicalEvent({
        type: 'settlement.line',
        amount: 10_000n,
        currency: 'CAD',
        settlementLine: {
          gatewayLineId: 'txn_two_lines_cad',
          kind: 'charge',
          gatewayTransactionId: 'pi_two_lines_cad',
          currency: 'CAD',
          gross: 10_000n,
          fee: 175n,
          net: 9_825n,
          occurredAt: new Date('2026-11-02T09:15:00Z'),
        },
      }),
    );
    expect(result).toMatchObject({
      kind: 'exception',
      exception: 'settlement_line_unmatched',
      message: expect.stringContaining('txn_two_lines_cad'),
    });
    const books = await booksIn(db, 'CAD');
    expect({
      clearing: books['gateway_clearing:stripe'] ?? 0n,
      fees: books['gateway_fees:stripe'] ?? 0n,
    }).toEqual({ clearing: 9_825n, fees: 175n });
    expect((await linesOf('pi_two_lines_cad')).map((line) => line.transaction_id !== null)).toEqual([
      true,
      false,
    ]);
  });

  it('SecurePay: a payout file imported by an earlier billhook (whose derived line id held available_on) and imported again is the same line: nothing booked twice, no exception', async () => {
    // Charge 1050 SGD cents, fee 20, payout 1030 (minor units).
    const { transaction } = await succeededCharge(db, {
      currency: 'SGD',
      amount: 1_050n,
      gateway: 'securepay',
      gatewayTransactionId: 'ORDER-FORMER-ID',
    });
    const account = { gateway: 'securepay' as const, gatewayAccount: null };
    const file =
      'payout_id,payout_date,kind,gateway_transaction_id,currency,gross,fee,net,occurred_at,available_on\n' +
      'PO-FORMER,2026-11-03,charge,ORDER-FORMER-ID,SGD,10.50,0.20,10.30,2026-11-01T22:15:00Z,2026-11-03\n';
    await importSettlementFile(db, 'system', account, 'securepay', file);
    // As the earlier billhook recorded it: the id its parser derived for this row (available_on in
    // the hash), worked out with that version's parseSettlementCsv.
    await db
      .updateTable('settlement_lines')
      .set({ gateway_line_id: 'csv_5c01d26cafc21db77185fddf' })
      .where('gateway_transaction_id', '=', 'ORDER-FORMER-ID')
      .execute();
    await importSettlementFile(db, 'system', account, 'securepay', file);
    const books = await booksIn(db, 'SGD');
    expect({
      clearing: books['gateway_clearing:securepay'] ?? 0n,
      fees: books['gateway_fees:securepay'] ?? 0n,
      bank: books['bank:securepay'] ?? 0n,
    }).toEqual({ clearing: 0n, fees: 20n, bank: 1_030n });
    expect(await linesOf('ORDER-FORMER-ID')).toEqual([
      {
        gateway_line_id: 'csv_5c01d26cafc21db77185fddf',
        transaction_id: transaction.id,
        gateway_payout_id: 'PO-FORMER',
        available_on: new Date('2026-11-03T00:00:00Z'),
      },
    ]);
    expect((await exceptionsOf('securepay')).filter((e) => e.message.includes('ORDER-FORMER-ID'))).toEqual(
      [],
    );
  });
});

describe('CSV rows an earlier billhook recorded (its derived ids hashed available_on)', () => {
  it('DKK: two identical fee rows, one with available_on, imported by the earlier billhook and again now, are the same two lines: each fee booked once (was: a third line, 200 booked again)', async () => {
    // Two fees of 1.00 DKK (100 minor units each): gateway fees 200, clearing −200, two lines.
    const file =
      'kind,currency,gross,fee,occurred_at,available_on,description\n' +
      'fee,DKK,0.00,1.00,2026-11-02T00:00:00+01:00,2026-11-03,Monthly fee\n' +
      'fee,DKK,0.00,1.00,2026-11-02T00:00:00+01:00,,Monthly fee\n';
    const account = { gateway: 'stripe' as const, gatewayAccount: null };
    const [first, second] = parseSettlementCsv(file).lines;
    // Now: the rows hash alike (available_on left out), so the second is `_2`. The earlier billhook
    // gave the first another id (available_on hashed) and the second the one the first has now.
    expect(second!.gatewayLineId).toBe(`${first!.gatewayLineId}_2`);
    expect(second!.formerLineId).toBe(first!.gatewayLineId);
    expect(first!.formerLineId).toMatch(/^csv_[0-9a-f]{24}$/);
    // As the earlier billhook recorded them.
    await inUnitOfWork(db, { actor: 'system' }, async (work) => {
      for (const row of [first!, second!]) {
        await recordSettlementLine(work, account, { ...row, gatewayLineId: row.formerLineId! }, null);
      }
    });
    expect((await booksIn(db, 'DKK'))['gateway_fees:stripe']).toBe(200n);
    await importSettlementFile(db, 'system', account, 'billhook', file);
    const books = await booksIn(db, 'DKK');
    expect({
      fees: books['gateway_fees:stripe'] ?? 0n,
      clearing: books['gateway_clearing:stripe'] ?? 0n,
    }).toEqual({ fees: 200n, clearing: -200n });
    const lines = await db
      .selectFrom('settlement_lines')
      .select('gateway_line_id')
      .where('currency', '=', 'DKK')
      .orderBy('gateway_line_id')
      .execute();
    expect(lines.map((l) => l.gateway_line_id).sort()).toEqual(
      [first!.formerLineId!, first!.gatewayLineId].sort(),
    );
  });
});
