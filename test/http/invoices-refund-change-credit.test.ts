import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { issueCreditReturnNote } from '../../src/billing/credit-notes.ts';
import { lockInvoice } from '../../src/billing/invoices.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { renewSubscription } from '../../src/billing/renewal.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { recordDispute } from '../../src/payments/disputes.ts';
import { recordRefundResult } from '../../src/payments/refunds.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import {
  customerWith,
  downgradeCredit,
  flatPlan,
  ledgerIn,
  subscribedAndPaid,
} from '../support/collection.ts';
import { capturedInPart, paidAgain, stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { entryPostings } from '../support/money-core.ts';
import { insertPlan } from '../support/plans.ts';
import { deliverStripe, refundObject, stripeEvent } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

const d = (iso: string) => new Date(iso);

/**
 * A refund by hand (`POST /v1/invoices/:id/refund`) of a period invoice whose subscription changed in
 * the period counts the change's proration credit that went to the customer (payments/refunds.ts
 * `roomAfterChangeCredit`, billing/proration.ts `periodCreditToCustomer`): it gives back at most what
 * was paid, less what was refunded, less that credit (the customer has it already: held, spent or
 * refunded), and its credit note's tax is worked over what the invoice still asks net of that credit
 * (billing/credit-notes.ts), as a cancellation's refund gives back the period net of its changes'
 * credits. Before, a whole refund by hand gave back all that was paid while the customer kept the
 * credit, and the note's tax ignored the credit's tax. A change invoice refunded whole (amount
 * omitted) also gives back, as credit, the customer credit it took (billing/credit-returns.ts
 * `wholeRefund`): the period invoice carries the change credit, so an upgrade paid by it gave that
 * credit back nowhere before. With no cash left to refund, that credit comes back alone by
 * `POST /v1/invoices/:id/credit/return` (`returnCreditByHand`); a dispute open or lost counts as
 * given back of the sale (`disputedAway`), so a chargeback moves the change credit elsewhere.
 *
 * Subscriptions start on Feb 1 2027 (28 days) and change on Feb 15 (14 days left) or Feb 22 (7
 * left), on a simulated clock; plans are FLAT_FEE, taxed at 25% (`flatPlan`) or untaxed. Each
 * scenario has its own currency, so `ledgerIn` reads its own books in the shared app.
 */
describe('POST /v1/invoices/:id/refund after a change credited the period to the customer', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    // Invoices are paid by the tests (settle, a partial capture), not by the charge worker; an
    // `unknown` refund stays unknown until the test records its outcome (no retry, no recovery).
    await app.runtime.boss.offWork(QUEUES.invoiceCharge);
    await app.runtime.boss.offWork(QUEUES.invoiceRefund);
    await app.runtime.boss.offWork(QUEUES.refundRecover);
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());

  const db = () => app.runtime.db;
  const changeAt = (id: string, planId: string, at: string) =>
    changeSubscription(db(), 'system', id, { planId }, d(at), false);
  const untaxedPlan = (currency: string, amount: number) =>
    insertPlan(db(), { currency, price: { model: 'FLAT_FEE', amount } });
  const refund = (invoice: string, body: Record<string, unknown>) =>
    app.api('POST', `/v1/invoices/${invoice}/refund`, body);
  /** Asserts `answer` is 409 `refund_exceeds_change_credit` with field `amount` reading `amount`. */
  const expectRefused = (answer: Awaited<ReturnType<typeof refund>>, amount: string) =>
    expect({
      status: answer.status,
      code: answer.body.error?.code,
      amount: answer.body.error?.fields.amount,
    }).toEqual({ status: 409, code: 'refund_exceeds_change_credit', amount });
  const creditOf = async (customer: string) =>
    (await app.api('GET', `/v1/customers/${customer}`)).body.credit;
  /** The invoice with its credit notes as `[subtotal, tax]`, oldest first. */
  const invoiceOf = async (id: string) => {
    const body = (await app.api('GET', `/v1/invoices/${id}?expand=credit_notes`)).body;
    return {
      ...body,
      notes: body.credit_notes.map((n: { subtotal: number; tax: number }) => [n.subtotal, n.tax]),
    };
  };
  /** A Stripe customer subscribed to `from` from Feb 1, its first invoice paid whole by the card. */
  const paidFeb1 = async (from: string) => {
    const { customer, method } = await customerWith(app, { stripe: true });
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan: from,
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
   * 2800 + 25% = 3500 paid Feb 1. Feb 8 (21 days left): up to 11200: −2100 − 525 tax unused, +8400 +
   * 2100 tax: an invoice of 6300 + 1575 = 7875, paid by card. `beforeDown` runs then (the period
   * invoice's id). Feb 15 (14 left): down to 2800: −5600 − 1400 tax unused, +1400 + 350 tax: −4200
   * net, −1050 tax, 5250 to the customer's credit, more than the period invoice was paid. The
   * period kept 3500 + 7875 − 5250 = 6125.
   * @returns the customer, the subscription (its period invoice) and the upgrade's invoice id
   */
  const upThenDown = async (currency: string, beforeDown?: (periodInvoice: string) => Promise<void>) => {
    const { customer, sub } = await paidFeb1(await flatPlan(app, currency, 2800));
    const up = await changeAt(sub.id, await flatPlan(app, currency, 11200), '2027-02-08T00:00:00Z');
    expect(up.invoice).toMatchObject({ subtotal: 6300n, tax: 1575n, total: 7875n });
    stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${up.invoice!.id}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');
    if (beforeDown) await beforeDown(sub.invoice.id);
    const down = await changeAt(sub.id, await flatPlan(app, currency, 2800), '2027-02-15T00:00:00Z');
    expect(down.proration).toMatchObject({ subtotal: -4200n, tax: -1050n, total: -5250n });
    return { customer, sub, upInvoice: up.invoice!.id };
  };

  it('CHF: a whole refund after a downgrade credit to the customer is refused 409; up to what the period kept is refunded, tax exact', async () => {
    // 2000 + 25% = 2500 paid by card. Feb 15: down to 1000 + 25%. Unused 2000 × 14/28 = 1000 + 250
    // tax credited, 1000 × 14/28 = 500 + 125 tax charged: −500 net, −125 tax, −625 to the customer's
    // credit (the invoice was paid). The period kept 2500 − 625 = 1875: the refund by hand's room.
    const { customer, sub } = await paidFeb1(await flatPlan(app, 'CHF', 2000));
    const change = await changeAt(sub.id, await flatPlan(app, 'CHF', 1000), '2027-02-15T00:00:00Z');
    expect(change.proration).toMatchObject({ subtotal: -500n, tax: -125n, total: -625n });
    expect(await creditOf(customer)).toEqual([{ currency: 'CHF', amount: 625 }]);
    const before = await ledgerIn(app, 'CHF');

    // The whole invoice, and any amount above 1875: 409, field `amount`, nothing changes.
    for (const body of [{ amount: 2500 }, { amount: 1876 }]) {
      const refused = await refund(sub.invoice.id, body);
      expect({ status: refused.status, code: refused.body.error?.code }).toEqual({
        status: 409,
        code: 'refund_exceeds_change_credit',
      });
      expect(refused.body.error.message).toContain(
        "and 625 CHF of the credit this period's subscription changes gave the customer",
      );
      expect(refused.body.error.message).toContain('at most 1875 CHF can be refunded by hand');
      expect(refused.body.error.fields.amount).toBe(
        'at most 1875 CHF (paid 2500, refunded 0, change credit to the customer 625)',
      );
    }
    expect(await ledgerIn(app, 'CHF')).toEqual(before);
    expect((await invoiceOf(sub.invoice.id)).amount_refunded).toBe(0);

    // 1000, then the rest (amount omitted: 875). Notes' tax over what the invoice still asks:
    // taxAsked 500 − 125 = 375 of asked 2500 − 625 = 1875; round(375 × 1000/1875) = 200 (800 net),
    // then 375 × 1875/1875 − 200 = 175 (700 net).
    stripeRefundSucceeds('re_chf_change_1');
    const first = await refund(sub.invoice.id, { amount: 1000 });
    expect(first.body).toMatchObject({ status: 'succeeded', amount: 1000 });
    stripeRefundSucceeds('re_chf_change_2');
    const rest = await refund(sub.invoice.id, {});
    expect(rest.body).toMatchObject({ status: 'succeeded', amount: 875 });
    const invoice = await invoiceOf(sub.invoice.id);
    expect(invoice).toMatchObject({ status: 'PARTIALLY_REFUNDED', amount_paid: 2500, amount_refunded: 1875 });
    expect(invoice.notes).toEqual([
      [800, 200],
      [700, 175],
    ]);
    // The second refund's entry: refunds 700 and tax payable 175 debited, clearing credited 875.
    expect(await entryPostings(db(), `${rest.body.id}:succeeded`)).toEqual({
      refunds: 700n,
      tax_payable: 175n,
      'gateway_clearing:stripe': -875n,
    });
    // Nothing more, by amount or whole: 1875 of 2500 refunded, 625 the customer's credit.
    for (const body of [{ amount: 1 }, {}]) {
      const none = await refund(sub.invoice.id, body);
      expect({ status: none.status, code: none.body.error?.code }).toEqual({
        status: 409,
        code: 'refund_exceeds_change_credit',
      });
      expect(none.body.error.message).toContain('at most 0 CHF can be refunded by hand');
    }
    // Books: revenue 2000 − 500 (change) = 1500 earned, all refunded; tax 500 − 125 − 375 = 0; the
    // customer's 625 of credit; clearing 2500 − 1875 = 625, which the credit still owes.
    expect(await ledgerIn(app, 'CHF')).toMatchObject({
      'receivable:customer': 0,
      revenue: -1500,
      refunds: 1500,
      tax_payable: 0,
      'customer_credit:customer': -625,
      'gateway_clearing:stripe': 625,
    });
  });

  it('JPY (no decimals): the whole 3000 is refused; 2550 (amount omitted) is refunded after a 450 credit to the customer', async () => {
    // Untaxed 3000 paid. Feb 22: down to 1200: −3000 × 7/28 + 1200 × 7/28 = −750 + 300 = −450 of
    // customer credit. Room 3000 − 450 = 2550.
    const { customer, sub } = await paidFeb1(await untaxedPlan('JPY', 3000));
    await changeAt(sub.id, await untaxedPlan('JPY', 1200), '2027-02-22T00:00:00Z');
    expect(await creditOf(customer)).toEqual([{ currency: 'JPY', amount: 450 }]);
    for (const body of [{ amount: 3000 }, { amount: 2551 }]) {
      expectRefused(
        await refund(sub.invoice.id, body),
        'at most 2550 JPY (paid 3000, refunded 0, change credit to the customer 450)',
      );
    }
    // Amount omitted: all that is left, 2550.
    stripeRefundSucceeds('re_jpy_change');
    const refunded = await refund(sub.invoice.id, {});
    expect(refunded.body).toMatchObject({ status: 'succeeded', amount: 2550 });
    expect((await invoiceOf(sub.invoice.id)).notes).toEqual([[2550, 0]]);
    // Revenue 3000 − 450 = 2550 earned, all refunded; the 450 is the customer's; clearing keeps 450.
    expect(await ledgerIn(app, 'JPY')).toMatchObject({
      'receivable:customer': 0,
      revenue: -2550,
      refunds: 2550,
      'customer_credit:customer': -450,
      'gateway_clearing:stripe': 450,
    });
  });

  it('SEK: after a taxed → untaxed downgrade, the note gives back the tax the period kept (250, not 350)', async () => {
    // 2000 + 25% = 2500 paid. Feb 15: down to untaxed 1000. Unused 1000 + 250 tax credited, 500 + 0
    // charged: −500 net, −250 tax, −750 to the customer's credit. The period kept 1750 with 250 tax.
    const { sub } = await paidFeb1(await flatPlan(app, 'SEK', 2000));
    const change = await changeAt(sub.id, await untaxedPlan('SEK', 1000), '2027-02-15T00:00:00Z');
    expect(change.proration).toMatchObject({ subtotal: -500n, tax: -250n, total: -750n });
    // 1750 by hand: tax (500 − 250) × 1750 / (2500 − 750) = 250, 1500 net. Before: 500 × 1750 / 2500
    // = 350, leaving tax payable at −100 (tax reclaimed that was never collected).
    stripeRefundSucceeds('re_sek_change');
    const refunded = await refund(sub.invoice.id, { amount: 1750 });
    expect(refunded.body).toMatchObject({ status: 'succeeded', amount: 1750 });
    expect((await invoiceOf(sub.invoice.id)).notes).toEqual([[1500, 250]]);
    expect(await ledgerIn(app, 'SEK')).toMatchObject({
      revenue: -1500,
      refunds: 1500,
      tax_payable: 0,
      'customer_credit:customer': -750,
      'gateway_clearing:stripe': 750,
    });
  });

  it('NOK: a cancellation’s full refund after the same downgrade gives back the same 1750 with the same 250 of tax', async () => {
    // As SEK: 2500 paid, 750 (250 tax) to the customer. `full` owes the period net of its changes:
    // 2500 − 750 = 1750 (cancellation.ts); its note's tax as by hand: 250 (before: 350).
    const { sub } = await paidFeb1(await flatPlan(app, 'NOK', 2000));
    await changeAt(sub.id, await untaxedPlan('NOK', 1000), '2027-02-15T00:00:00Z');
    stripeRefundSucceeds('re_nok_change_cancel');
    const cancelled = await cancelAt(sub.id, 'full', '2027-02-20T00:00:00Z');
    expect(cancelled.refunds.map((r) => r.amount)).toEqual([1750n]);
    expect((await invoiceOf(sub.invoice.id)).notes).toEqual([[1500, 250]]);
    expect(await ledgerIn(app, 'NOK')).toMatchObject({ revenue: -1500, refunds: 1500, tax_payable: 0 });
  });

  it('PLN: after a paid upgrade, a downgrade crediting more than the period invoice was paid counts the rest against the upgrade’s invoice', async () => {
    // 2800 + 25% = 3500 paid. Feb 8 (21 days left): up to 11200: −2100 − 525 tax unused, +8400 + 2100
    // tax: an invoice of 6300 + 1575 = 7875, paid by card. Feb 15 (14 left): down to 2800: −5600 −
    // 1400 tax unused, +1400 + 350 tax: −4200 net, −1050 tax, 5250 to the customer's credit. The
    // period kept 3500 + 7875 − 5250 = 6125. The period invoice carries the credit first, up to its
    // 3500 paid (tax 1050 × 3500/5250 = 700, its own 700): nothing left there; the other 1750 (tax
    // 1050 − 700 = 350) counts against the upgrade's invoice: 7875 − 1750 = 6125 left there.
    const { customer, sub, upInvoice } = await upThenDown('PLN');
    expect(await creditOf(customer)).toEqual([{ currency: 'PLN', amount: 5250 }]);

    expectRefused(
      await refund(sub.invoice.id, { amount: 1 }),
      'at most 0 PLN (paid 3500, refunded 0, change credit to the customer 3500)',
    );
    expectRefused(
      await refund(upInvoice, { amount: 6126 }),
      'at most 6125 PLN (paid 7875, refunded 0, change credit to the customer 1750)',
    );
    stripeRefundSucceeds('re_pln_change');
    const whole = await refund(upInvoice, {});
    expect(whole.body).toMatchObject({ status: 'succeeded', amount: 6125 });
    // Its note: (1575 − 350) × 6125 / (7875 − 1750) = 1225 of tax, 4900 net.
    expect((await invoiceOf(upInvoice)).notes).toEqual([[4900, 1225]]);
    // Revenue 2800 + 6300 − 4200 = 4900, all refunded; tax 700 + 1575 − 1050 − 1225 = 0; clearing
    // 3500 + 7875 − 6125 = 5250, the customer's credit.
    expect(await ledgerIn(app, 'PLN')).toMatchObject({
      'receivable:customer': 0,
      revenue: -4900,
      refunds: 4900,
      tax_payable: 0,
      'customer_credit:customer': -5250,
      'gateway_clearing:stripe': 5250,
    });
  });

  it('DKK, partly paid: a credit split between the invoice and the customer leaves 1750 to refund, with 250 of tax', async () => {
    // 2000 + 25% = 2500, the card captured 2000 of it (500 due). Feb 15: down to untaxed 1000: −750
    // (−500 net, −250 tax). 500 of it clears the invoice (tax round(250 × 500/750) = 167: 333 net),
    // the other 250 (167 net, 83 tax) is the customer's credit. The period kept 2000 − 250 = 1750.
    const { customer, method } = await customerWith(app, { stripe: true });
    const { subscription, invoices } = await createSubscription(
      db(),
      'system',
      { customerId: customer.id, planId: await flatPlan(app, 'DKK', 2000), paymentMethodId: method!.id },
      d('2027-02-01T00:00:00Z'),
    );
    const invoiceId = invoices[0]!.id;
    await capturedInPart(app, invoiceId, 2000, 'pi_dkk_part');
    expect(await invoiceOf(invoiceId)).toMatchObject({ status: 'OPEN', amount_paid: 2000, amount_due: 500 });
    const change = await changeAt(subscription.id, await untaxedPlan('DKK', 1000), '2027-02-15T00:00:00Z');
    expect(change.creditedToInvoice).toEqual({ invoice: invoiceId, amount: 500n });
    expect(await invoiceOf(invoiceId)).toMatchObject({
      status: 'PAID',
      proration_credited: 500,
      amount_due: 0,
    });
    expect(await creditOf(customer.id)).toEqual([{ currency: 'DKK', amount: 250 }]);
    const before = await ledgerIn(app, 'DKK');

    // 2000 (all the card paid) is refused; the whole refund is 1750 (before: 2000).
    const refused = await refund(invoiceId, { amount: 2000 });
    expect(refused.body.error?.code).toBe('refund_exceeds_change_credit');
    expect(refused.body.error.fields.amount).toBe(
      'at most 1750 DKK (paid 2000, refunded 0, change credit to the customer 250)',
    );
    stripeRefundSucceeds('re_dkk_part');
    const whole = await refund(invoiceId, {});
    expect(whole.body).toMatchObject({ status: 'succeeded', amount: 1750 });
    // Its note: taxAsked 500 − 167 − 83 = 250 of asked 2500 − 500 − 250 = 1750: all 250, 1500 net
    // (before: 2000 refunded with (500 − 167) × 2000/2000 = 333 of tax).
    expect((await invoiceOf(invoiceId)).notes).toEqual([[1500, 250]]);
    expect(await entryPostings(db(), `${whole.body.id}:succeeded`)).toEqual({
      refunds: 1500n,
      tax_payable: 250n,
      'gateway_clearing:stripe': -1750n,
    });
    // Books moved by the refund: revenue given back 1500, tax 250, clearing 1750; since the start
    // tax is 500 − 167 − 83 − 250 = 0 and revenue 2000 − 333 − 167 − 1500 = 0 net of refunds.
    const after = await ledgerIn(app, 'DKK');
    expect({
      refunds: after.refunds! - (before.refunds ?? 0),
      tax: after.tax_payable! - before.tax_payable!,
      clearing: after['gateway_clearing:stripe']! - before['gateway_clearing:stripe']!,
    }).toEqual({ refunds: 1500, tax: 250, clearing: -1750 });
  });

  it('RON: a cancellation refund (prorate) of the period invoice after it carried a change credit gives back its tax share, 175', async () => {
    // `upThenDown`: 3500 (700 tax) paid, the upgrade's 7875 paid, 5250 (1050 tax) to the customer.
    // Feb 22 (7 of 28 days left), prorate: the plan in force, 3500 a period, × 7/28 = 875 back from
    // the period invoice. Once that refund counts, the period invoice carries min(5250, 3500 − 875) =
    // 2625 of the credit, tax 1050 × 2625/5250 = 525 (within its own 700); its note's tax is worked
    // over asked 3500 − 2625 = 875, taxAsked 700 − 525 = 175: 175 × 875/875 = 175, 700 net (as
    // before the change credit counted). Before: the period invoice carried all 5250, asked < 0, so
    // [875, 0], the whole refund booked as revenue given back.
    const { sub } = await upThenDown('RON');
    stripeRefundSucceeds('re_ron_cancel');
    const cancelled = await cancelAt(sub.id, 'prorate', '2027-02-22T00:00:00Z');
    expect(cancelled.refunds.map((r) => r.amount)).toEqual([875n]);
    expect((await invoiceOf(sub.invoice.id)).notes).toEqual([[700, 175]]);
    expect(await entryPostings(db(), `${cancelled.refunds[0]!.id}:succeeded`)).toEqual({
      refunds: 700n,
      tax_payable: 175n,
      'gateway_clearing:stripe': -875n,
    });
    // Tax payable 700 + 1575 − 1050 − 175 = 1050 left, the tax of the 4200 net the period kept.
    expect(await ledgerIn(app, 'RON')).toMatchObject({ tax_payable: -1050, refunds: 700 });
  });

  it('CZK: after a cancellation refund of the period invoice, the upgrade’s invoice carries the change credit the period invoice no longer can: 5250 left, not 6125', async () => {
    // `upThenDown`, then the cancellation's 875 from the period invoice (as RON): it carries 2625
    // (525 tax), the upgrade's invoice the other 2625 (tax 1050 − 525 = 525): 7875 − 2625 = 5250
    // left there: the period kept 11375 − 5250 (credit) − 875 (cancellation) = 5250, all a whole
    // refund by hand gives back. Before: the credit's spill ignored the period invoice's refund, so
    // 6125 was allowed (875 + 6125 in cash and 5250 of credit: 875 more than the 11375 paid).
    const { customer, sub, upInvoice } = await upThenDown('CZK');
    stripeRefundSucceeds('re_czk_cancel');
    const cancelled = await cancelAt(sub.id, 'prorate', '2027-02-22T00:00:00Z');
    expect(cancelled.refunds.map((r) => r.amount)).toEqual([875n]);
    expectRefused(
      await refund(upInvoice, { amount: 5251 }),
      'at most 5250 CZK (paid 7875, refunded 0, change credit to the customer 2625)',
    );
    stripeRefundSucceeds('re_czk_up');
    const whole = await refund(upInvoice, {});
    expect(whole.body).toMatchObject({ status: 'succeeded', amount: 5250 });
    // Its note: taxAsked 1575 − 525 = 1050 of asked 7875 − 2625 = 5250: all 1050, 4200 net.
    expect((await invoiceOf(upInvoice)).notes).toEqual([[4200, 1050]]);
    expect(await creditOf(customer)).toEqual([{ currency: 'CZK', amount: 5250 }]);
    // Revenue 2800 + 6300 − 4200 = 4900, refunds 700 + 4200; tax 700 + 1575 − 1050 − 175 − 1050 = 0;
    // clearing 3500 + 7875 − 875 − 5250 = 5250, the customer's credit.
    expect(await ledgerIn(app, 'CZK')).toMatchObject({
      revenue: -4900,
      refunds: 4900,
      tax_payable: 0,
      'customer_credit:customer': -5250,
      'gateway_clearing:stripe': 5250,
    });
  });

  it.each([
    ['AUD', 'succeeded'],
    ['ISK', 'failed'],
  ] as const)(
    '%s: a cancellation with refund while the upgrade’s whole refund by hand is not answered is 409 refund_in_flight, nothing changes; once it %s, as it should',
    async (currency, outcome) => {
      // `upThenDown`: 3500 + 7875 = 11375 paid by card, 5250 to the customer's credit; the upgrade's
      // invoice gives back 7875 − 1750 carried = 6125, sent whole, no answer from Stripe (unknown: not
      // in its amount_refunded yet). A cancellation `prorate` on Feb 22 owes 3500 × 7/28 = 875 from the
      // period invoice: if both succeed, 6125 + 875 = 7000 cash + 5250 credit = 12250 back of 11375
      // paid (875 too much; with those 875 counted the upgrade's invoice gives back 5250 only, CZK).
      // Before: not refused, the 875 sent on top.
      const { customer, sub, upInvoice } = await upThenDown(currency);
      const up = await refund(upInvoice, {});
      expect(up.body).toMatchObject({ status: 'unknown', amount: 6125 });
      const subscriptionOf = () =>
        db().selectFrom('subscriptions').selectAll().where('id', '=', sub.id).executeTakeFirstOrThrow();
      const before = {
        books: await ledgerIn(app, currency),
        subscription: await subscriptionOf(),
        period: await invoiceOf(sub.invoice.id),
        credit: await creditOf(customer),
      };
      for (const type of ['prorate', 'full'] as const) {
        await expect(cancelAt(sub.id, type, '2027-02-22T00:00:00Z')).rejects.toMatchObject({
          status: 409,
          code: 'refund_in_flight',
          fields: {
            refund_type: expect.stringContaining(
              `${upInvoice} (6125 ${currency} in refunds not answered yet)`,
            ),
          },
        });
      }
      expect({
        books: await ledgerIn(app, currency),
        subscription: await subscriptionOf(),
        period: await invoiceOf(sub.invoice.id),
        credit: await creditOf(customer),
      }).toEqual(before);
      await inUnitOfWork(db(), { actor: 'system' }, (work) =>
        recordRefundResult(
          work,
          up.body.id,
          outcome === 'succeeded'
            ? { status: 'succeeded' }
            : { status: 'failed', failureCode: 'expired_or_canceled_card' },
        ),
      );
      if (outcome === 'succeeded') {
        // The upgrade's invoice gave money back: a refund by cancellation is refused as before (422 on
        // refund_type); the customer has 6125 cash + 5250 credit back, the 11375 paid.
        await expect(cancelAt(sub.id, 'prorate', '2027-02-22T00:00:00Z')).rejects.toMatchObject({
          status: 422,
          fields: { refund_type: expect.stringContaining(upInvoice) },
        });
      } else {
        // Nothing went back by hand: the cancellation gives its 875 from the period invoice.
        stripeRefundSucceeds(`re_cancel_${currency}`);
        const cancelled = await cancelAt(sub.id, 'prorate', '2027-02-22T00:00:00Z');
        expect(cancelled.refunds.map((r) => [r.amount, r.status])).toEqual([[875n, 'succeeded']]);
      }
      expect(await creditOf(customer)).toEqual([{ currency, amount: 5250 }]);
    },
  );

  it('HUF: a duplicate payment of the period invoice carries none of the change credit: refundable whole (3500), and the upgrade’s invoice still carries 1750', async () => {
    // `upThenDown`, with the period invoice paid a second time (3500) after the upgrade was paid:
    // amount_paid 7000 of 3500 asked, the 3500 overpayment the customer's credit (no invoice was
    // open to take it). The period invoice carries min(5250, its sale paid 3500) = 3500: the
    // duplicate's 3500 can go back (7000 − 3500), all of it the overpayment (no credit note); the
    // upgrade's invoice carries 5250 − 3500 = 1750: 6125 left there. Before: amount_paid 7000 counted
    // whole, the duplicate refused (room 7000 − 5250 = 1750) and nothing spilled onto the upgrade's.
    let duplicate = '';
    const { sub, upInvoice } = await upThenDown('HUF', async (periodInvoice) => {
      duplicate = (await paidAgain(app, periodInvoice, 3500n, 'HUF')).second.id;
    });
    expect((await invoiceOf(sub.invoice.id)).amount_paid).toBe(7000);
    stripeRefundSucceeds('re_huf_dup');
    const dup = await refund(sub.invoice.id, { transaction: duplicate, amount: 3500 });
    expect(dup.body).toMatchObject({ status: 'succeeded', amount: 3500 });
    expect((await invoiceOf(sub.invoice.id)).notes).toEqual([]);
    expectRefused(
      await refund(sub.invoice.id, { amount: 1 }),
      'at most 0 HUF (paid 7000, refunded 3500, change credit to the customer 3500)',
    );
    expectRefused(
      await refund(upInvoice, { amount: 6126 }),
      'at most 6125 HUF (paid 7875, refunded 0, change credit to the customer 1750)',
    );
  });

  it.each([
    ['EUR', 'unknown'],
    ['JPY', 'unknown'],
    ['CAD', 'succeeded'],
  ] as const)(
    '%s: the upgrade’s invoice refunded while the period invoice’s cancellation refund is %s keeps the 875 refundable once that refund fails',
    async (currency, first) => {
      // `upThenDown`: 3500 + 7875 paid, 5250 to the customer's credit. Feb 22 (7 of 28 days left),
      // prorate: 3500 × 7/28 = 875 from the period invoice, not answered (unknown) or answered
      // succeeded and reversed later. With those 875 counted the period invoice carries 3500 − 875 =
      // 2625 of the credit, the upgrade's 5250 − 2625 = 2625: 7875 − 2625 = 5250 refunded by hand.
      const { customer, sub, upInvoice } = await upThenDown(currency);
      if (first === 'succeeded') stripeRefundSucceeds(`re_cancel_${currency}`);
      const cancelled = await cancelAt(sub.id, 'prorate', '2027-02-22T00:00:00Z');
      expect(cancelled.refunds.map((r) => [r.amount, r.status])).toEqual([[875n, first]]);
      stripeRefundSucceeds(`re_up_${currency}`);
      expect((await refund(upInvoice, {})).body).toMatchObject({ status: 'succeeded', amount: 5250 });
      // The cancellation's refund fails: the period invoice is paid again whole and carries 3500 of the
      // credit, the upgrade's 1750: 7875 − 5250 − 1750 = 875 still refundable there (paid 3500 + 7875
      // = 11375; back 5250 of credit + 5250 cash; the period kept 875 more than the credit says).
      await inUnitOfWork(db(), { actor: 'system' }, (work) =>
        recordRefundResult(work, cancelled.refunds[0]!.id, {
          status: 'failed',
          failureCode: 'expired_or_canceled_card',
        }),
      );
      expect(await invoiceOf(sub.invoice.id)).toMatchObject({ status: 'PAID', amount_refunded: 0 });
      expect(await creditOf(customer)).toEqual([{ currency, amount: 5250 }]);
      // The upgrade's invoice stays PARTIALLY_REFUNDED (5250 of 7875), so the 875 goes back by hand
      // (a status REFUNDED worked from the credit it carried while the cancellation's refund was in
      // flight refused it, 409 invoice_not_paid, leaving the 875 with no way back).
      expect(await invoiceOf(upInvoice)).toMatchObject({
        status: 'PARTIALLY_REFUNDED',
        amount_refunded: 5250,
      });
      expectRefused(
        await refund(upInvoice, { amount: 876 }),
        `at most 875 ${currency} (paid 7875, refunded 5250, change credit to the customer 1750)`,
      );
      stripeRefundSucceeds(`re_up_rest_${currency}`);
      const rest = await refund(upInvoice, { amount: 875 });
      expect({ status: rest.status, amount: rest.body.amount }).toEqual({ status: 201, amount: 875 });
    },
  );

  it.each(['TWD', 'UGX'])(
    '%s: a duplicate payment that lands after the period invoice gave back all the period kept is refunded by hand as its exception says',
    async (currency) => {
      // 2000 + 25% = 2500 paid by card; Feb 15 down to 1000 + 25%: 625 to the customer; 2500 − 625 =
      // 1875 refunded by hand (amount omitted). A second charge of 2500 then succeeds: amount_paid 5000,
      // the 2500 overpayment the customer's credit (625 + 2500 = 3125), flagged `duplicate_payment`.
      // Its refund `{transaction, amount: 2500}` goes through: the invoice stays PARTIALLY_REFUNDED
      // (4375 of 5000 refunded; 625 carried as the customer's credit), not REFUNDED, which would
      // refuse it 409 invoice_not_paid.
      const { customer, sub } = await paidFeb1(await flatPlan(app, currency, 2000));
      await changeAt(sub.id, await flatPlan(app, currency, 1000), '2027-02-15T00:00:00Z');
      stripeRefundSucceeds(`re_hand_${currency}`);
      expect((await refund(sub.invoice.id, {})).body).toMatchObject({ status: 'succeeded', amount: 1875 });
      expect((await invoiceOf(sub.invoice.id)).status).toBe('PARTIALLY_REFUNDED');
      const { second } = await paidAgain(app, sub.invoice.id, 2500n, currency);
      expect(await invoiceOf(sub.invoice.id)).toMatchObject({ amount_paid: 5000, amount_refunded: 1875 });
      expect(await creditOf(customer)).toEqual([{ currency, amount: 3125 }]);
      const exceptions = await db()
        .selectFrom('reconciliation_exceptions')
        .select('kind')
        .where('transaction_id', '=', second.id)
        .execute();
      expect(exceptions.map((e) => e.kind)).toEqual(['duplicate_payment']);
      stripeRefundSucceeds(`re_dup_${currency}`);
      const dup = await refund(sub.invoice.id, { transaction: second.id, amount: 2500 });
      expect({ status: dup.status, refund: dup.body.status, amount: dup.body.amount }).toEqual({
        status: 201,
        refund: 'succeeded',
        amount: 2500,
      });
      expect(await invoiceOf(sub.invoice.id)).toMatchObject({
        status: 'PARTIALLY_REFUNDED',
        amount_paid: 5000,
        amount_refunded: 4375,
      });
      expect(await creditOf(customer)).toEqual([{ currency, amount: 625 }]);
    },
  );

  it('NZD, untaxed period invoice: the change credit’s tax goes where it was collected, the upgrade’s note gives back 700, not 1400', async () => {
    // Untaxed 2800 paid Feb 1. Feb 8 (21 left): up to 11200 + 25%: −2100 unused (no tax), +8400 +
    // 2100 tax: an invoice of 6300 + 2100 = 8400, paid. Feb 15 (14 left): down to untaxed 2800:
    // −5600 − 1400 tax unused, +1400: −4200 net, −1400 tax, 5600 to the customer. The period
    // invoice carries 2800 of it (all it was paid) with no tax (tax 1400 × 2800/5600 = 700, but it
    // collected none); the upgrade's carries 2800 with all 1400: 8400 − 2800 = 5600 left, its note
    // (2100 − 1400) × 5600/5600 = 700 tax, 4900 net. Before: the tax went pro rata (700 on each),
    // the note gave back 1400 and tax payable ended 700 below 0.
    const { sub } = await paidFeb1(await untaxedPlan('NZD', 2800));
    const up = await changeAt(sub.id, await flatPlan(app, 'NZD', 11200), '2027-02-08T00:00:00Z');
    expect(up.invoice).toMatchObject({ subtotal: 6300n, tax: 2100n, total: 8400n });
    stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${up.invoice!.id}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');
    const down = await changeAt(sub.id, await untaxedPlan('NZD', 2800), '2027-02-15T00:00:00Z');
    expect(down.proration).toMatchObject({ subtotal: -4200n, tax: -1400n, total: -5600n });
    expect((await refund(sub.invoice.id, { amount: 1 })).body.error?.fields.amount).toBe(
      'at most 0 NZD (paid 2800, refunded 0, change credit to the customer 2800)',
    );
    stripeRefundSucceeds('re_nzd_up');
    const whole = await refund(up.invoice!.id, {});
    expect(whole.body).toMatchObject({ status: 'succeeded', amount: 5600 });
    expect((await invoiceOf(up.invoice!.id)).notes).toEqual([[4900, 700]]);
    // Revenue 2800 + 6300 − 4200 = 4900, all refunded; tax 2100 − 1400 − 700 = 0; clearing 2800 +
    // 8400 − 5600 = 5600, the customer's credit.
    expect(await ledgerIn(app, 'NZD')).toMatchObject({
      revenue: -4900,
      refunds: 4900,
      tax_payable: 0,
      'customer_credit:customer': -5600,
      'gateway_clearing:stripe': 5600,
    });
  });

  /**
   * A Stripe customer holding `credit` of customer credit (`downgradeCredit`: another subscription
   * of `big` + 25% paid offline, down to 1000 on Feb 22: (big − 1000) × 7/28 + 25%), then subscribed
   * to `from` from Feb 1: its invoice takes that credit first, the card pays the rest.
   */
  const paidFeb1WithCredit = async (currency: string, big: number, from: number) => {
    const { customer, method } = await customerWith(app, { stripe: true });
    await downgradeCredit(app, customer.id, currency, big);
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan: await flatPlan(app, currency, from),
      method: method!.id,
      start: d('2027-02-01T00:00:00Z'),
    });
    return { customer: customer.id as string, sub };
  };

  it('INR/THB: a period invoice paid half by customer credit gives back by hand the 1250 of cash a cancellation’s full refund gives', async () => {
    // The customer holds 1250 of credit: (5000 − 1000) × 7/28 = 1000 + 250 tax. 2000 + 25% = 2500,
    // 1250 taken by that credit, 1250 by card. Feb 15: down to 1000 + 25%: −500 net, −125 tax, 625
    // to the customer's credit. The invoice took in 1250 + 1250 = 2500 and carries the 625 (within
    // all it took in): 2500 − 625 = 1875 of the period may go back, the cash of it at most the
    // 1250 paid by card. A cancellation `full` owes 2500 − 625 = 1875: 1250 cash, 625 of the credit
    // back. Before: only the cash counted (1250 − 625 = 625), so a refund of 1250 was 409.
    const inr = await paidFeb1WithCredit('INR', 5000, 2000);
    expect(await invoiceOf(inr.sub.invoice.id)).toMatchObject({ amount_paid: 1250, credit_applied: 1250 });
    await changeAt(inr.sub.id, await flatPlan(app, 'INR', 1000), '2027-02-15T00:00:00Z');
    expect(await creditOf(inr.customer)).toEqual([{ currency: 'INR', amount: 625 }]);
    // More than the period kept (1875): 409, naming the credit applied; at most the 1250 of cash.
    expectRefused(
      await refund(inr.sub.invoice.id, { amount: 1876 }),
      'at most 1250 INR (paid 1250, credit applied 1250, refunded 0, change credit to the customer 625)',
    );
    // Within it but more than the card paid: the payment's own room refuses it (422 on amount).
    const beyond = await refund(inr.sub.invoice.id, { amount: 1251 });
    expect({ status: beyond.status, amount: beyond.body.error?.fields.amount }).toEqual({
      status: 422,
      amount: 'at most 1250 can be refunded (paid 1250 INR)',
    });
    stripeRefundSucceeds('re_inr_credit_paid');
    const byHand = await refund(inr.sub.invoice.id, { amount: 1250 });
    expect({ status: byHand.status, body: byHand.body }).toMatchObject({
      status: 201,
      body: { status: 'succeeded', amount: 1250 },
    });
    // Its note: asked 2500 − 625 = 1875, taxAsked 500 − 125 = 375: 375 × 1250/1875 = 250, 1000 net.
    expect((await invoiceOf(inr.sub.invoice.id)).notes).toEqual([[1000, 250]]);
    // Books (both subscriptions): revenue 5000 − 1000 + 2000 − 500 = 5500, refunds 1000; tax 1250 −
    // 250 + 500 − 125 − 250 = 1125 (the period kept 625 = 500 + 125, the other 4000 + 1000);
    // customer credit 1250 − 1250 + 625 = 625; clearing 1250 − 1250 = 0.
    expect(await ledgerIn(app, 'INR')).toMatchObject({
      revenue: -5500,
      refunds: 1000,
      tax_payable: -1125,
      'customer_credit:customer': -625,
      'gateway_clearing:stripe': 0,
    });

    // The same period cancelled `full` on Feb 16: 1250 cash and 625 of the credit back.
    const thb = await paidFeb1WithCredit('THB', 5000, 2000);
    await changeAt(thb.sub.id, await flatPlan(app, 'THB', 1000), '2027-02-15T00:00:00Z');
    stripeRefundSucceeds('re_thb_credit_paid');
    const cancelled = await cancelAt(thb.sub.id, 'full', '2027-02-16T00:00:00Z');
    expect({
      cash: cancelled.refunds.map((r) => r.amount),
      credit: cancelled.creditNotes[0]?.total,
    }).toEqual({ cash: [1250n], credit: 625n });
  });

  it.each(['GBP', 'KRW'])(
    '%s: amount omitted after a customer-credit refund took part of the card’s room gives back what the card has left (625), not 422',
    async (currency) => {
      // As INR: 1250 by customer credit + 1250 by card, 625 (125 tax) credited by the downgrade; the
      // period kept 2500 − 625 = 1875, its cash 1250. The customer's 625 of credit is then refunded in
      // cash through the only gateway payment they have, this invoice's card: its room 1250 − 625 =
      // 625, the invoice's amount_refunded still 0 (a credit refund is no refund of the invoice). An
      // omitted amount asks min(1875, 1250, the card's 625) = 625. Before: 1250, which the card
      // refused (422 on amount, "at most 625").
      const { customer, sub } = await paidFeb1WithCredit(currency, 5000, 2000);
      expect(await invoiceOf(sub.invoice.id)).toMatchObject({ amount_paid: 1250, credit_applied: 1250 });
      await changeAt(sub.id, await flatPlan(app, currency, 1000), '2027-02-15T00:00:00Z');
      expect(await creditOf(customer)).toEqual([{ currency, amount: 625 }]);
      stripeRefundSucceeds(`re_credit_${currency}`);
      const back = await app.api('POST', `/v1/customers/${customer}/credit/refund`, {
        amount: 625,
        currency,
      });
      expect(back.body.refunds).toMatchObject([
        { kind: 'customer_credit', status: 'succeeded', amount: 625 },
      ]);
      expect(await creditOf(customer)).toEqual([]);
      stripeRefundSucceeds(`re_rest_${currency}`);
      const whole = await refund(sub.invoice.id, {});
      expect({ status: whole.status, refund: whole.body.status, amount: whole.body.amount }).toEqual({
        status: 201,
        refund: 'succeeded',
        amount: 625,
      });
      // The card gave back all its 1250 (625 of credit, 625 of the invoice); the period kept 2500 −
      // 625 credited − 625 refunded = 1250, the customer credit that paid it (a cancellation's
      // `full` gives credit back): nothing more by hand, the card's room is 0.
      expect(await invoiceOf(sub.invoice.id)).toMatchObject({ amount_paid: 1250, amount_refunded: 625 });
      const none = await refund(sub.invoice.id, {});
      expect({ status: none.status, amount: none.body.error?.fields?.amount }).toEqual({
        status: 422,
        amount: `at most 0 can be refunded (paid 1250 ${currency})`,
      });
    },
  );

  it('MYR: a period invoice paid whole by customer credit carries the change credit, so an upgrade paid by card gives back 6125, not 2625', async () => {
    // The customer holds 3500 of credit: (12200 − 1000) × 7/28 = 2800 + 700 tax. `upThenDown`'s
    // amounts: 2800 + 25% = 3500, paid whole by that credit (nothing by card); the upgrade's 7875 by
    // card; the downgrade's 5250 (1050 tax) to the customer. The period invoice took in 3500 and
    // carries 3500 of the credit (tax 1050 × 3500/5250 = 700, its own 700), the upgrade's the other
    // 1750 (350 tax): 7875 − 1750 = 6125 left there, as when the card paid the period (PLN). The
    // customer paid 3500 of credit + 7875 cash, gets 5250 of credit + 6125 cash back. Before: the
    // period invoice carried only what its card paid (0), all 5250 fell on the upgrade's: 2625.
    const { customer, method } = await customerWith(app, { stripe: true });
    await downgradeCredit(app, customer.id, 'MYR', 12200);
    const { subscription, invoices } = await createSubscription(
      db(),
      'system',
      { customerId: customer.id, planId: await flatPlan(app, 'MYR', 2800), paymentMethodId: method!.id },
      d('2027-02-01T00:00:00Z'),
    );
    const period = invoices[0]!.id;
    expect(await invoiceOf(period)).toMatchObject({ status: 'PAID', amount_paid: 0, credit_applied: 3500 });
    const up = await changeAt(subscription.id, await flatPlan(app, 'MYR', 11200), '2027-02-08T00:00:00Z');
    expect(up.invoice).toMatchObject({ subtotal: 6300n, tax: 1575n, total: 7875n });
    stripeChargeSucceeds();
    expect((await app.api('POST', `/v1/invoices/${up.invoice!.id}/charge`, {})).body.invoice.status).toBe(
      'PAID',
    );
    const down = await changeAt(subscription.id, await flatPlan(app, 'MYR', 2800), '2027-02-15T00:00:00Z');
    expect(down.proration).toMatchObject({ subtotal: -4200n, tax: -1050n, total: -5250n });
    expectRefused(
      await refund(up.invoice!.id, { amount: 6126 }),
      'at most 6125 MYR (paid 7875, refunded 0, change credit to the customer 1750)',
    );
    stripeRefundSucceeds('re_myr_up');
    const whole = await refund(up.invoice!.id, {});
    expect(whole.body).toMatchObject({ status: 'succeeded', amount: 6125 });
    // Its note: (1575 − 350) × 6125 / (7875 − 1750) = 1225 of tax, 4900 net.
    expect((await invoiceOf(up.invoice!.id)).notes).toEqual([[4900, 1225]]);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'MYR', amount: 5250 }]);
  });

  it('HKD: a `transaction` that is no payment of the invoice is 422 on transaction before the change credit’s 409, and changes nothing', async () => {
    // 2500 paid, Feb 15 down to 1000 + 25%: 625 to the customer, 1875 left to refund. 2500 naming a
    // payment that is not the invoice's: the field error, not refund_exceeds_change_credit (which a
    // right payment would get). Before: the 409 came first, hiding the bad field.
    const { sub } = await paidFeb1(await flatPlan(app, 'HKD', 2000));
    await changeAt(sub.id, await flatPlan(app, 'HKD', 1000), '2027-02-15T00:00:00Z');
    const before = await ledgerIn(app, 'HKD');
    const stranger = 'txn_0000000000notapayment';
    for (const body of [{ transaction: stranger, amount: 2500 }, { transaction: stranger }]) {
      const answer = await refund(sub.invoice.id, body);
      expect({ status: answer.status, fields: answer.body.error?.fields }).toEqual({
        status: 422,
        fields: {
          transaction: `${stranger} is not a succeeded gateway payment of invoice ${sub.invoice.id}`,
        },
      });
    }
    expect(await ledgerIn(app, 'HKD')).toEqual(before);
    const rows = await db()
      .selectFrom('refunds')
      .select('id')
      .where('invoice_id', '=', sub.invoice.id)
      .execute();
    expect(rows).toEqual([]);
    // The invoice's own payment, the same 2500: the change credit's 409.
    const payment = await db()
      .selectFrom('transactions')
      .select('id')
      .where('invoice_id', '=', sub.invoice.id)
      .executeTakeFirstOrThrow();
    expectRefused(
      await refund(sub.invoice.id, { transaction: payment.id, amount: 2500 }),
      'at most 1875 HKD (paid 2500, refunded 0, change credit to the customer 625)',
    );
  });

  it('BGN: a downgrade while a whole refund is not answered yet is refused (it would credit time the refund may give back); once answered, no credit', async () => {
    // 2000 + 25% = 2500 paid; all 2500 sent back and the gateway does not answer (no Stripe here:
    // unknown). A downgrade on Feb 15 would credit 625 of the period to the customer on top of the
    // 2500 on its way back: 3125 for 2500 paid. Refused, 422 on proration; nothing changes.
    const { customer, sub } = await paidFeb1(await flatPlan(app, 'BGN', 2000));
    const pending = await refund(sub.invoice.id, { amount: 2500 });
    expect(pending.body.status).toBe('unknown');
    const cheaper = await flatPlan(app, 'BGN', 1000);
    await expect(changeAt(sub.id, cheaper, '2027-02-15T00:00:00Z')).rejects.toMatchObject({
      status: 422,
      fields: {
        proration: expect.stringContaining(`${sub.invoice.id} (2500 BGN in refunds not answered yet)`),
      },
    });
    const row = await db()
      .selectFrom('subscriptions')
      .select('plan_id')
      .where('id', '=', sub.id)
      .executeTakeFirstOrThrow();
    expect(row.plan_id).not.toBe(cheaper);
    // The refund succeeds after all: all 2500 back, no customer credit.
    await inUnitOfWork(db(), { actor: 'system' }, (work) =>
      recordRefundResult(work, pending.body.id, { status: 'succeeded' }),
    );
    expect(await creditOf(customer)).toEqual([]);
    expect((await invoiceOf(sub.invoice.id)).amount_refunded).toBe(2500);
  });

  it.each([
    ['SGD', 'period invoice first'],
    ['VND', 'change invoice first'],
  ] as const)(
    '%s (%s): an upgrade paid by the period’s own change credit, both invoices refunded whole by hand: all the customer paid comes back, the change invoice’s credit as credit',
    async (currency, order) => {
      // 2000 + 25% = 2500 paid by card Feb 1. Feb 15 (14 of 28 days left) down to 1000 + 25%:
      // −1000 − 250 tax unused, +500 + 125 tax: −500 net, −125 tax, 625 to the customer's credit.
      const { customer, sub } = await paidFeb1(await flatPlan(app, currency, 2000));
      await changeAt(sub.id, await flatPlan(app, currency, 1000), '2027-02-15T00:00:00Z');
      expect(await creditOf(customer)).toEqual([{ currency, amount: 625 }]);
      // Feb 22 (7 left) up to 4000 + 25%: −250 − 62.5 tax unused, +1000 + 250 tax: 750 net, 187 tax
      // (187.5 rounded), 937; the customer's 625 of credit first, the card the other 312.
      const up = await changeAt(sub.id, await flatPlan(app, currency, 4000), '2027-02-22T00:00:00Z');
      expect(up.invoice).toMatchObject({ subtotal: 750n, tax: 187n, total: 937n, credit_applied: 625n });
      stripeChargeSucceeds();
      const charged = await app.api('POST', `/v1/invoices/${up.invoice!.id}/charge`, {});
      expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 312 });
      expect(await creditOf(customer)).toEqual([]);
      const period = sub.invoice.id;
      const change = up.invoice!.id;

      // `full` owes 2500 − 625 + 937 = 2812; the period invoice holds 2500: refused, and the message
      // names what works (before: "refund 2500 of" the period invoice, which is refused beyond 1875).
      const before = await ledgerIn(app, currency);
      const refused = await cancelAt(sub.id, 'full', '2027-02-23T00:00:00Z').catch((e: unknown) => e);
      expect(refused).toMatchObject({ status: 422 });
      const message = (refused as { fields: { refund_type: string } }).fields.refund_type;
      expect(message).toContain(`owes 2812 ${currency}`);
      expect(message).toContain('refund each invoice of the period whole by hand');
      expect(message).toContain(
        `POST /v1/invoices/${period}/refund with no amount (1875 ${currency} in cash: what it kept of the period`,
      );
      expect(message).toContain(
        `POST /v1/invoices/${change}/refund with no amount (312 ${currency} in cash and 625 ${currency} of the customer credit it took, as credit)`,
      );
      expect(await ledgerIn(app, currency)).toEqual(before);

      // As it says (VND cancels with `none` first, MXN not). The period invoice: what it kept, 2500 − 625 = 1875, in cash; its note's tax over
      // what it still asks, 500 − 125 = 375 of 1875: 1500 + 375. The change invoice: its 312 to the
      // card and the 625 of credit it took back to the customer's credit. Its notes' tax, cumulative
      // over its 937 (it carries none of the change credit: the period invoice carries all 625): the
      // credit's first (committed with the cash refund), round(187 × 625/937) = 125 (500 net), then
      // the cash's 187 − 125 = 62 (250 net).
      const refundPeriod = async () => {
        stripeRefundSucceeds(`re_${currency}_period`);
        const answer = await refund(period, {});
        expect(answer.body).toMatchObject({ status: 'succeeded', amount: 1875 });
      };
      const refundChange = async () => {
        stripeRefundSucceeds(`re_${currency}_change`);
        const answer = await refund(change, {});
        expect(answer.body).toMatchObject({ status: 'succeeded', amount: 312 });
      };
      if (currency === 'VND') {
        const none = await cancelAt(sub.id, 'none', '2027-02-23T00:00:00Z');
        expect(none).toMatchObject({ refunds: [], creditNotes: [], subscription: { status: 'CANCELLED' } });
      }
      if (order === 'period invoice first') {
        await refundPeriod();
        await refundChange();
      } else {
        await refundChange();
        await refundPeriod();
      }
      const rows = await db()
        .selectFrom('refunds')
        .select(['invoice_id', 'amount', 'status', 'kind'])
        .where('invoice_id', 'in', [period, change])
        .orderBy('amount', 'desc')
        .execute();
      expect(rows).toEqual([
        { invoice_id: period, amount: 1875n, status: 'succeeded', kind: 'payment' },
        { invoice_id: change, amount: 312n, status: 'succeeded', kind: 'payment' },
      ]);
      expect(await invoiceOf(period)).toMatchObject({
        status: 'PARTIALLY_REFUNDED',
        amount_paid: 2500,
        amount_refunded: 1875,
        credit_returned: 0,
        notes: [[1500, 375]],
      });
      const changeNow = await invoiceOf(change);
      expect(changeNow).toMatchObject({
        status: 'REFUNDED',
        amount_paid: 312,
        amount_refunded: 312,
        credit_applied: 625,
        credit_returned: 625,
      });
      expect([...changeNow.notes].sort((a, b) => b[0] - a[0])).toEqual([
        [500, 125],
        [250, 62],
      ]);
      // Paid 2500 + 312 = 2812 in cash; back 1875 + 312 = 2187 in cash and 625 of credit: 2812
      // (before: no credit, 625 short).
      expect(await creditOf(customer)).toEqual([{ currency, amount: 625 }]);
      // Nothing more by hand on either.
      expect((await refund(period, {})).body.error?.code).toBe('refund_exceeds_change_credit');
      expect((await refund(change, {})).body.error?.code).toBe('invoice_not_paid');
      // Books: revenue 2000 − 500 + 750 = 2250 earned, all given back (1500 + 500 + 250); tax 500 −
      // 125 + 187 − 375 − 125 − 62 = 0; receivable 0; the customer's 625 of credit, which the 2812 −
      // 2187 = 625 still in clearing pays for.
      expect(await ledgerIn(app, currency)).toMatchObject({
        'receivable:customer': 0,
        revenue: -2250,
        refunds: 2250,
        tax_payable: 0,
        'customer_credit:customer': -625,
        'gateway_clearing:stripe': 625,
      });
    },
  );

  it('ILS: a one-off invoice paid partly by customer credit, refunded whole by hand, gives its credit back as credit (no cancellation would)', async () => {
    // (5000 − 1000) × 7/28 = 1000 + 250 tax = 1250 of credit (another subscription's downgrade). A
    // one-off untaxed 2000: the credit pays 1250, the card 750.
    const { customer, method } = await customerWith(app, { stripe: true });
    await downgradeCredit(app, customer.id, 'ILS', 5000);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'ILS', amount: 1250 }]);
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.id,
      currency: 'ILS',
      lines: [{ description: 'Consulting', amount: 2000, quantity: 1 }],
    });
    const open = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
    expect(open.body).toMatchObject({ status: 'OPEN', total: 2000, credit_applied: 1250, amount_due: 750 });
    stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${draft.body.id}/charge`, {
      payment_method: method!.id,
    });
    expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 750 });
    expect(await creditOf(customer.id)).toEqual([]);
    const before = await ledgerIn(app, 'ILS');
    // Amount omitted: 750 to the card, and the 1250 of credit back to the customer's credit (before:
    // 750 only, the 1250 kept). Untaxed: the notes are all revenue, the credit's first.
    stripeRefundSucceeds('re_php_one_off');
    const whole = await refund(draft.body.id, {});
    expect(whole.body).toMatchObject({ status: 'succeeded', amount: 750 });
    const invoice = await invoiceOf(draft.body.id);
    expect(invoice).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 750,
      credit_applied: 1250,
      credit_returned: 1250,
    });
    expect([...invoice.notes].sort((a, b) => b[0] - a[0])).toEqual([
      [1250, 0],
      [750, 0],
    ]);
    expect(await creditOf(customer.id)).toEqual([{ currency: 'ILS', amount: 1250 }]);
    // Books moved by the refund: refunds 2000 debited, the customer's credit 1250 and clearing 750
    // credited.
    const after = await ledgerIn(app, 'ILS');
    expect({
      refunds: (after.refunds ?? 0) - (before.refunds ?? 0),
      credit: after['customer_credit:customer']! - before['customer_credit:customer']!,
      clearing: after['gateway_clearing:stripe']! - before['gateway_clearing:stripe']!,
      tax: (after.tax_payable ?? 0) - (before.tax_payable ?? 0),
    }).toEqual({ refunds: 2000, credit: -1250, clearing: -750, tax: 0 });
  });

  it.each([
    ['BRL', 'lost'],
    ['PEN', 'won'],
  ] as const)(
    '%s: the period invoice’s payment disputed (%s), then the upgrade paid by the period’s change credit refunded whole: a lost chargeback counts as given back, so the credit is not given back twice',
    async (currency, outcome) => {
      // 2000 + 25% = 2500 by card Feb 1; Feb 15 down to 1000 + 25%: 625 to the customer's credit;
      // Feb 22 up to 4000 + 25%: 937, paid 625 by that credit and 312 by card (as the SGD test).
      const { customer, sub } = await paidFeb1(await flatPlan(app, currency, 2000));
      await changeAt(sub.id, await flatPlan(app, currency, 1000), '2027-02-15T00:00:00Z');
      const up = await changeAt(sub.id, await flatPlan(app, currency, 4000), '2027-02-22T00:00:00Z');
      expect(up.invoice).toMatchObject({ total: 937n, credit_applied: 625n });
      stripeChargeSucceeds();
      const charged = await app.api('POST', `/v1/invoices/${up.invoice!.id}/charge`, {});
      expect(charged.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 312 });
      // The customer disputes the whole 2500 of the period invoice's card payment: the funds are
      // withdrawn (open), then the dispute is lost (the customer has the 2500 back) or won.
      const txn = await db()
        .selectFrom('transactions')
        .selectAll()
        .where('invoice_id', '=', sub.invoice.id)
        .where('status', '=', 'succeeded')
        .executeTakeFirstOrThrow();
      for (const status of ['open', outcome] as const) {
        await inUnitOfWork(db(), { actor: 'system' }, (work) =>
          recordDispute(work, txn, { gatewayDisputeId: `du_${currency}`, status, amount: 2500n }),
        );
      }
      stripeRefundSucceeds(`re_${currency}_change`);
      const whole = await refund(up.invoice!.id, {});
      expect(whole.body).toMatchObject({ status: 'succeeded', amount: 312 });
      const change = await invoiceOf(up.invoice!.id);
      if (outcome === 'lost') {
        // The period invoice kept 2500 − 2500 lost = 0, so it carries none of the 625 of change
        // credit; the upgrade's invoice carries all of it (room 312 + 625 = 937): it kept 937 − 625 =
        // 312, given back in cash, no credit. Paid 2500 + 312 = 2812 in cash; back 2500 by the
        // chargeback and 312 by the refund: 2812 (before: 625 of credit more, 3437).
        expect(change).toMatchObject({ amount_refunded: 312, credit_applied: 625, credit_returned: 0 });
        expect(await creditOf(customer)).toEqual([]);
      } else {
        // Won: the 2500 came back to the invoice, which carries the 625 again; the upgrade's invoice
        // kept its 937: 312 to the card, 625 back to the customer's credit (as with no dispute).
        expect(change).toMatchObject({ amount_refunded: 312, credit_applied: 625, credit_returned: 625 });
        expect(await creditOf(customer)).toEqual([{ currency, amount: 625 }]);
      }
    },
  );

  it('ARS: a cancellation’s full refund after a chargeback lost on part of the period invoice gives back the rest only (1500), not the 2500 again', async () => {
    // 2000 + 25% = 2500 by card Feb 1, no change; 1000 of it disputed and lost (the customer has it
    // back). `full` owes 2500 less what was given back, the 1000 lost: 1500, in cash (2500 − 1000
    // left on the card). Before: 2500, the card's whole room (a dispute is no refund on it).
    const { sub } = await paidFeb1(await flatPlan(app, 'ARS', 2000));
    const txn = await db()
      .selectFrom('transactions')
      .selectAll()
      .where('invoice_id', '=', sub.invoice.id)
      .where('status', '=', 'succeeded')
      .executeTakeFirstOrThrow();
    for (const status of ['open', 'lost'] as const) {
      await inUnitOfWork(db(), { actor: 'system' }, (work) =>
        recordDispute(work, txn, { gatewayDisputeId: 'du_ARS', status, amount: 1000n }),
      );
    }
    stripeRefundSucceeds('re_ARS_full');
    const cancelled = await cancelAt(sub.id, 'full', '2027-02-23T00:00:00Z');
    expect(cancelled.refunds.map((r) => r.amount)).toEqual([1500n]);
    expect(cancelled.creditNotes).toEqual([]);
  });

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
  const returnCredit = (invoice: string, body: Record<string, unknown>) =>
    app.api('POST', `/v1/invoices/${invoice}/credit/return`, body);

  it('COP: a one-off paid 1250 by credit and 750 by card, its 750 refunded by amount: PARTIALLY_REFUNDED, and POST …/credit/return gives the 1250 back', async () => {
    const { customer, invoice } = await oneOffWithCredit('COP', 2000);
    expect(await invoiceOf(invoice)).toMatchObject({
      status: 'PAID',
      credit_applied: 1250,
      amount_paid: 750,
    });
    stripeRefundSucceeds('re_COP_cash');
    expect((await refund(invoice, { amount: 750 })).body).toMatchObject({ status: 'succeeded', amount: 750 });
    // The 1250 of credit it took is still kept: not REFUNDED (before: REFUNDED, and the credit could
    // never come back: a whole refund was 409 invoice_not_paid).
    expect(await invoiceOf(invoice)).toMatchObject({ status: 'PARTIALLY_REFUNDED', credit_returned: 0 });
    // A whole refund now has no cash to give back: 409 naming the request for the credit.
    const whole = await refund(invoice, {});
    expect({ status: whole.status, code: whole.body.error?.code }).toEqual({
      status: 409,
      code: 'only_credit_left',
    });
    expect(whole.body.error.message).toContain(`1250 COP`);
    expect(whole.body.error.message).toContain(`POST /v1/invoices/${invoice}/credit/return`);
    // More than can go back: 422 on amount, nothing changes. Kept 2000 − 750 = 1250, no cash left.
    const tooMuch = await returnCredit(invoice, { amount: 1251 });
    expect({ status: tooMuch.status, amount: tooMuch.body.error?.fields?.amount }).toEqual({
      status: 422,
      amount: 'at most 1250 COP (credit applied 1250, returned 0; kept 1250, cash still refundable 0)',
    });
    const before = await ledgerIn(app, 'COP');
    const back = await returnCredit(invoice, { reason: 'goodwill' });
    expect(back.status).toBe(201);
    expect(back.body).toMatchObject({
      object: 'invoice_credit_return',
      invoice: { id: invoice, status: 'REFUNDED', amount_refunded: 750, credit_returned: 1250 },
      credit_note: { invoice, refund: null, subtotal: 1250, tax: 0, total: 1250, reason: 'goodwill' },
    });
    expect(await creditOf(customer)).toEqual([{ currency: 'COP', amount: 1250 }]);
    // Books: 1250 of refunds (revenue given back, untaxed), the customer's credit 1250 more.
    const after = await ledgerIn(app, 'COP');
    expect({
      refunds: (after.refunds ?? 0) - (before.refunds ?? 0),
      credit: after['customer_credit:customer']! - (before['customer_credit:customer'] ?? 0),
      tax: (after.tax_payable ?? 0) - (before.tax_payable ?? 0),
    }).toEqual({ refunds: 1250, credit: -1250, tax: 0 });
    // Nothing more: the credit is back, the cash refunded.
    const again = await returnCredit(invoice, {});
    expect({ status: again.status, code: again.body.error?.code }).toEqual({
      status: 409,
      code: 'credit_not_returnable',
    });
  });

  it('EGP: a one-off paid wholly by credit gives it back by POST …/credit/return, in parts; a refund is 409 only_credit_left, a period invoice 409 period_invoice_credit', async () => {
    const { customer, invoice } = await oneOffWithCredit('EGP', 1000);
    expect(await invoiceOf(invoice)).toMatchObject({ status: 'PAID', credit_applied: 1000, amount_paid: 0 });
    expect(await creditOf(customer)).toEqual([{ currency: 'EGP', amount: 250 }]);
    // Before: 409 no_gateway_payment, and no way to give the credit back by hand.
    expect((await refund(invoice, {})).body.error?.code).toBe('only_credit_left');
    const part = await returnCredit(invoice, { amount: 400 });
    expect(part.body.invoice).toMatchObject({ status: 'PARTIALLY_REFUNDED', credit_returned: 400 });
    expect((await returnCredit(invoice, { amount: 601 })).body.error?.fields?.amount).toMatch(
      /^at most 600 EGP/,
    );
    const rest = await returnCredit(invoice, {});
    expect(rest.body).toMatchObject({
      invoice: { status: 'REFUNDED', credit_returned: 1000 },
      credit_note: { total: 600 },
    });
    expect(await creditOf(customer)).toEqual([{ currency: 'EGP', amount: 1250 }]);
    // A period invoice's credit comes back through its cancellation's refund.
    const { sub } = await paidFeb1(await flatPlan(app, 'EGP', 2000));
    const period = await returnCredit(sub.invoice.id, {});
    expect({ status: period.status, code: period.body.error?.code }).toEqual({
      status: 409,
      code: 'period_invoice_credit',
    });
  });

  it('DKK / CZK: the requests a refused full or prorate names work when followed literally (a change invoice paid wholly by credit; a prorate amount beyond a change invoice’s cash)', async () => {
    // DKK: 2000 + 25% = 2500 by card Feb 1; another subscription's downgrade Feb 22 gives (9000 −
    // 1000) × 7/28 = 2000 + 500 tax = 2500 of credit; Feb 22 up to 4000 + 25%: (4000 − 2000) × 7/28
    // = 500 + 125 tax = 625, all by that credit.
    const dkk = await paidFeb1(await flatPlan(app, 'DKK', 2000));
    await downgradeCredit(app, dkk.customer, 'DKK', 9000);
    const up = await changeAt(dkk.sub.id, await flatPlan(app, 'DKK', 4000), '2027-02-22T00:00:00Z');
    expect(up.invoice).toMatchObject({ total: 625n, credit_applied: 625n, status: 'PAID' });
    // full owes 2500 + 625 = 3125, the period invoice holds 2500: refused.
    const full = await cancelAt(dkk.sub.id, 'full', '2027-02-23T00:00:00Z').catch((e: unknown) => e);
    const fullSays = (full as { fields: { refund_type: string } }).fields.refund_type;
    // Before: "each of <change> its cash through its payments and, as credit, …", a refund then 409
    // no_gateway_payment (no payment) — now the credit's own request.
    expect(fullSays).toContain(
      `POST /v1/invoices/${dkk.sub.invoice.id}/refund with no amount (2500 DKK in cash`,
    );
    expect(fullSays).toContain(`POST /v1/invoices/${up.invoice!.id}/credit/return with no amount (625 DKK`);
    await cancelAt(dkk.sub.id, 'none', '2027-02-23T00:00:00Z');
    stripeRefundSucceeds('re_DKK_period');
    expect((await refund(dkk.sub.invoice.id, {})).body).toMatchObject({ status: 'succeeded', amount: 2500 });
    const dkkCredit = await returnCredit(up.invoice!.id, {});
    expect(dkkCredit.body).toMatchObject({ invoice: { status: 'REFUNDED', credit_returned: 625 } });
    // Paid 2500 in cash and 625 of credit: back 2500 in cash, the 625 as credit (2500 − 625 + 625 held).
    expect(await creditOf(dkk.customer)).toEqual([{ currency: 'DKK', amount: 2500 }]);

    // CZK: the same 2500 and 2500 of credit; Feb 22 up to 20000 + 25%: 18000 × 7/28 = 4500 + 1125
    // tax = 5625: 2500 by credit, 3125 by card. prorate at Feb 22 12:00 (6.5 of 28 days left) owes
    // the unused time of 25000: round(25000 × 6.5/28) = 5804; the period invoice gives 2500 in cash,
    // the change invoice 3125 in cash and 179 of its credit as credit. Before: "refund 3304 CZK of"
    // the change invoice, refused 422 (its card holds 3125).
    const czk = await paidFeb1(await flatPlan(app, 'CZK', 2000));
    await downgradeCredit(app, czk.customer, 'CZK', 9000);
    const upCzk = await changeAt(czk.sub.id, await flatPlan(app, 'CZK', 20000), '2027-02-22T00:00:00Z');
    expect(upCzk.invoice).toMatchObject({ total: 5625n, credit_applied: 2500n });
    stripeChargeSucceeds();
    await app.api('POST', `/v1/invoices/${upCzk.invoice!.id}/charge`, {});
    const prorate = await cancelAt(czk.sub.id, 'prorate', '2027-02-22T12:00:00Z').catch((e: unknown) => e);
    const prorateSays = (prorate as { fields: { refund_type: string } }).fields.refund_type;
    const owed = Number(/owes (\d+) CZK/.exec(prorateSays)![1]);
    expect(owed).toBe(5804);
    const steps = [
      ...prorateSays.matchAll(/POST \/v1\/invoices\/(\S+)\/(refund|credit\/return) \{"amount": (\d+)\}/g),
    ];
    expect(steps.map(([, id, what]) => [id, what])).toEqual([
      [czk.sub.invoice.id, 'refund'],
      [upCzk.invoice!.id, 'refund'],
      [upCzk.invoice!.id, 'credit/return'],
    ]);
    expect(steps.map(([, , , amount]) => Number(amount))).toEqual([2500, 3125, owed - 5625]);
    await cancelAt(czk.sub.id, 'none', '2027-02-22T12:00:00Z');
    const creditBefore = (await creditOf(czk.customer))[0]?.amount ?? 0;
    for (const [, id, what, amount] of steps) {
      if (what === 'refund') stripeRefundSucceeds(`re_CZK_${id}`);
      const path = what === 'refund' ? 'refund' : 'credit/return';
      const answer = await app.api('POST', `/v1/invoices/${id}/${path}`, { amount: Number(amount) });
      expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    }
    expect((await creditOf(czk.customer))[0]?.amount).toBe(creditBefore + owed - 5625);
  });

  it('KES: the card’s room taken by a customer-credit refund: a whole refund is 409 only_credit_left (before: 422 on the cash, the credit never back), POST …/credit/return gives the 1250 back', async () => {
    // A one-off 2000 paid 1250 by credit and 750 by card; then 750 more credit ((3400 − 1000) ×
    // 7/28 = 600 + 150 tax), paid back in cash through the newest gateway payment: the one-off's
    // card (the downgrades' invoices were paid offline), whose room goes 750 → 0.
    const { customer, invoice } = await oneOffWithCredit('KES', 2000);
    await downgradeCredit(app, customer, 'KES', 3400);
    expect(await creditOf(customer)).toEqual([{ currency: 'KES', amount: 750 }]);
    stripeRefundSucceeds('re_KES_credit');
    const cashed = await app.api('POST', `/v1/customers/${customer}/credit/refund`, {
      amount: 750,
      currency: 'KES',
    });
    expect(cashed.status).toBe(201);
    // The one-off kept 2000 (750 cash + 1250 credit); its card can refund 0 of it: no cash, 1250 credit.
    const whole = await refund(invoice, {});
    expect({ status: whole.status, code: whole.body.error?.code }).toEqual({
      status: 409,
      code: 'only_credit_left',
    });
    const back = await returnCredit(invoice, {});
    expect(back.body).toMatchObject({
      invoice: { status: 'PARTIALLY_REFUNDED', amount_refunded: 0, credit_returned: 1250 },
      credit_note: { total: 1250 },
    });
    expect(await creditOf(customer)).toEqual([{ currency: 'KES', amount: 1250 }]);
  });

  it('QAR: a one-off paid by credit and two card payments: the refusal of a whole refund names each payment, then …/credit/return; followed, all comes back', async () => {
    // 2000: 1250 by credit, 750 due: 500 captured in part, then the other 250 charged.
    const { customer, method } = await customerWith(app, { stripe: true });
    await downgradeCredit(app, customer.id, 'QAR', 5000);
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.id,
      currency: 'QAR',
      lines: [{ description: 'Consulting', amount: 2000, quantity: 1 }],
    });
    const id = draft.body.id as string;
    await app.api('POST', `/v1/invoices/${id}/finalize`);
    await capturedInPart(app, id, 500, 'pi_QAR_part');
    stripeChargeSucceeds();
    const rest = await app.api('POST', `/v1/invoices/${id}/charge`, { payment_method: method!.id });
    expect(rest.body.invoice).toMatchObject({ status: 'PAID', amount_paid: 750, credit_applied: 1250 });
    const whole = await refund(id, {});
    expect(whole.status).toBe(422);
    expect(whole.body.error.fields.amount).toContain(
      `then POST /v1/invoices/${id}/credit/return for the customer credit that paid it`,
    );
    const calls = [...whole.body.error.fields.amount.matchAll(/\{"transaction": "(txn_[^"]+)"\}/g)];
    expect(calls).toHaveLength(2);
    for (const [, transaction] of calls) {
      stripeRefundSucceeds(`re_QAR_${transaction}`);
      expect((await refund(id, { transaction })).status).toBe(201);
    }
    expect(await invoiceOf(id)).toMatchObject({ status: 'PARTIALLY_REFUNDED', amount_refunded: 750 });
    expect((await returnCredit(id, {})).body.invoice).toMatchObject({
      status: 'REFUNDED',
      credit_returned: 1250,
    });
    expect(await creditOf(customer.id)).toEqual([{ currency: 'QAR', amount: 1250 }]);
  });

  it('RSD: full refused with the period invoice paid partly by credit; cancelled with none, its credit comes back by POST …/credit/return as the message says', async () => {
    // 1250 of credit from Feb 22, then a subscription from Mar 1 to 2000 + 25%: 1250 by credit, 1250
    // by card. Mar 15 (17 of 31 days left) up to 4000 + 25%: the change invoice paid by card.
    const { customer, method } = await customerWith(app, { stripe: true });
    await downgradeCredit(app, customer.id, 'RSD', 5000);
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan: await flatPlan(app, 'RSD', 2000),
      method: method!.id,
      start: d('2027-03-01T00:00:00Z'),
    });
    expect(await invoiceOf(sub.invoice.id)).toMatchObject({
      total: 2500,
      credit_applied: 1250,
      amount_paid: 1250,
    });
    const up = await changeAt(sub.id, await flatPlan(app, 'RSD', 4000), '2027-03-15T00:00:00Z');
    stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${up.invoice!.id}/charge`, {});
    const upPaid = Number(charged.body.invoice.amount_paid);
    const refused = await cancelAt(sub.id, 'full', '2027-03-16T00:00:00Z').catch((e: unknown) => e);
    const says = (refused as { fields: { refund_type: string } }).fields.refund_type;
    // Before: "its 1250 … of customer credit is not given back by hand" — stranded.
    expect(says).toContain(
      `its 1250 RSD of customer credit by POST /v1/invoices/${sub.invoice.id}/credit/return with no amount once cancelled`,
    );
    // Not cancelled yet: the period invoice's credit is the cancellation's to give back.
    expect((await returnCredit(sub.invoice.id, {})).body.error?.code).toBe('period_invoice_credit');
    await cancelAt(sub.id, 'none', '2027-03-16T00:00:00Z');
    stripeRefundSucceeds('re_RSD_period');
    expect((await refund(sub.invoice.id, {})).body).toMatchObject({ status: 'succeeded', amount: 1250 });
    stripeRefundSucceeds('re_RSD_change');
    expect((await refund(up.invoice!.id, {})).body).toMatchObject({ status: 'succeeded', amount: upPaid });
    const back = await returnCredit(sub.invoice.id, {});
    expect(back.body.invoice).toMatchObject({ status: 'REFUNDED', credit_returned: 1250 });
    // Paid 1250 of credit and 1250 + the change's cash: all back, the credit as credit.
    expect(await creditOf(customer.id)).toEqual([{ currency: 'RSD', amount: 1250 }]);
  });

  /**
   * Stripe reports refund `gatewayRefundId` of invoice `invoice`'s card payment `status` by webhook
   * (`charge.refund.updated`, applied by the webhook worker as reconcile/apply.ts does: a refund
   * billhook does not know, made in the dashboard, is recorded with `createRefund` and the gateway's
   * refund id, then `recordRefundResult`): `amount` minor units of `currency`, which Stripe writes as
   * they are for the currencies used here (PHP, XOF, KWD, MXN, ZAR, MUR, DOP, GEL, AED, SAR, GTQ, TRY).
   * `txn`: the payment refunded (default: the invoice's first).
   * @returns the refund row once in `status`, and the payment
   */
  const stripeReports = async (
    invoice: string,
    gatewayRefundId: string,
    amount: bigint,
    currency: string,
    status: 'succeeded' | 'failed',
    txn?: string,
  ) => {
    const payment = await db()
      .selectFrom('transactions')
      .selectAll()
      .where('invoice_id', '=', invoice)
      .$if(txn !== undefined, (q) => q.where('id', '=', txn ?? ''))
      .orderBy('created_at')
      .orderBy('id')
      .executeTakeFirstOrThrow();
    const event = stripeEvent(
      'charge.refund.updated',
      refundObject({
        id: gatewayRefundId,
        amount: Number(amount),
        intent: payment.gateway_transaction_id,
        status,
        currency: currency.toLowerCase(),
      }),
    );
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    const refund = await waitFor(`refund ${gatewayRefundId} ${status}`, () =>
      db()
        .selectFrom('refunds')
        .selectAll()
        .where('gateway_refund_id', '=', gatewayRefundId)
        .where('status', '=', status)
        .executeTakeFirst(),
    );
    return { refund, payment };
  };
  /** The reconciliation exceptions about payment `transactionId`: kind, message, details. */
  const exceptionsOf = (transactionId: string) =>
    db()
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'message', 'details', 'refund_id', 'status'])
      .where('transaction_id', '=', transactionId)
      .orderBy('created_at')
      .execute();

  it.each([
    ['PHP', 1n],
    ['XOF', 1n],
    // Three decimals; amounts ×10 (Stripe takes KWD amounts ending in 0 only).
    ['KWD', 10n],
  ] as const)(
    '%s: a dashboard refund of what the period no longer kept takes the change credit back (no note, tax payable 0) and opens refund_exceeds_change_credit; once the refund by hand fails, the 1875 are refundable again',
    async (currency, x) => {
      // 2000 + 25% = 2500 paid by card (×x). Feb 15 (14 of 28 days left): down to 1000 + 25%: 500 +
      // 125 tax = 625 to the customer's credit. 2500 − 625 = 1875 refunded by hand (amount omitted):
      // note 1500 + 375 (taxAsked 500 − 125 = 375 of asked 1875, all given back): tax payable
      // −500 + 125 + 375 = 0. The other 625 is still captured on the card.
      const { customer, sub } = await paidFeb1(await flatPlan(app, currency, Number(2000n * x)));
      await changeAt(sub.id, await flatPlan(app, currency, Number(1000n * x)), '2027-02-15T00:00:00Z');
      expect(await creditOf(customer)).toEqual([{ currency, amount: Number(625n * x) }]);
      stripeRefundSucceeds(`re_hand_dash_${currency}`);
      const hand = await refund(sub.invoice.id, {});
      expect(hand.body).toMatchObject({ status: 'succeeded', amount: Number(1875n * x) });

      // Those 625 refunded in Stripe's dashboard: the money left, so it is booked, but billhook would
      // have refused it by hand (the period kept nothing more): it is the 625 of change credit paid
      // back in cash. Their credit 625 → 0 (debited 625, no note: no revenue or tax given back
      // again); the customer has 2500 back of 2500 paid, not 2500 + 625 of credit. Before: a note of
      // 500 + 125 (tax payable 125 in debit), the credit kept, nothing flagged.
      const { refund: dash, payment } = await stripeReports(
        sub.invoice.id,
        `re_dash_${currency}`,
        625n * x,
        currency,
        'succeeded',
      );
      expect(dash).toMatchObject({ amount: 625n * x, kind: 'payment', invoice_id: sub.invoice.id });
      const refunds = await db()
        .selectFrom('refunds')
        .select(['id', 'amount', 'status'])
        .where('invoice_id', '=', sub.invoice.id)
        .orderBy('created_at')
        .execute();
      expect(refunds).toEqual([
        { id: hand.body.id, amount: 1875n * x, status: 'succeeded' },
        { id: dash.id, amount: 625n * x, status: 'succeeded' },
      ]);
      expect(await invoiceOf(sub.invoice.id)).toMatchObject({
        status: 'REFUNDED',
        amount_refunded: Number(2500n * x),
        notes: [[Number(1500n * x), Number(375n * x)]],
      });
      expect(await creditOf(customer)).toEqual([]);
      expect(await entryPostings(db(), `${dash.id}:succeeded`)).toEqual({
        'customer_credit:customer': 625n * x,
        'gateway_clearing:stripe': -625n * x,
      });
      expect(await exceptionsOf(payment.id)).toEqual([
        {
          kind: 'refund_exceeds_change_credit',
          refund_id: dash.id,
          message: `refund ${dash.id} of ${625n * x} ${currency} on invoice ${sub.invoice.id} (billhook refuses such a refund by hand: made at the gateway, or in flight while one made there succeeded) gave back more than the invoice's period kept: ${625n * x} ${currency} of it is the credit this period's subscription changes had already given the customer for time they paid for, so it is booked as that credit paid back in cash (no revenue or tax given back again); all ${625n * x} was still their credit and is taken back: tell the customer their credit is ${625n * x} ${currency} lower`,
          details: { taken_back: String(625n * x), credit_left: String(625n * x), in_debit: '0' },
          status: 'open',
        },
      ]);
      // Books: revenue 2000 − 500 (change) = 1500 earned, all refunded; tax 500 − 125 − 375 = 0;
      // the customer's credit 625 − 625 = 0; clearing 2500 − 1875 − 625 = 0; nothing owed.
      const settled = {
        'receivable:customer': 0,
        revenue: Number(-1500n * x),
        refunds: Number(1500n * x),
        tax_payable: 0,
        'customer_credit:customer': 0,
        'gateway_clearing:stripe': 0,
      };
      expect(await ledgerIn(app, currency)).toMatchObject(settled);

      // Stripe then reports the refund by hand failed after succeeding: its note is voided, the
      // customer has 625 back (the credit paid back in cash) of 2500 paid, and the period kept 1875
      // again: all of it is refundable by hand (its refunds' 625 took back change credit, not the
      // sale; before: 2500 − 625 refunded − 625 credit = 1250, 625 short).
      await stripeReports(sub.invoice.id, `re_hand_dash_${currency}`, 1875n * x, currency, 'failed');
      expect(await invoiceOf(sub.invoice.id)).toMatchObject({
        status: 'PARTIALLY_REFUNDED',
        amount_refunded: Number(625n * x),
      });
      stripeRefundSucceeds(`re_hand_again_${currency}`);
      const again = await refund(sub.invoice.id, {});
      expect(again.body).toMatchObject({ status: 'succeeded', amount: Number(1875n * x) });
      // Its note: 1500 + 375 (the first one's, voided, gave the same back): the books settle again.
      expect(await entryPostings(db(), `${again.body.id}:succeeded`)).toEqual({
        refunds: 1500n * x,
        tax_payable: 375n * x,
        'gateway_clearing:stripe': -1875n * x,
      });
      expect(await ledgerIn(app, currency)).toMatchObject(settled);
      expect(await creditOf(customer)).toEqual([]);
    },
  );

  it('TTD: a past period’s invoice of a running subscription gives its credit back by hand (before: 409 period_invoice_credit, though no cancellation reaches it)', async () => {
    // 1250 of credit from Feb 22; Mar 1 a subscription to 2000 + 25% = 2500: 1250 by credit, 1250 by
    // card. Renewed Apr 1: March is a past period, which a cancellation's refund never reaches.
    const { customer, method } = await customerWith(app, { stripe: true });
    await downgradeCredit(app, customer.id, 'TTD', 5000);
    const sub = await subscribedAndPaid(app, {
      customer: customer.id,
      plan: await flatPlan(app, 'TTD', 2000),
      method: method!.id,
      start: d('2027-03-01T00:00:00Z'),
    });
    expect(await invoiceOf(sub.invoice.id)).toMatchObject({ credit_applied: 1250, amount_paid: 1250 });
    // The current period: its cancellation's refund gives the credit back.
    const current = await returnCredit(sub.invoice.id, {});
    expect(current.body.error?.code).toBe('period_invoice_credit');
    expect(current.body.error.message).toContain("is the current period's invoice");
    await renewSubscription(db(), 'system', sub.id, d('2027-04-01T00:00:01Z'));
    // Kept 2500, of which 1250 of cash still refundable: 1250 can go back as credit; 100 asked.
    const back = await returnCredit(sub.invoice.id, { amount: 100 });
    expect(back.status).toBe(201);
    expect(back.body.invoice).toMatchObject({ credit_returned: 100 });
    expect(await creditOf(customer.id)).toEqual([{ currency: 'TTD', amount: 100 }]);
  });

  it('MXN: a dashboard refund beyond what the period kept, after part of the change credit was spent: the kept rest is a refund of the sale (tax exact), the spent credit left in debit and flagged', async () => {
    // 2000 + 25% = 2500 paid by card; Feb 15 down to 1000 + 25%: 625 (125 tax) to the customer's
    // credit; the period kept 1875. 1500 of it refunded by hand: note round(375 × 1500/1875) = 300
    // tax, 1200 net.
    const { customer, sub } = await paidFeb1(await flatPlan(app, 'MXN', 2000));
    await changeAt(sub.id, await flatPlan(app, 'MXN', 1000), '2027-02-15T00:00:00Z');
    stripeRefundSucceeds('re_hand_dash_mxn');
    expect((await refund(sub.invoice.id, { amount: 1500 })).body).toMatchObject({ status: 'succeeded' });
    // The customer spends 400 of the 625 credit on a one-off invoice of 400 (untaxed): 225 left.
    const next = await app.api('POST', '/v1/invoices', {
      customer,
      currency: 'mxn',
      lines: [{ description: 'Extra', amount: 400 }],
    });
    const finalized = await app.api('POST', `/v1/invoices/${next.body.id}/finalize`);
    expect(finalized.body).toMatchObject({ status: 'PAID', credit_applied: 400 });
    expect(await creditOf(customer)).toEqual([{ currency: 'MXN', amount: 225 }]);

    // 1000 refunded in Stripe's dashboard: 375 is what the period still kept (a refund of the sale:
    // note 375 × 1875/1875 − 300 = 75 tax, 300 net), 625 the change credit given again: taken back
    // from their credit, which held 225 of it: in debit by 400.
    const { refund: dash, payment } = await stripeReports(
      sub.invoice.id,
      're_dash_mxn',
      1000n,
      'MXN',
      'succeeded',
    );
    expect(await invoiceOf(sub.invoice.id)).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 2500,
      notes: [
        [1200, 300],
        [300, 75],
      ],
    });
    expect(await entryPostings(db(), `${dash.id}:succeeded`)).toEqual({
      'customer_credit:customer': 625n,
      refunds: 300n,
      tax_payable: 75n,
      'gateway_clearing:stripe': -1000n,
    });
    expect(await creditOf(customer)).toEqual([]);
    const [exception, ...more] = await exceptionsOf(payment.id);
    expect(more).toEqual([]);
    expect(exception).toMatchObject({
      kind: 'refund_exceeds_change_credit',
      refund_id: dash.id,
      details: { taken_back: '625', credit_left: '225', in_debit: '400' },
    });
    expect(exception!.message).toContain(
      "625 MXN of it is the credit this period's subscription changes had already given the customer for time they paid for",
    );
    expect(exception!.message).toContain(
      'the other 375 as a refund of the sale; their credit held only 225 of it (the rest was spent on later invoices or refunded): their credit is in debit by 400 MXN; recover it from the customer or write it off',
    );
    // Books: revenue 1500 (period) + 400 (one-off) earned, 1500 refunded; tax 500 − 125 − 300 − 75 =
    // 0; the customer's credit −625 + 400 + 625 = 400 in debit (theirs to pay back); clearing 0.
    expect(await ledgerIn(app, 'MXN')).toMatchObject({
      'receivable:customer': 0,
      revenue: -1900,
      refunds: 1500,
      tax_payable: 0,
      'customer_credit:customer': 400,
      'gateway_clearing:stripe': 0,
    });

    // Stripe then reports that refund failed: its entry is reversed as it was posted (the 625 of
    // credit given back: 225 again), its note voided; the 375 the period kept owes its 75 of tax again.
    await stripeReports(sub.invoice.id, 're_dash_mxn', 1000n, 'MXN', 'failed');
    expect(await creditOf(customer)).toEqual([{ currency: 'MXN', amount: 225 }]);
    expect(await invoiceOf(sub.invoice.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_refunded: 1500,
      notes: [
        [1200, 300],
        [300, 75],
      ],
    });
    expect((await invoiceOf(sub.invoice.id)).credit_notes[1].status).toBe('VOID');
    expect(await ledgerIn(app, 'MXN')).toMatchObject({
      revenue: -1900,
      refunds: 1200,
      tax_payable: -75,
      'customer_credit:customer': -225,
      'gateway_clearing:stripe': 1000,
    });
  });

  it('ZAR: after change credit was taken back and the refund by hand failed, a cancellation’s full refund gives back the 1875 the period kept, not 1250', async () => {
    // 2000 + 25% = 2500 paid; Feb 15 down to 1000 + 25%: 625 to the customer's credit; 1875 refunded
    // by hand; the other 625 refunded in Stripe's dashboard (the change credit taken back: 0 left);
    // then the 1875 fails after succeeding. The customer has 625 back (their credit, in cash) of
    // 2500. Feb 22, cancelled with `full`: it owes the period net of its change credit, 2500 − 625 =
    // 1875, none of which its refunds gave back (the 625 paid back the credit): 1875 in cash. Before:
    // the 625 counted as given back of the period, 1250.
    const { customer, sub } = await paidFeb1(await flatPlan(app, 'ZAR', 2000));
    await changeAt(sub.id, await flatPlan(app, 'ZAR', 1000), '2027-02-15T00:00:00Z');
    stripeRefundSucceeds('re_hand_dash_zar');
    expect((await refund(sub.invoice.id, {})).body).toMatchObject({ status: 'succeeded', amount: 1875 });
    await stripeReports(sub.invoice.id, 're_dash_zar', 625n, 'ZAR', 'succeeded');
    await stripeReports(sub.invoice.id, 're_hand_dash_zar', 1875n, 'ZAR', 'failed');
    expect(await creditOf(customer)).toEqual([]);
    stripeRefundSucceeds('re_cancel_zar');
    const cancelled = await cancelAt(sub.id, 'full', '2027-02-22T00:00:00Z');
    expect({
      cash: cancelled.refunds.map((r) => [r.amount, r.status]),
      credit: cancelled.creditNotes,
    }).toEqual({ cash: [[1875n, 'succeeded']], credit: [] });
    expect(await invoiceOf(sub.invoice.id)).toMatchObject({ status: 'REFUNDED', amount_refunded: 2500 });
    // Books: 1500 earned, all refunded (the cancellation's note 1500 + 375); tax 0; credit 0; clearing 0.
    expect(await ledgerIn(app, 'ZAR')).toMatchObject({
      'receivable:customer': 0,
      revenue: -1500,
      refunds: 1500,
      tax_payable: 0,
      'customer_credit:customer': 0,
      'gateway_clearing:stripe': 0,
    });
  });

  /**
   * 2000 + 25% = 2500 paid by card Feb 1; Feb 15 down to 1000 + 25%: 500 + 125 tax = 625 to the
   * customer's credit; the period kept 1875. 1875 refunded by hand (note 1500 + 375), the other 625
   * in Stripe's dashboard (all of it the change credit taken back: credit 0, no note), then Stripe
   * reports the refund by hand failed after succeeding (its note voided). The customer has 625 back in
   * cash (their credit) of 2500: the period kept 1875 again, none of it given back; tax payable −375.
   */
  const takenBackThenHandFailed = async (currency: string) => {
    const { customer, sub } = await paidFeb1(await flatPlan(app, currency, 2000));
    await changeAt(sub.id, await flatPlan(app, currency, 1000), '2027-02-15T00:00:00Z');
    const lower = currency.toLowerCase();
    stripeRefundSucceeds(`re_hand_dash_${lower}`);
    expect((await refund(sub.invoice.id, {})).body).toMatchObject({ status: 'succeeded', amount: 1875 });
    const { refund: dash, payment } = await stripeReports(
      sub.invoice.id,
      `re_dash_${lower}`,
      625n,
      currency,
      'succeeded',
    );
    await stripeReports(sub.invoice.id, `re_hand_dash_${lower}`, 1875n, currency, 'failed');
    expect(await creditOf(customer)).toEqual([]);
    expect(await ledgerIn(app, currency)).toMatchObject({
      revenue: -1500,
      refunds: 0,
      tax_payable: -375,
      'customer_credit:customer': 0,
      'gateway_clearing:stripe': 1875,
    });
    return { customer, sub, dash, payment };
  };
  /** The ISSUED credit notes of invoice `id` as `[subtotal, tax]`, oldest first. */
  const issuedNotes = async (id: string) =>
    (await app.api('GET', `/v1/invoices/${id}?expand=credit_notes`)).body.credit_notes
      .filter((n: { status: string }) => n.status === 'ISSUED')
      .map((n: { subtotal: number; tax: number }) => [n.subtotal, n.tax]);

  it('MUR: after a take-back and the refund by hand failing, a refund by hand of 1000 gives back 200 of tax (375 × 1000/1875), not 325', async () => {
    const { sub } = await takenBackThenHandFailed('MUR');
    // Room 2500 − (625 − 625 taken back) − 625 of change credit = 1875; 1000 of it now. Its note's
    // tax over what the invoice still asks net of the change credit, 375 of 1875, cumulative on the
    // sale given back, 625 + 1000 refunded − 625 taken back = 1000: round(375 × 1000/1875) = 200,
    // 800 net. Before: the earlier 625 taken back counted as sale given back: round(375 × 1625/1875)
    // = 325, 675 net (tax payable 325 − 375 = −50 where 175 is still owed).
    stripeRefundSucceeds('re_hand_sgd_2');
    const part = await refund(sub.invoice.id, { amount: 1000 });
    expect(part.body).toMatchObject({ status: 'succeeded', amount: 1000 });
    expect(await issuedNotes(sub.invoice.id)).toEqual([[800, 200]]);
    // Books: of the 1875 kept, 875 still kept with its 175 of tax (375 − 200); clearing 1875 − 1000.
    expect(await ledgerIn(app, 'MUR')).toMatchObject({
      revenue: -1500,
      refunds: 800,
      tax_payable: -175,
      'customer_credit:customer': 0,
      'gateway_clearing:stripe': 875,
    });
  });

  it('DOP: after a take-back and the refund by hand failing, a prorate cancellation Feb 22 gives back 313 with 63 of tax (375 × 313/1875), not 188', async () => {
    const { sub } = await takenBackThenHandFailed('DOP');
    // Cancelled Feb 22 with `prorate`: the plan in force (1000 + 25% = 1250) for the 7 unused days
    // of 28: 1250 × 7/28 = 312.5 → 313 (half up), none of it given back before (the 625 refunded took
    // back the change credit). Its note: round(375 × 313/1875) = round(62.6) = 63 tax, 250 net.
    // Before: the 625 counted as sale given back: round(375 × 938/1875) = 188 tax on a refund of 313.
    stripeRefundSucceeds('re_cancel_ils');
    const cancelled = await cancelAt(sub.id, 'prorate', '2027-02-22T00:00:00Z');
    expect(cancelled.refunds.map((r) => [r.amount, r.status])).toEqual([[313n, 'succeeded']]);
    expect(await issuedNotes(sub.invoice.id)).toEqual([[250, 63]]);
    // Tax payable −500 + 125 (change) − 375 + 375 (the note voided) + 63 = −312.
    expect(await ledgerIn(app, 'DOP')).toMatchObject({ refunds: 250, tax_payable: -312 });
  });

  it('GEL: a credit-return note after a take-back and the refund by hand failing counts the 625 taken back as no sale given back (200 of tax on 1000, not 325)', async () => {
    // A cancellation returns customer credit through `issueCreditReturnNote`; a card-paid invoice has
    // none to return, so the note is issued directly on the invoice as it stands: 625 refunded, all
    // of it taken back; 1000 more given back → cumulative 1000 of the 1875 the invoice still asks
    // net of the change credit: round(375 × 1000/1875) = 200 tax (before: 375 × 1625/1875 = 325).
    const { sub } = await takenBackThenHandFailed('GEL');
    const note = await inUnitOfWork(db(), { actor: 'system' }, async (work) =>
      issueCreditReturnNote(work, await lockInvoice(work, sub.invoice.id), 1000n, null),
    );
    expect(note).toMatchObject({ subtotal: 800n, tax: 200n, total: 1000n, refund_id: null });
  });

  it('QAR: a refund made before credit notes existed (no note, migration 0015) is a refund of the sale, not change credit taken back: 875 more by hand at most, not 1500', async () => {
    // 2500 paid, 625 to the customer's credit on Feb 15: the period kept 1875. 1000 refunded by hand,
    // its note then removed, as for a refund booked before credit notes existed. Room 1875 − 1000 =
    // 875. Before: its 1000 without a note counted as taken back (amount less note), so 1500 passed.
    const { sub } = await paidFeb1(await flatPlan(app, 'QAR', 2000));
    await changeAt(sub.id, await flatPlan(app, 'QAR', 1000), '2027-02-15T00:00:00Z');
    stripeRefundSucceeds('re_hand_qar');
    const first = await refund(sub.invoice.id, { amount: 1000 });
    expect(first.body).toMatchObject({ status: 'succeeded', amount: 1000 });
    await db().deleteFrom('credit_notes').where('refund_id', '=', first.body.id).execute();
    expectRefused(
      await refund(sub.invoice.id, { amount: 1500 }),
      'at most 875 QAR (paid 2500, refunded 1000, change credit to the customer 625)',
    );
    stripeRefundSucceeds('re_hand_qar_2');
    expect((await refund(sub.invoice.id, {})).body).toMatchObject({ status: 'succeeded', amount: 875 });
  });

  it('AED: a duplicate payment after a take-back: its dashboard refund pays back the overpayment only (the 625 taken back is no overpayment paid back), no second exception', async () => {
    // 1875 by hand + 625 in the dashboard (taken back): credit 0. Then the card is charged 2500 again
    // (a duplicate: 2500 overpaid, the customer's credit) and that 2500 refunded in the dashboard:
    // all of it pays back the overpayment (credit 2500 → 0), no note, nothing taken back. Before: the
    // 625 taken back counted as overpayment given back, so 625 of the duplicate's refund went beyond
    // what the period kept: a second refund_exceeds_change_credit, on a refund that took nothing back.
    const { customer, sub } = await paidFeb1(await flatPlan(app, 'AED', 2000));
    await changeAt(sub.id, await flatPlan(app, 'AED', 1000), '2027-02-15T00:00:00Z');
    stripeRefundSucceeds('re_hand_aed');
    expect((await refund(sub.invoice.id, {})).body).toMatchObject({ status: 'succeeded', amount: 1875 });
    const { payment } = await stripeReports(sub.invoice.id, 're_dash_aed', 625n, 'AED', 'succeeded');
    const { second } = await paidAgain(app, sub.invoice.id, 2500n, 'AED');
    expect(await creditOf(customer)).toEqual([{ currency: 'AED', amount: 2500 }]);
    const { refund: dup } = await stripeReports(
      sub.invoice.id,
      're_dash_aed_dup',
      2500n,
      'AED',
      'succeeded',
      second.id,
    );
    expect(await entryPostings(db(), `${dup.id}:succeeded`)).toEqual({
      'customer_credit:customer': 2500n,
      'gateway_clearing:stripe': -2500n,
    });
    expect(dup.change_credit_taken_back).toBe(0n);
    expect(await creditOf(customer)).toEqual([]);
    expect(await issuedNotes(sub.invoice.id)).toEqual([[1500, 375]]);
    expect((await exceptionsOf(payment.id)).map((e) => e.kind)).toEqual(['refund_exceeds_change_credit']);
    expect((await exceptionsOf(second.id)).map((e) => e.kind)).toEqual(['duplicate_payment']);
    // Books: 1500 earned, all refunded, tax 0; credit 0; clearing 5000 − 1875 − 625 − 2500 = 0.
    expect(await ledgerIn(app, 'AED')).toMatchObject({
      'receivable:customer': 0,
      revenue: -1500,
      refunds: 1500,
      tax_payable: 0,
      'customer_credit:customer': 0,
      'gateway_clearing:stripe': 0,
    });
  });

  it('SAR: a take-back reported failed afterwards gives the 625 back to the credit and resolves its exception, with a note', async () => {
    // 1875 by hand, 625 in the dashboard (taken back: credit 0, exception open: "tell the customer
    // their credit is 625 lower"); then Stripe reports the 625 failed: re_…:reversed gives the credit
    // back (625), so nothing is left for a person to tell or recover. Before: it stayed open.
    const { customer, sub } = await paidFeb1(await flatPlan(app, 'SAR', 2000));
    await changeAt(sub.id, await flatPlan(app, 'SAR', 1000), '2027-02-15T00:00:00Z');
    stripeRefundSucceeds('re_hand_sar');
    expect((await refund(sub.invoice.id, {})).body).toMatchObject({ status: 'succeeded', amount: 1875 });
    const { refund: dash, payment } = await stripeReports(
      sub.invoice.id,
      're_dash_sar',
      625n,
      'SAR',
      'succeeded',
    );
    expect(dash.change_credit_taken_back).toBe(625n);
    expect((await exceptionsOf(payment.id)).map((e) => e.status)).toEqual(['open']);
    await stripeReports(sub.invoice.id, 're_dash_sar', 625n, 'SAR', 'failed');
    expect(await creditOf(customer)).toEqual([{ currency: 'SAR', amount: 625 }]);
    const [exception, ...more] = await exceptionsOf(payment.id);
    expect(more).toEqual([]);
    expect(exception).toMatchObject({ kind: 'refund_exceeds_change_credit', status: 'resolved' });
    const resolved = await db()
      .selectFrom('activities')
      .select(['action', 'data'])
      .where('resource_type', '=', 'reconciliation_exception')
      .where('action', '=', 'reconciliation_exception.resolved')
      .where(sql<string>`data->>'kind'`, '=', 'refund_exceeds_change_credit')
      .where(sql<boolean>`data->>'note' like ${`refund ${dash.id} failed after succeeding%`}`)
      .execute();
    expect(resolved).toHaveLength(1);
    expect(resolved[0]!.data.note).toContain("the 625 SAR it took back is the customer's credit again");
    // Books as before the dashboard refund: 1500 earned and refunded, tax 0, the credit 625 owed by
    // the 625 still captured.
    expect(await ledgerIn(app, 'SAR')).toMatchObject({
      revenue: -1500,
      refunds: 1500,
      tax_payable: 0,
      'customer_credit:customer': -625,
      'gateway_clearing:stripe': 625,
    });
  });

  it.each([
    ['GTQ', 'failed'],
    ['TRY', 'succeeded'],
  ] as const)(
    '%s: a dashboard refund while a refund by hand is in flight takes back only what succeeded refunds gave beyond the period; the refund by hand then %s',
    async (currency, outcome) => {
      // 2500 paid, 625 to the customer's credit Feb 15: the period kept 1875. 1000 sent back by hand,
      // not answered (no Stripe here: unknown). 1500 refunded in the dashboard succeeds: of the money
      // that moved (1500) all is within the 1875 kept: a refund of the sale, note round(375 ×
      // 1500/1875) = 300 tax, 1200 net; credit 625 kept, nothing flagged. Before: the unknown 1000
      // counted as succeeded, so 625 of the 1500 took the credit back.
      const { customer, sub } = await paidFeb1(await flatPlan(app, currency, 2000));
      await changeAt(sub.id, await flatPlan(app, currency, 1000), '2027-02-15T00:00:00Z');
      const hand = await refund(sub.invoice.id, { amount: 1000 });
      expect(hand.body).toMatchObject({ status: 'unknown', amount: 1000 });
      const lower = currency.toLowerCase();
      const { refund: dash, payment } = await stripeReports(
        sub.invoice.id,
        `re_dash_${lower}`,
        1500n,
        currency,
        'succeeded',
      );
      expect(dash.change_credit_taken_back).toBe(0n);
      expect(await issuedNotes(sub.invoice.id)).toEqual([[1200, 300]]);
      expect(await creditOf(customer)).toEqual([{ currency, amount: 625 }]);
      expect(await exceptionsOf(payment.id)).toEqual([]);
      await inUnitOfWork(db(), { actor: 'system' }, (work) =>
        recordRefundResult(work, hand.body.id, { status: outcome }),
      );
      if (outcome === 'failed') {
        // Only the 1500 went back: credit 625 kept, nothing flagged; 375 of the 1875 still kept, with
        // its 75 of tax; clearing 2500 − 1500.
        expect(await creditOf(customer)).toEqual([{ currency, amount: 625 }]);
        expect(await exceptionsOf(payment.id)).toEqual([]);
        expect(await ledgerIn(app, currency)).toMatchObject({
          revenue: -1500,
          refunds: 1200,
          tax_payable: -75,
          'customer_credit:customer': -625,
          'gateway_clearing:stripe': 1000,
        });
        return;
      }
      // The 1000 succeeds: 2500 back in cash of 2500. Its 375 within what the period kept is a refund
      // of the sale (note 375 × 1875/1875 − 300 = 75 tax, 300 net), the other 625 takes the change
      // credit back (625 → 0), flagged on it.
      expect(await issuedNotes(sub.invoice.id)).toEqual([
        [1200, 300],
        [300, 75],
      ]);
      expect(await creditOf(customer)).toEqual([]);
      expect(await exceptionsOf(payment.id)).toMatchObject([
        {
          kind: 'refund_exceeds_change_credit',
          refund_id: hand.body.id,
          details: { taken_back: '625', credit_left: '625', in_debit: '0' },
        },
      ]);
      expect(await ledgerIn(app, currency)).toMatchObject({
        'receivable:customer': 0,
        revenue: -1500,
        refunds: 1500,
        tax_payable: 0,
        'customer_credit:customer': 0,
        'gateway_clearing:stripe': 0,
      });
    },
  );
});
