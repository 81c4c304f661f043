import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { PayoutReport, SettlementLine } from '../../src/gateways/settlement.ts';
import { parseSettlementCsv } from '../../src/gateways/settlement-csv.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recordSettlementLine } from '../../src/settlement/lines.ts';
import { recordPayout } from '../../src/settlement/payouts.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  insertGatewayAccount,
  moneyCoreDatabase,
  pendingCharge,
  succeededCharge,
} from '../support/money-core.ts';
import { waitFor } from '../support/wait.ts';

let db: Db;
beforeEach(async () => {
  db = await moneyCoreDatabase();
});
afterEach(() => db?.destroy());

/** A gateway account `id` (`gwa_…`) of `gateway` (money-core's `insertGatewayAccount`). */
const stripeAccount = (id: string, gateway: 'stripe' | 'securepay' = 'stripe') =>
  insertGatewayAccount(db, id, gateway);

/** A balance transaction line of `kind` (minor units; net = gross - fee), occurring now. */
const line = (
  gatewayLineId: string,
  kind: SettlementLine['kind'],
  currency: string,
  gross: bigint,
  fee: bigint,
  ids: Partial<SettlementLine>,
): SettlementLine => ({
  gatewayLineId,
  kind,
  currency,
  gross,
  fee,
  net: gross - fee,
  occurredAt: new Date(),
  ...ids,
});

/** A payout of `lines` (its amount their nets, in `currency`), with `status`. */
const payout = (
  gatewayPayoutId: string,
  currency: string,
  lines: SettlementLine[],
  status: PayoutReport['status'] = 'paid',
): PayoutReport => ({
  gatewayPayoutId,
  status,
  currency,
  amount: lines.reduce((sum, l) => sum + l.net, 0n),
  createdAt: new Date('2026-12-01T00:00:00Z'),
  arrivalDate: new Date('2026-12-03T00:00:00Z'),
  lines,
});

/** Records a report of `payouts` (and standalone `lines`) on Stripe account `gatewayAccount` (null: default). */
const record = (gatewayAccount: string | null, payouts: PayoutReport[], lines: SettlementLine[] = []) =>
  recordSettlementReport(db, 'system', { gateway: 'stripe', gatewayAccount }, { payouts, lines });

/** The reconciliation exceptions, by kind, account and message. */
const exceptions = () =>
  db
    .selectFrom('reconciliation_exceptions')
    .select(['kind', 'gateway_account', 'message'])
    .orderBy('id')
    .execute();

/**
 * A payment taken on the default Stripe account (gateway_account null) paid out in a payout reported
 * on another account (gwa_b). Worked by hand, CHF: the charge books clearing:stripe +10000. The
 * payout on gwa_b of 9700 lists it (gross 10000, fee 300, net 9700). It used to be matched across
 * accounts: fee 300 to gateway_fees:stripe:gwa_b, gwa_b clearing -300 - 9700 = -10000, the default
 * clearing +10000 for ever, nothing for a person. Now the line is unmatched (for a person, naming both
 * accounts): nothing booked for it on either account; the payout's own money moves as for any payout
 * with an unmatched line (its net from gwa_b's clearing to gwa_b's bank: -9700 there, to be put right
 * by a person), and the charge stays in the default account's clearing.
 */
describe('a settlement line on one gateway account naming a payment of another', () => {
  it('is unmatched for a person, booked into neither account', async () => {
    await succeededCharge(db, { currency: 'CHF', amount: 10_000n, gatewayTransactionId: 'pi_chf_default' });
    await stripeAccount('gwa_b');
    const totals = await record('gwa_b', [
      payout('po_chf_b', 'CHF', [
        line('txn_chf_default', 'charge', 'CHF', 10_000n, 300n, { gatewayTransactionId: 'pi_chf_default' }),
      ]),
    ]);
    expect(totals).toMatchObject({ payouts: 1, unmatched: 1 });
    const stl = await db
      .selectFrom('settlement_lines')
      .select(['transaction_id', 'gateway_account'])
      .where('gateway_line_id', '=', 'txn_chf_default')
      .executeTakeFirstOrThrow();
    expect(stl).toEqual({ transaction_id: null, gateway_account: 'gwa_b' });
    const books = await booksIn(db, 'CHF');
    expect({
      defaultClearing: books['gateway_clearing:stripe'],
      defaultFees: books['gateway_fees:stripe'] ?? 0n,
      bClearing: books['gateway_clearing:stripe:gwa_b'],
      bFees: books['gateway_fees:stripe:gwa_b'] ?? 0n,
      bBank: books['bank:stripe:gwa_b'],
    }).toEqual({ defaultClearing: 10_000n, defaultFees: 0n, bClearing: -9_700n, bFees: 0n, bBank: 9_700n });
    const raised = await exceptions();
    expect(raised).toContainEqual({
      kind: 'settlement_line_unmatched',
      gateway_account: 'gwa_b',
      message: expect.stringMatching(
        /charge line txn_chf_default .* of gateway account stripe:gwa_b names pi_chf_default of gateway account stripe: matched to nothing and booked on neither account/,
      ),
    });

    // A later sweep tries the line again: still unmatched, nothing booked, no second exception.
    await record('gwa_b', []);
    expect(await booksIn(db, 'CHF')).toEqual(books);
    expect(await exceptions()).toEqual(raised);
  });

  it('refunds and disputes of another account are unmatched too; the same lines on the right account match', async () => {
    const { transaction } = await succeededCharge(db, {
      currency: 'SEK',
      amount: 5_000n,
      gatewayTransactionId: 'pi_sek_default',
    });
    await applyAsBatch(
      db,
      canonicalEvent({
        type: 'refund.succeeded',
        gatewayTransactionId: 'pi_sek_default',
        gatewayRefundId: 're_sek_default',
        amount: 1_000n,
        currency: 'SEK',
      }),
    );
    await applyAsBatch(
      db,
      canonicalEvent({
        type: 'dispute.opened',
        gatewayTransactionId: 'pi_sek_default',
        gatewayDisputeId: 'du_sek_default',
        amount: 4_000n,
        currency: 'SEK',
      }),
    );
    await stripeAccount('gwa_b');
    const lines = [
      line('txn_sek_refund', 'refund', 'SEK', -1_000n, 0n, { gatewayRefundId: 're_sek_default' }),
      line('txn_sek_dispute', 'dispute', 'SEK', -4_000n, 1_500n, { gatewayDisputeId: 'du_sek_default' }),
    ];
    const before = await booksIn(db, 'SEK');
    await record('gwa_b', [], lines);
    const onB = await db
      .selectFrom('settlement_lines')
      .select(['gateway_line_id', 'transaction_id'])
      .where('gateway_account', '=', 'gwa_b')
      .orderBy('gateway_line_id')
      .execute();
    expect(onB).toEqual([
      { gateway_line_id: 'txn_sek_dispute', transaction_id: null },
      { gateway_line_id: 'txn_sek_refund', transaction_id: null },
    ]);
    expect(await booksIn(db, 'SEK')).toEqual(before);
    expect((await exceptions()).filter((x) => x.kind === 'settlement_line_unmatched')).toHaveLength(2);

    await record(null, [], lines);
    const onDefault = await db
      .selectFrom('settlement_lines')
      .select(['gateway_line_id', 'transaction_id'])
      .where('gateway_account', 'is', null)
      .orderBy('gateway_line_id')
      .execute();
    expect(onDefault).toEqual([
      { gateway_line_id: 'txn_sek_dispute', transaction_id: transaction.id },
      { gateway_line_id: 'txn_sek_refund', transaction_id: transaction.id },
    ]);
    expect((await booksIn(db, 'SEK'))['gateway_fees:stripe']).toBe(1_500n);
  });

  it('a webhook line of another account is recorded unmatched at once, not refused for a retry', async () => {
    await succeededCharge(db, { currency: 'DKK', amount: 2_000n, gatewayTransactionId: 'pi_dkk_default' });
    await stripeAccount('gwa_b');
    const outcome = await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordSettlementLine(
        work,
        { gateway: 'stripe', gatewayAccount: 'gwa_b' },
        line('txn_dkk_default', 'charge', 'DKK', 2_000n, 60n, { gatewayTransactionId: 'pi_dkk_default' }),
        null,
        { unmatched: 'refuse' },
      ),
    );
    expect(outcome).toMatchObject({ kind: 'unmatched', otherAccount: null, line: { transaction_id: null } });
    expect((await booksIn(db, 'DKK'))['gateway_fees:stripe:gwa_b'] ?? 0n).toBe(0n);
  });
});

/*
 * The same gateway payout read on two gateway accounts (one account at Stripe, the default account's
 * keys moved into gwa_c with overlapping sweep windows). Worked by hand, NOK: charge 8000, payout
 * po_nok (fee 240, net 7760) in transit on the default account: clearing 0, fees 240, in transit
 * 7760. It used to be new again on gwa_c (payouts and lines are keyed per account): fee 240 again on
 * gwa_c, 7760 again to gwa_c's bank, gwa_c's clearing -8000: fees 480 and 15520 paid out for one
 * 8000 charge. Now gwa_c's read of it is the default account's payout: it moves forward there (paid:
 * 7760 from in transit to the default bank), and nothing is booked on gwa_c.
 */
describe('one gateway payout read on two gateway accounts', () => {
  it('books its fee and its bank transfer once, on the account that recorded it first', async () => {
    await succeededCharge(db, { currency: 'NOK', amount: 8_000n, gatewayTransactionId: 'pi_nok_twice' });
    await stripeAccount('gwa_c');
    const lines = [
      line('txn_nok_twice', 'charge', 'NOK', 8_000n, 240n, { gatewayTransactionId: 'pi_nok_twice' }),
    ];
    await record(null, [payout('po_nok', 'NOK', lines, 'in_transit')]);
    const totals = await record('gwa_c', [payout('po_nok', 'NOK', lines, 'paid')]);
    expect(totals).toEqual({ lines: 0, payouts: 1, unmatched: 0 });
    const books = await booksIn(db, 'NOK');
    expect({
      clearing: books['gateway_clearing:stripe'],
      fees: books['gateway_fees:stripe'],
      inTransit: books['payouts_in_transit:stripe'],
      bank: books['bank:stripe'],
      onC: Object.keys(books).filter((code) => code.endsWith(':gwa_c') && books[code] !== 0n),
    }).toEqual({ clearing: 0n, fees: 240n, inTransit: 0n, bank: 7_760n, onC: [] });
    const payouts = await db.selectFrom('payouts').select(['gateway_account', 'status']).execute();
    expect(payouts).toEqual([{ gateway_account: null, status: 'paid' }]);
    expect(await db.selectFrom('settlement_lines').select('gateway_account').execute()).toEqual([
      { gateway_account: null },
    ]);
    expect(await exceptions()).toEqual([]);
  });

  it('a payout of another account with the same gateway id, amount and date but other lines is its own', async () => {
    await succeededCharge(db, { currency: 'NOK', amount: 8_000n, gatewayTransactionId: 'pi_nok_a' });
    await stripeAccount('gwa_c');
    await record(null, [
      payout('po_by_hand', 'NOK', [
        line('txn_nok_a', 'charge', 'NOK', 8_000n, 240n, { gatewayTransactionId: 'pi_nok_a' }),
      ]),
    ]);
    await record('gwa_c', [
      payout('po_by_hand', 'NOK', [line('adj_c', 'adjustment', 'NOK', 7_760n, 0n, {})]),
    ]);
    const payouts = await db
      .selectFrom('payouts')
      .select(['gateway_account', 'amount'])
      .orderBy('gateway_account', (ob) => ob.nullsFirst())
      .execute();
    expect(payouts).toEqual([
      { gateway_account: null, amount: 7_760n },
      { gateway_account: 'gwa_c', amount: 7_760n },
    ]);
    expect((await booksIn(db, 'NOK'))['bank:stripe:gwa_c']).toBe(7_760n);
  });

  it('a payout of another account with the same gateway id but another amount is its own', async () => {
    await succeededCharge(db, { currency: 'NOK', amount: 8_000n, gatewayTransactionId: 'pi_nok_a' });
    await stripeAccount('gwa_c');
    await record(null, [
      payout('po_same_id', 'NOK', [
        line('txn_nok_a', 'charge', 'NOK', 8_000n, 240n, { gatewayTransactionId: 'pi_nok_a' }),
      ]),
    ]);
    await record('gwa_c', [payout('po_same_id', 'NOK', [line('txn_fee_c', 'fee', 'NOK', -500n, 0n, {})])]);
    const payouts = await db
      .selectFrom('payouts')
      .select(['gateway_account', 'amount'])
      .orderBy('amount')
      .execute();
    expect(payouts).toEqual([
      { gateway_account: 'gwa_c', amount: -500n },
      { gateway_account: null, amount: 7_760n },
    ]);
  });

  it('recorded at the same time on two accounts is booked once', async () => {
    await succeededCharge(db, { currency: 'NOK', amount: 8_000n, gatewayTransactionId: 'pi_nok_race' });
    await stripeAccount('gwa_c');
    const report = payout('po_race', 'NOK', [
      line('txn_nok_race', 'charge', 'NOK', 8_000n, 240n, { gatewayTransactionId: 'pi_nok_race' }),
    ]);
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let recorded = () => {};
    const firstRecorded = new Promise<void>((resolve) => {
      recorded = resolve;
    });
    // The default account's sweep has recorded the payout, not committed yet, when gwa_c's comes.
    const first = inUnitOfWork(db, { actor: 'system' }, async (work) => {
      await recordPayout(work, { gateway: 'stripe', gatewayAccount: null }, report, {
        acceptUnmatched: true,
      });
      recorded();
      await held;
    });
    await firstRecorded;
    let secondDone = false;
    const second = inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordPayout(work, { gateway: 'stripe', gatewayAccount: 'gwa_c' }, report, { acceptUnmatched: true }),
    ).finally(() => {
      secondDone = true;
    });
    // It waits for the payment of the payout's charge line, which the first holds (`lockChargeLinesAhead`).
    await waitFor('gwa_c to wait for the payout or to be done', async () => {
      const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(db);
      return secondDone || (rows[0]?.n ?? 0) > 0;
    });
    release();
    await Promise.all([first, second]);
    const books = await booksIn(db, 'NOK');
    expect({
      payouts: await db.selectFrom('payouts').select('gateway_account').execute(),
      bank: (books['bank:stripe'] ?? 0n) + (books['bank:stripe:gwa_c'] ?? 0n),
      fees: (books['gateway_fees:stripe'] ?? 0n) + (books['gateway_fees:stripe:gwa_c'] ?? 0n),
    }).toEqual({ payouts: [{ gateway_account: null }], bank: 7_760n, fees: 240n });
  }, 60_000);

  /*
   * Two SecurePay merchants (the default account and gwa_sp2) each import their own day's settlement
   * file, the operator writing the settlement date as payout_id and row numbers as line_id (both
   * allowed, docs/settlement-csv.md): the same id, currency, amount, date and line ids, AUD 100.00
   * less 1.00, but of other orders. gwa_sp2's import used to be taken for the default account's payout
   * and book nothing: its clearing kept 10000, its fee 100 and payout 9900 were never booked.
   */
  it('two files of two accounts with the same payout id, totals and line ids but other orders are two payouts', async () => {
    await stripeAccount('gwa_sp2', 'securepay');
    const charges = [];
    for (const [account, order] of [
      [null, 'order_a'],
      ['gwa_sp2', 'order_b'],
    ] as const) {
      const pending = await pendingCharge(db, { currency: 'AUD', amount: 10_000n, gateway: 'securepay' });
      await db
        .updateTable('transactions')
        .set({ gateway_account: account })
        .where('id', '=', pending.transaction.id)
        .execute();
      await applyAsBatch(
        db,
        canonicalEvent({
          type: 'charge.succeeded',
          gateway: 'securepay',
          gatewayTransactionId: order,
          reference: pending.transaction.id,
          amount: pending.transaction.amount,
          currency: 'AUD',
        }),
        false,
        account,
      );
      charges.push(pending.transaction.id);
    }
    const file = (order: string) =>
      [
        'payout_id,payout_date,line_id,kind,gateway_transaction_id,currency,gross,fee,occurred_at',
        `2026-11-30,2026-11-30,1,charge,${order},AUD,100.00,1.00,2026-11-29`,
      ].join('\n');
    for (const [gatewayAccount, order] of [
      [null, 'order_a'],
      ['gwa_sp2', 'order_b'],
    ] as const) {
      await recordSettlementReport(
        db,
        'system',
        { gateway: 'securepay', gatewayAccount },
        parseSettlementCsv(file(order)),
      );
    }
    const books = await booksIn(db, 'AUD');
    expect({
      clearing: books['gateway_clearing:securepay'],
      sp2Clearing: books['gateway_clearing:securepay:gwa_sp2'],
      fees: books['gateway_fees:securepay'],
      sp2Fees: books['gateway_fees:securepay:gwa_sp2'],
      bank: books['bank:securepay'],
      sp2Bank: books['bank:securepay:gwa_sp2'],
    }).toEqual({ clearing: 0n, sp2Clearing: 0n, fees: 100n, sp2Fees: 100n, bank: 9_900n, sp2Bank: 9_900n });
    const matched = await db
      .selectFrom('settlement_lines')
      .select(['gateway_account', 'transaction_id'])
      .orderBy('gateway_account')
      .execute();
    expect(matched).toEqual([
      { gateway_account: 'gwa_sp2', transaction_id: charges[1] },
      { gateway_account: null, transaction_id: charges[0] },
    ]);
    expect(await exceptions()).toEqual([]);
  });
});
