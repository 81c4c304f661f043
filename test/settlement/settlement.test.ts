import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { PayoutReport, SettlementLine } from '../../src/gateways/settlement.ts';
import type { PaymentEvent } from '../../src/gateways/types.ts';
import { raiseChargesNotPaidOut, raiseUnexpectedFees } from '../../src/settlement/checks.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  countEntries,
  entryPostings,
  moneyCoreDatabase,
  pendingCharge,
} from '../support/money-core.ts';

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
});
afterAll(() => db?.destroy());

/** Applies one event as a reconcile batch of one does (money-core's `applyAsBatch`). */
const apply = (event: PaymentEvent, finalAttempt = false) => applyAsBatch(db, event, finalAttempt);

let paid = 0;
/** A succeeded Stripe charge of `amount` minor units in `currency` (PaymentIntent `pi_…` returned). */
async function charge(currency: string, amount: bigint) {
  const { transaction } = await pendingCharge(db, { currency, amount });
  const intent = `pi_settle_${++paid}`;
  await apply(
    canonicalEvent({
      type: 'charge.succeeded',
      gatewayTransactionId: intent,
      reference: transaction.id,
      amount,
      currency,
    }),
  );
  return { transactionId: transaction.id, intent };
}

let lines = 0;
/** A balance line of kind `kind` (Stripe's balance transaction `txn_…` shape, minor units). */
function line(
  kind: SettlementLine['kind'],
  currency: string,
  gross: bigint,
  fee: bigint,
  ids: Partial<SettlementLine> = {},
): SettlementLine {
  return {
    gatewayLineId: `txn_line_${++lines}`,
    kind,
    currency,
    gross,
    fee,
    net: gross - fee,
    occurredAt: new Date(),
    ...ids,
  };
}

const payout = (id: string, status: PayoutReport['status'], payoutLines?: SettlementLine[]): PayoutReport => {
  const currency = payoutLines?.[0]?.currency ?? 'USD';
  return {
    gatewayPayoutId: id,
    status,
    currency,
    amount: (payoutLines ?? []).reduce((sum, l) => sum + l.net, 0n),
    createdAt: new Date(),
    arrivalDate: new Date(),
    ...(payoutLines ? { lines: payoutLines } : {}),
  };
};

const exceptionsOf = (kind: string) =>
  db.selectFrom('reconciliation_exceptions').selectAll().where('kind', '=', kind).execute();

/**
 * PRODUCT.md §13 on a real database: a month of Stripe charges, a refund, a dispute and three payouts
 * reconciles to clearing = 0 for everything paid out, each fee in gateway fees and each payout in the
 * bank; what does not fit becomes an exception; recording again changes nothing.
 */
describe('settlement', () => {
  it('a month of charges, a refund, a dispute and three payouts reconciles: clearing 0, fees booked, the bank holds the payouts', async () => {
    const c = [
      await charge('USD', 10_000n),
      await charge('USD', 2_500n),
      await charge('USD', 4_000n),
      await charge('USD', 12_000n),
      await charge('USD', 999n),
      await charge('USD', 50_000n),
    ];
    // A refund of 1,000 on the second charge, made in Stripe's dashboard, and a dispute on the third.
    await apply(
      canonicalEvent({
        type: 'refund.succeeded',
        gatewayTransactionId: c[1]!.intent,
        gatewayRefundId: 're_settle_1',
        amount: 1_000n,
        currency: 'USD',
      }),
    );
    await apply(
      canonicalEvent({
        type: 'dispute.opened',
        gatewayTransactionId: c[2]!.intent,
        gatewayDisputeId: 'dp_settle_1',
        amount: 4_000n,
        currency: 'USD',
      }),
    );
    const fee = (gross: bigint) => (gross * 29n + 500n) / 1000n + 30n;
    const chargeLine = (i: number, gross: bigint) =>
      line('charge', 'USD', gross, fee(gross), { gatewayTransactionId: c[i]!.intent });
    const first = payout('po_month_1', 'paid', [chargeLine(0, 10_000n), chargeLine(1, 2_500n)]);
    const second = payout('po_month_2', 'paid', [
      chargeLine(2, 4_000n),
      chargeLine(3, 12_000n),
      line('refund', 'USD', -1_000n, 0n, { gatewayRefundId: 're_settle_1' }),
      line('dispute', 'USD', -4_000n, 1_500n, { gatewayDisputeId: 'dp_settle_1' }),
    ]);
    const third = payout('po_month_3', 'in_transit', [
      chargeLine(4, 999n),
      chargeLine(5, 50_000n),
      line('fee', 'USD', -200n, 0n, { description: 'Radar' }),
    ]);
    // The first payout arrives as a webhook, the others by the daily sync.
    expect(
      await apply(
        canonicalEvent({ type: 'payout.updated', amount: first.amount, currency: 'USD', payout: first }),
      ),
    ).toMatchObject({ kind: 'applied' });
    const totals = await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      {
        lines: [],
        payouts: [second, third],
      },
    );
    expect(totals).toEqual({ lines: 0, payouts: 2, unmatched: 0 });
    // The third payout arrives at the bank later.
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      {
        lines: [],
        payouts: [{ ...third, status: 'paid' }],
      },
    );

    const fees =
      [10_000n, 2_500n, 4_000n, 12_000n, 999n, 50_000n].reduce((sum, g) => sum + fee(g), 0n) + 1_500n + 200n;
    const books = await booksIn(db, 'USD');
    expect(books).toMatchObject({
      'gateway_clearing:stripe': 0n,
      'gateway_fees:stripe': fees,
      'payouts_in_transit:stripe': 0n,
      'bank:stripe': first.amount + second.amount + third.amount,
      disputed_funds: 4_000n,
      refunds: 1_000n,
    });
    expect(first.amount + second.amount + third.amount).toBe(79_499n - 1_000n - 4_000n - fees);
    expect(await entryPostings(db, `${(await payoutRow('po_month_1')).id}:paid`)).toEqual({
      'bank:stripe': first.amount,
      'payouts_in_transit:stripe': -first.amount,
    });
    // Every line matched its charge, refund or dispute.
    const unmatched = await db
      .selectFrom('settlement_lines')
      .select('id')
      .where('kind', '!=', 'fee')
      .where('transaction_id', 'is', null)
      .execute();
    expect(unmatched).toEqual([]);
    // Recording the same data again changes nothing.
    const entries = await countEntries(db);
    expect(
      await recordSettlementReport(
        db,
        'system',
        { gateway: 'stripe', gatewayAccount: null },
        {
          lines: [],
          payouts: [second, { ...third, status: 'paid' }],
        },
      ),
    ).toEqual({ lines: 0, payouts: 0, unmatched: 0 });
    expect(
      await apply(
        canonicalEvent({ type: 'payout.updated', amount: first.amount, currency: 'USD', payout: first }),
      ),
    ).toMatchObject({ kind: 'duplicate' });
    expect(await countEntries(db)).toBe(entries);
    expect(await booksIn(db, 'USD')).toEqual(books);
  });

  it('a payout webhook listing a charge billhook does not know yet is retried, recorded with an exception on its last try, and the exception resolved once the charge is known', async () => {
    const known = await charge('CAD', 3_000n);
    const report = payout('po_unknown_line', 'paid', [
      line('charge', 'CAD', 3_000n, 117n, { gatewayTransactionId: known.intent }),
      line('charge', 'CAD', 700n, 50n, { gatewayTransactionId: 'pi_never_seen' }),
    ]);
    const event = canonicalEvent({
      type: 'payout.updated',
      amount: report.amount,
      currency: 'CAD',
      payout: report,
    });
    expect(await apply(event)).toMatchObject({ kind: 'not_found' });
    expect(
      await db
        .selectFrom('payouts')
        .select('id')
        .where('gateway_payout_id', '=', 'po_unknown_line')
        .execute(),
    ).toEqual([]);
    expect(await apply(event, true)).toMatchObject({ kind: 'applied' });
    const [exception] = (await exceptionsOf('settlement_line_unmatched')).filter((e) =>
      e.message.includes('CAD'),
    );
    expect(exception).toMatchObject({ status: 'open', payout_id: (await payoutRow('po_unknown_line')).id });
    // The known charge's fee is booked; the unknown one is not, so clearing shows it for a person.
    expect(await booksIn(db, 'CAD')).toMatchObject({
      'gateway_clearing:stripe': 3_000n - 117n - report.amount,
      'gateway_fees:stripe': 117n,
      'bank:stripe': report.amount,
    });
    // billhook learns the charge later (its webhook was lost and the poller found it): the next sync
    // matches the line, books its fee, and resolves the exception.
    const late = await pendingCharge(db, { currency: 'CAD', amount: 700n });
    await apply(
      canonicalEvent({
        type: 'charge.succeeded',
        gatewayTransactionId: 'pi_never_seen',
        reference: late.transaction.id,
        amount: 700n,
        currency: 'CAD',
      }),
    );
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      { lines: [], payouts: [] },
    );
    expect(await booksIn(db, 'CAD')).toMatchObject({
      'gateway_clearing:stripe': 0n,
      'gateway_fees:stripe': 167n,
    });
    expect(
      await db
        .selectFrom('reconciliation_exceptions')
        .select('status')
        .where('id', '=', exception!.id)
        .executeTakeFirstOrThrow(),
    ).toEqual({ status: 'resolved' });
  });

  it("a payout whose lines do not sum to its amount raises payout_lines_mismatch; the payout's own amount is what moved", async () => {
    const known = await charge('AUD', 5_000n);
    const report = {
      ...payout('po_short', 'paid', [
        line('charge', 'AUD', 5_000n, 175n, { gatewayTransactionId: known.intent }),
      ]),
      amount: 4_800n,
    };
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      { lines: [], payouts: [report] },
    );
    const [exception] = await exceptionsOf('payout_lines_mismatch');
    expect(exception).toMatchObject({ payout_id: (await payoutRow('po_short')).id });
    expect(exception!.message).toContain('4800 AUD but its lines');
    expect(await booksIn(db, 'AUD')).toMatchObject({
      'gateway_clearing:stripe': 5_000n - 175n - 4_800n,
      'bank:stripe': 4_800n,
    });
  });

  it('a charge settled in another currency books the conversion through FX: clearing 0 in both currencies', async () => {
    // EUR 100.00 charged, settled as USD 108.00 with a USD 3.43 fee.
    const eur = await charge('EUR', 10_000n);
    const converted = line('charge', 'USD', 10_800n, 343n, { gatewayTransactionId: eur.intent });
    const report = payout('po_fx', 'paid', [converted]);
    const before = await booksIn(db, 'USD');
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      { lines: [], payouts: [report] },
    );
    expect(await booksIn(db, 'EUR')).toMatchObject({ 'gateway_clearing:stripe': 0n, 'fx:stripe': 10_000n });
    const after = await booksIn(db, 'USD');
    expect(after['gateway_clearing:stripe']).toBe(before['gateway_clearing:stripe']);
    expect(after['fx:stripe']! - (before['fx:stripe'] ?? 0n)).toBe(-10_800n);
    expect(after['bank:stripe']! - before['bank:stripe']!).toBe(10_457n);
  });

  it('a payout that fails after it was sent returns its money to clearing once (failing again, or its payout_failure line in the next payout, changes nothing)', async () => {
    const known = await charge('NZD', 2_000n);
    const report = payout('po_fails', 'in_transit', [
      line('charge', 'NZD', 2_000n, 88n, { gatewayTransactionId: known.intent }),
    ]);
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      { lines: [], payouts: [report] },
    );
    expect(await booksIn(db, 'NZD')).toMatchObject({
      'gateway_clearing:stripe': 0n,
      'payouts_in_transit:stripe': 1_912n,
    });
    for (let i = 0; i < 2; i++) {
      await recordSettlementReport(
        db,
        'system',
        { gateway: 'stripe', gatewayAccount: null },
        {
          lines: [],
          payouts: [{ ...report, status: 'failed', failureCode: 'account_closed' }],
        },
      );
    }
    expect(await booksIn(db, 'NZD')).toMatchObject({
      'gateway_clearing:stripe': 1_912n,
      'payouts_in_transit:stripe': 0n,
    });
    expect(await payoutRow('po_fails')).toMatchObject({ status: 'failed', failure_code: 'account_closed' });
    // Stripe pays the returned money out again in its next payout, listed as a payout_failure line:
    // booked once (by the failure), so clearing ends at 0 and the bank holds it once.
    const next = payout('po_after_failure', 'paid', [line('payout_return', 'NZD', 1_912n, 0n)]);
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      { lines: [], payouts: [next] },
    );
    expect(await booksIn(db, 'NZD')).toMatchObject({
      'gateway_clearing:stripe': 0n,
      'payouts_in_transit:stripe': 0n,
      'bank:stripe': 1_912n,
    });
  });

  it('a fee line seen before its payout is booked once; the payout only claims it', async () => {
    const known = await charge('SGD', 4_000n);
    const feeLine = line('charge', 'SGD', 4_000n, 146n, { gatewayTransactionId: known.intent });
    await apply(
      canonicalEvent({ type: 'settlement.line', amount: 4_000n, currency: 'SGD', settlementLine: feeLine }),
    );
    expect(await booksIn(db, 'SGD')).toMatchObject({
      'gateway_clearing:stripe': 3_854n,
      'gateway_fees:stripe': 146n,
    });
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      {
        lines: [],
        payouts: [payout('po_claims', 'paid', [feeLine])],
      },
    );
    expect(await booksIn(db, 'SGD')).toMatchObject({
      'gateway_clearing:stripe': 0n,
      'gateway_fees:stripe': 146n,
      'bank:stripe': 3_854n,
    });
  });

  it('a charge in no payout after the delay and margin raises charge_not_paid_out once; a paid-out one does not', async () => {
    const paidOut = await charge('HKD', 1_000n);
    const waiting = await charge('HKD', 2_000n);
    await db
      .updateTable('transactions')
      .set({ created_at: new Date(Date.now() - 10 * 86_400_000) })
      .where('id', 'in', [paidOut.transactionId, waiting.transactionId])
      .execute();
    const report = payout('po_hkd', 'paid', [
      line('charge', 'HKD', 1_000n, 40n, {
        gatewayTransactionId: paidOut.intent,
        occurredAt: new Date(Date.now() - 11 * 86_400_000),
      }),
    ]);
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      { lines: [], payouts: [report] },
    );
    const delays = { stripe: 2, paypal: 0, authorizenet: 1, eway: 1, securepay: 1 };
    expect(await raiseChargesNotPaidOut(db, 'system', delays, 3)).toBeGreaterThanOrEqual(1);
    expect(await raiseChargesNotPaidOut(db, 'system', delays, 3)).toBe(0);
    const raised = (await exceptionsOf('charge_not_paid_out')).map((e) => e.transaction_id);
    expect(raised).toContain(waiting.transactionId);
    expect(raised).not.toContain(paidOut.transactionId);
  });

  it('a fee beyond the configured expectation raises unexpected_fee once', async () => {
    const fair = await charge('JPY', 10_000n);
    const dear = await charge('JPY', 10_000n);
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      {
        lines: [
          line('charge', 'JPY', 10_000n, 360n, { gatewayTransactionId: fair.intent }),
          line('charge', 'JPY', 10_000n, 500n, { gatewayTransactionId: dear.intent }),
        ],
        payouts: [],
      },
    );
    const expectations = [{ gateway: 'stripe' as const, currency: 'JPY', bps: 360n, fixed: 0n }];
    const since = new Date(Date.now() - 60_000);
    expect(await raiseUnexpectedFees(db, 'system', expectations, 1n, since)).toBe(1);
    expect(await raiseUnexpectedFees(db, 'system', expectations, 1n, since)).toBe(0);
    const [exception] = await exceptionsOf('unexpected_fee');
    expect(exception).toMatchObject({ transaction_id: dear.transactionId });
  });
});

const payoutRow = (gatewayPayoutId: string) =>
  db
    .selectFrom('payouts')
    .selectAll()
    .where('gateway_payout_id', '=', gatewayPayoutId)
    .executeTakeFirstOrThrow();
