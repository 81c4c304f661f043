import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EwayAnswerError } from '../../../src/gateways/eway/api.ts';
import { EwaySettlement, settlementDates } from '../../../src/gateways/eway/settlement.ts';
import { GatewayUnreachable } from '../../../src/gateways/http.ts';
import type { PayoutReport } from '../../../src/gateways/settlement.ts';
import { expectEveryMockUsed } from '../../support/nock.ts';
import { ANSWERED_CALL_TIMEOUT_MS } from '../../support/timeouts.ts';
import { EWAY_TEST_AUTHORIZATION, EWAY_TEST_KEY, EWAY_TEST_PASSWORD, ewayFixture } from './fixtures.ts';

const BASE = 'https://eway.settlement.test';
const source = (pageSize?: number) =>
  new EwaySettlement(
    {
      apiKey: EWAY_TEST_KEY,
      apiPassword: EWAY_TEST_PASSWORD,
      apiBase: BASE,
      timeoutMs: ANSWERED_CALL_TIMEOUT_MS,
    },
    { pageSize },
  );

/** The whole day of answer in eway-rapid-ruby's tests (2016-02-02): twelve purchases, 224.00 AUD. */
const SANDBOX_DAY = ewayFixture('api.settlement_search.both.json');
const SETTLEMENT_ID = '85e4c36a-1c2d-4cfc-8b81-ba32caadb6b0';
/** The same settlement with per-transaction fees, TotalFees and a refund (constructed, see SOURCES.md). */
const REFUND_DAY = ewayFixture('api.settlement_search.refund_fees.constructed.json');
const FEB_2 = { from: new Date('2016-02-02T00:00:00Z'), to: new Date('2016-02-03T00:00:00Z') };

/** Answers the search of `date` (page `page` of `pageSize`) with `answer`, recording each request's headers. */
function search(date: string, answer: unknown, { page = 1, pageSize = 100, status = 200 } = {}) {
  const seen: Record<string, string>[] = [];
  nock(BASE)
    .get('/Search/Settlement')
    .query({ ReportMode: 'Both', SettlementDate: date, Page: String(page), PageSize: String(pageSize) })
    .reply(async (request: Request) => {
      seen.push(Object.fromEntries(request.headers));
      return [status, answer];
    });
  return seen;
}

const sumOfNets = (payout: PayoutReport) => (payout.lines ?? []).reduce((sum, line) => sum + line.net, 0n);

describe('EwaySettlement (Settlement Search)', () => {
  beforeAll(() => nock.disableNetConnect());
  afterEach(expectEveryMockUsed);
  afterAll(() => nock.enableNetConnect());

  it("turns eWAY's day of twelve purchases into one paid payout of its twelve purchases, lines summing to the amount", async () => {
    const seen = search('2016-02-02', SANDBOX_DAY);
    const report = await source().fetchSettlements(FEB_2);

    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ authorization: EWAY_TEST_AUTHORIZATION, 'x-eway-apiversion': '47' });
    expect(report.lines).toEqual([]);
    expect(report.payouts).toHaveLength(1);
    const payout = report.payouts[0]!;
    expect(payout).toMatchObject({
      gatewayPayoutId: `${SETTLEMENT_ID}:AUD`,
      status: 'paid',
      currency: 'AUD',
      amount: 22400n,
      // SettlementDateTime /Date(1454331600000)/: midnight of 2 February in Sydney.
      createdAt: new Date('2016-02-01T13:00:00.000Z'),
      arrivalDate: new Date('2016-02-01T13:00:00.000Z'),
    });
    expect(payout.lines).toHaveLength(12);
    expect(payout.lines![0]).toEqual({
      gatewayLineId: '12189063',
      kind: 'charge',
      gatewayTransactionId: '12189063',
      currency: 'AUD',
      gross: 6400n,
      fee: 0n,
      net: 6400n,
      occurredAt: new Date(1454371076000),
      availableOn: new Date(1454331600000),
      description: 'eWAY TransactionType 1',
    });
    expect(payout.lines!.every((line) => line.kind === 'charge' && line.reference === undefined)).toBe(true);
    expect(sumOfNets(payout)).toBe(payout.amount);
  });

  it('reads a refund as a negative line and per-transaction fees as the lines’ fees; the nets sum to TotalBalance', async () => {
    search('2016-02-02', REFUND_DAY);
    const [payout] = (await source().fetchSettlements(FEB_2)).payouts;

    expect(payout!.amount).toBe(7300n);
    expect(payout!.lines!.map((line) => [line.kind, line.gross, line.fee, line.net])).toEqual([
      ['charge', 6400n, 25n, 6375n],
      ['charge', 1000n, 25n, 975n],
      ['charge', 1000n, 25n, 975n],
      ['refund', -1000n, 25n, -1025n],
    ]);
    const refund = payout!.lines![3]!;
    expect(refund).toMatchObject({ gatewayLineId: '12190212', gatewayRefundId: '12190212' });
    expect(refund.gatewayTransactionId).toBeUndefined();
    expect(sumOfNets(payout!)).toBe(payout!.amount);
  });

  it('books TotalFees as one fee line of the settlement when eWAY gives no fee per transaction', async () => {
    const answer = structuredClone(REFUND_DAY);
    for (const transaction of answer.SettlementTransactions) delete transaction.FeePerTransaction;
    search('2016-02-02', answer);
    const [payout] = (await source().fetchSettlements(FEB_2)).payouts;

    expect(payout!.lines!.slice(0, 4).every((line) => line.fee === 0n)).toBe(true);
    expect(payout!.lines![4]).toEqual({
      gatewayLineId: `${SETTLEMENT_ID}:AUD:fees`,
      kind: 'fee',
      currency: 'AUD',
      gross: 0n,
      fee: 100n,
      net: -100n,
      occurredAt: new Date(1454331600000),
      description: 'eWAY fees of settlement 2016-02-02 not reported per transaction',
    });
    expect(sumOfNets(payout!)).toBe(7300n);
  });

  it('reports the payout as eWAY says when TotalBalance does not agree with its lines (the books raise it)', async () => {
    const answer = structuredClone(REFUND_DAY);
    answer.SettlementSummaries[0].TotalBalance = 7200;
    search('2016-02-02', answer);
    const [payout] = (await source().fetchSettlements(FEB_2)).payouts;
    expect(payout!.amount).toBe(7200n);
    expect(sumOfNets(payout!)).toBe(7300n);
  });

  it('gives one payout per currency, and the same ids however often the day is asked', async () => {
    const answer = structuredClone(SANDBOX_DAY);
    answer.SettlementSummaries.push({
      ...answer.SettlementSummaries[0],
      SettlementID: 'a1f0c8de-0000-4000-8000-000000000554',
      Currency: '554',
      CurrencyCode: 'NZD',
      TotalCredit: 6400,
      TotalBalance: 6400,
    });
    answer.SettlementTransactions.push({
      ...answer.SettlementTransactions[0],
      SettlementID: 'a1f0c8de-0000-4000-8000-000000000554',
      Currency: '554',
      CurrencyCode: 'NZD',
      TransactionID: 12199999,
    });
    search('2016-02-02', answer);
    search('2016-02-02', answer);
    const first = await source().fetchSettlements(FEB_2);
    const again = await source().fetchSettlements(FEB_2);

    expect(first.payouts.map((p) => [p.gatewayPayoutId, p.currency, p.amount, p.lines!.length])).toEqual([
      [`${SETTLEMENT_ID}:AUD`, 'AUD', 22400n, 12],
      ['a1f0c8de-0000-4000-8000-000000000554:NZD', 'NZD', 6400n, 1],
    ]);
    expect(again).toEqual(first);
  });

  it('reads every page of a day, the summary repeated on each', async () => {
    const all = SANDBOX_DAY.SettlementTransactions;
    const page = (n: number) => ({ ...SANDBOX_DAY, SettlementTransactions: all.slice((n - 1) * 5, n * 5) });
    search('2016-02-02', page(1), { page: 1, pageSize: 5 });
    search('2016-02-02', page(2), { page: 2, pageSize: 5 });
    search('2016-02-02', page(3), { page: 3, pageSize: 5 });
    const [payout] = (await source(5).fetchSettlements(FEB_2)).payouts;

    expect(payout!.lines!.map((line) => line.gatewayLineId)).toEqual(
      all.map((t: any) => String(t.TransactionID)),
    );
    expect(sumOfNets(payout!)).toBe(22400n);
  });

  it('stops when a page brings nothing new (eWAY ignoring Page), and never reports a day short: it is left out, named', async () => {
    const firstFive = {
      ...SANDBOX_DAY,
      SettlementTransactions: SANDBOX_DAY.SettlementTransactions.slice(0, 5),
    };
    search('2016-02-02', firstFive, { page: 1, pageSize: 5 });
    search('2016-02-02', firstFive, { page: 2, pageSize: 5 });
    const report = await source(5).fetchSettlements(FEB_2);
    expect(report.payouts).toEqual([]);
    expect(report.unread?.map((item) => item.message)).toEqual([
      expect.stringContaining('credit 11400 and debit 0, its summary says 22400 and 0'),
    ]);
  });

  it('walks each day of the range, a day without settlement giving no payout', async () => {
    const empty = { SettlementSummaries: [], SettlementTransactions: [], Errors: '' };
    search('2016-02-01', empty);
    search('2016-02-02', SANDBOX_DAY);
    search('2016-02-03', empty);
    const report = await source().fetchSettlements({
      from: new Date('2016-02-01T00:00:00Z'),
      to: new Date('2016-02-04T00:00:00Z'),
    });
    expect(report.payouts.map((p) => p.gatewayPayoutId)).toEqual([`${SETTLEMENT_ID}:AUD`]);
  });

  it('throws on eWAY’s Errors, an HTTP error or an undocumented answer, never giving an empty report', async () => {
    search('2016-02-02', ewayFixture('api.settlement_search.error.constructed.json'));
    await expect(source().fetchSettlements(FEB_2)).rejects.toThrow(
      new EwayAnswerError('eWAY Settlement Search for 2016-02-02 failed: S5029 API Rate Limit Exceeded'),
    );

    search('2016-02-02', { Message: 'An error has occurred.' }, { status: 500 });
    await expect(source().fetchSettlements(FEB_2)).rejects.toThrow(
      new EwayAnswerError('eWAY Settlement Search answered HTTP 500'),
    );

    const float = structuredClone(SANDBOX_DAY);
    float.SettlementTransactions[0].Amount = 64.5;
    search('2016-02-02', float);
    await expect(source().fetchSettlements(FEB_2)).rejects.toThrow(EwayAnswerError);

    const badDate = structuredClone(SANDBOX_DAY);
    badDate.SettlementTransactions[0].SettlementDateTime = 'yesterday';
    search('2016-02-02', badDate);
    await expect(source().fetchSettlements(FEB_2)).rejects.toThrow(/not an eWAY date/);
  });

  it('throws when no answer comes', async () => {
    nock(BASE).get('/Search/Settlement').query(true).replyWithError('connection reset');
    await expect(source().fetchSettlements(FEB_2)).rejects.toThrow(GatewayUnreachable);
  });

  it('leaves out a settlement in a currency eWAY’s table cannot read, naming it in unread', async () => {
    const answer = structuredClone(SANDBOX_DAY);
    answer.SettlementSummaries[0].CurrencyCode = 'XYZ';
    for (const transaction of answer.SettlementTransactions) transaction.CurrencyCode = 'XYZ';
    search('2016-02-02', answer);
    const report = await source().fetchSettlements(FEB_2);
    expect(report.payouts).toEqual([]);
    expect(report.unread?.map((item) => item.message)).toEqual([
      expect.stringMatching(new RegExp(`XYZ.*${SETTLEMENT_ID}:XYZ of 2016-02-02 left out`)),
    ]);
  });

  it("leaves out the SDKs' sample answers, whose transactions are a few of the summary's, naming them in unread", async () => {
    // eway-rapid-php's sample lists one transaction of 10.00 for a summary of 971.00 credited;
    // eway-rapid-node's three (one of type 8) for the same summary.
    search('2016-02-02', ewayFixture('api.settlement_search.fees.json'));
    expect(await source().fetchSettlements(FEB_2)).toEqual({
      lines: [],
      payouts: [],
      unread: [
        {
          id: '53e78b14-ac2c-4b1b-a099-a12c6d5f30bc:AUD',
          settledAt: new Date('2016-02-02T00:00:00Z'),
          message:
            'eWAY settlement 53e78b14-ac2c-4b1b-a099-a12c6d5f30bc:AUD of 2016-02-02: its transactions (types 1) credit 1000 and debit 0, its summary says 97100 and 320 (eWAY settlement 53e78b14-ac2c-4b1b-a099-a12c6d5f30bc:AUD of 2016-02-02 left out)',
        },
      ],
    });
    search('2016-02-02', ewayFixture('api.settlement_search.basic.json'));
    expect((await source().fetchSettlements(FEB_2)).unread?.map((item) => item.message)).toEqual([
      expect.stringMatching(/types 1, 8\) credit 1100 and debit 1000/),
    ]);
  });

  it('leaves out a transaction whose settlement has no summary, naming it in unread; the summary’s settlement is a payout', async () => {
    const answer = structuredClone(SANDBOX_DAY);
    answer.SettlementTransactions[0].SettlementID = 'ffffffff-0000-4000-8000-000000000000';
    answer.SettlementSummaries[0].TotalCredit -= 6400;
    answer.SettlementSummaries[0].TotalBalance -= 6400;
    search('2016-02-02', answer);
    const report = await source().fetchSettlements(FEB_2);
    expect(report.unread?.map((item) => item.message)).toEqual([
      expect.stringMatching(/transaction 12189063 .* has no summary \(left out\)/),
    ]);
    // Named by the settlement it belongs to: booking that settlement later resolves its exception.
    expect(report.unread?.map((item) => item.id)).toEqual(['ffffffff-0000-4000-8000-000000000000:AUD']);
    expect(report.payouts.map((p) => [p.gatewayPayoutId, p.lines?.length])).toEqual([
      [`${SETTLEMENT_ID}:AUD`, 11],
    ]);
  });

  it('a day whose transactions do not add up to its summary does not keep the next day’s settlement out', async () => {
    // 2016-02-01: the php SDK's sample (one transaction of a summary of 971.00); 2016-02-02: the
    // sandbox day of twelve purchases, 224.00 AUD.
    search('2016-02-01', ewayFixture('api.settlement_search.fees.json'));
    search('2016-02-02', SANDBOX_DAY);
    const report = await source().fetchSettlements({
      from: new Date('2016-02-01T00:00:00Z'),
      to: new Date('2016-02-03T00:00:00Z'),
    });
    expect(report.payouts.map((p) => [p.gatewayPayoutId, p.amount])).toEqual([
      [`${SETTLEMENT_ID}:AUD`, 22400n],
    ]);
    expect(report.unread?.map((item) => item.message)).toEqual([
      expect.stringMatching(/53e78b14-ac2c-4b1b-a099-a12c6d5f30bc:AUD .* left out/),
    ]);
  });
});

describe('settlementDates', () => {
  it('lists each UTC day the range touches, `to` exclusive', () => {
    expect(settlementDates(FEB_2)).toEqual(['2016-02-02']);
    expect(
      settlementDates({ from: new Date('2016-02-28T18:00:00Z'), to: new Date('2016-03-01T00:00:01Z') }),
    ).toEqual(['2016-02-28', '2016-02-29', '2016-03-01']);
    expect(settlementDates({ from: FEB_2.to, to: FEB_2.from })).toEqual([]);
    expect(() => settlementDates({ from: new Date('nope'), to: FEB_2.to })).toThrow(RangeError);
  });
});
