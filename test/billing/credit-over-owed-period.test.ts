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
    return { id: subscription.id, a, period: period.id, change: up.invoice!.id };
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

  it('SEK: voided after the upgrade, a downgrade to a plan of 500 is refused (it credited 1750 on 1500 paid); voided before any change, the change credits what the change invoice charged', async () => {
    const { id, period } = await upgradedThenOwed('SEK');
    const cheap = await insertPlan(db, {
      name: 'C',
      currency: 'SEK',
      price: { model: 'FLAT_FEE', amount: 500 },
    });
    await voidInvoice(db, 'system', period);
    // Before: 2000 of 4000-plan time unused − 250 of the 500 plan = 1750 customer credit, though only
    // the 1500 of the change invoice was ever paid (revenue +250).
    expect(await downgrade(id, cheap)).toEqual(
      expect.stringContaining(`${period} was voided after a prorated change`),
    );
    expect(await ledgerIn(app, 'SEK')).toEqual({
      offline_receipts: 1500,
      'receivable:customer': 0,
      revenue: -1500,
    });

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
});
