import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SettlementLine } from '../../src/gateways/settlement.ts';
import { balanceOf } from '../../src/ledger/balances.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordDispute } from '../../src/payments/disputes.ts';
import { recordPayout } from '../../src/settlement/payouts.ts';
import type { TestApp } from '../support/app.ts';
import { cli } from '../support/cli.ts';
import { paidStripeInvoice, stripeRefundSucceeds } from '../support/flow.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { waitFor } from '../support/wait.ts';

const FAR = '2100-01-01T00:00:00Z';
const EPOCH = '2000-01-01';

/** A settlement line of the scenario (EUR, minor units), booked by Stripe on `occurredAt`. */
function line(l: Omit<SettlementLine, 'currency' | 'net' | 'occurredAt'>): SettlementLine {
  return { ...l, currency: 'EUR', net: l.gross - l.fee, occurredAt: new Date('2026-11-01T12:00:00Z') };
}

/**
 * PRODUCT.md §13 and issue #25 item 7: payouts read back with what their lines add up to and what
 * each line matched, listed with filters and cursor pages, and the settlement report per gateway
 * account and currency, balancing from opening to closing clearing; over HTTP and the CLI.
 *
 * The scenario (EUR, Stripe): charges A (46.20) and B (100.00) on the default account, 30.00 of B
 * refunded, A disputed in full; then payout 1 (paid) of their lines with their fees, a Stripe fee
 * line and a charge billhook never made (unmatched), payout 2 on a gateway account (an adjustment,
 * not summing to its amount) and payout 3 (in transit, lines not listed).
 */
describe('settlement reads: /v1/payouts, /v1/reports/settlement, billhook settlement report', () => {
  let app: TestApp;
  let account: string;
  /** The moment between the charges and the payouts, as the report takes it. */
  let boundary: string;
  const ids = {
    chargeA: '',
    chargeB: '',
    refund: '',
    dispute: '',
    payout1: '',
    payout2: '',
    payout3: '',
  };

  const report = async (query: string) => {
    const answer = await app.api('GET', `/v1/reports/settlement?${query}`);
    expect(answer.status).toBe(200);
    return answer.body;
  };
  const payoutIds = async (query: string) => {
    const answer = await app.api('GET', `/v1/payouts?${query}`);
    expect(answer.status).toBe(200);
    return answer.body.data.map((p: { id: string }) => p.id);
  };

  beforeAll(async () => {
    app = await startOfflineTestApp({ BILLHOOK_SECRET_KEY: randomBytes(32).toString('hex') });
    const { db } = app.runtime;
    const created = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'stripe',
      name: 'EU',
      mode: 'test',
      credentials: { secret_key: 'sk_test_settlement_eu_0123', webhook_secrets: ['whsec_settlement_eu'] },
      api_base: 'https://eu.stripe.test',
    });
    expect(created.status).toBe(201);
    account = created.body.id;

    // The charges, the refund and the dispute, booked as billhook books them.
    const a = await paidStripeInvoice(app, { amount: 4620 });
    const b = await paidStripeInvoice(app, { amount: 10000 });
    ids.chargeA = a.transaction.id;
    ids.chargeB = b.transaction.id;
    stripeRefundSucceeds('re_settlement_b');
    const refund = await app.api('POST', `/v1/invoices/${b.invoice.id}/refund`, { amount: 3000 });
    expect(refund.status).toBe(201);
    ids.refund = refund.body.id;
    const transactionA = await db
      .selectFrom('transactions')
      .selectAll()
      .where('id', '=', ids.chargeA)
      .executeTakeFirstOrThrow();
    const dispute = await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordDispute(work, transactionA, {
        gatewayDisputeId: 'du_settlement_a',
        status: 'open',
        amount: 4620n,
      }),
    );
    ids.dispute = dispute.dispute.id;

    // Entries are dated by their transaction's start: the boundary is after every entry so far, and
    // the payouts are booked once the database's clock has passed it.
    const last = await db
      .selectFrom('journal_entries')
      .select(sql<Date>`max(created_at)`.as('at'))
      .executeTakeFirstOrThrow();
    const at = new Date(last.at.getTime() + 1);
    boundary = at.toISOString();
    await waitFor('the database clock to pass the boundary', async () => {
      const now = await sql<{ now: Date }>`SELECT now() AS now`.execute(db);
      return now.rows[0]!.now > at;
    });

    const pay = (gatewayAccount: string | null, payout: Parameters<typeof recordPayout>[2]) =>
      inUnitOfWork(db, { actor: 'system' }, (work) =>
        recordPayout(work, { gateway: 'stripe', gatewayAccount }, payout, { acceptUnmatched: true }),
      );
    const one = await pay(null, {
      gatewayPayoutId: 'po_settlement_1',
      status: 'paid',
      currency: 'EUR',
      amount: 6428n,
      createdAt: new Date('2026-11-02T00:00:00Z'),
      arrivalDate: new Date('2026-11-04T00:00:00Z'),
      lines: [
        line({
          gatewayLineId: 'txn_bt_a',
          kind: 'charge',
          gatewayTransactionId: a.transaction.gateway_transaction_id,
          gross: 4620n,
          fee: 164n,
        }),
        line({
          gatewayLineId: 'txn_bt_b',
          kind: 'charge',
          gatewayTransactionId: b.transaction.gateway_transaction_id,
          gross: 10000n,
          fee: 320n,
        }),
        line({
          gatewayLineId: 'txn_bt_re',
          kind: 'refund',
          gatewayRefundId: 're_settlement_b',
          gross: -3000n,
          fee: 0n,
        }),
        line({
          gatewayLineId: 'txn_bt_du',
          kind: 'dispute',
          gatewayDisputeId: 'du_settlement_a',
          gross: -4620n,
          fee: 1500n,
        }),
        line({ gatewayLineId: 'txn_bt_fee', kind: 'fee', gross: -500n, fee: 0n, description: 'Radar fees' }),
        line({
          gatewayLineId: 'txn_bt_x',
          kind: 'charge',
          gatewayTransactionId: 'pi_never_made_here',
          gross: 2000n,
          fee: 88n,
        }),
      ],
    });
    const two = await pay(account, {
      gatewayPayoutId: 'po_settlement_2',
      status: 'in_transit',
      currency: 'EUR',
      amount: 800n,
      createdAt: new Date('2026-11-05T00:00:00Z'),
      arrivalDate: new Date('2026-11-07T00:00:00Z'),
      lines: [line({ gatewayLineId: 'txn_bt_adj', kind: 'adjustment', gross: 700n, fee: 0n })],
    });
    const three = await pay(null, {
      gatewayPayoutId: 'po_settlement_3',
      status: 'in_transit',
      currency: 'EUR',
      amount: 1000n,
      createdAt: new Date('2026-11-08T00:00:00Z'),
      arrivalDate: new Date('2026-11-10T00:00:00Z'),
    });
    for (const outcome of [one, two, three]) expect(outcome.kind).toBe('applied');
    ids.payout1 = one.kind === 'not_found' ? '' : one.payout.id;
    ids.payout2 = two.kind === 'not_found' ? '' : two.payout.id;
    ids.payout3 = three.kind === 'not_found' ? '' : three.payout.id;
  });
  afterEach(expectEveryMockUsed);
  afterAll(() => stopOfflineTestApp(app));

  it('reads a payout with its gross, fees, refunds, disputes, adjustments and net, and its lines with what each matched', async () => {
    const answer = await app.api('GET', `/v1/payouts/${ids.payout1}`);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      id: ids.payout1,
      object: 'payout',
      gateway: 'stripe',
      gateway_account: null,
      gateway_payout_id: 'po_settlement_1',
      status: 'paid',
      currency: 'EUR',
      amount: 6428,
      // 4620 + 10000 + 2000 (the unmatched charge counts: the gateway paid it out).
      gross: 16620,
      // 164 + 320 + 1500 + 88, and the 5.00 fee line.
      fees: 2572,
      refunds: -3000,
      disputes: -4620,
      adjustments: 0,
      net: 6428,
      lines_known: true,
      line_count: 6,
      unmatched_lines: 1,
      arrival_date: '2026-11-04T00:00:00.000Z',
      gateway_created_at: '2026-11-02T00:00:00.000Z',
    });
    const { body } = answer;
    expect(body.gross + body.refunds + body.disputes + body.adjustments - body.fees).toBe(body.net);
    const byLine = Object.fromEntries(
      body.lines.map((l: { gateway_line_id: string }) => [l.gateway_line_id, l]),
    );
    expect(byLine.txn_bt_a).toMatchObject({
      object: 'settlement_line',
      kind: 'charge',
      gross: 4620,
      fee: 164,
      net: 4456,
      matched: ids.chargeA,
      unmatched: false,
      transaction: ids.chargeA,
    });
    expect(byLine.txn_bt_b).toMatchObject({ matched: ids.chargeB, unmatched: false });
    expect(byLine.txn_bt_re).toMatchObject({
      kind: 'refund',
      matched: ids.refund,
      refund: ids.refund,
      transaction: ids.chargeB,
      unmatched: false,
    });
    expect(byLine.txn_bt_du).toMatchObject({
      kind: 'dispute',
      matched: ids.dispute,
      dispute: ids.dispute,
      net: -6120,
      unmatched: false,
    });
    // A fee line is about no billhook object; the charge billhook never made is flagged.
    expect(byLine.txn_bt_fee).toMatchObject({ kind: 'fee', matched: null, unmatched: false });
    expect(byLine.txn_bt_x).toMatchObject({
      kind: 'charge',
      matched: null,
      unmatched: true,
      transaction: null,
      gateway_transaction_id: 'pi_never_made_here',
    });

    // A payout whose lines are not known yet sums to nothing.
    const three = await app.api('GET', `/v1/payouts/${ids.payout3}`);
    expect(three.body).toMatchObject({ amount: 1000, net: 0, lines_known: false, line_count: 0, lines: [] });
    const missing = await app.api('GET', '/v1/payouts/pyo_unknown');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('payout_not_found');
  });

  it('lists payouts newest first in cursor pages, filtered by gateway account, status, currency and dates', async () => {
    expect(await payoutIds('')).toEqual([ids.payout3, ids.payout2, ids.payout1]);
    const first = await app.api('GET', '/v1/payouts?limit=2');
    expect(first.body.has_more).toBe(true);
    expect(first.body.data[0]).toMatchObject({ id: ids.payout3, net: 0 });
    expect(first.body.data[1]).toMatchObject({ id: ids.payout2, adjustments: 700, net: 700, amount: 800 });
    const next = await app.api('GET', `/v1/payouts?limit=2&starting_after=${ids.payout2}`);
    expect(next.body).toMatchObject({ has_more: false, data: [{ id: ids.payout1, net: 6428 }] });
    expect(await payoutIds('sort=created')).toEqual([ids.payout1, ids.payout2, ids.payout3]);

    expect(await payoutIds('gateway_account=default')).toEqual([ids.payout3, ids.payout1]);
    expect(await payoutIds(`gateway_account=${account}`)).toEqual([ids.payout2]);
    expect(await payoutIds('status=paid')).toEqual([ids.payout1]);
    expect(await payoutIds('status=in_transit&gateway=stripe')).toEqual([ids.payout3, ids.payout2]);
    expect(await payoutIds('gateway=paypal')).toEqual([]);
    expect(await payoutIds('currency=eur')).toHaveLength(3);
    expect(await payoutIds('currency=USD')).toEqual([]);
    // created_*: when the gateway created it; arrival_*: its arrival date.
    expect(await payoutIds('created_gte=2026-11-05T00:00:00Z')).toEqual([ids.payout3, ids.payout2]);
    expect(await payoutIds('created_lt=2026-11-05T00:00:00Z')).toEqual([ids.payout1]);
    expect(await payoutIds('arrival_gte=2026-11-05T00:00:00Z&arrival_lt=2026-11-08T00:00:00Z')).toEqual([
      ids.payout2,
    ]);
  });

  it('lists the exceptions of a payout and of a gateway account, naming the payout, line and account', async () => {
    const ofPayout = await app.api('GET', `/v1/reconciliation-exceptions?payout=${ids.payout1}`);
    expect(ofPayout.status).toBe(200);
    expect(ofPayout.body.data).toHaveLength(1);
    const unmatchedLine = await app.api('GET', `/v1/payouts/${ids.payout1}`);
    const lineX = unmatchedLine.body.lines.find(
      (l: { gateway_line_id: string }) => l.gateway_line_id === 'txn_bt_x',
    );
    expect(ofPayout.body.data[0]).toMatchObject({
      kind: 'settlement_line_unmatched',
      gateway: 'stripe',
      gateway_account: null,
      payout: ids.payout1,
      settlement_line: lineX.id,
    });
    const ofAccount = await app.api('GET', `/v1/reconciliation-exceptions?gateway_account=${account}`);
    // Payout 2's lines do not add up to it, and its adjustment line is for a person.
    expect(ofAccount.body.data).toHaveLength(2);
    const adjustmentLine = (await app.api('GET', `/v1/payouts/${ids.payout2}`)).body.lines.find(
      (l: { gateway_line_id: string }) => l.gateway_line_id === 'txn_bt_adj',
    );
    expect(ofAccount.body.data).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          kind: 'payout_lines_mismatch',
          gateway_account: account,
          payout: ids.payout2,
          settlement_line: null,
        }),
        expect.objectContaining({
          kind: 'settlement_adjustment',
          gateway_account: account,
          payout: ids.payout2,
          settlement_line: adjustmentLine.id,
        }),
      ]),
    );
    expect((await app.api('GET', `/v1/reconciliation-exceptions?payout=${ids.payout3}`)).body.data).toEqual(
      [],
    );
    const byDefault = await app.api('GET', '/v1/reconciliation-exceptions?gateway_account=default');
    expect(byDefault.body.data.map((x: { payout: string }) => x.payout)).toEqual([ids.payout1]);
  });

  it('reports each gateway account and currency from its opening to its closing clearing balance, by source', async () => {
    const before = await report(`from=${EPOCH}&to=${boundary}`);
    expect(before).toMatchObject({
      object: 'settlement_report',
      from: '2000-01-01T00:00:00.000Z',
      to: boundary,
    });
    expect(before.data).toEqual([
      {
        gateway: 'stripe',
        gateway_account: null,
        currency: 'EUR',
        // 46.20 and 100.00 charged, 30.00 refunded, 46.20 withheld by the dispute.
        clearing: {
          opening: 0,
          charges: 14620,
          refunds: -3000,
          disputes: -4620,
          fees: 0,
          conversions: 0,
          adjustments: 0,
          payouts: 0,
          other: 0,
          closing: 7000,
          balances: true,
        },
        gateway_fees: { opening: 0, movements: 0, closing: 0 },
        fx: { opening: 0, movements: 0, closing: 0 },
        payouts_in_transit: { opening: 0, movements: 0, closing: 0 },
        bank: { opening: 0, movements: 0, closing: 0 },
      },
      // The account's clearing exists (booked after the boundary): nothing before it.
      expect.objectContaining({
        gateway_account: account,
        clearing: expect.objectContaining({ opening: 0, closing: 0, balances: true }),
      }),
    ]);

    const after = await report(`from=${boundary}&to=${FAR}`);
    expect(after.data).toEqual([
      {
        gateway: 'stripe',
        gateway_account: null,
        currency: 'EUR',
        clearing: {
          opening: 7000,
          charges: 0,
          refunds: 0,
          disputes: 0,
          // The matched lines' fees (164 + 320 + 1500) and the 5.00 fee line.
          fees: -2484,
          conversions: 0,
          adjustments: 0,
          // Payout 1 (64.28) and payout 3 (10.00).
          payouts: -7428,
          other: 0,
          // Negative: payout 1 paid out 19.12 of a charge billhook never booked (its exception).
          closing: -2912,
          balances: true,
        },
        gateway_fees: { opening: 0, movements: 2484, closing: 2484 },
        fx: { opening: 0, movements: 0, closing: 0 },
        // Payout 1 went through to the bank; payout 3 is on its way.
        payouts_in_transit: { opening: 0, movements: 1000, closing: 1000 },
        bank: { opening: 0, movements: 6428, closing: 6428 },
      },
      {
        gateway: 'stripe',
        gateway_account: account,
        currency: 'EUR',
        clearing: {
          opening: 0,
          charges: 0,
          refunds: 0,
          disputes: 0,
          fees: 0,
          conversions: 0,
          adjustments: 700,
          payouts: -800,
          other: 0,
          closing: -100,
          balances: true,
        },
        gateway_fees: { opening: 0, movements: 0, closing: 0 },
        fx: { opening: 0, movements: 0, closing: 0 },
        payouts_in_transit: { opening: 0, movements: 800, closing: 800 },
        bank: { opening: 0, movements: 0, closing: 0 },
      },
    ]);
    // Opening + movements = closing for every gateway account and currency, each period's closing is
    // the next one's opening, and the closing is the ledger's balance today.
    for (const [index, row] of after.data.entries()) {
      const c = row.clearing;
      expect(
        c.opening +
          c.charges +
          c.refunds +
          c.disputes +
          c.fees +
          c.conversions +
          c.adjustments +
          c.payouts +
          c.other,
      ).toBe(c.closing);
      expect(before.data[index].clearing.closing).toBe(c.opening);
      const code = row.gateway_account
        ? `gateway_clearing:stripe:${row.gateway_account}`
        : 'gateway_clearing:stripe';
      expect(await balanceOf(app.runtime.db, code, 'EUR')).toBe(BigInt(c.closing));
    }
    const whole = await report(`from=${EPOCH}&to=${FAR}`);
    expect(whole.data.map((r: { clearing: { closing: number } }) => r.clearing.closing)).toEqual([
      -2912, -100,
    ]);

    // Filters: one gateway account (the default's, or by id), a currency, a gateway.
    const span = `from=${EPOCH}&to=${FAR}`;
    expect((await report(`${span}&gateway_account=default`)).data.map((r: any) => r.gateway_account)).toEqual(
      [null],
    );
    expect(
      (await report(`${span}&gateway_account=${account}`)).data.map((r: any) => r.gateway_account),
    ).toEqual([account]);
    expect((await report(`${span}&currency=eur&gateway=stripe`)).data).toHaveLength(2);
    expect((await report(`${span}&currency=usd`)).data).toEqual([]);
    expect((await report(`${span}&gateway=paypal`)).data).toEqual([]);
  });

  it('answers 422 with a message per field to bad queries', async () => {
    const noPeriod = await app.api('GET', '/v1/reports/settlement');
    expect(noPeriod.status).toBe(422);
    expect(Object.keys(noPeriod.body.error.fields).sort()).toEqual(['from', 'to']);
    const bad = await app.api(
      'GET',
      '/v1/reports/settlement?from=yesterday&to=2026-13-01&gateway=bank&gateway_account=gwa_!&currency=EURO',
    );
    expect(bad.status).toBe(422);
    expect(bad.body.error.fields).toMatchObject({
      from: expect.stringContaining('date'),
      to: expect.stringContaining('date'),
      gateway: expect.any(String),
      gateway_account: 'must be default or a gwa_… id',
      currency: expect.stringContaining('ISO 4217'),
    });
    const backwards = await app.api('GET', '/v1/reports/settlement?from=2026-12-01&to=2026-11-01');
    expect(backwards.status).toBe(422);
    expect(backwards.body.error.fields).toEqual({ to: 'must be after from' });

    const list = await app.api(
      'GET',
      '/v1/payouts?status=sent&currency=12&arrival_gte=monday&limit=0&gateway_account=acct_1',
    );
    expect(list.status).toBe(422);
    expect(Object.keys(list.body.error.fields).sort()).toEqual([
      'arrival_gte',
      'currency',
      'gateway_account',
      'limit',
      'status',
    ]);
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?payout=po_not_ours');
    expect(exceptions.status).toBe(422);
    expect(exceptions.body.error.fields).toEqual({ payout: 'must be a pyo_… id' });
  });

  it('prints the same report with billhook settlement report (text and --json)', async () => {
    const env = { DATABASE_URL: app.config.DATABASE_URL!, LOG_LEVEL: 'silent' };
    const api = await report(`from=${boundary}&to=${FAR}`);
    const json = await cli(['settlement', 'report', '--from', boundary, '--to', FAR, '--json'], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(api);

    const text = await cli(
      ['settlement', 'report', '--from', boundary, '--to', FAR, '--account', 'default'],
      env,
    );
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('stripe default EUR');
    expect(text.stdout).not.toContain(account);
    for (const [label, amount] of [
      ['clearing opening', 7000],
      ['fees', -2484],
      ['payouts', -7428],
      ['clearing closing', -2912],
      ['gateway fees', 2484],
      ['payouts in transit', 1000],
      ['bank', 6428],
    ] as const) {
      expect(text.stdout).toMatch(new RegExp(`^ +${label} +${amount}\\b`, 'm'));
    }
    expect(text.stdout).not.toContain('DOES NOT BALANCE');

    const bad = await cli(['settlement', 'report', '--from', '2026-12-01', '--to', '2026-11-01'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('invalid report query: to: must be after from');
  });
});
