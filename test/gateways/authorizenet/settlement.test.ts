import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/env.ts';
import { AuthorizeNetClient, TRANSACTION_PAGE_SIZE } from '../../../src/gateways/authorizenet/client.ts';
import { authorizenetAdapter } from '../../../src/gateways/authorizenet/index.ts';
import { AuthorizeNetSettlement, settlementWindows } from '../../../src/gateways/authorizenet/settlement.ts';
import { PayoutReportSchema, type SettlementRange } from '../../../src/gateways/settlement.ts';
import { expectEveryMockUsed } from '../../support/nock.ts';
import { ANSWERED_CALL_TIMEOUT_MS } from '../../support/timeouts.ts';
import {
  type ApiBody,
  anetFixture,
  LOGIN_ID,
  nockApi,
  nockMerchantDetails,
  TRANSACTION_KEY,
} from './support.ts';

const BASE = 'https://anet.settlement.test';
const client = () =>
  new AuthorizeNetClient({
    apiLoginId: LOGIN_ID,
    transactionKey: TRANSACTION_KEY,
    apiBase: BASE,
    timeoutMs: ANSWERED_CALL_TIMEOUT_MS,
  });

const OK = { resultCode: 'Ok', message: [{ code: 'I00001', text: 'Successful.' }] };
const DAY = { from: new Date('2011-09-01T00:00:00Z'), to: new Date('2011-09-02T00:00:00Z') };
/** billhook ids whose 20-character bodies are written as invoice numbers (conventions.ts). */
const CHARGE_REF = 'txn_01jh3k9q2m4v8c1tk0bd';
const REFUND_REF = 're_01jh3m0000000000000a';
const body = (reference: string) => reference.slice(reference.indexOf('_') + 1);

/**
 * Batch 1221577 as the real getBatchStatistics sample has it (api.getBatchStatistics.json: the same
 * `batchDetailsType` a getSettledBatchList `batchList` entry is), with `change` applied to its only
 * statistics entry.
 */
function batch1221577(change: Record<string, unknown> = {}): any {
  const { batch } = anetFixture('api.getBatchStatistics.json');
  Object.assign(batch.statistics[0], change);
  return batch;
}

/** A getSettledBatchList answer listing `batches`. */
const batchList = (...batches: unknown[]) => ({ batchList: batches, messages: OK });

/** The real getTransactionList sample's entry (transId 2162566217, settled 1018.88), with `change`. */
function entry(change: Record<string, unknown> = {}): any {
  return { ...anetFixture('api.getTransactionList.json').transactions[0], ...change };
}

/** A getTransactionList answer with `transactions` (and `extra` members such as totalNumInResultSet). */
const transactionList = (transactions: unknown[], extra: Record<string, unknown> = {}) => ({
  transactions,
  ...extra,
  messages: OK,
});

const nockBatches = (answer: unknown, seen: ApiBody[] = []) =>
  nockApi(BASE, 'getSettledBatchListRequest', answer, () => true, seen);
const nockTransactions = (batchId: string, answer: unknown, seen: ApiBody[] = [], page?: number) =>
  nockApi(
    BASE,
    'getTransactionListRequest',
    answer,
    (inner) => inner.batchId === batchId && (page === undefined || inner.paging?.offset === page),
    seen,
  );

beforeAll(() => nock.disableNetConnect());
afterEach(expectEveryMockUsed);
afterAll(() => nock.enableNetConnect());

describe('AuthorizeNetSettlement: a settled batch is a payout', () => {
  it('reads the real batch 1221577 and its transaction list as a paid payout whose line sums to its amount', async () => {
    const batchRequests: ApiBody[] = [];
    const listRequests: ApiBody[] = [];
    nockBatches(batchList(batch1221577()), batchRequests);
    nockTransactions('1221577', anetFixture('api.getTransactionList.json'), listRequests);
    nockMerchantDetails(BASE);

    const report = await new AuthorizeNetSettlement(client()).fetchSettlements(DAY);

    expect(report.lines).toEqual([]);
    expect(report.payouts).toHaveLength(1);
    const [payout] = report.payouts;
    expect(PayoutReportSchema.parse(payout)).toEqual(payout);
    expect(payout).toEqual({
      gatewayPayoutId: '1221577',
      status: 'paid',
      currency: 'USD',
      amount: 101888n,
      createdAt: new Date('2011-09-01T16:38:54Z'),
      // Authorize.Net does not report when the processor's deposit reaches the bank.
      arrivalDate: null,
      lines: [
        {
          gatewayLineId: '2162566217',
          kind: 'charge',
          gatewayTransactionId: '2162566217',
          currency: 'USD',
          gross: 101888n,
          fee: 0n,
          net: 101888n,
          occurredAt: new Date('2011-09-01T16:30:49Z'),
          availableOn: new Date('2011-09-01T16:38:54Z'),
        },
      ],
      description: 'Authorize.Net settled batch 1221577 (creditCard)',
    });
    // Invoice number "60" is not a billhook id: no reference.
    expect(payout?.lines?.[0]).not.toHaveProperty('reference');

    // The requests, members in schema order: the range's one window in UTC, with statistics; the
    // batch's transactions sorted by submit time, 1000 a page from page 1.
    expect(batchRequests).toHaveLength(1);
    expect(Object.keys(batchRequests[0]!)).toEqual([
      'merchantAuthentication',
      'includeStatistics',
      'firstSettlementDate',
      'lastSettlementDate',
    ]);
    expect(batchRequests[0]).toMatchObject({
      merchantAuthentication: { name: LOGIN_ID, transactionKey: TRANSACTION_KEY },
      includeStatistics: true,
      firstSettlementDate: '2011-09-01T00:00:00Z',
      lastSettlementDate: '2011-09-01T23:59:59Z',
    });
    expect(listRequests).toEqual([
      {
        merchantAuthentication: { name: LOGIN_ID, transactionKey: TRANSACTION_KEY },
        batchId: '1221577',
        sorting: { orderBy: 'submitTimeUTC', orderDescending: false },
        paging: { limit: 1000, offset: 1 },
      },
    ]);
  });

  it('books a refund as a negative line, leaves voided and declined transactions out, and names billhook’s references', async () => {
    // Statistics of a batch with the sample's charge and a 18.88 refund (refundAmount changed).
    nockBatches(
      batchList(batch1221577({ refundAmount: '18.88', refundCount: 1, voidCount: 1, declineCount: 1 })),
    );
    nockTransactions(
      '1221577',
      transactionList([
        entry({ invoiceNumber: body(CHARGE_REF) }),
        entry({ transId: '2162566300', transactionStatus: 'voided', settleAmount: '0.00' }),
        entry({ transId: '2162566301', transactionStatus: 'declined', settleAmount: '0.00' }),
        entry({
          transId: '2162566400',
          transactionStatus: 'refundSettledSuccessfully',
          invoiceNumber: body(REFUND_REF),
          settleAmount: '18.88',
          submitTimeUTC: '2011-09-01T16:35:00Z',
        }),
      ]),
    );
    nockMerchantDetails(BASE);

    const [payout] = (await new AuthorizeNetSettlement(client()).fetchSettlements(DAY)).payouts;

    expect(payout?.amount).toBe(100000n);
    expect(payout?.description).toBe('Authorize.Net settled batch 1221577 (creditCard)');
    expect(payout?.lines).toEqual([
      expect.objectContaining({
        gatewayLineId: '2162566217',
        kind: 'charge',
        gatewayTransactionId: '2162566217',
        reference: CHARGE_REF,
        gross: 101888n,
        net: 101888n,
      }),
      expect.objectContaining({
        gatewayLineId: '2162566400',
        kind: 'refund',
        gatewayRefundId: '2162566400',
        reference: REFUND_REF,
        gross: -1888n,
        fee: 0n,
        net: -1888n,
        occurredAt: new Date('2011-09-01T16:35:00Z'),
      }),
    ]);
    expect(payout?.lines?.[1]).not.toHaveProperty('gatewayTransactionId');
    expect(payout?.lines?.reduce((sum, line) => sum + line.net, 0n)).toBe(payout?.amount);
  });

  it('reads the real settled batch list: each batch’s amount is its statistics’ charges minus refunds over every card type', async () => {
    nockBatches(anetFixture('api.getSettledBatchList.json'));
    // The sample's batch 3990090: MasterCard 19.95 and Visa 5.00.
    nockTransactions(
      '3990090',
      transactionList([
        entry({ transId: '2228000001', settleAmount: 19.95, invoiceNumber: body(CHARGE_REF) }),
        entry({ transId: '2228000002', accountType: 'Visa', settleAmount: 5.0 }),
      ]),
    );
    // Batch 3990061 (6 charges, 2353.50): only one transaction listed, so its lines do not sum.
    nockTransactions('3990061', transactionList([entry({ transId: '2228000003', settleAmount: 98.0 })]));
    nockMerchantDetails(BASE);

    const { payouts } = await new AuthorizeNetSettlement(client()).fetchSettlements({
      from: new Date('2015-01-01T00:00:00Z'),
      to: new Date('2015-01-30T00:00:00Z'),
    });

    const byId = new Map(payouts.map((p) => [p.gatewayPayoutId, p]));
    expect(byId.get('3990090')).toMatchObject({
      amount: 2495n,
      status: 'paid',
      createdAt: new Date('2015-01-02T08:55:35Z'),
      description: 'Authorize.Net settled batch 3990090 (creditCard)',
    });
    expect(byId.get('3990090')?.lines?.map((l) => l.net)).toEqual([1995n, 500n]);
    // Reported as the gateway says, with the difference named, for the payout exception downstream.
    expect(byId.get('3990061')).toMatchObject({
      amount: 235350n,
      description:
        'Authorize.Net settled batch 3990061 (creditCard); statistics say 235350, transactions sum to 9800 (minor units of USD)',
    });
  });

  it('reports a batch in error as a failed payout', async () => {
    nockBatches(batchList({ ...batch1221577(), settlementState: 'error' }));
    nockTransactions('1221577', anetFixture('api.getTransactionList.json'));
    nockMerchantDetails(BASE);
    const [payout] = (await new AuthorizeNetSettlement(client()).fetchSettlements(DAY)).payouts;
    expect(payout).toMatchObject({ status: 'failed', failureCode: 'error', amount: 101888n });
  });

  it('names a transaction whose status it does not know in the description, out of the lines', async () => {
    nockBatches(batchList(batch1221577()));
    nockTransactions(
      '1221577',
      transactionList([entry(), entry({ transId: '2162566500', transactionStatus: 'chargeback' })]),
    );
    nockMerchantDetails(BASE);
    const [payout] = (await new AuthorizeNetSettlement(client()).fetchSettlements(DAY)).payouts;
    expect(payout?.lines?.map((l) => l.gatewayLineId)).toEqual(['2162566217']);
    expect(payout?.description).toBe(
      'Authorize.Net settled batch 1221577 (creditCard); left out, status not known to billhook: 2162566500 (chargeback)',
    );
  });

  it('takes the sum of the lines as the amount of a batch listed without statistics, and says so', async () => {
    const { statistics: _none, ...withoutStatistics } = batch1221577();
    nockBatches(batchList(withoutStatistics));
    nockTransactions('1221577', anetFixture('api.getTransactionList.json'));
    nockMerchantDetails(BASE);
    const [payout] = (await new AuthorizeNetSettlement(client()).fetchSettlements(DAY)).payouts;
    expect(payout).toMatchObject({
      amount: 101888n,
      description:
        'Authorize.Net settled batch 1221577 (creditCard); no statistics: amount is the sum of the transactions',
    });
  });

  it('returns no payout when no batch settled in the range', async () => {
    nockBatches({ messages: { resultCode: 'Ok', message: [{ code: 'I00004', text: 'No records found.' }] } });
    expect(await new AuthorizeNetSettlement(client()).fetchSettlements(DAY)).toEqual({
      lines: [],
      payouts: [],
    });
  });
});

describe('AuthorizeNetSettlement: every page of a batch', () => {
  /** `count` charges of 1.00 each, transIds from `first`. */
  const charges = (count: number, first: number) =>
    Array.from({ length: count }, (_, i) => entry({ transId: String(first + i), settleAmount: '1.00' }));

  it('asks page 2 after a full page of 1000 when the answer has no totalNumInResultSet, and stops at the short page', async () => {
    nockBatches(batchList(batch1221577({ chargeAmount: '1001.00', chargeCount: 1001 })));
    const seen: ApiBody[] = [];
    nockTransactions('1221577', transactionList(charges(TRANSACTION_PAGE_SIZE, 3000000000)), seen, 1);
    nockTransactions('1221577', transactionList(charges(1, 3000001000)), seen, 2);
    nockMerchantDetails(BASE);

    const [payout] = (await new AuthorizeNetSettlement(client()).fetchSettlements(DAY)).payouts;

    expect(seen.map((r) => r.paging)).toEqual([
      { limit: 1000, offset: 1 },
      { limit: 1000, offset: 2 },
    ]);
    expect(payout?.lines).toHaveLength(1001);
    expect(new Set(payout?.lines?.map((l) => l.gatewayLineId)).size).toBe(1001);
    expect(payout?.lines?.reduce((sum, l) => sum + l.net, 0n)).toBe(100100n);
    expect(payout?.amount).toBe(100100n);
  });

  it('stops once totalNumInResultSet transactions are read, and throws on an empty page before that', async () => {
    nockBatches(batchList(batch1221577({ chargeAmount: '1000.00', chargeCount: 1000 })));
    nockTransactions(
      '1221577',
      transactionList(charges(TRANSACTION_PAGE_SIZE, 3000000000), { totalNumInResultSet: 1000 }),
      [],
      1,
    );
    nockMerchantDetails(BASE);
    const [payout] = (await new AuthorizeNetSettlement(client()).fetchSettlements(DAY)).payouts;
    expect(payout?.lines).toHaveLength(1000);

    nockBatches(batchList(batch1221577()));
    nockTransactions(
      '1221577',
      transactionList(charges(1000, 3000000000), { totalNumInResultSet: 1500 }),
      [],
      1,
    );
    nockTransactions('1221577', transactionList([], { totalNumInResultSet: 1500 }), [], 2);
    await expect(new AuthorizeNetSettlement(client()).fetchSettlements(DAY)).rejects.toThrow(
      /page 2 is empty after 1000 of 1500/,
    );
  });
});

describe('AuthorizeNetSettlement: ranges of at most 31 days', () => {
  it('cuts a 45-day range into a 31-day and a 14-day window, each batch read once', async () => {
    const seen: ApiBody[] = [];
    // Both windows answer the real list; its batches are read once each.
    nockBatches(anetFixture('api.getSettledBatchList.json'), seen);
    nockBatches(anetFixture('api.getSettledBatchList.json'), seen);
    nockTransactions('3990061', transactionList([]));
    nockTransactions('3990090', transactionList([]));
    nockMerchantDetails(BASE);

    const range: SettlementRange = {
      from: new Date('2026-10-01T00:00:00Z'),
      to: new Date('2026-11-15T00:00:00Z'),
    };
    const { payouts } = await new AuthorizeNetSettlement(client()).fetchSettlements(range);

    expect(seen.map((r) => [r.firstSettlementDate, r.lastSettlementDate])).toEqual([
      ['2026-10-01T00:00:00Z', '2026-10-31T23:59:59Z'],
      ['2026-11-01T00:00:00Z', '2026-11-14T23:59:59Z'],
    ]);
    expect(payouts.map((p) => p.gatewayPayoutId).sort()).toEqual(['3990061', '3990090']);
  });

  it('keeps a range of exactly 31 days in one window, and an empty range in none', () => {
    expect(
      settlementWindows({ from: new Date('2026-10-01T00:00:00Z'), to: new Date('2026-11-01T00:00:00Z') }),
    ).toEqual([{ first: new Date('2026-10-01T00:00:00Z'), last: new Date('2026-10-31T23:59:59Z') }]);
    const now = new Date('2026-10-01T00:00:00Z');
    expect(settlementWindows({ from: now, to: now })).toEqual([]);
  });
});

describe('AuthorizeNetSettlement: a failed or malformed answer throws, never an empty report; an unreadable batch is named', () => {
  it('throws on resultCode Error from getSettledBatchList', async () => {
    nockBatches({
      messages: {
        resultCode: 'Error',
        message: [
          { code: 'E00007', text: 'User authentication failed due to invalid authentication values.' },
        ],
      },
    });
    await expect(new AuthorizeNetSettlement(client()).fetchSettlements(DAY)).rejects.toThrow(
      /getSettledBatchListRequest refused: E00007/,
    );
  });

  it('throws on resultCode Error from getTransactionList', async () => {
    nockBatches(batchList(batch1221577()));
    nockTransactions('1221577', {
      messages: {
        resultCode: 'Error',
        message: [{ code: 'E00001', text: 'An error occurred during processing.' }],
      },
    });
    await expect(new AuthorizeNetSettlement(client()).fetchSettlements(DAY)).rejects.toThrow(
      /getTransactionListRequest refused: E00001/,
    );
  });

  it('throws on an answer that is not the documented shape, on HTTP 500, and on an inexact amount', async () => {
    const { batchId: _dropped, ...withoutId } = batch1221577();
    nockBatches(batchList(withoutId));
    await expect(new AuthorizeNetSettlement(client()).fetchSettlements(DAY)).rejects.toThrow(
      /unexpected answer .*batchList\.0\.batchId/,
    );

    nockApi(BASE, 'getSettledBatchListRequest', '{"unused":true}', () => true, [], 500);
    await expect(new AuthorizeNetSettlement(client()).fetchSettlements(DAY)).rejects.toThrow(/HTTP 500/);
  });

  it('leaves out a batch with an inexact amount, naming it in unread, and reads the others', async () => {
    const other = { ...batch1221577(), batchId: '1221578' };
    nockBatches(batchList(batch1221577(), other));
    nockTransactions('1221577', transactionList([entry({ settleAmount: '1018.885' })]));
    nockTransactions('1221578', anetFixture('api.getTransactionList.json'));
    nockMerchantDetails(BASE); // asked once: the client keeps the account's currencies
    const report = await new AuthorizeNetSettlement(client()).fetchSettlements(DAY);
    expect(report.unread?.map((item) => item.message)).toEqual([
      expect.stringMatching(
        /finer than USD's ISO 4217 minor unit.*\(Authorize\.Net batch 1221577 left out\)/,
      ),
    ]);
    expect(report.payouts.map((p) => [p.gatewayPayoutId, p.amount])).toEqual([['1221578', 101888n]]);
  });
});

describe('AuthorizeNetSettlement: the currency of a batch', () => {
  /** getMerchantDetails naming two currencies (the real sample's `currencies` changed). */
  const twoCurrencies = () =>
    nockApi(BASE, 'getMerchantDetailsRequest', {
      ...anetFixture('api.getMerchantDetails.json'),
      currencies: ['USD', 'CAD'],
    });

  it('takes the currency of billhook’s charge in the batch when the account processes several', async () => {
    nockBatches(batchList(batch1221577()));
    nockTransactions('1221577', transactionList([entry({ invoiceNumber: body(CHARGE_REF) })]));
    twoCurrencies();
    const asked: string[] = [];
    const settlement = new AuthorizeNetSettlement(client(), async (reference) => {
      asked.push(reference);
      return reference === CHARGE_REF ? 'cad' : undefined;
    });
    const [payout] = (await settlement.fetchSettlements(DAY)).payouts;
    expect(asked).toEqual([CHARGE_REF]);
    expect(payout).toMatchObject({ currency: 'CAD', amount: 101888n });
    expect(payout?.lines?.[0]?.currency).toBe('CAD');
  });

  it('leaves out a batch no billhook charge or refund tells the currency of, naming it in unread', async () => {
    nockBatches(batchList(batch1221577()));
    nockTransactions('1221577', anetFixture('api.getTransactionList.json'));
    twoCurrencies();
    const report = await new AuthorizeNetSettlement(client(), async () => 'USD').fetchSettlements(DAY);
    expect(report).toEqual({
      lines: [],
      payouts: [],
      unread: [
        {
          id: '1221577',
          settledAt: expect.any(Date),
          message: expect.stringMatching(
            /batch 1221577: the account processes USD, CAD .* none of billhook’s charges or refunds.*left out/,
          ),
        },
      ],
    });
  });
});

describe('authorizenetAdapter settlement', () => {
  it('has a settlement source with the API credentials, none without', () => {
    const env = { AUTHORIZENET_API_LOGIN_ID: 'login', AUTHORIZENET_TRANSACTION_KEY: 'key' };
    expect(authorizenetAdapter(loadConfig(env)).settlement).toBeInstanceOf(AuthorizeNetSettlement);
    expect(authorizenetAdapter(loadConfig({})).settlement).toBeUndefined();
  });
});
