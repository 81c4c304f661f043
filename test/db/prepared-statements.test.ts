import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db, preparedName } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { createTestDatabase } from '../support/database.ts';

describe('prepared writes', () => {
  let db: Db;
  beforeAll(async () => {
    db = createDb(await createTestDatabase(), 1);
    await migrateToLatest(db);
  });
  afterAll(() => db.destroy());

  /** The statements prepared on the pool's one connection. */
  async function prepared(): Promise<string[]> {
    const { rows } = await sql<{ statement: string }>`
      SELECT statement FROM pg_prepared_statements WHERE name LIKE 'billhook_write_%'`.execute(db);
    return rows.map((r) => r.statement);
  }

  it('prepares writes that return no rows, once per text, and nothing that returns rows', async () => {
    await db.insertInto('customers').values({ id: 'cus_prep', email: 'a@example.com' }).execute();
    for (const email of ['b@example.com', 'c@example.com'])
      await db.updateTable('customers').set({ email }).where('id', '=', 'cus_prep').execute();
    const returned = await db
      .updateTable('customers')
      .set({ name: 'Ada' })
      .where('id', '=', 'cus_prep')
      .returningAll()
      .executeTakeFirstOrThrow();
    await db.selectFrom('customers').selectAll().execute();

    expect(returned).toMatchObject({ email: 'c@example.com', name: 'Ada' });
    const statements = await prepared();
    expect(statements.filter((s) => s.startsWith('update "customers" set "email"'))).toHaveLength(1);
    expect(statements.some((s) => s.startsWith('insert into "customers"'))).toBe(true);
    expect(statements.some((s) => /returning|^select/i.test(s))).toBe(false);
  });

  it('keeps working after a migration adds a column to a table with prepared writes', async () => {
    await sql`ALTER TABLE customers ADD COLUMN prepared_test text`.execute(db);
    await db.updateTable('customers').set({ email: 'd@example.com' }).where('id', '=', 'cus_prep').execute();
    const row = await db
      .selectFrom('customers')
      .selectAll()
      .where('id', '=', 'cus_prep')
      .executeTakeFirstOrThrow();
    expect(row.email).toBe('d@example.com');
  });

  it('leaves long (batch) statements and RETURNING unnamed', () => {
    expect(preparedName(`insert into "t" values ${'($1), '.repeat(500)}($2)`)).toBeUndefined();
    expect(preparedName('update "t" set "a" = $1 where "id" = $2 returning *')).toBeUndefined();
    expect(preparedName('select * from "t"')).toBeUndefined();
    const name = preparedName('update "t" set "a" = $1 where "id" = $2');
    expect(name).toMatch(/^billhook_write_\d+$/);
    expect(preparedName('update "t" set "a" = $1 where "id" = $2')).toBe(name);
  });
});
