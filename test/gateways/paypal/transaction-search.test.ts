import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/env.ts';
import { paypalAdapter } from '../../../src/gateways/paypal/index.ts';
import { captureLine, PaypalSettlementError } from '../../../src/gateways/paypal/settlement.ts';
import {
  MAX_SEARCH_RANGE_MS,
  PaypalTransactionSearch,
  searchWindows,
} from '../../../src/gateways/paypal/transaction-search.ts';
import { nockToken, paypalFixture, TOKEN, testPaypalClient } from './fixtures.ts';

const BASE = 'https://api-m.sandbox.paypal.test';
const SEARCH = '/v1/reporting/transactions';
const source = () => new PaypalTransactionSearch(testPaypalClient(BASE));
/** One day: a range Transaction Search answers in one window. */
const DAY = { from: new Date('2014-07-11T00:00:00Z'), to: new Date('2014-07-12T00:00:00Z') };

/** Answers the search of `range`'s window, page `page`, with `body`, checking what billhook asks. */
function nockPage(range: { from: Date; to: Date }, page: number, body: unknown, status = 200): nock.Scope {
  return nock(BASE)
    .get(SEARCH)
    .query({
      start_date: range.from.toISOString().replace('.000Z', 'Z'),
      end_date: range.to.toISOString().replace('.000Z', 'Z'),
      fields: 'all',
      page_size: '500',
      page: String(page),
    })
    .matchHeader('authorization', `Bearer ${TOKEN.access_token}`)
    .reply(status, body);
}

beforeAll(() => {
  nock.disableNetConnect();
});
afterEach(() => {
  nock.cleanAll();
});
afterAll(() => {
  nock.enableNetConnect();
});

describe('PaypalTransactionSearch.fetchSettlements', () => {
  it('turns PayPal’s documented T0006 payment into a charge line with its fee (fee_amount −13.79 is charged)', async () => {
    nockToken(BASE).reply(200, TOKEN);
    const scope = nockPage(DAY, 1, paypalFixture('api.reporting.transactions.docs_sample.json'));
    const report = await source().fetchSettlements(DAY);
    expect(scope.isDone()).toBe(true);
    expect(report).toEqual({
      payouts: [],
      lines: [
        {
          gatewayLineId: '5TY05013RG002845M',
          kind: 'charge',
          gatewayTransactionId: '5TY05013RG002845M',
          reference: 'Thank you for your business',
          currency: 'USD',
          gross: 46500n,
          fee: 1379n,
          net: 45121n,
          occurredAt: new Date('2014-07-11T04:03:52Z'),
          description: 'PayPal T0006: Bill for your purchase',
        },
      ],
    });
  });

  it('turns a T0403 withdrawal into a paid lump-sum payout, and the donation beside it into a line', async () => {
    nockToken(BASE).reply(200, TOKEN);
    nockPage(DAY, 1, paypalFixture('api.reporting.transactions.donation_partner_fee_withdrawal.json'));
    const report = await source().fetchSettlements(DAY);
    expect(report.payouts).toEqual([
      {
        gatewayPayoutId: '45X02981NP708135E',
        status: 'paid',
        currency: 'USD',
        amount: 4763n,
        createdAt: new Date('2025-03-01T17:14:58Z'),
        arrivalDate: null,
        description: 'PayPal withdrawal to the bank T0403 (bank reference 1040606119578)',
      },
    ]);
    // The T0013 donation with PayPal's fee 1.49, and the T0113 partner fee of 0.88 taken from it as a
    // fee line of its own naming the donation (a sweep may list it in another window than its
    // payment): 5000 - 149 - 88 = 4763 = the withdrawal.
    expect(report.lines).toEqual([
      expect.objectContaining({
        gatewayLineId: '25B16188FF732802U',
        kind: 'charge',
        reference: '51339764',
        gross: 5000n,
        fee: 149n,
        net: 4851n,
      }),
      expect.objectContaining({
        gatewayLineId: '5PU95094C5021335H',
        kind: 'fee',
        gatewayTransactionId: '25B16188FF732802U',
        gross: -88n,
        fee: 0n,
        net: -88n,
        partnerFee: 88n,
      }),
    ]);
  });

  it('books a T1107 refund with the fee PayPal gives back as a negative fee, a JPY capture, and a pending withdrawal', async () => {
    nockToken(BASE).reply(200, TOKEN);
    nockPage(
      DAY,
      1,
      paypalFixture('constructed/api.reporting.transactions.refund_jpy_withdrawal.constructed.json'),
    );
    const report = await source().fetchSettlements(DAY);
    expect(report.lines).toEqual([
      expect.objectContaining({
        gatewayLineId: '8MC585209K746392H',
        kind: 'refund',
        gatewayTransactionId: '5TY05013RG002845M',
        gatewayRefundId: '8MC585209K746392H',
        reference: 're_01jh3k9q2m4v8c1xk0bd',
        currency: 'USD',
        gross: -10000n,
        fee: -266n,
        net: -9734n,
      }),
      expect.objectContaining({
        gatewayLineId: '3UL30467DS8273713',
        currency: 'JPY',
        gross: 12000n,
        fee: 468n,
      }),
    ]);
    expect(report.payouts).toEqual([
      expect.objectContaining({ gatewayPayoutId: '6AB50473HU1702044', status: 'pending', amount: 25000n }),
    ]);
  });

  it('gives a capture the line the webhook gives it: same id and money, so it cannot be booked twice', async () => {
    nockToken(BASE).reply(200, TOKEN);
    nockPage(
      DAY,
      1,
      paypalFixture('constructed/api.reporting.transactions.refund_jpy_withdrawal.constructed.json'),
    );
    const searched = (await source().fetchSettlements(DAY)).lines.find((l) => l.kind === 'charge');
    const webhook = paypalFixture('constructed/webhook.PAYMENT.CAPTURE.COMPLETED.jpy.constructed.json');
    const fromWebhook = captureLine(webhook.resource, new Date());
    for (const key of [
      'gatewayLineId',
      'kind',
      'gatewayTransactionId',
      'reference',
      'currency',
      'gross',
      'fee',
      'net',
    ] as const) {
      expect(searched?.[key]).toEqual(fromWebhook?.[key]);
    }
  });

  it('asks for every page up to total_pages (PayPal’s real sandbox pages): holds as hold lines, the completed rows billhook does not book itself as adjustments', async () => {
    nockToken(BASE).reply(200, TOKEN);
    // The two real pages, served as a two-page answer (their account had 118 pages of 3).
    const pages = [1, 2].map((n) => ({
      ...paypalFixture(`api.reporting.transactions.sandbox.page_${n}.json`),
      total_pages: 2,
    }));
    const first = nockPage(DAY, 1, pages[0]);
    const second = nockPage(DAY, 2, pages[1]);
    // T1503 / T1105 a hold and its releases: hold lines (money held within the balance, booked
    // nowhere); a T0001 mass payment sent: money the account moved that billhook does not book
    // itself, an adjustment for a person (its net: the sent payment with its fee); the pending T0001
    // rows moved nothing yet.
    const report = await source().fetchSettlements(DAY);
    expect(report.payouts).toEqual([]);
    expect(report.lines.map((l) => [l.kind, l.description?.match(/T\d{4}/)?.[0], l.net])).toEqual([
      ['hold', 'T1503', -6075n],
      ['hold', 'T1105', 1025n],
      ['hold', 'T1105', 2025n],
      ['adjustment', 'T0001', -3025n],
    ]);
    expect(first.isDone() && second.isDone()).toBe(true);
  });

  it('cuts a range longer than 31 days into windows, and keeps a row found in two of them once', async () => {
    const range = { from: new Date('2014-06-20T00:00:00Z'), to: new Date('2014-07-31T00:00:00Z') };
    const windows = searchWindows(range);
    expect(windows).toEqual([
      { from: range.from, to: new Date(range.from.getTime() + MAX_SEARCH_RANGE_MS) },
      { from: new Date(range.from.getTime() + MAX_SEARCH_RANGE_MS), to: range.to },
    ]);
    nockToken(BASE).reply(200, TOKEN);
    const scopes = windows.map((w) =>
      nockPage(w, 1, paypalFixture('api.reporting.transactions.docs_sample.json')),
    );
    const report = await source().fetchSettlements(range);
    expect(scopes.every((s) => s.isDone())).toBe(true);
    expect(report.lines.map((l) => l.gatewayLineId)).toEqual(['5TY05013RG002845M']);
  });

  it('throws on an answer that is not a search response, an inexact amount, or an error answer', async () => {
    nockToken(BASE).reply(200, TOKEN);
    const search = source();
    const { total_pages: _, ...withoutPages } = paypalFixture('api.reporting.transactions.docs_sample.json');
    nockPage(DAY, 1, withoutPages);
    await expect(search.fetchSettlements(DAY)).rejects.toThrow(/total_pages/);

    const inexact = paypalFixture('api.reporting.transactions.docs_sample.json');
    inexact.transaction_details[0].transaction_info.fee_amount.value = '-13.795';
    nockPage(DAY, 1, inexact);
    await expect(search.fetchSettlements(DAY)).rejects.toThrow(PaypalSettlementError);

    const noDate = paypalFixture('api.reporting.transactions.docs_sample.json');
    noDate.transaction_details[0].transaction_info.transaction_initiation_date = 'yesterday';
    nockPage(DAY, 1, noDate);
    await expect(search.fetchSettlements(DAY)).rejects.toThrow(/transaction_initiation_date/);

    nockPage(
      DAY,
      1,
      {
        name: 'NOT_AUTHORIZED',
        message: 'Authorization failed due to insufficient permissions.',
        debug_id: 'b2e5e3a4c1f0d',
      },
      403,
    );
    await expect(search.fetchSettlements(DAY)).rejects.toThrow(
      /HTTP 403 NOT_AUTHORIZED: Authorization failed due to insufficient permissions\. \(debug_id b2e5e3a4c1f0d\)/,
    );
  });
});

describe('paypalAdapter settlement', () => {
  it('is the Transaction Search source when the client credentials are configured, and absent otherwise', () => {
    expect(
      paypalAdapter(loadConfig({ PAYPAL_CLIENT_ID: 'id', PAYPAL_CLIENT_SECRET: 's' })).settlement,
    ).toBeInstanceOf(PaypalTransactionSearch);
    expect(paypalAdapter(loadConfig({ PAYPAL_WEBHOOK_ID: 'WH1' })).settlement).toBeUndefined();
  });
});
