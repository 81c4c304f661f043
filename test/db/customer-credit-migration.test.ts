import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { balanceOf } from '../../src/ledger/balances.ts';
import { databaseAtMigration } from '../support/database.ts';

describe('migration 0015: a subscription’s credit balance becomes its customer’s credit', () => {
  let db: Db;
  beforeAll(async () => {
    db = await databaseAtMigration('0014_inbox_retention_indexes');
  });
  afterAll(() => db.destroy());

  it('moves 350 of pre-tax credit on a 10% plan to 385 of customer credit (debit receivable 350 and tax payable 35)', async () => {
    for (const statement of [
      sql`INSERT INTO customers (id, email) VALUES ('cus_migrated', 'm@example.com')`,
      sql`INSERT INTO products (id, name) VALUES ('prod_m', 'Pro')`,
      sql`INSERT INTO plans (id, product_id, name, currency, interval, price, tax_rate_ppm)
        VALUES ('plan_m', 'prod_m', 'Lite', 'EUR', 'MONTH', '{"model":"FLAT_FEE","amount":1400}', 100000)`,
      sql`INSERT INTO subscriptions (id, customer_id, plan_id, status, billing_anchor, start_at, credit_balance)
        VALUES ('sub_m', 'cus_migrated', 'plan_m', 'CANCELLED', now(), now(), 350),
               ('sub_none', 'cus_migrated', 'plan_m', 'ACTIVE', now(), now(), 0)`,
    ]) {
      await statement.execute(db);
    }
    await migrateToLatest(db);
    expect(await balanceOf(db, 'customer_credit:cus_migrated', 'EUR')).toBe(-385n);
    expect(await balanceOf(db, 'receivable:cus_migrated', 'EUR')).toBe(350n);
    expect(await balanceOf(db, 'tax_payable', 'EUR')).toBe(35n);
    const entries = await db.selectFrom('journal_entries').select(['idempotency_key', 'source_id']).execute();
    expect(entries).toEqual([{ idempotency_key: 'sub_m:credit_moved', source_id: 'sub_m' }]);
    const columns = await sql<{ column_name: string }>`
      SELECT column_name FROM information_schema.columns
      WHERE table_name = 'subscriptions' AND column_name = 'credit_balance'
    `.execute(db);
    expect(columns.rows).toEqual([]);
  });
});
