import { sql } from 'kysely';
import pg from 'pg';
import type { Db } from '../../src/db/database.ts';

/**
 * The database falling behind: a session of its own (at `databaseUrl`) holding the inbox table in
 * SHARE mode, so every inbox INSERT waits until the returned client's `COMMIT` (then `end()` it).
 */
export async function holdInboxLock(databaseUrl: string): Promise<pg.Client> {
  const blocker = new pg.Client(databaseUrl);
  await blocker.connect();
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE inbox IN SHARE MODE');
  return blocker;
}

/**
 * Inserts into the inbox now waiting for a lock, as `pg_stat_activity` shows them. Ask through a
 * connection outside the blocker's transaction (it would see one snapshot of the view).
 */
export async function blockedInserts(db: Db): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO inbox%'`.execute(db);
  return rows[0]?.n ?? 0;
}
