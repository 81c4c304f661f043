import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/queue/queues.ts';
import { EWAY_TEST_KEY, EWAY_TEST_PASSWORD, ewayFixture, FIXTURE_TOKEN } from '../gateways/eway/fixtures.ts';
import type { TestApp } from '../support/app.ts';
import { cli } from '../support/cli.ts';
import { ewayTokenPaymentApproves } from '../support/eway.ts';
import { ledgerByCode, openInvoice } from '../support/flow.ts';
import { countEntries } from '../support/money-core.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { waitFor, wakeWorkers } from '../support/wait.ts';

const EWAY_API_BASE = 'https://eway.settlement.e2e.test';
/** eWAY alone can be asked for settlement data: the daily job asks every gateway that can be. */
const EWAY_ENV = {
  EWAY_API_KEY: EWAY_TEST_KEY,
  EWAY_API_PASSWORD: EWAY_TEST_PASSWORD,
  EWAY_API_BASE,
  STRIPE_SECRET_KEY: '',
};

/**
 * One day of eWAY settlement with fees and a refund (api.settlement_search.refund_fees.constructed.json:
 * the real settlement 85e4c36a… of eway-rapid-ruby's test day with the fee fields of eway-rapid-php's):
 * purchases 12189063 (64.00), 12189930 and 12189936 (10.00 each), refund 12190212 (10.00), 0.25 fee
 * each; TotalFees 1.00, TotalBalance 73.00.
 */
const DAY = ewayFixture('api.settlement_search.refund_fees.constructed.json');
const SETTLEMENT = `${DAY.SettlementSummaries[0].SettlementID}:AUD`;
const [PURCHASE_1, PURCHASE_2, PURCHASE_3, REFUND] = DAY.SettlementTransactions.map(
  (t: { TransactionID: number }) => t.TransactionID,
) as number[];
/** A day eWAY settled nothing: the answer's lists empty (the SDKs' SettlementSearchResponse shape). */
const NOTHING = { SettlementSummaries: [], SettlementTransactions: [], Errors: '' };

/**
 * eWAY answering a settlement sweep's searches (one a day of the range): the settlement day for the
 * first date asked, nothing for the others. Persisted until the next `expectEveryMockUsed`.
 * @returns the dates asked, in order
 */
function ewaySettles(): string[] {
  const dates: string[] = [];
  nock(EWAY_API_BASE)
    .persist()
    .get('/Search/Settlement')
    .query(true)
    .reply((request: Request) => {
      const date = new URL(request.url).searchParams.get('SettlementDate') ?? '';
      dates.push(date);
      return [200, dates.length === 1 ? DAY : NOTHING];
    });
  return dates;
}

/**
 * Settlement end to end for eWAY (issue #25, PRODUCT.md §13): purchases and a refund made through
 * billhook's API whose eWAY transaction ids are the settlement day's, then the daily `settlement.sync`
 * job: the day is a paid payout of its matched lines, each line's fee booked into gateway fees,
 * clearing back to zero for everything paid out, the settlement report balances with the expected
 * numbers; `billhook settlement sync` over the same day changes nothing.
 */
describe('eWAY settlement end to end: purchases, a refund and fees in one settlement day', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp(EWAY_ENV);
  });
  afterEach(expectEveryMockUsed);
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** An AUD invoice paid by a token payment eWAY approves as `transactionId` (the real approval, echoed). */
  async function charge(amount: number, transactionId: number) {
    const { invoice } = await openInvoice(app, {
      amount,
      currency: 'aud',
      gateway: 'eway',
      token: FIXTURE_TOKEN,
    });
    ewayTokenPaymentApproves(EWAY_API_BASE, transactionId);
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({
      status: 'succeeded',
      gateway_transaction_id: String(transactionId),
    });
    return charged.body as { invoice: { id: string }; transaction: { id: string } };
  }

  it('books the settlement day as a paid payout of its matched lines with their fees; clearing keeps only the unsettled purchase; the report balances; a second sync changes nothing', async () => {
    const from = new Date(Date.now() - 60_000).toISOString();
    const first = await charge(6_400, PURCHASE_1!);
    const second = await charge(1_000, PURCHASE_2!);
    const third = await charge(1_000, PURCHASE_3!);
    await charge(4_620, 40_000_009);
    // The refund of 10.00 of the first purchase: the real refund approval, as eWAY's transaction REFUND.
    nock(EWAY_API_BASE)
      .post(`/Transaction/${PURCHASE_1}/Refund`)
      .reply(200, { ...ewayFixture('api.refund.approved.json'), TransactionID: REFUND });
    const refund = await app.api('POST', `/v1/invoices/${first.invoice.id}/refund`, { amount: 1_000 });
    expect(refund.body).toMatchObject({ status: 'succeeded', gateway_refund_id: String(REFUND) });

    // One tick of the daily schedule, worked by the running worker.
    const dates = ewaySettles();
    const boss = app.runtime.boss;
    const jobId = await boss.send(QUEUES.settlementSync, {});
    wakeWorkers(boss, QUEUES.settlementSync);
    const job = await waitFor('the settlement.sync job to end', async () => {
      const found = jobId ? await boss.getJobById(QUEUES.settlementSync, jobId) : null;
      return found && ['completed', 'failed', 'retry'].includes(found.state) ? found : undefined;
    });
    expect(job.state).toBe('completed');
    // SETTLEMENT_SYNC_DAYS (7) back from now: each settlement date once, in order.
    expect(dates.length).toBeGreaterThanOrEqual(7);
    expect([...dates].sort()).toEqual(dates);

    const payouts = await app.api('GET', '/v1/payouts?gateway=eway');
    expect(payouts.body.data).toHaveLength(1);
    const payout = await app.api('GET', `/v1/payouts/${payouts.body.data[0].id}`);
    expect(payout.body).toMatchObject({
      gateway_payout_id: SETTLEMENT,
      status: 'paid',
      currency: 'AUD',
      amount: 7_300,
      gross: 8_400,
      fees: 100,
      refunds: -1_000,
      net: 7_300,
      lines_known: true,
      line_count: 4,
      unmatched_lines: 0,
    });
    expect(
      payout.body.lines.map(
        (l: { kind: string; matched: string; gross: number; fee: number; net: number }) => [
          l.kind,
          l.matched,
          l.gross,
          l.fee,
          l.net,
        ],
      ),
    ).toEqual([
      ['charge', first.transaction.id, 6_400, 25, 6_375],
      ['charge', second.transaction.id, 1_000, 25, 975],
      ['charge', third.transaction.id, 1_000, 25, 975],
      ['refund', refund.body.id, -1_000, 25, -1_025],
    ]);

    // Paid out: the three purchases less the refund and the fees; 46.20 not settled stays in clearing.
    const books = await ledgerByCode(app);
    expect(books).toMatchObject({
      'gateway_clearing:eway AUD': 4_620,
      'gateway_fees:eway AUD': 100,
      'payouts_in_transit:eway AUD': 0,
      'bank:eway AUD': 7_300,
    });

    const to = new Date(Date.now() + 60_000).toISOString();
    const report = await app.api(
      'GET',
      `/v1/reports/settlement?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&gateway=eway`,
    );
    expect(report.body.data).toEqual([
      {
        gateway: 'eway',
        gateway_account: null,
        currency: 'AUD',
        clearing: {
          opening: 0,
          charges: 13_020,
          refunds: -1_000,
          disputes: 0,
          fees: -100,
          conversions: 0,
          adjustments: 0,
          payouts: -7_300,
          other: 0,
          closing: 4_620,
          balances: true,
        },
        gateway_fees: { opening: 0, movements: 100, closing: 100 },
        fx: { opening: 0, movements: 0, closing: 0 },
        payouts_in_transit: { opening: 0, movements: 0, closing: 0 },
        bank: { opening: 0, movements: 7_300, closing: 7_300 },
      },
    ]);

    // The same day again, by hand: nothing new.
    const entries = await countEntries(app.runtime.db);
    expectEveryMockUsed();
    ewaySettles();
    const again = await cli(['settlement', 'sync', '--gateway', 'eway', '--days', '1'], {
      ...EWAY_ENV,
      DATABASE_URL: app.config.DATABASE_URL!,
      LOG_LEVEL: 'silent',
    });
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect(again.stdout).toMatch(/eway: 0 payout\(s\) and 0 line\(s\) recorded, 0 line\(s\) unmatched/);
    expect(await countEntries(app.runtime.db)).toBe(entries);
    expect(await ledgerByCode(app)).toEqual(books);
    expect((await app.api('GET', '/v1/reconciliation-exceptions?gateway=eway')).body.data).toEqual([]);
  });
});
