import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordOfflinePayment, voidInvoice } from '../../src/billing/invoices.ts';
import { changeSubscription } from '../../src/billing/proration.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import { ValidationError } from '../../src/errors.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { ledgerIn } from '../support/collection.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

const d = (iso: string) => new Date(iso);

/**
 * A downgrade's net credit over a period invoice still owed (OPEN) in a period with change invoices
 * is refused: the unused time it credits was charged by the period invoice and the changes together,
 * and which part each funded is not recorded, so no split of it is exact. The refusal names exactly
 * what to do; done, the change goes through with exact amounts. Before, it said "pay or void" with
 * no request or amount, and a void is no way out (the stored basis still counts what it charged).
 *
 * Every scenario: 2000 a month (A) from Feb 1 2027 (28 days), its invoice left OPEN; up to 4000 (B)
 * on Feb 8 (21 of 28 days left): 3000 − 1500 = 1500 on a change invoice, paid by bank; back down to A
 * on Feb 15 (14 days left): 2000 of B's unused time credited, 1000 of A charged, 1000 net credit.
 */
describe('a net credit over an OPEN period invoice in a period with change invoices', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp();
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  async function upgradedThenOwed(currency: string) {
    const plan = (amount: number, name: string) =>
      insertPlan(db, { name, currency, price: { model: 'FLAT_FEE', amount } });
    const [a, b] = [await plan(2000, 'A'), await plan(4000, 'B')];
    const customer = await insertCustomer(db);
    const { subscription, invoices } = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: a },
      d('2027-02-01T00:00:00Z'),
    );
    const period = invoices[0]!;
    const up = await changeSubscription(
      db,
      'system',
      subscription.id,
      { planId: b },
      d('2027-02-08T00:00:00Z'),
      false,
    );
    expect(up.invoice).toMatchObject({ total: 1500n, status: 'OPEN' });
    await recordOfflinePayment(db, 'system', up.invoice!.id, { method: 'BANK', amount: 1500n });
    return { id: subscription.id, a, b, period: period.id, change: up.invoice!.id };
  }
  const downgrade = (id: string, planId: string) =>
    changeSubscription(db, 'system', id, { planId }, d('2027-02-15T00:00:00Z'), false).then(
      (change) => change,
      (error: unknown) => {
        if (!(error instanceof ValidationError)) throw error;
        return error.fields?.proration;
      },
    );

  it('CHF: refused, naming the requests that settle it; paying the period invoice first, the change credits 1000 to the customer', async () => {
    const { id, a, period, change } = await upgradedThenOwed('CHF');
    const refused = await downgrade(id, a);
    expect(refused).toEqual(expect.stringContaining(`${period} still owes 2000`));
    expect(refused).toEqual(expect.stringContaining(`${change} (PAID, 1500)`));
    expect(refused).toEqual(expect.stringContaining(`POST /v1/invoices/${period}/charge`));
    expect(refused).toEqual(expect.stringContaining(`POST /v1/invoices/${period}/payments with amount 2000`));
    expect(refused).toEqual(
      expect.stringContaining('then change again: the 1000 CHF becomes customer credit'),
    );
    expect(refused).toEqual(expect.stringContaining('proration none'));
    // Nothing changed: A 2000 and the change 1500 (paid) only.
    expect(await ledgerIn(app, 'CHF')).toEqual({
      'receivable:customer': 2000,
      revenue: -3500,
      offline_receipts: 1500,
    });

    // Done as named: the period invoice paid (2000 by bank), the same change goes through, and its
    // 1000 net credit (tax 0) is the customer's credit: paid time, refundable.
    await recordOfflinePayment(db, 'system', period, { method: 'BANK', amount: 2000n });
    const changed = await downgrade(id, a);
    expect(changed).toMatchObject({ credited: 1000n, creditedToInvoice: null, invoice: null });
    // 2000 + 1500 paid by bank; 1000 of it back as the customer's credit: revenue 2500.
    expect(await ledgerIn(app, 'CHF')).toEqual({
      'customer_credit:customer': -1000,
      offline_receipts: 3500,
      'receivable:customer': 0,
      revenue: -2500,
    });
  });

  it('JPY: a period invoice partly paid is named with what it still owes; paid up, the change credits 1000 to the customer', async () => {
    const { id, a, period } = await upgradedThenOwed('JPY');
    await recordOfflinePayment(db, 'system', period, { method: 'BANK', amount: 1200n });
    const refused = await downgrade(id, a);
    expect(refused).toEqual(expect.stringContaining(`${period} still owes 800`));
    expect(refused).toEqual(expect.stringContaining(`POST /v1/invoices/${period}/payments with amount 800`));
    expect(refused).toEqual(expect.stringContaining(`voiding ${period} is no way out`));
    await recordOfflinePayment(db, 'system', period, { method: 'BANK', amount: 800n });
    expect(await downgrade(id, a)).toMatchObject({ credited: 1000n, creditedToInvoice: null });
    // 2000 + 1500 paid by bank; 1000 of it back as the customer's credit: revenue 2500.
    expect(await ledgerIn(app, 'JPY')).toEqual({
      'customer_credit:customer': -1000,
      offline_receipts: 3500,
      'receivable:customer': 0,
      revenue: -2500,
    });
  });

  it('SEK: voided after the upgrade, a downgrade to a plan of 500 credits the unused share of the 1500 paid (1000) less the 500 plan for the rest (250): 750 (it credited 1750 on 1500 paid, then was refused); voided before any change, the change credits what the change invoice charged', async () => {
    const { id, period, b: dear } = await upgradedThenOwed('SEK');
    const cheap = await insertPlan(db, {
      name: 'C',
      currency: 'SEK',
      price: { model: 'FLAT_FEE', amount: 500 },
    });
    await voidInvoice(db, 'system', period);
    // 2000 of 4000-plan time unused on Feb 15, of which the voided invoice's 2000 plan for the 14
    // days left (1000) was paid by nothing: not credited. The rest, 1000, is the unused share of the
    // 1500 the change invoice paid (14 of its 21 days); the 500 plan for the rest charged 250: 750 of
    // customer credit. Before: 2000 − 250 = 1750 of customer credit on 1500 paid (revenue +250), then
    // (the last stop) refused 422 though what was paid is known.
    const down = await changeSubscription(
      db,
      'system',
      id,
      { planId: cheap },
      d('2027-02-15T00:00:00Z'),
      false,
    );
    expect(down).toMatchObject({ credited: 750n, creditedToInvoice: null, invoice: null });
    expect(down.proration.lines.map((l) => [l.type, l.amount])).toEqual([
      ['CREDIT', 2000n],
      ['CHARGE', 1000n],
      ['CHARGE', 250n],
    ]);
    expect(await ledgerIn(app, 'SEK')).toEqual({
      'customer_credit:customer': -750,
      offline_receipts: 1500,
      'receivable:customer': 0,
      revenue: -750,
    });
    // The voided invoice's share is out of the period's basis now: back up to 4000 on Feb 22 (7 days
    // left) credits all of the 500 plan's unused time, 125, and charges 1000: 875.
    const upAgain = await changeSubscription(
      db,
      'system',
      id,
      { planId: dear },
      d('2027-02-22T00:00:00Z'),
      false,
    );
    expect(upAgain.proration.lines.map((l) => [l.type, l.amount])).toEqual([
      ['CREDIT', 125n],
      ['CHARGE', 1000n],
    ]);
    expect(upAgain.invoice).toMatchObject({ total: 875n });

    // NOK: the period invoice voided before the period's first change: the upgrade on Feb 8 credits
    // nothing of it and charges 4000 × 21/28 = 3000 (paid); down to 500 on Feb 15: 2000 unused − 250
    // = 1750 of that cash-paid time back as customer credit; revenue 3000 − 1750 = 1250.
    const plan = (amount: number, name: string) =>
      insertPlan(db, { name, currency: 'NOK', price: { model: 'FLAT_FEE', amount } });
    const [a, b, c] = [await plan(2000, 'A'), await plan(4000, 'B'), await plan(500, 'C')];
    const { subscription, invoices } = await createSubscription(
      db,
      'system',
      { customerId: await insertCustomer(db), planId: a },
      d('2027-02-01T00:00:00Z'),
    );
    await voidInvoice(db, 'system', invoices[0]!.id);
    const up = await changeSubscription(
      db,
      'system',
      subscription.id,
      { planId: b },
      d('2027-02-08T00:00:00Z'),
      false,
    );
    expect(up.invoice).toMatchObject({ total: 3000n });
    await recordOfflinePayment(db, 'system', up.invoice!.id, { method: 'BANK', amount: 3000n });
    expect(await downgrade(subscription.id, c)).toMatchObject({ credited: 1750n, creditedToInvoice: null });
    expect(await ledgerIn(app, 'NOK')).toEqual({
      'customer_credit:customer': -1750,
      offline_receipts: 3000,
      'receivable:customer': 0,
      revenue: -1250,
    });
  });
  it('ISK: what was paid of the unused time of a voided period cannot be told when a change credit was taken off the voided invoice, or the basis was stored before it named its invoice: refused 422, nothing changed', async () => {
    const plan = (amount: number, name: string) =>
      insertPlan(db, { name, currency: 'ISK', price: { model: 'FLAT_FEE', amount } });
    const [a, b, c] = [await plan(2000, 'A'), await plan(4000, 'B'), await plan(500, 'C')];
    const { subscription, invoices } = await createSubscription(
      db,
      'system',
      { customerId: await insertCustomer(db), planId: a },
      d('2027-02-01T00:00:00Z'),
    );
    const period = invoices[0]!.id;
    // Down to 500 on Feb 8: 1500 − 375 = 1125 taken off the OPEN 2000 (875 left), then voided: the
    // 500 plan's time left was funded by nothing paid, which the rows do not say exactly.
    const down = await changeSubscription(
      db,
      'system',
      subscription.id,
      { planId: c },
      d('2027-02-08T00:00:00Z'),
      false,
    );
    expect(down.creditedToInvoice).toEqual({ invoice: period, amount: 1125n });
    await voidInvoice(db, 'system', period);
    const up = (at: string) =>
      changeSubscription(db, 'system', subscription.id, { planId: b }, d(at), false).then(
        () => 'changed',
        (error: unknown) => (error instanceof ValidationError ? error.fields?.proration : error),
      );
    expect(await up('2027-02-15T00:00:00Z')).toEqual(
      expect.stringContaining(`a change's credit of 1125 was taken off it while it was owed`),
    );
    // A basis stored before bases named their period invoice: not known either.
    const other = await createSubscription(
      db,
      'system',
      { customerId: await insertCustomer(db), planId: a },
      d('2027-02-01T00:00:00Z'),
    );
    const raised = await changeSubscription(
      db,
      'system',
      other.subscription.id,
      { planId: b },
      d('2027-02-08T00:00:00Z'),
      false,
    );
    await recordOfflinePayment(db, 'system', raised.invoice!.id, { method: 'BANK', amount: 1500n });
    await voidInvoice(db, 'system', other.invoices[0]!.id);
    await sql`UPDATE subscriptions SET charged_basis = (charged_basis::jsonb - 'period_invoice')::json
      WHERE id = ${other.subscription.id}`.execute(db);
    const refused = await changeSubscription(
      db,
      'system',
      other.subscription.id,
      { planId: c },
      d('2027-02-15T00:00:00Z'),
      false,
    ).then(
      () => 'changed',
      (error: unknown) => (error instanceof ValidationError ? error.fields?.proration : error),
    );
    expect(refused).toEqual(
      expect.stringContaining('stored before billhook recorded whether they credited it'),
    );
    // Nothing changed: no customer credit, no further invoice.
    expect(await ledgerIn(app, 'ISK')).toEqual({
      offline_receipts: 1500,
      'receivable:customer': 0,
      revenue: -1500,
    });
  });
});
