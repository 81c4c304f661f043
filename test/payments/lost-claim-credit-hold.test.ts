import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableCredit } from '../../src/billing/customer-credit.ts';
import { getCustomerWithBalances } from '../../src/billing/customers.ts';
import { createInvoice, finalizeInvoice } from '../../src/billing/invoices.ts';
import type { Db } from '../../src/db/database.ts';
import type { TransactionRow } from '../../src/db/schema.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { type DisputeReport, recordDispute } from '../../src/payments/disputes.ts';
import { flagUnpaidLostClaims } from '../../src/payments/lost-claims.ts';
import {
  applyAsBatch,
  booksIn,
  canonicalEvent,
  moneyCoreDatabase,
  paidTwice,
} from '../support/money-core.ts';

/**
 * A PayPal claim on a payment of an overpaid invoice is paid, once lost, by a refund of its capture
 * that PayPal reports afterwards (`lostDisputePaidAsRefund`): that refund pays the overpayment back
 * first, debiting the customer's credit (billing/credit-notes.ts `issueCreditNote`). So the share of
 * the credit the claim held while open stays held once it is lost until that refund comes
 * (billing/credit-notes.ts `overpaymentsHeld`). Before, the loss released it: an invoice finalized
 * between the loss and the refund took the credit, and the refund left it in debit with an
 * `overpayment_credit_spent` exception. Money core: invoices of 1000 paid twice on PayPal (1000 of
 * credit), a claim of 400 on the duplicate.
 */
describe('a PayPal claim lost and not yet refunded still holds the overpayment credit', () => {
  let db: Db;
  beforeAll(async () => {
    db = await moneyCoreDatabase();
  });
  afterAll(() => db?.destroy());

  const report = (t: TransactionRow, status: DisputeReport['status'], amount: bigint, reversal = false) =>
    inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordDispute(work, t, { gatewayDisputeId: `PP-D-${t.currency}`, status, amount, reversal }),
    );
  const credit = (customerId: string, currency: string) =>
    inUnitOfWork(db, { actor: 'system' }, (work) => availableCredit(work, customerId, currency));
  /** A one-off untaxed invoice of `amount` finalized for `customerId` (their credit applied then). */
  const oneOff = async (customerId: string, currency: string, amount: bigint) => {
    const draft = await createInvoice(db, 'system', {
      customerId,
      currency,
      lines: [{ description: 'Consulting', unitAmount: amount, quantity: 1, type: 'CHARGE' }],
    });
    return finalizeInvoice(db, 'system', draft.id);
  };
  /** PayPal's `PAYMENT.CAPTURE.REFUNDED` of `amount` on capture `<currency>_second` (the duplicate). */
  const refunded = (currency: string, amount: bigint) =>
    applyAsBatch(
      db,
      canonicalEvent({
        type: 'refund.succeeded',
        gateway: 'paypal',
        gatewayTransactionId: `${currency}_second`,
        gatewayRefundId: `R-${currency}`,
        amount,
        currency,
      }),
    );
  const exceptionsOf = (t: TransactionRow) =>
    db.selectFrom('reconciliation_exceptions').select('kind').where('transaction_id', '=', t.id).execute();

  it('PLN: lost, the claim keeps holding its 400 until PayPal’s refund comes: the next invoice of 1000 takes 600, and the refund takes the last 400 (before: 1000 applied, credit in debit 400, overpayment_credit_spent)', async () => {
    const { customerId, duplicate } = await paidTwice(db, {
      currency: 'PLN',
      gateway: 'paypal',
      amount: 1000n,
    });
    await report(duplicate, 'open', 400n);
    expect(await credit(customerId, 'PLN')).toBe(600n);
    await report(duplicate, 'lost', 400n);
    expect(await credit(customerId, 'PLN')).toBe(600n);
    expect(await oneOff(customerId, 'PLN', 1000n)).toMatchObject({ credit_applied: 600n, amount_due: 400n });

    expect(await refunded('PLN', 400n)).toMatchObject({ kind: 'applied' });
    const dispute = await db
      .selectFrom('disputes')
      .select(['status', 'refund_id'])
      .where('transaction_id', '=', duplicate.id)
      .executeTakeFirstOrThrow();
    expect(dispute).toMatchObject({ status: 'lost', refund_id: expect.stringMatching(/^re_/) });
    // 2000 in, 400 back by the refund (the overpayment: no credit note), the loss carried by it.
    expect(await booksIn(db, 'PLN')).toMatchObject({
      'gateway_clearing:paypal': 1600n,
      'customer_credit:customer': 0n,
      'receivable:customer': 400n,
      disputed_funds: 0n,
      chargeback_losses: 0n,
      revenue: -2000n,
    });
    expect(await credit(customerId, 'PLN')).toBe(0n);
    expect((await exceptionsOf(duplicate)).map((e) => e.kind)).toEqual([]);
  });

  it('HUF: PayPal’s refund of the claim coming before its loss holds the credit once: 600 available between them (before: 200, the 400 held by the open claim and paid back by the refund)', async () => {
    // 1000 paid twice: 1000 of credit. A claim of 400 on the duplicate holds 400 of it (600 left).
    const { customerId, duplicate } = await paidTwice(db, {
      currency: 'HUF',
      gateway: 'paypal',
      amount: 1000n,
    });
    await report(duplicate, 'open', 400n);
    expect(await credit(customerId, 'HUF')).toBe(600n);
    // PayPal refunds the buyer before it says the claim is lost: the refund pays 400 of the
    // overpayment back (credit 1000 − 400 = 600), and it is the claim's money: nothing else holds it.
    expect(await refunded('HUF', 400n)).toMatchObject({ kind: 'applied' });
    // PayPal paid that refund out of the claim's hold (dp_…:hold_refunded): nothing held any more.
    expect(await booksIn(db, 'HUF')).toMatchObject({
      'customer_credit:customer': -600n,
      disputed_funds: 0n,
    });
    expect(await credit(customerId, 'HUF')).toBe(600n);
    expect(await oneOff(customerId, 'HUF', 500n)).toMatchObject({ credit_applied: 500n, amount_due: 0n });
    // The loss is carried by that refund (dp_…:refunded): the hold back to clearing, nothing lost.
    await report(duplicate, 'lost', 400n);
    const dispute = await db
      .selectFrom('disputes')
      .select(['status', 'refund_id'])
      .where('transaction_id', '=', duplicate.id)
      .executeTakeFirstOrThrow();
    expect(dispute).toMatchObject({ status: 'lost', refund_id: expect.stringMatching(/^re_/) });
    expect(await credit(customerId, 'HUF')).toBe(100n);
    // 2000 in, 400 refunded: clearing 1600; credit 1000 − 400 refunded − 500 applied = 100; no
    // chargeback loss ever booked.
    const books = await booksIn(db, 'HUF');
    expect(books).toMatchObject({
      'gateway_clearing:paypal': 1600n,
      'customer_credit:customer': -100n,
      disputed_funds: 0n,
    });
    expect(books.chargeback_losses ?? 0n).toBe(0n);
    expect((await exceptionsOf(duplicate)).map((e) => e.kind)).toEqual([]);
  });

  it('CZK: two claims of 400 open and one PayPal refund of 400: the refund pays one claim only, the other still holds its 400: 200 available (before: 600, both taken as paid)', async () => {
    const { customerId, duplicate } = await paidTwice(db, {
      currency: 'CZK',
      gateway: 'paypal',
      amount: 1000n,
    });
    for (const id of ['PP-CZK-A', 'PP-CZK-B']) {
      await inUnitOfWork(db, { actor: 'system' }, (work) =>
        recordDispute(work, duplicate, { gatewayDisputeId: id, status: 'open', amount: 400n }),
      );
    }
    expect(await credit(customerId, 'CZK')).toBe(200n);
    // The refund pays 400 of the overpayment back (credit 600 in the books); the other claim holds 400.
    expect(await refunded('CZK', 400n)).toMatchObject({ kind: 'applied' });
    // PayPal paid that refund out of one claim's hold (dp_…:hold_refunded): 400 held, the other's.
    expect(await booksIn(db, 'CZK')).toMatchObject({
      'customer_credit:customer': -600n,
      disputed_funds: 400n,
    });
    expect(await credit(customerId, 'CZK')).toBe(200n);
    expect(await oneOff(customerId, 'CZK', 500n)).toMatchObject({ credit_applied: 200n, amount_due: 300n });
  });

  it('NOK: a lost claim no refund pays within LOST_CLAIM_REFUND_DAYS stops holding and goes to a person, once; a refund coming later still pays it (before: held for ever, nothing said)', async () => {
    const { customerId, duplicate } = await paidTwice(db, {
      currency: 'NOK',
      gateway: 'paypal',
      amount: 1000n,
    });
    await report(duplicate, 'open', 400n);
    await report(duplicate, 'lost', 400n);
    expect(await credit(customerId, 'NOK')).toBe(600n);
    const day = 86_400_000;
    const sweep = (days: number) => flagUnpaidLostClaims(db, 'system', new Date(Date.now() + days * day), 7);
    // Six days on: still waiting for PayPal's refund.
    expect(await sweep(6)).toEqual([]);
    expect(await credit(customerId, 'NOK')).toBe(600n);
    const dispute = await db
      .selectFrom('disputes')
      .select(['id', 'refund_id'])
      .where('transaction_id', '=', duplicate.id)
      .executeTakeFirstOrThrow();
    // Eight days on: flagged, the 400 the customer's again; the loss stays booked.
    expect(await sweep(8)).toEqual([dispute.id]);
    expect(await credit(customerId, 'NOK')).toBe(1000n);
    const flagged = await db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'status', 'details'])
      .where('transaction_id', '=', duplicate.id)
      .execute();
    expect(flagged).toEqual([
      {
        kind: 'lost_claim_unpaid',
        status: 'open',
        details: expect.objectContaining({ dispute: dispute.id, amount: '400', days: 7 }),
      },
    ]);
    expect(await booksIn(db, 'NOK')).toMatchObject({
      'gateway_clearing:paypal': 1600n,
      'customer_credit:customer': -1000n,
      disputed_funds: 0n,
      chargeback_losses: 400n,
    });
    // Once: a later sweep raises nothing more.
    expect(await sweep(9)).toEqual([]);
    // PayPal's refund after all: paired with the loss (losses back to 0), the overpayment paid back.
    expect(await refunded('NOK', 400n)).toMatchObject({ kind: 'applied' });
    expect(
      await db
        .selectFrom('disputes')
        .select('refund_id')
        .where('id', '=', dispute.id)
        .executeTakeFirstOrThrow(),
    ).toEqual({ refund_id: expect.stringMatching(/^re_/) });
    expect(await booksIn(db, 'NOK')).toMatchObject({
      'gateway_clearing:paypal': 1600n,
      'customer_credit:customer': -600n,
      disputed_funds: 0n,
      chargeback_losses: 0n,
    });
    expect(await credit(customerId, 'NOK')).toBe(600n);
  });

  it('DKK: PayPal’s refund coming after lost_claim_unpaid pays the claim: the exception is resolved naming that refund, and the credit the customer API shows is what finalization applies at every step (before: left open, asking a person to find money that came)', async () => {
    const { customerId, duplicate } = await paidTwice(db, {
      currency: 'DKK',
      gateway: 'paypal',
      amount: 1000n,
    });
    /** The credit `GET /v1/customers/:id` shows in DKK (billing/customers.ts `withBalances`). */
    const shown = async () =>
      (await getCustomerWithBalances(db, customerId)).credit.find((c) => c.currency === 'DKK')?.amount ?? 0n;
    await report(duplicate, 'open', 400n);
    await report(duplicate, 'lost', 400n);
    expect([await credit(customerId, 'DKK'), await shown()]).toEqual([600n, 600n]);
    const day = 86_400_000;
    const [flagged] = await flagUnpaidLostClaims(db, 'system', new Date(Date.now() + 8 * day), 7);
    expect(flagged).toMatch(/^dp_/);
    expect([await credit(customerId, 'DKK'), await shown()]).toEqual([1000n, 1000n]);
    // 300 of it spent on the next invoice: 700 left.
    expect(await oneOff(customerId, 'DKK', 300n)).toMatchObject({ credit_applied: 300n, amount_due: 0n });
    expect([await credit(customerId, 'DKK'), await shown()]).toEqual([700n, 700n]);
    // PayPal's refund after all: paired with the loss, paying 400 of the overpayment back: 300 left.
    expect(await refunded('DKK', 400n)).toMatchObject({ kind: 'applied' });
    const dispute = await db
      .selectFrom('disputes')
      .select(['id', 'refund_id'])
      .where('id', '=', flagged!)
      .executeTakeFirstOrThrow();
    expect(dispute.refund_id).toMatch(/^re_/);
    expect([await credit(customerId, 'DKK'), await shown()]).toEqual([300n, 300n]);
    expect(await booksIn(db, 'DKK')).toMatchObject({
      'gateway_clearing:paypal': 1600n,
      'customer_credit:customer': -300n,
      disputed_funds: 0n,
      chargeback_losses: 0n,
    });
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select(['id', 'kind', 'status'])
      .where('transaction_id', '=', duplicate.id)
      .execute();
    expect(exceptions).toEqual([{ id: expect.any(String), kind: 'lost_claim_unpaid', status: 'resolved' }]);
    const resolved = await db
      .selectFrom('activities')
      .select('data')
      .where('resource_id', '=', exceptions[0]!.id)
      .where('action', '=', 'reconciliation_exception.resolved')
      .executeTakeFirstOrThrow();
    expect(resolved.data).toMatchObject({
      kind: 'lost_claim_unpaid',
      note: expect.stringContaining(dispute.refund_id!),
    });
    // A sweep later raises nothing again.
    expect(await flagUnpaidLostClaims(db, 'system', new Date(Date.now() + 9 * day), 7)).toEqual([]);
  });

  it('RON: a lost claim PayPal then reverses (a chargeback) takes its share itself and holds no more: the rest is the customer’s', async () => {
    const { customerId, duplicate } = await paidTwice(db, {
      currency: 'RON',
      gateway: 'paypal',
      amount: 1000n,
    });
    await report(duplicate, 'open', 400n);
    await report(duplicate, 'lost', 400n);
    expect(await credit(customerId, 'RON')).toBe(600n);
    await report(duplicate, 'lost', 400n, true);
    expect(await credit(customerId, 'RON')).toBe(600n);
    expect(await booksIn(db, 'RON')).toMatchObject({
      'customer_credit:customer': -600n,
      chargeback_losses: 0n,
    });
  });

  it('BGN: a lost claim flagged lost_claim_unpaid that PayPal then reports paid by a reversal (a chargeback): its share is charged back off the credit (600 left) and the exception is resolved naming the reversal (before: left open)', async () => {
    const { customerId, duplicate } = await paidTwice(db, {
      currency: 'BGN',
      gateway: 'paypal',
      amount: 1000n,
    });
    await report(duplicate, 'open', 400n);
    await report(duplicate, 'lost', 400n);
    const day = 86_400_000;
    const [flagged] = await flagUnpaidLostClaims(db, 'system', new Date(Date.now() + 8 * day), 7);
    expect(await credit(customerId, 'BGN')).toBe(1000n);
    await report(duplicate, 'lost', 400n, true);
    expect(await credit(customerId, 'BGN')).toBe(600n);
    expect(await booksIn(db, 'BGN')).toMatchObject({
      'customer_credit:customer': -600n,
      chargeback_losses: 0n,
    });
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select(['id', 'kind', 'status'])
      .where('transaction_id', '=', duplicate.id)
      .execute();
    expect(exceptions).toEqual([{ id: expect.any(String), kind: 'lost_claim_unpaid', status: 'resolved' }]);
    const resolved = await db
      .selectFrom('activities')
      .select('data')
      .where('resource_id', '=', exceptions[0]!.id)
      .where('action', '=', 'reconciliation_exception.resolved')
      .executeTakeFirstOrThrow();
    expect(resolved.data).toMatchObject({ note: expect.stringContaining(flagged!) });
  });

  it('SEK: a Stripe dispute lost holds nothing once lost (its loss took the share)', async () => {
    const { customerId, duplicate } = await paidTwice(db, { currency: 'SEK', amount: 1000n });
    await report(duplicate, 'open', 400n);
    expect(await credit(customerId, 'SEK')).toBe(600n);
    await report(duplicate, 'lost', 400n);
    expect(await credit(customerId, 'SEK')).toBe(600n);
    expect(await booksIn(db, 'SEK')).toMatchObject({
      'customer_credit:customer': -600n,
      chargeback_losses: 0n,
    });
  });
});
