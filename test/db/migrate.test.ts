import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/database.ts';
import { migrateToLatest, migrationsCurrent } from '../../src/db/migrate.ts';
import { createTestDatabase, databaseAtMigration } from '../support/database.ts';

const applied = async (db: ReturnType<typeof createDb>) =>
  (await sql<{ n: number }>`SELECT count(*)::int AS n FROM kysely_migration`.execute(db)).rows[0]?.n;

describe('migrateToLatest and migrationsCurrent', () => {
  const dbs: ReturnType<typeof createDb>[] = [];
  afterAll(async () => {
    for (const db of dbs) await db.destroy();
  });

  it('an empty database: not current; migrated whole, then current, and a second run applies nothing', async () => {
    const db = createDb(await createTestDatabase({ empty: true }), 2);
    dbs.push(db);
    expect(await migrationsCurrent(db)).toBe(false);
    const names = await migrateToLatest(db);
    expect(names[0]).toBe('0001_foundation');
    expect(await applied(db)).toBe(names.length);
    expect(await migrationsCurrent(db)).toBe(true);
    expect(await migrateToLatest(db)).toEqual([]);
  });

  it('a database an older billhook left: not current; the later migrations applied, in order', async () => {
    const db = await databaseAtMigration('0023_idempotency_key_expiry');
    dbs.push(db);
    expect(await migrationsCurrent(db)).toBe(false);
    const names = await migrateToLatest(db);
    expect(names[0]?.startsWith('0024')).toBe(true);
    expect(await migrationsCurrent(db)).toBe(true);
  });

  it('a database a newer billhook migrated (a migration this code does not have): not current, and refused', async () => {
    const db = createDb(await createTestDatabase(), 2);
    dbs.push(db);
    expect(await migrationsCurrent(db)).toBe(true);
    await sql`INSERT INTO kysely_migration (name, timestamp) VALUES ('9999_from_the_future', now()::text)`.execute(
      db,
    );
    expect(await migrationsCurrent(db)).toBe(false);
    await expect(migrateToLatest(db)).rejects.toThrow(/9999_from_the_future/);
  });
});
