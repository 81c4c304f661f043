import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { captureLine, refundLine } from '../../src/gateways/paypal/settlement.ts';
import { reportOf, SearchPage, type TransactionInfo } from '../../src/gateways/paypal/transaction-search.ts';
import type { SettlementLine } from '../../src/gateways/settlement.ts';
import { getPayout, lineMatch } from '../../src/settlement/read.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

const fixture = (name: string) =>
  JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../fixtures/paypal', name), 'utf8'));

/** The real Transaction Search page of a donation, its partner fee and the withdrawal (test/fixtures/paypal/SOURCES.md). */
const page = SearchPage.parse(fixture('api.reporting.transactions.donation_partner_fee_withdrawal.json'));
const row = (code: string): TransactionInfo => {
  const found = page.transaction_details.find((d) => d.transaction_info.transaction_event_code === code);
  if (!found) throw new Error(`no ${code} row in the fixture`);
  return found.transaction_info;
};
/** The T0013 donation of 50.00 (PayPal's fee 1.49), its T0113 partner fee of 0.88, and the T0403 withdrawal of 47.63. */
const payment = row('T0013');
const partnerFee = row('T0113');
const withdrawal = row('T0403');
const CAPTURE = payment.transaction_id;

let db: Db;
beforeEach(async () => {
  db = await moneyCoreDatabase();
});
afterEach(() => db?.destroy());

/** The donation as billhook's succeeded PayPal charge of 5000 USD (its capture the T0013 row's id). */
async function donationCharged() {
  const { transaction } = await succeededCharge(db, {
    currency: 'USD',
    amount: 5000n,
    gateway: 'paypal',
    gatewayTransactionId: CAPTURE,
  });
  return transaction;
}

/** Records one Transaction Search sweep of `rows` (a window) on PayPal's default account. */
const sweep = (...rows: TransactionInfo[]) =>
  recordSettlementReport(db, 'system', { gateway: 'paypal', gatewayAccount: null }, reportOf(rows));

/**
 * The donation's `PAYMENT.CAPTURE.COMPLETED` line as the webhook path records it: the real simulator
 * capture (its breakdown with `platform_fees`) made about this donation: gross 50.00, PayPal's fee
 * 1.49, platform fees 0.88, net 47.63.
 */
function captureWebhookLine() {
  const resource = fixture('webhook.PAYMENT.CAPTURE.COMPLETED.simulator-signed.body.json').resource;
  const breakdown = resource.seller_receivable_breakdown;
  resource.id = CAPTURE;
  resource.amount.value = '50.00';
  breakdown.gross_amount.value = '50.00';
  breakdown.paypal_fee.value = '1.49';
  breakdown.platform_fees[0].amount.value = '0.88';
  breakdown.net_amount.value = '47.63';
  const line = captureLine(resource, new Date());
  expect(line).toMatchObject({ gross: 5000n, fee: 237n, net: 4763n, partnerFee: 88n });
  return applyAsBatch(
    db,
    canonicalEvent({
      type: 'settlement.line',
      gateway: 'paypal',
      amount: 5000n,
      currency: 'USD',
      settlementLine: line,
    }),
  );
}

/** The USD clearing, gateway fees and bank balances of PayPal's default account (minor units, 0n when none). */
async function paypalBooks() {
  const books = await booksIn(db, 'USD');
  return {
    clearing: books['gateway_clearing:paypal'] ?? 0n,
    fees: books['gateway_fees:paypal'] ?? 0n,
    bank: books['bank:paypal'] ?? 0n,
  };
}

/** The reconciliation exceptions raised, by kind and settlement line's gateway id. */
async function exceptions() {
  return db
    .selectFrom('reconciliation_exceptions as x')
    .leftJoin('settlement_lines as l', 'l.id', 'x.settlement_line_id')
    .select(['x.kind', 'x.status', 'l.gateway_line_id'])
    .execute();
}

/**
 * PayPal's balance history swept by Transaction Search (PRODUCT §13): a payment, the partner fee
 * taken from it, and the withdrawal of what was left to the bank. Worked by hand from the rows, USD
 * minor units: the payment of 50.00 with PayPal's fee 1.49 (gross 5000, fee 149), the T0113 partner
 * fee of 0.88 on it (paypal_reference_id = the payment: 88 more out of the balance), and the
 * withdrawal of 47.63 = 5000 - 149 - 88. Booked, whichever way the rows come: clearing +5000 (the
 * payment), -149 and -88 to gateway fees (237, each once), -4763 to the bank: clearing 0.
 */
describe('a PayPal payment with a partner fee, withdrawn to the bank', () => {
  const withdrawn = { clearing: 0n, fees: 237n, bank: 4763n };

  it('books the partner fee, so the withdrawal leaves clearing at 0', async () => {
    await donationCharged();
    await sweep(payment, partnerFee, withdrawal);
    expect(await paypalBooks()).toEqual(withdrawn);
    expect(await exceptions()).toEqual([]);
  });

  /*
   * The payment swept in one window (fee 149), its partner fee and the withdrawal in the next: the
   * partner fee is booked against the payment already settled (88), clearing 0. It used to be left
   * out of the second sweep without a word: fees 149, clearing 88.
   */
  it('books a partner fee swept in another window than its payment, once', async () => {
    await donationCharged();
    await sweep(payment);
    expect(await paypalBooks()).toEqual({ clearing: 4851n, fees: 149n, bank: 0n });
    await sweep(partnerFee, withdrawal);
    expect(await paypalBooks()).toEqual(withdrawn);
    // Overlapping windows list the partner fee again, beside its payment, and the payment again.
    await sweep(payment, partnerFee, withdrawal);
    await sweep(partnerFee);
    expect(await paypalBooks()).toEqual(withdrawn);
    const lines = await db.selectFrom('settlement_lines').select(['gateway_line_id', 'kind']).execute();
    expect(lines.map((l) => `${l.kind} ${l.gateway_line_id}`).sort()).toEqual([
      `charge ${CAPTURE}`,
      `fee ${partnerFee.transaction_id}`,
    ]);
    expect(await exceptions()).toEqual([]);
  });

  /*
   * The partner fee swept first with its payment, then again alone in an overlapping window: 88 once.
   * And the payment swept again alone later: nothing more.
   */
  it('books a partner fee seen in two overlapping windows once', async () => {
    await donationCharged();
    await sweep(payment, partnerFee);
    await sweep(partnerFee, withdrawal);
    await sweep(payment);
    expect(await paypalBooks()).toEqual(withdrawn);
  });

  /*
   * The capture's webhook line first, its fee counting the platform fee (149 + 88 = 237); the sweep
   * then lists the T0113 row apart from its payment: the 88 was booked with the capture, so nothing
   * more (fees 237, not 325), and no exception.
   */
  it('books nothing more for a partner fee the capture webhook’s line already counted', async () => {
    await donationCharged();
    expect(await captureWebhookLine()).toMatchObject({ kind: 'applied' });
    await sweep(partnerFee, withdrawal);
    await sweep(payment, partnerFee);
    expect(await paypalBooks()).toEqual(withdrawn);
    expect(await exceptions()).toEqual([]);
  });

  /*
   * The partner fee swept before the capture's webhook line arrives: 88 booked with the T0113 row;
   * the webhook's line then books its fee less the partner fee already booked (237 - 88 = 149).
   */
  it('books the capture webhook’s line without the partner fee its sweep booked first', async () => {
    await donationCharged();
    await sweep(partnerFee);
    expect(await paypalBooks()).toEqual({ clearing: 4912n, fees: 88n, bank: 0n });
    expect(await captureWebhookLine()).toMatchObject({ kind: 'applied' });
    await sweep(withdrawal);
    expect(await paypalBooks()).toEqual(withdrawn);
  });

  /*
   * A partner fee of a payment billhook does not know: nothing is booked (fees 0) and a
   * settlement_line_unmatched exception names it for a person. Once the payment is known, the next
   * sweep books the 88 against it and resolves the exception.
   */
  it('raises an exception for a partner fee of an unknown payment, and books it once the payment is known', async () => {
    await sweep(partnerFee);
    expect(await paypalBooks()).toEqual({ clearing: 0n, fees: 0n, bank: 0n });
    expect(await exceptions()).toEqual([
      { kind: 'settlement_line_unmatched', status: 'open', gateway_line_id: partnerFee.transaction_id },
    ]);
    const [raised] = await db.selectFrom('reconciliation_exceptions').select('message').execute();
    expect(raised?.message).toMatch(new RegExp(`partner fee of ${CAPTURE}`));

    await donationCharged();
    await sweep(payment);
    await sweep(withdrawal);
    expect(await paypalBooks()).toEqual(withdrawn);
    expect(await exceptions()).toEqual([
      { kind: 'settlement_line_unmatched', status: 'resolved', gateway_line_id: partnerFee.transaction_id },
    ]);
  });
});

/*
 * The capture's webhook line on PayPal's default account (fee 237 = 149 + platform fees 88), its T0113
 * row swept on a gateway account (gwa_…) of the same PayPal account (configured as one after the env
 * default): the 88 was booked with the capture, under the default account's fees. The T0113 line names
 * a payment of the default account, so on gwa_moved it matches nothing (a line books only on its own
 * account's payments): unmatched for a person, naming both accounts, and booked nowhere. It once
 * booked 88 + 149 = 237 more (fees 474 for a payment whose fees were 237), then, matched across
 * accounts, nothing.
 */
describe('a PayPal partner fee swept on another gateway account than its payment’s line', () => {
  it('is unmatched there and books nothing: the partner fee is booked once', async () => {
    await donationCharged();
    expect(await captureWebhookLine()).toMatchObject({ kind: 'applied' });
    await db
      .insertInto('gateway_accounts')
      .values({
        id: 'gwa_moved',
        gateway: 'paypal',
        name: 'moved',
        mode: 'test',
        api_base: null,
        credentials: Buffer.from('x'),
        credentials_key_id: 'k',
        credentials_last4: '{}',
      })
      .execute();
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'paypal', gatewayAccount: 'gwa_moved' },
      reportOf([partnerFee]),
    );
    const lines = await db
      .selectFrom('settlement_lines')
      .select(['kind', 'gateway_account', 'transaction_id'])
      .orderBy('kind')
      .execute();
    expect(lines).toEqual([
      { kind: 'charge', gateway_account: null, transaction_id: expect.stringMatching(/^txn_/) },
      { kind: 'fee', gateway_account: 'gwa_moved', transaction_id: null },
    ]);
    const books = await booksIn(db, 'USD');
    expect(books['gateway_fees:paypal']).toBe(237n);
    expect(books['gateway_fees:paypal:gwa_moved'] ?? 0n).toBe(0n);
    expect(books['gateway_clearing:paypal:gwa_moved'] ?? 0n).toBe(0n);
    const raised = await db.selectFrom('reconciliation_exceptions').select(['kind', 'message']).execute();
    expect(raised).toEqual([
      {
        kind: 'settlement_line_unmatched',
        message: expect.stringContaining(
          `of gateway account paypal:gwa_moved names ${CAPTURE} of gateway account paypal: matched to nothing`,
        ),
      },
    ]);
  });
});

/*
 * A T0113 row of money into the balance (a partner fee given back, e.g. with a refund whose
 * payment_instruction returns platform_fees), in a window without its payment: the sweep goes on
 * (the withdrawal beside it is recorded), and the 0.88 is a partner fee line naming the payment,
 * given back from gateway fees. The sweep used to throw for it (PaypalSettlementError) and record
 * nothing of the window, nor of any overlapping one; then it was an adjustment booked on top of a
 * refund line giving the same fee back (below).
 */
describe('a PayPal partner fee given back', () => {
  it('is a partner fee line of its payment given back from gateway fees, and the rest of the sweep is recorded', async () => {
    await donationCharged();
    const back = { ...partnerFee, transaction_id: '9PARTNERFEEBACK01' };
    back.transaction_amount = { currency_code: 'USD', value: '0.88' };
    await sweep(back, withdrawal);
    const lines = await db
      .selectFrom('settlement_lines')
      .select(['kind', 'gross', 'partner_fee', 'gateway_transaction_id'])
      .execute();
    expect(lines).toEqual([{ kind: 'fee', gross: 88n, partner_fee: 88n, gateway_transaction_id: CAPTURE }]);
    expect(await db.selectFrom('payouts').select('amount').execute()).toEqual([{ amount: 4763n }]);
    const books = await booksIn(db, 'USD');
    expect(books['gateway_fees:paypal']).toBe(-88n);
    expect(books['settlement_adjustments:paypal'] ?? 0n).toBe(0n);
  });
});

/*
 * PayPal's simulator capture (USD 30.00, PayPal's fee 1.54, platform fee 2.00, net 26.46), refunded
 * whole with both fees given back (the refund's seller_payable_breakdown: net 26.46 debited), then
 * the sweep's T0113 row of +2.00 naming the capture: one movement of money reported twice. PayPal's
 * balance: +2646 − 2646 = 0. The books used to keep clearing +200 and settlement adjustments −200
 * (the refund line gave the 200 back in its fee, the T0113 row booked it again as an adjustment).
 */
describe('a PayPal partner fee given back with a refund', () => {
  const SIMULATED = '12A34567BC123456S';
  const REFUND = '1Y107995YT783435V';

  async function capturedAndRefunded() {
    await succeededCharge(db, {
      currency: 'USD',
      amount: 3000n,
      gateway: 'paypal',
      gatewayTransactionId: SIMULATED,
    });
    const charged = captureLine(
      fixture('webhook.PAYMENT.CAPTURE.COMPLETED.simulator-signed.body.json').resource,
      new Date(),
    );
    expect(charged).toMatchObject({ gross: 3000n, fee: 354n, net: 2646n, partnerFee: 200n });
    const line = (settlementLine: SettlementLine | undefined) =>
      canonicalEvent({
        type: 'settlement.line',
        gateway: 'paypal',
        amount: 3000n,
        currency: 'USD',
        settlementLine,
      });
    await applyAsBatch(db, line(charged));
    await applyAsBatch(
      db,
      canonicalEvent({
        type: 'refund.succeeded',
        gateway: 'paypal',
        gatewayTransactionId: SIMULATED,
        gatewayRefundId: REFUND,
        amount: 3000n,
        currency: 'USD',
      }),
    );
    const refund = fixture('webhook.PAYMENT.CAPTURE.REFUNDED.simulator-signed.body.json').resource;
    refund.amount.value = '30.00';
    refund.seller_payable_breakdown = {
      gross_amount: { currency_code: 'USD', value: '30.00' },
      paypal_fee: { currency_code: 'USD', value: '1.54' },
      platform_fees: [{ amount: { currency_code: 'USD', value: '2.00' } }],
      net_amount: { currency_code: 'USD', value: '26.46' },
      total_refunded_amount: { currency_code: 'USD', value: '30.00' },
    };
    refund.links[1].href = `https://api.paypal.com/v2/payments/captures/${SIMULATED}`;
    return { refunded: refundLine(refund, 'refund', new Date()), line };
  }

  const givenBack: TransactionInfo = {
    transaction_id: '9PARTNERFEEBACK01',
    paypal_reference_id: SIMULATED,
    transaction_event_code: 'T0113',
    transaction_initiation_date: new Date('2026-11-02T10:00:00Z'),
    transaction_amount: { currency_code: 'USD', value: '2.00' },
    transaction_status: 'S',
  };

  it('refund line first: the 2.00 comes back once, clearing and adjustments 0', async () => {
    const { refunded, line } = await capturedAndRefunded();
    expect(refunded).toMatchObject({ gross: -3000n, fee: -354n, net: -2646n, partnerFee: 200n });
    expect((await applyAsBatch(db, line(refunded))).kind).toBe('applied');
    expect((await booksIn(db, 'USD'))['gateway_clearing:paypal']).toBe(0n);
    await sweep(givenBack);
    const books = await booksIn(db, 'USD');
    expect({
      clearing: books['gateway_clearing:paypal'] ?? 0n,
      fees: books['gateway_fees:paypal'] ?? 0n,
      adjustments: books['settlement_adjustments:paypal'] ?? 0n,
    }).toEqual({ clearing: 0n, fees: 0n, adjustments: 0n });
    expect(await db.selectFrom('reconciliation_exceptions').select('kind').execute()).toEqual([]);
  });

  it('T0113 row first: the refund line then gives back only PayPal’s own fee', async () => {
    const { refunded, line } = await capturedAndRefunded();
    await sweep(givenBack);
    expect((await booksIn(db, 'USD'))['gateway_fees:paypal']).toBe(154n);
    await applyAsBatch(db, line(refunded));
    const books = await booksIn(db, 'USD');
    expect({
      clearing: books['gateway_clearing:paypal'] ?? 0n,
      fees: books['gateway_fees:paypal'] ?? 0n,
    }).toEqual({ clearing: 0n, fees: 0n });
  });
});

/*
 * How a partner fee line reads (GET /v1/payouts/:id): about its payment (the transaction, once
 * billhook knows it), and counted among a payout's unmatched lines until then. It used to read as a
 * plain fee (matched null) and never count as unmatched.
 */
describe('a PayPal partner fee line as settlement reads it', () => {
  it('names its payment once matched, and counts as unmatched until then', async () => {
    await sweep(partnerFee, withdrawal);
    const payout = await db.selectFrom('payouts').select('id').executeTakeFirstOrThrow();
    // PayPal's withdrawals list no lines: the fee line is put on the payout to read its summary.
    await db.updateTable('settlement_lines').set({ payout_id: payout.id }).execute();
    const before = await getPayout(db, payout.id);
    expect(before.summary.unmatchedLines).toBe(1);
    expect(before.lines.map(lineMatch)).toEqual([{ matched: null, unmatched: true }]);

    const transaction = await donationCharged();
    await sweep(payment);
    const after = await getPayout(db, payout.id);
    expect(after.summary.unmatchedLines).toBe(0);
    expect(after.lines.map(lineMatch)).toEqual([{ matched: transaction.id, unmatched: false }]);
  });
});
