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

/** Longest statement text prepared by name: longer ones are batch statements whose text varies. */
const MAX_PREPARED_TEXT = 2000;
/** Most statement texts prepared by name per process; later ones run unnamed (bounds each backend's plan cache). */
const MAX_PREPARED = 500;
const preparedNames = new Map<string, string>();

/**
 * The name to prepare `text` under, or undefined to run it unnamed (parsed and planned each time).
 * Only writes that return no rows are prepared: a plan cached for a statement that returns rows fails
 * with "cached plan must not change result type" once a migration adds a column to its table, and a
 * write without RETURNING has no result to change. Kysely's single-row updates and inserts of the
 * reconcile path are such writes; PostgreSQL spent ~90 µs planning each of them every time.
 */
export function preparedName(text: string): string | undefined {
  const known = preparedNames.get(text);
  if (known !== undefined) return known;
  if (text.length > MAX_PREPARED_TEXT || preparedNames.size >= MAX_PREPARED) return undefined;
  if (!/^\s*(insert into|update|delete from)\s/i.test(text) || /\breturning\b/i.test(text)) return undefined;
  const name = `billhook_write_${preparedNames.size}`;
  preparedNames.set(text, name);
  return name;
}

type QueryFn = (...args: unknown[]) => unknown;

/**
 * Opens a pooled connection to PostgreSQL. Writes that return no rows run as prepared statements
 * (`preparedName`), each planned once per connection (PostgreSQL then keeps a generic plan unless
 * the planner finds it worse than planning with the values).
 * @param connectionString a `postgres://` URL
 * @param max the pool size (default 10)
 */
export function createDb(connectionString: string, max = 10): Db {
  const pool = createPool({ connectionString, max, types });
  pool.on('connect', (client) => {
    // Kysely's driver calls query(text, values); the same call with a name prepares the statement.
    const query = client.query.bind(client) as QueryFn;
    (client as unknown as { query: QueryFn }).query = (
      text: unknown,
      values?: unknown,
      ...rest: unknown[]
    ) => {
      const name = typeof text === 'string' && Array.isArray(values) ? preparedName(text) : undefined;
      return name ? query({ name, text, values }, ...rest) : query(text, values, ...rest);
    };
  });
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
