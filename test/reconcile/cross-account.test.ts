import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import type { PaymentEvent } from '../../src/gateways/types.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  insertGatewayAccount,
  moneyCoreDatabase,
  pendingCharge,
  succeededCharge,
} from '../support/money-core.ts';

let db: Db;
beforeAll(async () => {
  db = await moneyCoreDatabase();
  await insertGatewayAccount(db, 'gwa_a');
  await insertGatewayAccount(db, 'gwa_b');
});
afterAll(() => db?.destroy());

/** Applies `event` as received on the route of `account` (`gwa_…`; null: the gateway's default account). */
const receivedOn = (account: string | null, event: PaymentEvent) => applyAsBatch(db, event, false, account);
const rowOf = (table: 'transactions' | 'invoices', id: string) =>
  db.selectFrom(table).selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const refundsOf = (transactionId: string) =>
  db
    .selectFrom('refunds')
    .select(['status', 'amount', 'gateway_refund_id'])
    .where('transaction_id', '=', transactionId)
    .execute();
const disputesOf = (transactionId: string) =>
  db
    .selectFrom('disputes')
    .select(['status', 'amount'])
    .where('transaction_id', '=', transactionId)
    .execute();

/** The exception a delivery on `received` naming a row of `owner` is (the rest of the message: `otherAccount`). */
const otherAccountException = (transactionId: string, received: string, owner: string) => ({
  kind: 'exception',
  exception: 'unknown_entity',
  transactionId,
  otherAccount: true,
  message: expect.stringMatching(
    new RegExp(`received for ${received} but names \\w+, which is on ${owner}: nothing changed`),
  ),
});

/**
 * PRODUCT.md §12: a delivery is verified with its gateway account's secrets, so it speaks for that
 * account's money only. An event received on one account's route naming a payment, refund or dispute
 * of another account (the default account included) is an `unknown_entity` exception at once (not a
 * retry: `finalAttempt` is false here) and changes nothing; on the right account it applies. Whoever
 * holds one account's webhook secret (a test-mode account's) cannot mark another's invoices paid.
 */
describe('events received on another gateway account than the money they name', () => {
  it("a charge.succeeded on gwa_b naming the default account's pending attempt moves nothing", async () => {
    const { invoice, transaction } = await pendingCharge(db, { currency: 'SEK', amount: 2_500n });
    const books = await booksIn(db, 'SEK');
    const succeeded = canonicalEvent({
      type: 'charge.succeeded',
      gatewayTransactionId: 'pi_sek_other_account',
      reference: transaction.id,
      amount: transaction.amount,
      currency: 'SEK',
    });
    expect(await receivedOn('gwa_b', succeeded)).toEqual(
      otherAccountException(transaction.id, 'gwa_b', "the gateway's default account"),
    );
    expect(await rowOf('transactions', transaction.id)).toMatchObject({
      status: 'pending',
      gateway_transaction_id: null,
    });
    expect(await rowOf('invoices', invoice.id)).toMatchObject({ status: 'OPEN', amount_paid: 0n });
    expect(books['gateway_clearing:stripe'] ?? 0n).toBe(0n);
    expect(await booksIn(db, 'SEK')).toEqual(books);

    // On its own (default) account it settles the attempt.
    expect(await receivedOn(null, succeeded)).toEqual({ kind: 'applied', transactionId: transaction.id });
    expect(await booksIn(db, 'SEK')).toMatchObject({ 'gateway_clearing:stripe': 2_500n });
  });

  it("a charge.succeeded on the default route naming gwa_a's attempt moves nothing; on gwa_a it settles it", async () => {
    const { invoice, transaction } = await pendingCharge(db, {
      currency: 'DKK',
      amount: 4_000n,
      gatewayAccount: 'gwa_a',
    });
    const books = await booksIn(db, 'DKK');
    const succeeded = canonicalEvent({
      type: 'charge.succeeded',
      gatewayTransactionId: 'pi_dkk_a',
      reference: transaction.id,
      amount: 4_000n,
      currency: 'DKK',
    });
    for (const account of [null, 'gwa_b']) {
      expect(await receivedOn(account, succeeded)).toEqual(
        otherAccountException(transaction.id, account ?? "the gateway's default account", 'gwa_a'),
      );
    }
    expect((await rowOf('transactions', transaction.id)).status).toBe('pending');
    expect(await booksIn(db, 'DKK')).toEqual(books);

    expect(await receivedOn('gwa_a', succeeded)).toEqual({ kind: 'applied', transactionId: transaction.id });
    expect(await rowOf('invoices', invoice.id)).toMatchObject({ status: 'PAID', amount_paid: 4_000n });
    expect(await booksIn(db, 'DKK')).toEqual({
      'gateway_clearing:stripe:gwa_a': 4_000n,
      'receivable:customer': 0n,
      revenue: -4_000n,
    });
    // A failure reported on another account later changes nothing either (the payment is known).
    const failed = canonicalEvent({ ...succeeded, type: 'charge.failed', gatewayEventId: 'evt_dkk_failed' });
    expect(await receivedOn('gwa_b', failed)).toMatchObject({
      kind: 'exception',
      exception: 'unknown_entity',
    });
    expect((await rowOf('transactions', transaction.id)).status).toBe('succeeded');
  });

  it("a refund made in the gateway's dashboard, reported on gwa_b for a default-account payment, is not recorded", async () => {
    const { transaction } = await succeededCharge(db, {
      currency: 'NOK',
      amount: 3_000n,
      gatewayTransactionId: 'pi_nok_refunded',
    });
    const books = await booksIn(db, 'NOK');
    const refunded = canonicalEvent({
      type: 'refund.succeeded',
      gatewayTransactionId: 'pi_nok_refunded',
      gatewayRefundId: 're_nok_dashboard',
      amount: 1_000n,
      currency: 'NOK',
    });
    expect(await receivedOn('gwa_b', refunded)).toEqual(
      otherAccountException(transaction.id, 'gwa_b', "the gateway's default account"),
    );
    expect(await refundsOf(transaction.id)).toEqual([]);
    expect(await booksIn(db, 'NOK')).toEqual(books);

    expect(await receivedOn(null, refunded)).toEqual({ kind: 'applied', transactionId: transaction.id });
    expect(await refundsOf(transaction.id)).toEqual([
      { status: 'succeeded', amount: 1_000n, gateway_refund_id: 're_nok_dashboard' },
    ]);
    expect(await booksIn(db, 'NOK')).toMatchObject({ 'gateway_clearing:stripe': 2_000n, refunds: 1_000n });
  });

  it("a refund of gwa_a's payment known to billhook, reported succeeded on gwa_b, stays as it was", async () => {
    const { transaction } = await succeededCharge(db, {
      currency: 'CHF',
      amount: 5_000n,
      gatewayTransactionId: 'pi_chf_a',
      gatewayAccount: 'gwa_a',
    });
    const refund = (type: 'refund.pending' | 'refund.succeeded', gatewayEventId: string) =>
      canonicalEvent({
        type,
        gatewayEventId,
        gatewayTransactionId: 'pi_chf_a',
        gatewayRefundId: 're_chf_a',
        amount: 2_000n,
        currency: 'CHF',
      });
    // A dashboard refund, recorded pending as it is created (so its own result is a duplicate).
    expect(await receivedOn('gwa_a', refund('refund.pending', 'evt_chf_pending'))).toEqual({
      kind: 'duplicate',
      transactionId: transaction.id,
    });
    const books = await booksIn(db, 'CHF');
    expect(await receivedOn('gwa_b', refund('refund.succeeded', 'evt_chf_b'))).toEqual(
      otherAccountException(transaction.id, 'gwa_b', 'gwa_a'),
    );
    expect(await receivedOn(null, refund('refund.succeeded', 'evt_chf_default'))).toMatchObject({
      exception: 'unknown_entity',
    });
    expect(await refundsOf(transaction.id)).toEqual([
      { status: 'pending', amount: 2_000n, gateway_refund_id: 're_chf_a' },
    ]);
    expect(await booksIn(db, 'CHF')).toEqual(books);

    expect(await receivedOn('gwa_a', refund('refund.succeeded', 'evt_chf_a'))).toMatchObject({
      kind: 'applied',
    });
    expect(await booksIn(db, 'CHF')).toMatchObject({
      'gateway_clearing:stripe:gwa_a': 3_000n,
      refunds: 2_000n,
    });
  });

  it('a dispute reported on gwa_b about a default-account payment is not recorded', async () => {
    const { transaction } = await succeededCharge(db, {
      currency: 'PLN',
      amount: 6_000n,
      gatewayTransactionId: 'pi_pln_disputed',
    });
    const books = await booksIn(db, 'PLN');
    const opened = canonicalEvent({
      type: 'dispute.opened',
      gatewayTransactionId: 'pi_pln_disputed',
      gatewayDisputeId: 'du_pln',
      amount: 6_000n,
      currency: 'PLN',
    });
    expect(await receivedOn('gwa_b', opened)).toEqual(
      otherAccountException(transaction.id, 'gwa_b', "the gateway's default account"),
    );
    expect(await disputesOf(transaction.id)).toEqual([]);
    expect(await booksIn(db, 'PLN')).toEqual(books);

    expect(await receivedOn(null, opened)).toMatchObject({ kind: 'applied' });
    expect(await disputesOf(transaction.id)).toEqual([{ status: 'open', amount: 6_000n }]);
    expect(await booksIn(db, 'PLN')).toMatchObject({ 'gateway_clearing:stripe': 0n, disputed_funds: 6_000n });
  });

  it("a dispute id recorded on gwa_a's payment, reported lost on gwa_b about gwa_b's payment, leaves gwa_a's dispute alone", async () => {
    const a = await succeededCharge(db, {
      currency: 'CZK',
      amount: 7_000n,
      gatewayTransactionId: 'pi_czk_a',
      gatewayAccount: 'gwa_a',
    });
    const b = await succeededCharge(db, {
      currency: 'CZK',
      amount: 7_000n,
      gatewayTransactionId: 'pi_czk_b',
      gatewayAccount: 'gwa_b',
    });
    const dispute = (type: 'dispute.opened' | 'dispute.lost', intent: string) =>
      canonicalEvent({
        type,
        gatewayTransactionId: intent,
        gatewayDisputeId: 'du_czk',
        amount: 7_000n,
        currency: 'CZK',
      });
    expect(await receivedOn('gwa_a', dispute('dispute.opened', 'pi_czk_a'))).toMatchObject({
      kind: 'applied',
    });
    const books = await booksIn(db, 'CZK');
    expect(await receivedOn('gwa_b', dispute('dispute.lost', 'pi_czk_b'))).toEqual(
      otherAccountException(a.transaction.id, 'gwa_b', 'gwa_a'),
    );
    expect(await disputesOf(a.transaction.id)).toEqual([{ status: 'open', amount: 7_000n }]);
    expect(await disputesOf(b.transaction.id)).toEqual([]);
    expect(await booksIn(db, 'CZK')).toEqual(books);
  });
});
