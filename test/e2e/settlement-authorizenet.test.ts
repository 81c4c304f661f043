import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  API_PATH,
  type ApiBody,
  anetFixture,
  LOGIN_ID,
  nockApi,
  TRANSACTION_KEY,
  withBom,
} from '../gateways/authorizenet/support.ts';
import type { TestApp } from '../support/app.ts';
import { cli } from '../support/cli.ts';
import { ledgerByCode, openInvoice } from '../support/flow.ts';
import { countEntries } from '../support/money-core.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';

const BASE = 'https://authorizenet.settlement.e2e.test';
const TOKEN = '40338125/1000177237';
const ANET_ENV = {
  AUTHORIZENET_API_LOGIN_ID: LOGIN_ID,
  AUTHORIZENET_TRANSACTION_KEY: TRANSACTION_KEY,
  AUTHORIZENET_API_BASE: BASE,
};

/** The real getTransactionList sample: batch 1221577's one charge, transId 2162566217, 1018.88. */
const LIST_1221577 = anetFixture('api.getTransactionList.json');
const CHARGE_A = LIST_1221577.transactions[0].transId as string;
/** The transId of the real refund approval (api.createTransaction.refund.approved.json). */
const REFUND_R = anetFixture('api.createTransaction.refund.approved.json').transactionResponse
  .transId as string;
/** Charges of batch 3990090, whose transactions no public sample lists: ids of our choosing. */
const CHARGE_B = '2228000001';
const CHARGE_C = '2228000002';
/** A charge no batch has settled yet. */
const CHARGE_D = '2228000003';
/** A refund of charge C, settled on its own in a later batch (the real refund approval, another transId). */
const REFUND_S = '2230581368';

/**
 * The settled batches Authorize.Net answers (getSettledBatchList with statistics):
 * - 1221577, as the real getBatchStatistics sample has it (its batchDetailsType, a settled batch of
 *   one 1018.88 charge, whose transactions the real getTransactionList sample lists);
 * - 3990090, the second batch of the real getSettledBatchList sample (MasterCard 19.95 and Visa 5.00
 *   charged), with a 10.00 MasterCard refund added to its statistics (no public sample shows a batch
 *   holding a refund: test/fixtures/authorizenet/SOURCES.md);
 * - 3990100, a refund-only batch (`refundOnlyBatch`).
 */
function settledBatches() {
  const list = anetFixture('api.getSettledBatchList.json');
  const batch3990090 = list.batchList[1];
  Object.assign(batch3990090.statistics[0], { refundAmount: 10.0, refundCount: 1 });
  return {
    batchList: [anetFixture('api.getBatchStatistics.json').batch, batch3990090, refundOnlyBatch()],
    messages: list.messages,
  };
}

/**
 * Batch 3990100: the real sample's batch 3990090 a day later, holding only a 2.00 Visa refund, so its
 * statistics charge nothing and refund more: a payout of -2.00, which Authorize.Net debits from the bank.
 */
function refundOnlyBatch() {
  const batch = anetFixture('api.getSettledBatchList.json').batchList[1];
  Object.assign(batch, {
    batchId: '3990100',
    settlementTimeUTC: '2015-01-03T08:55:35Z',
    settlementTimeLocal: '2015-01-03T01:55:35',
  });
  batch.statistics = [
    { ...batch.statistics[1], chargeAmount: 0, chargeCount: 0, refundAmount: 2.0, refundCount: 1 },
  ];
  return batch;
}

/**
 * Batch 3990090's transactions, each the real getTransactionList entry with its id, amount, card type
 * and status changed: charges B (19.95, MasterCard) and C (5.00, Visa), and refund R (10.00 of charge
 * A, `refundSettledSuccessfully`).
 */
function list3990090() {
  const entry = (change: Record<string, unknown>) => ({ ...LIST_1221577.transactions[0], ...change });
  return {
    transactions: [
      entry({ transId: CHARGE_B, settleAmount: 19.95, submitTimeUTC: '2015-01-01T10:00:00Z' }),
      entry({
        transId: CHARGE_C,
        settleAmount: 5.0,
        accountType: 'Visa',
        submitTimeUTC: '2015-01-01T11:00:00Z',
      }),
      entry({
        transId: REFUND_R,
        transactionStatus: 'refundSettledSuccessfully',
        settleAmount: 10.0,
        submitTimeUTC: '2015-01-01T12:00:00Z',
      }),
    ],
    messages: LIST_1221577.messages,
  };
}

/** Authorize.Net answering one settlement sweep: the batches, each batch's transactions, the account's currency. */
function authorizenetSettles(): ApiBody[] {
  const seen: ApiBody[] = [];
  nockApi(BASE, 'getSettledBatchListRequest', settledBatches(), () => true, seen);
  nockApi(BASE, 'getTransactionListRequest', LIST_1221577, (r) => r.batchId === '1221577', seen);
  nockApi(BASE, 'getTransactionListRequest', list3990090(), (r) => r.batchId === '3990090', seen);
  const refundOnly = {
    transactions: [
      {
        ...LIST_1221577.transactions[0],
        transId: REFUND_S,
        transactionStatus: 'refundSettledSuccessfully',
        accountType: 'Visa',
        settleAmount: 2.0,
        submitTimeUTC: '2015-01-02T15:00:00Z',
      },
    ],
    messages: LIST_1221577.messages,
  };
  nockApi(BASE, 'getTransactionListRequest', refundOnly, (r) => r.batchId === '3990100', seen);
  nock(BASE)
    .post(API_PATH, (body: ApiBody) => 'getMerchantDetailsRequest' in body)
    .reply(200, withBom(anetFixture('api.getMerchantDetails.json')));
  return seen;
}

/**
 * Settlement end to end for Authorize.Net (issue #25, PRODUCT.md §13): charges and refunds made
 * through billhook's API whose Authorize.Net transaction ids are those of the settled batches (the
 * real samples' ids where a sample lists the transaction), then `billhook settlement sync --gateway
 * authorizenet`: each settled batch is a paid payout of its matched lines, clearing returns to zero
 * for everything paid out, the settlement report balances with the expected numbers, and a second
 * sync changes nothing.
 */
describe('Authorize.Net settlement end to end: charges, refunds, three settled batches', () => {
  let app: TestApp;
  let env: Record<string, string>;
  beforeAll(async () => {
    app = await startOfflineTestApp(ANET_ENV);
    env = { ...ANET_ENV, DATABASE_URL: app.config.DATABASE_URL!, LOG_LEVEL: 'silent' };
  });
  afterEach(expectEveryMockUsed);
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** A USD invoice charged through the customer profile, Authorize.Net answering approved as `transId`. */
  async function charge(amount: number, transId: string) {
    const { invoice } = await openInvoice(app, {
      amount,
      currency: 'usd',
      gateway: 'authorizenet',
      token: TOKEN,
    });
    const approved = anetFixture('api.createTransaction.authCapture.approved.json');
    approved.transactionResponse.transId = transId;
    nockApi(
      BASE,
      'createTransactionRequest',
      approved,
      (r) => r.transactionRequest.transactionType === 'authCaptureTransaction',
    );
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({ status: 'succeeded', gateway_transaction_id: transId });
    return charged.body as { invoice: { id: string }; transaction: { id: string } };
  }

  it('books each settled batch as a paid payout of its matched lines; clearing keeps only the unsettled charge; the report balances; a second sync changes nothing', async () => {
    const from = new Date(Date.now() - 60_000).toISOString();
    const a = await charge(101_888, CHARGE_A);
    const b = await charge(1_995, CHARGE_B);
    const c = await charge(500, CHARGE_C);
    await charge(4_620, CHARGE_D);
    nockApi(
      BASE,
      'createTransactionRequest',
      anetFixture('api.createTransaction.refund.approved.json'),
      (r) => r.transactionRequest.transactionType === 'refundTransaction',
    );
    const refund = await app.api('POST', `/v1/invoices/${a.invoice.id}/refund`, { amount: 1000 });
    expect(refund.body).toMatchObject({ status: 'succeeded', gateway_refund_id: REFUND_R });
    const approvedRefund = anetFixture('api.createTransaction.refund.approved.json');
    approvedRefund.transactionResponse.transId = REFUND_S;
    nockApi(
      BASE,
      'createTransactionRequest',
      approvedRefund,
      (r) => r.transactionRequest.transactionType === 'refundTransaction',
    );
    const later = await app.api('POST', `/v1/invoices/${c.invoice.id}/refund`, { amount: 200 });
    expect(later.body).toMatchObject({ status: 'succeeded', gateway_refund_id: REFUND_S });

    const seen = authorizenetSettles();
    const synced = await cli(['settlement', 'sync', '--gateway', 'authorizenet', '--days', '2'], env);
    expect(synced.stderr).toBe('');
    expect(synced).toMatchObject({ code: 0 });
    expect(synced.stdout).toMatch(
      /authorizenet: 3 payout\(s\) and 0 line\(s\) recorded, 0 line\(s\) unmatched/,
    );
    // One window of the last two days, with statistics; each batch's transactions asked for.
    expect(seen[0]).toMatchObject({ includeStatistics: true });
    expect(seen.slice(1).map((r) => r.batchId)).toEqual(['1221577', '3990090', '3990100']);

    const payouts = await app.api('GET', '/v1/payouts?gateway=authorizenet');
    expect(payouts.body.data.map((p: { gateway_payout_id: string }) => p.gateway_payout_id).sort()).toEqual([
      '1221577',
      '3990090',
      '3990100',
    ]);
    const byBatch = (id: string) =>
      payouts.body.data.find((p: { gateway_payout_id: string }) => p.gateway_payout_id === id);

    const first = await app.api('GET', `/v1/payouts/${byBatch('1221577').id}`);
    expect(first.body).toMatchObject({
      status: 'paid',
      currency: 'USD',
      amount: 101_888,
      gross: 101_888,
      fees: 0,
      refunds: 0,
      net: 101_888,
      lines_known: true,
      line_count: 1,
      unmatched_lines: 0,
      arrival_date: null,
    });
    expect(first.body.lines).toEqual([
      expect.objectContaining({
        kind: 'charge',
        gateway_line_id: CHARGE_A,
        matched: a.transaction.id,
        unmatched: false,
        net: 101_888,
      }),
    ]);

    const second = await app.api('GET', `/v1/payouts/${byBatch('3990090').id}`);
    // Charged 19.95 + 5.00, refunded 10.00: the statistics' charges minus refunds.
    expect(second.body).toMatchObject({
      status: 'paid',
      amount: 1_495,
      gross: 2_495,
      fees: 0,
      refunds: -1_000,
      net: 1_495,
      line_count: 3,
      unmatched_lines: 0,
    });
    expect(
      second.body.lines.map((l: { kind: string; gateway_line_id: string; matched: string; net: number }) => [
        l.kind,
        l.gateway_line_id,
        l.matched,
        l.net,
      ]),
    ).toEqual([
      ['charge', CHARGE_B, b.transaction.id, 1_995],
      ['charge', CHARGE_C, c.transaction.id, 500],
      ['refund', REFUND_R, refund.body.id, -1_000],
    ]);

    // A batch that only refunded: a payout of -2.00, taken back from the bank.
    const third = await app.api('GET', `/v1/payouts/${byBatch('3990100').id}`);
    expect(third.body).toMatchObject({ status: 'paid', amount: -200, gross: 0, refunds: -200, net: -200 });
    expect(third.body.lines).toEqual([
      expect.objectContaining({ kind: 'refund', gateway_line_id: REFUND_S, matched: later.body.id }),
    ]);

    // Everything paid out left clearing: what remains is the 46.20 no batch has settled.
    const books = await ledgerByCode(app);
    expect(books).toMatchObject({
      'gateway_clearing:authorizenet USD': 4_620,
      'payouts_in_transit:authorizenet USD': 0,
      'bank:authorizenet USD': 103_183,
    });
    expect(books['gateway_fees:authorizenet USD'] ?? 0).toBe(0);

    const to = new Date(Date.now() + 60_000).toISOString();
    const report = await app.api(
      'GET',
      `/v1/reports/settlement?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&gateway=authorizenet`,
    );
    expect(report.status).toBe(200);
    expect(report.body.data).toEqual([
      {
        gateway: 'authorizenet',
        gateway_account: null,
        currency: 'USD',
        clearing: {
          opening: 0,
          charges: 109_003,
          refunds: -1_200,
          disputes: 0,
          fees: 0,
          conversions: 0,
          adjustments: 0,
          payouts: -103_183,
          other: 0,
          closing: 4_620,
          balances: true,
        },
        gateway_fees: { opening: 0, movements: 0, closing: 0 },
        fx: { opening: 0, movements: 0, closing: 0 },
        payouts_in_transit: { opening: 0, movements: 0, closing: 0 },
        bank: { opening: 0, movements: 103_183, closing: 103_183 },
      },
    ]);
    const c0 = report.body.data[0].clearing;
    expect(c0.opening + c0.charges + c0.refunds + c0.disputes + c0.fees + c0.payouts + c0.other).toBe(
      c0.closing,
    );

    // The same report from the command line.
    const printed = await cli(
      ['settlement', 'report', '--from', from, '--to', to, '--gateway', 'authorizenet'],
      env,
    );
    expect(printed.code).toBe(0);
    expect(printed.stdout).toMatch(/authorizenet default USD/);
    expect(printed.stdout).toMatch(/clearing closing +4620 +\(still to be paid out\)\n/);
    expect(printed.stdout).toMatch(/bank +103183 +\(closing 103183\)/);
    expect(printed.stdout).not.toMatch(/DOES NOT BALANCE/);

    // The same batches again (the next day's sweep overlaps): nothing new.
    const entries = await countEntries(app.runtime.db);
    authorizenetSettles();
    const again = await cli(['settlement', 'sync', '--gateway', 'authorizenet', '--days', '2'], env);
    expect(again.stdout).toMatch(
      /authorizenet: 0 payout\(s\) and 0 line\(s\) recorded, 0 line\(s\) unmatched/,
    );
    expect(await countEntries(app.runtime.db)).toBe(entries);
    expect(await ledgerByCode(app)).toEqual(books);
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?gateway=authorizenet');
    expect(exceptions.body.data).toEqual([]);
  });
});
