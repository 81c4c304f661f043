import { readFileSync } from 'node:fs';
import path from 'node:path';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PAID, securepayFixture } from '../gateways/securepay/fixtures.ts';
import { ADMIN_KEY, type TestApp } from '../support/app.ts';
import { ledgerByCode, openInvoice } from '../support/flow.ts';
import { countEntries } from '../support/money-core.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';

const API = 'https://payments.securepay.settlement.test';
const AUTH_ORIGIN = 'https://auth.securepay.settlement.test';
const CUSTOMER_CODE = PAID.customerCode as string;
const PAYMENTS = `/v2/customers/${CUSTOMER_CODE}/payments`;
const SECUREPAY_ENV = {
  SECUREPAY_CLIENT_ID: 'sp-settlement-client',
  SECUREPAY_CLIENT_SECRET: 'sp-settlement-secret',
  SECUREPAY_MERCHANT_CODE: '5AR0055',
  SECUREPAY_API_BASE: API,
  SECUREPAY_AUTH_URL: `${AUTH_ORIGIN}/oauth/token`,
};

/**
 * The example settlement file of docs/settlement-csv.md (test/fixtures/settlement/billhook-format.csv):
 * payout SP-20261103 (charges of 100.00 and 49.50 less a 25.00 refund of the first, fees 1.75 and
 * 0.87), payout SP-20261104 of 160.88 (a 165.00 charge, fee 2.89, less a 1.23 monthly fee), and an
 * 80.00 charge (fee 1.40) not yet paid out. Its made-up `txn_…` / `re_…` ids, in that order.
 */
const EXAMPLE = readFileSync(
  path.resolve(import.meta.dirname, '../fixtures/settlement/billhook-format.csv'),
  'utf8',
);
const EXAMPLE_IDS = {
  first: 'txn_3mQ8c1WcKx2PZv9aTq4Lb7sN',
  second: 'txn_9Xr2Lk7PqW3nZc8vB1mT6yHd',
  third: 'txn_7Tc4Vb9Nm2Qx8Lw3Kp6Zr1Jh',
  unpaid: 'txn_2Bv6Nc1Xz8Lk4Qw7Pm3Tr9Yd',
  refund: 're_5Hq2Wn8Ls3Kd7Pz1Vc4Xm9Tb',
};

const HEADER =
  'payout_id,payout_status,payout_date,arrival_date,payout_amount,line_id,kind,gateway_transaction_id,currency,gross,fee,net,occurred_at';

/**
 * Settlement end to end for SecurePay, by import (issue #25, PRODUCT.md §13): charges and a refund
 * made through billhook's API, then their settlement report imported with
 * `POST /v1/settlements/import?format=securepay` (the documented example file with the ids of those
 * charges and that refund): the payouts are paid with their lines matched, fees in gateway fees,
 * clearing keeps only what was not paid out, the report balances with the expected numbers, and the
 * same file twice changes nothing. A payout with a line billhook cannot match, and one whose lines do
 * not sum to its amount, each raise their exception for a person.
 */
describe('SecurePay settlement end to end: charges, a refund, an imported settlement report', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp(SECUREPAY_ENV);
  });
  afterEach(expectEveryMockUsed);
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** An AUD invoice paid with the stored card, SecurePay answering the constructed `paid` payment. */
  async function charge(amount: number) {
    const { invoice } = await openInvoice(app, {
      amount,
      currency: 'aud',
      gateway: 'securepay',
      token: PAID.token as string,
      gatewayCustomerId: CUSTOMER_CODE,
    });
    nock(AUTH_ORIGIN)
      .post('/oauth/token')
      .optionally()
      .reply(200, securepayFixture('oauth.token.constructed.json'));
    nock(API)
      .post(PAYMENTS)
      .reply(async (request: Request) => {
        const body = (await request.json()) as { orderId: string; amount: number };
        return [201, { ...PAID, orderId: body.orderId, amount: body.amount }];
      });
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({ status: 'succeeded', amount });
    return charged.body as { invoice: { id: string }; transaction: { id: string } };
  }

  /** A refund of `amount` of a charged invoice, SecurePay answering the constructed `paid` refund. */
  async function refund(paid: { invoice: { id: string }; transaction: { id: string } }, amount: number) {
    nock(API)
      .post(`/v2/orders/${paid.transaction.id}/refunds`)
      .reply(201, {
        ...securepayFixture('api.orders.refunds.paid.constructed.json'),
        orderId: paid.transaction.id,
        amount,
      });
    const refunded = await app.api('POST', `/v1/invoices/${paid.invoice.id}/refund`, { amount });
    expect(refunded.body).toMatchObject({ status: 'succeeded', amount });
    return refunded.body as { id: string; gateway_refund_id: string };
  }

  const importFile = (file: string): Promise<{ status: number; body: any }> =>
    fetch(`${app.url}/v1/settlements/import?gateway=securepay&format=securepay`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'text/csv' },
      body: file,
    }).then(async (res) => ({ status: res.status, body: await res.json() }));

  const payoutOf = async (gatewayPayoutId: string) => {
    const list = await app.api('GET', '/v1/payouts?gateway=securepay&limit=100');
    const found = list.body.data.find(
      (p: { gateway_payout_id: string }) => p.gateway_payout_id === gatewayPayoutId,
    );
    return (await app.api('GET', `/v1/payouts/${found.id}`)).body;
  };

  const report = async (from: string) => {
    const to = new Date(Date.now() + 60_000).toISOString();
    const answer = await app.api(
      'GET',
      `/v1/reports/settlement?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&gateway=securepay`,
    );
    expect(answer.status).toBe(200);
    return answer.body.data;
  };

  const from = new Date(Date.now() - 60_000).toISOString();

  it('books the imported payouts against the charges and the refund; clearing keeps only what was not paid out; the report balances; the same file twice changes nothing', async () => {
    const first = await charge(10_000);
    const second = await charge(4_950);
    const third = await charge(16_500);
    const unpaid = await charge(8_000);
    const refunded = await refund(first, 2_500);
    // SecurePay gives a refund no id of its own: billhook's re_… is its gateway_refund_id.
    expect(refunded.gateway_refund_id).toBe(refunded.id);

    // The example file with the ids of these charges and this refund in place of its made-up ones.
    const file = EXAMPLE.replaceAll(EXAMPLE_IDS.first, first.transaction.id)
      .replaceAll(EXAMPLE_IDS.second, second.transaction.id)
      .replaceAll(EXAMPLE_IDS.third, third.transaction.id)
      .replaceAll(EXAMPLE_IDS.unpaid, unpaid.transaction.id)
      .replaceAll(EXAMPLE_IDS.refund, refunded.id);
    const imported = await importFile(file);
    expect(imported.status).toBe(200);
    expect(imported.body).toMatchObject({
      gateway: 'securepay',
      format: 'securepay',
      read: { lines: 6, payouts: 2 },
      recorded: { lines: 1, payouts: 2, unmatched: 0 },
    });

    const november3 = await payoutOf('SP-20261103');
    expect(november3).toMatchObject({
      status: 'paid',
      currency: 'AUD',
      amount: 12_188,
      gross: 14_950,
      fees: 262,
      refunds: -2_500,
      net: 12_188,
      line_count: 3,
      unmatched_lines: 0,
      arrival_date: '2026-11-04T00:00:00.000Z',
    });
    expect(
      november3.lines.map((l: { kind: string; matched: string; net: number }) => [l.kind, l.matched, l.net]),
    ).toEqual([
      ['charge', first.transaction.id, 9_825],
      ['charge', second.transaction.id, 4_863],
      ['refund', refunded.id, -2_500],
    ]);
    const november4 = await payoutOf('SP-20261104');
    expect(november4).toMatchObject({
      amount: 16_088,
      gross: 16_500,
      fees: 412,
      net: 16_088,
      line_count: 2,
      unmatched_lines: 0,
    });
    expect(november4.lines.map((l: { kind: string; matched: string | null }) => [l.kind, l.matched])).toEqual(
      [
        ['charge', third.transaction.id],
        ['fee', null],
      ],
    );

    // Paid out: everything but the 80.00 charge, whose fee (1.40) is known; 78.60 still to come.
    const books = await ledgerByCode(app);
    expect(books).toMatchObject({
      'gateway_clearing:securepay AUD': 7_860,
      'gateway_fees:securepay AUD': 814,
      'payouts_in_transit:securepay AUD': 0,
      'bank:securepay AUD': 28_276,
    });
    expect(await report(from)).toEqual([
      {
        gateway: 'securepay',
        gateway_account: null,
        currency: 'AUD',
        clearing: {
          opening: 0,
          charges: 39_450,
          refunds: -2_500,
          disputes: 0,
          fees: -814,
          conversions: 0,
          adjustments: 0,
          payouts: -28_276,
          other: 0,
          closing: 7_860,
          balances: true,
        },
        gateway_fees: { opening: 0, movements: 814, closing: 814 },
        fx: { opening: 0, movements: 0, closing: 0 },
        payouts_in_transit: { opening: 0, movements: 0, closing: 0 },
        bank: { opening: 0, movements: 28_276, closing: 28_276 },
      },
    ]);

    const entries = await countEntries(app.runtime.db);
    const again = await importFile(file);
    expect(again.body).toMatchObject({
      sha256: imported.body.sha256,
      read: { lines: 6, payouts: 2 },
      recorded: { lines: 0, payouts: 0, unmatched: 0 },
    });
    expect(await countEntries(app.runtime.db)).toBe(entries);
    expect(await ledgerByCode(app)).toEqual(books);

    // The next report pays out the 80.00 charge: the same row (so the same derived line id) in a payout.
    const unpaidRow = file.split('\r\n').find((row) => row.includes(unpaid.transaction.id))!;
    const next = await importFile(
      `${file.split('\r\n')[0]}\r\n${unpaidRow.replace(/^,,,,/, 'SP-20261105,paid,2026-11-05,2026-11-06,')}`,
    );
    expect(next.body).toMatchObject({ read: { lines: 1, payouts: 1 }, recorded: { lines: 0, payouts: 1 } });
    expect(await payoutOf('SP-20261105')).toMatchObject({
      amount: 7_860,
      gross: 8_000,
      fees: 140,
      net: 7_860,
    });
    // Its fee was booked once, with the first file: everything is paid out now.
    expect(await ledgerByCode(app)).toMatchObject({
      'gateway_clearing:securepay AUD': 0,
      'gateway_fees:securepay AUD': 814,
      'bank:securepay AUD': 36_136,
    });
    expect((await app.api('GET', '/v1/reconciliation-exceptions?gateway=securepay')).body.data).toEqual([]);
  });

  it('matches refund rows that name only their order and amount (SecurePay gives refunds no id), each to its own refund', async () => {
    const paid = await charge(6_000);
    const early = await refund(paid, 1_500);
    const late = await refund(paid, 1_500);
    // As a finance person fills the file from SecurePay's report: the order id, no refund id.
    const file = [
      HEADER,
      `SP-REFUNDS,paid,2026-11-08,2026-11-09,,SP-LINE-8001,charge,${paid.transaction.id},AUD,60.00,1.05,58.95,2026-11-07T09:00:00+11:00`,
      `SP-REFUNDS,paid,2026-11-08,2026-11-09,,SP-LINE-8002,refund,${paid.transaction.id},AUD,-15.00,0,-15.00,2026-11-07T10:00:00+11:00`,
      `SP-REFUNDS,paid,2026-11-08,2026-11-09,,SP-LINE-8003,refund,${paid.transaction.id},AUD,-15.00,0,-15.00,2026-11-07T11:00:00+11:00`,
    ].join('\n');
    const imported = await importFile(file);
    expect(imported.body).toMatchObject({
      read: { lines: 3, payouts: 1 },
      recorded: { payouts: 1, unmatched: 0 },
    });
    const payout = await payoutOf('SP-REFUNDS');
    expect(payout).toMatchObject({ amount: 2_895, refunds: -3_000, net: 2_895, unmatched_lines: 0 });
    expect(payout.lines.map((l: { kind: string; matched: string }) => [l.kind, l.matched])).toEqual([
      ['charge', paid.transaction.id],
      ['refund', early.id],
      ['refund', late.id],
    ]);
    expect((await app.api('GET', `/v1/reconciliation-exceptions?payout=${payout.id}`)).body.data).toEqual([]);
  });

  it('raises settlement_line_unmatched for a payout line billhook cannot match and payout_lines_mismatch for a payout its lines do not sum to; the report still balances', async () => {
    const paid = await charge(4_000);
    const file = [
      HEADER,
      // A charge billhook never made.
      'SP-UNKNOWN,paid,2026-11-06,2026-11-07,,SP-LINE-9001,charge,txn_notbillhooks0000000000000,AUD,12.00,0.21,11.79,2026-11-05T10:00:00+11:00',
      // A deposit of 50.00 whose one line nets 39.30.
      `SP-SHORT,paid,2026-11-06,2026-11-07,50.00,SP-LINE-9002,charge,${paid.transaction.id},AUD,40.00,0.70,39.30,2026-11-05T11:00:00+11:00`,
    ].join('\n');
    const imported = await importFile(file);
    expect(imported.body).toMatchObject({
      read: { lines: 2, payouts: 2 },
      recorded: { payouts: 2, unmatched: 1 },
    });

    const unknown = await payoutOf('SP-UNKNOWN');
    expect(unknown).toMatchObject({ amount: 1_179, unmatched_lines: 1 });
    expect(unknown.lines).toEqual([expect.objectContaining({ matched: null, unmatched: true })]);
    const unmatched = await app.api('GET', `/v1/reconciliation-exceptions?payout=${unknown.id}`);
    expect(unmatched.body.data).toEqual([
      expect.objectContaining({ kind: 'settlement_line_unmatched', status: 'open', gateway: 'securepay' }),
    ]);

    const short = await payoutOf('SP-SHORT');
    expect(short).toMatchObject({ amount: 5_000, net: 3_930, unmatched_lines: 0 });
    const mismatch = await app.api('GET', `/v1/reconciliation-exceptions?payout=${short.id}`);
    expect(mismatch.body.data).toEqual([
      expect.objectContaining({ kind: 'payout_lines_mismatch', status: 'open', gateway: 'securepay' }),
    ]);
    expect(mismatch.body.data[0].message).toMatch(/is 5000 AUD but its lines' nets sum to 3930/);

    // What the books say now: both deposits left clearing whatever their lines, and it still adds up.
    const [row] = await report(from);
    expect(row.clearing.balances).toBe(true);
    const c = row.clearing;
    expect(c.opening + c.charges + c.refunds + c.disputes + c.fees + c.payouts + c.other).toBe(c.closing);
    expect(c).toMatchObject({
      charges: 49_450,
      fees: -989,
      payouts: -(28_276 + 7_860 + 2_895 + 1_179 + 5_000),
    });
  });
});
