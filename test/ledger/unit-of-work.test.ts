import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordActivity } from '../../src/activities/activities.ts';
import { createDb, type Db } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import type { InvoiceRow } from '../../src/db/schema.ts';
import { postEntry, transfer } from '../../src/ledger/journal.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
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

  it('hands each row held ahead out once, and none after forgetHeld', async () => {
    const row = { id: 'inv_held' } as InvoiceRow;
    await inUnitOfWork(db, { actor: 'system' }, async (work) => {
      work.hold('invoices', [row, { id: 'inv_other' } as InvoiceRow]);
      expect(work.findHeld('invoices', (held) => held.id === 'inv_held')).toBe(row);
      expect(work.take('invoices', 'inv_held')).toBe(row);
      expect(work.take('invoices', 'inv_held')).toBeUndefined();
      expect(work.take('transactions', 'inv_other')).toBeUndefined();
      work.forgetHeld();
      expect(work.take('invoices', 'inv_other')).toBeUndefined();
    });
  });
});
