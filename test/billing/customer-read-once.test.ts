import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCustomerOnce } from '../../src/billing/customer-status.ts';
import { updateCustomer } from '../../src/billing/customers.ts';
import type { Db } from '../../src/db/database.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { insertCustomer } from '../support/plans.ts';
import { waitFor } from '../support/wait.ts';

/**
 * A renewal or a plan change reads its customer once (`openCustomerOnce`) and uses that read for every
 * invoice it makes (tax address, number prefix, payment terms). That holds only because the read's
 * `FOR KEY SHARE` lock keeps the row as read until the unit of work ends: every change of a customer
 * row locks it `FOR UPDATE` first, which waits for that lock. This test fails if a writer stops doing so.
 */
describe('a customer read once by a unit of work', () => {
  let app: TestApp;
  let db: Db;
  beforeAll(async () => {
    app = await startTestApp({}, 'web');
    db = app.runtime.db;
  });
  afterAll(() => app.stop());

  it("an update of the customer's terms and tax address waits until the unit of work that read it ends", async () => {
    const customerId = await insertCustomer(db);
    let update: Promise<unknown> | undefined;
    let updated = false;
    const read = await inUnitOfWork(db, { actor: 'system' }, async (work) => {
      const first = await openCustomerOnce(work.trx, customerId)();
      update = updateCustomer(db, 'system', customerId, {
        paymentTermsDays: 30,
        taxExempt: true,
        address: { country: 'NZ' },
      }).then(() => {
        updated = true;
      });
      // The update's transaction waits on a row lock (PostgreSQL's own view of it), not yet done.
      await waitFor('the update waiting on the customer lock', async () => {
        const { rows } = await sql<{ waiting: number }>`
          SELECT count(*)::int AS waiting FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%customers%'
        `.execute(db);
        return rows[0]!.waiting > 0;
      });
      expect(updated).toBe(false);
      const again = await work.trx
        .selectFrom('customers')
        .select(['payment_terms_days', 'tax_exempt', 'address_country'])
        .where('id', '=', customerId)
        .executeTakeFirstOrThrow();
      return { first, again };
    });
    // Inside the unit, the row stayed as read; the update then ran.
    expect(read.first).toMatchObject({ payment_terms_days: null, tax_exempt: false, address_country: null });
    expect(read.again).toEqual({ payment_terms_days: null, tax_exempt: false, address_country: null });
    await update;
    expect(
      await db
        .selectFrom('customers')
        .select(['payment_terms_days', 'tax_exempt', 'address_country'])
        .where('id', '=', customerId)
        .executeTakeFirstOrThrow(),
    ).toEqual({ payment_terms_days: 30, tax_exempt: true, address_country: 'NZ' });
  });
});
