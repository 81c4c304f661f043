import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.ts';

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * Type parsers for billhook's own pool only: int8 and numeric (sums of int8) become `bigint`,
 * so money read from the database is never a float. pg-boss keeps pg's defaults.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (value: string) => BigInt(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** A Kysely handle on billhook's tables. */
export type Db = Kysely<Database>;

/** PostgreSQL's unique_violation error code. */
export const UNIQUE_VIOLATION = '23505';

/**
 * Opens a pooled connection to PostgreSQL.
 * @param connectionString a `postgres://` URL
 * @param max the pool size (default 10)
 */
export function createDb(connectionString: string, max = 10): Db {
  const pool = createPool({ connectionString, max, types });
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/**
 * A node-postgres pool (connection timeout 5 s unless `config` says otherwise) whose lost connections
 * do not crash the process when the database restarts: idle clients report to the pool, and a
 * checked-out client between two queries reports to its own listener; the work in flight fails
 * through its rejected query (→ 503) either way.
 */
export function createPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool({ connectionTimeoutMillis: 5_000, ...config });
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}
