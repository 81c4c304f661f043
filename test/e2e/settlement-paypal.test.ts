import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signPaypalDelivery } from '../../src/gateways/paypal/test-events.ts';
import {
  nockToken,
  paypalFixture,
  TEST_CERT_FILE,
  TEST_KEY_PEM,
  TOKEN,
} from '../gateways/paypal/fixtures.ts';
import type { TestApp } from '../support/app.ts';
import { cli } from '../support/cli.ts';
import { ledgerByCode, openInvoice } from '../support/flow.ts';
import { countEntries } from '../support/money-core.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { waitFor } from '../support/wait.ts';

const PAYPAL_API_BASE = 'https://paypal.settlement.e2e.test';
const PAYPAL_WEBHOOK_ID = '8PT597110X687430LKGECATA';
/** PayPal alone can be asked for settlement data. */
const PAYPAL_ENV = {
  PAYPAL_CLIENT_ID: 'client-id',
  PAYPAL_CLIENT_SECRET: 'client-secret',
  PAYPAL_WEBHOOK_ID,
  PAYPAL_API_BASE,
  PAYPAL_TEST_CERT_FILE: TEST_CERT_FILE,
  STRIPE_SECRET_KEY: '',
};

/** The real sandbox order of a vaulted-card charge: capture 0XX3309307732590Y, USD 25.07, fee 1.52. */
const VAULTED = paypalFixture('api.orders.create.vaulted_card_capture.completed.json');
/** PayPal's documented capture event: capture 27M47624FP291604U, USD 2.51, fee 0.37, net 2.14. */
const CAPTURE_EVENT = paypalFixture('webhook.PAYMENT.CAPTURE.COMPLETED.json');
/** A refund event PayPal's simulator signed (USD 0.99, fee 0.02 given back): the shape of ours. */
const REFUND_EVENT = paypalFixture('webhook.PAYMENT.CAPTURE.REFUNDED.simulator-signed.body.json');
/** PayPal's documented Transaction Search row: T0006 capture 5TY05013RG002845M, USD 465.00, fee -13.79. */
const CAPTURE_ROW = paypalFixture('api.reporting.transactions.docs_sample.json').transaction_details[0];
/** The constructed rows: T1107 refund 8MC585209K746392H (USD -100.00 of 5TY05013RG002845M, fee +2.66) and a T0400 withdrawal. */
const [REFUND_ROW, , WITHDRAWAL_ROW] = paypalFixture(
  'constructed/api.reporting.transactions.refund_jpy_withdrawal.constructed.json',
).transaction_details;

/** Charge A: the documented capture event's capture. */
const CAPTURE_A = CAPTURE_EVENT.resource.id as string;
/** Charge B: the documented Transaction Search row's capture, refunded 100.00 by REFUND_B. */
const CAPTURE_B = CAPTURE_ROW.transaction_info.transaction_id as string;
const REFUND_B = REFUND_ROW.transaction_info.transaction_id as string;
/** Charge C: the real vaulted-card capture, whose event never comes (Transaction Search books its fee). */
const CAPTURE_C = VAULTED.purchase_units[0].payments.captures[0].id as string;
const WITHDRAWAL = WITHDRAWAL_ROW.transaction_info.transaction_id as string;

/** PayPal's money: a decimal string in `currency_code`. */
const usd = (value: string) => ({ currency_code: 'USD', value });

/** A Transaction Search date (`2014-07-11T04:03:52+0000`), now. */
const searchDate = () => new Date().toISOString().replace(/\.\d{3}Z$/, '+0000');

/** The token call, optional: the app's client caches its token, the CLI's asks for one. */
function tokenAvailable() {
  nockToken(PAYPAL_API_BASE).optionally().reply(200, TOKEN);
}

/**
 * Signs (with the TEST ONLY key the app trusts) and POSTs a PayPal event, then waits for the worker
 * to settle it.
 * @returns the stored event (status, outcome)
 */
async function deliver(app: TestApp, event: { id: string }) {
  const body = JSON.stringify(event);
  const headers = signPaypalDelivery(body, { privateKeyPem: TEST_KEY_PEM, webhookId: PAYPAL_WEBHOOK_ID });
  const answer = await fetch(`${app.url}/webhooks/paypal`, { method: 'POST', headers, body });
  expect(answer.status).toBe(200);
  return waitFor(`event ${event.id} to be settled`, async () => {
    const events = await app.api('GET', '/v1/events?limit=100');
    const found = events.body.data.find((e: { gateway_event_id: string }) => e.gateway_event_id === event.id);
    return found && found.status !== 'received' && found.status !== 'retrying' ? found : undefined;
  });
}

/** The documented capture event for `captureId` of `gross`, `fee` and `net` (decimals), carrying our `txn_…`. */
function captureCompleted(captureId: string, reference: string, gross: string, fee: string, net: string) {
  const event = structuredClone(CAPTURE_EVENT);
  event.id = `WH-SETTLE-${captureId}`;
  event.create_time = new Date().toISOString();
  Object.assign(event.resource, {
    id: captureId,
    amount: usd(gross),
    custom_id: reference,
    invoice_id: reference,
    create_time: event.create_time,
    seller_receivable_breakdown: { gross_amount: usd(gross), paypal_fee: usd(fee), net_amount: usd(net) },
  });
  return event;
}

/**
 * Settlement end to end for PayPal (issue #25, PRODUCT.md §13): three USD charges through billhook's
 * API with a vaulted card, then
 * - PAYMENT.CAPTURE.COMPLETED of charges A (the documented event verbatim: 2.51, fee 0.37) and B
 *   (465.00, fee 13.79, the documented Transaction Search row's figures): each capture's
 *   `seller_receivable_breakdown` books its fee from clearing into `gateway_fees:paypal`;
 * - a refund of 100.00 of B through the API, and its PAYMENT.CAPTURE.REFUNDED whose
 *   `seller_payable_breakdown` gives 2.66 of the fee back;
 * - charge C (25.07, the real sandbox capture's fee 1.52), whose event never comes;
 * - `billhook settlement sync --gateway paypal`, Transaction Search answering the same captures and
 *   refund (keyed like the webhook's lines, so A's, B's and the refund's fees are not booked twice;
 *   C's fee is booked now) and a T0400 withdrawal of exactly what is left in the balance.
 * Worked by hand in minor units: charges 251 + 46500 + 2507 = 49258, refund -10000, fees
 * 37 + 1379 + 152 - 266 = 1302, so the balance is 49258 - 10000 - 1302 = 37956 and the withdrawal of
 * 379.56 leaves clearing at 0 and bank at 37956.
 *
 * PayPal's withdrawals to the bank are lump sums of the balance: Transaction Search lists them as rows
 * of their own without the captures they carry (transaction-search.ts), so the payout has no lines
 * (`lines_known` false). For the same reason the `charge_not_paid_out` check does not apply to PayPal:
 * a capture stays in the PayPal balance until the merchant withdraws it, no payout ever names it, and
 * PayPal's default payout delay is 0 (`DEFAULT_PAYOUT_DELAY_DAYS`: not checked).
 */
describe('PayPal settlement end to end: capture and refund fees by webhook, Transaction Search, a withdrawal', () => {
  let app: TestApp;
  let env: Record<string, string>;
  beforeAll(async () => {
    app = await startOfflineTestApp(PAYPAL_ENV);
    env = { ...PAYPAL_ENV, DATABASE_URL: app.config.DATABASE_URL!, LOG_LEVEL: 'silent' };
  });
  afterEach(expectEveryMockUsed);
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** A USD invoice of `amount` minor units charged with the vaulted card, PayPal capturing it as `captureId`. */
  async function charge(amount: number, captureId: string) {
    const { invoice } = await openInvoice(app, {
      amount,
      currency: 'usd',
      gateway: 'paypal',
      token: '8kk8451t',
    });
    tokenAvailable();
    nock(PAYPAL_API_BASE)
      .post('/v2/checkout/orders')
      .reply(async (request: Request) => {
        const unit = JSON.parse(await request.text()).purchase_units[0];
        const order = structuredClone(VAULTED);
        order.purchase_units[0].amount = unit.amount;
        Object.assign(order.purchase_units[0].payments.captures[0], {
          id: captureId,
          amount: unit.amount,
          custom_id: unit.custom_id,
          invoice_id: unit.invoice_id,
        });
        return [201, order];
      });
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({
      status: 'succeeded',
      gateway_transaction_id: captureId,
      amount,
    });
    return charged.body as { invoice: { id: string }; transaction: { id: string } };
  }

  /**
   * PayPal's Transaction Search answering every call with one page: the rows of captures A, B and C
   * (the documented T0006 row, each with its own id, amount, fee and our `txn_…` as `custom_field`),
   * the refund's T1107 row (our `re_…`), and the T0400 withdrawal of 379.56, completed (`S`).
   * @returns the query strings asked
   */
  function paypalSearches(references: { a: string; b: string; c: string; refund: string }) {
    const when = searchDate();
    const row = (source: { transaction_info: object }, info: Record<string, unknown>) => ({
      ...source,
      transaction_info: {
        ...source.transaction_info,
        transaction_initiation_date: when,
        transaction_updated_date: when,
        ...info,
      },
    });
    const capture = (id: string, reference: string, amount: string, fee: string) =>
      row(CAPTURE_ROW, {
        transaction_id: id,
        transaction_amount: usd(amount),
        fee_amount: usd(fee),
        invoice_id: reference,
        custom_field: reference,
      });
    const page = {
      transaction_details: [
        capture(CAPTURE_A, references.a, '2.51', '-0.37'),
        capture(CAPTURE_B, references.b, '465.00', '-13.79'),
        capture(CAPTURE_C, references.c, '25.07', '-1.52'),
        row(REFUND_ROW, { custom_field: references.refund }),
        row(WITHDRAWAL_ROW, { transaction_amount: usd('-379.56'), transaction_status: 'S' }),
      ],
      page: 1,
      total_items: 5,
      total_pages: 1,
    };
    const asked: URLSearchParams[] = [];
    tokenAvailable();
    nock(PAYPAL_API_BASE)
      .get('/v1/reporting/transactions')
      .query(true)
      .reply((request: Request) => {
        asked.push(new URL(request.url).searchParams);
        return [200, page];
      });
    return asked;
  }

  /** A settlement line row as the test reads it: net = gross - fee, outside any payout. */
  const line = (
    id: string,
    kind: string,
    gross: bigint,
    fee: bigint,
    transaction: string,
    refundId: string | null,
  ) => ({
    gateway_line_id: id,
    kind,
    gross,
    fee,
    net: gross - fee,
    transaction_id: transaction,
    refund_id: refundId,
    payout_id: null,
  });

  it('books each fee once, the withdrawal as a paid payout emptying clearing into the bank; the report balances; a second sync changes nothing', async () => {
    const from = new Date(Date.now() - 60_000).toISOString();
    const a = await charge(251, CAPTURE_A);
    const b = await charge(46_500, CAPTURE_B);
    const c = await charge(2_507, CAPTURE_C);

    // The captures' events: each a duplicate of the charge, its fee (the settlement line) booked.
    const onlyCharges = await ledgerByCode(app);
    expect(onlyCharges['gateway_clearing:paypal USD']).toBe(49_258);
    for (const event of [
      captureCompleted(CAPTURE_A, a.transaction.id, '2.51', '0.37', '2.14'),
      captureCompleted(CAPTURE_B, b.transaction.id, '465.00', '13.79', '451.21'),
    ]) {
      expect(await deliver(app, event)).toMatchObject({ status: 'processed', outcome: 'duplicate, applied' });
    }
    expect(await ledgerByCode(app)).toMatchObject({
      'gateway_clearing:paypal USD': 49_258 - 37 - 1_379,
      'gateway_fees:paypal USD': 37 + 1_379,
    });

    // A refund of 100.00 of B, and PayPal's event of it giving 2.66 of the fee back.
    tokenAvailable();
    nock(PAYPAL_API_BASE)
      .post(`/v2/payments/captures/${CAPTURE_B}/refund`)
      .reply(201, { ...paypalFixture('api.captures.refund.completed.json'), id: REFUND_B });
    const refund = await app.api('POST', `/v1/invoices/${b.invoice.id}/refund`, { amount: 10_000 });
    expect(refund.body).toMatchObject({ status: 'succeeded', gateway_refund_id: REFUND_B });
    const refunded = structuredClone(REFUND_EVENT);
    refunded.id = `WH-SETTLE-${REFUND_B}`;
    refunded.create_time = new Date().toISOString();
    Object.assign(refunded.resource, {
      id: REFUND_B,
      amount: usd('100.00'),
      custom_id: refund.body.id,
      create_time: refunded.create_time,
      seller_payable_breakdown: {
        gross_amount: usd('100.00'),
        paypal_fee: usd('2.66'),
        net_amount: usd('97.34'),
        total_refunded_amount: usd('100.00'),
      },
      links: [
        { href: `https://api.paypal.com/v2/payments/refunds/${REFUND_B}`, rel: 'self', method: 'GET' },
        { href: `https://api.paypal.com/v2/payments/captures/${CAPTURE_B}`, rel: 'up', method: 'GET' },
      ],
    });
    expect(await deliver(app, refunded)).toMatchObject({
      status: 'processed',
      outcome: 'duplicate, applied',
    });
    expect(await ledgerByCode(app)).toMatchObject({
      'gateway_clearing:paypal USD': 49_258 - 10_000 - 37 - 1_379 + 266,
      'gateway_fees:paypal USD': 37 + 1_379 - 266,
    });

    // The sweep: Transaction Search over the last day, one page.
    const asked = paypalSearches({
      a: a.transaction.id,
      b: b.transaction.id,
      c: c.transaction.id,
      refund: refund.body.id,
    });
    const synced = await cli(['settlement', 'sync', '--gateway', 'paypal', '--days', '1'], env);
    expect(synced.stderr).toBe('');
    expect(synced.code).toBe(0);
    // The withdrawal, and C's line (A's, B's and the refund's were booked by their events).
    expect(synced.stdout).toMatch(/paypal: 1 payout\(s\) and 1 line\(s\) recorded, 0 line\(s\) unmatched/);
    expect(synced.stdout).toMatch(/0 charge\(s\) newly past their payout delay, 0 unexpected fee\(s\)/);
    expect(asked).toHaveLength(1);
    expect(Object.fromEntries(asked[0]!)).toMatchObject({ fields: 'all', page: '1', page_size: '500' });
    expect(
      Date.parse(asked[0]!.get('end_date')!) - Date.parse(asked[0]!.get('start_date')!),
    ).toBeGreaterThanOrEqual(86_399_000);

    const payouts = await app.api('GET', '/v1/payouts?gateway=paypal');
    expect(payouts.body.data).toHaveLength(1);
    const payout = await app.api('GET', `/v1/payouts/${payouts.body.data[0].id}`);
    // A lump sum: no lines, so its line totals are all zero.
    expect(payout.body).toMatchObject({
      gateway_payout_id: WITHDRAWAL,
      status: 'paid',
      currency: 'USD',
      amount: 37_956,
      arrival_date: null,
      lines_known: false,
      line_count: 0,
      gross: 0,
      fees: 0,
      net: 0,
    });
    expect(payout.body.description).toMatch(/T0400 \(bank reference 1040606119999\)/);

    // Every fee once (C's from Transaction Search); clearing empty after the withdrawal.
    const books = await ledgerByCode(app);
    expect(books).toMatchObject({
      'gateway_clearing:paypal USD': 0,
      'gateway_fees:paypal USD': 1_302,
      'payouts_in_transit:paypal USD': 0,
      'bank:paypal USD': 37_956,
    });
    // One line per capture and refund, whichever path saw it first, each matched; in no payout.
    const lines = await app.runtime.db
      .selectFrom('settlement_lines')
      .select(['gateway_line_id', 'kind', 'gross', 'fee', 'net', 'transaction_id', 'refund_id', 'payout_id'])
      .where('gateway', '=', 'paypal')
      .orderBy('gross', 'desc')
      .execute();
    expect(lines).toEqual([
      line(CAPTURE_B, 'charge', 46_500n, 1_379n, b.transaction.id, null),
      line(CAPTURE_C, 'charge', 2_507n, 152n, c.transaction.id, null),
      line(CAPTURE_A, 'charge', 251n, 37n, a.transaction.id, null),
      line(REFUND_B, 'refund', -10_000n, -266n, b.transaction.id, refund.body.id),
    ]);

    const to = new Date(Date.now() + 60_000).toISOString();
    const report = await app.api(
      'GET',
      `/v1/reports/settlement?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&gateway=paypal`,
    );
    expect(report.status).toBe(200);
    expect(report.body.data).toEqual([
      {
        gateway: 'paypal',
        gateway_account: null,
        currency: 'USD',
        clearing: {
          opening: 0,
          charges: 49_258,
          refunds: -10_000,
          disputes: 0,
          fees: -1_302,
          conversions: 0,
          adjustments: 0,
          payouts: -37_956,
          other: 0,
          closing: 0,
          balances: true,
        },
        gateway_fees: { opening: 0, movements: 1_302, closing: 1_302 },
        fx: { opening: 0, movements: 0, closing: 0 },
        payouts_in_transit: { opening: 0, movements: 0, closing: 0 },
        bank: { opening: 0, movements: 37_956, closing: 37_956 },
      },
    ]);

    // The same day again (the next sweep overlaps): nothing new.
    const entries = await countEntries(app.runtime.db);
    expectEveryMockUsed();
    paypalSearches({ a: a.transaction.id, b: b.transaction.id, c: c.transaction.id, refund: refund.body.id });
    const again = await cli(['settlement', 'sync', '--gateway', 'paypal', '--days', '1'], env);
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect(again.stdout).toMatch(/paypal: 0 payout\(s\) and 0 line\(s\) recorded, 0 line\(s\) unmatched/);
    expect(await countEntries(app.runtime.db)).toBe(entries);
    expect(await ledgerByCode(app)).toEqual(books);
    expect((await app.api('GET', '/v1/reconciliation-exceptions?gateway=paypal')).body.data).toEqual([]);
  });
});
