import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eachLimited } from '../../src/billing/each-limited.ts';
import { renewDueSubscriptions } from '../../src/billing/renewal.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import type { Db } from '../../src/db/database.ts';
import { newId } from '../../src/db/ids.ts';
import { chargeDueInvoices } from '../../src/payments/collection.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { insertCustomer, insertPlan } from '../support/plans.ts';

const d = (iso: string) => new Date(iso);

/**
 * A stopping process (SIGTERM, a deploy) aborts `WorkerContext.stopping`: the billing sweeps finish
 * the items in hand and start no more, so none outlives the database pool; what is left waits for
 * the next run (the bench's worker logged `driver has already been destroyed` for the renewals and
 * charges a sweep was still starting after the pool had closed).
 */
describe('sweeps and a stopping process', () => {
  it('eachLimited starts no item once the signal is aborted; the items running finish', async () => {
    const items = [1, 2, 3, 4, 5, 6];
    for (const limit of [1, 2]) {
      const stopping = new AbortController();
      const finished: number[] = [];
      await eachLimited(
        items,
        limit,
        async (item) => {
          // The first item aborts while it runs, after every lane has started one: those finish.
          await new Promise((resolve) => setImmediate(resolve));
          if (item === 1) stopping.abort();
          finished.push(item);
        },
        stopping.signal,
      );
      expect(finished.sort()).toEqual(items.slice(0, limit));
    }
    const all: number[] = [];
    await eachLimited(items, 2, async (item) => {
      all.push(item);
    });
    expect(all.sort()).toEqual(items);
  });

  describe('the renewal sweep', () => {
    let app: TestApp;
    let db: Db;
    beforeAll(async () => {
      app = await startTestApp();
      db = app.runtime.db;
    });
    afterAll(() => app.stop());

    it('renews nothing once stopping, and everything due at its next run', async () => {
      const plan = await insertPlan(db, { price: { model: 'PER_UNIT', unit_amount: 1000 } });
      const ids: string[] = [];
      for (let n = 0; n < 3; n++) {
        const customer = await insertCustomer(db);
        const { subscription } = await createSubscription(
          db,
          'system',
          { customerId: customer, planId: plan },
          d('2027-01-01T00:00:00Z'),
        );
        ids.push(subscription.id);
      }
      const invoices = async () =>
        Number(
          (
            await db
              .selectFrom('invoices')
              .select((eb) => eb.fn.countAll().as('n'))
              .where('subscription_id', 'in', ids)
              .executeTakeFirstOrThrow()
          ).n,
        );
      expect(await invoices()).toBe(3);
      // On 2027-03-15 February's and March's periods are due for each: 6 invoices, none while stopping.
      const stopping = new AbortController();
      stopping.abort();
      const at = d('2027-03-15T00:00:00Z');
      expect(await renewDueSubscriptions(db, 'system', at, { stopping: stopping.signal })).toEqual({
        invoices: 0,
        failures: [],
      });
      expect(await invoices()).toBe(3);
      expect(await renewDueSubscriptions(db, 'system', at)).toEqual({ invoices: 6, failures: [] });
      expect(await invoices()).toBe(9);
    });

    it('claims and charges nothing once stopping: a due invoice keeps its charge_at for the next run', async () => {
      const customer = await insertCustomer(db);
      const due = d('2030-01-01T00:00:00Z');
      const id = newId('inv');
      await db
        .insertInto('invoices')
        .values({
          id,
          customer_id: customer,
          currency: 'USD',
          status: 'OPEN',
          total: 500n,
          amount_due: 500n,
          charge_at: due,
        })
        .execute();
      const chargeAt = async () =>
        (await db.selectFrom('invoices').select('charge_at').where('id', '=', id).executeTakeFirstOrThrow())
          .charge_at;
      const gateways = { registry: app.runtime.registry, accounts: app.runtime.accounts };
      const at = d('2030-01-02T00:00:00Z');
      const stopping = new AbortController();
      stopping.abort();
      const stopped = await chargeDueInvoices(db, 'system', gateways, app.config, at, {
        stopping: stopping.signal,
      });
      expect(stopped.charged).toEqual([]);
      expect(await chargeAt()).toEqual(due);
      // The next run takes it (no payment method: a failed collection, counted for dunning), with
      // the renewal test's invoices due by then.
      const next = await chargeDueInvoices(db, 'system', gateways, app.config, at);
      expect(next.charged.map((c) => c.invoiceId)).toContain(id);
      expect(await chargeAt()).not.toEqual(due);
    });
  });
});
