import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordActivity } from '../../src/activities/activities.ts';
import { createDb, type Db } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import type { InvoiceRow } from '../../src/db/schema.ts';
import { postEntry, transfer } from '../../src/ledger/journal.ts';
import { inRolledBackUnitOfWork, inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { createTestDatabase } from '../support/database.ts';

let db: Db;

beforeAll(async () => {
  db = createDb(await createTestDatabase(), 4);
  await migrateToLatest(db);
});

afterAll(async () => {
  await db?.destroy();
});

const activity = (id: string) => ({ resourceType: 'test', resourceId: id, action: 'test.done' });
const actorOf = async (id: string) =>
  (await db.selectFrom('activities').select('actor').where('resource_id', '=', id).executeTakeFirstOrThrow())
    .actor;

describe('UnitOfWork', () => {
  it('names the actor it was given on every activity', async () => {
    await inUnitOfWork(db, { actor: 'key_given' }, (work) => recordActivity(work, activity('uow:given')));
    await inUnitOfWork(db, { actor: 'scheduler' }, (work) => recordActivity(work, activity('uow:scheduler')));
    await inUnitOfWork(db, { actor: 'system' }, (work) => recordActivity(work, activity('uow:system')));
    expect(await actorOf('uow:given')).toBe('key_given');
    expect(await actorOf('uow:scheduler')).toBe('scheduler');
    expect(await actorOf('uow:system')).toBe('system');
  });

  it('rolled back (a preview): sees its own writes, returns what it computed from them, keeps none, rethrows', async () => {
    const seen = await inRolledBackUnitOfWork(db, { actor: 'system' }, async (work) => {
      await recordActivity(work, activity('uow:rolled-back'));
      return (
        await work.trx
          .selectFrom('activities')
          .select('id')
          .where('resource_id', '=', 'uow:rolled-back')
          .execute()
      ).length;
    });
    expect(seen).toBe(1);
    expect(
      await db.selectFrom('activities').select('id').where('resource_id', '=', 'uow:rolled-back').execute(),
    ).toEqual([]);
    await expect(
      inRolledBackUnitOfWork(db, { actor: 'system' }, async () => {
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    // Its connection went back to the pool: the next unit of work runs.
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      recordActivity(work, activity('uow:after-rollback')),
    );
    expect(await actorOf('uow:after-rollback')).toBe('system');
  });

  it('attempt: a step that throws is undone (its writes and its atEnd steps) and the unit goes on and commits; one that resolves is kept', async () => {
    const ran: string[] = [];
    const outcome = await inUnitOfWork(db, { actor: 'system' }, async (work) => {
      await recordActivity(work, activity('uow:attempt-before'));
      const failed = await work.attempt(async () => {
        await recordActivity(work, activity('uow:attempt-failed'));
        work.atEnd(async () => {
          ran.push('failed');
        });
        throw new Error('add-on charge refused');
      });
      const kept = await work.attempt(async () => {
        await recordActivity(work, activity('uow:attempt-kept'));
        work.atEnd(async () => {
          ran.push('kept');
        });
        return 7;
      });
      await recordActivity(work, activity('uow:attempt-after'));
      return { failed, kept };
    });
    expect(outcome).toEqual({
      failed: { ok: false, error: expect.any(Error) },
      kept: { ok: true, value: 7 },
    });
    expect(ran).toEqual(['kept']);
    const written = await db
      .selectFrom('activities')
      .select('resource_id')
      .where('resource_id', 'like', 'uow:attempt-%')
      // In the order recorded: ids made in one millisecond sort at random.
      .orderBy('sequence')
      .execute();
    expect(written.map((a) => a.resource_id)).toEqual([
      'uow:attempt-before',
      'uow:attempt-kept',
      'uow:attempt-after',
    ]);
  });

  it('defers its entries and activities to its end, then writes both before the commit', async () => {
    const cash = { code: 'uow:cash', type: 'asset' as const };
    const revenue = { code: 'uow:revenue', type: 'revenue' as const };
    const seen = await inUnitOfWork(db, { actor: 'system', defer: true }, async (work) => {
      await postEntry(work, {
        idempotencyKey: 'uow:deferred',
        description: 'deferred',
        source: { type: 'test', id: 'uow' },
        postings: transfer(cash, revenue, 5n, 'EUR'),
      });
      await recordActivity(work, activity('uow:deferred'));
      const entries = await work.trx
        .selectFrom('journal_entries')
        .select('id')
        .where('idempotency_key', '=', 'uow:deferred')
        .execute();
      const activities = await work.trx
        .selectFrom('activities')
        .select('id')
        .where('resource_id', '=', 'uow:deferred')
        .execute();
      return entries.length + activities.length;
    });
    expect(seen).toBe(0);
    expect(
      await db
        .selectFrom('journal_entries')
        .select('id')
        .where('idempotency_key', '=', 'uow:deferred')
        .execute(),
    ).toHaveLength(1);
    expect(await actorOf('uow:deferred')).toBe('system');
  });

  it('writeLedger writes the entries it deferred so far, mid-unit; later ones stay deferred, each written once', async () => {
    const cash = { code: 'uow:ledger-cash', type: 'asset' as const };
    const revenue = { code: 'uow:ledger-revenue', type: 'revenue' as const };
    const entry = (key: string, amount: bigint) => ({
      idempotencyKey: key,
      description: key,
      source: { type: 'test', id: 'uow-ledger' },
      postings: transfer(cash, revenue, amount, 'EUR'),
    });
    const written = (work: { trx: Db }) =>
      work.trx
        .selectFrom('journal_entries')
        .select('idempotency_key')
        .where('idempotency_key', 'like', 'uow:ledger:%')
        .orderBy('idempotency_key')
        .execute();
    const seen = await inUnitOfWork(db, { actor: 'system', defer: true }, async (work) => {
      await postEntry(work, entry('uow:ledger:1', 5n));
      await recordActivity(work, activity('uow:ledger'));
      await work.writeLedger();
      const afterWrite = (await written(work)).map((e) => e.idempotency_key);
      // The same key again (a replayed event) and a new one: deferred, written at the end.
      await postEntry(work, entry('uow:ledger:1', 5n));
      await postEntry(work, entry('uow:ledger:2', 7n));
      const beforeEnd = (await written(work)).map((e) => e.idempotency_key);
      const activities = await work.trx
        .selectFrom('activities')
        .select('id')
        .where('resource_id', '=', 'uow:ledger')
        .execute();
      return { afterWrite, beforeEnd, activities: activities.length };
    });
    expect(seen).toEqual({ afterWrite: ['uow:ledger:1'], beforeEnd: ['uow:ledger:1'], activities: 0 });
    expect((await written({ trx: db })).map((e) => e.idempotency_key)).toEqual([
      'uow:ledger:1',
      'uow:ledger:2',
    ]);
    const postings = await db
      .selectFrom('postings as p')
      .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
      .select(['a.code', 'p.amount'])
      .where('a.code', '=', 'uow:ledger-cash')
      .orderBy('p.amount')
      .execute();
    expect(postings).toEqual([
      { code: 'uow:ledger-cash', amount: 5n },
      { code: 'uow:ledger-cash', amount: 7n },
    ]);
    expect(await actorOf('uow:ledger')).toBe('system');
  });

  it('hands each row held ahead out once, and none after forgetHeld', async () => {
    const row = { id: 'inv_held' } as InvoiceRow;
    await inUnitOfWork(db, { actor: 'system' }, async (work) => {
      work.hold('invoices', [row, { id: 'inv_other' } as InvoiceRow]);
      expect(work.findHeld('invoices', (held) => held.id === 'inv_held')).toBe(row);
      expect(work.take('invoices', 'inv_held')).toBe(row);
      expect(work.take('invoices', 'inv_held')).toBeUndefined();
      expect(work.take('transactions', 'inv_other')).toBeUndefined();
      await work.forgetHeld();
      expect(work.take('invoices', 'inv_other')).toBeUndefined();
    });
  });

  describe('update', () => {
    const seed = async (suffix: string) => {
      await db
        .insertInto('customers')
        .values({ id: `cus_uow_${suffix}`, email: 'uow@example.com' })
        .execute();
      await db
        .insertInto('invoices')
        .values({
          id: `inv_uow_${suffix}`,
          customer_id: `cus_uow_${suffix}`,
          currency: 'EUR',
          status: 'OPEN',
        })
        .execute();
      for (const n of [1, 2]) {
        await db
          .insertInto('transactions')
          .values({
            id: `txn_uow_${suffix}_${n}`,
            invoice_id: `inv_uow_${suffix}`,
            gateway: 'stripe',
            amount: 500n,
            currency: 'EUR',
            status: n === 1 ? 'pending' : 'failed',
          })
          .execute();
      }
      return db
        .selectFrom('transactions')
        .selectAll()
        .where('invoice_id', '=', `inv_uow_${suffix}`)
        .orderBy('id')
        .forUpdate()
        .execute();
    };
    const stored = (id: string) =>
      db.selectFrom('transactions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

    it('writes at once in a unit that does not defer', async () => {
      const [pending] = await seed('now');
      const seen = await inUnitOfWork(db, { actor: 'system' }, async (work) => {
        const updated = await work.update('transactions', pending!, {
          status: 'succeeded',
          failure_code: null,
        });
        expect(updated).toMatchObject({ id: pending!.id, status: 'succeeded', amount: 500n });
        expect(work.take('transactions', pending!.id)).toBeUndefined();
        return work.trx
          .selectFrom('transactions')
          .select('status')
          .where('id', '=', pending!.id)
          .executeTakeFirst();
      });
      expect(seen?.status).toBe('succeeded');
    });

    it('in a deferring unit, answers with the changed rows and writes them at its end, merged, one statement per column set', async () => {
      const [first, second] = await seed('late');
      const during = await inUnitOfWork(db, { actor: 'system', defer: true }, async (work) => {
        await work.update('transactions', first!, { gateway_transaction_id: 'pi_uow_late' });
        await work.update('transactions', first!, { status: 'succeeded', amount_captured: 300n });
        await work.update('transactions', second!, { failure_code: 'card_declined', failure_message: null });
        expect(work.hasUnwrittenRows).toBe(true);
        expect(work.take('transactions', first!.id)).toMatchObject({
          status: 'succeeded',
          gateway_transaction_id: 'pi_uow_late',
          amount_captured: 300n,
        });
        expect(work.findHeld('transactions', (row) => row.gateway_transaction_id === 'pi_uow_late')?.id).toBe(
          first!.id,
        );
        return work.trx
          .selectFrom('transactions')
          .select('status')
          .where('id', '=', first!.id)
          .executeTakeFirst();
      });
      expect(during?.status).toBe('pending');
      expect(await stored(first!.id)).toMatchObject({
        status: 'succeeded',
        gateway_transaction_id: 'pi_uow_late',
        amount_captured: 300n,
        failure_code: null,
      });
      expect(await stored(second!.id)).toMatchObject({
        status: 'failed',
        failure_code: 'card_declined',
        failure_message: null,
      });
    });

    it('writes before a read that needs PostgreSQL to have the rows (writeRows), and then asks PostgreSQL again', async () => {
      const [first] = await seed('read');
      await inUnitOfWork(db, { actor: 'system', defer: true }, async (work) => {
        await work.update('transactions', first!, { status: 'canceled' });
        await work.writeRows();
        expect(work.hasUnwrittenRows).toBe(false);
        expect(work.take('transactions', first!.id)).toBeUndefined();
        const row = await work.trx
          .selectFrom('transactions')
          .select('status')
          .where('id', '=', first!.id)
          .executeTakeFirst();
        expect(row?.status).toBe('canceled');
      });
    });

    it('writes nothing when the unit rolls back', async () => {
      const [first] = await seed('rollback');
      await expect(
        inUnitOfWork(db, { actor: 'system', defer: true }, async (work) => {
          await work.update('transactions', first!, { status: 'succeeded' });
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      expect((await stored(first!.id)).status).toBe('pending');
    });
  });
});
