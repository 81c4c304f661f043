import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { createTestDatabase } from '../support/database.ts';

describe('inbox storage', () => {
  let db: Db;
  beforeAll(async () => {
    db = createDb(await createTestDatabase(), 2);
    await migrateToLatest(db);
  });
  afterAll(() => db.destroy());

  it('keeps a typical webhook body uncompressed in its row (no pglz on the ingest path), a large one TOASTed', async () => {
    const typical = JSON.stringify({ id: 'evt_1', data: { object: { note: 'x'.repeat(2500) } } });
    const large = JSON.stringify({ id: 'evt_2', data: { object: { note: 'y'.repeat(20_000) } } });
    await db
      .insertInto('inbox')
      .values([
        { id: 'evt_typical', gateway: 'stripe', gateway_event_id: 'evt_1', event_type: 't', body: typical },
        { id: 'evt_large', gateway: 'stripe', gateway_event_id: 'evt_2', event_type: 't', body: large },
      ])
      .execute();
    const rows = await sql<{ id: string; raw: number; stored: number }>`
      SELECT id, octet_length(body) AS raw, pg_column_size(body) AS stored FROM inbox ORDER BY id
    `.execute(db);
    const [large_, typical_] = rows.rows;
    // Uncompressed: the stored datum is the text plus its length header.
    expect(typical_!.stored).toBeGreaterThanOrEqual(typical_!.raw);
    // Far beyond a page: compressed out of line as before.
    expect(large_!.stored).toBeLessThan(large_!.raw / 10);
  });
});
