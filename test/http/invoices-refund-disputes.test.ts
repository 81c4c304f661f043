import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { returnInvoiceCredit } from '../../src/billing/credit-returns.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { recordDispute } from '../../src/payments/disputes.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import {
  customerWith,
  downgradeCredit,
  flatPlan,
  ledgerIn,
  subscribedAndPaid,
} from '../support/collection.ts';
import { capturedInPart, stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { waitFor } from '../support/wait.ts';

const d = (iso: string) => new Date(iso);

/**
 * What disputes took of a payment and hold or lost (open, or lost and carried by no refund:
 * billing/invoice-payment.ts `disputedAwayOf`) is out of its refundable room (`refundRooms`) for
 * every refund billhook asks: by hand (`POST /v1/invoices/:id/refund`, with or without `amount` or
 * `transaction`), a cancellation's split, a customer-credit refund (`POST
 * /v1/customers/:id/credit/refund`); a won dispute gives the room back. A change invoice charged
 * back refuses a cancellation's refund (`refuseUnsettledChanges`) and a prorated credit of the
 * period counts it as given back (`refuseCreditOfGivenBack`), as a refunded one. Before, a
 * chargeback's money could go back to the customer a second time. An invoice's status counts it as
 * given back too (billing/invoices.ts `paidStatus`, the one rule; `GET /v1/invoices/:id` shows it as
 * `amount_disputed`), worked again when a dispute moves funds (billing/period-statuses.ts
 * `statusesWorkedAgain`: REFUNDED while it was open, PARTIALLY_REFUNDED again once won), and a
 * dispute is recorded under its invoice's lock (payments/disputes.ts `recordDispute`).
 *
 * Subscriptions start on Feb 1 2027 (28 days), on a simulated clock; plans are FLAT_FEE taxed at 25%
 * (`flatPlan`), one-off invoices untaxed. Each scenario has its own currency, so `ledgerIn` reads
 * its own books in the shared app.
 */
describe('refunds and cancellations after a chargeback', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    // Invoices are paid by the tests, not by the charge worker; no refund retry or recovery.
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
    await app.runtime.boss.offWork(QUEUES.invoiceRefund);
    await app.runtime.boss.offWork(QUEUES.refundRecover);
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());

  const db = () => app.runtime.db;
  const changeAt = (id: string, planId: string, at: string) =>
    changeSubscription(db(), 'system', id, { planId }, d(at), false);
  const refund = (invoice: string, body: Record<string, unknown>) =>
    app.api('POST', `/v1/invoices/${invoice}/refund`, body);
  const returnCredit = (invoice: string, body: Record<string, unknown>) =>
    app.api('POST', `/v1/invoices/${invoice}/credit/return`, body);
  const creditOf = async (customer: string) =>
    (await app.api('GET', `/v1/customers/${customer}`)).body.credit;
  const invoiceOf = async (id: string) => (await app.api('GET', `/v1/invoices/${id}`)).body;
  /** A Stripe customer subscribed to `plan` from Feb 1, its first invoice paid whole by the card. */
  const paidFeb1 = async (plan: string) => {
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan,
      method: method!.id,
      start: d('2027-02-01T00:00:00Z'),
    });
    return { customer: customer.id as string, sub };
  };
  /** Cancels subscription `id` now (at `at`) with refund type `refundType`, as the API's cancellation does. */
  const cancelAt = (id: string, refundType: 'none' | 'full' | 'prorate', at: string) =>
    cancelSubscriptionWithRefund(
      db(),
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      id,
      { when: 'now', refundType },
      d(at),
    );
  /**
   * A Stripe customer with 1250 of credit ((5000 − 1000) × 7/28 = 1000 + 250 tax: another
   * subscription's downgrade) and a one-off untaxed invoice of `amount` in `currency`, finalized
   * (the credit applied first) and, when something is left due, charged to the card.
   */
  const oneOffWithCredit = async (currency: string, amount: number) => {
    const { customer, method } = await customerWith(app, { stripe: true });
    await downgradeCredit(app, customer.id, currency, 5000);
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.id,
      currency,
      lines: [{ description: 'Consulting', amount, quantity: 1 }],
    });
    const open = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
    if (open.body.amount_due > 0) {
      stripeChargeSucceeds();
      await app.api('POST', `/v1/invoices/${draft.body.id}/charge`, { payment_method: method!.id });
    }
    return { customer: customer.id as string, invoice: draft.body.id as string };
  };
  /** Records dispute `id` of `amount` on invoice `invoiceId`'s succeeded payment, through `statuses` in order. */
  const disputed = async (
    invoiceId: string,
    id: string,
    statuses: ('open' | 'lost' | 'won')[],
    amount: bigint,
  ) => {
    const txn = await db()
      .selectFrom('transactions')
      .selectAll()
      .where('invoice_id', '=', invoiceId)
      .where('status', '=', 'succeeded')
      .executeTakeFirstOrThrow();
    for (const status of statuses) {
      await inUnitOfWork(db(), { actor: 'system' }, (work) =>
        recordDispute(work, txn, { gatewayDisputeId: id, status, amount }),
      );
    }
    return txn;
  };
  /** A Stripe customer's one-off untaxed invoice of `amount` in `currency`, paid whole by card. */
  const oneOffByCard = async (currency: string, amount: number) => {
    const { customer, method } = await customerWith(app, { stripe: true });
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.id,
      currency,
      lines: [{ description: 'Consulting', amount, quantity: 1 }],
    });
    await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
    stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${draft.body.id}/charge`, {
      payment_method: method!.id,
    });
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: amount });
    return { customer: customer.id as string, invoice: draft.body.id as string };
  };
  /** Asserts `answer` is 422 on `amount` reading `amount`. */
  const expectAmount422 = (answer: Awaited<ReturnType<typeof refund>>, amount: string) =>
    expect({ status: answer.status, amount: answer.body.error?.fields?.amount }).toEqual({
      status: 422,
      amount,
    });

  it('BDT: a one-off 2000 by card charged back whole (lost): a refund by hand gives nothing more, with or without amount or payment (before: 2000 again, 4000 back of 2000 paid)', async () => {
    // Paid 2000 by card; a chargeback took 2000 and the customer won it. The card's room: 2000 captured
    // − 0 refunded − 2000 disputed = 0. No change credit (the refund used to ignore disputes then).
    const { invoice } = await oneOffByCard('BDT', 2000);
    const txn = await disputed(invoice, 'du_BDT', ['open', 'lost'], 2000n);
    const before = await ledgerIn(app, 'BDT');
    const says = 'at most 0 can be refunded (paid 2000 BDT, 2000 of it taken by disputes open or lost)';
    expectAmount422(await refund(invoice, {}), says);
    expectAmount422(await refund(invoice, { amount: 500 }), says);
    expectAmount422(await refund(invoice, { transaction: txn.id }), says);
    expect(await ledgerIn(app, 'BDT')).toEqual(before);
    expect(
      await db().selectFrom('refunds').select('id').where('transaction_id', '=', txn.id).execute(),
    ).toEqual([]);
    expect(await invoiceOf(invoice)).toMatchObject({ status: 'PAID', amount_refunded: 0 });
  });

  it('LKR: an open dispute of 750 on a one-off 2000 by card leaves 1250 to refund by hand; won, its 750 is refundable again: 2000 back in all', async () => {
    // Room while open: 2000 − 750 = 1250 (before: 2000, the whole card, while 750 was withdrawn).
    const { invoice } = await oneOffByCard('LKR', 2000);
    await disputed(invoice, 'du_LKR', ['open'], 750n);
    expectAmount422(
      await refund(invoice, { amount: 1300 }),
      'at most 1250 can be refunded (paid 2000 LKR, 750 of it taken by disputes open or lost)',
    );
    stripeRefundSucceeds('re_LKR_1');
    expect((await refund(invoice, {})).body).toMatchObject({ status: 'succeeded', amount: 1250 });
    // Won: the 750 came back to the merchant. Room 2000 − 1250 refunded − 0 = 750.
    await disputed(invoice, 'du_LKR', ['won'], 750n);
    stripeRefundSucceeds('re_LKR_2');
    expect((await refund(invoice, {})).body).toMatchObject({ status: 'succeeded', amount: 750 });
    expect(await invoiceOf(invoice)).toMatchObject({ status: 'REFUNDED', amount_refunded: 2000 });
  });

  it('MAD: a one-off paid 1250 by credit and 750 by card, the 750 charged back (lost): a refund of 750 is refused (before: 750 to the card again), the credit comes back: 2000 in all', async () => {
    const { customer, invoice } = await oneOffWithCredit('MAD', 2000);
    expect(await invoiceOf(invoice)).toMatchObject({ credit_applied: 1250, amount_paid: 750 });
    const txn = await disputed(invoice, 'du_MAD', ['open', 'lost'], 750n);
    // The card's room: 750 − 750 disputed = 0.
    const says = 'at most 0 can be refunded (paid 750 MAD, 750 of it taken by disputes open or lost)';
    expectAmount422(await refund(invoice, { amount: 750 }), says);
    expectAmount422(await refund(invoice, { transaction: txn.id }), says);
    expect((await refund(invoice, {})).body.error?.code).toBe('only_credit_left');
    // Kept 2000 − 750 disputed = 1250, no cash left: all of it as credit.
    expect((await returnCredit(invoice, {})).body.credit_note).toMatchObject({ total: 1250 });
    expect(await creditOf(customer)).toEqual([{ currency: 'MAD', amount: 1250 }]);
    expect(await invoiceOf(invoice)).toMatchObject({ amount_refunded: 0, credit_returned: 1250 });
  });

  it('PKR: a customer-credit refund goes back through a card no further than a chargeback left of it: 750 of 1750, not 1250', async () => {
    // 3000: 1250 by credit, 1750 by card; 1000 of the card charged back (lost). The invoice kept
    // 3000 − 1000 = 2000: cash left min(2000, 1750 − 1000) = 750, so credit min(2000 − 750, 1250) =
    // 1250 goes back as credit. Paid back in cash, that credit can use the card's room only:
    // 1750 − 1000 disputed = 750 (before: 1750, so 1250 went to a card that kept 750).
    const { customer, invoice } = await oneOffWithCredit('PKR', 3000);
    expect(await invoiceOf(invoice)).toMatchObject({ credit_applied: 1250, amount_paid: 1750 });
    await disputed(invoice, 'du_PKR', ['open', 'lost'], 1000n);
    expect((await returnCredit(invoice, {})).body.credit_note).toMatchObject({ total: 1250 });
    const payBack = (amount: number) =>
      app.api('POST', `/v1/customers/${customer}/credit/refund`, { amount, currency: 'PKR' });
    expectAmount422(
      await payBack(1250),
      "at most 750 can go back through the customer's PKR gateway payments",
    );
    stripeRefundSucceeds('re_PKR_credit');
    expect((await payBack(750)).status).toBe(201);
    expect(await creditOf(customer)).toEqual([{ currency: 'PKR', amount: 500 }]);
  });

  it('BOB: a cancellation splits its cash over the period invoice’s payments by what chargebacks left of each: 500 + 1000, not 1500 on the one charged back', async () => {
    // 2000 + 25% = 2500: 1000 captured in part first, the other 1500 charged after (the newest). 1000
    // of the newest charged back (lost). `full` owes 2500 − 1000 = 1500 in cash, newest first, each
    // up to its room: the newest 1500 − 1000 = 500, then the older 1000 (before: all 1500 on the
    // newest, which kept 500).
    const { customer, method } = await customerWith(app, { stripe: true });
    const { subscription, invoices } = await createSubscription(
      db(),
      'system',
      { customerId: customer.id, planId: await flatPlan(app, 'BOB', 2000), paymentMethodId: method!.id },
      d('2027-02-01T00:00:00Z'),
    );
    const invoiceId = invoices[0]!.id;
    const older = await capturedInPart(app, invoiceId, 1000, 'pi_BOB_part');
    stripeChargeSucceeds();
    const rest = await app.api('POST', `/v1/invoices/${invoiceId}/charge`, {});
    expect(rest.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 2500 });
    const newest = await db()
      .selectFrom('transactions')
      .selectAll()
      .where('id', '=', rest.body.transaction.id)
      .executeTakeFirstOrThrow();
    for (const status of ['open', 'lost'] as const) {
      await inUnitOfWork(db(), { actor: 'system' }, (work) =>
        recordDispute(work, newest, { gatewayDisputeId: 'du_BOB', status, amount: 1000n }),
      );
    }
    stripeRefundSucceeds('re_BOB_1');
    stripeRefundSucceeds('re_BOB_2');
    const cancelled = await cancelAt(subscription.id, 'full', '2027-02-23T00:00:00Z');
    expect(cancelled.refunds.map((r) => [r.transaction_id, r.amount])).toEqual([
      [newest.id, 500n],
      [older.id, 1000n],
    ]);
  });

  it('UAH: after the upgrade’s invoice is charged back (lost), a prorate cancellation is refused (before: 2321 from the period invoice, 3571 back of 3750 paid)', async () => {
    // 2000 + 25% = 2500 by card Feb 1. Feb 15 (14 of 28 days left) up to 4000: (4000 − 2000) × 14/28
    // = 1000 + 250 tax = 1250, by card, then charged back whole (lost). Paid 3750; used Feb 1–15 at
    // 2500 (1250) and Feb 15–16 at 5000/28 (179): at most 2321 back, and 1250 went back already.
    const { sub } = await paidFeb1(await flatPlan(app, 'UAH', 2000));
    const up = await changeAt(sub.id, await flatPlan(app, 'UAH', 4000), '2027-02-15T00:00:00Z');
    expect(up.invoice).toMatchObject({ total: 1250n });
    stripeChargeSucceeds();
    await app.api('POST', `/v1/invoices/${up.invoice!.id}/charge`, {});
    await disputed(up.invoice!.id, 'du_UAH', ['open', 'lost'], 1250n);
    const before = await ledgerIn(app, 'UAH');
    const refused = await cancelAt(sub.id, 'prorate', '2027-02-16T00:00:00Z').catch((e: unknown) => e);
    expect((refused as { fields: { refund_type: string } }).fields.refund_type).toContain(
      `their invoices ${up.invoice!.id} (PAID, 0 due, 1250 UAH taken by disputes open or lost) are not paid in full or gave money back since`,
    );
    expect(await ledgerIn(app, 'UAH')).toEqual(before);
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}`)).body.status).toBe('ACTIVE');
  });

  it('OMR: a downgrade after the period invoice is charged back (lost) credits no unused time (before: 625 of credit on top of the 2500 back)', async () => {
    // 2000 + 25% = 2500 by card Feb 1, all charged back. Feb 15 down to 1000 would credit
    // (2000 − 1000) × 14/28 = 500 + 125 tax = 625 of time the chargeback gave back already.
    const { customer, sub } = await paidFeb1(await flatPlan(app, 'OMR', 2000));
    await disputed(sub.invoice.id, 'du_OMR', ['open', 'lost'], 2500n);
    const refused = await changeAt(sub.id, await flatPlan(app, 'OMR', 1000), '2027-02-15T00:00:00Z').catch(
      (e: unknown) => e,
    );
    expect((refused as { fields: { proration: string } }).fields.proration).toContain(
      `${sub.invoice.id} (2500 OMR of its recurring lines)`,
    );
    expect(await creditOf(customer)).toEqual([]);
  });

  /** A Stripe customer subscribed to `plan` from Apr 1 2027 (a 30-day period), its first invoice paid whole by the card. */
  const paidApr1 = async (plan: string) => {
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan,
      method: method!.id,
      start: d('2027-04-01T00:00:00Z'),
    });
    return { customer: customer.id as string, sub };
  };
  /** The exceptions raised on payment `txn`: kind, message, details. */
  const exceptionsOn = (txn: string) =>
    db()
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'message', 'details'])
      .where('transaction_id', '=', txn)
      .execute();
  const disputeOn = async (txn: string) =>
    (
      await db()
        .selectFrom('disputes')
        .select('id')
        .where('transaction_id', '=', txn)
        .executeTakeFirstOrThrow()
    ).id;

  /** Records dispute `id` on `invoice`'s payment as lost for `amount` (after it was opened for more). */
  const lostFor = async (invoice: string, id: string, amount: bigint) => {
    const txn = await db()
      .selectFrom('transactions')
      .selectAll()
      .where('invoice_id', '=', invoice)
      .where('status', '=', 'succeeded')
      .executeTakeFirstOrThrow();
    await inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordDispute(work, txn, { gatewayDisputeId: id, status: 'lost', amount }),
    );
  };
  // JPY 2400 + 25% = 3000 by card Apr 1 (Apr 1 – May 1, 30 days); 2500 of it disputed (open), then
  // the subscription cancelled on Apr 11 (a third of the period used, 20 of 30 days unused).
  const disputedThenCancelled = async (currency: string, refundType: 'none' | 'full' | 'prorate') => {
    const { customer, sub } = await paidApr1(await flatPlan(app, currency, 2400));
    const txn = await disputed(sub.invoice.id, `du_${currency}`, ['open'], 2500n);
    return { customer, sub, txn, cancelled: await cancelAt(sub.id, refundType, '2027-04-11T00:00:00Z') };
  };
  const exactly = (o: {
    dispute: string;
    txn: string;
    sub: string;
    invoice: string;
    came: string;
    counted: string;
    type: string;
    owed: number;
    c: string;
  }) =>
    `dispute ${o.dispute} on ${o.txn} ${o.came}, but subscription ${o.sub}'s ${o.type} cancellation from 2027-04-11T00:00:00.000Z counted ${o.counted} as the customer's already: the customer is owed exactly ${o.owed} ${o.c} of invoice ${o.invoice} (what that cancellation owes, worked again without the dispute): refund it by hand (POST /v1/invoices/${o.invoice}/refund with amount ${o.owed})`;

  it('JPY: a dispute of 2500 won after a prorate cancellation at a third of the period that refunded nothing: the customer is owed exactly the unused 2000, said so (before: nothing said), and the refund by hand it names gives back 2000', async () => {
    // prorate: 3000 × 20/30 = 2000 owed, the disputed 2500 counted as given back: nothing refunded.
    const { customer, sub, txn, cancelled } = await disputedThenCancelled('JPY', 'prorate');
    expect(cancelled.refunds).toEqual([]);
    // Won: the merchant has the 2500 again; the cancellation still owes its 2000.
    await disputed(sub.invoice.id, 'du_JPY', ['won'], 2500n);
    const dispute = await disputeOn(txn.id);
    expect(await exceptionsOn(txn.id)).toEqual([
      {
        kind: 'dispute_won_after_refund',
        message: exactly({
          dispute,
          txn: txn.id,
          sub: sub.id,
          invoice: sub.invoice.id,
          came: "was won: its 2500 JPY is the merchant's again",
          counted: 'it',
          type: 'prorate',
          owed: 2000,
          c: 'JPY',
        }),
        details: { dispute, invoice: sub.invoice.id, amount: '2500', owed: '2000', credit_notes: [] },
      },
    ]);
    expect(await creditOf(customer)).toEqual([]);
    stripeRefundSucceeds('re_JPY_owed');
    expect((await refund(sub.invoice.id, { amount: 2000 })).body).toMatchObject({
      status: 'succeeded',
      amount: 2000,
    });
    // 3000 in, 2000 back (1600 + 400 tax): 1000 kept for the third used (800 revenue + 200 tax).
    expect(await ledgerIn(app, 'JPY')).toMatchObject({
      'gateway_clearing:stripe': 1000,
      disputed_funds: 0,
      refunds: 1600,
      revenue: -2400,
      tax_payable: -200,
    });
  });

  it('KRW / KGS: won after a full cancellation (500 refunded), exactly the 2500 the refund left out is owed (before: "up to 2500"); after one with none, nothing is owed or said', async () => {
    // full: 3000 owed, 2500 counted as given back by the dispute: 500 refunded (400 + 100 tax).
    stripeRefundSucceeds('re_KRW_full');
    const full = await disputedThenCancelled('KRW', 'full');
    expect(full.cancelled.refunds.map((r) => r.amount)).toEqual([500n]);
    await disputed(full.sub.invoice.id, 'du_KRW', ['won'], 2500n);
    const [note] = await db()
      .selectFrom('credit_notes')
      .select('id')
      .where('invoice_id', '=', full.sub.invoice.id)
      .execute();
    const dispute = await disputeOn(full.txn.id);
    expect(await exceptionsOn(full.txn.id)).toEqual([
      {
        kind: 'dispute_won_after_refund',
        message: exactly({
          dispute,
          txn: full.txn.id,
          sub: full.sub.id,
          invoice: full.sub.invoice.id,
          came: "was won: its 2500 KRW is the merchant's again",
          counted: 'it',
          type: 'full',
          owed: 2500,
          c: 'KRW',
        }),
        details: {
          dispute,
          invoice: full.sub.invoice.id,
          amount: '2500',
          owed: '2500',
          credit_notes: [note!.id],
        },
      },
    ]);
    expect(await ledgerIn(app, 'KRW')).toMatchObject({
      'gateway_clearing:stripe': 2500,
      disputed_funds: 0,
      refunds: 400,
      tax_payable: -500,
    });
    // none: nothing owed back, whatever the dispute did.
    const none = await disputedThenCancelled('KGS', 'none');
    expect(none.cancelled.refunds).toEqual([]);
    await disputed(none.sub.invoice.id, 'du_KGS', ['won'], 2500n);
    expect(await exceptionsOn(none.txn.id)).toEqual([]);
  });

  it('TWD: a dispute of 2500 lost for 1000 after a prorate cancellation that refunded nothing: of the 1500 back to the merchant, exactly 1000 is owed (2000 unused less the 1000 lost; before: nothing said)', async () => {
    const { sub, txn, cancelled } = await disputedThenCancelled('TWD', 'prorate');
    expect(cancelled.refunds).toEqual([]);
    await lostFor(sub.invoice.id, 'du_TWD', 1000n);
    const dispute = await disputeOn(txn.id);
    expect(await exceptionsOn(txn.id)).toEqual([
      {
        kind: 'dispute_won_after_refund',
        message: exactly({
          dispute,
          txn: txn.id,
          sub: sub.id,
          invoice: sub.invoice.id,
          came: "was lost for 1000 of the 2500 TWD it held: 1500 TWD is the merchant's again",
          counted: 'all 2500',
          type: 'prorate',
          owed: 1000,
          c: 'TWD',
        }),
        details: { dispute, invoice: sub.invoice.id, amount: '1500', owed: '1000', credit_notes: [] },
      },
    ]);
    // 3000 in, 1000 lost, 2000 in clearing; nothing refunded yet.
    expect(await ledgerIn(app, 'TWD')).toMatchObject({
      'gateway_clearing:stripe': 2000,
      disputed_funds: 0,
      chargeback_losses: 1000,
    });
    stripeRefundSucceeds('re_TWD_owed');
    expect((await refund(sub.invoice.id, { amount: 1000 })).body).toMatchObject({
      status: 'succeeded',
      amount: 1000,
    });
  });

  it('GEL: a dispute won after a cancellation gave back the rest of the period while it was open flags the customer as owed exactly what that cancellation still owes (2500 − 1500 = 1000; before: "up to 1000"); one won with nothing given back meanwhile flags nothing', async () => {
    // 2000 + 25% = 2500 paid by card Feb 1; a dispute of 1000 opened: the cancellation's `full`
    // gives back 2500 − 1000 = 1500 (the disputed 1000 counted as the customer's already).
    const { sub } = await paidFeb1(await flatPlan(app, 'GEL', 2000));
    const txn = await disputed(sub.invoice.id, 'du_GEL', ['open'], 1000n);
    stripeRefundSucceeds('re_GEL_full');
    const cancelled = await cancelAt(sub.id, 'full', '2027-02-10T00:00:00Z');
    expect(cancelled.refunds.map((r) => r.amount)).toEqual([1500n]);
    const [note] = await db()
      .selectFrom('credit_notes')
      .select('id')
      .where('invoice_id', '=', sub.invoice.id)
      .execute();
    // Won: the 1000 is the merchant's again, and nothing gives it back by itself.
    await disputed(sub.invoice.id, 'du_GEL', ['won'], 1000n);
    const flagged = await db()
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'status', 'message', 'details'])
      .where('transaction_id', '=', txn.id)
      .execute();
    const dispute = await db()
      .selectFrom('disputes')
      .select('id')
      .where('transaction_id', '=', txn.id)
      .executeTakeFirstOrThrow();
    expect(flagged).toEqual([
      {
        kind: 'dispute_won_after_refund',
        status: 'open',
        message: `dispute ${dispute.id} on ${txn.id} was won: its 1000 GEL is the merchant's again, but subscription ${sub.id}'s full cancellation from 2027-02-10T00:00:00.000Z counted it as the customer's already: the customer is owed exactly 1000 GEL of invoice ${sub.invoice.id} (what that cancellation owes, worked again without the dispute): refund it by hand (POST /v1/invoices/${sub.invoice.id}/refund with amount 1000)`,
        details: {
          dispute: dispute.id,
          invoice: sub.invoice.id,
          amount: '1000',
          owed: '1000',
          credit_notes: [note!.id],
        },
      },
    ]);
    // What the exception says to do: the payment's room counts the won 1000 again.
    stripeRefundSucceeds('re_GEL_owed');
    expect((await refund(sub.invoice.id, {})).body).toMatchObject({ status: 'succeeded', amount: 1000 });

    // A dispute opened and won with no refund or credit note between: nothing to flag.
    const { invoice } = await oneOffByCard('GEL', 2000);
    const quiet = await disputed(invoice, 'du_GEL_quiet', ['open', 'won'], 500n);
    expect(
      await db()
        .selectFrom('reconciliation_exceptions')
        .select('kind')
        .where('transaction_id', '=', quiet.id)
        .execute(),
    ).toEqual([]);
  });

  it('KZT: an upgrade refunded while its period invoice was disputed (its change credit then carried: REFUNDED) is PARTIALLY_REFUNDED again once the dispute is won (before: REFUNDED still), and REFUNDED once that credit is returned', async () => {
    // 2000 + 25% = 2500 by card Feb 1. Feb 15 down to 1000: (2000 − 1000) × 14/28 = 500 + 125 tax =
    // 625 to the customer's credit. Feb 22 up to 4000: (4000 − 1000) × 7/28 = 750 + 187 tax = 937,
    // 625 of it by that credit and 312 by card.
    const { customer, sub } = await paidFeb1(await flatPlan(app, 'KZT', 2000));
    await changeAt(sub.id, await flatPlan(app, 'KZT', 1000), '2027-02-15T00:00:00Z');
    const up = await changeAt(sub.id, await flatPlan(app, 'KZT', 4000), '2027-02-22T00:00:00Z');
    const upgrade = up.invoice!.id;
    stripeChargeSucceeds();
    await app.api('POST', `/v1/invoices/${upgrade}/charge`, {});
    expect(await invoiceOf(upgrade)).toMatchObject({ total: 937, credit_applied: 625, amount_paid: 312 });
    // The period invoice's 2500 disputed (open): it keeps nothing, so the upgrade carries the 625 of
    // change credit; refunded whole (312), it keeps nothing either: REFUNDED.
    const txn = await disputed(sub.invoice.id, 'du_KZT', ['open'], 2500n);
    stripeRefundSucceeds('re_KZT');
    expect((await refund(upgrade, {})).body).toMatchObject({ status: 'succeeded', amount: 312 });
    expect(await invoiceOf(upgrade)).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 312,
      credit_returned: 0,
      amount_disputed: 0,
    });
    expect(await invoiceOf(sub.invoice.id)).toMatchObject({ status: 'PAID', amount_disputed: 2500 });
    // Won: the period invoice keeps its 2500 again and carries the 625 itself, so the upgrade keeps
    // the 625 of credit that paid it: PARTIALLY_REFUNDED, open to give it back.
    await disputed(sub.invoice.id, 'du_KZT', ['won'], 2500n);
    expect(await invoiceOf(upgrade)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 312,
      credit_returned: 0,
    });
    expect(await invoiceOf(sub.invoice.id)).toMatchObject({ status: 'PAID', amount_disputed: 0 });
    const dispute = await db()
      .selectFrom('disputes')
      .select('id')
      .where('transaction_id', '=', txn.id)
      .executeTakeFirstOrThrow();
    const changed = await db()
      .selectFrom('activities')
      .select('data')
      .where('resource_id', '=', upgrade)
      .where('action', '=', 'invoice.status_changed')
      .execute();
    expect(changed.map((a) => a.data)).toEqual([
      { from: 'REFUNDED', status: 'PARTIALLY_REFUNDED', because: dispute.id },
    ]);
    // The credit comes back by hand, and the upgrade is REFUNDED again: 312 cash and 625 credit.
    expect((await returnCredit(upgrade, {})).body.credit_note).toMatchObject({ total: 625 });
    expect(await invoiceOf(upgrade)).toMatchObject({ status: 'REFUNDED', credit_returned: 625 });
    expect(await creditOf(customer)).toEqual([{ currency: 'KZT', amount: 625 }]);
    const books = await ledgerIn(app, 'KZT');
    // Clearing: 2500 + 312 paid, 312 refunded; the dispute's 2500 went to disputed funds and back.
    expect(books).toMatchObject({ 'customer_credit:customer': -625, disputed_funds: 0 });
    expect(books['gateway_clearing:stripe']).toBe(2500);
  });

  it('NPR: a one-off whose card part was charged back (lost) and whose credit was returned keeps nothing: REFUNDED, as if refunded (before: PARTIALLY_REFUNDED); the dispute alone leaves it PAID, amount_disputed showing it', async () => {
    // 2000: 1250 by credit, 750 by card, the 750 charged back (lost).
    const { customer, invoice } = await oneOffWithCredit('NPR', 2000);
    await disputed(invoice, 'du_NPR', ['open', 'lost'], 750n);
    expect(await invoiceOf(invoice)).toMatchObject({
      status: 'PAID',
      amount_paid: 750,
      amount_refunded: 0,
      amount_disputed: 750,
    });
    expect((await returnCredit(invoice, {})).body.credit_note).toMatchObject({ total: 1250 });
    expect(await invoiceOf(invoice)).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 0,
      credit_returned: 1250,
      amount_disputed: 750,
    });
    expect(await creditOf(customer)).toEqual([{ currency: 'NPR', amount: 1250 }]);
    expect((await refund(invoice, {})).body.error?.code).toBe('invoice_not_paid');
    // A one-off of 2000 by card charged back whole: PAID (as Stripe keeps it paid), all of it disputed.
    const { invoice: byCard } = await oneOffByCard('NPR', 2000);
    await disputed(byCard, 'du_NPR_card', ['open', 'lost'], 2000n);
    expect(await invoiceOf(byCard)).toMatchObject({
      status: 'PAID',
      amount_refunded: 0,
      amount_disputed: 2000,
    });
    const listed = await app.api('GET', `/v1/invoices?customer=${customer}`);
    expect(listed.body.data.map((i: { amount_disputed: number }) => i.amount_disputed)).toContain(750);
    expect(await ledgerIn(app, 'NPR')).toMatchObject({ chargeback_losses: 2750, disputed_funds: 0 });
  });

  it('JMD: 1250 of 2000 refunded while 750 is disputed (open) is REFUNDED (before: PARTIALLY_REFUNDED), PARTIALLY_REFUNDED again once the dispute is won, REFUNDED once the 750 is refunded too', async () => {
    const { invoice } = await oneOffByCard('JMD', 2000);
    await disputed(invoice, 'du_JMD', ['open'], 750n);
    stripeRefundSucceeds('re_JMD_1');
    expect((await refund(invoice, {})).body).toMatchObject({ status: 'succeeded', amount: 1250 });
    expect(await invoiceOf(invoice)).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 1250,
      amount_disputed: 750,
    });
    await disputed(invoice, 'du_JMD', ['won'], 750n);
    expect(await invoiceOf(invoice)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 1250,
      amount_disputed: 0,
    });
    stripeRefundSucceeds('re_JMD_2');
    expect((await refund(invoice, {})).body).toMatchObject({ status: 'succeeded', amount: 750 });
    expect(await invoiceOf(invoice)).toMatchObject({ status: 'REFUNDED', amount_refunded: 2000 });
    expect(await ledgerIn(app, 'JMD')).toMatchObject({
      'gateway_clearing:stripe': 0,
      refunds: 2000,
      disputed_funds: 0,
    });
  });

  it('UYU: a dispute won while a credit return of its invoice commits waits for the invoice, so it sees that credit note: dispute_won_after_refund, and the invoice PARTIALLY_REFUNDED (before: recorded at once, nothing flagged, 750 owed unsaid)', async () => {
    // 2000: 1250 by credit, 750 by card; the 750 disputed (open). The credit return (1250) holds the
    // invoice, its note written, not committed; the dispute is then reported won.
    const { invoice } = await oneOffWithCredit('UYU', 2000);
    const txn = await disputed(invoice, 'du_UYU', ['open'], 750n);
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holding = () => {};
    const held = new Promise<void>((resolve) => {
      holding = resolve;
    });
    const returning = inUnitOfWork(db(), { actor: 'system' }, async (work) => {
      const note = await returnInvoiceCredit(work, invoice, 1250n, null);
      holding();
      await released;
      return note;
    });
    await held;
    let done = false;
    const won = inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordDispute(work, txn, { gatewayDisputeId: 'du_UYU', status: 'won', amount: 750n }),
    ).finally(() => {
      done = true;
    });
    // Waiting for the invoice (or for the ledger writers' lock, behind a reader queued meanwhile);
    // recorded without the invoice's lock, it is done at once.
    await waitFor('the won dispute to wait for a lock, or to be done', async () => {
      if (done) return true;
      const { rows } = await sql<{ waiting: number }>`
        SELECT count(*)::int AS waiting FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'
          AND (query LIKE '%"invoices"%' OR query LIKE '%pg_advisory_xact_lock_shared%')
      `.execute(db());
      return rows[0]!.waiting > 0;
    });
    release();
    const note = await returning;
    await won;
    const flagged = await db()
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'details'])
      .where('transaction_id', '=', txn.id)
      .execute();
    expect(flagged).toEqual([
      {
        kind: 'dispute_won_after_refund',
        details: expect.objectContaining({ invoice, amount: '750', credit_notes: [note.id] }),
      },
    ]);
    // The credit back and the dispute open: REFUNDED; won, 750 kept again.
    expect(await invoiceOf(invoice)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      credit_returned: 1250,
      amount_disputed: 0,
    });
    stripeRefundSucceeds('re_UYU_owed');
    expect((await refund(invoice, {})).body).toMatchObject({ status: 'succeeded', amount: 750 });
    expect(await invoiceOf(invoice)).toMatchObject({ status: 'REFUNDED', amount_refunded: 750 });
  });

  it('TTD: a dispute lost for less than it held after a refund counted the whole hold flags the customer as possibly owed the rest (before: nothing said), and the invoice keeps that rest again: PARTIALLY_REFUNDED', async () => {
    // 2000 by card; 1000 disputed (open): 1000 left to refund by hand, all of it refunded: REFUNDED
    // (1000 refunded, 1000 disputed). Lost for 600 only: 400 of the hold back to the merchant.
    const { invoice } = await oneOffByCard('TTD', 2000);
    const txn = await disputed(invoice, 'du_TTD', ['open'], 1000n);
    stripeRefundSucceeds('re_TTD_1');
    expect((await refund(invoice, {})).body).toMatchObject({ status: 'succeeded', amount: 1000 });
    expect(await invoiceOf(invoice)).toMatchObject({ status: 'REFUNDED', amount_disputed: 1000 });
    await inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordDispute(work, txn, { gatewayDisputeId: 'du_TTD', status: 'lost', amount: 600n }),
    );
    const [note] = await db()
      .selectFrom('credit_notes')
      .select('id')
      .where('invoice_id', '=', invoice)
      .execute();
    const dispute = await db()
      .selectFrom('disputes')
      .select(['id', 'amount', 'status'])
      .where('transaction_id', '=', txn.id)
      .executeTakeFirstOrThrow();
    expect(dispute).toMatchObject({ amount: 600n, status: 'lost' });
    const flagged = await db()
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'message', 'details'])
      .where('transaction_id', '=', txn.id)
      .execute();
    expect(flagged).toEqual([
      {
        kind: 'dispute_won_after_refund',
        message: `dispute ${dispute.id} on ${txn.id} was lost for 600 of the 1000 TTD it held: 400 TTD is the merchant's again, but while it was open invoice ${invoice} gave money back (${note!.id}) counting all 1000 as the customer's already; the customer may be owed up to 400 TTD: refund what is owed by hand (POST /v1/invoices/${invoice}/refund)`,
        details: { dispute: dispute.id, invoice, amount: '400', credit_notes: [note!.id] },
      },
    ]);
    expect(await invoiceOf(invoice)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 1000,
      amount_disputed: 600,
    });
    stripeRefundSucceeds('re_TTD_owed');
    expect((await refund(invoice, {})).body).toMatchObject({ status: 'succeeded', amount: 400 });
    expect(await invoiceOf(invoice)).toMatchObject({ status: 'REFUNDED', amount_refunded: 1400 });
    // Clearing: 2000 paid, 1000 held then 400 of it released, 1400 refunded; 600 lost.
    expect(await ledgerIn(app, 'TTD')).toMatchObject({
      'gateway_clearing:stripe': 0,
      disputed_funds: 0,
      chargeback_losses: 600,
      refunds: 1400,
    });
  });
});
