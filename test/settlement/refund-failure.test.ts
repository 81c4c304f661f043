import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { settlementLineOf } from '../../src/gateways/stripe/settlement.ts';
import { recordSettlementReport } from '../../src/settlement/record.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  succeededCharge,
} from '../support/money-core.ts';

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
});
afterAll(() => db?.destroy());

/** A Stripe balance transaction (https://docs.stripe.com/api/balance_transactions/object), source expanded. */
const balanceTransaction = (id: string, type: string, amount: number, source: object) => ({
  id,
  object: 'balance_transaction',
  type,
  amount,
  fee: 0,
  net: amount,
  currency: 'dkk',
  created: 1_733_500_000,
  available_on: 1_733_600_000,
  exchange_rate: null,
  description: null,
  reporting_category: type === 'refund_failure' ? 'refund_failure' : type,
  source,
});

/**
 * A Stripe refund that succeeded, then failed (`refund.failed`: the card could not take it back), and
 * the payout that pays the money out again. Stripe books the failure in the balance as a
 * `refund_failure` balance transaction (https://docs.stripe.com/reports/balance-transaction-types);
 * billhook books the same money back with `re_…:reversed` when the webhook says the refund failed.
 */
describe('a Stripe refund that failed after succeeding, then paid out', () => {
  /*
   * Worked by hand, minor units of DKK (fees 0 to keep it plain): charged 10000 (clearing 10000);
   * refunded 10000 (clearing 0); the refund fails, the money is back (re_…:reversed, clearing 10000).
   * Stripe's balance: +10000 charge, -10000 refund, +10000 refund_failure = 10000, paid out whole:
   * clearing 10000 - 10000 = 0, bank 10000. The refund_failure line is the reversal billhook already
   * booked: it must not bring the 10000 into clearing a second time.
   */
  /*
   * Stripe renders that money as `type: refund_failure`, or (now) as `type: adjustment` with
   * `reporting_category: refund_failure` ("a more detailed breakdown of type=adjustment … disputes,
   * dispute reversals, and failed refunds", https://docs.stripe.com/reports/reporting-categories; the
   * Refund's `failure_balance_transaction`, https://docs.stripe.com/api/refunds/object). Both are the
   * same refund line; the adjustment used to be booked against settlement adjustments (clearing 10000
   * after the payout, adjustments -10000).
   */
  it.each([
    ['type refund_failure', 'DKK', { type: 'refund_failure' }],
    ['type adjustment, reporting_category refund_failure', 'NOK', { type: 'adjustment' }],
  ] as const)(
    'leaves clearing at 0 once the payout pays the failed refund’s money out (%s)',
    async (_name, currency, rendering) => {
      const lower = currency.toLowerCase();
      await succeededCharge(db, {
        currency,
        amount: 10000n,
        gatewayTransactionId: `pi_${lower}_rf`,
      });
      const event = (e: Parameters<typeof canonicalEvent>[0]) =>
        applyAsBatch(db, canonicalEvent({ gatewayTransactionId: `pi_${lower}_rf`, ...e }));
      await event({ type: 'refund.succeeded', gatewayRefundId: `re_${lower}_rf`, amount: 10000n, currency });
      expect(
        await event({ type: 'refund.failed', gatewayRefundId: `re_${lower}_rf`, amount: 10000n, currency }),
      ).toMatchObject({ kind: 'applied' });
      expect(await booksIn(db, currency)).toMatchObject({ 'gateway_clearing:stripe': 10000n, refunds: 0n });

      const charge = {
        id: `ch_${lower}_rf`,
        object: 'charge',
        amount: 10000,
        currency: lower,
        payment_intent: `pi_${lower}_rf`,
      };
      const refund = {
        id: `re_${lower}_rf`,
        object: 'refund',
        amount: 10000,
        currency: lower,
        payment_intent: `pi_${lower}_rf`,
      };
      const lines = [
        balanceTransaction(`txn_${lower}_charge`, 'charge', 10000, charge),
        balanceTransaction(`txn_${lower}_refund`, 'refund', -10000, refund),
        {
          ...balanceTransaction(`txn_${lower}_refund_failure`, rendering.type, 10000, refund),
          reporting_category: 'refund_failure',
        },
      ].map((value) => settlementLineOf({ ...value, currency: lower })!);
      expect(lines.map((line) => line.kind)).toEqual(['charge', 'refund', 'refund']);
      await recordSettlementReport(
        db,
        'system',
        { gateway: 'stripe', gatewayAccount: null },
        {
          lines: [],
          payouts: [
            {
              gatewayPayoutId: `po_${lower}_rf`,
              status: 'paid',
              currency,
              amount: 10000n,
              createdAt: new Date(),
              arrivalDate: new Date(),
              lines,
            },
          ],
        },
      );
      const books = await booksIn(db, currency);
      expect({
        clearing: books['gateway_clearing:stripe'] ?? 0n,
        bank: books['bank:stripe'] ?? 0n,
        adjustments: books['settlement_adjustments:stripe'] ?? 0n,
      }).toEqual({ clearing: 0n, bank: 10000n, adjustments: 0n });
    },
  );
  /*
   * A refund billhook holds as failed without it ever succeeding booked nothing: a settled line of it
   * (money out of the balance) disagrees with the books and stays unmatched, for a person, booking
   * nothing (clearing keeps the 5000 charged).
   */
  it('leaves a line of a refund that failed without succeeding unmatched, for a person', async () => {
    await succeededCharge(db, { currency: 'SEK', amount: 5000n, gatewayTransactionId: 'pi_sek_rf' });
    const event = (e: Parameters<typeof canonicalEvent>[0]) =>
      applyAsBatch(db, canonicalEvent({ gatewayTransactionId: 'pi_sek_rf', ...e }));
    await event({ type: 'refund.failed', gatewayRefundId: 're_sek_rf', amount: 5000n, currency: 'SEK' });
    expect(
      await db.selectFrom('refunds').select('status').where('gateway_refund_id', '=', 're_sek_rf').execute(),
    ).toEqual([{ status: 'failed' }]);
    const refund = {
      id: 're_sek_rf',
      object: 'refund',
      amount: 5000,
      currency: 'sek',
      payment_intent: 'pi_sek_rf',
    };
    const line = settlementLineOf({
      ...balanceTransaction('txn_sek_refund', 'refund', -5000, refund),
      currency: 'sek',
    })!;
    await recordSettlementReport(
      db,
      'system',
      { gateway: 'stripe', gatewayAccount: null },
      { lines: [line], payouts: [] },
    );
    const row = await db
      .selectFrom('settlement_lines')
      .select(['id', 'transaction_id'])
      .where('gateway_line_id', '=', 'txn_sek_refund')
      .executeTakeFirstOrThrow();
    expect(row.transaction_id).toBeNull();
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('settlement_line_id', '=', row.id)
      .execute();
    expect(exceptions).toEqual([{ kind: 'settlement_line_unmatched' }]);
    expect(await booksIn(db, 'SEK')).toMatchObject({ 'gateway_clearing:stripe': 5000n });
  });
});
