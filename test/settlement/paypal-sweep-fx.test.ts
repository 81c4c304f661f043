import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { captureLine } from '../../src/gateways/paypal/settlement.ts';
import { reportOf, type TransactionInfo } from '../../src/gateways/paypal/transaction-search.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

/*
 * A cross-currency PayPal capture and the sweep of its balance. The capture of
 * test/fixtures/paypal/constructed/webhook.PAYMENT.CAPTURE.COMPLETED.cross_currency (2GG279541U471931P):
 * USD 10.99, fee 0.33, net 10.66; the payee holds CNY: receivable 59.26, fee 1.13. Transaction Search
 * lists the capture in its own currency (T0006 +10.99 USD, fee −0.33) and the conversion as T02nn
 * rows (constructed, test/fixtures/paypal/SOURCES.md: T0200 −10.66 USD and +59.26 CNY naming the
 * capture), then the withdrawal in CNY. No real T02nn row was found, so the sweep books neither the
 * conversion nor the capture's row it names: each conversion row is recorded, and raises
 * settlement_line_unbooked unless the capture's converted webhook line booked what it says already
 * (resolved when that line comes later); the capture is booked by its webhook line, converted,
 * whenever it comes. Both rows used to stay raised for good, with nothing left for a person to do.
 * The sweep used to book the T0006 row as a USD line (clearing USD +1066 for ever, CNY −5926, no
 * exception); booking the T0200 rows as adjustments would convert twice after the webhook line.
 * A sweep whose range ends between the capture's row and its conversion rows books the T0006 row in
 * USD (its fee); the webhook line, the same line id, used to be a silent duplicate (USD +1066 and
 * CNY −5926 for ever): it now replaces that booking, and a line seen again with other money it
 * cannot replace raises settlement_line_changed.
 * Amounts in minor units.
 */

const CAPTURE = '2GG279541U471931P';
const fixture = (name: string) =>
  JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../fixtures/paypal', name), 'utf8'));

const at = new Date('2026-11-02T10:00:00Z');
const row = (
  r: Pick<TransactionInfo, 'transaction_id' | 'transaction_event_code' | 'transaction_amount'> &
    Partial<Pick<TransactionInfo, 'fee_amount' | 'paypal_reference_id'>>,
): TransactionInfo => ({ transaction_initiation_date: at, transaction_status: 'S', ...r });
const rows = [
  row({
    transaction_id: CAPTURE,
    transaction_event_code: 'T0006',
    transaction_amount: { currency_code: 'USD', value: '10.99' },
    fee_amount: { currency_code: 'USD', value: '-0.33' },
  }),
  row({
    transaction_id: '1CONV0200USD0001',
    paypal_reference_id: CAPTURE,
    transaction_event_code: 'T0200',
    transaction_amount: { currency_code: 'USD', value: '-10.66' },
  }),
  row({
    transaction_id: '1CONV0200CNY0001',
    paypal_reference_id: CAPTURE,
    transaction_event_code: 'T0200',
    transaction_amount: { currency_code: 'CNY', value: '59.26' },
  }),
  row({
    transaction_id: '5WDRAWCNY0400001',
    transaction_event_code: 'T0400',
    transaction_amount: { currency_code: 'CNY', value: '-59.26' },
  }),
];

let db: Db;
beforeEach(async () => {
  db = await moneyCoreDatabase();
  await succeededCharge(db, {
    currency: 'USD',
    amount: 1099n,
    gateway: 'paypal',
    gatewayTransactionId: CAPTURE,
  });
});
afterEach(() => db?.destroy());

const books = async () => {
  const usd = await booksIn(db, 'USD');
  const cny = await booksIn(db, 'CNY');
  return {
    clearing: { USD: usd['gateway_clearing:paypal'] ?? 0n, CNY: cny['gateway_clearing:paypal'] ?? 0n },
    fees: { USD: usd['gateway_fees:paypal'] ?? 0n, CNY: cny['gateway_fees:paypal'] ?? 0n },
    adjustments: {
      USD: usd['settlement_adjustments:paypal'] ?? 0n,
      CNY: cny['settlement_adjustments:paypal'] ?? 0n,
    },
  };
};
const sweep = () =>
  recordSettlementReport(db, 'system', { gateway: 'paypal', gatewayAccount: null }, reportOf(rows));
const webhookLine = () =>
  applyAsBatch(
    db,
    canonicalEvent({
      type: 'settlement.line',
      gateway: 'paypal',
      amount: 5926n + 113n,
      currency: 'CNY',
      settlementLine: captureLine(
        fixture('constructed/webhook.PAYMENT.CAPTURE.COMPLETED.cross_currency.constructed.json').resource,
        new Date(),
      ),
    }),
  );
/** The open exceptions, by kind and the gateway's line id they are about. */
const exceptions = () =>
  db
    .selectFrom('reconciliation_exceptions as x')
    .leftJoin('settlement_lines as l', 'l.id', 'x.settlement_line_id')
    .select(['x.kind', 'l.gateway_line_id'])
    .where('x.status', '=', 'open')
    .orderBy('l.gateway_line_id')
    .execute();
const conversionsUnbooked = [
  { kind: 'settlement_line_unbooked', gateway_line_id: '1CONV0200CNY0001' },
  { kind: 'settlement_line_unbooked', gateway_line_id: '1CONV0200USD0001' },
];

describe('a cross-currency PayPal capture and its CNY withdrawal, swept', () => {
  it('webhook line first: the conversion is booked once (clearing 0 in both currencies), its rows agree with it: nothing for a person (they used to raise settlement_line_unbooked each)', async () => {
    await webhookLine();
    await sweep();
    expect(await books()).toEqual({
      clearing: { USD: 0n, CNY: 0n },
      fees: { USD: 0n, CNY: 113n },
      adjustments: { USD: 0n, CNY: 0n },
    });
    expect(await exceptions()).toEqual([]);
  });

  it('webhook line first, conversion rows saying another amount (CNY 59.20, not the line’s 59.26): that row raised for a person', async () => {
    await webhookLine();
    const other = rows.map((r) =>
      r.transaction_id === '1CONV0200CNY0001'
        ? { ...r, transaction_amount: { currency_code: 'CNY', value: '59.20' } }
        : r,
    );
    await recordSettlementReport(db, 'system', { gateway: 'paypal', gatewayAccount: null }, reportOf(other));
    expect(await exceptions()).toEqual([
      { kind: 'settlement_line_unbooked', gateway_line_id: '1CONV0200CNY0001' },
    ]);
  });

  it('sweep first: nothing booked in the payment’s currency, the conversion rows raised; the webhook line then books it converted', async () => {
    await sweep();
    // Billhook's USD 10.99 waits in clearing for its converted line; the CNY withdrawal is booked.
    expect(await books()).toEqual({
      clearing: { USD: 1099n, CNY: -5926n },
      fees: { USD: 0n, CNY: 0n },
      adjustments: { USD: 0n, CNY: 0n },
    });
    expect(
      await db.selectFrom('settlement_lines').select('gateway_line_id').orderBy('gateway_line_id').execute(),
    ).toEqual([{ gateway_line_id: '1CONV0200CNY0001' }, { gateway_line_id: '1CONV0200USD0001' }]);
    expect(await exceptions()).toEqual(conversionsUnbooked);
    await webhookLine();
    expect((await books()).clearing).toEqual({ USD: 0n, CNY: 0n });
    // The converted line booked the conversion the rows say: their exceptions are resolved.
    expect(await exceptions()).toEqual([]);
  });
});

/** The exceptions' messages, of `kind`, open or resolved. */
const raisedEver = (kind: string) =>
  db.selectFrom('reconciliation_exceptions').select('message').where('kind', '=', kind).execute();

/** The open exceptions' messages and details, of `kind`. */
const raised = (kind: string) =>
  db
    .selectFrom('reconciliation_exceptions')
    .select(['message', 'details'])
    .where('kind', '=', kind)
    .where('status', '=', 'open')
    .orderBy('message')
    .execute();

describe('a PayPal line seen again with other money (settlement_line_changed, never a silent duplicate)', () => {
  it('conversion rows in the next sweep: the converted webhook line replaces the USD booking (clearing 0 in USD and CNY)', async () => {
    const account = { gateway: 'paypal' as const, gatewayAccount: null };
    // The first sweep's range ends between the capture's row and its conversion rows.
    await recordSettlementReport(db, 'system', account, reportOf(rows.slice(0, 1)));
    expect((await books()).fees).toEqual({ USD: 33n, CNY: 0n });
    await sweep();
    await webhookLine();
    expect(await books()).toEqual({
      clearing: { USD: 0n, CNY: 0n },
      fees: { USD: 0n, CNY: 113n },
      adjustments: { USD: 0n, CNY: 0n },
    });
    expect(
      await db
        .selectFrom('settlement_lines')
        .select(['currency', 'gross', 'fee', 'original_currency', 'original_amount'])
        .where('gateway_line_id', '=', CAPTURE)
        .execute(),
    ).toEqual([
      { currency: 'CNY', gross: 6039n, fee: 113n, original_currency: 'USD', original_amount: 1099n },
    ]);
    expect(await exceptions()).toEqual([]);
    // The conversion rows' text is true here too: it says when the webhook line does not book it.
    for (const { message } of await raisedEver('settlement_line_unbooked')) {
      expect(message).toContain("replacing what an earlier sweep booked of the payment's own row");
      expect(message).toContain('settlement_line_changed');
    }
    // Seen again (a sweep of the capture's row alone, the webhook line again): nothing more, nothing raised.
    await recordSettlementReport(db, 'system', account, reportOf(rows.slice(0, 1)));
    await sweep();
    await webhookLine();
    expect((await books()).clearing).toEqual({ USD: 0n, CNY: 0n });
    expect(await exceptions()).toEqual([]);
  });

  it('webhook line first, then a sweep of the capture’s row alone (in USD): the same line, nothing more, nothing left raised', async () => {
    const account = { gateway: 'paypal' as const, gatewayAccount: null };
    await webhookLine();
    await recordSettlementReport(db, 'system', account, reportOf(rows.slice(0, 1)));
    await sweep();
    expect(await books()).toEqual({
      clearing: { USD: 0n, CNY: 0n },
      fees: { USD: 0n, CNY: 113n },
      adjustments: { USD: 0n, CNY: 0n },
    });
    expect(await exceptions()).toEqual([]);
  });

  it('a swept USD row the converted line does not convert from (another gross): booked nothing more, both versions named', async () => {
    const account = { gateway: 'paypal' as const, gatewayAccount: null };
    const capture = rows[0] as TransactionInfo;
    await recordSettlementReport(
      db,
      'system',
      account,
      reportOf([{ ...capture, transaction_amount: { currency_code: 'USD', value: '10.98' } }]),
    );
    const before = await books();
    await webhookLine();
    expect(await books()).toEqual(before);
    const [changed] = await raised('settlement_line_changed');
    expect(changed?.message).toContain(`charge line ${CAPTURE}`);
    expect(changed?.message).toContain('recorded and booked as USD gross 1098 fee 33;');
    expect(changed?.message).toContain(
      'now reported as CNY gross 6039 fee 113 (converted from 1099 USD), booked nowhere',
    );
    expect(changed?.details).toMatchObject({
      gateway_line_id: CAPTURE,
      recorded: { currency: 'USD', gross: '1098', fee: '33', original_currency: null },
      reported: {
        currency: 'CNY',
        gross: '6039',
        fee: '113',
        original_currency: 'USD',
        original_amount: '1099',
      },
    });
  });

  it('a same-currency row listed again with another fee: the first fee stays booked, the second raised', async () => {
    const account = { gateway: 'paypal' as const, gatewayAccount: null };
    const capture = rows[0] as TransactionInfo;
    await recordSettlementReport(db, 'system', account, reportOf([capture]));
    await recordSettlementReport(
      db,
      'system',
      account,
      reportOf([{ ...capture, fee_amount: { currency_code: 'USD', value: '-0.35' } }]),
    );
    expect(await books()).toEqual({
      clearing: { USD: 1066n, CNY: 0n },
      fees: { USD: 33n, CNY: 0n },
      adjustments: { USD: 0n, CNY: 0n },
    });
    const [changed] = await raised('settlement_line_changed');
    expect(changed?.message).toContain('recorded and booked as USD gross 1099 fee 33;');
    expect(changed?.message).toContain('now reported as USD gross 1099 fee 35, booked nowhere');
    // The same row again, as recorded: a plain duplicate, nothing raised.
    await recordSettlementReport(db, 'system', account, reportOf([capture]));
    expect(await raised('settlement_line_changed')).toHaveLength(1);
  });
});
