import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { databaseAtMigration } from '../support/database.ts';

describe('migration 0029: invoices finalized before it get their numbers, gap-free, in finalization order', () => {
  let db: Db;
  beforeAll(async () => {
    db = await databaseAtMigration('0027_webhook_endpoints');
  });
  afterAll(() => db.destroy());

  it('numbers OPEN/PAID/VOID-after-finalization invoices INV-000001… by finalized_at; drafts stay unnumbered', async () => {
    await sql`INSERT INTO customers (id, email) VALUES ('cus_m', 'm@example.com')`.execute(db);
    await sql`
      INSERT INTO invoices (id, customer_id, currency, status, total, amount_due, finalized_at) VALUES
        ('inv_b', 'cus_m', 'USD', 'PAID', 100, 0, '2026-11-02T00:00:00Z'),
        ('inv_a', 'cus_m', 'USD', 'OPEN', 100, 100, '2026-11-01T00:00:00Z'),
        ('inv_c', 'cus_m', 'USD', 'VOID', 100, 0, '2026-11-03T00:00:00Z'),
        ('inv_d', 'cus_m', 'USD', 'DRAFT', 100, 100, NULL),
        ('inv_e', 'cus_m', 'USD', 'VOID', 100, 0, NULL)
    `.execute(db);
    await migrateToLatest(db);
    const rows = await db
      .selectFrom('invoices')
      .select(['id', 'number', 'payment_terms_days', 'due_date', 'finalized_at'])
      .orderBy('id')
      .execute();
    expect(rows.map((r) => [r.id, r.number])).toEqual([
      ['inv_a', 'INV-000001'],
      ['inv_b', 'INV-000002'],
      ['inv_c', 'INV-000003'],
      ['inv_d', null],
      ['inv_e', null],
    ]);
    expect(rows[0]).toMatchObject({ payment_terms_days: 0, due_date: rows[0]!.finalized_at });
    const counter = await db.selectFrom('invoice_number_counters').selectAll().execute();
    expect(counter).toEqual([{ prefix: 'INV', last_number: 3n }]);
  });
});
