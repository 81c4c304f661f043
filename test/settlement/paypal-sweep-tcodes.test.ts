import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { reportOf, SearchPage, type TransactionInfo } from '../../src/gateways/paypal/transaction-search.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

/*
 * PayPal Transaction Search rows of the event groups T02nn (currency conversion) and T12nn
 * (adjustments: T1201 chargeback, T1202 chargeback reversal), per PayPal's Transaction Event Codes
 * (https://developer.paypal.com/docs/transaction-search/transaction-event-codes/; the labels of PayPal's
 * Settlement Report specification as Magento's PayPal module carries them: T0200 "General Currency
 * Conversion", T0201 "User-initiated Currency Conversion", T0202 "Currency Conversion required to cover
 * negative balance", T1201 "Chargeback"). No real row of either group was found
 * (test/fixtures/paypal/SOURCES.md): the rows are constructed in the documented `transaction_info` shape.
 * Currencies with PayPal's own decimal rule (HUF and JPY take no decimals at PayPal,
 * src/gateways/paypal/currencies.ts): HUF "20000" is 2000000 minor units (ISO 4217: 2 decimals), JPY
 * "12000" is 12000. Amounts in minor units.
 */

const at = new Date('2026-11-02T10:00:00Z');
const row = (
  r: Pick<TransactionInfo, 'transaction_id' | 'transaction_event_code' | 'transaction_amount'> &
    Partial<Pick<TransactionInfo, 'fee_amount' | 'paypal_reference_id' | 'transaction_status'>>,
): TransactionInfo => ({ transaction_initiation_date: at, transaction_status: 'S', ...r });

let db: Db;
beforeEach(async () => {
  db = await moneyCoreDatabase();
});
afterEach(() => db?.destroy());

const paypal = { gateway: 'paypal' as const, gatewayAccount: null };
const sweep = (rows: TransactionInfo[]) => recordSettlementReport(db, 'system', paypal, reportOf(rows));
const account = async (currency: string, code: string) => (await booksIn(db, currency))[code] ?? 0n;
/** The exceptions raised, by kind and the gateway's line id they are about. */
const exceptions = () =>
  db
    .selectFrom('reconciliation_exceptions as x')
    .leftJoin('settlement_lines as l', 'l.id', 'x.settlement_line_id')
    .select(['x.kind', 'l.gateway_line_id', 'x.status'])
    .orderBy('x.id')
    .execute();

describe('a PayPal currency conversion of the balance (T0201, naming no payment)', () => {
  // A HUF capture of 20000.00 (fee 700), its net 19300 HUF converted by the merchant into EUR 49.57,
  // then withdrawn in EUR. By hand: HUF clearing 2000000 − 70000 (fee) − 1930000 (converted out) = 0;
  // EUR clearing 4957 (converted in) − 4957 (withdrawn) = 0; the FX account holds both sides of the
  // conversion, +1930000 HUF and −4957 EUR.
  const rows = [
    row({
      transaction_id: '8HUFCAPTURE00001',
      transaction_event_code: 'T0006',
      transaction_amount: { currency_code: 'HUF', value: '20000' },
      fee_amount: { currency_code: 'HUF', value: '-700' },
    }),
    row({
      transaction_id: '1CONV0201HUF0001',
      transaction_event_code: 'T0201',
      transaction_amount: { currency_code: 'HUF', value: '-19300' },
    }),
    row({
      transaction_id: '1CONV0201EUR0001',
      transaction_event_code: 'T0201',
      transaction_amount: { currency_code: 'EUR', value: '49.57' },
    }),
    row({
      transaction_id: '5WDRAWEUR0400001',
      transaction_event_code: 'T0400',
      transaction_amount: { currency_code: 'EUR', value: '-49.57' },
    }),
  ];

  it('books each side against the FX account, so clearing is 0 in HUF and EUR, nothing left for a person', async () => {
    await succeededCharge(db, {
      currency: 'HUF',
      amount: 2_000_000n,
      gateway: 'paypal',
      gatewayTransactionId: '8HUFCAPTURE00001',
    });
    await sweep(rows);
    expect({
      clearing: {
        HUF: await account('HUF', 'gateway_clearing:paypal'),
        EUR: await account('EUR', 'gateway_clearing:paypal'),
      },
      fx: { HUF: await account('HUF', 'fx:paypal'), EUR: await account('EUR', 'fx:paypal') },
      fees: await account('HUF', 'gateway_fees:paypal'),
      adjustments: {
        HUF: await account('HUF', 'settlement_adjustments:paypal'),
        EUR: await account('EUR', 'settlement_adjustments:paypal'),
      },
    }).toEqual({
      clearing: { HUF: 0n, EUR: 0n },
      fx: { HUF: 1_930_000n, EUR: -4_957n },
      fees: 70_000n,
      adjustments: { HUF: 0n, EUR: 0n },
    });
    expect(
      await db
        .selectFrom('settlement_lines')
        .select(['gateway_line_id', 'kind', 'currency', 'gross', 'net'])
        .where('gateway_line_id', 'like', '1CONV%')
        .orderBy('gateway_line_id')
        .execute(),
    ).toEqual([
      {
        gateway_line_id: '1CONV0201EUR0001',
        kind: 'conversion',
        currency: 'EUR',
        gross: 4_957n,
        net: 4_957n,
      },
      {
        gateway_line_id: '1CONV0201HUF0001',
        kind: 'conversion',
        currency: 'HUF',
        gross: -1_930_000n,
        net: -1_930_000n,
      },
    ]);
    expect(await exceptions()).toEqual([]);
    // Swept again: nothing more.
    await sweep(rows);
    expect(await account('HUF', 'fx:paypal')).toBe(1_930_000n);
    expect(await account('EUR', 'fx:paypal')).toBe(-4_957n);
  });
});

describe('a PayPal chargeback (T1201) and its reversal (T1202) in the sweep', () => {
  // A JPY capture of 12000 (fee 468) charged back by the buyer's card issuer: PayPal reverses the
  // capture (PAYMENT.CAPTURE.REVERSED, dispute keyed by the capture, lost) and lists a T1201 of −12000
  // naming the capture, with a chargeback fee T0106 of −2000; the issuer then finds for the merchant
  // (the dispute won), PayPal gives the 12000 back as a T1202.
  const CAPTURE = '4JPYCAPTURE00001';
  const capture = row({
    transaction_id: CAPTURE,
    transaction_event_code: 'T0006',
    transaction_amount: { currency_code: 'JPY', value: '12000' },
    fee_amount: { currency_code: 'JPY', value: '-468' },
  });
  const chargeback = row({
    transaction_id: '6CHARGEBACK12011',
    paypal_reference_id: CAPTURE,
    transaction_event_code: 'T1201',
    transaction_amount: { currency_code: 'JPY', value: '-12000' },
  });
  const chargebackFee = row({
    transaction_id: '7FEE0106JPY00001',
    paypal_reference_id: CAPTURE,
    transaction_event_code: 'T0106',
    transaction_amount: { currency_code: 'JPY', value: '-2000' },
  });
  const reversal = row({
    transaction_id: '6CHARGEBACK12021',
    paypal_reference_id: CAPTURE,
    transaction_event_code: 'T1202',
    transaction_amount: { currency_code: 'JPY', value: '12000' },
  });
  const dispute = (type: 'dispute.lost' | 'dispute.won') =>
    applyAsBatch(
      db,
      canonicalEvent({
        type,
        gateway: 'paypal',
        gatewayTransactionId: CAPTURE,
        gatewayDisputeId: CAPTURE,
        amount: 12_000n,
        currency: 'JPY',
        reversal: true,
      }),
    );
  const disputeLines = () =>
    db
      .selectFrom('settlement_lines as l')
      .leftJoin('disputes as d', 'd.id', 'l.dispute_id')
      .select(['l.gateway_line_id', 'l.kind', 'l.gross', 'd.gateway_dispute_id'])
      .where('l.gateway_line_id', 'like', '6CHARGEBACK%')
      .orderBy('l.gateway_line_id')
      .execute();

  it('are the dispute’s lines (matched to it), not adjustments: its money is booked once, by the dispute', async () => {
    await succeededCharge(db, {
      currency: 'JPY',
      amount: 12_000n,
      gateway: 'paypal',
      gatewayTransactionId: CAPTURE,
    });
    await dispute('dispute.lost');
    await sweep([capture, chargeback, chargebackFee]);
    // By hand: clearing 12000 − 468 (fee) − 12000 (the reversal, booked by the dispute) − 2000
    // (chargeback fee) = −2468; nothing to settlement adjustments.
    expect({
      clearing: await account('JPY', 'gateway_clearing:paypal'),
      fees: await account('JPY', 'gateway_fees:paypal'),
      adjustments: await account('JPY', 'settlement_adjustments:paypal'),
    }).toEqual({ clearing: -2_468n, fees: 2_468n, adjustments: 0n });
    expect(await disputeLines()).toEqual([
      { gateway_line_id: '6CHARGEBACK12011', kind: 'dispute', gross: -12_000n, gateway_dispute_id: CAPTURE },
    ]);
    expect(await exceptions()).toEqual([]);

    // The issuer finds for the merchant: the dispute is won, PayPal gives the money back (T1202).
    await dispute('dispute.won');
    await sweep([capture, chargeback, chargebackFee, reversal]);
    // By hand: −2468 + 12000 (the loss returned, booked by the dispute) = 9532.
    expect({
      clearing: await account('JPY', 'gateway_clearing:paypal'),
      adjustments: await account('JPY', 'settlement_adjustments:paypal'),
    }).toEqual({ clearing: 9_532n, adjustments: 0n });
    expect(await disputeLines()).toEqual([
      { gateway_line_id: '6CHARGEBACK12011', kind: 'dispute', gross: -12_000n, gateway_dispute_id: CAPTURE },
      { gateway_line_id: '6CHARGEBACK12021', kind: 'dispute', gross: 12_000n, gateway_dispute_id: CAPTURE },
    ]);
    expect(await exceptions()).toEqual([]);
  });

  it('a chargeback row before billhook knows the dispute: recorded unmatched for a person, then matched once it does', async () => {
    await succeededCharge(db, {
      currency: 'JPY',
      amount: 12_000n,
      gateway: 'paypal',
      gatewayTransactionId: CAPTURE,
    });
    await sweep([capture, chargeback]);
    expect(await account('JPY', 'settlement_adjustments:paypal')).toBe(0n);
    expect(await exceptions()).toEqual([
      { kind: 'settlement_line_unmatched', gateway_line_id: '6CHARGEBACK12011', status: 'open' },
    ]);
    await dispute('dispute.lost');
    await sweep([capture, chargeback]);
    expect(await disputeLines()).toEqual([
      { gateway_line_id: '6CHARGEBACK12011', kind: 'dispute', gross: -12_000n, gateway_dispute_id: CAPTURE },
    ]);
    expect(await exceptions()).toEqual([
      { kind: 'settlement_line_unmatched', gateway_line_id: '6CHARGEBACK12011', status: 'resolved' },
    ]);
    expect(await account('JPY', 'gateway_clearing:paypal')).toBe(-468n);
  });

  /** A PayPal claim (not a chargeback: no `reversal`) of `amount`, opened then resolved as `outcome`. */
  const claim = async (amount: bigint, outcome: 'dispute.won') => {
    for (const type of ['dispute.opened', outcome] as const) {
      await applyAsBatch(
        db,
        canonicalEvent({
          type,
          gateway: 'paypal',
          gatewayTransactionId: CAPTURE,
          gatewayDisputeId: CAPTURE,
          amount,
          currency: 'JPY',
        }),
      );
    }
  };

  it('a chargeback row after a claim the merchant won, before billhook hears of the chargeback: unmatched until it does, then the chargeback’s', async () => {
    // The buyer's PayPal claim of 12000 is won by the merchant (PayPal took nothing); the buyer then
    // goes to the card issuer, and the sweep lists the T1201 of −12000 before PAYMENT.CAPTURE.REVERSED.
    // Matched to the won claim, it booked its fee only: clearing 12000 − 468 = 11532 while PayPal had
    // taken the 12000, and nothing said so.
    await succeededCharge(db, {
      currency: 'JPY',
      amount: 12_000n,
      gateway: 'paypal',
      gatewayTransactionId: CAPTURE,
    });
    await claim(12_000n, 'dispute.won');
    await sweep([capture, chargeback]);
    expect(await disputeLines()).toEqual([
      { gateway_line_id: '6CHARGEBACK12011', kind: 'dispute', gross: -12_000n, gateway_dispute_id: null },
    ]);
    expect(await exceptions()).toEqual([
      { kind: 'settlement_line_unmatched', gateway_line_id: '6CHARGEBACK12011', status: 'open' },
    ]);
    // The chargeback arrives (a dispute of its own, `<capture>:reversal`), and the next sweep lists
    // the row again: it is the chargeback's. By hand: 12000 − 468 − 12000 = −468.
    await dispute('dispute.lost');
    await sweep([capture, chargeback]);
    expect(await disputeLines()).toEqual([
      {
        gateway_line_id: '6CHARGEBACK12011',
        kind: 'dispute',
        gross: -12_000n,
        gateway_dispute_id: `${CAPTURE}:reversal`,
      },
    ]);
    expect(await exceptions()).toEqual([
      { kind: 'settlement_line_unmatched', gateway_line_id: '6CHARGEBACK12011', status: 'resolved' },
    ]);
    expect(await account('JPY', 'gateway_clearing:paypal')).toBe(-468n);
  });

  it('the chargeback reversal (T1202) of a chargeback after a won claim is the chargeback’s line, not the claim’s', async () => {
    // A claim of 5000 won, then a chargeback of the whole 12000 (`<capture>:reversal`) lost and won:
    // the T1202 giving back 12000 used to match the claim, raising amount_mismatch (12000 against the
    // claim's 5000) for money billhook had booked right.
    await succeededCharge(db, {
      currency: 'JPY',
      amount: 12_000n,
      gateway: 'paypal',
      gatewayTransactionId: CAPTURE,
    });
    await claim(5_000n, 'dispute.won');
    await dispute('dispute.lost');
    await sweep([capture, chargeback]);
    await dispute('dispute.won');
    await sweep([capture, chargeback, reversal]);
    const chargebackDispute = `${CAPTURE}:reversal`;
    expect(await disputeLines()).toEqual([
      {
        gateway_line_id: '6CHARGEBACK12011',
        kind: 'dispute',
        gross: -12_000n,
        gateway_dispute_id: chargebackDispute,
      },
      {
        gateway_line_id: '6CHARGEBACK12021',
        kind: 'dispute',
        gross: 12_000n,
        gateway_dispute_id: chargebackDispute,
      },
    ]);
    expect(await exceptions()).toEqual([]);
    // By hand: 12000 − 468 − 12000 (lost) + 12000 (won back) = 11532.
    expect(await account('JPY', 'gateway_clearing:paypal')).toBe(11_532n);
  });

  it('a chargeback reversal row (T1202) before billhook books the win: unmatched for a person until it does', async () => {
    // PayPal gave the 12000 back (T1202) but the dispute is still lost in billhook: matched, the row
    // booked nothing and said nothing, clearing −468 where PayPal holds 11532.
    await succeededCharge(db, {
      currency: 'JPY',
      amount: 12_000n,
      gateway: 'paypal',
      gatewayTransactionId: CAPTURE,
    });
    await dispute('dispute.lost');
    await sweep([capture, chargeback, reversal]);
    expect(await disputeLines()).toEqual([
      { gateway_line_id: '6CHARGEBACK12011', kind: 'dispute', gross: -12_000n, gateway_dispute_id: CAPTURE },
      { gateway_line_id: '6CHARGEBACK12021', kind: 'dispute', gross: 12_000n, gateway_dispute_id: null },
    ]);
    expect(await exceptions()).toEqual([
      { kind: 'settlement_line_unmatched', gateway_line_id: '6CHARGEBACK12021', status: 'open' },
    ]);
    expect(await account('JPY', 'gateway_clearing:paypal')).toBe(-468n);
    await dispute('dispute.won');
    await sweep([capture, chargeback, reversal]);
    expect(await disputeLines()).toEqual([
      { gateway_line_id: '6CHARGEBACK12011', kind: 'dispute', gross: -12_000n, gateway_dispute_id: CAPTURE },
      { gateway_line_id: '6CHARGEBACK12021', kind: 'dispute', gross: 12_000n, gateway_dispute_id: CAPTURE },
    ]);
    expect(await exceptions()).toEqual([
      { kind: 'settlement_line_unmatched', gateway_line_id: '6CHARGEBACK12021', status: 'resolved' },
    ]);
    expect(await account('JPY', 'gateway_clearing:paypal')).toBe(11_532n);
  });
});

describe('PayPal holds and their releases (T1503, T1105: the real sandbox pages)', () => {
  // test/fixtures/paypal/SOURCES.md: a T1503 hold of −60.75 on a mass payment batch, T1105 releases
  // of 10.25 and 20.25 naming two of its payments (still pending, P), and the third payment sent
  // and completed: T0001 −30.00, fee −0.25. Held money is still the account's at PayPal; the money
  // that left it is the completed payment, −30.25.
  const sandboxRows = [1, 2].flatMap((n) =>
    SearchPage.parse(
      JSON.parse(
        readFileSync(
          path.resolve(
            import.meta.dirname,
            `../fixtures/paypal/api.reporting.transactions.sandbox.page_${n}.json`,
          ),
          'utf8',
        ),
      ),
    ).transaction_details.map((d) => d.transaction_info),
  );

  it('are hold lines booked nowhere and raise nothing; the payment sent is the adjustment for a person', async () => {
    await sweep(sandboxRows);
    expect({
      clearing: await account('USD', 'gateway_clearing:paypal'),
      adjustments: await account('USD', 'settlement_adjustments:paypal'),
    }).toEqual({ clearing: -3_025n, adjustments: 3_025n });
    expect(
      await db
        .selectFrom('settlement_lines')
        .select(['kind', 'gross'])
        .orderBy('occurred_at')
        .orderBy('gateway_line_id')
        .execute(),
    ).toEqual(
      expect.arrayContaining([
        { kind: 'hold', gross: -6_075n },
        { kind: 'hold', gross: 1_025n },
        { kind: 'hold', gross: 2_025n },
        { kind: 'adjustment', gross: -3_000n },
      ]),
    );
    expect(await exceptions()).toEqual([
      { kind: 'settlement_adjustment', gateway_line_id: '44R34480PG8833736', status: 'open' },
    ]);
  });
});
