import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { captureLine } from '../../src/gateways/paypal/settlement.ts';
import { reportOf, type TransactionInfo } from '../../src/gateways/paypal/transaction-search.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import { applyAsBatch, canonicalEvent, moneyCoreDatabase, succeededCharge } from '../support/money-core.ts';

/*
 * A PayPal chargeback line in another currency than its dispute. The capture of
 * test/fixtures/paypal/constructed/webhook.PAYMENT.CAPTURE.COMPLETED.cross_currency (2GG279541U471931P):
 * USD 10.99 paid, the payee holds CNY: its converted line CNY gross 60.39 (receivable 59.26, fee 1.13).
 * The dispute is lost for USD 10.99; the T1201 row says CNY −30.00: PayPal took back other money than
 * the converted capture, and the conversion booked against the dispute's USD 10.99 left the
 * difference in fx:paypal without a word. Now one amount_mismatch names both. Minor units.
 */
const CAPTURE = '2GG279541U471931P';
const fixture = (name: string) =>
  JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../fixtures/paypal', name), 'utf8'));
const at = new Date('2026-11-02T10:00:00Z');
const chargeback = (value: string): TransactionInfo => ({
  transaction_initiation_date: at,
  transaction_status: 'S',
  transaction_id: '6CHARGEBACKCNY01',
  paypal_reference_id: CAPTURE,
  transaction_event_code: 'T1201',
  transaction_amount: { currency_code: 'CNY', value },
});

let db: Db;
beforeEach(async () => {
  db = await moneyCoreDatabase();
  await succeededCharge(db, {
    currency: 'USD',
    amount: 1099n,
    gateway: 'paypal',
    gatewayTransactionId: CAPTURE,
  });
  // The capture's converted webhook line: CNY 60.39 from USD 10.99.
  await applyAsBatch(
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
  await applyAsBatch(
    db,
    canonicalEvent({
      type: 'dispute.lost',
      gateway: 'paypal',
      gatewayTransactionId: CAPTURE,
      gatewayDisputeId: CAPTURE,
      amount: 1099n,
      currency: 'USD',
      reversal: true,
    }),
  );
});
afterEach(() => db?.destroy());

const sweep = (rows: TransactionInfo[]) =>
  recordSettlementReport(db, 'system', { gateway: 'paypal', gatewayAccount: null }, reportOf(rows));
const mismatches = () =>
  db
    .selectFrom('reconciliation_exceptions as x')
    .leftJoin('settlement_lines as l', 'l.id', 'x.settlement_line_id')
    .select(['x.kind', 'x.status', 'l.gateway_line_id', 'x.message', 'x.details'])
    .where('x.kind', '=', 'amount_mismatch')
    .execute();

describe('PayPal chargeback line in another currency than its dispute', () => {
  it('a T1201 of CNY −30.00 for a USD 10.99 dispute of a capture settled as CNY 60.39 raises one amount_mismatch', async () => {
    await sweep([chargeback('-30.00')]);
    await sweep([chargeback('-30.00')]);
    const raised = await mismatches();
    expect(raised).toEqual([
      {
        kind: 'amount_mismatch',
        status: 'open',
        gateway_line_id: '6CHARGEBACKCNY01',
        message: expect.stringMatching(/-3000 CNY.*-1099 USD.*-6039 CNY/),
        details: expect.objectContaining({
          currency: 'CNY',
          gross: '-3000',
          booked_currency: 'USD',
          booked: '-1099',
          expected: '-6039',
        }),
      },
    ]);
  });

  it('a T1201 of CNY −60.39, the converted capture, raises nothing', async () => {
    await sweep([chargeback('-60.39')]);
    expect(await mismatches()).toEqual([]);
  });
});
